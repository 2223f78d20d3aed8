//! Acknowledgements both ways: answering a client's ack, waiting for clients' acks.

use std::sync::{Arc, Weak};
use std::time::Duration;

use bytes::Bytes;
use serde::Serialize;
use serde_json::Value;
use tokio::sync::{mpsc, oneshot};

use crate::adapter::{AckEvent, AckShared, BoxFuture};
use crate::error::EmitError;
use crate::socket::{Socket, SocketRef};

/// One client's answer to an ack request: its arguments (binary as placeholders) and
/// attachments.
#[derive(Clone, Debug, PartialEq)]
pub struct AckResponse {
    /// The arguments of the client's ack callback.
    pub args: Vec<Value>,
    /// Binary attachments referenced by placeholders in `args`.
    pub attachments: Vec<Bytes>,
}

impl AckResponse {
    /// The first argument (what Node hands a broadcast ack), `null` when there is none.
    pub fn first(&self) -> Value {
        self.args.first().cloned().unwrap_or(Value::Null)
    }

    /// The arguments deserialized: from the single argument, or the array of all.
    pub fn parse<T: serde::de::DeserializeOwned>(&self) -> Result<T, serde_json::Error> {
        match self.args.as_slice() {
            [one] => T::deserialize(one),
            _ => T::deserialize(&Value::Array(self.args.clone())),
        }
    }
}

/// Why an ack did not come.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum AckError {
    /// The timeout passed (Node's `"operation has timed out"`).
    #[error("operation has timed out")]
    Timeout,
    /// The socket disconnected before answering.
    #[error("socket disconnected")]
    Disconnected,
}

pub(crate) enum AckSlot {
    One(oneshot::Sender<AckResponse>),
    Many(mpsc::UnboundedSender<AckEvent>),
}

impl AckSlot {
    pub(crate) fn deliver(self, r: AckResponse) {
        match self {
            Self::One(tx) => {
                let _ = tx.send(r);
            }
            Self::Many(tx) => {
                let _ = tx.send(AckEvent::Response(r));
            }
        }
    }
}

/// Waits for one client's ack. Dropping it (or its timeout passing) forgets the request on
/// the socket, so a client that never answers does not make the server hold state.
#[must_use = "an ack is only received when awaited"]
pub struct AckFuture {
    pub(crate) rx: oneshot::Receiver<AckResponse>,
    pub(crate) timeout: Option<Duration>,
    /// Held for its `Drop`: forgets the request on the sockets.
    pub(crate) _request: AckRequest,
}

/// Where an ack request was registered, to take it back when nobody waits any more.
pub(crate) struct AckRequest {
    pub(crate) id: u64,
    pub(crate) sockets: Vec<Weak<Socket>>,
}

impl Drop for AckRequest {
    fn drop(&mut self) {
        for s in self.sockets.iter().filter_map(Weak::upgrade) {
            s.forget_ack(self.id);
        }
    }
}

impl AckFuture {
    /// The ack, or why it did not come.
    pub async fn wait(mut self) -> Result<AckResponse, AckError> {
        let rx = async { (&mut self.rx).await.map_err(|_| AckError::Disconnected) };
        match self.timeout {
            Some(t) => tokio::time::timeout(t, rx)
                .await
                .unwrap_or(Err(AckError::Timeout)),
            None => rx.await,
        }
    }
}

impl std::future::IntoFuture for AckFuture {
    type Output = Result<AckResponse, AckError>;
    type IntoFuture = std::pin::Pin<Box<dyn std::future::Future<Output = Self::Output> + Send>>;
    fn into_future(self) -> Self::IntoFuture {
        Box::pin(self.wait())
    }
}

/// Collects the acks of a broadcast, as Node's `io.timeout(t).emit(..., (err, responses))`:
/// done when every node has said how many clients it asked and all of them answered.
/// Dropping it (after `collect` or not) forgets the requests on the sockets that did not
/// answer.
#[must_use = "acks are only collected when awaited"]
pub struct AckStream {
    pub(crate) rx: mpsc::UnboundedReceiver<AckEvent>,
    pub(crate) server_count: Option<BoxFuture<'static, usize>>,
    pub(crate) timeout: Duration,
    /// Held for its `Drop`: forgets the request on the sockets.
    pub(crate) shared: Arc<AckShared>,
}

