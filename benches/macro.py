#!/usr/bin/env python3
"""Spoor's macro benchmarks (issue #3): end-to-end ingest, the pipeline alone (against rotel),
query latency and bytes on disk, measured on release builds, written into BENCHMARKS.md.

    python3 benches/macro.py                                  # full run (`make bench`)
    python3 benches/macro.py --spans 1000000 --duration 10    # quicker run
    python3 benches/macro.py --smoke                          # tiny sizes, no rotel, no file

Every figure comes from a run. Only the part of BENCHMARKS.md above the line
`<!-- generated above -->` is rewritten; what is below it is kept. Python 3.11 standard library
only. Exit status: 0 when every step ran (a missed goal is not a failure), 1 when a step failed,
2 on bad arguments.
"""

from __future__ import annotations

import argparse
import datetime as dt
import http.client
import json
import math
import os
import shlex
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.parse
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SPOOR = ROOT / "target" / "release" / "spoor"
LOADGEN = ROOT / "target" / "release" / "spoor-loadgen"
VENV = ROOT / "target" / "bench-venv"
MARKER = "<!-- generated above -->"
CLK_TCK = os.sysconf("SC_CLK_TCK")

# Goals of issue #3.
GOAL_SPANS_PER_CPU_S = 100_000
GOAL_RSS_MIB = 256
GOAL_ROTEL_RATIO = 1.5
GOAL_GET_TRACE_P99_MS = 10
GOAL_FIND_OP_P99_MS = 50
GOAL_FIND_TAG_P99_MS = 100
GOAL_BYTES_PER_SPAN = 100


class StepError(Exception):
    """A benchmark step that could not run."""


def log(msg: str) -> None:
    print(f"macro: {msg}", file=sys.stderr, flush=True)


def run_checked(argv: list[str], what: str, timeout: float | None = None, **kw) -> subprocess.CompletedProcess:
    try:
        cp = subprocess.run(argv, text=True, timeout=timeout, **kw)
    except FileNotFoundError as e:
        raise StepError(f"{what}: cannot run {argv[0]}: {e.strerror}") from e
    except subprocess.TimeoutExpired as e:
        raise StepError(f"{what}: timed out after {timeout:.0f} s") from e
    if cp.returncode != 0:
        tail = (cp.stderr or "").strip().splitlines()[-5:] if isinstance(cp.stderr, str) else []
        raise StepError(f"{what}: exit status {cp.returncode}" + (f": {' | '.join(tail)}" if tail else ""))
    return cp


def free_port(kind: int = socket.SOCK_STREAM) -> int:
    with socket.socket(socket.AF_INET, kind) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def percentile(sorted_samples: list[float], q: float) -> float:
    """Nearest-rank percentile of already sorted samples."""
    if not sorted_samples:
        raise StepError("no samples")
    k = max(1, math.ceil(q * len(sorted_samples)))
    return sorted_samples[k - 1]


def cpu_seconds(pid: int) -> float:
    """utime + stime of a process (all its threads), in seconds."""
    with open(f"/proc/{pid}/stat") as f:
        stat = f.read()
    rest = stat[stat.rfind(")") + 2 :].split()
    # rest[0] is field 3 (state); utime and stime are fields 14 and 15.
    return (int(rest[11]) + int(rest[12])) / CLK_TCK


def status_kib(pid: int, key: str) -> int:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(key + ":"):
                return int(line.split()[1])
    raise StepError(f"no {key} in /proc/{pid}/status")


def dir_bytes(path: Path) -> tuple[int, int]:
    """(apparent size, allocated size) of every file under path, in bytes."""
    apparent = allocated = 0
    for dirpath, _dirs, files in os.walk(path):
        for name in files:
            st = os.lstat(os.path.join(dirpath, name))
            apparent += st.st_size
            allocated += st.st_blocks * 512
    return apparent, allocated


def fmt_int(n: float) -> str:
    return f"{n:,.0f}"


