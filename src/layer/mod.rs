//! The tower layers a request passes through on the hyper path, outermost
//! first: request id → admission → access log → rescue → validation →
//! forwarding.

pub mod access_log;
pub mod admission;
pub mod request_id;
pub mod rescue;
pub mod validate;
