//! Per-thread pool of read buffers, so an idle connection holds none.

use std::cell::RefCell;

use bytes::BytesMut;

/// Size of a pooled read buffer.
pub(crate) const BUF_SIZE: usize = 16 << 10;
/// Buffers kept per thread; beyond this they are freed.
const MAX_POOLED: usize = 256;

thread_local! {
    static POOL: RefCell<Vec<BytesMut>> = const { RefCell::new(Vec::new()) };
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
