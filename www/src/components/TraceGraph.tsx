// The trace graph (as Jaeger's "Trace Graph" view): one node per service and operation of a
// trace with its call count, total and self time, edges from caller to callee with call counts,
// and the nodes and calls of the critical path highlighted.
import { useMemo } from 'react';
import { fmtDuration } from '../format';
import { serviceColor, type SpanTable } from '../spans';
import { layout } from './ServiceGraph';

export interface OpNode {
  id: string;
  service: string;
  operation: string;
  count: number;
  total: number;
  self: number;
  errors: number;
  /** Whether one of its spans is on the critical path. */
  critical: boolean;
}

export interface OpEdge {
  parent: string;
  child: string;
  call_count: number;
  critical: boolean;
}

export interface OpGraph {
  nodes: OpNode[];
  edges: OpEdge[];
  /** Nodes left out to keep the drawing readable (the ones with least self time). */
  hidden: number;
}

/** Nodes are drawn at most this many; the rest (least self time) are summarised. */
export const MAX_NODES = 200;

/**
 * The service/operation graph of one trace. `criticalNanos[span]` is each span's time on the
 * critical path (> 0: on it).
 */
export function traceGraph(t: SpanTable, criticalNanos: ArrayLike<number> = [], maxNodes = MAX_NODES): OpGraph {
  const nOps = Math.max(1, t.operations.length);
  const keyOf = (i: number) => t.service[i] * nOps + t.operation[i];
  const nodes = new Map<number, OpNode>();
  for (let i = 0; i < t.n; i++) {
    const k = keyOf(i);
    let n = nodes.get(k);
    if (!n) {
      n = {
        id: `${t.service[i]}:${t.operation[i]}`,
        service: t.services[t.service[i]],
        operation: t.operations[t.operation[i]],
        count: 0,
        total: 0,
        self: 0,
        errors: 0,
        critical: false,
      };
      nodes.set(k, n);
    }
    n.count++;
    n.total += t.duration[i];
    n.self += t.self[i];
    n.errors += t.error[i];
    if ((criticalNanos[i] ?? 0) > 0) n.critical = true;
  }
  const edges = new Map<string, OpEdge>();
  for (let i = 0; i < t.n; i++) {
    const p = t.parent[i];
    if (p < 0) continue;
    const a = nodes.get(keyOf(p))!.id;
    const b = nodes.get(keyOf(i))!.id;
    const id = `${a}>${b}`;
    let e = edges.get(id);
    if (!e) edges.set(id, (e = { parent: a, child: b, call_count: 0, critical: false }));
    e.call_count++;
    if ((criticalNanos[i] ?? 0) > 0 && (criticalNanos[p] ?? 0) > 0) e.critical = true;
  }
  let list = [...nodes.values()];
  let hidden = 0;
  if (list.length > maxNodes) {
    list.sort((a, b) => Number(b.critical) - Number(a.critical) || b.self - a.self);
    hidden = list.length - maxNodes;
    list = list.slice(0, maxNodes);
  }
  const kept = new Set(list.map((n) => n.id));
  return {
    nodes: list.sort((a, b) => a.service.localeCompare(b.service) || a.operation.localeCompare(b.operation)),
    edges: [...edges.values()].filter((e) => kept.has(e.parent) && kept.has(e.child)),
    hidden,
  };
}

const NODE_W = 210;
const NODE_H = 54;

export function TraceGraph({ graph }: { graph: OpGraph }) {
  const { pos, width, height } = useMemo(
    () => layout({ nodes: graph.nodes.map((n) => ({ service: n.id })), edges: graph.edges }, { col: 280, row: 76, nodeW: NODE_W }),
    [graph],
  );
  if (graph.nodes.length === 0) return <p className="muted">No spans.</p>;
  return (
    <div className="graph-wrap" data-testid="trace-graph">
      {graph.hidden > 0 && (
        <p className="muted">
          {graph.hidden} more operations with the least self time are not drawn.
        </p>
      )}
      <svg className="graph" viewBox={`0 0 ${width} ${height}`} width={width} height={height}>
        <defs>
          <marker id="tg-arrow" viewBox="0 0 10 10" refX="10" refY="5" markerWidth="7" markerHeight="7" orient="auto">
            <path d="M0,0 L10,5 L0,10 z" className="arrow" />
          </marker>
        </defs>
        {graph.edges.map((e) => {
          const a = pos.get(e.parent)!;
          const b = pos.get(e.child)!;
          const self = e.parent === e.child;
          const x1 = a.x + NODE_W;
          const y1 = a.y + NODE_H / 2;
          const x2 = b.x;
          const y2 = b.y + NODE_H / 2;
          const d = self
            ? `M${a.x + NODE_W - 20},${a.y} c 10,-30 40,-30 20,${NODE_H / 2}`
            : b.layer > a.layer
              ? `M${x1},${y1} C${x1 + 40},${y1} ${x2 - 40},${y2} ${x2},${y2}`
              : `M${a.x + NODE_W / 2},${a.y + NODE_H} C${a.x + NODE_W / 2},${a.y + NODE_H + 40} ${b.x + NODE_W / 2},${b.y + NODE_H + 40} ${b.x + NODE_W / 2},${b.y + NODE_H}`;
          return (
            <g key={`${e.parent}>${e.child}`} className={e.critical ? 'edge crit' : 'edge'} data-testid="trace-graph-edge">
              <path d={d} markerEnd="url(#tg-arrow)" />
              <text x={self ? a.x + NODE_W : (x1 + x2) / 2} y={self ? a.y - 16 : (y1 + y2) / 2 - 4} textAnchor="middle" className="edge-label">
                {e.call_count}
              </text>
            </g>
          );
        })}
        {graph.nodes.map((n) => {
          const p = pos.get(n.id)!;
          const cut = (s: string, k: number) => (s.length > k ? s.slice(0, k - 1) + '…' : s);
          return (
            <g
              key={n.id}
              className={['node', n.errors ? 'err' : '', n.critical ? 'crit' : ''].join(' ')}
              data-testid="trace-graph-node"
              data-critical={n.critical ? 'true' : 'false'}
            >
              <rect x={p.x} y={p.y} width={NODE_W} height={NODE_H} rx={6} />
              <rect x={p.x} y={p.y} width={6} height={NODE_H} fill={serviceColor(n.service)} />
              <text x={p.x + 12} y={p.y + 15} className="tg-svc">
                {cut(n.service, 28)}
              </text>
              <text x={p.x + 12} y={p.y + 31}>{cut(n.operation, 30)}</text>
              <text x={p.x + 12} y={p.y + 47} className="tg-facts">
                {`${n.count}× · ${fmtDuration(n.total)} · self ${fmtDuration(n.self)}${n.errors ? ` · ${n.errors} err` : ''}`}
              </text>
              <title>{`${n.service}: ${n.operation}\n${n.count} spans, total ${fmtDuration(n.total)}, self ${fmtDuration(n.self)}, ${n.errors} errors`}</title>
            </g>
          );
        })}
      </svg>
    </div>
  );
}
