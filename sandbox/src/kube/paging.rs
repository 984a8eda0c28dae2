//! `continue` tokens of paged lists, shaped as the API server's: URL-safe base64
//! of `{"v":"meta.k8s.io/v1","rv":<list revision>,"start":"<key>\u0000"}`,
//! where the key is the last item returned. The next page starts after
//! that key, so items deleted or created before it shift nothing. (The
//! server also pins the page to the first page's revision; the sandbox
//! keeps no history, so later pages show objects as they are now.)

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as BASE64;
use serde_json::{Value, json};

use super::gojson;
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

/// Reads a token; one this server did not make is refused with the words
/// of the API server's storage (`continue key is not valid: ...`), which
/// the caller gives as `invalid continue token: <this>` in a 400.
pub(crate) fn decode(token: &str) -> Result<After, String> {
    let invalid = |why: &str| format!("continue key is not valid: {why}");
    let bytes = go_base64(token)
        .map_err(|at| invalid(&format!("illegal base64 data at input byte {at}")))?;
    let parsed = token_json(&bytes).map_err(|why| invalid(&why))?;
    match parsed["v"].as_str().unwrap_or("") {
        "meta.k8s.io/v1" => {}
        other => {
            return Err(format!(
                "continue key is not valid: server does not recognize this encoded version {other}"
            ));
        }
    }
    if parsed["rv"].as_i64().unwrap_or(0) == 0 {
        return Err(invalid(
            "incorrect encoded start resourceVersion (version meta.k8s.io/v1)",
        ));
    }
    let start = parsed["start"].as_str().unwrap_or("");
    if start.is_empty() {
        return Err(invalid("encoded start key empty (version meta.k8s.io/v1)"));
    }
    // Storage refuses a key that `path.Clean` would change: no climbing out
    // of the listed prefix.
    let rooted = if start.starts_with('/') {
        start.to_owned()
    } else {
        format!("/{start}")
    };
    if !is_clean(&rooted) {
        return Err(invalid(start));
    }
    let key = start.strip_suffix('\u{0}').unwrap_or(start);
    let (namespace, name) = key.split_once('/').unwrap_or(("", key));
    Ok(After {
        namespace: namespace.to_owned(),
        name: name.to_owned(),
    })
}

/// A token's JSON as Go decodes it into storage's `continueToken`, Err in
/// Go's words: a syntax error, or a value of the wrong type.
fn token_json(bytes: &[u8]) -> Result<Value, String> {
    if let Some(why) = gojson::syntax_error(bytes) {
        return Err(why);
    }
    let parsed: Value = serde_json::from_slice(bytes).map_err(|e| e.to_string())?;
    if !matches!(parsed, Value::Object(_) | Value::Null) {
        return Err(gojson::type_error(&parsed, "storage.continueToken"));
    }
    for (field, fits, go_type) in [
        ("v", Value::is_string as fn(&Value) -> bool, "string"),
        ("rv", Value::is_i64, "int64"),
        ("start", Value::is_string, "string"),
    ] {
        let value = &parsed[field];
        if !value.is_null() && !fits(value) {
            return Err(gojson::field_type_error(
                value,
                &format!("continueToken.{field}"),
                go_type,
            ));
        }
    }
    Ok(parsed)
}

/// Go's `base64.RawURLEncoding.DecodeString`: the URL-safe alphabet without
/// padding, line breaks skipped, stray bits at the end ignored; Err is the
/// offset Go names (`illegal base64 data at input byte N`).
fn go_base64(text: &str) -> Result<Vec<u8>, usize> {
    let mut out = Vec::with_capacity(text.len() * 3 / 4);
    let (mut bits, mut held, mut count, mut last) = (0u32, 0u32, 0usize, 0usize);
    for (at, c) in text.bytes().enumerate() {
        let value = match c {
            b'\r' | b'\n' => continue,
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'-' => 62,
            b'_' => 63,
            _ => return Err(at),
        };
        bits = (bits << 6) | u32::from(value);
        held += 6;
        count += 1;
        last = at;
        if held >= 8 {
            held -= 8;
            out.push(u8::try_from((bits >> held) & 0xff).unwrap_or(0));
        }
    }
    // One character alone in its quantum carries no whole byte.
    if count % 4 == 1 {
        return Err(last);
    }
    Ok(out)
}

/// Whether Go's `path.Clean` leaves a rooted path as it is.
fn is_clean(path: &str) -> bool {
    if path == "/" {
        return true;
    }
    !path.ends_with('/')
        && path[1..]
            .split('/')
            .all(|segment| !matches!(segment, "" | "." | ".."))
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
    fn a_token_it_did_not_make_is_refused_in_the_words_of_storage() {
        let token = |v: Value| BASE64.encode(v.to_string());
        for (bad, why) in [
            ("garbage!".to_owned(), "illegal base64 data at input byte 7"),
            ("5".to_owned(), "illegal base64 data at input byte 0"),
            (
                token(json!({"v": "meta.k8s.io/v1", "rv": 0, "start": "a/b\u{0}"})),
                "incorrect encoded start resourceVersion (version meta.k8s.io/v1)",
            ),
            (
                token(json!({"v": "meta.k8s.io/v1", "rv": 3})),
                "encoded start key empty (version meta.k8s.io/v1)",
            ),
            (
                token(json!({"v": "meta.k8s.io/v1", "rv": 3, "start": "../x"})),
                "../x",
            ),
            (
                token(json!({"v": "v9", "rv": 3, "start": "a/b"})),
                "server does not recognize this encoded version v9",
            ),
            (
                "abc".to_owned(),
                "invalid character 'i' looking for beginning of value",
            ),
            (
                token(json!({"v": "meta.k8s.io/v1", "rv": "3", "start": "a/b"})),
                "json: cannot unmarshal string into Go struct field continueToken.rv of type int64",
            ),
            (
                token(json!([1])),
                "json: cannot unmarshal array into Go value of type storage.continueToken",
            ),
        ] {
            assert_eq!(
                decode(&bad),
                Err(format!("continue key is not valid: {why}")),
                "{bad}"
            );
        }
    }

    #[test]
    fn base64_is_read_as_go_reads_it() {
        assert_eq!(go_base64("aGk"), Ok(b"hi".to_vec()));
        assert_eq!(
            go_base64("aG\nk"),
            Ok(b"hi".to_vec()),
            "line breaks skipped"
        );
        assert_eq!(go_base64("aGl"), Ok(b"hi".to_vec()), "stray bits ignored");
        assert_eq!(go_base64("aGk="), Err(3), "no padding");
    }
}
