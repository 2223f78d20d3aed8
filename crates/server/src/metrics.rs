//! Prometheus metrics in the text exposition format (version 0.0.4).
//!
//! Everything on the hot path is an atomic add: plain counters are atomics, labelled
//! counters look their label up in a sharded map under a read lock (a write lock only the
//! first time a label is seen), and histograms are fixed buckets of atomics. Labels that
//! come from clients (event names) are capped per family so a client cannot grow the
//! exposition without bound.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::hash::BuildHasher;
use std::io::IoSlice;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::task::{Context, Poll};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

use crate::limits::ConnectionGuard;

const SHARDS: usize = 8;
/// Distinct label values one family keeps; later ones are counted under `other`.
const MAX_LABELS: usize = 200;
const OTHER: &str = "other";

type Shard = RwLock<HashMap<Box<str>, Arc<AtomicU64>>>;

/// A counter family with one label, looked up without a global lock.
struct LabeledCounter {
    hasher: std::collections::hash_map::RandomState,
    shards: Box<[Shard]>,
    labels: AtomicU64,
}

impl Default for LabeledCounter {
    fn default() -> Self {
        Self {
            hasher: Default::default(),
            shards: (0..SHARDS).map(|_| RwLock::default()).collect(),
            labels: AtomicU64::new(0),
        }
    }
}

impl LabeledCounter {
    fn add(&self, label: &str, n: u64) {
        let shard = &self.shards[(self.hasher.hash_one(label) as usize) % SHARDS];
        // A poisoned lock only means a panic elsewhere while holding it; the map is still
        // whole (inserts are single operations), so keep counting.
        if let Some(c) = shard.read().unwrap_or_else(|e| e.into_inner()).get(label) {
            c.fetch_add(n, Ordering::Relaxed);
            return;
        }
        if label != OTHER && self.labels.load(Ordering::Relaxed) >= MAX_LABELS as u64 {
            return self.add(OTHER, n);
        }
        let mut map = shard.write().unwrap_or_else(|e| e.into_inner());
        let c = map.entry(label.into()).or_insert_with(|| {
            self.labels.fetch_add(1, Ordering::Relaxed);
            Arc::default()
        });
        c.fetch_add(n, Ordering::Relaxed);
    }

    fn snapshot(&self) -> Vec<(String, u64)> {
        let mut v: Vec<(String, u64)> = self
            .shards
            .iter()
            .flat_map(|s| {
                s.read()
                    .unwrap_or_else(|e| e.into_inner())
                    .iter()
                    .map(|(k, c)| (k.to_string(), c.load(Ordering::Relaxed)))
                    .collect::<Vec<_>>()
            })
            .collect();
        v.sort();
        v
    }

    fn get(&self, label: &str) -> u64 {
        let shard = &self.shards[(self.hasher.hash_one(label) as usize) % SHARDS];
        shard
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(label)
            .map_or(0, |c| c.load(Ordering::Relaxed))
    }
}

/// A histogram with fixed upper bounds; `sum` is kept in `unit`s as an integer.
struct Histogram {
    bounds: &'static [f64],
    buckets: Box<[AtomicU64]>,
    count: AtomicU64,
    sum: AtomicU64,
    /// What one unit of `sum` is worth in the exposed unit (1e-9 for nanoseconds).
    unit: f64,
}

impl Histogram {
    fn new(bounds: &'static [f64], unit: f64) -> Self {
        Self {
            bounds,
            buckets: (0..bounds.len()).map(|_| AtomicU64::new(0)).collect(),
            count: AtomicU64::new(0),
            sum: AtomicU64::new(0),
            unit,
        }
    }

    /// Records a value given in `unit`s.
    fn observe(&self, units: u64) {
        let v = units as f64 * self.unit;
        if let Some(i) = self.bounds.iter().position(|b| v <= *b) {
            self.buckets[i].fetch_add(1, Ordering::Relaxed);
        }
        self.count.fetch_add(1, Ordering::Relaxed);
        self.sum.fetch_add(units, Ordering::Relaxed);
    }

