"""Sends N traces with the real Jaeger Python client (`jaeger-client`) using its remote sampler,
which polls the agent's sampling port (`GET /sampling?service=...`) and samples as told; sampled
spans go out over Thrift compact/UDP.

usage: sample_jaeger.py HOST SAMPLING_PORT COMPACT_UDP_PORT SERVICE N
Waits until the sampler fetched and applied a strategy, then starts N root spans ("op-<i>", each
with one child "child-<i>") and prints
  {"sampler": "<the sampler in force>", "trace_ids": [16-hex, ...], "sampled": [16-hex, ...]}
where `sampled` are the traces the client decided to keep.
"""
import json
import logging
import sys
import time

from jaeger_client import Config
from jaeger_client.metrics import MetricsFactory


class CountingMetrics(MetricsFactory):
    """Counts the client's own metrics, to see when the sampler fetched and applied a strategy."""

    def __init__(self):
        super().__init__()
        self.counts = {}

    def create_counter(self, name, tags=None):
        key = name + "".join(f",{k}={v}" for k, v in sorted((tags or {}).items()))

        def inc(value=1):
            self.counts[key] = self.counts.get(key, 0) + value

        return inc


def main():
    host, sampling_port, udp_port = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    service, n = sys.argv[4], int(sys.argv[5])
    logging.basicConfig(level=logging.ERROR)
    metrics = CountingMetrics()
    cfg = Config(
        config={
            # no "sampler" section: the remote sampler, as deployed with a Jaeger agent
            "sampling_refresh_interval": 0.2,
            "local_agent": {
                "reporting_host": host,
                "reporting_port": udp_port,
                "sampling_port": sampling_port,
            },
            "reporter_flush_interval": 0.05,
            "logging": False,
        },
        service_name=service,
        metrics_factory=metrics,
        validate=True,
    )
    tracer = cfg.new_tracer()
    deadline = time.time() + 20
    while metrics.counts.get("jaeger:sampler_queries,result=ok", 0) < 1:
        if time.time() > deadline:
            raise SystemExit(f"the sampler never fetched a strategy: {metrics.counts}")
        time.sleep(0.02)
    if metrics.counts.get("jaeger:sampler_updates,result=err", 0):
        raise SystemExit(f"the sampler could not apply the strategy: {metrics.counts}")

    trace_ids, sampled = [], []
    for i in range(n):
        with tracer.start_span(f"op-{i}", tags={"span.kind": "server"}) as root:
            with tracer.start_span(f"child-{i}", child_of=root):
                pass
            tid = format(root.context.trace_id, "016x")
            trace_ids.append(tid)
            if root.is_sampled():
                sampled.append(tid)

    # the reporter flushes every 50 ms on its own IO loop thread; give it time, then close
    time.sleep(0.5)
    tracer.close()
    time.sleep(0.3)
    print(json.dumps({"sampler": str(tracer.sampler.sampler), "trace_ids": trace_ids, "sampled": sampled}))


if __name__ == "__main__":
    main()
