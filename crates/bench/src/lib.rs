//! # iolite-bench
//!
//! Benchmarks for iolite:
//!
//! - `benches/codec.rs` compares the `iolite-ws-proto` codec with `tungstenite` and
//!   `fastwebsockets` (Criterion; see `docs/benchmarks.md`).
//! - The `iolite-bench` binary is a load generator for WebSocket and Socket.IO servers:
//!   scenarios `echo`, `fanout`, `burst`, `idle`, `churn` and `chat` over raw WebSocket,
//!   Socket.IO over WebSocket, or Socket.IO over long-polling, against any server that
//!   implements the contract of `docs/bench-contract.md` (`examples/bench_server.rs` for
//!   iolite). It reports HDR latency percentiles, throughput, loss and order, its own
//!   CPU use, and with `--server-pid` the server's CPU time per message and memory.
//!
//! ```no_run
//! # async fn f() -> Result<(), Box<dyn std::error::Error>> {
//! use clap::Parser;
//! use iolite_bench::options::{Cli, RunConfig};
//!
//! let cli = Cli::try_parse_from(["iolite-bench", "echo", "--url", "ws://127.0.0.1:3000", "-c", "10", "--duration", "2"])?;
//! let cfg = RunConfig::from_command(&cli.command).ok_or("not a run")??;
//! let report = iolite_bench::run(cfg).await;
//! println!("{}", report.text());
//! # Ok(()) }
//! ```

pub mod conn;
pub mod harness;
pub mod options;
pub mod payload;
pub mod plot;
pub mod procfs;
pub mod report;
pub mod scenario;
pub mod stats;

use options::{RunConfig, Scenario};
use report::Report;

/// Runs a scenario to the end and reports. Must run inside a multi-threaded tokio
/// runtime (the connections' tasks are spread over its workers).
pub async fn run(cfg: RunConfig) -> Report {
    let started = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    // Start the payload clock before anything is timed.
    payload::now_ns();
    let scenario = cfg.scenario;
    let mut h = harness::Harness::new(cfg);
    let outcome = match scenario {
        Scenario::Echo => scenario::echo::run(&mut h).await,
        Scenario::Fanout | Scenario::Burst => scenario::fanout::run(&mut h).await,
        Scenario::Idle => scenario::idle::run(&mut h).await,
        Scenario::Churn => scenario::churn::run(&mut h).await,
        Scenario::Chat => scenario::chat::run(&mut h).await,
    };
    Report::build(&h, outcome, started)
}
