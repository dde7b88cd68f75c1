// Inspect a Jaeger, OTLP or Zipkin JSON file entirely in the browser: no daemon needed.
import { useMemo, useState, type DragEvent } from 'react';
import type { UiConfig } from '../config';
import { openLocal, useLocalFile } from '../local';
import { Link } from '../router';
import type { Diff, ServiceGraph as Graph, TraceSummary } from '../wasm';
import { Results } from '../components/Results';
import { TraceView } from '../components/TraceView';
import { DiffView } from '../components/DiffView';
import { Dependencies } from '../components/Dependencies';

export function InspectPage() {
  const file = useLocalFile();
  const [error, setError] = useState<string | null>(null);
  const [format, setFormat] = useState('auto');
  const [over, setOver] = useState(false);
  const traces = useMemo(() => (file ? (file.set.traces() as TraceSummary[]) : []), [file]);
  const load = async (f: File) => {
    setError(null);
    try {
      await openLocal(f.name, new Uint8Array(await f.arrayBuffer()), format);
    } catch (e) {
      setError(e instanceof Error ? e.message : String(e));
    }
  };
  const onDrop = (e: DragEvent) => {
    e.preventDefault();
    setOver(false);
    const f = e.dataTransfer.files[0];
    if (f) void load(f);
  };
  return (
    <div className="page">
      <div
        className={over ? 'dropzone over' : 'dropzone'}
        onDragOver={(e) => {
          e.preventDefault();
          setOver(true);
        }}
        onDragLeave={() => setOver(false)}
        onDrop={onDrop}
        data-testid="dropzone"
      >
        <p>Drop a Jaeger, OTLP or Zipkin JSON file here, or pick one. It is read in your browser and sent nowhere.</p>
        <input type="file" accept=".json,application/json" aria-label="Trace file" onChange={(e) => e.target.files?.[0] && load(e.target.files[0])} />
        <select value={format} onChange={(e) => setFormat(e.target.value)} aria-label="Format">
          <option value="auto">detect format</option>
          <option value="jaeger">Jaeger</option>
          <option value="otlp">OTLP</option>
          <option value="zipkin">Zipkin v2</option>
          <option value="zipkin-v1">Zipkin v1</option>
        </select>
      </div>
      {error && (
        <p className="error" data-testid="inspect-error">
          {error}
        </p>
      )}
      {file && (
        <>
          <div className="toolbar">
            <span data-testid="inspect-file">
              {file.name}: {file.set.format}, {file.set.traceCount} traces, {file.set.spanCount} spans
              {file.set.rejected ? `, ${file.set.rejected} spans rejected` : ''}
            </span>
            <span className="spacer" />
            <Link to="/inspect/dependencies">Service graph</Link>
          </div>
          {file.set.rejected > 0 && (
            <ul className="warnings">
              {file.set.problems().slice(0, 20).map((p, i) => (
                <li key={i}>{p}</li>
              ))}
            </ul>
          )}
          <Results
            traces={traces}
            hrefFor={(t) => `/inspect/trace/${t.index}`}
            compareHref={(a, b) => `/inspect/compare/${a.index}/${b.index}`}
          />
        </>
      )}
    </div>
  );
}

function NoFile() {
  return (
    <p className="page muted">
      No file is open. <Link to="/inspect">Open one</Link>.
    </p>
  );
}

export function InspectTrace({ index, cfg }: { index: number; cfg: UiConfig }) {
  const file = useLocalFile();
  if (!file) return <NoFile />;
  return (
    <div className="page">
      <TraceView key={`${file.name}:${index}`} set={file.set} trace={index} raw={() => file.raw} patterns={cfg.linkPatterns} />
    </div>
  );
}

export function InspectCompare({ a, b }: { a: number; b: number }) {
  const file = useLocalFile();
  const result = useMemo(() => {
    if (!file) return null;
    const t = file.set.traces() as TraceSummary[];
    if (!t[a] || !t[b]) return null;
    return { diff: file.set.diff(a, b) as Diff, ta: t[a], tb: t[b] };
  }, [file, a, b]);
  if (!file) return <NoFile />;
  if (!result) return <p className="error page">no such traces</p>;
  return (
    <div className="page">
      <h2>Compare</h2>
      <DiffView diff={result.diff} a={result.ta} b={result.tb} />
    </div>
  );
}

export function InspectDependencies() {
  const file = useLocalFile();
  const graph = useMemo(() => (file ? (file.set.serviceGraph() as Graph) : null), [file]);
  if (!file || !graph) return <NoFile />;
  return (
    <div className="page">
      <h2>Service graph of {file.name}</h2>
      <Dependencies graph={graph} />
    </div>
  );
}
