// Loading traces into the browser module.
import { useEffect, useState } from 'react';
import { getBytes } from './api';
import { loadWasm, TraceSet } from './wasm';

export interface Loaded {
  set: TraceSet;
  /** The response as received (decoded to text only when the JSON view asks). */
  raw: string;
}

/** A Loaded whose `raw` text is decoded from the bytes on first use. */
function loaded(set: TraceSet, bytes: Uint8Array): Loaded {
  let text: string | null = null;
  return {
    set,
    get raw() {
      text ??= new TextDecoder().decode(bytes);
      return text;
    },
  };
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
      // Bytes straight into the module: no UTF-16 string of a large response in between.
      const bodies = await Promise.all(urls.map((u) => getBytes(u)));
      made = bodies.map((b) => loaded(TraceSet.parse(b, 'auto'), b));
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
