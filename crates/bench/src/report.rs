//! The results of a run: JSON for scripts, text for people.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::atomic::Ordering;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::harness::{fmt_us, si, Harness, Sample};
use crate::options::Load;
use crate::procfs::ProcSample;
use crate::stats::{Latency, OrderTotals};

/// Server CPU time below which a per-message CPU figure is flagged as too coarse.
const MIN_RANKED_CPU_S: f64 = 0.1;

/// What a scenario counted, for [`Report::build`].
#[derive(Debug, Default)]
pub struct Outcome {
    /// Messages sent (round trips asked, messages published, cycles started, actions).
    pub sent: u64,
    /// What arrived and was measured (round trips, deliveries, completed cycles).
    pub received: u64,
    /// Deliveries expected (fanout, burst).
    pub expected: Option<u64>,
    /// Order and duplicates (fanout, burst, echo).
    pub order: Option<OrderTotals>,
    /// The count the server's CPU time is divided by for `cpu_us_per_message`.
    pub messages: u64,
    /// The count for `cpu_us_per_delivery`, when deliveries differ from messages.
    pub deliveries: Option<u64>,
    /// Subscribers per room (fanout, burst, chat on average).
    pub recipients_per_message: Option<f64>,
    /// Scenario-specific figures.
    pub extra: BTreeMap<String, Value>,
}

/// Connections of a run.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct Connections {
    /// Asked for (fanout and burst: subscribers plus publishers).
    pub target: usize,
    /// Opened and set up.
    pub opened: usize,
    /// Failed to open or set up.
    pub failed: usize,
    /// Dropped after opening, before the end.
    pub dropped: u64,
    /// How long opening them took, seconds.
    pub connect_s: f64,
    /// The open-files limit of the generator.
    pub nofile_limit: Option<u64>,
    /// Connections the machine dropped from a full listen queue during the run
    /// (machine-wide counter; on loopback, the server's backlog was too small).
    pub listen_overflows: Option<u64>,
}

/// The server's resources over the measured phase (from /proc); with several
/// --server-pid (the nodes of a cluster), the sums over them.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct ServerStats {
    /// Its pid (the first, with several).
    pub pid: u32,
    /// User + system CPU seconds over the measured phase.
    pub cpu_s: f64,
    /// Of one core, averaged over the measured phase.
    pub cpu_percent: f64,
    /// CPU microseconds per message sent (the ranking figure for echo and churn).
    pub cpu_us_per_message: Option<f64>,
    /// CPU microseconds per delivery (the ranking figure for fanout, burst and chat).
    pub cpu_us_per_delivery: Option<f64>,
    /// RSS before the generator connected, bytes.
    pub rss_baseline_bytes: u64,
    /// RSS when the measured phase began.
    pub rss_start_bytes: u64,
    /// RSS when it ended.
    pub rss_end_bytes: u64,
    /// The highest RSS since the server started (`VmHWM`), read at the end: the figure for
    /// a burst, whose queues may have drained by then.
    #[serde(default)]
    pub rss_peak_bytes: u64,
    /// (end − baseline) / connections open at the end.
    pub rss_per_connection_bytes: Option<f64>,
    /// Each process on its own, in the order of --server-pid.
    #[serde(default)]
    pub processes: Vec<ProcStats>,
}

/// One process's resources over the measured phase: a node of the server, or a
/// --watch-pid.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct ProcStats {
    /// Its pid.
    pub pid: u32,
    /// User + system CPU seconds over the measured phase.
    pub cpu_s: f64,
    /// Of one core, averaged over the measured phase.
    pub cpu_percent: f64,
    /// CPU microseconds per message sent.
    pub cpu_us_per_message: Option<f64>,
    /// CPU microseconds per delivery (fanout, burst, chat).
    pub cpu_us_per_delivery: Option<f64>,
    /// RSS before the generator connected, bytes.
    pub rss_baseline_bytes: u64,
    /// RSS when the measured phase ended.
    pub rss_end_bytes: u64,
}

