//! Bodies of the fuzz targets: one `pub fn <target>(data: &[u8])` per decoder or parser of
//! Spoor. Each checks invariants beyond "does not panic" where they are cheap: a decoder agrees
//! with its slower twin, what decodes re-encodes and decodes to the same spans, a parsed value
//! prints and parses back to itself, and an HTTP answer is never a 5xx and always JSON.
//!
//! The libFuzzer binaries in `fuzz_targets/` call these; `cargo test` (`make fuzz-regress`)
//! replays `corpus/<target>/` and `regressions/<target>/` through [`TARGETS`].

use std::collections::BTreeMap;
use std::fmt::Debug;
use std::sync::{Arc, OnceLock};

use prost::Message as _;
use spoor_core::block::{encode_block, BlockReader};
use spoor_core::model::{Span, SpanId, Trace, TraceId};
use spoor_core::sampling::strategy::StrategyResponse;
use spoor_core::Decoded;

/// A target's body: takes any bytes, panics only when it found a bug.
pub type Target = fn(&[u8]);

/// Every target, by the name of its binary and corpus folder.
pub const TARGETS: &[(&str, Target)] = &[
    ("otlp_proto", otlp_proto),
    ("otlp_json", otlp_json),
    ("jaeger_compact", jaeger_compact),
    ("jaeger_binary", jaeger_binary),
    ("jaeger_http", jaeger_http),
    ("jaeger_proto", jaeger_proto),
    ("jaeger_json", jaeger_json),
    ("zipkin_v2_json", zipkin_v2_json),
    ("zipkin_v1_json", zipkin_v1_json),
    ("zipkin_proto", zipkin_proto),
    ("query", query),
    ("config", config),
    ("config_file", config_file),
    ("strategies", strategies),
    ("block", block),
    ("plugin_output", plugin_output),
    ("plugin_patches", plugin_patches),
];

/// The OTLP/JSON fixture of the end-to-end tests: the spans the stateful targets start from.
pub const FIXTURE_OTLP_JSON: &[u8] = include_bytes!("../../fixtures/otlp_trace.json");

/// The fixture's spans.
pub fn fixture_spans() -> &'static [Span] {
    static SPANS: OnceLock<Vec<Span>> = OnceLock::new();
    SPANS.get_or_init(|| match spoor_otlp::decode_json(FIXTURE_OTLP_JSON) {
        Ok(d) => d.spans,
        Err(e) => panic!("the OTLP fixture does not decode: {e}"),
    })
}

/// Equal, or (for values holding a NaN, which is unequal to itself) equal when printed.
fn same<T: PartialEq + Debug>(a: &T, b: &T) -> bool {
    a == b || format!("{a:?}") == format!("{b:?}")
}

#[track_caller]
fn assert_same<T: PartialEq + Debug>(what: &str, a: &T, b: &T) {
    if !same(a, b) {
        panic!("{what}:\n  left:  {a:?}\n  right: {b:?}");
    }
}

/// Each rejected span has a problem line naming it.
#[track_caller]
fn check_decoded(what: &str, d: &Decoded) {
    assert!(
        d.problems.len() >= d.rejected,
        "{what}: {} spans rejected but only {} problem lines: {:?}",
        d.rejected,
        d.problems.len(),
        d.problems
    );
}

/// The spans without their decoder warnings: a warning about something the decoder dropped
/// (a malformed link, say) rightly does not come back when the spans are encoded again.
fn without_warnings(spans: &[Span]) -> Vec<Span> {
    let mut out = spans.to_vec();
    for s in &mut out {
        s.warnings.clear();
    }
    out
}

fn ids(spans: &[Span]) -> Vec<(TraceId, SpanId)> {
    spans.iter().map(|s| (s.trace_id, s.span_id)).collect()
}

