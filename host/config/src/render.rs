//! [`Settings::to_toml`]: resolved settings written back as a config file that resolves to
//! the same settings (the oracle of the `config_file` fuzz target and of this crate's tests).

use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use toml::{Table, Value};

use crate::{DurabilityKind, LogFormat, Settings, StorageKind};

impl Settings {
    /// These settings as a config file: resolved from a file at the same path (so relative
    /// paths are taken from the same directory) with no flags, it gives the same settings.
    /// Every setting is written out, defaults included.
    ///
    /// It holds every secret the settings hold (bearer tokens, the S3 secret key): never log
    /// or serve it. Fails only for what a TOML file cannot hold: a number above `i64::MAX`, a
    /// path that is not UTF-8 (both only given by flags).
    pub fn to_toml(&self) -> Result<String, String> {
        // Every field, so that a new one cannot be forgotten here.
        let Settings {
            storage,
            data_dir,
            retention,
            partition,
            durability,
            memory_max_traces,
            memory_limit,
            sled_cache_bytes,
            otlp_grpc,
            otlp_http,
            jaeger_compact,
            jaeger_binary,
            jaeger_http,
            jaeger_grpc,
            zipkin_http,
            agent_collector_endpoint,
            agent_sampling_endpoint,
            sampling_http,
            sampling_strategies_file,
            sampling_reload_interval,
            sampling_adaptive,
            tail_sampling,
            span_metrics_bucket,
            plugins,
            otlp_max_body_bytes,
            http_limits,
            tls,
            agent_tls,
            query_http,
            query_static_files,
            query_max_lookback,
            query_max_limit,
            query_max_spans_per_trace,
            query_ui_config: _,
            query_ui_config_file,
            query_base_path,
            admin_http,
            admin_tls,
            queue_bytes,
            batch_max_spans,
            batch_max_age,
            span_log,
            ingester_partitions,
            query_ingesters,
            query_ingesters_tls,
            object_store,
            storage_given,
            log_format,
            log_level,
            auth,
            config_file: _,
        } = self;
        let mut t = Table::new();
        if *storage_given {
            let kind = match storage {
                StorageKind::Memory => "memory",
                StorageKind::Sled => "sled",
                StorageKind::Blackhole => "blackhole",
            };
            put(&mut t, "storage", kind.into());
            put(&mut t, "data-dir", path(data_dir)?);
        }
        put(&mut t, "retention", duration(*retention));
        put(&mut t, "sled.partition", duration(*partition));
        let durability = match durability {
            DurabilityKind::Periodic => "periodic",
            DurabilityKind::Sync => "sync",
        };
        put(&mut t, "durability", durability.into());
        put(&mut t, "memory.max-traces", int(*memory_max_traces)?);
        put(
            &mut t,
            "memory.limit-mib",
            int(memory_limit.limit_bytes >> 20)?,
        );
        put(
            &mut t,
            "memory.spike-limit-mib",
            int(memory_limit.spike_bytes >> 20)?,
        );
        put(
            &mut t,
            "memory.check-interval",
            duration(memory_limit.check_interval),
        );
        put(&mut t, "sled.cache-bytes", int(*sled_cache_bytes)?);
        let mut families = Vec::new();
        for (family, on, addrs) in [
            (
                "otlp",
                otlp_grpc.is_some(),
                vec![
                    ("otlp.grpc.host-port", otlp_grpc),
                    ("otlp.http.host-port", otlp_http),
                ],
            ),
            (
                "jaeger",
                jaeger_compact.is_some(),
                vec![
                    ("jaeger.thrift-compact.host-port", jaeger_compact),
                    ("jaeger.thrift-binary.host-port", jaeger_binary),
                    ("jaeger.thrift-http.host-port", jaeger_http),
                    ("jaeger.grpc.host-port", jaeger_grpc),
                ],
            ),
            (
                "zipkin",
                zipkin_http.is_some(),
                vec![("zipkin.http.host-port", zipkin_http)],
            ),
        ] {
            if on {
                families.push(Value::from(family));
            }
            for (key, addr) in addrs {
                if let Some(a) = addr {
                    put(&mut t, key, socket(a));
                }
            }
        }
        put(&mut t, "receivers", Value::Array(families));
        if let Some(e) = agent_collector_endpoint {
            put(&mut t, "agent.collector-endpoint", e.as_str().into());
        }
        if let Some(e) = agent_sampling_endpoint {
            put(&mut t, "agent.sampling-endpoint", e.as_str().into());
        }
        if let Some(a) = sampling_http {
            put(&mut t, "sampling.http.host-port", socket(a));
        }
        if let Some(f) = sampling_strategies_file {
            put(&mut t, "sampling.strategies-file", path(f)?);
        }
        put(
            &mut t,
            "sampling.strategies-reload-interval",
            duration(*sampling_reload_interval),
        );
        put(
            &mut t,
            "sampling.adaptive",
            sampling_adaptive.is_some().into(),
        );
        if let Some(a) = sampling_adaptive {
            put(
                &mut t,
                "sampling.target-samples-per-second",
                a.target_samples_per_second.into(),
            );
            put(
                &mut t,
                "sampling.calculation-interval",
                duration(Duration::from_secs(a.calculation_interval_seconds)),
            );
        }
        if let Some(tail) = tail_sampling {
            let v = Value::try_from(tail).map_err(|e| format!("sampling.tail: {e}"))?;
            put(&mut t, "sampling.tail", v);
        }
        put(
            &mut t,
            "span-metrics.enabled",
            span_metrics_bucket.is_some().into(),
        );
        if let Some(b) = span_metrics_bucket {
            put(&mut t, "span-metrics.bucket", duration(*b));
        }
        if !plugins.is_empty() {
            let entries = plugins.iter().cloned().map(Value::Table).collect();
            put(&mut t, "plugins", Value::Array(entries));
        }
        put(&mut t, "otlp.max-body-bytes", int(*otlp_max_body_bytes)?);
        put(
            &mut t,
            "http.max-connections",
            int(http_limits.max_connections)?,
        );
        put(
            &mut t,
            "http.header-read-timeout",
            duration(http_limits.header_read_timeout),
        );
        put(
            &mut t,
            "http.body-read-timeout",
            duration(http_limits.body_read_timeout),
        );
        if let Some(f) = tls {
            put(&mut t, "tls.cert-file", path(&f.cert)?);
            put(&mut t, "tls.key-file", path(&f.key)?);
            if let Some(ca) = &f.client_ca {
                put(&mut t, "tls.client-ca-file", path(ca)?);
            }
        }
        put_client_tls(&mut t, "agent.tls-", agent_tls)?;
        put(&mut t, "query.http.host-port", socket(query_http));
        if let Some(d) = query_static_files {
            put(&mut t, "query.static-files", path(d)?);
        }
        if let Some(d) = query_max_lookback {
            put(&mut t, "query.max-lookback", duration(*d));
        }
        put(&mut t, "query.max-limit", int(*query_max_limit)?);
        put(
            &mut t,
            "query.max-spans-per-trace",
            int(*query_max_spans_per_trace)?,
        );
        if let Some(f) = query_ui_config_file {
            put(&mut t, "query.ui-config", path(f)?);
        }
        put(&mut t, "query.base-path", query_base_path.as_str().into());
        if !query_ingesters.is_empty() {
            let urls = query_ingesters.iter().map(|u| Value::from(u.as_str()));
            put(&mut t, "query.ingesters", Value::Array(urls.collect()));
        }
        put_client_tls(&mut t, "query.ingesters-tls.", query_ingesters_tls)?;
        put(&mut t, "admin.http.host-port", socket(admin_http));
        put(&mut t, "admin.http.tls.enabled", (*admin_tls).into());
        put(&mut t, "pipeline.queue-bytes", int(*queue_bytes)?);
        put(&mut t, "batch.max-spans", int(*batch_max_spans)?);
        put(&mut t, "batch.max-age", duration(*batch_max_age));
        if let Some(l) = span_log {
            put(&mut t, "span-log.url", l.urls.join(",").into());
            put(&mut t, "span-log.stream", l.stream.as_str().into());
            put(&mut t, "span-log.partitions", int(l.partitions)?);
            put(&mut t, "span-log.replicas", int(l.replicas)?);
            put(&mut t, "span-log.max-age", duration(l.max_age));
            put(&mut t, "span-log.max-bytes", l.max_bytes.into());
            put_client_tls(&mut t, "span-log.tls.", &l.tls)?;
        }
        if let Some(p) = ingester_partitions {
            let list: Vec<String> = p.iter().map(u32::to_string).collect();
            put(&mut t, "ingester.partitions", list.join(",").into());
        }
        if let Some(o) = object_store {
            put(&mut t, "object-store.url", o.s3.url.as_str().into());
            if let Some(e) = &o.s3.endpoint {
                put(&mut t, "object-store.endpoint", e.as_str().into());
            }
            put(&mut t, "object-store.region", o.s3.region.as_str().into());
            if let Some(k) = &o.s3.access_key_id {
                put(&mut t, "object-store.access-key-id", k.as_str().into());
            }
            if let Some(k) = &o.s3.secret_access_key {
                put(&mut t, "object-store.secret-access-key", k.as_str().into());
            }
            put(&mut t, "object-store.seal-after", duration(o.seal_after));
            put(
                &mut t,
                "object-store.keep-after-upload",
                duration(o.keep_after_upload),
            );
            put(&mut t, "object-store.poll", duration(o.poll));
            put(&mut t, "object-store.node", o.node.as_str().into());
            put(&mut t, "object-store.compaction", o.compaction.into());
        }
        let format = match log_format {
            LogFormat::Text => "text",
            LogFormat::Json => "json",
        };
        put(&mut t, "log.format", format.into());
        put(&mut t, "log.level", log_level.as_str().into());
        if let Some(a) = auth {
            put(&mut t, "multi-tenancy.enabled", true.into());
            if let Some(f) = &a.tokens_file {
                put(&mut t, "auth.tokens-file", path(f)?);
            }
            if !a.list_tokens.is_empty() {
                let list: Vec<String> = a
                    .list_tokens
                    .entries()
                    .map(|(token, tenant)| format!("{}={tenant}", String::from_utf8_lossy(token)))
                    .collect();
                put(&mut t, "auth.tokens", list.join(",").into());
            }
            if let Some(u) = &a.udp_tenant {
                put(&mut t, "auth.udp-tenant", u.as_str().into());
            }
            put(&mut t, "multi-tenancy.header", a.header.as_str().into());
            if let Some(allowed) = &a.allowed {
                let names = allowed.iter().map(|n| Value::from(n.as_str()));
                put(
                    &mut t,
                    "multi-tenancy.tenants",
                    Value::Array(names.collect()),
                );
            }
            put(&mut t, "multi-tenancy.max-tenants", int(a.max_tenants)?);
        }
        toml::to_string(&t).map_err(|e| e.to_string())
    }
}

