//! The Jaeger `api_v2` gRPC receiver: `jaeger.api_v2.CollectorService/PostSpans`, served by
//! tonic without code generation (written out the way tonic-build would generate it).
//!
//! [`CollectorServiceServer`] is one named service; other `jaeger.api_v2` services on the same
//! port (`SamplingManager/GetSamplingStrategy`) are added next to it with `add_service`.

use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::Bytes;
use prost::Message;
use spoor_jaeger::proto::{PostSpansResponse, COLLECTOR_SERVICE, POST_SPANS_PATH};
use spoor_otlp::proto::RpcStatus;
use tonic::codec::CompressionEncoding;
use tonic::server::{Grpc, NamedService, UnaryService};
use tonic::{Code, Status};

use super::refusal;
use crate::ingest::{Ingest, IngestBatch};
use crate::receivers::grpc_codec::RequestBytesCodec;

/// Name of this receiver in metrics and in [`Ingest::bad_request`].
pub const RECEIVER: &str = "jaeger_grpc";

/// Settings of the Jaeger gRPC receiver.
#[derive(Debug, Clone)]
pub struct JaegerGrpcConfig {
    /// Largest accepted request message in bytes (after gzip decompression).
    pub max_message_bytes: usize,
}

/// Serves `CollectorService` on `listener` until `shutdown` resolves, then drains in-flight
/// calls.
pub async fn serve_jaeger_grpc(
    listener: tokio::net::TcpListener,
    ingest: Arc<dyn Ingest>,
    cfg: JaegerGrpcConfig,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let addr = listener.local_addr().ok();
    tonic::transport::Server::builder()
        .add_service(CollectorServiceServer::new(ingest, cfg))
        .serve_with_incoming_shutdown(
            tonic::transport::server::TcpIncoming::from(listener).with_nodelay(Some(true)),
            shutdown,
        )
        .await
        .map_err(|e| match addr {
            Some(a) => anyhow::anyhow!("jaeger grpc server on {a} failed: {e}"),
            None => anyhow::anyhow!("jaeger grpc server failed: {e}"),
        })
}

/// The `jaeger.api_v2.CollectorService` server.
#[derive(Clone)]
pub struct CollectorServiceServer {
    ingest: Arc<dyn Ingest>,
    max_message_bytes: usize,
}

impl CollectorServiceServer {
    /// The service, ready for `Server::add_service`.
    pub fn new(ingest: Arc<dyn Ingest>, cfg: JaegerGrpcConfig) -> Self {
        CollectorServiceServer {
            ingest,
            max_message_bytes: cfg.max_message_bytes,
        }
    }
}

impl NamedService for CollectorServiceServer {
    const NAME: &'static str = COLLECTOR_SERVICE;
}

type BoxFuture<T, E> = Pin<Box<dyn Future<Output = Result<T, E>> + Send + 'static>>;

impl tower::Service<http::Request<tonic::body::Body>> for CollectorServiceServer {
    type Response = http::Response<tonic::body::Body>;
    type Error = Infallible;
    type Future = BoxFuture<Self::Response, Infallible>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, req: http::Request<tonic::body::Body>) -> Self::Future {
        if req.uri().path() != POST_SPANS_PATH {
            let status = Status::unimplemented(format!("unknown method {:?}", req.uri().path()));
            return Box::pin(async move { Ok(status.into_http()) });
        }
        let post = PostSpans {
            ingest: Arc::clone(&self.ingest),
        };
        let mut grpc = Grpc::new(RequestBytesCodec::<PostSpansResponse>::default())
            .accept_compressed(CompressionEncoding::Gzip)
            .max_decoding_message_size(self.max_message_bytes);
        Box::pin(async move { Ok(grpc.unary(post, req).await) })
    }
}

/// The `PostSpans` method.
struct PostSpans {
    ingest: Arc<dyn Ingest>,
}

impl UnaryService<Bytes> for PostSpans {
    type Response = PostSpansResponse;
    type Future = BoxFuture<tonic::Response<Self::Response>, Status>;

