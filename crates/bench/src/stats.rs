//! Latency histograms, counters, errors, and per-sender order tracking.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Mutex, MutexGuard};

use hdrhistogram::Histogram;
use serde::{Deserialize, Serialize};

/// Shards of the recorder: enough that the worker threads rarely meet on one lock.
const SHARDS: usize = 16;
/// The largest latency kept exactly: one hour, in nanoseconds. Longer ones count as this.
const MAX_NS: u64 = 3_600_000_000_000;

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

fn new_histogram() -> Histogram<u64> {
    // 3 significant digits from 1 ns to an hour: exact enough for p99.9, ~270 KiB each.
    Histogram::new_with_bounds(1, MAX_NS, 3).expect("constant bounds are valid")
}

struct Shard {
    all: Histogram<u64>,
    window: Histogram<u64>,
    count: u64,
}

// Each shard on its own cache lines, so two threads recording into neighbouring shards
// do not slow each other down.
#[repr(align(128))]
struct Padded(Mutex<Shard>);

/// Latencies (and the count of what was received), sharded by connection.
pub struct Recorder {
    shards: Vec<Padded>,
}

impl Default for Recorder {
    fn default() -> Self {
        Self::new()
    }
}

impl Recorder {
    /// An empty recorder.
    pub fn new() -> Self {
        let shards = (0..SHARDS)
            .map(|_| {
                Padded(Mutex::new(Shard {
                    all: new_histogram(),
                    window: new_histogram(),
                    count: 0,
                }))
            })
            .collect();
        Self { shards }
    }

    /// Records one arrival with its latency; `hint` (a connection number) picks the shard.
    pub fn record(&self, hint: usize, latency_ns: u64) {
        let v = latency_ns.clamp(1, MAX_NS);
        let mut s = lock(&self.shards[hint % SHARDS].0);
        s.count += 1;
        // Values are clamped into the histogram's range, so recording cannot fail.
        let _ = s.all.record(v);
        let _ = s.window.record(v);
    }

    /// Arrivals recorded so far.
    pub fn count(&self) -> u64 {
        self.shards.iter().map(|s| lock(&s.0).count).sum()
    }

    /// The latencies recorded since the last call, and resets them.
    pub fn take_window(&self) -> Histogram<u64> {
        let mut h = new_histogram();
        for s in &self.shards {
            let mut s = lock(&s.0);
            let _ = h.add(&s.window);
            s.window.reset();
        }
        h
    }

    /// Every latency recorded.
    pub fn merged(&self) -> Histogram<u64> {
        let mut h = new_histogram();
        for s in &self.shards {
            let _ = h.add(&lock(&s.0).all);
        }
        h
    }
}

/// Latency percentiles in microseconds.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct Latency {
    /// Samples.
    pub count: u64,
    /// Smallest.
    pub min: f64,
    /// Mean.
    pub mean: f64,
    /// Median.
    pub p50: f64,
    /// 90th percentile.
    pub p90: f64,
    /// 99th percentile.
    pub p99: f64,
    /// 99.9th percentile.
    pub p99_9: f64,
    /// Largest.
    pub max: f64,
}

impl Latency {
    /// Percentiles of a histogram of nanoseconds; `None` if it is empty.
    pub fn from_histogram(h: &Histogram<u64>) -> Option<Self> {
        if h.is_empty() {
            return None;
        }
        let us = |ns: u64| ns as f64 / 1000.0;
        Some(Self {
            count: h.len(),
            min: us(h.min()),
            mean: h.mean() / 1000.0,
            p50: us(h.value_at_quantile(0.50)),
            p90: us(h.value_at_quantile(0.90)),
            p99: us(h.value_at_quantile(0.99)),
            p99_9: us(h.value_at_quantile(0.999)),
            max: us(h.max()),
        })
    }
}

/// Errors counted by kind.
#[derive(Default)]
pub struct ErrorLog {
    kinds: Mutex<BTreeMap<String, u64>>,
}

impl ErrorLog {
    /// Counts one error of `kind` (`"connect failed: ..."`, `"dropped: ..."`).
    pub fn add(&self, kind: impl Into<String>) {
        *lock(&self.kinds).entry(kind.into()).or_default() += 1;
    }

    /// Errors so far.
    pub fn total(&self) -> u64 {
        lock(&self.kinds).values().sum()
    }

