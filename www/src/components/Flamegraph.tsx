// The flamegraph (icicle) of a trace, drawn on a canvas so 100,000 spans stay fast: y = depth,
// x = time (each span where it ran) or aggregated self time (spans merged by their
// service/operation call path, each node as wide as the self time of its subtree). Click a node
// to zoom to it; colours are per service.
import { useEffect, useMemo, useRef, useState, type MouseEvent } from 'react';
import { fmtDuration } from '../format';
import { serviceColor, type SpanTable } from '../spans';

export type FlameMode = 'time' | 'aggregate';

export interface FlameNode {
  /** Left and right edge, in the mode's unit (nanoseconds of time or of self time). */
  x0: number;
  x1: number;
  depth: number;
  service: number;
  operation: number;
  /** Spans merged into the node (1 in time mode). */
  count: number;
  /** Total duration of the merged spans. */
  total: number;
  /** Self time of the merged spans. */
  self: number;
  error: boolean;
  /** The span (time mode) or the first merged span (aggregate mode). */
  span: number;
}

export interface FlameLayout {
  mode: FlameMode;
  /** Nodes per depth, each list sorted by `x0`. */
  levels: FlameNode[][];
  /** Width of the whole graph in the mode's unit. */
  width: number;
}

/** One node per span, where and when it ran. */
export function flameByTime(t: SpanTable): FlameLayout {
  const levels: FlameNode[][] = Array.from({ length: t.n ? t.maxDepth + 1 : 0 }, () => []);
  for (let k = 0; k < t.n; k++) {
    const i = t.preorder[k];
    levels[t.depth[i]].push({
      x0: t.start[i],
      x1: t.start[i] + t.duration[i],
      depth: t.depth[i],
      service: t.service[i],
      operation: t.operation[i],
      count: 1,
      total: t.duration[i],
      self: t.self[i],
      error: t.error[i] === 1,
      span: i,
    });
  }
  for (const l of levels) l.sort((a, b) => a.x0 - b.x0);
  return { mode: 'time', levels, width: t.total };
}

/**
 * Spans merged by call path (the service/operation of each ancestor): a node's width is the
 * self time of all spans of its subtree, so children always fit under their parent; children
 * are placed widest first from the parent's left edge.
 */
export function flameByAggregate(t: SpanTable): FlameLayout {
  interface Agg extends FlameNode {
    children: Map<number, Agg>;
    sub: number;
  }
  const roots = new Map<number, Agg>();
  const nodeOf = new Array<Agg>(t.n);
  const made: Agg[] = [];
  const nOps = Math.max(1, t.operations.length);
  for (let k = 0; k < t.n; k++) {
    const i = t.preorder[k];
    const p = t.parent[i];
    const parent = p >= 0 ? nodeOf[p] : undefined;
    const siblings = parent ? parent.children : roots;
    const key = t.service[i] * nOps + t.operation[i];
    let node = siblings.get(key);
    if (!node) {
      node = {
        x0: 0,
        x1: 0,
        depth: parent ? parent.depth + 1 : 0,
        service: t.service[i],
        operation: t.operation[i],
        count: 0,
        total: 0,
        self: 0,
        error: false,
        span: i,
        children: new Map(),
        sub: 0,
      };
      siblings.set(key, node);
      made.push(node);
    }
    node.count++;
    node.total += t.duration[i];
    node.self += t.self[i];
    node.error ||= t.error[i] === 1;
    nodeOf[i] = node;
  }
  // Subtree self time, children before parents (a child is always made after its parent).
  for (let k = made.length - 1; k >= 0; k--) {
    const n = made[k];
    n.sub += n.self;
    for (const c of n.children.values()) n.sub += c.sub;
  }
  const levels: Agg[][] = [];
  const place = (list: Iterable<Agg>, x: number) => {
    const sorted = [...list].sort((a, b) => b.sub - a.sub);
    for (const n of sorted) {
      n.x0 = x;
      n.x1 = x + n.sub;
      (levels[n.depth] ??= []).push(n);
      x = n.x1;
    }
  };
  // Level by level (no recursion): call paths can be as deep as the trace.
  place(roots.values(), 0);
  for (let d = 0; d < levels.length; d++)
    for (const n of levels[d]) if (n.children.size) place(n.children.values(), n.x0);
  for (const l of levels) l.sort((a, b) => a.x0 - b.x0);
  let width = 0;
  for (const r of roots.values()) width += r.sub;
  return {
    mode: 'aggregate',
    levels: levels.map((l) => l.map(({ children: _c, sub: _s, ...rest }) => rest)),
    width: Math.max(1, width),
  };
}

/** The node at `x` (in the layout's unit) on level `depth`: the last one starting at or before
 * `x` that still covers it. */
export function hitTest(layout: FlameLayout, depth: number, x: number): FlameNode | null {
  const l = layout.levels[depth];
  if (!l || l.length === 0) return null;
  let lo = 0;
  let hi = l.length - 1;
  let found = -1;
  while (lo <= hi) {
    const mid = (lo + hi) >> 1;
    if (l[mid].x0 <= x) {
      found = mid;
      lo = mid + 1;
    } else hi = mid - 1;
  }
  // Time mode may overlap siblings (concurrent spans): look back a little for a covering one.
  for (let k = found; k >= 0 && k > found - 64; k--) if (l[k].x1 >= x) return l[k];
  return null;
}

