//! nova-guard: a validating reverse proxy for the OpenStack Nova compute API.

pub mod nova;
