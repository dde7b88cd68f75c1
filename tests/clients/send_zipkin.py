"""Sends one small multi-service trace to Spoor with the real Zipkin Python client (`py_zipkin`)
over HTTP, in Zipkin v2 JSON or proto3 encoding, as to a Zipkin server on port 9411.

usage: send_zipkin.py URL json|proto RUN_ID     (URL: http://HOST:PORT/api/v2/spans)
Prints {"trace_id": "<32 hex>"} once the spans were posted (the transport raises on non-2xx).

The trace (same shape as send_zipkin.mjs, checked by tests/all/zipkin.rs), 128-bit trace id:
  <run>-frontend  SERVER "GET /checkout"  tags: http.method=GET, http.status_code=200
    <run>-frontend CLIENT "call cart"     annotation "retrying", remote endpoint <run>-cart
      <run>-cart   SERVER "POST /cart"    tag error="out of stock", sleeps 2 ms
"""
import json
import sys
import time
import urllib.request

from py_zipkin import Encoding, Kind
from py_zipkin.transport import BaseTransportHandler
from py_zipkin.zipkin import zipkin_span


class HttpTransport(BaseTransportHandler):
    def __init__(self, url, content_type):
        super().__init__()
        self.url, self.content_type = url, content_type

    def get_max_payload_bytes(self):
        return None

    def send(self, payload):
        if isinstance(payload, str):  # v2 JSON comes as text, proto3 as bytes
            payload = payload.encode("utf-8")
        req = urllib.request.Request(
            self.url, data=payload, headers={"Content-Type": self.content_type}, method="POST"
        )
        with urllib.request.urlopen(req, timeout=10) as resp:
            if resp.status != 202:
                raise RuntimeError("zipkin answered %d" % resp.status)


def main():
    url, enc, run = sys.argv[1], sys.argv[2], sys.argv[3]
    encoding, ct = {
        "json": (Encoding.V2_JSON, "application/json"),
        "proto": (Encoding.V2_PROTO3, "application/x-protobuf"),
    }[enc]
    transport = HttpTransport(url, ct)
    with zipkin_span(
        service_name=run + "-frontend",
        span_name="GET /checkout",
        transport_handler=transport,
        sample_rate=100.0,
        encoding=encoding,
        kind=Kind.SERVER,
        use_128bit_trace_id=True,
        binary_annotations={"http.method": "GET", "http.status_code": "200"},
    ) as root:
        with zipkin_span(
            service_name=run + "-frontend", span_name="call cart", kind=Kind.CLIENT
        ) as call:
            call.add_annotation("retrying")
            call.add_sa_binary_annotation(port=9000, service_name=run + "-cart", host="127.0.0.1")
            with zipkin_span(
                service_name=run + "-cart", span_name="POST /cart", kind=Kind.SERVER
            ) as srv:
                time.sleep(0.002)
                srv.update_binary_annotations({"error": "out of stock"})
        trace_id = root.zipkin_attrs.trace_id
    print(json.dumps({"trace_id": trace_id}))


if __name__ == "__main__":
    main()
