//! Reading one value: durations, networks, addresses, URLs.

use std::time::Duration;

use http::Uri;
use ipnetwork::IpNetwork;

use crate::nova::policy::normalise;

/// `250ms`, `10s`, `2m`, `1h`, or several of them added up (`1m30s`);
/// zero is refused (it would make every call fail).
pub fn duration(s: &str) -> Option<Duration> {
    let mut rest = s;
    let mut total = Duration::ZERO;
    if rest.is_empty() {
        return None;
    }
    while !rest.is_empty() {
        let digits = rest.find(|c: char| !c.is_ascii_digit())?;
        if digits == 0 {
            return None;
        }
        let n: u64 = rest[..digits].parse().ok()?;
        rest = &rest[digits..];
        let unit_len = rest
            .find(|c: char| c.is_ascii_digit())
            .unwrap_or(rest.len());
        let part = match &rest[..unit_len] {
            "ms" => Duration::from_millis(n),
            "s" => Duration::from_secs(n),
            "m" => Duration::from_secs(n.checked_mul(60)?),
            "h" => Duration::from_secs(n.checked_mul(3600)?),
            _ => return None,
        };
        total = total.checked_add(part)?;
        rest = &rest[unit_len..];
    }
    (!total.is_zero()).then_some(total)
}

/// Comma-separated CIDRs (blanks around them ignored).
pub fn cidrs(s: &str) -> Option<Vec<IpNetwork>> {
    s.split(',')
        .map(str::trim)
        .filter(|part| !part.is_empty())
        .map(|part| part.parse::<IpNetwork>().ok())
        .collect()
}

/// CIDRs all of one family (`v4` or not), host bits cleared.
pub fn family_cidrs(s: &str, v4: bool) -> Option<Vec<IpNetwork>> {
    let nets = cidrs(s)?;
    nets.iter()
        .all(|n| n.is_ipv4() == v4)
        .then(|| nets.into_iter().map(normalise).collect())
}

pub fn boolean(s: &str) -> Option<bool> {
    match s {
        "true" => Some(true),
        "false" => Some(false),
        _ => None,
    }
}

/// `scheme://user:pass@host/...` → `scheme://****@host/...`, in any value.
pub fn mask_userinfo(value: &str) -> String {
    let Some(scheme_end) = value.find("://") else {
        return value.to_owned();
    };
    let rest = &value[scheme_end + 3..];
    let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    match rest[..authority_end].rfind('@') {
        Some(at) => format!(
            "{}****{}",
            &value[..scheme_end + 3],
            &rest[at..] // from the '@' on
        ),
        None => value.to_owned(),
    }
}

/// Nova's URL: scheme and authority (no user, no query), and a base path
/// without a trailing `/`.
pub fn upstream_url(s: &str) -> Option<(Uri, String)> {
    let uri: Uri = s.parse().ok()?;
    let scheme = uri.scheme_str()?;
    if !matches!(scheme, "http" | "https") || uri.host().is_none() || uri.query().is_some() {
        return None;
    }
    let base_path = uri.path().trim_end_matches('/').to_owned();
    let authority = uri.authority()?.clone();
    if authority.as_str().contains('@') {
        return None;
    }
    let uri = Uri::builder()
        .scheme(scheme)
        .authority(authority)
        .path_and_query("/")
        .build()
        .ok()?;
    Some((uri, base_path))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_alone_and_added_up() {
        assert_eq!(duration("10s"), Some(Duration::from_secs(10)));
        assert_eq!(duration("1h"), Some(Duration::from_secs(3600)));
        assert_eq!(duration("250ms"), Some(Duration::from_millis(250)));
        assert_eq!(duration("1m30s"), Some(Duration::from_secs(90)));
        assert_eq!(
            duration("1h2m3s4ms"),
            Some(Duration::from_millis(3_723_004))
        );
        assert_eq!(duration("0s1ms"), Some(Duration::from_millis(1)));
        for bad in [
            "",
            "10",
            "s",
            "1.5s",
            "10 s",
            "0ms",
            "0m0s",
            "-1s",
            "1m30",
            "m30s",
            "1x",
            "99999999999999999999s",
            "5124095576030432h",
        ] {
            assert_eq!(duration(bad), None, "{bad}");
        }
    }

    #[test]
    fn masked_userinfo() {
        assert_eq!(
            mask_userinfo("http://u:p@nova:8774/x@y"),
            "http://****@nova:8774/x@y"
        );
        assert_eq!(
            mask_userinfo("http://nova:8774/a@b"),
            "http://nova:8774/a@b"
        );
        assert_eq!(mask_userinfo("info"), "info");
    }
}
