//! The Jaeger `api_v2` gRPC port (14250): `jaeger.api_v2.CollectorService/PostSpans` and
//! `jaeger.api_v2.SamplingManager/GetSamplingStrategy`, served by tonic without code generation
//! (through the shared [`UnaryServer`](super::grpc_codec::UnaryServer)).

use std::future::Future;
use std::sync::Arc;

use bytes::Bytes;
use prost::Message;
use spoor_jaeger::proto::{PostSpansResponse, COLLECTOR_SERVICE, POST_SPANS_PATH};
use spoor_jaeger::sampling::{
    SamplingStrategyParameters, SamplingStrategyResponse, GET_SAMPLING_STRATEGY_PATH,
    SAMPLING_MANAGER_SERVICE,
};
use tonic::Status;

use super::grpc_refusal;
use crate::ingest::{Ingest, IngestBatch};
use crate::receivers::grpc_codec::UnaryMethod;
use crate::receivers::Target;
use crate::sampling::StrategyProvider;

/// Name of this receiver in metrics and in [`Ingest::bad_request`].
pub const RECEIVER: &str = "jaeger_grpc";

/// Settings of the Jaeger gRPC receiver.
#[derive(Debug, Clone)]
pub struct JaegerGrpcConfig {
    /// Largest accepted request message in bytes (after gzip decompression).
    pub max_message_bytes: usize,
}

/// Serves `CollectorService` and `SamplingManager` on `listener` until `shutdown` resolves, then
/// drains in-flight calls.
pub async fn serve_jaeger_grpc(
    listener: tokio::net::TcpListener,
    target: Target,
    cfg: JaegerGrpcConfig,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let addr = listener.local_addr().ok();
    super::grpc_server_builder()?
        .add_service(target.grpc(|ingest, _| PostSpans { ingest }, cfg.max_message_bytes))
        .add_service(target.grpc(
            |_, sampling| GetSamplingStrategy {
                sampling: sampling.clone(),
            },
            cfg.max_message_bytes,
        ))
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

/// `CollectorService/PostSpans`.
struct PostSpans {
    ingest: Arc<dyn Ingest>,
}

impl UnaryMethod for PostSpans {
    const SERVICE: &'static str = COLLECTOR_SERVICE;
    const PATH: &'static str = POST_SPANS_PATH;
    type Response = PostSpansResponse;

    async fn handle(&self, request: Bytes) -> Result<PostSpansResponse, Status> {
        // refused before decoding while the pipeline would refuse any batch
        if let Err(err) = self.ingest.admit(RECEIVER) {
            return Err(grpc_refusal(&err));
        }
        let decoded = match spoor_jaeger::decode_post_spans(&request) {
            Ok(d) => d,
            Err(e) => {
                let message = e.to_string();
                self.ingest.bad_request(RECEIVER, &message);
                return Err(Status::invalid_argument(message));
            }
        };
        let batch = IngestBatch::from_decoded(RECEIVER, decoded);
        match self.ingest.ingest(batch).await {
            // api_v2 has no partial success: rejected spans are reported by the pipeline's
            // metrics and logs, the call itself succeeds as Jaeger's collector does
            Ok(_) => Ok(PostSpansResponse {}),
            Err(err) => Err(grpc_refusal(&err)),
        }
    }
}

/// `SamplingManager/GetSamplingStrategy`.
struct GetSamplingStrategy {
    sampling: StrategyProvider,
}

impl UnaryMethod for GetSamplingStrategy {
    const SERVICE: &'static str = SAMPLING_MANAGER_SERVICE;
    const PATH: &'static str = GET_SAMPLING_STRATEGY_PATH;
    type Response = SamplingStrategyResponse;

    async fn handle(&self, request: Bytes) -> Result<SamplingStrategyResponse, Status> {
        let params = SamplingStrategyParameters::decode(request).map_err(|e| {
            Status::invalid_argument(format!("invalid SamplingStrategyParameters: {e}"))
        })?;
        self.sampling
            .strategy(&params.service_name)
            .await
            .map_err(|e| Status::unavailable(e.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use prost::Message;
    use tonic::Code;

    use http::uri::PathAndQuery;
    use spoor_jaeger::proto;
    use tonic::transport::Channel;
    use tonic_prost::ProstCodec;

    use spoor_core::sampling::StrategyResponse;

    use super::*;
    use crate::ingest::IngestError;
    use crate::receivers::testing::Recorder;
    use crate::sampling::StrategySource;

    /// Service `a` samples everything, the others 5 traces per second.
    struct PerService;

    impl StrategySource for PerService {
        fn strategy(&self, service: &str) -> StrategyResponse {
            match service {
                "a" => StrategyResponse::probabilistic(1.0),
                _ => StrategyResponse::rate_limiting(5),
            }
        }
    }

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
            Target::Single {
                ingest: rec,
                sampling: StrategyProvider::Local(Arc::new(PerService)),
            },
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
        call_for(client, path, msg).await
    }

    async fn call_for<M, R>(
        client: &mut tonic::client::Grpc<Channel>,
        path: &'static str,
        msg: M,
    ) -> Result<R, Status>
    where
        M: Message + Default + Send + Sync + 'static,
        R: Message + Default + Send + Sync + 'static,
    {
        client.ready().await.unwrap();
        client
            .unary(
                tonic::Request::new(msg),
                PathAndQuery::from_static(path),
                ProstCodec::<M, R>::default(),
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
            "/jaeger.api_v2.CollectorService/Nope",
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
    async fn sampling_manager_answers_per_service() {
        let rec = Recorder::new();
        let (mut client, stop, _task) = start(rec.clone()).await;
        for (service, want) in [
            ("a", StrategyResponse::probabilistic(1.0)),
            ("b", StrategyResponse::rate_limiting(5)),
        ] {
            let params = SamplingStrategyParameters {
                service_name: service.into(),
            };
            let got: SamplingStrategyResponse =
                call_for(&mut client, GET_SAMPLING_STRATEGY_PATH, params)
                    .await
                    .unwrap();
            assert_eq!(got, SamplingStrategyResponse::from(&want), "{service}");
        }
        // a string field with a varint on the wire is not a SamplingStrategyParameters
        let err = call_for::<_, SamplingStrategyResponse>(
            &mut client,
            GET_SAMPLING_STRATEGY_PATH,
            proto::Timestamp {
                seconds: 1,
                nanos: 0,
            },
        )
        .await
        .unwrap_err();
        assert_eq!(err.code(), Code::InvalidArgument, "{err:?}");
        assert!(
            err.message()
                .starts_with("invalid SamplingStrategyParameters: "),
            "{}",
            err.message()
        );
        let unknown = call_for::<_, SamplingStrategyResponse>(
            &mut client,
            "/jaeger.api_v2.SamplingManager/Nope",
            SamplingStrategyParameters::default(),
        )
        .await
        .unwrap_err();
        assert_eq!(unknown.code(), Code::Unimplemented);
        assert!(rec.batches.lock().is_empty());
        stop.send(()).unwrap();
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
