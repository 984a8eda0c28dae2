//! `ImageRef`: a container image reference, checked against the grammar of
//! the distribution reference (what registries, kubelets and `docker pull`
//! accept):
//!
//! ```text
//! reference  := name [ ":" tag ] [ "@" digest ]
//! name       := [ domain "/" ] path-component ( "/" path-component )*   (≤ 255)
//! domain     := ( domain-name | "[" ipv6 "]" ) [ ":" port ]
//! path-component := [a-z0-9]+ ( ( "." | "_" | "__" | "-"+ ) [a-z0-9]+ )*
//! tag        := [\w][\w.-]{0,127}
//! digest     := algorithm ":" hex        (sha256: 64, sha384: 96, sha512: 128 lowercase hex)
//! ```
//!
//! No crate was found that implements the bracketed IPv6 form and the
//! registered digest lengths together, so this is written out, with a table of
//! cases in the tests.

use std::fmt;
use std::net::Ipv6Addr;

use serde::{Deserialize, Deserializer, Serialize};

use crate::text::{describe, quote};

const EXAMPLE: &str =
    "e.g. 'registry.example.com:5000/team/web:2.1' or 'nginx@sha256:<64 hex digits>'";

/// Why an image reference was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ImageError {
    #[error("the image reference is empty; {EXAMPLE}")]
    Empty,
    #[error("the image reference contains {0}, which no image reference may contain; {EXAMPLE}")]
    InvalidCharacter(String),
    #[error("the image repository is {0} characters long, at most 255 are allowed")]
    NameTooLong(usize),
    #[error(
        "the image repository '{0}' must be lowercase letters, digits and single '.', '_', '__' or '-' separators between them; {EXAMPLE}"
    )]
    BadPath(String),
    #[error(
        "the registry '{0}' is not a host name, a bracketed IPv6 address or either with a port (1-65535); {EXAMPLE}"
    )]
    BadRegistry(String),
    #[error(
        "the tag '{0}' must be 1 to 128 letters, digits, '_', '.' or '-', not starting with '.' or '-'"
    )]
    BadTag(String),
    #[error(
        "the digest '{0}' must be 'algorithm:hex', e.g. 'sha256:' followed by 64 lowercase hex digits"
    )]
    BadDigest(String),
    #[error("the digest '{0}' has uppercase hex digits; digests are written in lowercase")]
    DigestCase(String),
    #[error(
        "the digest '{digest}' has {got} hex digits, but {algorithm} digests have exactly {want} lowercase hex digits"
    )]
    DigestLength {
        digest: String,
        algorithm: &'static str,
        got: usize,
        want: usize,
    },
}

/// A validated container image reference.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
#[serde(transparent)]
pub struct ImageRef(String);

