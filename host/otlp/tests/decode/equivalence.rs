//! The one-pass protobuf decoder (`decode_proto`) against the oracle
//! `request_to_spans(prost decode)`: fixtures, thousands of generated requests written field by
//! field (unknown fields, repeated singular fields, odd ids, shuffled field order), and malformed
//! bodies (truncations, byte flips, garbage, nesting at the recursion limit).

use std::path::Path;
use std::sync::Arc;

use prost::Message;
use spoor_otlp::{decode_proto, json, proto, request_to_spans, DecodeError, Decoded};

/// SplitMix64: a small seeded generator, so every run sees the same requests.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
    fn chance(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }
    fn bytes(&mut self, n: usize) -> Vec<u8> {
        (0..n).map(|_| self.next() as u8).collect()
    }
    fn some_bytes(&mut self, max: u64) -> Vec<u8> {
        let n = self.below(max) as usize;
        self.bytes(n)
    }
}

/// A protobuf field as written on the wire.
#[derive(Clone)]
enum Wire {
    Varint(u64),
    I64(u64),
    I32(u32),
    Len(Vec<u8>),
    Msg(Vec<(u32, Wire)>),
    Group(Vec<(u32, Wire)>),
}

fn put_varint(mut v: u64, out: &mut Vec<u8>) {
    loop {
        let b = (v & 0x7f) as u8;
        v >>= 7;
        if v == 0 {
            out.push(b);
            return;
        }
        out.push(b | 0x80);
    }
}

fn encode(fields: &[(u32, Wire)], out: &mut Vec<u8>) {
    for (tag, w) in fields {
        let key = |wt: u64, out: &mut Vec<u8>| put_varint((u64::from(*tag) << 3) | wt, out);
        match w {
            Wire::Varint(v) => {
                key(0, out);
                put_varint(*v, out);
            }
            Wire::I64(v) => {
                key(1, out);
                out.extend_from_slice(&v.to_le_bytes());
            }
            Wire::I32(v) => {
                key(5, out);
                out.extend_from_slice(&v.to_le_bytes());
            }
            Wire::Len(b) => {
                key(2, out);
                put_varint(b.len() as u64, out);
                out.extend_from_slice(b);
            }
            Wire::Msg(m) => {
                let mut inner = Vec::new();
                encode(m, &mut inner);
                key(2, out);
                put_varint(inner.len() as u64, out);
                out.extend_from_slice(&inner);
            }
            Wire::Group(m) => {
                key(3, out);
                encode(m, out);
                key(4, out);
            }
        }
    }
}

fn len_prefix(b: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    put_varint(b.len() as u64, &mut out);
    out.extend_from_slice(b);
    out
}

fn to_bytes(fields: &[(u32, Wire)]) -> Vec<u8> {
    let mut out = Vec::new();
    encode(fields, &mut out);
    out
}

/// Random-but-valid OTLP requests, written field by field.
struct Gen {
    rng: Rng,
}

impl Gen {
    fn text(&mut self) -> Wire {
        const PIECES: [&str; 8] = ["a", "GET /", "service.name", "é", "日本", "🦀", " ", "x.y"];
        let n = self.rng.below(4);
        let s: String = (0..n)
            .map(|_| PIECES[self.rng.below(PIECES.len() as u64) as usize])
            .collect();
        Wire::Len(s.into_bytes())
    }

    fn id(&mut self, good: usize, odd: &[usize]) -> Wire {
        let n = if self.rng.chance(90) {
            good
        } else {
            odd[self.rng.below(odd.len() as u64) as usize]
        };
        if self.rng.chance(5) {
            Wire::Len(vec![0; n])
        } else {
            Wire::Len(self.rng.bytes(n))
        }
    }

    fn count(&mut self) -> Wire {
        Wire::Varint(if self.rng.chance(10) {
            self.rng.next()
        } else {
            self.rng.below(5)
        })
    }

    fn unknown(&mut self, depth: u32) -> Wire {
        match self.rng.below(if depth > 2 { 4 } else { 5 }) {
            0 => Wire::Varint(self.rng.next() >> self.rng.below(64)),
            1 => Wire::I64(self.rng.next()),
            2 => Wire::I32(self.rng.next() as u32),
            3 => Wire::Len(self.rng.some_bytes(6)),
            _ => {
                let n = self.rng.below(3);
                Wire::Group(
                    (0..n)
                        .map(|_| (20 + self.rng.below(5) as u32, self.unknown(depth + 1)))
                        .collect(),
                )
            }
        }
    }