    fn call(&mut self, request: tonic::Request<Bytes>) -> Self::Future {
        let ingest = Arc::clone(&self.ingest);
        Box::pin(async move {
            let decoded = match spoor_jaeger::decode_post_spans(request.get_ref()) {
                Ok(d) => d,
                Err(e) => {
                    let message = e.to_string();
                    ingest.bad_request(RECEIVER, &message);
                    return Err(Status::invalid_argument(message));
                }
            };
            let batch = IngestBatch::from_decoded(RECEIVER, decoded);
            match ingest.ingest(batch).await {
                // api_v2 has no partial success: rejected spans are reported by the pipeline's
                // metrics and logs, the call itself succeeds as Jaeger's collector does
                Ok(_) => Ok(tonic::Response::new(PostSpansResponse {})),
                Err(err) => {
                    let r = refusal(&err);
                    let details = RpcStatus::new(r.rpc_code, r.message.clone(), r.retry_after);
                    Err(Status::with_details(
                        Code::from(r.rpc_code),
                        r.message,
                        Bytes::from(details.encode_to_vec()),
                    ))
                }
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use http::uri::PathAndQuery;
    use spoor_jaeger::proto;
    use tonic::transport::Channel;
    use tonic_prost::ProstCodec;

    use super::*;
    use crate::ingest::IngestError;
    use crate::receivers::testing::Recorder;

    async fn start(
        rec: Arc<Recorder>,
    ) -> (
        tonic::client::Grpc<Channel>,
        tokio::sync::oneshot::Sender<()>,
        tokio::task::JoinHandle<anyhow::Result<()>>,
    ) {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let task = tokio::spawn(serve_jaeger_grpc(
            listener,
            rec,
            JaegerGrpcConfig {
                max_message_bytes: 1 << 20,
            },
            async {
                let _ = rx.await;
            },
        ));
        let channel = Channel::from_shared(format!("http://{addr}"))
            .unwrap()
            .connect()
            .await
            .unwrap();
        (tonic::client::Grpc::new(channel), tx, task)
    }

    async fn call<M: Message + Default + Send + Sync + 'static>(
        client: &mut tonic::client::Grpc<Channel>,
        path: &'static str,
        msg: M,
    ) -> Result<PostSpansResponse, Status> {
        client.ready().await.unwrap();
        client
            .unary(
                tonic::Request::new(msg),
                PathAndQuery::from_static(path),
                ProstCodec::<M, PostSpansResponse>::default(),
            )
            .await
            .map(tonic::Response::into_inner)
    }

    fn request(span_id: Vec<u8>) -> proto::PostSpansRequest {
        proto::PostSpansRequest {
            batch: Some(proto::Batch {
                spans: vec![proto::Span {
                    trace_id: vec![1; 16],
                    span_id,
                    operation_name: "op".into(),
                    start_time: Some(proto::Timestamp::from_nanos(1_500_000_001)),
                    duration: Some(proto::Duration::from_nanos(2_000)),
                    tags: vec![proto::KeyValue::string("span.kind", "consumer")],
                    ..Default::default()
                }],
                process: Some(proto::Process {
                    service_name: "grpc-svc".into(),
                    tags: vec![proto::KeyValue::int64("pid", 7)],
                }),
            }),
        }
    }

    #[tokio::test]
    async fn post_spans_reaches_the_pipeline() {
        let rec = Recorder::new();
        let (mut client, stop, task) = start(rec.clone()).await;
        call(&mut client, POST_SPANS_PATH, request(vec![2; 8]))
            .await
            .unwrap();
        // a span with a bad id is rejected alone, the call still succeeds
        call(&mut client, POST_SPANS_PATH, request(vec![2; 3]))
            .await
            .unwrap();
        {
            let batches = rec.batches.lock();
            let s = &batches[0].spans[0];
            assert_eq!(batches[0].receiver, RECEIVER);
            assert_eq!(s.service(), "grpc-svc");
            assert_eq!(s.kind, spoor_core::SpanKind::Consumer);
            assert_eq!(s.start_unix_nanos, 1_500_000_001);
            assert_eq!(s.duration_nanos, 2_000);
            assert_eq!(batches[1].rejected, 1);
            assert_eq!(
                batches[1].problems,
                ["spans[0]: span_id is 3 bytes, expected 8"]
            );
        }
        let garbage = call(&mut client, POST_SPANS_PATH, proto::Log::default()).await;
        assert_eq!(
            garbage.unwrap_err().message(),
            "PostSpansRequest has no batch"
        );
        let unknown = call(
            &mut client,
            "/jaeger.api_v2.SamplingManager/GetSamplingStrategy",
            request(vec![2; 8]),
        )
        .await
        .unwrap_err();
        assert_eq!(unknown.code(), Code::Unimplemented);
        assert_eq!(rec.bad.lock().len(), 1);
        stop.send(()).unwrap();
        tokio::time::timeout(Duration::from_secs(10), task)
            .await
            .unwrap()
            .unwrap()
            .unwrap();
    }

    #[tokio::test]
    async fn overload_is_resource_exhausted() {
        let rec = Recorder::replying(Err(IngestError::Overloaded {
            retry_after: Duration::from_secs(2),
        }));
        let (mut client, stop, _task) = start(rec).await;
        let err = call(&mut client, POST_SPANS_PATH, request(vec![2; 8]))
            .await
            .unwrap_err();
        assert_eq!(err.code(), Code::ResourceExhausted);
        assert_eq!(err.message(), "pipeline is full, retry after 2s");
        stop.send(()).unwrap();
    }
}
