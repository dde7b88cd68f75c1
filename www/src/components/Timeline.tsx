// The trace timeline: one row per visible span, virtualised (only the rows in view are asked
// of the browser module and rendered), collapse/expand, find with keyboard next/prev and the
// critical path drawn over the bars; above it the minimap, whose viewport sets the time range
// the bars are drawn in.
import { useEffect, useMemo, useRef, useState, type KeyboardEvent } from 'react';
import type { CriticalPath, Row, TimelineInfo, TraceSet } from '../wasm';
import { fmtDuration } from '../format';
import { spanTable } from '../spans';
import { FULL, Minimap, type Range } from './Minimap';

export const ROW_HEIGHT = 24;
const OVERSCAN = 8;

interface Props {
  set: TraceSet;
  trace: number;
  selected: number | null;
  onSelect: (span: number) => void;
  height?: number;
}

export function Timeline({ set, trace, selected, onSelect, height = 520 }: Props) {
  const [version, setVersion] = useState(0);
  const [scrollTop, setScrollTop] = useState(0);
  const [query, setQuery] = useState('');
  const [hit, setHit] = useState(0);
  const [showCritical, setShowCritical] = useState(true);
  const [range, setRange] = useState<Range>(FULL);
  const table = useMemo(() => spanTable(set, trace), [set, trace]);
  const scroller = useRef<HTMLDivElement>(null);

  const info = useMemo(() => set.timeline(trace) as TimelineInfo, [set, trace]);
  const critical = useMemo(() => set.criticalPath(trace) as CriticalPath, [set, trace]);
  const matches = useMemo(() => (query.trim() ? Array.from(set.search(trace, query.trim())) : []), [set, trace, query]);
  const matchSet = useMemo(() => new Set(matches), [matches]);
  const rowCount = useMemo(() => set.rowCount(trace), [set, trace, version]);

  const first = Math.max(0, Math.floor(scrollTop / ROW_HEIGHT) - OVERSCAN);
  const last = Math.min(rowCount, Math.ceil((scrollTop + height) / ROW_HEIGHT) + OVERSCAN);
  const rows = useMemo(() => set.rows(trace, first, last) as Row[], [set, trace, first, last, version]);

  const window = info.end_unix_nanos - info.start_unix_nanos || 1;
  // Fractions of the trace window -> percent of the bar area under the minimap's range.
  const [r0, r1] = range;
  const pct = (f: number) => `${((f - r0) / (r1 - r0)) * 100}%`;
  const pctW = (f: number) => `${(f / (r1 - r0)) * 100}%`;
  const segmentsBySpan = useMemo(() => {
    const m = new Map<number, { start: number; end: number }[]>();
    for (const s of critical.segments) {
      const l = m.get(s.span) ?? [];
      l.push(s);
      m.set(s.span, l);
    }
    return m;
  }, [critical]);

  const bump = () => setVersion((v) => v + 1);

  /** Makes a span visible (expanding its ancestors) and scrolls it into view. */
  const reveal = (span: number) => {
    let p = (set.span(trace, span) as { parent: number | null }).parent;
    while (p !== null && p !== undefined) {
      set.setCollapsed(trace, p, false);
      p = (set.span(trace, p) as { parent: number | null }).parent;
    }
    bump();
    const row = set.rowOf(trace, span);
    if (row !== undefined && scroller.current) {
      const top = row * ROW_HEIGHT;
      const el = scroller.current;
      if (top < el.scrollTop || top + ROW_HEIGHT > el.scrollTop + height) {
        el.scrollTop = Math.max(0, top - height / 2);
        setScrollTop(el.scrollTop);
      }
    }
  };

  const go = (delta: number) => {
    if (matches.length === 0) return;
    const next = (hit + delta + matches.length) % matches.length;
    setHit(next);
    reveal(matches[next]);
    onSelect(matches[next]);
  };

  useEffect(() => {
    setHit(0);
    if (matches.length > 0) reveal(matches[0]);
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [matches]);

  const onFindKey = (e: KeyboardEvent<HTMLInputElement>) => {
    if (e.key === 'Enter' || e.key === 'ArrowDown') {
      e.preventDefault();
      go(e.shiftKey ? -1 : 1);
    } else if (e.key === 'ArrowUp') {
      e.preventDefault();
      go(-1);
    } else if (e.key === 'Escape') {
      setQuery('');
    }
  };

  return (
    <div className="timeline">
      <div className="toolbar">
        <input
          aria-label="Find in trace"
          placeholder="Find… (Enter / ↓ next, Shift+Enter / ↑ previous)"
          value={query}
          onChange={(e) => setQuery(e.target.value)}
          onKeyDown={onFindKey}
          className="find"
        />
        <span className="find-count" data-testid="find-count">
          {query.trim() ? `${matches.length ? hit + 1 : 0} / ${matches.length}` : ''}
        </span>
        <button onClick={() => go(-1)} disabled={!matches.length} aria-label="Previous match">
          ↑
        </button>
        <button onClick={() => go(1)} disabled={!matches.length} aria-label="Next match">
          ↓
        </button>
        <span className="spacer" />
        <button
          onClick={() => {
            set.expandAll(trace);
            bump();
          }}
        >
          Expand all
        </button>
        <button
          onClick={() => {
            set.collapseBelowDepth(trace, 0);
            bump();
          }}
        >
          Collapse all
        </button>
        <label className="check">
          <input type="checkbox" checked={showCritical} onChange={(e) => setShowCritical(e.target.checked)} />
          Critical path
        </label>
      </div>
      <Minimap table={table} range={range} onRange={setRange} />
      <div className="tl-header">
        <div className="tl-name">Service &amp; operation</div>
        <div className="tl-ticks">
          {[0, 0.25, 0.5, 0.75, 1].map((f) => (
            <span key={f} style={{ left: `${f * 100}%` }}>
              {fmtDuration((r0 + f * (r1 - r0)) * window)}
            </span>
          ))}
        </div>
      </div>
      <div
        className="tl-scroll"
        ref={scroller}
        style={{ height }}
        onScroll={(e) => setScrollTop(e.currentTarget.scrollTop)}
        data-testid="timeline-scroll"
      >
        <div style={{ height: rowCount * ROW_HEIGHT, position: 'relative' }}>
          {rows.map((r, i) => {
            const segs = showCritical ? segmentsBySpan.get(r.span) : undefined;
            const cls = [
              'tl-row',
              r.error ? 'error' : '',
              selected === r.span ? 'selected' : '',
              matchSet.has(r.span) ? 'match' : '',
              matches[hit] === r.span && query.trim() ? 'current' : '',
              segs ? 'critical' : '',
            ].join(' ');
            return (
              <div
                key={r.span}
                className={cls}
                data-span={r.span}
                data-testid="span-row"
                style={{ top: (first + i) * ROW_HEIGHT, height: ROW_HEIGHT }}
                onClick={() => onSelect(r.span)}
              >
                <div className="tl-name" style={{ paddingLeft: 4 + r.depth * 14 }}>
                  {r.has_children ? (
                    <button
                      className="toggle"
                      aria-label={r.collapsed ? 'Expand' : 'Collapse'}
                      aria-expanded={!r.collapsed}
                      onClick={(e) => {
                        e.stopPropagation();
                        set.toggle(trace, r.span);
                        bump();
                      }}
                    >
                      {r.collapsed ? '▸' : '▾'}
                    </button>
                  ) : (
                    <span className="toggle-pad" />
                  )}
                  <span className="svc">{r.service}</span> <span className="op">{r.operation}</span>
                </div>
                <div className="tl-bar-area">
                  <div
                    className="tl-bar"
                    style={{ left: pct(r.offset), width: `max(2px, ${pctW(r.width)})` }}
                    title={`${r.service}: ${r.operation} ${fmtDuration(r.duration_nanos)}`}
                  />
                  {segs?.map((s, k) => (
                    <div
                      key={k}
                      className="tl-crit"
                      style={{
                        left: pct((s.start - info.start_unix_nanos) / window),
                        width: pctW((s.end - s.start) / window),
                      }}
                    />
                  ))}
                  <span
                    className="tl-dur"
                    style={{ left: `max(0px, min(calc(${pct(r.offset + r.width)} + 4px), calc(100% - 60px)))` }}
                  >
                    {fmtDuration(r.duration_nanos)}
                  </span>
                </div>
              </div>
            );
          })}
        </div>
      </div>
    </div>
  );
}
