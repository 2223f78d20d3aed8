//! The write side of a connection: drains its queue with vectored writes, sends keepalive
//! pings and finishes the close handshake.

use std::collections::VecDeque;
use std::future::{poll_fn, Future};
use std::io::IoSlice;
use std::pin::Pin;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::task::{ready, Context, Poll};

use bytes::Bytes;
use iolite_ws_proto::{OpCode, Role};
use tokio::io::AsyncWrite;
use tokio::time::{sleep_until, Instant, Sleep};

use crate::entry::Entry;
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

const NO_TIMERS: Timers = Timers {
    next_ping: None,
    pong_deadline: None,
    close_deadline: None,
    release_storage: None,
};

pin_project_lite::pin_project! {
    /// A writer's deadlines and its one timer, in one box that exists only while a deadline
    /// is set: an idle connection without keepalive holds none (88 bytes less in its task).
    struct Clock {
        timers: Timers,
        // Whether `sleep` waits for a deadline not yet handled (its own `deadline()` says
        // which).
        armed: bool,
        // Made on the first wait, in the runtime, not when the writer is.
        #[pin]
        sleep: Option<Sleep>,
    }
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
                    q.push(f.into());
                }
            }
        }
        None
    }
}

/// How far a writer has got.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Stage {
    /// Draining the queue, keepalive, the close handshake.
    Run,
    /// Shutting the stream down, until the close deadline (kept in the timers).
    Shutdown,
    Done,
}

/// What a timer poll found.
enum Timer {
    Pending,
    /// A deadline passed and was handled; look at the queue again.
    Fired,
    Abort(Abort),
}

/// The write side of one connection as a state machine: polled by the writer task of a
/// split [`crate::WebSocket`], or by the task that reads a [`crate::Connection`] (one task
/// per connection). Woken through [`Shared::writer_waker`].
pub(crate) struct Writer {
    batch: VecDeque<Entry>,
    /// Frame index and byte offset reached in `batch`; a write resumes where it stopped.
    pos: (usize, usize),
    batch_bytes: usize,
    batch_has_close: bool,
    close_written: bool,
    clock: Option<Pin<Box<Clock>>>,
    stage: Stage,
}

impl Writer {
    pub(crate) fn new(cfg: &crate::Config) -> Self {
        let mut writer = Self {
            batch: VecDeque::new(),
            pos: (0, 0),
            batch_bytes: 0,
            batch_has_close: false,
            close_written: false,
            clock: None,
            stage: Stage::Run,
        };
        if let Some(every) = cfg.ping_interval {
            writer.timers_mut().next_ping = Some(Instant::now() + every);
        }
        writer
    }

    /// A writer with nothing left to do (what a dropped [`crate::Connection`] leaves).
    pub(crate) fn done() -> Self {
        Self {
            batch: VecDeque::new(),
            pos: (0, 0),
            batch_bytes: 0,
            batch_has_close: false,
            close_written: true,
            clock: None,
            stage: Stage::Done,
        }
    }

    fn timers(&self) -> &Timers {
        self.clock.as_ref().map_or(&NO_TIMERS, |c| &c.timers)
    }

    /// The deadlines, for setting one: the clock is made if there is none.
    fn timers_mut(&mut self) -> &mut Timers {
        let clock = self.clock.get_or_insert_with(|| {
            Box::pin(Clock {
                timers: NO_TIMERS,
                armed: false,
                sleep: None,
            })
        });
        clock.as_mut().project().timers
    }

    /// The deadlines, for clearing one: none to clear without a clock.
    fn timers_if_any(&mut self) -> Option<&mut Timers> {
        self.clock.as_mut().map(|c| c.as_mut().project().timers)
    }

    pub(crate) fn is_done(&self) -> bool {
        self.stage == Stage::Done
    }

