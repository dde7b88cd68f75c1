// Daemon-backed trace, compare and dependency pages.
import { useEffect, useMemo, useState } from 'react';
import * as api from '../api';
import type { UiConfig } from '../config';
import { lookbacks } from '../config';
import { useTraceSets } from '../hooks';
import type { Diff, TraceSummary } from '../wasm';
import { TraceView } from '../components/TraceView';
import { DiffView } from '../components/DiffView';
import { Dependencies } from '../components/Dependencies';

export function TracePage({ id, cfg }: { id: string; cfg: UiConfig }) {
  const { sets, error } = useTraceSets([`/api/traces/${encodeURIComponent(id)}`]);
  if (error) return <p className="error page">{error}</p>;
  if (!sets) return <p className="muted page">Loading trace…</p>;
  if (sets[0].set.traceCount === 0) return <p className="error page">trace {id} not found</p>;
  return (
    <div className="page">
      <TraceView set={sets[0].set} trace={0} raw={() => sets[0].raw} patterns={cfg.linkPatterns} />
    </div>
  );
}

export function ComparePage({ a, b }: { a: string; b: string }) {
  const { sets, error } = useTraceSets([`/api/traces/${encodeURIComponent(a)}`, `/api/traces/${encodeURIComponent(b)}`]);
  const result = useMemo(() => {
    if (!sets) return null;
    const [sa, sb] = sets;
    if (sa.set.traceCount === 0 || sb.set.traceCount === 0) return null;
    return {
      diff: sa.set.diffWith(0, sb.set, 0) as Diff,
      ta: (sa.set.traces() as TraceSummary[])[0],
      tb: (sb.set.traces() as TraceSummary[])[0],
    };
  }, [sets]);
  if (error) return <p className="error page">{error}</p>;
  if (!sets) return <p className="muted page">Loading traces…</p>;
  if (!result) return <p className="error page">trace not found</p>;
  return (
    <div className="page">
      <h2>Compare</h2>
      <DiffView diff={result.diff} a={result.ta} b={result.tb} />
    </div>
  );
}

export function DependenciesPage({ cfg }: { cfg: UiConfig }) {
  const choices = lookbacks(cfg);
  const [lookback, setLookback] = useState(choices.find((c) => c.value === '1d')?.value ?? choices[choices.length - 1].value);
  const [deps, setDeps] = useState<api.Dependency[] | null>(null);
  const [error, setError] = useState<string | null>(null);
  useEffect(() => {
    const ms = choices.find((c) => c.value === lookback)!.ms;
    setDeps(null);
    api.dependencies(Date.now(), ms).then(setDeps, (e: Error) => setError(e.message));
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [lookback]);
  const graph = useMemo(() => {
    if (!deps) return null;
    const names = new Set<string>();
    deps.forEach((d) => (names.add(d.parent), names.add(d.child)));
    return {
      nodes: [...names].map((service) => ({ service })),
      edges: deps.map((d) => ({ parent: d.parent, child: d.child, call_count: d.callCount })),
    };
  }, [deps]);
  return (
    <div className="page">
      <div className="toolbar">
        <h2>Dependencies</h2>
        <select value={lookback} onChange={(e) => setLookback(e.target.value)} aria-label="Lookback">
          {choices.map((c) => (
            <option key={c.value} value={c.value}>
              {c.label}
            </option>
          ))}
        </select>
      </div>
      {error && <p className="error">{error}</p>}
      {!graph && !error && <p className="muted">Loading…</p>}
      {graph && <Dependencies graph={graph} />}
    </div>
  );
}
