//! OpenTelemetry consistent probability sampling: the 56-bit rejection threshold `T` (`ot=th:`),
//! the 56-bit randomness `R` (`ot=rv:` or the trace id's low 56 bits) and the decision `R >= T`.
//!
//! Follows the OpenTelemetry specification's `tracestate-probability-sampling.md` and
//! `tracestate-handling.md`:
//!
//! - a probability `p` becomes the threshold `T = (1 - p) * 2^56`, rounded as the specification's
//!   reference algorithm does: to [`DEFAULT_PRECISION`] significant hex digits (more digits for
//!   small probabilities, so that the precision applies to the digits after the leading `f`s);
//! - `T` is written as `th:` with 1 to 14 lowercase hex digits, trailing zeros removed, and `0`
//!   for probability 1; probability 0 ("never") is not a probability sampling and has no
//!   encoding ([`Threshold::NEVER`], [`Threshold::encode`] returns `None`);
//! - `R` is the `rv:` sub-key of the `ot` trace-state entry when it is exactly 14 lowercase hex
//!   digits, otherwise the least-significant 56 bits of the trace id;
//! - a trace is kept when `R >= T`, so a trace kept at probability `p1` is kept at every
//!   `p2 >= p1`: every participant that samples the same trace decides consistently.
//!
//! The decision path ([`randomness`], [`should_sample`], [`sample`]) does not allocate.
//! [`CONSISTENT_VECTORS`] and [`TH_ENCODING_VECTORS`] are shared test tables: every target that
//! embeds this logic (wasm, worker, plugins) runs the same rows.

use alloc::string::String;
use alloc::vec::Vec;
use core::fmt;

use crate::model::TraceId;

/// `2^56`: the number of distinct randomness values, and the threshold that rejects everything.
pub const MAX_THRESHOLD: u64 = 1 << 56;

/// Mask of the 56 randomness bits.
pub const RANDOMNESS_MASK: u64 = MAX_THRESHOLD - 1;

/// Significant hex digits of a threshold computed from a probability (the specification's
/// recommended SDK default).
pub const DEFAULT_PRECISION: u8 = 4;

/// Largest length of the OpenTelemetry (`ot`) trace-state value.
pub const MAX_OT_VALUE_LEN: usize = 256;

/// Largest number of W3C trace-state list members.
pub const MAX_TRACE_STATE_MEMBERS: usize = 32;

/// A 56-bit rejection threshold `T` in `[0, 2^56]`: a trace is kept when its randomness is at
/// least `T`. `0` keeps everything, [`Threshold::NEVER`] (`2^56`) keeps nothing.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Threshold(u64);

/// Why a probability, precision or `th` value was refused.
#[derive(Clone, Debug, PartialEq)]
pub enum ThresholdError {
    /// The probability is NaN or outside `[0, 1]`.
    Probability(f64),
    /// The precision is outside `1..=13`.
    Precision(u8),
    /// The `th` value is not 1 to 14 lowercase hex digits.
    Syntax(String),
}

impl fmt::Display for ThresholdError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ThresholdError::Probability(p) => write!(f, "probability {p} is not in [0, 1]"),
            ThresholdError::Precision(p) => write!(f, "precision {p} is not in 1..=13"),
            ThresholdError::Syntax(s) => {
                write!(f, "threshold {s:?} is not 1 to 14 lowercase hex digits")
            }
        }
    }
}

#[cfg(feature = "std")]
impl std::error::Error for ThresholdError {}

/// The `th` text of a threshold, kept on the stack (at most 14 hex digits).
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct ThresholdHex {
    buf: [u8; 14],
    len: u8,
}

impl ThresholdHex {
    /// The hex digits.
    pub fn as_str(&self) -> &str {
        // Only ASCII hex digits are ever written into `buf`.
        core::str::from_utf8(&self.buf[..usize::from(self.len)]).unwrap_or("")
    }
}

impl fmt::Display for ThresholdHex {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl fmt::Debug for ThresholdHex {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self.as_str(), f)
    }
}

