//! Object metadata helpers: timestamps in the API's format, name rules with
//! the real validation messages, label and field selectors, and the
//! human-readable ages that tables show.

use std::collections::BTreeMap;

use serde_json::{Value, json};

use super::error::{ApiError, FieldError};
use super::resources::ResourceType;

/// Now, as the API writes timestamps: RFC 3339 in UTC, whole seconds.
pub(crate) fn now() -> String {
    timestamp(jiff::Timestamp::now())
}

pub(crate) fn timestamp(ts: jiff::Timestamp) -> String {
    jiff::Timestamp::from_second(ts.as_second())
        .map(|t| t.to_string())
        .unwrap_or_else(|_| ts.to_string())
}

/// A string field of an object, or "".
pub(crate) fn str_at<'a>(obj: &'a Value, pointer: &str) -> &'a str {
    obj.pointer(pointer).and_then(Value::as_str).unwrap_or("")
}

/// The integer at `pointer`, or 0.
pub(crate) fn int_at(obj: &Value, pointer: &str) -> i64 {
    obj.pointer(pointer).and_then(Value::as_i64).unwrap_or(0)
}

/// The object's labels (or any string map) as a sorted map.
pub(crate) fn string_map(value: Option<&Value>) -> BTreeMap<String, String> {
    value
        .and_then(Value::as_object)
        .map(|m| {
            m.iter()
                .filter_map(|(k, v)| Some((k.clone(), v.as_str()?.to_owned())))
                .collect()
        })
        .unwrap_or_default()
}

const SUBDOMAIN_MSG: &str = "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')";
const LABEL_MSG: &str = "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')";

fn is_label(s: &str) -> bool {
    !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !s.starts_with('-')
        && !s.ends_with('-')
}

/// Field errors for a DNS-1123 subdomain name (most kinds).
pub(crate) fn check_subdomain(field: &str, name: &str) -> Vec<FieldError> {
    let mut errors = Vec::new();
    if name.len() > 253 {
        errors.push(FieldError::invalid(
            field,
            &json!(name),
            "must be no more than 253 characters",
        ));
    }
    if !name.split('.').all(is_label) {
        errors.push(FieldError::invalid(field, &json!(name), SUBDOMAIN_MSG));
    }
    errors
}

/// Field errors for a DNS-1123 label (namespaces, container names).
pub(crate) fn check_label(field: &str, name: &str) -> Vec<FieldError> {
    let mut errors = Vec::new();
    if name.len() > 63 {
        errors.push(FieldError::invalid(
            field,
            &json!(name),
            "must be no more than 63 characters",
        ));
    }
    if !is_label(name) {
        errors.push(FieldError::invalid(field, &json!(name), LABEL_MSG));
    }
    errors
}

const QUALIFIED_MSG: &str = "must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')";
const LABEL_VALUE_MSG: &str = "a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyValue',  or 'my_value',  or '12345', regex used for validation is '(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?')";
/// The most bytes an object's annotations may take, keys and values.
const ANNOTATIONS_LIMIT: usize = 256 * 1024;

/// `([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]`, the name part of a
/// qualified name and a non-empty label value.
fn is_qualified_part(s: &str) -> bool {
    let alnum = |c: Option<char>| c.is_some_and(|c| c.is_ascii_alphanumeric());
    alnum(s.chars().next())
        && alnum(s.chars().last())
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
}

/// apimachinery's `IsQualifiedName`: `[prefix/]name`, the prefix a DNS
/// subdomain; the messages, each to follow `Invalid value: <key>: `.
fn qualified_name_errors(key: &str) -> Vec<String> {
    let mut errors = Vec::new();
    let name = match key.split('/').collect::<Vec<_>>()[..] {
        [name] => name,
        [prefix, name] => {
            if prefix.is_empty() {
                errors.push("prefix part must be non-empty".to_owned());
            } else {
                if prefix.len() > 253 {
                    errors.push("prefix part must be no more than 253 characters".to_owned());
                }
                if !prefix.split('.').all(is_label) {
                    errors.push(format!("prefix part {SUBDOMAIN_MSG}"));
                }
            }
            name
        }
        _ => {
            return vec![format!(
                "a qualified name {QUALIFIED_MSG} with an optional DNS subdomain prefix and '/' (e.g. 'example.com/MyName')"
            )];
        }
    };
    if name.is_empty() {
        errors.push("name part must be non-empty".to_owned());
    } else if name.len() > 63 {
        errors.push("name part must be no more than 63 characters".to_owned());
    }
    if !is_qualified_part(name) {
        errors.push(format!("name part {QUALIFIED_MSG}"));
    }
    errors
}

