//! A tiny JSON writer that renders exactly what Go's `encoding/json` renders, so that responses
//! are byte-for-byte those of Jaeger's query service: fields in declaration order, `<`, `>`, `&`,
//! U+2028 and U+2029 escaped, floats in Go's shortest form (`1e+21`, `1e-7`).
//!
//! Two ways in: the [`Json`] tree for small responses, and the `write_*` functions, which append
//! straight to one output buffer for the large ones (trace JSON), with no tree in between.

use core::fmt::Write as _;

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
            Json::Int(i) => write_i64(*i, out),
            Json::UInt(u) => write_u64(*u, out),
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

/// What Go's encoder does with each byte of a string: `0` copies it, `b'u'` writes `\u00XX`,
/// `ESC_E2` asks for a look at the next two bytes (U+2028 / U+2029 start with 0xE2), and any
/// other value is the letter written after a backslash (`\"`, `\\`, `\n`, …).
static ESCAPE: [u8; 256] = escape_table();
const ESC_E2: u8 = 1;

const fn escape_table() -> [u8; 256] {
    let mut t = [0u8; 256];
    let mut b = 0;
    while b < 0x20 {
        t[b] = b'u';
        b += 1;
    }
    t[b'\n' as usize] = b'n';
    t[b'\r' as usize] = b'r';
    t[b'\t' as usize] = b't';
    t[0x08] = b'b';
    t[0x0c] = b'f';
    t[b'"' as usize] = b'"';
    t[b'\\' as usize] = b'\\';
    t[b'<' as usize] = b'u';
    t[b'>' as usize] = b'u';
    t[b'&' as usize] = b'u';
    t[0xE2] = ESC_E2;
    t
}

/// Writes `s` as a JSON string the way Go's encoder does (HTML-safe escaping).
pub fn write_go_string(s: &str, out: &mut String) {
    out.reserve(s.len() + 2);
    out.push('"');
    write_go_string_body(s, out);
    out.push('"');
}

/// [`write_go_string`] without the quotes.
pub fn write_go_string_body(s: &str, out: &mut String) {
    // Runs of bytes that need no escaping are copied in one go.
    let bytes = s.as_bytes();
    let mut start = 0;
    let mut i = 0;
    loop {
        i = next_special(bytes, i);
        let Some(&b) = bytes.get(i) else { break };
        let esc = ESCAPE[usize::from(b)];
        if esc == ESC_E2 {
            if bytes.get(i + 1) == Some(&0x80) && matches!(bytes.get(i + 2), Some(0xA8 | 0xA9)) {
                out.push_str(&s[start..i]);
                push_u_escape(if bytes[i + 2] == 0xA8 { 0x2028 } else { 0x2029 }, out);
                i += 3;
                start = i;
            } else {
                i += 1;
            }
            continue;
        }
        out.push_str(&s[start..i]);
        if esc == b'u' {
            push_u_escape(u32::from(b), out);
        } else {
            out.push('\\');
            out.push(char::from(esc));
        }
        i += 1;
        start = i;
    }
    out.push_str(&s[start..]);
}

const LO: u64 = 0x0101_0101_0101_0101;
const HI: u64 = 0x8080_8080_8080_8080;

/// Whether any byte of `w` is zero (exact for "any", per SWAR folklore).
const fn has_zero_byte(w: u64) -> bool {
    w.wrapping_sub(LO) & !w & HI != 0
}

/// Whether none of the 8 bytes needs a look: all ASCII, none below 0x20, none of `"\<>&`.
const fn word_is_plain(w: u64) -> bool {
    let below_space = w.wrapping_sub(LO * 0x20) & !w & HI != 0;
    !(below_space
        || w & HI != 0
        || has_zero_byte(w ^ (LO * b'"' as u64))
        || has_zero_byte(w ^ (LO * b'\\' as u64))
        || has_zero_byte(w ^ (LO * b'<' as u64))
        || has_zero_byte(w ^ (LO * b'>' as u64))
        || has_zero_byte(w ^ (LO * b'&' as u64)))
}

/// The index of the first byte from `i` on with a non-zero [`ESCAPE`] entry, or the length.
/// Eight bytes at a time while they are plain ASCII.
fn next_special(bytes: &[u8], mut i: usize) -> usize {
    while let Some(word) = bytes.get(i..i + 8) {
        let Ok(word) = <[u8; 8]>::try_from(word) else {
            break;
        };
        if !word_is_plain(u64::from_le_bytes(word)) {
            if let Some(j) = word.iter().position(|&b| ESCAPE[usize::from(b)] != 0) {
                return i + j;
            }
        }
        i += 8;
    }
    // Fewer than 8 bytes left: test the last 8 bytes of the string (re-testing some plain ones)
    // when it has 8, else byte by byte.
    let tail = &bytes[i.min(bytes.len())..];
    if tail.is_empty() {
        return bytes.len();
    }
    if let Some(last) = bytes.len().checked_sub(8).and_then(|s| bytes.get(s..)) {
        if let Ok(word) = <[u8; 8]>::try_from(last) {
            if word_is_plain(u64::from_le_bytes(word)) {
                return bytes.len();
            }
        }
    }
    match tail.iter().position(|&b| ESCAPE[usize::from(b)] != 0) {
        Some(j) => i + j,
        None => bytes.len(),
    }
}

