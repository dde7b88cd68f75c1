//! The Cloudflare Workers glue: the `fetch` entry point and the `EdgeBuffer` Durable Object.
//! It only moves bytes; every decision is made by the plain functions of the crate root.
//!
//! The buffer object (one per deployment, named `buffer`) keeps the counters and, in its SQLite
//! storage, the OTLP batches the collector did not take, oldest first, bounded by
//! `BUFFER_MAX_BYTES`. While it holds batches an alarm fires every `RETRY_INTERVAL_MS` and
//! delivers them in order, stopping at the first failure.

use std::time::Duration;

use worker::js_sys::Uint8Array;
use worker::{
    durable_object, event, Context, Delay, DurableObject, Env, Fetch, Headers, Method,
    Request as WRequest, RequestInit, Response, Result, SqlStorage, SqlStorageValue, State, Stub,
};

use crate::{
    classify, handle, retry_delay_ms, Batch, BufferPolicy, Config, Counts, Delivery, Outcome,
    Reply, Request, Stats, COUNTERS,
};

/// The buffer object's name: every isolate talks to the same instance.
const BUFFER_NAME: &str = "buffer";
/// The Durable Object binding (wrangler.toml).
const BUFFER_BINDING: &str = "EDGE_BUFFER";

fn var(env: &Env, name: &str) -> Option<String> {
    env.var(name)
        .map(|v| v.to_string())
        .or_else(|_| env.secret(name).map(|s| s.to_string()))
        .ok()
}

fn to_response(r: Reply) -> Result<Response> {
    let headers = Headers::new();
    for (k, v) in &r.headers {
        headers.append(k, v)?;
    }
    let resp = if r.body.is_empty() {
        Response::empty()?
    } else {
        Response::from_bytes(r.body)?
    };
    Ok(resp.with_status(r.status).with_headers(headers))
}

