// The file opened on the Inspect page: parsed in the browser, no daemon involved.
import { useSyncExternalStore } from 'react';
import { loadWasm, TraceSet } from './wasm';

export interface LocalFile {
  name: string;
  set: TraceSet;
  /** The file as text, decoded on first use (only the JSON view needs it). */
  readonly raw: string;
}

let current: LocalFile | null = null;
const listeners = new Set<() => void>();

export function localFile(): LocalFile | null {
  return current;
}

/** Parses a file (format `auto`, `jaeger`, `otlp`, `zipkin` or `zipkin-v1`); throws on bad input. */
export async function openLocal(name: string, bytes: Uint8Array, format = 'auto'): Promise<LocalFile> {
  await loadWasm();
  const set = TraceSet.parse(bytes, format);
  const old = current;
  let text: string | null = null;
  current = {
    name,
    set,
    get raw() {
      text ??= new TextDecoder().decode(bytes);
      return text;
    },
  };
  listeners.forEach((l) => l());
  if (old) setTimeout(() => old.set.free(), 0);
  return current;
}

export function useLocalFile(): LocalFile | null {
  return useSyncExternalStore(
    (l) => {
      listeners.add(l);
      return () => listeners.delete(l);
    },
    () => current,
  );
}
