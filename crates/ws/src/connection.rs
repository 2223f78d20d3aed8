//! A WebSocket connection driven by one task: the task that reads also writes.

use std::future::poll_fn;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::task::{Context, Poll, Waker};

use bytes::BytesMut;
use iolite_ws_proto::{DeflateParams, Message, Role};
use tokio::io::{AsyncRead, AsyncWrite};

use crate::config::Config;
use crate::error::{Error, SendError};
use crate::receiver::Reader;
use crate::sender::Sender;
use crate::socket::connection_state;
use crate::writer::Writer;

/// A WebSocket connection with no writer task of its own: queued messages are written,
/// keepalive pings sent and the close handshake run while [`Connection::recv`] is polled.
///
/// A [`crate::WebSocket`] has two tasks, the application's read loop and a writer; this has
/// one. It suits a read loop that polls `recv` all the time and never waits on anything
/// else (it hands slow work to other tasks): it saves a task per connection (about 0.7 KiB
/// of memory) and a task wake-up for every reply. [`Sender`]s from other tasks wake the
/// task that polls `recv`. If nothing polls `recv`, nothing is written.
///
/// Dropping it closes the connection (code 1000); what is queued still goes out, from a
/// short task of its own if the socket cannot take it at once.
pub struct Connection<S>
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    /// `None` only once dropped.
    io: Option<S>,
    reader: Reader,
    writer: Writer,
    sender: Sender,
}

impl<S> Connection<S>
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    /// Wraps a stream whose opening handshake is already done. `leftover` holds bytes read
    /// past the handshake; `deflate` the negotiated compression.
    pub fn from_stream(
        stream: S,
        role: Role,
        config: Arc<Config>,
        deflate: Option<DeflateParams>,
        leftover: BytesMut,
    ) -> Self {
        let (shared, decoder) = connection_state(role, config, deflate.as_ref());
        Self {
            io: Some(stream),
            reader: Reader::new(leftover, decoder),
            writer: Writer::new(&shared),
            sender: Sender { shared },
        }
    }

    /// Also wakes the task that polls this connection at `at` (`0`: no longer), for a
    /// deadline of its own: its timer is then the connection's sweep (see [`crate::sweep`]),
    /// as for the connection's keepalive, with no timer per connection. The task sees that
    /// the deadline passed when it is polled (it is woken up to one sweep late).
    pub fn wake_also_at(&self, at: crate::sweep::Tick) {
        self.sender.shared.also_at.store(at, Ordering::Relaxed);
    }

    /// The next message, writing what is queued meanwhile. `None` once the connection is
    /// closed: after the close handshake, or after an error has been returned.
    ///
    /// Cancel safe: dropping the future loses no data.
    pub async fn recv(&mut self) -> Option<Result<Message, Error>> {
        poll_fn(|cx| self.poll_recv(cx)).await
    }

    /// [`Connection::recv`] as a poll, for a hand-written future that owns the connection
    /// (its state then holds no `recv` future beside the connection). `Pending` registers
    /// the task for a message, for the socket becoming writable and for new sends.
    pub fn poll_recv(&mut self, cx: &mut Context<'_>) -> Poll<Option<Result<Message, Error>>> {
        let Self {
            io,
            reader,
            writer,
            sender,
        } = self;
        let shared = &*sender.shared;
        let Some(io) = io.as_mut() else {
            return Poll::Ready(None);
        };
        // Cleared before the writer takes the queue: a send after this wakes us.
        shared.writer_due.store(false, Ordering::Release);
        if !writer.is_done() {
            // When the write side ends it tells the reader, which then ends too.
            let _ = writer.poll(cx, io, shared);
        }
        let next = reader.poll_recv(cx, io, shared);
        if matches!(next, Poll::Ready(Some(Ok(_)))) {
            // The caller handles the message, then polls again, which writes what the
            // handling queued: no wake-up needed for it.
            shared.writer_due.store(true, Ordering::Release);
        }
        next
    }

    /// Queues a message; see [`Sender::send`].
    pub fn send(&self, msg: Message) -> Result<(), SendError> {
        self.sender.send(msg)
    }

    /// A handle for sending from other tasks.
    pub fn sender(&self) -> Sender {
        self.sender.clone()
    }
}