fn push_u_escape(cp: u32, out: &mut String) {
    let mut buf = *b"\\u0000";
    for (k, shift) in [12, 8, 4, 0].into_iter().enumerate() {
        buf[2 + k] = HEX[((cp >> shift) & 0xf) as usize];
    }
    out.push_str(core::str::from_utf8(&buf).unwrap_or_default());
}

/// `"00"`, `"01"`, … `"99"`: two decimal digits per table lookup.
static DIGITS2: [u8; 200] = digits2();

const fn digits2() -> [u8; 200] {
    let mut t = [0u8; 200];
    let mut i = 0;
    while i < 100 {
        t[2 * i] = b'0' + (i / 10) as u8;
        t[2 * i + 1] = b'0' + (i % 10) as u8;
        i += 1;
    }
    t
}

/// Writes an unsigned integer in decimal, without allocating.
pub fn write_u64(mut n: u64, out: &mut String) {
    let mut buf = [0u8; 20];
    let mut pos = buf.len();
    while n >= 100 {
        let d = (n % 100) as usize * 2;
        n /= 100;
        pos -= 2;
        buf[pos..pos + 2].copy_from_slice(&DIGITS2[d..d + 2]);
    }
    if n >= 10 {
        let d = n as usize * 2;
        pos -= 2;
        buf[pos..pos + 2].copy_from_slice(&DIGITS2[d..d + 2]);
    } else {
        pos -= 1;
        buf[pos] = b'0' + n as u8;
    }
    // Only ASCII digits were written.
    out.push_str(core::str::from_utf8(&buf[pos..]).unwrap_or_default());
}

/// Writes a signed integer in decimal, without allocating.
pub fn write_i64(n: i64, out: &mut String) {
    if n < 0 {
        out.push('-');
    }
    write_u64(n.unsigned_abs(), out);
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
        let _ = write!(out, "{f}");
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
            ("eight ok", r#""eight ok""#),
            ("sixteen bytes ok<", r#""sixteen bytes ok\u003c""#),
            ("0123456789abcdef\"x", r#""0123456789abcdef\"x""#),
            (
                "é long text with \u{2028} in the middle!",
                "\"é long text with \\u2028 in the middle!\"",
            ),
            ("ünïcödé but plain text", "\"ünïcödé but plain text\""),
            ("12345678\u{1f}", r#""12345678\u001f""#),
        ];
        for (s, want) in cases {
            assert_eq!(Json::str(*s).render(), *want, "string {s:?}");
        }
    }

    /// Go's escaping, one character at a time.
    fn go_escape_reference(s: &str) -> String {
        let mut out = String::from("\"");
        for c in s.chars() {
            match c {
                '"' => out.push_str("\\\""),
                '\\' => out.push_str("\\\\"),
                '\n' => out.push_str("\\n"),
                '\r' => out.push_str("\\r"),
                '\t' => out.push_str("\\t"),
                '\u{8}' => out.push_str("\\b"),
                '\u{c}' => out.push_str("\\f"),
                c if (c as u32) < 0x20
                    || matches!(c, '<' | '>' | '&' | '\u{2028}' | '\u{2029}') =>
                {
                    out.push_str(&format!("\\u{:04x}", c as u32));
                }
                c => out.push(c),
            }
        }
        out.push('"');
        out
    }

    #[test]
    fn every_special_at_every_offset() {
        let specials = (0u32..0x80)
            .chain([0xe9, 0x2027, 0x2028, 0x2029, 0x202a, 0x1f600])
            .filter_map(char::from_u32);
        for c in specials {
            for (filler, before) in ["a", "7"].iter().flat_map(|f| (0..18).map(move |n| (f, n))) {
                for after in [0, 1, 7, 9] {
                    let s = format!("{}{c}{}", filler.repeat(before), "é".repeat(after));
                    let mut got = String::new();
                    write_go_string(&s, &mut got);
                    assert_eq!(got, go_escape_reference(&s), "{s:?}");
                }
            }
        }
    }

    #[test]
    fn integers() {
        let cases: &[(i64, &str)] = &[
            (0, "0"),
            (7, "7"),
            (10, "10"),
            (99, "99"),
            (100, "100"),
            (-1, "-1"),
            (1_795_600_800_000_000, "1795600800000000"),
            (i64::MAX, "9223372036854775807"),
            (i64::MIN, "-9223372036854775808"),
        ];
        for (i, want) in cases {
            assert_eq!(Json::Int(*i).render(), *want);
        }
        for u in [0, 5, 42, 999, 1000, 12_345, u64::MAX] {
            assert_eq!(Json::UInt(u).render(), u.to_string());
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