impl ImageRef {
    pub fn parse(s: &str) -> Result<Self, ImageError> {
        if s.is_empty() {
            return Err(ImageError::Empty);
        }
        // Letters, digits, separators, the registry's port and IPv6
        // brackets, the digest's '@': anything else (a quote around the
        // image, a comma after it) is no part of any reference.
        let allowed = |c: char| c.is_ascii_alphanumeric() || "._-/:@[]+".contains(c);
        if let Some(c) = s.chars().find(|c| !allowed(*c)) {
            return Err(ImageError::InvalidCharacter(describe(c)));
        }
        let (rest, digest) = match s.split_once('@') {
            Some((rest, digest)) => (rest, Some(digest)),
            None => (s, None),
        };
        if let Some(digest) = digest {
            check_digest(digest)?;
        }
        let (name, tag) = split_tag(rest);
        if let Some(tag) = tag {
            check_tag(tag)?;
        }
        check_name(name)?;
        Ok(Self(s.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The repository part, without tag or digest.
    pub fn name(&self) -> &str {
        let rest = self.0.split_once('@').map_or(self.0.as_str(), |(r, _)| r);
        split_tag(rest).0
    }

    pub fn tag(&self) -> Option<&str> {
        let rest = self.0.split_once('@').map_or(self.0.as_str(), |(r, _)| r);
        split_tag(rest).1
    }

    pub fn digest(&self) -> Option<&str> {
        self.0.split_once('@').map(|(_, d)| d)
    }
}

/// A tag follows the last ':' only if no '/' follows it (else it was a port).
fn split_tag(s: &str) -> (&str, Option<&str>) {
    match s.rfind(':') {
        Some(i) if !s[i..].contains('/') => (&s[..i], Some(&s[i + 1..])),
        _ => (s, None),
    }
}

fn check_tag(tag: &str) -> Result<(), ImageError> {
    let word = |c: char| c.is_ascii_alphanumeric() || c == '_';
    let ok = tag.len() <= 128
        && tag.starts_with(word)
        && tag.chars().all(|c| word(c) || c == '.' || c == '-');
    if ok {
        Ok(())
    } else {
        Err(ImageError::BadTag(quote(tag)))
    }
}

fn check_digest(digest: &str) -> Result<(), ImageError> {
    let bad = || ImageError::BadDigest(quote(digest));
    let (algorithm, hex) = digest.split_once(':').ok_or_else(bad)?;
    let algorithm_ok = !algorithm.is_empty()
        && algorithm.split(['+', '.', '_', '-']).all(|part| {
            part.starts_with(|c: char| c.is_ascii_alphabetic())
                && part.chars().all(|c| c.is_ascii_alphanumeric())
        });
    if !algorithm_ok || !hex.chars().all(|c| c.is_ascii_hexdigit()) {
        return Err(bad());
    }
    let registered = [("sha256", 64), ("sha384", 96), ("sha512", 128)];
    match registered.iter().find(|(name, _)| *name == algorithm) {
        Some(&(algorithm, want)) if hex.len() != want => Err(ImageError::DigestLength {
            digest: quote(digest),
            algorithm,
            got: hex.len(),
            want,
        }),
        Some(_) if hex.chars().any(|c| c.is_ascii_uppercase()) => {
            Err(ImageError::DigestCase(quote(digest)))
        }
        // Unregistered algorithms: the grammar asks for at least 128 bits.
        None if hex.len() < 32 => Err(bad()),
        _ => Ok(()),
    }
}

fn check_name(name: &str) -> Result<(), ImageError> {
    if name.len() > 255 {
        return Err(ImageError::NameTooLong(name.len()));
    }
    if name.is_empty() {
        return Err(ImageError::BadPath(quote(name)));
    }
    let all_path = || name.split('/').all(is_path_component);
    // The first component is a registry when it can only be one, or when the
    // rest is a valid path either way.
    if let Some((first, rest)) = name.split_once('/') {
        let looks_like_registry = first.contains(['.', ':', '[']) || first == "localhost";
        if is_domain(first) && rest.split('/').all(is_path_component) {
            return Ok(());
        }
        if looks_like_registry && !first.starts_with('[') && !is_domain(first) {
            return Err(ImageError::BadRegistry(quote(first)));
        }
        if first.starts_with('[') {
            return if is_domain(first) {
                Err(ImageError::BadPath(quote(rest)))
            } else {
                Err(ImageError::BadRegistry(quote(first)))
            };
        }
    }
    if all_path() {
        Ok(())
    } else {
        Err(ImageError::BadPath(quote(name)))
    }
}

/// `[a-z0-9]+ ( ( "." | "_" | "__" | "-"+ ) [a-z0-9]+ )*`
fn is_path_component(s: &str) -> bool {
    let alnum = |b: u8| b.is_ascii_lowercase() || b.is_ascii_digit();
    let bytes = s.as_bytes();
    let (Some(&first), Some(&last)) = (bytes.first(), bytes.last()) else {
        return false;
    };
    if !alnum(first) || !alnum(last) {
        return false;
    }
    bytes
        .split(|&b| alnum(b))
        .filter(|sep| !sep.is_empty())
        .all(|sep| matches!(sep, b"." | b"_" | b"__") || sep.iter().all(|&b| b == b'-'))
}

/// `( domain-name | "[" ipv6 "]" ) [ ":" port ]`
fn is_domain(s: &str) -> bool {
    let (host, port) = if let Some(inner) = s.strip_prefix('[') {
        let Some((addr, after)) = inner.split_once(']') else {
            return false;
        };
        if addr.parse::<Ipv6Addr>().is_err() {
            return false;
        }
        match after {
            "" => return true,
            _ => match after.strip_prefix(':') {
                Some(port) => (None, Some(port)),
                None => return false,
            },
        }
    } else {
        match s.split_once(':') {
            Some((host, port)) => (Some(host), Some(port)),
            None => (Some(s), None),
        }
    };
    let host_ok = host.is_none_or(|h| !h.is_empty() && h.split('.').all(is_domain_component));
    let port_ok = port.is_none_or(|p| {
        p.bytes().all(|b| b.is_ascii_digit()) && p.parse::<u16>().is_ok_and(|n| n > 0)
    });
    host_ok && port_ok
}

/// `[a-zA-Z0-9] ( [a-zA-Z0-9-]* [a-zA-Z0-9] )?`
fn is_domain_component(s: &str) -> bool {
    !s.is_empty()
        && !s.starts_with('-')
        && !s.ends_with('-')
        && s.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
}

impl fmt::Display for ImageRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::str::FromStr for ImageRef {
    type Err = ImageError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

impl<'de> Deserialize<'de> for ImageRef {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Self::parse(&s).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SHA: &str = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

    #[test]
    fn accepts_valid_references() {
        let tag128 = format!("nginx:{}", "a".repeat(128));
        let cases = [
            "nginx",
            "nginx:1.21",
            "library/nginx:latest",
            "registry/web:2.1",
            "registry.example.com/team/web:2.1",
            "registry.example.com:5000/team/web:2.1",
            "localhost:5000/web",
            "localhost/web",
            "[::1]:5000/web:1",
            "[2001:db8::1]/web",
            "192.168.1.10:443/web:v1",
            "Registry.Example.COM/web",
            "my_org/web__x/a.b-c--d:_tag",
            "web:V1.2-RC_3",
            &tag128,
            &format!("nginx@sha256:{SHA}"),
            &format!("nginx:1.21@sha256:{SHA}"),
            &format!("web@sha512:{}", "a".repeat(128)),
            &format!("web@multihash+base58:{}", "0".repeat(32)),
        ];
        for s in cases {
            let img = ImageRef::parse(s).unwrap_or_else(|e| panic!("{s:?}: {e}"));
            assert_eq!(img.as_str(), s);
        }
    }

    #[test]
    fn rejects_invalid_references_saying_why() {
        let tag129 = format!("nginx:{}", "a".repeat(129));
        let long_name = format!("r/{}", "a".repeat(254));
        let cases: &[(&str, &str)] = &[
            ("", "empty"),
            ("nginx 1.21", "a space"),
            ("nginx:1.21\n", "U+000A"),
            ("ngïnx", "'ï' (U+00EF)"),
            ("Nginx:1.21", "must be lowercase"),
            ("registry/Web:1", "must be lowercase"),
            ("web:", "tag ''"),
            ("web:-x", "tag '-x'"),
            ("web:.x", "tag '.x'"),
            ("web:a/b", "registry"),
            ("[fe80::1%25eth0]/web", "registry"),
            (&tag129, "1 to 128"),
            ("web@sha256:abc", "exactly 64"),
            (&format!("web@sha256:{SHA}0"), "exactly 64"),
            (
                &format!("web@sha256:{}", SHA.to_uppercase()),
                "has uppercase hex digits; digests are written in lowercase",
            ),
            ("web@sha256", "algorithm:hex"),
            ("web@:abc", "algorithm:hex"),
            (&format!("web@sha256:{}", "g".repeat(64)), "algorithm:hex"),
            ("web@md5:abc", "algorithm:hex"),
            ("web..x", "must be lowercase"),
            ("web___x", "must be lowercase"),
            ("web-", "must be lowercase"),
            ("/web", "must be lowercase"),
            ("web//x", "must be lowercase"),
            ("registry.example.com:99999/web", "registry"),
            ("registry.example.com:/web", "registry"),
            ("-registry.com/web", "registry"),
            ("[::1/web", "registry"),
            ("[zz::1]:5000/web", "registry"),
            ("[::1]x/web", "registry"),
            ("[::1]:5000/Web", "must be lowercase"),
            (&long_name, "at most 255"),
            ("web;rm -rf", "contains ';'"),
            ("$(id)", "contains '$'"),
            ("\"nginx:1.21\"", "contains '\"'"),
            ("nginx:1.21,", "contains ','"),
            ("`nginx:1`", "contains '`'"),
        ];
        for (s, why) in cases {
            let err = ImageRef::parse(s).expect_err(s).to_string();
            assert!(err.contains(why), "{s:?}: {err:?} should mention {why:?}");
        }
    }

    #[test]
    fn exposes_its_parts() {
        let img = ImageRef::parse(&format!("localhost:5000/web:2.1@sha256:{SHA}")).expect("valid");
        assert_eq!(img.name(), "localhost:5000/web");
        assert_eq!(img.tag(), Some("2.1"));
        assert_eq!(img.digest(), Some(format!("sha256:{SHA}").as_str()));
        let img = ImageRef::parse("localhost:5000/web").expect("valid");
        assert_eq!((img.name(), img.tag()), ("localhost:5000/web", None));
    }

    #[test]
    fn deserialises_only_when_valid() {
        assert!(serde_json::from_str::<ImageRef>("\"nginx:1.21\"").is_ok());
        assert!(serde_json::from_str::<ImageRef>("\"NGINX\"").is_err());
    }
}
