// RED charts (rate, errors, duration) of one service from Jaeger's SPM API (/api/metrics/*).
import { useEffect, useState } from 'react';
import * as api from '../api';

interface MetricFamily {
  metrics: { labels: { name: string; value: string }[]; metricPoints: { gaugeValue: { doubleValue: number }; timestamp: string }[] }[];
}

type Points = { t: number; v: number }[];

function points(f: MetricFamily): Points {
  const m = f.metrics[0];
  if (!m) return [];
  return m.metricPoints
    .map((p) => ({ t: Date.parse(p.timestamp), v: p.gaugeValue?.doubleValue ?? 0 }))
    .filter((p) => Number.isFinite(p.v));
}

function Chart({ title, data, unit }: { title: string; data: Points; unit: string }) {
  const W = 360;
  const H = 140;
  const max = Math.max(0, ...data.map((d) => d.v)) || 1;
  const t0 = data[0]?.t ?? 0;
  const t1 = data[data.length - 1]?.t ?? 1;
  const x = (t: number) => 30 + ((t - t0) / (t1 - t0 || 1)) * (W - 40);
  const y = (v: number) => H - 20 - (v / max) * (H - 40);
  const d = data.map((p, i) => `${i ? 'L' : 'M'}${x(p.t).toFixed(1)},${y(p.v).toFixed(1)}`).join(' ');
  return (
    <figure className="chart" data-testid="red-chart">
      <figcaption>
        {title} <span className="muted">(max {Number(max.toPrecision(3))} {unit})</span>
      </figcaption>
      <svg viewBox={`0 0 ${W} ${H}`} width={W} height={H}>
        <line x1={30} y1={H - 20} x2={W - 10} y2={H - 20} className="axis" />
        <line x1={30} y1={20} x2={30} y2={H - 20} className="axis" />
        {data.length > 0 ? <path d={d} className="series" /> : <text x={W / 2} y={H / 2} textAnchor="middle" className="tick">no data</text>}
      </svg>
    </figure>
  );
}

export function MonitorPage() {
  const [services, setServices] = useState<string[]>([]);
  const [service, setService] = useState('');
  const [data, setData] = useState<{ calls: Points; errors: Points; p95: Points } | null>(null);
  const [error, setError] = useState<string | null>(null);
  useEffect(() => {
    api.services().then((s) => {
      setServices(s);
      if (s[0]) setService(s[0]);
    }, (e: Error) => setError(e.message));
  }, []);
  useEffect(() => {
    if (!service) return;
    const q = `service=${encodeURIComponent(service)}&endTs=${Date.now()}&lookback=3600000&step=60000&ratePer=60000`;
    setData(null);
    Promise.all([
      api.getJson<MetricFamily>(`/api/metrics/calls?${q}`),
      api.getJson<MetricFamily>(`/api/metrics/errors?${q}`),
      api.getJson<MetricFamily>(`/api/metrics/latencies?${q}&quantile=0.95`),
    ]).then(
      ([c, e, l]) => setData({ calls: points(c), errors: points(e), p95: points(l) }),
      (e: Error) => setError(e.message),
    );
  }, [service]);
  return (
    <div className="page">
      <div className="toolbar">
        <h2>Monitor</h2>
        <select value={service} onChange={(e) => setService(e.target.value)} aria-label="Service">
          {services.map((s) => (
            <option key={s}>{s}</option>
          ))}
        </select>
        <span className="muted">last hour, server spans, per minute</span>
      </div>
      {error && <p className="error">{error}</p>}
      {data && (
        <div className="charts">
          <Chart title="Request rate" data={data.calls} unit="req/min" />
          <Chart title="Error rate" data={data.errors} unit="ratio" />
          <Chart title="P95 latency" data={data.p95} unit="ms" />
        </div>
      )}
    </div>
  );
}
