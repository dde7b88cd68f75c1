// The search form and its results, with the query kept in the URL (/search?service=…).
import { useEffect, useMemo, useState, type FormEvent } from 'react';
import * as api from '../api';
import { lookbacks, type UiConfig } from '../config';
import { parseDuration, parseTags } from '../format';
import { useTraceSets } from '../hooks';
import { navigate, useLocation } from '../router';
import { Results } from '../components/Results';
import type { TraceSummary } from '../wasm';

/** The /api/traces URL for the form's values; `null` when no service is chosen. */
export function searchUrl(q: URLSearchParams, nowMs: number = Date.now()): string | null {
  const service = q.get('service');
  if (!service) return null;
  const p = new URLSearchParams({ service });
  const op = q.get('operation');
  if (op) p.set('operation', op);
  const tags = parseTags(q.get('tags') ?? '');
  if (Object.keys(tags).length) p.set('tags', JSON.stringify(tags));
  const lookback = q.get('lookback') ?? '1h';
  if (lookback === 'custom') {
    const start = Date.parse(q.get('start') ?? '');
    const end = Date.parse(q.get('end') ?? '');
    if (!Number.isNaN(start)) p.set('start', String(start * 1000));
    if (!Number.isNaN(end)) p.set('end', String(end * 1000));
    p.set('lookback', 'custom');
  } else {
    p.set('end', String(nowMs * 1000));
    p.set('lookback', lookback);
  }
  for (const k of ['minDuration', 'maxDuration'] as const) {
    const v = q.get(k);
    if (v && parseDuration(v) !== null) p.set(k, v.replace('μs', 'us'));
  }
  p.set('limit', q.get('limit') || '20');
  return `/api/traces?${p.toString()}`;
}

export function SearchPage({ cfg }: { cfg: UiConfig }) {
  const { search } = useLocation();
  const q = useMemo(() => new URLSearchParams(search), [search]);
  const [services, setServices] = useState<string[]>([]);
  const [ops, setOps] = useState<string[]>([]);
  const [err, setErr] = useState<string | null>(null);
  const [form, setForm] = useState(() => ({
    service: q.get('service') ?? '',
    operation: q.get('operation') ?? '',
    tags: q.get('tags') ?? '',
    lookback: q.get('lookback') ?? '1h',
    start: q.get('start') ?? '',
    end: q.get('end') ?? '',
    minDuration: q.get('minDuration') ?? '',
    maxDuration: q.get('maxDuration') ?? '',
    limit: q.get('limit') ?? '20',
  }));
  const set = (k: keyof typeof form, v: string) => setForm((f) => ({ ...f, [k]: v }));

  useEffect(() => {
    api
      .services()
      .then((s) => {
        setServices(s);
        setForm((f) => (f.service || s.length === 0 ? f : { ...f, service: s[0] }));
      })
      .catch((e: Error) => setErr(e.message));
  }, []);
  useEffect(() => {
    if (!form.service) return;
    api.operations(form.service).then(setOps, () => setOps([]));
  }, [form.service]);

  // The time is fixed when the search is submitted (kept in the URL as `at`).
  const url = useMemo(() => searchUrl(q, Number(q.get('at')) || Date.now()), [q]);

  const submit = (e: FormEvent) => {
    e.preventDefault();
    const p = new URLSearchParams();
    for (const [k, v] of Object.entries(form)) if (v) p.set(k, v);
    if (form.lookback !== 'custom') {
      p.delete('start');
      p.delete('end');
    }
    p.set('at', String(Date.now()));
    navigate(`/search?${p.toString()}`);
  };

  const badDuration = [form.minDuration, form.maxDuration].some((d) => d && parseDuration(d) === null);
  return (
    <div className="page search-page">
      <form className="search-form" onSubmit={submit} aria-label="Search traces">
        <label>
          Service
          <select value={form.service} onChange={(e) => setForm((f) => ({ ...f, service: e.target.value, operation: '' }))} name="service">
            {services.length === 0 && <option value="">(no services)</option>}
            {services.map((s) => (
              <option key={s}>{s}</option>
            ))}
          </select>
        </label>
        <label>
          Operation
          <select value={form.operation} onChange={(e) => set('operation', e.target.value)} name="operation">
            <option value="">all</option>
            {ops.map((o) => (
              <option key={o}>{o}</option>
            ))}
          </select>
        </label>
        <label>
          Tags
          <input value={form.tags} onChange={(e) => set('tags', e.target.value)} name="tags" placeholder='http.status_code=500 error=true' />
        </label>
        <label>
          Lookback
          <select value={form.lookback} onChange={(e) => set('lookback', e.target.value)} name="lookback">
            {lookbacks(cfg).map((l) => (
              <option key={l.value} value={l.value}>
                {l.label}
              </option>
            ))}
            <option value="custom">Custom range</option>
          </select>
        </label>
        {form.lookback === 'custom' && (
          <>
            <label>
              From
              <input type="datetime-local" step="1" value={form.start} onChange={(e) => set('start', e.target.value)} name="start" />
            </label>
            <label>
              To
              <input type="datetime-local" step="1" value={form.end} onChange={(e) => set('end', e.target.value)} name="end" />
            </label>
          </>
        )}
        <div className="row2">
          <label>
            Min duration
            <input value={form.minDuration} onChange={(e) => set('minDuration', e.target.value)} name="minDuration" placeholder="e.g. 1.2s, 100ms" />
          </label>
          <label>
            Max duration
            <input value={form.maxDuration} onChange={(e) => set('maxDuration', e.target.value)} name="maxDuration" placeholder="e.g. 5s" />
          </label>
        </div>
        <label>
          Limit
          <input type="number" min="1" max={cfg.search?.maxLimit ?? 1500} value={form.limit} onChange={(e) => set('limit', e.target.value)} name="limit" />
        </label>
        {badDuration && <p className="error">durations look like 1.2s, 300ms, 50us</p>}
        <button type="submit" className="primary" disabled={!form.service || badDuration}>
          Find traces
        </button>
        {err && <p className="error">{err}</p>}
      </form>
      <div className="search-results">{url ? <SearchResults url={url} /> : <p className="muted">Pick a service and search.</p>}</div>
    </div>
  );
}

function SearchResults({ url }: { url: string }) {
  const { sets, error } = useTraceSets([url]);
  const traces = useMemo(() => (sets ? (sets[0].set.traces() as TraceSummary[]) : []), [sets]);
  if (error) return <p className="error">{error}</p>;
  if (!sets) return <p className="muted">Searching…</p>;
  if (traces.length === 0) return <p className="muted">No traces found.</p>;
  return (
    <Results
      traces={traces}
      hrefFor={(t) => `/trace/${t.trace_id}`}
      compareHref={(a, b) => `/compare/${a.trace_id}/${b.trace_id}`}
    />
  );
}
