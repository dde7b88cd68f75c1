//! The Jaeger agent's UDP receivers: one `Agent.emitBatch` oneway Thrift message per datagram,
//! in the compact (port 6831) or binary (port 6832) protocol.
//!
//! The socket loop only receives and decodes; each decoded batch is handed to the pipeline in
//! its own task, at most [`MAX_IN_FLIGHT`] at a time, so a slow pipeline never stalls receiving.
//! Undecodable datagrams and datagrams that arrive while every slot is busy are counted with
//! [`Ingest::bad_request`] (which also logs at a bounded rate); a batch the pipeline refuses as
//! overloaded is dropped (the pipeline counts its spans).

use std::future::Future;
use std::sync::Arc;

use tokio::net::UdpSocket;
use tokio::sync::Semaphore;

use crate::ingest::{Ingest, IngestBatch, IngestError};

/// Receiver name of the Thrift compact UDP receiver.
pub const RECEIVER_COMPACT: &str = "jaeger_thrift_compact";
/// Receiver name of the Thrift binary UDP receiver.
pub const RECEIVER_BINARY: &str = "jaeger_thrift_binary";

/// Receive buffer size: the largest UDP payload.
pub const RECV_BUFFER_BYTES: usize = 65_535;

/// Batches handed to the pipeline but not answered yet, per socket.
pub const MAX_IN_FLIGHT: usize = 256;

/// Which Thrift protocol a UDP socket speaks.
#[derive(Clone, Copy, Debug)]
pub enum ThriftProtocol {
    /// TCompactProtocol (the Jaeger clients' default, port 6831).
    Compact,
    /// TBinaryProtocol (port 6832).
    Binary,
}

impl ThriftProtocol {
    /// The receiver name used in metrics.
    pub fn receiver(self) -> &'static str {
        match self {
            ThriftProtocol::Compact => RECEIVER_COMPACT,
            ThriftProtocol::Binary => RECEIVER_BINARY,
        }
    }

    fn codec(self) -> spoor_jaeger::Protocol {
        match self {
            ThriftProtocol::Compact => spoor_jaeger::Protocol::Compact,
            ThriftProtocol::Binary => spoor_jaeger::Protocol::Binary,
        }
    }
}

/// Decodes one datagram into a batch for the pipeline, or the reason it is refused.
fn decode(datagram: &[u8], protocol: ThriftProtocol) -> Result<IngestBatch, String> {
    let decoded = spoor_jaeger::decode_emit_batch(datagram, protocol.codec()).map_err(|e| {
        format!(
            "cannot decode {}-byte datagram as thrift {} emitBatch: {e}",
            datagram.len(),
            match protocol {
                ThriftProtocol::Compact => "compact",
                ThriftProtocol::Binary => "binary",
            }
        )
    })?;
    Ok(IngestBatch::from_decoded(protocol.receiver(), decoded))
}

