//! Trace files in, traces out: detects the JSON format of a file (Jaeger, OTLP, Zipkin v2 or
//! v1), decodes it with the receiver crates' own decoders, and groups the spans into traces.

use std::fmt;

use hashbrown::HashMap;
use serde::de::{self, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde::Deserialize;
use spoor_core::{Decoded, Span, Trace, TraceId};

/// The trace JSON formats the browser module reads.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    /// Jaeger's query API / UI JSON (`{"data": [trace]}`, a trace object, or an array of them).
    Jaeger,
    /// OTLP/JSON `TracesData` / `ExportTraceServiceRequest` (`{"resourceSpans": […]}`), or
    /// Jaeger's api_v3 answer `{"result": {"resourceSpans": […]}}`.
    Otlp,
    /// Zipkin v2 JSON: an array of spans.
    Zipkin,
    /// Zipkin v1 JSON: an array of spans with `annotations` / `binaryAnnotations`.
    ZipkinV1,
}

impl Format {
    /// The name JavaScript sees: `jaeger`, `otlp`, `zipkin` or `zipkin-v1`.
    pub fn name(self) -> &'static str {
        match self {
            Format::Jaeger => "jaeger",
            Format::Otlp => "otlp",
            Format::Zipkin => "zipkin",
            Format::ZipkinV1 => "zipkin-v1",
        }
    }

    /// Parses a format name; `auto` and `""` give `None` (detect).
    pub fn from_name(name: &str) -> Result<Option<Format>, ParseError> {
        Ok(Some(match name.to_ascii_lowercase().as_str() {
            "" | "auto" => return Ok(None),
            "jaeger" => Format::Jaeger,
            "otlp" => Format::Otlp,
            "zipkin" | "zipkin-v2" => Format::Zipkin,
            "zipkin-v1" => Format::ZipkinV1,
            _ => return Err(ParseError::UnknownFormat(name.to_string())),
        }))
    }
}

/// Why a file could not be read at all. Rejected single spans are not errors: they are
/// counted and described in [`Parsed::problems`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParseError {
    /// Not JSON.
    #[error("malformed json at line {line} column {column}: {message}")]
    Json {
        /// 1-based line.
        line: usize,
        /// 1-based column.
        column: usize,
        /// What the JSON parser said.
        message: String,
    },
    /// JSON, but none of the formats.
    #[error("unrecognised trace json: {0}; expected OTLP {{\"resourceSpans\": […]}}, Jaeger {{\"data\": […]}} or a trace {{\"traceID\", \"spans\"}}, or Zipkin [{{\"traceId\", …}}]")]
    Unrecognised(String),
    /// The detected (or requested) format's decoder refused the file; the message names the
    /// JSON path where it could.
    #[error("{format} json: {message}")]
    Decode {
        /// The format's name.
        format: &'static str,
        /// What was wrong, and where.
        message: String,
    },
    /// An unknown format name was asked for.
    #[error("unknown format {0:?}, expected auto, jaeger, otlp, zipkin or zipkin-v1")]
    UnknownFormat(String),
}

fn json_error(e: &serde_json::Error) -> ParseError {
    let text = e.to_string();
    ParseError::Json {
        line: e.line(),
        column: e.column(),
        message: text.split(" at line ").next().unwrap_or("").to_string(),
    }
}

/// A decoded file: its traces in order of first appearance, and the spans it had to reject.
#[derive(Debug, Default)]
pub struct Parsed {
    /// The format that was read.
    pub format: Option<Format>,
    /// The traces, each with its spans in file order.
    pub traces: Vec<Trace>,
    /// Spans that could not be decoded.
    pub rejected: usize,
    /// One line per rejected span (or dropped link), naming where and why.
    pub problems: Vec<String>,
}

/// The top-level shape of a JSON document: its keys if it is an object, the keys of its first
/// element if it is an array. Values are skipped without being built.
#[derive(Debug, PartialEq)]
enum Shape {
    Object(Vec<String>),
    Array(Option<Vec<String>>),
    Other(&'static str),
}

struct ShapeVisitor;

impl<'de> Visitor<'de> for ShapeVisitor {
    type Value = Shape;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a json document")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Shape, A::Error> {
        let mut keys = Vec::new();
        while let Some(k) = map.next_key::<String>()? {
            map.next_value::<IgnoredAny>()?;
            keys.push(k);
        }
        Ok(Shape::Object(keys))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Shape, A::Error> {
        let first = seq.next_element::<Shape>()?;
        while seq.next_element::<IgnoredAny>()?.is_some() {}
        Ok(Shape::Array(first.map(|s| match s {
            Shape::Object(keys) => keys,
            _ => Vec::new(),
        })))
    }

