//! Redis Sentinel: nodes given `redis+sentinel://sentinel/master-name` connect to the
//! master Sentinel names, and follow a failover to the promoted replica.

#![allow(clippy::unwrap_used)] // test helpers: a failure is the test failing

mod common;

use std::process::{Child, Command, Stdio};
use std::time::Duration;

use common::*;

/// A `redis-server` of ours (master or replica), killed when dropped.
struct Proc(Child);

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn spawn(args: &[&str]) -> Proc {
    Proc(
        Command::new("redis-server")
            .args(args)
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("redis-server on PATH (Debian: apt-get install redis-server)"),
    )
}

fn wait_ping(port: u16) {
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while !ping(port) {
        assert!(
            std::time::Instant::now() < deadline,
            "nothing answers on {port}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn server(port: u16, replica_of: Option<u16>) -> Proc {
    let p = port.to_string();
    let mut args = vec![
        "--port",
        &p,
        "--bind",
        "127.0.0.1",
        "--save",
        "",
        "--appendonly",
        "no",
    ];
    let master;
    if let Some(m) = replica_of {
        master = m.to_string();
        args.extend(["--replicaof", "127.0.0.1", &master]);
    }
    let proc = spawn(&args);
    wait_ping(port);
    proc
}

/// Polls `f` until it returns true, failing with `what` after 20 s (a failover takes a few
/// seconds on a loaded machine).
async fn until<F, Fut>(what: &str, mut f: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while !f().await {
        assert!(tokio::time::Instant::now() < deadline, "timed out: {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Whether a broadcast from `a` reaches `on_b` (another node's client) within 20 s of
/// trying: one sent while a link is being made may be lost, as with any Redis outage.
async fn crosses(a: &IoNode, on_b: &iolite_client::Socket, name: &str) -> bool {
    for i in 0..100 {
        // Refused while this node's link is still down: try again.
        let _ = a.io.to("r").emit(name, &i);
        let got = tokio::time::timeout(Duration::from_millis(200), on_b.next_event()).await;
        if matches!(got, Ok(Some(ev)) if ev.name == name) {
            return true;
        }
    }
    false
}

/// `redis-cli`-free queries: a command's reply as a string, over a plain connection.
async fn query(port: u16, args: &[&str]) -> String {
    let client = redis::Client::open(format!("redis://127.0.0.1:{port}/")).unwrap();
    let mut c = client.get_multiplexed_async_connection().await.unwrap();
    let mut cmd = redis::cmd(args[0]);
    for a in &args[1..] {
        cmd.arg(*a);
    }
    let v: redis::Value = cmd.query_async(&mut c).await.unwrap();
    format!("{v:?}")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nodes_find_the_master_through_sentinel_and_follow_a_failover() {
    let (mport, rport, sport) = (free_port(), free_port(), free_port());
    let master = server(mport, None);
    let _replica = server(rport, Some(mport));
    until("the replica is connected", || async move {
        query(mport, &["INFO", "replication"])
            .await
            .contains("connected_slaves:1")
    })
    .await;

    // Sentinel rewrites its configuration file: a fresh one per test.
    let dir = std::env::temp_dir().join(format!("iolite-sentinel-{}-{sport}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let conf = dir.join("sentinel.conf");
    std::fs::write(
        &conf,
        format!(
            "port {sport}\nbind 127.0.0.1\ndir {}\n\
             sentinel monitor mymaster 127.0.0.1 {mport} 1\n\
             sentinel down-after-milliseconds mymaster 2000\n\
             sentinel failover-timeout mymaster 3000\n",
            dir.display()
        ),
    )
    .unwrap();
    let _sentinel = spawn(&[conf.to_str().unwrap(), "--sentinel"]);
    wait_ping(sport);
    until("Sentinel knows the replica", || async move {
        query(sport, &["SENTINEL", "replicas", "mymaster"])
            .await
            .contains(&rport.to_string())
    })
    .await;

    let url = format!("redis+sentinel://127.0.0.1:{sport}/mymaster");
    let a = IoNode::start_url(&url, "a", Default::default()).await;
    let b = IoNode::start_url(&url, "b", Default::default()).await;
    let on_b = client(&b.url(), "bob", &["r"]).await;
    assert!(
        crosses(&a, &on_b, "hello").await,
        "no broadcast crossed through the master"
    );

    // The master dies: Sentinel promotes the replica, the nodes reconnect to it.
    drop(master);
    until("Sentinel promotes the replica", || async move {
        query(sport, &["SENTINEL", "get-master-addr-by-name", "mymaster"])
            .await
            .contains(&rport.to_string())
    })
    .await;
    until("the node publishes again", || {
        let io = a.io.clone();
        async move { io.to("r").emit("after", &2).is_ok() }
    })
    .await;
    // Broadcasts sent before both links were back may be lost (as with one Redis that
    // restarts).
    assert!(
        crosses(&a, &on_b, "after").await,
        "no broadcast crossed after the failover"
    );
    assert!(query(rport, &["ROLE"]).await.contains("master"));
    let _ = std::fs::remove_dir_all(&dir);
}
