// A list of traces (search results or a file's traces): the duration-over-time scatter plot,
// sorting, and picking two traces to compare.
import { useMemo, useState } from 'react';
import type { TraceSummary } from '../wasm';
import { fmtAgo, fmtDuration, fmtTime } from '../format';
import { Link, navigate } from '../router';

export type SortKey = 'recent' | 'longest' | 'shortest' | 'spans' | 'errors';

export function sortTraces(list: TraceSummary[], key: SortKey): TraceSummary[] {
  const s = list.slice();
  const by: Record<SortKey, (a: TraceSummary, b: TraceSummary) => number> = {
    recent: (a, b) => b.start_unix_nanos - a.start_unix_nanos,
    longest: (a, b) => b.duration_nanos - a.duration_nanos,
    shortest: (a, b) => a.duration_nanos - b.duration_nanos,
    spans: (a, b) => b.span_count - a.span_count,
    errors: (a, b) => b.error_count - a.error_count,
  };
  return s.sort((a, b) => by[key](a, b) || a.index - b.index);
}

interface Props {
  traces: TraceSummary[];
  hrefFor: (t: TraceSummary) => string;
  compareHref: (a: TraceSummary, b: TraceSummary) => string;
}

export function Results({ traces, hrefFor, compareHref }: Props) {
  const [sort, setSort] = useState<SortKey>('recent');
  const [picked, setPicked] = useState<number[]>([]);
  const sorted = useMemo(() => sortTraces(traces, sort), [traces, sort]);
  const pick = (i: number, on: boolean) =>
    setPicked((p) => (on ? [...p.filter((x) => x !== i), i].slice(-2) : p.filter((x) => x !== i)));
  const byIndex = (i: number) => traces.find((t) => t.index === i)!;
  return (
    <div className="results">
      <Scatter traces={traces} hrefFor={hrefFor} />
      <div className="toolbar">
        <strong data-testid="result-count">
          {traces.length} trace{traces.length === 1 ? '' : 's'}
        </strong>
        <span className="spacer" />
        <button
          disabled={picked.length !== 2}
          onClick={() => navigate(compareHref(byIndex(picked[0]), byIndex(picked[1])))}
          data-testid="compare-button"
        >
          Compare {picked.length}/2
        </button>
        <label>
          Sort{' '}
          <select value={sort} onChange={(e) => setSort(e.target.value as SortKey)} aria-label="Sort results">
            <option value="recent">Most recent</option>
            <option value="longest">Longest first</option>
            <option value="shortest">Shortest first</option>
            <option value="spans">Most spans</option>
            <option value="errors">Most errors</option>
          </select>
        </label>
      </div>
      <ul className="result-list">
        {sorted.map((t) => (
          <li key={t.index} className="result" data-testid="result">
            <input
              type="checkbox"
              aria-label={`Pick ${t.trace_id} to compare`}
              checked={picked.includes(t.index)}
              onChange={(e) => pick(t.index, e.target.checked)}
            />
            <Link to={hrefFor(t)} className="result-title">
              <span className="svc">{t.root_service}</span>: <span className="op">{t.root_operation}</span>{' '}
              <span className="mono muted small">{t.trace_id.slice(0, 7)}</span>
            </Link>
            <span className="dur">{fmtDuration(t.duration_nanos)}</span>
            <div className="result-meta">
              <span>{t.span_count} spans</span>
              {t.error_count > 0 && <span className="badge err">{t.error_count} errors</span>}
              {t.services.map((s) => (
                <span key={s} className="badge">
                  {s}
                </span>
              ))}
              <span className="spacer" />
              <span className="muted" title={fmtTime(t.start_unix_nanos)}>
                {fmtTime(t.start_unix_nanos)} · {fmtAgo(t.start_unix_nanos)}
              </span>
            </div>
          </li>
        ))}
      </ul>
    </div>
  );
}

const W = 800;
const H = 160;
const PAD = { l: 56, r: 12, t: 10, b: 24 };

/** Duration over start time, one circle per trace (red ones have errors). */
export function Scatter({ traces, hrefFor }: { traces: TraceSummary[]; hrefFor: (t: TraceSummary) => string }) {
  if (traces.length === 0) return null;
  const xs = traces.map((t) => t.start_unix_nanos);
  const ys = traces.map((t) => t.duration_nanos);
  const x0 = Math.min(...xs);
  const x1 = Math.max(...xs);
  const y1 = Math.max(...ys) || 1;
  const x = (v: number) => PAD.l + (x1 === x0 ? 0.5 : (v - x0) / (x1 - x0)) * (W - PAD.l - PAD.r);
  const y = (v: number) => H - PAD.b - (v / y1) * (H - PAD.t - PAD.b);
  return (
    <svg className="scatter" viewBox={`0 0 ${W} ${H}`} role="img" aria-label="Duration over time" data-testid="scatter">
      <line x1={PAD.l} y1={H - PAD.b} x2={W - PAD.r} y2={H - PAD.b} className="axis" />
      <line x1={PAD.l} y1={PAD.t} x2={PAD.l} y2={H - PAD.b} className="axis" />
      <text x={PAD.l - 4} y={PAD.t + 8} textAnchor="end" className="tick">
        {fmtDuration(y1)}
      </text>
      <text x={PAD.l - 4} y={H - PAD.b} textAnchor="end" className="tick">
        0
      </text>
      <text x={PAD.l} y={H - 6} className="tick">
        {fmtTime(x0).slice(11, 19)}
      </text>
      <text x={W - PAD.r} y={H - 6} textAnchor="end" className="tick">
        {fmtTime(x1).slice(11, 19)}
      </text>
      {traces.map((t) => (
        <circle
          key={t.index}
          cx={x(t.start_unix_nanos)}
          cy={y(t.duration_nanos)}
          r={Math.min(10, 3 + Math.sqrt(t.span_count))}
          className={t.error_count ? 'dot err' : 'dot'}
          onClick={() => navigate(hrefFor(t))}
        >
          <title>{`${t.root_service}: ${t.root_operation} ${fmtDuration(t.duration_nanos)}`}</title>
        </circle>
      ))}
    </svg>
  );
}
