//! Fanout over the nodes of a cluster (the `cluster-fanout` scenario of scripts/bench):
//! bench_server nodes in this process on a real `redis-server` of the test's own, the
//! generator spreading subscribers over them with a comma-separated --url, and several
//! --server-pid / --watch-pid. Counts must be exact; nothing here asserts speed.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test helpers: a failure is the test failing

#[path = "../examples/bench_server.rs"]
#[allow(dead_code)]
mod bench_server;

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use clap::Parser;
use iolite_bench::options::{Cli, RunConfig};
use iolite_bench::report::Report;

/// A `redis-server` on a free port without persistence, killed when dropped.
struct Redis {
    child: Child,
    url: String,
}

impl Redis {
    fn start() -> Self {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let child = Command::new("redis-server")
            .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no"])
            .stdout(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| {
                panic!("cannot run `redis-server` ({e}): the cluster test needs it on PATH")
            });
        let deadline = Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "redis-server did not come up");
            std::thread::sleep(Duration::from_millis(20));
        }
        Self {
            child,
            url: format!("redis://127.0.0.1:{port}/"),
        }
    }
}

impl Drop for Redis {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A bench_server Socket.IO node: on the cluster of `redis`, or alone.
async fn node(redis: Option<&str>) -> String {
    let io = match redis {
        Some(url) => bench_server::sio_redis(url).await.unwrap(),
        None => bench_server::sio(),
    };
    let l = bench_server::listen("127.0.0.1", 0).await.unwrap();
    let url = format!("http://{}", l.local_addr().unwrap());
    tokio::spawn(async move { io.serve(l).await });
    url
}

async fn fanout(urls: &str, extra: &[&str]) -> Report {
    let mut args = vec![
        "iolite-bench",
        "fanout",
        "--protocol",
        "sio",
        "--url",
        urls,
        "-c",
        "20",
        "--rate",
        "40",
        "--duration",
        "0.5",
        "--drain",
        "0.5",
        "--no-progress",
    ];
    args.extend_from_slice(extra);
    let cli = Cli::try_parse_from(&args).unwrap();
    let cfg: RunConfig = RunConfig::from_command(&cli.command).unwrap().unwrap();
    let r = iolite_bench::run(cfg).await;
    eprintln!("{}", r.text());
    assert_eq!(r.errors, 0, "{:?}", r.error_kinds);
    assert_eq!(r.connections.opened, 21);
    assert_eq!(r.connections.failed + r.connections.dropped as usize, 0);
    r
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn subscribers_on_every_node_get_every_message() {
    let redis = Redis::start();
    let (a, b) = (node(Some(&redis.url)).await, node(Some(&redis.url)).await);
    let me = std::process::id().to_string();
    let redis_pid = redis.child.id().to_string();
    // This process is both nodes: named twice, it is sampled and summed twice.
    let pids = format!("{me},{me}");
    let r = fanout(
        &format!("{a},{b}"),
        &["--server-pid", &pids, "--watch-pid", &redis_pid],
    )
    .await;
    assert!(r.sent > 0);
    assert_eq!(r.expected, Some(r.sent * 20));
    assert_eq!(r.received, r.sent * 20);
    assert_eq!((r.lost, r.duplicates), (Some(0), Some(0)));

    let sv = r.server.as_ref().expect("server stats with --server-pid");
    assert_eq!(sv.processes.len(), 2);
    assert!(sv.processes.iter().all(|p| p.pid == std::process::id()));
    let rss: u64 = sv.processes.iter().map(|p| p.rss_end_bytes).sum();
    assert_eq!(sv.rss_end_bytes, rss);
    let cpu: f64 = sv.processes.iter().map(|p| p.cpu_s).sum();
    assert!((sv.cpu_s - cpu).abs() < 1e-9, "{} vs {cpu}", sv.cpu_s);
    assert_eq!(r.watched.len(), 1);
    assert_eq!(r.watched[0].pid, redis.child.id());
    assert!(r.watched[0].rss_end_bytes > 0);
    let text = r.text();
    assert!(text.contains(&format!("pids {me}+{me} together")), "{text}");
    assert!(
        text.contains(&format!("watched      pid {redis_pid}")),
        "{text}"
    );
}

/// Round-robin, shown by a second node that is not in the cluster: it holds subscribers
/// 1, 3, 5, ... (half of them), the publisher is on the first node, and exactly the
/// first node's half receives.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn urls_take_connections_in_turn() {
    let redis = Redis::start();
    let (a, alone) = (node(Some(&redis.url)).await, node(None).await);
    let r = fanout(&format!("{a},{alone}"), &[]).await;
    assert!(r.sent > 0);
    assert_eq!(r.expected, Some(r.sent * 20));
    assert_eq!(r.received, r.sent * 10);
    assert_eq!(r.lost, Some(r.sent * 10));
}