impl ProcStats {
    fn new(pid: u32, [b, s, e]: [ProcSample; 3], wall: f64, o: &Outcome) -> Self {
        let cpu = (e.cpu_s - s.cpu_s).max(0.0);
        let per = |n: u64| (n > 0).then(|| cpu * 1e6 / n as f64);
        Self {
            pid,
            cpu_s: cpu,
            cpu_percent: if wall > 0.0 { cpu / wall * 100.0 } else { 0.0 },
            cpu_us_per_message: per(o.messages),
            cpu_us_per_delivery: o.deliveries.and_then(per),
            rss_baseline_bytes: b.rss_bytes,
            rss_end_bytes: e.rss_bytes,
        }
    }
}

/// Samples of the --server-pid processes `pids` at baseline, start and end; `None` if any
/// is missing.
fn samples_of(pids: &[u32], w: &crate::harness::Window) -> Option<Vec<(u32, [ProcSample; 3])>> {
    pids.iter()
        .enumerate()
        .map(|(k, &pid)| {
            let at = |s: &crate::harness::Snapshot| s.servers.get(k).copied().flatten();
            Some((pid, [at(&w.baseline)?, at(&w.start)?, at(&w.end)?]))
        })
        .collect()
}

/// The generator's own resources over the measured phase.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct GeneratorStats {
    /// Tokio worker threads.
    pub threads: usize,
    /// CPUs of the machine.
    pub cpus: usize,
    /// User + system CPU seconds over the measured phase.
    pub cpu_s: f64,
    /// Of one core.
    pub cpu_percent: f64,
    /// CPU time over (wall time × worker threads): near 1, the generator may have been
    /// the bottleneck.
    pub busy_fraction: f64,
    /// RSS at the end, bytes.
    pub rss_end_bytes: u64,
    /// Said when the generator, or the machine, looks saturated.
    pub warning: Option<String>,
}

/// The results of one run; `--json` writes this.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct Report {
    /// `iolite-bench <version>`.
    pub tool: String,
    /// `--label`.
    pub label: Option<String>,
    /// The scenario.
    pub scenario: String,
    /// ws, sio or sio-polling.
    pub protocol: String,
    /// Open loop at a rate, closed loop, burst, or no sends.
    pub load: String,
    /// `--url`.
    pub url: String,
    /// Every option, as validated.
    pub options: Value,
    /// Unix time at the start.
    pub started_unix_s: u64,
    /// Connections.
    pub connections: Connections,
    /// Subscribers per room.
    pub recipients_per_message: Option<f64>,
    /// From the start of the measured phase to the end of the drain, seconds.
    pub measured_s: f64,
    /// Sent.
    pub sent: u64,
    /// Arrived (counted once).
    pub received: u64,
    /// Expected deliveries.
    pub expected: Option<u64>,
    /// expected − received.
    pub lost: Option<u64>,
    /// Arrived more than once.
    pub duplicates: Option<u64>,
    /// Arrived after a later one from the same sender.
    pub reordered: Option<u64>,
    /// sent / measured_s.
    pub sent_per_s: f64,
    /// received / measured_s.
    pub received_per_s: f64,
    /// Latency of what arrived (round trip, delivery, or cycle), µs.
    pub latency_us: Option<Latency>,
    /// Connect latency (churn), µs.
    pub connect_latency_us: Option<Latency>,
    /// Errors in all.
    pub errors: u64,
    /// Errors by kind.
    pub error_kinds: BTreeMap<String, u64>,
    /// The server, with --server-pid.
    pub server: Option<ServerStats>,
    /// Each --watch-pid over the same window (not counted in `server`).
    #[serde(default)]
    pub watched: Vec<ProcStats>,
    /// The generator.
    pub generator: GeneratorStats,
    /// Scenario-specific figures.
    pub extra: BTreeMap<String, Value>,
    /// Per-second throughput and latency.
    pub timeline: Vec<Sample>,
}