class Proc:
    """A server process started by this script; stop() always ends it (SIGTERM, then SIGKILL)."""

    def __init__(self, name: str, argv: list[str], logfile: Path):
        self.name = name
        self.argv = argv
        self.logfile = logfile
        self._log = open(logfile, "w")
        try:
            self.p = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=self._log, stderr=subprocess.STDOUT)
        except OSError as e:
            self._log.close()
            raise StepError(f"cannot start {name} ({argv[0]}): {e.strerror}") from e

    @property
    def pid(self) -> int:
        return self.p.pid

    def log_tail(self, n: int = 8) -> str:
        try:
            lines = self.logfile.read_text(errors="replace").strip().splitlines()
        except OSError:
            return ""
        return " | ".join(lines[-n:])

    def check_alive(self) -> None:
        if self.p.poll() is not None:
            raise StepError(f"{self.name} exited with status {self.p.returncode}: {self.log_tail()}")

    def wait_ready(self, probe, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self.check_alive()
            if probe():
                return
            time.sleep(0.1)
        raise StepError(f"{self.name} not ready after {timeout:.0f} s: {self.log_tail()}")

    def stop(self) -> None:
        if self.p.poll() is None:
            self.p.send_signal(signal.SIGTERM)
            try:
                self.p.wait(timeout=60)
            except subprocess.TimeoutExpired:
                log(f"{self.name} ignored SIGTERM for 60 s; killing it")
                self.p.kill()
                self.p.wait()
        self._log.close()


def http_ok(port: int, path: str = "/") -> bool:
    try:
        c = http.client.HTTPConnection("127.0.0.1", port, timeout=1)
        c.request("GET", path)
        ok = c.getresponse().status == 200
        c.close()
        return ok
    except OSError:
        return False


def tcp_open(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1):
            return True
    except OSError:
        return False


@dataclass
class Row:
    benchmark: str
    result: str
    goal: str = "—"
    met: str = "—"


@dataclass
class Report:
    facts: dict[str, str] = field(default_factory=dict)
    params: dict[str, str] = field(default_factory=dict)
    commands: list[tuple[str, str]] = field(default_factory=list)
    rows: list[Row] = field(default_factory=list)
    details: list[str] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)

    def command(self, label: str, argv: list[str], tmp: Path) -> None:
        text = shlex.join(str(a) for a in argv).replace(str(tmp), "$TMP").replace(str(ROOT) + "/", "")
        self.commands.append((label, text))

    def goal(self, benchmark: str, result: str, goal: str, met: bool | None) -> None:
        self.rows.append(Row(benchmark, result, goal, "—" if met is None else ("yes" if met else "**no**")))

    def failed(self, benchmark: str, err: Exception) -> None:
        msg = str(err).replace("|", "/").replace("\n", " ")
        self.rows.append(Row(benchmark, f"failed: {msg}", "—", "—"))
        self.failures.append(f"{benchmark}: {err}")

    def table(self) -> str:
        out = ["| benchmark | result | goal | met? |", "|---|---|---|---|"]
        # Rows in the numbering (stable: steps add them in their own order).
        rows = sorted(self.rows, key=lambda r: r.benchmark.split(".", 1)[0])
        out += [f"| {r.benchmark} | {r.result} | {r.goal} | {r.met} |" for r in rows]
        return "\n".join(out)


# ---------------------------------------------------------------------------------------------
# Step 0: build and machine facts


def build(report: Report) -> None:
    argv = ["cargo", "build", "--release", "-p", "spoor", "-p", "spoor-bench"]
    log("step 0: " + shlex.join(argv))
    run_checked(argv, "release build", cwd=ROOT)
    for b in (SPOOR, LOADGEN):
        if not b.is_file():
            raise StepError(f"release build did not produce {b}")
    report.commands.append(("build", shlex.join(argv)))


def machine_facts(report: Report) -> None:
    def out(argv: list[str]) -> str:
        try:
            return subprocess.run(argv, capture_output=True, text=True, cwd=ROOT, timeout=30).stdout.strip()
        except (OSError, subprocess.TimeoutExpired):
            return "unknown"

    model = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem = "unknown"
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                mem = f"{int(line.split()[1]) / (1024 * 1024):.1f} GiB"
                break
    except OSError:
        pass
    commit = out(["git", "rev-parse", "--short=12", "HEAD"])
    if out(["git", "status", "--porcelain", "--untracked-files=no"]):
        commit += " (with uncommitted changes)"
    report.facts = {
        "date": dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "commit": commit,
        "cpus (nproc)": out(["nproc"]),
        "cpu": model,
        "memory": mem,
        "rustc": out(["rustc", "--version"]),
        "kernel": os.uname().release,
    }
    for k, v in report.facts.items():
        log(f"  {k}: {v}")


# ---------------------------------------------------------------------------------------------
# Load runs (steps 1 and 2)


@dataclass
class LoadResult:
    loadgen: dict
    cpu_s: float
    peak_rss_kib: int

    @property
    def accepted(self) -> int:
        return int(self.loadgen["spans_accepted"])

    @property
    def per_cpu_s(self) -> float:
        return self.accepted / self.cpu_s if self.cpu_s > 0 else 0.0


def loadgen_argv(args, endpoint: str) -> list[str]:
    return [
        str(LOADGEN),
        "--protocol", "otlp-grpc",
        "--endpoint", endpoint,
        "--connections", str(args.connections),
        "--batch-spans", str(args.batch_spans),
        "--spans-per-trace", str(args.spans_per_trace),
        "--duration", f"{args.duration}s",
        "--pool-spans", str(args.pool_spans),
        "--json",
    ]  # fmt: skip


def parse_json_line(stdout: str, what: str) -> dict:
    for line in reversed(stdout.strip().splitlines()):
        if line.startswith("{"):
            return json.loads(line)
    raise StepError(f"{what}: no JSON report on stdout")


def wait_idle(pid: int, timeout: float = 120.0) -> None:
    """Waits until the process uses under 5% of a core for two 0.5 s intervals in a row, so work
    queued during the load (storage writes, flushes) is counted."""
    deadline = time.monotonic() + timeout
    quiet = 0
    last = cpu_seconds(pid)
    while time.monotonic() < deadline and quiet < 2:
        time.sleep(0.5)
        now = cpu_seconds(pid)
        quiet = quiet + 1 if now - last < 0.025 else 0
        last = now
    if quiet < 2:
        log(f"  process {pid} still busy {timeout:.0f} s after the load; measuring anyway")


