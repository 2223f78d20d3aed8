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
use tokio::time::{sleep_until, Instant, Sleep};

use crate::shared::{Abort, Shared, State};

/// Most slices handed to one `writev` (2 per frame); well under Linux's IOV_MAX of 1024.
const MAX_SLICES: usize = 128;

/// How long a connection keeps its queue storage after its last message. A connection that
/// gets a message every few hundred milliseconds (a ticker, a busy room) keeps it, so a
/// broadcast does not take storage from the pool per recipient (the pool is per thread, and
/// the writers give storage back on their own threads); an idle one holds none.
const STORAGE_IDLE: std::time::Duration = std::time::Duration::from_secs(1);

/// Keepalive and close deadlines of one connection.
struct Timers {
    next_ping: Option<Instant>,
    pong_deadline: Option<Instant>,
    close_deadline: Option<Instant>,
    /// When an idle connection gives back its queue storage.
    release_storage: Option<Instant>,
}

impl Timers {
    fn next(&self) -> Option<Instant> {
        [
            self.next_ping,
            self.pong_deadline,
            self.close_deadline,
            self.release_storage,
        ]
        .into_iter()
        .flatten()
        .min()
    }

    /// Notes what the receiver reported: a pong, or that the connection is closing (which
    /// starts the close deadline, also while a write to a stuck peer is pending).
    fn observe(&mut self, shared: &Shared, cfg: &crate::Config) -> (bool, bool, bool) {
        let mut q = shared.lock();
        if std::mem::take(&mut q.pong_received) {
            self.pong_deadline = None;
        }
        let closing = q.state == State::Closing;
        if closing && self.close_deadline.is_none() {
            self.close_deadline = Some(Instant::now() + cfg.close_timeout);
        }
        (q.reader_done, q.peer_closed, closing)
    }

    /// Runs the deadlines that have passed: queues a ping, or says why to give up.
    fn fire(&mut self, shared: &Shared, cfg: &crate::Config, closing: bool) -> Option<Abort> {
        let now = Instant::now();
        if self.close_deadline.is_some_and(|d| d <= now) {
            return Some(Abort::CloseTimeout);
        }
        if self.pong_deadline.is_some_and(|d| d <= now) {
            tracing::debug!("peer did not answer ping in time; closing");
            return Some(Abort::Keepalive);
        }
        if let (Some(p), Some(every)) = (self.next_ping, cfg.ping_interval) {
            if p <= now {
                self.next_ping = Some(now + every);
                if self.pong_deadline.is_none() && !closing {
                    // Also armed while a write is stuck: a peer that has not taken our bytes
                    // for a whole pong timeout is as dead as one that does not answer.
                    self.pong_deadline = Some(now + cfg.pong_timeout);
                    let mut q = shared.lock();
                    let f = q.encoder.encode_control(OpCode::Ping, Bytes::new());
                    q.push(f);
                }
            }
        }
        None
    }
}

/// Points the task's one timer at `next`. It is re-registered only when the deadline
/// moved: a fresh `sleep_until` in each `select!` registered and dropped a timer entry for
/// every message sent.
fn arm(sleep: Pin<&mut Sleep>, armed: &mut Option<Instant>, next: Option<Instant>) {
    if *armed != next {
        if let Some(d) = next {
            sleep.reset(d);
        }
        *armed = next;
    }
}

