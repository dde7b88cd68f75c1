// UI options from GET /api/ui-config (the Jaeger UI's config file format, the parts Spoor uses).

export interface MenuItem {
  label: string;
  url?: string;
  items?: MenuItem[];
}

/** Where a link pattern applies: span attributes, resource (process) attributes, event (log)
 * fields, or the trace itself. */
export type LinkType = 'tags' | 'process' | 'logs' | 'traces';

/**
 * A link pattern of the Jaeger UI's config: `type`, `key` and `value` select the items it applies
 * to (a string or a list; `type` defaults to `tags`, a missing `key`/`value` matches any);
 * `url` and `text` are `#{name}` templates.
 */
export interface LinkPattern {
  type?: LinkType | LinkType[];
  key?: string | string[];
  value?: string | string[];
  url: string;
  text?: string;
}

/** A link ready to render: an http(s) URL and plain text. */
export interface ResolvedLink {
  url: string;
  text: string;
}

export interface UiConfig {
  menu?: MenuItem[];
  linkPatterns?: LinkPattern[];
  dependencies?: { menuEnabled?: boolean };
  monitor?: { menuEnabled?: boolean };
  search?: { maxLookback?: { label?: string; value: string }; maxLimit?: number };
}

/** Only http(s) links are rendered: a pattern or value cannot smuggle in `javascript:`. */
export function safeUrl(url: string): string | null {
  try {
    const u = new URL(url, 'http://localhost/');
    return u.protocol === 'http:' || u.protocol === 'https:' ? url : null;
  } catch {
    return null;
  }
}

function matches(rule: string | string[] | undefined, v: string, dflt?: string): boolean {
  const r = rule ?? dflt;
  if (r === undefined) return true;
  return Array.isArray(r) ? r.includes(v) : r === v;
}

/** The `#{name}` placeholders of a template, in order. */
export function placeholders(template: string): string[] {
  return [...template.matchAll(/#\{([^}]+)\}/g)].map((m) => m[1]);
}

/**
 * Fills a pattern: every `#{name}` of `url` by the URL-encoded value and of `text` by the value
 * as it is (it is rendered as a text node). `null` when a placeholder has no value or the URL is
 * not http(s).
 */
function fill(p: LinkPattern, value: (name: string) => string | undefined): ResolvedLink | null {
  if (typeof p.url !== 'string') return null;
  let missing = false;
  const sub = (s: string, enc: (v: string) => string) =>
    s.replace(/#\{([^}]+)\}/g, (_, name: string) => {
      const v = value(name);
      if (v === undefined) {
        missing = true;
        return '';
      }
      return enc(v);
    });
  const url = sub(p.url, encodeURIComponent);
  const text = sub(typeof p.text === 'string' ? p.text : p.url, (v) => v);
  if (missing) return null;
  const safe = safeUrl(url);
  return safe ? { url: safe, text } : null;
}

/**
 * The links for one item (an attribute, resource attribute or event field) under the config's
 * patterns of `type`, as the Jaeger UI computes them: a placeholder takes the value of the
 * same-named key among `items` first, then from `lookup` (the span, its resource and its
 * ancestors; not used for `process`).
 */
export function linksFor(
  patterns: LinkPattern[] | undefined,
  type: Exclude<LinkType, 'traces'>,
  item: { key: string; value: string },
  items: { key: string; value: string }[],
  lookup?: (name: string) => string | undefined,
): ResolvedLink[] {
  const out: ResolvedLink[] = [];
  for (const p of Array.isArray(patterns) ? patterns : []) {
    if (!p || !matches(p.type, type, 'tags') || !matches(p.key, item.key) || !matches(p.value, item.value)) continue;
    const link = fill(p, (name) => items.find((a) => a.key === name)?.value ?? (type === 'process' ? undefined : lookup?.(name)));
    if (link) out.push(link);
  }
  return out;
}

/** The trace-level links: patterns of type `traces` filled from the trace's fields
 * (`traceID`, `traceName`, `startTime`, `endTime`, `duration` in microseconds, …). */
export function traceLinks(patterns: LinkPattern[] | undefined, trace: Record<string, string | number>): ResolvedLink[] {
  const out: ResolvedLink[] = [];
  for (const p of Array.isArray(patterns) ? patterns : []) {
    if (!p || !matches(p.type, 'traces', 'tags')) continue;
    const link = fill(p, (name) => (Object.hasOwn(trace, name) ? String(trace[name]) : undefined));
    if (link) out.push(link);
  }
  return out;
}

/** Lookback choices of the search form, in milliseconds, cut at the configured maximum. */
export const LOOKBACKS: { label: string; value: string; ms: number }[] = [
  { label: 'Last 5 minutes', value: '5m', ms: 5 * 60e3 },
  { label: 'Last 15 minutes', value: '15m', ms: 15 * 60e3 },
  { label: 'Last hour', value: '1h', ms: 3600e3 },
  { label: 'Last 2 hours', value: '2h', ms: 2 * 3600e3 },
  { label: 'Last 6 hours', value: '6h', ms: 6 * 3600e3 },
  { label: 'Last 12 hours', value: '12h', ms: 12 * 3600e3 },
  { label: 'Last 24 hours', value: '1d', ms: 86400e3 },
  { label: 'Last 2 days', value: '2d', ms: 2 * 86400e3 },
  { label: 'Last 7 days', value: '7d', ms: 7 * 86400e3 },
];

export function lookbackMs(value: string): number | null {
  const m = /^(\d+)(m|h|d|w)$/.exec(value);
  if (!m) return null;
  return Number(m[1]) * { m: 60e3, h: 3600e3, d: 86400e3, w: 7 * 86400e3 }[m[2] as 'm' | 'h' | 'd' | 'w'];
}

export function lookbacks(cfg: UiConfig): typeof LOOKBACKS {
  const max = cfg.search?.maxLookback ? lookbackMs(cfg.search.maxLookback.value) : null;
  return max === null ? LOOKBACKS : LOOKBACKS.filter((l) => l.ms <= max);
}
