//! The write side of a connection: drains its queue with vectored writes, sends keepalive
//! pings and finishes the close handshake.

use std::collections::VecDeque;
use std::future::poll_fn;
use std::io::IoSlice;
use std::pin::Pin;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use iolite_ws_proto::{OpCode, Role};
use tokio::io::AsyncWrite;

use crate::entry::Entry;
use crate::shared::{Abort, Shared, State};
use crate::sweep::{self, Sweepable, Tick};

/// Most slices handed to one `writev` (2 per frame); well under Linux's IOV_MAX of 1024.
const MAX_SLICES: usize = 128;

/// Keepalive and close deadlines of one connection, as [`sweep::Tick`]s (`0`: none). The
/// earliest is published in [`Shared::wake_at`] for the sweep thread, which wakes the
/// writer when it has passed: no timer per connection.
#[derive(Clone, Copy, Default)]
struct Timers {
    next_ping: Tick,
    pong_deadline: Tick,
    close_deadline: Tick,
}

impl Timers {
    fn next(&self) -> Tick {
        [self.next_ping, self.pong_deadline, self.close_deadline]
            .into_iter()
            .fold(0, sweep::earliest)
    }

    /// Runs the deadlines that have passed: queues a ping, or says why to give up.
    fn fire(&mut self, shared: &Shared, cfg: &crate::Config, closing: bool) -> Option<Abort> {
        let now = sweep::now();
        let due = |d: Tick| d != 0 && sweep::passed(d, now);
        if due(self.close_deadline) {
            return Some(Abort::CloseTimeout);
        }
        if due(self.pong_deadline) {
            tracing::debug!("peer did not answer ping in time; closing");
            return Some(Abort::Keepalive);
        }
        if let (true, Some(every)) = (due(self.next_ping), cfg.ping_interval) {
            // On the schedule, not from when the sweep noticed (unless far behind it).
            let next = self
                .next_ping
                .wrapping_add(every.as_millis().min(1 << 30) as u32);
            self.next_ping = if due(next) {
                sweep::after(every)
            } else {
                next.max(1)
            };
            if self.pong_deadline == 0 && !closing {
                // Also armed while a write is stuck: a peer that has not taken our bytes
                // for a whole pong timeout is as dead as one that does not answer.
                self.pong_deadline = sweep::after(cfg.pong_timeout);
                let mut q = shared.lock();
                let f = q.encoder.encode_control(OpCode::Ping, Bytes::new());
                q.push(f.into());
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
    /// Whether `timers.next()` has been published and not handled yet.
    armed: bool,
    stage: Stage,
    timers: Timers,
}

impl Writer {
    /// The writer of the connection whose state is `shared`; its deadlines are watched by
    /// the sweep thread from now on.
    pub(crate) fn new(shared: &Arc<Shared>) -> Self {
        let cfg = &shared.config;
        let mut timers = Timers::default();
        if let Some(every) = cfg.ping_interval {
            timers.next_ping = sweep::after(every);
        }
        let finest = [cfg.ping_interval, Some(cfg.pong_timeout)]
            .into_iter()
            .flatten()
            .fold(cfg.close_timeout, Duration::min);
        sweep::register(shared.clone() as Arc<dyn Sweepable>, finest);
        Self {
            batch: VecDeque::new(),
            pos: (0, 0),
            batch_bytes: 0,
            batch_has_close: false,
            close_written: false,
            armed: false,
            stage: Stage::Run,
            timers,
        }
    }

    /// A writer with nothing left to do (what a dropped [`crate::Connection`] leaves).
    pub(crate) fn done() -> Self {
        Self {
            batch: VecDeque::new(),
            pos: (0, 0),
            batch_bytes: 0,
            batch_has_close: false,
            close_written: true,
            armed: false,
            stage: Stage::Done,
            timers: Timers::default(),
        }
    }

    /// Whether the writer keeps queue storage (for tests of its release).
    #[cfg(test)]
    pub(crate) fn storage_held(&self) -> bool {
        self.batch.capacity() > 0
    }

    pub(crate) fn is_done(&self) -> bool {
        self.stage == Stage::Done
    }

    /// Writes what is queued, runs the deadlines and, at the end, shuts the stream down.
    /// `Ready` once the connection's write side is finished; then the receiver is told.
    pub(crate) fn poll<W: AsyncWrite + Unpin + 'static>(
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
                        self.arm(shared, self.timers.close_deadline);
                        if matches!(self.poll_sleep(), Poll::Pending) {
                            return Poll::Pending;
                        }
                    }
                    self.stage = Stage::Done;
                    self.timers = Timers::default();
                    self.arm(shared, 0);
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
            self.timers.close_deadline = sweep::after(shared.config.close_timeout);
            self.stage = Stage::Shutdown;
        }
    }

