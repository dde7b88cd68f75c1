//! Replays every file of `corpus/<target>/` and `regressions/<target>/` through its target, so
//! a stable `cargo test` keeps every input the fuzzer found (and every crash, once fixed) green.

use std::path::{Path, PathBuf};

use crate::TARGETS;

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).to_path_buf()
}

/// The files of `dir`, sorted; none when it does not exist.
fn files(dir: &Path) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut out: Vec<PathBuf> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.is_file())
        .collect();
    out.sort();
    out
}

/// Runs `target` on every file of `dir`; returns `"path: panic message"` for each that panics.
fn replay(target: crate::Target, dir: &Path) -> (usize, Vec<String>) {
    let mut failures = Vec::new();
    let inputs = files(dir);
    for path in &inputs {
        let data = std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        if let Err(panic) = std::panic::catch_unwind(|| target(&data)) {
            let message = panic
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
                .unwrap_or_default();
            failures.push(format!("{}: {message}", path.display()));
        }
    }
    (inputs.len(), failures)
}

#[test]
fn every_corpus_and_regression_file_passes() {
    let mut failures = Vec::new();
    let mut report = Vec::new();
    for (name, target) in TARGETS {
        let (corpus, mut f1) = replay(*target, &root().join("corpus").join(name));
        let (regressions, mut f2) = replay(*target, &root().join("regressions").join(name));
        assert!(corpus > 0, "corpus/{name} is empty or missing");
        report.push(format!(
            "{name}: {corpus} corpus files, {regressions} regressions"
        ));
        failures.append(&mut f1);
        failures.append(&mut f2);
    }
    println!("{}", report.join("\n"));
    assert!(
        failures.is_empty(),
        "{} inputs failed:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

#[test]
fn every_target_has_a_binary_and_every_binary_a_target() {
    let mut binaries: Vec<String> = files(&root().join("fuzz_targets"))
        .iter()
        .filter_map(|p| p.file_stem()?.to_str().map(str::to_string))
        .collect();
    binaries.sort();
    let mut names: Vec<String> = TARGETS.iter().map(|(n, _)| n.to_string()).collect();
    names.sort();
    assert_eq!(binaries, names);
    let manifest = std::fs::read_to_string(root().join("Cargo.toml")).unwrap_or_default();
    for name in &names {
        assert!(
            manifest.contains(&format!("name = \"{name}\"")),
            "Cargo.toml has no [[bin]] {name}"
        );
    }
}

#[test]
fn query_bytes_become_a_valid_uri_query() {
    let cases: &[(&[u8], &str)] = &[
        (b"service=a&limit=5", "service=a&limit=5"),
        (b"tag=k:v v", "tag=k:v%20v"),
        (b"x=%zz#frag", "x=%zz%23frag"),
        (b"\x00\xff{}", "%00%FF%7B%7D"),
    ];
    for (data, want) in cases {
        let got = crate::uri_query(data);
        assert_eq!(&got, want);
        assert!(
            format!("/api/traces?{got}").parse::<http::Uri>().is_ok(),
            "{got}"
        );
    }
}
