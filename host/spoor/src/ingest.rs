//! The boundary between receivers and the pipeline: receivers decode a request into spans and
//! hand them over here; the pipeline validates, queues, batches and stores them, and tells the
//! receiver what to answer.

use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use spoor_core::Span;

/// What a receiver decoded from one request.
#[derive(Debug, Default)]
pub struct IngestBatch {
    /// Name of the receiver, used in metrics labels (`otlp_grpc`, `otlp_http`, …).
    pub receiver: &'static str,
    /// The spans that decoded.
    pub spans: Vec<Span>,
    /// Spans the receiver already rejected while decoding (bad id lengths, …).
    pub rejected: usize,
    /// Why they were rejected, one line per problem.
    pub problems: Vec<String>,
}

impl IngestBatch {
    /// The batch a receiver hands on for what its codec decoded.
    pub fn from_decoded(receiver: &'static str, decoded: spoor_core::Decoded) -> Self {
        IngestBatch {
            receiver,
            spans: decoded.spans,
            rejected: decoded.rejected,
            problems: decoded.problems,
        }
    }
}

/// What the pipeline did with a batch; receivers turn it into the protocol's success reply
/// (partial success when `rejected > 0`).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct IngestOutcome {
    /// Spans accepted for storage.
    pub accepted: usize,
    /// Spans rejected by decoding or validation.
    pub rejected: usize,
    /// Human-readable reason for the rejections, empty when none.
    pub message: String,
}

/// Why a batch was refused as a whole. Nothing of a refused batch is kept; the client may retry.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IngestError {
    /// The pipeline queue is full: the client should retry after the hint (429 /
    /// RESOURCE_EXHAUSTED).
    #[error("pipeline is full, retry after {}s", retry_after.as_secs())]
    Overloaded {
        /// How long the client should wait.
        retry_after: Duration,
    },
    /// The daemon is shutting down (503 / UNAVAILABLE).
    #[error("daemon is shutting down")]
    ShuttingDown,
    /// Storage writes are failing (a full disk): the client waited for a durable
    /// acknowledgement, or storage was already failing when it came (503 / UNAVAILABLE, with a
    /// retry hint). The text is safe to send to clients: no file paths.
    #[error("storage failed: {0}")]
    Storage(String),
}

/// A boxed future returned by [`Ingest::ingest`].
pub type IngestFuture<'a> =
    Pin<Box<dyn Future<Output = Result<IngestOutcome, IngestError>> + Send + 'a>>;

/// Where receivers send decoded spans.
///
/// # Contract
/// - `ingest` may be called concurrently from every connection.
/// - It resolves once the spans are accepted: queued (durability `periodic`) or stored and
///   flushed (durability `sync`). It never waits for queue space: a full queue is
///   [`IngestError::Overloaded`] at once, so memory stays bounded.
/// - `bad_request` counts a request that could not be decoded at all (metrics and a
///   rate-limited log line); it never fails.
pub trait Ingest: Send + Sync + 'static {
    /// Validates and enqueues a decoded batch.
    fn ingest(&self, batch: IngestBatch) -> IngestFuture<'_>;

    /// Asked before a request's body is read and decoded: `Err` when `ingest` would refuse any
    /// batch now (queue full, memory over the soft limit, storage failing, shutting down), so
    /// an overloaded daemon refuses for the cost of the headers. A refusal here is counted per
    /// request (its spans were never decoded). `Ok` promises nothing: `ingest` decides.
    fn admit(&self, _receiver: &'static str) -> Result<(), IngestError> {
        Ok(())
    }

    /// Records a request that was refused before it produced spans (`reason` is the error
    /// message sent to the client).
    fn bad_request(&self, receiver: &'static str, reason: &str);
}
