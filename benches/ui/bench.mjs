// The web UI's big-trace benchmark (issue #7): generated 10,000- and 100,000-span traces (Jaeger
// JSON) opened in headless Chromium, measured from "data arrived" to "interactive".
//
//   node benches/ui/bench.mjs [--smoke] [--runs N] [--sizes 10000,100000] [--json out.json]
//
// Two ways in, both served from www/dist by this script (no daemon needed):
//   inspect - the file is picked on the Inspect page; "data arrived" is the input's change
//             event (the bytes are in the browser), so reading, parsing and layout all count.
//   trace   - /trace/<id>, the daemon's trace page; /api/traces/<id> is answered by this script
//             with the same file, as the daemon would; "data arrived" is the response's
//             responseEnd (Resource Timing), so fetching is not counted, parsing is.
// "Interactive" is when the timeline has rendered its first rows, a scroll to the middle of the
// trace has rendered the rows there, and a click on one of them has shown its span detail.
// Each run uses a fresh browser context; the median of the runs is reported. Goals: <= 1 s for
// 10k spans, <= 3 s for 100k. `--smoke` (make ui-test) runs a 500-span trace once and asserts no
// time. Needs `make ui` and tests/ui's node_modules (playwright-core) and /usr/bin/chromium.
import fs from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium } from '../../tests/ui/node_modules/playwright-core/index.mjs';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const DIST = path.join(ROOT, 'www/dist');
const CHROMIUM = process.env.CHROMIUM ?? '/usr/bin/chromium';
const GOALS_MS = { 10000: 1000, 100000: 3000 };

function arg(name, dflt) {
  const i = process.argv.indexOf(name);
  return i >= 0 ? process.argv[i + 1] : dflt;
}
const smoke = process.argv.includes('--smoke');
const runs = smoke ? 1 : Number(arg('--runs', '5'));
const sizes = smoke ? [500] : arg('--sizes', '10000,100000').split(',').map(Number);
const jsonOut = arg('--json', null);

/** A deterministic PRNG (mulberry32), so every run opens the same trace. */
function rng(seed) {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/**
 * A Jaeger query-API JSON document with one trace of `n` spans over 30 services and 300
 * operations: each span's parent is one of the previous spans near it (depth ~10-20), children
 * start inside their parent and end before it; tags on every span, a log on every tenth, errors
 * on 2%.
 */
export function jaegerTrace(n, seed = 7) {
  const r = rng(seed);
  const traceID = (0xbe9c000000000000n + BigInt(n)).toString(16).padStart(32, '0');
  const t0 = 1767225600000000; // microseconds
  const spans = new Array(n);
  const start = new Float64Array(n);
  const dur = new Float64Array(n);
  for (let i = 0; i < n; i++) {
    let parent = -1;
    if (i === 0) {
      start[0] = 0;
      dur[0] = 20_000_000;
    } else {
      parent = Math.max(0, Math.floor(i / 3) - Math.floor(r() * 3));
      start[i] = start[parent] + r() * dur[parent] * 0.6;
      dur[i] = Math.max(1, dur[parent] * (0.05 + r() * 0.35));
    }
    const svc = i === 0 ? 0 : Math.floor(r() * 30);
    const spanID = (i + 1).toString(16).padStart(16, '0');
    const s = {
      traceID,
      spanID,
      operationName: `op-${svc}-${Math.floor(r() * 10)}`,
      references: parent < 0 ? [] : [{ refType: 'CHILD_OF', traceID, spanID: (parent + 1).toString(16).padStart(16, '0') }],
      startTime: t0 + Math.round(start[i]),
      duration: Math.round(dur[i]),
      tags: [
        { key: 'span.kind', type: 'string', value: i % 2 ? 'client' : 'server' },
        { key: 'http.status_code', type: 'int64', value: r() < 0.02 ? 500 : 200 },
        { key: 'component', type: 'string', value: 'bench' },
      ],
      logs: i % 10 === 0 ? [{ timestamp: t0 + Math.round(start[i]), fields: [{ key: 'event', type: 'string', value: 'retry' }] }] : [],
      processID: `p${svc}`,
      warnings: null,
    };
    if (s.tags[1].value === 500) s.tags.push({ key: 'error', type: 'bool', value: true });
    spans[i] = s;
  }
  const processes = {};
  for (let k = 0; k < 30; k++) processes[`p${k}`] = { serviceName: `service-${k}`, tags: [{ key: 'hostname', type: 'string', value: `host-${k}` }] };
  return { traceID, body: JSON.stringify({ data: [{ traceID, spans, processes, warnings: null }], total: 0, limit: 0, offset: 0, errors: null }) };
}

const TYPES = { '.html': 'text/html', '.js': 'text/javascript', '.css': 'text/css', '.wasm': 'application/wasm', '.svg': 'image/svg+xml' };

/** www/dist, index.html for client routes, and the trace API from memory. */
function server(traces) {
  return http.createServer((req, res) => {
    const url = new URL(req.url, 'http://x');
    const m = /^\/api\/traces\/([0-9a-f]+)$/.exec(url.pathname);
    if (m && traces.has(m[1])) {
      res.writeHead(200, { 'Content-Type': 'application/json' }).end(traces.get(m[1]));
      return;
    }
    if (url.pathname === '/api/ui-config') {
      res.writeHead(200, { 'Content-Type': 'application/json' }).end('{}');
      return;
    }
    if (url.pathname.startsWith('/api/')) {
      res.writeHead(404).end();
      return;
    }
    let file = path.join(DIST, path.normalize(url.pathname).replace(/^(\.\.[/\\])+/, ''));
    if (!file.startsWith(DIST) || !fs.existsSync(file) || fs.statSync(file).isDirectory()) file = path.join(DIST, 'index.html');
    res.writeHead(200, { 'Content-Type': TYPES[path.extname(file)] ?? 'application/octet-stream' });
    fs.createReadStream(file).pipe(res);
  });
}

/**
 * In the page: waits for the first timeline rows, scrolls to the middle, waits for the rows
 * there, clicks one and waits for its span detail. Answers performance.now() at each step.
 */
const INTERACT = `window.__benchInteract = async () => {
  const frame = () => new Promise((r) => requestAnimationFrame(() => r()));
  const until = async (f) => { for (;;) { const v = f(); if (v) return v; await frame(); } };
  const scroller = await until(() => document.querySelector('[data-testid=span-row]') && document.querySelector('[data-testid=timeline-scroll]'));
  const rows = performance.now();
  const target = Math.floor(scroller.scrollHeight / 2 / 24) * 24;
  scroller.scrollTop = target;
  const row = await until(() => [...document.querySelectorAll('[data-testid=span-row]')].find((r) => r.offsetTop >= target));
  const scrolled = performance.now();
  row.click();
  await until(() => row.isConnected && row.classList.contains('selected') && document.querySelector('[data-testid=span-detail] h3'));
  return { rows, scrolled, done: performance.now() };
};`;

async function measureInspect(browser, base, name, body) {
  const ctx = await browser.newContext();
  const p = await ctx.newPage();
  await p.addInitScript(INTERACT);
  await p.goto(`${base}/inspect`);
  await p.locator('input[aria-label="Trace file"]').waitFor();
  // The page loads the wasm module on the first file, so that load is counted too.
  await p.evaluate(() => {
    document.addEventListener('change', () => (window.__t0 = performance.now()), { capture: true, once: true });
  });
  await p.setInputFiles('input[aria-label="Trace file"]', { name, mimeType: 'application/json', buffer: Buffer.from(body) });
  await p.locator('[data-testid=result] a.result-title').first().waitFor({ timeout: 120_000 });
  const listed = await p.evaluate(() => performance.now());
  await p.locator('[data-testid=result] a.result-title').first().click();
  const t = await p.evaluate(() => window.__benchInteract());
  const t0 = await p.evaluate(() => window.__t0);
  await ctx.close();
  return { interactive: t.done - t0, firstRows: t.rows - t0, listed: listed - t0 };
}

async function measureTrace(browser, base, traceID) {
  const ctx = await browser.newContext();
  const p = await ctx.newPage();
  await p.addInitScript(INTERACT + 'window.__benchDone = window.__benchInteract();');
  await p.goto(`${base}/trace/${traceID}`);
  const t = await p.evaluate(() => window.__benchDone);
  const t0 = await p.evaluate((id) => performance.getEntriesByType('resource').find((e) => e.name.endsWith(`/api/traces/${id}`)).responseEnd, traceID);
  await ctx.close();
  return { interactive: t.done - t0, firstRows: t.rows - t0 };
}

const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};

