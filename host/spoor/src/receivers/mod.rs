//! Receivers: protocol servers that decode incoming spans and hand them to [`crate::ingest`].
//!
//! This module holds what the OTLP/HTTP and OTLP/gRPC receivers share: the one mapping from
//! [`IngestError`] to HTTP status / gRPC code / retry hint, and the partial-success reply.

use std::time::Duration;

use spoor_otlp::proto;

use crate::ingest::{IngestError, IngestOutcome};

pub mod otlp_grpc;
pub mod otlp_http;

/// Retry hint sent with "shutting down" refusals, so clients move to another replica or wait
/// for the restart instead of hammering this one.
pub const SHUTDOWN_RETRY_AFTER: Duration = Duration::from_secs(5);

/// How a refused batch is reported, for both protocols.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Refusal {
    /// HTTP status code.
    pub http_status: u16,
    /// `google.rpc.Code` / gRPC status code number.
    pub rpc_code: i32,
    /// Retry hint (`Retry-After` header, `google.rpc.RetryInfo` detail).
    pub retry_after: Option<Duration>,
    /// Message for the client.
    pub message: String,
}

/// The one place where pipeline refusals become protocol status codes.
pub(crate) fn refusal(err: &IngestError) -> Refusal {
    let message = err.to_string();
    match err {
        IngestError::Overloaded { retry_after } => Refusal {
            http_status: 429,
            rpc_code: proto::rpc_code::RESOURCE_EXHAUSTED,
            retry_after: Some(*retry_after),
            message,
        },
        IngestError::ShuttingDown => Refusal {
            http_status: 503,
            rpc_code: proto::rpc_code::UNAVAILABLE,
            retry_after: Some(SHUTDOWN_RETRY_AFTER),
            message,
        },
        IngestError::Storage(_) => Refusal {
            http_status: 503,
            rpc_code: proto::rpc_code::UNAVAILABLE,
            retry_after: None,
            message,
        },
    }
}

/// The export reply for an accepted batch: partial success when anything was rejected (or the
/// pipeline has a message for the client), empty otherwise.
pub(crate) fn export_response(outcome: &IngestOutcome) -> proto::ExportTraceServiceResponse {
    let partial = outcome.rejected > 0 || !outcome.message.is_empty();
    proto::ExportTraceServiceResponse {
        partial_success: partial.then(|| proto::ExportTracePartialSuccess {
            rejected_spans: i64::try_from(outcome.rejected).unwrap_or(i64::MAX),
            error_message: outcome.message.clone(),
        }),
    }
}

/// A recording [`crate::ingest::Ingest`] for receiver tests.
#[cfg(test)]
pub(crate) mod testing {
    use std::sync::Arc;

    use parking_lot::Mutex;

    use crate::ingest::{Ingest, IngestBatch, IngestError, IngestFuture, IngestOutcome};

    /// Records every batch and bad request; answers with `reply` (or an outcome computed from
    /// the batch when `reply` is `None`: all decoded spans accepted, decode rejections passed on).
    #[derive(Default)]
    pub struct Recorder {
        pub batches: Mutex<Vec<IngestBatch>>,
        pub bad: Mutex<Vec<(&'static str, String)>>,
        pub reply: Mutex<Option<Result<IngestOutcome, IngestError>>>,
    }

    impl Recorder {
        pub fn new() -> Arc<Self> {
            Arc::new(Self::default())
        }

        pub fn replying(reply: Result<IngestOutcome, IngestError>) -> Arc<Self> {
            let r = Self::default();
            *r.reply.lock() = Some(reply);
            Arc::new(r)
        }
    }

    impl Ingest for Recorder {
        fn ingest(&self, batch: IngestBatch) -> IngestFuture<'_> {
            let reply = self.reply.lock().clone().unwrap_or_else(|| {
                Ok(IngestOutcome {
                    accepted: batch.spans.len(),
                    rejected: batch.rejected,
                    message: batch.problems.join("; "),
                })
            });
            self.batches.lock().push(batch);
            Box::pin(async move { reply })
        }

        fn bad_request(&self, receiver: &'static str, reason: &str) {
            self.bad.lock().push((receiver, reason.to_string()));
        }
    }
}
