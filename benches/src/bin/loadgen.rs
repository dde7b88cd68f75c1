//! `spoor-loadgen`: sends generated traces to an OTLP receiver (gRPC, HTTP/protobuf or
//! HTTP/JSON), a Jaeger one (Thrift compact or binary over UDP, Thrift over HTTP) or a Zipkin
//! one (v2 JSON or proto3) and reports throughput and latency, or preloads a sled store, or runs the smoke
//! check. Every payload is encoded before the clock starts.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{bail, Context};
use clap::Parser;
use spoor_bench::gen::{GenConfig, Generator};
use spoor_bench::payload::{Pool, Protocol};
use spoor_bench::run::{run, RunConfig};
use spoor_bench::units::parse_duration;

/// Load generator for Spoor (and any OTLP, Jaeger or Zipkin trace receiver).
///
/// Trace ids repeat only when a run sends more spans than the pool holds: the pool holds
/// --total-spans spans when that is given, else --rate x --duration spans when a rate is given,
/// else --pool-spans spans (1,000,000 by default, enough for a 10 s run at 100k spans/s); it
/// also stops growing at --pool-mib. The report says whether the pool wrapped.
#[derive(Debug, Parser)]
#[command(name = "spoor-loadgen", version)]
struct Args {
    /// Wire protocol.
    #[arg(long, value_enum, default_value = "otlp-grpc")]
    protocol: Protocol,
    /// Receiver address: http://host:port for gRPC and HTTP (default :4317 for otlp-grpc, :4318
    /// for otlp-http-*, :14268 for jaeger-http, :9411 for zipkin-*; HTTP requests go to
    /// /v1/traces, /api/traces or /api/v2/spans unless the endpoint ends in that path), host:port
    /// for UDP (default 127.0.0.1:6831 compact, :6832 binary; datagrams of at most 65,000 bytes).
    #[arg(long)]
    endpoint: Option<String>,
    /// Concurrent connections (one tokio task each).
    #[arg(long, default_value_t = 4)]
    connections: usize,
    /// Target spans per second over all connections (default: as fast as accepted).
    #[arg(long)]
    rate: Option<f64>,
    /// How long to send (ignored with --total-spans).
    #[arg(long, default_value = "10s", value_parser = parse_duration)]
    duration: Duration,
    /// Send this many spans instead of running for --duration (exactly, unless --pool-mib cut
    /// the pool short: then rounded up to a whole request).
    #[arg(long)]
    total_spans: Option<u64>,
    /// Spans per request (Jaeger splits a batch into one request per service, and over UDP
    /// further until each datagram fits).
    #[arg(long, default_value_t = 512)]
    batch_spans: usize,
    /// Number of services.
    #[arg(long, default_value_t = 8)]
    services: usize,
    /// Levels of each trace's span tree.
    #[arg(long, default_value_t = 4)]
    depth: usize,
    /// Children per inner span (widened when the tree cannot hold --spans-per-trace).
    #[arg(long, default_value_t = 3)]
    fanout: usize,
    /// Spans per trace (1..=100000).
    #[arg(long, default_value_t = 20)]
    spans_per_trace: usize,
    /// Attributes per span.
    #[arg(long, default_value_t = 8)]
    attrs: usize,
    /// Bytes per generated attribute value.
    #[arg(long, default_value_t = 16)]
    attr_bytes: usize,
    /// Fraction of spans that fail (0..1).
    #[arg(long, default_value_t = 0.01)]
    error_rate: f64,
    /// PRNG seed.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Traces start up to this long before now.
    #[arg(long, default_value = "5m", value_parser = parse_duration)]
    time_spread: Duration,
    /// Traces end this long before now (e.g. `2h`: preloaded time partitions have ended, so
    /// they can be sealed to object storage at once).
    #[arg(long, default_value = "0s", value_parser = parse_duration)]
    time_offset: Duration,
    /// Per-request timeout.
    #[arg(long, default_value = "10s", value_parser = parse_duration)]
    timeout: Duration,
    /// Spans in the pool for duration runs without --rate.
    #[arg(long, default_value_t = 1_000_000)]
    pool_spans: u64,
    /// Upper bound on the pool's encoded size, in MiB.
    #[arg(long, default_value_t = 1024)]
    pool_mib: u64,
    /// Print the report as one JSON object on stdout (the table still goes to stderr).
    #[arg(long)]
    json: bool,
    /// No progress line on stderr.
    #[arg(long)]
    quiet: bool,
    /// Write --total-spans spans into a sled store at this directory instead of sending them.
    #[arg(long, value_name = "DIR")]
    preload_sled: Option<PathBuf>,
    /// Run the quick self-check (generate, encode in every protocol, decode, validate, store).
    #[arg(long)]
    smoke: bool,
}

