//! Example plugin `redact`: keeps personal data out of storage.
//!
//! ```json
//! {"keys": ["user.id", "enduser.id"], "mode": "mask", "emails": true, "cards": true}
//! ```
//!
//! - Inside every string attribute value (of spans, events, links, resources and scopes, and
//!   nested in array and map values) e-mail addresses become `[REDACTED:email]` and
//!   payment-card numbers become `[REDACTED:card]`. Both scanners are hand-written single
//!   passes over the bytes (no regex engine in the component):
//!   - an e-mail address is `local@domain` with a local part of `[A-Za-z0-9._%+-]` and a domain
//!     of dot-separated labels of `[A-Za-z0-9-]` ending in a top-level label of two or more
//!     letters (a sentence's final dot is not part of it); non-ASCII letters count as letters;
//!   - a card number is 13 to 19 digits, in groups separated by single spaces or dashes, that
//!     starts with 2 to 6 (the issuer ranges of the card networks; this keeps epoch-millisecond
//!     timestamps out), passes the Luhn check and is not part of a longer word or number.
//! - Attributes whose key is listed in `keys` (at any depth) are masked (value becomes the
//!   string `[REDACTED]`) or, with `"mode": "remove"`, removed.
//!
//! `emails` and `cards` default to `true`; `mode` defaults to `mask`. A batch with nothing to
//! redact is handed back untouched.

use spoor_plugin_sdk::{Error, StringKind, StringsPlugin, StringsView};

/// What a masked attribute's value becomes.
pub const MASK: &str = "[REDACTED]";
/// What an e-mail address becomes.
pub const EMAIL: &str = "[REDACTED:email]";
/// What a card number becomes.
pub const CARD: &str = "[REDACTED:card]";

/// The `redact` plugin.
#[derive(Debug)]
pub struct Redact {
    keys: Keys,
    mode: Mode,
    emails: bool,
    cards: bool,
    /// Per string of the current view: whether it is a listed key or lies under one.
    hidden: Vec<bool>,
}

/// Settings.
#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RedactConfig {
    /// Attribute keys to mask or remove.
    #[serde(default)]
    pub keys: Vec<String>,
    /// What happens to them.
    #[serde(default)]
    pub mode: Mode,
    /// Replace e-mail addresses in string values.
    #[serde(default = "yes")]
    pub emails: bool,
    /// Replace payment-card numbers in string values.
    #[serde(default = "yes")]
    pub cards: bool,
}

fn yes() -> bool {
    true
}

/// What happens to an attribute with a listed key.
#[derive(serde::Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    /// Its value becomes [`MASK`].
    #[default]
    Mask,
    /// It is removed.
    Remove,
}

impl Redact {
    fn is_listed(&self, key: &str) -> bool {
        self.keys.contains(key)
    }

    /// The redacted text, or `None` if there is nothing to redact in it.
    fn redact_text(&self, text: &str) -> Option<String> {
        // One cheap pass rules out most strings for both scanners: an address needs an `@`, a
        // card number 13 digits (the e-mail replacement only removes digits).
        if !self.emails && !self.cards {
            return None;
        }
        let (at, digits) = candidates(text.as_bytes());
        let emailed = if self.emails && at {
            redact_emails(text)
        } else {
            None
        };
        let base = emailed.as_deref().unwrap_or(text);
        let carded = if self.cards && digits >= MIN_CARD_DIGITS {
            redact_cards(base)
        } else {
            None
        };
        carded.or(emailed)
    }
}

/// The listed keys, asked about every attribute key of every batch: a key whose length no
/// listed key has is ruled out at once; one of a listed length is compared by its first and
/// last eight bytes, which for keys of up to 16 bytes (most) is the whole comparison, so the
/// guest's byte-wise `memcmp` runs only for longer ones.
#[derive(Debug)]
struct Keys {
    /// Bit `n` set: a listed key is `n` bytes long (bit 63: 63 bytes or more).
    lengths: u64,
    /// Each listed key with its [`ends`].
    keys: Vec<((u64, u64), String)>,
}

