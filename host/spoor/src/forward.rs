//! The agent's upstream: a write-only [`TraceStore`] that forwards each batch to a collector
//! over OTLP/gRPC.
//!
//! The agent runs the ordinary pipeline (validation, byte-bounded queue, batching) with this
//! store at its end, so the pipeline's retry-with-back-off on a failed write is the agent's
//! retry, and its bounded queue is the agent's bounded buffer: while the collector is away,
//! batches wait (holding queue space), and once the queue is full new spans are refused (429 /
//! RESOURCE_EXHAUSTED over OTLP, dropped and counted over UDP). Reads return nothing: the agent
//! serves no queries. Dependency links are left to the collector, which sees whole batches.

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::Duration;

use spoor_core::red::RedPoint;
use spoor_core::{DependencyLink, Operation, Span, SpanKind, Trace, TraceId, TraceQuery};
use spoor_otlp::proto::{ExportTraceServiceRequest, ExportTraceServiceResponse};
use spoor_store::{StoreError, StoreResult, StoreStats, TraceStore};
use tonic::transport::{Channel, Endpoint};

/// Where and how the agent forwards.
#[derive(Debug, Clone)]
pub struct ForwardConfig {
    /// Collector's OTLP/gRPC endpoint, `http://host:port`.
    pub endpoint: String,
    /// Deadline of one export call.
    pub timeout: Duration,
}

/// Forwards batches to a collector. See the module docs.
pub struct ForwardStore {
    endpoint: String,
    channel: Channel,
    runtime: tokio::runtime::Handle,
    spans_forwarded: AtomicU64,
}

const EXPORT_PATH: &str = "/opentelemetry.proto.collector.trace.v1.TraceService/Export";

impl ForwardStore {
    /// A forwarder that connects lazily (the collector may start later than the agent). Must be
    /// created inside the tokio runtime whose handle it keeps for its blocking calls.
    pub fn new(cfg: &ForwardConfig) -> anyhow::Result<ForwardStore> {
        let endpoint = Endpoint::from_shared(cfg.endpoint.clone())
            .map_err(|e| {
                anyhow::anyhow!("invalid agent.collector-endpoint {:?}: {e}", cfg.endpoint)
            })?
            .timeout(cfg.timeout)
            .connect_timeout(cfg.timeout)
            .tcp_nodelay(true);
        let endpoint = crate::tls::client_endpoint(endpoint, &cfg.endpoint)?;
        Ok(ForwardStore {
            endpoint: cfg.endpoint.clone(),
            channel: endpoint.connect_lazy(),
            runtime: tokio::runtime::Handle::current(),
            spans_forwarded: AtomicU64::new(0),
        })
    }

    async fn export(
        &self,
        req: ExportTraceServiceRequest,
    ) -> Result<ExportTraceServiceResponse, tonic::Status> {
        let mut grpc = tonic::client::Grpc::new(self.channel.clone())
            .send_compressed(tonic::codec::CompressionEncoding::Gzip);
        grpc.ready()
            .await
            .map_err(|e| tonic::Status::unavailable(e.to_string()))?;
        let codec: tonic_prost::ProstCodec<ExportTraceServiceRequest, ExportTraceServiceResponse> =
            tonic_prost::ProstCodec::default();
        let path = http::uri::PathAndQuery::from_static(EXPORT_PATH);
        grpc.unary(tonic::Request::new(req), path, codec)
            .await
            .map(tonic::Response::into_inner)
    }
}

impl TraceStore for ForwardStore {
    fn write_spans(&self, spans: &[Span]) -> StoreResult<()> {
        let req = spoor_otlp::spans_to_request(spans);
        // Called on a blocking thread by the pipeline, so blocking on the runtime is allowed.
        match self.runtime.block_on(self.export(req)) {
            Ok(resp) => {
                if let Some(p) = resp.partial_success.filter(|p| p.rejected_spans > 0) {
                    // Rejected spans are invalid; re-sending them cannot help.
                    tracing::warn!(
                        collector = %self.endpoint,
                        rejected = p.rejected_spans,
                        "collector rejected spans: {}",
                        p.error_message
                    );
                }
                self.spans_forwarded.fetch_add(spans.len() as u64, Relaxed);
                Ok(())
            }
            Err(status) => Err(StoreError::Io(format!(
                "forwarding {} spans to collector {} failed: {} {}",
                spans.len(),
                self.endpoint,
                status.code(),
                status.message()
            ))),
        }
    }

    fn write_dependencies(
        &self,
        _bucket_start_nanos: u64,
        _links: &[DependencyLink],
    ) -> StoreResult<()> {
        Ok(())
    }

    fn flush(&self) -> StoreResult<()> {
        Ok(())
    }

    fn get_trace(&self, _id: TraceId) -> StoreResult<Option<Trace>> {
        Ok(None)
    }

    fn services(&self) -> StoreResult<Vec<String>> {
        Ok(Vec::new())
    }

    fn operations(&self, _service: &str, _kind: Option<SpanKind>) -> StoreResult<Vec<Operation>> {
        Ok(Vec::new())
    }

    fn find_trace_ids(&self, _query: &TraceQuery) -> StoreResult<Vec<TraceId>> {
        Ok(Vec::new())
    }

    fn dependencies(
        &self,
        _end_nanos: u64,
        _lookback_nanos: u64,
    ) -> StoreResult<Vec<DependencyLink>> {
        Ok(Vec::new())
    }

    fn expire_before(&self, _cutoff_nanos: u64) -> StoreResult<u64> {
        Ok(0)
    }

    // The agent computes no span metrics (the pipeline has them off in the agent role); the
    // collector derives them from the spans forwarded to it.
    fn write_span_metrics(&self, _points: &[RedPoint]) -> StoreResult<()> {
        Ok(())
    }

    fn span_metrics(
        &self,
        _services: &[String],
        _start_nanos: u64,
        _end_nanos: u64,
    ) -> StoreResult<Vec<RedPoint>> {
        Ok(Vec::new())
    }

    fn stats(&self) -> StoreStats {
        StoreStats {
            spans_written: self.spans_forwarded.load(Relaxed),
            ..Default::default()
        }
    }
}