    /// The writer's main loop; `Ready` when it ends, with the reason if it gave up.
    fn poll_run<W: AsyncWrite + Unpin + 'static>(
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
                        let spare = {
                            let mut q = shared.lock();
                            q.bytes -= self.batch_bytes;
                            if let (0, Some(n)) = (q.bytes, shared.drained.get()) {
                                n.notify_waiters();
                            }
                            // Drained: the storage goes back to the pool at once. Kept
                            // for a while after each write instead, it was held by every
                            // connection of a burst of connects and freed later, leaving a
                            // hole among each connection's long-lived objects.
                            q.frames.is_empty().then(|| std::mem::take(&mut q.frames))
                        };
                        if let Some(spare) = spare {
                            crate::pool::give_deque(spare);
                            crate::pool::give_deque(std::mem::take(&mut self.batch));
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
                    Poll::Pending => match self.poll_timers(shared, closing) {
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

            match self.poll_timers(shared, closing) {
                Timer::Pending => return Poll::Pending,
                Timer::Abort(why) => return Poll::Ready(Some(why)),
                Timer::Fired => {}
            }
        }
    }

    /// Notes what the receiver reported and, if the batch is empty, takes the queued
    /// frames as the next batch, under one lock.
    fn take_work(&mut self, shared: &Shared, cfg: &crate::Config) -> (bool, bool, bool) {
        let mut q = shared.lock();
        if std::mem::take(&mut q.pong_received) {
            self.timers.pong_deadline = 0;
        }
        let closing = q.state == State::Closing;
        if closing && self.timers.close_deadline == 0 {
            // Also while a write to a stuck peer is pending.
            self.timers.close_deadline = sweep::after(cfg.close_timeout);
        }
        let seen = (q.reader_done, q.peer_closed, closing);
        if self.batch.is_empty() && !q.frames.is_empty() {
            std::mem::swap(&mut q.frames, &mut self.batch);
            q.pong_at = crate::shared::NO_PONG;
            drop(q);
            self.pos = (0, 0);
            self.batch_bytes = self.batch.iter().map(Entry::wire_len).sum();
            self.batch_has_close = closing && self.batch.iter().any(is_close);
        }
        seen
    }

    /// Polls the deadlines: handles those that passed (a keepalive ping is queued) or says
    /// why to give up.
    fn poll_timers(&mut self, shared: &Shared, closing: bool) -> Timer {
        self.arm(shared, self.timers.next());
        match self.poll_sleep() {
            Poll::Pending => Timer::Pending,
            Poll::Ready(()) => match self.timers.fire(shared, &shared.config, closing) {
                Some(why) => Timer::Abort(why),
                None => Timer::Fired,
            },
        }
    }

    /// Publishes `next` (`0`: nothing to wait for) for the sweep thread, which wakes this
    /// writer once it has passed. Stored only when it moved: most calls find it unchanged.
    fn arm(&mut self, shared: &Shared, next: Tick) {
        if shared.wake_at.load(Ordering::Relaxed) != next {
            shared.wake_at.store(next, Ordering::Relaxed);
        }
        self.armed = next != 0;
    }