/// OTLP `ExportTraceServiceRequest` protobuf (`decode_proto`, the one-pass decoder): agrees with
/// the prost decode + `request_to_spans`, and what decodes re-encodes (`encode_proto`) to the
/// same spans.
pub fn otlp_proto(data: &[u8]) {
    let fast = spoor_otlp::decode_proto(data);
    let prost = spoor_otlp::proto::ExportTraceServiceRequest::decode(data)
        .map(spoor_otlp::request_to_spans);
    match (&fast, &prost) {
        (Ok(f), Ok(p)) => assert_same("decode_proto vs prost + request_to_spans", f, p),
        (Ok(_), Err(e)) => panic!("decode_proto accepted a body prost rejects: {e}"),
        (Err(e), Ok(_)) => panic!("decode_proto rejected a body prost accepts: {e}"),
        (Err(_), Err(_)) => {}
    }
    let Ok(d) = fast else { return };
    check_decoded("otlp proto", &d);
    let again = spoor_otlp::decode_proto(&spoor_otlp::encode_proto(&d.spans))
        .unwrap_or_else(|e| panic!("encode_proto output does not decode: {e}"));
    assert_eq!(
        again.rejected, 0,
        "re-encoded spans rejected: {:?}",
        again.problems
    );
    let (again, first) = (without_warnings(&again.spans), without_warnings(&d.spans));
    assert_same("otlp proto round trip", &again, &first);
}

/// OTLP/JSON (`decode_json`): what decodes encodes as OTLP/JSON (`encode_traces_data`) and
/// decodes to the same spans.
pub fn otlp_json(data: &[u8]) {
    let Ok(d) = spoor_otlp::decode_json(data) else {
        return;
    };
    check_decoded("otlp json", &d);
    let text = spoor_otlp::json::encode_traces_data(&d.spans).to_string();
    let again = spoor_otlp::decode_json(text.as_bytes())
        .unwrap_or_else(|e| panic!("encode_traces_data output does not decode: {e}\n{text}"));
    assert_eq!(
        again.rejected, 0,
        "re-encoded spans rejected: {:?}",
        again.problems
    );
    let (again, first) = (without_warnings(&again.spans), without_warnings(&d.spans));
    assert_same("otlp json round trip", &again, &first);
}

fn jaeger_emit_batch(data: &[u8], protocol: spoor_jaeger::Protocol) {
    let Ok(batch) = spoor_jaeger::read_emit_batch(data, protocol) else {
        assert!(spoor_jaeger::decode_emit_batch(data, protocol).is_err());
        return;
    };
    let d = spoor_jaeger::decode_emit_batch(data, protocol)
        .unwrap_or_else(|e| panic!("read_emit_batch accepted what decode_emit_batch refuses: {e}"));
    check_decoded("jaeger emitBatch", &d);
    let bytes = spoor_jaeger::encode_emit_batch(&batch, protocol, 7);
    let again = spoor_jaeger::read_emit_batch(&bytes, protocol)
        .unwrap_or_else(|e| panic!("encode_emit_batch output does not read: {e}"));
    assert_same("jaeger emitBatch round trip", &again, &batch);
}

/// Jaeger `Agent.emitBatch` in Thrift compact (UDP :6831): re-encodes to the same `Batch`.
pub fn jaeger_compact(data: &[u8]) {
    jaeger_emit_batch(data, spoor_jaeger::Protocol::Compact);
}

/// Jaeger `Agent.emitBatch` in Thrift binary (UDP :6832): re-encodes to the same `Batch`.
pub fn jaeger_binary(data: &[u8]) {
    jaeger_emit_batch(data, spoor_jaeger::Protocol::Binary);
}

/// Jaeger's HTTP body (`POST /api/traces`, a binary `Batch`): re-encodes
/// (`encode_http_batch`) and decodes to the same spans.
pub fn jaeger_http(data: &[u8]) {
    let Ok(d) = spoor_jaeger::decode_http_batch(data) else {
        return;
    };
    check_decoded("jaeger http", &d);
    for batch in spoor_jaeger::convert::spans_to_batches(&d.spans) {
        let bytes = spoor_jaeger::encode_http_batch(&batch);
        let again = spoor_jaeger::decode_http_batch(&bytes)
            .unwrap_or_else(|e| panic!("encode_http_batch output does not decode: {e}"));
        assert_eq!(again.spans.len(), batch.spans.len(), "{:?}", again.problems);
    }
}