const HEX: &[u8; 16] = b"0123456789abcdef";

fn hex_digit(b: u8) -> Option<u64> {
    match b {
        b'0'..=b'9' => Some(u64::from(b - b'0')),
        b'a'..=b'f' => Some(u64::from(b - b'a' + 10)),
        _ => None,
    }
}

/// Parses 1 to 14 lowercase hex digits, left-aligned in 56 bits (missing digits are zeros).
fn parse_th(s: &str) -> Option<u64> {
    if s.is_empty() || s.len() > 14 {
        return None;
    }
    let mut v: u64 = 0;
    for b in s.bytes() {
        v = (v << 4) | hex_digit(b)?;
    }
    Some(v << (4 * (14 - s.len())))
}

/// Parses exactly 14 lowercase hex digits (an `rv` value).
fn parse_rv(s: &str) -> Option<u64> {
    if s.len() != 14 {
        return None;
    }
    let mut v: u64 = 0;
    for b in s.bytes() {
        v = (v << 4) | hex_digit(b)?;
    }
    Some(v)
}

impl Threshold {
    /// Keeps every trace (probability 1, `th:0`).
    pub const ALWAYS: Threshold = Threshold(0);
    /// Keeps no trace (probability 0; not encodable as `th`).
    pub const NEVER: Threshold = Threshold(MAX_THRESHOLD);

    /// A threshold from its 56-bit integer value; `None` above `2^56`.
    pub const fn from_raw(t: u64) -> Option<Threshold> {
        if t <= MAX_THRESHOLD {
            Some(Threshold(t))
        } else {
            None
        }
    }

    /// The integer threshold in `[0, 2^56]`.
    pub const fn raw(self) -> u64 {
        self.0
    }

    /// The threshold for a probability in `[0, 1]` (Jaeger's sampling rate), rounded to
    /// [`DEFAULT_PRECISION`] significant hex digits.
    pub fn from_probability(p: f64) -> Result<Threshold, ThresholdError> {
        Self::from_probability_with_precision(p, DEFAULT_PRECISION)
    }

    /// The threshold for a probability, rounded to `precision` (1 to 13) significant hex digits
    /// as the specification's reference algorithm does: the precision grows by one digit per
    /// factor 16 below probability 1/2 (capped at 12 digits), and the value is rounded to
    /// nearest. Probabilities below about `2^-48` become the smallest representable one.
    pub fn from_probability_with_precision(
        p: f64,
        precision: u8,
    ) -> Result<Threshold, ThresholdError> {
        if p.is_nan() || !(0.0..=1.0).contains(&p) {
            return Err(ThresholdError::Probability(p));
        }
        if !(1..=13).contains(&precision) {
            return Err(ThresholdError::Precision(precision));
        }
        if p == 1.0 {
            return Ok(Threshold::ALWAYS);
        }
        if p == 0.0 {
            return Ok(Threshold::NEVER);
        }
        // frexp: p = m * 2^exp with m in [0.5, 1); exp <= 0 here.
        let biased = ((p.to_bits() >> 52) & 0x7ff) as i32;
        let exp = if biased == 0 { -1074 } else { biased - 1022 };
        let extra = (-exp) / 4; // floor(exp / -4) for exp <= 0
        let prec = (i32::from(precision) + extra).clamp(1, 12) as u32;
        // 1 + rejection probability, in [1, 2): its 52 mantissa bits are the first 13 hex
        // digits of T. Add half of the last kept digit to round to nearest.
        let mut r = 2.0 - p;
        r += f64::from_bits(u64::from(1023 - 1 - 4 * prec) << 52);
        let digits: u64 = if r >= 2.0 {
            0x000f_ffff_ffff_ffff
        } else {
            r.to_bits() & 0x000f_ffff_ffff_ffff
        };
        let kept = digits >> (4 * (13 - prec));
        Ok(Threshold(kept << (56 - 4 * prec)))
    }

    /// The probability this threshold keeps: `(2^56 - T) / 2^56`.
    pub fn to_probability(self) -> f64 {
        (MAX_THRESHOLD - self.0) as f64 / MAX_THRESHOLD as f64
    }

