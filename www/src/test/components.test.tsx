import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { fireEvent, render, screen } from '@testing-library/react';
import { TraceSet, type SpanDetail as Detail } from '../wasm';
import { Timeline } from '../components/Timeline';
import { SpanDetail } from '../components/SpanDetail';
import { TraceView } from '../components/TraceView';
import { DiffView } from '../components/DiffView';

const fixture = fs.readFileSync(path.resolve(process.cwd(), '../tests/fixtures/otlp_trace.json'), 'utf8');

function otlp(spans: object[], service = 'svc') {
  return JSON.stringify({
    resourceSpans: [{ resource: { attributes: [{ key: 'service.name', value: { stringValue: service } }] }, scopeSpans: [{ spans }] }],
  });
}

describe('Timeline', () => {
  it('collapses, expands and finds', () => {
    const set = TraceSet.fromText(fixture);
    let selected: number | null = null;
    render(<Timeline set={set} trace={0} selected={null} onSelect={(s) => (selected = s)} />);
    expect(screen.getAllByTestId('span-row')).toHaveLength(4);
    fireEvent.click(screen.getAllByRole('button', { name: 'Collapse' })[1]);
    expect(screen.getAllByTestId('span-row')).toHaveLength(2);
    fireEvent.click(screen.getByRole('button', { name: 'Expand' }));
    expect(screen.getAllByTestId('span-row')).toHaveLength(4);
    const find = screen.getByLabelText('Find in trace');
    fireEvent.change(find, { target: { value: 'CART' } });
    expect(screen.getByTestId('find-count').textContent).toBe('1 / 3');
    fireEvent.keyDown(find, { key: 'ArrowDown' });
    expect(screen.getByTestId('find-count').textContent).toBe('2 / 3');
    expect(selected).toBe(2);
    fireEvent.keyDown(find, { key: 'ArrowUp' });
    fireEvent.keyDown(find, { key: 'ArrowUp' });
    expect(screen.getByTestId('find-count').textContent).toBe('3 / 3');
    expect(document.querySelectorAll('.tl-row.match')).toHaveLength(3);
    set.free();
  });

  it('renders only the rows in view of a big trace', () => {
    const spans = Array.from({ length: 3000 }, (_, i) => ({
      traceId: '0123456789abcdef0123456789abcdef',
      spanId: (i + 1).toString(16).padStart(16, '0'),
      parentSpanId: i ? '0000000000000001' : '',
      name: `op-${i}`,
      startTimeUnixNano: String(1767225600000000000n + BigInt(i) * 1000n),
      endTimeUnixNano: String(1767225600000000000n + BigInt(i) * 1000n + 1000000n),
    }));
    const set = TraceSet.fromText(otlp(spans));
    render(<Timeline set={set} trace={0} selected={null} onSelect={() => {}} height={240} />);
    const n = screen.getAllByTestId('span-row').length;
    expect(n).toBeGreaterThan(5);
    expect(n).toBeLessThan(40);
    const scroller = screen.getByTestId('timeline-scroll');
    scroller.scrollTop = 24 * 2000;
    fireEvent.scroll(scroller);
    const tops = screen.getAllByTestId('span-row').map((r) => r.style.top);
    expect(tops).toContain(`${24 * 2000}px`);
    expect(tops.length).toBeLessThan(40);
    set.free();
  });
});

describe('SpanDetail', () => {
  it('shows markup in attribute values as text', () => {
    const hostile = '<img src=x onerror="window.__pwned=1"><script>window.__pwned=2</script>';
    const set = TraceSet.fromText(
      otlp([
        {
          traceId: '0123456789abcdef0123456789abcdef',
          spanId: '0000000000000001',
          name: '<b>op</b>',
          startTimeUnixNano: '1767225600000000000',
          endTimeUnixNano: '1767225600001000000',
          attributes: [{ key: 'user.id', value: { stringValue: hostile } }],
          events: [{ name: '<i>ev</i>', timeUnixNano: '1767225600000500000' }],
        },
      ]),
    );
    const detail = set.span(0, 0) as Detail;
    render(
      <SpanDetail
        detail={detail}
        patterns={[{ type: 'tags', key: 'user.id', url: 'https://u.example/#{user.id}', text: 'profile' }]}
      />,
    );
    expect(screen.getByTestId('attr-value').textContent).toContain(hostile);
    const root = screen.getByTestId('span-detail');
    expect(root.querySelectorAll('img, script, b, i')).toHaveLength(0);
    expect((window as unknown as { __pwned?: number }).__pwned).toBeUndefined();
    const link = screen.getByText('profile') as HTMLAnchorElement;
    expect(link.href).toBe(`https://u.example/${encodeURIComponent(hostile)}`);
    expect(screen.getByText('<i>ev</i>')).toBeTruthy();
    set.free();
  });
});

describe('TraceView', () => {
  it('shows the root cause and switches tabs', () => {
    const set = TraceSet.fromText(fixture);
    render(<TraceView set={set} trace={0} raw={fixture} />);
    expect(screen.getByTestId('root-cause').textContent).toMatch(/Errors originate in: frontend: GET \/checkout, cart: POST \/cart/);
    fireEvent.click(screen.getByRole('tab', { name: 'Statistics' }));
    expect(screen.getByTestId('stats-table').querySelectorAll('tbody tr')).toHaveLength(4);
    fireEvent.click(screen.getByRole('tab', { name: 'JSON' }));
    expect(screen.getByTestId('trace-json').textContent).toContain('"resourceSpans": [');
    set.free();
  });
});

describe('DiffView', () => {
  it('lists the merged call tree', () => {
    const set = TraceSet.fromText(fixture);
    const t = set.traces();
    render(<DiffView diff={set.diff(0, 1)} a={t[0]} b={t[1]} />);
    expect(screen.getAllByTestId('diff-row')).toHaveLength(5);
    expect(screen.getByTestId('diff-summary').textContent).toBe('5 nodes: 1 only in B, 4 only in A');
    set.free();
  });
});