def drive_load(args, server: Proc, grpc_port: int, report: Report, label: str, tmp: Path, record: bool = True) -> LoadResult:
    argv = loadgen_argv(args, f"http://127.0.0.1:{grpc_port}")
    if record:
        report.command(label, argv, tmp)
    log(f"  {label}: {shlex.join(argv)}")
    server.check_alive()
    cpu0 = cpu_seconds(server.pid)
    cp = run_checked(argv, f"loadgen against {server.name}", timeout=args.duration + 600, stdout=subprocess.PIPE)
    server.check_alive()
    wait_idle(server.pid)
    cpu1 = cpu_seconds(server.pid)
    rss = status_kib(server.pid, "VmHWM")
    lg = parse_json_line(cp.stdout, "loadgen")
    res = LoadResult(lg, cpu1 - cpu0, rss)
    log(
        f"  {server.name}: {fmt_int(res.accepted)} spans accepted in {lg['elapsed_secs']:.1f} s, "
        f"{res.cpu_s:.2f} CPU-s -> {fmt_int(res.per_cpu_s)} spans/CPU-s, "
        f"refused {fmt_int(lg['spans_refused'])}, p99 {lg['latency_us']['p99'] / 1000:.1f} ms, "
        f"peak RSS {rss / 1024:.0f} MiB"
    )
    return res


def spoor_argv(storage: str, data_dir: Path | None, ports: dict[str, int], retention: str | None = None) -> list[str]:
    argv = [str(SPOOR), "all-in-one", "--storage", storage]
    if data_dir is not None:
        argv += ["--data-dir", str(data_dir)]
    if retention is not None:
        argv += ["--retention", retention]
    # Every listener on a free loopback port: a default port (6831, 14250, ...) taken by
    # another process on the machine must not fail the run.
    argv += [
        "--otlp.grpc.host-port", f"127.0.0.1:{ports['grpc']}",
        "--otlp.http.host-port", f"127.0.0.1:{ports['http']}",
        "--query.http.host-port", f"127.0.0.1:{ports['query']}",
        "--admin.http.host-port", f"127.0.0.1:{ports['admin']}",
        "--jaeger.thrift-compact.host-port", f"127.0.0.1:{ports['jaeger_compact']}",
        "--jaeger.thrift-binary.host-port", f"127.0.0.1:{ports['jaeger_binary']}",
        "--jaeger.thrift-http.host-port", f"127.0.0.1:{ports['jaeger_http']}",
        "--jaeger.grpc.host-port", f"127.0.0.1:{ports['jaeger_grpc']}",
        "--zipkin.http.host-port", f"127.0.0.1:{ports['zipkin']}",
        "--sampling.http.host-port", f"127.0.0.1:{ports['sampling']}",
        "--log.level", "warn",
    ]  # fmt: skip
    return argv


def new_ports() -> dict[str, int]:
    tcp = ("grpc", "http", "query", "admin", "jaeger_http", "jaeger_grpc", "zipkin", "sampling")
    udp = ("jaeger_compact", "jaeger_binary")
    ports: dict[str, int] = {}
    while len(set(ports.values())) < len(tcp) + len(udp):
        ports = {k: free_port() for k in tcp} | {k: free_port(socket.SOCK_DGRAM) for k in udp}
    return ports


def start_spoor(name: str, argv: list[str], ports: dict[str, int], tmp: Path, timeout: float) -> Proc:
    proc = Proc(name, argv, tmp / f"{name}.log")
    try:
        proc.wait_ready(lambda: http_ok(ports["admin"], "/"), timeout)
    except BaseException:
        proc.stop()
        raise
    return proc


def step_ingest(args, report: Report, tmp: Path) -> None:
    log(f"step 1: end-to-end ingest into sled for {args.duration} s (and peak RSS, item 5)")
    ports = new_ports()
    data = tmp / "ingest-data"
    argv = spoor_argv("sled", data, ports)
    report.command("1. daemon (sled)", argv, tmp)
    proc = start_spoor("spoor-sled", argv, ports, tmp, 60)
    try:
        r = drive_load(args, proc, ports["grpc"], report, "1. load", tmp)
    finally:
        proc.stop()
    if proc.p.returncode not in (0, None):
        raise StepError(f"spoor (sled) exited with status {proc.p.returncode} on SIGTERM: {proc.log_tail()}")
    lg = r.loadgen
    report.goal(
        "1. ingest OTLP/gRPC → sled with indexes: spans per daemon CPU-second",
        f"{fmt_int(r.per_cpu_s)} ({fmt_int(r.accepted)} spans / {r.cpu_s:.2f} CPU-s)",
        f"≥ {fmt_int(GOAL_SPANS_PER_CPU_S)}",
        r.per_cpu_s >= GOAL_SPANS_PER_CPU_S,
    )
    report.goal("1. ingest: wall-clock accepted spans/s", fmt_int(lg["accepted_spans_per_sec"]), "—", None)
    report.goal(
        "1. ingest: refused spans / request latency p50, p99",
        f"{fmt_int(lg['spans_refused'])} refused; "
        f"{lg['latency_us']['p50'] / 1000:.1f} ms, {lg['latency_us']['p99'] / 1000:.1f} ms",
        "—",
        None,
    )
    rss_mib = r.peak_rss_kib / 1024
    report.goal(
        "5. daemon peak RSS (VmHWM) during the sustained ingest",
        f"{rss_mib:.0f} MiB",
        f"≤ {GOAL_RSS_MIB} MiB",
        rss_mib <= GOAL_RSS_MIB,
    )
    report.details.append(
        f"Ingest: loadgen offered {fmt_int(lg['spans_offered'])} spans in {lg['requests']} requests over "
        f"{lg['elapsed_secs']:.1f} s; accepted {fmt_int(lg['spans_accepted'])}, rejected "
        f"{fmt_int(lg['spans_rejected'])}, refused {fmt_int(lg['spans_refused'])}, errored "
        f"{fmt_int(lg['spans_errored'])}; pool wrapped {lg['pool']['wraps']} times."
    )


