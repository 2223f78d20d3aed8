//! What every scenario shares: phases, connecting with a ramp, the measured window, the
//! per-second timeline, /proc samples and the progress bar.
//!
//! A run goes Connect → Measure → Drain → Stop. Connections open during Connect (spread
//! over --ramp-up, at most --connect-concurrency at a time); traffic starts for all of
//! them at once when Measure begins, so the measured phase holds messaging only. At
//! Drain senders stop and what is in flight may still arrive (until nothing has arrived
//! for --drain); the measured window, and the server's CPU time, end after the drain.

use std::sync::atomic::{AtomicI64, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use serde::{Deserialize, Serialize};
use tokio::sync::{watch, Semaphore};
use tokio::task::JoinHandle;

use crate::conn::{Conn, ConnConfig, ConnError, Route};
use crate::options::{RunConfig, Scenario};
use crate::procfs::{self, ProcSample};
use crate::stats::{ErrorLog, Latency, Recorder};

/// Where a run is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Phase {
    /// Opening connections.
    Connect,
    /// Sending; what arrives is measured.
    Measure,
    /// No new sends; waiting for what is in flight.
    Drain,
    /// Everyone closes.
    Stop,
}

/// State shared by the coordinator and every connection task.
pub struct Shared {
    /// The run.
    pub cfg: RunConfig,
    /// Per-connection settings.
    pub conn_cfg: ConnConfig,
    /// Latencies of what arrived (round trips, deliveries, cycles).
    pub rec: Recorder,
    /// Connect latencies (churn only).
    pub connect_rec: Option<Recorder>,
    /// Errors by kind.
    pub errors: ErrorLog,
    /// Messages (or connections, or actions) sent.
    pub sent: AtomicU64,
    /// Connections open now.
    pub open: AtomicI64,
    /// Connections ready for the measured phase.
    pub ready: AtomicUsize,
    /// Connections that failed to open (or join).
    pub failed: AtomicUsize,
    /// Connections dropped after opening.
    pub dropped: AtomicU64,
    /// Tasks that still have work in flight (senders before Drain, echo tasks waiting
    /// for replies).
    pub busy: AtomicUsize,
    phase: watch::Sender<Phase>,
    sem: Semaphore,
    t0: Instant,
    measure_start: std::sync::OnceLock<Instant>,
}

impl Shared {
    /// A receiver of phase changes.
    pub fn phase(&self) -> watch::Receiver<Phase> {
        self.phase.subscribe()
    }

    /// The phase now.
    pub fn current_phase(&self) -> Phase {
        *self.phase.borrow()
    }

    /// When Measure began (set before the phase changes, so any task that saw Measure
    /// sees it). Senders schedule from it, so a task that woke late catches up.
    pub fn measure_start(&self) -> Instant {
        self.measure_start.get().copied().unwrap_or(self.t0)
    }

    /// When sending should stop: scheduled sends at or after this are not made.
    pub fn measure_end(&self) -> Instant {
        self.measure_start() + self.cfg.duration
    }

    /// Opens connection `i` of `n` at its turn in the ramp, to node `i % nodes` of --url.
    /// A failure is counted and reported as `None`.
    pub async fn open(&self, i: usize, n: usize, route: Route<'_>) -> Option<Conn> {
        self.open_on(i, i, n, route).await
    }

    /// [`open`](Self::open) to node `node % nodes` of --url instead.
    pub async fn open_on(&self, node: usize, i: usize, n: usize, route: Route<'_>) -> Option<Conn> {
        if !self.cfg.ramp_up.is_zero() && n > 0 {
            let at = self.t0 + self.cfg.ramp_up.mul_f64(i as f64 / n as f64);
            tokio::time::sleep_until(at.into()).await;
        }
        let permit = self.sem.acquire().await.ok();
        let r = Conn::connect(self.cfg.endpoint_for(node), route, &self.conn_cfg).await;
        drop(permit);
        match r {
            Ok(c) => {
                self.open.fetch_add(1, Ordering::Relaxed);
                Some(c)
            }
            Err(e) => {
                self.mark_failed(&e);
                None
            }
        }
    }

    /// The connection is set up (joined) and waits for Measure.
    pub fn mark_ready(&self) {
        self.ready.fetch_add(1, Ordering::Relaxed);
    }

