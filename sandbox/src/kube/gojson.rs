//! The words of Go's `encoding/json` for a body it cannot decode, which the
//! API server passes on in its 400s (`error decoding patch: invalid
//! character 'b' looking for beginning of object key string`): the syntax
//! errors of its scanner, and the type errors of decoding into a Go type.

use serde_json::Value;

/// What Go's scanner says of `data` that is not one JSON value (surrounded
/// by whitespace), or None when it is one.
pub(crate) fn syntax_error(data: &[u8]) -> Option<String> {
    let mut scanner = Scanner::default();
    for &c in data {
        if let Err(context) = scanner.step(c) {
            return Some(format!("invalid character {} {context}", quote_char(c)));
        }
    }
    scanner.eof().err()
}

/// Go's `UnmarshalTypeError` for a value decoded into a Go type it does
/// not fit (`json: cannot unmarshal array into Go value of type
/// map[string]interface {}`); `go_type` as Go names it.
pub(crate) fn type_error(value: &Value, go_type: &str) -> String {
    format!(
        "json: cannot unmarshal {} into Go value of type {go_type}",
        kind(value)
    )
}

/// The same for a field of a Go struct (`json: cannot unmarshal string into
/// Go struct field continueToken.rv of type int64`).
pub(crate) fn field_type_error(value: &Value, field: &str, go_type: &str) -> String {
    format!(
        "json: cannot unmarshal {} into Go struct field {field} of type {go_type}",
        kind(value)
    )
}

/// How Go names the kind of a JSON value in a type error.
fn kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "bool",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

/// Go's `quoteChar`: a byte in single quotes, escaped as `strconv.Quote`
/// escapes the rune of that value.
fn quote_char(c: u8) -> String {
    match c {
        b'\'' => r"'\''".to_owned(),
        b'"' => "'\"'".to_owned(),
        0x07 => r"'\a'".to_owned(),
        0x08 => r"'\b'".to_owned(),
        0x0c => r"'\f'".to_owned(),
        b'\n' => r"'\n'".to_owned(),
        b'\r' => r"'\r'".to_owned(),
        b'\t' => r"'\t'".to_owned(),
        0x0b => r"'\v'".to_owned(),
        b'\\' => r"'\\'".to_owned(),
        0x00..=0x1f | 0x7f => format!(r"'\x{c:02x}'"),
        // Go's `string(c)` of a byte is the rune of that value: the C1
        // controls, the no-break space and the soft hyphen print as escapes.
        0x80..=0xa0 | 0xad => format!(r"'\u{:04x}'", u32::from(c)),
        c => format!("'{}'", char::from(c)),
    }
}

/// Where the scanner is inside a value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    BeginValue,
    BeginValueOrEmpty,
    BeginStringOrEmpty,
    BeginString,
    EndValue,
    EndTop,
    InString,
    InStringEsc,
    /// Inside `\u`, with this many hex digits read.
    InStringEscU(u8),
    Neg,
    One,
    Zero,
    Dot,
    Dot0,
    E,
    ESign,
    E0,
    /// Inside a literal: what it is and how much of it is read.
    Literal(&'static str, usize),
}

/// What the value being scanned is inside of.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Parse {
    ObjectKey,
    ObjectValue,
    ArrayValue,
}

/// Go's `encoding/json` scanner, as far as its errors go.
#[derive(Debug)]
struct Scanner {
    state: State,
    stack: Vec<Parse>,
}

impl Default for Scanner {
    fn default() -> Self {
        Self {
            state: State::BeginValue,
            stack: Vec::new(),
        }
    }
}

fn is_space(c: u8) -> bool {
    matches!(c, b' ' | b'\t' | b'\r' | b'\n')
}

