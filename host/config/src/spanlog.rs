//! The span log's settings (`span-log.*`) and the ingester's partitions
//! (`ingester.partitions`).

use std::time::Duration;

/// Validated span-log settings (`span-log.*`).
#[derive(Debug, Clone, PartialEq)]
pub struct SpanLogSettings {
    /// NATS servers, `nats://host:port` each.
    pub urls: Vec<String>,
    /// JetStream stream name.
    pub stream: String,
    /// Partitions (subjects) the trace ids are spread over.
    pub partitions: u32,
    /// Stream replicas (1, 3 or 5 in a cluster).
    pub replicas: usize,
    /// Messages older than this are dropped by the stream (0: kept until `max_bytes`).
    pub max_age: Duration,
    /// Stream size bound in bytes; the oldest messages go first (-1: unbounded).
    pub max_bytes: i64,
    /// TLS towards NATS: used when a CA is given or a url is `tls://`.
    pub tls: crate::tls::ClientTlsFiles,
}

/// Parses `--ingester.partitions`: comma-separated numbers and inclusive ranges (`0-3,6`), each
/// below `count`; sorted, without duplicates.
pub fn parse_partitions(text: &str, count: u32) -> Result<Vec<u32>, String> {
    let mut out = Vec::new();
    for part in text.split(',').map(str::trim) {
        let (lo, hi) = match part.split_once('-') {
            Some((a, b)) => (a.trim(), b.trim()),
            None => (part, part),
        };
        let num = |s: &str| {
            s.parse::<u32>()
                .map_err(|_| format!("{part:?} is not a partition number or range such as 0-3"))
        };
        let (lo, hi) = (num(lo)?, num(hi)?);
        if lo > hi {
            return Err(format!("range {part:?} runs backwards"));
        }
        if hi >= count {
            return Err(format!(
                "partition {hi} does not exist: span-log.partitions is {count} (0-{})",
                count - 1
            ));
        }
        out.extend(lo..=hi);
    }
    out.sort_unstable();
    out.dedup();
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn partition_lists() {
        for (text, want) in [
            ("0-3", vec![0, 1, 2, 3]),
            ("4-7", vec![4, 5, 6, 7]),
            ("5,1,1-2", vec![1, 2, 5]),
            ("7", vec![7]),
        ] {
            assert_eq!(parse_partitions(text, 8), Ok(want), "{text}");
        }
        for (text, want) in [
            (
                "8",
                "partition 8 does not exist: span-log.partitions is 8 (0-7)",
            ),
            ("3-1", "range \"3-1\" runs backwards"),
            ("a", "\"a\" is not a partition number or range such as 0-3"),
            ("", "\"\" is not a partition number or range such as 0-3"),
        ] {
            assert_eq!(parse_partitions(text, 8), Err(want.to_string()), "{text}");
        }
    }
}