    /// Shuffles the fields, sometimes adds unknown ones (tags no OTLP message uses).
    fn finish(&mut self, mut fields: Vec<(u32, Wire)>) -> Wire {
        if self.rng.chance(15) {
            let n = 1 + self.rng.below(2);
            for _ in 0..n {
                let tag = 20 + self.rng.below(200) as u32;
                let w = self.unknown(0);
                fields.push((tag, w));
            }
        }
        if self.rng.chance(30) {
            for i in (1..fields.len()).rev() {
                let j = self.rng.below(i as u64 + 1) as usize;
                fields.swap(i, j);
            }
        }
        Wire::Msg(fields)
    }

    fn repeat(&mut self, max: u64, mut f: impl FnMut(&mut Self) -> Wire) -> Vec<Wire> {
        let n = self.rng.below(max + 1);
        (0..n).map(|_| f(self)).collect()
    }

    /// An optional (singular) field: usually once, sometimes absent or repeated.
    fn optional(&mut self, mut f: impl FnMut(&mut Self) -> Wire) -> Vec<Wire> {
        let n = match self.rng.below(10) {
            0 => 0,
            1 => 2,
            _ => 1,
        };
        (0..n).map(|_| f(self)).collect()
    }

    fn any_value(&mut self, depth: u32) -> Wire {
        let mut fields = Vec::new();
        let n = match self.rng.below(10) {
            0 => 0,
            1 => 2,
            _ => 1,
        };
        for _ in 0..n {
            let nested = depth < 3;
            let pick = self.rng.below(if nested { 7 } else { 5 });
            let f = match pick {
                0 => (1, self.text()),
                1 => (2, Wire::Varint(self.rng.below(3))),
                2 => (3, Wire::Varint(self.rng.next())),
                3 => (
                    4,
                    Wire::I64((self.rng.below(2000) as f64 - 1000.5).to_bits()),
                ),
                4 => (7, Wire::Len(self.rng.some_bytes(4))),
                5 => {
                    let items = self.repeat(3, |g| g.any_value(depth + 1));
                    (5, self.finish(items.into_iter().map(|v| (1, v)).collect()))
                }
                _ => {
                    let items = self.repeat(3, |g| g.key_value(depth + 1));
                    (6, self.finish(items.into_iter().map(|v| (1, v)).collect()))
                }
            };
            fields.push(f);
        }
        self.finish(fields)
    }

    fn key_value(&mut self, depth: u32) -> Wire {
        let mut fields = Vec::new();
        if self.rng.chance(95) {
            let key = if self.rng.chance(20) {
                Wire::Len(b"service.name".to_vec())
            } else {
                self.text()
            };
            fields.push((1, key));
        }
        for v in self.optional(|g| g.any_value(depth)) {
            fields.push((2, v));
        }
        self.finish(fields)
    }

    fn attrs(&mut self, tag: u32, max: u64, fields: &mut Vec<(u32, Wire)>) {
        for kv in self.repeat(max, |g| g.key_value(0)) {
            fields.push((tag, kv));
        }
    }

    fn resource(&mut self) -> Wire {
        let mut fields = Vec::new();
        self.attrs(1, 4, &mut fields);
        if self.rng.chance(50) {
            fields.push((2, self.count()));
        }
        self.finish(fields)
    }

    fn scope(&mut self) -> Wire {
        let mut fields = Vec::new();
        for (tag, n) in [(1, self.rng.below(3)), (2, self.rng.below(2))] {
            for _ in 0..n {
                fields.push((tag, self.text()));
            }
        }
        self.attrs(3, 2, &mut fields);
        if self.rng.chance(30) {
            fields.push((4, self.count()));
        }
        self.finish(fields)
    }

    fn event(&mut self) -> Wire {
        let mut fields = vec![(1, Wire::I64(self.rng.next())), (2, self.text())];
        self.attrs(3, 2, &mut fields);
        if self.rng.chance(30) {
            fields.push((4, self.count()));
        }
        self.finish(fields)
    }

    fn link(&mut self) -> Wire {
        let mut fields = vec![
            (1, self.id(16, &[0, 8, 17])),
            (2, self.id(8, &[0, 7, 16])),
            (3, self.text()),
        ];
        self.attrs(4, 2, &mut fields);
        if self.rng.chance(30) {
            fields.push((5, self.count()));
        }
        if self.rng.chance(50) {
            fields.push((6, Wire::I32(self.rng.next() as u32)));
        }
        self.finish(fields)
    }

