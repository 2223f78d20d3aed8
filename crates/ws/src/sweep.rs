//! Coarse deadlines for many connections from one thread, instead of a timer each.
//!
//! A connection's keepalive ping, pong timeout and close timeout do not need millisecond
//! precision, but a tokio `Sleep` per connection costs 112 bytes and a box for each of
//! them, idle or not. Here a connection keeps its deadlines as 4-byte [`Tick`]s and
//! publishes the earliest one; one thread looks at every registered connection a few
//! times a second and wakes those whose deadline has passed, which then handle it on their
//! own task. A deadline fires up to one sweep late: at most a quarter of the shortest
//! interval registered, and never more than 250 ms.

use std::sync::atomic::{AtomicU32, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::thread::Thread;
use std::time::{Duration, Instant};

/// A point in time in milliseconds since the process's first use of this module, wrapping
/// after 49 days; `0` means none. Two ticks compare correctly while less than 24 days apart
/// (see [`passed`]), far more than any interval here.
pub type Tick = u32;

/// A deadline this far out at most (12 days), so that it compares correctly with now.
const MAX_AHEAD_MS: u64 = 1 << 30;
/// The longest pause between sweeps.
const COARSEST_MS: u32 = 250;
/// The shortest, whatever intervals are registered.
const FINEST_MS: u32 = 5;
/// Registrations are spread over this many lists so that connecting does not wait for a
/// whole sweep.
const SHARDS: usize = 8;

/// Something with a deadline to be woken at (a connection's shared state; a task that
/// polls a [`crate::Connection`] sets its own deadline with
/// [`crate::Connection::wake_also_at`]).
pub(crate) trait Sweepable: Send + Sync {
    /// The earliest deadline not yet handled, or `0`.
    fn wake_at(&self) -> Tick;
    /// Called by the sweep once `wake_at` has passed (again on every sweep until the
    /// deadline is handled or moved).
    fn wake(&self);
}

fn epoch() -> Instant {
    static EPOCH: OnceLock<Instant> = OnceLock::new();
    *EPOCH.get_or_init(Instant::now)
}

/// Now, as a [`Tick`] (never `0`).
pub fn now() -> Tick {
    nonzero(epoch().elapsed().as_millis() as u64)
}

/// The tick `d` after now (never `0`).
pub fn after(d: Duration) -> Tick {
    let ahead = u64::try_from(d.as_millis())
        .unwrap_or(u64::MAX)
        .min(MAX_AHEAD_MS);
    nonzero(epoch().elapsed().as_millis() as u64 + ahead)
}

/// The tick of `at`, rounded up to the next millisecond (so it has passed once its tick
/// has); a time already past is a tick already past.
pub fn at(at: Instant) -> Tick {
    let since = at.saturating_duration_since(epoch());
    let ms = since.as_nanos().div_ceil(1_000_000);
    let max = epoch().elapsed().as_millis() + u128::from(MAX_AHEAD_MS as u32);
    nonzero(ms.min(max) as u64)
}

/// Sweeps at least four times per `d` from now on (no more often than every 5 ms): for a
/// deadline shorter than the intervals of the connections' configurations.
pub fn finer(d: Duration) {
    let r = registry();
    // Only when it got finer: the thread may be in a longer pause, or parked.
    if r.lower(d) {
        start(r);
    }
}

fn every_ms(finest: Duration) -> u32 {
    (finest.as_millis() / 4).clamp(FINEST_MS.into(), COARSEST_MS.into()) as u32
}

fn nonzero(ms: u64) -> Tick {
    match ms as u32 {
        0 => 1,
        t => t,
    }
}

/// Whether `deadline` (not `0`) is at or before `now`.
pub fn passed(deadline: Tick, now: Tick) -> bool {
    now.wrapping_sub(deadline) as i32 >= 0
}

/// The earlier of two deadlines, either of which may be `0` (none).
pub fn earliest(a: Tick, b: Tick) -> Tick {
    match (a, b) {
        (0, x) | (x, 0) => x,
        (a, b) if passed(a, b) => a,
        (_, b) => b,
    }
}

/// The tick `d` after `t` (not `0`), for a deadline counted from an earlier moment.
pub fn later(t: Tick, d: Duration) -> Tick {
    let ms = u32::try_from(d.as_millis().min(u128::from(MAX_AHEAD_MS))).unwrap_or(u32::MAX);
    nonzero(u64::from(t.wrapping_add(ms)))
}

/// How long from now until `t` (zero once it has passed).
pub fn until(t: Tick) -> Duration {
    let ahead = t.wrapping_sub(now()) as i32;
    Duration::from_millis(u64::try_from(ahead).unwrap_or(0))
}

struct Registry {
    shards: [Mutex<Vec<Arc<dyn Sweepable>>>; SHARDS],
    next_shard: AtomicUsize,
    /// Milliseconds between sweeps.
    every_ms: AtomicU32,
    thread: OnceLock<Thread>,
}

impl Registry {
    fn new() -> Self {
        Self {
            shards: std::array::from_fn(|_| Mutex::new(Vec::new())),
            next_shard: AtomicUsize::new(0),
            every_ms: AtomicU32::new(COARSEST_MS),
            thread: OnceLock::new(),
        }
    }

    /// Sweeps at least four times per `d`; whether that is more often than before.
    fn lower(&self, d: Duration) -> bool {
        let every = every_ms(d);
        self.every_ms.fetch_min(every, Ordering::Relaxed) > every
    }

    fn add(&self, item: Arc<dyn Sweepable>, finest: Duration) {
        self.lower(finest);
        let shard = self.next_shard.fetch_add(1, Ordering::Relaxed) % SHARDS;
        lock(&self.shards[shard]).push(item);
    }
}

fn registry() -> &'static Registry {
    static REGISTRY: OnceLock<Registry> = OnceLock::new();
    REGISTRY.get_or_init(Registry::new)
}

