// Loading traces into the browser module.
import { useEffect, useState } from 'react';
import { getText } from './api';
import { loadWasm, TraceSet } from './wasm';

export interface Loaded {
  set: TraceSet;
  raw: string;
}

/** Fetches JSON from each URL and parses each into a TraceSet (freed when the URLs change). */
export function useTraceSets(urls: string[]): { sets: Loaded[] | null; error: string | null } {
  const [state, setState] = useState<{ sets: Loaded[] | null; error: string | null }>({ sets: null, error: null });
  const key = urls.join('\n');
  useEffect(() => {
    let live = true;
    let made: Loaded[] = [];
    setState({ sets: null, error: null });
    (async () => {
      await loadWasm();
      const texts = await Promise.all(urls.map((u) => getText(u)));
      made = texts.map((raw) => ({ set: TraceSet.fromText(raw), raw }));
      if (live) setState({ sets: made, error: null });
      else made.forEach((m) => m.set.free());
    })().catch((e: unknown) => {
      if (live) setState({ sets: null, error: e instanceof Error ? e.message : String(e) });
    });
    return () => {
      live = false;
      // Freed after React has let go of the views that use them.
      const old = made;
      setTimeout(() => old.forEach((m) => m.set.free()), 0);
    };
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [key]);
  return state;
}