    fn render(&self, out: &mut String, name: &str, help: &str) {
        header(out, name, help, "histogram");
        let mut cumulative = 0;
        for (b, c) in self.bounds.iter().zip(self.buckets.iter()) {
            cumulative += c.load(Ordering::Relaxed);
            let _ = writeln!(out, "{name}_bucket{{le=\"{b}\"}} {cumulative}");
        }
        let count = self.count.load(Ordering::Relaxed);
        let _ = writeln!(out, "{name}_bucket{{le=\"+Inf\"}} {count}");
        let sum = self.sum.load(Ordering::Relaxed) as f64 * self.unit;
        let _ = writeln!(out, "{name}_sum {sum}");
        let _ = writeln!(out, "{name}_count {count}");
    }
}

const LATENCY_BOUNDS: &[f64] = &[
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
];
const FANOUT_BOUNDS: &[f64] = &[
    0.0, 1.0, 2.0, 5.0, 10.0, 25.0, 50.0, 100.0, 250.0, 500.0, 1000.0, 2500.0, 5000.0, 10000.0,
];

/// The transports a handshake can ask for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HandshakeTransport {
    /// HTTP long-polling.
    Polling,
    /// WebSocket.
    WebSocket,
}

/// The server's counters, gauges and histograms, rendered in Prometheus text format.
pub struct Metrics {
    started: SystemTime,
    events_in: LabeledCounter,
    events_out: LabeledCounter,
    refusals: LabeledCounter,
    errors: LabeledCounter,
    http: LabeledCounter,
    handshakes_polling: AtomicU64,
    handshakes_websocket: AtomicU64,
    tcp_accepted: AtomicU64,
    bytes_in: AtomicU64,
    bytes_out: AtomicU64,
    broadcasts: AtomicU64,
    fanout: Histogram,
    latency: Histogram,
}

impl Default for Metrics {
    fn default() -> Self {
        Self {
            started: SystemTime::now(),
            events_in: LabeledCounter::default(),
            events_out: LabeledCounter::default(),
            refusals: LabeledCounter::default(),
            errors: LabeledCounter::default(),
            http: LabeledCounter::default(),
            handshakes_polling: AtomicU64::new(0),
            handshakes_websocket: AtomicU64::new(0),
            tcp_accepted: AtomicU64::new(0),
            bytes_in: AtomicU64::new(0),
            bytes_out: AtomicU64::new(0),
            broadcasts: AtomicU64::new(0),
            fanout: Histogram::new(FANOUT_BOUNDS, 1.0),
            latency: Histogram::new(LATENCY_BOUNDS, 1e-9),
        }
    }
}

impl Metrics {
    /// A fresh set of metrics.
    pub fn new() -> Arc<Self> {
        Arc::new(Self::default())
    }
    /// An event received from a client (`event` is the event name).
    pub fn event_in(&self, event: &str) {
        self.events_in.add(event, 1);
    }
    /// An event sent to `recipients` sockets (1 for a direct emit; the fan-out of a broadcast).
    pub fn event_out(&self, event: &str, recipients: usize) {
        self.events_out.add(event, recipients as u64);
        self.broadcasts.fetch_add(1, Ordering::Relaxed);
        self.fanout.observe(recipients as u64);
    }
    /// A handshake or connection refused, by reason (`origin`, `auth`, `limit_ip`, ...).
    pub fn refusal(&self, reason: &str) {
        self.refusals.add(reason, 1);
    }
    /// An error, by kind (`rate_limited`, `bad_request`, `store`, ...).
    pub fn error(&self, kind: &str) {
        self.errors.add(kind, 1);
    }
    /// Time from a message's arrival to its broadcast being queued to every recipient.
    pub fn delivery_latency(&self, d: Duration) {
        self.latency
            .observe(u64::try_from(d.as_nanos()).unwrap_or(u64::MAX));
    }
    /// An Engine.IO handshake let through to the engine.
    pub fn handshake(&self, transport: HandshakeTransport) {
        match transport {
            HandshakeTransport::Polling => &self.handshakes_polling,
            HandshakeTransport::WebSocket => &self.handshakes_websocket,
        }
        .fetch_add(1, Ordering::Relaxed);
    }
    /// A TCP connection accepted (before the limits are checked).
    pub fn tcp_accepted(&self) {
        self.tcp_accepted.fetch_add(1, Ordering::Relaxed);
    }
    /// An HTTP API request answered with `status`.
    pub fn api_request(&self, status: u16) {
        let label = match status {
            200 => "200",
            202 => "202",
            400 => "400",
            401 => "401",
            404 => "404",
            405 => "405",
            413 => "413",
            415 => "415",
            503 => "503",
            s if s < 300 => "2xx",
            s if s < 500 => "4xx",
            _ => "5xx",
        };
        self.http.add(label, 1);
    }
    /// Bytes read from clients so far (TLS records included).
    pub fn bytes_in(&self) -> u64 {
        self.bytes_in.load(Ordering::Relaxed)
    }
    /// Bytes written to clients so far.
    pub fn bytes_out(&self) -> u64 {
        self.bytes_out.load(Ordering::Relaxed)
    }
    /// How many times `reason` was counted by [`Metrics::refusal`].
    pub fn refusals(&self, reason: &str) -> u64 {
        self.refusals.get(reason)
    }