/// Watches `item` until nothing else holds it (the registry keeps it until the next sweep
/// after that). `finest` is the shortest interval it will set a deadline for; sweeps run
/// at least four times as often (between 5 and 250 ms apart).
pub(crate) fn register(item: Arc<dyn Sweepable>, finest: Duration) {
    let r = registry();
    r.add(item, finest);
    start(r);
}

/// Starts the sweep thread, or wakes it: it parks while nothing is registered, and a
/// shorter interval must not wait for the end of a longer pause.
fn start(r: &Registry) {
    let thread = r.thread.get_or_init(|| {
        std::thread::Builder::new()
            .name("iolite-sweep".into())
            .spawn(sweep_forever)
            // Without the thread no deadline would fire; there is no running on without it.
            .expect("cannot start the iolite-sweep thread")
            .thread()
            .clone()
    });
    thread.unpark();
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    // A panic in `wake` cannot leave a list of references inconsistent.
    m.lock().unwrap_or_else(|e| e.into_inner())
}

fn sweep_forever() {
    let r = registry();
    loop {
        // Also woken early by a registration (then the sweep is merely early).
        std::thread::park_timeout(Duration::from_millis(
            r.every_ms.load(Ordering::Relaxed).into(),
        ));
        if sweep(r) == 0 {
            // Woken by the next registration (an unpark before this park makes it return
            // at once).
            std::thread::park();
        }
    }
}

