// Everything about one span. Every value is a React text node: attribute values are shown as
// text, never interpreted as markup.
import type { Attr, SpanDetail as Detail } from '../wasm';
import type { LinkPattern, LinkType, ResolvedLink } from '../config';
import { linksFor } from '../config';
import { fmtDuration, fmtTime } from '../format';

/** Links as anchors: an http(s) URL, text content only, opened without an opener or referrer. */
export function Links({ links }: { links: ResolvedLink[] }) {
  return (
    <>
      {links.map((l, i) => (
        <span key={i}>
          {' '}
          <a href={l.url} target="_blank" rel="noopener noreferrer" className="ext" data-testid="pattern-link">
            {l.text}
          </a>
        </span>
      ))}
    </>
  );
}

function AttrTable({
  attrs,
  patterns,
  type,
  lookup,
}: {
  attrs: Attr[];
  patterns?: LinkPattern[];
  type?: Exclude<LinkType, 'traces'>;
  lookup?: (name: string) => string | undefined;
}) {
  if (attrs.length === 0) return <p className="muted">none</p>;
  return (
    <table className="attrs">
      <tbody>
        {attrs.map((a, i) => {
          const links = type && patterns?.length ? linksFor(patterns, type, a, attrs, lookup) : [];
          return (
            <tr key={i}>
              <td className="k">{a.key}</td>
              <td className="v">
                <span data-testid="attr-value">{a.value}</span>
                <Links links={links} />
              </td>
              <td className="t">{a.type}</td>
            </tr>
          );
        })}
      </tbody>
    </table>
  );
}

export function SpanDetail({
  detail,
  patterns,
  onSelect,
  ancestorValue,
}: {
  detail: Detail;
  patterns?: LinkPattern[];
  onSelect?: (span: number) => void;
  /** The value of a key in the span's ancestors (attributes, then resource; nearest first),
   * for placeholders the span itself does not have. */
  ancestorValue?: (name: string) => string | undefined;
}) {
  const d = detail;
  const lookup = (name: string) =>
    d.attributes.find((a) => a.key === name)?.value ??
    d.resource.attributes.find((a) => a.key === name)?.value ??
    ancestorValue?.(name);
  return (
    <div className="span-detail" data-testid="span-detail">
      <h3>
        <span className="svc">{d.service}</span> <span className="op">{d.operation}</span>
        {d.error && <span className="badge err">error</span>}
      </h3>
      <dl className="facts">
        <dt>Span ID</dt>
        <dd className="mono">{d.span_id}</dd>
        <dt>Parent</dt>
        <dd className="mono">
          {d.parent !== null && onSelect ? (
            <button className="linkish" onClick={() => onSelect(d.parent!)}>
              {d.parent_span_id}
            </button>
          ) : (
            (d.parent_span_id ?? '—')
          )}
        </dd>
        <dt>Kind</dt>
        <dd>{d.kind}</dd>
        <dt>Status</dt>
        <dd>
          {d.status_code}
          {d.status_message ? `: ${d.status_message}` : ''}
        </dd>
        <dt>Start</dt>
        <dd>
          {fmtDuration(d.offset_nanos)} <span className="muted">({fmtTime(d.start_unix_nanos)})</span>
        </dd>
        <dt>Duration</dt>
        <dd>{fmtDuration(d.duration_nanos)}</dd>
        {d.trace_state && (
          <>
            <dt>Trace state</dt>
            <dd className="mono">{d.trace_state}</dd>
          </>
        )}
      </dl>
      {d.warnings.length > 0 && (
        <section className="warnings">
          <h4>Warnings</h4>
          <ul>
            {d.warnings.map((w, i) => (
              <li key={i}>{w}</li>
            ))}
          </ul>
        </section>
      )}
      <section>
        <h4>Attributes{d.dropped_attributes_count ? ` (${d.dropped_attributes_count} dropped)` : ''}</h4>
        <AttrTable attrs={d.attributes} patterns={patterns} type="tags" lookup={lookup} />
      </section>
      <section>
        <h4>
          Resource <span className="muted">{d.resource.name}</span>
        </h4>
        <AttrTable attrs={d.resource.attributes} patterns={patterns} type="process" />
      </section>
      {(d.scope.name || d.scope.attributes.length > 0) && (
        <section>
          <h4>
            Scope{' '}
            <span className="muted">
              {d.scope.name} {d.scope.version}
            </span>
          </h4>
          {d.scope.attributes.length > 0 && <AttrTable attrs={d.scope.attributes} />}
        </section>
      )}
      <section>
        <h4>Events ({d.events.length}{d.dropped_events_count ? `, ${d.dropped_events_count} dropped` : ''})</h4>
        {d.events.length === 0 && <p className="muted">none</p>}
        {d.events.map((e, i) => (
          <div key={i} className="event">
            <div>
              <span className="muted">{fmtDuration(e.offset_nanos)}</span> {e.name}
            </div>
            {e.attributes.length > 0 && <AttrTable attrs={e.attributes} patterns={patterns} type="logs" lookup={lookup} />}
          </div>
        ))}
      </section>
      <section>
        <h4>Links ({d.links.length}{d.dropped_links_count ? `, ${d.dropped_links_count} dropped` : ''})</h4>
        {d.links.length === 0 && <p className="muted">none</p>}
        {d.links.map((l, i) => (
          <div key={i} className="event">
            <div className="mono">
              {l.span !== null && onSelect ? (
                <button className="linkish" onClick={() => onSelect(l.span!)}>
                  {l.span_id}
                </button>
              ) : (
                `${l.trace_id} / ${l.span_id}`
              )}
            </div>
            {l.attributes.length > 0 && <AttrTable attrs={l.attributes} />}
          </div>
        ))}
      </section>
    </div>
  );
}
