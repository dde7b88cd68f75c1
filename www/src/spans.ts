// Every span of a trace as typed arrays (one call into the browser module), shared by the views
// that draw all spans at once: the minimap, the flamegraph and the trace graph.
import type { TraceSet } from './wasm';

/** Numbers per span in `TraceSet.spanTable(...).data` (see wasm/src/lib.rs). */
const COLS = 8;

export interface SpanTable {
  /** Spans in the trace. */
  n: number;
  services: string[];
  operations: string[];
  /** Span indices in display order (depth-first, children by start time). */
  preorder: Uint32Array;
  /** Parent span index, -1 for a root. */
  parent: Int32Array;
  depth: Uint32Array;
  /** Start, nanoseconds after the trace's start. */
  start: Float64Array;
  duration: Float64Array;
  /** Duration minus the time covered by children. */
  self: Float64Array;
  service: Uint32Array;
  operation: Uint32Array;
  error: Uint8Array;
  /** The trace window: latest end minus earliest start (at least 1). */
  total: number;
  maxDepth: number;
}

const cache = new WeakMap<TraceSet, Map<number, SpanTable>>();

/** The span table of trace `trace` of `set`, built once per set and trace. */
export function spanTable(set: TraceSet, trace: number): SpanTable {
  let per = cache.get(set);
  if (!per) {
    per = new Map();
    cache.set(set, per);
  }
  let t = per.get(trace);
  if (!t) {
    t = buildTable(set, trace);
    per.set(trace, t);
  }
  return t;
}

function buildTable(set: TraceSet, trace: number): SpanTable {
  const raw = set.spanTable(trace) as { services: string[]; operations: string[]; preorder: Uint32Array; data: Float64Array };
  const d = raw.data;
  const n = Math.floor(d.length / COLS);
  const t: SpanTable = {
    n,
    services: raw.services,
    operations: raw.operations,
    preorder: raw.preorder,
    parent: new Int32Array(n),
    depth: new Uint32Array(n),
    start: new Float64Array(n),
    duration: new Float64Array(n),
    self: new Float64Array(n),
    service: new Uint32Array(n),
    operation: new Uint32Array(n),
    error: new Uint8Array(n),
    total: 1,
    maxDepth: 0,
  };
  let end = 0;
  for (let i = 0; i < n; i++) {
    const o = i * COLS;
    t.parent[i] = d[o];
    t.depth[i] = d[o + 1];
    t.start[i] = d[o + 2];
    t.duration[i] = d[o + 3];
    t.self[i] = d[o + 4];
    t.service[i] = d[o + 5];
    t.operation[i] = d[o + 6];
    t.error[i] = d[o + 7];
    end = Math.max(end, d[o + 2] + d[o + 3]);
    t.maxDepth = Math.max(t.maxDepth, d[o + 1]);
  }
  t.total = Math.max(1, end);
  return t;
}

const colorCache = new Map<string, [number, number, number]>();

/** A stable colour per service name as RGB bytes (a hue from a hash of the name). */
export function serviceRgb(name: string): [number, number, number] {
  let c = colorCache.get(name);
  if (c === undefined) {
    let h = 2166136261;
    for (let i = 0; i < name.length; i++) h = Math.imul(h ^ name.charCodeAt(i), 16777619);
    c = hslToRgb((h >>> 0) % 360, 0.62, 0.62);
    colorCache.set(name, c);
  }
  return c;
}

/** A stable colour per service name, as CSS. */
export function serviceColor(name: string): string {
  const [r, g, b] = serviceRgb(name);
  return `rgb(${r}, ${g}, ${b})`;
}

function hslToRgb(h: number, s: number, l: number): [number, number, number] {
  const a = s * Math.min(l, 1 - l);
  const f = (n: number) => {
    const k = (n + h / 30) % 12;
    return Math.round(255 * (l - a * Math.max(-1, Math.min(k - 3, 9 - k, 1))));
  };
  return [f(0), f(8), f(4)];
}
