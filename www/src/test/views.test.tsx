import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { fireEvent, render, screen } from '@testing-library/react';
import { TraceSet, type SpanDetail as Detail } from '../wasm';
import { spanTable } from '../spans';
import { Minimap, type Range } from '../components/Minimap';
import { Timeline } from '../components/Timeline';
import { Flamegraph, flameByAggregate, flameByTime, hitTest, type FlameLayout } from '../components/Flamegraph';
import { TraceGraph, traceGraph } from '../components/TraceGraph';
import { Dependencies } from '../components/Dependencies';
import { SpanDetail } from '../components/SpanDetail';
import { TraceView } from '../components/TraceView';

const fixture = fs.readFileSync(path.resolve(process.cwd(), '../tests/fixtures/otlp_trace.json'), 'utf8');
const MS = 1e6;

/** Pretends an element is laid out at x 0..width, y 0..height. */
function layOut(el: Element, width = 1000, height = 48) {
  el.getBoundingClientRect = () => ({ left: 0, top: 0, right: width, bottom: height, width, height, x: 0, y: 0, toJSON: () => '' });
}

/** A flame layout as `[depth, label, x0, x1 (ms), count]` rows. */
function flameRows(l: FlameLayout, t: ReturnType<typeof spanTable>) {
  return l.levels.flatMap((lv) =>
    lv.map((n) => [n.depth, `${t.services[n.service]}: ${t.operations[n.operation]}`, n.x0 / MS, n.x1 / MS, n.count]),
  );
}

/** One trace: web root (0..100ms) calling api twice (10..40, 50..90), each calling db. */
function twoCalls() {
  const span = (id: number, parent: number, service: string, name: string, start: number, end: number) => ({
    resource: { attributes: [{ key: 'service.name', value: { stringValue: service } }] },
    scopeSpans: [
      {
        spans: [
          {
            traceId: '0123456789abcdef0123456789abcdef',
            spanId: id.toString(16).padStart(16, '0'),
            parentSpanId: parent ? parent.toString(16).padStart(16, '0') : '',
            name,
            startTimeUnixNano: String(1767225600000000000n + BigInt(start) * 1000000n),
            endTimeUnixNano: String(1767225600000000000n + BigInt(end) * 1000000n),
          },
        ],
      },
    ],
  });
  return JSON.stringify({
    resourceSpans: [
      span(1, 0, 'web', 'GET /', 0, 100),
      span(2, 1, 'api', 'list', 10, 40),
      span(3, 2, 'db', 'select', 15, 35),
      span(4, 1, 'api', 'list', 50, 90),
      span(5, 4, 'db', 'select', 55, 60),
    ],
  });
}

describe('span table', () => {
  it('holds every span as numbers', () => {
    const set = TraceSet.fromText(twoCalls());
    const t = spanTable(set, 0);
    expect([t.n, t.total / MS, t.maxDepth, t.services, t.operations]).toEqual([5, 100, 2, ['web', 'api', 'db'], ['GET /', 'list', 'select']]);
    expect([...t.parent]).toEqual([-1, 0, 1, 0, 3]);
    expect([...t.self].map((x) => x / MS)).toEqual([30, 10, 20, 35, 5]);
    expect(spanTable(set, 0)).toBe(t);
    set.free();
  });
});

describe('Minimap', () => {
  it('selects, pans and resets the time range by dragging', () => {
    const set = TraceSet.fromText(twoCalls());
    const ranges: Range[] = [];
    let range: Range = [0, 1];
    const { rerender } = render(<Minimap table={spanTable(set, 0)} range={range} onRange={(r) => ranges.push((range = r))} />);
    const strip = screen.getByTestId('minimap').firstElementChild!;
    layOut(strip);
    fireEvent.mouseDown(strip, { clientX: 200, button: 0 });
    fireEvent.mouseMove(window, { clientX: 500 });
    fireEvent.mouseUp(window, { clientX: 500 });
    expect(range).toEqual([0.2, 0.5]);
    rerender(<Minimap table={spanTable(set, 0)} range={range} onRange={(r) => (range = r)} />);
    const vp = screen.getByTestId('minimap-viewport');
    expect([vp.dataset.start, vp.dataset.end]).toEqual(['0.2000', '0.5000']);
    // Pan by dragging the viewport; it stops at the end of the trace.
    fireEvent.mouseDown(vp, { clientX: 300, button: 0 });
    fireEvent.mouseMove(window, { clientX: 1200 });
    fireEvent.mouseUp(window, { clientX: 1200 });
    expect(range[0]).toBeCloseTo(0.7, 9);
    expect(range[1]).toBe(1);
    // Resize from the left edge.
    rerender(<Minimap table={spanTable(set, 0)} range={range} onRange={(r) => (range = r)} />);
    fireEvent.mouseDown(screen.getByTestId('minimap-left'), { clientX: 700, button: 0 });
    fireEvent.mouseUp(window, { clientX: 100 });
    fireEvent.mouseMove(window, { clientX: 100 });
    expect(range[0]).toBeCloseTo(0.7, 9);
    rerender(<Minimap table={spanTable(set, 0)} range={range} onRange={(r) => (range = r)} />);
    fireEvent.click(screen.getByText('Reset zoom'));
    expect(range).toEqual([0, 1]);
    set.free();
  });

  it('drives the timeline: bars and ticks follow the selected range', () => {
    const set = TraceSet.fromText(twoCalls());
    render(<Timeline set={set} trace={0} selected={null} onSelect={() => {}} />);
    const strip = screen.getByTestId('minimap').firstElementChild!;
    layOut(strip);
    const bars = () => [...document.querySelectorAll<HTMLElement>('.tl-bar')].map((b) => b.style.left);
    expect(bars()[1]).toBe('10%');
    fireEvent.mouseDown(strip, { clientX: 0, button: 0 });
    fireEvent.mouseMove(window, { clientX: 500 });
    fireEvent.mouseUp(window, { clientX: 500 });
    expect(bars()[1]).toBe('20%');
    const ticks = [...document.querySelectorAll('.tl-ticks span')].map((s) => s.textContent);
    expect(ticks).toEqual(['0ns', '12.5ms', '25ms', '37.5ms', '50ms']);
    set.free();
  });
});