/// Jaeger `api_v2` `PostSpansRequest` protobuf (gRPC :14250): prost re-encoding decodes the
/// same.
pub fn jaeger_proto(data: &[u8]) {
    let Ok(d) = spoor_jaeger::decode_post_spans(data) else {
        return;
    };
    check_decoded("jaeger api_v2", &d);
    let req = spoor_jaeger::proto::PostSpansRequest::decode(data)
        .unwrap_or_else(|e| panic!("decode_post_spans accepted what prost refuses: {e}"));
    let batch = req
        .batch
        .expect("decode_post_spans accepted a request without a batch");
    let again = spoor_jaeger::decode_post_spans(&spoor_jaeger::encode_post_spans(batch))
        .unwrap_or_else(|e| panic!("encode_post_spans output does not decode: {e}"));
    assert_same("jaeger api_v2 round trip", &again, &d);
}

/// Jaeger query-API JSON (`json_in::decode_json`, fast path with a `Value` fallback): agrees
/// with the `Value` reader, and what decodes renders as the query API's JSON
/// (`spoor_query::jaeger::trace_json`) and decodes to the same spans.
pub fn jaeger_json(data: &[u8]) {
    use spoor_jaeger::json_in;
    let got = json_in::decode_json(data);
    match serde_json::from_slice::<serde_json::Value>(data) {
        Ok(v) => assert_same(
            "decode_json vs decode_value",
            &got,
            &json_in::decode_value(&v),
        ),
        Err(_) => assert!(got.is_err(), "decode_json accepted a body that is not JSON"),
    }
    let Ok(d) = got else { return };
    check_decoded("jaeger json", &d);
    let mut traces: BTreeMap<TraceId, Vec<Span>> = BTreeMap::new();
    for s in &d.spans {
        traces.entry(s.trace_id).or_default().push(s.clone());
    }
    for (trace_id, spans) in traces {
        let trace = Trace { trace_id, spans };
        let text = spoor_query::jaeger::trace_json(&trace, &[]).render();
        let again = json_in::decode_json(text.as_bytes())
            .unwrap_or_else(|e| panic!("trace_json output does not decode: {e}\n{text}"));
        assert_eq!(
            again.rejected, 0,
            "re-rendered spans rejected: {:?}",
            again.problems
        );
        assert_eq!(ids(&again.spans), ids(&trace.spans), "{text}");
    }
}

/// Zipkin v2 JSON: agrees with the reader (`read_v2_json`), whose spans re-encode
/// (`encode_v2_json`) and read back the same.
pub fn zipkin_v2_json(data: &[u8]) {
    let decoded = spoor_zipkin::decode_v2_json(data);
    let Ok((spans, problems)) = spoor_zipkin::read_v2_json(data) else {
        assert!(
            decoded.is_err(),
            "read_v2_json refused what decode_v2_json accepts"
        );
        return;
    };
    let d =
        decoded.unwrap_or_else(|e| panic!("decode_v2_json refused what read_v2_json reads: {e}"));
    check_decoded("zipkin v2 json", &d);
    assert!(
        d.rejected >= problems.len(),
        "{problems:?} vs {:?}",
        d.problems
    );
    let zs: Vec<_> = spans.into_iter().map(|(_, z)| z).collect();
    let (again, again_problems) = spoor_zipkin::read_v2_json(&spoor_zipkin::encode_v2_json(&zs))
        .unwrap_or_else(|e| panic!("encode_v2_json output does not read: {e}"));
    assert!(again_problems.is_empty(), "{again_problems:?}");
    let again: Vec<_> = again.into_iter().map(|(_, z)| z).collect();
    assert_same("zipkin v2 json round trip", &again, &zs);
}

/// Zipkin v1 JSON: what decodes re-encodes as v1 (`encode_v1_json` of `from_spans`) and decodes
/// to as many spans.
pub fn zipkin_v1_json(data: &[u8]) {
    let Ok(d) = spoor_zipkin::decode_v1_json(data) else {
        return;
    };
    check_decoded("zipkin v1 json", &d);
    let body = spoor_zipkin::encode_v1_json(&spoor_zipkin::from_spans(&d.spans));
    let again = spoor_zipkin::decode_v1_json(&body)
        .unwrap_or_else(|e| panic!("encode_v1_json output does not decode: {e}"));
    assert_eq!(
        again.rejected, 0,
        "re-encoded spans rejected: {:?}",
        again.problems
    );
    assert_eq!(again.spans.len(), d.spans.len());
}

