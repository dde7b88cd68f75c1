import { describe, expect, it } from 'vitest';
import { fmtDuration, parseDuration, parseTags } from '../format';
import { linkFor, lookbacks } from '../config';
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
  const patterns = [
    { type: 'tags' as const, key: 'user.id', url: 'https://users.example/#{user.id}?r=#{region}', text: 'user #{user.id}' },
    { type: 'tags' as const, key: 'bad', url: 'javascript:alert(#{bad})' },
  ];
  it('fills #{key} placeholders, URL-encoded, only when every value exists', () => {
    expect(linkFor(patterns, 'tags', 'user.id', { 'user.id': 'a b/c', region: 'eu' })).toEqual({
      url: 'https://users.example/a%20b%2Fc?r=eu',
      text: 'user a b/c',
    });
    expect(linkFor(patterns, 'tags', 'user.id', { 'user.id': 'x' })).toBeNull();
    expect(linkFor(patterns, 'process', 'user.id', { 'user.id': 'x', region: 'y' })).toBeNull();
  });
  it('never makes a javascript: link', () => {
    expect(linkFor(patterns, 'tags', 'bad', { bad: '1' })).toBeNull();
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
