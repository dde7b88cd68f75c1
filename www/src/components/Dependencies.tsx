// The dependencies view of a set of service links, as Jaeger's DAG page: the whole graph, or
// only the services within N hops of a focal service (callers upstream and callees downstream).
import { useMemo, useState } from 'react';
import type { ServiceGraph as Graph } from '../wasm';
import { ServiceGraph } from './ServiceGraph';

/**
 * The part of `graph` within `depth` hops of `focal`: services reached by following calls
 * downstream, and services reached by following callers upstream, each at most `depth` hops
 * away; edges among the kept services that lie on those walks.
 */
export function focusGraph(graph: Graph, focal: string, depth: number): Graph {
  const down = new Map<string, string[]>();
  const up = new Map<string, string[]>();
  for (const e of graph.edges) {
    (down.get(e.parent) ?? down.set(e.parent, []).get(e.parent)!).push(e.child);
    (up.get(e.child) ?? up.set(e.child, []).get(e.child)!).push(e.parent);
  }
  /** Hops from the focal service along `adj`, up to `depth`. */
  const walk = (adj: Map<string, string[]>) => {
    const dist = new Map<string, number>([[focal, 0]]);
    let frontier = [focal];
    for (let d = 1; d <= depth && frontier.length; d++) {
      const next: string[] = [];
      for (const n of frontier)
        for (const m of adj.get(n) ?? [])
          if (!dist.has(m)) {
            dist.set(m, d);
            next.push(m);
          }
      frontier = next;
    }
    return dist;
  };
  const below = walk(down);
  const above = walk(up);
  const kept = new Set([...below.keys(), ...above.keys()]);
  // A downstream call leaves a service found downstream; an upstream one enters one found upstream.
  const edges = graph.edges.filter(
    (e) =>
      (below.has(e.parent) && below.has(e.child) && below.get(e.child)! <= below.get(e.parent)! + 1) ||
      (above.has(e.child) && above.has(e.parent) && above.get(e.parent)! <= above.get(e.child)! + 1),
  );
  const known = new Map(graph.nodes.map((n) => [n.service, n]));
  return {
    nodes: [...kept].sort().map((s) => known.get(s) ?? { service: s }),
    edges,
  };
}

/** Every service of a graph (nodes and edge ends), sorted. */
export function servicesOf(graph: Graph): string[] {
  const names = new Set(graph.nodes.map((n) => n.service));
  for (const e of graph.edges) {
    names.add(e.parent);
    names.add(e.child);
  }
  return [...names].sort();
}

export function Dependencies({ graph }: { graph: Graph }) {
  const [focal, setFocal] = useState<string>('');
  const [depth, setDepth] = useState(2);
  const names = useMemo(() => servicesOf(graph), [graph]);
  const shown = useMemo(
    () => (focal && names.includes(focal) ? focusGraph(graph, focal, depth) : graph),
    [graph, focal, depth, names],
  );
  return (
    <div>
      <div className="toolbar">
        <label>
          Focal service{' '}
          <select value={focal} onChange={(e) => setFocal(e.target.value)} aria-label="Focal service">
            <option value="">(all services)</option>
            {names.map((n) => (
              <option key={n} value={n}>
                {n}
              </option>
            ))}
          </select>
        </label>
        <label>
          Depth{' '}
          <input
            type="number"
            min={1}
            max={20}
            value={depth}
            disabled={!focal}
            aria-label="Depth"
            onChange={(e) => setDepth(Math.min(20, Math.max(1, Math.floor(Number(e.target.value)) || 1)))}
            style={{ width: 60 }}
          />
        </label>
        <span className="muted small" data-testid="deps-count">
          {servicesOf(shown).length} of {names.length} services
        </span>
        {focal && <button onClick={() => setFocal('')}>Show all</button>}
      </div>
      <div className="graph-wrap">
        <ServiceGraph graph={shown} focal={focal || null} onNodeClick={setFocal} />
      </div>
    </div>
  );
}
