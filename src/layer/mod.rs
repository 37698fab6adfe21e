//! The tower layers a request passes through, outermost first:
//! request id → access log → framing → validation → forwarding.

pub mod access_log;
pub mod either;
pub mod framing;
pub mod idle_body;
pub mod request_id;
pub mod validate;
