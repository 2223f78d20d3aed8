//! A global allocator for servers that hold many idle connections.
//!
//! Each tokio task and each socket's I/O registration is one heap block aligned to 128 bytes
//! (tokio pads them to a cache-line pair so that two tasks never share a line). glibc's
//! `malloc` serves such a block with `posix_memalign`: it takes a larger chunk and frees the
//! pieces before and after the aligned part, and those pieces are too small or too oddly sized
//! for anything a connection allocates next, so they stay as holes: about 0.35 KiB per idle
//! connection, a third of a raw WebSocket connection's memory (docs/benchmarks.md).
//!
//! [`SlabAlloc`] serves the over-aligned small blocks (alignment above 16 and at most 128
//! bytes, size at most 1 KiB) from slabs of 128-byte-aligned blocks, one slab per size class
//! (multiples of 128 bytes), with no header and no holes; everything else goes to the system
//! allocator unchanged. Only the binary chooses its allocator:
//!
//! ```no_run
//! #[global_allocator]
//! static ALLOC: iolite_ws::slab_alloc::SlabAlloc = iolite_ws::slab_alloc::SlabAlloc::new();
//! # fn main() {}
//! ```
//!
//! A freed block goes back to its class's free list for the next task or registration of that
//! size; slabs are never returned to the system (a server that once held 100,000 connections
//! keeps about 64 MiB of them for the next 100,000). The free lists sit behind one short lock
//! per class: blocks of this kind are taken once per task and per socket, not per message.

use std::alloc::{GlobalAlloc, Layout, System};
use std::ptr::{self, NonNull};
use std::sync::{Mutex, PoisonError};

/// Alignment and size step of every block served from a slab.
const BLOCK: usize = 128;
/// Size classes: 128, 256, ... 1024 bytes.
const CLASSES: usize = 8;
/// Bytes taken from the system at a time for one class.
const SLAB: usize = 64 * 1024;

/// A [`GlobalAlloc`] that serves small over-aligned blocks (tokio's tasks and I/O
/// registrations) from size-class slabs and everything else from [`System`]; see the
/// [module docs](self).
pub struct SlabAlloc {
    classes: [Mutex<Class>; CLASSES],
}

/// One size class: a free list threaded through the freed blocks, and the untouched tail of
/// the newest slab.
struct Class {
    free: Option<NonNull<Free>>,
    next: *mut u8,
    end: *mut u8,
}

/// A freed block holds the link to the next one.
struct Free {
    next: Option<NonNull<Free>>,
}

// The raw pointers are blocks owned by the class, only touched under its lock.
unsafe impl Send for Class {}

impl SlabAlloc {
    /// An allocator with empty slabs (a `static` initializer).
    pub const fn new() -> Self {
        SlabAlloc {
            classes: [const {
                Mutex::new(Class {
                    free: None,
                    next: ptr::null_mut(),
                    end: ptr::null_mut(),
                })
            }; CLASSES],
        }
    }

    /// The size class serving `layout`, or `None` for the system allocator.
    #[inline]
    fn class_of(layout: Layout) -> Option<usize> {
        let (align, size) = (layout.align(), layout.size());
        if align <= 16 || align > BLOCK || size == 0 || size > BLOCK * CLASSES {
            return None;
        }
        Some((size - 1) / BLOCK)
    }

    fn lock(&self, class: usize) -> std::sync::MutexGuard<'_, Class> {
        // Nothing panics under the lock; recover rather than abort inside the allocator.
        self.classes[class]
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// A block of class `class`, or null when the system is out of memory.
    fn take(&self, class: usize) -> *mut u8 {
        let size = (class + 1) * BLOCK;
        let mut c = self.lock(class);
        if let Some(block) = c.free {
            // SAFETY: every block on the list was freed into this class and is at least
            // BLOCK bytes, 128-aligned, so it holds a `Free` link written by `give`.
            c.free = unsafe { block.as_ref().next };
            return block.as_ptr().cast();
        }
        if (c.end as usize) - (c.next as usize) < size {
            // SAFETY: SLAB is non-zero and BLOCK a power of two.
            let slab = unsafe { System.alloc(Layout::from_size_align_unchecked(SLAB, BLOCK)) };
            if slab.is_null() {
                return slab;
            }
            // The old slab's tail (less than one block of this class) is left unused.
            c.next = slab;
            // SAFETY: within (one past the end of) the slab just allocated.
            c.end = unsafe { slab.add(SLAB) };
        }
        let block = c.next;
        // SAFETY: at least `size` bytes remain before `end`.
        c.next = unsafe { block.add(size) };
        block
    }

    /// Returns a block of class `class` to its free list.
    ///
    /// # Safety
    /// `block` came from `take(class)` and is no longer used.
    unsafe fn give(&self, block: *mut u8, class: usize) {
        let mut c = self.lock(class);
        let link = block.cast::<Free>();
        // SAFETY: the block is ours again, 128-aligned and larger than a `Free`.
        unsafe { link.write(Free { next: c.free }) };
        c.free = NonNull::new(link);
    }
}

impl Default for SlabAlloc {
    fn default() -> Self {
        Self::new()
    }
}

