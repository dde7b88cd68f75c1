//! Writes the seed inputs of every target into `corpus/<target>/seed-*`: the repo's fixtures
//! and golden files, the fixture trace through every encoder, and hand-written query strings,
//! config files (also as whole daemon config files, with the cluster's per-role files) and
//! strategies files. Run from tests/fuzz:
//! `cargo run --no-default-features --example seed_corpus`.

use std::path::Path;

use spoor_core::model::Span;
use spoor_fuzz::{fixture_spans, FIXTURE_OTLP_JSON};

const GOLDEN: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../golden");

fn golden(name: &str) -> Vec<u8> {
    std::fs::read(Path::new(GOLDEN).join(name)).unwrap_or_else(|e| panic!("{name}: {e}"))
}

fn write(target: &str, name: &str, bytes: &[u8]) {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("corpus")
        .join(target);
    std::fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
    let path = dir.join(format!("seed-{name}"));
    std::fs::write(&path, bytes).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
}

/// The fixture, its first span alone, and no spans.
fn span_sets() -> Vec<(&'static str, Vec<Span>)> {
    let all = fixture_spans().to_vec();
    vec![
        ("fixture", all.clone()),
        ("one-span", all[..1].to_vec()),
        ("empty", Vec::new()),
    ]
}

/// An `api_v2` batch of `spans` (ids, names, times and string attributes).
fn jaeger_proto_batch(spans: &[Span]) -> spoor_jaeger::proto::Batch {
    use spoor_jaeger::proto;
    proto::Batch {
        spans: spans
            .iter()
            .map(|s| proto::Span {
                trace_id: s.trace_id.to_bytes().to_vec(),
                span_id: s.span_id.to_bytes().to_vec(),
                operation_name: s.name.clone(),
                references: s
                    .parent_span_id
                    .iter()
                    .map(|p| proto::SpanRef {
                        trace_id: s.trace_id.to_bytes().to_vec(),
                        span_id: p.to_bytes().to_vec(),
                        ref_type: 0,
                    })
                    .collect(),
                start_time: Some(proto::Timestamp::from_nanos(s.start_unix_nanos)),
                duration: Some(proto::Duration::from_nanos(s.duration_nanos)),
                tags: s
                    .attributes
                    .iter()
                    .filter_map(|kv| Some(proto::KeyValue::string(&kv.key, kv.value.as_str()?)))
                    .collect(),
                ..Default::default()
            })
            .collect(),
        process: spans.first().map(|s| proto::Process {
            service_name: s.service().to_string(),
            tags: Vec::new(),
        }),
    }
}

