//! Per-thread pools of read buffers and send-queue storage, so an idle connection holds
//! neither and a busy one does not allocate them per message.
//!
//! A pool is taken from on one thread and given back on another: a broadcast fills the
//! recipients' queues on the publisher's thread and each writer empties its queue on its own.
//! Per-thread pools alone then drift apart, one always empty (so it allocates) and one always
//! full (so it frees). So a thread's pool trades whole batches with a shared depot: one lock
//! per [`BATCH`] items.

use std::cell::RefCell;
use std::collections::VecDeque;
use std::sync::{Mutex, PoisonError};

use crate::entry::Entry;
use bytes::BytesMut;

/// Size of a pooled read buffer.
pub(crate) const BUF_SIZE: usize = 16 << 10;

/// Items moved between a thread's pool and the depot at a time.
const BATCH: usize = 8;

/// Largest queue storage worth keeping (frames); bigger ones are freed.
const MAX_DEQUE_CAPACITY: usize = 1024;

/// A thread's items (fewer than two batches) and the items shared between threads.
struct Pool<T: 'static> {
    local: &'static std::thread::LocalKey<RefCell<Vec<T>>>,
    depot: Mutex<Vec<T>>,
    /// Items the depot keeps; beyond this, they are freed.
    max_depot: usize,
}

impl<T> Pool<T> {
    fn take(&self) -> Option<T> {
        self.local.with(|l| {
            let mut l = l.borrow_mut();
            if l.is_empty() {
                // A batch from the depot: items move, neither Vec is allocated or freed.
                let mut d = self.depot.lock().unwrap_or_else(PoisonError::into_inner);
                let from = d.len().saturating_sub(BATCH);
                l.reserve_exact(2 * BATCH);
                l.extend(d.drain(from..));
            }
            l.pop()
        })
    }

    fn give(&self, item: T) {
        self.local.with(|l| {
            let mut l = l.borrow_mut();
            if l.capacity() == 0 {
                l.reserve_exact(2 * BATCH);
            }
            l.push(item);
            if l.len() < 2 * BATCH {
                return;
            }
            // Full: the older half goes to the depot, so this thread keeps one batch for its
            // next takes and the other threads can have the rest.
            let mut d = self.depot.lock().unwrap_or_else(PoisonError::into_inner);
            if d.len() + BATCH <= self.max_depot {
                d.extend(l.drain(..BATCH));
            } else {
                drop(d);
                l.drain(..BATCH);
            }
        })
    }
}

thread_local! {
    static BUFS: RefCell<Vec<BytesMut>> = const { RefCell::new(Vec::new()) };
    static DEQUES: RefCell<Vec<VecDeque<Entry>>> = const { RefCell::new(Vec::new()) };
}

/// Read buffers: 16 KiB each, so the depot keeps at most 4 MiB of them.
static BUF_POOL: Pool<BytesMut> = Pool {
    local: &BUFS,
    depot: Mutex::new(Vec::new()),
    max_depot: 256,
};

/// Queue storage: 256 bytes each, at most 4,096 in the depot (1 MiB).
static DEQUE_POOL: Pool<VecDeque<Entry>> = Pool {
    local: &DEQUES,
    depot: Mutex::new(Vec::new()),
    max_depot: 4096,
};

/// Empty queue storage with some capacity: a broadcast to many idle connections then does
/// not allocate a queue per recipient.
pub(crate) fn take_deque() -> VecDeque<Entry> {
    DEQUE_POOL
        .take()
        .unwrap_or_else(|| VecDeque::with_capacity(16))
}

/// Keeps an emptied queue's storage for [`take_deque`].
pub(crate) fn give_deque(mut d: VecDeque<Entry>) {
    d.clear();
    if d.capacity() == 0 || d.capacity() > MAX_DEQUE_CAPACITY {
        return;
    }
    DEQUE_POOL.give(d);
}

/// A buffer with at least [`BUF_SIZE`] bytes of capacity.
pub(crate) fn take() -> BytesMut {
    BUF_POOL
        .take()
        .unwrap_or_else(|| BytesMut::with_capacity(BUF_SIZE))
}

/// Returns an empty buffer to the pool if its whole allocation can be reused (no
/// message still points into it) and it is not oversized; otherwise frees it.
pub(crate) fn give(mut buf: BytesMut) {
    buf.clear();
    if buf.capacity() > 4 * BUF_SIZE || !buf.try_reclaim(BUF_SIZE) {
        return;
    }
    BUF_POOL.give(buf);
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What one thread gives, another takes: the items cross through the depot instead of
    /// being freed on one side and allocated on the other.
    #[test]
    fn items_given_on_one_thread_are_taken_on_another() {
        thread_local! {
            static LOCAL: RefCell<Vec<Vec<u8>>> = const { RefCell::new(Vec::new()) };
        }
        static POOL: Pool<Vec<u8>> = Pool {
            local: &LOCAL,
            depot: Mutex::new(Vec::new()),
            max_depot: 4 * BATCH,
        };
        let given: Vec<usize> = std::thread::spawn(|| {
            let items: Vec<Vec<u8>> = (0..4 * BATCH as u8).map(|i| vec![i]).collect();
            let addrs = items.iter().map(|v| v.as_ptr() as usize).collect();
            for b in items {
                POOL.give(b);
            }
            addrs
        })
        .join()
        .unwrap();
        // The giving thread kept one batch (freed when it exited); the rest is in the depot.
        let taken: Vec<usize> = std::thread::spawn(|| {
            std::iter::from_fn(|| POOL.take())
                .map(|v| v.as_ptr() as usize)
                .collect::<Vec<_>>()
        })
        .join()
        .unwrap();
        assert_eq!(taken.len(), 3 * BATCH);
        assert!(taken.iter().all(|a| given.contains(a)));
    }

    /// Past its limit the depot frees what it is given.
    #[test]
    fn a_full_depot_frees_the_surplus() {
        thread_local! {
            static LOCAL: RefCell<Vec<Vec<u8>>> = const { RefCell::new(Vec::new()) };
        }
        static POOL: Pool<Vec<u8>> = Pool {
            local: &LOCAL,
            depot: Mutex::new(Vec::new()),
            max_depot: BATCH,
        };
        std::thread::spawn(|| {
            for i in 0..10 * BATCH as u8 {
                POOL.give(vec![i]);
            }
        })
        .join()
        .unwrap();
        assert_eq!(POOL.depot.lock().unwrap().len(), BATCH);
    }
}