/// Zipkin v2 proto3 `ListOfSpans`: the spans that convert re-encode (`encode_v2_proto`) and
/// convert back the same.
pub fn zipkin_proto(data: &[u8]) {
    use spoor_zipkin::proto::{from_proto, ListOfSpans};
    let Ok(d) = spoor_zipkin::decode_v2_proto(data) else {
        return;
    };
    check_decoded("zipkin proto", &d);
    let list = ListOfSpans::decode(data)
        .unwrap_or_else(|e| panic!("decode_v2_proto accepted what prost refuses: {e}"));
    let zs: Vec<_> = list
        .spans
        .into_iter()
        .filter_map(|s| from_proto(s).ok())
        .collect();
    let again = ListOfSpans::decode(spoor_zipkin::encode_v2_proto(&zs).as_slice())
        .unwrap_or_else(|e| panic!("encode_v2_proto output does not decode: {e}"));
    let again: Vec<_> = again
        .spans
        .into_iter()
        .map(|s| from_proto(s).unwrap_or_else(|e| panic!("re-encoded span refused: {e}")))
        .collect();
    assert_same("zipkin proto round trip", &again, &zs);
}

/// Bytes a URI query may hold as they are; the rest is percent-encoded (a `%` is kept, so bad
/// escapes reach the parser).
fn uri_query(data: &[u8]) -> String {
    let mut out = String::with_capacity(data.len());
    for &b in data {
        if b.is_ascii_alphanumeric() || b"-._~!$&'()*+,;=:@/?%".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

struct QueryApi {
    rt: tokio::runtime::Runtime,
    router: axum::Router,
}

fn query_api() -> &'static QueryApi {
    static API: OnceLock<QueryApi> = OnceLock::new();
    API.get_or_init(|| {
        use spoor_store::TraceStore as _;
        let store = spoor_store::memory::MemoryStore::new(1_000);
        if let Err(e) = store.write_spans(fixture_spans()) {
            panic!("the memory store refused the fixture: {e}");
        }
        let rt = match tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
        {
            Ok(rt) => rt,
            Err(e) => panic!("no tokio runtime: {e}"),
        };
        let router = spoor_query::router(Arc::new(store), spoor_query::QueryConfig::default());
        QueryApi { rt, router }
    })
}

/// GETs `uri` from the query API (memory store holding the fixture): never a 5xx, always JSON.
fn get_json(uri: &str) {
    use http_body_util::BodyExt as _;
    use tower::ServiceExt as _;
    let api = query_api();
    let Ok(req) = http::Request::get(uri).body(axum::body::Body::empty()) else {
        return;
    };
    let (status, body) = api.rt.block_on(async {
        let resp = match api.router.clone().oneshot(req).await {
            Ok(r) => r,
            Err(e) => match e {},
        };
        let status = resp.status();
        let body = resp.into_body().collect().await.map(|b| b.to_bytes());
        (status, body)
    });
    let body = body.unwrap_or_else(|e| panic!("{uri}: body failed: {e}"));
    assert!(
        !status.is_server_error(),
        "{uri}: {status} {}",
        String::from_utf8_lossy(&body)
    );
    if let Err(e) = serde_json::from_slice::<serde_json::Value>(&body) {
        panic!(
            "{uri}: {status} body is not JSON ({e}): {}",
            String::from_utf8_lossy(&body)
        );
    }
}

/// Query parameters: `Params::parse` and the public value parsers (ids, Go integers and
/// durations, lookbacks, RFC 3339 times, tags), each value that parses printing back to
/// itself, then the raw query string against `/api/traces` and `/api/v3/traces` (searches into
/// a `TraceQuery`: v1 `parse_search`, v3 `parse_find`).
pub fn query(data: &[u8]) {
    use spoor_query::params::{self, Params};
    let raw = String::from_utf8_lossy(data);
    let p = Params::parse(Some(&raw));
    for id in p.all("traceID") {
        if let Ok(t) = params::parse_trace_id(id) {
            let text = spoor_query::jaeger::trace_id_str(t);
            assert_eq!(
                params::parse_trace_id(&text),
                Ok(t),
                "{id:?} printed as {text:?}"
            );
        }
    }
    for name in ["start", "end", "limit", "query.searchDepth"] {
        for v in p.all(name) {
            if let Ok(n) = params::go_parse_i64(v) {
                assert_eq!(params::go_parse_i64(&n.to_string()), Ok(n), "{v:?}");
            }
            if let Ok(n) = params::go_parse_i32(v) {
                assert_eq!(params::go_parse_i64(v), Ok(i64::from(n)), "{v:?}");
            }
        }
    }
    for name in [
        "minDuration",
        "maxDuration",
        "query.durationMin",
        "query.durationMax",
    ] {
        for v in p.all(name) {
            let _ = params::go_parse_duration(v);
        }
    }
    for v in p.all("lookback") {
        let _ = params::parse_lookback(v);
    }
    for name in ["query.startTimeMin", "query.startTimeMax"] {
        for v in p.all(name) {
            let _ = params::parse_rfc3339(v);
        }
    }
    let _ = params::parse_tags(&p.all("tag"), &p.all("tags"));
    let q = uri_query(data);
    get_json(&format!("/api/traces?{q}"));
    get_json(&format!("/api/v3/traces?{q}"));
}

/// The TOML grammar of the daemon's config file, and the tail sampler it configures: the
/// TOML document, which prints and parses back to itself, and its `[sampling.tail]` table
/// through `TailConfig` validation into a running `TailSampler` (the whole file through the
/// daemon's settings is [`config_file`]).
pub fn config(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(table) = toml::from_str::<toml::Table>(text) else {
        return;
    };
    if let Ok(printed) = toml::to_string(&table) {
        let back = toml::from_str::<toml::Table>(&printed)
            .unwrap_or_else(|e| panic!("printed TOML does not parse: {e}\n{printed}"));
        assert_same("toml round trip", &back, &table);
    }
    let Some(tail) = table.get("sampling").and_then(|s| s.get("tail")).cloned() else {
        return;
    };
    let Ok(cfg) = tail.try_into::<spoor_core::tail::TailConfig>() else {
        return;
    };
    // Bounded here only so one input cannot take the fuzzer's memory budget on purpose.
    if cfg.num_traces > 100_000 || cfg.decision_cache > 100_000 {
        return;
    }
    let Ok(mut sampler) = spoor_core::tail::TailSampler::new(&cfg) else {
        return;
    };
    let spans = fixture_spans().to_vec();
    let now = spans.iter().map(Span::end_unix_nanos).max().unwrap_or(0);
    let mut out = sampler.push(spans.clone(), now);
    let flushed =
        sampler.flush_all(now.saturating_add(cfg.decision_wait_ms.saturating_mul(1_000_000)));
    out.spans.extend(flushed.spans);
    assert!(
        out.spans.len() <= spans.len(),
        "the tail sampler made spans up"
    );
}

/// Where the `config_file` target's input is the config file; the files it may name sit
/// beside it (relative paths are the config file's directory's).
pub const CONFIG_PATH: &str = "/spoor/spoor.toml";

/// The files `config_file` resolves against, and nothing else: the input as the config file,
/// and beside it a good and a bad bearer tokens file, good and bad UI options and a UI
/// directory, so every path that reads a file can be reached and none can hang (there is no
/// `/dev/zero` here).
struct FuzzFiles {
    config: Vec<u8>,
}

impl FuzzFiles {
    const OTHERS: &'static [(&'static str, &'static str)] = &[
        ("/spoor/tokens", "tok-a a\ntok-b b\n# comment\n"),
        ("/spoor/tokens-bad", "tok-a a\nlonely\n"),
        (
            "/spoor/ui.json",
            r#"{"menu": [{"label": "x", "url": "http://x"}]}"#,
        ),
        ("/spoor/ui-bad.json", "{"),
        ("/spoor/ui-list.json", "[]"),
        ("/spoor/www/index.html", "<!doctype html>"),
    ];
}

