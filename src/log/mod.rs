//! Logging: the JSON line format, the access event written once per
//! exchange, and setting up the subscriber.

pub mod access;
pub mod json;

pub use json::JsonLine;
