//! `iolite-bench`: the load generator's command line. See `docs/benchmarks.md`.

use std::io::Write as _;
use std::process::ExitCode;

use anyhow::Context as _;
use clap::Parser;
use iolite_bench::options::{Cli, Command, RunConfig};
use iolite_bench::{plot, procfs};

fn main() -> ExitCode {
    let cli = Cli::parse();
    match real_main(cli) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("iolite-bench: {e:#}");
            ExitCode::from(2)
        }
    }
}

fn real_main(cli: Cli) -> anyhow::Result<ExitCode> {
    if let Command::Plot(p) = &cli.command {
        let svg = plot::compare(&p.files, p.x)?;
        std::fs::write(&p.out, svg).with_context(|| format!("writing {}", p.out.display()))?;
        eprintln!("wrote {}", p.out.display());
        return Ok(ExitCode::SUCCESS);
    }
    let Some(cfg) = RunConfig::from_command(&cli.command) else {
        anyhow::bail!("nothing to run");
    };
    let cfg = cfg?;
    let common = match &cli.command {
        Command::Echo(a) => &a.common,
        Command::Fanout(a) => &a.common,
        Command::Burst(a) => &a.common,
        Command::Idle(a) => &a.common,
        Command::Churn(a) => &a.common,
        Command::Chat(a) => &a.common,
        Command::Plot(_) => anyhow::bail!("nothing to run"),
    };
    for &pid in &cfg.server_pids {
        procfs::sample(pid).context("--server-pid")?;
    }
    for &pid in &cfg.watch_pids {
        procfs::sample(pid).context("--watch-pid")?;
    }
    // Thousands of sockets: take every file descriptor the hard limit allows.
    let limit = procfs::raise_nofile_limit()
        .ok()
        .or_else(procfs::nofile_limit);
    let needed = cfg.connections + cfg.publishers + 64;
    let per_conn = if cfg.endpoint.protocol == iolite_bench::options::Protocol::SioPolling {
        2
    } else {
        1
    };
    if let Some(l) = limit {
        if (needed * per_conn) as u64 > l {
            eprintln!(
                "iolite-bench: warning: {} connections need about {} file descriptors, but the limit is {l}; expect \"Too many open files\" failures",
                cfg.connections,
                needed * per_conn
            );
        }
    }
    let threads = common
        .threads
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()));
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(threads)
        .enable_all()
        .build()
        .context("starting the runtime")?;
    let report = rt.block_on(iolite_bench::run(cfg));
    let json_to_stdout = common.json.as_ref().is_some_and(|p| p.as_os_str() == "-");
    if json_to_stdout {
        eprint!("{}", report.text());
    } else {
        print!("{}", report.text());
    }
    if let Some(path) = &common.json {
        let json = serde_json::to_string_pretty(&report)?;
        if path.as_os_str() == "-" {
            let mut out = std::io::stdout().lock();
            writeln!(out, "{json}")?;
        } else {
            std::fs::write(path, json + "\n")
                .with_context(|| format!("writing {}", path.display()))?;
        }
    }
    if let Some(path) = &common.plot {
        std::fs::write(path, plot::timeline(&report))
            .with_context(|| format!("writing {}", path.display()))?;
    }
    // Runtime tasks still closing connections are not worth waiting for.
    rt.shutdown_timeout(std::time::Duration::from_secs(1));
    if report.connections.opened == 0 && report.connections.target > 0 && report.scenario != "churn"
    {
        eprintln!("iolite-bench: no connection could be opened");
        return Ok(ExitCode::from(1));
    }
    Ok(ExitCode::SUCCESS)
}