impl spoor_config::Files for FuzzFiles {
    fn read_to_string(&self, path: &std::path::Path) -> std::io::Result<String> {
        use std::io::{Error, ErrorKind};
        let bytes = if path == std::path::Path::new(CONFIG_PATH) {
            &self.config[..]
        } else {
            Self::OTHERS
                .iter()
                .find(|(p, _)| path == std::path::Path::new(p))
                .map(|(_, text)| text.as_bytes())
                .ok_or_else(|| Error::new(ErrorKind::NotFound, "no such file"))?
        };
        String::from_utf8(bytes.to_vec())
            .map_err(|_| Error::new(ErrorKind::InvalidData, "stream did not contain valid UTF-8"))
    }

    fn is_file(&self, path: &std::path::Path) -> bool {
        path == std::path::Path::new(CONFIG_PATH)
            || Self::OTHERS
                .iter()
                .any(|(p, _)| path == std::path::Path::new(p))
    }
}

/// What a refusal may name: every flag (`memory.limit-mib`), the keys only a file has, and
/// the file itself (a TOML error).
fn setting_names() -> &'static [String] {
    static NAMES: OnceLock<Vec<String>> = OnceLock::new();
    NAMES.get_or_init(|| {
        use clap::Args as _;
        let cmd = spoor_config::Options::augment_args(clap::Command::new("spoor"));
        let mut names: Vec<String> = cmd
            .get_arguments()
            .filter_map(|a| a.get_long().map(str::to_string))
            .collect();
        names.extend(["sampling.tail", "plugins", "config file"].map(String::from));
        names
    })
}

