//! Prometheus metrics. (Interface fixed; the implementation is being written.)

use std::sync::Arc;
use std::time::Duration;

/// The server's counters, gauges and histograms, rendered in Prometheus text format.
#[derive(Default)]
pub struct Metrics {}

impl Metrics {
    /// A fresh set of metrics.
    pub fn new() -> Arc<Self> {
        Arc::new(Self::default())
    }
    /// An event received from a client (`event` is the event name).
    pub fn event_in(&self, _event: &str) {}
    /// An event sent to `recipients` sockets (1 for a direct emit; the fan-out of a broadcast).
    pub fn event_out(&self, _event: &str, _recipients: usize) {}
    /// A handshake or connection refused, by reason (`origin`, `auth`, `limit_ip`, ...).
    pub fn refusal(&self, _reason: &str) {}
    /// An error, by kind (`rate_limited`, `bad_request`, `store`, ...).
    pub fn error(&self, _kind: &str) {}
    /// Time from a message's arrival to its broadcast being queued to every recipient.
    pub fn delivery_latency(&self, _d: Duration) {}
    /// The text exposition.
    pub fn render(&self) -> String {
        String::new()
    }
}
