//! Cache prefetch hints for loops that touch many connections in turn.
//!
//! A broadcast sends to each recipient under that recipient's queue lock. A locked
//! instruction waits until every earlier load and store is done, so when each recipient's
//! state has to come from memory (10,000 connections' state does not fit in a core's
//! cache), the misses are taken one after another. Prefetches are not held back by the
//! locks: a loop that asks for recipient `i + d`'s lines while it sends to recipient `i`
//! has them arrive in parallel. See [`crate::Sender::prefetch`].

/// Asks the CPU to bring the cache line that holds `p` into this core's cache, ready to
/// be written. Only a hint: the address is never dereferenced, so any value (dangling,
/// null) is allowed and does nothing.
#[inline(always)]
pub fn write<T: ?Sized>(p: *const T) {
    #[cfg(target_arch = "x86_64")]
    {
        use std::arch::x86_64::{_mm_prefetch, _MM_HINT_T0};
        let p = p.cast::<i8>();
        if x86::has_prefetchw() {
            // SAFETY: the CPU has `prefetchw` (checked above), which has no effect the
            // program can observe and never faults, whatever the address.
            unsafe {
                std::arch::asm!(
                    "prefetchw [{0}]",
                    in(reg) p,
                    options(nostack, preserves_flags, readonly)
                );
            }
        } else {
            // SAFETY: as above; SSE's prefetch is in every x86-64. It loads the line for
            // reading, so a write after it may still have to take the line over.
            unsafe { _mm_prefetch::<_MM_HINT_T0>(p) };
        }
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = p;
}

#[cfg(target_arch = "x86_64")]
mod x86 {
    use std::sync::atomic::{AtomicU8, Ordering};

    /// 0: not asked yet, 1: yes, 2: no.
    static PREFETCHW: AtomicU8 = AtomicU8::new(0);

    /// Whether the CPU reports `prefetchw` (CPUID 8000_0001h, ECX bit 8: AMD since the
    /// K8, Intel since Broadwell). Asked once.
    #[inline(always)]
    pub(super) fn has_prefetchw() -> bool {
        match PREFETCHW.load(Ordering::Relaxed) {
            1 => true,
            2 => false,
            _ => detect(),
        }
    }

    #[cold]
    fn detect() -> bool {
        use std::arch::x86_64::__cpuid;
        // Leaf 8000_0001h exists when the highest extended leaf is at least that.
        // `unsafe` for Rust before 1.87, where `__cpuid` was an unsafe fn.
        // SAFETY: CPUID exists on every x86-64.
        #[allow(unused_unsafe)]
        let yes = unsafe {
            __cpuid(0x8000_0000).eax >= 0x8000_0001 && __cpuid(0x8000_0001).ecx & (1 << 8) != 0
        };
        PREFETCHW.store(if yes { 1 } else { 2 }, Ordering::Relaxed);
        yes
    }
}

/// [`write`] for each cache line of the `len` bytes from `p`.
#[inline(always)]
pub fn write_range<T: ?Sized>(p: *const T, len: usize) {
    let p = p.cast::<u8>();
    let mut off = 0;
    while off < len {
        write(p.wrapping_add(off));
        off += 64;
    }
    if len > 0 {
        // The last line, when `p` is not line-aligned and the range ends in the next one.
        write(p.wrapping_add(len - 1));
    }
}

#[cfg(test)]
mod tests {
    /// A prefetch never dereferences its address: null, dangling, unmapped and the
    /// highest addresses do nothing.
    #[test]
    fn any_address_is_allowed() {
        for addr in [0usize, 1, 64, 0xdead_beef, usize::MAX - 63, usize::MAX] {
            super::write(addr as *const u8);
            super::write_range(addr as *const u8, 200);
        }
        let dangling = Box::into_raw(Box::new([0u64; 32]));
        // SAFETY: made by Box::into_raw just above, freed once.
        drop(unsafe { Box::from_raw(dangling) });
        super::write_range(dangling, 256);
        super::write_range(dangling, 0);
    }
}
