//! The load generator against the real bench_server (examples/bench_server.rs), started
//! in this process on free ports: counts must be exact, and bad options must say why.
//! Nothing here asserts speed.
#![allow(clippy::unwrap_used)] // test helpers: a failure is the test failing

#[path = "../examples/bench_server.rs"]
#[allow(dead_code)]
mod bench_server;

use std::process::Command;

use clap::Parser;
use iolite_bench::options::{Cli, RunConfig};
use iolite_bench::report::Report;

struct Servers {
    ws: String,
    sio: String,
}

async fn start() -> Servers {
    let ws = bench_server::listen("127.0.0.1", 0).await.unwrap();
    let sio = bench_server::listen("127.0.0.1", 0).await.unwrap();
    let s = Servers {
        ws: format!("ws://{}", ws.local_addr().unwrap()),
        sio: format!("http://{}", sio.local_addr().unwrap()),
    };
    tokio::spawn(bench_server::serve_ws(ws));
    tokio::spawn(bench_server::serve_sio(sio));
    s
}

fn config(args: &[&str]) -> RunConfig {
    let mut all = vec!["iolite-bench"];
    all.extend_from_slice(args);
    all.push("--no-progress");
    let cli = Cli::try_parse_from(&all).unwrap();
    RunConfig::from_command(&cli.command).unwrap().unwrap()
}

async fn run(args: &[&str]) -> Report {
    let r = iolite_bench::run(config(args)).await;
    eprintln!("{}", r.text());
    r
}

fn assert_clean(r: &Report) {
    assert_eq!(r.errors, 0, "{:?}", r.error_kinds);
    assert_eq!(r.connections.failed, 0);
    assert_eq!(r.connections.dropped, 0);
    assert_eq!(r.connections.opened, r.connections.target);
}