impl Keys {
    fn new(keys: Vec<String>) -> Keys {
        Keys {
            lengths: keys.iter().fold(0, |m, k| m | length_bit(k)),
            keys: keys.into_iter().map(|k| (ends(&k), k)).collect(),
        }
    }

    fn contains(&self, key: &str) -> bool {
        if self.lengths & length_bit(key) == 0 {
            return false;
        }
        let e = ends(key);
        self.keys
            .iter()
            .any(|(ke, k)| *ke == e && k.len() == key.len() && (key.len() <= 16 || k == key))
    }
}

fn length_bit(s: &str) -> u64 {
    1 << s.len().min(63)
}

/// The first and the last eight bytes of `s` (overlapping when it is shorter than 16; fewer,
/// zero-padded, when it is shorter than 8) as two words: for strings of one length up to 16
/// bytes, equal words mean equal strings.
fn ends(s: &str) -> (u64, u64) {
    let b = s.as_bytes();
    match b.len().checked_sub(8) {
        Some(last) => (word_at(b, 0), word_at(b, last)),
        None => {
            let w = last_word(b);
            (w, w)
        }
    }
}

/// What the scan decided for one string.
enum Action {
    Keep,
    /// A listed key: mask or remove its attribute; what it holds is covered.
    Listed,
    /// A string under a listed key: covered by it.
    Covered,
    Replace(String),
}

impl StringsPlugin for Redact {
    const NAME: &'static str = "redact";
    const VERSION: &'static str = "0.2.0";
    type Config = RedactConfig;

    fn configure(config: RedactConfig) -> Result<Self, Error> {
        if let Some(i) = config.keys.iter().position(String::is_empty) {
            return Err(Error::invalid_config(
                &format!("keys[{i}]"),
                "must not be empty",
            ));
        }
        if config.keys.is_empty() && !config.emails && !config.cards {
            return Err(Error::invalid_config(
                "keys",
                "nothing to redact: list keys or leave `emails` or `cards` on",
            ));
        }
        Ok(Redact {
            keys: Keys::new(config.keys),
            mode: config.mode,
            emails: config.emails,
            cards: config.cards,
            hidden: Vec::new(),
        })
    }

    fn rewrite(&mut self, view: &mut StringsView) -> Result<(), Error> {
        // Keys come before their values and nested keys (depth first), so one pass in order
        // knows whether a string lies under a listed key.
        self.hidden.clear();
        self.hidden.resize(view.len(), false);
        for i in 0..view.len() {
            let action = match view.get(i) {
                None => Action::Keep,
                Some(e) if e.owner.is_some_and(|o| self.hidden[o]) => Action::Covered,
                Some(e) => match e.kind {
                    StringKind::Key if self.is_listed(e.text) => Action::Listed,
                    StringKind::Value => self
                        .redact_text(e.text)
                        .map_or(Action::Keep, Action::Replace),
                    _ => Action::Keep,
                },
            };
            match action {
                Action::Keep => {}
                Action::Covered => self.hidden[i] = true,
                Action::Listed => {
                    self.hidden[i] = true;
                    match self.mode {
                        Mode::Mask => view.set_value(i, MASK),
                        Mode::Remove => view.remove(i),
                    }
                }
                Action::Replace(text) => view.replace(i, &text),
            }
        }
        Ok(())
    }
}

spoor_plugin_sdk::export_strings_plugin!(Redact);

// Bytes of non-ASCII characters count as letters (internationalised addresses); a scan over
// them always stops on an ASCII byte or the end, so it stops on a character boundary.
fn is_local_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || !b.is_ascii() || matches!(b, b'.' | b'_' | b'%' | b'+' | b'-')
}

fn is_domain_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || !b.is_ascii() || matches!(b, b'.' | b'-')
}