impl Scanner {
    /// Takes one byte; Err is the context of the error (`looking for
    /// beginning of value`).
    fn step(&mut self, c: u8) -> Result<(), &'static str> {
        match self.state {
            State::BeginValueOrEmpty => {
                if is_space(c) {
                    return Ok(());
                }
                if c == b']' {
                    return self.end_value(c);
                }
                self.begin_value(c)
            }
            State::BeginValue => self.begin_value(c),
            State::BeginStringOrEmpty => {
                if is_space(c) {
                    return Ok(());
                }
                if c == b'}' {
                    if let Some(top) = self.stack.last_mut() {
                        *top = Parse::ObjectValue;
                    }
                    return self.end_value(c);
                }
                self.begin_string(c)
            }
            State::BeginString => self.begin_string(c),
            State::EndValue => self.end_value(c),
            State::EndTop => {
                if is_space(c) {
                    Ok(())
                } else {
                    Err("after top-level value")
                }
            }
            State::InString => {
                match c {
                    b'"' => self.state = State::EndValue,
                    b'\\' => self.state = State::InStringEsc,
                    0x00..=0x1f => return Err("in string literal"),
                    _ => {}
                }
                Ok(())
            }
            State::InStringEsc => match c {
                b'b' | b'f' | b'n' | b'r' | b't' | b'\\' | b'/' | b'"' => {
                    self.state = State::InString;
                    Ok(())
                }
                b'u' => {
                    self.state = State::InStringEscU(0);
                    Ok(())
                }
                _ => Err("in string escape code"),
            },
            State::InStringEscU(read) => {
                if !c.is_ascii_hexdigit() {
                    return Err("in \\u hexadecimal character escape");
                }
                self.state = if read == 3 {
                    State::InString
                } else {
                    State::InStringEscU(read + 1)
                };
                Ok(())
            }
            State::Neg => match c {
                b'0' => {
                    self.state = State::Zero;
                    Ok(())
                }
                b'1'..=b'9' => {
                    self.state = State::One;
                    Ok(())
                }
                _ => Err("in numeric literal"),
            },
            State::One => {
                if c.is_ascii_digit() {
                    return Ok(());
                }
                self.zero(c)
            }
            State::Zero => self.zero(c),
            State::Dot => {
                if c.is_ascii_digit() {
                    self.state = State::Dot0;
                    return Ok(());
                }
                Err("after decimal point in numeric literal")
            }
            State::Dot0 => {
                if c.is_ascii_digit() {
                    return Ok(());
                }
                if c == b'e' || c == b'E' {
                    self.state = State::E;
                    return Ok(());
                }
                self.end_value(c)
            }
            State::E => {
                if c == b'+' || c == b'-' {
                    self.state = State::ESign;
                    return Ok(());
                }
                self.e_sign(c)
            }
            State::ESign => self.e_sign(c),
            State::E0 => {
                if c.is_ascii_digit() {
                    return Ok(());
                }
                self.end_value(c)
            }
            State::Literal(word, read) => {
                let want = word.as_bytes()[read];
                if c != want {
                    return Err(literal_context(word, read));
                }
                self.state = if read + 1 == word.len() {
                    State::EndValue
                } else {
                    State::Literal(word, read + 1)
                };
                Ok(())
            }
        }
    }

    fn begin_value(&mut self, c: u8) -> Result<(), &'static str> {
        if is_space(c) {
            return Ok(());
        }
        self.state = match c {
            b'{' => {
                self.stack.push(Parse::ObjectKey);
                State::BeginStringOrEmpty
            }
            b'[' => {
                self.stack.push(Parse::ArrayValue);
                State::BeginValueOrEmpty
            }
            b'"' => State::InString,
            b'-' => State::Neg,
            b'0' => State::Zero,
            b'1'..=b'9' => State::One,
            b't' => State::Literal("true", 1),
            b'f' => State::Literal("false", 1),
            b'n' => State::Literal("null", 1),
            _ => return Err("looking for beginning of value"),
        };
        Ok(())
    }

    fn begin_string(&mut self, c: u8) -> Result<(), &'static str> {
        if is_space(c) {
            return Ok(());
        }
        if c == b'"' {
            self.state = State::InString;
            return Ok(());
        }
        Err("looking for beginning of object key string")
    }

    fn zero(&mut self, c: u8) -> Result<(), &'static str> {
        match c {
            b'.' => {
                self.state = State::Dot;
                Ok(())
            }
            b'e' | b'E' => {
                self.state = State::E;
                Ok(())
            }
            _ => self.end_value(c),
        }
    }

    fn e_sign(&mut self, c: u8) -> Result<(), &'static str> {
        if c.is_ascii_digit() {
            self.state = State::E0;
            return Ok(());
        }
        Err("in exponent of numeric literal")
    }

    /// After a value: what may follow it where it is.
    fn end_value(&mut self, c: u8) -> Result<(), &'static str> {
        let Some(top) = self.stack.last().copied() else {
            self.state = State::EndTop;
            return self.step(c);
        };
        if is_space(c) {
            self.state = State::EndValue;
            return Ok(());
        }
        match top {
            Parse::ObjectKey => {
                if c == b':' {
                    if let Some(top) = self.stack.last_mut() {
                        *top = Parse::ObjectValue;
                    }
                    self.state = State::BeginValue;
                    return Ok(());
                }
                Err("after object key")
            }
            Parse::ObjectValue => match c {
                b',' => {
                    if let Some(top) = self.stack.last_mut() {
                        *top = Parse::ObjectKey;
                    }
                    self.state = State::BeginString;
                    Ok(())
                }
                b'}' => {
                    self.stack.pop();
                    self.state = State::EndValue;
                    if self.stack.is_empty() {
                        self.state = State::EndTop;
                    }
                    Ok(())
                }
                _ => Err("after object key:value pair"),
            },
            Parse::ArrayValue => match c {
                b',' => {
                    self.state = State::BeginValue;
                    Ok(())
                }
                b']' => {
                    self.stack.pop();
                    self.state = State::EndValue;
                    if self.stack.is_empty() {
                        self.state = State::EndTop;
                    }
                    Ok(())
                }
                _ => Err("after array element"),
            },
        }
    }

    /// The end of the input: a complete value, or Go's complaint.
    fn eof(&mut self) -> Result<(), String> {
        if self.state == State::EndTop {
            return Ok(());
        }
        // A number at the very end is complete once a space follows it.
        if matches!(
            self.state,
            State::One | State::Zero | State::Dot0 | State::E0 | State::EndValue
        ) && self.step(b' ').is_ok()
            && self.state == State::EndTop
        {
            return Ok(());
        }
        Err("unexpected end of JSON input".to_owned())
    }
}

