//! The tower layers a request passes through on the hyper path, outermost
//! first: request id → admission → access log → rescue → validation →
//! forwarding.

pub mod access_log;
pub mod admission;
pub mod request_id;
pub mod rescue;
pub mod validate;

#[cfg(test)]
mod tests;

use std::sync::Arc;

use ipnetwork::IpNetwork;
use tower::layer::util::{Identity, Stack};
use tower::ServiceBuilder;

use crate::guard::Guard;
use crate::metrics::Metrics;
use access_log::AccessLogLayer;
use admission::AdmissionLayer;
use request_id::RequestIdLayer;
use rescue::RescueLayer;
use validate::ValidateLayer;

/// Every layer, outermost first.
pub type Layers = Stack<
    ValidateLayer,
    Stack<
        RescueLayer,
        Stack<AccessLogLayer, Stack<AdmissionLayer, Stack<RequestIdLayer, Identity>>>,
    >,
>;

/// The layers in their order, to be put over the forwarding service (or,
/// in tests, a stand-in for it).
pub fn layers(
    max_uri_bytes: usize,
    trusted_proxies: Vec<IpNetwork>,
    guard: Guard,
    metrics: Arc<Metrics>,
) -> ServiceBuilder<Layers> {
    ServiceBuilder::new()
        .layer(RequestIdLayer)
        .layer(AdmissionLayer::new(max_uri_bytes, trusted_proxies))
        .layer(AccessLogLayer::new(metrics))
        .layer(RescueLayer)
        .layer(ValidateLayer::new(guard))
}