/// The daemon's whole config file (`spoor-config`): the input resolved as the file of
/// [`FuzzFiles`], through the schema, every setting's validation and the files it names.
/// A refusal is lowercase and names a setting (a flag's name, `sampling.tail`, `plugins`) or
/// the config file (whether it ends with a period cannot be checked: messages end with the
/// refused value, a path like `ui.jso.` or the segment `..`); accepted settings, written
/// back by `Settings::to_toml`, resolve to the same settings (`Debug`, which shows every
/// field but the tokens) and write back the same text (which shows the tokens).
pub fn config_file(data: &[u8]) {
    use spoor_config::{Options, Settings};
    let opts = Options {
        config: Some(CONFIG_PATH.into()),
        ..Default::default()
    };
    let files = FuzzFiles {
        config: data.to_vec(),
    };
    let settings = match Settings::resolve_with(&opts, &files) {
        Ok(s) => s,
        Err(e) => {
            let message = e.to_string();
            assert!(
                message.starts_with(|c: char| c.is_lowercase() || !c.is_alphabetic()),
                "refusal not lowercase: {message}"
            );
            assert!(
                setting_names().iter().any(|n| message.contains(n.as_str())),
                "refusal names no setting: {message}"
            );
            return;
        }
    };
    let text = settings
        .to_toml()
        .unwrap_or_else(|e| panic!("accepted settings cannot be written out: {e}"));
    let again = Settings::resolve_with(
        &opts,
        &FuzzFiles {
            config: text.clone().into_bytes(),
        },
    )
    .unwrap_or_else(|e| panic!("written out, refused: {e}\n{text}"));
    assert_eq!(
        format!("{again:?}"),
        format!("{settings:?}"),
        "written out and read back, the settings differ:\n{text}"
    );
    assert_eq!(
        again.to_toml().as_deref(),
        Ok(text.as_str()),
        "written out twice, the text differs"
    );
}

fn check_strategy(what: &str, s: &StrategyResponse) {
    let prob = |p: f64, field: &str| {
        assert!(
            (0.0..=1.0).contains(&p),
            "{what}: {field} {p} outside [0, 1]"
        );
    };
    match s {
        StrategyResponse::Probabilistic { strategy, .. } => {
            prob(strategy.sampling_rate, "sampling rate")
        }
        StrategyResponse::RateLimiting { strategy, .. } => assert!(
            strategy.max_traces_per_second >= 0,
            "{what}: negative rate {}",
            strategy.max_traces_per_second
        ),
    }
    if let Some(ops) = s.operations() {
        prob(
            ops.default_sampling_probability,
            "default sampling probability",
        );
        let mut seen = std::collections::BTreeSet::new();
        for op in &ops.per_operation {
            prob(op.probabilistic.sampling_rate, &op.operation);
            assert!(
                seen.insert(&op.operation),
                "{what}: operation {:?} twice",
                op.operation
            );
        }
    }
    let jaeger = spoor_jaeger::sampling::SamplingStrategyResponse::from(s);
    let json = spoor_jaeger::sampling::to_proto_json(&jaeger);
    if let Err(e) = serde_json::from_str::<serde_json::Value>(&json) {
        panic!("{what}: to_proto_json is not JSON ({e}): {json}");
    }
    if let Ok(json) = spoor_jaeger::sampling::to_legacy_json(&jaeger) {
        if let Err(e) = serde_json::from_str::<serde_json::Value>(&json) {
            panic!("{what}: to_legacy_json is not JSON ({e}): {json}");
        }
    }
}

