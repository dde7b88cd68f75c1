// Sends one small multi-service trace to Spoor with the real Jaeger Node client
// (`jaeger-client`): Thrift binary protocol over UDP (as to a Jaeger agent on port 6832), or
// Thrift binary over HTTP to POST /api/traces (Node sends that body chunked).
//
// usage: node send_jaeger.mjs udp HOST:PORT RUN_ID | node send_jaeger.mjs http URL RUN_ID
// Prints {"trace_id": "<32 hex>"} once the reporters flushed (HTTP: once the server answered).
//
// The trace has the same shape as send_jaeger.py (checked by tests/all/jaeger.rs), 64-bit id.
import jaeger from 'jaeger-client';
import opentracing from 'opentracing';

const [mode, target, run] = process.argv.slice(2);

function tracer(service) {
  const reporter = { flushIntervalMs: 50, logSpans: false };
  if (mode === 'udp') {
    const [host, port] = target.split(':');
    reporter.agentHost = host;
    reporter.agentPort = Number(port);
  } else {
    reporter.collectorEndpoint = target;
  }
  const logger = { info() {}, error(msg) { console.error(msg); process.exitCode = 1; } };
  return jaeger.initTracer(
    { serviceName: service, sampler: { type: 'const', param: 1 }, reporter },
    { logger },
  );
}

const front = tracer(`${run}-frontend`);
const cart = tracer(`${run}-cart`);

const root = front.startSpan('GET /checkout', { tags: { 'span.kind': 'server' } });
root.setTag('http.method', 'GET');
root.setTag('http.status_code', 200);
root.setTag('cache.hit', true);
root.setTag('ratio', 0.25);
const call = front.startSpan('call cart', { childOf: root, tags: { 'span.kind': 'client' } });
call.log({ event: 'retrying', attempt: 2 });
const carrier = {};
front.inject(call.context(), opentracing.FORMAT_TEXT_MAP, carrier);
const parent = cart.extract(opentracing.FORMAT_TEXT_MAP, carrier);
const srv = cart.startSpan('POST /cart', { childOf: parent, tags: { 'span.kind': 'server' } });
await new Promise((r) => setTimeout(r, 5));
srv.setTag('error', true);
srv.log({ event: 'error', message: 'out of stock' });
srv.finish();
call.finish();
root.finish();
const traceId = root.context().traceIdStr.padStart(32, '0');

await new Promise((r) => setTimeout(r, 300));
await Promise.all([front, cart].map((t) => new Promise((r) => t.close(r))));
if (!process.exitCode) {
  console.log(JSON.stringify({ trace_id: traceId }));
}