/// The end of a valid domain starting at `start` (exclusive), or `None`.
fn domain_end(b: &[u8], start: usize) -> Option<usize> {
    let mut end = start;
    while end < b.len() && is_domain_byte(b[end]) {
        end += 1;
    }
    // A sentence's final dot (or dash) is punctuation, not part of the domain.
    while end > start && matches!(b[end - 1], b'.' | b'-') {
        end -= 1;
    }
    let domain = &b[start..end];
    let mut labels = domain.split(|&c| c == b'.');
    let mut count = 0;
    let mut last: &[u8] = &[];
    for label in labels.by_ref() {
        if label.is_empty() || label[0] == b'-' || label[label.len() - 1] == b'-' {
            return None;
        }
        count += 1;
        last = label;
    }
    let tld_ok = last.len() >= 2
        && last
            .iter()
            .all(|c| c.is_ascii_alphabetic() || !c.is_ascii());
    (count >= 2 && tld_ok).then_some(end)
}

/// `text` with every e-mail address replaced by [`EMAIL`], or `None` if it has none.
pub fn redact_emails(text: &str) -> Option<String> {
    let b = text.as_bytes();
    let mut out: Option<String> = None;
    let mut copied = 0; // bytes of `text` already accounted for in `out`
    let mut at = 0;
    while let Some(off) = b[at..].iter().position(|&c| c == b'@') {
        let pos = at + off;
        let mut start = pos;
        while start > copied && is_local_byte(b[start - 1]) {
            start -= 1;
        }
        // The local part cannot start with a dot.
        while start < pos && b[start] == b'.' {
            start += 1;
        }
        match (start < pos).then(|| domain_end(b, pos + 1)).flatten() {
            Some(end) => {
                let o = out.get_or_insert_with(|| String::with_capacity(text.len()));
                o.push_str(&text[copied..start]);
                o.push_str(EMAIL);
                copied = end;
                at = end;
            }
            None => at = pos + 1,
        }
    }
    out.map(|mut o| {
        o.push_str(&text[copied..]);
        o
    })
}

/// The fewest digits of a card number.
const MIN_CARD_DIGITS: usize = 13;

/// Whether `b` holds an `@`, and how many ASCII digits it holds: eight bytes at a time (a
/// scanner's byte loop costs the guest about five instructions per byte under fuel metering;
/// this about two).
fn candidates(b: &[u8]) -> (bool, usize) {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGH: u64 = 0x8080_8080_8080_8080;
    fn word(x: u64) -> (u64, u32) {
        // A byte of `x ^ "@@@@@@@@"` is zero where `x` has an `@` (any zero byte makes its
        // high bit show up here; none makes none).
        let v = x ^ (ONES * u64::from(b'@'));
        let at = v.wrapping_sub(ONES) & !v & HIGH;
        // Per ASCII byte y (high bit cleared first, so no carry crosses bytes): y + 0x50 sets the
        // high bit from '0' up, y + 0x46 from ':' up; a digit is the first and not the second.
        let y = x & !HIGH;
        let from_zero = y + ONES * 0x50;
        let past_nine = y + ONES * 0x46;
        let digits = from_zero & !past_nine & !x & HIGH;
        (at, digits.count_ones())
    }
    let mut at = 0;
    let mut digits = 0;
    let mut chunks = b.chunks_exact(8);
    for c in chunks.by_ref() {
        let (a, d) = word(word_at(c, 0));
        at |= a;
        digits += d as usize;
    }
    if !chunks.remainder().is_empty() {
        // Zero bytes pad the tail: neither an `@` nor a digit.
        let (a, d) = word(last_word(b));
        at |= a;
        digits += d as usize;
    }
    (at != 0, digits)
}

/// The bytes of `b` after its last whole eight, as a word padded with zero bytes. Loaded as
/// one word where it can be (a `copy_from_slice` of a few bytes becomes a `memory.copy`, which
/// wasmtime runs as a call into the host).
fn last_word(b: &[u8]) -> u64 {
    let rest = b.len() % 8;
    if rest == 0 {
        return 0;
    }
    match b.len().checked_sub(8) {
        // The last eight bytes, the ones already counted shifted out.
        Some(start) => word_at(b, start) >> (8 * (8 - rest)),
        None => b.iter().rev().fold(0, |w, &c| (w << 8) | u64::from(c)),
    }
}

/// The eight bytes of `b` from `start` (which leaves eight) as a little-endian word.
fn word_at(b: &[u8], start: usize) -> u64 {
    let c = &b[start..start + 8];
    u64::from_le_bytes([c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7]])
}

