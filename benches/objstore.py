#!/usr/bin/env python3
"""Object storage (#10): bytes per span in S3 and query latency on data that lives only there.

1. Starts a 3-node Garage cluster (replication factor 3) on free 127.0.0.1 ports.
2. Preloads a sled store with the #3 data set (20-span traces, plus 1% in 1,000-span traces),
   ending 2 h ago so every time partition has ended.
3. Starts `spoor all-in-one` on it with `--object-store.*`: the sealer uploads every partition
   and drops it locally. Reports the sealing rate and bytes per span in object storage (data and
   index objects, from the uploader's counters and from Garage's own bucket size).
4. Starts `spoor query` over the bucket alone (no ingester, no local store) and measures the #3
   query kinds: get-trace of 1,000-span traces, find by service + operation + minDuration, find
   by one tag; cold (first request of each path) and warm percentiles.

Usage: python3 benches/objstore.py [--spans N] [--requests N] [--warmup N]
Builds the release binaries first (cargo build --release -p spoor -p spoor-bench). Prints a
Markdown table to paste into BENCHMARKS.md. Needs `garage` (make tools installs it).
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
spec = importlib.util.spec_from_file_location("macro", HERE / "macro.py")
macro = importlib.util.module_from_spec(spec)
assert spec.loader is not None
sys.modules["macro"] = macro
spec.loader.exec_module(macro)

KEY_ID = "GK5b00c0ffee5b00c0ffee5b00"
SECRET = "5b00c0ffee5b00c0ffee5b00c0ffee5b00c0ffee5b00c0ffee5b00c0ffee5b00"
BUCKET = "spoor"
REGION = "garage"


def garage_bin() -> str:
    found = shutil.which("garage") or str(Path.home() / ".cargo" / "bin" / "garage")
    if not Path(found).is_file():
        raise SystemExit("garage is not installed: run make tools")
    return found


class Garage:
    def __init__(self, tmp: Path):
        self.bin = garage_bin()
        self.tmp = tmp
        self.s3 = [macro.free_port() for _ in range(3)]
        self.procs: list[macro.Proc] = []
        secret = "".join(f"{(i * 37 + 11) % 256:02x}" for i in range(32))
        for i in range(3):
            rpc, admin = macro.free_port(), macro.free_port()
            d = tmp / f"garage{i}"
            (tmp / f"garage{i}.toml").write_text(
                f'metadata_dir = "{d}/meta"\ndata_dir = "{d}/data"\ndb_engine = "lmdb"\n'
                f'replication_factor = 3\nrpc_bind_addr = "127.0.0.1:{rpc}"\n'
                f'rpc_public_addr = "127.0.0.1:{rpc}"\nrpc_secret = "{secret}"\n'
                f'[s3_api]\ns3_region = "{REGION}"\napi_bind_addr = "127.0.0.1:{self.s3[i]}"\n'
                f'[admin]\napi_bind_addr = "127.0.0.1:{admin}"\n'
            )
        for i in range(3):
            p = macro.Proc(f"garage{i}", [self.bin, "-c", str(tmp / f"garage{i}.toml"), "server"], tmp / f"garage{i}.log")
            self.procs.append(p)
            p.wait_ready(lambda i=i: macro.tcp_open(self.s3[i]), 20)
        ids = [self.cli(i, "node", "id", "-q").strip() for i in range(3)]
        for node in ids[1:]:
            self.cli(0, "node", "connect", node)
        for node in ids:
            self.cli(0, "layout", "assign", "-z", "dc1", "-c", "10G", node.split("@")[0])
        self.cli(0, "layout", "apply", "--version", "1")
        self.cli(0, "bucket", "create", BUCKET)
        self.cli(0, "key", "import", "--yes", "-n", "spoor", KEY_ID, SECRET)
        self.cli(0, "bucket", "allow", "--read", "--write", "--owner", BUCKET, "--key", "spoor")

    def cli(self, node: int, *args: str) -> str:
        cp = subprocess.run([self.bin, "-c", str(self.tmp / f"garage{node}.toml"), *args],
                            capture_output=True, text=True)  # fmt: skip
        if cp.returncode != 0:
            raise SystemExit(f"garage {' '.join(args)} failed: {cp.stdout}{cp.stderr}")
        return cp.stdout

    def bucket_bytes(self) -> int | None:
        """The bucket's size as Garage reports it (`bucket info`), in bytes, if parseable."""
        out = self.cli(0, "bucket", "info", BUCKET)
        for line in out.splitlines():
            if line.strip().startswith("Size:"):
                # "Size:            1.2 GiB (1.3 GB)"
                num, unit = line.split(":", 1)[1].split()[:2]
                mult = {"B": 1, "KiB": 2**10, "MiB": 2**20, "GiB": 2**30, "TiB": 2**40}.get(unit)
                return int(float(num) * mult) if mult else None
        return None

    def flags(self, node: int) -> list[str]:
        return ["--object-store.url", f"s3://{BUCKET}/bench", "--object-store.endpoint",
                f"http://127.0.0.1:{self.s3[node]}", "--object-store.region", REGION,
                "--object-store.access-key-id", KEY_ID, "--object-store.secret-access-key", SECRET]  # fmt: skip

    def stop(self) -> None:
        for p in self.procs:
            p.stop()


