//! A tiny JSON writer that renders exactly what Go's `encoding/json` renders, so that responses
//! are byte-for-byte those of Jaeger's query service: fields in declaration order, `<`, `>`, `&`,
//! U+2028 and U+2029 escaped, floats in Go's shortest form (`1e+21`, `1e-7`).

/// A JSON value with object fields kept in the order they were added.
#[derive(Clone, Debug, PartialEq)]
pub enum Json {
    /// `null`
    Null,
    /// `true` / `false`
    Bool(bool),
    /// A signed integer.
    Int(i64),
    /// An unsigned integer.
    UInt(u64),
    /// A float, rendered as Go renders a `float64`.
    Float(f64),
    /// A string.
    Str(String),
    /// An array.
    Arr(Vec<Json>),
    /// An object, fields in order.
    Obj(Vec<(String, Json)>),
}

impl Json {
    /// An object from `(key, value)` pairs.
    pub fn obj<K: Into<String>>(fields: impl IntoIterator<Item = (K, Json)>) -> Json {
        Json::Obj(fields.into_iter().map(|(k, v)| (k.into(), v)).collect())
    }

    /// A string value.
    pub fn str(s: impl Into<String>) -> Json {
        Json::Str(s.into())
    }

    /// An array of strings.
    pub fn strs<S: AsRef<str>>(items: impl IntoIterator<Item = S>) -> Json {
        Json::Arr(items.into_iter().map(|s| Json::str(s.as_ref())).collect())
    }

    /// `null` for an empty list (a Go nil slice), else the array.
    pub fn nil_if_empty(items: Vec<Json>) -> Json {
        if items.is_empty() {
            Json::Null
        } else {
            Json::Arr(items)
        }
    }

    /// Renders the value compactly, as `json.Marshal` does.
    pub fn render(&self) -> String {
        let mut out = String::new();
        self.write(&mut out);
        out
    }

    fn write(&self, out: &mut String) {
        match self {
            Json::Null => out.push_str("null"),
            Json::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
            Json::Int(i) => out.push_str(&i.to_string()),
            Json::UInt(u) => out.push_str(&u.to_string()),
            Json::Float(f) => write_go_float(*f, out),
            Json::Str(s) => write_go_string(s, out),
            Json::Arr(items) => {
                out.push('[');
                for (i, v) in items.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    v.write(out);
                }
                out.push(']');
            }
            Json::Obj(fields) => {
                out.push('{');
                for (i, (k, v)) in fields.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    write_go_string(k, out);
                    out.push(':');
                    v.write(out);
                }
                out.push('}');
            }
        }
    }
}

const HEX: &[u8; 16] = b"0123456789abcdef";

/// Writes `s` as a JSON string the way Go's encoder does (HTML-safe escaping).
pub fn write_go_string(s: &str, out: &mut String) {
    // Runs of bytes that need no escaping are copied in one go: every byte Go escapes is ASCII,
    // except U+2028 / U+2029, whose UTF-8 encodings start with 0xE2.
    out.reserve(s.len() + 2);
    out.push('"');
    let bytes = s.as_bytes();
    let mut start = 0;
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i];
        let plain = b >= 0x20 && !matches!(b, b'"' | b'\\' | b'<' | b'>' | b'&' | 0xE2);
        if plain {
            i += 1;
            continue;
        }
        if b == 0xE2
            && !(bytes.get(i + 1) == Some(&0x80) && matches!(bytes.get(i + 2), Some(0xA8 | 0xA9)))
        {
            i += 1;
            continue;
        }
        out.push_str(&s[start..i]);
        let width = match b {
            b'"' => {
                out.push_str("\\\"");
                1
            }
            b'\\' => {
                out.push_str("\\\\");
                1
            }
            b'\n' => {
                out.push_str("\\n");
                1
            }
            b'\r' => {
                out.push_str("\\r");
                1
            }
            b'\t' => {
                out.push_str("\\t");
                1
            }
            0x08 => {
                out.push_str("\\b");
                1
            }
            0x0c => {
                out.push_str("\\f");
                1
            }
            0xE2 => {
                push_u_escape(if bytes[i + 2] == 0xA8 { 0x2028 } else { 0x2029 }, out);
                3
            }
            _ => {
                push_u_escape(u32::from(b), out);
                1
            }
        };
        i += width;
        start = i;
    }
    out.push_str(&s[start..]);
    out.push('"');
}

