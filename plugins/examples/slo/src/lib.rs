//! Example tail-sampling policy `slo`: keeps a trace when one of its spans broke its latency
//! objective, the objective depending on the span's service and operation, or when one of its
//! spans failed. The built-in `latency` policy has one threshold for a whole trace; real
//! services have one objective per endpoint (`GET /cart` in 250 ms, a batch export in 30 s).
//!
//! ```json
//! {
//!   "default_ms": 2000,
//!   "services": {
//!     "checkout": {"default_ms": 500, "operations": {"GET /cart": 250}},
//!     "batch": {"default_ms": 0}
//!   },
//!   "errors": true
//! }
//! ```
//!
//! A span's objective is its operation's in its service, else its service's `default_ms`, else
//! the top-level `default_ms`; `0` (or absent everywhere) means no objective. A span breaks it
//! when its duration is strictly longer. With `errors` (default `true`), a span with status
//! `ERROR`, or an HTTP status code of 500 or more (`http.response.status_code`, or the older
//! `http.status_code`, integer or text), keeps the trace as well.

use std::collections::{BTreeMap, HashMap};

use spoor_plugin_sdk::{find_attr, AnyValue, Error, Policy, Span, StatusCode};

const NANOS_PER_MS: u64 = 1_000_000;

/// The `slo` policy: objectives in nanoseconds, validated.
#[derive(Debug)]
pub struct Slo {
    default_nanos: Option<u64>,
    services: HashMap<String, ServiceObjectives>,
    errors: bool,
}

#[derive(Debug)]
struct ServiceObjectives {
    default_nanos: Option<u64>,
    operations: HashMap<String, Option<u64>>,
}

/// Settings; see the crate documentation.
#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SloConfig {
    /// Objective of spans of services not listed (ms; 0 or absent: none).
    #[serde(default)]
    pub default_ms: Option<u64>,
    /// Objectives per service name.
    #[serde(default)]
    pub services: BTreeMap<String, ServiceConfig>,
    /// Whether failed spans keep their trace (default true).
    #[serde(default = "yes")]
    pub errors: bool,
}

/// One service's objectives.
#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServiceConfig {
    /// Objective of the service's operations not listed (ms; 0: none; absent: the top level's).
    #[serde(default)]
    pub default_ms: Option<u64>,
    /// Objective per operation (span name), in ms (0: none).
    #[serde(default)]
    pub operations: BTreeMap<String, u64>,
}

fn yes() -> bool {
    true
}

/// Milliseconds to nanoseconds; 0 means no objective; too large is refused naming the field.
fn nanos(ms: u64, field: &str) -> Result<Option<u64>, Error> {
    match ms {
        0 => Ok(None),
        ms => ms
            .checked_mul(NANOS_PER_MS)
            .map(Some)
            .ok_or_else(|| Error::invalid_config(field, format!("{ms} ms is too large"))),
    }
}

impl Policy for Slo {
    const NAME: &'static str = "slo";
    const VERSION: &'static str = "0.1.0";
    type Config = SloConfig;

    fn configure(config: SloConfig) -> Result<Self, Error> {
        let default_nanos = match config.default_ms {
            Some(ms) => nanos(ms, "default_ms")?,
            None => None,
        };
        let mut services = HashMap::with_capacity(config.services.len());
        for (service, c) in config.services {
            if service.is_empty() {
                return Err(Error::invalid_config("services", "a service name is empty"));
            }
            let service_default = match c.default_ms {
                Some(ms) => nanos(ms, &format!("services.{service}.default_ms"))?,
                None => default_nanos,
            };
            let mut operations = HashMap::with_capacity(c.operations.len());
            for (op, ms) in c.operations {
                let field = format!("services.{service}.operations.{op}");
                operations.insert(op, nanos(ms, &field)?);
            }
            services.insert(
                service,
                ServiceObjectives {
                    default_nanos: service_default,
                    operations,
                },
            );
        }
        if default_nanos.is_none() && services.is_empty() && !config.errors {
            return Err(Error::invalid_config(
                "default_ms",
                "no objective anywhere and errors off: the policy would never keep a trace",
            ));
        }
        Ok(Slo {
            default_nanos,
            services,
            errors: config.errors,
        })
    }

    fn decide(&mut self, trace: &[Span]) -> Result<bool, Error> {
        Ok(trace
            .iter()
            .any(|s| self.too_slow(s) || (self.errors && failed(s))))
    }
}

