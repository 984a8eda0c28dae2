//! `continue` tokens of paged lists, shaped as the API server's: URL-safe base64
//! of `{"v":"meta.k8s.io/v1","rv":<list revision>,"start":"<key>\u0000"}`,
//! where the key is the last item returned. The next page starts after
//! that key, so items deleted or created before it shift nothing. (The
//! server also pins the page to the first page's revision; the sandbox
//! keeps no history, so later pages show objects as they are now.)

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as BASE64;
use serde_json::{Value, json};

use super::error::ApiError;
use super::meta::str_at;

/// Where the next page starts: after this namespace and name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct After {
    namespace: String,
    name: String,
}

impl After {
    pub(crate) fn as_key(&self) -> (&str, &str) {
        (&self.namespace, &self.name)
    }
}

/// An object's place in the list order: namespace, then name.
pub(crate) fn key_of(object: &Value) -> (&str, &str) {
    (
        str_at(object, "/metadata/namespace"),
        str_at(object, "/metadata/name"),
    )
}

/// The token for the page after `last`, listed at `revision`.
pub(crate) fn encode(last: &Value, revision: &str) -> String {
    let (namespace, name) = key_of(last);
    let token = json!({
        "v": "meta.k8s.io/v1",
        "rv": revision.parse::<u64>().unwrap_or(0),
        "start": format!("{namespace}/{name}\u{0}"),
    });
    BASE64.encode(token.to_string())
}

/// Reads a token; one this server did not make is a 400, as on a cluster.
pub(crate) fn decode(token: &str) -> Result<After, ApiError> {
    let invalid = |why: &str| ApiError::bad_request(format!("continue key is not valid: {why}"));
    let bytes = BASE64.decode(token).map_err(|e| invalid(&e.to_string()))?;
    let parsed: Value = serde_json::from_slice(&bytes).map_err(|e| invalid(&e.to_string()))?;
    if parsed["v"] != "meta.k8s.io/v1" {
        return Err(invalid(
            "incorrect encoded start resourceVersion (version meta.k8s.io/v1)",
        ));
    }
    let start = parsed["start"]
        .as_str()
        .and_then(|s| s.strip_suffix('\u{0}'))
        .ok_or_else(|| invalid("encoded key is empty"))?;
    let (namespace, name) = start
        .split_once('/')
        .ok_or_else(|| invalid("encoded key is not a namespace and name"))?;
    Ok(After {
        namespace: namespace.to_owned(),
        name: name.to_owned(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_token_names_the_last_item_and_reads_back() {
        let last = json!({"metadata": {"namespace": "prod", "name": "web-2"}});
        let token = encode(&last, "41");
        let after = decode(&token).expect("a token it made");
        assert_eq!(after.as_key(), ("prod", "web-2"));
        let inner: Value =
            serde_json::from_slice(&BASE64.decode(&token).expect("base64")).expect("JSON");
        assert_eq!(inner["rv"], 41);
        let cluster_scoped =
            decode(&encode(&json!({"metadata": {"name": "ns-1"}}), "7")).expect("a token it made");
        assert_eq!(cluster_scoped.as_key(), ("", "ns-1"));
    }

    #[test]
    fn a_token_it_did_not_make_is_a_bad_request() {
        for bad in ["5", "garbage!", &BASE64.encode("{}")] {
            let e = decode(bad).expect_err(bad);
            assert_eq!(e.status()["code"], 400, "{bad}");
            assert!(
                e.status()["message"]
                    .as_str()
                    .is_some_and(|m| m.starts_with("continue key is not valid: ")),
                "{bad}: {}",
                e.status()
            );
        }
    }
}
