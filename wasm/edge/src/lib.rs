//! Spoor's edge collector: the request logic of the Cloudflare Worker as plain Rust functions.
//!
//! Everything a request needs decided — routing, CORS, token authentication, size limits,
//! decoding (OTLP/HTTP protobuf and JSON, Zipkin v2 JSON), validation ([`spoor_core::validate`]),
//! head sampling (the consistent sampler of [`spoor_core::sampling::consistent`], so the edge
//! keeps exactly the traces the daemon would keep at the same probability), propagation headers
//! ([`spoor_core::propagation`]) and the OTLP protobuf batches to forward — happens in [`handle`],
//! which does no I/O and is tested natively. The Workers glue (`glue`, wasm32 only) only moves
//! bytes: it forwards the batches with retries and hands the ones the collector did not take to
//! the buffer Durable Object, whose bookkeeping is [`BufferPolicy`] and [`Stats`].
//!
//! Propagation headers (`traceparent`, `b3`, `X-B3-*`, `uber-trace-id`) on an export request
//! describe the sender's own trace. The edge honours their decision for that trace only: spans of
//! that trace id are kept when the header says sampled or debug and dropped (counted as sampled
//! out) when it says not sampled; every other trace is decided by the consistent sampler. The
//! context found is reported back in `spoor-context` (as a `traceparent`) and continued on the
//! request to the collector; an invalid header never fails the export, it is reported in
//! `spoor-context-error`.

use spoor_core::propagation::{self, SpanContext};
use spoor_core::sampling::consistent::{self, Threshold};
use spoor_core::validate::{self, Limits};
use spoor_core::{Decoded, Span, TraceId};

#[cfg(all(target_arch = "wasm32", feature = "worker"))]
mod glue;

#[cfg(all(target_arch = "wasm32", feature = "bench"))]
mod bench;

/// Route of OTLP/HTTP traces.
pub const OTLP_PATH: &str = "/v1/traces";
/// Route of Zipkin v2 spans.
pub const ZIPKIN_PATH: &str = "/api/v2/spans";
/// Route of the counters.
pub const STATS_PATH: &str = "/stats";

/// Headers a browser may send on a cross-origin export (answer to a preflight).
pub const CORS_ALLOW_HEADERS: &str = "authorization, content-type, traceparent, tracestate, b3, \
x-b3-traceid, x-b3-spanid, x-b3-parentspanid, x-b3-sampled, x-b3-flags, uber-trace-id";

/// Why the worker's configuration was refused (the worker then answers 500 naming it).
#[derive(Clone, Debug, PartialEq)]
pub enum ConfigError {
    /// A numeric variable did not parse.
    Number {
        /// The variable.
        var: &'static str,
        /// Its value.
        value: String,
    },
    /// `SAMPLING_PROBABILITY` is not a probability.
    Probability(String),
    /// A required variable or secret is missing or empty.
    Missing(&'static str),
}

impl core::fmt::Display for ConfigError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            ConfigError::Number { var, value } => {
                write!(f, "{var} {value:?} is not a non-negative integer")
            }
            ConfigError::Probability(v) => {
                write!(f, "SAMPLING_PROBABILITY {v:?} is not a number in [0, 1]")
            }
            ConfigError::Missing(var) => write!(f, "{var} is not set"),
        }
    }
}

impl std::error::Error for ConfigError {}

/// The worker's settings, read once per isolate from its vars and secrets.
#[derive(Clone, Debug)]
pub struct Config {
    /// `ALLOWED_ORIGINS`: comma-separated origins that may send from a browser; `*` allows any.
    /// Requests without an `Origin` header (servers, edge code) are not subject to CORS.
    pub allowed_origins: Vec<String>,
    /// `SPOOR_TOKENS` (a secret): comma-separated bearer tokens; at least one is required.
    pub tokens: Vec<Vec<u8>>,
    /// `MAX_BODY_BYTES` (default 1 MiB): larger bodies get 413.
    pub max_body_bytes: usize,
    /// `SAMPLING_PROBABILITY` (default 1): the consistent sampler's probability.
    pub probability: f64,
    /// The rejection threshold for [`Config::probability`].
    pub threshold: Threshold,
    /// Size limits of validation (core defaults).
    pub limits: Limits,
    /// `MAX_FORWARD_BYTES` (default 1 MiB): forwarded OTLP bodies are split below this.
    pub max_forward_bytes: usize,
    /// `BUFFER_MAX_BYTES` (default 50 MiB): bound of the Durable Object buffer.
    pub buffer_max_bytes: u64,
    /// `FORWARD_ATTEMPTS` (default 3): tries per batch before it goes to the buffer.
    pub forward_attempts: u32,
    /// `RETRY_INTERVAL_MS` (default 10000): the buffer's alarm period while it holds batches.
    pub retry_interval_ms: u64,
}

