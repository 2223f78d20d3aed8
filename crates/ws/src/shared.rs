//! State shared by a connection's senders, its receiver and its writer task.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU8, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use atomic_waker::AtomicWaker;
use iolite_ws_proto::{CloseCode, CloseFrame, Encoder, Role};
use once_cell::race::OnceBox;
use tokio::sync::Notify;

use crate::config::Config;
use crate::entry::Entry;

/// Why the writer stopped the connection on its own; read by the receiver.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub(crate) enum Abort {
    None = 0,
    Keepalive = 1,
    SlowConsumer = 2,
    Io = 3,
    CloseTimeout = 4,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum State {
    Open,
    /// A close frame is queued (or written); nothing more may be sent.
    Closing,
}

/// [`Queue::pong_at`] when no pong waits.
pub(crate) const NO_PONG: u32 = u32::MAX;

pub(crate) struct Queue {
    pub(crate) frames: VecDeque<Entry>,
    /// Bytes in `frames` plus those in the writer's current batch.
    pub(crate) bytes: usize,
    /// Index in `frames` of a pong the writer has not taken yet.
    /// ([`NO_PONG`] if none: 4 bytes where an `Option` took 8).
    pub(crate) pong_at: u32,
    pub(crate) state: State,
    /// The peer's close frame arrived (or the connection failed): no reply to wait for.
    pub(crate) peer_closed: bool,
    /// The receiver saw EOF or an error, or was dropped.
    pub(crate) reader_done: bool,
    /// A pong arrived since the last keepalive ping.
    pub(crate) pong_received: bool,
    pub(crate) encoder: Encoder,
}

/// `repr(C)`: what a send touches (the queue's lock and state, `config`, `tail_hint`,
/// `writer_due`) comes first, in the object's first [`Shared::SEND_HOT`] bytes: two or
/// three cache lines per recipient of a broadcast, which [`crate::Sender::prefetch`]
/// knows to load.
#[repr(C)]
pub(crate) struct Shared {
    pub(crate) queue: Mutex<Queue>,
    pub(crate) config: Arc<Config>,
    /// Where the next queued entry will likely go (just past the last one pushed), for
    /// [`crate::Sender::prefetch_queue`]; recorded by `send_prepared`, the broadcast path.
    /// Only ever prefetched, never dereferenced, so a stale value (the writer took the
    /// batch, the queue grew, another kind of send came after) costs a wasted hint.
    pub(crate) tail_hint: AtomicUsize,
    /// A [`crate::Connection`]'s `recv` returned a message and has not been polled since:
    /// its task is handling the message and polls the writer before it waits again, so
    /// a send need not wake it (that wake-up would only poll the task once more). Read and
    /// cleared around the queue's lock, so a send that finds it clear always wakes.
    pub(crate) writer_due: AtomicBool,
    pub(crate) role: Role,
    pub(crate) abort: AtomicU8,
    /// The writer's last write returned `Pending`: the peer is not reading.
    pub(crate) writer_blocked: AtomicBool,
    /// The writer's earliest deadline, for the sweep thread (see [`crate::sweep`]).
    pub(crate) wake_at: AtomicU32,
    /// A deadline of the task polling a [`crate::Connection`], woken with the writer (see
    /// [`crate::Connection::wake_also_at`]).
    pub(crate) also_at: AtomicU32,
    /// The task that writes: the writer task, or the one polling a [`crate::Connection`].
    pub(crate) writer_waker: AtomicWaker,
    /// Made by the first [`crate::Sender::drained`]: most connections never wait for it
    /// (a `Notify` is 32 bytes, and the empty box 8). Set before the waiter takes the
    /// queue's lock, so a writer that empties the queue after that finds it.
    pub(crate) drained: OnceBox<Notify>,
    pub(crate) reader_waker: AtomicWaker,
}

// What a send touches stays within two cache lines' worth, the tail hint among it.
const _: () = {
    assert!(Shared::SEND_HOT <= 128);
    assert!(std::mem::offset_of!(Shared, tail_hint) + 8 <= Shared::SEND_HOT);
};

impl Shared {
    /// A send touches the first this many bytes of `Shared` (see the struct's `repr(C)`).
    pub(crate) const SEND_HOT: usize = std::mem::offset_of!(Shared, writer_due) + 1;

    pub(crate) fn new(config: Arc<Config>, role: Role, encoder: Encoder) -> Self {
        Self {
            queue: Mutex::new(Queue {
                frames: VecDeque::new(),
                bytes: 0,
                pong_at: NO_PONG,
                state: State::Open,
                peer_closed: false,
                reader_done: false,
                pong_received: false,
                encoder,
            }),
            writer_waker: AtomicWaker::new(),
            drained: OnceBox::new(),
            reader_waker: AtomicWaker::new(),
            abort: AtomicU8::new(Abort::None as u8),
            writer_blocked: AtomicBool::new(false),
            writer_due: AtomicBool::new(false),
            config,
            tail_hint: AtomicUsize::new(0),
            role,
            wake_at: AtomicU32::new(0),
            also_at: AtomicU32::new(0),
        }
    }

    /// Records where the entry after `q`'s last will go (see [`Shared::tail_hint`]).
    #[inline]
    pub(crate) fn note_tail(&self, q: &Queue) {
        if let Some(last) = q.frames.back() {
            let next = (last as *const Entry).wrapping_add(1) as usize;
            self.tail_hint.store(next, Ordering::Relaxed);
        }
    }

    /// Whether a send that made the queue non-empty must wake the writer (see
    /// [`Shared::writer_due`]); called with the queue locked.
    pub(crate) fn must_wake(&self, queue_was_empty: bool) -> bool {
        queue_was_empty && !self.writer_due.load(Ordering::Acquire)
    }