    /// Counts by kind.
    pub fn kinds(&self) -> BTreeMap<String, u64> {
        lock(&self.kinds).clone()
    }
}

/// What [`OrderTracker::observe`] made of an arrival.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Seen {
    /// The first time, in order.
    New,
    /// The first time, after a later sequence number.
    Reordered,
    /// Seen before.
    Duplicate,
}

/// Sequence numbers of one sender as seen by one receiver: counts what arrived once,
/// twice, or out of order. Memory is bounded: holes (numbers skipped and not yet seen)
/// beyond [`OrderTracker::MAX_HOLES`] are given up as lost, and should one of those still
/// arrive it counts as a duplicate.
#[derive(Debug, Default, Clone)]
pub struct OrderTracker {
    next: u64,
    holes: BTreeSet<u64>,
    /// Distinct sequence numbers received.
    pub unique: u64,
    /// Arrivals of a number already received.
    pub duplicates: u64,
    /// Arrivals after a higher number had arrived.
    pub reordered: u64,
}

impl OrderTracker {
    /// The most holes remembered.
    pub const MAX_HOLES: usize = 1 << 16;

    /// Notes the arrival of `seq`.
    pub fn observe(&mut self, seq: u64) -> Seen {
        if seq >= self.next {
            let gap = seq - self.next;
            if gap as usize > Self::MAX_HOLES {
                // Give up on the older part of a huge gap without building it.
                self.holes.clear();
                self.holes.extend(seq - Self::MAX_HOLES as u64..seq);
            } else {
                self.holes.extend(self.next..seq);
            }
            while self.holes.len() > Self::MAX_HOLES {
                self.holes.pop_first();
            }
            self.next = seq + 1;
            self.unique += 1;
            return Seen::New;
        }
        if self.holes.remove(&seq) {
            self.unique += 1;
            self.reordered += 1;
            Seen::Reordered
        } else {
            self.duplicates += 1;
            Seen::Duplicate
        }
    }
}

/// Totals of many trackers.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct OrderTotals {
    /// Distinct deliveries.
    pub unique: u64,
    /// Repeated deliveries.
    pub duplicates: u64,
    /// Late deliveries.
    pub reordered: u64,
}

impl OrderTotals {
    /// Adds a tracker's counts.
    pub fn add(&mut self, t: &OrderTracker) {
        self.unique += t.unique;
        self.duplicates += t.duplicates;
        self.reordered += t.reordered;
    }

    /// Adds totals.
    pub fn merge(&mut self, o: &OrderTotals) {
        self.unique += o.unique;
        self.duplicates += o.duplicates;
        self.reordered += o.reordered;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn order_tracker_counts() {
        let mut t = OrderTracker::default();
        assert_eq!(t.observe(0), Seen::New);
        assert_eq!(t.observe(1), Seen::New);
        assert_eq!(t.observe(3), Seen::New);
        assert_eq!(t.observe(2), Seen::Reordered);
        assert_eq!(t.observe(2), Seen::Duplicate);
        assert_eq!(t.observe(0), Seen::Duplicate);
        assert_eq!(t.observe(10), Seen::New);
        assert_eq!((t.unique, t.duplicates, t.reordered), (5, 2, 1));
        // 4..=9 never came: 6 holes.
        assert_eq!(t.holes.len(), 6);
    }

    #[test]
    fn order_tracker_bounded() {
        let mut t = OrderTracker::default();
        t.observe(u64::MAX / 2);
        assert_eq!(t.holes.len(), OrderTracker::MAX_HOLES);
        t.observe(u64::MAX / 2 - 1);
        assert_eq!(t.reordered, 1);
        t.observe(0);
        assert_eq!(t.duplicates, 1);
    }

    #[test]
    fn recorder_percentiles() {
        let r = Recorder::new();
        for i in 1..=1000u64 {
            r.record(i as usize, i * 1000);
        }
        assert_eq!(r.count(), 1000);
        let l = Latency::from_histogram(&r.merged()).unwrap();
        assert_eq!(l.count, 1000);
        assert!((l.p50 - 500.0).abs() < 1.0, "{l:?}");
        assert!((l.max - 1000.0).abs() < 1.0, "{l:?}");
        assert_eq!(r.take_window().len(), 1000);
        assert_eq!(r.take_window().len(), 0);
        assert_eq!(r.merged().len(), 1000);
        assert!(Latency::from_histogram(&r.take_window()).is_none());
    }
}
