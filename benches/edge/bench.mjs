// CPU per 100-span batch of the edge worker's request logic (spoor-edge's `handle`, compiled to
// wasm with the worker's profile), timed in Node, plus the gzipped size of the deployed bundle.
// Usage: node bench.mjs <wasm-bindgen nodejs dir> <otlp body file> <worker build dir>
import { readFileSync } from 'node:fs';
import { gzipSync } from 'node:zlib';
import { createRequire } from 'node:module';
import { join, resolve } from 'node:path';

const [pkgDir, bodyFile, buildDir] = process.argv.slice(2);
if (!pkgDir || !bodyFile || !buildDir) {
  console.error('usage: node bench.mjs <pkg dir> <body file> <worker build dir>');
  process.exit(2);
}
const require = createRequire(import.meta.url);
const { edge_handle } = require(join(resolve(pkgDir), 'spoor_edge.js'));
const body = new Uint8Array(readFileSync(bodyFile));

function timeRuns(probability, runs) {
  const times = [];
  for (let i = 0; i < runs; i++) {
    const t0 = process.hrtime.bigint();
    const kept = edge_handle(body, probability);
    const t1 = process.hrtime.bigint();
    if (kept >= 1_000_000) throw new Error(`the worker refused the body: status ${kept - 1_000_000}`);
    times.push(Number(t1 - t0) / 1e6);
  }
  times.sort((a, b) => a - b);
  return { median: times[Math.floor(runs / 2)], p99: times[Math.floor(runs * 0.99)] };
}

const warm = timeRuns(1, 300); // JIT tier-up of the wasm module
void warm;
const runs = 3000;
for (const p of [1, 0.25]) {
  const { median, p99 } = timeRuns(p, runs);
  const kept = edge_handle(body, p);
  console.log(
    `edge handle, 100-span OTLP protobuf batch (${body.length} bytes), probability ${p}: ` +
      `median ${median.toFixed(3)} ms, p99 ${p99.toFixed(3)} ms over ${runs} runs ` +
      `(${kept} spans forwarded; goal <= 2 ms)`,
  );
  if (p === 1 && median > 2) {
    console.error('median CPU per 100-span batch is over the 2 ms goal');
    process.exitCode = 1;
  }
}
const js = readFileSync(join(buildDir, 'index.js'));
const wasm = readFileSync(join(buildDir, 'index_bg.wasm'));
const gz = gzipSync(js, { level: 9 }).length + gzipSync(wasm, { level: 9 }).length;
console.log(
  `edge bundle: ${js.length + wasm.length} bytes raw, ${gz} bytes gzipped ` +
    `(${(gz / 1024).toFixed(0)} KiB; goal <= 1 MiB)`,
);
