//! Resource quantities (`500m`, `1Gi`, `2e3`) as the API server decodes
//! them. A quantity that does not parse fails the whole request with 400 at
//! decode, before validation, worded as apimachinery's `ParseQuantity`
//! words it; a stored bad quantity would break every client that reads the
//! object back (kubectl's typed decoding refuses it too). Negative requests
//! and limits decode but are invalid (422).

use serde_json::{Map, Value, json};

use super::error::{ApiError, FieldError};
use super::resources::{Behaviour, ResourceType};

/// apimachinery's `ErrFormatWrong`.
const FORMAT_WRONG: &str =
    "quantities must match the regular expression '^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$'";
/// apimachinery's `ErrSuffix`.
const SUFFIX: &str = "unable to parse quantity's suffix";

/// Suffixes `ParseQuantity` knows besides decimal exponents (`e3`, `E-2`).
const SUFFIXES: &[&str] = &[
    "", "n", "u", "m", "k", "M", "G", "T", "P", "E", "Ki", "Mi", "Gi", "Ti", "Pi", "Ei",
];

/// A parsed quantity: whether it is below zero is all validation needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Quantity {
    pub(crate) negative: bool,
}

/// `ParseQuantity`: sign, digits, an optional fraction, then a suffix.
/// Follows apimachinery's scanner rather than its regular expression, which
/// is only the message: `1.2.3` and `1m5` match the expression and are
/// still refused.
pub(crate) fn parse(s: &str) -> Result<Quantity, &'static str> {
    let bytes = s.as_bytes();
    if bytes.is_empty() {
        return Err(FORMAT_WRONG);
    }
    let mut pos = 0;
    let negative = bytes[0] == b'-';
    if matches!(bytes[0], b'-' | b'+') {
        pos += 1;
    }
    let digits = |from: usize| {
        from + bytes[from..]
            .iter()
            .take_while(|b| b.is_ascii_digit())
            .count()
    };
    // Digits, then a fraction; apimachinery reads a missing number (".",
    // "-") as zero.
    let mut number_end = digits(pos);
    if bytes.get(number_end) == Some(&b'.') {
        number_end = digits(number_end + 1);
    }
    let suffix_start = number_end;
    let mut i = suffix_start;
    while i < bytes.len() && b"eEinumkKMGTP".contains(&bytes[i]) {
        i += 1;
    }
    if matches!(bytes.get(i), Some(b'-' | b'+')) {
        i += 1;
    }
    if digits(i) != bytes.len() {
        return Err(FORMAT_WRONG);
    }
    let suffix = &s[suffix_start..];
    let exponent_ok = |rest: &str| {
        let unsigned = rest.strip_prefix(['-', '+']).unwrap_or(rest);
        !unsigned.is_empty() && unsigned.bytes().all(|b| b.is_ascii_digit())
    };
    let suffix_ok =
        SUFFIXES.contains(&suffix) || suffix.strip_prefix(['e', 'E']).is_some_and(exponent_ok);
    if !suffix_ok {
        return Err(SUFFIX);
    }
    let nonzero = bytes[pos..number_end]
        .iter()
        .any(|b| b.is_ascii_digit() && *b != b'0');
    Ok(Quantity {
        negative: negative && nonzero,
    })
}

