//! The codec the gRPC receivers share: it hands the request message over as raw bytes (so a
//! decode failure is answered with INVALID_ARGUMENT naming the problem, where `ProstCodec`
//! would answer INTERNAL, and so the one-pass decoders can read the wire directly) and encodes
//! the response `R` with prost.

use std::marker::PhantomData;

use bytes::{Buf, Bytes};
use tonic::codec::{Codec, DecodeBuf, Decoder, EncodeBuf, Encoder};
use tonic::Status;

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