impl<S> Drop for Connection<S>
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    fn drop(&mut self) {
        let shared = self.sender.shared.clone();
        self.reader.drop_with(&shared);
        let Some(mut io) = self.io.take() else { return };
        if self.writer.is_done() {
            return;
        }
        // Most often the close frame goes out and the socket shuts at once.
        let mut cx = Context::from_waker(Waker::noop());
        if self.writer.poll(&mut cx, &mut io, &shared).is_ready() {
            return;
        }
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return;
        };
        let mut writer = std::mem::replace(&mut self.writer, Writer::done());
        runtime.spawn(async move {
            poll_fn(|cx| writer.poll(cx, &mut io, &shared)).await;
        });
    }
}

impl<S> std::fmt::Debug for Connection<S>
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Connection").finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::Arc;
    use std::task::{Context, Poll, Wake, Waker};
    use std::time::{Duration, Instant};

    use bytes::BytesMut;
    use iolite_ws_proto::{Message, Role};
    use tokio::io::AsyncReadExt;

    use super::Connection;
    use crate::Config;

    struct Flag(AtomicBool);

    impl Wake for Flag {
        fn wake(self: Arc<Self>) {
            self.0.store(true, Ordering::Release);
        }
    }

    /// A connection gives its queue storage back as soon as its queue is drained, and its
    /// keepalive pings come from the sweep thread (no timer per connection) on time.
    #[tokio::test]
    async fn drained_storage_goes_back_and_pings_go_out_without_a_timer_per_connection() {
        let (ours, mut theirs) = tokio::io::duplex(1 << 16);
        let config = Config::default().ping_interval(Some(Duration::from_millis(400)));
        let mut conn =
            Connection::from_stream(ours, Role::Server, Arc::new(config), None, BytesMut::new());
        let woken = Arc::new(Flag(AtomicBool::new(false)));
        let waker = Waker::from(woken.clone());
        let mut cx = Context::from_waker(&waker);
        conn.send(Message::text("hi")).unwrap();
        assert!(conn.sender.shared.lock().frames.capacity() > 0);
        assert!(conn.poll_recv(&mut cx).is_pending());
        let mut buf = [0u8; 64];
        assert_eq!(theirs.read(&mut buf).await.unwrap(), 4, "{buf:?}");
        assert!(!conn.writer.storage_held());
        assert_eq!(conn.sender.shared.lock().frames.capacity(), 0);

        let start = Instant::now();
        // Polled only when woken, as a task would be: the wake-ups come from the sweep.
        while start.elapsed() < Duration::from_millis(600) {
            tokio::time::sleep(Duration::from_millis(5)).await;
            if woken.0.swap(false, Ordering::AcqRel) {
                assert!(matches!(conn.poll_recv(&mut cx), Poll::Pending));
            }
        }
        assert!(!conn.writer.storage_held());

        // The ping was due at 400 ms: it is in the stream by now (0x89: FIN and ping).
        let n = theirs.read(&mut buf).await.unwrap();
        assert_eq!(&buf[..2], [0x89, 0x00], "{:?}", &buf[..n]);
    }

    /// Every idle connection's task holds one of these: tokio rounds a task up to 128
    /// bytes, and a read loop holding a connection of at most 264 bytes (280 with its own
    /// state) fits in 384 instead of 512. Grows only with a reason.
    #[test]
    fn a_connection_stays_small() {
        // With the `Arc`'s counts, 200 bytes: a 208-byte chunk in glibc (it was 240).
        let shared = std::mem::size_of::<crate::shared::Shared>();
        assert!(shared <= 184, "{shared}");
        assert!(
            std::mem::size_of::<Connection<tokio::net::TcpStream>>() <= 264,
            "{}",
            std::mem::size_of::<Connection<tokio::net::TcpStream>>()
        );
    }
}