    /// The text exposition of everything counted here (the live gauges come from
    /// [`render_gauges`]).
    pub fn render(&self) -> String {
        let mut out = String::with_capacity(4096);
        let start = self
            .started
            .duration_since(UNIX_EPOCH)
            .map_or(0.0, |d| d.as_secs_f64());
        header(
            &mut out,
            "iolite_start_time_seconds",
            "When the server started, in seconds since the epoch.",
            "gauge",
        );
        let _ = writeln!(out, "iolite_start_time_seconds {start}");
        counter(
            &mut out,
            "iolite_tcp_connections_accepted_total",
            "TCP connections accepted, refused ones included.",
            self.tcp_accepted.load(Ordering::Relaxed),
        );
        header(
            &mut out,
            "iolite_handshakes_total",
            "Engine.IO handshakes that reached the engine, by transport.",
            "counter",
        );
        let _ = writeln!(
            out,
            "iolite_handshakes_total{{transport=\"polling\"}} {}",
            self.handshakes_polling.load(Ordering::Relaxed)
        );
        let _ = writeln!(
            out,
            "iolite_handshakes_total{{transport=\"websocket\"}} {}",
            self.handshakes_websocket.load(Ordering::Relaxed)
        );
        labeled(
            &mut out,
            "iolite_refusals_total",
            "Connections and handshakes refused, by reason.",
            "reason",
            &self.refusals,
        );
        labeled(
            &mut out,
            "iolite_events_received_total",
            "Socket.IO events received from clients, by event.",
            "event",
            &self.events_in,
        );
        labeled(
            &mut out,
            "iolite_events_sent_total",
            "Socket.IO events sent to clients (one per recipient), by event.",
            "event",
            &self.events_out,
        );
        counter(
            &mut out,
            "iolite_emits_total",
            "Emits (direct or broadcast), whatever their number of recipients.",
            self.broadcasts.load(Ordering::Relaxed),
        );
        self.fanout.render(
            &mut out,
            "iolite_broadcast_recipients",
            "Recipients per emit.",
        );
        self.latency.render(
            &mut out,
            "iolite_delivery_latency_seconds",
            "Time from a message's arrival to its broadcast being queued to every recipient.",
        );
        counter(
            &mut out,
            "iolite_received_bytes_total",
            "Bytes read from client connections (TLS records included).",
            self.bytes_in.load(Ordering::Relaxed),
        );
        counter(
            &mut out,
            "iolite_sent_bytes_total",
            "Bytes written to client connections (TLS records included).",
            self.bytes_out.load(Ordering::Relaxed),
        );
        labeled(
            &mut out,
            "iolite_errors_total",
            "Errors, by kind.",
            "kind",
            &self.errors,
        );
        labeled(
            &mut out,
            "iolite_api_requests_total",
            "HTTP API requests, by status.",
            "status",
            &self.http,
        );
        out
    }
}

