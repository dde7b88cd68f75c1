// Sends one small multi-service trace to Spoor with the real Zipkin JS client (`zipkin` +
// `zipkin-transport-http`, v2 JSON over HTTP, as to a Zipkin server on port 9411).
//
// usage: node send_zipkin.mjs URL RUN_ID     (URL: http://HOST:PORT/api/v2/spans)
// zipkin-js lowercases span names ("get /checkout").
// Prints {"trace_id": "<32 hex>"} once the logger posted the spans without error.
//
// The trace (same shape as send_zipkin.py, checked by tests/all/zipkin.rs), 128-bit trace id:
//   <run>-frontend  SERVER "GET /checkout"  tags: http.method=GET, http.status_code=200
//     <run>-frontend CLIENT "call cart"     annotation "retrying", remote endpoint <run>-cart
//       <run>-cart   SERVER "POST /cart"    tag error="out of stock", busy for 2 ms
import zipkin from 'zipkin';
import { HttpLogger } from 'zipkin-transport-http';

const { Tracer, BatchRecorder, ExplicitContext, jsonEncoder, Annotation, InetAddress } = zipkin;
const [url, run] = process.argv.slice(2);

let failed = null;
const logger = new HttpLogger({ endpoint: url, jsonEncoder: jsonEncoder.JSON_V2, httpInterval: 50 });
logger.on('error', (e) => { failed = e; });
const recorder = new BatchRecorder({ logger });
const ctxImpl = new ExplicitContext();
const tracer = (service) => new Tracer({ ctxImpl, recorder, localServiceName: service, traceId128Bit: true });
const front = tracer(`${run}-frontend`);
const cart = tracer(`${run}-cart`);

function busy(ms) {
  const end = Date.now() + ms;
  while (Date.now() < end) { /* spin */ }
}

let traceId;
front.setId(front.createRootId());
traceId = front.id.traceId;
front.recordServiceName(front.localEndpoint.serviceName);
front.recordRpc('GET /checkout');
front.recordAnnotation(new Annotation.ServerRecv());
front.recordBinary('http.method', 'GET');
front.recordBinary('http.status_code', '200');
front.letId(front.createChildId(), () => {
  front.recordServiceName(front.localEndpoint.serviceName);
  front.recordRpc('call cart');
  front.recordAnnotation(new Annotation.ClientSend());
  front.recordMessage('retrying');
  front.recordAnnotation(new Annotation.ServerAddr({
    serviceName: `${run}-cart`, host: new InetAddress('127.0.0.1'), port: 9000,
  }));
  cart.letId(cart.createChildId(), () => {
    cart.recordServiceName(cart.localEndpoint.serviceName);
    cart.recordRpc('POST /cart');
    cart.recordAnnotation(new Annotation.ServerRecv());
    busy(3);
    cart.recordBinary('error', 'out of stock');
    cart.recordAnnotation(new Annotation.ServerSend());
  });
  busy(1);
  front.recordAnnotation(new Annotation.ClientRecv());
});
busy(1);
front.recordAnnotation(new Annotation.ServerSend());

setTimeout(() => {
  if (failed) {
    console.error(`zipkin logger failed: ${failed}`);
    process.exit(1);
  }
  console.log(JSON.stringify({ trace_id: traceId }));
  process.exit(0);
}, 800);