    pub(crate) fn lock(&self) -> MutexGuard<'_, Queue> {
        // A panic while holding this lock cannot leave the queue inconsistent in a way that
        // matters more than losing the connection, so poisoning is ignored.
        self.queue.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub(crate) fn abort_reason(&self) -> Abort {
        match self.abort.load(Ordering::Acquire) {
            1 => Abort::Keepalive,
            2 => Abort::SlowConsumer,
            3 => Abort::Io,
            4 => Abort::CloseTimeout,
            _ => Abort::None,
        }
    }

    /// Stops the connection from the writer's side and wakes the receiver.
    pub(crate) fn set_abort(&self, why: Abort) {
        let _ = self.abort.compare_exchange(
            Abort::None as u8,
            why as u8,
            Ordering::AcqRel,
            Ordering::Acquire,
        );
        self.reader_waker.wake();
    }

    /// Queues the pong for a received ping. While the writer is blocked on a peer that does
    /// not read, at most one pong waits: a newer ping replaces its payload (RFC 6455 §5.5.3).
    pub(crate) fn queue_pong(&self, payload: bytes::Bytes) {
        let mut q = self.lock();
        if q.state != State::Open {
            return;
        }
        let frame = q
            .encoder
            .encode_control(iolite_ws_proto::OpCode::Pong, payload);
        if self.writer_blocked.load(Ordering::Acquire) {
            if let Some(i) = Some(q.pong_at).filter(|i| *i != NO_PONG) {
                let len = frame.wire_len();
                if let Some(slot) = q.frames.get_mut(i as usize) {
                    let old = std::mem::replace(slot, frame.into());
                    q.bytes = q.bytes - old.wire_len() + len;
                    return;
                }
            }
        }
        // A queue of 4 billion frames is past every byte limit long before.
        let idx = u32::try_from(q.frames.len()).unwrap_or(NO_PONG);
        let wake = q.push(frame.into());
        q.pong_at = idx;
        drop(q);
        if wake {
            self.writer_waker.wake();
        }
    }

    /// Queues a close frame and stops accepting messages. `fail`: the connection is being
    /// failed, so the writer closes TCP right after the frame instead of awaiting a reply.
    pub(crate) fn queue_close(&self, frame: Option<CloseFrame>, fail: bool) -> bool {
        let mut q = self.lock();
        if fail {
            q.peer_closed = true;
        }
        if q.state != State::Open {
            drop(q);
            self.writer_waker.wake();
            return false;
        }
        q.state = State::Closing;
        let f = q.encoder.encode_close(frame.as_ref());
        q.push(f.into());
        drop(q);
        self.writer_waker.wake();
        true
    }

    /// Fails the connection because the peer is too slow: what is queued is dropped, a
    /// close frame with `code` is queued alone.
    pub(crate) fn close_slow(&self, q: &mut Queue, code: CloseCode) {
        let dropped: usize = q.frames.iter().map(Entry::wire_len).sum();
        q.bytes -= dropped;
        q.frames.clear();
        q.pong_at = NO_PONG;
        q.state = State::Closing;
        q.peer_closed = true;
        let f = q
            .encoder
            .encode_close(Some(&CloseFrame::new(code, "send queue full")));
        q.push(f.into());
        self.abort
            .compare_exchange(
                Abort::None as u8,
                Abort::SlowConsumer as u8,
                Ordering::AcqRel,
                Ordering::Acquire,
            )
            .ok();
        self.reader_waker.wake();
    }
}

impl Queue {
    /// Appends a frame; returns whether the writer may be idle and needs a wake-up.
    pub(crate) fn push(&mut self, frame: Entry) -> bool {
        let was_empty = self.frames.is_empty();
        if self.frames.capacity() == 0 {
            self.frames = crate::pool::take_deque();
        }
        self.bytes += frame.wire_len();
        self.frames.push_back(frame);
        was_empty
    }
}

impl crate::sweep::Sweepable for Shared {
    fn wake_at(&self) -> crate::sweep::Tick {
        crate::sweep::earliest(
            self.wake_at.load(Ordering::Relaxed),
            self.also_at.load(Ordering::Relaxed),
        )
    }

    fn wake(&self) {
        self.writer_waker.wake();
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::Ordering;
    use std::sync::Arc;

    use iolite_ws_proto::{Encoder, PreparedMessage, Role};

    use super::Shared;
    use crate::entry::Entry;
    use crate::{Config, Sender};

    /// After each send, the hint is the slot just past the last queued entry: where the
    /// next one goes while the queue has room.
    #[test]
    fn the_tail_hint_follows_the_queue() {
        let shared = Arc::new(Shared::new(
            Arc::new(Config::default()),
            Role::Server,
            Encoder::new(Role::Server, None, 1),
        ));
        let sender = Sender {
            shared: shared.clone(),
        };
        assert_eq!(shared.tail_hint.load(Ordering::Relaxed), 0);
        let msg = PreparedMessage::text("x");
        for n in 1..=3 {
            sender.send_prepared(&msg).unwrap();
            let q = shared.lock();
            assert_eq!(q.frames.len(), n);
            let last: *const Entry = q.frames.back().unwrap();
            assert_eq!(
                shared.tail_hint.load(Ordering::Relaxed),
                last.wrapping_add(1) as usize
            );
            if n < q.frames.capacity() {
                drop(q);
                // The next send lands where the hint said.
                sender.send_prepared(&msg).unwrap();
                let q = shared.lock();
                let next: *const Entry = q.frames.back().unwrap();
                assert_eq!(next, last.wrapping_add(1));
                drop(q);
                shared.lock().frames.pop_back();
            }
        }
        // Prefetching it, or any address, is only a hint.
        sender.prefetch();
        sender.prefetch_queue();
    }
}