/// The gauges read at scrape time: connected sockets by transport, open Engine.IO
/// sessions and TCP connections, and readiness.
pub fn render_gauges(out: &mut String, io: &iolite::SocketIo, open_tcp: usize, ready: bool) {
    let (mut polling, mut websocket) = (0u64, 0u64);
    for s in io.sockets() {
        match s.transport() {
            iolite::Transport::Polling => polling += 1,
            iolite::Transport::WebSocket => websocket += 1,
        }
    }
    header(
        out,
        "iolite_connections",
        "Connected Socket.IO clients on the main namespace, by transport.",
        "gauge",
    );
    let _ = writeln!(out, "iolite_connections{{transport=\"polling\"}} {polling}");
    let _ = writeln!(
        out,
        "iolite_connections{{transport=\"websocket\"}} {websocket}"
    );
    header(
        out,
        "iolite_engine_sessions",
        "Open Engine.IO sessions.",
        "gauge",
    );
    let _ = writeln!(out, "iolite_engine_sessions {}", io.connections());
    counter(
        out,
        "iolite_queue_overflows_total",
        "Messages that did not fit in a client's send queue (slow clients), on every path.",
        io.queue_overflows(),
    );
    header(
        out,
        "iolite_tcp_connections",
        "Open TCP connections.",
        "gauge",
    );
    let _ = writeln!(out, "iolite_tcp_connections {open_tcp}");
    header(
        out,
        "iolite_ready",
        "1 while the server accepts new connections, 0 while it drains.",
        "gauge",
    );
    let _ = writeln!(out, "iolite_ready {}", u8::from(ready));
}

/// Appends the Redis adapter's link state and counters (only when the server runs with a
/// Redis adapter: `cluster.adapter = "redis"` or `"redis-streams"`). With the streams
/// adapter, the stream reader stands for the subscriber and the stream writer for the
/// publisher.
pub fn render_redis(out: &mut String, stats: &iolite_redis::RedisStats) {
    header(
        out,
        "iolite_redis_connected",
        "1 while both Redis connections (publish/write and subscribe/read) are up, 0 while either is down.",
        "gauge",
    );
    let _ = writeln!(
        out,
        "iolite_redis_connected {}",
        u8::from(stats.is_connected())
    );
    counter(
        out,
        "iolite_redis_published_total",
        "Messages published to the other nodes through Redis.",
        stats.published(),
    );
    counter(
        out,
        "iolite_redis_publish_failures_total",
        "Messages for the other nodes that could not be published (lost).",
        stats.publish_failures(),
    );
    counter(
        out,
        "iolite_redis_connection_failures_total",
        "Failed attempts to connect to Redis, of either connection.",
        stats.connection_failures(),
    );
    counter(
        out,
        "iolite_redis_resubscriptions_total",
        "Times the subscriber (or stream reader) connection came back after losing Redis.",
        stats.resubscriptions(),
    );
    counter(
        out,
        "iolite_redis_received_total",
        "Messages received from the other nodes.",
        stats.received(),
    );
    counter(
        out,
        "iolite_redis_malformed_total",
        "Messages from Redis that could not be read and were dropped.",
        stats.malformed(),
    );
}

fn header(out: &mut String, name: &str, help: &str, kind: &str) {
    let _ = writeln!(out, "# HELP {name} {help}");
    let _ = writeln!(out, "# TYPE {name} {kind}");
}

fn counter(out: &mut String, name: &str, help: &str, v: u64) {
    header(out, name, help, "counter");
    let _ = writeln!(out, "{name} {v}");
}

fn labeled(out: &mut String, name: &str, help: &str, label: &str, c: &LabeledCounter) {
    header(out, name, help, "counter");
    for (value, n) in c.snapshot() {
        let _ = writeln!(out, "{name}{{{label}=\"{}\"}} {n}", escape(&value));
    }
}

