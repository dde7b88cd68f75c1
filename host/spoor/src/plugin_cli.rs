//! `spoor plugin check FILE` and `spoor plugin run FILE --input traces.json`: what plugin
//! authors use to try a plugin without a daemon.
//!
//! `run` reads Jaeger JSON (the query API's `{"data": [...]}` or one trace) or OTLP JSON,
//! runs the plugin once on all the spans with the daemon's default limits, and prints the
//! result in the input's format: Jaeger JSON traces, or an OTLP `TracesData` object. A
//! tail-sampling policy plugin (mode `policy`) decides each trace of the input instead, and the
//! verdicts are printed as `{"traces": [{"traceID": "...", "spans": N, "sampled": true}]}`.

use std::collections::BTreeMap;
use std::path::Path;

use anyhow::Context;
use spoor_core::{Span, Trace};
use spoor_plugin_host::Capability;

use crate::config::PluginCommand;

/// Runs a `spoor plugin` command; the result goes to stdout, errors to the caller.
pub fn run(cmd: &PluginCommand) -> anyhow::Result<String> {
    match cmd {
        PluginCommand::Check { file } => {
            let meta = spoor_plugin_host::check(file)
                .map_err(|e| anyhow::anyhow!("{}: {e}", file.display()))?;
            Ok(format!(
                "{}: plugin {} {} (host contract {}, mode {}), asks for: {}\n",
                file.display(),
                meta.name,
                meta.version,
                spoor_plugin_host::CONTRACT_VERSION,
                meta.mode,
                if meta.capabilities.is_empty() {
                    "nothing".to_string()
                } else {
                    meta.capabilities
                        .iter()
                        .map(|c| c.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                }
            ))
        }
        PluginCommand::Run {
            file,
            input,
            config,
            grant,
        } => {
            let grants = grant
                .iter()
                .map(|g| parse_grant(g))
                .collect::<anyhow::Result<Vec<_>>>()?;
            let (spans, format) = read_input(input)?;
            let counts = span_counts(&spans);
            let out = spoor_plugin_host::run_any_file(file, config, &grants, spans)
                .map_err(|e| anyhow::anyhow!("{}: {e}", file.display()))?;
            match out {
                spoor_plugin_host::RunOutput::Spans(spans) => render(format, spans),
                spoor_plugin_host::RunOutput::Verdicts(verdicts) => {
                    let traces: Vec<serde_json::Value> = verdicts
                        .iter()
                        .map(|(id, sampled)| {
                            serde_json::json!({
                                "traceID": id.to_string(),
                                "spans": counts.get(id).copied().unwrap_or(0),
                                "sampled": sampled,
                            })
                        })
                        .collect();
                    let mut text =
                        serde_json::to_string_pretty(&serde_json::json!({ "traces": traces }))?;
                    text.push('\n');
                    Ok(text)
                }
            }
        }
    }
}

/// Spans per trace id.
fn span_counts(spans: &[Span]) -> BTreeMap<spoor_core::TraceId, usize> {
    let mut counts = BTreeMap::new();
    for s in spans {
        *counts.entry(s.trace_id).or_insert(0) += 1;
    }
    counts
}

fn parse_grant(text: &str) -> anyhow::Result<Capability> {
    match text.trim() {
        "clock" => Ok(Capability::Clock),
        "random" => Ok(Capability::Random),
        "log" => Ok(Capability::Log),
        other => anyhow::bail!("invalid --grant {other:?}: expected clock, random or log"),
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Format {
    Jaeger,
    Otlp,
}

/// Reads the input file and tells its format apart by its top-level keys.
fn read_input(path: &Path) -> anyhow::Result<(Vec<Span>, Format)> {
    let bytes = std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
    let value: serde_json::Value = serde_json::from_slice(&bytes)
        .with_context(|| format!("{} is not JSON", path.display()))?;
    let decoded = if value.get("resourceSpans").is_some() {
        let d = spoor_otlp::decode_json(&bytes)
            .map_err(|e| anyhow::anyhow!("{}: invalid OTLP JSON: {e}", path.display()))?;
        (d, Format::Otlp)
    } else {
        let d = spoor_jaeger::json_in::decode_value(&value)
            .map_err(|e| anyhow::anyhow!("{}: invalid Jaeger JSON: {e}", path.display()))?;
        (d, Format::Jaeger)
    };
    let (d, format) = decoded;
    if !d.problems.is_empty() {
        anyhow::bail!(
            "{}: {} span(s) rejected: {}",
            path.display(),
            d.rejected,
            d.problems.join("; ")
        );
    }
    Ok((d.spans, format))
}

fn render(format: Format, spans: Vec<Span>) -> anyhow::Result<String> {
    match format {
        Format::Otlp => {
            let v = spoor_otlp::json::encode_traces_data(&spans);
            Ok(serde_json::to_string_pretty(&v)? + "\n")
        }
        Format::Jaeger => {
            let mut traces: BTreeMap<_, Vec<Span>> = BTreeMap::new();
            for s in spans {
                traces.entry(s.trace_id).or_default().push(s);
            }
            let rendered: Vec<String> = traces
                .into_iter()
                .map(|(trace_id, spans)| {
                    spoor_query::jaeger::trace_json(&Trace { trace_id, spans }, &[]).render()
                })
                .collect();
            let body = format!(
                "{{\"data\":[{}],\"total\":{},\"limit\":0,\"offset\":0,\"errors\":null}}",
                rendered.join(","),
                rendered.len()
            );
            // pretty-print through serde_json so authors can read and diff it
            let v: serde_json::Value = serde_json::from_str(&body)?;
            Ok(serde_json::to_string_pretty(&v)? + "\n")
        }
    }
}
