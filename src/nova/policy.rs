//! The operator's access-IP policy: networks that `accessIPv4` / `accessIPv6`
//! may or may not name. A plain value handed to the validator; it is judged
//! after Nova's own checks, on the address Nova would store.
//!
//! Semantics, for one address and the lists of its family:
//!
//! 1. if it is in any network of the deny list, it is refused (deny wins);
//! 2. else, if the allow list is not empty and the address is in none of
//!    its networks, it is refused;
//! 3. else it is accepted.
//!
//! With `mapped_as_v4`, an IPv4-mapped IPv6 address (`::ffff:a.b.c.d`) is
//! judged as the IPv4 address `a.b.c.d`, by the IPv4 lists only.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use ipnetwork::IpNetwork;

use super::Rule;

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AccessIpPolicy {
    pub ipv4_deny: Vec<IpNetwork>,
    pub ipv4_allow: Vec<IpNetwork>,
    pub ipv6_deny: Vec<IpNetwork>,
    pub ipv6_allow: Vec<IpNetwork>,
    /// IPv4-mapped IPv6 addresses are judged as IPv4 addresses.
    pub mapped_as_v4: bool,
}

/// Why an address is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// It is in this denied network.
    Denied(IpNetwork),
    /// The allow list is not empty and holds no network with the address.
    NotAllowed,
}

impl Refusal {
    /// The rule the address broke.
    pub fn rule(self) -> Rule {
        match self {
            Refusal::Denied(_) => Rule::AccessIpDenied,
            Refusal::NotAllowed => Rule::AccessIpNotAllowed,
        }
    }
}

impl AccessIpPolicy {
    /// No list set: every address is accepted.
    pub fn is_empty(&self) -> bool {
        self.ipv4_deny.is_empty()
            && self.ipv4_allow.is_empty()
            && self.ipv6_deny.is_empty()
            && self.ipv6_allow.is_empty()
    }

    pub fn judge_v4(&self, addr: Ipv4Addr) -> Result<(), Refusal> {
        judge(IpAddr::V4(addr), &self.ipv4_deny, &self.ipv4_allow)
    }

    pub fn judge_v6(&self, addr: Ipv6Addr) -> Result<(), Refusal> {
        match addr.to_ipv4_mapped() {
            Some(v4) if self.mapped_as_v4 => self.judge_v4(v4),
            _ => judge(IpAddr::V6(addr), &self.ipv6_deny, &self.ipv6_allow),
        }
    }
}

fn judge(addr: IpAddr, deny: &[IpNetwork], allow: &[IpNetwork]) -> Result<(), Refusal> {
    if let Some(net) = deny.iter().find(|n| n.contains(addr)) {
        return Err(Refusal::Denied(*net));
    }
    if !allow.is_empty() && !allow.iter().any(|n| n.contains(addr)) {
        return Err(Refusal::NotAllowed);
    }
    Ok(())
}

/// `net` with its host bits cleared, as it is shown in messages
/// (`127.0.0.1/8` → `127.0.0.0/8`).
pub fn normalise(net: IpNetwork) -> IpNetwork {
    IpNetwork::new(net.network(), net.prefix()).unwrap_or(net)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn nets(s: &[&str]) -> Vec<IpNetwork> {
        s.iter().map(|n| normalise(n.parse().unwrap())).collect()
    }

    #[test]
    fn deny_wins_over_allow_and_allow_restricts() {
        let p = AccessIpPolicy {
            ipv4_deny: nets(&["127.0.0.0/8", "10.1.0.0/16"]),
            ipv4_allow: nets(&["10.0.0.0/8"]),
            ipv6_deny: nets(&["fe80::/10"]),
            ipv6_allow: vec![],
            mapped_as_v4: false,
        };
        let v4 = |s: &str| p.judge_v4(s.parse().unwrap());
        let v6 = |s: &str| p.judge_v6(s.parse().unwrap());
        assert_eq!(v4("10.2.3.4"), Ok(()));
        assert_eq!(
            v4("10.1.3.4"),
            Err(Refusal::Denied(nets(&["10.1.0.0/16"])[0]))
        );
        assert_eq!(
            v4("127.0.0.1"),
            Err(Refusal::Denied(nets(&["127.0.0.0/8"])[0]))
        );
        assert_eq!(v4("8.8.8.8"), Err(Refusal::NotAllowed));
        assert_eq!(v6("fe80::1"), Err(Refusal::Denied(nets(&["fe80::/10"])[0])));
        assert_eq!(v6("2001:db8::1"), Ok(()));
        // Not counted as IPv4: the IPv6 lists judge it.
        assert_eq!(v6("::ffff:127.0.0.1"), Ok(()));
        let p = AccessIpPolicy {
            mapped_as_v4: true,
            ..p
        };
        assert_eq!(
            p.judge_v6("::ffff:127.0.0.1".parse().unwrap()),
            Err(Refusal::Denied(nets(&["127.0.0.0/8"])[0]))
        );
        assert_eq!(
            p.judge_v6("::ffff:8.8.8.8".parse().unwrap()),
            Err(Refusal::NotAllowed)
        );
        assert_eq!(p.judge_v6("::ffff:10.9.9.9".parse().unwrap()), Ok(()));
        // IPv4-compatible addresses are not mapped ones.
        assert_eq!(p.judge_v6("::127.0.0.1".parse().unwrap()), Ok(()));
    }

    #[test]
    fn empty_policy_accepts_everything() {
        let p = AccessIpPolicy::default();
        assert!(p.is_empty());
        assert_eq!(p.judge_v4(Ipv4Addr::LOCALHOST), Ok(()));
        assert_eq!(p.judge_v6(Ipv6Addr::LOCALHOST), Ok(()));
        assert_eq!(
            normalise("127.0.0.1/8".parse().unwrap()).to_string(),
            "127.0.0.0/8"
        );
    }
}