def metric(admin: int, name: str) -> float:
    import http.client

    c = http.client.HTTPConnection("127.0.0.1", admin, timeout=5)
    c.request("GET", "/metrics")
    body = c.getresponse().read().decode()
    c.close()
    for line in body.splitlines():
        if line.startswith(name + " "):
            return float(line.split()[1])
    return 0.0


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--spans", type=int, default=1_000_000)
    ap.add_argument("--requests", type=int, default=200)
    ap.add_argument("--warmup", type=int, default=20)
    ap.add_argument("--no-build", action="store_true")
    args = ap.parse_args()
    if not args.no_build:
        macro.run_checked(["cargo", "build", "--release", "-p", "spoor", "-p", "spoor-bench"], "release build", cwd=macro.ROOT)
    tmp = Path(tempfile.mkdtemp(prefix="spoor-objstore-bench-"))
    rows: list[tuple[str, str, str]] = []

    class Rows(list):
        def append(self, r):  # progress on stderr as each figure is measured
            print(f"  {r[0]}: {r[1]}", file=sys.stderr, flush=True)
            super().append(r)

    rows = Rows()
    garage = None
    procs: list[macro.Proc] = []
    try:
        garage = Garage(tmp)
        data = tmp / "data"
        n_big = max(2, round(args.spans * 0.01 / 1000)) * 1000
        for extra in (["--total-spans", str(args.spans - n_big), "--spans-per-trace", "20", "--seed", "1"],
                      ["--total-spans", str(n_big), "--spans-per-trace", "1000", "--services", "9", "--seed", "2"]):  # fmt: skip
            macro.run_checked([str(macro.LOADGEN), "--preload-sled", str(data), "--batch-spans", "8192",
                               "--time-offset", "2h", *extra, "--json"], "preload", stdout=subprocess.PIPE)  # fmt: skip
        local_bytes, _ = macro.dir_bytes(data)
        # 3. seal everything
        ports = macro.new_ports()
        argv = macro.spoor_argv("sled", data, ports, retention="100000d") + garage.flags(0) + [
            "--object-store.seal-after", "0s", "--object-store.keep-after-upload", "0s", "--object-store.poll", "1s"]
        t0 = time.time()
        aio = macro.start_spoor("spoor-seal", argv, ports, tmp, 120)
        procs.append(aio)
        cpu0 = macro.cpu_seconds(aio.pid)
        deadline = time.time() + 3600
        while metric(ports["admin"], "spoor_objstore_spans_uploaded_total") < args.spans:
            aio.check_alive()
            if time.time() > deadline:
                raise SystemExit("sealing did not finish within an hour")
            time.sleep(0.5)
        sealed_secs = time.time() - t0
        cpu = macro.cpu_seconds(aio.pid) - cpu0
        uploaded = metric(ports["admin"], "spoor_objstore_bytes_uploaded_total")
        blocks = metric(ports["admin"], "spoor_objstore_blocks_uploaded_total")
        while metric(ports["admin"], "spoor_store_partitions") != 0:
            time.sleep(0.5)
        aio.stop()
        procs.remove(aio)
        per_span = uploaded / args.spans
        rows.append(("bytes per span in object storage (data + index objects)",
                     f"{per_span:.1f} B ({uploaded / 2**20:.1f} MiB in {blocks:.0f} blocks for {macro.fmt_int(args.spans)} spans; "
                     f"the same spans took {local_bytes / args.spans:.1f} B/span in sled)", "≤ 100 B"))  # fmt: skip
        gb = garage.bucket_bytes()
        if gb is not None:
            rows.append(("Garage's own bucket size", f"{gb / 2**20:.1f} MiB ({gb / args.spans:.1f} B/span; one replica's worth)", "—"))
        rows.append(("sealing: spans uploaded per second (wall) / per daemon CPU-second",
                     f"{macro.fmt_int(args.spans / sealed_secs)} / {macro.fmt_int(args.spans / max(cpu, 1e-9))} "
                     f"(including the first 1 s poll)", "—"))  # fmt: skip
        # 4. query over object storage alone
        qports = macro.new_ports()
        qargv = [str(macro.SPOOR), "query", "--query.http.host-port", f"127.0.0.1:{qports['query']}",
                 "--admin.http.host-port", f"127.0.0.1:{qports['admin']}", "--log.level", "warn",
                 "--object-store.poll", "60s", *garage.flags(2)]  # fmt: skip
        q = macro.start_spoor("spoor-query-objstore", qargv, qports, tmp, 120)
        procs.append(q)
        client = macro.Client(qports["query"])
        now_us = int(time.time() * 1e6)
        window = {"start": str(now_us - 4 * 3600 * 10**6), "end": str(now_us), "limit": "20"}
        t = time.perf_counter()
        _, body = client.get(macro.search_path({"service": "ad", "limit": "1500", **{k: v for k, v in window.items() if k != "limit"}}))
        first_ms = (time.perf_counter() - t) * 1000
        ids = sorted(tr["traceID"] for tr in macro.traces_in(body, "ad") if len(tr["spans"]) == 1000)
        if not ids:
            raise SystemExit("no 1,000-span trace found in object storage")

        def one_trace(path: str, body: bytes) -> int:
            ts = macro.traces_in(body, path)
            if len(ts) != 1 or len(ts[0]["spans"]) != 1000:
                raise SystemExit(f"GET {path}: expected one trace of 1000 spans")
            return 1

        def some(path: str, body: bytes) -> int:
            return len(macro.traces_in(body, path))

        ops = ["GET /api/cart", "GET /api/products", "GET /api/checkout", "GET /api/search",
               "POST /api/checkout", "GET /api/users/{id}"]  # fmt: skip
        services = ["frontend", "cart", "checkout", "payment", "shipping", "currency", "email", "recommendation"]
        kinds = [
            ("get trace by id, 1,000-span traces", [f"/api/traces/{i}" for i in ids[:100]], one_trace, "p99 ≤ 10 ms on sled"),
            ("find by service + operation + minDuration=100ms, limit 20",
             [macro.search_path({"service": "frontend", "operation": op, "minDuration": "100ms", **window}) for op in ops], some,
             "p99 ≤ 50 ms on sled"),
            ("find by service + one tag (error=true), limit 20",
             [macro.search_path({"service": s, "tags": json.dumps({"error": "true"}), **window}) for s in services], some,
             "p99 ≤ 100 ms on sled"),
        ]  # fmt: skip
        for label, paths, check, goal in kinds:
            t = time.perf_counter()
            check(paths[0], client.get(paths[0])[1])
            cold = (time.perf_counter() - t) * 1000
            lat, counts = macro.measure(client, paths, args.warmup, args.requests, check)
            p50, p99 = macro.percentile(lat, 0.5), macro.percentile(lat, 0.99)
            counts.sort()
            rows.append((f"object storage only: {label}",
                         f"first request {cold:.1f} ms; then p50 {p50:.2f} ms, p99 {p99:.2f} ms ({len(lat)} requests, "
                         f"median {counts[len(counts) // 2]} traces per response)", goal))  # fmt: skip
        rows.append(("object storage only: first search after start (lists the bucket, reads every block head)", f"{first_ms:.0f} ms", "—"))
        client.close()
    finally:
        for p in procs:
            p.stop()
        if garage:
            garage.stop()
        shutil.rmtree(tmp, ignore_errors=True)
    print(f"\n`python3 benches/objstore.py --spans {args.spans}` ({time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, release build, 3-node Garage on this machine):\n")
    print("| benchmark | result | goal |\n|---|---|---|")
    for r in rows:
        print(f"| {r[0]} | {r[1]} | {r[2]} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
