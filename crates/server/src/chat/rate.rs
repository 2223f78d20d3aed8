//! Per-connection rate limiting: a token bucket, and the count of recent refusals that
//! decides when a client that keeps going is disconnected.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

/// Refusals within [`ABUSE_WINDOW`] past which the connection is dropped.
pub const ABUSE_REFUSALS: usize = 5;

/// The window over which refusals are counted.
pub const ABUSE_WINDOW: Duration = Duration::from_secs(10);

/// A token bucket: `rate` tokens a second, at most `capacity` saved up.
#[derive(Debug, Clone)]
pub struct TokenBucket {
    rate: f64,
    capacity: f64,
    tokens: f64,
    last: Instant,
}

impl TokenBucket {
    /// A full bucket.
    pub fn new(rate: f64, capacity: f64, now: Instant) -> Self {
        Self {
            rate,
            capacity,
            tokens: capacity,
            last: now,
        }
    }

    /// Takes a token if there is one.
    pub fn take(&mut self, now: Instant) -> bool {
        let elapsed = now.saturating_duration_since(self.last).as_secs_f64();
        self.last = now;
        self.tokens = (self.tokens + elapsed * self.rate).min(self.capacity);
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

/// What to do with an incoming event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Admit {
    /// Handle it.
    Yes,
    /// Answer `rate_limited`.
    Refused,
    /// Answer `rate_limited`, then disconnect: too many refusals lately.
    Disconnect,
}

/// A connection's limiter: the bucket (`events_per_second`, burst twice that) and its
/// recent refusals.
#[derive(Debug, Clone)]
pub struct Limiter {
    bucket: Option<TokenBucket>,
    refusals: VecDeque<Instant>,
}

impl Limiter {
    /// A limiter for `events_per_second`; 0 turns limiting off.
    pub fn new(events_per_second: u32, now: Instant) -> Self {
        let rate = f64::from(events_per_second);
        Self {
            bucket: (events_per_second > 0).then(|| TokenBucket::new(rate, rate * 2.0, now)),
            refusals: VecDeque::new(),
        }
    }

    /// Decides about one event arriving at `now`.
    pub fn admit(&mut self, now: Instant) -> Admit {
        let Some(bucket) = &mut self.bucket else {
            return Admit::Yes;
        };
        if bucket.take(now) {
            return Admit::Yes;
        }
        while self
            .refusals
            .front()
            .is_some_and(|t| now.saturating_duration_since(*t) > ABUSE_WINDOW)
        {
            self.refusals.pop_front();
        }
        self.refusals.push_back(now);
        if self.refusals.len() > ABUSE_REFUSALS {
            Admit::Disconnect
        } else {
            Admit::Refused
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn burst_then_rate() {
        let t0 = Instant::now();
        let mut l = Limiter::new(10, t0);
        for i in 0..20 {
            assert_eq!(l.admit(t0), Admit::Yes, "event {i} of the burst");
        }
        assert_eq!(l.admit(t0), Admit::Refused);
        // 100 ms later one token is back.
        let t1 = t0 + Duration::from_millis(100);
        assert_eq!(l.admit(t1), Admit::Yes);
        assert_eq!(l.admit(t1), Admit::Refused);
    }

    #[test]
    fn sixth_refusal_within_the_window_disconnects() {
        let t0 = Instant::now();
        let mut l = Limiter::new(1, t0);
        assert_eq!(l.admit(t0), Admit::Yes);
        assert_eq!(l.admit(t0), Admit::Yes);
        for _ in 0..ABUSE_REFUSALS {
            assert_eq!(l.admit(t0), Admit::Refused);
        }
        assert_eq!(l.admit(t0), Admit::Disconnect);
    }

    #[test]
    fn old_refusals_are_forgotten() {
        let t0 = Instant::now();
        let mut l = Limiter::new(1, t0);
        l.admit(t0);
        l.admit(t0);
        for _ in 0..ABUSE_REFUSALS {
            assert_eq!(l.admit(t0), Admit::Refused);
        }
        // 11 s later the bucket is full again and the refusals are out of the window.
        let t1 = t0 + Duration::from_secs(11);
        assert_eq!(l.admit(t1), Admit::Yes);
        assert_eq!(l.admit(t1), Admit::Yes);
        assert_eq!(l.admit(t1), Admit::Refused);
    }

    #[test]
    fn zero_means_unlimited() {
        let t0 = Instant::now();
        let mut l = Limiter::new(0, t0);
        for _ in 0..10_000 {
            assert_eq!(l.admit(t0), Admit::Yes);
        }
    }
}