    fn status(&mut self) -> Wire {
        let mut fields = Vec::new();
        if self.rng.chance(60) {
            fields.push((2, self.text()));
        }
        if self.rng.chance(80) {
            let code = if self.rng.chance(90) {
                self.rng.below(4)
            } else {
                self.rng.next()
            };
            fields.push((3, Wire::Varint(code)));
        }
        self.finish(fields)
    }

    fn span(&mut self) -> Wire {
        let mut fields = vec![
            (1, self.id(16, &[0, 15, 17, 32])),
            (2, self.id(8, &[0, 7, 9])),
        ];
        if self.rng.chance(5) {
            // A repeated id field: the last one counts.
            fields.push((2, self.id(8, &[3])));
        }
        if self.rng.chance(60) {
            let parent = if self.rng.chance(90) {
                self.id(8, &[5, 16])
            } else {
                Wire::Len(Vec::new())
            };
            fields.push((4, parent));
        }
        fields.push((3, self.text()));
        fields.push((5, self.text()));
        if self.rng.chance(90) {
            let kind = if self.rng.chance(90) {
                self.rng.below(7)
            } else {
                self.rng.next()
            };
            fields.push((6, Wire::Varint(kind)));
        }
        let start = if self.rng.chance(90) {
            1_700_000_000_000_000_000 + self.rng.below(1 << 40)
        } else {
            self.rng.next()
        };
        let end = match self.rng.below(10) {
            0 => start.saturating_sub(self.rng.below(1000)),
            1 => self.rng.next(),
            _ => start.saturating_add(self.rng.below(1 << 30)),
        };
        fields.push((7, Wire::I64(start)));
        fields.push((8, Wire::I64(end)));
        if self.rng.chance(70) {
            fields.push((16, Wire::I32(self.rng.next() as u32)));
        }
        self.attrs(9, 6, &mut fields);
        for e in self.repeat(3, Self::event) {
            fields.push((11, e));
        }
        for l in self.repeat(3, Self::link) {
            fields.push((13, l));
        }
        for s in self.optional(Self::status) {
            fields.push((15, s));
        }
        for tag in [10, 12, 14] {
            if self.rng.chance(30) {
                fields.push((tag, self.count()));
            }
        }
        self.finish(fields)
    }

    fn scope_spans(&mut self) -> Wire {
        let mut fields = Vec::new();
        for s in self.optional(Self::scope) {
            fields.push((1, s));
        }
        for s in self.repeat(4, Self::span) {
            fields.push((2, s));
        }
        if self.rng.chance(30) {
            fields.push((3, self.text()));
        }
        self.finish(fields)
    }

    fn resource_spans(&mut self) -> Wire {
        let mut fields = Vec::new();
        for r in self.optional(Self::resource) {
            fields.push((1, r));
        }
        for s in self.repeat(3, Self::scope_spans) {
            fields.push((2, s));
        }
        if self.rng.chance(30) {
            fields.push((3, self.text()));
        }
        self.finish(fields)
    }

    fn request(&mut self) -> Vec<u8> {
        let mut fields: Vec<(u32, Wire)> = self
            .repeat(3, Self::resource_spans)
            .into_iter()
            .map(|w| (1, w))
            .collect();
        if self.rng.chance(10) {
            let w = self.unknown(0);
            fields.push((2, w));
        }
        to_bytes(&fields)
    }
}

fn oracle(body: &[u8]) -> Result<Decoded, DecodeError> {
    proto::ExportTraceServiceRequest::decode(body)
        .map(request_to_spans)
        .map_err(DecodeError::from)
}

