// The service dependency graph: a layered layout (each service one column right of its
// deepest caller) drawn in SVG, with call counts on the edges.
import type { ServiceGraph as Graph } from '../wasm';

export interface Layout {
  pos: Map<string, { x: number; y: number; layer: number }>;
  width: number;
  height: number;
}

const NODE_W = 170;
const NODE_H = 34;
const COL = 240;
const ROW = 64;

/** Spacing of a layout: column and row pitch, node width. */
export interface Spacing {
  col: number;
  row: number;
  nodeW: number;
}

/** Longest-path layering; back edges of cycles are ignored for layering. */
export function layout(graph: Pick<Graph, 'nodes' | 'edges'>, spacing: Spacing = { col: COL, row: ROW, nodeW: NODE_W }): Layout {
  const names = new Set<string>(graph.nodes.map((n) => n.service));
  for (const e of graph.edges) {
    names.add(e.parent);
    names.add(e.child);
  }
  const out = new Map<string, string[]>();
  for (const e of graph.edges) {
    if (e.parent === e.child) continue;
    const l = out.get(e.parent);
    if (l) l.push(e.child);
    else out.set(e.parent, [e.child]);
  }
  const layer = new Map<string, number>();
  const state = new Map<string, 1 | 2>();
  const order = [...names].sort();
  // Topological order by DFS, skipping edges back into the current path.
  const topo: string[] = [];
  // Iterative DFS (post-order), so a long call chain cannot overflow the stack.
  const visit = (root: string) => {
    const stack: [string, number][] = [[root, 0]];
    state.set(root, 1);
    while (stack.length) {
      const top = stack[stack.length - 1];
      const kids = out.get(top[0]) ?? [];
      if (top[1] < kids.length) {
        const c = kids[top[1]++];
        if (!state.has(c)) {
          state.set(c, 1);
          stack.push([c, 0]);
        }
      } else {
        state.set(top[0], 2);
        topo.push(top[0]);
        stack.pop();
      }
    }
  };
  // Start from services nobody calls, so a cycle does not decide who comes first.
  const called = new Set(graph.edges.filter((e) => e.parent !== e.child).map((e) => e.child));
  for (const n of [...order.filter((n) => !called.has(n)), ...order]) if (!state.has(n)) visit(n);
  topo.reverse();
  const rank = new Map(topo.map((n, i) => [n, i]));
  for (const n of topo) layer.set(n, layer.get(n) ?? 0);
  for (const n of topo)
    for (const c of out.get(n) ?? [])
      if (rank.get(c)! > rank.get(n)!) layer.set(c, Math.max(layer.get(c) ?? 0, layer.get(n)! + 1));
  const cols = new Map<number, string[]>();
  for (const n of order) {
    const l = cols.get(layer.get(n)!);
    if (l) l.push(n);
    else cols.set(layer.get(n)!, [n]);
  }
  const pos = new Map<string, { x: number; y: number; layer: number }>();
  let maxRows = 0;
  let maxLayer = 0;
  for (const [l, ns] of cols) {
    maxRows = Math.max(maxRows, ns.length);
    maxLayer = Math.max(maxLayer, l);
    ns.forEach((n, i) => pos.set(n, { x: 20 + l * spacing.col, y: 20 + i * spacing.row, layer: l }));
  }
  return {
    pos,
    width: 40 + maxLayer * spacing.col + spacing.nodeW,
    height: 40 + Math.max(1, maxRows) * spacing.row,
  };
}

export function ServiceGraph({
  graph,
  focal,
  onNodeClick,
}: {
  graph: Graph;
  /** A service drawn highlighted (the dependencies page's focal service). */
  focal?: string | null;
  onNodeClick?: (service: string) => void;
}) {
  if (graph.nodes.length === 0 && graph.edges.length === 0) return <p className="muted">No dependencies.</p>;
  const { pos, width, height } = layout(graph);
  const stats = new Map(graph.nodes.map((n) => [n.service, n]));
  return (
    <svg className="graph" viewBox={`0 0 ${width} ${height}`} width={width} height={height} data-testid="service-graph">
      <defs>
        <marker id="arrow" viewBox="0 0 10 10" refX="10" refY="5" markerWidth="7" markerHeight="7" orient="auto">
          <path d="M0,0 L10,5 L0,10 z" className="arrow" />
        </marker>
      </defs>
      {graph.edges.map((e, i) => {
        const a = pos.get(e.parent)!;
        const b = pos.get(e.child)!;
        const x1 = a.x + NODE_W;
        const y1 = a.y + NODE_H / 2;
        const x2 = b.x;
        const y2 = b.y + NODE_H / 2;
        const self = e.parent === e.child;
        const d = self
          ? `M${a.x + NODE_W - 20},${a.y} c 10,-30 40,-30 20,${NODE_H / 2}`
          : b.layer > a.layer
            ? `M${x1},${y1} C${x1 + 40},${y1} ${x2 - 40},${y2} ${x2},${y2}`
            : `M${a.x + NODE_W / 2},${a.y + NODE_H} C${a.x + NODE_W / 2},${a.y + NODE_H + 40} ${b.x + NODE_W / 2},${b.y + NODE_H + 40} ${b.x + NODE_W / 2},${b.y + NODE_H}`;
        const lx = self ? a.x + NODE_W : (x1 + x2) / 2;
        const ly = self ? a.y - 16 : (y1 + y2) / 2 - 4;
        return (
          <g key={i} className="edge" data-testid="graph-edge">
            <path d={d} markerEnd="url(#arrow)" />
            <text x={lx} y={ly} textAnchor="middle" className="edge-label">
              {e.call_count}
            </text>
          </g>
        );
      })}
      {[...pos].map(([name, p]) => {
        const s = stats.get(name);
        return (
          <g
            key={name}
            className={['node', s?.error_count ? 'err' : '', focal === name ? 'focal' : '', onNodeClick ? 'clickable' : ''].join(' ')}
            data-testid="graph-node"
            onClick={onNodeClick ? () => onNodeClick(name) : undefined}
          >
            <rect x={p.x} y={p.y} width={NODE_W} height={NODE_H} rx={6} />
            <text x={p.x + NODE_W / 2} y={p.y + 21} textAnchor="middle">
              {name.length > 22 ? name.slice(0, 21) + '…' : name}
            </text>
            <title>{s?.span_count !== undefined ? `${name}: ${s.span_count} spans, ${s.error_count} errors` : name}</title>
          </g>
        );
      })}
    </svg>
  );
}
