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

/// A parsed quantity: its sign, and its amount in billionths (rounded up,
/// as apimachinery keeps nothing finer), `None` past what `i128` holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Quantity {
    pub(crate) negative: bool,
    pub(crate) nanos: Option<i128>,
}

/// The amount of `digits` (a decimal with `fraction` digits after its
/// point) times 10^`exponent` times 2^`binary`, in billionths.
fn nanos(digits: &str, fraction: usize, exponent: i64, binary: u32) -> Option<i128> {
    let mantissa: i128 = if digits.is_empty() {
        0
    } else {
        digits.parse().ok()?
    };
    if mantissa == 0 {
        return Some(0);
    }
    let scale = exponent
        .saturating_add(9)
        .saturating_sub(i64::try_from(fraction).ok()?);
    let scaled = if scale >= 0 {
        mantissa.checked_mul(10i128.checked_pow(u32::try_from(scale).ok()?)?)?
    } else {
        let divisor = u32::try_from(scale.unsigned_abs())
            .ok()
            .and_then(|power| 10i128.checked_pow(power));
        // Smaller than a billionth of anything rounds up to one.
        divisor.map_or(i128::from(mantissa != 0), |d| {
            mantissa / d + i128::from(mantissa % d != 0)
        })
    };
    scaled.checked_mul(1i128.checked_shl(binary)?)
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
    let number = &s[pos..number_end];
    let (whole, fraction) = number.split_once('.').unwrap_or((number, ""));
    let (exponent, binary) = match suffix {
        "n" => (-9, 0),
        "u" => (-6, 0),
        "m" => (-3, 0),
        "" => (0, 0),
        "k" => (3, 0),
        "M" => (6, 0),
        "G" => (9, 0),
        "T" => (12, 0),
        "P" => (15, 0),
        "E" => (18, 0),
        "Ki" => (0, 10),
        "Mi" => (0, 20),
        "Gi" => (0, 30),
        "Ti" => (0, 40),
        "Pi" => (0, 50),
        "Ei" => (0, 60),
        // An exponent past i64 is read by its sign.
        exponent => {
            let digits = &exponent[1..];
            let fallback = if digits.starts_with('-') {
                i64::MIN
            } else {
                i64::MAX
            };
            (digits.parse().unwrap_or(fallback), 0)
        }
    };
    Ok(Quantity {
        negative: negative && nonzero,
        nanos: nanos(
            &format!("{whole}{fraction}"),
            fraction.len(),
            exponent,
            binary,
        ),
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
            let mut parsed = [Vec::new(), Vec::new()];
            for (kind, parsed) in ["limits", "requests"].into_iter().zip(&mut parsed) {
                if let Some(Value::Object(amounts)) =
                    container.pointer_mut(&format!("/resources/{kind}"))
                {
                    let path = format!("{field}.{list}[{i}].resources.{kind}");
                    *parsed = check_map(amounts, &path, &mut errors).map_err(decode_error)?;
                }
            }
            let [limits, requests] = parsed;
            for (name, text, request) in &requests {
                // An amount too large to hold is larger than any other.
                let amount = |q: &Quantity| q.nanos.unwrap_or(i128::MAX);
                if let Some((_, limit_text, limit)) = limits.iter().find(|(n, ..)| n == name)
                    && amount(request) > amount(limit)
                {
                    errors.push(FieldError::invalid(
                        format!("{field}.{list}[{i}].resources.requests"),
                        &json!(text),
                        &format!("must be less than or equal to {name} limit of {limit_text}"),
                    ));
                }
            }
        }
    }
    if let Some(Value::Object(overhead)) = spec.get_mut("overhead") {
        check_map(overhead, &format!("{field}.overhead"), &mut errors).map_err(decode_error)?;
    }
    Ok(errors)
}

/// One `ResourceList`: each amount parsed, numbers made strings; the
/// amounts by name, as written and parsed.
fn check_map(
    amounts: &mut Map<String, Value>,
    path: &str,
    errors: &mut Vec<FieldError>,
) -> Result<Vec<(String, String, Quantity)>, &'static str> {
    let mut parsed = Vec::with_capacity(amounts.len());
    for (name, amount) in amounts.iter_mut() {
        let text = match amount {
            Value::String(s) => s.trim().to_owned(),
            Value::Number(n) => n.to_string(),
            // Go's decoder leaves a null quantity at zero.
            Value::Null => "0".to_owned(),
            _ => return Err(FORMAT_WRONG),
        };
        let quantity = parse(&text)?;
        if quantity.negative {
            errors.push(FieldError::invalid(
                format!("{path}[{name}]"),
                &json!(text),
                "must be greater than or equal to 0",
            ));
        }
        *amount = Value::String(text.clone());
        parsed.push((name.clone(), text, quantity));
    }
    Ok(parsed)
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
    fn amounts_compare_across_suffixes() {
        let nanos = |s: &str| parse(s).expect("parses").nanos;
        for (a, b) in [
            ("1", "1000m"),
            ("0.5", "500m"),
            ("1Ki", "1024"),
            ("2e3", "2k"),
            ("1.5Gi", "1536Mi"),
            ("1E-2", "10m"),
            (".5", "0.5"),
        ] {
            assert_eq!(nanos(a), nanos(b), "{a} = {b}");
        }
        assert_eq!(nanos("1n"), Some(1));
        assert_eq!(nanos("0.1n"), Some(1), "rounded up to a billionth");
        assert!(nanos("1001m") > nanos("1"));
        assert!(nanos("129Mi") > nanos("128Mi"));
        assert_eq!(nanos("1e999"), None, "too large to hold");
        for huge in [
            "1e9223372036854775807",
            "1e99999999999999999999",
            "0.0000000000e-9223372036854775808",
        ] {
            assert!(parse(huge).is_ok(), "{huge} parses without a panic");
        }
        assert_eq!(
            nanos("1e-99999999999999999999"),
            Some(1),
            "tiny, rounded up"
        );
        assert_eq!(nanos("0e-99999999999999999999"), Some(0));
    }

    #[test]
    fn a_request_above_its_limit_is_invalid() {
        let mut d = json!({"spec": {"template": {"spec": {"containers": [
            {"name": "web", "resources": {
                "limits": {"cpu": "1", "memory": "1Gi"},
                "requests": {"cpu": "1500m", "memory": "1024Mi", "ephemeral-storage": "9Gi"}
            }}
        ]}}}});
        let errors = check(&DEPLOYMENT, &mut d).expect("decodes");
        assert_eq!(
            errors,
            [FieldError::invalid(
                "spec.template.spec.containers[0].resources.requests",
                &json!("1500m"),
                "must be less than or equal to cpu limit of 1"
            )],
            "equal amounts and amounts without a limit are fine"
        );
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
