// Number and time formatting shared by the pages.

/** A duration in nanoseconds as Jaeger shows it: `1.23s`, `45.6ms`, `789μs`. */
export function fmtDuration(nanos: number): string {
  if (!Number.isFinite(nanos)) return '–';
  const sign = nanos < 0 ? '-' : '';
  const n = Math.abs(nanos);
  if (n >= 60e9) return `${sign}${trim(n / 60e9)}min`;
  if (n >= 1e9) return `${sign}${trim(n / 1e9)}s`;
  if (n >= 1e6) return `${sign}${trim(n / 1e6)}ms`;
  if (n >= 1e3) return `${sign}${trim(n / 1e3)}μs`;
  return `${sign}${Math.round(n)}ns`;
}

function trim(x: number): string {
  return String(Number(x.toFixed(2)));
}

/** A wall-clock time (nanoseconds since the epoch) in local time. */
export function fmtTime(nanos: number): string {
  const d = new Date(nanos / 1e6);
  const pad = (v: number, w = 2) => String(v).padStart(w, '0');
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} ${pad(d.getHours())}:${pad(
    d.getMinutes(),
  )}:${pad(d.getSeconds())}.${pad(d.getMilliseconds(), 3)}`;
}

/** How long ago a time was, coarsely (`5m ago`). */
export function fmtAgo(nanos: number, nowMs: number = Date.now()): string {
  const s = Math.max(0, Math.round((nowMs - nanos / 1e6) / 1000));
  if (s < 60) return `${s}s ago`;
  if (s < 3600) return `${Math.floor(s / 60)}m ago`;
  if (s < 86400) return `${Math.floor(s / 3600)}h ago`;
  return `${Math.floor(s / 86400)}d ago`;
}

/** Parses `k=v k2="v 2"` (logfmt, as the Jaeger UI's tags box) into a tags object. */
export function parseTags(text: string): Record<string, string> {
  const out: Record<string, string> = {};
  const re = /([^\s=]+)=("((?:[^"\\]|\\.)*)"|\S*)/g;
  let m: RegExpExecArray | null;
  while ((m = re.exec(text)) !== null) {
    out[m[1]] = m[3] !== undefined ? m[3].replace(/\\(.)/g, '$1') : m[2];
  }
  return out;
}

/** Parses a duration like `1.2s`, `300ms`, `50us`, `2m` into nanoseconds; `null` when invalid. */
export function parseDuration(text: string): number | null {
  const m = /^\s*(\d+(?:\.\d+)?)\s*(ns|us|μs|ms|s|m|h)\s*$/.exec(text);
  if (!m) return null;
  const unit: Record<string, number> = { ns: 1, us: 1e3, μs: 1e3, ms: 1e6, s: 1e9, m: 60e9, h: 3600e9 };
  return Number(m[1]) * unit[m[2]];
}