    /// Writes what is queued, runs the deadlines and, at the end, shuts the stream down.
    /// `Ready` once the connection's write side is finished; then the receiver is told.
    pub(crate) fn poll<W: AsyncWrite + Unpin>(
        &mut self,
        cx: &mut Context<'_>,
        io: &mut W,
        shared: &Shared,
    ) -> Poll<()> {
        shared.writer_waker.register(cx.waker());
        loop {
            match self.stage {
                Stage::Done => return Poll::Ready(()),
                Stage::Shutdown => {
                    // A TLS shutdown writes to the peer; a stuck peer must not hold us here
                    // either.
                    if Pin::new(&mut *io).poll_shutdown(cx).is_pending() {
                        self.arm(self.timers().close_deadline);
                        if matches!(self.poll_sleep(cx), Poll::Pending) {
                            return Poll::Pending;
                        }
                    }
                    self.stage = Stage::Done;
                    self.clock = None;
                    // The receiver may be waiting on a peer that will never speak again.
                    shared.lock().reader_done = true;
                    shared.reader_waker.wake();
                    return Poll::Ready(());
                }
                Stage::Run => {}
            }
            let Poll::Ready(abort) = self.poll_run(cx, io, shared) else {
                return Poll::Pending;
            };
            if let Some(why) = abort {
                shared.set_abort(why);
            }
            self.batch = VecDeque::new();
            self.timers_mut().close_deadline = Some(Instant::now() + shared.config.close_timeout);
            self.stage = Stage::Shutdown;
        }
    }

    /// The writer's main loop; `Ready` when it ends, with the reason if it gave up.
    fn poll_run<W: AsyncWrite + Unpin>(
        &mut self,
        cx: &mut Context<'_>,
        io: &mut W,
        shared: &Shared,
    ) -> Poll<Option<Abort>> {
        let cfg = &*shared.config;
        loop {
            let (reader_done, peer_closed, closing) = self.take_work(shared, cfg);
            if !self.batch.is_empty() {
                match poll_write_batch(cx, io, &self.batch, shared, &mut self.pos) {
                    Poll::Ready(res) => {
                        self.batch.clear();
                        {
                            let mut q = shared.lock();
                            q.bytes -= self.batch_bytes;
                            if q.bytes == 0 {
                                shared.drained.notify_waiters();
                            }
                        }
                        match res {
                            Err(_) => return Poll::Ready(Some(Abort::Io)),
                            Ok(()) if self.batch_has_close => self.close_written = true,
                            Ok(()) => {}
                        }
                        continue;
                    }
                    // The write is raced against the deadlines: a peer that stopped reading
                    // must not hold this connection, its batch and its socket forever.
                    Poll::Pending => match self.poll_timers(cx, shared, closing) {
                        Timer::Pending => return Poll::Pending,
                        Timer::Fired => continue,
                        Timer::Abort(why) => return Poll::Ready(Some(why)),
                    },
                }
            }

            if self.close_written {
                // RFC 6455 §7.1.1: the server closes TCP first, once both close frames have
                // passed; a client waits for the server to do so.
                let done = match shared.role {
                    Role::Server => peer_closed || reader_done,
                    Role::Client => reader_done,
                };
                if done {
                    return Poll::Ready(None);
                }
            }
            if reader_done && !self.close_written && !closing {
                // EOF or an error on the read side with nothing left to say.
                return Poll::Ready(None);
            }

            // Idle: the queue storage goes back to the pool if nothing comes for a while.
            if self.timers().release_storage.is_none() && self.batch.capacity() > 0 {
                self.timers_mut().release_storage = Some(Instant::now() + STORAGE_IDLE);
            }
            match self.poll_timers(cx, shared, closing) {
                Timer::Pending => return Poll::Pending,
                Timer::Abort(why) => return Poll::Ready(Some(why)),
                Timer::Fired => {
                    if self
                        .timers()
                        .release_storage
                        .is_some_and(|d| d <= Instant::now())
                    {
                        if let Some(t) = self.timers_if_any() {
                            t.release_storage = None;
                        }
                        release_storage(shared, &mut self.batch);
                    }
                }
            }
        }
    }