impl Report {
    /// Assembles the report of a finished run.
    pub fn build(h: &Harness, o: Outcome, started_unix_s: u64) -> Self {
        let sh = h.shared();
        let cfg = h.cfg();
        let w = h.window();
        let secs = w.measured.as_secs_f64();
        let per_s = |n: u64| if secs > 0.0 { n as f64 / secs } else { 0.0 };
        let open_end = w.open_at_end.max(0) as u64;
        let wall = (w.end.at - w.start.at).as_secs_f64();
        // A cluster is one server: its nodes' CPU time and RSS add up.
        let server = samples_of(&cfg.server_pids, &w)
            .filter(|v| !v.is_empty())
            .map(|v| {
                let sum = |k: usize| ProcSample {
                    cpu_s: v.iter().map(|(_, s)| s[k].cpu_s).sum(),
                    rss_bytes: v.iter().map(|(_, s)| s[k].rss_bytes).sum(),
                    peak_rss_bytes: v.iter().map(|(_, s)| s[k].peak_rss_bytes).sum(),
                };
                let (b, s, e) = (sum(0), sum(1), sum(2));
                let total = ProcStats::new(v[0].0, [b, s, e], wall, &o);
                ServerStats {
                    pid: total.pid,
                    cpu_s: total.cpu_s,
                    cpu_percent: total.cpu_percent,
                    cpu_us_per_message: total.cpu_us_per_message,
                    cpu_us_per_delivery: total.cpu_us_per_delivery,
                    rss_baseline_bytes: b.rss_bytes,
                    rss_start_bytes: s.rss_bytes,
                    rss_end_bytes: e.rss_bytes,
                    rss_peak_bytes: e.peak_rss_bytes,
                    rss_per_connection_bytes: (open_end > 0)
                        .then(|| (e.rss_bytes as f64 - b.rss_bytes as f64) / open_end as f64),
                    processes: v
                        .iter()
                        .map(|&(pid, s)| ProcStats::new(pid, s, wall, &o))
                        .collect(),
                }
            });
        let watched: Vec<ProcStats> = cfg
            .watch_pids
            .iter()
            .enumerate()
            .filter_map(|(k, &pid)| {
                let at = |s: &crate::harness::Snapshot| s.watched.get(k).copied().flatten();
                Some(ProcStats::new(
                    pid,
                    [at(&w.baseline)?, at(&w.start)?, at(&w.end)?],
                    wall,
                    &o,
                ))
            })
            .collect();
        let threads = tokio::runtime::Handle::try_current()
            .map(|h| h.metrics().num_workers())
            .unwrap_or(1);
        let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
        let (gcpu, grss) = match (w.start.generator, w.end.generator) {
            (Some(s), Some(e)) => ((e.cpu_s - s.cpu_s).max(0.0), e.rss_bytes),
            _ => (0.0, 0),
        };
        let busy = if wall > 0.0 {
            gcpu / (wall * threads.min(cpus) as f64)
        } else {
            0.0
        };
        let mut warning = None;
        // /proc counts CPU time in clock ticks (10 ms): under ten of them a per-message
        // figure is mostly rounding, and 0 says nothing.
        let ranks_by_cpu = cfg.scenario != crate::options::Scenario::Idle && o.received > 0;
        let coarse = server
            .as_ref()
            .filter(|s| ranks_by_cpu && s.cpu_s < MIN_RANKED_CPU_S);
        if let Some(s) = coarse {
            warning = Some(format!(
                "the server used {:.2} s of CPU, under ten of /proc's 10 ms ticks: its CPU per message is too coarse to rank (run longer or send more)",
                s.cpu_s
            ));
        } else if busy > 0.8 {
            warning = Some(format!(
                "the generator kept {:.0}% of its {} worker threads busy: it may have limited these results",
                busy * 100.0,
                threads.min(cpus)
            ));
        } else if let Some(s) = &server {
            let others: f64 = watched.iter().map(|p| p.cpu_s).sum();
            let machine = (gcpu + s.cpu_s + others) / (wall * cpus as f64);
            if machine > 0.9 && s.pid != std::process::id() {
                warning = Some(format!(
                    "server and generator together used {:.0}% of the machine's {cpus} CPUs: both were short of CPU",
                    machine * 100.0
                ));
            }
        }
        let (lost, duplicates, reordered) = match o.order {
            Some(t) => (
                o.expected.map(|e| e.saturating_sub(t.unique)),
                Some(t.duplicates),
                Some(t.reordered),
            ),
            None => (o.expected.map(|e| e.saturating_sub(o.received)), None, None),
        };
        Self {
            tool: format!("iolite-bench {}", env!("CARGO_PKG_VERSION")),
            label: cfg.label.clone(),
            scenario: cfg.scenario.as_str().to_owned(),
            protocol: cfg.endpoint.protocol.as_str().to_owned(),
            load: load_name(&cfg.load),
            url: cfg.url.clone(),
            options: serde_json::to_value(cfg).unwrap_or(Value::Null),
            started_unix_s,
            connections: Connections {
                target: o
                    .extra
                    .get("connections_target")
                    .and_then(Value::as_u64)
                    .map_or(cfg.connections, |v| v as usize),
                opened: sh.ready.load(Ordering::Relaxed),
                failed: sh.failed.load(Ordering::Relaxed),
                dropped: sh.dropped.load(Ordering::Relaxed),
                connect_s: w.connect_time.as_secs_f64(),
                nofile_limit: crate::procfs::nofile_limit(),
                listen_overflows: match (w.baseline.listen_overflows, w.end.listen_overflows) {
                    (Some(a), Some(b)) => Some(b.saturating_sub(a)),
                    _ => None,
                },
            },
            recipients_per_message: o.recipients_per_message,
            measured_s: secs,
            sent: o.sent,
            received: o.received,
            expected: o.expected,
            lost,
            duplicates,
            reordered,
            sent_per_s: per_s(o.sent),
            received_per_s: per_s(o.received),
            latency_us: Latency::from_histogram(&sh.rec.merged()),
            connect_latency_us: sh
                .connect_rec
                .as_ref()
                .and_then(|r| Latency::from_histogram(&r.merged())),
            errors: sh.errors.total(),
            error_kinds: sh.errors.kinds(),
            server,
            watched,
            generator: GeneratorStats {
                threads,
                cpus,
                cpu_s: gcpu,
                cpu_percent: if wall > 0.0 { gcpu / wall * 100.0 } else { 0.0 },
                busy_fraction: busy,
                rss_end_bytes: grss,
                warning,
            },
            extra: o.extra,
            timeline: w.samples,
        }
    }