def rotel_binary(report: Report, tmp: Path) -> Path:
    py = VENV / "bin" / "python"
    if not py.exists():
        log(f"  creating {VENV}")
        run_checked([sys.executable, "-m", "venv", str(VENV)], "creating the rotel venv", capture_output=True)
    pip = [str(py), "-m", "pip", "install", "-q", "--disable-pip-version-check", "rotel"]
    probe = subprocess.run([str(py), "-c", "import rotel"], capture_output=True)
    if probe.returncode != 0:
        log("  " + shlex.join(pip))
        run_checked(pip, "pip install rotel", timeout=600, capture_output=True)
    report.commands.append(("2. rotel install", shlex.join(pip).replace(str(ROOT) + "/", "")))
    cp = run_checked(
        [str(py), "-c", "import rotel, os; print(os.path.dirname(rotel.__file__))"],
        "locating the rotel package",
        capture_output=True,
    )
    pkg = Path(cp.stdout.strip())
    for cand in (pkg / "rotel-agent", VENV / "bin" / "rotel-agent"):
        if cand.is_file() and os.access(cand, os.X_OK):
            return cand
    raise StepError(f"no rotel-agent binary in {pkg} or {VENV / 'bin'}")


def step_pipeline(args, report: Report, tmp: Path) -> None:
    rounds = args.pipeline_rounds
    log(f"step 2: pipeline alone, {rounds} round(s) of {args.duration} s: spoor --storage blackhole, then rotel")
    # Spoor and rotel alternate, each round on a fresh process, and the medians are compared:
    # one run of each swings by +-10% on this shared machine, and alternating spreads any slow
    # phase of the machine over both.
    spoor_runs: list[LoadResult] = []
    rotel_runs: list[LoadResult] = []
    version = ""
    rotel_error: StepError | None = None
    for r in range(rounds):
        try:
            ports = new_ports()
            argv = spoor_argv("blackhole", None, ports)
            if r == 0:
                report.command("2. daemon (blackhole)", argv, tmp)
            proc = start_spoor("spoor-blackhole", argv, ports, tmp, 60)
            try:
                spoor_runs.append(drive_load(args, proc, ports["grpc"], report, "2. load (spoor)", tmp, record=r == 0))
            finally:
                proc.stop()
        except StepError as e:
            report.failed("2. pipeline alone, spoor --storage blackhole", e)
            raise
        if args.no_rotel or rotel_error is not None:
            continue
        try:
            agent = rotel_binary(report, tmp)
            if not version:
                version = subprocess.run([str(agent), "--version"], capture_output=True, text=True).stdout.strip()
                pkg = subprocess.run(
                    [str(VENV / "bin" / "python"), "-c", "import importlib.metadata as m; print(m.version('rotel'))"],
                    capture_output=True,
                    text=True,
                ).stdout.strip()
                version = f"{version or 'rotel-agent'}, pip package rotel {pkg or '?'}"
            g, h = free_port(), free_port()
            while h == g:
                h = free_port()
            argv = [
                str(agent), "start",
                "--otlp-grpc-endpoint", f"127.0.0.1:{g}",
                "--otlp-http-endpoint", f"127.0.0.1:{h}",
                "--exporter", "blackhole",
                "--pid-file", str(tmp / "rotel-agent.pid"),
                "--log-file", str(tmp / "rotel-agent.file.log"),
            ]  # fmt: skip
            if r == 0:
                report.command("2. rotel", argv, tmp)
            proc = Proc("rotel-agent", argv, tmp / "rotel-agent.log")
            try:
                proc.wait_ready(lambda: tcp_open(g), 30)
                rotel_runs.append(drive_load(args, proc, g, report, "2. load (rotel)", tmp, record=r == 0))
            finally:
                proc.stop()
        except StepError as e:
            log(f"  rotel could not be measured: {e}")
            rotel_error = e

    def summary(runs: list[LoadResult]) -> str:
        med = statistics.median(x.per_cpu_s for x in runs)
        each = ", ".join(fmt_int(x.per_cpu_s) for x in runs)
        spans = sum(x.accepted for x in runs)
        cpu = sum(x.cpu_s for x in runs)
        return f"{fmt_int(med)} (median of {len(runs)}: {each}; {fmt_int(spans)} spans / {cpu:.2f} CPU-s in all)"

    report.goal("2. pipeline alone, spoor --storage blackhole: spans per CPU-second", summary(spoor_runs), "—", None)
    if args.no_rotel:
        report.goal("2. pipeline alone, rotel --exporter blackhole", "not run (--no-rotel)", "—", None)
        return
    if rotel_error is not None or not rotel_runs:
        e = rotel_error or StepError("no rotel run")
        report.failed("2. pipeline alone, rotel --exporter blackhole", e)
        report.goal("2. pipeline alone: ratio spoor / rotel", "not measured (rotel failed)", f"≥ {GOAL_ROTEL_RATIO}×", None)
        report.failures.pop()  # rotel is a comparison point; its failure is reported, not fatal
        return
    report.goal(
        f"2. pipeline alone, rotel --exporter blackhole ({version}): spans per CPU-second",
        summary(rotel_runs),
        "—",
        None,
    )
    s_med = statistics.median(x.per_cpu_s for x in spoor_runs)
    r_med = statistics.median(x.per_cpu_s for x in rotel_runs)
    ratio = s_med / r_med if r_med > 0 else float("inf")
    rounds_txt = ", ".join(
        f"{a.per_cpu_s / b.per_cpu_s:.2f}" for a, b in zip(spoor_runs, rotel_runs) if b.per_cpu_s > 0
    )
    report.goal(
        "2. pipeline alone: ratio spoor / rotel (medians)",
        f"{ratio:.2f}× (round by round: {rounds_txt})",
        f"≥ {GOAL_ROTEL_RATIO}×",
        ratio >= GOAL_ROTEL_RATIO,
    )