/// Sets `dotted` (`admin.http.tls.enabled`) in `t`, making the tables on the way.
fn put(t: &mut Table, dotted: &str, value: Value) {
    let mut table = t;
    let mut keys = dotted.split('.').peekable();
    while let Some(key) = keys.next() {
        if keys.peek().is_none() {
            table.insert(key.to_string(), value);
            return;
        }
        let next = table
            .entry(key.to_string())
            .or_insert_with(|| Value::Table(Table::new()));
        table = match next {
            Value::Table(inner) => inner,
            _ => unreachable!("{key} of {dotted} is a table"),
        };
    }
}

/// A duration in whole nanoseconds, which `parse_duration` reads back exactly.
fn duration(d: Duration) -> Value {
    format!("{}ns", d.as_nanos()).into()
}

fn socket(a: &SocketAddr) -> Value {
    a.to_string().into()
}

fn int<T: TryInto<i64> + Copy + std::fmt::Display>(v: T) -> Result<Value, String> {
    v.try_into()
        .map(Value::Integer)
        .map_err(|_| format!("{v} is too large for a TOML integer"))
}

/// The files of a TLS client that are set, as `<prefix>ca-file`, `cert-file`, `key-file`.
fn put_client_tls(
    t: &mut Table,
    prefix: &str,
    files: &crate::tls::ClientTlsFiles,
) -> Result<(), String> {
    for (key, file) in [
        ("ca-file", &files.ca),
        ("cert-file", &files.cert),
        ("key-file", &files.key),
    ] {
        if let Some(f) = file {
            put(t, &format!("{prefix}{key}"), path(f)?);
        }
    }
    Ok(())
}

fn path(p: &Path) -> Result<Value, String> {
    p.to_str()
        .map(Value::from)
        .ok_or_else(|| format!("{} is not UTF-8", p.display()))
}
