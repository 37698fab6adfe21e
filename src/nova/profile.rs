//! Which Nova nova-guard stands in front of: its release (schemas, maximum
//! microversion, the jsonschema it is deployed with) and the Python that runs
//! it (whose Unicode database decides Nova's printable class and `repr()`).
//!
//! What differs between releases, for the bodies nova-guard judges
//! (measured against each release's Nova and upper-constraints):
//!
//! | release | Nova | max µv | jsonschema | minLength 1 message | string keywords |
//! |---|---|---|---|---|---|
//! | 2024.1 | 29.x | 2.96 | 4.19.2 | `is too short` | minLength, maxLength, then format/pattern |
//! | 2025.1 | 31.x | 2.100 | 4.23.0 | `should be non-empty` | minLength, maxLength, then format/pattern |
//! | 2025.2 | 32.x | 2.100 | 4.25.0 | `should be non-empty` | format/pattern, then minLength, maxLength |
//! | 2026.1 | 33.x | 2.103 | 4.26.0 | `should be non-empty` | format/pattern, then minLength, maxLength |
//! | 2026.2 | 34.x | 2.104 | 4.26.0 | `should be non-empty` | format/pattern, then minLength, maxLength |
//!
//! jsonschema reports the first failing keyword in the schema's own key
//! order, and Nova 32 reordered the keys of its string parameter types, so
//! e.g. a 300-space name is "too long" before 2025.2 and an invalid name
//! from then on. The update schema with `pinned_availability_zone`
//! (`update_v2104`) exists only in 2026.2; before it, `update_v294` serves
//! 2.94 and every later version.

use std::fmt;
use std::str::FromStr;

use super::unicode::Unicode;
use super::Microversion;

/// An OpenStack release of Nova.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Release {
    /// 2024.1 (Caracal), Nova 29.
    R2024_1,
    /// 2025.1 (Epoxy), Nova 31.
    R2025_1,
    /// 2025.2 (Flamingo), Nova 32.
    R2025_2,
    /// 2026.1 (Gazpacho), Nova 33.
    R2026_1,
    /// 2026.2, Nova 34.
    R2026_2,
}

impl Release {
    pub const ALL: [Release; 5] = [
        Release::R2024_1,
        Release::R2025_1,
        Release::R2025_2,
        Release::R2026_1,
        Release::R2026_2,
    ];
    pub const NEWEST: Release = Release::R2026_2;

    pub fn as_str(self) -> &'static str {
        match self {
            Release::R2024_1 => "2024.1",
            Release::R2025_1 => "2025.1",
            Release::R2025_2 => "2025.2",
            Release::R2026_1 => "2026.1",
            Release::R2026_2 => "2026.2",
        }
    }

    /// `_MAX_API_VERSION` of the release.
    pub fn max_microversion(self) -> Microversion {
        let minor = match self {
            Release::R2024_1 => 96,
            Release::R2025_1 | Release::R2025_2 => 100,
            Release::R2026_1 => 103,
            Release::R2026_2 => 104,
        };
        Microversion::new(2, minor)
    }

    /// The Python matched unless another is named: 3.11, whose Unicode
    /// database the contract fixes, and which every supported release runs
    /// on. (Each release's reference platform, the distribution its
    /// integrated tests run on, is [`Release::platform_python`].)
    pub fn default_python(self) -> Python {
        Python::Py3_11
    }

    /// The Python of the release's reference platform: Ubuntu 22.04 (3.10)
    /// for 2024.1, Ubuntu 24.04 (3.12) after.
    pub fn platform_python(self) -> Python {
        match self {
            Release::R2024_1 => Python::Py3_10,
            _ => Python::Py3_12,
        }
    }

    /// The oldest Python the release runs on (Nova's `python_requires`),
    /// among those nova-guard knows.
    pub fn min_python(self) -> Python {
        match self {
            Release::R2026_2 => Python::Py3_11,
            _ => Python::Py3_10,
        }
    }

    /// Whether Nova of this release runs on `python`.
    pub fn supports(self, python: Python) -> bool {
        python >= self.min_python()
    }

    /// The Pythons the release runs on.
    pub fn pythons(self) -> impl Iterator<Item = Python> {
        Python::ALL.into_iter().filter(move |p| self.supports(*p))
    }

    /// jsonschema's `minLength` message when the minimum is 1: jsonschema
    /// 4.21 special-cased it; 2024.1 is deployed with 4.19.2.
    pub(crate) fn non_empty_message(self) -> &'static str {
        match self {
            Release::R2024_1 => " is too short",
            _ => " should be non-empty",
        }
    }

    /// Whether string properties check minLength and maxLength before their
    /// format or pattern (the schemas' key order before Nova 32).
    pub(crate) fn lengths_first(self) -> bool {
        self < Release::R2025_2
    }

    /// Whether 2.104's update schema (`pinned_availability_zone`) exists.
    pub(crate) fn has_update_v2104(self) -> bool {
        self >= Release::R2026_2
    }
}

