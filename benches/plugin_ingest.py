#!/usr/bin/env python3
"""What the redaction plugin costs the daemon's ingest (issue #6: "<= 10% of the ingest
throughput of #3").

Runs spoor-loadgen (OTLP/gRPC, as fast as accepted) into a release daemon on each storage
(`blackhole`: the pipeline alone; `sled`) without and with the example `redact` plugin in the
chain, each configuration `--runs` times, interleaved so that noise from other work on the
machine spreads over all of them, and prints the medians: accepted spans per daemon CPU-second
(the cost) and accepted spans per wall-clock second.

Uses the helpers of macro.py (same daemon flags, same load, same CPU accounting). Needs
`cargo build --release -p spoor -p spoor-bench` and `make plugins`; `--build` runs them.

    python3 benches/plugin_ingest.py --duration 10 --runs 3
"""

import argparse
import shlex
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import macro  # noqa: E402

REDACT = macro.ROOT / "target" / "plugins" / "redact.wasm"
# The keys the Criterion bench redacts (benches/benches/plugins.rs); e-mail and card scanning
# stay on (the plugin's defaults).
PLUGIN_TOML = """
[[plugins]]
name = "redact"
path = "{path}"
config = {{ keys = ["http.user_agent", "app.attr.0"] }}
"""


def run_once(args, storage: str, plugin: bool, tmp: Path, n: int) -> macro.LoadResult:
    ports = macro.new_ports()
    data = tmp / f"data-{storage}-{plugin}-{n}"
    argv = macro.spoor_argv(storage, data if storage == "sled" else None, ports)
    if plugin:
        cfg = tmp / "redact.toml"
        cfg.write_text(PLUGIN_TOML.format(path=REDACT))
        argv += ["--config", str(cfg)]
    name = f"spoor-{storage}-{'redact' if plugin else 'none'}-{n}"
    proc = macro.start_spoor(name, argv, ports, tmp, 60)
    try:
        return macro.drive_load(args, proc, ports["grpc"], macro.Report(), name, tmp)
    finally:
        proc.stop()
        shutil.rmtree(data, ignore_errors=True)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--duration", type=int, default=10, help="seconds per load run (default 10)")
    ap.add_argument("--runs", type=int, default=3, help="runs per configuration (default 3)")
    ap.add_argument("--connections", type=int, default=4, help="loadgen connections (default 4)")
    ap.add_argument("--batch-spans", type=int, default=500, help="spans per OTLP request (default 500)")
    ap.add_argument("--spans-per-trace", type=int, default=20, help="trace size (default 20)")
    ap.add_argument("--pool-spans", type=int, default=200_000, help="loadgen's pre-encoded pool (default 200,000)")
    ap.add_argument("--storage", choices=["blackhole", "sled", "both"], default="both")
    ap.add_argument("--build", action="store_true", help="build the release binaries and plugins first")
    args = ap.parse_args()
    if args.build:
        subprocess.run(["cargo", "build", "--release", "-p", "spoor", "-p", "spoor-bench"], cwd=macro.ROOT, check=True)
        subprocess.run(["make", "plugins"], cwd=macro.ROOT, check=True)
    for need in (macro.SPOOR, macro.LOADGEN, REDACT):
        if not need.exists():
            ap.error(f"{need} is missing (run with --build)")
    storages = ["blackhole", "sled"] if args.storage == "both" else [args.storage]
    configs = [(s, p) for s in storages for p in (False, True)]
    results: dict[tuple[str, bool], list[macro.LoadResult]] = {c: [] for c in configs}
    (macro.ROOT / "target").mkdir(exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix="spoor-plugin-ingest-", dir=macro.ROOT / "target"))
    try:
        for n in range(args.runs):
            for storage, plugin in configs:
                results[(storage, plugin)].append(run_once(args, storage, plugin, tmp, n))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)

    print(f"\n{shlex.join(['python3', 'benches/plugin_ingest.py', *sys.argv[1:]])}")
    print("| storage | plugin | spans / daemon CPU-s (median; runs) | accepted spans/s (median; runs) |")
    print("|---|---|---|---|")
    for storage, plugin in configs:
        rs = results[(storage, plugin)]
        cpu = [r.per_cpu_s for r in rs]
        wall = [float(r.loadgen["accepted_spans_per_sec"]) for r in rs]
        print(
            f"| {storage} | {'redact' if plugin else 'none'} | "
            f"{macro.fmt_int(statistics.median(cpu))} ({', '.join(macro.fmt_int(x) for x in cpu)}) | "
            f"{macro.fmt_int(statistics.median(wall))} ({', '.join(macro.fmt_int(x) for x in wall)}) |"
        )
    for storage in storages:
        base = statistics.median(r.per_cpu_s for r in results[(storage, False)])
        with_plugin = statistics.median(r.per_cpu_s for r in results[(storage, True)])
        print(f"{storage}: redact costs {100 * (1 - with_plugin / base):.1f}% of spans per CPU-second")
    return 0


if __name__ == "__main__":
    sys.exit(main())
