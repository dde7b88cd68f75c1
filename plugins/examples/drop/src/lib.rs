//! Example plugin `drop`: removes the spans that match any of a list of rules, typically health
//! checks and metrics scrapes that drown real traffic.
//!
//! ```json
//! {"rules": [
//!   {"operation": "GET /healthz"},
//!   {"operation": "GET /internal/", "match": "prefix"},
//!   {"attribute": {"key": "http.target", "value": "/metrics"}},
//!   {"attribute": {"key": "synthetic"}},
//!   {"service": "canary", "operation": "ping"}
//! ]}
//! ```
//!
//! A span is dropped when any rule matches it; a rule matches when all of its conditions do:
//! `operation` (the span name), `service` (the resource's service name) and `attribute` (a span
//! attribute, else a resource attribute, with that key and, if `value` is given, that value:
//! exact matches compare Jaeger's textual form, so `"200"` matches the integer 200; prefix
//! matches need a string value). `match` is `exact` (the default) or `prefix` and applies to
//! every text of its rule. Children of a dropped span stay (their parent is then missing).

use spoor_plugin_sdk::{find_attr, AnyValue, Batch, Error, Plugin, Span};

/// The `drop` plugin: its rules, validated.
#[derive(Debug)]
pub struct DropSpans {
    rules: Vec<Rule>,
}

/// Settings: `{"rules": [...]}`.
#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DropConfig {
    /// The rules, any of which drops a span.
    pub rules: Vec<RuleConfig>,
}

/// One rule as written; at least one condition is required.
#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RuleConfig {
    /// The span name.
    #[serde(default)]
    pub operation: Option<String>,
    /// The resource's service name.
    #[serde(default)]
    pub service: Option<String>,
    /// A span (else resource) attribute.
    #[serde(default)]
    pub attribute: Option<AttributeConfig>,
    /// How texts of this rule compare.
    #[serde(default, rename = "match")]
    pub match_: Match,
}

/// An attribute condition: the key, and optionally the value.
#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AttributeConfig {
    /// The attribute key (always exact).
    pub key: String,
    /// The value; without it the key's presence is enough.
    #[serde(default)]
    pub value: Option<String>,
}

/// How a rule's texts compare.
#[derive(serde::Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum Match {
    /// The whole text is equal.
    #[default]
    Exact,
    /// The text starts with the given one.
    Prefix,
}

#[derive(Debug)]
struct Rule {
    operation: Option<String>,
    service: Option<String>,
    attribute: Option<(String, Option<String>)>,
    match_: Match,
}

impl Rule {
    fn text_matches(&self, actual: &str, wanted: &str) -> bool {
        match self.match_ {
            Match::Exact => actual == wanted,
            Match::Prefix => actual.starts_with(wanted),
        }
    }

    fn value_matches(&self, actual: &AnyValue, wanted: &str) -> bool {
        match self.match_ {
            Match::Exact => actual.matches_text(wanted),
            Match::Prefix => actual.as_str().is_some_and(|s| s.starts_with(wanted)),
        }
    }

    fn matches(&self, span: &Span) -> bool {
        if let Some(op) = &self.operation {
            if !self.text_matches(&span.name, op) {
                return false;
            }
        }
        if let Some(service) = &self.service {
            if !self.text_matches(span.service(), service) {
                return false;
            }
        }
        if let Some((key, value)) = &self.attribute {
            let found = find_attr(&span.attributes, key)
                .or_else(|| find_attr(&span.resource.attributes, key));
            match (found, value) {
                (None, _) => return false,
                (Some(_), None) => {}
                (Some(v), Some(wanted)) => {
                    if !self.value_matches(v, wanted) {
                        return false;
                    }
                }
            }
        }
        true
    }
}

fn non_empty(field: &str, text: Option<String>) -> Result<Option<String>, Error> {
    match text {
        Some(t) if t.is_empty() => Err(Error::invalid_config(field, "must not be empty")),
        t => Ok(t),
    }
}

impl Plugin for DropSpans {
    const NAME: &'static str = "drop";
    const VERSION: &'static str = "0.1.0";
    type Config = DropConfig;

    fn configure(config: DropConfig) -> Result<Self, Error> {
        if config.rules.is_empty() {
            return Err(Error::invalid_config("rules", "give at least one rule"));
        }
        let rules = config
            .rules
            .into_iter()
            .enumerate()
            .map(|(i, r)| {
                let at = |f: &str| format!("rules[{i}]{f}");
                if r.operation.is_none() && r.service.is_none() && r.attribute.is_none() {
                    return Err(Error::invalid_config(
                        &at(""),
                        "a rule needs `operation`, `service` or `attribute`",
                    ));
                }
                let attribute = match r.attribute {
                    None => None,
                    Some(a) if a.key.is_empty() => {
                        return Err(Error::invalid_config(
                            &at(".attribute.key"),
                            "must not be empty",
                        ))
                    }
                    Some(a) => Some((a.key, a.value)),
                };
                Ok(Rule {
                    operation: non_empty(&at(".operation"), r.operation)?,
                    service: non_empty(&at(".service"), r.service)?,
                    attribute,
                    match_: r.match_,
                })
            })
            .collect::<Result<_, _>>()?;
        Ok(DropSpans { rules })
    }