/// `ValidateLabels`: each key a qualified name, each value empty or a
/// qualified name part of at most 63 characters. `labels` is the map as
/// written; a value that is not a string is the decoder's to refuse.
pub(crate) fn check_labels(field: &str, labels: Option<&Value>) -> Vec<FieldError> {
    let mut errors = Vec::new();
    for (key, value) in string_map(labels) {
        for why in qualified_name_errors(&key) {
            errors.push(FieldError::invalid(field, &json!(key), &why));
        }
        if value.len() > 63 {
            errors.push(FieldError::invalid(
                field,
                &json!(value),
                "must be no more than 63 characters",
            ));
        }
        if !value.is_empty() && !is_qualified_part(&value) {
            errors.push(FieldError::invalid(field, &json!(value), LABEL_VALUE_MSG));
        }
    }
    errors
}

/// `ValidateAnnotations`: each key a qualified name (read in lower case),
/// and all of them at most 256 KiB.
pub(crate) fn check_annotations(field: &str, annotations: Option<&Value>) -> Vec<FieldError> {
    let annotations = string_map(annotations);
    let mut errors = Vec::new();
    for key in annotations.keys() {
        for why in qualified_name_errors(&key.to_lowercase()) {
            errors.push(FieldError::invalid(field, &json!(key), &why));
        }
    }
    let size: usize = annotations.iter().map(|(k, v)| k.len() + v.len()).sum();
    if size > ANNOTATIONS_LIMIT {
        errors.push(FieldError::too_long(field, ANNOTATIONS_LIMIT));
    }
    errors
}

/// Field errors for names that only need to be a valid path segment (RBAC
/// objects may be named `system:controller:x`).
pub(crate) fn check_path_segment(field: &str, name: &str) -> Vec<FieldError> {
    if name == "." || name == ".." {
        return vec![FieldError::invalid(
            field,
            &json!(name),
            &format!("may not be '{name}'"),
        )];
    }
    for bad in ["/", "%"] {
        if name.contains(bad) {
            return vec![FieldError::invalid(
                field,
                &json!(name),
                &format!("may not contain '{bad}'"),
            )];
        }
    }
    Vec::new()
}

/// One requirement of a label selector.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Requirement {
    Equals(String, String),
    NotEquals(String, String),
    In(String, Vec<String>),
    NotIn(String, Vec<String>),
    Exists(String),
    NotExists(String),
}

impl Requirement {
    fn matches(&self, labels: &BTreeMap<String, String>) -> bool {
        match self {
            Self::Equals(k, v) => labels.get(k) == Some(v),
            Self::NotEquals(k, v) => labels.get(k) != Some(v),
            Self::In(k, vs) => labels.get(k).is_some_and(|l| vs.contains(l)),
            Self::NotIn(k, vs) => labels.get(k).is_none_or(|l| !vs.contains(l)),
            Self::Exists(k) => labels.contains_key(k),
            Self::NotExists(k) => !labels.contains_key(k),
        }
    }
}

/// A parsed `labelSelector` (the string form: `app=web,tier!=db,env in
/// (a,b),!legacy`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct LabelSelector(Vec<Requirement>);

impl Requirement {
    /// What makes the requirement one the API server refuses: a key that
    /// is no qualified name, a value that is no label value.
    fn invalid(&self) -> Option<String> {
        let (key, values): (&str, &[String]) = match self {
            Self::Equals(k, v) | Self::NotEquals(k, v) => (k, std::slice::from_ref(v)),
            Self::In(k, vs) | Self::NotIn(k, vs) => (k, vs),
            Self::Exists(k) | Self::NotExists(k) => (k, &[]),
        };
        if let Some(why) = qualified_name_errors(key).into_iter().next() {
            return Some(format!("key: Invalid value: {key:?}: {why}"));
        }
        values.iter().enumerate().find_map(|(i, value)| {
            let bad = value.len() > 63 || (!value.is_empty() && !is_qualified_part(value));
            bad.then(|| format!("values[{i}][{key}]: Invalid value: {value:?}: {LABEL_VALUE_MSG}"))
        })
    }
}