    /// The connection could not be set up.
    pub fn mark_failed(&self, e: &ConnError) {
        self.failed.fetch_add(1, Ordering::Relaxed);
        self.errors.add(e.kind());
    }

    /// An open connection ended before Stop.
    pub fn mark_dropped(&self, e: &ConnError) {
        self.open.fetch_sub(1, Ordering::Relaxed);
        self.dropped.fetch_add(1, Ordering::Relaxed);
        self.errors.add(format!("dropped: {}", e.kind()));
    }

    /// Closes a connection at the end of the run.
    pub async fn close(&self, conn: Conn) {
        conn.close(Duration::from_secs(1)).await;
        self.open.fetch_sub(1, Ordering::Relaxed);
    }
}

/// Waits until the phase is at least `p`; returns the phase reached (Stop if the
/// coordinator is gone).
pub async fn wait_phase(rx: &mut watch::Receiver<Phase>, p: Phase) -> Phase {
    match rx.wait_for(|x| *x >= p).await {
        Ok(v) => *v,
        Err(_) => Phase::Stop,
    }
}

/// The next phase change (Stop if the coordinator is gone). Cancel safe.
pub async fn next_phase(rx: &mut watch::Receiver<Phase>) -> Phase {
    match rx.changed().await {
        Ok(()) => *rx.borrow_and_update(),
        Err(_) => Phase::Stop,
    }
}

/// One second of the measured phase.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct Sample {
    /// Seconds since the measured phase began (end of this second).
    pub t_s: f64,
    /// Sends per second in this interval.
    pub sent_per_s: f64,
    /// Arrivals per second in this interval.
    pub received_per_s: f64,
    /// Median latency in this interval, µs.
    pub p50_us: Option<f64>,
    /// 99th percentile in this interval, µs.
    pub p99_us: Option<f64>,
    /// Connections open.
    pub open: i64,
    /// Errors so far.
    pub errors: u64,
}

/// /proc samples of the server and of the generator at one moment.
#[derive(Clone, Debug)]
pub struct Snapshot {
    /// When.
    pub at: Instant,
    /// Each --server-pid, in order (`None`: not readable).
    pub servers: Vec<Option<ProcSample>>,
    /// Each --watch-pid, in order.
    pub watched: Vec<Option<ProcSample>>,
    /// This process.
    pub generator: Option<ProcSample>,
    /// [`procfs::listen_overflows`].
    pub listen_overflows: Option<u64>,
}

/// The measured window of a finished run.
#[derive(Clone, Debug)]
pub struct Window {
    /// Before anything connected.
    pub baseline: Snapshot,
    /// When Measure began.
    pub start: Snapshot,
    /// After the drain.
    pub end: Snapshot,
    /// From Measure to the end of the drain (or the last arrival).
    pub measured: Duration,
    /// How long connecting took.
    pub connect_time: Duration,
    /// The per-second timeline.
    pub samples: Vec<Sample>,
    /// Connections open when the measured phase ended.
    pub open_at_end: i64,
}

/// The coordinator of a run.
pub struct Harness {
    shared: Arc<Shared>,
    progress: bool,
    baseline: Snapshot,
    start: Option<Snapshot>,
    end: Option<Snapshot>,
    connect_time: Duration,
    samples: Arc<Mutex<Vec<Sample>>>,
    sampler: Option<(JoinHandle<()>, ProgressBar)>,
    window_end: Option<Instant>,
    open_at_end: i64,
}

fn snapshot(cfg: &RunConfig) -> Snapshot {
    let sample = |pids: &[u32]| pids.iter().map(|&p| procfs::sample(p).ok()).collect();
    Snapshot {
        at: Instant::now(),
        servers: sample(&cfg.server_pids),
        watched: sample(&cfg.watch_pids),
        generator: procfs::sample(std::process::id()).ok(),
        listen_overflows: procfs::listen_overflows(),
    }
}

fn bar(progress: bool, len: u64, template: &str, prefix: &'static str) -> ProgressBar {
    if !progress {
        return ProgressBar::hidden();
    }
    let pb = ProgressBar::with_draw_target(Some(len), ProgressDrawTarget::stderr());
    if let Ok(style) = ProgressStyle::with_template(template) {
        pb.set_style(style.progress_chars("=> "));
    }
    pb.set_prefix(prefix);
    pb
}