/// Wakes what is due and forgets what was dropped; returns how many are left.
fn sweep(r: &Registry) -> usize {
    let mut left = 0;
    for shard in &r.shards {
        let now = now();
        let mut items = lock(shard);
        items.retain(|item| {
            // Held strongly, so a sweep only reads each connection's state: upgrading a
            // weak reference wrote its counts twice, and in a burst those cache lines are
            // the ones the connection's publishers and writer are busy with. The only
            // holder left: the connection is gone.
            if Arc::strong_count(item) == 1 {
                return false;
            }
            let at = item.wake_at();
            if at != 0 && passed(at, now) {
                item.wake();
            }
            true
        });
        let len = items.len();
        left += len;
        // A list that emptied after many connections closed gives its memory back.
        if items.capacity() > 64 && len < items.capacity() / 4 {
            items.shrink_to(len * 2);
        }
    }
    left
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicBool;
    use std::sync::Arc;

    #[test]
    fn later_and_until_count_from_a_tick() {
        let t = now();
        let d = later(t, Duration::from_secs(20));
        assert!(!passed(d, t));
        assert!(passed(d, later(t, Duration::from_secs(21))));
        let left = until(d);
        assert!(
            left <= Duration::from_secs(20) && left > Duration::from_secs(19),
            "{left:?}"
        );
        assert_eq!(until(t.wrapping_sub(5).max(1)), Duration::ZERO);
        // Across the wrap, and never the `0` that means none.
        assert_eq!(later(u32::MAX - 4, Duration::from_millis(10)), 5);
        assert_eq!(later(u32::MAX, Duration::from_millis(1)), 1);
    }

    #[test]
    fn ticks_compare_across_the_wrap() {
        assert!(passed(10, 10));
        assert!(passed(10, 11));
        assert!(!passed(11, 10));
        assert!(passed(u32::MAX - 5, 3));
        assert!(!passed(3, u32::MAX - 5));
        assert_eq!(earliest(0, 7), 7);
        assert_eq!(earliest(7, 0), 7);
        assert_eq!(earliest(u32::MAX - 5, 3), u32::MAX - 5);
        assert_eq!(earliest(9, 8), 8);
    }

    #[test]
    fn after_is_later_than_now_and_never_zero() {
        let (n, a) = (now(), after(Duration::from_secs(1)));
        assert_ne!(a, 0);
        assert!(!passed(a, n));
        assert!(passed(a, n.wrapping_add(1000).wrapping_add(50)));
        // Clamped, so it still compares as later.
        assert!(!passed(after(Duration::from_secs(100 * 86_400)), now()));
        let instant = Instant::now() + Duration::from_micros(1500);
        let t = at(instant);
        // Rounded up: the tick passes only once the instant has.
        assert!(Instant::now() < instant && !passed(t, now()));
        assert!(passed(at(Instant::now() - Duration::from_secs(1)), now()));
        assert!(!passed(
            at(Instant::now() + Duration::from_secs(100 * 86_400)),
            now()
        ));
    }

    struct Item {
        at: AtomicU32,
        woken: AtomicBool,
    }

    impl Sweepable for Item {
        fn wake_at(&self) -> Tick {
            self.at.load(Ordering::Relaxed)
        }
        fn wake(&self) {
            self.woken.store(true, Ordering::Relaxed);
        }
    }

    #[test]
    fn wakes_what_is_due_and_only_that() {
        let due = Arc::new(Item {
            at: AtomicU32::new(after(Duration::from_millis(30))),
            woken: AtomicBool::new(false),
        });
        let later = Arc::new(Item {
            at: AtomicU32::new(after(Duration::from_secs(600))),
            woken: AtomicBool::new(false),
        });
        let none = Arc::new(Item {
            at: AtomicU32::new(0),
            woken: AtomicBool::new(false),
        });
        for i in [&due, &later, &none] {
            register(i.clone(), Duration::from_millis(40));
        }
        let start = Instant::now();
        while !due.woken.load(Ordering::Relaxed) {
            assert!(start.elapsed() < Duration::from_secs(5), "never woken");
            std::thread::sleep(Duration::from_millis(5));
        }
        // Not before its deadline.
        assert!(start.elapsed() >= Duration::from_millis(25));
        assert!(!later.woken.load(Ordering::Relaxed));
        assert!(!none.woken.load(Ordering::Relaxed));
    }

    #[test]
    fn only_a_finer_interval_wakes_the_thread() {
        let r = Registry::new();
        assert!(r.lower(Duration::from_millis(400)));
        assert_eq!(r.every_ms.load(Ordering::Relaxed), 100);
        assert!(!r.lower(Duration::from_millis(400)));
        assert!(!r.lower(Duration::from_secs(10)));
        assert!(r.lower(Duration::from_millis(8)));
        assert_eq!(r.every_ms.load(Ordering::Relaxed), FINEST_MS);
    }

    #[test]
    fn a_sweep_wakes_what_is_due_and_forgets_what_was_dropped() {
        let r = Registry::new();
        let item = |at| {
            Arc::new(Item {
                at: AtomicU32::new(at),
                woken: AtomicBool::new(false),
            })
        };
        let (past, future, none, dropped) = (
            item(now().wrapping_sub(10)),
            item(after(Duration::from_secs(600))),
            item(0),
            item(now().wrapping_sub(10)),
        );
        for i in [&past, &future, &none, &dropped] {
            r.add(i.clone(), Duration::from_secs(1));
        }
        assert_eq!(r.every_ms.load(Ordering::Relaxed), 250);
        let fine = item(0);
        r.add(fine.clone(), Duration::from_millis(1));
        assert_eq!(r.every_ms.load(Ordering::Relaxed), FINEST_MS);
        drop(dropped);
        assert_eq!(sweep(&r), 4);
        assert!(past.woken.load(Ordering::Relaxed));
        assert!(!future.woken.load(Ordering::Relaxed));
        assert!(!none.woken.load(Ordering::Relaxed));
        drop((past, future, none));
        assert_eq!(sweep(&r), 1);
        drop(fine);
        assert_eq!(sweep(&r), 0);
    }
}
