//! The read side of a connection.

use std::future::poll_fn;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{ready, Context, Poll};

use bytes::BytesMut;
use iolite_ws_proto::{close_reply, CloseFrame, Decoder, Message, Role};
use tokio::io::{AsyncRead, ReadBuf};

use crate::error::Error;
use crate::pool;
use crate::shared::{Abort, Shared};

/// The read state of a connection, shared by [`Receiver`] and [`crate::Connection`]: the
/// read buffer (pooled, none while idle) and the frame decoder.
pub(crate) struct Reader {
    buf: BytesMut,
    decoder: Decoder,
    done: bool,
}

impl Reader {
    pub(crate) fn new(buf: BytesMut, decoder: Decoder) -> Self {
        Self {
            buf,
            decoder,
            done: false,
        }
    }

    /// The next message; see [`Receiver::recv`].
    pub(crate) fn poll_recv<R: AsyncRead + Unpin>(
        &mut self,
        cx: &mut Context<'_>,
        io: &mut R,
        shared: &Shared,
    ) -> Poll<Option<Result<Message, Error>>> {
        loop {
            if self.done {
                return Poll::Ready(None);
            }
            match self.decoder.decode(&mut self.buf) {
                Ok(Some(msg)) => {
                    self.on_message(&msg, shared);
                    return Poll::Ready(Some(Ok(msg)));
                }
                Ok(None) => {}
                Err(e) => {
                    tracing::debug!(error = %e, "failing connection");
                    shared.queue_close(Some(CloseFrame::new(e.close_code(), "")), true);
                    return Poll::Ready(Some(Err(self.finish(shared, e.into()))));
                }
            }
            if self.buf.is_empty() && self.buf.capacity() > 0 {
                // Nothing buffered: give the buffer back so an idle connection holds none.
                pool::give(std::mem::take(&mut self.buf));
            }
            match ready!(self.poll_read_more(cx, io, shared)) {
                Ok(0) => {
                    let closed_cleanly = self.decoder.close_received();
                    let err = self.finish(shared, Error::AbnormalClosure);
                    return Poll::Ready(if closed_cleanly { None } else { Some(Err(err)) });
                }
                Ok(_) => {}
                Err(e) => return Poll::Ready(Some(Err(self.finish(shared, e)))),
            }
        }
    }

    fn on_message(&mut self, msg: &Message, shared: &Shared) {
        match msg {
            Message::Ping(_) => {
                if let Some(p) = self.decoder.take_pending_pong() {
                    shared.queue_pong(p);
                }
            }
            Message::Pong(_) => {
                shared.lock().pong_received = true;
            }
            Message::Close(frame) => {
                // RFC 6455 §5.5.1: answer with a close frame echoing the status code.
                let reply = close_reply(frame);
                {
                    let mut q = shared.lock();
                    q.peer_closed = true;
                }
                shared.queue_close(reply, false);
                if shared.role == Role::Server {
                    // The writer closes TCP once the reply is out; nothing more to read.
                    self.finish(shared, Error::AbnormalClosure);
                }
            }
            _ => {}
        }
    }

    /// Marks the read side finished and tells the writer.
    fn finish(&mut self, shared: &Shared, err: Error) -> Error {
        self.done = true;
        shared.lock().reader_done = true;
        shared.writer_waker.wake();
        if !self.buf.is_empty() {
            self.buf = BytesMut::new();
        }
        err
    }

    fn poll_read_more<R: AsyncRead + Unpin>(
        &mut self,
        cx: &mut Context<'_>,
        io: &mut R,
        shared: &Shared,
    ) -> Poll<Result<usize, Error>> {
        let Self { buf, decoder, .. } = self;
        shared.reader_waker.register(cx.waker());
        match shared.abort_reason() {
            Abort::None => {}
            Abort::Keepalive => return Poll::Ready(Err(Error::KeepaliveTimeout)),
            Abort::SlowConsumer => return Poll::Ready(Err(Error::SlowConsumer)),
            Abort::Io | Abort::CloseTimeout => return Poll::Ready(Ok(0)),
        }
        if shared.lock().reader_done {
            return Poll::Ready(Ok(0));
        }
        let mut probed = 0;
        if buf.capacity() == 0 {
            // Idle: probe with a stack buffer so no heap buffer is held while waiting.
            let mut probe = [0u8; 512];
            let mut rb = ReadBuf::new(&mut probe);
            match Pin::new(&mut *io).poll_read(cx, &mut rb) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(Err(e)) => return Poll::Ready(Err(Error::Io(e))),
                Poll::Ready(Ok(())) => {}
            }
            let n = rb.filled().len();
            if n == 0 {
                return Poll::Ready(Ok(0));
            }
            *buf = pool::take();
            buf.extend_from_slice(rb.filled());
            if n < probe.len() {
                return Poll::Ready(Ok(n));
            }
            probed = n;
        }
        // A large frame in progress: read it in big steps; limits were already checked.
        let want = decoder
            .frame_remaining(buf.len())
            .clamp(pool::BUF_SIZE, 1 << 20);
        if buf.capacity() - buf.len() < pool::BUF_SIZE / 4 {
            buf.reserve(want);
        }
        match tokio_util::io::poll_read_buf(Pin::new(&mut *io), cx, buf) {
            Poll::Ready(Ok(n)) => Poll::Ready(Ok(n)),
            Poll::Ready(Err(e)) => Poll::Ready(Err(Error::Io(e))),
            // Bytes from the probe are already in `buf`.
            Poll::Pending if probed > 0 => Poll::Ready(Ok(probed)),
            Poll::Pending => Poll::Pending,
        }
    }

    /// What dropping the read side does: the connection closes (code 1000) once queued
    /// messages are out.
    pub(crate) fn drop_with(&mut self, shared: &Shared) {
        if !self.done {
            shared.queue_close(
                Some(CloseFrame::new(iolite_ws_proto::CloseCode::NORMAL, "")),
                true,
            );
        }
        shared.lock().reader_done = true;
        shared.writer_waker.wake();
    }
}

/// Receives messages from one connection. Reading also drives the protocol: pings are
/// answered, pongs feed the keepalive, and a close frame is answered.
pub struct Receiver<R> {
    io: R,
    reader: Reader,
    shared: Arc<Shared>,
}

impl<R: AsyncRead + Unpin> Receiver<R> {
    pub(crate) fn new(io: R, buf: BytesMut, decoder: Decoder, shared: Arc<Shared>) -> Self {
        Self {
            io,
            reader: Reader::new(buf, decoder),
            shared,
        }
    }

    /// The next message. `None` once the connection is closed: after the close handshake,
    /// or after an error has been returned.
    ///
    /// Cancel safe: dropping the future loses no data.
    pub async fn recv(&mut self) -> Option<Result<Message, Error>> {
        let Self { io, reader, shared } = self;
        poll_fn(|cx| reader.poll_recv(cx, io, shared)).await
    }
}

impl<R> Drop for Receiver<R> {
    /// Dropping the receiver closes the connection (code 1000) once queued messages are out.
    fn drop(&mut self) {
        self.reader.drop_with(&self.shared);
    }
}