const ROW = 18;
const VIEW_HEIGHT = 480;

export function Flamegraph({ table, onSelect }: { table: SpanTable; onSelect?: (span: number) => void }) {
  const [mode, setMode] = useState<FlameMode>('time');
  const [zoom, setZoom] = useState<FlameNode | null>(null);
  const [hover, setHover] = useState<FlameNode | null>(null);
  const [scrollTop, setScrollTop] = useState(0);
  const [width, setWidth] = useState(1000);
  const canvas = useRef<HTMLCanvasElement>(null);
  const box = useRef<HTMLDivElement>(null);
  const layout = useMemo(() => (mode === 'time' ? flameByTime(table) : flameByAggregate(table)), [table, mode]);
  const full = layout.levels.length * ROW;
  const viewH = Math.min(full, VIEW_HEIGHT) || ROW;
  const x0 = zoom ? zoom.x0 : 0;
  const x1 = zoom ? Math.max(zoom.x1, zoom.x0 + 1) : layout.width;

  useEffect(() => {
    const el = box.current;
    if (!el) return;
    const measure = () => el.clientWidth > 0 && setWidth(el.clientWidth);
    measure();
    if (typeof ResizeObserver === 'undefined') return;
    const ro = new ResizeObserver(measure);
    ro.observe(el);
    return () => ro.disconnect();
  }, []);

  useEffect(() => {
    const c = canvas.current;
    const ctx = c?.getContext?.('2d');
    if (!c || !ctx) return;
    const dpr = window.devicePixelRatio || 1;
    c.width = Math.round(width * dpr);
    c.height = Math.round(viewH * dpr);
    ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
    ctx.clearRect(0, 0, width, viewH);
    ctx.font = '11px system-ui, sans-serif';
    ctx.textBaseline = 'middle';
    const scale = width / (x1 - x0);
    const first = Math.floor(scrollTop / ROW);
    const last = Math.min(layout.levels.length, Math.ceil((scrollTop + viewH) / ROW));
    for (let d = first; d < last; d++) {
      const y = d * ROW - scrollTop;
      let lastPx = -1;
      for (const n of layout.levels[d]) {
        if (n.x1 < x0 || n.x0 > x1) continue;
        const l = (n.x0 - x0) * scale;
        const w = (n.x1 - n.x0) * scale;
        // Below a pixel, one rectangle per pixel column is enough.
        if (w < 1) {
          const px = Math.floor(l);
          if (px === lastPx) continue;
          lastPx = px;
        }
        ctx.fillStyle = n.error ? '#e5534b' : serviceColor(table.services[n.service]);
        ctx.fillRect(l, y + 1, Math.max(1, w - 0.5), ROW - 2);
        if (w > 40) {
          const label = `${table.services[n.service]}: ${table.operations[n.operation]}`;
          ctx.fillStyle = '#111';
          ctx.save();
          ctx.beginPath();
          ctx.rect(Math.max(l, 0), y, Math.min(w, width) - 4, ROW);
          ctx.clip();
          ctx.fillText(label, Math.max(l, 0) + 3, y + ROW / 2);
          ctx.restore();
        }
      }
    }
  }, [layout, table, width, viewH, scrollTop, x0, x1]);

  /** The node under the pointer. */
  const at = (e: MouseEvent<HTMLCanvasElement>) => {
    const r = e.currentTarget.getBoundingClientRect();
    const w = r.width || width;
    const depth = Math.floor((e.clientY - r.top + scrollTop) / ROW);
    return hitTest(layout, depth, x0 + ((e.clientX - r.left) / w) * (x1 - x0));
  };
  const name = (n: FlameNode) => `${table.services[n.service]}: ${table.operations[n.operation]}`;

  return (
    <div className="flame" data-testid="flamegraph">
      <div className="toolbar">
        <label>
          x ={' '}
          <select
            value={mode}
            aria-label="Flamegraph mode"
            onChange={(e) => {
              setMode(e.target.value as FlameMode);
              setZoom(null);
            }}
          >
            <option value="time">time</option>
            <option value="aggregate">self time, merged by call path</option>
          </select>
        </label>
        {zoom && (
          <>
            <span data-testid="flame-zoom">Zoomed to {name(zoom)}</span>
            <button onClick={() => setZoom(null)}>Reset zoom</button>
          </>
        )}
        <span className="spacer" />
        <span className="muted small" data-testid="flame-hover">
          {hover
            ? `${name(hover)} · ${hover.count > 1 ? `${hover.count} spans · ` : ''}total ${fmtDuration(hover.total)} · self ${fmtDuration(hover.self)}`
            : `${table.n} spans · click a node to zoom`}
        </span>
      </div>
      <div
        className="flame-scroll"
        ref={box}
        style={{ height: viewH }}
        onScroll={(e) => setScrollTop(e.currentTarget.scrollTop)}
      >
        <div style={{ height: full, position: 'relative' }}>
          <canvas
            ref={canvas}
            className="flame-canvas"
            data-testid="flame-canvas"
            style={{ top: scrollTop, height: viewH, width: '100%' }}
            onMouseMove={(e) => setHover(at(e))}
            onMouseLeave={() => setHover(null)}
            onClick={(e) => {
              const n = at(e);
              if (!n) return;
              setZoom(n);
              onSelect?.(n.span);
            }}
          />
        </div>
      </div>
    </div>
  );
}
