//! The OTLP/gRPC trace receiver: `opentelemetry.proto.collector.trace.v1.TraceService/Export`,
//! served by tonic without code generation (through the shared
//! [`UnaryServer`](super::grpc_codec::UnaryServer)).

use std::future::Future;
use std::sync::Arc;

use bytes::Bytes;
use spoor_otlp::proto;
use tonic::Status;

use super::{export_response, grpc_refusal};
use crate::ingest::{Ingest, IngestBatch};
use crate::receivers::grpc_codec::UnaryMethod;
use crate::receivers::Target;

/// Name of this receiver in metrics and in [`Ingest::bad_request`].
pub const RECEIVER: &str = "otlp_grpc";

/// The gRPC service name.
pub const SERVICE_NAME: &str = "opentelemetry.proto.collector.trace.v1.TraceService";

/// The full path of the export method.
pub const EXPORT_PATH: &str = "/opentelemetry.proto.collector.trace.v1.TraceService/Export";

/// Settings of the OTLP/gRPC receiver.
#[derive(Debug, Clone)]
pub struct OtlpGrpcConfig {
    /// Largest accepted request message in bytes (after gzip decompression).
    pub max_message_bytes: usize,
}

/// Serves OTLP/gRPC on `listener` until `shutdown` resolves, then drains in-flight calls.
pub async fn serve_otlp_grpc(
    listener: tokio::net::TcpListener,
    target: Target,
    cfg: OtlpGrpcConfig,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let addr = listener.local_addr().ok();
    super::grpc_server_builder()?
        .add_service(target.grpc(|ingest, _| Export { ingest }, cfg.max_message_bytes))
        .serve_with_incoming_shutdown(
            // No Nagle: a small unary reply must not wait for the client's delayed ACK.
            tonic::transport::server::TcpIncoming::from(listener).with_nodelay(Some(true)),
            shutdown,
        )
        .await
        .map_err(|e| match addr {
            Some(a) => anyhow::anyhow!("otlp grpc server on {a} failed: {e}"),
            None => anyhow::anyhow!("otlp grpc server failed: {e}"),
        })
}

/// The `Export` method.
struct Export {
    ingest: Arc<dyn Ingest>,
}

impl UnaryMethod for Export {
    const SERVICE: &'static str = SERVICE_NAME;
    const PATH: &'static str = EXPORT_PATH;
    type Response = proto::ExportTraceServiceResponse;

