// A minimal history-API router: the daemon answers index.html for every non-API path.
import { createContext, useContext, useEffect, useState, type ReactNode, type MouseEvent } from 'react';
import { withBase, withoutBase } from './base';

const RouterCtx = createContext<{ path: string; search: string }>({ path: '/', search: '' });

/** Goes to an app path (`/trace/abc`), under the base path. */
export function navigate(to: string): void {
  window.history.pushState(null, '', withBase(to));
  window.dispatchEvent(new PopStateEvent('popstate'));
}

export function RouterProvider({ children }: { children: ReactNode }) {
  const read = () => ({ path: withoutBase(window.location.pathname), search: window.location.search });
  const [loc, setLoc] = useState(read);
  useEffect(() => {
    const on = () => setLoc(read());
    window.addEventListener('popstate', on);
    return () => window.removeEventListener('popstate', on);
  }, []);
  return <RouterCtx.Provider value={loc}>{children}</RouterCtx.Provider>;
}

export function useLocation() {
  return useContext(RouterCtx);
}

export function Link({ to, children, className }: { to: string; children: ReactNode; className?: string }) {
  const onClick = (e: MouseEvent<HTMLAnchorElement>) => {
    if (e.button !== 0 || e.metaKey || e.ctrlKey || e.shiftKey || e.altKey) return;
    e.preventDefault();
    navigate(to);
  };
  return (
    <a href={withBase(to)} onClick={onClick} className={className}>
      {children}
    </a>
  );
}
