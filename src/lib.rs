//! nova-guard: a validating reverse proxy for the OpenStack Nova compute API.
//!
//! Two halves: [`nova`] knows Nova (routes, schemas, messages, JSON and IPv6
//! quirks) as pure functions; the rest is the proxy that applies it.

pub mod config;
pub mod error;
pub mod forward;
pub mod layer;
pub mod logline;
pub mod metrics;
pub mod nova;
pub mod server;
pub mod tls;
pub mod wire;