    async fn handle(&self, request: Bytes) -> Result<Self::Response, Status> {
        // refused before decoding while the pipeline would refuse any batch
        if let Err(err) = self.ingest.admit(RECEIVER) {
            return Err(grpc_refusal(&err));
        }
        let decoded = match spoor_otlp::decode_proto(&request) {
            Ok(d) => d,
            Err(e) => {
                let message = e.to_string();
                self.ingest.bad_request(RECEIVER, &message);
                return Err(Status::invalid_argument(message));
            }
        };
        let batch = IngestBatch::from_decoded(RECEIVER, decoded);
        match self.ingest.ingest(batch).await {
            Ok(outcome) => Ok(export_response(&outcome)),
            Err(err) => Err(grpc_refusal(&err)),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use prost::Message;
    use tonic::Code;

    use http::uri::PathAndQuery;
    use spoor_core::{Span, SpanId, TraceId};
    use tonic::transport::Channel;
    use tonic_prost::ProstCodec;

    use tonic::codec::CompressionEncoding;

    use super::*;
    use crate::ingest::IngestError;
    use crate::receivers::testing::Recorder;

    struct Server {
        addr: std::net::SocketAddr,
        stop: Option<tokio::sync::oneshot::Sender<()>>,
        task: tokio::task::JoinHandle<anyhow::Result<()>>,
    }

    impl Server {
        async fn start(rec: Arc<Recorder>, max_message_bytes: usize) -> Server {
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            let addr = listener.local_addr().unwrap();
            let (tx, rx) = tokio::sync::oneshot::channel::<()>();
            let task = tokio::spawn(serve_otlp_grpc(
                listener,
                Target::Single {
                    ingest: rec,
                    sampling: crate::sampling::StrategyProvider::Local(Arc::new(
                        crate::sampling::DefaultStrategy,
                    )),
                },
                OtlpGrpcConfig { max_message_bytes },
                async {
                    let _ = rx.await;
                },
            ));
            Server {
                addr,
                stop: Some(tx),
                task,
            }
        }

        async fn client(&self) -> tonic::client::Grpc<Channel> {
            let channel = Channel::from_shared(format!("http://{}", self.addr))
                .unwrap()
                .connect()
                .await
                .unwrap();
            tonic::client::Grpc::new(channel)
        }

        async fn stop(mut self) {
            let _ = self.stop.take().unwrap().send(());
            let res = tokio::time::timeout(Duration::from_secs(10), self.task).await;
            res.expect("server did not stop").unwrap().unwrap();
        }
    }

    async fn export<M: Message + Default + Send + Sync + 'static>(
        client: &mut tonic::client::Grpc<Channel>,
        path: &'static str,
        msg: M,
    ) -> Result<proto::ExportTraceServiceResponse, Status> {
        client.ready().await.unwrap();
        let codec = ProstCodec::<M, proto::ExportTraceServiceResponse>::default();
        client
            .unary(
                tonic::Request::new(msg),
                PathAndQuery::from_static(path),
                codec,
            )
            .await
            .map(tonic::Response::into_inner)
    }

    fn spans(n: u64) -> Vec<Span> {
        let resource = Arc::new(spoor_core::Resource {
            service_name: "svc".into(),
            ..Default::default()
        });
        let scope = Arc::new(spoor_core::Scope::default());
        (1..=n)
            .map(|id| Span {
                trace_id: TraceId(9),
                span_id: SpanId(id),
                name: "x".repeat(100),
                resource: resource.clone(),
                scope: scope.clone(),
                ..Default::default()
            })
            .collect()
    }

    #[tokio::test]
    async fn export_with_partial_success_and_gzip() {
        let rec = Recorder::new();
        let server = Server::start(rec.clone(), 1 << 20).await;
        let mut client = server.client().await;

        let mut req = spoor_otlp::spans_to_request(&spans(3));
        req.resource_spans[0].scope_spans[0].spans[2]
            .trace_id
            .truncate(7);
        let resp = export(&mut client, EXPORT_PATH, req).await.unwrap();
        assert_eq!(
            resp.partial_success,
            Some(proto::ExportTracePartialSuccess {
                rejected_spans: 1,
                error_message:
                    "resource_spans[0].scope_spans[0].spans[2]: trace_id is 7 bytes, expected 16"
                        .into(),
            })
        );

        let mut gz = client.clone().send_compressed(CompressionEncoding::Gzip);
        let resp = export(
            &mut gz,
            EXPORT_PATH,
            spoor_otlp::spans_to_request(&spans(2)),
        )
        .await
        .unwrap();
        assert_eq!(resp.partial_success, None);

        {
            let batches = rec.batches.lock();
            let got: Vec<_> = batches
                .iter()
                .map(|b| (b.receiver, b.spans.len(), b.rejected))
                .collect();
            assert_eq!(got, vec![(RECEIVER, 2, 1), (RECEIVER, 2, 0)]);
            assert_eq!(batches[1].spans[0].service(), "svc");
        }
        server.stop().await;
    }

    /// A message that is not an `ExportTraceServiceRequest`: field 1 as a varint.
    #[derive(Clone, PartialEq, prost::Message)]
    struct NotARequest {
        #[prost(uint64, tag = "1")]
        v: u64,
    }

    #[tokio::test]
    async fn malformed_oversized_and_unknown_calls() {
        let rec = Recorder::new();
        let server = Server::start(rec.clone(), 4096).await;
        let mut client = server.client().await;

        let err = export(&mut client, EXPORT_PATH, NotARequest { v: 1 })
            .await
            .unwrap_err();
        assert_eq!(err.code(), Code::InvalidArgument, "{err:?}");
        assert!(
            err.message().starts_with("malformed protobuf: "),
            "{}",
            err.message()
        );
        assert_eq!(
            rec.bad.lock().as_slice(),
            &[(RECEIVER, err.message().to_string())]
        );

        let err = export(
            &mut client,
            EXPORT_PATH,
            spoor_otlp::spans_to_request(&spans(100)),
        )
        .await
        .unwrap_err();
        assert_eq!(err.code(), Code::OutOfRange, "{err:?}");

        // Compresses to far below the limit, but decompresses above it.
        let mut gz = client.clone().send_compressed(CompressionEncoding::Gzip);
        let big = spoor_otlp::spans_to_request(&spans(100));
        let err = export(&mut gz, EXPORT_PATH, big).await.unwrap_err();
        assert_eq!(err.code(), Code::ResourceExhausted, "{err:?}");
        assert!(err.message().contains("size limit"), "{err:?}");

        let err = export(
            &mut client,
            "/opentelemetry.proto.collector.trace.v1.TraceService/Nope",
            NotARequest::default(),
        )
        .await
        .unwrap_err();
        assert_eq!(err.code(), Code::Unimplemented);

        assert!(rec.batches.lock().is_empty());
        server.stop().await;
    }

    /// `(pipeline error, gRPC code, retry delay in details)`
    #[tokio::test]
    async fn pipeline_refusals_map_to_grpc_codes() {
        let cases = [
            (
                IngestError::Overloaded {
                    retry_after: Duration::from_secs(2),
                },
                Code::ResourceExhausted,
                Some(2),
            ),
            (IngestError::ShuttingDown, Code::Unavailable, Some(5)),
            (
                IngestError::Storage("disk full".into()),
                Code::Unavailable,
                Some(5),
            ),
        ];
        for (err, code, delay) in cases {
            let rec = Recorder::replying(Err(err.clone()));
            let server = Server::start(rec, 1 << 20).await;
            let mut client = server.client().await;
            let status = export(
                &mut client,
                EXPORT_PATH,
                spoor_otlp::spans_to_request(&spans(1)),
            )
            .await
            .unwrap_err();
            assert_eq!(
                (status.code(), status.message()),
                (code, err.to_string().as_str())
            );
            let details = proto::RpcStatus::decode(status.details()).unwrap();
            assert_eq!(details.code, code as i32);
            let retry = details
                .details
                .iter()
                .find(|d| d.type_url == proto::RETRY_INFO_TYPE_URL)
                .map(|d| {
                    proto::RetryInfo::decode(d.value.as_slice())
                        .unwrap()
                        .retry_delay
                        .unwrap()
                        .seconds
                });
            assert_eq!(retry, delay, "{err}");
            server.stop().await;
        }
    }
}
