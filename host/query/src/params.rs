//! Query-string parsing for both APIs: Go-compatible durations, integers and trace ids, Jaeger's
//! `tag`/`tags` syntax, UI lookbacks and RFC 3339 times, with Jaeger's error wording.

use std::collections::BTreeMap;

use spoor_core::TraceId;

/// A bad request parameter. Messages follow Jaeger's wording where Jaeger has one.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ParamError {
    /// A search without trace ids named no service.
    #[error("parameter 'service' is required")]
    ServiceRequired,
    /// A v1 parameter could not be parsed; `detail` is Go's error text.
    #[error("unable to parse param '{param}': {detail}")]
    Unparsable {
        /// The parameter name.
        param: &'static str,
        /// What was wrong, naming the value.
        detail: String,
    },
    /// `maxDuration` below `minDuration`.
    #[error("'maxDuration' should be greater than 'minDuration'")]
    MaxBelowMin,
    /// A `tag=` value without a colon.
    #[error("malformed 'tag' parameter, expecting key:value, received: {0}")]
    MalformedTag(String),
    /// A `tags=` value that is not a JSON object of strings.
    #[error("malformed 'tags' parameter, cannot unmarshal JSON: {0}")]
    MalformedTags(String),
    /// A `traceID=` search parameter that is not a trace id.
    #[error("cannot parse traceID param: {0}")]
    TraceIdParam(String),
    /// A trace id in the URL path that is not a trace id.
    #[error("{0}")]
    TraceIdPath(String),
    /// A v3 parameter could not be parsed.
    #[error("malformed parameter {param}: {detail}")]
    Malformed {
        /// The parameter name as given in the request.
        param: &'static str,
        /// What was wrong, naming the value.
        detail: String,
    },
    /// A v3 search without its time window.
    #[error("query.startTimeMin and query.startTimeMax are required")]
    TimeWindowRequired,
    /// A v3 search whose window is empty.
    #[error("query.startTimeMin must be before query.startTimeMax")]
    TimeWindowEmpty,
}

/// A decoded query string, keeping every value of repeated parameters.
#[derive(Clone, Debug, Default)]
pub struct Params(Vec<(String, String)>);

impl Params {
    /// Decodes `a=1&b=x%20y&b=z` (`+` is a space, bad escapes are kept literally).
    pub fn parse(raw: Option<&str>) -> Self {
        let mut out = Vec::new();
        for pair in raw.unwrap_or("").split('&').filter(|p| !p.is_empty()) {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            out.push((percent_decode(k), percent_decode(v)));
        }
        Params(out)
    }

    /// The first value of `name`, treating an empty value as absent (as Jaeger does).
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
            .filter(|v| !v.is_empty())
    }

    /// The first non-empty value of `canonical`, else of `alias`, with the name that was used.
    pub fn get_either(
        &self,
        canonical: &'static str,
        alias: &'static str,
    ) -> Option<(&str, &'static str)> {
        self.get(canonical)
            .map(|v| (v, canonical))
            .or_else(|| self.get(alias).map(|v| (v, alias)))
    }

    /// Every value of `name`, in order.
    pub fn all(&self, name: &str) -> Vec<&str> {
        self.0
            .iter()
            .filter(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
            .collect()
    }
}

