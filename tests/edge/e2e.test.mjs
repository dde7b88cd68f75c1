// End-to-end test of the edge collector (wasm/edge, issue #8): the real daemon on free
// 127.0.0.1 ports and the built worker (`make edge`) in workerd through miniflare. Traces are
// sent with the OpenTelemetry JS SDK browser-style (an Origin header, CORS preflight), from a
// real browser (headless Chromium: a page on an allowed origin gets through the preflight, the
// same page on another origin is stopped by the browser), and as plain OTLP protobuf, found
// through the daemon's query API by the same ids; then the daemon is
// stopped mid-stream, the worker must buffer in its Durable Object, and once the daemon is back
// on the same port the buffer must drain. Also the refusals: 401, 403, 413 and a bad origin.
//
// The edge → collector hop is TLS (issue #9): the daemon serves every listener with a certificate
// from a CA made by `openssl` for this run, the worker forwards to `https://localhost:PORT`, and
// workerd's outbound network (miniflare `outboundService: { network }`, workerd's
// `Network.tlsOptions.trustedCertificates`) trusts exactly that CA: no public CAs, loopback only.
// A second collector whose certificate another CA signed gets nothing: the worker refuses it
// (workerd: "TLS peer's certificate is not trusted"), logs why, and buffers until the collector
// on that port presents a trusted certificate.
// Run: `make edge-test` (or `node --test e2e.test.mjs` after `make edge` and `cargo build -p spoor`).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import https from 'node:https';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { fileURLToPath } from 'node:url';
import { dirname, join } from 'node:path';
import { Miniflare } from 'miniflare';
import { BasicTracerProvider, SimpleSpanProcessor } from '@opentelemetry/sdk-trace-base';
import { OTLPTraceExporter } from '@opentelemetry/exporter-trace-otlp-http';
import { resourceFromAttributes } from '@opentelemetry/resources';
import { createServer } from 'node:http';
import { chromium } from 'playwright-core';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const SPOOR = join(ROOT, 'target', 'debug', 'spoor');
const BUILD = join(ROOT, 'wasm', 'edge', 'build');
const TOKEN = 'e2e-token';
const ORIGIN = 'https://app.example';
const CHROMIUM = process.env.CHROMIUM ?? '/usr/bin/chromium';

function freePort() {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
    s.on('error', reject);
  });
}

