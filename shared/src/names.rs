//! Kubernetes object names: `DeploymentName` (DNS-1123 subdomain),
//! `Namespace` and `ContainerName` (DNS-1123 labels), and `Replicas`.
//!
//! Each type's constructor is the only way in, and deserialisation goes
//! through it, so a value of these types is valid wherever it is found.

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize};

use crate::text::{describe, odd_characters, quote};

/// Why a name was refused. The message says what was wrong and what is allowed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NameError {
    #[error("{what} must not be empty; {rule}")]
    Empty {
        what: &'static str,
        rule: &'static str,
    },
    #[error("{what} is {len} characters long, at most {max} are allowed")]
    TooLong {
        what: &'static str,
        len: usize,
        max: usize,
    },
    #[error("{what} contains {found}; {rule}")]
    InvalidCharacter {
        what: &'static str,
        found: String,
        rule: &'static str,
    },
    /// The name is in the wrong case: Kubernetes names are lowercase.
    #[error("{what} contains the uppercase letter '{letter}'; {rule}")]
    Uppercase {
        what: &'static str,
        letter: char,
        rule: &'static str,
    },
    #[error("{what} must start and end with a lowercase letter or digit; {rule}")]
    BadEdge {
        what: &'static str,
        rule: &'static str,
    },
}

const LABEL_RULE: &str = "use lowercase letters, digits and '-', starting and ending with a letter or digit (e.g. 'web-2')";
const SUBDOMAIN_RULE: &str = "use lowercase letters, digits, '-' and '.', each dot-separated part starting and ending with a letter or digit (e.g. 'web' or 'api.v2')";

/// Checks one DNS-1123 label: `[a-z0-9]([-a-z0-9]*[a-z0-9])?`.
fn check_label(
    what: &'static str,
    s: &str,
    max: usize,
    rule: &'static str,
) -> Result<(), NameError> {
    if s.is_empty() {
        return Err(NameError::Empty { what, rule });
    }
    if let Some(c) = s
        .chars()
        .find(|c| !(c.is_ascii_lowercase() || c.is_ascii_digit() || *c == '-'))
    {
        if c.is_ascii_uppercase() {
            return Err(NameError::Uppercase {
                what,
                letter: c,
                rule,
            });
        }
        return Err(NameError::InvalidCharacter {
            what,
            found: describe(c),
            rule,
        });
    }
    if s.len() > max {
        return Err(NameError::TooLong {
            what,
            len: s.len(),
            max,
        });
    }
    if s.starts_with('-') || s.ends_with('-') {
        return Err(NameError::BadEdge { what, rule });
    }
    Ok(())
}

/// Checks a DNS-1123 subdomain: labels joined by single dots, at most 253 characters.
fn check_subdomain(what: &'static str, s: &str) -> Result<(), NameError> {
    const MAX: usize = 253;
    if s.is_empty() {
        return Err(NameError::Empty {
            what,
            rule: SUBDOMAIN_RULE,
        });
    }
    if s.len() > MAX {
        return Err(NameError::TooLong {
            what,
            len: s.chars().count(),
            max: MAX,
        });
    }
    for label in s.split('.') {
        if label.is_empty() {
            let found = if s.contains("..") {
                "'..'".to_owned()
            } else {
                "a '.' at the start or end".to_owned()
            };
            return Err(NameError::InvalidCharacter {
                what,
                found,
                rule: SUBDOMAIN_RULE,
            });
        }
        check_label(what, label, MAX, SUBDOMAIN_RULE)?;
    }
    Ok(())
}

macro_rules! validated_name {
    ($(#[$doc:meta])* $name:ident, $check:expr) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
        #[serde(transparent)]
        pub struct $name(String);

        impl $name {
            /// Validates `s`; the only way to make one.
            pub fn parse(s: &str) -> Result<Self, NameError> {
                let check: fn(&str) -> Result<(), NameError> = $check;
                check(s)?;
                Ok(Self(s.to_owned()))
            }

            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl AsRef<str> for $name {
            fn as_ref(&self) -> &str {
                &self.0
            }
        }

        impl std::str::FromStr for $name {
            type Err = NameError;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                Self::parse(s)
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let s = String::deserialize(d)?;
                Self::parse(&s).map_err(serde::de::Error::custom)
            }
        }
    };
}

validated_name!(
    /// A Deployment's name: a DNS-1123 subdomain of at most 253 characters.
    DeploymentName,
    |s| check_subdomain("a deployment name", s)
);

validated_name!(
    /// A namespace: a DNS-1123 label of at most 63 characters.
    Namespace,
    |s| check_label("a namespace", s, 63, LABEL_RULE)
);

validated_name!(
    /// A container's name inside a pod template: a DNS-1123 label.
    ContainerName,
    |s| check_label("a container name", s, 63, LABEL_RULE)
);

impl Namespace {
    /// The namespace used when neither the command nor the configuration names one.
    pub fn default_namespace() -> Self {
        Self("default".to_owned())
    }
}

/// Why a replica count was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReplicasError {
    #[error("replicas must be a whole number from 0 to {max}, got '{}'{} (e.g. 'scale web to 3')", quote(.got), odd_characters(.got))]
    NotANumber { got: String, max: u32 },
    #[error("replicas must be from 0 to {max}, got '{}'", quote(.got))]
    OutOfRange { got: String, max: u32 },
    #[error("replicas is the count to have, not a change to it; got '{}' (e.g. 'scale web to 5')", quote(.got))]
    Relative { got: String },
    /// "007", "00": a stray zero could as well be a missing digit.
    #[error("replicas is written without leading zeros, got '{}' (e.g. 'scale web to 5')", quote(.got))]
    LeadingZero { got: String },
}

