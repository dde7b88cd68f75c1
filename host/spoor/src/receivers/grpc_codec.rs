//! What the gRPC services share: the codec, which hands the request message over as raw bytes
//! (so a decode failure is answered with INVALID_ARGUMENT naming the problem, where `ProstCodec`
//! would answer INTERNAL, and so the one-pass decoders can read the wire directly) and encodes
//! the response `R` with prost; and [`UnaryServer`], the one hand-written tonic service (no
//! code generation) that serves a [`UnaryMethod`] for OTLP `Export`, Jaeger `PostSpans` and
//! `GetSamplingStrategy`.

use std::collections::HashMap;
use std::convert::Infallible;
use std::future::Future;
use std::marker::PhantomData;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::{Buf, Bytes};
use parking_lot::Mutex;
use tonic::codec::{Codec, CompressionEncoding, DecodeBuf, Decoder, EncodeBuf, Encoder};
use tonic::server::{Grpc, NamedService, UnaryService};
use tonic::Status;

use crate::auth::TenantId;
use crate::tenants::{Gate, TenantStack};

/// Raw-bytes requests, prost-encoded responses of type `R`.
pub(crate) struct RequestBytesCodec<R>(PhantomData<fn() -> R>);

impl<R> Default for RequestBytesCodec<R> {
    fn default() -> Self {
        RequestBytesCodec(PhantomData)
    }
}

impl<R: prost::Message + Send + 'static> Codec for RequestBytesCodec<R> {
    type Encode = R;
    type Decode = Bytes;
    type Encoder = RequestBytesCodec<R>;
    type Decoder = RequestBytesCodec<R>;

    fn encoder(&mut self) -> Self::Encoder {
        RequestBytesCodec::default()
    }

    fn decoder(&mut self) -> Self::Decoder {
        RequestBytesCodec::default()
    }
}

impl<R: prost::Message> Encoder for RequestBytesCodec<R> {
    type Item = R;
    type Error = Status;

    fn encode(&mut self, item: R, dst: &mut EncodeBuf<'_>) -> Result<(), Status> {
        item.encode(dst)
            .map_err(|e| Status::internal(format!("cannot encode the response: {e}")))
    }
}

impl<R> Decoder for RequestBytesCodec<R> {
    type Item = Bytes;
    type Error = Status;

    fn decode(&mut self, src: &mut DecodeBuf<'_>) -> Result<Option<Bytes>, Status> {
        let n = src.remaining();
        Ok(Some(src.copy_to_bytes(n)))
    }
}

/// One unary gRPC method: the request arrives as raw bytes (decoded by the handler, so a bad
/// message is INVALID_ARGUMENT naming the problem), the reply is a prost message.
///
/// `handle` may be called concurrently from many connections; it must not block.
pub(crate) trait UnaryMethod: Send + Sync + 'static {
    /// The gRPC service name, e.g. `jaeger.api_v2.CollectorService`.
    const SERVICE: &'static str;
    /// The full path of the one method, e.g. `/jaeger.api_v2.CollectorService/PostSpans`.
    const PATH: &'static str;
    /// The reply message.
    type Response: prost::Message + Send + 'static;

    /// Answers one call.
    fn handle(
        &self,
        request: Bytes,
    ) -> impl std::future::Future<Output = Result<Self::Response, Status>> + Send;
}

/// A tonic service of one [`UnaryMethod`], routed by path the way tonic-build's generated
/// servers are (any other path is UNIMPLEMENTED), with gzip requests accepted and the decoded
/// request size bounded.
pub(crate) struct UnaryServer<M> {
    methods: Methods<M>,
    max_message_bytes: usize,
}

/// One method for every call, or one per tenant.
enum Methods<M> {
    One(Arc<M>),
    PerTenant(Arc<PerTenant<M>>),
}

/// Builds a tenant's method over its stack.
type MakeMethod<M> = dyn Fn(&TenantStack) -> Option<M> + Send + Sync;

/// Per-tenant methods: the call's tenant is resolved from its metadata before the message is
/// read, and the call goes to the method built over that tenant's stack (cached).
struct PerTenant<M> {
    gate: Arc<Gate>,
    make: Box<MakeMethod<M>>,
    cache: Mutex<HashMap<TenantId, Arc<M>>>,
}

