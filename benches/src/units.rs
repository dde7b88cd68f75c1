//! Parsing of command-line durations (`500ms`, `10s`, `5m`, `1.5h`).

use std::time::Duration;

/// Parses a number followed by `ns`, `us`, `ms`, `s`, `m` or `h` (a bare number is seconds).
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let t = s.trim();
    let split = t
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let value: f64 = num
        .parse()
        .map_err(|_| format!("invalid duration {s:?}: expected e.g. 10s, 500ms, 5m"))?;
    let scale = match unit {
        "ns" => 1e-9,
        "us" | "µs" => 1e-6,
        "ms" => 1e-3,
        "" | "s" => 1.0,
        "m" => 60.0,
        "h" => 3600.0,
        _ => {
            return Err(format!(
                "invalid duration unit {unit:?} in {s:?}: use ns, us, ms, s, m or h"
            ))
        }
    };
    Duration::try_from_secs_f64(value * scale).map_err(|e| format!("invalid duration {s:?}: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        let ok = [
            ("10s", Duration::from_secs(10)),
            ("500ms", Duration::from_millis(500)),
            ("5m", Duration::from_secs(300)),
            ("1.5h", Duration::from_secs(5400)),
            ("2", Duration::from_secs(2)),
            ("250us", Duration::from_micros(250)),
        ];
        for (s, d) in ok {
            assert_eq!(parse_duration(s), Ok(d), "{s}");
        }
        assert_eq!(
            parse_duration("10d").unwrap_err(),
            "invalid duration unit \"d\" in \"10d\": use ns, us, ms, s, m or h"
        );
        assert_eq!(
            parse_duration("fast").unwrap_err(),
            "invalid duration \"fast\": expected e.g. 10s, 500ms, 5m"
        );
    }
}