describe('Flamegraph', () => {
  it('lays spans out by time and merges them by call path', () => {
    const set = TraceSet.fromText(twoCalls());
    const t = spanTable(set, 0);
    expect(flameRows(flameByTime(t), t)).toEqual([
      [0, 'web: GET /', 0, 100, 1],
      [1, 'api: list', 10, 40, 1],
      [1, 'api: list', 50, 90, 1],
      [2, 'db: select', 15, 35, 1],
      [2, 'db: select', 55, 60, 1],
    ]);
    // Aggregated: widths are subtree self time (web 30 + api 45 + db 25 = 100).
    const agg = flameByAggregate(t);
    expect(flameRows(agg, t)).toEqual([
      [0, 'web: GET /', 0, 100, 1],
      [1, 'api: list', 0, 70, 2],
      [2, 'db: select', 0, 25, 2],
    ]);
    expect(hitTest(agg, 1, 69 * MS)?.count).toBe(2);
    expect(hitTest(agg, 1, 71 * MS)).toBeNull();
    expect(hitTest(flameByTime(t), 1, 45 * MS)).toBeNull();
    expect(hitTest(flameByTime(t), 2, 56 * MS)?.span).toBe(4);
    set.free();
  });

  it('zooms to a clicked node and tells what is under the pointer', () => {
    const set = TraceSet.fromText(twoCalls());
    const picked: number[] = [];
    render(<Flamegraph table={spanTable(set, 0)} onSelect={(s) => picked.push(s)} />);
    const canvas = screen.getByTestId('flame-canvas');
    layOut(canvas, 1000, 54);
    fireEvent.mouseMove(canvas, { clientX: 600, clientY: 20 });
    expect(screen.getByTestId('flame-hover').textContent).toBe('api: list · total 40ms · self 35ms');
    fireEvent.click(canvas, { clientX: 600, clientY: 20 });
    expect(screen.getByTestId('flame-zoom').textContent).toBe('Zoomed to api: list');
    expect(picked).toEqual([3]);
    // Zoomed to 50..90ms: x = 150 of 1000 is at 56ms, inside the second db call.
    fireEvent.mouseMove(canvas, { clientX: 150, clientY: 40 });
    expect(screen.getByTestId('flame-hover').textContent).toBe('db: select · total 5ms · self 5ms');
    fireEvent.click(screen.getByText('Reset zoom'));
    expect(screen.queryByTestId('flame-zoom')).toBeNull();
    fireEvent.change(screen.getByLabelText('Flamegraph mode'), { target: { value: 'aggregate' } });
    fireEvent.mouseMove(canvas, { clientX: 100, clientY: 20 });
    expect(screen.getByTestId('flame-hover').textContent).toBe('api: list · 2 spans · total 70ms · self 45ms');
    set.free();
  });
});

describe('TraceGraph', () => {
  it('has one node per service and operation with counts, self time and the critical path', () => {
    const set = TraceSet.fromText(fixture);
    const g = traceGraph(spanTable(set, 0), set.criticalPath(0).span_nanos);
    expect(g.nodes.map((n) => [n.service, n.operation, n.count, n.self / MS, n.errors, n.critical])).toEqual([
      ['cart', 'POST /cart', 1, 60, 1, true],
      ['cart', 'SELECT cart', 1, 20, 0, true],
      ['frontend', 'call cart', 1, 10, 0, true],
      ['frontend', 'GET /checkout', 1, 30, 1, true],
    ]);
    expect(g.edges.map((e) => [e.call_count, e.critical])).toEqual([
      [1, true],
      [1, true],
      [1, true],
    ]);
    render(<TraceGraph graph={g} />);
    expect(screen.getAllByTestId('trace-graph-node')).toHaveLength(4);
    expect(screen.getAllByTestId('trace-graph-node')[0].textContent).toContain('1× · 80ms · self 60ms · 1 err');
    set.free();
  });

  it('merges repeated calls and draws at most the nodes asked for', () => {
    const set = TraceSet.fromText(twoCalls());
    const g = traceGraph(spanTable(set, 0));
    expect(g.edges.map((e) => [e.parent, e.child, e.call_count])).toEqual([
      ['0:0', '1:1', 2],
      ['1:1', '2:2', 2],
    ]);
    const cut = traceGraph(spanTable(set, 0), [], 2);
    expect([cut.nodes.map((n) => n.service), cut.hidden, cut.edges.length]).toEqual([['api', 'web'], 1, 1]);
    set.free();
  });
});