    /// The adjusted count `1 / probability`; infinite for [`Threshold::NEVER`].
    pub fn adjusted_count(self) -> f64 {
        MAX_THRESHOLD as f64 / (MAX_THRESHOLD - self.0) as f64
    }

    /// The `th` value: lowercase hex, trailing zeros removed, `"0"` for probability 1;
    /// `None` for [`Threshold::NEVER`], which has no encoding.
    pub fn encode(self) -> Option<ThresholdHex> {
        if self.0 >= MAX_THRESHOLD {
            return None;
        }
        let mut buf = [b'0'; 14];
        for (i, slot) in buf.iter_mut().enumerate() {
            *slot = HEX[((self.0 >> (4 * (13 - i))) & 0xf) as usize];
        }
        let mut len = 14;
        while len > 1 && buf[len - 1] == b'0' {
            len -= 1;
        }
        Some(ThresholdHex {
            buf,
            len: len as u8,
        })
    }

    /// Parses a `th` value: 1 to 14 lowercase hex digits, extended with trailing zeros to 14.
    pub fn parse(s: &str) -> Result<Threshold, ThresholdError> {
        parse_th(s)
            .map(Threshold)
            .ok_or_else(|| ThresholdError::Syntax(String::from(s)))
    }
}

/// The value of the `ot` list member of a W3C trace state, if any.
pub fn ot_value(trace_state: &str) -> Option<&str> {
    trace_state
        .split(',')
        .map(|m| m.trim_matches(|c| c == ' ' || c == '\t'))
        .find_map(|m| m.strip_prefix("ot="))
}

/// The value of sub-key `key` inside an `ot` value (`k1:v1;k2:v2`).
pub fn ot_sub_value<'a>(ot: &'a str, key: &str) -> Option<&'a str> {
    ot.split(';').find_map(|kv| match kv.split_once(':') {
        Some((k, v)) if k == key => Some(v),
        _ => None,
    })
}

/// The explicit randomness `ot=rv:` of a trace state, when it is exactly 14 lowercase hex digits.
pub fn explicit_randomness(trace_state: &str) -> Option<u64> {
    ot_value(trace_state)
        .and_then(|ot| ot_sub_value(ot, "rv"))
        .and_then(parse_rv)
}

/// The threshold `ot=th:` carried by a trace state, when present and well formed.
pub fn trace_state_threshold(trace_state: &str) -> Option<Threshold> {
    ot_value(trace_state)
        .and_then(|ot| ot_sub_value(ot, "th"))
        .and_then(parse_th)
        .map(Threshold)
}

/// The 56-bit randomness `R` of a trace: `ot=rv:` if valid, else the trace id's low 56 bits.
pub fn randomness(trace_id: TraceId, trace_state: &str) -> u64 {
    explicit_randomness(trace_state).unwrap_or(trace_id.0 as u64 & RANDOMNESS_MASK)
}

/// The consistent decision: keep when `R >= T` (only the low 56 bits of `randomness` count).
pub fn should_sample(threshold: Threshold, randomness: u64) -> bool {
    randomness & RANDOMNESS_MASK >= threshold.0
}

/// [`should_sample`] with [`randomness`] of the trace.
pub fn sample(threshold: Threshold, trace_id: TraceId, trace_state: &str) -> bool {
    should_sample(threshold, randomness(trace_id, trace_state))
}

/// Why a trace state could not be updated (it is then to be left as it was).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TraceStateError {
    /// [`Threshold::NEVER`] has no `th` encoding: nothing sampled at probability 0 is recorded.
    NeverSampled,
    /// The `ot` value would exceed [`MAX_OT_VALUE_LEN`] characters.
    OtTooLong(usize),
}

impl fmt::Display for TraceStateError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TraceStateError::NeverSampled => {
                f.write_str("threshold 100000000000000 (probability 0) cannot be written as th")
            }
            TraceStateError::OtTooLong(n) => write!(
                f,
                "ot trace-state value would be {n} characters, over the {MAX_OT_VALUE_LEN} limit"
            ),
        }
    }
}