/// Every message came back exactly once, in order, and was timed.
fn assert_exact(r: &Report) {
    assert_clean(r);
    assert!(r.sent > 0);
    assert_eq!(r.expected, Some(r.received));
    assert_eq!(r.lost, Some(0));
    assert_eq!(r.duplicates, Some(0));
    assert_eq!(r.reordered, Some(0));
    assert_eq!(r.latency_us.as_ref().unwrap().count, r.received);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn echo_closed_loop_over_ws_and_sio() {
    let s = start().await;
    for (url, proto) in [(&s.ws, "ws"), (&s.sio, "sio"), (&s.sio, "sio-polling")] {
        let r = run(&[
            "echo",
            "--url",
            url,
            "--protocol",
            proto,
            "-c",
            "4",
            "--duration",
            "0.4",
        ])
        .await;
        assert_exact(&r);
        assert_eq!(r.received, r.sent, "{proto}");
        assert_eq!(r.protocol, proto);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn echo_open_loop_sends_at_the_rate() {
    let s = start().await;
    for (url, proto) in [(&s.ws, "ws"), (&s.sio, "sio")] {
        // 400/s over 5 connections for 1 s: 80 scheduled sends each.
        let r = run(&[
            "echo",
            "--url",
            url,
            "--protocol",
            proto,
            "-c",
            "5",
            "--rate",
            "400",
            "--duration",
            "1",
        ])
        .await;
        assert_exact(&r);
        assert_eq!(r.sent, 400, "{proto}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fanout_50_subscribers_in_5_rooms_gets_everything_once_in_order() {
    let s = start().await;
    for (url, proto) in [(&s.ws, "ws"), (&s.sio, "sio")] {
        let r = run(&[
            "fanout",
            "--url",
            url,
            "--protocol",
            proto,
            "-c",
            "50",
            "--rooms",
            "5",
            "--rate",
            "300",
            "--duration",
            "1",
        ])
        .await;
        assert_exact(&r);
        // 5 publishers, one per room of 10 subscribers.
        assert_eq!(r.connections.target, 55);
        assert_eq!(r.recipients_per_message, Some(10.0));
        assert_eq!(r.received, r.sent * 10, "{proto}");
        assert_eq!(r.sent, 300, "{proto}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fanout_closed_loop_and_polling() {
    let s = start().await;
    let r = run(&[
        "fanout",
        "--url",
        &s.sio,
        "--protocol",
        "sio",
        "-c",
        "6",
        "--rooms",
        "2",
        "--publishers",
        "4",
        "--closed-loop",
        "--duration",
        "0.5",
    ])
    .await;
    assert_exact(&r);
    // Publishers 0 and 2 send to room 0, 1 and 3 to room 1: three subscribers each.
    assert_eq!(r.received, r.sent * 3);
    let r = run(&[
        "fanout",
        "--url",
        &s.sio,
        "--protocol",
        "sio-polling",
        "-c",
        "6",
        "--rooms",
        "2",
        "--rate",
        "100",
        "--duration",
        "0.5",
    ])
    .await;
    assert_exact(&r);
    assert_eq!(r.received, r.sent * 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn burst_loses_and_reorders_nothing() {
    let s = start().await;
    for (url, proto) in [(&s.ws, "ws"), (&s.sio, "sio")] {
        let r = run(&[
            "burst",
            "--url",
            url,
            "--protocol",
            proto,
            "-c",
            "50",
            "--rooms",
            "5",
            "--messages",
            "300",
        ])
        .await;
        assert_exact(&r);
        assert_eq!(r.sent, 5 * 300);
        assert_eq!(r.received, 5 * 300 * 10, "{proto}");
    }
}

/// /proc counts CPU in 10 ms ticks: a server that used less than ten of them over the
/// measured phase gets a warning instead of a silent 0 µs per delivery. The "server" here is
/// a `sleep`, which uses none; an idle run (ranked by memory) is not warned about.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cpu_too_small_to_rank_is_flagged() {
    let s = start().await;
    let mut sleeper = std::process::Command::new("sleep")
        .arg("60")
        .spawn()
        .expect("sleep runs");
    let pid = sleeper.id().to_string();
    let burst = run(&[
        "burst",
        "--url",
        &s.ws,
        "--protocol",
        "ws",
        "-c",
        "10",
        "--messages",
        "20",
        "--server-pid",
        &pid,
    ])
    .await;
    assert_exact(&burst);
    assert_eq!(burst.server.as_ref().map(|s| s.cpu_s), Some(0.0));
    let warning = burst.generator.warning.clone().unwrap_or_default();
    assert!(warning.contains("too coarse to rank"), "{warning:?}");
    let idle = run(&[
        "idle",
        "--url",
        &s.ws,
        "--protocol",
        "ws",
        "-c",
        "10",
        "--duration",
        "0.3",
        "--server-pid",
        &pid,
    ])
    .await;
    assert_clean(&idle);
    let warning = idle.generator.warning.clone().unwrap_or_default();
    assert!(!warning.contains("too coarse"), "{warning:?}");
    let _ = sleeper.kill();
    let _ = sleeper.wait();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_reads_the_server_from_proc() {
    let s = start().await;
    let pid = std::process::id().to_string();
    for (url, proto) in [(&s.ws, "ws"), (&s.sio, "sio")] {
        let r = run(&[
            "idle",
            "--url",
            url,
            "--protocol",
            proto,
            "-c",
            "40",
            "--duration",
            "0.3",
            "--heartbeat",
            "0.1",
            "--server-pid",
            &pid,
        ])
        .await;
        assert_clean(&r);
        assert_eq!(r.sent, 0);
        assert_eq!(r.extra["held_at_end"], 40);
        let sv = r.server.as_ref().expect("server stats with --server-pid");
        assert_eq!(sv.pid, std::process::id());
        assert!(sv.rss_baseline_bytes > 0 && sv.rss_start_bytes > 0 && sv.rss_end_bytes > 0);
        assert!(sv.cpu_s >= 0.0);
        assert!(sv.rss_per_connection_bytes.is_some());
        assert!(r.generator.rss_end_bytes > 0);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn churn_and_chat_run_clean() {
    let s = start().await;
    for (url, proto) in [(&s.ws, "ws"), (&s.sio, "sio")] {
        let r = run(&[
            "churn",
            "--url",
            url,
            "--protocol",
            proto,
            "-c",
            "4",
            "--duration",
            "0.4",
        ])
        .await;
        assert_eq!(r.errors, 0, "{:?}", r.error_kinds);
        assert!(r.received > 0);
        assert_eq!(r.received, r.sent);
        assert_eq!(r.connect_latency_us.as_ref().unwrap().count, r.received);
    }
    let r = run(&[
        "chat",
        "--url",
        &s.sio,
        "--protocol",
        "sio",
        "-c",
        "40",
        "--rooms",
        "4",
        "--rate",
        "200",
        "--duration",
        "0.6",
    ])
    .await;
    assert_clean(&r);
    assert!(r.sent > 0 && r.received > 0);
    let sent =
        r.extra["messages_sent"].as_u64().unwrap() + r.extra["typing_sent"].as_u64().unwrap();
    assert_eq!(sent, r.sent);
}

fn bench(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_iolite-bench"))
        .args(args)
        .output()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn binary_writes_json_and_svg() {
    let s = start().await;
    let dir = std::env::temp_dir().join(format!("iolite-bench-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let (json, svg, cmp) = (dir.join("r.json"), dir.join("r.svg"), dir.join("cmp.svg"));
    let args: Vec<String> = [
        "fanout",
        "--url",
        &s.ws,
        "-c",
        "20",
        "--rooms",
        "2",
        "--rate",
        "200",
        "--duration",
        "1.2",
        "--label",
        "iolite",
        "--json",
        json.to_str().unwrap(),
        "--plot",
        svg.to_str().unwrap(),
        "--no-progress",
    ]
    .iter()
    .map(|a| a.to_string())
    .collect();
    let out = tokio::task::spawn_blocking(move || {
        let a: Vec<&str> = args.iter().map(String::as_str).collect();
        bench(&a)
    })
    .await
    .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("lost 0"), "{stdout}");

    let v: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    assert_eq!(v["scenario"], "fanout");
    assert_eq!(v["protocol"], "ws");
    assert_eq!(v["label"], "iolite");
    assert_eq!(v["connections"]["opened"], 22);
    assert_eq!(v["lost"], 0);
    assert_eq!(v["reordered"], 0);
    assert_eq!(v["recipients_per_message"], 10.0);
    for k in ["count", "min", "mean", "p50", "p90", "p99", "p99_9", "max"] {
        assert!(v["latency_us"][k].is_number(), "latency_us.{k}");
    }
    for k in [
        "sent",
        "received",
        "expected",
        "errors",
        "sent_per_s",
        "received_per_s",
        "measured_s",
    ] {
        assert!(v[k].is_number(), "{k}");
    }
    assert!(v["generator"]["cpu_s"].is_number());
    assert!(v["options"]["payload"].is_number());
    assert!(!v["timeline"].as_array().unwrap().is_empty());
    // And it reads back as the same structure.
    let _: Report = serde_json::from_value(v).unwrap();

    assert_svg(&std::fs::read_to_string(&svg).unwrap());
    let out = bench(&[
        "plot",
        "--x",
        "recipients",
        "-o",
        cmp.to_str().unwrap(),
        json.to_str().unwrap(),
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = std::fs::read_to_string(&cmp).unwrap();
    assert_svg(&text);
    assert!(text.contains("iolite"));
    let _ = std::fs::remove_dir_all(&dir);
}

fn assert_svg(text: &str) {
    let doc = roxmltree::Document::parse(text).expect("well-formed XML");
    let root = doc.root_element();
    assert_eq!(root.tag_name().name(), "svg");
    assert_eq!(
        root.tag_name().namespace(),
        Some("http://www.w3.org/2000/svg")
    );
    assert!(
        root.descendants()
            .any(|n| n.has_tag_name("polyline") || n.has_tag_name("circle")),
        "nothing drawn"
    );
    assert!(!text.contains("NaN") && !text.contains("inf"));
}

#[test]
fn bad_options_say_what_is_wrong() {
    let cases: &[(&[&str], &str)] = &[
        (&["echo", "--protocol", "foo"], "invalid value 'foo'"),
        (&["echo", "-c", "0"], "--connections must be at least 1"),
        (
            &["echo", "--rate", "0"],
            "--rate 0: must be a positive number",
        ),
        (
            &["echo", "--rate", "10", "--closed-loop"],
            "cannot be used with",
        ),
        (&["echo", "--duration", "ten"], "not a duration"),
        (&["echo", "--url", "localhost:3000"], "--url localhost:3000"),
        (&["echo", "--url", "ws://h:99999"], "port"),
        (
            &["echo", "--url", "ws://h:1,,ws://h:2"],
            "an empty URL in the comma-separated list",
        ),
        (&["echo", "--url", "ws://h:1,h:2"], "--url h:2"),
        (&["echo", "--server-pid", "0"], "not 0"),
        (&["echo", "--watch-pid", "4294967295"], "--watch-pid"),
        (
            &["fanout", "--rooms", "5", "--publishers", "2"],
            "--publishers 2 is less than --rooms 5",
        ),
        (
            &["fanout", "-c", "3", "--rooms", "5"],
            "--rooms 5 is more than --connections 3",
        ),
        (
            &["burst", "--rate", "5"],
            "burst publishes as fast as it can",
        ),
        (&["idle", "--rate", "5"], "idle sends nothing"),
        (&["chat", "--protocol", "ws"], "use --protocol sio"),
        (&["echo", "--payload", "999999999"], "over the limit"),
        (&["echo", "--server-pid", "4294967295"], "/proc/4294967295"),
        (&["plot", "/nonexistent/r.json"], "/nonexistent/r.json"),
        (&["nonsense"], "unrecognized subcommand"),
    ];
    for (args, want) in cases {
        let out = bench(args);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {err}");
        assert!(err.contains(want), "{args:?}: wanted {want:?} in {err}");
    }
}

#[test]
fn refused_connections_are_reported() {
    // A port that was free a moment ago: nothing listens there.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let url = format!("ws://127.0.0.1:{port}");
    let out = bench(&[
        "echo",
        "--url",
        &url,
        "-c",
        "3",
        "--duration",
        "0.2",
        "--no-progress",
    ]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{stdout}");
    assert!(
        stdout.contains("0 of 3 opened") && stdout.contains("3 FAILED"),
        "{stdout}"
    );
    assert!(stdout.contains("3 × connect failed"), "{stdout}");
    assert!(String::from_utf8_lossy(&out.stderr).contains("no connection could be opened"));
}