describe('Dependencies', () => {
  it('shows the services within the depth of the focal service', () => {
    const e = (parent: string, child: string) => ({ parent, child, call_count: 3 });
    const graph = { nodes: [], edges: [e('web', 'api'), e('api', 'db'), e('db', 'disk'), e('mobile', 'web')] };
    render(<Dependencies graph={graph} />);
    const names = () => screen.getAllByTestId('graph-node').map((n) => n.querySelector('text')!.textContent);
    expect(names().sort()).toEqual(['api', 'db', 'disk', 'mobile', 'web']);
    fireEvent.change(screen.getByLabelText('Focal service'), { target: { value: 'db' } });
    expect(screen.getByTestId('deps-count').textContent).toBe('4 of 5 services');
    fireEvent.change(screen.getByLabelText('Depth'), { target: { value: '3' } });
    expect(screen.getByTestId('deps-count').textContent).toBe('5 of 5 services');
    fireEvent.change(screen.getByLabelText('Depth'), { target: { value: '1' } });
    expect(names().sort()).toEqual(['api', 'db', 'disk']);
    // Clicking a node makes it the focal service.
    fireEvent.click(screen.getAllByTestId('graph-node').find((n) => n.querySelector('text')!.textContent === 'api')!);
    expect((screen.getByLabelText('Focal service') as HTMLSelectElement).value).toBe('api');
    expect(names().sort()).toEqual(['api', 'db', 'web']);
    expect(document.querySelector('.node.focal text')!.textContent).toBe('api');
  });
});

describe('link patterns', () => {
  it('link span attributes, resource attributes and event fields, as text anchors', () => {
    const hostile = '"><script>window.__pwned=1</script>';
    const set = TraceSet.fromText(
      JSON.stringify({
        resourceSpans: [
          {
            resource: { attributes: [{ key: 'service.name', value: { stringValue: 'web' } }, { key: 'host.name', value: { stringValue: 'h 1' } }] },
            scopeSpans: [
              {
                spans: [
                  {
                    traceId: '0123456789abcdef0123456789abcdef',
                    spanId: '0000000000000001',
                    name: 'op',
                    startTimeUnixNano: '1767225600000000000',
                    endTimeUnixNano: '1767225600001000000',
                    attributes: [{ key: 'user.id', value: { stringValue: hostile } }],
                    events: [{ name: 'ev', timeUnixNano: '1767225600000500000', attributes: [{ key: 'order', value: { intValue: '42' } }] }],
                  },
                ],
              },
            ],
          },
        ],
      }),
    );
    const patterns = [
      { type: 'tags' as const, key: 'user.id', url: 'https://u.example/#{user.id}', text: 'user #{user.id}' },
      { type: 'process' as const, key: 'host.name', url: 'https://h.example/#{host.name}', text: 'host' },
      { type: 'logs' as const, key: 'order', url: 'https://o.example/#{order}?h=#{host.name}', text: 'order #{order}' },
      { type: 'traces' as const, url: 'https://t.example/#{traceID}', text: 'trace logs' },
    ];
    render(<SpanDetail detail={set.span(0, 0) as Detail} patterns={patterns} />);
    const links = screen.getAllByTestId('pattern-link') as HTMLAnchorElement[];
    expect(links.map((a) => [a.textContent, a.href, a.rel, a.target])).toEqual([
      [`user ${hostile}`, `https://u.example/${encodeURIComponent(hostile)}`, 'noopener noreferrer', '_blank'],
      ['host', 'https://h.example/h%201', 'noopener noreferrer', '_blank'],
      ['order 42', 'https://o.example/42?h=h%201', 'noopener noreferrer', '_blank'],
    ]);
    expect(document.querySelectorAll('script')).toHaveLength(0);
    set.free();
  });

  it('link the trace from its header', () => {
    const set = TraceSet.fromText(fixture);
    render(<TraceView set={set} trace={0} patterns={[{ type: 'traces', url: 'https://t.example/?id=#{traceID}&d=#{duration}', text: 'Logs for #{traceName}' }]} />);
    const a = screen.getByTestId('trace-links').querySelector('a')!;
    expect([a.textContent, a.href, a.rel]).toEqual([
      'Logs for frontend: GET /checkout',
      'https://t.example/?id=5b8efff798038103d269b633813fc60c&d=120000',
      'noopener noreferrer',
    ]);
    fireEvent.click(screen.getByRole('tab', { name: 'Graph' }));
    expect(screen.getAllByTestId('trace-graph-node')).toHaveLength(4);
    fireEvent.click(screen.getByRole('tab', { name: 'Flamegraph' }));
    expect(screen.getByTestId('flamegraph')).toBeTruthy();
    set.free();
  });
});

