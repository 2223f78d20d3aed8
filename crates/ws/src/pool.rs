//! Per-thread pools of read buffers and send-queue storage, so an idle connection holds
//! neither and a busy one does not allocate them per message.

use std::cell::RefCell;

use std::collections::VecDeque;

use crate::entry::Entry;
use bytes::BytesMut;

/// Size of a pooled read buffer.
pub(crate) const BUF_SIZE: usize = 16 << 10;
/// Buffers kept per thread; beyond this they are freed.
const MAX_POOLED: usize = 256;

/// Largest queue storage worth keeping (frames); bigger ones are freed.
const MAX_DEQUE_CAPACITY: usize = 1024;

thread_local! {
    static POOL: RefCell<Vec<BytesMut>> = const { RefCell::new(Vec::new()) };
    static DEQUES: RefCell<Vec<VecDeque<Entry>>> = const { RefCell::new(Vec::new()) };
}

/// Empty queue storage with some capacity: a broadcast to many idle connections then does
/// not allocate a queue per recipient.
pub(crate) fn take_deque() -> VecDeque<Entry> {
    DEQUES
        .with(|p| p.borrow_mut().pop())
        .unwrap_or_else(|| VecDeque::with_capacity(16))
}

/// Keeps an emptied queue's storage for [`take_deque`].
pub(crate) fn give_deque(mut d: VecDeque<Entry>) {
    d.clear();
    if d.capacity() == 0 || d.capacity() > MAX_DEQUE_CAPACITY {
        return;
    }
    DEQUES.with(|p| {
        let mut p = p.borrow_mut();
        if p.len() < MAX_POOLED {
            p.push(d);
        }
    });
}

/// A buffer with at least [`BUF_SIZE`] bytes of capacity.
pub(crate) fn take() -> BytesMut {
    POOL.with(|p| p.borrow_mut().pop())
        .unwrap_or_else(|| BytesMut::with_capacity(BUF_SIZE))
}

/// Returns an empty buffer to the pool if its whole allocation can be reused (no
/// message still points into it) and it is not oversized; otherwise frees it.
pub(crate) fn give(mut buf: BytesMut) {
    buf.clear();
    if buf.capacity() > 4 * BUF_SIZE || !buf.try_reclaim(BUF_SIZE) {
        return;
    }
    POOL.with(|p| {
        let mut p = p.borrow_mut();
        if p.len() < MAX_POOLED {
            p.push(buf);
        }
    });
}