fn luhn_valid(digits: &[u8]) -> bool {
    let sum: u32 = digits
        .iter()
        .rev()
        .enumerate()
        .map(|(i, &d)| {
            let d = u32::from(d);
            if i % 2 == 1 {
                let x = d * 2;
                if x > 9 {
                    x - 9
                } else {
                    x
                }
            } else {
                d
            }
        })
        .sum();
    sum % 10 == 0
}

/// A run of digit groups: `(start, end)` byte ranges of each group.
fn digit_groups(b: &[u8], start: usize) -> (Vec<(usize, usize)>, usize) {
    let mut groups = Vec::new();
    let mut i = start;
    loop {
        let g = i;
        while i < b.len() && b[i].is_ascii_digit() {
            i += 1;
        }
        groups.push((g, i));
        // One separator, then another group.
        if i + 1 < b.len() && matches!(b[i], b' ' | b'-') && b[i + 1].is_ascii_digit() {
            i += 1;
        } else {
            return (groups, i);
        }
    }
}

/// The card number found among `groups[first..]` that starts at group `first`, as the index of
/// its last group.
fn card_at(b: &[u8], groups: &[(usize, usize)], first: usize) -> Option<usize> {
    if !(b'2'..=b'6').contains(&b[groups[first].0]) {
        return None;
    }
    let mut digits: Vec<u8> = Vec::with_capacity(19);
    let mut found = None;
    for (j, &(s, e)) in groups.iter().enumerate().skip(first) {
        digits.extend(b[s..e].iter().map(|c| c - b'0'));
        if digits.len() > 19 {
            break;
        }
        if digits.len() >= 13 && luhn_valid(&digits) {
            found = Some(j); // keep the longest
        }
    }
    found
}

