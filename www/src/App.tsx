// The shell: navigation, theme toggle, UI options, and the routes.
import { useEffect, useState } from 'react';
import { getJson } from './api';
import { safeUrl, type MenuItem, type UiConfig } from './config';
import { Link, RouterProvider, useLocation } from './router';
import { SearchPage } from './pages/Search';
import { ComparePage, DependenciesPage, TracePage } from './pages/Trace';
import { InspectCompare, InspectDependencies, InspectPage, InspectTrace } from './pages/Inspect';
import { MonitorPage } from './pages/Monitor';
import { TokenPrompt } from './components/TokenPrompt';

type Theme = 'light' | 'dark';

function useTheme(): [Theme, () => void] {
  const [theme, setTheme] = useState<Theme>(() => {
    const saved = localStorage.getItem('spoor.theme');
    if (saved === 'light' || saved === 'dark') return saved;
    return window.matchMedia?.('(prefers-color-scheme: dark)').matches ? 'dark' : 'light';
  });
  useEffect(() => {
    document.documentElement.dataset.theme = theme;
    localStorage.setItem('spoor.theme', theme);
  }, [theme]);
  return [theme, () => setTheme((t) => (t === 'dark' ? 'light' : 'dark'))];
}

function MenuLinks({ items }: { items: MenuItem[] }) {
  return (
    <>
      {items.map((m, i) =>
        m.items ? (
          <details key={i} className="menu-group">
            <summary>{m.label}</summary>
            <div className="menu-items">
              <MenuLinks items={m.items} />
            </div>
          </details>
        ) : m.url && safeUrl(m.url) ? (
          <a key={i} href={safeUrl(m.url)!} target="_blank" rel="noopener noreferrer">
            {m.label}
          </a>
        ) : null,
      )}
    </>
  );
}

function Routes({ cfg }: { cfg: UiConfig }) {
  const { path } = useLocation();
  const parts = path.split('/').filter(Boolean).map(decodeURIComponent);
  const depsOn = cfg.dependencies?.menuEnabled !== false;
  switch (parts[0] ?? 'search') {
    case 'search':
      return <SearchPage cfg={cfg} />;
    case 'trace':
      return parts[1] ? <TracePage key={parts[1]} id={parts[1]} cfg={cfg} /> : null;
    case 'compare':
      return parts[2] ? <ComparePage a={parts[1]} b={parts[2]} /> : null;
    case 'dependencies':
      return depsOn ? <DependenciesPage cfg={cfg} /> : <p className="page muted">The dependencies page is turned off.</p>;
    case 'monitor':
      return <MonitorPage />;
    case 'inspect':
      if (parts[1] === 'trace') return <InspectTrace index={Number(parts[2])} cfg={cfg} />;
      if (parts[1] === 'compare') return <InspectCompare a={Number(parts[2])} b={Number(parts[3])} />;
      if (parts[1] === 'dependencies') return <InspectDependencies />;
      return <InspectPage />;
    default:
      return <p className="page error">page not found</p>;
  }
}

export function App({ initialConfig }: { initialConfig?: UiConfig }) {
  const [theme, toggle] = useTheme();
  const [cfg, setCfg] = useState<UiConfig>(initialConfig ?? {});
  // bumped when a token is entered: the page is mounted again and asks again
  const [signIns, setSignIns] = useState(0);
  useEffect(() => {
    if (initialConfig) return;
    // Without a daemon (a static copy of the UI) there is no config: the defaults apply.
    getJson<UiConfig>('/api/ui-config').then(
      (c) => setCfg(c && typeof c === 'object' ? c : {}),
      () => setCfg({}),
    );
  }, [initialConfig]);
  return (
    <RouterProvider>
      <nav className="topnav">
        <Link to="/search" className="brand">
          Spoor
        </Link>
        <Link to="/search">Search</Link>
        {cfg.dependencies?.menuEnabled !== false && <Link to="/dependencies">Dependencies</Link>}
        {cfg.monitor?.menuEnabled !== false && <Link to="/monitor">Monitor</Link>}
        <Link to="/inspect">Inspect file</Link>
        <span className="spacer" />
        <MenuLinks items={cfg.menu ?? []} />
        <button onClick={toggle} aria-label="Toggle dark theme" className="theme">
          {theme === 'dark' ? '☀ Light' : '☾ Dark'}
        </button>
      </nav>
      <TokenPrompt onSaved={() => setSignIns((n) => n + 1)} />
      <main key={signIns}>
        <Routes cfg={cfg} />
      </main>
    </RouterProvider>
  );
}
