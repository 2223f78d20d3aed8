//! A WebSocket connection after the opening handshake.

use std::sync::Arc;

use bytes::BytesMut;
use iolite_ws_proto::{Decoder, DeflateParams, Encoder, Message, Role};
use tokio::io::{AsyncRead, AsyncWrite, ReadHalf};

use crate::config::Config;
use crate::error::{Error, SendError};
use crate::receiver::Receiver;
use crate::sender::Sender;
use crate::shared::Shared;
use crate::writer;

/// An open WebSocket connection: a [`Sender`] and a [`Receiver`], which
/// [`WebSocket::split`] separates so they can live in different tasks.
pub struct WebSocket<S> {
    sender: Sender,
    receiver: Receiver<ReadHalf<S>>,
    deflate: Option<DeflateParams>,
    protocol: Option<String>,
}

/// A connection's shared state and its decoder, for `role` with `config`.
pub(crate) fn connection_state(
    role: Role,
    config: Arc<Config>,
    deflate: Option<&DeflateParams>,
) -> (Arc<Shared>, Decoder) {
    let mut seed = [0u8; 8];
    // Without OS randomness masking keys are merely predictable, which RFC 6455 §10.3
    // guards against for browsers; fall back to the address of a local.
    if getrandom::fill(&mut seed).is_err() {
        seed = (&seed as *const _ as u64).to_ne_bytes();
    }
    let encoder = Encoder::new(role, deflate, u64::from_ne_bytes(seed));
    let decoder = Decoder::new(role, config.limits.clone(), deflate);
    (Arc::new(Shared::new(config, role, encoder)), decoder)
}

impl<S: AsyncRead + AsyncWrite + Send + 'static> WebSocket<S> {
    /// Wraps a stream whose opening handshake is already done. `leftover` holds bytes read
    /// past the handshake; `deflate` the negotiated compression. Spawns the writer task,
    /// so it must be called inside a tokio runtime.
    pub fn from_stream(
        stream: S,
        role: Role,
        config: Arc<Config>,
        deflate: Option<DeflateParams>,
        protocol: Option<String>,
        leftover: BytesMut,
    ) -> Self {
        let (shared, decoder) = connection_state(role, config, deflate.as_ref());
        let (rd, wr) = tokio::io::split(stream);
        tokio::spawn(writer::run(wr, shared.clone()));
        Self {
            sender: Sender {
                shared: shared.clone(),
            },
            receiver: Receiver::new(rd, leftover, decoder, shared),
            deflate,
            protocol,
        }
    }

    /// The next message; see [`Receiver::recv`].
    pub async fn recv(&mut self) -> Option<Result<Message, Error>> {
        self.receiver.recv().await
    }

    /// Queues a message; see [`Sender::send`].
    pub fn send(&self, msg: Message) -> Result<(), SendError> {
        self.sender.send(msg)
    }

    /// A handle for sending from other tasks.
    pub fn sender(&self) -> Sender {
        self.sender.clone()
    }

    /// The negotiated permessage-deflate parameters, if compression is on.
    pub fn deflate(&self) -> Option<&DeflateParams> {
        self.deflate.as_ref()
    }

    /// The negotiated subprotocol.
    pub fn protocol(&self) -> Option<&str> {
        self.protocol.as_deref()
    }

    /// Separates the send and receive halves.
    pub fn split(self) -> (Sender, Receiver<ReadHalf<S>>) {
        (self.sender, self.receiver)
    }
}