fn hex_val(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

/// Decodes `%XX` escapes and `+` in a query-string component.
pub fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < b.len() => match (hex_val(b[i + 1]), hex_val(b[i + 2])) {
                (Some(h), Some(l)) => {
                    out.push(h << 4 | l);
                    i += 3;
                    continue;
                }
                _ => out.push(b'%'),
            },
            c => out.push(c),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Quotes `s` as Go's `strconv.Quote` does for the texts that appear in error messages.
pub fn go_quote(s: &str) -> String {
    let mut out = String::from("\"");
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if c.is_control() => out.push_str(&format!("\\x{:02x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// Go's `strconv.ParseInt(s, 10, 64)`, with Go's error text.
pub fn go_parse_i64(s: &str) -> Result<i64, String> {
    parse_int_digits(s, "ParseInt", i64::MIN as i128, i64::MAX as i128).map(|v| v as i64)
}

/// Go's `strconv.ParseInt(s, 10, 32)`, with Go's error text.
pub fn go_parse_i32(s: &str) -> Result<i32, String> {
    parse_int_digits(s, "ParseInt", i32::MIN as i128, i32::MAX as i128).map(|v| v as i32)
}

fn parse_int_digits(s: &str, func: &str, min: i128, max: i128) -> Result<i128, String> {
    let syntax = || format!("strconv.{func}: parsing {}: invalid syntax", go_quote(s));
    let (neg, digits) = match s.as_bytes().first() {
        Some(b'-') => (true, &s[1..]),
        Some(b'+') => (false, &s[1..]),
        _ => (false, s),
    };
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err(syntax());
    }
    let mut v: i128 = 0;
    for b in digits.bytes() {
        v = v.saturating_mul(10).saturating_add(i128::from(b - b'0'));
    }
    if neg {
        v = -v;
    }
    if v < min || v > max {
        return Err(format!(
            "strconv.{func}: parsing {}: value out of range",
            go_quote(s)
        ));
    }
    Ok(v)
}

/// Go's `time.ParseDuration`: nanoseconds, with Go's error text.
pub fn go_parse_duration(orig: &str) -> Result<i64, String> {
    let invalid = || format!("time: invalid duration {}", go_quote(orig));
    let mut s = orig;
    let mut neg = false;
    if let Some(c) = s.chars().next() {
        if c == '-' || c == '+' {
            neg = c == '-';
            s = &s[1..];
        }
    }
    if s == "0" {
        return Ok(0);
    }
    if s.is_empty() {
        return Err(invalid());
    }
    const LIMIT: u64 = 1 << 63;
    let mut total: u64 = 0;
    while !s.is_empty() {
        let b = s.as_bytes();
        if !(b[0] == b'.' || b[0].is_ascii_digit()) {
            return Err(invalid());
        }
        // Leading integer.
        let int_len = b.iter().take_while(|c| c.is_ascii_digit()).count();
        let mut v: u64 = 0;
        for &c in &b[..int_len] {
            if v > (LIMIT - 1) / 10 {
                return Err(invalid());
            }
            v = v * 10 + u64::from(c - b'0');
            if v > LIMIT {
                return Err(invalid());
            }
        }
        let pre = int_len > 0;
        s = &s[int_len..];
        // Fraction.
        let mut f: u64 = 0;
        let mut scale: f64 = 1.0;
        let mut post = false;
        if s.starts_with('.') {
            s = &s[1..];
            let frac_len = s.bytes().take_while(|c| c.is_ascii_digit()).count();
            let mut overflow = false;
            for c in s[..frac_len].bytes() {
                if overflow {
                    continue;
                }
                if f > (LIMIT - 1) / 10 {
                    overflow = true;
                    continue;
                }
                let y = f * 10 + u64::from(c - b'0');
                if y > LIMIT {
                    overflow = true;
                    continue;
                }
                f = y;
                scale *= 10.0;
            }
            post = frac_len > 0;
            s = &s[frac_len..];
        }
        if !pre && !post {
            return Err(invalid());
        }
        // Unit.
        let unit_len = s
            .char_indices()
            .find(|(_, c)| *c == '.' || c.is_ascii_digit())
            .map_or(s.len(), |(i, _)| i);
        if unit_len == 0 {
            return Err(format!("time: missing unit in duration {}", go_quote(orig)));
        }
        let u = &s[..unit_len];
        s = &s[unit_len..];
        let unit: u64 = match u {
            "ns" => 1,
            "us" | "\u{b5}s" | "\u{3bc}s" => 1_000,
            "ms" => 1_000_000,
            "s" => 1_000_000_000,
            "m" => 60_000_000_000,
            "h" => 3_600_000_000_000,
            _ => {
                return Err(format!(
                    "time: unknown unit {} in duration {}",
                    go_quote(u),
                    go_quote(orig)
                ))
            }
        };
        if v > LIMIT / unit {
            return Err(invalid());
        }
        v *= unit;
        if f > 0 {
            v += (f as f64 * (unit as f64 / scale)) as u64;
            if v > LIMIT {
                return Err(invalid());
            }
        }
        total += v;
        if total > LIMIT {
            return Err(invalid());
        }
    }
    if neg {
        return Ok((total as i128).wrapping_neg() as i64);
    }
    if total > LIMIT - 1 {
        return Err(invalid());
    }
    Ok(total as i64)
}

/// The UI's lookback (`1h`, `2d`, `1w`, or any Go duration); `custom` gives `None` (use start/end).
pub fn parse_lookback(s: &str) -> Result<Option<u64>, ParamError> {
    if s == "custom" {
        return Ok(None);
    }
    let bad = || ParamError::Unparsable {
        param: "lookback",
        detail: format!(
            "invalid lookback {}, expecting a duration like 1h or 2d",
            go_quote(s)
        ),
    };
    let day = 86_400_000_000_000u64;
    // The unit is the last character, which may be more than one byte: `split_at` on a byte
    // count panicked on `lookback=é` (found by fuzzing).
    let (num, unit) = match s.char_indices().next_back() {
        Some((i, _)) => s.split_at(i),
        None => ("", ""),
    };
    let mult = match unit {
        "d" => Some(day),
        "w" => Some(7 * day),
        _ => None,
    };
    if let Some(mult) = mult {
        if num.is_empty() || !num.bytes().all(|b| b.is_ascii_digit()) {
            return Err(bad());
        }
        let n: u64 = num.parse().map_err(|_| bad())?;
        return n.checked_mul(mult).map(Some).ok_or_else(bad);
    }
    match go_parse_duration(s) {
        Ok(d) if d >= 0 => Ok(Some(d as u64)),
        _ => Err(bad()),
    }
}

/// Jaeger's `tag=k:v` (repeatable; the value may contain colons) and `tags={"k":"v"}`
/// parameters, merged with JSON tags overriding, in key order.
pub fn parse_tags(simple: &[&str], json: &[&str]) -> Result<Vec<(String, String)>, ParamError> {
    let mut out: BTreeMap<String, String> = BTreeMap::new();
    for tag in simple {
        match tag.split_once(':') {
            Some((k, v)) => {
                out.insert(k.to_string(), v.to_string());
            }
            None => return Err(ParamError::MalformedTag(tag.to_string())),
        }
    }
    for tags in json {
        let map: BTreeMap<String, String> =
            serde_json::from_str(tags).map_err(|e| ParamError::MalformedTags(e.to_string()))?;
        out.extend(map);
    }
    Ok(out.into_iter().collect())
}

/// Jaeger's `model.TraceIDFromString`: 1 to 32 hex digits, error text as Go's.
pub fn parse_trace_id(s: &str) -> Result<TraceId, String> {
    fn part(p: &str) -> Result<u64, String> {
        if p.is_empty() || !p.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(format!(
                "strconv.ParseUint: parsing {}: invalid syntax",
                go_quote(p)
            ));
        }
        u64::from_str_radix(p, 16).map_err(|_| {
            format!(
                "strconv.ParseUint: parsing {}: value out of range",
                go_quote(p)
            )
        })
    }
    if s.len() > 32 {
        return Err(format!(
            "TraceID cannot be longer than 32 hex characters: {s}"
        ));
    }
    if s.len() > 16 {
        let split = s.len() - 16;
        if !s.is_char_boundary(split) {
            return Err(format!(
                "strconv.ParseUint: parsing {}: invalid syntax",
                go_quote(s)
            ));
        }
        let hi = part(&s[..split])?;
        let lo = part(&s[split..])?;
        return Ok(TraceId::from_high_low(hi, lo));
    }
    Ok(TraceId::from_high_low(0, part(s)?))
}

/// Days since 1970-01-01 of a proleptic Gregorian date.
fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (i64::from(m) + 9) % 12;
    let doy = (153 * mp + 2) / 5 + i64::from(d) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// An RFC 3339 time (`2026-11-25T10:00:00.5Z`, `…+01:00`) as nanoseconds since the epoch.
pub fn parse_rfc3339(s: &str) -> Result<u64, String> {
    let bad = || format!("parsing time {}: not an RFC 3339 time", go_quote(s));
    let b = s.as_bytes();
    if b.len() < 20 || !s.is_ascii() {
        return Err(bad());
    }
    let num = |from: usize, to: usize| -> Result<u32, String> {
        let p = &s[from..to];
        if p.bytes().all(|c| c.is_ascii_digit()) {
            p.parse::<u32>().map_err(|_| bad())
        } else {
            Err(bad())
        }
    };
    if b[4] != b'-'
        || b[7] != b'-'
        || !(b[10] == b'T' || b[10] == b't')
        || b[13] != b':'
        || b[16] != b':'
    {
        return Err(bad());
    }
    let (year, month, day) = (num(0, 4)?, num(5, 7)?, num(8, 10)?);
    let (hour, min, sec) = (num(11, 13)?, num(14, 16)?, num(17, 19)?);
    let leap = year % 4 == 0 && (year % 100 != 0 || year % 400 == 0);
    let dim = [
        31,
        if leap { 29 } else { 28 },
        31,
        30,
        31,
        30,
        31,
        31,
        30,
        31,
        30,
        31,
    ];
    if !(1..=12).contains(&month)
        || day == 0
        || day > dim[(month - 1) as usize]
        || hour > 23
        || min > 59
        || sec > 59
    {
        return Err(bad());
    }
    let mut i = 19;
    let mut nanos: u64 = 0;
    if b.get(i) == Some(&b'.') {
        let digits = b[i + 1..].iter().take_while(|c| c.is_ascii_digit()).count();
        if digits == 0 || digits > 9 {
            return Err(bad());
        }
        let frac = num(i + 1, i + 1 + digits)?;
        nanos = u64::from(frac) * 10u64.pow(9 - digits as u32);
        i += 1 + digits;
    }
    let offset_secs: i64 = match &s[i..] {
        "Z" | "z" => 0,
        tz if tz.len() == 6 && (tz.starts_with('+') || tz.starts_with('-')) && &tz[3..4] == ":" => {
            let h = i64::from(num(i + 1, i + 3)?);
            let m = i64::from(num(i + 4, i + 6)?);
            if h > 23 || m > 59 {
                return Err(bad());
            }
            let o = h * 3600 + m * 60;
            if tz.starts_with('-') {
                -o
            } else {
                o
            }
        }
        _ => return Err(bad()),
    };
    let secs = days_from_civil(i64::from(year), month, day) * 86_400
        + i64::from(hour) * 3600
        + i64::from(min) * 60
        + i64::from(sec)
        - offset_secs;
    if secs < 0 {
        return Err(format!("time {} is before 1970", go_quote(s)));
    }
    (secs as u64)
        .checked_mul(1_000_000_000)
        .and_then(|n| n.checked_add(nanos))
        .ok_or_else(bad)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn go_durations() {
        let ok: &[(&str, i64)] = &[
            ("0", 0),
            ("1.2s", 1_200_000_000),
            ("100ms", 100_000_000),
            ("5us", 5_000),
            ("5µs", 5_000),
            ("1h30m", 5_400_000_000_000),
            ("-1.5h", -5_400_000_000_000),
            (".5s", 500_000_000),
            ("1.s", 1_000_000_000),
            ("2562047h47m16.854775807s", i64::MAX),
        ];
        for (s, want) in ok {
            assert_eq!(go_parse_duration(s), Ok(*want), "duration {s}");
        }
        let bad: &[(&str, &str)] = &[
            ("", r#"time: invalid duration """#),
            ("abc", r#"time: invalid duration "abc""#),
            ("1", r#"time: missing unit in duration "1""#),
            ("1x", r#"time: unknown unit "x" in duration "1x""#),
            ("1d", r#"time: unknown unit "d" in duration "1d""#),
            (".s", r#"time: invalid duration ".s""#),
            ("9999999999h", r#"time: invalid duration "9999999999h""#),
        ];
        for (s, want) in bad {
            assert_eq!(go_parse_duration(s).unwrap_err(), *want, "duration {s}");
        }
    }

    #[test]
    fn lookbacks() {
        let h = 3_600_000_000_000u64;
        let cases: &[(&str, Option<u64>)] = &[
            ("1h", Some(h)),
            ("2d", Some(48 * h)),
            ("1w", Some(168 * h)),
            ("90m", Some(h * 3 / 2)),
            ("custom", None),
        ];
        for (s, want) in cases {
            assert_eq!(parse_lookback(s), Ok(*want), "lookback {s}");
        }
        for s in ["", "d", "-1h", "xd", "1y", "é", "1é", "2dé"] {
            let err = parse_lookback(s).unwrap_err().to_string();
            assert!(
                err.starts_with("unable to parse param 'lookback': invalid lookback"),
                "{s}: {err}"
            );
        }
    }

    #[test]
    fn go_ints() {
        assert_eq!(go_parse_i64("-42"), Ok(-42));
        assert_eq!(go_parse_i64("+7"), Ok(7));
        assert_eq!(
            go_parse_i64("x1").unwrap_err(),
            r#"strconv.ParseInt: parsing "x1": invalid syntax"#
        );
        assert_eq!(
            go_parse_i64("").unwrap_err(),
            r#"strconv.ParseInt: parsing "": invalid syntax"#
        );
        assert_eq!(
            go_parse_i32("3000000000").unwrap_err(),
            r#"strconv.ParseInt: parsing "3000000000": value out of range"#
        );
    }

    #[test]
    fn tags() {
        let t = parse_tags(&["http.url:http://x:80/", "b:2"], &[r#"{"b":"3","c":"4"}"#]).unwrap();
        let want: Vec<(String, String)> = [("b", "3"), ("c", "4"), ("http.url", "http://x:80/")]
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        assert_eq!(t, want);
        assert_eq!(
            parse_tags(&["novalue"], &[]).unwrap_err().to_string(),
            "malformed 'tag' parameter, expecting key:value, received: novalue"
        );
        for bad in [r#"{"a":1}"#, "not json", r#"["a"]"#] {
            let err = parse_tags(&[], &[bad]).unwrap_err().to_string();
            assert!(
                err.starts_with("malformed 'tags' parameter, cannot unmarshal JSON: "),
                "{bad}: {err}"
            );
        }
    }

    #[test]
    fn trace_ids() {
        assert_eq!(parse_trace_id("abc"), Ok(TraceId(0xabc)));
        assert_eq!(
            parse_trace_id("1000000000000000f"),
            Ok(TraceId::from_high_low(1, 0xf))
        );
        assert_eq!(
            parse_trace_id("xyz").unwrap_err(),
            r#"strconv.ParseUint: parsing "xyz": invalid syntax"#
        );
        assert_eq!(
            parse_trace_id("").unwrap_err(),
            r#"strconv.ParseUint: parsing "": invalid syntax"#
        );
        assert_eq!(
            parse_trace_id(&"a".repeat(33)).unwrap_err(),
            format!(
                "TraceID cannot be longer than 32 hex characters: {}",
                "a".repeat(33)
            )
        );
        assert_eq!(
            parse_trace_id("+1").unwrap_err(),
            r#"strconv.ParseUint: parsing "+1": invalid syntax"#
        );
    }

    #[test]
    fn rfc3339_times() {
        let ok: &[(&str, u64)] = &[
            ("1970-01-01T00:00:00Z", 0),
            ("2026-11-25T10:00:00Z", 1_795_600_800_000_000_000),
            ("2026-11-25T11:00:00.5+01:00", 1_795_600_800_500_000_000),
            ("2000-02-29T00:00:00.000000001Z", 951_782_400_000_000_001),
        ];
        for (s, want) in ok {
            assert_eq!(parse_rfc3339(s), Ok(*want), "time {s}");
        }
        for s in [
            "2026-11-25",
            "2026-13-01T00:00:00Z",
            "2026-02-30T00:00:00Z",
            "2026-11-25T10:00:00",
            "1969-12-31T23:59:59Z",
        ] {
            assert!(parse_rfc3339(s).is_err(), "time {s}");
        }
    }

    #[test]
    fn query_strings() {
        let p = Params::parse(Some(
            "service=a%20b&tag=k%3Av&tag=x:y&empty=&plus=a+b&bad=%zz",
        ));
        assert_eq!(p.get("service"), Some("a b"));
        assert_eq!(p.all("tag"), vec!["k:v", "x:y"]);
        assert_eq!(p.get("empty"), None);
        assert_eq!(p.get("plus"), Some("a b"));
        assert_eq!(p.get("bad"), Some("%zz"));
        assert_eq!(p.get_either("missing", "plus"), Some(("a b", "plus")));
    }
}
