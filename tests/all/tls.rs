//! TLS on the listeners and between roles: certificates made by `openssl` for the test, the
//! real `curl` as an HTTPS client, the real agent as a gRPC client with mutual TLS.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use spoor_tests::{Daemon, Ports};

use crate::golden::{fixture_json, TRACE_A};

/// A CA, a server certificate for 127.0.0.1 and a client certificate, in `dir`.
pub(crate) struct Certs {
    pub(crate) ca: PathBuf,
    pub(crate) server: (PathBuf, PathBuf),
    pub(crate) client: (PathBuf, PathBuf),
}

fn openssl(dir: &Path, args: &[&str]) {
    let out = Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .output()
        .expect("openssl (Debian package openssl) runs");
    assert!(
        out.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

pub(crate) fn make_certs(dir: &Path) -> Certs {
    let ec = [
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:prime256v1",
        "-nodes",
    ];
    let mut ca = vec!["req", "-x509", "-days", "2", "-subj", "/CN=spoor test CA"];
    ca.extend(ec);
    ca.extend(["-keyout", "ca.key", "-out", "ca.pem"]);
    openssl(dir, &ca);
    for (name, usage, san) in [
        ("server", "serverAuth", "subjectAltName=IP:127.0.0.1\n"),
        ("client", "clientAuth", ""),
    ] {
        let (key, csr, pem, ext) = (
            format!("{name}.key"),
            format!("{name}.csr"),
            format!("{name}.pem"),
            format!("{name}.ext"),
        );
        std::fs::write(
            dir.join(&ext),
            format!("{san}basicConstraints=CA:FALSE\nextendedKeyUsage={usage}\n"),
        )
        .unwrap();
        let mut req = vec![
            "req",
            "-subj",
            "/CN=127.0.0.1",
            "-keyout",
            &key,
            "-out",
            &csr,
        ];
        req.extend(ec);
        openssl(dir, &req);
        openssl(
            dir,
            &[
                "x509",
                "-req",
                "-in",
                &csr,
                "-CA",
                "ca.pem",
                "-CAkey",
                "ca.key",
                "-CAcreateserial",
                "-days",
                "2",
                "-extfile",
                &ext,
                "-out",
                &pem,
            ],
        );
    }
    Certs {
        ca: dir.join("ca.pem"),
        server: (dir.join("server.pem"), dir.join("server.key")),
        client: (dir.join("client.pem"), dir.join("client.key")),
    }
}

/// `curl` over HTTPS: (HTTP status, body); status 0 when no HTTP exchange happened (refused
/// handshake).
fn curl(url: &str, certs: &Certs, client_cert: bool, body: Option<&Path>) -> (u16, String) {
    let mut cmd = Command::new("curl");
    cmd.args(["-sS", "--max-time", "10", "--cacert"])
        .arg(&certs.ca)
        .args(["-w", "\n%{http_code}"]);
    if client_cert {
        cmd.arg("--cert")
            .arg(&certs.client.0)
            .arg("--key")
            .arg(&certs.client.1);
    }
    if let Some(b) = body {
        cmd.args(["-H", "Content-Type: application/json", "--data-binary"])
            .arg(format!("@{}", b.display()));
    }
    let out = cmd.arg(url).output().expect("curl runs");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let (body, code) = text.rsplit_once('\n').unwrap_or(("", "0"));
    (code.trim().parse().unwrap_or(0), body.to_string())
}

fn wait_for_trace(query_port: u16, certs: &Certs, client_cert: bool) -> String {
    let url = format!("https://127.0.0.1:{query_port}/api/traces/{TRACE_A}");
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let (status, body) = curl(&url, certs, client_cert, None);
        if status == 200 {
            return body;
        }
        assert!(Instant::now() < deadline, "never found: {status} {body}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn https_listeners_mutual_tls_and_an_agent_over_tls() {
    let dir = tempfile::tempdir().unwrap();
    let certs = make_certs(dir.path());
    let fixture = dir.path().join("fixture.json");
    std::fs::write(&fixture, fixture_json()).unwrap();
    let (cert, key) = (
        certs.server.0.to_str().unwrap(),
        certs.server.1.to_str().unwrap(),
    );

    // TLS: OTLP/HTTP and the query API answer over HTTPS; plain HTTP gets no answer.
    let d = Daemon::start(&[
        "--storage",
        "memory",
        "--tls.cert-file",
        cert,
        "--tls.key-file",
        key,
    ])
    .unwrap();
    let (status, body) = curl(
        &format!("https://127.0.0.1:{}/v1/traces", d.ports.http),
        &certs,
        false,
        Some(&fixture),
    );
    assert_eq!(status, 200, "{body}");
    let trace = wait_for_trace(d.ports.query, &certs, false);
    assert!(trace.contains(TRACE_A), "{trace}");
    let plain = spoor_tests::http(d.ports.query, "GET", "/api/services", &[], b"");
    assert!(plain.is_err() || plain.unwrap().status != 200);

    // Mutual TLS: no client certificate, no connection; the test CA's client certificate works.
    let collector_ports = Ports::free();
    let ca = certs.ca.to_str().unwrap();
    let m = Daemon::start_role(
        "all-in-one",
        collector_ports,
        &[
            "--storage",
            "memory",
            "--tls.cert-file",
            cert,
            "--tls.key-file",
            key,
            "--tls.client-ca-file",
            ca,
        ],
    )
    .unwrap();
    let url = format!("https://127.0.0.1:{}/api/services", m.ports.query);
    assert_eq!(
        curl(&url, &certs, false, None).0,
        0,
        "served without a client certificate"
    );
    assert_eq!(curl(&url, &certs, true, None).0, 200);

    // An agent forwards over OTLP/gRPC with TLS to the mutual-TLS collector.
    let endpoint = format!("https://127.0.0.1:{}", m.ports.grpc);
    let agent = Daemon::start_role(
        "agent",
        Ports::free(),
        &[
            "--agent.collector-endpoint",
            &endpoint,
            "--agent.tls.ca-file",
            ca,
            "--agent.tls.cert-file",
            certs.client.0.to_str().unwrap(),
            "--agent.tls.key-file",
            certs.client.1.to_str().unwrap(),
        ],
    )
    .unwrap();
    let r = agent
        .post_otlp(&[("Content-Type", "application/json")], &fixture_json())
        .unwrap();
    assert_eq!(r.status, 200);
    let trace = wait_for_trace(m.ports.query, &certs, true);
    assert!(trace.contains("\"serviceName\""), "{trace}");
}

#[test]
fn admin_port_speaks_tls_when_asked_and_stays_plain_otherwise() {
    let dir = tempfile::tempdir().unwrap();
    let certs = make_certs(dir.path());
    let (cert, key) = (
        certs.server.0.to_str().unwrap(),
        certs.server.1.to_str().unwrap(),
    );
    let tls = [
        "--storage",
        "memory",
        "--tls.cert-file",
        cert,
        "--tls.key-file",
        key,
    ];

    // By default the admin port stays plain beside TLS listeners (health checks, scrapers).
    let d = Daemon::start(&tls).unwrap();
    let r = spoor_tests::http(d.ports.admin, "GET", "/metrics", &[], b"").unwrap();
    assert_eq!(r.status, 200);
    drop(d);

    // --admin.http.tls.enabled: health and metrics over HTTPS with the same certificate,
    // nothing over plain HTTP.
    let mut args = tls.to_vec();
    args.extend(["--admin.http.tls.enabled", "true"]);
    let d = Daemon::start_with_tls_admin(&args).unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    let health = loop {
        let answer = curl(
            &format!("https://127.0.0.1:{}/", d.ports.admin),
            &certs,
            false,
            None,
        );
        if answer.0 == 200 || Instant::now() > deadline {
            break answer;
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    assert_eq!(health.0, 200, "{}", health.1);
    let (status, metrics) = curl(
        &format!("https://127.0.0.1:{}/metrics", d.ports.admin),
        &certs,
        false,
        None,
    );
    assert_eq!(status, 200);
    assert!(metrics.contains("spoor_pipeline_queue_bytes"), "{metrics}");
    let plain = spoor_tests::http(d.ports.admin, "GET", "/metrics", &[], b"");
    assert!(
        plain.is_err() || plain.unwrap().status != 200,
        "the admin port answered plain HTTP"
    );
    drop(d);

    // Mutual TLS applies to the admin port as to the others.
    args.extend(["--tls.client-ca-file", certs.ca.to_str().unwrap()]);
    let d = Daemon::start_with_tls_admin(&args).unwrap();
    let url = format!("https://127.0.0.1:{}/metrics", d.ports.admin);
    assert_eq!(
        curl(&url, &certs, false, None).0,
        0,
        "served without a client certificate"
    );
    assert_eq!(curl(&url, &certs, true, None).0, 200);

    // Asked for without a certificate: start-up fails naming what is missing.
    let (code, stderr) =
        spoor_tests::run_spoor(&["--storage", "memory", "--admin.http.tls.enabled", "true"])
            .unwrap();
    assert_ne!(code, 0);
    assert!(
        stderr.contains("admin.http.tls.enabled needs tls.cert-file"),
        "{stderr}"
    );
}
