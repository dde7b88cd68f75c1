import { describe, expect, it } from 'vitest';
import { fmtDuration, parseDuration, parseTags } from '../format';
import { linksFor, lookbacks, traceLinks, type LinkPattern } from '../config';
import { basePathOf } from '../base';
import { clampRange, zoomRange } from '../components/Minimap';
import { focusGraph } from '../components/Dependencies';
import { searchUrl } from '../pages/Search';
import { sortTraces } from '../components/Results';
import { layout } from '../components/ServiceGraph';
import type { TraceSummary } from '../wasm';

describe('format', () => {
  it('formats durations like Jaeger', () => {
    expect([0, 999, 1500, 45_600_000, 1_234_000_000, 90e9].map(fmtDuration)).toEqual([
      '0ns', '999ns', '1.5μs', '45.6ms', '1.23s', '1.5min',
    ]);
  });
  it('parses logfmt tags and durations', () => {
    expect(parseTags('a=1 http.url="/x y" e=')).toEqual({ a: '1', 'http.url': '/x y', e: '' });
    expect(parseDuration('1.2s')).toBe(1.2e9);
    expect(parseDuration('50us')).toBe(50_000);
    expect(parseDuration('fast')).toBeNull();
  });
});

describe('ui config', () => {
  const patterns: LinkPattern[] = [
    { type: 'tags', key: 'user.id', url: 'https://users.example/#{user.id}?r=#{region}', text: 'user #{user.id}' },
    { type: 'tags', key: 'bad', url: 'javascript:alert(#{bad})' },
    { type: 'process', key: 'host.name', url: 'https://hosts.example/#{host.name}/#{pod}', text: 'host' },
    { type: 'logs', key: 'order.id', url: 'https://orders.example/#{order.id}?u=#{user.id}', text: 'order #{order.id}' },
    { type: 'traces', url: 'https://logs.example/?trace=#{traceID}&from=#{startTime}', text: 'logs of #{traceName}' },
    { type: ['tags', 'logs'], key: ['a', 'b'], value: 'x', url: 'https://ab.example/#{a}#{b}' },
  ];
  const kv = (o: Record<string, string>) => Object.entries(o).map(([key, value]) => ({ key, value }));
  // [type, item key, items, lookup (span, resource, ancestors)] -> links
  const cases: [Parameters<typeof linksFor>[1], string, Record<string, string>, Record<string, string>, { url: string; text: string }[]][] = [
    ['tags', 'user.id', { 'user.id': 'a b/c', region: 'eu' }, {}, [{ url: 'https://users.example/a%20b%2Fc?r=eu', text: 'user a b/c' }]],
    // A placeholder missing among the items is looked up in the span, resource and ancestors.
    ['tags', 'user.id', { 'user.id': 'x' }, { region: 'us' }, [{ url: 'https://users.example/x?r=us', text: 'user x' }]],
    ['tags', 'user.id', { 'user.id': 'x' }, {}, []],
    ['process', 'user.id', { 'user.id': 'x', region: 'y' }, {}, []],
    ['tags', 'bad', { bad: '1' }, {}, []],
    // Process links never look outside the resource.
    ['process', 'host.name', { 'host.name': 'web-1' }, { pod: 'p' }, []],
    ['process', 'host.name', { 'host.name': 'web-1', pod: 'p/1' }, {}, [{ url: 'https://hosts.example/web-1/p%2F1', text: 'host' }]],
    ['logs', 'order.id', { 'order.id': '#7' }, { 'user.id': 'u&1' }, [{ url: 'https://orders.example/%237?u=u%261', text: 'order #7' }]],
    ['tags', 'order.id', { 'order.id': '7', 'user.id': 'u' }, {}, []],
    ['logs', 'b', { a: '1', b: 'x' }, {}, [{ url: 'https://ab.example/1x', text: 'https://ab.example/1x' }]],
    ['logs', 'b', { a: '1', b: 'y' }, {}, []],
  ];
  it('fills #{key} templates from the item, its siblings and its span, URL-encoded', () => {
    for (const [type, key, items, lookup, want] of cases) {
      const got = linksFor(patterns, type, { key, value: items[key] }, kv(items), (n) => lookup[n]);
      expect([type, key, got]).toEqual([type, key, want]);
    }
  });
  it('fills trace links from the trace fields', () => {
    expect(traceLinks(patterns, { traceID: 'abc', startTime: 17, traceName: 'web: GET /' })).toEqual([
      { url: 'https://logs.example/?trace=abc&from=17', text: 'logs of web: GET /' },
    ]);
    expect(traceLinks(patterns, { traceID: 'abc' })).toEqual([]);
    expect(traceLinks(undefined, { traceID: 'abc' })).toEqual([]);
  });
  it('cuts lookbacks at the maximum', () => {
    expect(lookbacks({ search: { maxLookback: { value: '2h' } } }).map((l) => l.value)).toEqual(['5m', '15m', '1h', '2h']);
    expect(lookbacks({}).length).toBe(9);
  });
});