fn number(var: &'static str, raw: Option<String>, default: u64) -> Result<u64, ConfigError> {
    match raw.as_deref().map(str::trim) {
        None | Some("") => Ok(default),
        Some(v) => v.parse().map_err(|_| ConfigError::Number {
            var,
            value: v.to_string(),
        }),
    }
}

fn list(raw: Option<String>) -> Vec<String> {
    raw.unwrap_or_default()
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_string)
        .collect()
}

impl Config {
    /// Reads the settings from `var` (a var or secret by name). `COLLECTOR_URL` is read by the
    /// glue, not here.
    pub fn from_vars(var: &dyn Fn(&str) -> Option<String>) -> Result<Config, ConfigError> {
        let tokens: Vec<Vec<u8>> = list(var("SPOOR_TOKENS"))
            .into_iter()
            .map(String::into_bytes)
            .collect();
        if tokens.is_empty() {
            return Err(ConfigError::Missing("SPOOR_TOKENS"));
        }
        let probability = match var("SAMPLING_PROBABILITY").as_deref().map(str::trim) {
            None | Some("") => 1.0,
            Some(v) => v
                .parse::<f64>()
                .map_err(|_| ConfigError::Probability(v.to_string()))?,
        };
        let threshold = Threshold::from_probability(probability)
            .map_err(|_| ConfigError::Probability(probability.to_string()))?;
        let usize_of = |n: u64| usize::try_from(n).unwrap_or(usize::MAX);
        Ok(Config {
            allowed_origins: list(var("ALLOWED_ORIGINS")),
            tokens,
            max_body_bytes: usize_of(number("MAX_BODY_BYTES", var("MAX_BODY_BYTES"), 1 << 20)?),
            probability,
            threshold,
            limits: Limits::default(),
            max_forward_bytes: usize_of(number(
                "MAX_FORWARD_BYTES",
                var("MAX_FORWARD_BYTES"),
                1 << 20,
            )?)
            .max(1024),
            buffer_max_bytes: number("BUFFER_MAX_BYTES", var("BUFFER_MAX_BYTES"), 50 << 20)?,
            forward_attempts: number("FORWARD_ATTEMPTS", var("FORWARD_ATTEMPTS"), 3)?.clamp(1, 10)
                as u32,
            retry_interval_ms: number("RETRY_INTERVAL_MS", var("RETRY_INTERVAL_MS"), 10_000)?
                .max(100),
        })
    }

    fn origin_allowed(&self, origin: &str) -> bool {
        self.allowed_origins
            .iter()
            .any(|o| o == "*" || o.eq_ignore_ascii_case(origin))
    }
}

/// Compares two byte strings in time that depends only on their lengths, not on where they
/// differ.
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    let n = a.len().max(b.len());
    let mut diff = u8::from(a.len() != b.len());
    for i in 0..n {
        diff |= a.get(i).copied().unwrap_or(0) ^ b.get(i).copied().unwrap_or(0);
    }
    diff == 0
}

/// Whether `presented` is one of `tokens`; every token is compared, in constant time each.
pub fn token_accepted(tokens: &[Vec<u8>], presented: &[u8]) -> bool {
    tokens
        .iter()
        .fold(false, |ok, t| constant_time_eq(t, presented) | ok)
}

/// An incoming request as [`handle`] sees it.
pub struct Request<'a> {
    /// HTTP method, upper case.
    pub method: &'a str,
    /// URL path.
    pub path: &'a str,
    /// Header lookup by lowercase name.
    pub header: &'a dyn Fn(&str) -> Option<String>,
    /// The body (empty for GET / OPTIONS).
    pub body: &'a [u8],
}