impl LabelSelector {
    pub(crate) fn parse(s: &str) -> Result<Self, ApiError> {
        let mut reqs = Vec::new();
        for term in split_terms(s) {
            let term = term.trim();
            if term.is_empty() {
                continue;
            }
            let requirement = parse_term(term).ok_or_else(|| {
                ApiError::bad_request(format!(
                    "unable to parse requirement: found '{term}', expected: key, '=', '==', '!=', 'in', 'notin'"
                ))
            })?;
            if let Some(why) = requirement.invalid() {
                return Err(ApiError::bad_request(format!(
                    "unable to parse requirement: {why}"
                )));
            }
            reqs.push(requirement);
        }
        Ok(Self(reqs))
    }

    /// The selector of a `metav1.LabelSelector` object (matchLabels and
    /// matchExpressions).
    pub(crate) fn from_object(selector: &Value) -> Self {
        let mut reqs: Vec<Requirement> = string_map(selector.get("matchLabels"))
            .into_iter()
            .map(|(k, v)| Requirement::Equals(k, v))
            .collect();
        for expr in selector
            .get("matchExpressions")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            let key = str_at(expr, "/key").to_owned();
            let values: Vec<String> = expr
                .get("values")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .filter_map(|v| v.as_str().map(str::to_owned))
                .collect();
            reqs.push(match str_at(expr, "/operator") {
                "In" => Requirement::In(key, values),
                "NotIn" => Requirement::NotIn(key, values),
                "Exists" => Requirement::Exists(key),
                _ => Requirement::NotExists(key),
            });
        }
        Self(reqs)
    }

    pub(crate) fn matches(&self, labels: &BTreeMap<String, String>) -> bool {
        self.0.iter().all(|r| r.matches(labels))
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl std::fmt::Display for LabelSelector {
    /// The string form kubectl shows (`app=nginx`).
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let parts: Vec<String> = self
            .0
            .iter()
            .map(|r| match r {
                Requirement::Equals(k, v) => format!("{k}={v}"),
                Requirement::NotEquals(k, v) => format!("{k}!={v}"),
                Requirement::In(k, vs) => format!("{k} in ({})", vs.join(",")),
                Requirement::NotIn(k, vs) => format!("{k} notin ({})", vs.join(",")),
                Requirement::Exists(k) => k.clone(),
                Requirement::NotExists(k) => format!("!{k}"),
            })
            .collect();
        f.write_str(&parts.join(","))
    }
}