fn push_u_escape(cp: u32, out: &mut String) {
    out.push_str("\\u");
    for shift in [12, 8, 4, 0] {
        out.push(char::from(HEX[((cp >> shift) & 0xf) as usize]));
    }
}

/// Writes a float as Go's `encoding/json` does: `'f'` format between 1e-6 and 1e21, else `'e'`
/// with a signed exponent of at least two digits for positive exponents (`1e+21`, `1e-7`).
/// NaN and infinities, which Go refuses to encode, are written as the strings `"NaN"`, `"+Inf"`
/// and `"-Inf"` so that one odd attribute cannot fail a whole response.
pub fn write_go_float(f: f64, out: &mut String) {
    if f.is_nan() {
        out.push_str("\"NaN\"");
        return;
    }
    if f.is_infinite() {
        out.push_str(if f > 0.0 { "\"+Inf\"" } else { "\"-Inf\"" });
        return;
    }
    let abs = f.abs();
    if abs != 0.0 && !(1e-6..1e21).contains(&abs) {
        // Rust's `{:e}` gives the shortest round-trip digits, e.g. "1.5e-7" or "1e21".
        let s = format!("{f:e}");
        let (mantissa, exp) = s.split_once('e').unwrap_or((&s, "0"));
        out.push_str(mantissa);
        out.push('e');
        match exp.strip_prefix('-') {
            Some(digits) => {
                out.push('-');
                out.push_str(digits);
            }
            None => {
                out.push('+');
                if exp.len() < 2 {
                    out.push('0');
                }
                out.push_str(exp);
            }
        }
    } else {
        // Rust's `{}` for f64 is the shortest round-trip decimal without exponent, as Go's 'f'/-1.
        out.push_str(&format!("{f}"));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn float(f: f64) -> String {
        Json::Float(f).render()
    }

    #[test]
    fn floats_like_go() {
        let cases: &[(f64, &str)] = &[
            (0.0, "0"),
            (-0.0, "-0"),
            (1.0, "1"),
            (-2.5, "-2.5"),
            (0.1, "0.1"),
            (1e20, "100000000000000000000"),
            (1e21, "1e+21"),
            (1.5e300, "1.5e+300"),
            (1e-6, "0.000001"),
            (1e-7, "1e-7"),
            (-1.25e-10, "-1.25e-10"),
            (123456.789, "123456.789"),
            (f64::NAN, "\"NaN\""),
            (f64::NEG_INFINITY, "\"-Inf\""),
        ];
        for (f, want) in cases {
            assert_eq!(float(*f), *want, "float {f}");
        }
    }

    #[test]
    fn strings_like_go() {
        let cases: &[(&str, &str)] = &[
            ("plain", r#""plain""#),
            ("a\"b\\c", r#""a\"b\\c""#),
            ("<a>&", r#""\u003ca\u003e\u0026""#),
            ("\n\r\t\u{8}\u{c}\u{1}", r#""\n\r\t\b\f\u0001""#),
            ("\u{2028}é", "\"\\u2028é\""),
            ("a\u{2029}b", "\"a\\u2029b\""),
            ("\u{2030}\u{20ac}", "\"\u{2030}\u{20ac}\""),
            ("tail\u{1}", "\"tail\\u0001\""),
            ("\u{7f}x\u{8}\u{c}", "\"\u{7f}x\\b\\f\""),
        ];
        for (s, want) in cases {
            assert_eq!(Json::str(*s).render(), *want, "string {s:?}");
        }
    }

    #[test]
    fn objects_keep_field_order() {
        let v = Json::obj([
            ("z", Json::Int(-1)),
            ("a", Json::Arr(vec![Json::Null, Json::Bool(true)])),
        ]);
        assert_eq!(v.render(), r#"{"z":-1,"a":[null,true]}"#);
    }
}