    /// Notes what the receiver reported and, if the batch is empty, takes the queued
    /// frames as the next batch, under one lock.
    fn take_work(&mut self, shared: &Shared, cfg: &crate::Config) -> (bool, bool, bool) {
        let mut q = shared.lock();
        if std::mem::take(&mut q.pong_received) {
            if let Some(t) = self.timers_if_any() {
                t.pong_deadline = None;
            }
        }
        let closing = q.state == State::Closing;
        if closing && self.timers().close_deadline.is_none() {
            // Also while a write to a stuck peer is pending.
            self.timers_mut().close_deadline = Some(Instant::now() + cfg.close_timeout);
        }
        let seen = (q.reader_done, q.peer_closed, closing);
        if self.batch.is_empty() && !q.frames.is_empty() {
            std::mem::swap(&mut q.frames, &mut self.batch);
            q.pong_at = None;
            drop(q);
            if let Some(t) = self.timers_if_any() {
                t.release_storage = None;
            }
            self.pos = (0, 0);
            self.batch_bytes = self.batch.iter().map(Entry::wire_len).sum();
            self.batch_has_close = closing && self.batch.iter().any(is_close);
        }
        seen
    }

    /// Polls the deadlines: handles those that passed (a keepalive ping is queued) or says
    /// why to give up.
    fn poll_timers(&mut self, cx: &mut Context<'_>, shared: &Shared, closing: bool) -> Timer {
        self.arm(self.timers().next());
        match self.poll_sleep(cx) {
            Poll::Pending => Timer::Pending,
            Poll::Ready(()) => match self
                .timers_if_any()
                .and_then(|t| t.fire(shared, &shared.config, closing))
            {
                Some(why) => Timer::Abort(why),
                None => Timer::Fired,
            },
        }
    }

    /// Points the one timer at `next`. It is reset only when the deadline moved: a fresh
    /// timer per wait registered and dropped a timer entry for every message sent.
    fn arm(&mut self, next: Option<Instant>) {
        let (Some(d), Some(clock)) = (next, self.clock.as_mut()) else {
            // Nothing to wait for: the deadlines and the timer go (also one that has just
            // fired).
            self.clock = None;
            return;
        };
        let mut c = clock.as_mut().project();
        match c.sleep.as_mut().as_pin_mut() {
            Some(sleep) if *c.armed && sleep.deadline() == d => return,
            Some(sleep) => sleep.reset(d),
            None => c.sleep.set(Some(sleep_until(d))),
        }
        *c.armed = true;
    }

    /// `Ready` once the armed deadline has passed (then nothing is armed); `Pending` also
    /// when nothing is armed.
    fn poll_sleep(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        let Some(clock) = self.clock.as_mut() else {
            return Poll::Pending;
        };
        let c = clock.as_mut().project();
        let (true, Some(sleep)) = (*c.armed, c.sleep.as_pin_mut()) else {
            return Poll::Pending;
        };
        ready!(sleep.poll(cx));
        *c.armed = false;
        Poll::Ready(())
    }
}

/// Runs a split connection's writer until the write side is finished.
pub(crate) async fn run<W: AsyncWrite + Unpin>(mut io: W, shared: Arc<Shared>) {
    let mut writer = Writer::new(&shared.config);
    poll_fn(|cx| writer.poll(cx, &mut io, &shared)).await;
}

/// Gives the writer's spare queue storage and the connection's (if empty) to the pool.
fn release_storage(shared: &Shared, batch: &mut VecDeque<Entry>) {
    crate::pool::give_deque(std::mem::take(batch));
    let spare = {
        let mut q = shared.lock();
        (q.frames.is_empty() && q.frames.capacity() > 0).then(|| std::mem::take(&mut q.frames))
    };
    if let Some(d) = spare {
        crate::pool::give_deque(d);
    }
}

fn is_close(f: &Entry) -> bool {
    f.first_byte() & 0x0f == OpCode::Close as u8
}

/// Writes every frame of `batch`, as many per system call as the OS takes, then flushes.
fn poll_write_batch<W: AsyncWrite + Unpin>(
    cx: &mut Context<'_>,
    io: &mut W,
    batch: &VecDeque<Entry>,
    shared: &Shared,
    pos: &mut (usize, usize),
) -> Poll<std::io::Result<()>> {
    let (idx, off) = pos;
    loop {
        if *idx >= batch.len() {
            return Pin::new(&mut *io).poll_flush(cx);
        }
        let mut slices = [IoSlice::new(&[]); MAX_SLICES];
        let mut n = 0;
        let mut skip = *off;
        for f in batch.range(*idx..) {
            for part in f.parts() {
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
    }
}
