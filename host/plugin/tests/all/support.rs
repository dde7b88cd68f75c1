//! Shared helpers: building the guest components once, locating them, and test batches.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Arc, OnceLock};

use spoor_core::{AnyValue, KeyValue, Resource, Scope, Span, SpanId, Status, StatusCode, TraceId};

/// The repository root.
pub fn root() -> PathBuf {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    root.canonicalize().unwrap_or(root)
}

/// Runs `make -C <root> <target>` once per test binary; panics with make's output on failure.
fn make_once(target: &'static str, cell: &'static OnceLock<Result<(), String>>) {
    let result = cell.get_or_init(|| {
        let out = Command::new("make")
            .arg("-C")
            .arg(root())
            .arg(target)
            .output()
            .map_err(|e| format!("cannot run make: {e}"))?;
        if out.status.success() {
            Ok(())
        } else {
            Err(format!(
                "`make {target}` failed:\n{}\n{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            ))
        }
    });
    if let Err(e) = result {
        panic!("{e}\n(build the guest components with `make {target}` from the repository root)");
    }
}

/// `target/plugins/<name>.wasm`, built by `make plugins` (once per run).
pub fn example(name: &str) -> PathBuf {
    static BUILT: OnceLock<Result<(), String>> = OnceLock::new();
    make_once("plugins", &BUILT);
    let path = root().join("target/plugins").join(format!("{name}.wasm"));
    assert!(
        path.exists(),
        "{} is missing after `make plugins`",
        path.display()
    );
    path
}

/// `target/plugins/hostile/<name>.wasm`, built by `make plugins-hostile` (once per run).
pub fn hostile(name: &str) -> PathBuf {
    static BUILT: OnceLock<Result<(), String>> = OnceLock::new();
    make_once("plugins-hostile", &BUILT);
    let path = root()
        .join("target/plugins/hostile")
        .join(format!("{name}.wasm"));
    assert!(
        path.exists(),
        "{} is missing after `make plugins-hostile`",
        path.display()
    );
    path
}

/// `n` spans over `n / 4 + 1` traces, two services, with a secret-looking attribute.
pub fn spans(n: usize) -> Vec<Span> {
    let resources = [
        Arc::new(Resource {
            service_name: "frontend".into(),
            attributes: vec![kv("host.name", AnyValue::Str("web-1".into()))],
            dropped_attributes_count: 0,
        }),
        Arc::new(Resource {
            service_name: "checkout".into(),
            ..Resource::default()
        }),
    ];
    let scope = Arc::new(Scope {
        name: "test".into(),
        ..Scope::default()
    });
    (0..n)
        .map(|i| {
            let trace = i / 4;
            Span {
                trace_id: TraceId(0x1000 + trace as u128),
                span_id: SpanId(1 + i as u64),
                parent_span_id: (i % 4 != 0).then(|| SpanId(1 + (i - i % 4) as u64)),
                name: format!("op-{}", i % 3),
                start_unix_nanos: 1_700_000_000_000_000_000 + i as u64 * 1000,
                duration_nanos: 500 + i as i64,
                status: Status {
                    code: if i % 7 == 0 {
                        StatusCode::Error
                    } else {
                        StatusCode::Ok
                    },
                    message: String::new(),
                },
                attributes: vec![
                    kv("http.method", AnyValue::Str("GET".into())),
                    kv("user.password", AnyValue::Str(format!("hunter{i}"))),
                    kv("retries", AnyValue::Int(i as i64 % 3)),
                ],
                resource: resources[i % 2].clone(),
                scope: scope.clone(),
                ..Span::default()
            }
        })
        .collect()
}

pub fn kv(key: &str, value: AnyValue) -> KeyValue {
    KeyValue {
        key: key.into(),
        value,
    }
}

/// Spans in a canonical order (trace, then span id), for comparing batches that went through
/// the block encoding (which groups spans per trace).
pub fn sorted(mut spans: Vec<Span>) -> Vec<Span> {
    spans.sort_by_key(|s| (s.trace_id, s.span_id));
    spans
}