    fn visit_bool<E: de::Error>(self, _: bool) -> Result<Shape, E> {
        Ok(Shape::Other("a boolean"))
    }
    fn visit_i64<E: de::Error>(self, _: i64) -> Result<Shape, E> {
        Ok(Shape::Other("a number"))
    }
    fn visit_u64<E: de::Error>(self, _: u64) -> Result<Shape, E> {
        Ok(Shape::Other("a number"))
    }
    fn visit_f64<E: de::Error>(self, _: f64) -> Result<Shape, E> {
        Ok(Shape::Other("a number"))
    }
    fn visit_str<E: de::Error>(self, _: &str) -> Result<Shape, E> {
        Ok(Shape::Other("a string"))
    }
    fn visit_unit<E: de::Error>(self) -> Result<Shape, E> {
        Ok(Shape::Other("null"))
    }
}

impl<'de> Deserialize<'de> for Shape {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Shape, D::Error> {
        d.deserialize_any(ShapeVisitor)
    }
}

/// Detects the format of `body` from its top-level keys (or its first element's).
pub fn detect(body: &[u8]) -> Result<Format, ParseError> {
    let shape: Shape = serde_json::from_slice(body).map_err(|e| json_error(&e))?;
    let has = |keys: &[String], k: &str| keys.iter().any(|x| x == k);
    match &shape {
        Shape::Object(keys)
            if has(keys, "resourceSpans") || has(keys, "resource_spans") || has(keys, "result") =>
        {
            Ok(Format::Otlp)
        }
        Shape::Object(keys) if has(keys, "data") || has(keys, "spans") => Ok(Format::Jaeger),
        Shape::Object(keys) => Err(ParseError::Unrecognised(format!(
            "an object with keys [{}]",
            keys.join(", ")
        ))),
        // An empty array is an empty file of either kind.
        Shape::Array(None) => Ok(Format::Jaeger),
        Shape::Array(Some(keys)) if has(keys, "spans") => Ok(Format::Jaeger),
        Shape::Array(Some(keys)) if has(keys, "traceId") => {
            let v2 = ["localEndpoint", "remoteEndpoint", "tags", "kind", "shared"];
            if has(keys, "binaryAnnotations")
                || (!v2.iter().any(|k| has(keys, k)) && keys.iter().any(|k| k == "annotations"))
            {
                Ok(Format::ZipkinV1)
            } else {
                Ok(Format::Zipkin)
            }
        }
        Shape::Array(Some(keys)) => Err(ParseError::Unrecognised(format!(
            "an array whose first element has keys [{}]",
            keys.join(", ")
        ))),
        Shape::Other(what) => Err(ParseError::Unrecognised(what.to_string())),
    }
}

/// Jaeger's api_v3 answer wraps the OTLP message.
#[derive(Deserialize)]
struct V3Answer {
    result: spoor_otlp::proto::ExportTraceServiceRequest,
}

/// Decodes OTLP/JSON with the path of the first bad value in the error.
fn decode_otlp(body: &[u8]) -> Result<Decoded, ParseError> {
    let wrapped = matches!(
        serde_json::from_slice::<Shape>(body),
        Ok(Shape::Object(keys)) if keys.iter().any(|k| k == "result")
    );
    let mut de = serde_json::Deserializer::from_slice(body);
    let req = if wrapped {
        serde_path_to_error::deserialize::<_, V3Answer>(&mut de).map(|a| a.result)
    } else {
        serde_path_to_error::deserialize(&mut de)
    };
    let req = req.map_err(|e| {
        let inner = e.inner();
        ParseError::Decode {
            format: Format::Otlp.name(),
            message: format!(
                "{}: {} (line {} column {})",
                e.path(),
                inner.to_string().split(" at line ").next().unwrap_or(""),
                inner.line(),
                inner.column()
            ),
        }
    })?;
    de.end().map_err(|e| json_error(&e))?;
    Ok(spoor_otlp::request_to_spans(req))
}

/// Decodes `body` as `format`, or as the detected format when `format` is `None`.
pub fn parse(body: &[u8], format: Option<Format>) -> Result<Parsed, ParseError> {
    let format = match format {
        Some(f) => f,
        None => detect(body)?,
    };
    let decode_error = |message: String| ParseError::Decode {
        format: format.name(),
        message,
    };
    let decoded = match format {
        Format::Jaeger => spoor_jaeger::json_in::decode_json(body).map_err(|e| match e {
            spoor_jaeger::json_in::JsonInError::Json {
                line,
                column,
                message,
            } => ParseError::Json {
                line,
                column,
                message,
            },
            other => decode_error(other.to_string()),
        })?,
        Format::Otlp => decode_otlp(body)?,
        Format::Zipkin => {
            spoor_zipkin::decode_v2_json(body).map_err(|e| decode_error(e.to_string()))?
        }
        Format::ZipkinV1 => {
            spoor_zipkin::decode_v1_json(body).map_err(|e| decode_error(e.to_string()))?
        }
    };
    Ok(Parsed {
        format: Some(format),
        traces: group(decoded.spans),
        rejected: decoded.rejected,
        problems: decoded.problems,
    })
}

/// Groups spans into traces by trace id, traces in order of first appearance, spans in input
/// order.
pub fn group(spans: Vec<Span>) -> Vec<Trace> {
    let mut index: HashMap<TraceId, usize> = HashMap::new();
    let mut traces: Vec<Trace> = Vec::new();
    for span in spans {
        let i = *index.entry(span.trace_id).or_insert_with(|| {
            traces.push(Trace {
                trace_id: span.trace_id,
                spans: Vec::new(),
            });
            traces.len() - 1
        });
        traces[i].spans.push(span);
    }
    traces
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn detects_by_top_level_keys() {
        // (body, format or error prefix)
        let cases: &[(&str, Result<Format, &str>)] = &[
            (r#"{"resourceSpans":[]}"#, Ok(Format::Otlp)),
            (r#"{"resource_spans":[]}"#, Ok(Format::Otlp)),
            (r#"{"result":{"resourceSpans":[]}}"#, Ok(Format::Otlp)),
            (r#"{"data":[],"total":0}"#, Ok(Format::Jaeger)),
            (
                r#"{"traceID":"1","spans":[],"processes":{}}"#,
                Ok(Format::Jaeger),
            ),
            (r#"[{"traceID":"1","spans":[]}]"#, Ok(Format::Jaeger)),
            (r#"[]"#, Ok(Format::Jaeger)),
            (
                r#"[{"traceId":"1","id":"2","localEndpoint":{}}]"#,
                Ok(Format::Zipkin),
            ),
            (
                r#"[{"traceId":"1","id":"2","name":"x"}]"#,
                Ok(Format::Zipkin),
            ),
            (
                r#"[{"traceId":"1","id":"2","binaryAnnotations":[]}]"#,
                Ok(Format::ZipkinV1),
            ),
            (
                r#"[{"traceId":"1","id":"2","annotations":[{"endpoint":{}}]}]"#,
                Ok(Format::ZipkinV1),
            ),
            (
                r#"{"foo":1,"bar":[1,2]}"#,
                Err("unrecognised trace json: an object with keys [foo, bar];"),
            ),
            (
                r#"[{"x":1}]"#,
                Err("unrecognised trace json: an array whose first element has keys [x];"),
            ),
            ("42", Err("unrecognised trace json: a number;")),
            (
                "{\"data\": [",
                Err("malformed json at line 1 column 10: EOF"),
            ),
        ];
        for (body, want) in cases {
            let got = detect(body.as_bytes()).map_err(|e| e.to_string());
            match (want, &got) {
                (Ok(f), Ok(g)) => assert_eq!(f, g, "{body}"),
                (Err(prefix), Err(e)) => assert!(e.starts_with(prefix), "{body}: {e}"),
                _ => panic!("{body}: got {got:?}, want {want:?}"),
            }
        }
    }

    #[test]
    fn format_names() {
        for f in [
            Format::Jaeger,
            Format::Otlp,
            Format::Zipkin,
            Format::ZipkinV1,
        ] {
            assert_eq!(Format::from_name(f.name()), Ok(Some(f)));
        }
        assert_eq!(Format::from_name("auto"), Ok(None));
        assert_eq!(
            Format::from_name("thrift").unwrap_err().to_string(),
            "unknown format \"thrift\", expected auto, jaeger, otlp, zipkin or zipkin-v1"
        );
    }

    #[test]
    fn otlp_errors_name_the_path() {
        let body = br#"{"resourceSpans":[{"scopeSpans":[{"spans":[{"traceId":"5b8efff798038103d269b633813fc60c","spanId":"eee19b7ec3c1b174","name":"x","startTimeUnixNano":{"a":1}}]}]}]}"#;
        let e = parse(body, None).unwrap_err().to_string();
        assert!(
            e.starts_with("otlp json: resourceSpans[0].scopeSpans[0].spans[0].startTimeUnixNano: "),
            "{e}"
        );
    }

    #[test]
    fn groups_spans_by_trace_in_order_of_appearance() {
        let span = |t: u128, s: u64| Span {
            trace_id: TraceId(t),
            span_id: spoor_core::SpanId(s),
            ..Default::default()
        };
        let traces = group(vec![span(2, 1), span(1, 2), span(2, 3)]);
        let shape: Vec<(u128, Vec<u64>)> = traces
            .iter()
            .map(|t| (t.trace_id.0, t.spans.iter().map(|s| s.span_id.0).collect()))
            .collect();
        assert_eq!(shape, [(2, vec![1, 3]), (1, vec![2])]);
    }
}