// SAFETY: slab blocks are 128-aligned, at least as large as asked, and never handed out twice
// until freed; everything else is the system allocator's.
unsafe impl GlobalAlloc for SlabAlloc {
    #[inline]
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        match Self::class_of(layout) {
            Some(class) => self.take(class),
            // SAFETY: the caller's contract, passed on.
            None => unsafe { System.alloc(layout) },
        }
    }

    #[inline]
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        match Self::class_of(layout) {
            Some(class) => {
                let block = self.take(class);
                if !block.is_null() {
                    // SAFETY: the block has at least layout.size() bytes.
                    unsafe { block.write_bytes(0, layout.size()) };
                }
                block
            }
            // SAFETY: the caller's contract, passed on.
            None => unsafe { System.alloc_zeroed(layout) },
        }
    }

    #[inline]
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        match Self::class_of(layout) {
            // SAFETY: a layout of this class was served by `take(class)`.
            Some(class) => unsafe { self.give(ptr, class) },
            // SAFETY: the caller's contract, passed on.
            None => unsafe { System.dealloc(ptr, layout) },
        }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: the caller guarantees new_size, rounded up to the alignment, does not
        // overflow isize.
        let new = unsafe { Layout::from_size_align_unchecked(new_size, layout.align()) };
        match (Self::class_of(layout), Self::class_of(new)) {
            // SAFETY: the caller's contract, passed on.
            (None, None) => unsafe { System.realloc(ptr, layout, new_size) },
            (Some(a), Some(b)) if a == b => ptr,
            _ => {
                // SAFETY: as for alloc and dealloc; the copy stays within both blocks.
                unsafe {
                    let moved = self.alloc(new);
                    if !moved.is_null() {
                        ptr::copy_nonoverlapping(ptr, moved, layout.size().min(new_size));
                        self.dealloc(ptr, layout);
                    }
                    moved
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn layout(size: usize, align: usize) -> Layout {
        Layout::from_size_align(size, align).expect("valid layout")
    }

    #[test]
    fn only_small_over_aligned_blocks_come_from_slabs() {
        assert_eq!(SlabAlloc::class_of(layout(384, 128)), Some(2));
        assert_eq!(SlabAlloc::class_of(layout(256, 128)), Some(1));
        assert_eq!(SlabAlloc::class_of(layout(64, 64)), Some(0));
        assert_eq!(SlabAlloc::class_of(layout(1024, 32)), Some(7));
        assert_eq!(SlabAlloc::class_of(layout(1025, 128)), None);
        assert_eq!(SlabAlloc::class_of(layout(384, 16)), None);
        assert_eq!(SlabAlloc::class_of(layout(384, 8)), None);
        assert_eq!(SlabAlloc::class_of(layout(256, 256)), None);
        assert_eq!(SlabAlloc::class_of(layout(0, 128)), None);
    }

    #[test]
    fn blocks_are_aligned_distinct_and_reused_after_free() {
        let a = SlabAlloc::new();
        let l = layout(384, 128);
        let blocks: Vec<*mut u8> = (0..1000)
            .map(|i| {
                let p = unsafe { a.alloc(l) };
                assert!(!p.is_null());
                assert_eq!(p as usize % 128, 0);
                unsafe { p.write_bytes(i as u8, l.size()) };
                p
            })
            .collect();
        // No block overlaps another: each still holds its own byte pattern.
        for (i, &p) in blocks.iter().enumerate() {
            let bytes = unsafe { std::slice::from_raw_parts(p, l.size()) };
            assert!(
                bytes.iter().all(|&b| b == i as u8),
                "block {i} was overwritten"
            );
        }
        let freed = blocks[500];
        unsafe { a.dealloc(freed, l) };
        assert_eq!(unsafe { a.alloc(l) }, freed, "a freed block is served next");
        // Another class does not take this class's blocks.
        let other = unsafe { a.alloc(layout(256, 128)) };
        assert!(!blocks.contains(&other));
        unsafe { a.dealloc(other, layout(256, 128)) };
        for p in blocks {
            unsafe { a.dealloc(p, l) };
        }
    }

    #[test]
    fn realloc_keeps_the_bytes_across_classes_and_to_the_system() {
        let a = SlabAlloc::new();
        unsafe {
            let p = a.alloc_zeroed(layout(200, 64));
            assert!(std::slice::from_raw_parts(p, 200).iter().all(|&b| b == 0));
            p.write_bytes(7, 200);
            // Same class (256): the block stays.
            assert_eq!(a.realloc(p, layout(200, 64), 250), p);
            let q = a.realloc(p, layout(250, 64), 900);
            assert_eq!(q as usize % 64, 0);
            assert!(std::slice::from_raw_parts(q, 200).iter().all(|&b| b == 7));
            // Past 1 KiB the system allocator takes over.
            let r = a.realloc(q, layout(900, 64), 4096);
            assert_eq!(r as usize % 64, 0);
            assert!(std::slice::from_raw_parts(r, 200).iter().all(|&b| b == 7));
            a.dealloc(r, layout(4096, 64));
        }
    }

    #[test]
    fn threads_share_the_slabs_without_handing_out_a_block_twice() {
        let a = std::sync::Arc::new(SlabAlloc::new());
        let l = layout(256, 128);
        let threads: Vec<_> = (0..4u8)
            .map(|t| {
                let a = a.clone();
                std::thread::spawn(move || {
                    for round in 0..200 {
                        let ps: Vec<*mut u8> = (0..50)
                            .map(|_| {
                                let p = unsafe { a.alloc(l) };
                                unsafe { p.write_bytes(t, l.size()) };
                                p
                            })
                            .collect();
                        for &p in &ps {
                            let bytes = unsafe { std::slice::from_raw_parts(p, l.size()) };
                            assert!(bytes.iter().all(|&b| b == t), "round {round}: shared block");
                            unsafe { a.dealloc(p, l) };
                        }
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().expect("thread");
        }
    }
}