    fn process(&mut self, batch: &mut Batch) -> Result<(), Error> {
        let dropped = |s: &Span| self.rules.iter().any(|r| r.matches(s));
        // Look before touching: a batch with nothing to drop goes back as it came.
        if batch.iter().any(dropped) {
            batch.retain(|s| !dropped(s));
        }
        Ok(())
    }
}

spoor_plugin_sdk::export_plugin!(DropSpans);

#[cfg(test)]
mod tests {
    use super::*;
    use spoor_plugin_sdk::testing::{check_golden, run};
    use spoor_plugin_sdk::{KeyValue, Resource, SpanId, TraceId};
    use std::sync::Arc;

    fn span(id: u64, service: &str, name: &str, attrs: Vec<KeyValue>) -> Span {
        Span {
            trace_id: TraceId(1),
            span_id: SpanId(id),
            name: name.into(),
            attributes: attrs,
            resource: Arc::new(Resource {
                service_name: service.into(),
                attributes: vec![KeyValue::string("deployment", "blue")],
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    fn kept(config: &str, spans: &[Span]) -> Vec<u64> {
        let out = run::<DropSpans>(config, spans).unwrap();
        out.iter().map(|s| s.span_id.0).collect()
    }

    fn batch() -> Vec<Span> {
        vec![
            span(1, "api", "GET /healthz", vec![]),
            span(
                2,
                "api",
                "GET /metrics",
                vec![KeyValue::string("http.target", "/metrics")],
            ),
            span(
                3,
                "api",
                "GET /users",
                vec![KeyValue::new("http.status_code", AnyValue::Int(200))],
            ),
            span(4, "canary", "ping", vec![]),
            span(5, "canary", "GET /internal/state", vec![]),
        ]
    }

    #[test]
    fn rules() {
        let b = batch();
        assert_eq!(
            kept(r#"{"rules": [{"operation": "GET /healthz"}]}"#, &b),
            [2, 3, 4, 5]
        );
        assert_eq!(
            kept(
                r#"{"rules": [{"operation": "GET /", "match": "prefix"}]}"#,
                &b
            ),
            [4]
        );
        assert_eq!(
            kept(
                r#"{"rules": [{"attribute": {"key": "http.target", "value": "/metrics"}}]}"#,
                &b
            ),
            [1, 3, 4, 5]
        );
        // Exact matches compare the textual form: the integer 200 matches "200".
        assert_eq!(
            kept(
                r#"{"rules": [{"attribute": {"key": "http.status_code", "value": "200"}}]}"#,
                &b
            ),
            [1, 2, 4, 5]
        );
        // Prefix matches need strings.
        assert_eq!(
            kept(
                r#"{"rules": [{"attribute": {"key": "http.status_code", "value": "2"}, "match": "prefix"}]}"#,
                &b
            ),
            [1, 2, 3, 4, 5]
        );
        // Presence only, and resource attributes count.
        assert_eq!(
            kept(r#"{"rules": [{"attribute": {"key": "deployment"}}]}"#, &b),
            Vec::<u64>::new()
        );
        // All conditions of a rule must hold; any rule drops.
        assert_eq!(
            kept(
                r#"{"rules": [{"service": "canary", "operation": "ping"}, {"operation": "GET /healthz"}]}"#,
                &b
            ),
            [2, 3, 5]
        );
        assert_eq!(
            kept(r#"{"rules": [{"service": "can"}]}"#, &b),
            [1, 2, 3, 4, 5]
        );
    }

    #[test]
    fn nothing_dropped_leaves_the_batch_untouched() {
        let mut p =
            spoor_plugin_sdk::configure::<DropSpans>(r#"{"rules": [{"service": "x"}]}"#).unwrap();
        let mut b = Batch::new(batch());
        p.process(&mut b).unwrap();
        assert!(!b.is_modified());
        assert_eq!(b.len(), 5);
    }

    #[test]
    fn config_errors_name_the_field() {
        let err = |c: &str| run::<DropSpans>(c, &[]).unwrap_err().to_string();
        assert_eq!(err("{}"), "invalid-config: missing field `rules`");
        assert_eq!(
            err(r#"{"rules": []}"#),
            "invalid-config: `rules`: give at least one rule"
        );
        assert_eq!(
            err(r#"{"rules": [{"service": "a"}, {}]}"#),
            "invalid-config: `rules[1]`: a rule needs `operation`, `service` or `attribute`"
        );
        assert_eq!(
            err(r#"{"rules": [{"operation": ""}]}"#),
            "invalid-config: `rules[0].operation`: must not be empty"
        );
        assert_eq!(
            err(r#"{"rules": [{"attribute": {"key": ""}}]}"#),
            "invalid-config: `rules[0].attribute.key`: must not be empty"
        );
        assert!(err(r#"{"rules": [{"operation": "a", "match": "regex"}]}"#)
            .starts_with("invalid-config: `rules[0].match`: unknown variant `regex`"),);
        assert!(err(r#"{"rules": [{"operation": "a", "sevrice": "b"}]}"#)
            .contains("unknown field `sevrice`"));
    }

    #[test]
    fn golden() {
        check_golden::<DropSpans>(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/golden"));
    }
}
