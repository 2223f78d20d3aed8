//! The cloneable send handle of a connection.

use std::sync::Arc;

use iolite_ws_proto::{CloseCode, CloseFrame, Message, PreparedMessage, MAX_HEAD_LEN};

use crate::config::SlowConsumer;
use crate::entry::Entry;
use crate::error::SendError;
use crate::shared::{Queue, Shared, State};

/// Queues messages on one connection. Cheap to clone; sends never wait on the socket.
///
/// Each send frames the message and appends it to the connection's bounded queue; the
/// connection's writer task drains the queue with vectored writes. Messages from one
/// sender go out in the order they were sent.
#[derive(Clone)]
pub struct Sender {
    pub(crate) shared: Arc<Shared>,
}

impl Sender {
    /// Queues a message. Fails, handing the message back, if the connection is closing
    /// ([`SendError::Closed`]) or the queue is over [`crate::Config::max_queued_bytes`]
    /// ([`SendError::QueueFull`], after applying [`crate::Config::slow_consumer`]).
    /// `Message::Close` starts the close handshake as [`Sender::close`] does.
    pub fn send(&self, msg: Message) -> Result<(), SendError> {
        if let Message::Close(frame) = msg {
            return if self.shared.queue_close(frame.clone(), false) {
                Ok(())
            } else {
                Err(SendError::Closed(Message::Close(frame)))
            };
        }
        let mut q = self.shared.lock();
        if let Err(e) = self.admit(&mut q, msg.len()) {
            return Err(e.map(msg));
        }
        let frame = q.encoder.encode_message(msg);
        let wake = self.shared.must_wake(q.push(frame.into()));
        drop(q);
        if wake {
            self.shared.writer_waker.wake();
        }
        Ok(())
    }

    /// Queues a prepared message: the bytes framed once for a broadcast are shared, not
    /// copied (unless this connection negotiated something that needs its own encoding).
    pub fn send_prepared(&self, msg: &PreparedMessage) -> Result<(), SendError<()>> {
        let mut q = self.shared.lock();
        self.admit(&mut q, msg.payload().len())
            .map_err(|e| e.map(()))?;
        let entry = match q.encoder.shared_prepared(msg) {
            Some(frame) => Entry::Shared(frame.clone()),
            None => q.encoder.encode_prepared(msg).into(),
        };
        let wake = self.shared.must_wake(q.push(entry));
        self.shared.note_tail(&q);
        drop(q);
        if wake {
            self.shared.writer_waker.wake();
        }
        Ok(())
    }

    /// Starts loading this connection's queue state into the CPU's cache, so that a
    /// send to it soon after does not wait for memory. A broadcast loop over many
    /// connections calls it some recipients ahead of the one it sends to, and
    /// [`Sender::prefetch_queue`] about half as far ahead: a send's locked instructions
    /// wait for every earlier cache miss, so misses taken inside the sends do not overlap,
    /// while prefetches do.
    #[inline]
    pub fn prefetch(&self) {
        crate::prefetch::write_range(Arc::as_ptr(&self.shared), Shared::SEND_HOT);
    }

    /// Starts loading the slot of this connection's send queue that its next message
    /// will take. Reads the state [`Sender::prefetch`] loads: call it after that one has
    /// had time to arrive, or this call waits for it.
    #[inline]
    pub fn prefetch_queue(&self) {
        let next = self
            .shared
            .tail_hint
            .load(std::sync::atomic::Ordering::Relaxed);
        crate::prefetch::write_range(next as *const Entry, std::mem::size_of::<Entry>());
    }

    /// Starts the close handshake with `code` and `reason` (cut to 123 bytes). Messages
    /// queued before it are still delivered; later sends fail with `Closed`.
    pub fn close(&self, code: CloseCode, reason: &str) -> Result<(), SendError<()>> {
        if self
            .shared
            .queue_close(Some(CloseFrame::new(code, reason)), false)
        {
            Ok(())
        } else {
            Err(SendError::Closed(()))
        }
    }

    /// Bytes queued and not yet written to the socket.
    pub fn buffered_bytes(&self) -> usize {
        self.shared.lock().bytes
    }

    /// Whether the connection is closing or closed: sends will fail.
    pub fn is_closed(&self) -> bool {
        let q = self.shared.lock();
        q.state != State::Open || q.reader_done
    }

    /// Waits until everything queued has been written to the socket (or the connection
    /// ended). Use it for backpressure: send, then await `drained` before sending more.
    pub async fn drained(&self) {
        loop {
            let notified = self
                .shared
                .drained
                .get_or_init(|| Box::new(tokio::sync::Notify::new()))
                .notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            {
                let q = self.shared.lock();
                if q.bytes == 0 || q.reader_done && q.state != State::Open {
                    return;
                }
            }
            notified.await;
        }
    }

    fn admit(&self, q: &mut Queue, payload_len: usize) -> Result<(), SendError<()>> {
        if q.state != State::Open || q.reader_done {
            return Err(SendError::Closed(()));
        }
        let max = self.shared.config.max_queued_bytes;
        // One message larger than the whole budget may still go out alone.
        if q.bytes > 0 && q.bytes + payload_len + MAX_HEAD_LEN > max {
            if let SlowConsumer::Close(code) = self.shared.config.slow_consumer {
                tracing::debug!(queued = q.bytes, "slow consumer: closing");
                self.shared.close_slow(q, code);
                self.shared.writer_waker.wake();
            }
            return Err(SendError::QueueFull(()));
        }
        Ok(())
    }
}

impl<T> SendError<T> {
    fn map<U>(self, v: U) -> SendError<U> {
        match self {
            Self::Closed(_) => SendError::Closed(v),
            Self::QueueFull(_) => SendError::QueueFull(v),
        }
    }
}

impl std::fmt::Debug for Sender {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sender").finish_non_exhaustive()
    }
}