impl AckStream {
    /// How many clients were asked, as far as the nodes have reported (on one node, all
    /// of them).
    pub fn expected(&self) -> usize {
        self.shared.announced()
    }

    /// Every client's response, or on timeout the error with the responses that did
    /// arrive. Clients that disconnect count as not answering.
    pub async fn collect(mut self) -> Result<Vec<AckResponse>, (AckError, Vec<AckResponse>)> {
        let mut out = Vec::new();
        let deadline = tokio::time::Instant::now() + self.timeout;
        let mut servers: Option<usize> = None;
        let mut reported = 0;
        let mut clients = 0;
        let mut server_count = self.server_count.take();
        // No sender left: no more counts or answers can come.
        let mut closed = false;
        loop {
            if servers == Some(reported) && out.len() >= clients {
                return Ok(out);
            }
            if closed && servers.is_some() {
                // Nobody left who could answer.
                return Err((AckError::Timeout, out));
            }
            tokio::select! {
                n = async {
                    match server_count.as_mut() {
                        Some(f) => f.await,
                        None => std::future::pending().await,
                    }
                }, if server_count.is_some() => {
                    servers = Some(n);
                    server_count = None;
                }
                ev = self.rx.recv(), if !closed => match ev {
                    Some(AckEvent::Clients(n)) => {
                        reported += 1;
                        clients += n;
                    }
                    Some(AckEvent::Response(r)) => out.push(r),
                    // The end of what was sent; the server count may still be on its way.
                    None => closed = true,
                },
                _ = tokio::time::sleep_until(deadline) => return Err((AckError::Timeout, out)),
            }
        }
    }
}

/// Answers a client's ack request; given to handlers as an extractor. Sending twice, or
/// when the client asked for no ack, does nothing (as Node's guarded callback).
pub struct AckSender {
    socket: SocketRef,
    id: Option<u64>,
    attachments: Vec<Bytes>,
}

impl AckSender {
    pub(crate) fn new(socket: SocketRef, id: Option<u64>) -> Self {
        Self {
            socket,
            id,
            attachments: Vec::new(),
        }
    }

    /// Whether the client asked for an ack.
    pub fn is_requested(&self) -> bool {
        self.id.is_some()
    }

    /// Binary attachments referenced by placeholders in the data.
    pub fn bin(mut self, attachments: Vec<Bytes>) -> Self {
        self.attachments = attachments;
        self
    }

    /// Acks with one argument.
    pub fn send<T: Serialize + ?Sized>(self, data: &T) -> Result<(), EmitError> {
        let v = serde_json::to_value(data)?;
        self.send_args(vec![v])
    }

    /// Acks with these arguments (zero or more).
    pub fn send_args(self, args: Vec<Value>) -> Result<(), EmitError> {
        let Some(id) = self.id else {
            return Ok(());
        };
        self.socket.send_ack(id, args, self.attachments)
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::AckStream;
    use crate::adapter::AckCollector;

    /// Every node reported no client and the senders are gone before the server count is
    /// known: the answer is "no responses", not a timeout.
    #[tokio::test]
    async fn an_empty_target_answers_at_once_whatever_comes_first() {
        for delay_ms in [0, 20] {
            let (collector, rx, shared) = AckCollector::new();
            collector.client_count(0);
            drop(collector);
            let stream = AckStream {
                rx,
                server_count: Some(Box::pin(async move {
                    tokio::time::sleep(Duration::from_millis(delay_ms)).await;
                    1
                })),
                timeout: Duration::from_secs(5),
                shared,
            };
            let started = tokio::time::Instant::now();
            let got = stream.collect().await;
            assert!(
                matches!(&got, Ok(v) if v.is_empty()),
                "delay {delay_ms}: {got:?}"
            );
            assert!(started.elapsed() < Duration::from_secs(1));
        }
    }

    /// Senders gone with a client still owing its answer: a timeout at once, not after the
    /// whole wait.
    #[tokio::test]
    async fn nobody_left_to_answer_ends_the_wait() {
        let (collector, rx, shared) = AckCollector::new();
        collector.client_count(1);
        drop(collector);
        let stream = AckStream {
            rx,
            server_count: Some(Box::pin(async { 1 })),
            timeout: Duration::from_secs(5),
            shared,
        };
        let started = tokio::time::Instant::now();
        assert!(stream.collect().await.is_err());
        assert!(started.elapsed() < Duration::from_secs(1));
    }
}