/// `1234567` as `1.23M`.
pub fn si(v: f64) -> String {
    let a = v.abs();
    if a >= 1e9 {
        format!("{:.2}G", v / 1e9)
    } else if a >= 1e6 {
        format!("{:.2}M", v / 1e6)
    } else if a >= 1e4 {
        format!("{:.1}k", v / 1e3)
    } else if a >= 100.0 || v.fract() == 0.0 {
        format!("{v:.0}")
    } else {
        format!("{v:.1}")
    }
}

/// Microseconds for people: `850 µs`, `12.3 ms`, `1.20 s`.
pub fn fmt_us(us: f64) -> String {
    if us >= 1e6 {
        format!("{:.2} s", us / 1e6)
    } else if us >= 1e3 {
        format!("{:.2} ms", us / 1e3)
    } else {
        format!("{us:.1} µs")
    }
}

impl Harness {
    /// Sets up a run; samples the server's baseline before anything connects.
    pub fn new(cfg: RunConfig) -> Self {
        let conn_cfg = ConnConfig {
            timeout: cfg.timeout,
            heartbeat: cfg.heartbeat,
        };
        let progress = cfg.progress;
        let baseline = snapshot(&cfg);
        let shared = Arc::new(Shared {
            connect_rec: (cfg.scenario == Scenario::Churn).then(Recorder::new),
            sem: Semaphore::new(cfg.connect_concurrency),
            cfg,
            conn_cfg,
            rec: Recorder::new(),
            errors: ErrorLog::default(),
            sent: AtomicU64::new(0),
            open: AtomicI64::new(0),
            ready: AtomicUsize::new(0),
            failed: AtomicUsize::new(0),
            dropped: AtomicU64::new(0),
            busy: AtomicUsize::new(0),
            phase: watch::channel(Phase::Connect).0,
            t0: Instant::now(),
            measure_start: std::sync::OnceLock::new(),
        });
        Self {
            shared,
            progress,
            baseline,
            start: None,
            end: None,
            connect_time: Duration::ZERO,
            samples: Arc::default(),
            sampler: None,
            window_end: None,
            open_at_end: 0,
        }
    }

    /// The shared state, for connection tasks.
    pub fn shared(&self) -> Arc<Shared> {
        self.shared.clone()
    }

    /// The run's configuration.
    pub fn cfg(&self) -> &RunConfig {
        &self.shared.cfg
    }

