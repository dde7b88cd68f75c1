// The daemon's Jaeger-compatible query API (under the base path the UI is served from).
import { withBase } from './base';

export class ApiError extends Error {}

/** The daemon asked for a bearer token (401): `--auth.tokens-file` / `SPOOR_AUTH_TOKENS`. */
export class AuthError extends ApiError {}

// The bearer token the user typed, kept for this browser tab only.
const TOKEN_KEY = 'spoor.token';

export function token(): string | null {
  return sessionStorage.getItem(TOKEN_KEY);
}

export function setToken(t: string | null): void {
  if (t) sessionStorage.setItem(TOKEN_KEY, t);
  else sessionStorage.removeItem(TOKEN_KEY);
}

// Who wants to know that a request was refused for want of a (valid) token.
const authListeners = new Set<(message: string) => void>();

export function onAuthRequired(listener: (message: string) => void): () => void {
  authListeners.add(listener);
  return () => authListeners.delete(listener);
}

async function get(url: string): Promise<Response> {
  let resp: Response;
  const t = token();
  try {
    resp = await fetch(withBase(url), t ? { headers: { Authorization: `Bearer ${t}` } } : undefined);
  } catch (e) {
    throw new ApiError(`cannot reach the query API: ${String(e)}`);
  }
  if (resp.status === 401) {
    const msg = (await resp.text().catch(() => '')).trim() || 'a bearer token is required';
    authListeners.forEach((l) => l(msg));
    throw new AuthError(msg);
  }
  if (!resp.ok) {
    let msg = `${resp.status} ${resp.statusText}`;
    try {
      const body = await resp.json();
      if (body?.errors?.[0]?.msg) msg = body.errors[0].msg;
    } catch {
      /* not JSON */
    }
    throw new ApiError(msg);
  }
  return resp;
}

export async function getJson<T>(url: string): Promise<T> {
  return (await get(url)).json() as Promise<T>;
}

export async function getText(url: string): Promise<string> {
  return (await get(url)).text();
}

export async function getBytes(url: string): Promise<Uint8Array> {
  return new Uint8Array(await (await get(url)).arrayBuffer());
}

export async function services(): Promise<string[]> {
  const r = await getJson<{ data: string[] | null }>('/api/services');
  return (r.data ?? []).slice().sort();
}

export async function operations(service: string): Promise<string[]> {
  const r = await getJson<{ data: string[] | null }>(`/api/services/${encodeURIComponent(service)}/operations`);
  return (r.data ?? []).slice().sort();
}

export interface Dependency {
  parent: string;
  child: string;
  callCount: number;
}

export async function dependencies(endTsMs: number, lookbackMs: number): Promise<Dependency[]> {
  const r = await getJson<{ data: Dependency[] | null }>(
    `/api/dependencies?endTs=${Math.round(endTsMs)}&lookback=${Math.round(lookbackMs)}`,
  );
  return r.data ?? [];
}
