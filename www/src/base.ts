// The path prefix the UI is served under (Jaeger's `--query.base-path`, e.g. `/jaeger`): the
// daemon writes it into index.html's `<base href>`; `''` when served at the root.

/** The prefix from a `<base href>` value: a path without a trailing slash (`''` for `/`). */
export function basePathOf(href: string | null | undefined, origin = 'http://localhost'): string {
  if (!href) return '';
  try {
    return new URL(href, origin).pathname.replace(/\/+$/, '');
  } catch {
    return '';
  }
}

export const BASE: string =
  typeof document === 'undefined' ? '' : basePathOf(document.querySelector('base')?.getAttribute('href'), document.location?.origin);

/** An app path (`/search`) as a URL path under the base (`/jaeger/search`). */
export function withBase(path: string): string {
  return path.startsWith('/') ? BASE + path : path;
}

/** A URL path without the base (`/jaeger/search` -> `/search`). */
export function withoutBase(pathname: string): string {
  if (!BASE) return pathname;
  if (pathname === BASE) return '/';
  return pathname.startsWith(BASE + '/') ? pathname.slice(BASE.length) : pathname;
}
