// UI options from GET /api/ui-config (the Jaeger UI's config file format, the parts Spoor uses).

export interface MenuItem {
  label: string;
  url?: string;
  items?: MenuItem[];
}

export interface LinkPattern {
  type?: 'tags' | 'process' | 'logs' | 'traces';
  key?: string;
  url: string;
  text?: string;
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

/**
 * The link for attribute `key` under the config's patterns, with every `#{name}` replaced by
 * the (URL-encoded) value of attribute `name` from `values`; `null` when no pattern applies or
 * a placeholder has no value.
 */
export function linkFor(
  patterns: LinkPattern[] | undefined,
  type: 'tags' | 'process',
  key: string,
  values: Record<string, string>,
): { url: string; text: string } | null {
  for (const p of patterns ?? []) {
    if ((p.type ?? 'tags') !== type || p.key !== key) continue;
    let missing = false;
    const fill = (s: string, enc: (v: string) => string) =>
      s.replace(/#\{([^}]+)\}/g, (_, name: string) => {
        const v = values[name];
        if (v === undefined) {
          missing = true;
          return '';
        }
        return enc(v);
      });
    const url = fill(p.url, encodeURIComponent);
    const text = fill(p.text ?? p.url, (v) => v);
    if (missing) continue;
    const safe = safeUrl(url);
    if (safe) return { url: safe, text };
  }
  return null;
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