fn main() {
    write("otlp_json", "repo-fixture.json", FIXTURE_OTLP_JSON);
    let v3: serde_json::Value =
        serde_json::from_slice(&golden("v3_trace_a.json")).unwrap_or_default();
    write(
        "otlp_json",
        "golden-v3-result.json",
        v3["result"].to_string().as_bytes(),
    );
    for name in [
        "jaeger_trace.json",
        "find_by_service.json",
        "trace_a.json",
        "find_none.json",
    ] {
        write("jaeger_json", &format!("golden-{name}"), &golden(name));
    }
    write(
        "zipkin_v2_json",
        "golden-zipkin_trace.json",
        &golden("zipkin_trace.json"),
    );

    for (name, spans) in span_sets() {
        write("otlp_proto", name, &spoor_otlp::encode_proto(&spans));
        let json = spoor_otlp::json::encode_traces_data(&spans).to_string();
        write("otlp_json", &format!("{name}.json"), json.as_bytes());
        for (i, batch) in spoor_jaeger::convert::spans_to_batches(&spans)
            .iter()
            .enumerate()
        {
            use spoor_jaeger::Protocol::{Binary, Compact};
            let b = spoor_jaeger::encode_emit_batch(batch, Compact, i as i32);
            write("jaeger_compact", &format!("{name}-{i}"), &b);
            let b = spoor_jaeger::encode_emit_batch(batch, Binary, i as i32);
            write("jaeger_binary", &format!("{name}-{i}"), &b);
            write(
                "jaeger_http",
                &format!("{name}-{i}"),
                &spoor_jaeger::encode_http_batch(batch),
            );
        }
        let post = spoor_jaeger::encode_post_spans(jaeger_proto_batch(&spans));
        write("jaeger_proto", name, &post);
        if !spans.is_empty() {
            let trace = spoor_core::model::Trace {
                trace_id: spans[0].trace_id,
                spans: spans
                    .iter()
                    .filter(|s| s.trace_id == spans[0].trace_id)
                    .cloned()
                    .collect(),
            };
            let text = spoor_query::jaeger::trace_json(&trace, &[]).render();
            write("jaeger_json", &format!("{name}.json"), text.as_bytes());
        }
        let zs = spoor_zipkin::from_spans(&spans);
        write(
            "zipkin_v2_json",
            &format!("{name}.json"),
            &spoor_zipkin::encode_v2_json(&zs),
        );
        write(
            "zipkin_v1_json",
            &format!("{name}.json"),
            &spoor_zipkin::encode_v1_json(&zs),
        );
        write("zipkin_proto", name, &spoor_zipkin::encode_v2_proto(&zs));
        write("block", name, &spoor_core::block::encode_block(&spans));
    }

    // What the example plugins (plugins/examples: redact, drop, rename) return.
    let mut redacted = fixture_spans().to_vec();
    for s in &mut redacted {
        s.attributes.retain(|kv| !kv.key.starts_with("http."));
    }
    let kept: Vec<Span> = fixture_spans()
        .iter()
        .filter(|s| s.parent_span_id.is_some())
        .cloned()
        .collect();
    let mut renamed = fixture_spans().to_vec();
    for s in &mut renamed {
        s.name = format!("renamed {}", s.name);
    }
    for (name, spans) in [("redact", &redacted), ("drop", &kept), ("rename", &renamed)] {
        write(
            "plugin_output",
            name,
            &spoor_core::block::encode_block(spans),
        );
    }
    write(
        "plugin_output",
        "empty",
        &spoor_core::block::encode_block(&[]),
    );

    let first = &fixture_spans()[0];
    let trace_id = first.trace_id.to_hex();
    let queries = [
        "service=frontend".to_string(),
        "service=frontend&operation=GET%20%2Fcheckout&limit=20&lookback=1h".to_string(),
        "service=frontend&tag=http.status_code:200&tag=error:true&minDuration=1ms&maxDuration=1.5s"
            .to_string(),
        "service=frontend&tags=%7B%22http.method%22%3A%22GET%22%7D&start=0&end=9999999999999999"
            .to_string(),
        format!("traceID={}&traceID=abc", trace_id.as_str()),
        "service=frontend&lookback=custom&start=1767225600000000&end=1767229200000000".to_string(),
        "query.service_name=frontend&query.start_time_min=2026-01-01T00:00:00Z&query.start_time_max=2026-01-02T00:00:00.123456789%2B01:00".to_string(),
        "query.serviceName=frontend&query.operationName=GET&query.startTimeMin=2025-12-31T23:00:00Z&query.startTimeMax=2026-12-31T00:00:00Z&query.searchDepth=5&query.durationMin=1us&query.durationMax=2h45m&query.attributes=%7B%22k%22%3A%22v%22%7D".to_string(),
        "service=a&limit=-1&minDuration=-5s&maxDuration=1h&limit=2147483648".to_string(),
    ];
    for (i, q) in queries.iter().enumerate() {
        write("query", &format!("{i}"), q.as_bytes());
    }

    let configs = [
        "storage = \"memory\"\nretention = \"2h\"\nmemory.max-traces = 5\n[otlp.grpc]\nhost-port = \"127.0.0.1:1234\"\n[query.http]\nhost-port = \":9999\"\n",
        "receivers = [\"zipkin\"]\n[zipkin.http]\nhost-port = \"127.0.0.1:9999\"\n",
        "storage = \"sled\"\ndata-dir = \"/tmp/x\"\ndurability = \"periodic\"\n[sled]\npartition = \"1h\"\ncache-bytes = 1048576\n[batch]\nmax-spans = 8192\nmax-age = \"200ms\"\n[log]\nformat = \"json\"\nlevel = \"info\"\n",
        "[sampling.tail]\ndecision_wait_ms = 1000\nnum_traces = 100\n[[sampling.tail.policies]]\nname = \"errors\"\ntype = \"status_code\"\nstatus_code = { status_codes = [\"ERROR\"] }\n[[sampling.tail.policies]]\nname = \"slow\"\ntype = \"latency\"\nlatency = { threshold_ms = 5 }\n",
        "[sampling.tail]\n[[sampling.tail.policies]]\nname = \"re\"\ntype = \"string_attribute\"\nstring_attribute = { key = \"http.route\", values = [\"^/api/.*$\", \"a{2,5}\"], enabled_regex_matching = true, invert_match = true }\n[[sampling.tail.policies]]\nname = \"num\"\ntype = \"numeric_attribute\"\nnumeric_attribute = { key = \"http.status_code\", min_value = 400, max_value = 599 }\n",
        "[sampling.tail]\n[[sampling.tail.policies]]\nname = \"and\"\ntype = \"and\"\n[[sampling.tail.policies.and.and_sub_policy]]\nname = \"p\"\ntype = \"probabilistic\"\nprobabilistic = { sampling_percentage = 50.0 }\n[[sampling.tail.policies.and.and_sub_policy]]\nname = \"r\"\ntype = \"rate_limiting\"\nrate_limiting = { spans_per_second = 10, burst_capacity = 20 }\n",
        "[[plugins]]\nname = \"redact\"\npath = \"redact.wasm\"\non-error = \"pass\"\n[plugins.config]\nkeys = [\"user.email\"]\n",
    ];
    for (i, c) in configs.iter().enumerate() {
        write("config", &format!("{i}.toml"), c.as_bytes());
        write("config_file", &format!("{i}.toml"), c.as_bytes());
    }
    // The whole file: every table, and the files beside it that `config_file` provides
    // (tokens, tokens-bad, ui.json, ui-bad.json, ui-list.json, www/index.html).
    let files = [
        include_str!("../../../host/spoor/config/cluster/collector.toml"),
        include_str!("../../../host/spoor/config/cluster/ingester-a.toml"),
        include_str!("../../../host/spoor/config/cluster/query.toml"),
        "[auth]\ntokens-file = \"tokens\"\ntokens = \"list-token=c,x=y=d\"\nudp-tenant = \"a\"\n[multi-tenancy]\nheader = \"X-Scope\"\ntenants = [\"a\", \"b\", \"c\", \"d\"]\nmax-tenants = 4\n",
        "[auth]\ntokens-file = \"tokens-bad\"\n",
        "[auth]\ntokens = \"tok-a=a\"\ntokens-file = \"tokens\"\n",
        "multi-tenancy.enabled = true\nauth.udp-tenant = \"t\"\n",
        "[query]\nstatic-files = \"www\"\nui-config = \"ui.json\"\nbase-path = \"/jaeger/\"\nmax-lookback = \"2d\"\ningesters = [\"http://i:16686\", \" \"]\n",
        "[query]\nui-config = \"ui-bad.json\"\n",
        "[query]\nui-config = \"ui-list.json\"\nstatic-files = \"/nowhere\"\n",
        "[tls]\ncert-file = \"c.pem\"\nkey-file = \"k.pem\"\nclient-ca-file = \"ca.pem\"\n[admin.http]\nhost-port = \"[::1]:14269\"\ntls.enabled = true\n[agent]\ncollector-endpoint = \"https://[::1]:4317\"\ntls-ca-file = \"a-ca.pem\"\n",
        "[memory]\nlimit-mib = 160\nspike-limit-mib = 32\ncheck-interval = \"50ms\"\n[http]\nmax-connections = 8\nheader-read-timeout = \"1.5s\"\nbody-read-timeout = \"0.25s\"\n[pipeline]\nqueue-bytes = 1048576\n[otlp]\nmax-body-bytes = 65536\n",
        "[sampling]\nadaptive = true\ntarget-samples-per-second = 2.5\ncalculation-interval = \"90s\"\n[sampling.http]\nhost-port = \":5778\"\n[span-metrics]\nenabled = false\n",
        "[span-log]\nurl = \"nats://a:4222, tls://b:4222\"\nstream = \"s_1\"\npartitions = 16\nreplicas = 3\nmax-age = \"0s\"\nmax-bytes = 1000000\n[ingester]\npartitions = \"0-3,9,9\"\n[object-store]\nurl = \"s3://traces/prod/\"\nendpoint = \"http://s3:3900\"\nregion = \"garage\"\naccess-key-id = \"id\"\nsecret-access-key = \"secret\"\nseal-after = \"5m\"\nkeep-after-upload = \"1m\"\npoll = \"15s\"\ncompaction = true\n",
        "[[plugins]]\nname = \"a\"\npath = \"a.wasm\"\nfuel = 7\nconfig = { when = 1979-05-27T07:32:00Z, n = nan }\n[sampling.tail]\n[[sampling.tail.policies]]\nname = \"p\"\ntype = \"plugin\"\nplugin = { path = \"p.wasm\", grant = [\"log\"] }\n",
    ];
    for (i, c) in files.iter().enumerate() {
        write("config_file", &format!("file-{i}.toml"), c.as_bytes());
    }

    let strategies = [
        r#"{ "default_strategy": { "type": "probabilistic", "param": 0.5, "operation_strategies": [{ "operation": "op", "type": "probabilistic", "param": 0.2 }] }, "service_strategies": [{ "service": "foo", "type": "ratelimiting", "param": 5 }] }"#,
        r#"{ "service_strategies": [{ "service": "a", "type": "probabilistic", "param": 1, "operation_strategies": [{ "operation": "x", "type": "ratelimiting", "param": 3 }, { "operation": "y", "type": "probabilistic", "param": 0 }] }, { "service": "b" }] }"#,
        r#"{ "default_strategy": { "type": "ratelimiting", "param": 2147483647 } }"#,
        "null",
    ];
    for (i, s) in strategies.iter().enumerate() {
        write("strategies", &format!("{i}.json"), s.as_bytes());
    }
}