/// The sampling strategies file (`core::sampling::file::parse_strategies`): every strategy it
/// accepts is in range (probabilities in [0, 1], rates not negative, operations unique),
/// renders as JSON both ways Jaeger does, and unknown services get the default.
pub fn strategies(data: &[u8]) {
    let Ok(s) = spoor_core::sampling::file::parse_strategies(data) else {
        return;
    };
    check_strategy("default", s.default_strategy());
    let mut longest = String::new();
    for (service, st) in s.services() {
        check_strategy(service, st);
        assert_eq!(&s.strategy_for(service), st, "{service}");
        if service.len() >= longest.len() {
            longest = service.to_string();
        }
    }
    longest.push('~');
    assert_eq!(&s.strategy_for(&longest), s.default_strategy());
}

/// Opens and decodes a block, checking the directory against the segments and that the spans
/// re-encode (`encode_block`) to a block that decodes to the same spans.
fn decode_block_checked(data: &[u8]) -> Option<Vec<Span>> {
    let reader = BlockReader::open(data).ok()?;
    let spans = reader.decode_all().ok()?;
    let directory: Vec<_> = reader.traces().collect();
    let claimed: usize = directory.iter().map(|t| t.span_count).sum();
    assert_eq!(
        claimed,
        spans.len(),
        "directory span counts vs decoded spans"
    );
    let mut at = 0;
    for t in &directory {
        for s in &spans[at..at + t.span_count] {
            assert_eq!(s.trace_id, t.trace_id, "a span in another trace's segment");
        }
        at += t.span_count;
    }
    let bytes = encode_block(&spans);
    let again = BlockReader::open(&bytes)
        .and_then(|r| r.decode_all())
        .unwrap_or_else(|e| panic!("encode_block output does not decode: {e}"));
    assert_same("block round trip", &again, &spans);
    assert_eq!(
        encode_block(&again),
        bytes,
        "encode_block is not deterministic"
    );
    Some(spans)
}

/// Stored blocks (`core::block::BlockReader::open` + `decode_all`), as read back from disk.
pub fn block(data: &[u8]) {
    decode_block_checked(data);
}

/// What the plugin chain does with a plugin's returned bytes (`host/plugin` `chain.rs`,
/// private `run_one`): its input byte for byte passes unchanged; anything else must open and
/// decode as a block (else `PluginError::MalformedOutput`). Decoded output is not validated
/// again: it goes straight to the writer, so it is fed to what the writer runs (RED span
/// metrics, dependency links, the memory store) here.
pub fn plugin_output(data: &[u8]) {
    static INPUT: OnceLock<Vec<u8>> = OnceLock::new();
    let input = INPUT.get_or_init(|| encode_block(fixture_spans()));
    if data == input.as_slice() {
        return;
    }
    let Some(spans) = decode_block_checked(data) else {
        return;
    };
    let mut red = spoor_core::red::RedAggregator::new(60_000_000_000);
    for s in &spans {
        red.record(s);
    }
    let calls: u64 = red.drain_all().iter().map(|p| p.calls).sum();
    assert_eq!(calls, spans.len() as u64, "RED calls vs spans");
    let now = spans.iter().map(Span::end_unix_nanos).max().unwrap_or(0);
    let mut deps = spoor_core::deps::DependencyLinker::new(Default::default());
    deps.observe(&spans, now);
    let _ = deps.take_links(u64::MAX);
    use spoor_store::TraceStore as _;
    let store = spoor_store::memory::MemoryStore::new(100);
    store
        .write_spans(&spans)
        .unwrap_or_else(|e| panic!("the memory store refused decoded plugin output: {e}"));
    let stored: usize = spans
        .iter()
        .map(|s| s.trace_id)
        .collect::<std::collections::BTreeSet<_>>()
        .into_iter()
        .map(|id| {
            store
                .get_trace(id)
                .ok()
                .flatten()
                .map_or(0, |t| t.spans.len())
        })
        .sum();
    assert_eq!(stored, spans.len(), "spans stored vs written");
}