/// A replica count within `0..=max`, where `max` comes from the policy.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(transparent)]
pub struct Replicas(u32);

impl Replicas {
    /// The largest count Kubernetes itself accepts (`spec.replicas` is an int32).
    pub const KUBERNETES_MAX: u32 = i32::MAX as u32;

    pub fn new(n: i128, max: u32) -> Result<Self, ReplicasError> {
        Self::within(n, max, || n.to_string())
    }

    /// `n` if it is within `max`; otherwise an error that shows `got`.
    fn within(n: i128, max: u32, got: impl FnOnce() -> String) -> Result<Self, ReplicasError> {
        let max = max.min(Self::KUBERNETES_MAX);
        match u32::try_from(n) {
            Ok(v) if v <= max => Ok(Self(v)),
            _ => Err(ReplicasError::OutOfRange { got: got(), max }),
        }
    }

    /// Parses a count as a person typed it: decimal digits, perhaps after a
    /// '-' (refused as out of range); a '+', or a '-' before zero ("-0",
    /// which would scale to nothing), reads as a change, and is refused.
    pub fn parse(s: &str, max: u32) -> Result<Self, ReplicasError> {
        let not_a_number = || ReplicasError::NotANumber {
            got: s.to_owned(),
            max: max.min(Self::KUBERNETES_MAX),
        };
        if s.starts_with('+') {
            return Err(ReplicasError::Relative { got: s.to_owned() });
        }
        let digits = s.strip_prefix('-').unwrap_or(s);
        if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
            return Err(not_a_number());
        }
        if digits.len() < s.len() && digits.bytes().all(|b| b == b'0') {
            return Err(ReplicasError::Relative { got: s.to_owned() });
        }
        if digits.len() > 1 && digits.starts_with('0') {
            return Err(ReplicasError::LeadingZero { got: s.to_owned() });
        }
        // Longer than any i128: certainly out of range, whatever the sign.
        let n: i128 = match s.parse() {
            Ok(n) => n,
            Err(_) if s.starts_with('-') => i128::MIN,
            Err(_) => i128::MAX,
        };
        // What was typed, not the number it saturated to.
        Self::within(n, max, || s.to_owned())
    }

    pub fn get(self) -> u32 {
        self.0
    }
}

impl fmt::Display for Replicas {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

impl<'de> Deserialize<'de> for Replicas {
    /// On the wire only Kubernetes' own bound applies: the policy bound was
    /// checked when the command was accepted.
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let n = i64::deserialize(d)?;
        Self::new(n.into(), Self::KUBERNETES_MAX).map_err(serde::de::Error::custom)
    }
}