pub(crate) async fn run<W: AsyncWrite + Unpin>(mut io: W, shared: Arc<Shared>) {
    let cfg = shared.config.clone();
    let mut batch: VecDeque<Frame> = VecDeque::new();
    let mut timers = Timers {
        next_ping: cfg.ping_interval.map(|d| Instant::now() + d),
        pong_deadline: None,
        close_deadline: None,
        release_storage: None,
    };
    let mut close_written = false;
    let sleep = sleep_until(Instant::now());
    tokio::pin!(sleep);
    let mut armed: Option<Instant> = None;

    let abort = loop {
        let (reader_done, peer_closed, closing) = timers.observe(&shared, &cfg);
        {
            let mut q = shared.lock();
            if !q.frames.is_empty() {
                std::mem::swap(&mut q.frames, &mut batch);
                q.pong_at = None;
            }
        }

        if !batch.is_empty() {
            timers.release_storage = None;
            let has_close = closing && batch.iter().any(is_close);
            let bytes: usize = batch.iter().map(Frame::wire_len).sum();
            let mut pos = (0, 0);
            // The write is raced against the deadlines: a peer that stopped reading must not
            // hold this task, its batch and its socket forever.
            let res = loop {
                let closing_now = shared.lock().state == State::Closing;
                arm(sleep.as_mut(), &mut armed, timers.next());
                tokio::select! {
                    biased;
                    r = write_batch(&mut io, &batch, &shared, &mut pos) => break r.map_err(|_| Abort::Io),
                    _ = shared.writer_wake.notified() => {
                        timers.observe(&shared, &cfg);
                    }
                    _ = &mut sleep, if armed.is_some() => {
                        armed = None;
                        if let Some(why) = timers.fire(&shared, &cfg, closing_now) {
                            break Err(why);
                        }
                    }
                }
            };
            batch.clear();
            {
                let mut q = shared.lock();
                q.bytes -= bytes;
                if q.bytes == 0 {
                    shared.drained.notify_waiters();
                }
            }
            match res {
                Err(why) => break Some(why),
                Ok(()) if has_close => close_written = true,
                Ok(()) => {}
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
                break None;
            }
        }
        if reader_done && !close_written && !closing {
            // EOF or an error on the read side with nothing left to say.
            break None;
        }

        // Idle: the queue storage goes back to the pool if nothing comes for a while.
        if timers.release_storage.is_none() && batch.capacity() > 0 {
            timers.release_storage = Some(Instant::now() + STORAGE_IDLE);
        }
        arm(sleep.as_mut(), &mut armed, timers.next());
        tokio::select! {
            biased;
            _ = shared.writer_wake.notified() => {}
            _ = &mut sleep, if armed.is_some() => {
                armed = None;
                if let Some(why) = timers.fire(&shared, &cfg, closing) {
                    break Some(why);
                }
                if timers.release_storage.is_some_and(|d| d <= Instant::now()) {
                    timers.release_storage = None;
                    release_storage(&shared, &mut batch);
                }
            }
        }
    };
    if let Some(why) = abort {
        shared.set_abort(why);
    }
    drop(batch);
    // A TLS shutdown writes to the peer; a stuck peer must not hold us here either.
    let _ = tokio::time::timeout(cfg.close_timeout, io.shutdown()).await;
    drop(io);
    // The receiver may be waiting on a peer that will never speak again.
    shared.lock().reader_done = true;
    shared.reader_waker.wake();
}

/// Gives the writer's spare queue storage and the connection's (if empty) to the pool.
fn release_storage(shared: &Shared, batch: &mut VecDeque<Frame>) {
    crate::pool::give_deque(std::mem::take(batch));
    let spare = {
        let mut q = shared.lock();
        (q.frames.is_empty() && q.frames.capacity() > 0).then(|| std::mem::take(&mut q.frames))
    };
    if let Some(d) = spare {
        crate::pool::give_deque(d);
    }
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
    pos: &mut (usize, usize),
) -> std::io::Result<()> {
    // Position: frame index and byte offset within that frame's head + payload. Kept by the
    // caller, so a write cancelled by a timer resumes where it stopped.
    let (idx, off) = pos;
    poll_fn(|cx| loop {
        if *idx >= batch.len() {
            return Poll::Ready(Ok(()));
        }
        let mut slices = [IoSlice::new(&[]); MAX_SLICES];
        let mut n = 0;
        let mut skip = *off;
        for f in batch.range(*idx..) {
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
            let Some(f) = batch.get(*idx) else { break };
            let rest = f.wire_len() - *off;
            if left >= rest {
                left -= rest;
                *idx += 1;
                *off = 0;
            } else {
                *off += left;
                left = 0;
            }
        }
    })
    .await?;
    io.flush().await
}
