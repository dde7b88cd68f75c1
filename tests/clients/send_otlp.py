"""Sends one small multi-service trace to Spoor with the real OpenTelemetry Python SDK.

usage: send_otlp.py grpc|http ENDPOINT RUN_ID
Prints {"trace_id": "<32 hex>"} on success; exits non-zero if the exporter reports failure.

The trace (same shape as send_otlp.mjs, checked by tests/all/clients.rs):
  <run>-frontend  SERVER  "GET /checkout"     attrs: http.method=GET (str), http.status_code=200 (int),
                                              cache.hit=true (bool), ratio=0.25 (double)
    <run>-frontend CLIENT "call cart"         event "retrying" {attempt: 2}
      <run>-cart    SERVER "POST /cart"       status ERROR "out of stock"; attr items=[a, b]
"""
import json
import sys
import time

from opentelemetry import trace
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult, SimpleSpanProcessor
from opentelemetry.trace import SpanKind, Status, StatusCode


class Checked(SpanExporter):
    """Wraps an exporter and remembers whether every export succeeded."""

    def __init__(self, inner):
        self.inner = inner
        self.failed = False

    def export(self, spans):
        result = self.inner.export(spans)
        if result != SpanExportResult.SUCCESS:
            self.failed = True
        return result

    def shutdown(self):
        self.inner.shutdown()


def main():
    protocol, endpoint, run = sys.argv[1], sys.argv[2], sys.argv[3]
    exporters = []

    def provider(service):
        if protocol == "grpc":
            from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter
            exp = Checked(OTLPSpanExporter(endpoint=endpoint, insecure=True, timeout=10))
        else:
            from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
            exp = Checked(OTLPSpanExporter(endpoint=endpoint + "/v1/traces", timeout=10))
        exporters.append(exp)
        p = TracerProvider(resource=Resource.create({"service.name": service, "deployment.environment": "test"}))
        p.add_span_processor(SimpleSpanProcessor(exp))
        return p

    fe = provider(run + "-frontend")
    cart = provider(run + "-cart")
    t_fe = fe.get_tracer("spoor.tests", "1.0.0")
    t_cart = cart.get_tracer("spoor.tests", "1.0.0")

    root = t_fe.start_span("GET /checkout", kind=SpanKind.SERVER, attributes={
        "http.method": "GET", "http.status_code": 200, "cache.hit": True, "ratio": 0.25})
    ctx = trace.set_span_in_context(root)
    call = t_fe.start_span("call cart", kind=SpanKind.CLIENT, context=ctx)
    call.add_event("retrying", {"attempt": 2})
    server = t_cart.start_span("POST /cart", kind=SpanKind.SERVER, context=trace.set_span_in_context(call),
                               attributes={"items": ["a", "b"]})
    time.sleep(0.002)
    server.set_status(Status(StatusCode.ERROR, "out of stock"))
    server.end()
    call.end()
    root.end()
    fe.shutdown()
    cart.shutdown()
    if any(e.failed for e in exporters):
        print("export failed", file=sys.stderr)
        sys.exit(1)
    print(json.dumps({"trace_id": format(root.get_span_context().trace_id, "032x")}))


if __name__ == "__main__":
    main()