async function waitFor(fn, what, ms = 20_000) {
  const end = Date.now() + ms;
  let last;
  while (Date.now() < end) {
    try {
      const v = await fn();
      if (v) return v;
    } catch (e) {
      last = e;
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`timed out waiting for ${what}${last ? `: ${last}` : ''}\n${daemonLog.slice(-2000)}`);
}

let daemonLog = '';
let daemon; // { proc, query, otlp, certs }
let mf;
let certDir; // this run's CAs, certificates and keys (deleted at the end)
let trusted; // { ca, cert, key }: the CA workerd trusts and the daemon's certificate from it
let rogue; // the same from another CA, which workerd does not trust
let edge; // the worker's URL, no trailing slash
let pages; // a web page's server, for the real browser: http://127.0.0.1:port is an allowed origin
let pagePort;

/**
 * A CA and a server certificate it signed for `localhost` and 127.0.0.1 (EC P-256, 2 days),
 * made by `openssl` in `dir`: `{ ca: PEM text, cert: path, key: path }`.
 */
function makeCerts(dir, name) {
  const openssl = (...args) => execFileSync('openssl', args, { cwd: dir, stdio: ['ignore', 'ignore', 'pipe'] });
  const ec = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes'];
  openssl('req', '-x509', '-days', '2', '-subj', `/CN=spoor edge e2e ${name} CA`, ...ec, '-keyout', `${name}-ca.key`, '-out', `${name}-ca.pem`);
  writeFileSync(join(dir, `${name}.ext`), 'subjectAltName=DNS:localhost,IP:127.0.0.1\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n');
  openssl('req', '-subj', '/CN=localhost', ...ec, '-keyout', `${name}.key`, '-out', `${name}.csr`);
  openssl('x509', '-req', '-in', `${name}.csr`, '-CA', `${name}-ca.pem`, '-CAkey', `${name}-ca.key`, '-CAcreateserial', '-days', '2', '-extfile', `${name}.ext`, '-out', `${name}.pem`);
  return { ca: readFileSync(join(dir, `${name}-ca.pem`), 'utf8'), cert: join(dir, `${name}.pem`), key: join(dir, `${name}.key`) };
}

/** GET over HTTPS trusting `ca` only: `{ status, body }`. */
function httpsGet(url, ca) {
  return new Promise((resolve, reject) => {
    https
      .get(url, { ca, agent: false }, (res) => {
        const chunks = [];
        res.on('data', (c) => chunks.push(c));
        res.on('end', () => resolve({ status: res.statusCode, body: Buffer.concat(chunks).toString('utf8') }));
        res.on('error', reject);
      })
      .on('error', reject);
  });
}

/**
 * Starts the daemon with TLS on every listener from `certs` (default: the trusted CA's);
 * `otlpPort` reuses a port (restart).
 */
async function startDaemon(otlpPort, certs = trusted) {
  const ports = {};
  for (const k of ['grpc', 'query', 'admin', 'compact', 'binary', 'jhttp', 'jgrpc', 'zipkin', 'sampling']) ports[k] = await freePort();
  ports.http = otlpPort ?? (await freePort());
  const hp = (p) => `127.0.0.1:${p}`;
  const proc = spawn(SPOOR, [
    'all-in-one', '--storage', 'memory', '--batch.max-age', '20ms',
    '--otlp.grpc.host-port', hp(ports.grpc), '--otlp.http.host-port', hp(ports.http),
    '--query.http.host-port', hp(ports.query), '--admin.http.host-port', hp(ports.admin),
    '--jaeger.thrift-compact.host-port', hp(ports.compact), '--jaeger.thrift-binary.host-port', hp(ports.binary),
    '--jaeger.thrift-http.host-port', hp(ports.jhttp), '--jaeger.grpc.host-port', hp(ports.jgrpc),
    '--zipkin.http.host-port', hp(ports.zipkin), '--sampling.http.host-port', hp(ports.sampling),
    '--tls.cert-file', certs.cert, '--tls.key-file', certs.key,
  ], { stdio: ['ignore', 'pipe', 'pipe'] });
  proc.stdout.on('data', (d) => (daemonLog += d));
  proc.stderr.on('data', (d) => (daemonLog += d));
  const query = `https://127.0.0.1:${ports.query}`;
  await waitFor(async () => (await httpsGet(`${query}/api/services`, certs.ca)).status === 200, 'the query API');
  return { proc, query, otlp: ports.http, certs };
}

async function stopDaemon(d = daemon) {
  const { proc } = d;
  if (proc.exitCode !== null || proc.signalCode !== null) return;
  const exited = new Promise((r) => proc.once('exit', r));
  proc.kill('SIGKILL');
  await exited;
}

/** Spans of trace `id` the daemon `d` has, as its query API answers (over HTTPS). */
async function traceSpans(id, d = daemon) {
  const r = await httpsGet(`${d.query}/api/traces/${id}`, d.certs.ca);
  if (r.status !== 200) return [];
  return JSON.parse(r.body).data?.[0]?.spans ?? [];
}

// --- a minimal OTLP protobuf encoder (ExportTraceServiceRequest) -----------------------------
const varint = (n) => {
  const out = [];
  while (n > 127) { out.push((n & 127) | 128); n = Math.floor(n / 128); }
  out.push(n);
  return out;
};
const field = (no, bytes) => [...varint((no << 3) | 2), ...varint(bytes.length), ...bytes];
const str = (no, s) => field(no, [...Buffer.from(s, 'utf8')]);
const fixed64 = (no, big) => {
  const b = Buffer.alloc(8);
  b.writeBigUInt64LE(big);
  return [...varint((no << 3) | 1), ...b];
};
/** One resource (`service`) with `n` spans of trace `traceHex`. */
function otlpBody(service, traceHex, n) {
  const now = BigInt(Date.now()) * 1_000_000n;
  const spans = [];
  for (let i = 0; i < n; i++) {
    const sid = randomBytes(8);
    spans.push(field(2, [
      ...field(1, [...Buffer.from(traceHex, 'hex')]), ...field(2, [...sid]),
      ...str(5, `op-${i}`), ...fixed64(7, now + BigInt(i) * 1000n), ...fixed64(8, now + BigInt(i) * 1000n + 500_000n),
    ]));
  }
  const attr = field(1, [...str(1, 'service.name'), ...field(2, str(1, service))]);
  const rs = field(1, [...field(1, attr), ...field(2, spans.flat())]);
  return new Uint8Array(rs);
}
const newTraceId = () => randomBytes(16).toString('hex');

async function post(path, body, headers = {}, worker = edge) {
  return fetch(`${worker}${path}`, { method: 'POST', body, headers: { 'content-type': 'application/x-protobuf', ...headers } });
}
const auth = { authorization: `Bearer ${TOKEN}` };
async function stats(worker = edge) {
  const r = await fetch(`${worker}/stats`, { headers: auth });
  assert.equal(r.status, 200, await r.clone().text());
  return r.json();
}

/**
 * Miniflare options for the built worker forwarding to the daemon's OTLP/HTTP port over TLS.
 * The worker's outbound fetches go through a workerd `Network` service that may reach loopback
 * addresses only and trusts exactly `ca` (`trustBrowserCas` stays false): what workerd's
 * default `internet` service would do with NODE_EXTRA_CA_CERTS, without the public CAs.
 */
async function workerOptions(collectorPort, ca) {
  return {
    host: '127.0.0.1',
    port: await freePort(),
    modules: true,
    modulesRoot: BUILD,
    scriptPath: join(BUILD, 'index.js'),
    modulesRules: [{ type: 'CompiledWasm', include: ['**/*.wasm'] }],
    compatibilityDate: '2025-11-01',
    bindings: {
      COLLECTOR_URL: `https://localhost:${collectorPort}/v1/traces`,
      ALLOWED_ORIGINS: `${ORIGIN},http://127.0.0.1:${pagePort}`,
      SPOOR_TOKENS: `other-token,${TOKEN}`,
      MAX_BODY_BYTES: '65536',
      RETRY_INTERVAL_MS: '300',
      FORWARD_ATTEMPTS: '2',
    },
    durableObjects: { EDGE_BUFFER: { className: 'EdgeBuffer', useSQLite: true } },
    outboundService: { network: { allow: ['local'], tlsOptions: { trustedCertificates: [ca] } } },
  };
}

before(async () => {
  certDir = mkdtempSync(join(tmpdir(), 'spoor-edge-e2e-'));
  trusted = makeCerts(certDir, 'trusted');
  rogue = makeCerts(certDir, 'rogue');
  daemon = await startDaemon();
  pages = createServer((_, res) => res.end('<!doctype html><title>an app</title>'));
  await new Promise((r) => pages.listen(0, '127.0.0.1', r));
  pagePort = pages.address().port;
  mf = new Miniflare(await workerOptions(daemon.otlp, trusted.ca));
  edge = (await mf.ready).toString().replace(/\/$/, '');
});

after(async () => {
  pages?.close();
  await mf?.dispose();
  daemon?.proc.kill('SIGKILL');
  if (certDir) rmSync(certDir, { recursive: true, force: true });
});

test('refusals: 401, 403, 413 and a disallowed origin', async () => {
  const body = otlpBody('refused', newTraceId(), 1);
  let r = await post('/v1/traces', body);
  assert.equal(r.status, 401);
  assert.equal(await r.text(), 'missing authorization header (Bearer token)');
  r = await post('/v1/traces', body, { authorization: 'Bearer not-the-token' });
  assert.equal(r.status, 403);
  assert.equal(await r.text(), 'bearer token is not accepted');
  // The worker answers 413 from Content-Length without reading the body, so the runtime may
  // close the connection while the client is still sending it, and the client then sees the
  // reset instead of the answer (HTTP allows an early answer; undici reports 'fetch failed').
  // Try again until the answer is read; it must be the 413.
  for (let attempt = 1; ; attempt++) {
    try {
      r = await post('/v1/traces', new Uint8Array(70_000), auth);
      break;
    } catch (e) {
      if (attempt >= 10 || !(e instanceof TypeError)) throw e;
    }
  }
  assert.equal(r.status, 413);
  assert.equal(await r.text(), 'body of 70000 bytes is over the limit of 65536 bytes');
  r = await post('/v1/traces', body, { ...auth, origin: 'https://evil.example' });
  assert.equal(r.status, 403);
  assert.equal(await r.text(), 'origin "https://evil.example" is not allowed (see ALLOWED_ORIGINS)');
  r = await fetch(`${edge}/v1/traces`, { method: 'OPTIONS', headers: { origin: 'https://evil.example', 'access-control-request-method': 'POST' } });
  assert.equal(r.status, 403);
  r = await post('/v1/traces', new Uint8Array([0xff, 0xff, 0xff]), auth);
  assert.equal(r.status, 400);
  assert.match(await r.text(), /^bad body: malformed protobuf/);
});

test('the OpenTelemetry JS SDK sends browser-style through CORS; the daemon has the trace', async () => {
  // What a browser does before a cross-origin POST with an Authorization header.
  const pre = await fetch(`${edge}/v1/traces`, {
    method: 'OPTIONS',
    headers: { origin: ORIGIN, 'access-control-request-method': 'POST', 'access-control-request-headers': 'authorization,content-type' },
  });
  assert.equal(pre.status, 204);
  assert.equal(pre.headers.get('access-control-allow-origin'), ORIGIN);
  assert.match(pre.headers.get('access-control-allow-headers'), /authorization/);

  const exporter = new OTLPTraceExporter({ url: `${edge}/v1/traces`, headers: { ...auth, Origin: ORIGIN } });
  const provider = new BasicTracerProvider({
    resource: resourceFromAttributes({ 'service.name': 'edge-e2e-browser' }),
    spanProcessors: [new SimpleSpanProcessor(exporter)],
  });
  const tracer = provider.getTracer('e2e');
  const root = tracer.startSpan('page load');
  const traceId = root.spanContext().traceId;
  const { trace, context } = await import('@opentelemetry/api');
  const child = tracer.startSpan('fetch /api/cart', {}, trace.setSpan(context.active(), root));
  child.end();
  root.end();
  await provider.forceFlush();
  await provider.shutdown();
  const spans = await waitFor(async () => {
    const s = await traceSpans(traceId);
    return s.length === 2 && s;
  }, `trace ${traceId} in the daemon`);
  assert.deepEqual(spans.map((s) => s.operationName).sort(), ['fetch /api/cart', 'page load']);
});

test('a real browser (Chromium) sends through CORS from an allowed origin and is stopped from another', async () => {
  const browser = await chromium.launch({
    executablePath: CHROMIUM,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--no-first-run', '--disable-sync'],
  });
  try {
    const send = (page, id) =>
      page.evaluate(
        async ({ url, token, bytes }) => {
          try {
            // A cross-origin POST with an Authorization header: the browser preflights it and
            // hands the answer to the page only if the worker's CORS headers allow this origin.
            const r = await fetch(url, {
              method: 'POST',
              headers: { 'content-type': 'application/x-protobuf', authorization: `Bearer ${token}` },
              body: new Uint8Array(bytes),
            });
            return r.status;
          } catch {
            return 'blocked';
          }
        },
        { url: `${edge}/v1/traces`, token: TOKEN, bytes: Array.from(otlpBody('edge-e2e-chromium', id, 3)) },
      );
    const allowed = await browser.newPage();
    await allowed.goto(`http://127.0.0.1:${pagePort}/`);
    const id = newTraceId();
    assert.equal(await send(allowed, id), 200);
    await waitFor(async () => (await traceSpans(id)).length === 3, `trace ${id} from Chromium in the daemon`);
    // Same page, another origin (localhost is not in ALLOWED_ORIGINS): the preflight is refused.
    const other = await browser.newPage();
    await other.goto(`http://localhost:${pagePort}/`);
    const refused = newTraceId();
    assert.equal(await send(other, refused), 'blocked');
    await new Promise((r) => setTimeout(r, 500));
    assert.equal((await traceSpans(refused)).length, 0);
  } finally {
    await browser.close();
  }
});

test('plain OTLP protobuf is forwarded with the same trace id; stats count it', async () => {
  const id = newTraceId();
  const r = await post('/v1/traces', otlpBody('edge-e2e-plain', id, 5), {
    ...auth,
    traceparent: `00-${id}-00f067aa0ba902b7-01`,
  });
  assert.equal(r.status, 200, await r.clone().text());
  assert.equal(r.headers.get('spoor-context'), `00-${id}-00f067aa0ba902b7-01`);
  await waitFor(async () => (await traceSpans(id)).length === 5, `trace ${id} in the daemon`);
  const s = await waitFor(async () => {
    const s = await stats();
    return s.forwarded >= 7 && s;
  }, 'the forwarded counter');
  assert.equal(s.accepted, s.forwarded);
  assert.equal(s.buffer.spans, 0);
});

test('collector down: the worker buffers in its Durable Object and delivers when it is back', async () => {
  const port = daemon.otlp;
  const before = await stats();
  await stopDaemon();
  const ids = [newTraceId(), newTraceId(), newTraceId()];
  for (const id of ids) {
    const r = await post('/v1/traces', otlpBody('edge-e2e-buffered', id, 4), auth);
    assert.equal(r.status, 200, await r.clone().text());
    assert.equal(r.headers.get('spoor-buffered'), '4');
  }
  const held = await stats();
  assert.equal(held.buffer.spans, 12);
  assert.equal(held.buffer.batches, 3);
  assert.equal(held.buffered - before.buffered, 12);
  assert.ok(held.buffer.bytes > 0 && held.buffer.bytes <= held.buffer.max_bytes);

  daemon = await startDaemon(port); // same port: the worker's COLLECTOR_URL is unchanged
  const drained = await waitFor(async () => {
    const s = await stats();
    return s.buffer.spans === 0 && s;
  }, 'the buffer to drain');
  assert.equal(drained.forwarded - held.forwarded, 12);
  assert.equal(drained.dropped, 0);
  for (const id of ids) {
    await waitFor(async () => (await traceSpans(id)).length === 4, `buffered trace ${id} in the daemon`);
  }
});

test('a collector with a certificate from an untrusted CA gets nothing; the worker buffers, says why, and delivers once the certificate is trusted', async () => {
  // Another daemon on its own ports, presenting a certificate for the same names from another CA.
  let collector = await startDaemon(undefined, rogue);
  let runtime = ''; // workerd's stdout and stderr: the worker's console and workerd's own errors
  const mf2 = new Miniflare({
    ...(await workerOptions(collector.otlp, trusted.ca)),
    handleRuntimeStdio: (stdout, stderr) => {
      stdout.on('data', (d) => (runtime += d));
      stderr.on('data', (d) => (runtime += d));
    },
  });
  try {
    const worker = (await mf2.ready).toString().replace(/\/$/, '');
    const id = newTraceId();
    const r = await post('/v1/traces', otlpBody('edge-e2e-untrusted', id, 3), auth, worker);
    assert.equal(r.status, 200, await r.clone().text());
    assert.equal(r.headers.get('spoor-buffered'), '3', 'two refused tries, then the Durable Object holds the batch');

    // The buffer's alarm retries every 300 ms: wait for two more refusals, each logged.
    const refusals = () => [...runtime.matchAll(
      /edge: collector (https:\/\/localhost:\d+\/v1\/traces) did not take a batch of \d+ bytes after \d+ tr(?:y|ies): Error: internal error; reference = (\w+)/g,
    )];
    await waitFor(() => refusals().length >= 3, `three logged refusals\n${runtime.slice(-3000)}`);
    const held = await stats(worker);
    assert.equal(held.forwarded, 0);
    assert.equal(held.buffered, 3);
    assert.equal(held.buffer.spans, 3);
    assert.equal(held.dropped, 0);
    assert.equal((await traceSpans(id, collector)).length, 0, 'the collector with the untrusted certificate has nothing');
    // Each refusal is workerd's certificate check: the error reference the worker logged is the
    // one workerd's own log gives "TLS peer's certificate is not trusted" under.
    const lines = runtime.split('\n');
    for (const [, url, ref] of refusals()) {
      assert.equal(url, `https://localhost:${collector.otlp}/v1/traces`);
      const at = lines.findIndex((l) => l.includes(`wdErrId = ${ref}`));
      assert.ok(at > 0, `workerd logged error ${ref}\n${runtime.slice(-3000)}`);
      assert.match(lines[at - 1], /TLS peer's certificate is not trusted/);
    }

    // The same port with a certificate from the trusted CA: the held batch is delivered.
    await stopDaemon(collector);
    collector = await startDaemon(collector.otlp, trusted);
    const drained = await waitFor(async () => {
      const s = await stats(worker);
      return s.buffer.spans === 0 && s;
    }, 'the buffer to drain to the trusted collector');
    assert.equal(drained.forwarded, 3);
    assert.equal(drained.dropped, 0);
    await waitFor(async () => (await traceSpans(id, collector)).length === 3, `trace ${id} in the trusted collector`);
  } finally {
    await mf2.dispose();
    await stopDaemon(collector);
  }
});
