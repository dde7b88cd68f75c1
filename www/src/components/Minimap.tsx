// The trace minimap: every span of the trace drawn in a thin canvas strip (x = time, y = display
// order), with a viewport that sets the time range the timeline shows. Drag on the strip to
// select a range, drag the viewport to pan it (once zoomed), drag its edges to resize it, wheel
// to zoom.
import { useEffect, useRef, type MouseEvent as ReactMouseEvent, type WheelEvent } from 'react';
import { serviceRgb, type SpanTable } from '../spans';

/** A time range as fractions of the trace window, `0 <= start < end <= 1`. */
export type Range = [number, number];

export const FULL: Range = [0, 1];
/** The narrowest range the viewport can be made (a fraction of the trace). */
const MIN_WIDTH = 0.0005;

/** Keeps a range inside [0, 1] and at least MIN_WIDTH wide, moving rather than shrinking it. */
export function clampRange([a, b]: Range): Range {
  let s = Math.min(a, b);
  let e = Math.max(a, b);
  const w = Math.min(1, Math.max(MIN_WIDTH, e - s));
  if (s < 0) s = 0;
  if (s + w > 1) s = 1 - w;
  e = s + w;
  return [s, e];
}

/** The range zoomed by `factor` (< 1 zooms in) around fraction `at` of the trace. */
export function zoomRange([s, e]: Range, at: number, factor: number): Range {
  const w = (e - s) * factor;
  const k = e - s > 0 ? (at - s) / (e - s) : 0.5;
  return clampRange([at - k * w, at - k * w + w]);
}

/**
 * Paints every span into a `w` x `h` pixel image: x = time, y = display order (many spans share
 * a pixel row in a big trace), a span at least one pixel wide, one native `fill` per pixel row.
 */
export function drawSpans(ctx: CanvasRenderingContext2D, w: number, h: number, t: SpanTable): void {
  const img = ctx.createImageData(w, h);
  const px = new Uint32Array(img.data.buffer);
  const colours = t.services.map((name) => {
    const [r, g, b] = serviceRgb(name);
    return ((255 << 24) | (b << 16) | (g << 8) | r) >>> 0; // RGBA bytes, little-endian
  });
  const { n, preorder, start, duration, service, total } = t;
  for (let row = 0; row < n; row++) {
    const i = preorder[row];
    const y0 = Math.floor((row / n) * h);
    const y1 = Math.max(y0 + 1, Math.floor(((row + 1) / n) * h));
    const x0 = Math.min(w - 1, Math.floor((start[i] / total) * w));
    const x1 = Math.max(x0 + 1, Math.min(w, Math.ceil(((start[i] + duration[i]) / total) * w)));
    for (let y = y0; y < y1; y++) px.fill(colours[service[i]], y * w + x0, y * w + x1);
  }
  ctx.putImageData(img, 0, 0);
}

interface Drag {
  kind: 'new' | 'pan' | 'left' | 'right';
  x0: number;
  r0: Range;
}

export function Minimap({
  table,
  range,
  onRange,
  height = 48,
}: {
  table: SpanTable;
  range: Range;
  onRange: (r: Range) => void;
  height?: number;
}) {
  const canvas = useRef<HTMLCanvasElement>(null);
  const strip = useRef<HTMLDivElement>(null);

  useEffect(() => {
    const c = canvas.current;
    const ctx = c?.getContext?.('2d');
    if (!c || !ctx) return;
    const dpr = window.devicePixelRatio || 1;
    c.width = Math.max(1, Math.round((c.clientWidth || 800) * dpr));
    c.height = Math.max(1, Math.round(height * dpr));
    drawSpans(ctx, c.width, c.height, table);
  }, [table, height]);

  /** The fraction of the trace under the pointer. */
  const at = (clientX: number) => {
    const r = strip.current!.getBoundingClientRect();
    return r.width > 0 ? Math.min(1, Math.max(0, (clientX - r.left) / r.width)) : 0;
  };

  const stop = useRef<(() => void) | null>(null);
  const start = (kind: Drag['kind']) => (e: ReactMouseEvent) => {
    if (e.button !== 0) return;
    e.preventDefault();
    e.stopPropagation();
    const d: Drag = { kind, x0: at(e.clientX), r0: range };
    const move = (ev: MouseEvent) => {
      const x = at(ev.clientX);
      const dx = x - d.x0;
      if (d.kind === 'new') onRange(clampRange([d.x0, x]));
      else if (d.kind === 'pan') onRange(clampRange([d.r0[0] + dx, d.r0[1] + dx]));
      else if (d.kind === 'left') onRange(clampRange([Math.min(x, d.r0[1] - MIN_WIDTH), d.r0[1]]));
      else onRange(clampRange([d.r0[0], Math.max(x, d.r0[0] + MIN_WIDTH)]));
    };
    const up = (ev: MouseEvent) => {
      stop.current?.();
      // A click without a drag on the strip centres the viewport there.
      if (d.kind === 'new' && Math.abs(at(ev.clientX) - d.x0) < 0.002) {
        const w = d.r0[1] - d.r0[0];
        onRange(w >= 1 ? d.r0 : clampRange([d.x0 - w / 2, d.x0 + w / 2]));
      }
    };
    stop.current?.();
    window.addEventListener('mousemove', move);
    window.addEventListener('mouseup', up);
    stop.current = () => {
      window.removeEventListener('mousemove', move);
      window.removeEventListener('mouseup', up);
      stop.current = null;
    };
  };
  useEffect(() => () => stop.current?.(), []);
  const onWheel = (e: WheelEvent) => {
    if (e.deltaY === 0) return;
    onRange(zoomRange(range, at(e.clientX), e.deltaY > 0 ? 1.25 : 0.8));
  };

  const [s, en] = range;
  return (
    <div className="minimap" data-testid="minimap">
      <div className="mm-strip" ref={strip} style={{ height }} onMouseDown={start('new')} onWheel={onWheel}>
        <canvas ref={canvas} className="mm-canvas" style={{ height }} />
        <div className="mm-shade" style={{ left: 0, width: `${s * 100}%` }} />
        <div className="mm-shade" style={{ left: `${en * 100}%`, right: 0 }} />
        <div
          className="mm-viewport"
          data-testid="minimap-viewport"
          data-start={s.toFixed(4)}
          data-end={en.toFixed(4)}
          aria-label="Minimap viewport"
          style={{ left: `${s * 100}%`, width: `${(en - s) * 100}%` }}
          onMouseDown={start(s > 0 || en < 1 ? 'pan' : 'new')}
        >
          <div className="mm-handle left" data-testid="minimap-left" onMouseDown={start('left')} />
          <div className="mm-handle right" data-testid="minimap-right" onMouseDown={start('right')} />
        </div>
      </div>
      {(s > 0 || en < 1) && (
        <button className="mm-reset" onClick={() => onRange(FULL)}>
          Reset zoom
        </button>
      )}
    </div>
  );
}
