//! Multi-tenancy in the span-log cluster (#9): a 3-node NATS JetStream cluster, a collector with
//! bearer tokens that publishes each tenant's spans with the tenant in the message, two
//! ingesters keeping one store and pipeline per tenant, and a query node over them that
//! authenticates its callers and asks the ingesters for the caller's tenant only. Tenants `a`
//! and `b` first see all of their own traces, then only their own through every query endpoint
//! (services, operations, search, trace by id, dependencies, metrics, v3); refusals are the
//! all-in-one's; the ingesters' internal endpoint refuses calls without a known tenant; span-log
//! messages with a missing, unknown or invalid tenant go to the dead letters (counted, logged,
//! kept in the stream) and the partition moves on; a restarted ingester reopens its tenants.
//! Skipped (with the reason printed) only when `nats-server` is not installed.

use std::path::Path;

use spoor_tests::{http, Daemon, Ports};

use crate::spanlog::{
    client_urls, messages_on, metric, nats_server, raw_publish_with, start_cluster, trace_in,
};
use crate::tenancy::{
    bearer, check_isolation, check_refused_query, check_refused_receivers, check_sampling, get,
    names, otlp_json, send_all, wait, wait_stored, with, Creds, A, B,
};

fn check_everything(query: &Daemon, collector: &Daemon, a: &Creds, b: &Creds) {
    wait_stored(query, a, &A);
    wait_stored(query, b, &B);
    check_isolation(query, a, &A, &B);
    check_isolation(query, b, &B, &A);
    // strategies come from the collector (per tenant there); it serves no remote-sampler port
    check_sampling(collector, a, &A, false);
    check_sampling(collector, b, &B, false);
}

/// A POST to an ingester's internal endpoint with `headers`: status and body.
fn internal(ingester: &Daemon, method: &str, headers: &[(&str, &str)]) -> (u16, String) {
    let r = http(
        ingester.ports.query,
        "POST",
        &format!("/spoor/internal/v1/{method}"),
        headers,
        b"null",
    )
    .unwrap();
    (r.status, String::from_utf8_lossy(&r.body).into_owned())
}

/// A tokens file in `dir` binding `token-a` to tenant `a` and `token-b` to `b`; its path.
pub(crate) fn tokens_of_a_and_b(dir: &Path) -> String {
    let tokens = dir.join("tokens");
    std::fs::write(&tokens, "token-a a\ntoken-b b\n").unwrap();
    tokens.to_str().unwrap().to_string()
}