/// Go's context for a literal broken at byte `read`, e.g. `in literal true
/// (expecting 'r')`.
fn literal_context(word: &str, read: usize) -> &'static str {
    match (word, read) {
        ("true", 1) => "in literal true (expecting 'r')",
        ("true", 2) => "in literal true (expecting 'u')",
        ("true", _) => "in literal true (expecting 'e')",
        ("false", 1) => "in literal false (expecting 'a')",
        ("false", 2) => "in literal false (expecting 'l')",
        ("false", 3) => "in literal false (expecting 's')",
        ("false", _) => "in literal false (expecting 'e')",
        ("null", 1) => "in literal null (expecting 'u')",
        (_, _) => "in literal null (expecting 'l')",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn syntax_errors_read_as_gos() {
        for (input, want) in [
            ("", "unexpected end of JSON input"),
            ("{", "unexpected end of JSON input"),
            (r#"{"a": 1"#, "unexpected end of JSON input"),
            (
                "{bad}",
                "invalid character 'b' looking for beginning of object key string",
            ),
            (
                "nope",
                "invalid character 'o' in literal null (expecting 'u')",
            ),
            ("x", "invalid character 'x' looking for beginning of value"),
            (r#"{"a" 1}"#, "invalid character '1' after object key"),
            (
                r#"{"a": 1 "b": 2}"#,
                "invalid character '\"' after object key:value pair",
            ),
            ("[1 2]", "invalid character '2' after array element"),
            ("{} x", "invalid character 'x' after top-level value"),
            (
                "1.x",
                "invalid character 'x' after decimal point in numeric literal",
            ),
            ("-x", "invalid character 'x' in numeric literal"),
            ("\"a\nb\"", r"invalid character '\n' in string literal"),
            (r#""\q""#, "invalid character 'q' in string escape code"),
            (
                "'a'",
                r"invalid character '\'' looking for beginning of value",
            ),
        ] {
            assert_eq!(
                syntax_error(input.as_bytes()).as_deref(),
                Some(want),
                "{input}"
            );
        }
        assert_eq!(
            syntax_error(&[0x81]).as_deref(),
            Some(r"invalid character '\u0081' looking for beginning of value")
        );
        for good in [
            "{}",
            " [1, 2.5e-3, \"x\\u00e9\", true, null] ",
            "-0",
            "7",
            "{\"a\":{}}",
        ] {
            assert_eq!(syntax_error(good.as_bytes()), None, "{good}");
        }
    }
}