/// POSTs one OTLP batch to the collector: its status, or why no answer came (a network or TLS
/// error; the runtime refuses an `https://` collector whose certificate it does not trust
/// before the request is sent).
async fn post(
    url: &str,
    body: &[u8],
    extra: &[(&'static str, String)],
    auth: Option<&str>,
) -> std::result::Result<u16, String> {
    let headers = Headers::new();
    let init_err = |e: worker::Error| format!("cannot build the request: {e}");
    headers
        .set("content-type", "application/x-protobuf")
        .map_err(init_err)?;
    for (k, v) in extra {
        headers.set(k, v).map_err(init_err)?;
    }
    if let Some(a) = auth {
        headers.set("authorization", a).map_err(init_err)?;
    }
    let mut init = RequestInit::new();
    init.with_method(Method::Post)
        .with_headers(headers)
        .with_body(Some(Uint8Array::from(body).into()));
    let req = WRequest::new_with_init(url, &init).map_err(init_err)?;
    Fetch::Request(req)
        .send()
        .await
        .map(|r| r.status_code())
        .map_err(|e| e.to_string())
}

/// Forwards with up to `attempts` tries and backoff. A batch the collector did not take is
/// logged with the last reason (network or TLS error, or status), so an outage or a collector
/// certificate the runtime does not trust shows in the worker's log, not only in `/stats`.
async fn forward(
    url: &str,
    body: &[u8],
    extra: &[(&'static str, String)],
    auth: Option<&str>,
    attempts: u32,
) -> Delivery {
    let mut last = Delivery::Retry;
    let mut why = String::new();
    for attempt in 0..attempts {
        let wait = retry_delay_ms(attempt);
        if wait > 0 {
            Delay::from(Duration::from_millis(wait)).await;
        }
        let answer = post(url, body, extra, auth).await;
        last = classify(answer.as_ref().ok().copied());
        why = match answer {
            Ok(status) => format!("status {status}"),
            Err(e) => e,
        };
        if last != Delivery::Retry {
            break;
        }
    }
    let (bytes, tries) = (body.len(), if attempts == 1 { "try" } else { "tries" });
    match last {
        Delivery::Delivered => {}
        Delivery::Retry => worker::console_error!(
            "edge: collector {url} did not take a batch of {bytes} bytes after {attempts} {tries}: {why}"
        ),
        Delivery::Refused => worker::console_error!(
            "edge: collector {url} refused a batch of {bytes} bytes, dropped: {why}"
        ),
    }
    last
}

fn buffer_stub(env: &Env) -> Result<Stub> {
    env.durable_object(BUFFER_BINDING)?.get_by_name(BUFFER_NAME)
}

/// Tells the buffer object what happened; with a batch, asks it to hold the batch. Returns how
/// many spans it had to drop (buffer full).
async fn record(stub: &Stub, counts: &[(&str, u64)], batch: Option<&Batch>) -> Result<u64> {
    let mut url = String::from("https://buffer/record?");
    for (k, v) in counts {
        url.push_str(&format!("{k}={v}&"));
    }
    let mut init = RequestInit::new();
    init.with_method(Method::Post);
    if let Some(b) = batch {
        url.push_str(&format!("spans={}", b.spans));
        init.with_body(Some(Uint8Array::from(b.body.as_slice()).into()));
    }
    let mut resp = stub
        .fetch_with_request(WRequest::new_with_init(&url, &init)?)
        .await?;
    let text = resp.text().await?;
    Ok(text.trim().parse().unwrap_or(0))
}

#[event(fetch)]
async fn fetch(mut req: WRequest, env: Env, ctx: Context) -> Result<Response> {
    let cfg = match Config::from_vars(&|n| var(&env, n)) {
        Ok(c) => c,
        Err(e) => return to_response(Reply::text(500, format!("edge misconfigured: {e}"))),
    };
    let method = req.method().to_string();
    let path = req.path();
    let headers = req.headers().clone();
    let lookup = |n: &str| headers.get(n).ok().flatten();
    // A body announced as too large is not read: `handle` answers 413 from the header.
    let declared = lookup("content-length").and_then(|v| v.trim().parse::<u64>().ok());
    let body = if method == "POST" && declared.is_none_or(|n| n <= cfg.max_body_bytes as u64) {
        req.bytes().await.unwrap_or_default()
    } else {
        Vec::new()
    };
    let outcome = handle(
        &cfg,
        &Request {
            method: &method,
            path: &path,
            header: &lookup,
            body: &body,
        },
    );
    match outcome {
        Outcome::Reply(r) => to_response(r),
        Outcome::Stats { headers } => {
            let mut resp = buffer_stub(&env)?
                .fetch_with_str("https://buffer/stats")
                .await?;
            let mut r = Reply::text(200, resp.text().await?);
            r.headers = vec![("content-type", "application/json".to_string())];
            r.headers.extend(headers);
            to_response(r)
        }
        Outcome::Forward {
            batches,
            counts,
            reply,
            forward_headers,
        } => {
            let Some(url) = var(&env, "COLLECTOR_URL") else {
                return to_response(Reply::text(
                    500,
                    "edge misconfigured: COLLECTOR_URL is not set",
                ));
            };
            let auth = var(&env, "COLLECTOR_AUTHORIZATION");
            let (mut forwarded, mut refused) = (0, 0);
            let mut pending = Vec::new();
            for b in batches {
                match forward(
                    &url,
                    &b.body,
                    &forward_headers,
                    auth.as_deref(),
                    cfg.forward_attempts,
                )
                .await
                {
                    Delivery::Delivered => forwarded += b.spans,
                    Delivery::Refused => refused += b.spans,
                    Delivery::Retry => pending.push(b),
                }
            }
            let Counts {
                accepted,
                rejected,
                sampled_out,
            } = counts;
            let totals = [
                ("accepted", accepted),
                ("rejected", rejected),
                ("sampled_out", sampled_out),
                ("forwarded", forwarded),
                ("dropped", refused),
            ];
            let stub = buffer_stub(&env)?;
            if pending.is_empty() {
                // Counting must not delay the reply.
                ctx.wait_until(async move {
                    if let Err(e) = record(&stub, &totals, None).await {
                        worker::console_error!("edge: recording counters failed: {e}");
                    }
                });
                return to_response(reply);
            }
            let mut dropped = 0;
            let mut buffered = 0;
            for (i, b) in pending.iter().enumerate() {
                let counts: &[(&str, u64)] = if i == 0 { &totals } else { &[] };
                let d = record(&stub, counts, Some(b)).await?;
                dropped += d;
                buffered += b.spans - d;
            }
            if dropped > 0 {
                let mut r = Reply::text(
                    503,
                    format!("collector unreachable and the edge buffer is full: {dropped} spans dropped"),
                );
                r.headers.push((
                    "retry-after",
                    (cfg.retry_interval_ms / 1000).max(1).to_string(),
                ));
                r.headers.extend(
                    reply
                        .headers
                        .into_iter()
                        .filter(|(k, _)| k.starts_with("access-control") || *k == "vary"),
                );
                return to_response(r);
            }
            let mut reply = reply;
            reply.headers.push(("spoor-buffered", buffered.to_string()));
            to_response(reply)
        }
    }
}

/// The buffer Durable Object: counters and undelivered batches (SQLite storage).
#[durable_object]
pub struct EdgeBuffer {
    state: State,
    env: Env,
}

fn int(v: Option<&SqlStorageValue>) -> u64 {
    match v {
        Some(SqlStorageValue::Integer(i)) => (*i).max(0) as u64,
        Some(SqlStorageValue::Float(f)) if *f >= 0.0 => *f as u64,
        _ => 0,
    }
}

impl EdgeBuffer {
    fn sql(&self) -> SqlStorage {
        self.state.storage().sql()
    }

    fn add(&self, name: &str, n: u64) -> Result<()> {
        if n > 0 {
            self.sql().exec(
                "INSERT INTO counters(name, value) VALUES (?, ?) \
                 ON CONFLICT(name) DO UPDATE SET value = value + excluded.value",
                vec![name.into(), SqlStorageValue::Integer(n as i64)],
            )?;
        }
        Ok(())
    }

    fn policy(&self) -> (BufferPolicy, u64) {
        let cfg = |n: &str, d: u64| {
            var(&self.env, n)
                .and_then(|v| v.trim().parse::<u64>().ok())
                .unwrap_or(d)
        };
        (
            BufferPolicy {
                max_bytes: cfg("BUFFER_MAX_BYTES", 50 << 20),
            },
            cfg("RETRY_INTERVAL_MS", 10_000).max(100),
        )
    }

    /// (batches, spans, bytes) held now.
    fn held(&self) -> Result<(u64, u64, u64)> {
        let cursor = self.sql().exec(
            "SELECT COUNT(*), COALESCE(SUM(spans), 0), COALESCE(SUM(LENGTH(body)), 0) FROM batches",
            vec![],
        )?;
        let row = cursor.raw().next().transpose()?.unwrap_or_default();
        Ok((int(row.first()), int(row.get(1)), int(row.get(2))))
    }

    fn stats(&self) -> Result<Stats> {
        let mut s = Stats::default();
        for row in self
            .sql()
            .exec("SELECT name, value FROM counters", vec![])?
            .raw()
        {
            let row = row?;
            if let Some(SqlStorageValue::String(name)) = row.first() {
                s.add(name, int(row.get(1)));
            }
        }
        let (batches, spans, bytes) = self.held()?;
        s.buffer_batches = batches;
        s.buffer_spans = spans;
        s.buffer_bytes = bytes;
        s.buffer_max_bytes = self.policy().0.max_bytes;
        Ok(s)
    }

    /// Delivers held batches oldest first; stops at the first one the collector does not take.
    async fn drain(&self) -> Result<()> {
        let Some(url) = var(&self.env, "COLLECTOR_URL") else {
            return Ok(());
        };
        let auth = var(&self.env, "COLLECTOR_AUTHORIZATION");
        loop {
            let row = self
                .sql()
                .exec(
                    "SELECT id, spans, body FROM batches ORDER BY id LIMIT 1",
                    vec![],
                )?
                .raw()
                .next()
                .transpose()?;
            let Some(row) = row else { return Ok(()) };
            let (id, spans) = (int(row.first()), int(row.get(1)));
            let body = match row.get(2) {
                Some(SqlStorageValue::Blob(b)) => b.clone(),
                _ => Vec::new(),
            };
            match forward(&url, &body, &[], auth.as_deref(), 1).await {
                Delivery::Retry => {
                    let (_, every) = self.policy();
                    self.state
                        .storage()
                        .set_alarm(Duration::from_millis(every))
                        .await?;
                    return Ok(());
                }
                outcome => {
                    self.sql().exec(
                        "DELETE FROM batches WHERE id = ?",
                        vec![SqlStorageValue::Integer(id as i64)],
                    )?;
                    let counter = if outcome == Delivery::Delivered {
                        "forwarded"
                    } else {
                        "dropped"
                    };
                    self.add(counter, spans)?;
                }
            }
        }
    }
}

impl DurableObject for EdgeBuffer {
    fn new(state: State, env: Env) -> Self {
        let sql = state.storage().sql();
        for ddl in [
            "CREATE TABLE IF NOT EXISTS counters (name TEXT PRIMARY KEY, value INTEGER NOT NULL)",
            "CREATE TABLE IF NOT EXISTS batches (id INTEGER PRIMARY KEY AUTOINCREMENT, \
             spans INTEGER NOT NULL, body BLOB NOT NULL)",
        ] {
            if let Err(e) = sql.exec(ddl, vec![]) {
                worker::console_error!("edge buffer: creating tables failed: {e}");
            }
        }
        EdgeBuffer { state, env }
    }

    async fn fetch(&self, mut req: WRequest) -> Result<Response> {
        match req.path().as_str() {
            "/stats" => {
                let mut r = Response::ok(self.stats()?.to_json())?;
                r.headers_mut().set("content-type", "application/json")?;
                Ok(r)
            }
            "/record" => {
                let url = req.url()?;
                let mut spans = 0;
                for (k, v) in url.query_pairs() {
                    let n: u64 = v.parse().unwrap_or(0);
                    if k == "spans" {
                        spans = n;
                    } else if let Some(name) = COUNTERS.iter().find(|c| **c == k) {
                        self.add(name, n)?;
                    }
                }
                let body = req.bytes().await?;
                if body.is_empty() {
                    return Response::ok("0");
                }
                let (policy, every) = self.policy();
                let (_, _, held) = self.held()?;
                if !policy.admits(held, body.len() as u64) {
                    self.add("dropped", spans)?;
                    return Response::ok(spans.to_string());
                }
                self.sql().exec(
                    "INSERT INTO batches (spans, body) VALUES (?, ?)",
                    vec![SqlStorageValue::Integer(spans as i64), body.into()],
                )?;
                self.add("buffered", spans)?;
                if self.state.storage().get_alarm().await?.is_none() {
                    self.state
                        .storage()
                        .set_alarm(Duration::from_millis(every))
                        .await?;
                }
                Response::ok("0")
            }
            other => Response::error(format!("no route {other:?}"), 404),
        }
    }

    async fn alarm(&self) -> Result<Response> {
        self.drain().await?;
        Response::ok("drained")
    }
}