/// A name pattern, as policies and `list` use them: `*` matches any run
/// of characters, `?` one; everything else itself.
pub fn glob(pattern: &str, s: &str) -> bool {
    let (p, s): (Vec<char>, Vec<char>) = (pattern.chars().collect(), s.chars().collect());
    let (mut pi, mut si) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while si < s.len() {
        if pi < p.len() && (p[pi] == '?' || p[pi] == s[si]) {
            pi += 1;
            si += 1;
        } else if pi < p.len() && p[pi] == '*' {
            star = Some((pi, si));
            pi += 1;
        } else if let Some((sp, ss)) = star {
            pi = sp + 1;
            si = ss + 1;
            star = Some((sp, ss + 1));
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|c| *c == '*')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn globs() {
        for (p, s, want) in [
            ("*", "", true),
            ("*", "web", true),
            ("web*", "web", true),
            ("web*", "web-2", true),
            ("web*", "api", false),
            ("team-*", "team-a", true),
            ("team-*", "team", false),
            ("a?c", "abc", true),
            ("a?c", "ac", false),
            ("*-db", "orders-db", true),
            ("*-db", "orders-dbx", false),
            ("prod", "prod", true),
            ("prod", "production", false),
        ] {
            assert_eq!(glob(p, s), want, "{p:?} {s:?}");
        }
    }

    #[test]
    fn namespaces_at_the_edges() {
        let ok = ["default", "a", "kube-system", "0", "a1-b2", &"a".repeat(63)];
        for s in ok {
            assert!(Namespace::parse(s).is_ok(), "{s:?} should be accepted");
        }
        let bad = [
            ("", "must not be empty"),
            ("Default", "uppercase letter 'D'"),
            ("-web", "start and end"),
            ("web-", "start and end"),
            ("a.b", "'.'"),
            ("a..b", "'.'"),
            ("we b", "a space"),
            ("web/x", "'/'"),
            ("web;rm", "';'"),
            ("we\u{200b}b", "U+200B"),
            ("wеb", "'е' (U+0435)"), // Cyrillic e
            (&"a".repeat(64), "64 characters long, at most 63"),
        ];
        for (s, why) in bad {
            let err = Namespace::parse(s).expect_err(s).to_string();
            assert!(err.contains(why), "{s:?}: {err:?} should mention {why:?}");
        }
    }

    #[test]
    fn deployment_names_at_the_edges() {
        let dotted_253 = format!(
            "{}.{}.{}.{}",
            "a".repeat(63),
            "b".repeat(63),
            "c".repeat(63),
            "d".repeat(61)
        );
        assert_eq!(dotted_253.len(), 253);
        let ok = [
            "web",
            "nginx-deployment",
            "api.v2",
            "a",
            "1.2.3",
            &dotted_253,
            &"a".repeat(253),
        ];
        for s in ok {
            assert!(DeploymentName::parse(s).is_ok(), "{s:?} should be accepted");
        }
        let bad = [
            ("", "must not be empty"),
            ("Web", "uppercase letter 'W'"),
            ("-web", "start and end"),
            ("web-", "start and end"),
            ("web.-x", "start and end"),
            ("a..b", "'..'"),
            (".web", "at the start or end"),
            ("web.", "at the start or end"),
            ("../etc", "'..'"),
            ("web/prod", "'/'"),
            ("web app", "a space"),
            ("web_app", "'_'"),
            ("$(reboot)", "'$'"),
            ("<@all>", "'<'"),
            ("we\u{200d}b", "U+200D"),
            (&"a".repeat(254), "254 characters long, at most 253"),
        ];
        for (s, why) in bad {
            let err = DeploymentName::parse(s).expect_err(s).to_string();
            assert!(err.contains(why), "{s:?}: {err:?} should mention {why:?}");
        }
    }

    #[test]
    fn names_deserialise_only_when_valid() {
        let ok: DeploymentName = serde_json::from_str("\"web\"").expect("valid");
        assert_eq!(ok.as_str(), "web");
        let err = serde_json::from_str::<DeploymentName>("\"Web\"").expect_err("uppercase");
        assert!(err.to_string().contains("uppercase"));
    }

    #[test]
    fn replicas_at_the_edges() {
        assert_eq!(Replicas::parse("0", 10).map(Replicas::get), Ok(0));
        assert_eq!(Replicas::parse("10", 10).map(Replicas::get), Ok(10));
        // "+3" reads as three more: refused, not taken as three.
        for relative in ["+3", "+0", "-0", "-00"] {
            assert!(
                matches!(
                    Replicas::parse(relative, 10),
                    Err(ReplicasError::Relative { .. })
                ),
                "{relative}"
            );
        }
        let out_of_range = |got: &str| {
            Err(ReplicasError::OutOfRange {
                got: got.to_owned(),
                max: 10,
            })
        };
        assert_eq!(Replicas::parse("11", 10), out_of_range("11"));
        assert_eq!(Replicas::parse("-1", 10), out_of_range("-1"));
        // Past any integer: what was typed is quoted (short), not a
        // saturated value.
        let huge = "9".repeat(60);
        let said = |s: &str| Replicas::parse(s, 10).expect_err(s).to_string();
        assert!(
            said(&huge).ends_with(&format!("got '{}…'", "9".repeat(40))),
            "{}",
            said(&huge)
        );
        assert!(
            said(&format!("-{huge}")).ends_with(&format!("got '-{}…'", "9".repeat(39))),
            "{}",
            said(&format!("-{huge}"))
        );
        assert_eq!(Replicas::parse("25", 10), out_of_range("25"));
        // A stray zero could as well be a missing digit ("00", "05").
        for s in ["00", "007", "05", "-01"] {
            assert_eq!(
                Replicas::parse(s, 10),
                Err(ReplicasError::LeadingZero { got: s.to_owned() }),
                "{s}"
            );
        }
        for s in ["", "three", "3.5", "1e3", " 3", "0x10", "-", "٣"] {
            let err = Replicas::parse(s, 10).expect_err(s);
            assert!(err.to_string().contains("from 0 to 10"), "{s:?}: {err}");
        }
        // The policy cannot raise the bound past what Kubernetes accepts.
        assert!(Replicas::new(i128::from(i32::MAX) + 1, u32::MAX).is_err());
        assert!(serde_json::from_str::<Replicas>("-1").is_err());
        assert!(serde_json::from_str::<Replicas>("4294967296").is_err());
        assert_eq!(
            serde_json::from_str::<Replicas>("7")
                .map(Replicas::get)
                .ok(),
            Some(7)
        );
    }
}
