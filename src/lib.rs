//! nova-guard: a validating reverse proxy for the OpenStack Nova compute API.
//!
//! Two halves: [`nova`] knows Nova (routes, schemas, messages, JSON and IPv6
//! quirks) as pure functions; the rest is the proxy that applies it.
//!
//! The proxy is the default feature `proxy`. Without it only the pure code
//! builds: [`nova`], the wire head tracker and chunk grammar ([`wire`]) and
//! the HTTP/1 head parser ([`h1::head`], [`h1::response`]), with none of the
//! I/O dependencies (the fuzz targets use that).

#[cfg(feature = "proxy")]
pub mod admin;
#[cfg(feature = "proxy")]
pub mod admit;
#[cfg(feature = "proxy")]
pub mod body;
#[cfg(feature = "proxy")]
pub mod config;
#[cfg(feature = "proxy")]
pub mod error;
#[cfg(feature = "proxy")]
pub mod exchange;
#[cfg(feature = "proxy")]
pub mod forward;
#[cfg(feature = "proxy")]
pub mod guard;
pub mod h1;
#[cfg(feature = "proxy")]
pub mod h2;
#[cfg(feature = "proxy")]
pub mod layer;
#[cfg(feature = "proxy")]
pub mod log;
#[cfg(feature = "proxy")]
pub mod metrics;
pub mod nova;
#[cfg(feature = "proxy")]
pub mod reload;
#[cfg(feature = "proxy")]
pub mod rescue;
#[cfg(feature = "proxy")]
pub mod server;
mod swar;
#[cfg(feature = "proxy")]
pub mod systemd;
#[cfg(feature = "proxy")]
pub mod text;
#[cfg(feature = "proxy")]
pub mod tls;
#[cfg(feature = "proxy")]
pub mod upstream;
pub mod wire;