/// Asserts the fast decoder agrees with the oracle: same `Ok` value (with the same pattern of
/// shared resources and scopes), or both `Err`.
fn assert_same(what: &str, body: &[u8]) -> bool {
    let fast = decode_proto(body);
    let slow = oracle(body);
    match (&fast, &slow) {
        (Ok(f), Ok(s)) => {
            assert_eq!(f, s, "{what}: decoded differently");
            for i in 0..f.spans.len() {
                for j in i + 1..f.spans.len() {
                    let (a, b) = (&f.spans[i], &f.spans[j]);
                    let (c, d) = (&s.spans[i], &s.spans[j]);
                    assert_eq!(
                        Arc::ptr_eq(&a.resource, &b.resource),
                        Arc::ptr_eq(&c.resource, &d.resource),
                        "{what}: resource sharing of spans {i} and {j}"
                    );
                    assert_eq!(
                        Arc::ptr_eq(&a.scope, &b.scope),
                        Arc::ptr_eq(&c.scope, &d.scope),
                        "{what}: scope sharing of spans {i} and {j}"
                    );
                }
            }
            true
        }
        (Err(DecodeError::Protobuf(text)), Err(_)) => {
            assert!(
                !text.is_empty() && text.chars().next().is_some_and(|c| !c.is_uppercase()),
                "{what}: error text {text:?}"
            );
            false
        }
        _ => panic!("{what}: fast {fast:?}\noracle {slow:?}\nbody {body:02x?}"),
    }
}

fn generated(seed: u64, n: usize) -> Vec<Vec<u8>> {
    let mut g = Gen { rng: Rng(seed) };
    (0..n).map(|_| g.request()).collect()
}

#[test]
fn fixtures_decode_as_the_oracle_does() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures");
    for name in ["basic", "lenient", "rejected"] {
        let text = std::fs::read(dir.join(format!("{name}.json"))).unwrap();
        let body = json::decode_request(&text).unwrap().encode_to_vec();
        assert!(assert_same(name, &body), "{name} should decode");
    }
}

#[test]
fn generated_requests_decode_as_the_oracle_does() {
    let mut spans = 0;
    let mut rejected = 0;
    let mut problems = 0;
    for (i, body) in generated(1, 3000).iter().enumerate() {
        assert!(
            assert_same(&format!("request {i}"), body),
            "request {i} should decode"
        );
        let d = decode_proto(body).unwrap();
        spans += d.spans.len();
        rejected += d.rejected;
        problems += d.problems.len();
    }
    // The generator reaches what it is meant to reach.
    assert!(spans > 5000, "{spans} spans");
    assert!(rejected > 500, "{rejected} rejected");
    assert!(problems > rejected, "{problems} problems");
}

#[test]
fn every_truncation_fails_or_agrees() {
    for (i, body) in generated(2, 40).iter().enumerate() {
        for cut in 0..body.len() {
            assert_same(&format!("request {i} cut at {cut}"), &body[..cut]);
        }
    }
}

#[test]
fn byte_flips_and_garbage_fail_or_agree() {
    let mut rng = Rng(3);
    let mut errors = 0;
    for (i, body) in generated(4, 300).iter().enumerate() {
        for k in 0..20 {
            let mut b = body.clone();
            if b.is_empty() {
                continue;
            }
            for _ in 0..1 + rng.below(3) {
                let at = rng.below(b.len() as u64) as usize;
                b[at] = rng.next() as u8;
            }
            if !assert_same(&format!("request {i} flip {k}"), &b) {
                errors += 1;
            }
        }
    }
    assert!(errors > 100, "only {errors} flipped bodies were rejected");
    for k in 0..3000 {
        let n = rng.below(64) as usize;
        let mut b = rng.bytes(n);
        if k % 2 == 0 {
            // Start like a request so the garbage reaches the nested decoders.
            b.insert(0, 0x0a);
        }
        assert_same(&format!("garbage {k}"), &b);
    }
}

/// `depth` nested `ArrayValue`s in a span attribute, with `extra` at the innermost `AnyValue`.
fn nested(depth: usize, extra: Vec<(u32, Wire)>) -> Vec<u8> {
    let mut v = Wire::Msg(extra);
    for _ in 0..depth {
        v = Wire::Msg(vec![(5, Wire::Msg(vec![(1, v)]))]);
    }
    let kv = Wire::Msg(vec![(1, Wire::Len(b"k".to_vec())), (2, v)]);
    let span = Wire::Msg(vec![
        (1, Wire::Len(vec![1; 16])),
        (2, Wire::Len(vec![2; 8])),
        (9, kv),
    ]);
    let ss = Wire::Msg(vec![(2, span)]);
    let rs = Wire::Msg(vec![(2, ss)]);
    to_bytes(&[(1, rs)])
}