/// What a strings-mode plugin (contract 0.2) answers, as the host takes it: the flat
/// `patches` (replacement text + `index, op, offset, len` words) are checked on their flat form
/// against the view of the fixture's spans and applied straight at the strings they name (the
/// host's `check_flat_with` and `apply_flat` with the view's layout). Never a panic; the flat
/// check refuses exactly what unpacking (`to_patches`) and `check` refuse, with the same
/// message; a checked answer gives the same spans and the same sharing as the walk (`apply`),
/// keeps every span with its ids, and what it makes still encodes and decodes as a block.
/// Unchecked answers are applied too (ignored where they make no sense): never a panic.
///
/// Input: 2 bytes of text length, the replacement text (lossy UTF-8, as the canonical ABI only
/// passes UTF-8), then little-endian `u32` words; index words are taken modulo the view's length
/// plus 4, so most patches are in range and some are not.
pub fn plugin_patches(data: &[u8]) {
    use spoor_plugin_strings::{
        apply, apply_flat, build_with_layout, check, check_flat_with, Layout, Patches, View,
    };
    static VIEW: OnceLock<(View, Layout)> = OnceLock::new();
    let (view, layout) = VIEW.get_or_init(|| {
        let (mut view, mut layout) = (View::default(), Layout::default());
        match build_with_layout(fixture_spans(), &mut view, &mut layout) {
            Ok(()) => (view, layout),
            Err(e) => panic!("the fixture's view cannot be built: {e}"),
        }
    });
    let Some((head, rest)) = data.split_first_chunk::<2>() else {
        return;
    };
    let n = usize::from(u16::from_le_bytes(*head)).min(rest.len());
    let (text, words) = rest.split_at(n);
    let mut flat = Patches {
        text: String::from_utf8_lossy(text).into_owned(),
        ops: words
            .chunks_exact(4)
            .map(|w| u32::from_le_bytes([w[0], w[1], w[2], w[3]]))
            .collect(),
    };
    let modulus = u32::try_from(view.len())
        .unwrap_or(u32::MAX)
        .saturating_add(4);
    for (i, w) in flat.ops.iter_mut().enumerate() {
        if i % 4 == 0 {
            *w %= modulus;
        }
    }
    let cap = 1 << 20;
    let unpacked = flat
        .to_patches()
        .and_then(|p| check(view, &p, cap).map(|()| p))
        .map_err(|e| e.to_string());
    let checked = check_flat_with(view.len(), |i| view.kind(i as usize), &flat, cap)
        .map_err(|e| e.to_string());
    assert_eq!(
        checked,
        unpacked.as_ref().map(drop).map_err(Clone::clone),
        "the flat check and to_patches + check disagree"
    );
    let mut spans = fixture_spans().to_vec();
    apply_flat(&mut spans, &flat, layout);
    let Ok(patches) = unpacked else {
        return;
    };
    let mut walked = fixture_spans().to_vec();
    apply(&mut walked, patches);
    assert_same("addressed patches vs the walk", &spans, &walked);
    let shared = |s: &[Span]| {
        s.iter()
            .map(|a| {
                s.iter()
                    .map(|b| {
                        (
                            Arc::ptr_eq(&a.resource, &b.resource),
                            Arc::ptr_eq(&a.scope, &b.scope),
                        )
                    })
                    .collect::<Vec<_>>()
            })
            .collect::<Vec<_>>()
    };
    assert_eq!(shared(&spans), shared(&walked), "shared resources and scopes");
    assert_eq!(
        spans.len(),
        fixture_spans().len(),
        "strings mode never adds or drops spans"
    );
    for (a, b) in spans.iter().zip(fixture_spans()) {
        assert_eq!(
            (a.trace_id, a.span_id),
            (b.trace_id, b.span_id),
            "ids are not strings"
        );
    }
    let Some(mut back) = decode_block_checked(&encode_block(&spans)) else {
        panic!("patched spans do not decode from their own block");
    };
    // a block groups spans by trace: compare in one order
    let key = |s: &Span| (s.trace_id, s.span_id);
    back.sort_by_key(key);
    spans.sort_by_key(key);
    assert_same("patched spans through a block", &back, &spans);
    spoor_plugin_strings::build(&spans)
        .unwrap_or_else(|e| panic!("the patched spans' view cannot be built: {e}"));
}

#[cfg(test)]
mod replay;
