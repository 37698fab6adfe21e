//! Body wrappers of the hyper (HTTP/2) path, shared by its layers and its
//! forwarding service: below both.

mod idle;
mod resumed;

pub use idle::IdleBody;
pub use resumed::Resumed;
