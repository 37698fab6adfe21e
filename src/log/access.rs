//! The access event: one per exchange, written when its answer has been
//! handed over (or the client went away). It never holds a token, a query
//! string or a body: only the path, the verdict, counts and ids.

use crate::exchange::Exchange;
use crate::metrics::Metrics;
use crate::nova::Mode;

/// Log `x` and count it.
pub fn finish(metrics: &Metrics, x: &Exchange) {
    emit(x);
    metrics.observe(x);
}

fn emit(x: &Exchange) {
    let v = &x.validation;
    let u = &x.upstream;
    let mode = v.api.map(|m| match m {
        Mode::LegacyV2 => "v2",
        Mode::V21 => "v2.1",
    });
    let guarded = v.api.is_some();
    tracing::info!(
        target: "nova_guard::access",
        request_id = x.request_id.as_ref().map(|id| id.as_str()),
        global_request_id = x.global_request_id.as_deref(),
        trace_id = x.trace_id.as_deref(),
        peer = display(x.peer.remote),
        client = display(x.client),
        protocol = x.protocol.as_str(),
        method = x.method.as_ref().map(|m| m.as_str()),
        path = x.path.as_deref(),
        user_agent = x.user_agent.as_deref(),
        mode,
        microversion = v.microversion.map(display),
        operation = guarded.then(|| v.operation.as_str()),
        verdict = v.verdict.as_str(),
        would_status = v.would_status,
        would_rewrite_ipv6 = v.would_rewrite_ipv6,
        status = x.status,
        field = v.field,
        rule = v.rule.map(|r| r.as_str()),
        ipv6_rewritten = v.ipv6_rewritten,
        dropped_headers = (x.dropped_headers > 0).then_some(x.dropped_headers),
        upstream_status = u.status,
        upstream_request_id = u.request_id.as_deref(),
        upstream_ms = u.duration.map(|d| d.as_secs_f64() * 1000.0),
        error = u.error.map(|e| e.as_str()),
        cause = u.cause.as_deref(),
        bytes_in = x.bytes_in,
        bytes_out = x.bytes_out,
        complete = x.complete,
        hung_up = x.hung_up.map(|h| h.as_str()),
        duration_ms = x.start.elapsed().as_secs_f64() * 1000.0,
        "exchange"
    );
}

/// A request hyper refused while reading its head, and answered itself
/// before any layer saw it: 431 for a head over the byte or line limit, 400
/// for one that is not HTTP. Logged and counted here, once, as an exchange
/// with neither method nor path. Other connection errors (the client went
/// away, a timeout) had no request to answer and are not exchanges.
pub fn refused_head(
    metrics: &Metrics,
    peer: crate::exchange::Peer,
    error: &(dyn std::error::Error + 'static),
) {
    use crate::exchange::{Protocol, Rule, ValidationInfo};
    let Some((status, rule)) = crate::error::causes(error)
        .find_map(|c| {
            let e = c.downcast_ref::<hyper::Error>()?;
            Some(if e.is_parse_too_large() {
                Some((431, Rule::HeadTooLarge))
            } else if e.is_parse() {
                Some((400, Rule::MalformedHead))
            } else {
                None
            })
        })
        .flatten()
    else {
        return;
    };
    let mut x = Exchange::new(peer, Protocol::Http11);
    x.status = status;
    x.validation = ValidationInfo::rejected(rule);
    x.complete = true;
    finish(metrics, &x);
}