#[cfg(feature = "std")]
impl std::error::Error for TraceStateError {}

/// Returns `trace_state` with the `ot` entry's `th` set to `threshold`, or erased when `None`
/// (a stage that yields an unknown probability must erase it).
///
/// Per the specification and W3C Trace Context: the other `ot` sub-keys (`rv`, …) are kept in
/// order and `th` is appended; the modified `ot` entry moves to the front of the list; other
/// vendors' entries keep their order; an `ot` entry left empty is removed; if the list would
/// exceed 32 members the rightmost ones are dropped. Errors (leave the trace state unchanged)
/// when the `ot` value would exceed 256 characters or the threshold is [`Threshold::NEVER`].
pub fn set_threshold(
    trace_state: &str,
    threshold: Option<Threshold>,
) -> Result<String, TraceStateError> {
    let th = match threshold {
        Some(t) => Some(t.encode().ok_or(TraceStateError::NeverSampled)?),
        None => None,
    };
    let mut others: Vec<&str> = Vec::new();
    let mut old_ot: Option<&str> = None;
    for member in trace_state
        .split(',')
        .map(|m| m.trim_matches(|c| c == ' ' || c == '\t'))
        .filter(|m| !m.is_empty())
    {
        match member.strip_prefix("ot=") {
            Some(v) => {
                if old_ot.is_none() {
                    old_ot = Some(v);
                }
            }
            None => others.push(member),
        }
    }
    let mut ot = String::new();
    for kv in old_ot.unwrap_or("").split(';').filter(|kv| !kv.is_empty()) {
        if kv.split_once(':').map(|(k, _)| k) == Some("th") || kv == "th" {
            continue;
        }
        if !ot.is_empty() {
            ot.push(';');
        }
        ot.push_str(kv);
    }
    if let Some(th) = th {
        if !ot.is_empty() {
            ot.push(';');
        }
        ot.push_str("th:");
        ot.push_str(th.as_str());
    }
    if ot.len() > MAX_OT_VALUE_LEN {
        return Err(TraceStateError::OtTooLong(ot.len()));
    }
    let mut out = String::with_capacity(trace_state.len() + 20);
    let mut members = 0;
    if !ot.is_empty() {
        out.push_str("ot=");
        out.push_str(&ot);
        members += 1;
    }
    for m in others {
        if members == MAX_TRACE_STATE_MEMBERS {
            break;
        }
        if !out.is_empty() {
            out.push(',');
        }
        out.push_str(m);
        members += 1;
    }
    Ok(out)
}

/// One row of the shared consistent-sampling test table.
#[derive(Clone, Copy, Debug)]
pub struct ConsistentVector {
    /// The trace id (its low 56 bits are the randomness unless `trace_state` has `ot=rv:`).
    pub trace_id: u128,
    /// The W3C trace state the decision sees.
    pub trace_state: &'static str,
    /// The sampling probability (Jaeger's rate).
    pub probability: f64,
    /// Whether the trace is kept.
    pub sampled: bool,
    /// The `th` value for `probability` at [`DEFAULT_PRECISION`]; empty when not encodable (p = 0).
    pub th: &'static str,
}

const fn cv(
    trace_id: u128,
    trace_state: &'static str,
    probability: f64,
    sampled: bool,
    th: &'static str,
) -> ConsistentVector {
    ConsistentVector {
        trace_id,
        trace_state,
        probability,
        sampled,
        th,
    }
}