/// Checks every quantity of a written object's pod spec, writing numbers
/// in their string form (the server reads `cpu: 1` as `"1"`). Err is the
/// decode failure (400); the field errors are negative amounts.
pub(crate) fn check(rt: &ResourceType, object: &mut Value) -> Result<Vec<FieldError>, ApiError> {
    let (pointer, field) = match rt.behaviour {
        Behaviour::Deployment | Behaviour::ReplicaSet => {
            ("/spec/template/spec", "spec.template.spec")
        }
        Behaviour::Pod => ("/spec", "spec"),
        _ => return Ok(Vec::new()),
    };
    let Some(spec) = object.pointer_mut(pointer).and_then(Value::as_object_mut) else {
        return Ok(Vec::new());
    };
    let decode_error = |why: &str| {
        ApiError::bad_request(format!(
            "{} in version \"{}\" cannot be handled as a {}: {why}",
            rt.kind, rt.version, rt.kind
        ))
    };
    let mut errors = Vec::new();
    for list in ["initContainers", "containers", "ephemeralContainers"] {
        let Some(Value::Array(containers)) = spec.get_mut(list) else {
            continue;
        };
        for (i, container) in containers.iter_mut().enumerate() {
            for kind in ["limits", "requests"] {
                if let Some(Value::Object(amounts)) =
                    container.pointer_mut(&format!("/resources/{kind}"))
                {
                    let path = format!("{field}.{list}[{i}].resources.{kind}");
                    check_map(amounts, &path, &mut errors).map_err(decode_error)?;
                }
            }
        }
    }
    if let Some(Value::Object(overhead)) = spec.get_mut("overhead") {
        check_map(overhead, &format!("{field}.overhead"), &mut errors).map_err(decode_error)?;
    }
    Ok(errors)
}

/// One `ResourceList`: each amount parsed, numbers made strings.
fn check_map(
    amounts: &mut Map<String, Value>,
    path: &str,
    errors: &mut Vec<FieldError>,
) -> Result<(), &'static str> {
    for (name, amount) in amounts.iter_mut() {
        let text = match amount {
            Value::String(s) => s.trim().to_owned(),
            Value::Number(n) => n.to_string(),
            // Go's decoder leaves a null quantity at zero.
            Value::Null => "0".to_owned(),
            _ => return Err(FORMAT_WRONG),
        };
        let parsed = parse(&text)?;
        if parsed.negative {
            errors.push(FieldError::invalid(
                format!("{path}[{name}]"),
                &json!(text),
                "must be greater than or equal to 0",
            ));
        }
        *amount = Value::String(text);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kube::resources::DEPLOYMENT;

    #[test]
    fn quantities_parse_as_apimachinery_parses_them() {
        for good in [
            "1", "0", "500m", "0.5", "1.", "1Gi", "128Mi", "2e3", "1E-2", "+1", "-1", "1.5k", ".5",
            "-", ".",
        ] {
            assert!(parse(good).is_ok(), "{good}");
        }
        for (bad, why) in [
            ("banana", FORMAT_WRONG),
            ("", FORMAT_WRONG),
            ("1.2.3", FORMAT_WRONG),
            ("1 Gi", FORMAT_WRONG),
            ("1GG", SUFFIX),
            ("1m5", SUFFIX),
            ("1e", SUFFIX),
            ("192i", SUFFIX),
        ] {
            assert_eq!(parse(bad), Err(why), "{bad}");
        }
        assert!(parse("-1").expect("parses").negative);
        assert!(!parse("-0").expect("parses").negative);
    }

    #[test]
    fn a_bad_limit_is_a_decode_error_and_a_number_becomes_a_string() {
        let mut d = json!({"spec": {"template": {"spec": {"containers": [
            {"name": "web", "resources": {"limits": {"cpu": 1, "memory": "banana"}}}
        ]}}}});
        let e = check(&DEPLOYMENT, &mut d).expect_err("banana");
        assert_eq!(e.status()["code"], 400);
        assert_eq!(
            e.status()["message"],
            format!(
                "Deployment in version \"v1\" cannot be handled as a Deployment: {FORMAT_WRONG}"
            )
        );
        d["spec"]["template"]["spec"]["containers"][0]["resources"]["limits"]["memory"] =
            json!("-1Gi");
        let errors = check(&DEPLOYMENT, &mut d).expect("decodes");
        assert_eq!(
            errors,
            [FieldError::invalid(
                "spec.template.spec.containers[0].resources.limits[memory]",
                &json!("-1Gi"),
                "must be greater than or equal to 0"
            )]
        );
        assert_eq!(
            d["spec"]["template"]["spec"]["containers"][0]["resources"]["limits"]["cpu"],
            "1"
        );
    }
}
