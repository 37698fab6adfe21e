//! Which request targets Nova's router sends to update-server.

/// The API a validated request is addressed to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// `/v2/...`: Nova's legacy-v2 compatible endpoint; microversion headers ignored.
    LegacyV2,
    /// `/v2.1/...`: microversioned.
    V21,
}

/// `Some(mode)` when a PUT to `target` (the request-target as received:
/// origin-form with optional query and fragment, or absolute-form) would be
/// routed by Nova to update-server behind `prefix` (empty, or like `/compute`).
pub fn match_update(prefix: &str, target: &str) -> Option<Mode> {
    let _ = (prefix, target);
    unimplemented!("route")
}