/// Receives datagrams on `socket` until `shutdown` resolves, then waits for the batches already
/// handed to the pipeline.
pub async fn serve_jaeger_udp(
    socket: UdpSocket,
    protocol: ThriftProtocol,
    ingest: Arc<dyn Ingest>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let receiver = protocol.receiver();
    let slots = Arc::new(Semaphore::new(MAX_IN_FLIGHT));
    let mut buf = vec![0u8; RECV_BUFFER_BYTES];
    tokio::pin!(shutdown);
    loop {
        let n = tokio::select! {
            () = &mut shutdown => break,
            r = socket.recv_from(&mut buf) => match r {
                Ok((n, _peer)) => n,
                Err(e) => {
                    // ICMP errors from earlier sends and the like: not fatal for a receiver
                    tracing::debug!(receiver, error = %e, "udp receive failed");
                    continue;
                }
            },
        };
        let batch = match decode(&buf[..n], protocol) {
            Ok(b) => b,
            Err(reason) => {
                ingest.bad_request(receiver, &reason);
                continue;
            }
        };
        let Ok(permit) = Arc::clone(&slots).try_acquire_owned() else {
            ingest.bad_request(
                receiver,
                &format!(
                    "{MAX_IN_FLIGHT} batches already waiting for the pipeline, datagram of {} spans dropped",
                    batch.spans.len()
                ),
            );
            continue;
        };
        let ingest = Arc::clone(&ingest);
        tokio::spawn(async move {
            let _permit = permit;
            match ingest.ingest(batch).await {
                Ok(_) => {}
                Err(IngestError::Overloaded { .. }) => {
                    tracing::debug!(receiver, "pipeline full, datagram dropped");
                }
                Err(e) => tracing::debug!(receiver, error = %e, "datagram dropped"),
            }
        });
    }
    // wait for the batches in flight (each resolves promptly: the pipeline never waits for
    // queue space)
    let _all = slots
        .acquire_many(MAX_IN_FLIGHT as u32)
        .await
        .map_err(|e| anyhow::anyhow!("{receiver} receiver: {e}"))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use spoor_jaeger::model::{Batch, Process, Span, Tag};

    use super::*;
    use crate::ingest::IngestOutcome;
    use crate::receivers::testing::Recorder;

    fn batch(service: &str) -> Batch {
        Batch {
            process: Process {
                service_name: service.into(),
                tags: vec![],
            },
            spans: vec![Span {
                trace_id_low: 5,
                span_id: 6,
                operation_name: "op".into(),
                start_time: 1_000,
                duration: 2,
                tags: vec![Tag::long("n", 1)],
                ..Default::default()
            }],
            ..Default::default()
        }
    }

    struct Server {
        addr: std::net::SocketAddr,
        stop: tokio::sync::oneshot::Sender<()>,
        task: tokio::task::JoinHandle<anyhow::Result<()>>,
    }

    async fn start(rec: Arc<Recorder>, protocol: ThriftProtocol) -> Server {
        let socket = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let addr = socket.local_addr().unwrap();
        let (stop, rx) = tokio::sync::oneshot::channel::<()>();
        let task = tokio::spawn(serve_jaeger_udp(socket, protocol, rec, async {
            let _ = rx.await;
        }));
        Server { addr, stop, task }
    }

    async fn wait_for(what: &str, mut done: impl FnMut() -> bool) {
        for _ in 0..500 {
            if done() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        panic!("timed out waiting for {what}");
    }

    #[tokio::test]
    async fn both_protocols_receive_and_garbage_is_counted() {
        for (protocol, codec, other) in [
            (
                ThriftProtocol::Compact,
                spoor_jaeger::Protocol::Compact,
                spoor_jaeger::Protocol::Binary,
            ),
            (
                ThriftProtocol::Binary,
                spoor_jaeger::Protocol::Binary,
                spoor_jaeger::Protocol::Compact,
            ),
        ] {
            let rec = Recorder::new();
            let server = start(rec.clone(), protocol).await;
            let client = UdpSocket::bind("127.0.0.1:0").await.unwrap();
            let good = spoor_jaeger::encode_emit_batch(&batch("svc-a"), codec, 1);
            let wrong = spoor_jaeger::encode_emit_batch(&batch("svc-b"), other, 1);
            client.send_to(&[], server.addr).await.unwrap();
            client.send_to(&wrong, server.addr).await.unwrap();
            client
                .send_to(&good[..good.len() / 2], server.addr)
                .await
                .unwrap();
            client.send_to(&good, server.addr).await.unwrap();
            wait_for("the good datagram", || rec.batches.lock().len() == 1).await;
            {
                let batches = rec.batches.lock();
                assert_eq!(batches[0].receiver, protocol.receiver());
                assert_eq!(batches[0].spans[0].service(), "svc-a");
                assert_eq!(batches[0].spans[0].start_unix_nanos, 1_000_000);
                let bad = rec.bad.lock();
                assert_eq!(bad.len(), 3, "{bad:?}");
                assert!(bad.iter().all(|(r, _)| *r == protocol.receiver()));
                assert!(
                    bad[0]
                        .1
                        .starts_with("cannot decode 0-byte datagram as thrift"),
                    "{}",
                    bad[0].1
                );
            }
            server.stop.send(()).unwrap();
            tokio::time::timeout(Duration::from_secs(5), server.task)
                .await
                .expect("receiver did not stop")
                .unwrap()
                .unwrap();
        }
    }

    #[tokio::test]
    async fn overloaded_pipeline_drops_and_keeps_receiving() {
        let rec = Recorder::replying(Err(IngestError::Overloaded {
            retry_after: Duration::from_secs(1),
        }));
        let server = start(rec.clone(), ThriftProtocol::Compact).await;
        let client = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let good = spoor_jaeger::encode_emit_batch(&batch("a"), spoor_jaeger::Protocol::Compact, 1);
        for _ in 0..3 {
            client.send_to(&good, server.addr).await.unwrap();
        }
        wait_for("three refused batches", || rec.batches.lock().len() == 3).await;
        *rec.reply.lock() = Some(Ok(IngestOutcome {
            accepted: 1,
            ..Default::default()
        }));
        client.send_to(&good, server.addr).await.unwrap();
        wait_for("the accepted batch", || rec.batches.lock().len() == 4).await;
        assert!(rec.bad.lock().is_empty());
        server.stop.send(()).unwrap();
        server.task.await.unwrap().unwrap();
    }

    #[test]
    fn largest_datagram_fits_the_buffer() {
        // a batch just under the 65,000-byte client limit decodes from one receive buffer
        let mut b = batch("big");
        b.spans[0].tags = (0..600)
            .map(|i| Tag::string(&format!("k{i:03}"), &"v".repeat(95)))
            .collect();
        let bytes = spoor_jaeger::encode_emit_batch(&b, spoor_jaeger::Protocol::Compact, 1);
        assert!(
            bytes.len() > 60_000 && bytes.len() <= 65_000,
            "{}",
            bytes.len()
        );
        let decoded = decode(&bytes, ThriftProtocol::Compact).unwrap();
        assert_eq!(decoded.spans[0].attributes.len(), 600);
    }
}