/// A response to send as is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Reply {
    /// Status code.
    pub status: u16,
    /// Headers (lowercase names).
    pub headers: Vec<(&'static str, String)>,
    /// Body.
    pub body: Vec<u8>,
}

impl Reply {
    fn text(status: u16, message: impl Into<String>) -> Reply {
        Reply {
            status,
            headers: vec![("content-type", "text/plain; charset=utf-8".to_string())],
            body: message.into().into_bytes(),
        }
    }

    /// The body as text (for messages and tests).
    pub fn body_text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// The value of header `name`, if set.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| *k == name)
            .map(|(_, v)| v.as_str())
    }
}

/// What the spans of one accepted request came to.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Counts {
    /// Spans that passed decoding and validation.
    pub accepted: u64,
    /// Spans the decoder or validation rejected.
    pub rejected: u64,
    /// Accepted spans the head sampler dropped.
    pub sampled_out: u64,
}

/// One OTLP protobuf body to forward.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Batch {
    /// `ExportTraceServiceRequest` protobuf.
    pub body: Vec<u8>,
    /// Spans in it.
    pub spans: u64,
}

/// What the glue must do with a request.
#[derive(Debug)]
pub enum Outcome {
    /// Send this reply; nothing to forward.
    Reply(Reply),
    /// Forward `batches` to the collector (then the buffer), record `counts`, and send `reply`
    /// once the batches are delivered or buffered.
    Forward {
        /// The batches, each under [`Config::max_forward_bytes`] unless one span is larger.
        batches: Vec<Batch>,
        /// What to record.
        counts: Counts,
        /// Success reply to the sender.
        reply: Reply,
        /// Headers for the collector request (a `traceparent` continuing the sender's trace).
        forward_headers: Vec<(&'static str, String)>,
    },
    /// Answer with the counters (authenticated); `headers` are the CORS headers to add.
    Stats {
        /// Headers to add to the stats reply.
        headers: Vec<(&'static str, String)>,
    },
}

/// The media type of a `content-type` value, lowercase, without parameters.
fn media_type(v: &str) -> String {
    v.split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase()
}

#[derive(Clone, Copy, PartialEq)]
enum Wire {
    OtlpProto,
    OtlpJson,
    ZipkinJson,
}

/// Decides a request. See the crate documentation for the order of checks: route, CORS
/// (preflight and origin), authentication, size, media type, decoding, validation, sampling.
pub fn handle(cfg: &Config, req: &Request<'_>) -> Outcome {
    let mut cors: Vec<(&'static str, String)> = Vec::new();
    if let Some(origin) = (req.header)("origin") {
        if !cfg.origin_allowed(&origin) {
            return Outcome::Reply(Reply::text(
                403,
                format!("origin {origin:?} is not allowed (see ALLOWED_ORIGINS)"),
            ));
        }
        cors.push(("access-control-allow-origin", origin));
        cors.push(("vary", "Origin".to_string()));
        cors.push((
            "access-control-expose-headers",
            "spoor-context, spoor-context-error".to_string(),
        ));
    }
    let with_cors = |mut r: Reply, cors: &[(&'static str, String)]| {
        r.headers.extend(cors.iter().cloned());
        Outcome::Reply(r)
    };
    let known = matches!(req.path, OTLP_PATH | ZIPKIN_PATH | STATS_PATH);
    if !known {
        return with_cors(Reply::text(404, format!("no route {:?}", req.path)), &cors);
    }
    if req.method == "OPTIONS" {
        if cors.is_empty() {
            return Outcome::Reply(Reply::text(
                400,
                "preflight request without an origin header",
            ));
        }
        let mut r = Reply {
            status: 204,
            headers: vec![
                (
                    "access-control-allow-methods",
                    "POST, GET, OPTIONS".to_string(),
                ),
                (
                    "access-control-allow-headers",
                    CORS_ALLOW_HEADERS.to_string(),
                ),
                ("access-control-max-age", "86400".to_string()),
            ],
            body: Vec::new(),
        };
        r.headers.extend(cors);
        return Outcome::Reply(r);
    }
    let want = if req.path == STATS_PATH {
        "GET"
    } else {
        "POST"
    };
    if req.method != want {
        let mut r = Reply::text(
            405,
            format!(
                "method {} is not allowed on {} (use {want})",
                req.method, req.path
            ),
        );
        r.headers.push(("allow", want.to_string()));
        return with_cors(r, &cors);
    }
    // Authentication.
    let auth = (req.header)("authorization");
    let token = match auth.as_deref().map(str::trim) {
        None | Some("") => {
            let mut r = Reply::text(401, "missing authorization header (Bearer token)");
            r.headers.push(("www-authenticate", "Bearer".to_string()));
            return with_cors(r, &cors);
        }
        Some(a) => match a.split_once(' ') {
            Some((scheme, t)) if scheme.eq_ignore_ascii_case("bearer") => t.trim().to_string(),
            _ => {
                let scheme = a.split(' ').next().unwrap_or("");
                let mut r = Reply::text(
                    401,
                    format!("authorization scheme {scheme:?} is not Bearer"),
                );
                r.headers.push(("www-authenticate", "Bearer".to_string()));
                return with_cors(r, &cors);
            }
        },
    };
    if !token_accepted(&cfg.tokens, token.as_bytes()) {
        return with_cors(Reply::text(403, "bearer token is not accepted"), &cors);
    }
    if req.path == STATS_PATH {
        return Outcome::Stats { headers: cors };
    }
    // Size.
    let declared = (req.header)("content-length").and_then(|v| v.trim().parse::<u64>().ok());
    let size = declared.unwrap_or(0).max(req.body.len() as u64);
    if size > cfg.max_body_bytes as u64 {
        return with_cors(
            Reply::text(
                413,
                format!(
                    "body of {size} bytes is over the limit of {} bytes",
                    cfg.max_body_bytes
                ),
            ),
            &cors,
        );
    }
    if let Some(enc) = (req.header)("content-encoding") {
        let enc = enc.trim().to_ascii_lowercase();
        if !enc.is_empty() && enc != "identity" {
            return with_cors(
                Reply::text(415, format!("content encoding {enc:?} is not supported")),
                &cors,
            );
        }
    }
    let ctype = media_type(&(req.header)("content-type").unwrap_or_default());
    let wire = match (req.path, ctype.as_str()) {
        (OTLP_PATH, "application/x-protobuf") => Wire::OtlpProto,
        (OTLP_PATH, "application/json") => Wire::OtlpJson,
        (ZIPKIN_PATH, "application/json" | "") => Wire::ZipkinJson,
        (path, other) => {
            let expected = if path == OTLP_PATH {
                "application/x-protobuf or application/json"
            } else {
                "application/json"
            };
            return with_cors(
                Reply::text(
                    415,
                    format!("content type {other:?} is not {expected} on {path}"),
                ),
                &cors,
            );
        }
    };
    let decoded = match wire {
        Wire::OtlpProto => spoor_otlp::decode_proto(req.body).map_err(|e| e.to_string()),
        Wire::OtlpJson => spoor_otlp::decode_json(req.body).map_err(|e| e.to_string()),
        Wire::ZipkinJson => spoor_zipkin::decode_v2_json(req.body).map_err(|e| e.to_string()),
    };
    let decoded: Decoded = match decoded {
        Ok(d) => d,
        Err(e) => return with_cors(Reply::text(400, format!("bad body: {e}")), &cors),
    };

    // Propagation headers of the request: the sender's own trace.
    let mut forward_headers = Vec::new();
    let mut context_headers = Vec::new();
    let ctx = match propagation::extract(req.header) {
        Ok(Some((_, c))) => {
            let tp = propagation::context_to_traceparent(&c);
            context_headers.push(("spoor-context", tp.clone()));
            forward_headers.push((propagation::TRACEPARENT, tp));
            Some(c)
        }
        Ok(None) => None,
        Err(e) => {
            context_headers.push(("spoor-context-error", e.to_string()));
            None
        }
    };

    let processed = process(cfg, decoded, ctx.as_ref());
    let reply = success_reply(wire, &processed);
    let mut reply = reply;
    reply.headers.extend(context_headers);
    reply.headers.extend(cors);
    Outcome::Forward {
        batches: processed.batches,
        counts: processed.counts,
        reply,
        forward_headers,
    }
}

/// The result of [`process`].
#[derive(Debug)]
pub struct Processed {
    /// What to record.
    pub counts: Counts,
    /// Batches to forward.
    pub batches: Vec<Batch>,
    /// One line per rejected span (decoder and validation), for the partial-success message.
    pub problems: Vec<String>,
}

/// Validates, samples and encodes decoded spans. `ctx` is the sender's propagated context,
/// whose decision holds for its own trace id.
pub fn process(cfg: &Config, decoded: Decoded, ctx: Option<&SpanContext>) -> Processed {
    let Decoded {
        spans,
        rejected: decode_rejected,
        mut problems,
    } = decoded;
    let validated = validate::validate_batch(spans, &cfg.limits);
    problems.extend(
        validated
            .diagnostics
            .iter()
            .filter(|d| d.rejected)
            .map(|d| d.to_string()),
    );
    let mut counts = Counts {
        accepted: validated.spans.len() as u64,
        rejected: (decode_rejected + validated.rejected) as u64,
        sampled_out: 0,
    };
    let mut kept: Vec<Span> = validated.spans;
    kept.retain_mut(|span| {
        let keep = decide(cfg, span.trace_id, &span.trace_state, ctx);
        if keep
            && cfg.threshold != Threshold::ALWAYS
            && ctx.is_none_or(|c| c.trace_id != span.trace_id)
        {
            record_threshold(span, cfg.threshold);
        }
        keep
    });
    counts.sampled_out = counts.accepted - kept.len() as u64;
    Processed {
        counts,
        batches: encode_batches(&kept, cfg.max_forward_bytes),
        problems,
    }
}

/// The head-sampling decision for one span's trace.
pub fn decide(
    cfg: &Config,
    trace_id: TraceId,
    trace_state: &str,
    ctx: Option<&SpanContext>,
) -> bool {
    match ctx {
        Some(c) if c.trace_id == trace_id && c.debug => true,
        Some(c) if c.trace_id == trace_id && c.sampled.is_some() => c.sampled == Some(true),
        _ => consistent::sample(cfg.threshold, trace_id, trace_state),
    }
}

/// Writes the effective threshold (`ot=th:`) of a kept span: the larger of the one it carried
/// and the edge's, as the OpenTelemetry sampling specification asks of a downstream sampler.
fn record_threshold(span: &mut Span, ours: Threshold) {
    let t = match consistent::trace_state_threshold(&span.trace_state) {
        Some(theirs) if theirs >= ours => return,
        _ => ours,
    };
    // The only errors leave the trace state as it was (over-long `ot` value).
    if let Ok(ts) = consistent::set_threshold(&span.trace_state, Some(t)) {
        span.trace_state = ts;
    }
}

/// Encodes spans as OTLP protobuf bodies of at most `max_bytes` each (a single span larger than
/// that goes alone).
pub fn encode_batches(spans: &[Span], max_bytes: usize) -> Vec<Batch> {
    if spans.is_empty() {
        return Vec::new();
    }
    let body = spoor_otlp::encode_proto(spans);
    if body.len() <= max_bytes || spans.len() == 1 {
        return vec![Batch {
            body,
            spans: spans.len() as u64,
        }];
    }
    let (a, b) = spans.split_at(spans.len() / 2);
    let mut out = encode_batches(a, max_bytes);
    out.extend(encode_batches(b, max_bytes));
    out
}

fn success_reply(wire: Wire, p: &Processed) -> Reply {
    let rejected = p.counts.rejected;
    let message = if p.problems.is_empty() {
        String::new()
    } else {
        let mut m = format!("{rejected} spans rejected: ");
        m.push_str(
            &p.problems
                .iter()
                .take(10)
                .cloned()
                .collect::<Vec<_>>()
                .join("; "),
        );
        m
    };
    match wire {
        Wire::OtlpProto => {
            use prost::Message;
            let resp = spoor_otlp::proto::ExportTraceServiceResponse {
                partial_success: (rejected > 0).then_some(
                    spoor_otlp::proto::ExportTracePartialSuccess {
                        rejected_spans: rejected as i64,
                        error_message: message,
                    },
                ),
            };
            Reply {
                status: 200,
                headers: vec![("content-type", "application/x-protobuf".to_string())],
                body: resp.encode_to_vec(),
            }
        }
        Wire::OtlpJson => {
            let body = if rejected > 0 {
                serde_json::json!({"partialSuccess": {"rejectedSpans": rejected.to_string(), "errorMessage": message}})
            } else {
                serde_json::json!({})
            };
            Reply {
                status: 200,
                headers: vec![("content-type", "application/json".to_string())],
                body: body.to_string().into_bytes(),
            }
        }
        Wire::ZipkinJson => {
            let mut r = Reply::text(202, message);
            if r.body.is_empty() {
                r.headers.clear();
            }
            r
        }
    }
}

/// What the collector's answer to a forwarded batch means.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Delivery {
    /// 2xx: delivered.
    Delivered,
    /// Network error, 408, 429 or 5xx: try again later.
    Retry,
    /// Any other status: the collector will never take this batch; it is dropped and counted.
    Refused,
}

/// Classifies a collector status (`None` for a network error).
pub fn classify(status: Option<u16>) -> Delivery {
    match status {
        Some(200..=299) => Delivery::Delivered,
        None | Some(408) | Some(429) | Some(500..=599) => Delivery::Retry,
        Some(_) => Delivery::Refused,
    }
}

/// Delay before forward attempt `attempt` (0-based; the first try is immediate): 50 ms, then
/// doubling, at most 1 s.
pub fn retry_delay_ms(attempt: u32) -> u64 {
    if attempt == 0 {
        0
    } else {
        (50u64 << (attempt - 1).min(5)).min(1000)
    }
}

/// The bound of the Durable Object buffer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BufferPolicy {
    /// Most bytes of batches held.
    pub max_bytes: u64,
}

impl BufferPolicy {
    /// Whether a batch of `batch_bytes` fits beside `held_bytes` already buffered.
    pub fn admits(&self, held_bytes: u64, batch_bytes: u64) -> bool {
        held_bytes.saturating_add(batch_bytes) <= self.max_bytes
    }
}

/// The counters `GET /stats` reports. Totals since the buffer object was created, plus what the
/// buffer holds now.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Stats {
    /// Spans accepted (decoded and valid).
    pub accepted: u64,
    /// Spans rejected by decoding or validation.
    pub rejected: u64,
    /// Accepted spans dropped by head sampling.
    pub sampled_out: u64,
    /// Spans delivered to the collector (directly or from the buffer).
    pub forwarded: u64,
    /// Spans ever put into the buffer.
    pub buffered: u64,
    /// Spans dropped: buffer full, or refused by the collector.
    pub dropped: u64,
    /// Spans in the buffer now.
    pub buffer_spans: u64,
    /// Batches in the buffer now.
    pub buffer_batches: u64,
    /// Bytes in the buffer now.
    pub buffer_bytes: u64,
    /// The buffer's bound.
    pub buffer_max_bytes: u64,
}

/// The names under which [`Stats`] totals are stored and reported.
pub const COUNTERS: [&str; 6] = [
    "accepted",
    "rejected",
    "sampled_out",
    "forwarded",
    "buffered",
    "dropped",
];

impl Stats {
    /// Adds `n` to the total named `name` (one of [`COUNTERS`]); unknown names are ignored.
    pub fn add(&mut self, name: &str, n: u64) {
        let slot = match name {
            "accepted" => &mut self.accepted,
            "rejected" => &mut self.rejected,
            "sampled_out" => &mut self.sampled_out,
            "forwarded" => &mut self.forwarded,
            "buffered" => &mut self.buffered,
            "dropped" => &mut self.dropped,
            _ => return,
        };
        *slot = slot.saturating_add(n);
    }

    /// The JSON of `GET /stats`.
    pub fn to_json(&self) -> String {
        serde_json::json!({
            "accepted": self.accepted,
            "rejected": self.rejected,
            "sampled_out": self.sampled_out,
            "forwarded": self.forwarded,
            "buffered": self.buffered,
            "dropped": self.dropped,
            "buffer": {
                "spans": self.buffer_spans,
                "batches": self.buffer_batches,
                "bytes": self.buffer_bytes,
                "max_bytes": self.buffer_max_bytes,
            },
        })
        .to_string()
    }
}

#[cfg(test)]
mod tests;