async function main() {
  if (!fs.existsSync(path.join(DIST, 'index.html'))) throw new Error('www/dist is missing: run `make ui`');
  const traces = new Map();
  const made = sizes.map((n) => {
    const t = jaegerTrace(n);
    traces.set(t.traceID, t.body);
    return { n, ...t };
  });
  const srv = server(traces);
  await new Promise((r) => srv.listen(0, '127.0.0.1', r));
  const base = `http://127.0.0.1:${srv.address().port}`;
  const browser = await chromium.launch({
    executablePath: CHROMIUM,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--no-first-run', '--disable-sync'],
  });
  const results = [];
  let missed = false;
  try {
    for (const { n, traceID, body } of made) {
      for (const way of ['inspect', 'trace']) {
        const samples = [];
        for (let k = 0; k < runs; k++) {
          samples.push(way === 'inspect' ? await measureInspect(browser, base, `bench-${n}.json`, body) : await measureTrace(browser, base, traceID));
        }
        const med = median(samples.map((s) => s.interactive));
        const goal = GOALS_MS[n];
        const ok = smoke || goal === undefined || med <= goal;
        missed ||= !ok;
        const row = {
          spans: n,
          page: way,
          file_mib: +(body.length / 1048576).toFixed(1),
          runs,
          median_interactive_ms: Math.round(med),
          median_first_rows_ms: Math.round(median(samples.map((s) => s.firstRows))),
          min_ms: Math.round(Math.min(...samples.map((s) => s.interactive))),
          max_ms: Math.round(Math.max(...samples.map((s) => s.interactive))),
          goal_ms: goal ?? null,
        };
        results.push(row);
        console.log(
          `${String(n).padStart(7)} spans  ${way.padEnd(7)}  ${row.file_mib} MiB  interactive median ${row.median_interactive_ms} ms` +
            ` (min ${row.min_ms}, max ${row.max_ms}, first rows ${row.median_first_rows_ms} ms, ${runs} runs)` +
            (smoke ? '  [smoke: not checked]' : goal ? `  goal <= ${goal} ms: ${ok ? 'met' : 'MISSED'}` : ''),
        );
      }
    }
  } finally {
    await browser.close();
    srv.close();
  }
  if (jsonOut) fs.writeFileSync(jsonOut, JSON.stringify({ date: new Date().toISOString(), chromium: CHROMIUM, results }, null, 2));
  if (missed) {
    console.error('a goal was missed');
    process.exitCode = 1;
  }
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) await main();