#[test]
fn nesting_at_the_recursion_limit_matches_prost() {
    let mut accepted = 0;
    let mut refused = 0;
    for depth in 40..=52 {
        for extra in [
            vec![],
            vec![(1, Wire::Len(b"s".to_vec()))],
            vec![(30, Wire::Varint(1))],
            vec![(30, Wire::Group(vec![(31, Wire::Group(vec![]))]))],
            vec![(6, Wire::Msg(vec![]))],
            vec![(6, Wire::Msg(vec![(30, Wire::Varint(1))]))],
        ] {
            if assert_same(&format!("depth {depth}"), &nested(depth, extra)) {
                accepted += 1;
            } else {
                refused += 1;
            }
        }
    }
    assert!(
        accepted > 0 && refused > 0,
        "{accepted} accepted, {refused} refused"
    );
    // Far beyond the limit: an error, not a stack overflow.
    let mut value = Vec::new();
    for _ in 0..5000 {
        let mut array = vec![0x0a];
        put_varint(value.len() as u64, &mut array);
        array.extend_from_slice(&value);
        value = vec![0x2a];
        put_varint(array.len() as u64, &mut value);
        value.extend_from_slice(&array);
    }
    let kv = [vec![0x12], len_prefix(&value)].concat();
    let span = [vec![0x4a], len_prefix(&kv)].concat();
    let ss = [vec![0x12], len_prefix(&span)].concat();
    let rs = [vec![0x12], len_prefix(&ss)].concat();
    let deep = [vec![0x0a], len_prefix(&rs)].concat();
    assert!(matches!(decode_proto(&deep), Err(DecodeError::Protobuf(t)) if t.contains("nested")));
}

#[test]
fn wire_edge_cases_match_prost() {
    let span = |extra: Vec<(u32, Wire)>| {
        let mut fields = vec![(1, Wire::Len(vec![1; 16])), (2, Wire::Len(vec![2; 8]))];
        fields.extend(extra);
        to_bytes(&[(
            1,
            Wire::Msg(vec![(2, Wire::Msg(vec![(2, Wire::Msg(fields))]))]),
        )])
    };
    let cases: Vec<(&str, Vec<u8>)> = vec![
        ("empty body", vec![]),
        ("name as varint", span(vec![(5, Wire::Varint(3))])),
        ("start as varint", span(vec![(7, Wire::Varint(3))])),
        ("flags as fixed64", span(vec![(16, Wire::I64(3))])),
        ("attribute as group", span(vec![(9, Wire::Group(vec![]))])),
        ("kind as fixed32", span(vec![(6, Wire::I32(1))])),
        (
            "invalid utf-8 name",
            span(vec![(5, Wire::Len(vec![0xc3, 0x28]))]),
        ),
        (
            "utf-8 bytes value",
            span(vec![(
                9,
                Wire::Msg(vec![(2, Wire::Msg(vec![(7, Wire::Len(vec![0xff]))]))]),
            )]),
        ),
        (
            "unknown group",
            span(vec![(99, Wire::Group(vec![(1, Wire::Varint(5))]))]),
        ),
        ("stray end group", {
            let mut b = span(vec![]);
            b.extend([0x0c]); // field 1, end group, at the top level
            b
        }),
        ("non-canonical varint", {
            let mut b = span(vec![]);
            b.extend([0x10, 0x80, 0x80, 0x00]); // field 2 (unknown) = 0 in three bytes
            b
        }),
        ("ten-byte varint", {
            let mut b = span(vec![]);
            b.extend([
                0x10, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01,
            ]);
            b
        }),
        ("varint overflow", {
            let mut b = span(vec![]);
            b.extend([
                0x10, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x02,
            ]);
            b
        }),
        ("key above u32", vec![0x80, 0x80, 0x80, 0x80, 0x10]),
        (
            "kind and dropped counts wider than 32 bits",
            span(vec![
                (6, Wire::Varint(u64::MAX)),
                (10, Wire::Varint(1 << 33 | 7)),
            ]),
        ),
        (
            "two arrays merge, then a string replaces",
            span(vec![(
                9,
                Wire::Msg(vec![
                    (
                        2,
                        Wire::Msg(vec![(
                            5,
                            Wire::Msg(vec![(1, Wire::Msg(vec![(3, Wire::Varint(1))]))]),
                        )]),
                    ),
                    (
                        2,
                        Wire::Msg(vec![(5, Wire::Msg(vec![(1, Wire::Msg(vec![]))]))]),
                    ),
                ]),
            )]),
        ),
    ];
    for (what, body) in cases {
        assert_same(what, &body);
    }
}
