// Loads the browser module (spoor-wasm) once; every trace view goes through a TraceSet.
import init, { initSync, TraceSet } from 'spoor-wasm';

export { TraceSet };

let ready: Promise<void> | null = null;

/** Fetches and instantiates the module (once). */
export function loadWasm(): Promise<void> {
  if (!ready) ready = init().then(() => undefined);
  return ready;
}

/** Instantiates the module from bytes (tests, where there is no fetch of a URL). */
export function initWasmFromBytes(bytes: BufferSource): void {
  initSync({ module: bytes });
  ready = Promise.resolve();
}

export interface TraceSummary {
  index: number;
  trace_id: string;
  root_service: string;
  root_operation: string;
  start_unix_nanos: number;
  duration_nanos: number;
  span_count: number;
  error_count: number;
  services: string[];
}

export interface TimelineInfo {
  start_unix_nanos: number;
  end_unix_nanos: number;
  row_count: number;
  span_count: number;
  max_depth: number;
}

export interface Row {
  span: number;
  depth: number;
  has_children: boolean;
  collapsed: boolean;
  offset: number;
  width: number;
  span_id: string;
  service: string;
  operation: string;
  duration_nanos: number;
  error: boolean;
}

export interface Attr {
  key: string;
  type: string;
  value: string;
}

export interface Owner {
  name: string;
  version: string;
  attributes: Attr[];
  dropped_attributes_count: number;
}

export interface SpanDetail {
  span: number;
  trace_id: string;
  span_id: string;
  parent_span_id: string | null;
  parent: number | null;
  children: number[];
  depth: number;
  operation: string;
  service: string;
  kind: string;
  status_code: string;
  status_message: string;
  error: boolean;
  start_unix_nanos: number;
  offset_nanos: number;
  duration_nanos: number;
  trace_state: string;
  attributes: Attr[];
  resource: Owner;
  scope: Owner;
  events: { time_unix_nanos: number; offset_nanos: number; name: string; attributes: Attr[] }[];
  links: { trace_id: string; span_id: string; span: number | null; trace_state: string; attributes: Attr[] }[];
  warnings: string[];
  dropped_attributes_count: number;
  dropped_events_count: number;
  dropped_links_count: number;
}

export interface CriticalPath {
  segments: { span: number; start: number; end: number }[];
  span_nanos: number[];
}

export interface Stat {
  count: number;
  total_nanos: number;
  self_nanos: number;
  min_nanos: number;
  max_nanos: number;
  avg_nanos: number;
  errors: number;
}

export interface TraceStats {
  all: Stat;
  by_service: { key: string; stat: Stat }[];
  by_operation: { key: string; stat: Stat }[];
  by_service_operation: { key: { service: string; operation: string }; stat: Stat }[];
}

export interface DiffNode {
  parent: number | null;
  depth: number;
  step: { service: string; operation: string };
  count_a: number;
  count_b: number;
  status: string;
  mean_a_nanos: number | null;
  mean_b_nanos: number | null;
  mean_change_nanos: number | null;
  self_a_nanos: number;
  self_b_nanos: number;
}

export interface Diff {
  nodes: DiffNode[];
  node_of_a: number[];
  node_of_b: number[];
}

export interface RootCause {
  error_origins: number[];
  critical_owners: { span: number; critical_nanos: number; share: number }[];
  slower: unknown[];
}

export interface ServiceGraph {
  nodes: { service: string; span_count?: number; error_count?: number }[];
  edges: { parent: string; child: string; call_count: number }[];
}
