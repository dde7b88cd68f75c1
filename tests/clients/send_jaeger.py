"""Sends one small multi-service trace to Spoor with the real Jaeger Python client
(`jaeger-client`: Thrift compact protocol over UDP, as to a Jaeger agent on port 6831).

usage: send_jaeger.py HOST COMPACT_UDP_PORT RUN_ID
Prints {"trace_id": "<32 hex>"} once the spans were handed to the UDP socket.

The trace (same shape as send_jaeger.mjs, checked by tests/all/jaeger.rs), 128-bit trace id:
  <run>-frontend  server "GET /checkout"  tags: http.method=GET (string), http.status_code=200
                                          (int64), cache.hit=true (bool), ratio=0.25 (float64)
    <run>-frontend client "call cart"     log {event: retrying, attempt: 2}
      <run>-cart   server "POST /cart"    error=true, log {event: error, message: out of stock}
"""
import json
import logging
import sys
import time

from jaeger_client import Config
from opentracing import Format


def tracer(service, host, port):
    cfg = Config(
        config={
            "sampler": {"type": "const", "param": 1},
            "local_agent": {"reporting_host": host, "reporting_port": port},
            "reporter_flush_interval": 0.05,
            "generate_128bit_trace_id": True,
            "logging": False,
        },
        service_name=service,
        validate=True,
    )
    return cfg.new_tracer()


def main():
    host, port, run = sys.argv[1], int(sys.argv[2]), sys.argv[3]
    logging.basicConfig(level=logging.ERROR)
    front = tracer(run + "-frontend", host, port)
    cart = tracer(run + "-cart", host, port)

    with front.start_span("GET /checkout", tags={"span.kind": "server"}) as root:
        root.set_tag("http.method", "GET")
        root.set_tag("http.status_code", 200)
        root.set_tag("cache.hit", True)
        root.set_tag("ratio", 0.25)
        with front.start_span("call cart", child_of=root, tags={"span.kind": "client"}) as call:
            call.log_kv({"event": "retrying", "attempt": 2})
            carrier = {}
            front.inject(call.context, Format.TEXT_MAP, carrier)
            parent = cart.extract(Format.TEXT_MAP, carrier)
            with cart.start_span("POST /cart", child_of=parent, tags={"span.kind": "server"}) as srv:
                time.sleep(0.002)
                srv.set_tag("error", True)
                srv.log_kv({"event": "error", "message": "out of stock"})
        trace_id = root.context.trace_id

    # the reporters flush every 50 ms on their own IO loop thread; give them time, then close
    time.sleep(0.5)
    for t in (front, cart):
        t.close()
    time.sleep(0.3)
    print(json.dumps({"trace_id": format(trace_id, "032x")}))


if __name__ == "__main__":
    main()