impl<M> PerTenant<M> {
    async fn method(&self, tenant: TenantId) -> Result<Arc<M>, Status> {
        let stack = self
            .gate
            .tenants
            .get(&tenant)
            .await
            .map_err(|d| d.grpc_status())?;
        if let Some(m) = self.cache.lock().get(&tenant) {
            return Ok(Arc::clone(m));
        }
        let m = Arc::new(
            (self.make)(&stack)
                .ok_or_else(|| Status::unavailable("this role does not receive spans"))?,
        );
        self.cache.lock().insert(tenant, Arc::clone(&m));
        Ok(m)
    }
}

impl<M> UnaryServer<M> {
    /// The service, ready for `Server::add_service`.
    pub(crate) fn new(method: M, max_message_bytes: usize) -> Self {
        UnaryServer {
            methods: Methods::One(Arc::new(method)),
            max_message_bytes,
        }
    }

    /// The service with one method per tenant, built by `make` over the tenant's stack
    /// (`None`: the stack cannot serve it, UNAVAILABLE).
    pub(crate) fn per_tenant(
        gate: Arc<Gate>,
        make: impl Fn(&TenantStack) -> Option<M> + Send + Sync + 'static,
        max_message_bytes: usize,
    ) -> Self {
        UnaryServer {
            methods: Methods::PerTenant(Arc::new(PerTenant {
                gate,
                make: Box::new(make),
                cache: Mutex::new(HashMap::new()),
            })),
            max_message_bytes,
        }
    }
}

impl<M> Clone for UnaryServer<M> {
    fn clone(&self) -> Self {
        UnaryServer {
            methods: match &self.methods {
                Methods::One(m) => Methods::One(Arc::clone(m)),
                Methods::PerTenant(p) => Methods::PerTenant(Arc::clone(p)),
            },
            max_message_bytes: self.max_message_bytes,
        }
    }
}

impl<M: UnaryMethod> NamedService for UnaryServer<M> {
    const NAME: &'static str = M::SERVICE;
}

type BoxFuture<T, E> = Pin<Box<dyn Future<Output = Result<T, E>> + Send + 'static>>;

impl<M: UnaryMethod> tower::Service<http::Request<tonic::body::Body>> for UnaryServer<M> {
    type Response = http::Response<tonic::body::Body>;
    type Error = Infallible;
    type Future = BoxFuture<Self::Response, Infallible>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, req: http::Request<tonic::body::Body>) -> Self::Future {
        if req.uri().path() != M::PATH {
            let status = Status::unimplemented(format!("unknown method {:?}", req.uri().path()));
            return Box::pin(async move { Ok(status.into_http()) });
        }
        let mut grpc = Grpc::new(RequestBytesCodec::<M::Response>::default())
            .accept_compressed(CompressionEncoding::Gzip)
            .max_decoding_message_size(self.max_message_bytes);
        match &self.methods {
            Methods::One(m) => {
                let call = Call(Arc::clone(m));
                Box::pin(async move { Ok(grpc.unary(call, req).await) })
            }
            Methods::PerTenant(p) => {
                // the tenant is resolved from the metadata before the message is read
                let tenant = match p.gate.auth.resolve(req.headers()) {
                    Ok(t) => t,
                    Err(denied) => {
                        let status = denied.grpc_status();
                        return Box::pin(async move { Ok(status.into_http()) });
                    }
                };
                let p = Arc::clone(p);
                Box::pin(async move {
                    match p.method(tenant).await {
                        Ok(m) => Ok(grpc.unary(Call(m), req).await),
                        Err(status) => Ok(status.into_http()),
                    }
                })
            }
        }
    }
}

/// Adapts a [`UnaryMethod`] to tonic's `UnaryService`.
struct Call<M>(Arc<M>);

impl<M: UnaryMethod> UnaryService<Bytes> for Call<M> {
    type Response = M::Response;
    type Future = BoxFuture<tonic::Response<M::Response>, Status>;

    fn call(&mut self, request: tonic::Request<Bytes>) -> Self::Future {
        let method = Arc::clone(&self.0);
        Box::pin(async move {
            method
                .handle(request.into_inner())
                .await
                .map(tonic::Response::new)
        })
    }
}
