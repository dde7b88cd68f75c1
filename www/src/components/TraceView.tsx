// One trace: summary, trace links, root-cause summary, and the tabs (timeline, graph,
// flamegraph, statistics, spans, JSON).
import { useMemo, useState } from 'react';
import type { RootCause, SpanDetail as Detail, TraceSet, TraceStats, TraceSummary, CriticalPath } from '../wasm';
import { traceLinks, type LinkPattern } from '../config';
import { fmtDuration, fmtTime } from '../format';
import { spanTable } from '../spans';
import { Timeline } from './Timeline';
import { Links, SpanDetail } from './SpanDetail';
import { Flamegraph } from './Flamegraph';
import { TraceGraph, traceGraph } from './TraceGraph';

type Tab = 'timeline' | 'graph' | 'flame' | 'stats' | 'spans' | 'json';

const TAB_NAMES: Record<Tab, string> = {
  timeline: 'Timeline',
  graph: 'Graph',
  flame: 'Flamegraph',
  stats: 'Statistics',
  spans: 'Spans',
  json: 'JSON',
};

/** The trace-level values `traces` link patterns may use, named as in the Jaeger UI
 * (times in microseconds). */
export function traceFields(s: TraceSummary): Record<string, string | number> {
  const startUs = Math.floor(s.start_unix_nanos / 1000);
  const durUs = Math.floor(s.duration_nanos / 1000);
  return {
    traceID: s.trace_id,
    traceName: `${s.root_service}: ${s.root_operation}`,
    rootService: s.root_service,
    rootOperation: s.root_operation,
    startTime: startUs,
    endTime: startUs + durUs,
    duration: durUs,
    spanCount: s.span_count,
  };
}

interface Props {
  set: TraceSet;
  trace: number;
  /** The trace's JSON as received, or a function answering it (decoded only for the JSON tab). */
  raw?: string | (() => string);
  patterns?: LinkPattern[];
}

export function TraceView({ set, trace, raw, patterns }: Props) {
  const [tab, setTab] = useState<Tab>('timeline');
  const [selected, setSelected] = useState<number | null>(null);
  const summary = useMemo(() => (set.traces() as TraceSummary[])[trace], [set, trace]);
  const rc = useMemo(() => set.rootCause(trace, 3) as RootCause, [set, trace]);
  const detail = useMemo(
    () => (selected === null ? null : (set.span(trace, selected) as Detail)),
    [set, trace, selected],
  );
  const links = useMemo(() => (summary ? traceLinks(patterns, traceFields(summary)) : []), [patterns, summary]);
  /** A key's value in the selected span's ancestors, nearest first (for link placeholders). */
  const ancestorValue = (key: string) => {
    let p = detail?.parent ?? null;
    for (let hops = 0; p !== null && hops < 10_000; hops++) {
      const d = set.span(trace, p) as Detail;
      const v = d.attributes.find((a) => a.key === key)?.value ?? d.resource.attributes.find((a) => a.key === key)?.value;
      if (v !== undefined) return v;
      p = d.parent;
    }
    return undefined;
  };
  const name = (span: number) => {
    const d = set.span(trace, span) as Detail;
    return `${d.service}: ${d.operation}`;
  };
  if (!summary) return <p className="error">no trace {trace} in this set</p>;
  return (
    <div className="trace-view">
      <header className="trace-head">
        <h2>
          <span className="svc">{summary.root_service}</span> <span className="op">{summary.root_operation}</span>{' '}
          <span className="mono muted small">{summary.trace_id}</span>
        </h2>
        <div className="facts-row">
          <span>Start {fmtTime(summary.start_unix_nanos)}</span>
          <span>Duration {fmtDuration(summary.duration_nanos)}</span>
          <span>Services {summary.services.length}</span>
          <span>Spans {summary.span_count}</span>
          <span className={summary.error_count ? 'err' : ''}>Errors {summary.error_count}</span>
          {links.length > 0 && (
            <span data-testid="trace-links">
              Links:
              <Links links={links} />
            </span>
          )}
        </div>
      </header>
      <section className="root-cause" data-testid="root-cause">
        <h4>Root cause</h4>
        {rc.error_origins.length === 0 ? (
          <p className="muted">No errors.</p>
        ) : (
          <p>
            Errors originate in:{' '}
            {rc.error_origins.map((s, i) => (
              <span key={s}>
                {i > 0 && ', '}
                <button className="linkish err" onClick={() => setSelected(s)}>
                  {name(s)}
                </button>
              </span>
            ))}
          </p>
        )}
        {rc.critical_owners.length > 0 && (
          <p>
            Most of the critical path:{' '}
            {rc.critical_owners.map((o, i) => (
              <span key={o.span}>
                {i > 0 && ', '}
                <button className="linkish" onClick={() => setSelected(o.span)}>
                  {name(o.span)} ({Math.round(o.share * 100)}%, {fmtDuration(o.critical_nanos)})
                </button>
              </span>
            ))}
          </p>
        )}
      </section>
      <nav className="tabs" role="tablist">
        {(Object.keys(TAB_NAMES) as Tab[]).map((t) => (
          <button key={t} role="tab" aria-selected={tab === t} className={tab === t ? 'active' : ''} onClick={() => setTab(t)}>
            {TAB_NAMES[t]}
          </button>
        ))}
      </nav>
      {tab === 'timeline' && (
        <div className="tl-layout">
          <Timeline set={set} trace={trace} selected={selected} onSelect={setSelected} />
          {detail && <SpanDetail detail={detail} patterns={patterns} onSelect={setSelected} ancestorValue={ancestorValue} />}
        </div>
      )}
      {tab === 'graph' && <GraphTab set={set} trace={trace} />}
      {tab === 'flame' && (
        <div className="tl-layout">
          <Flamegraph table={spanTable(set, trace)} onSelect={setSelected} />
          {detail && <SpanDetail detail={detail} patterns={patterns} onSelect={setSelected} ancestorValue={ancestorValue} />}
        </div>
      )}
      {tab === 'stats' && <StatsTable stats={set.stats(trace) as TraceStats} />}
      {tab === 'spans' && (
        <SpansTable
          set={set}
          trace={trace}
          count={summary.span_count}
          onOpen={(s) => {
            setSelected(s);
            setTab('timeline');
          }}
        />
      )}
      {tab === 'json' && <pre className="json" data-testid="trace-json">{pretty(typeof raw === 'function' ? raw() : raw)}</pre>}
    </div>
  );
}

