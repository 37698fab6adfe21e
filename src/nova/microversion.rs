//! Microversion headers as Nova (microversion-parse) reads them.

use std::fmt;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Microversion {
    pub major: u16,
    pub minor: u16,
}

impl Microversion {
    pub const MIN: Microversion = Microversion { major: 2, minor: 1 };
    pub const fn new(major: u16, minor: u16) -> Self {
        Microversion { major, minor }
    }
}

impl fmt::Display for Microversion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}", self.major, self.minor)
    }
}

/// Why a request's version is left for Nova to answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VersionError {
    /// Nova answers 400.
    Malformed,
    /// Nova answers 406 (or, above our configured maximum, may accept it).
    OutOfRange,
}

/// The version Nova would use. `standard` holds every `OpenStack-API-Version`
/// value, `legacy` every `X-OpenStack-Nova-API-Version` value, each list in
/// the order received. No header → 2.1; `latest` → `max`.
pub fn requested(
    standard: &[&str],
    legacy: &[&str],
    max: Microversion,
) -> Result<Microversion, VersionError> {
    let _ = (standard, legacy, max);
    unimplemented!("microversion")
}

impl std::str::FromStr for Microversion {
    type Err = VersionError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let (a, b) = s.split_once('.').ok_or(VersionError::Malformed)?;
        Ok(Microversion::new(
            a.parse().map_err(|_| VersionError::Malformed)?,
            b.parse().map_err(|_| VersionError::Malformed)?,
        ))
    }
}