impl Slo {
    fn objective(&self, span: &Span) -> Option<u64> {
        match self.services.get(span.resource.service_name.as_str()) {
            Some(svc) => match svc.operations.get(span.name.as_str()) {
                Some(op) => *op,
                None => svc.default_nanos,
            },
            None => self.default_nanos,
        }
    }

    fn too_slow(&self, span: &Span) -> bool {
        let duration = u64::try_from(span.duration_nanos).unwrap_or(0);
        self.objective(span).is_some_and(|limit| duration > limit)
    }
}

/// Status `ERROR`, or an HTTP server or gateway error.
fn failed(span: &Span) -> bool {
    if span.status.code == StatusCode::Error {
        return true;
    }
    ["http.response.status_code", "http.status_code"]
        .iter()
        .filter_map(|k| find_attr(&span.attributes, k))
        .any(|v| match v {
            AnyValue::Int(code) => *code >= 500,
            AnyValue::Str(text) => text.trim().parse::<i64>().is_ok_and(|c| c >= 500),
            _ => false,
        })
}

spoor_plugin_sdk::export_policy!(Slo);

#[cfg(test)]
mod tests {
    use super::*;
    use spoor_plugin_sdk::testing::{check_golden_policy, decide};
    use spoor_plugin_sdk::{KeyValue, Resource, SpanId, Status, TraceId};
    use std::sync::Arc;

    fn span(trace: u128, service: &str, name: &str, ms: i64) -> Span {
        Span {
            trace_id: TraceId(trace),
            span_id: SpanId(trace as u64 * 10 + ms as u64),
            name: name.into(),
            duration_nanos: ms * NANOS_PER_MS as i64,
            resource: Arc::new(Resource {
                service_name: service.into(),
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    const CONFIG: &str = r#"{"default_ms": 2000, "services": {"checkout": {"default_ms": 500,
        "operations": {"GET /cart": 250, "export": 0}}}}"#;

    fn verdicts(config: &str, spans: &[Span]) -> Vec<bool> {
        decide::<Slo>(config, spans)
            .unwrap()
            .into_iter()
            .map(|(_, v)| v)
            .collect()
    }

    #[test]
    fn the_most_specific_objective_applies() {
        let spans = [
            span(1, "checkout", "GET /cart", 251), // operation: 250 → broken
            span(2, "checkout", "GET /cart", 250), // exactly the objective → kept out
            span(3, "checkout", "POST /pay", 501), // service default 500 → broken
            span(4, "checkout", "export", 99_999), // operation objective 0: none
            span(5, "search", "query", 2_001),     // top-level default → broken
            span(6, "search", "query", 1_999),
        ];
        assert_eq!(
            verdicts(CONFIG, &spans),
            [true, false, true, false, true, false]
        );
    }

    #[test]
    fn one_slow_or_failed_span_keeps_the_whole_trace() {
        let mut failed = span(7, "search", "query", 1);
        failed.status = Status {
            code: StatusCode::Error,
            message: String::new(),
        };
        let mut http_500 = span(8, "search", "query", 1);
        http_500.attributes.push(KeyValue::new(
            "http.status_code",
            AnyValue::Str("503".into()),
        ));
        let mut http_404 = span(9, "search", "query", 1);
        http_404.attributes.push(KeyValue::new(
            "http.response.status_code",
            AnyValue::Int(404),
        ));
        let spans = [
            span(7, "search", "a", 1),
            failed.clone(),
            http_500.clone(),
            http_404,
        ];
        assert_eq!(verdicts(CONFIG, &spans), [true, true, false]);
        let no_errors = r#"{"default_ms": 2000, "errors": false}"#;
        assert_eq!(verdicts(no_errors, &[failed, http_500]), [false, false]);
    }

    #[test]
    fn settings_are_checked_naming_the_field() {
        let err = |c: &str| decide::<Slo>(c, &[]).unwrap_err().to_string();
        assert!(
            err(r#"{"default_ms": 18446744073709551615}"#).contains("`default_ms`"),
            "{}",
            err(r#"{"default_ms": 18446744073709551615}"#)
        );
        assert!(err(r#"{"errors": false}"#).contains("never keep a trace"));
        assert!(err(r#"{"servics": {}}"#).contains("servics"));
        assert!(err(r#"{"services": {"a": {"operations": {"x": -1}}}}"#)
            .contains("services.a.operations.x"));
    }

    #[test]
    fn golden() {
        check_golden_policy::<Slo>(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/golden"));
    }
}