    /// `Ready` once the published deadline has passed (then it is handled and nothing is
    /// armed); `Pending` also when nothing is armed. The task is woken through
    /// [`Shared::writer_waker`], registered at the top of [`Writer::poll`].
    fn poll_sleep(&mut self) -> Poll<()> {
        let next = self.timers.next();
        if !self.armed || next == 0 || !sweep::passed(next, sweep::now()) {
            return Poll::Pending;
        }
        self.armed = false;
        Poll::Ready(())
    }
}

/// Runs a split connection's writer until the write side is finished.
pub(crate) async fn run<W: AsyncWrite + Unpin + 'static>(mut io: W, shared: Arc<Shared>) {
    let mut writer = Writer::new(&shared);
    poll_fn(|cx| writer.poll(cx, &mut io, &shared)).await;
}

/// One vectored write. On a plain `TcpStream` (Linux) it is a `send`/`sendmsg` system
/// call: these skip `writev`'s file layer (position lock, access checks, fsnotify), which
/// is most of what a write costs beyond TCP when each delivery is its own write (fan-out
/// at a low rate: 2-4% less server CPU per delivery). `MSG_NOSIGNAL`, as a write to a reset
/// connection must give `EPIPE`, not `SIGPIPE`, in a process that did not ignore it.
fn poll_send<W: AsyncWrite + Unpin + 'static>(
    cx: &mut Context<'_>,
    io: &mut W,
    slices: &[IoSlice<'_>],
) -> Poll<std::io::Result<usize>> {
    #[cfg(any(target_os = "linux", target_os = "android"))]
    if let Some(tcp) = (io as &mut dyn std::any::Any).downcast_mut::<tokio::net::TcpStream>() {
        use std::io::ErrorKind::WouldBlock;
        let total: usize = slices.iter().map(|s| s.len()).sum();
        loop {
            std::task::ready!(tcp.poll_write_ready(cx))?;
            let mut short = None;
            let sent = tcp.try_io(tokio::io::Interest::WRITABLE, || {
                let sock = socket2::SockRef::from(&*tcp);
                let n = match slices {
                    [one] => sock.send_with_flags(one, libc::MSG_NOSIGNAL),
                    _ => sock.send_vectored_with_flags(slices, libc::MSG_NOSIGNAL),
                }?;
                if n > 0 && n < total {
                    // The send buffer is full: as tokio does after a short write, clear
                    // the readiness seen before this call (`try_io` does on WouldBlock), so
                    // the next write waits for the socket instead of failing with EAGAIN.
                    short = Some(n);
                    return Err(WouldBlock.into());
                }
                Ok(n)
            });
            match (sent, short) {
                (_, Some(n)) => return Poll::Ready(Ok(n)),
                (Err(e), None) if e.kind() == WouldBlock => continue,
                (r, None) => return Poll::Ready(r),
            }
        }
    }
    Pin::new(io).poll_write_vectored(cx, slices)
}

fn is_close(f: &Entry) -> bool {
    f.first_byte() & 0x0f == OpCode::Close as u8
}