describe('search', () => {
  it('builds the Jaeger query', () => {
    const u = searchUrl(new URLSearchParams('service=a b&operation=GET /&tags=x=1&lookback=2h&minDuration=10ms&limit=5'), 1_000_000);
    const p = new URLSearchParams(u!.split('?')[1]);
    expect(Object.fromEntries(p)).toEqual({
      service: 'a b', operation: 'GET /', tags: '{"x":"1"}', end: '1000000000', lookback: '2h', minDuration: '10ms', limit: '5',
    });
    expect(searchUrl(new URLSearchParams(''))).toBeNull();
    const c = new URLSearchParams(searchUrl(new URLSearchParams('service=a&lookback=custom&start=2026-01-01T00:00:00Z&end=2026-01-01T01:00:00Z'))!.split('?')[1]);
    expect([c.get('start'), c.get('end')]).toEqual(['1767225600000000', '1767229200000000']);
  });
  it('sorts results', () => {
    const t = (index: number, start: number, dur: number, spans: number, errors: number) =>
      ({ index, trace_id: String(index), root_service: 's', root_operation: 'o', start_unix_nanos: start, duration_nanos: dur, span_count: spans, error_count: errors, services: [] }) as TraceSummary;
    const list = [t(0, 1, 30, 2, 0), t(1, 3, 10, 9, 1), t(2, 2, 20, 1, 4)];
    const ids = (k: Parameters<typeof sortTraces>[1]) => sortTraces(list, k).map((x) => x.index);
    expect(ids('recent')).toEqual([1, 2, 0]);
    expect(ids('longest')).toEqual([0, 2, 1]);
    expect(ids('shortest')).toEqual([1, 2, 0]);
    expect(ids('spans')).toEqual([1, 0, 2]);
    expect(ids('errors')).toEqual([2, 1, 0]);
  });
});

describe('service graph layout', () => {
  it('puts each service right of its deepest caller, and survives cycles', () => {
    const { pos } = layout({
      nodes: [],
      edges: [
        { parent: 'web', child: 'api', call_count: 1 },
        { parent: 'api', child: 'db', call_count: 1 },
        { parent: 'web', child: 'db', call_count: 1 },
        { parent: 'db', child: 'api', call_count: 1 },
      ],
    });
    expect(['web', 'api', 'db'].map((n) => pos.get(n)!.layer)).toEqual([0, 1, 2]);
  });
});

describe('base path', () => {
  it('reads the prefix from <base href>', () => {
    expect([null, '/', '/jaeger/', '/a/b/', 'http://h/x/'].map((h) => basePathOf(h))).toEqual(['', '', '/jaeger', '/a/b', '/x']);
  });
});

describe('minimap ranges', () => {
  it('clamps, keeps a minimum width and zooms around a point', () => {
    expect(clampRange([0.8, 0.2])).toEqual([0.2, 0.8]);
    expect(clampRange([-0.1, 0.3])).toEqual([0, 0.4]);
    expect(clampRange([0.9, 1.2])[1]).toBe(1);
    expect(clampRange([0.5, 0.5])[1] - 0.5).toBeCloseTo(0.0005, 6);
    const z = zoomRange([0, 1], 0.5, 0.5);
    expect(z[0]).toBeCloseTo(0.25, 9);
    expect(z[1]).toBeCloseTo(0.75, 9);
    expect(zoomRange([0.2, 0.4], 0.3, 10)).toEqual([0, 1]);
  });
});

describe('dependencies focus', () => {
  const e = (parent: string, child: string) => ({ parent, child, call_count: 1 });
  const graph = { nodes: [], edges: [e('web', 'api'), e('api', 'db'), e('db', 'disk'), e('mobile', 'web'), e('cron', 'db'), e('api', 'cache')] };
  it('keeps the services within N hops up and down', () => {
    const names = (depth: number, focal = 'api') => focusGraph(graph, focal, depth).nodes.map((n) => n.service);
    expect(names(1)).toEqual(['api', 'cache', 'db', 'web']);
    expect(names(2)).toEqual(['api', 'cache', 'db', 'disk', 'mobile', 'web']);
    expect(names(1, 'db')).toEqual(['api', 'cron', 'db', 'disk']);
    expect(focusGraph(graph, 'api', 1).edges.map((x) => `${x.parent}>${x.child}`)).toEqual(['web>api', 'api>db', 'api>cache']);
  });
});
