// The structural diff of two traces: the merged call tree, each node with its count and mean
// duration in A and B.
import type { Diff, TraceSummary } from '../wasm';
import { fmtDuration } from '../format';

export function DiffView({ diff, a, b }: { diff: Diff; a: TraceSummary; b: TraceSummary }) {
  const counts = { added: 0, removed: 0, changed: 0 } as Record<string, number>;
  for (const n of diff.nodes) counts[n.status] = (counts[n.status] ?? 0) + 1;
  return (
    <div className="diff" data-testid="diff">
      <div className="facts-row">
        <span>
          A: <span className="svc">{a.root_service}</span> {a.root_operation} <span className="mono small">{a.trace_id.slice(0, 7)}</span>{' '}
          {fmtDuration(a.duration_nanos)}, {a.span_count} spans
        </span>
        <span>
          B: <span className="svc">{b.root_service}</span> {b.root_operation} <span className="mono small">{b.trace_id.slice(0, 7)}</span>{' '}
          {fmtDuration(b.duration_nanos)}, {b.span_count} spans
        </span>
        <span data-testid="diff-summary">
          {diff.nodes.length} nodes: {counts.added ?? 0} only in B, {counts.removed ?? 0} only in A
        </span>
      </div>
      <table className="grid">
        <thead>
          <tr>
            <th>Call</th>
            <th>Count A</th>
            <th>Count B</th>
            <th>Mean A</th>
            <th>Mean B</th>
            <th>Change</th>
            <th>Status</th>
          </tr>
        </thead>
        <tbody>
          {diff.nodes.map((n, i) => (
            <tr key={i} className={`diff-${n.status}`} data-testid="diff-row">
              <td style={{ paddingLeft: 6 + n.depth * 16 }}>
                <span className="svc">{n.step.service}</span> <span className="op">{n.step.operation}</span>
              </td>
              <td className="num">{n.count_a}</td>
              <td className="num">{n.count_b}</td>
              <td className="num">{n.mean_a_nanos === null ? '–' : fmtDuration(n.mean_a_nanos)}</td>
              <td className="num">{n.mean_b_nanos === null ? '–' : fmtDuration(n.mean_b_nanos)}</td>
              <td className={`num ${n.mean_change_nanos !== null && n.mean_change_nanos > 0 ? 'err' : ''}`}>
                {n.mean_change_nanos === null ? '–' : (n.mean_change_nanos > 0 ? '+' : '') + fmtDuration(n.mean_change_nanos)}
              </td>
              <td>{{ added: 'only in B', removed: 'only in A' }[n.status] ?? n.status}</td>
            </tr>
          ))}
        </tbody>
      </table>
    </div>
  );
}