/// Writes every frame of `batch`, as many per system call as the OS takes, then flushes.
fn poll_write_batch<W: AsyncWrite + Unpin + 'static>(
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
        let written = match poll_send(cx, io, &slices[..n]) {
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

#[cfg(all(test, any(target_os = "linux", target_os = "android")))]
mod tests {
    use std::io::IoSlice;
    use std::sync::atomic::{AtomicI32, AtomicUsize, Ordering};
    use std::time::Duration;

    use tokio::io::AsyncReadExt;
    use tokio::net::{TcpListener, TcpStream};

    use super::poll_send;

    static SIGPIPES: AtomicUsize = AtomicUsize::new(0);
    /// The thread whose SIGPIPEs count: the signal goes to the thread that wrote, so
    /// another test's writes elsewhere in this binary cannot be mistaken for this one's.
    static TEST_THREAD: AtomicI32 = AtomicI32::new(0);

    extern "C" fn count_sigpipe(_: libc::c_int) {
        // gettid is async-signal-safe (a plain system call).
        if unsafe { libc::gettid() } == TEST_THREAD.load(Ordering::SeqCst) {
            SIGPIPES.fetch_add(1, Ordering::SeqCst);
        }
    }

    /// A process that has not ignored SIGPIPE (a C host, `#[unix_sigpipe]`) must get an
    /// error from a write to a reset connection, not a signal. A counting handler stands in
    /// for the default action, which would end the whole test binary.
    #[tokio::test]
    async fn a_send_to_a_reset_connection_is_an_error_without_sigpipe() {
        // SAFETY: the handler only calls gettid and touches atomics, both async-signal-safe;
        // the previous action is put back at the end.
        let mut before: libc::sigaction = unsafe { std::mem::zeroed() };
        unsafe {
            TEST_THREAD.store(libc::gettid(), Ordering::SeqCst);
            let mut act: libc::sigaction = std::mem::zeroed();
            act.sa_sigaction = count_sigpipe as *const () as libc::sighandler_t;
            assert_eq!(libc::sigaction(libc::SIGPIPE, &act, &mut before), 0);
        }
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let client = TcpStream::connect(listener.local_addr().unwrap())
            .await
            .unwrap();
        let (mut server, _) = listener.accept().await.unwrap();
        // Closing with a zero linger sends a reset.
        client.set_zero_linger().unwrap();
        drop(client);
        // The read takes the reset's ECONNRESET; a write after it is refused with EPIPE,
        // which is the error that comes with SIGPIPE unless the call says otherwise.
        let mut buf = [0u8; 16];
        let read = tokio::time::timeout(Duration::from_secs(5), server.read(&mut buf))
            .await
            .unwrap();
        assert_eq!(
            read.unwrap_err().kind(),
            std::io::ErrorKind::ConnectionReset
        );
        for slices in [
            &[IoSlice::new(b"one")][..],
            &[IoSlice::new(b"a"), IoSlice::new(b"b")],
        ] {
            let sent = std::future::poll_fn(|cx| poll_send(cx, &mut server, slices)).await;
            assert_eq!(sent.unwrap_err().kind(), std::io::ErrorKind::BrokenPipe);
        }
        // SAFETY: restores the action read above.
        unsafe { libc::sigaction(libc::SIGPIPE, &before, std::ptr::null_mut()) };
        assert_eq!(SIGPIPES.load(Ordering::SeqCst), 0);
    }

    /// A send the socket takes only in part (its buffer full) clears the write readiness
    /// itself; the next one must still be woken when the peer makes room, and every byte
    /// arrive once, in order.
    #[tokio::test]
    async fn after_a_short_send_the_writer_is_woken_when_the_peer_reads() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let mut client = TcpStream::connect(listener.local_addr().unwrap())
            .await
            .unwrap();
        let (mut server, _) = listener.accept().await.unwrap();
        let data: Vec<u8> = (0..32 << 20).map(|i: u32| (i % 251) as u8).collect();
        let expected = data.clone();
        let writer = tokio::spawn(async move {
            let (mut off, mut shorts) = (0, 0);
            while off < data.len() {
                let rest = &data[off..];
                let (a, b) = rest.split_at(rest.len() / 2);
                let slices = [IoSlice::new(a), IoSlice::new(b)];
                let n = std::future::poll_fn(|cx| poll_send(cx, &mut server, &slices))
                    .await
                    .unwrap();
                shorts += usize::from(n < rest.len());
                off += n;
            }
            shorts
        });
        // Let the writer fill the socket's buffers and stall before reading anything.
        tokio::time::sleep(Duration::from_millis(200)).await;
        let mut got = vec![0u8; expected.len()];
        tokio::time::timeout(Duration::from_secs(20), client.read_exact(&mut got))
            .await
            .unwrap()
            .unwrap();
        let shorts = writer.await.unwrap();
        assert!(
            shorts > 0,
            "32 MiB went in one send: the buffers never filled"
        );
        assert!(got == expected, "bytes arrived changed or out of order");
    }
}