# ---------------------------------------------------------------------------------------------
# Steps 3 and 4: preload, bytes on disk, query latency


class Client:
    """One keep-alive HTTP/1.1 connection to the query API; sequential requests."""

    def __init__(self, port: int):
        self.port = port
        self.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)

    def get(self, path: str) -> tuple[float, bytes]:
        t0 = time.perf_counter()
        self.conn.request("GET", path)
        resp = self.conn.getresponse()
        body = resp.read()
        elapsed = time.perf_counter() - t0
        if resp.status != 200:
            raise StepError(f"GET {path}: status {resp.status}: {body[:200]!r}")
        return elapsed, body

    def close(self) -> None:
        self.conn.close()


def traces_in(body: bytes, path: str) -> list[dict]:
    try:
        doc = json.loads(body)
    except ValueError as e:
        raise StepError(f"GET {path}: not JSON: {e}") from e
    if doc.get("errors"):
        raise StepError(f"GET {path}: errors {doc['errors']}")
    return doc.get("data") or []


def search_path(params: dict[str, str]) -> str:
    return "/api/traces?" + urllib.parse.urlencode(params, quote_via=urllib.parse.quote)


def measure(client: Client, paths: list[str], warmup: int, n: int, check) -> tuple[list[float], list[int]]:
    """Sends warmup + n requests cycling over paths; returns sorted latencies (ms) of the last n
    and the number of traces each returned. `check(path, body)` validates a response, outside
    the timing, and returns its trace count."""
    lat: list[float] = []
    counts: list[int] = []
    for i in range(warmup + n):
        path = paths[i % len(paths)]
        elapsed, body = client.get(path)
        if i >= warmup:
            lat.append(elapsed * 1000)
        if i < warmup + len(paths) or i % 10 == 0:
            counts.append(check(path, body))
    return sorted(lat), counts


