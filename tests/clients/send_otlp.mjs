// Sends one small multi-service trace to Spoor with the real OpenTelemetry JS SDK.
// usage: node send_otlp.mjs json|protobuf BASE_URL RUN_ID
// Prints {"trace_id": "..."}; exits 1 if the exporter reports failure. Same trace shape as send_otlp.py.
import { trace, SpanKind, SpanStatusCode, ROOT_CONTEXT } from '@opentelemetry/api';
import { BasicTracerProvider, SimpleSpanProcessor } from '@opentelemetry/sdk-trace-base';
import { resourceFromAttributes } from '@opentelemetry/resources';
import { OTLPTraceExporter as JsonExporter } from '@opentelemetry/exporter-trace-otlp-http';
import { OTLPTraceExporter as ProtoExporter } from '@opentelemetry/exporter-trace-otlp-proto';

const [format, base, run] = process.argv.slice(2);
let failed = false;

function provider(service) {
  const Exporter = format === 'json' ? JsonExporter : ProtoExporter;
  const inner = new Exporter({ url: `${base}/v1/traces`, timeoutMillis: 10000 });
  const exporter = {
    export(spans, done) {
      inner.export(spans, (result) => {
        if (result.code !== 0) { failed = true; console.error('export failed', result.error); }
        done(result);
      });
    },
    shutdown() { return inner.shutdown(); },
    forceFlush() { return inner.forceFlush(); },
  };
  return new BasicTracerProvider({
    resource: resourceFromAttributes({ 'service.name': service, 'deployment.environment': 'test' }),
    spanProcessors: [new SimpleSpanProcessor(exporter)],
  });
}

const fe = provider(`${run}-frontend`);
const cart = provider(`${run}-cart`);
const tFe = fe.getTracer('spoor.tests', '1.0.0');
const tCart = cart.getTracer('spoor.tests', '1.0.0');

const root = tFe.startSpan('GET /checkout', {
  kind: SpanKind.SERVER,
  attributes: { 'http.method': 'GET', 'http.status_code': 200, 'cache.hit': true, ratio: 0.25 },
}, ROOT_CONTEXT);
const call = tFe.startSpan('call cart', { kind: SpanKind.CLIENT }, trace.setSpan(ROOT_CONTEXT, root));
call.addEvent('retrying', { attempt: 2 });
const server = tCart.startSpan('POST /cart', { kind: SpanKind.SERVER, attributes: { items: ['a', 'b'] } },
  trace.setSpan(ROOT_CONTEXT, call));
await new Promise((r) => setTimeout(r, 5));
server.setStatus({ code: SpanStatusCode.ERROR, message: 'out of stock' });
server.end();
call.end();
root.end();
await fe.forceFlush();
await cart.forceFlush();
await fe.shutdown();
await cart.shutdown();
if (failed) process.exit(1);
console.log(JSON.stringify({ trace_id: root.spanContext().traceId }));