/// A label value as the text format wants it: `\`, `"` and newlines escaped.
fn escape(v: &str) -> String {
    let mut s = String::with_capacity(v.len());
    for c in v.chars() {
        match c {
            '\\' => s.push_str("\\\\"),
            '"' => s.push_str("\\\""),
            '\n' => s.push_str("\\n"),
            c => s.push(c),
        }
    }
    s
}

/// An accepted stream that counts the bytes through it and holds its connection's place
/// in the limiter for as long as it lives (an upgraded WebSocket keeps the stream).
pub struct MeteredStream<S> {
    inner: S,
    metrics: Arc<Metrics>,
    _guard: ConnectionGuard,
}

impl<S> MeteredStream<S> {
    /// Wraps `inner`.
    pub fn new(inner: S, metrics: Arc<Metrics>, guard: ConnectionGuard) -> Self {
        Self {
            inner,
            metrics,
            _guard: guard,
        }
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for MeteredStream<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let before = buf.filled().len();
        let r = Pin::new(&mut self.inner).poll_read(cx, buf);
        let n = buf.filled().len().saturating_sub(before);
        if n > 0 {
            self.metrics.bytes_in.fetch_add(n as u64, Ordering::Relaxed);
        }
        r
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for MeteredStream<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        let r = Pin::new(&mut self.inner).poll_write(cx, buf);
        if let Poll::Ready(Ok(n)) = r {
            self.metrics
                .bytes_out
                .fetch_add(n as u64, Ordering::Relaxed);
        }
        r
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        let r = Pin::new(&mut self.inner).poll_write_vectored(cx, bufs);
        if let Poll::Ready(Ok(n)) = r {
            self.metrics
                .bytes_out
                .fetch_add(n as u64, Ordering::Relaxed);
        }
        r
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_families_with_labels_escaped() {
        let m = Metrics::new();
        m.event_in("message:send");
        m.event_in("message:send");
        m.event_out("message", 3);
        m.refusal("origin");
        m.error("bad\"kind\n");
        m.delivery_latency(Duration::from_micros(300));
        let text = m.render();
        assert!(text.contains("iolite_events_received_total{event=\"message:send\"} 2"));
        assert!(text.contains("iolite_events_sent_total{event=\"message\"} 3"));
        assert!(text.contains("iolite_refusals_total{reason=\"origin\"} 1"));
        assert!(text.contains("iolite_errors_total{kind=\"bad\\\"kind\\n\"} 1"));
        assert!(text.contains("iolite_broadcast_recipients_bucket{le=\"5\"} 1"));
        assert!(text.contains("iolite_broadcast_recipients_bucket{le=\"2\"} 0"));
        assert!(text.contains("iolite_delivery_latency_seconds_bucket{le=\"0.0005\"} 1"));
        assert!(text.contains("iolite_delivery_latency_seconds_bucket{le=\"0.00025\"} 0"));
        assert!(text.contains("iolite_delivery_latency_seconds_count 1"));
        // Every sample line belongs to a family declared before it.
        let mut declared = Vec::new();
        for line in text.lines() {
            if let Some(rest) = line.strip_prefix("# TYPE ") {
                declared.push(rest.split(' ').next().unwrap_or("").to_owned());
            } else if !line.starts_with('#') {
                let name = line.split(['{', ' ']).next().unwrap_or("");
                assert!(
                    declared.iter().any(|d| name == d
                        || name
                            .strip_prefix(d.as_str())
                            .is_some_and(|s| matches!(s, "_bucket" | "_sum" | "_count"))),
                    "{line}"
                );
            }
        }
    }

    #[test]
    fn client_chosen_labels_are_capped() {
        let m = Metrics::new();
        for i in 0..(MAX_LABELS + 50) {
            m.event_in(&format!("e{i}"));
        }
        let text = m.render();
        let lines = text
            .lines()
            .filter(|l| l.starts_with("iolite_events_received_total{"))
            .count();
        assert_eq!(lines, MAX_LABELS + 1);
        assert!(text.contains("iolite_events_received_total{event=\"other\"} 50"));
    }
}