function GraphTab({ set, trace }: { set: TraceSet; trace: number }) {
  const graph = useMemo(
    () => traceGraph(spanTable(set, trace), (set.criticalPath(trace) as CriticalPath).span_nanos),
    [set, trace],
  );
  return <TraceGraph graph={graph} />;
}

function pretty(raw?: string): string {
  if (raw === undefined) return '';
  if (raw.length > 4_000_000) return raw.slice(0, 4_000_000) + '\n… (cut at 4 MB)';
  try {
    return JSON.stringify(JSON.parse(raw), null, 2);
  } catch {
    return raw;
  }
}

export function StatsTable({ stats }: { stats: TraceStats }) {
  return (
    <table className="grid" data-testid="stats-table">
      <thead>
        <tr>
          <th>Service</th>
          <th>Operation</th>
          <th>Count</th>
          <th>Total</th>
          <th>Avg</th>
          <th>Min</th>
          <th>Max</th>
          <th>Self total</th>
          <th>Errors</th>
        </tr>
      </thead>
      <tbody>
        {stats.by_service_operation.map(({ key, stat }) => (
          <tr key={`${key.service}\u0000${key.operation}`}>
            <td>{key.service}</td>
            <td>{key.operation}</td>
            <td className="num">{stat.count}</td>
            <td className="num">{fmtDuration(stat.total_nanos)}</td>
            <td className="num">{fmtDuration(stat.avg_nanos)}</td>
            <td className="num">{fmtDuration(stat.min_nanos)}</td>
            <td className="num">{fmtDuration(stat.max_nanos)}</td>
            <td className="num">{fmtDuration(stat.self_nanos)}</td>
            <td className="num">{stat.errors}</td>
          </tr>
        ))}
      </tbody>
    </table>
  );
}

const SPANS_TABLE_MAX = 2000;

function SpansTable({ set, trace, count, onOpen }: { set: TraceSet; trace: number; count: number; onOpen: (s: number) => void }) {
  const [sort, setSort] = useState<'start' | 'duration' | 'critical'>('start');
  const cp = useMemo(() => set.criticalPath(trace) as CriticalPath, [set, trace]);
  const spans = useMemo(() => {
    const out: Detail[] = [];
    for (let i = 0; i < Math.min(count, SPANS_TABLE_MAX); i++) out.push(set.span(trace, i) as Detail);
    return out;
  }, [set, trace, count]);
  const sorted = useMemo(() => {
    const s = spans.slice();
    if (sort === 'duration') s.sort((a, b) => b.duration_nanos - a.duration_nanos);
    else if (sort === 'critical') s.sort((a, b) => (cp.span_nanos[b.span] ?? 0) - (cp.span_nanos[a.span] ?? 0));
    else s.sort((a, b) => a.offset_nanos - b.offset_nanos);
    return s;
  }, [spans, sort, cp]);
  return (
    <div>
      <div className="toolbar">
        Sort by{' '}
        <select value={sort} onChange={(e) => setSort(e.target.value as typeof sort)} aria-label="Sort spans">
          <option value="start">start</option>
          <option value="duration">duration</option>
          <option value="critical">time on the critical path</option>
        </select>
        {count > SPANS_TABLE_MAX && <span className="muted">first {SPANS_TABLE_MAX} of {count} spans</span>}
      </div>
      <table className="grid" data-testid="spans-table">
        <thead>
          <tr>
            <th>Service</th>
            <th>Operation</th>
            <th>Start</th>
            <th>Duration</th>
            <th>Critical</th>
            <th>Status</th>
          </tr>
        </thead>
        <tbody>
          {sorted.map((d) => (
            <tr key={d.span} className={d.error ? 'err' : ''} onClick={() => onOpen(d.span)}>
              <td>{d.service}</td>
              <td>{d.operation}</td>
              <td className="num">{fmtDuration(d.offset_nanos)}</td>
              <td className="num">{fmtDuration(d.duration_nanos)}</td>
              <td className="num">{fmtDuration(cp.span_nanos[d.span] ?? 0)}</td>
              <td>{d.status_code}</td>
            </tr>
          ))}
        </tbody>
      </table>
    </div>
  );
}