/// `text` with every payment-card number replaced by [`CARD`], or `None` if it has none.
pub fn redact_cards(text: &str) -> Option<String> {
    let b = text.as_bytes();
    // A card number has at least 13 digits: most strings are ruled out by one cheap count
    // (the scan below allocates per run of digits).
    if candidates(b).1 < MIN_CARD_DIGITS {
        return None;
    }
    let mut out: Option<String> = None;
    let mut copied = 0;
    let mut i = 0;
    while i < b.len() {
        if !b[i].is_ascii_digit() || (i > 0 && b[i - 1].is_ascii_alphanumeric()) {
            i += 1;
            continue;
        }
        let (groups, run_end) = digit_groups(b, i);
        let total: usize = groups.iter().map(|(s, e)| e - s).sum();
        // A run glued to a following letter is an identifier, not a number.
        let glued = run_end < b.len() && b[run_end].is_ascii_alphabetic();
        if total >= 13 && !glued {
            let mut g = 0;
            while g < groups.len() {
                match card_at(b, &groups, g) {
                    // A card inside a longer run must end at a group boundary too.
                    Some(last) => {
                        let (s, e) = (groups[g].0, groups[last].1);
                        let o = out.get_or_insert_with(|| String::with_capacity(text.len()));
                        o.push_str(&text[copied..s]);
                        o.push_str(CARD);
                        copied = e;
                        g = last + 1;
                    }
                    None => g += 1,
                }
            }
        }
        i = run_end.max(i + 1);
    }
    out.map(|mut o| {
        o.push_str(&text[copied..]);
        o
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use spoor_plugin_sdk::testing::{check_golden, run};
    use spoor_plugin_sdk::{
        AnyValue, Batch, Event, KeyValue, Plugin, Resource, Span, SpanId, Strings, TraceId,
    };
    use std::sync::Arc;

    fn emails(s: &str) -> String {
        redact_emails(s).unwrap_or_else(|| s.to_owned())
    }

    fn cards(s: &str) -> String {
        redact_cards(s).unwrap_or_else(|| s.to_owned())
    }

    #[test]
    fn email_scanner() {
        assert_eq!(emails("jane@example.com"), EMAIL);
        assert_eq!(
            emails("mail Jane.Doe+x@mail.example.co.uk, or a_b@c-d.io."),
            "mail [REDACTED:email], or [REDACTED:email]."
        );
        assert_eq!(emails("<bob@example.net>"), "<[REDACTED:email]>");
        assert_eq!(emails("x@y@example.org"), "x@[REDACTED:email]");
        assert_eq!(emails(".dot@example.org"), ".[REDACTED:email]");
        assert_eq!(emails("ünï@exämple.org ok"), "[REDACTED:email] ok");
        for clean in [
            "a@b",
            "@example.com",
            "user@",
            "user@localhost",
            "user@example.c",
            "user@example.c0m",
            "user@-example.com",
            "user@example..com",
            "git@github.com:owner/repo",
            "no at sign",
            "",
        ] {
            let expected = if clean == "git@github.com:owner/repo" {
                "[REDACTED:email]:owner/repo"
            } else {
                clean
            };
            assert_eq!(emails(clean), expected, "{clean}");
        }
        assert_eq!(redact_emails("nothing here"), None);
    }

    #[test]
    fn card_scanner() {
        assert_eq!(cards("4111111111111111"), CARD);
        assert_eq!(
            cards("card 4111 1111 1111 1111 ok"),
            "card [REDACTED:card] ok"
        );
        assert_eq!(cards("5500-0000-0000-0004"), CARD);
        assert_eq!(cards("amex 378282246310005."), "amex [REDACTED:card].");
        assert_eq!(
            cards("2 cards: 6011111111111117,4012888888881881"),
            "2 cards: [REDACTED:card],[REDACTED:card]"
        );
        // Inside a longer run of groups, at group boundaries.
        assert_eq!(
            cards("ref 12 4111 1111 1111 1111"),
            "ref 12 [REDACTED:card]"
        );
        for clean in [
            "4111 1111 1111 1112",  // Luhn fails
            "1764000000000",        // 13 digits, Luhn-valid, but no card starts with 1
            "411111111111",         // 12 digits
            "41111111111111111111", // 20 digits
            "4111111111111111x",    // glued to a word
            "id4111111111111111",   // glued to a word
            "4111  1111 1111 1111", // double space splits the groups
            "0000000000000",
        ] {
            assert_eq!(cards(clean), clean, "{clean}");
        }
        assert_eq!(redact_cards("no digits"), None);
    }

    #[test]
    fn candidates_count_as_the_byte_loops_do() {
        let slow = |s: &[u8]| {
            (
                s.contains(&b'@'),
                s.iter().filter(|c| c.is_ascii_digit()).count(),
            )
        };
        let mut samples: Vec<Vec<u8>> = [
            "",
            "@",
            "0",
            "9",
            "/:",
            "a@b.c 4111 1111 1111 1111",
            "ünï@exämple.org",
            "0123456789",
            "0123456@",
            "@0123456",
            "x\u{80}0\u{ff}9@",
        ]
        .iter()
        .map(|s| s.as_bytes().to_vec())
        .collect();
        // Every byte value at every position of a word and of a tail.
        for len in [8, 11] {
            for at in 0..len {
                for byte in 0..=255u8 {
                    let mut s = vec![b'5'; len];
                    s[at] = byte;
                    samples.push(s);
                }
            }
        }
        for s in samples {
            assert_eq!(candidates(&s), slow(&s), "{s:?}");
        }
    }

    #[test]
    fn listed_keys_are_found_by_length_ends_and_bytes() {
        let listed = [
            "user.id",
            "app.attr.0",
            "a",
            "service.instance.identifier", // longer than 16: the middle is compared too
            &"k".repeat(70),
        ];
        let keys = Keys::new(listed.map(String::from).to_vec());
        for key in listed {
            assert!(keys.contains(key), "{key}");
        }
        for other in [
            "",
            "user.iD",
            "app.attr.1",                  // same length and head, other tail
            "bpp.attr.0",                  // same length and tail, other head
            "service.instanceXidentifier", // same length, head and tail, other middle
            "b",
            &"k".repeat(69),
            &"k".repeat(71), // 63 bytes or more share a length bit
            "x.user.id",
        ] {
            assert!(!keys.contains(other), "{other}");
        }
    }

    #[test]
    fn luhn() {
        assert!(luhn_valid(&[7, 9, 9, 2, 7, 3, 9, 8, 7, 1, 3]));
        assert!(!luhn_valid(&[7, 9, 9, 2, 7, 3, 9, 8, 7, 1, 4]));
    }

    fn span() -> Span {
        Span {
            trace_id: TraceId(1),
            span_id: SpanId(2),
            name: "op".into(),
            attributes: vec![
                KeyValue::string("user.id", "u1"),
                KeyValue::string("msg", "from a@example.com"),
                KeyValue::new("n", AnyValue::Int(4111111111111111)),
            ],
            events: vec![Event {
                name: "e".into(),
                attributes: vec![KeyValue::string("card", "4111-1111-1111-1111")],
                ..Default::default()
            }],
            resource: Arc::new(Resource {
                service_name: "svc".into(),
                attributes: vec![KeyValue::string("owner", "ops@example.com")],
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    fn strings(s: &Span) -> Vec<(String, String)> {
        let list = |a: &[KeyValue]| {
            a.iter()
                .map(|kv| (kv.key.clone(), format!("{:?}", kv.value)))
                .collect::<Vec<_>>()
        };
        let mut v = list(&s.attributes);
        v.extend(list(&s.events[0].attributes));
        v.extend(list(&s.resource.attributes));
        v
    }

    #[test]
    fn masks_and_removes() {
        let out = run::<Strings<Redact>>(r#"{"keys": ["user.id"]}"#, &[span()]).unwrap();
        let got = strings(&out[0]);
        let expect = |k: &str, v: &str| (k.to_owned(), format!("{:?}", AnyValue::Str(v.into())));
        assert_eq!(got[0], expect("user.id", MASK));
        assert_eq!(got[1], expect("msg", "from [REDACTED:email]"));
        // Only strings are scanned.
        assert_eq!(got[2].1, format!("{:?}", AnyValue::Int(4111111111111111)));
        assert_eq!(got[3], expect("card", CARD));
        assert_eq!(got[4], expect("owner", EMAIL));

        let out = run::<Strings<Redact>>(
            r#"{"keys": ["user.id", "owner"], "mode": "remove", "emails": false}"#,
            &[span()],
        )
        .unwrap();
        let keys: Vec<_> = strings(&out[0]).into_iter().map(|(k, _)| k).collect();
        assert_eq!(keys, ["msg", "n", "card"]);
        assert_eq!(
            find(&out[0].attributes, "msg"),
            Some(&AnyValue::Str("from a@example.com".into()))
        );
    }

    fn find<'a>(a: &'a [KeyValue], k: &str) -> Option<&'a AnyValue> {
        spoor_plugin_sdk::find_attr(a, k)
    }

    #[test]
    fn clean_batches_are_untouched() {
        let mut p =
            spoor_plugin_sdk::configure::<Strings<Redact>>(r#"{"keys": ["secret"]}"#).unwrap();
        let mut clean = span();
        clean.attributes.truncate(0);
        clean.events.clear();
        clean.resource = Arc::new(Resource::default());
        let mut b = Batch::new(vec![clean]);
        p.process(&mut b).unwrap();
        assert!(!b.is_modified());
    }

    #[test]
    fn config_errors_name_the_field() {
        let err = |c: &str| run::<Strings<Redact>>(c, &[]).unwrap_err().to_string();
        assert_eq!(
            err(r#"{"keys": ["a", ""]}"#),
            "invalid-config: `keys[1]`: must not be empty"
        );
        assert_eq!(
            err(r#"{"emails": false, "cards": false}"#),
            "invalid-config: `keys`: nothing to redact: list keys or leave `emails` or `cards` on"
        );
        assert!(err(r#"{"mode": "hash"}"#)
            .starts_with("invalid-config: `mode`: unknown variant `hash`"));
        assert!(err(r#"{"keys": "user.id"}"#).starts_with("invalid-config: `keys`: invalid type"));
    }

    #[test]
    fn golden() {
        check_golden::<Strings<Redact>>(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/golden"));
    }
}