    /// A summary for people.
    pub fn text(&self) -> String {
        let mut s = String::new();
        let opts = &self.options;
        let _ = writeln!(
            s,
            "iolite-bench {} over {} at {}{}: {} B payload, {}",
            self.scenario,
            self.protocol,
            self.url,
            self.label
                .as_ref()
                .map_or(String::new(), |l| format!(" [{l}]")),
            opts.get("payload").and_then(Value::as_u64).unwrap_or(0),
            self.load,
        );
        let c = &self.connections;
        if self.scenario == "churn" {
            let _ = write!(
                s,
                "connections  one per cycle (sent: cycles started, received: cycles completed)"
            );
        } else {
            let _ = write!(
                s,
                "connections  {} of {} opened in {:.2} s",
                c.opened, c.target, c.connect_s
            );
        }
        if c.failed > 0 {
            let _ = write!(s, ", {} FAILED", c.failed);
        }
        if c.dropped > 0 {
            let _ = write!(s, ", {} dropped", c.dropped);
        }
        if let Some(r) = self.recipients_per_message {
            let _ = write!(s, "; {} recipients per message", si(r));
        }
        s.push('\n');
        if let Some(n) = c.listen_overflows.filter(|&n| n > 0) {
            let _ = writeln!(
                s,
                "WARNING      {n} connects overflowed a listen queue on this machine: the server's backlog is too small for --connect-concurrency (each costs a 1 s SYN retry)"
            );
        }
        let _ = writeln!(
            s,
            "sent         {} ({}/s over {:.2} s)",
            self.sent,
            si(self.sent_per_s),
            self.measured_s
        );
        let _ = write!(
            s,
            "received     {} ({}/s)",
            self.received,
            si(self.received_per_s)
        );
        if let Some(e) = self.expected {
            let _ = write!(s, ", expected {e}");
        }
        if let Some(l) = self.lost {
            let _ = write!(s, ", lost {l}");
        }
        if let Some(d) = self.duplicates {
            let _ = write!(s, ", duplicates {d}");
        }
        if let Some(r) = self.reordered {
            let _ = write!(s, ", reordered {r}");
        }
        s.push('\n');
        let lat = |s: &mut String, name: &str, l: &Latency| {
            let _ = writeln!(
                s,
                "{name:<12} p50 {}  p90 {}  p99 {}  p99.9 {}  max {}  ({} samples)",
                fmt_us(l.p50),
                fmt_us(l.p90),
                fmt_us(l.p99),
                fmt_us(l.p99_9),
                fmt_us(l.max),
                l.count
            );
        };
        if let Some(l) = &self.latency_us {
            lat(&mut s, "latency", l);
        }
        if let Some(l) = &self.connect_latency_us {
            lat(&mut s, "connect", l);
        }
        for (k, v) in &self.extra {
            if k != "connections_target" {
                let _ = writeln!(s, "{k:<12} {v}");
            }
        }
        let _ = writeln!(s, "errors       {}", self.errors);
        for (k, v) in &self.error_kinds {
            let _ = write!(s, "  {v} × {k}");
            if k.contains("os error 24") {
                let _ = write!(
                    s,
                    "  (too many open files: the limit is {}; raise `ulimit -n`)",
                    c.nofile_limit.map_or("unknown".into(), |n| n.to_string())
                );
            } else if k.contains("os error 99") {
                let _ = write!(
                    s,
                    "  (out of local ports: use fewer connections per address)"
                );
            }
            s.push('\n');
        }
        if let Some(sv) = &self.server {
            let pids = if sv.processes.len() > 1 {
                let list: Vec<_> = sv.processes.iter().map(|p| p.pid.to_string()).collect();
                format!("pids {} together", list.join("+"))
            } else {
                format!("pid {}", sv.pid)
            };
            let _ = write!(
                s,
                "server       {pids}: {:.2} s CPU ({:.0}% of a core)",
                sv.cpu_s, sv.cpu_percent
            );
            if let Some(v) = sv.cpu_us_per_message {
                let _ = write!(s, ", {v:.2} µs per message");
            }
            if let Some(v) = sv.cpu_us_per_delivery {
                let _ = write!(s, ", {v:.3} µs per delivery");
            }
            let _ = write!(
                s,
                "; RSS {} → {} → {}, peak {}",
                mib(sv.rss_baseline_bytes),
                mib(sv.rss_start_bytes),
                mib(sv.rss_end_bytes),
                mib(sv.rss_peak_bytes)
            );
            if let Some(p) = sv.rss_per_connection_bytes {
                let _ = write!(s, " ({} per connection)", kib(p));
            }
            s.push('\n');
            if sv.processes.len() > 1 {
                for p in &sv.processes {
                    proc_line(&mut s, "  node", p);
                }
            }
        }
        for p in &self.watched {
            proc_line(&mut s, "watched", p);
        }
        let g = &self.generator;
        let _ = writeln!(
            s,
            "generator    {:.2} s CPU ({:.0}% of a core, {:.0}% of {} threads), RSS {}",
            g.cpu_s,
            g.cpu_percent,
            g.busy_fraction * 100.0,
            g.threads,
            mib(g.rss_end_bytes)
        );
        if let Some(w) = &g.warning {
            let _ = writeln!(s, "WARNING      {w}");
        }
        s
    }
}

fn proc_line(s: &mut String, name: &str, p: &ProcStats) {
    let _ = write!(
        s,
        "{name:<12} pid {}: {:.2} s CPU ({:.0}% of a core)",
        p.pid, p.cpu_s, p.cpu_percent
    );
    if let Some(v) = p.cpu_us_per_delivery {
        let _ = write!(s, ", {v:.3} µs per delivery");
    } else if let Some(v) = p.cpu_us_per_message {
        let _ = write!(s, ", {v:.2} µs per message");
    }
    let _ = writeln!(s, "; RSS {}", mib(p.rss_end_bytes));
}

fn mib(b: u64) -> String {
    format!("{:.1} MiB", b as f64 / (1 << 20) as f64)
}

fn kib(b: f64) -> String {
    format!("{:.1} KiB", b / 1024.0)
}

/// The load's name in results.
pub fn load_name(l: &Load) -> String {
    match l {
        Load::Rate(r) => format!("open loop {}/s", si(*r)),
        Load::Closed { in_flight: 1 } => "closed loop".into(),
        Load::Closed { in_flight } => format!("closed loop, {in_flight} in flight"),
        Load::Burst => "burst".into(),
        Load::None => "no sends".into(),
    }
}