impl fmt::Display for Release {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A release name that is not one of [`Release::ALL`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnknownRelease(pub String);

impl fmt::Display for UnknownRelease {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "unknown Nova release {:?}: expected one of ", self.0)?;
        list(f, Release::ALL.iter().map(|r| r.as_str()))
    }
}

impl std::error::Error for UnknownRelease {}

impl FromStr for Release {
    type Err = UnknownRelease;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Release::ALL
            .into_iter()
            .find(|r| r.as_str() == s)
            .ok_or_else(|| UnknownRelease(s.to_owned()))
    }
}

/// A CPython minor version that runs Nova.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Python {
    Py3_10,
    Py3_11,
    Py3_12,
    Py3_13,
}

impl Python {
    pub const ALL: [Python; 4] = [
        Python::Py3_10,
        Python::Py3_11,
        Python::Py3_12,
        Python::Py3_13,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Python::Py3_10 => "3.10",
            Python::Py3_11 => "3.11",
            Python::Py3_12 => "3.12",
            Python::Py3_13 => "3.13",
        }
    }

    /// The Unicode database the interpreter ships (`unicodedata.unidata_version`).
    pub fn unicode(self) -> Unicode {
        match self {
            Python::Py3_10 => Unicode::V13_0,
            Python::Py3_11 => Unicode::V14_0,
            Python::Py3_12 => Unicode::V15_0,
            Python::Py3_13 => Unicode::V15_1,
        }
    }
}

impl fmt::Display for Python {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A Python version that is not one of [`Python::ALL`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnknownPython(pub String);

impl fmt::Display for UnknownPython {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "unknown Python version {:?}: expected one of ", self.0)?;
        list(f, Python::ALL.iter().map(|p| p.as_str()))
    }
}

impl std::error::Error for UnknownPython {}

impl FromStr for Python {
    type Err = UnknownPython;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Python::ALL
            .into_iter()
            .find(|p| p.as_str() == s)
            .ok_or_else(|| UnknownPython(s.to_owned()))
    }
}

fn list<'a>(f: &mut fmt::Formatter<'_>, items: impl Iterator<Item = &'a str>) -> fmt::Result {
    for (i, item) in items.enumerate() {
        if i > 0 {
            f.write_str(", ")?;
        }
        f.write_str(item)?;
    }
    Ok(())
}

/// The Nova a verdict is for: what the check functions take.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Profile {
    pub release: Release,
    pub python: Python,
}

impl Profile {
    pub const fn new(release: Release, python: Python) -> Self {
        Profile { release, python }
    }

    /// `release` on the Python matched by default.
    pub fn of(release: Release) -> Self {
        Profile::new(release, release.default_python())
    }

    pub fn unicode(self) -> Unicode {
        self.python.unicode()
    }
}

impl Default for Profile {
    /// The newest release on the Python matched by default.
    fn default() -> Self {
        Profile::of(Release::NEWEST)
    }
}

impl fmt::Display for Profile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Nova {} on Python {}", self.release, self.python)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for r in Release::ALL {
            assert_eq!(r.as_str().parse::<Release>(), Ok(r));
            assert!(r.supports(r.default_python()), "{r}");
        }
        for p in Python::ALL {
            assert_eq!(p.as_str().parse::<Python>(), Ok(p));
        }
    }

    #[test]
    fn unknown_names_list_the_known_ones() {
        let e = "2023.1".parse::<Release>().unwrap_err().to_string();
        assert_eq!(
            e,
            "unknown Nova release \"2023.1\": expected one of 2024.1, 2025.1, 2025.2, 2026.1, 2026.2"
        );
        let e = "3.9".parse::<Python>().unwrap_err().to_string();
        assert_eq!(
            e,
            "unknown Python version \"3.9\": expected one of 3.10, 3.11, 3.12, 3.13"
        );
        assert!(" 2024.1".parse::<Release>().is_err());
        assert!("3.1".parse::<Python>().is_err());
    }

    #[test]
    fn release_facts() {
        let max: Vec<String> = Release::ALL
            .iter()
            .map(|r| r.max_microversion().to_string())
            .collect();
        assert_eq!(max, ["2.96", "2.100", "2.100", "2.103", "2.104"]);
        assert_eq!(Release::NEWEST, *Release::ALL.last().unwrap());
        assert_eq!(Release::R2024_1.default_python(), Python::Py3_11);
        assert_eq!(Release::R2026_2.default_python(), Python::Py3_11);
        assert_eq!(Release::R2024_1.platform_python(), Python::Py3_10);
        assert_eq!(Release::R2026_2.platform_python(), Python::Py3_12);
        assert!(!Release::R2026_2.supports(Python::Py3_10));
        assert_eq!(Release::R2026_2.pythons().count(), 3);
        assert_eq!(Release::R2024_1.pythons().count(), 4);
        let p = Profile::default();
        assert_eq!(p, Profile::new(Release::R2026_2, Python::Py3_11));
        assert_eq!(p.unicode(), Unicode::V14_0);
        assert_eq!(p.to_string(), "Nova 2026.2 on Python 3.11");
    }
}
