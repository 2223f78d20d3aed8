//! The writer task: drains a connection's queue with vectored writes, sends keepalive
//! pings and finishes the close handshake.

use std::collections::VecDeque;
use std::future::poll_fn;
use std::io::IoSlice;
use std::pin::Pin;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::task::Poll;

use bytes::Bytes;
use iolite_ws_proto::{Frame, OpCode, Role};
use tokio::io::{AsyncWrite, AsyncWriteExt};
use tokio::time::{sleep_until, Instant};

use crate::shared::{Abort, Shared, State};

/// Most slices handed to one `writev` (2 per frame); well under Linux's IOV_MAX of 1024.
const MAX_SLICES: usize = 128;

pub(crate) async fn run<W: AsyncWrite + Unpin>(mut io: W, shared: Arc<Shared>) {
    let cfg = shared.config.clone();
    let mut batch: VecDeque<Frame> = VecDeque::new();
    let mut next_ping = cfg.ping_interval.map(|d| Instant::now() + d);
    let mut pong_deadline: Option<Instant> = None;
    let mut close_written = false;
    let mut close_deadline: Option<Instant> = None;

    loop {
        let (reader_done, peer_closed, closing) = {
            let mut q = shared.lock();
            if std::mem::take(&mut q.pong_received) {
                pong_deadline = None;
            }
            if !q.frames.is_empty() {
                std::mem::swap(&mut q.frames, &mut batch);
                q.pong_at = None;
            }
            (q.reader_done, q.peer_closed, q.state == State::Closing)
        };

        if !batch.is_empty() {
            let has_close = closing && batch.iter().any(is_close);
            let bytes: usize = batch.iter().map(Frame::wire_len).sum();
            let res = write_batch(&mut io, &batch, &shared).await;
            batch.clear();
            {
                let mut q = shared.lock();
                q.bytes -= bytes;
                if q.bytes == 0 {
                    shared.drained.notify_waiters();
                }
            }
            if res.is_err() {
                shared.set_abort(Abort::Io);
                break;
            }
            if has_close {
                close_written = true;
                close_deadline = Some(Instant::now() + cfg.close_timeout);
            }
            continue;
        }

        if close_written {
            // RFC 6455 §7.1.1: the server closes TCP first, once both close frames have
            // passed; a client waits for the server to do so.
            let done = match shared.role {
                Role::Server => peer_closed || reader_done,
                Role::Client => reader_done,
            };
            if done {
                break;
            }
        }
        if reader_done && !close_written && !closing {
            // EOF or an error on the read side with nothing left to say.
            break;
        }

        // Idle: hold no queue storage while waiting; the next sender takes pooled storage.
        crate::pool::give_deque(std::mem::take(&mut batch));
        let deadline = [next_ping, pong_deadline, close_deadline]
            .into_iter()
            .flatten()
            .min();
        let timer = async {
            match deadline {
                Some(d) => sleep_until(d).await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            biased;
            _ = shared.writer_wake.notified() => {}
            _ = timer => {
                let now = Instant::now();
                if close_deadline.is_some_and(|d| d <= now) {
                    shared.set_abort(Abort::CloseTimeout);
                    break;
                }
                if pong_deadline.is_some_and(|d| d <= now) {
                    tracing::debug!("peer did not answer ping; closing");
                    shared.set_abort(Abort::Keepalive);
                    break;
                }
                if let (Some(p), Some(every)) = (next_ping, cfg.ping_interval) {
                    if p <= now {
                        next_ping = Some(now + every);
                        if pong_deadline.is_none() && !closing {
                            pong_deadline = Some(now + cfg.pong_timeout);
                            let mut q = shared.lock();
                            let f = q.encoder.encode_control(OpCode::Ping, Bytes::new());
                            q.push(f);
                        }
                    }
                }
            }
        }
    }
    let _ = io.shutdown().await;
    // The receiver may be waiting on a peer that will never speak again.
    shared.lock().reader_done = true;
    shared.reader_waker.wake();
}

fn is_close(f: &Frame) -> bool {
    let b0 = f
        .head()
        .first()
        .or(f.payload().first())
        .copied()
        .unwrap_or(0);
    b0 & 0x0f == OpCode::Close as u8
}

/// Writes every frame of `batch`, as many per system call as the OS takes.
async fn write_batch<W: AsyncWrite + Unpin>(
    io: &mut W,
    batch: &VecDeque<Frame>,
    shared: &Shared,
) -> std::io::Result<()> {
    // Position: frame index and byte offset within that frame's head + payload.
    let mut idx = 0;
    let mut off = 0;
    poll_fn(|cx| loop {
        if idx >= batch.len() {
            return Poll::Ready(Ok(()));
        }
        let mut slices = [IoSlice::new(&[]); MAX_SLICES];
        let mut n = 0;
        let mut skip = off;
        for f in batch.range(idx..) {
            for part in [f.head(), &f.payload()[..]] {
                if skip >= part.len() {
                    skip -= part.len();
                    continue;
                }
                if n < MAX_SLICES {
                    slices[n] = IoSlice::new(&part[skip..]);
                    n += 1;
                }
                skip = 0;
            }
            if n >= MAX_SLICES - 1 {
                break;
            }
        }
        let written = match Pin::new(&mut *io).poll_write_vectored(cx, &slices[..n]) {
            Poll::Pending => {
                shared.writer_blocked.store(true, Ordering::Release);
                return Poll::Pending;
            }
            Poll::Ready(Err(e)) => return Poll::Ready(Err(e)),
            Poll::Ready(Ok(0)) => return Poll::Ready(Err(std::io::ErrorKind::WriteZero.into())),
            Poll::Ready(Ok(w)) => w,
        };
        shared.writer_blocked.store(false, Ordering::Release);
        let mut left = written;
        while left > 0 {
            let Some(f) = batch.get(idx) else { break };
            let rest = f.wire_len() - off;
            if left >= rest {
                left -= rest;
                idx += 1;
                off = 0;
            } else {
                off += left;
                left = 0;
            }
        }
    })
    .await?;
    io.flush().await
}