    /// Waits until `total` connections are ready or failed, with a progress bar.
    pub async fn connect_phase(&mut self, total: usize) {
        let t = Instant::now();
        let pb = bar(
            self.progress,
            total as u64,
            "{prefix:>10} [{bar:40}] {pos}/{len} {msg}",
            "connecting",
        );
        loop {
            let ready = self.shared.ready.load(Ordering::Relaxed);
            let failed = self.shared.failed.load(Ordering::Relaxed);
            pb.set_position((ready + failed) as u64);
            if failed > 0 {
                pb.set_message(format!("({failed} failed)"));
            }
            if ready + failed >= total {
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        pb.finish_and_clear();
        self.connect_time = t.elapsed();
    }

    /// Connections ready.
    pub fn ready(&self) -> usize {
        self.shared.ready.load(Ordering::Relaxed)
    }

    /// Samples /proc, starts the timeline and enters Measure.
    pub fn start_measure(&mut self) {
        let start = snapshot(&self.shared.cfg);
        let start_at = start.at;
        self.start = Some(start);
        let _ = self.shared.measure_start.set(start_at);
        let total_ms = self.shared.cfg.duration.as_millis() as u64;
        let pb = bar(
            self.progress,
            total_ms.max(1),
            "{prefix:>10} [{bar:40}] {elapsed:>4} {msg}",
            self.shared.cfg.scenario.as_str(),
        );
        let (shared, samples) = (self.shared.clone(), self.samples.clone());
        let pb2 = pb.clone();
        let handle = tokio::spawn(async move {
            let mut tick = tokio::time::interval_at(
                (start_at + Duration::from_millis(250)).into(),
                Duration::from_millis(250),
            );
            let (mut sent0, mut recv0, mut t0) = (0u64, 0u64, start_at);
            let mut n = 0u64;
            loop {
                tick.tick().await;
                n += 1;
                let now = Instant::now();
                pb2.set_position((now - start_at).as_millis() as u64);
                if n % 4 != 0 {
                    continue;
                }
                let dt = (now - t0).as_secs_f64().max(1e-9);
                let sent = shared.sent.load(Ordering::Relaxed);
                let count = shared.rec.count();
                let window = shared.rec.take_window();
                let lat = Latency::from_histogram(&window);
                let s = Sample {
                    t_s: (now - start_at).as_secs_f64(),
                    sent_per_s: (sent - sent0) as f64 / dt,
                    received_per_s: (count - recv0) as f64 / dt,
                    p50_us: lat.as_ref().map(|l| l.p50),
                    p99_us: lat.as_ref().map(|l| l.p99),
                    open: shared.open.load(Ordering::Relaxed),
                    errors: shared.errors.total(),
                };
                pb2.set_message(format!(
                    "sent {}/s  recv {}/s  p50 {}  p99 {}  open {}  errors {}",
                    si(s.sent_per_s),
                    si(s.received_per_s),
                    s.p50_us.map_or("-".into(), fmt_us),
                    s.p99_us.map_or("-".into(), fmt_us),
                    s.open,
                    s.errors
                ));
                samples.lock().unwrap_or_else(|e| e.into_inner()).push(s);
                (sent0, recv0, t0) = (sent, count, now);
            }
        });
        self.sampler = Some((handle, pb));
        self.shared.phase.send_replace(Phase::Measure);
    }

    /// Sleeps through the measured phase's --duration.
    pub async fn run_for_duration(&self) {
        if let Some(start) = &self.start {
            tokio::time::sleep_until((start.at + self.shared.cfg.duration).into()).await;
        }
    }

    /// Enters `p`.
    pub fn set_phase(&self, p: Phase) {
        self.shared.phase.send_replace(p);
        if p == Phase::Drain {
            if let Some((_, pb)) = &self.sampler {
                pb.set_prefix("draining");
            }
        }
    }

    /// Waits until `done()` holds; gives up when nothing has arrived for --drain. The
    /// measured window ends then, or at the last arrival if it gave up.
    pub async fn drain_until(&mut self, mut done: impl FnMut() -> bool) {
        let mut last = self.shared.rec.count();
        let mut last_at = Instant::now();
        loop {
            if done() {
                self.window_end = Some(Instant::now());
                return;
            }
            tokio::time::sleep(Duration::from_millis(2)).await;
            let c = self.shared.rec.count();
            if c != last {
                last = c;
                last_at = Instant::now();
            } else if last_at.elapsed() >= self.shared.cfg.drain {
                self.window_end = Some(last_at);
                return;
            }
        }
    }

    /// Waits until no task is busy (or nothing arrived for --drain).
    pub async fn drain_busy(&mut self) {
        let s = self.shared.clone();
        self.drain_until(move || s.busy.load(Ordering::Relaxed) == 0)
            .await;
    }

    /// Ends the measured window: samples /proc and stops the timeline.
    pub fn end_measure(&mut self) {
        self.end = Some(snapshot(&self.shared.cfg));
        self.open_at_end = self.shared.open.load(Ordering::Relaxed);
        if let Some((h, pb)) = self.sampler.take() {
            h.abort();
            pb.finish_and_clear();
        }
    }

    /// What the report needs from the coordinator.
    pub fn window(&self) -> Window {
        let samples = self
            .samples
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        let start = self.start.clone().unwrap_or_else(|| self.baseline.clone());
        let end = self
            .end
            .clone()
            .unwrap_or_else(|| snapshot(&self.shared.cfg));
        let window_end = self.window_end.unwrap_or(end.at).max(start.at);
        Window {
            baseline: self.baseline.clone(),
            measured: window_end - start.at,
            start,
            end,
            connect_time: self.connect_time,
            samples,
            open_at_end: self.open_at_end,
        }
    }
}

impl Drop for Harness {
    fn drop(&mut self) {
        if let Some((h, pb)) = self.sampler.take() {
            h.abort();
            pb.finish_and_clear();
        }
        self.shared.phase.send_replace(Phase::Stop);
    }
}