fn gen_config(a: &Args) -> anyhow::Result<GenConfig> {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .context("system clock is before 1970")?
        .saturating_sub(a.time_offset);
    Ok(GenConfig {
        services: a.services,
        depth: a.depth,
        fanout: a.fanout,
        spans_per_trace: a.spans_per_trace,
        attrs: a.attrs,
        attr_bytes: a.attr_bytes,
        error_rate: a.error_rate,
        seed: a.seed,
        now_nanos: u64::try_from(now.as_nanos()).unwrap_or(u64::MAX),
        time_spread_nanos: u64::try_from(a.time_spread.as_nanos()).unwrap_or(u64::MAX),
    })
}

fn main() -> ExitCode {
    match real_main(Args::parse()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("spoor-loadgen: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn real_main(args: Args) -> anyhow::Result<()> {
    if args.smoke {
        let t = Instant::now();
        let r = spoor_bench::smoke::smoke(args.seed)?;
        let per: Vec<String> = r
            .encoded
            .iter()
            .map(|(p, n, b)| format!("{p}: {n} requests, {b} bytes"))
            .collect();
        eprintln!(
            "smoke ok: {} traces, {} spans encoded, decoded, validated and stored ({}) in {:.0} ms",
            r.traces,
            r.spans,
            per.join("; "),
            t.elapsed().as_secs_f64() * 1000.0
        );
        if args.json {
            let v = serde_json::json!({"mode": "smoke", "ok": true, "traces": r.traces, "spans": r.spans});
            println!("{v}");
        }
        return Ok(());
    }
    if args.batch_spans == 0 {
        bail!("--batch-spans must be at least 1, got 0");
    }
    if args.connections == 0 {
        bail!("--connections must be at least 1, got 0");
    }
    if let Some(r) = args.rate {
        if !(r.is_finite() && r > 0.0) {
            bail!("--rate must be a positive number of spans per second, got {r}");
        }
    }
    let mut gen = Generator::new(gen_config(&args)?)?;

    if let Some(dir) = &args.preload_sled {
        let Some(total) = args.total_spans else {
            bail!("--preload-sled needs --total-spans");
        };
        let report = spoor_bench::preload::preload_sled(dir, &mut gen, args.batch_spans, total)
            .with_context(|| format!("preloading sled store at {}", dir.display()))?;
        eprintln!(
            "preloaded {} spans ({} traces, {} batches) into {} in {:.2} s + {:.2} s flush: {:.0} spans/s",
            report.spans,
            report.traces,
            report.batches,
            dir.display(),
            report.write.as_secs_f64(),
            report.flush.as_secs_f64(),
            report.spans_per_sec()
        );
        if args.json {
            println!("{}", report.to_json(dir));
        }
        return Ok(());
    }

    let target = match (args.total_spans, args.rate) {
        (Some(t), _) => t,
        (None, Some(r)) => (r * args.duration.as_secs_f64()).ceil().max(1.0) as u64,
        (None, None) => args.pool_spans.max(1),
    };
    let t = Instant::now();
    let pool = Pool::build(
        &mut gen,
        args.protocol,
        args.batch_spans,
        target,
        args.pool_mib.saturating_mul(1 << 20),
    );
    let pool_build = t.elapsed();
    if !args.quiet {
        eprintln!(
            "pool: {} requests, {} spans, {} traces, {:.1} MiB encoded in {:.2} s{}",
            pool.payloads.len(),
            pool.spans,
            pool.traces,
            pool.bytes as f64 / (1024.0 * 1024.0),
            pool_build.as_secs_f64(),
            if pool.capped {
                " (stopped at --pool-mib)"
            } else {
                ""
            }
        );
    }
    let endpoint = args
        .endpoint
        .clone()
        .unwrap_or_else(|| args.protocol.default_endpoint().to_string());
    let cfg = RunConfig {
        protocol: args.protocol,
        endpoint,
        connections: args.connections,
        rate: args.rate,
        duration: args.duration,
        total_spans: args.total_spans,
        timeout: args.timeout,
        progress: !args.quiet,
    };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the tokio runtime")?;
    let report = rt.block_on(run(cfg, Arc::new(pool), args.batch_spans, pool_build))?;
    eprint!("{}", report.to_table());
    if args.json {
        println!("{}", report.to_json());
    }
    if report.protocol.is_udp() {
        if report.spans_offered > 0 && report.spans_sent_unacknowledged == 0 {
            bail!(
                "no datagram could be sent to {} ({})",
                report.endpoint,
                report.first_error.as_deref().unwrap_or("unknown error")
            );
        }
    } else if report.spans_offered > 0 && report.spans_accepted == 0 {
        bail!(
            "no span was accepted by {} ({})",
            report.endpoint,
            report
                .first_error
                .as_deref()
                .unwrap_or("every request was refused")
        );
    }
    Ok(())
}