/// The consistent-sampling table every target runs: `threshold(probability)` encodes as `th`,
/// and `should_sample(threshold, randomness(trace_id, trace_state)) == sampled`.
pub const CONSISTENT_VECTORS: &[ConsistentVector] = &[
    // p = 1 keeps even the smallest randomness.
    cv(0, "", 1.0, true, "0"),
    cv(0x4bf92f3577b34da6a3ce929d0e0e4736, "", 1.0, true, "0"),
    // p = 0 keeps nothing, not even the largest randomness; it has no th.
    cv(u128::MAX, "", 0.0, false, ""),
    // p = 1/2: T = 0x80000000000000; R == T kept, R == T - 1 dropped.
    cv(0x0000000000000000_0080000000000000, "", 0.5, true, "8"),
    cv(0x0000000000000000_007fffffffffffff, "", 0.5, false, "8"),
    // Only the low 56 bits count: the top byte of the low half is ignored.
    cv(0xffffffffffffffff_ff00000000000000, "", 0.5, false, "8"),
    cv(0x4bf92f3577b34da6a3ce929d0e0e4736, "", 0.25, true, "c"),
    cv(0x4bf92f3577b34da6a3ce929d0e0e4736, "", 0.1, false, "e666"),
    // p = 1/3: T = 0xaaab0000000000.
    cv(0x00aaab0000000000, "", 1.0 / 3.0, true, "aaab"),
    cv(0x00aaaaffffffffff, "", 1.0 / 3.0, false, "aaab"),
    cv(0x0000000000000000_00fd70a000000000, "", 0.01, true, "fd70a"),
    // p = 0.001: T = 0xffbe7700000000.
    cv(0x00ffbe7700000000, "", 0.001, true, "ffbe77"),
    cv(0x00ffbe76ffffffff, "", 0.001, false, "ffbe77"),
    // p = 1e-5: T = 0xffff583a000000.
    cv(0x00ffff583a000000, "", 1e-5, true, "ffff583a"),
    cv(0x00ffff5839ffffff, "", 1e-5, false, "ffff583a"),
    cv(0x00ffffffffffffff, "", 1e-5, true, "ffff583a"),
    // Explicit randomness overrides the trace id.
    cv(0, "ot=rv:ffffffffffffff", 0.001, true, "ffbe77"),
    cv(u128::MAX, "ot=th:8;rv:00000000000000", 0.5, false, "8"),
    cv(
        0,
        "congo=t61rcWkgMzE,ot=th:8;rv:80000000000000",
        0.5,
        true,
        "8",
    ),
    // A malformed rv (uppercase, wrong length) is ignored: the trace id decides.
    cv(0x0080000000000000, "ot=rv:7FFFFFFFFFFFFF", 0.5, true, "8"),
    cv(0x007fffffffffffff, "ot=rv:fffffffffffff", 0.5, false, "8"),
];