#[test]
fn tenants_stay_apart_through_collector_span_log_ingesters_and_query_node() {
    let Some(bin) = nats_server() else {
        eprintln!("SKIPPED: nats-server is not installed (make tools installs it)");
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let nodes = start_cluster(&bin, dir.path());
    let urls = client_urls(&nodes);
    let tokens = tokens_of_a_and_b(dir.path());
    let common = [
        "--span-log",
        &urls,
        "--span-log.replicas",
        "3",
        "--auth.tokens-file",
        &tokens,
        "--span-metrics.bucket",
        "1s",
    ];
    let collector = Daemon::start_role("collector", Ports::free(), &common).unwrap();
    let ingester = |ports: Ports, parts: &str, data: &Path| {
        let data = data.to_str().unwrap().to_string();
        let mut args: Vec<&str> = common.to_vec();
        args.extend([
            "--ingester.partitions",
            parts,
            "--data-dir",
            &data,
            "--retention",
            "100000d",
        ]);
        Daemon::start_role("ingester", ports, &args).unwrap()
    };
    let (a_dir, b_dir) = (dir.path().join("ing-a"), dir.path().join("ing-b"));
    let ing_a = ingester(Ports::free(), "0-3", &a_dir);
    let ing_b_ports = Ports::free();
    let ing_b = ingester(ing_b_ports, "4-7", &b_dir);
    let ingesters = format!(
        "http://127.0.0.1:{},http://127.0.0.1:{}",
        ing_a.ports.query, ing_b.ports.query
    );
    let query = Daemon::start_role(
        "query",
        Ports::free(),
        &[
            "--query.ingesters",
            &ingesters,
            "--auth.tokens-file",
            &tokens,
        ],
    )
    .unwrap();

    let (a, b) = (bearer("token-a"), bearer("token-b"));
    send_all(&collector, &a, &b);
    check_everything(&query, &collector, &a, &b);

    // refusals as the all-in-one's: no or an unknown token 401, another tenant's header 403
    for (c, status) in [
        (vec![], 401),
        (bearer("token-c"), 401),
        (with(&a, &[("x-tenant", "b")]), 403),
    ] {
        check_refused_query(&query, &c, status);
        check_refused_receivers(&collector, &c, status, false);
    }
    // an ingester's own query API authenticates too
    assert_eq!(get(ing_a.ports.query, "/api/services", &vec![]).0, 401);

    // span metrics are labelled with the tenant on the ingesters that derived them
    let m = ing_a.metrics_text() + &ing_b.metrics_text();
    for (tenant, service) in [("a", "a-front"), ("b", "b-front")] {
        let want = format!(
            "traces_span_metrics_calls_total{{tenant=\"{tenant}\",service_name=\"{service}\""
        );
        assert!(m.contains(&want), "{want} not in\n{m}");
    }
    assert!(!m.contains("tenant=\"a\",service_name=\"b-"), "{m}");
    assert!(!m.contains("tenant=\"b\",service_name=\"a-"), "{m}");
    for d in [&collector, &ing_a, &ing_b, &query] {
        assert!(!d.log_text().contains("token-a"), "a token was logged");
    }

    // the internal endpoint answers a named, known tenant only, from that tenant's store
    for ing in [&ing_a, &ing_b] {
        let (status, body) = internal(ing, "services", &[]);
        assert_eq!(status, 401, "{body}");
        assert!(body.contains("missing spoor-tenant header"), "{body}");
        let (status, body) = internal(ing, "services", &[("spoor-tenant", "c")]);
        assert_eq!((status, body.trim()), (403, "unknown tenant \"c\""));
        let (status, body) = internal(ing, "services", &[("spoor-tenant", "../a")]);
        assert_eq!(status, 400, "{body}");
    }
    let mut seen = Vec::new();
    for ing in [&ing_a, &ing_b] {
        let (status, body) = internal(ing, "services", &[("spoor-tenant", "a")]);
        assert_eq!(status, 200, "{body}");
        seen.extend(names(&serde_json::from_str(&body).unwrap()));
    }
    seen.sort();
    assert_eq!(seen, A.services);

    // a query node without tenancy gets nothing from tenant ingesters (refused, not mixed)
    let plain =
        Daemon::start_role("query", Ports::free(), &["--query.ingesters", &ingesters]).unwrap();
    let (status, v) = get(plain.ports.query, "/api/services", &vec![]);
    assert_eq!(status, 500, "{v}");
    assert!(!v.to_string().contains("a-front"), "{v}");
    assert!(
        plain.log_text().contains("missing spoor-tenant header"),
        "{}",
        plain.log_text()
    );
    drop(plain);

    // a restarted ingester reopens its tenants' stores, still apart (the fixture's traces put
    // one of a's and both of b's on ingester b)
    assert!(ing_b.stop().unwrap().success());
    assert!(b_dir.join("tenants/a").is_dir() && b_dir.join("tenants/b").is_dir());
    let _ing_b = ingester(ing_b_ports, "4-7", &b_dir);
    check_everything(&query, &collector, &a, &b);

    // bad tenants on span-log messages (as a foreign or misconfigured producer would publish):
    // dead letters, counted and logged; tenant a's trace behind them in the same partition is
    // stored
    let encoding = [("Spoor-Encoding", "spoor-block/1")];
    raw_publish_with(nodes[0].client, "spoor-spans.p0", &encoding, b"no tenant");
    for tenant in ["c", "../a"] {
        let h = [encoding[0], ("Spoor-Tenant", tenant)];
        raw_publish_with(nodes[0].client, "spoor-spans.p0", &h, b"bad tenant");
    }
    let behind = trace_in(0, 0xa);
    let body = otlp_json(&behind, &[("a-late", "00000000000000b1", "late", None)]);
    let r = collector
        .post_otlp(
            &crate::tenancy::headers(&with(&a, &[("Content-Type", "application/json")])),
            body.as_bytes(),
        )
        .unwrap();
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    wait("the trace behind the bad messages", &query, || {
        get(query.ports.query, &format!("/api/traces/{behind}"), &a).0 == 200
    });
    assert_eq!(
        get(query.ports.query, &format!("/api/traces/{behind}"), &b).0,
        404
    );
    let refused = metric(
        ing_a.ports.admin,
        "spoor_spanlog_tenant_refused_messages_total",
    );
    assert_eq!(refused, 3, "{}", ing_a.log_text());
    let log = ing_a.log_text();
    for want in [
        "message with a bad tenant sent to spoor-spans.dead-letter",
        "no Spoor-Tenant header, but this ingester runs with multi-tenancy",
        "unknown tenant",
        "invalid tenant name",
    ] {
        assert!(log.contains(want), "{want:?} not in\n{log}");
    }
    // nothing accepted is lost: the refused messages are kept in the stream's dead letters
    assert_eq!(
        messages_on(nodes[0].client, "spoor-spans", "spoor-spans.dead-letter"),
        3
    );
}