/// Splits on commas outside parentheses.
fn split_terms(s: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let mut depth = 0usize;
    let mut start = 0;
    for (i, c) in s.char_indices() {
        match c {
            '(' => depth += 1,
            ')' => depth = depth.saturating_sub(1),
            ',' if depth == 0 => {
                out.push(&s[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    out.push(&s[start..]);
    out
}

fn parse_set(rest: &str) -> Option<Vec<String>> {
    let inner = rest.trim().strip_prefix('(')?.strip_suffix(')')?;
    Some(
        inner
            .split(',')
            .map(|v| v.trim().to_owned())
            .filter(|v| !v.is_empty())
            .collect(),
    )
}

fn parse_term(term: &str) -> Option<Requirement> {
    if let Some(key) = term.strip_prefix('!') {
        return Some(Requirement::NotExists(key.trim().to_owned()));
    }
    if let Some((k, v)) = term.split_once("!=") {
        return Some(Requirement::NotEquals(
            k.trim().to_owned(),
            v.trim().to_owned(),
        ));
    }
    if let Some((k, v)) = term.split_once("==").or_else(|| term.split_once('=')) {
        return Some(Requirement::Equals(
            k.trim().to_owned(),
            v.trim().to_owned(),
        ));
    }
    if let Some((k, rest)) = term.split_once(" notin ") {
        return Some(Requirement::NotIn(k.trim().to_owned(), parse_set(rest)?));
    }
    if let Some((k, rest)) = term.split_once(" in ") {
        return Some(Requirement::In(k.trim().to_owned(), parse_set(rest)?));
    }
    if term.contains(|c: char| c.is_whitespace() || c == '(' || c == ')') {
        return None;
    }
    Some(Requirement::Exists(term.to_owned()))
}

/// A parsed `fieldSelector`: `metadata.name` and `metadata.namespace` for
/// every type, and the fields each type adds (`involvedObject.uid` of
/// Events, `status.phase` of Pods), as (where, equal, value).
#[derive(Debug, Clone, Default)]
pub(crate) struct FieldSelector(Vec<(&'static str, bool, String)>);

impl FieldSelector {
    pub(crate) fn parse(s: &str, rt: &ResourceType) -> Result<Self, ApiError> {
        let mut terms = Vec::new();
        for term in s.split(',').map(str::trim).filter(|t| !t.is_empty()) {
            let (field, equal, value) = if let Some((f, v)) = term.split_once("!=") {
                (f, false, v)
            } else if let Some((f, v)) = term.split_once("==").or_else(|| term.split_once('=')) {
                (f, true, v)
            } else {
                return Err(ApiError::bad_request(format!(
                    "invalid selector: '{s}'; can't understand '{term}'"
                )));
            };
            let pointer = rt.field_pointer(field).ok_or_else(|| {
                ApiError::bad_request(format!("field label not supported: {field}"))
            })?;
            terms.push((pointer, equal, value.to_owned()));
        }
        Ok(Self(terms))
    }

    pub(crate) fn matches(&self, obj: &Value) -> bool {
        self.0.iter().all(|(pointer, equal, value)| {
            // Absent fields select as empty, as the server's field sets do.
            let same = match obj.pointer(pointer) {
                Some(Value::String(s)) => s == value,
                Some(Value::Null) | None => value.is_empty(),
                // Numbers and booleans select by their text.
                Some(other) => value.parse::<Value>().is_ok_and(|v| v == *other),
            };
            same == *equal
        })
    }
}

/// The age column of tables (`5s`, `3m20s`, `4h`), as kubectl prints it.
pub(crate) fn human_duration(seconds: i64) -> String {
    if seconds < -1 {
        return "<invalid>".to_owned();
    }
    if seconds < 0 {
        return "0s".to_owned();
    }
    if seconds < 120 {
        return format!("{seconds}s");
    }
    let minutes = seconds / 60;
    if minutes < 10 {
        let s = seconds % 60;
        return if s == 0 {
            format!("{minutes}m")
        } else {
            format!("{minutes}m{s}s")
        };
    }
    if minutes < 180 {
        return format!("{minutes}m");
    }
    let hours = seconds / 3600;
    if hours < 8 {
        let m = minutes % 60;
        return if m == 0 {
            format!("{hours}h")
        } else {
            format!("{hours}h{m}m")
        };
    }
    if hours < 48 {
        return format!("{hours}h");
    }
    if hours < 24 * 8 {
        let h = hours % 24;
        return if h == 0 {
            format!("{}d", hours / 24)
        } else {
            format!("{}d{h}h", hours / 24)
        };
    }
    if hours < 24 * 365 * 2 {
        return format!("{}d", hours / 24);
    }
    let years = hours / 24 / 365;
    if hours < 24 * 365 * 8 {
        let d = (hours / 24) % 365;
        return if d == 0 {
            format!("{years}y")
        } else {
            format!("{years}y{d}d")
        };
    }
    format!("{years}y")
}

/// Seconds since an RFC 3339 timestamp, for ages.
pub(crate) fn age_seconds(ts: &str) -> i64 {
    ts.parse::<jiff::Timestamp>()
        .map(|t| jiff::Timestamp::now().as_second() - t.as_second())
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn label_selectors_of_every_form_match_as_on_a_cluster() {
        let l = labels(&[("app", "nginx"), ("tier", "web")]);
        for (selector, expected) in [
            ("app=nginx", true),
            ("app==nginx,tier=web", true),
            ("app!=nginx", false),
            ("app in (nginx, other)", true),
            ("app notin (nginx)", false),
            ("tier", true),
            ("!tier", false),
            ("!legacy", true),
            ("", true),
        ] {
            let parsed = LabelSelector::parse(selector).expect("parses");
            assert_eq!(parsed.matches(&l), expected, "{selector}");
        }
    }

    #[test]
    fn a_selector_with_a_bad_key_or_value_is_a_bad_request() {
        for bad in [
            "app=we b",
            "app===",
            "app in (web,a b)",
            "-app=web",
            "app!=x y",
        ] {
            let e = LabelSelector::parse(bad).expect_err(bad);
            assert_eq!(e.status()["code"], 400, "{bad}");
            assert!(
                e.status()["message"]
                    .as_str()
                    .is_some_and(|m| m.starts_with("unable to parse requirement: ")),
                "{bad}: {}",
                e.status()
            );
        }
        for good in [
            "app=web",
            "app.kubernetes.io/name in (web, api)",
            "!tier",
            "tier=",
            "a==b",
        ] {
            assert!(LabelSelector::parse(good).is_ok(), "{good}");
        }
    }

    #[test]
    fn ages_read_like_kubectl() {
        assert_eq!(human_duration(5), "5s");
        assert_eq!(human_duration(119), "119s");
        assert_eq!(human_duration(200), "3m20s");
        assert_eq!(human_duration(3 * 3600 + 60), "3h1m");
        assert_eq!(human_duration(50 * 3600), "2d2h");
    }
}