/// The specification's table of `th` encodings: (probability, precision, th).
pub const TH_ENCODING_VECTORS: &[(f64, u8, &str)] = &[
    (1.0, 3, "0"),
    (1.0, 4, "0"),
    (1.0, 5, "0"),
    (0.5, 3, "8"),
    (0.5, 4, "8"),
    (0.5, 5, "8"),
    (1.0 / 3.0, 3, "aab"),
    (1.0 / 3.0, 4, "aaab"),
    (1.0 / 3.0, 5, "aaaab"),
    (0.25, 3, "c"),
    (0.25, 4, "c"),
    (0.25, 5, "c"),
    (0.2, 3, "ccd"),
    (0.2, 4, "cccd"),
    (0.2, 5, "ccccd"),
    (0.125, 3, "e"),
    (0.125, 4, "e"),
    (0.125, 5, "e"),
    (0.1, 3, "e66"),
    (0.1, 4, "e666"),
    (0.1, 5, "e6666"),
    (0.0625, 3, "f"),
    (0.0625, 4, "f"),
    (0.0625, 5, "f"),
    (0.01, 3, "fd71"),
    (0.01, 4, "fd70a"),
    (0.01, 5, "fd70a4"),
    (0.001, 3, "ffbe7"),
    (0.001, 4, "ffbe77"),
    (0.001, 5, "ffbe76d"),
    (0.0001, 3, "fff972"),
    (0.0001, 4, "fff9724"),
    (0.0001, 5, "fff97247"),
    (0.00001, 3, "ffff584"),
    (0.00001, 4, "ffff583a"),
    (0.00001, 5, "ffff583a5"),
    (0.000001, 3, "ffffef4"),
    (0.000001, 4, "ffffef39"),
    (0.000001, 5, "ffffef391"),
];

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::string::ToString;

    #[test]
    fn consistent_vectors() {
        for (i, v) in CONSISTENT_VECTORS.iter().enumerate() {
            let t = Threshold::from_probability(v.probability).unwrap();
            let th = t.encode();
            assert_eq!(
                th.as_ref().map(ThresholdHex::as_str).unwrap_or(""),
                v.th,
                "row {i}"
            );
            let r = randomness(TraceId(v.trace_id), v.trace_state);
            assert_eq!(
                should_sample(t, r),
                v.sampled,
                "row {i}: R={r:x} T={:x}",
                t.0
            );
        }
        assert!(CONSISTENT_VECTORS.len() >= 12);
    }

    #[test]
    fn spec_th_encodings() {
        for &(p, precision, th) in TH_ENCODING_VECTORS {
            let t = Threshold::from_probability_with_precision(p, precision).unwrap();
            assert_eq!(
                t.encode().unwrap().as_str(),
                th,
                "p={p} precision={precision}"
            );
            assert_eq!(Threshold::parse(th).unwrap(), t);
        }
    }

    #[test]
    fn spec_examples() {
        // th:c is 25% (tracestate-handling.md); 1% at 5 digits is fd70a4 = 0xfd70a400000000.
        assert_eq!(Threshold::parse("c").unwrap().to_probability(), 0.25);
        assert_eq!(Threshold::parse("fd70a4").unwrap().raw(), 0xfd70a400000000);
        assert_eq!(Threshold::parse("0").unwrap(), Threshold::ALWAYS);
        assert_eq!(
            Threshold::parse("ffffffffffffff").unwrap().raw(),
            RANDOMNESS_MASK
        );
        assert_eq!(Threshold::parse("8").unwrap().adjusted_count(), 2.0);
        assert_eq!(Threshold::NEVER.encode(), None);
        assert_eq!(Threshold::NEVER.to_probability(), 0.0);
        assert_eq!(Threshold::from_raw(MAX_THRESHOLD + 1), None);
        // rv 6e6d1a75832a2f supports probabilities 56.9% .. 100%.
        let r = randomness(TraceId(0), "ot=rv:6e6d1a75832a2f");
        assert_eq!(r, 0x6e6d1a75832a2f);
        assert!(should_sample(
            Threshold::parse("6e6d1a75832a2f").unwrap(),
            r
        ));
        assert!(!should_sample(
            Threshold::parse("6e6d1a75832a3").unwrap(),
            r
        ));
    }

    #[test]
    fn bad_inputs_are_errors() {
        let cases: &[(&str, &str)] = &[
            ("", r#"threshold "" is not 1 to 14 lowercase hex digits"#),
            ("C", r#"threshold "C" is not 1 to 14 lowercase hex digits"#),
            (
                "fffffffffffffff",
                r#"threshold "fffffffffffffff" is not 1 to 14 lowercase hex digits"#,
            ),
            (
                "0x8",
                r#"threshold "0x8" is not 1 to 14 lowercase hex digits"#,
            ),
        ];
        for (input, message) in cases {
            assert_eq!(Threshold::parse(input).unwrap_err().to_string(), *message);
        }
        for p in [1.5, -0.1, f64::NAN, f64::INFINITY] {
            let e = Threshold::from_probability(p);
            assert!(matches!(e, Err(ThresholdError::Probability(_))), "{p}");
        }
        assert_eq!(
            Threshold::from_probability(1.5).unwrap_err().to_string(),
            "probability 1.5 is not in [0, 1]"
        );
        assert_eq!(
            Threshold::from_probability_with_precision(0.5, 14)
                .unwrap_err()
                .to_string(),
            "precision 14 is not in 1..=13"
        );
    }

    #[test]
    fn probabilities_round_trip_closely() {
        for p in [0.9, 0.75, 0.3, 0.05, 0.0123, 1e-3, 1e-4, 1e-6, 1e-9] {
            let q = Threshold::from_probability(p).unwrap().to_probability();
            let rel = (q - p) / p;
            assert!(rel < 1e-3 && rel > -1e-3, "p={p} q={q}");
        }
        // Tiny but non-zero probabilities never become "never".
        let t = Threshold::from_probability(1e-30).unwrap();
        assert!(t < Threshold::NEVER);
        assert!(t.to_probability() > 0.0);
    }

    #[test]
    fn monotone_consistency() {
        // A trace kept at p1 is kept at every p2 >= p1.
        let ps = [0.0, 1e-5, 0.001, 0.01, 0.1, 1.0 / 3.0, 0.5, 0.9, 1.0];
        let ids = [
            0u128,
            0x00ffbe7700000000,
            0x7fffffffffffff,
            0x4bf92f3577b34da6a3ce929d0e0e4736,
        ];
        for id in ids {
            let kept: Vec<bool> = ps
                .iter()
                .map(|&p| sample(Threshold::from_probability(p).unwrap(), TraceId(id), ""))
                .collect();
            for w in kept.windows(2) {
                assert!(!w[0] || w[1], "id {id:x}: {kept:?}");
            }
        }
    }

    #[test]
    fn trace_state_reading() {
        let cases: &[(&str, Option<u64>, Option<u64>)] = &[
            ("", None, None),
            ("ot=th:c", Some(0xc0000000000000), None),
            (
                "a=b, ot=th:8;rv:0123456789abcd ,c=d",
                Some(0x80000000000000),
                Some(0x0123456789abcd),
            ),
            ("ot=p:8;th:fd70a4", Some(0xfd70a400000000), None),
            ("ot=th:XYZ;rv:123", None, None),
            ("xot=th:8", None, None),
            ("vendor@ot=th:8", None, None),
        ];
        for &(ts, th, rv) in cases {
            assert_eq!(trace_state_threshold(ts).map(Threshold::raw), th, "{ts}");
            assert_eq!(explicit_randomness(ts), rv, "{ts}");
        }
    }

    #[test]
    fn trace_state_writing() {
        let c = Some(Threshold::parse("c").unwrap());
        let cases: &[(&str, Option<Threshold>, &str)] = &[
            ("", c, "ot=th:c"),
            ("ot=th:8", c, "ot=th:c"),
            ("ot=p:8;th:8;r:62", c, "ot=p:8;r:62;th:c"),
            (
                "congo=t61rcWkgMzE,ot=rv:0123456789abcd",
                c,
                "ot=rv:0123456789abcd;th:c,congo=t61rcWkgMzE",
            ),
            ("a=1, ot=th:8 ,b=2", c, "ot=th:c,a=1,b=2"),
            ("a=1,,b=2", Some(Threshold::ALWAYS), "ot=th:0,a=1,b=2"),
            (
                "ot=th:8;rv:0123456789abcd,a=1",
                None,
                "ot=rv:0123456789abcd,a=1",
            ),
            ("a=1,ot=th:8", None, "a=1"),
            ("a=1", None, "a=1"),
        ];
        for &(input, t, expected) in cases {
            assert_eq!(set_threshold(input, t).unwrap(), expected, "{input}");
        }
        assert_eq!(
            set_threshold("ot=th:8", Some(Threshold::NEVER)).unwrap_err(),
            TraceStateError::NeverSampled
        );
        let mut long = String::from("ot=x:");
        long.push_str(&"a".repeat(250));
        assert_eq!(
            set_threshold(&long, c).unwrap_err().to_string(),
            "ot trace-state value would be 257 characters, over the 256 limit"
        );
        // 32 vendor members: adding ot drops the rightmost.
        let many: Vec<String> = (0..32).map(|i| alloc::format!("v{i}=x")).collect();
        let out = set_threshold(&many.join(","), c).unwrap();
        assert_eq!(out.split(',').count(), 32);
        assert!(out.starts_with("ot=th:c,v0=x,"));
        assert!(out.ends_with(",v30=x"));
    }
}