def step_query(args, report: Report, tmp: Path) -> None:
    n_big = max(2, round(args.spans * 0.01 / 1000)) * 1000
    n_small = args.spans - n_big
    if n_small <= 0:
        raise StepError(f"--spans must exceed {n_big}, got {args.spans}")
    log(f"step 3: preload {fmt_int(args.spans)} spans ({fmt_int(n_small)} in 20-span traces, "
        f"{fmt_int(n_big)} in 1,000-span traces), then query latency")
    data = tmp / "query-data"
    t_begin = time.time()
    # Mostly 20-span traces over the default 8 services; then 1,000-span traces with a different
    # seed (distinct trace ids) over 9 services: the 9th, "ad", appears only in the big traces,
    # which is how their ids are found again over the query API.
    preloads = [
        ("3. preload (20-span traces)", ["--total-spans", str(n_small), "--spans-per-trace", "20", "--seed", "1"]),
        ("3. preload (1,000-span traces)",
         ["--total-spans", str(n_big), "--spans-per-trace", "1000", "--services", "9", "--seed", "2"]),
    ]  # fmt: skip
    stored = 0
    t_big = t_begin
    for label, extra in preloads:
        if "1,000" in label:
            t_big = time.time()
        argv = [str(LOADGEN), "--preload-sled", str(data), "--batch-spans", "8192", *extra, "--json"]
        report.command(label, argv, tmp)
        log(f"  {shlex.join(argv)}")
        cp = run_checked(argv, label, stdout=subprocess.PIPE)
        pre = parse_json_line(cp.stdout, label)
        stored += int(pre["spans"])
        report.details.append(
            f"{label[3:].capitalize()}: {fmt_int(pre['spans'])} spans, {fmt_int(pre['traces'])} traces in "
            f"{pre['write_secs'] + pre['flush_secs']:.1f} s ({fmt_int(pre['spans_per_sec'])} spans/s, "
            f"store opened directly, no network)."
        )
    if stored != args.spans:
        raise StepError(f"preload stored {stored} spans, expected {args.spans}")

    # Step 4: bytes on disk, before the daemon touches the directory.
    apparent, allocated = dir_bytes(data)
    per_span = apparent / stored
    log(f"step 4: {apparent / 2**20:.1f} MiB in {data.name} -> {per_span:.1f} B per span")
    report.goal(
        f"4. bytes on disk per span ({fmt_int(stored)} spans, indexes included)",
        f"{per_span:.1f} B ({apparent / 2**20:.1f} MiB of files; {allocated / 2**20:.1f} MiB allocated)",
        f"≤ {GOAL_BYTES_PER_SPAN} B",
        per_span <= GOAL_BYTES_PER_SPAN,
    )

    ports = new_ports()
    argv = spoor_argv("sled", data, ports, retention="720h")
    report.command("3. daemon on the preloaded store", argv, tmp)
    proc = start_spoor("spoor-query", argv, ports, tmp, 300)
    client = Client(ports["query"])
    try:
        start_us = int((t_begin - 3600) * 1e6)
        end_us = int((time.time() + 60) * 1e6)

        # The ids of the 1,000-span traces: search service "ad" window by window (about four big
        # traces per window, so no response gets huge), keep traces that really have 1,000 spans.
        n_traces = n_big // 1000
        lo = int((t_big - 400) * 1e6)
        windows = max(1, n_traces // 4)
        step = (end_us - lo) // windows + 1
        big: dict[str, int] = {}
        for w in range(windows):
            path = search_path({"service": "ad", "start": str(lo + w * step), "end": str(lo + (w + 1) * step),
                                "limit": "1500"})  # fmt: skip
            _, body = client.get(path)
            for t in traces_in(body, path):
                big[t["traceID"]] = len(t["spans"])
        ids = sorted(i for i, n in big.items() if n == 1000)
        log(f"  found {len(ids)} of {n_traces} 1,000-span traces")
        if not ids:
            raise StepError(f"no 1,000-span trace found by service=ad (found span counts {sorted(set(big.values()))})")

        def one_trace(path: str, body: bytes) -> int:
            ts = traces_in(body, path)
            if len(ts) != 1 or len(ts[0]["spans"]) != 1000:
                raise StepError(f"GET {path}: expected one trace of 1000 spans")
            return 1

        def some_traces(path: str, body: bytes) -> int:
            return len(traces_in(body, path))

        window = {"start": str(start_us), "end": str(end_us), "limit": "20"}
        ops = ["GET /api/cart", "GET /api/products", "GET /api/checkout", "GET /api/search",
               "POST /api/checkout", "GET /api/users/{id}"]  # fmt: skip
        services = ["frontend", "cart", "checkout", "payment", "shipping", "currency", "email", "recommendation"]
        queries = [
            ("3. get trace by id, 1,000-span traces", [f"/api/traces/{i}" for i in ids], one_trace,
             GOAL_GET_TRACE_P99_MS),
            ("3. find traces by service + operation + minDuration=100ms, limit 20",
             [search_path({"service": "frontend", "operation": op, "minDuration": "100ms", **window}) for op in ops],
             some_traces, GOAL_FIND_OP_P99_MS),
            ("3. find traces by service + one tag (error=true), limit 20",
             [search_path({"service": s, "tags": json.dumps({"error": "true"}), **window}) for s in services],
             some_traces, GOAL_FIND_TAG_P99_MS),
        ]  # fmt: skip
        for label, paths, check, goal_ms in queries:
            lat, counts = measure(client, paths, args.warmup, args.requests, check)
            p50, p99 = percentile(lat, 0.50), percentile(lat, 0.99)
            if not any(counts):
                raise StepError(f"{label}: every response was empty ({paths[0]})")
            counts.sort()
            log(f"  {label}: p50 {p50:.2f} ms, p99 {p99:.2f} ms over {len(lat)} requests")
            report.goal(
                label,
                f"p50 {p50:.2f} ms, p99 {p99:.2f} ms ({len(lat)} requests, "
                f"median {counts[len(counts) // 2]} traces per response)",
                f"p99 ≤ {goal_ms} ms",
                p99 <= goal_ms,
            )
        report.details.append(
            f"Queries: one keep-alive HTTP/1.1 connection, sequential requests, {args.warmup} warm-up requests "
            f"per kind excluded; get-trace cycles over {len(ids)} trace ids; searches span the whole preload "
            f"window and cycle over {len(ops)} operations / {len(services)} services."
        )
    finally:
        client.close()
        proc.stop()


# ---------------------------------------------------------------------------------------------
# Output


# ---------------------------------------------------------------------------------------------
# Step 6: per-receiver throughput (Jaeger Thrift, Zipkin) into the blackhole store

# (loadgen mode, daemon receiver label, port key)
RECEIVER_MODES = [
    ("jaeger-udp-compact", "jaeger_thrift_compact", "jaeger_compact"),
    ("jaeger-udp-binary", "jaeger_thrift_binary", "jaeger_binary"),
    ("jaeger-http", "jaeger_thrift_http", "jaeger_http"),
    ("zipkin-json", "zipkin_http", "zipkin"),
    ("zipkin-proto", "zipkin_http", "zipkin"),
]


def metric(admin_port: int, name: str, receiver: str) -> float:
    """One receiver's counter from the daemon's /metrics (0 if not exported yet)."""
    c = http.client.HTTPConnection("127.0.0.1", admin_port, timeout=5)
    c.request("GET", "/metrics")
    r = c.getresponse()
    body = r.read().decode("utf-8", "replace")
    c.close()
    if r.status != 200:
        raise StepError(f"GET /metrics on the admin port answered {r.status}")
    want = f'{name}{{receiver="{receiver}"}} '
    for line in body.splitlines():
        if line.startswith(want):
            return float(line[len(want):])
    return 0.0


def step_receivers(args, report: Report, tmp: Path) -> None:
    log(f"step 6: per-receiver throughput into the blackhole store, {args.receiver_duration} s each")
    ports = new_ports()
    argv = spoor_argv("blackhole", None, ports)
    report.command("6. daemon (blackhole, every receiver)", argv, tmp)
    proc = start_spoor("spoor-receivers", argv, ports, tmp, 60)
    try:
        for mode, receiver, port_key in RECEIVER_MODES:
            label = f"6. receiver throughput: {mode}"
            try:
                udp = mode.startswith("jaeger-udp")
                port = ports[port_key]
                endpoint = f"127.0.0.1:{port}" if udp else f"http://127.0.0.1:{port}"
                lg_argv = [
                    str(LOADGEN), "--protocol", mode, "--endpoint", endpoint,
                    "--connections", str(args.connections), "--batch-spans", str(args.batch_spans),
                    "--spans-per-trace", str(args.spans_per_trace),
                    "--duration", f"{args.receiver_duration}s", "--quiet", "--json",
                ]  # fmt: skip
                if udp:
                    lg_argv += ["--rate", str(args.udp_rate)]
                else:
                    lg_argv += ["--pool-spans", str(args.pool_spans)]
                report.command(label, lg_argv, tmp)
                proc.check_alive()
                acc0 = metric(ports["admin"], "spoor_receiver_spans_accepted_total", receiver)
                cpu0 = cpu_seconds(proc.pid)
                cp = run_checked(lg_argv, f"loadgen {mode}", timeout=args.receiver_duration + 600, stdout=subprocess.PIPE)
                proc.check_alive()
                wait_idle(proc.pid)
                cpu = cpu_seconds(proc.pid) - cpu0
                accepted = metric(ports["admin"], "spoor_receiver_spans_accepted_total", receiver) - acc0
                lg = parse_json_line(cp.stdout, f"loadgen {mode}")
                secs = lg["elapsed_secs"] or 1e-9
                per_cpu = accepted / cpu if cpu > 0 else 0.0
                result = f"{fmt_int(accepted / secs)} accepted spans/s; {fmt_int(per_cpu)} spans/CPU-s"
                if udp:
                    sent = lg["spans_sent"]
                    drop = 1.0 - accepted / sent if sent else 0.0
                    result += f"; {drop * 100:.2f}% dropped of {fmt_int(sent)} sent at {fmt_int(args.udp_rate)} spans/s"
                else:
                    result += f"; loadgen saw {fmt_int(lg['spans_accepted'])} accepted, {fmt_int(lg['spans_errored'])} errored"
                log(f"  {mode}: {result}")
                report.goal(label, result, "—", None)
            except Exception as e:  # noqa: BLE001 - one mode failing must not hide the others
                if not isinstance(e, StepError):
                    e = StepError(f"{type(e).__name__}: {e}")
                log(f"FAILED {label}: {e}")
                report.failed(label, e)
    finally:
        proc.stop()



def render(report: Report) -> str:
    a = report.params
    lines = [
        "# Benchmarks",
        "",
        "Macro benchmarks of issue #3, generated by `benches/macro.py` (everything above the marker "
        "line below is rewritten by each run; notes written below it are kept). Reproduce with:",
        "",
        "```sh",
        "make bench                                              # full run: 10,000,000 spans, 20 s loads",
        "python3 benches/macro.py --spans 1000000 --duration 10  # quicker",
        "python3 benches/macro.py --smoke                        # harness check only, writes nothing",
        "```",
        "",
        "Micro-benchmarks: `cargo bench -p spoor-bench` (see `benches/README.md`).",
        "",
        "## Machine",
        "",
    ]
    lines += [f"- {k}: {v}" for k, v in report.facts.items()]
    lines += ["", "## Parameters", ""]
    lines += [f"- {k}: {v}" for k, v in a.items()]
    lines += ["", "## Results", "", report.table(), ""]
    if report.details:
        lines += [f"- {d}" for d in report.details] + [""]
    lines += [
        "CPU is the daemon's utime + stime from `/proc/PID/stat` between the start of the load and "
        "the moment it is idle again (queued writes included); spans are those loadgen counted as "
        "accepted. Peak RSS is `VmHWM` from `/proc/PID/status`. Bytes on disk are the apparent "
        "sizes of every file in the preloaded data directory, before the daemon opens it. "
        "Latency percentiles are nearest-rank.",
        "",
        "## Commands",
        "",
        "`$TMP` is a fresh temporary directory; ports are free 127.0.0.1 ports picked at run time.",
        "",
        "```sh",
    ]
    lines += [f"# {label}\n{cmd}" for label, cmd in report.commands]
    lines += ["```", ""]
    if report.failures:
        lines += ["## Failed steps", ""] + [f"- {f}" for f in report.failures] + [""]
    return "\n".join(lines)


def write_benchmarks(text: str, path: Path) -> None:
    kept = "\n\n## Notes\n\n(Hand-written notes go here; `benches/macro.py` keeps them.)\n"
    if path.exists():
        old = path.read_text()
        i = old.find(MARKER)
        if i >= 0:
            kept = old[i + len(MARKER) :]
    path.write_text(text.rstrip("\n") + "\n\n" + MARKER + kept)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--spans", type=int, default=10_000_000, help="spans to preload for steps 3-4 (default 10,000,000)")
    ap.add_argument("--duration", type=int, default=20, help="seconds of each load run in steps 1-2 (default 20)")
    ap.add_argument("--connections", type=int, default=4, help="loadgen connections (default 4)")
    ap.add_argument("--batch-spans", type=int, default=500, help="spans per OTLP request (default 500)")
    ap.add_argument("--spans-per-trace", type=int, default=20, help="trace size in steps 1-2 (default 20)")
    ap.add_argument("--pool-spans", type=int, default=1_000_000, help="loadgen's pre-encoded pool (default 1,000,000)")
    ap.add_argument("--requests", type=int, default=200, help="timed requests per query kind (default 200)")
    ap.add_argument("--warmup", type=int, default=20, help="untimed warm-up requests per query kind (default 20)")
    ap.add_argument("--no-rotel", action="store_true", help="skip the rotel comparison")
    ap.add_argument("--pipeline-rounds", type=int, default=3,
                    help="step 2: alternating spoor/rotel rounds, medians compared (default 3)")  # fmt: skip
    ap.add_argument("--no-build", action="store_true", help="use the existing release binaries")
    ap.add_argument("--output", type=Path, default=ROOT / "BENCHMARKS.md", help="file to write (default BENCHMARKS.md)")
    ap.add_argument("--receiver-duration", type=int, default=10,
                    help="seconds of each receiver's run in step 6 (default 10)")  # fmt: skip
    ap.add_argument("--udp-rate", type=int, default=50_000,
                    help="spans/s offered to the Jaeger UDP receivers in step 6 (default 50,000)")  # fmt: skip
    ap.add_argument("--steps", default="1,2,3,6",
                    help="which steps to run, comma-separated (default 1,2,3,6: all; step 1 also measures 5, step 3 also 4); "
                    "a partial run prints its table and writes nothing")  # fmt: skip
    ap.add_argument("--smoke", action="store_true",
                    help="tiny sizes (2 s loads, 20,000 spans, 20 requests each), no rotel; prints the table, "
                    "writes nothing")  # fmt: skip
    args = ap.parse_args(argv)
    if args.smoke:
        args.duration, args.spans, args.requests, args.warmup = 2, 20_000, 20, 5
        args.pool_spans, args.no_rotel, args.pipeline_rounds = 50_000, True, 1
        args.receiver_duration, args.udp_rate = 1, 20_000
    for name in ("pipeline_rounds", "receiver_duration", "udp_rate", "spans", "duration", "connections", "batch_spans", "spans_per_trace", "pool_spans", "requests"):
        if getattr(args, name) <= 0:
            ap.error(f"--{name.replace('_', '-')} must be positive, got {getattr(args, name)}")
    if args.warmup < 0:
        ap.error(f"--warmup must not be negative, got {args.warmup}")

    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    report = Report()
    report.params = {
        "invocation": shlex.join(["python3", "benches/macro.py", *(sys.argv[1:] if argv is None else argv)]),
        "load runs (steps 1-2)": f"OTLP/gRPC, as fast as accepted, {args.duration} s, {args.connections} connections, "
        f"{args.batch_spans} spans per request, {args.spans_per_trace} spans per trace, pool of "
        f"{fmt_int(args.pool_spans)} spans; step 2 alternates spoor and rotel {args.pipeline_rounds} times",
        "preloaded spans (steps 3-4)": fmt_int(args.spans),
        "requests per query kind": f"{args.requests} timed after {args.warmup} warm-up",
    }
    t0 = time.monotonic()
    try:
        if not args.no_build:
            build(report)
    except StepError as e:
        log(f"FAILED: {e}")
        return 1
    machine_facts(report)

    (ROOT / "target").mkdir(exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix="spoor-bench-", dir=ROOT / "target"))
    try:
        steps = [
            ("1. ingest into sled", step_ingest),
            ("2. pipeline alone", step_pipeline),
            ("3. query latency / 4. bytes on disk", step_query),
            ("6. receiver throughput", step_receivers),
        ]
        wanted = {x.strip() for x in args.steps.split(",") if x.strip()}
        unknown = wanted - {name.split(".")[0] for name, _ in steps}
        if unknown:
            ap.error(f"--steps: no step {', '.join(sorted(unknown))} (steps are 1, 2, 3, 6)")
        for name, fn in steps:
            if name.split(".")[0] not in wanted:
                continue
            try:
                fn(args, report, tmp)
            except Exception as e:  # noqa: BLE001 - any failure of a step is reported, then the next runs
                if not isinstance(e, StepError):
                    e = StepError(f"{type(e).__name__}: {e}")
                log(f"FAILED {name}: {e}")
                if not any(f.startswith(name[:2]) for f in report.failures):
                    report.failed(name, e)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)

    text = render(report)
    print(report.table())
    if not args.smoke and args.steps == ap.get_default("steps"):
        write_benchmarks(text, args.output)
        log(f"wrote {args.output}")
    log(f"done in {time.monotonic() - t0:.0f} s" + (f"; {len(report.failures)} step(s) failed" if report.failures else ""))
    return 1 if report.failures else 0


if __name__ == "__main__":
    sys.exit(main())
