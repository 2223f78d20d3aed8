//! The chat in a cluster: two real `iolite` processes sharing a `redis-server` of the
//! test's own (the pub/sub adapter, or the streams adapter) and a fresh PostgreSQL database
//! (the history), with a real Socket.IO client on each. Presence, messages, history,
//! `room:sync` and typing agree across the nodes; `/readyz` and `/metrics` follow the Redis
//! link; with the streams adapter a client whose node went away recovers its session on
//! the other node, with every event it missed. The last test runs two nodes on a real
//! three-master Redis Cluster (`redis+cluster://`).

#![allow(clippy::unwrap_used)] // test helpers: a failure is the test failing

mod pg_common;
mod server_common;

use std::net::{SocketAddr, TcpListener};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use iolite_client::{DisconnectReason, Lifecycle, Manager, Socket, Transport};
use pg_common::TestDb;
use serde_json::{json, Value};
use server_common::{within, Server};

/// A `redis-server` on a free port, killed when dropped.
struct Redis {
    child: Child,
    port: u16,
}

impl Redis {
    async fn start() -> Self {
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        Self::start_on(port).await
    }

    /// Kills it and starts a new, empty one on the same port.
    async fn restart(&mut self) {
        self.kill();
        let new = Self::start_on(self.port).await;
        *self = new;
    }

    async fn start_on(port: u16) -> Self {
        let child = match Command::new("redis-server")
            .args(["--port", &port.to_string()])
            .args(["--bind", "127.0.0.1", "--save", "", "--appendonly", "no"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
        {
            Ok(c) => c,
            Err(e) => panic!(
                "cannot start redis-server ({e}): these tests need it on PATH \
                 (scripts/test installs it; Debian: apt-get install redis-server)"
            ),
        };
        let mut redis = Self { child, port };
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        loop {
            if tokio::net::TcpStream::connect(("127.0.0.1", port))
                .await
                .is_ok()
            {
                return redis;
            }
            if let Ok(Some(status)) = redis.child.try_wait() {
                panic!("redis-server exited at start ({status}) on port {port}");
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "redis-server did not listen on port {port} within 10 s"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/", self.port)
    }

    fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Redis {
    fn drop(&mut self) {
        self.kill();
    }
}

/// A node of the cluster: its own working directory (so its own `data/`), the shared
/// database and Redis.
fn node(db: &TestDb, redis: &Redis) -> Server {
    let redis_url = redis.url();
    Server::start_with(
        &[],
        &[
            ("IOLITE_STORE_KIND", "postgres"),
            ("IOLITE_STORE_URL", &db.url),
            ("IOLITE_CLUSTER_ADAPTER", "redis"),
            ("IOLITE_REDIS_URL", &redis_url),
            ("IOLITE_READY_REQUIRES_REDIS", "true"),
            ("IOLITE_CLUSTER_REQUESTS_TIMEOUT_MS", "2000"),
            ("IOLITE_CHAT_EVENTS_PER_SECOND", "1000"),
        ],
    )
}

/// A node of a cluster on the streams adapter (recovery on, as by default).
fn streams_node(db: &TestDb, redis: &Redis) -> Server {
    let redis_url = redis.url();
    Server::start_with(
        &[],
        &[
            ("IOLITE_STORE_KIND", "postgres"),
            ("IOLITE_STORE_URL", &db.url),
            ("IOLITE_CLUSTER_ADAPTER", "redis-streams"),
            ("IOLITE_REDIS_URL", &redis_url),
            ("IOLITE_CLUSTER_KEY", "iolite-test-stream"),
            ("IOLITE_CLUSTER_STREAM_MAX_LEN", "1000"),
            ("IOLITE_CLUSTER_REQUESTS_TIMEOUT_MS", "2000"),
            ("IOLITE_CHAT_EVENTS_PER_SECOND", "1000"),
        ],
    )
}

/// A TCP proxy in front of the nodes, standing in for a load balancer: new connections go
/// to the current target, or are closed at once while there is none (no node to send
/// them to).
struct Proxy {
    addr: SocketAddr,
    target: Arc<Mutex<Option<SocketAddr>>>,
    task: tokio::task::JoinHandle<()>,
}

impl Proxy {
    async fn start(target: SocketAddr) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let target = Arc::new(Mutex::new(Some(target)));
        let t = target.clone();
        let task = tokio::spawn(async move {
            loop {
                let Ok((mut inbound, _)) = listener.accept().await else {
                    continue;
                };
                let to = *t.lock().unwrap();
                let Some(to) = to else {
                    drop(inbound);
                    continue;
                };
                tokio::spawn(async move {
                    if let Ok(mut outbound) = tokio::net::TcpStream::connect(to).await {
                        let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
                    }
                });
            }
        });
        Self { addr, target, task }
    }

    fn point_to(&self, target: Option<SocketAddr>) {
        *self.target.lock().unwrap() = target;
    }

    fn url(&self) -> String {
        format!("http://{}", self.addr)
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Waits until `/readyz` answers `status` with `body`.
async fn wait_ready(server: &Server, status: u16, body: &str) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
    loop {
        let r = server.get("/readyz").await;
        if r.status == status && r.text() == body {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "/readyz stayed {} {:?}, wanted {status} {body:?}\n{}",
            r.status,
            r.text(),
            server.log()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The value of an unlabeled metric.
async fn metric(server: &Server, name: &str) -> u64 {
    let text = server.get("/metrics").await.text();
    text.lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.parse().ok())
        .unwrap_or_else(|| panic!("no {name} in /metrics:\n{text}"))
}

/// A chat client with a buffer of the events not asked for yet.
struct Client {
    socket: Socket,
    pending: Vec<(String, Value)>,
}

impl Client {
    async fn guest(server: &Server, name: &str) -> Self {
        let mut c = Self {
            socket: server.guest(name, &[Transport::WebSocket]).await,
            pending: Vec::new(),
        };
        let hello = c.event("hello").await;
        assert_eq!(hello["user"]["name"], name, "{hello}");
        c
    }

    async fn ok(&self, event: &str, payload: Value) -> Value {
        let ack = self
            .socket
            .emit_with_ack(event, &(payload.clone(),))
            .unwrap();
        let a = within(ack).await.unwrap().arg::<Value>(0).unwrap();
        assert_eq!(a["ok"], true, "{event} {payload}: {a}");
        a
    }

    /// The next event named `name` (others are kept for later).
    async fn event(&mut self, name: &str) -> Value {
        if let Some(i) = self.pending.iter().position(|(n, _)| n == name) {
            return self.pending.remove(i).1;
        }
        loop {
            let e = within(self.socket.next_event())
                .await
                .unwrap_or_else(|| panic!("socket gone waiting for {name}"));
            let v = e.args.arg::<Value>(0).unwrap_or(Value::Null);
            if e.name == name {
                return v;
            }
            self.pending.push((e.name, v));
        }
    }

    /// The next event named `name` if one comes within `d` (others are kept for later).
    async fn event_within(&mut self, name: &str, d: Duration) -> Option<Value> {
        tokio::time::timeout(d, self.event(name)).await.ok()
    }

    /// Sends `typing` to the lobby until `to` gets it, and returns what it got. Typing is
    /// volatile: as in Socket.IO, a recipient whose connection has something not yet written
    /// (a presence update just before) does not get it.
    async fn typing_reaches(&self, to: &mut Client, typing: bool) -> Value {
        for _ in 0..20 {
            self.ok("typing", json!({"room": "lobby", "typing": typing}))
                .await;
            if let Some(t) = to.event_within("typing", Duration::from_millis(500)).await {
                return t;
            }
        }
        panic!("typing never arrived");
    }

    /// A guest on a manager of its own that reconnects quickly (the server's recovery is
    /// on, so the client offers its session back when it reconnects).
    async fn reconnecting_guest(url: &str, name: &str) -> Self {
        let manager = Manager::builder(url)
            .transports([Transport::WebSocket])
            .reconnection(true)
            .reconnection_delay(Duration::from_millis(100))
            .reconnection_delay_max(Duration::from_millis(300))
            .timeout(Duration::from_secs(5))
            .build()
            .unwrap();
        let socket = within(manager.socket("/").auth(json!({ "name": name })).connect())
            .await
            .unwrap();
        let mut c = Self {
            socket,
            pending: Vec::new(),
        };
        let hello = c.event("hello").await;
        assert_eq!(hello["user"]["name"], name, "{hello}");
        c
    }

    /// The next lifecycle change (the first is the first connection's `Connect`).
    async fn lifecycle(&self) -> Lifecycle {
        within(self.socket.next_lifecycle()).await
    }

    /// The `message` events received and buffered so far, without waiting.
    fn buffered_messages(&mut self) -> Vec<Value> {
        while let Some(e) = self.socket.try_next_event() {
            let v = e.args.arg::<Value>(0).unwrap_or(Value::Null);
            self.pending.push((e.name, v));
        }
        let (messages, rest) = std::mem::take(&mut self.pending)
            .into_iter()
            .partition(|(n, _)| n == "message");
        self.pending = rest;
        messages.into_iter().map(|(_, v)| v).collect()
    }

    /// The next `presence` of `room` whose members are `names` (earlier ones, sent while
    /// the others arrived, are skipped).
    async fn presence(&mut self, room: &str, names: &[&str]) -> Value {
        loop {
            let p = self.event("presence").await;
            if p["room"] == room && member_names(&p) == names {
                return p;
            }
        }
    }
}

fn member_names(v: &Value) -> Vec<String> {
    v["members"]
        .as_array()
        .unwrap_or_else(|| panic!("no members: {v}"))
        .iter()
        .map(|m| m["name"].as_str().unwrap_or_default().to_owned())
        .collect()
}

fn ids(messages: &Value) -> Vec<i64> {
    messages
        .as_array()
        .unwrap_or_else(|| panic!("not a list: {messages}"))
        .iter()
        .map(|m| m["id"].as_i64().unwrap())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_nodes_share_presence_messages_history_and_typing() {
    let mut redis = Redis::start().await;
    let db = TestDb::create().await;
    let a = node(&db, &redis);
    let b = node(&db, &redis);
    wait_ready(&a, 200, "ready\n").await;
    wait_ready(&b, 200, "ready\n").await;
    assert_eq!(metric(&a, "iolite_redis_connected").await, 1);
    assert_eq!(metric(&b, "iolite_redis_connected").await, 1);

    let mut ada = Client::guest(&a, "ada").await;
    let mut bob = Client::guest(&b, "bob").await;

    // Presence: each node lists the users of both.
    let joined = ada.ok("room:join", json!({"room": "lobby"})).await;
    assert_eq!(member_names(&joined), ["ada"]);
    let joined = bob.ok("room:join", json!({"room": "lobby"})).await;
    assert_eq!(member_names(&joined), ["ada", "bob"], "{joined}");
    let p = ada.presence("lobby", &["ada", "bob"]).await;
    assert_eq!(p["members"][1]["id"], "guest:bob", "{p}");
    bob.presence("lobby", &["ada", "bob"]).await;

    // Messages sent on A reach B, and are in the history B reads from the shared store.
    let mut sent = Vec::new();
    for i in 0..3 {
        let m = ada
            .ok(
                "message:send",
                json!({"room": "lobby", "text": format!("hello {i}"), "clientId": format!("c{i}")}),
            )
            .await["message"]
            .clone();
        sent.push(m);
    }
    let sent_ids: Vec<i64> = sent.iter().map(|m| m["id"].as_i64().unwrap()).collect();
    for m in &sent {
        let got = bob.event("message").await;
        assert_eq!(&got, m, "B's client gets A's message as stored");
    }
    let history = bob.ok("history", json!({"room": "lobby"})).await;
    assert_eq!(ids(&history["messages"]), sent_ids, "{history}");
    assert_eq!(history["messages"][0]["text"], "hello 0");
    assert_eq!(history["hasMore"], false);
    let sync = bob
        .ok("room:sync", json!({"room": "lobby", "after": 0}))
        .await;
    assert_eq!(ids(&sync["messages"]), sent_ids, "{sync}");
    let sync = bob
        .ok("room:sync", json!({"room": "lobby", "after": sent_ids[0]}))
        .await;
    assert_eq!(ids(&sync["messages"]), &sent_ids[1..], "{sync}");
    // A reply from B comes after them in both nodes' history.
    let reply = bob
        .ok("message:send", json!({"room": "lobby", "text": "hi ada"}))
        .await["message"]
        .clone();
    assert!(reply["id"].as_i64().unwrap() > sent_ids[2]);
    // The sender gets its own messages too: A's three first, then B's reply.
    for m in &sent {
        assert_eq!(&ada.event("message").await, m);
    }
    assert_eq!(ada.event("message").await, reply);
    let sync = ada
        .ok("room:sync", json!({"room": "lobby", "after": sent_ids[2]}))
        .await;
    assert_eq!(ids(&sync["messages"]), [reply["id"].as_i64().unwrap()]);
    // The room list agrees too.
    let rooms = bob.ok("rooms:list", json!({})).await;
    let lobby = rooms["rooms"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["name"] == "lobby")
        .cloned()
        .unwrap_or_else(|| panic!("{rooms}"));
    assert_eq!(lobby["lastId"], reply["id"], "{rooms}");

    // Resending a clientId on the other node is the stored message, not a new one.
    let ada_b = Client::guest(&b, "ada").await;
    ada_b.ok("room:join", json!({"room": "lobby"})).await;
    let again = ada_b
        .ok(
            "message:send",
            json!({"room": "lobby", "text": "hello 1", "clientId": "c1"}),
        )
        .await;
    assert_eq!(again["message"], sent[1], "{again}");
    drop(ada_b);

    // Typing crosses nodes both ways.
    let t = bob.typing_reaches(&mut ada, true).await;
    assert_eq!(
        t,
        json!({"room": "lobby", "user": {"id": "guest:bob", "name": "bob"}, "typing": true})
    );
    let t = ada.typing_reaches(&mut bob, false).await;
    assert_eq!(t["user"]["name"], "ada", "{t}");
    assert_eq!(t["typing"], false, "{t}");

    // Bob leaving on B is seen on A.
    bob.ok("room:leave", json!({"room": "lobby"})).await;
    ada.presence("lobby", &["ada"]).await;

    assert!(metric(&a, "iolite_redis_published_total").await > 0);
    assert!(metric(&b, "iolite_redis_received_total").await > 0);
    assert_eq!(metric(&a, "iolite_redis_publish_failures_total").await, 0);

    // Redis gone: with ready_requires_redis, both nodes say they are not ready, and
    // still serve their own clients.
    redis.kill();
    wait_ready(&a, 503, "redis unavailable\n").await;
    wait_ready(&b, 503, "redis unavailable\n").await;
    assert_eq!(metric(&a, "iolite_redis_connected").await, 0);
    let m = ada
        .ok("message:send", json!({"room": "lobby", "text": "alone"}))
        .await["message"]
        .clone();
    assert_eq!(ada.event("message").await, m);
    assert_eq!(a.get("/healthz").await.status, 200);
}

#[tokio::test]
async fn a_node_without_its_database_refuses_to_start() {
    let dir = tempfile::tempdir().unwrap();
    let out = server_common::run_to_end(
        dir.path(),
        &[],
        &[
            ("IOLITE_PORT", "0"),
            ("IOLITE_STORE_KIND", "postgres"),
            (
                "IOLITE_STORE_URL",
                "postgres://iolite:pg-secret@127.0.0.1:1/iolite",
            ),
        ],
    );
    assert!(!out.status.success());
    assert!(out.stderr.contains("store.url"), "{}", out.stderr);
    assert!(out.stderr.contains("127.0.0.1:1"), "{}", out.stderr);
    assert!(!out.stderr.contains("pg-secret"), "{}", out.stderr);
}

#[tokio::test]
async fn a_cluster_configuration_without_its_urls_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let out = server_common::run_to_end(dir.path(), &["--cluster-adapter", "redis"], &[]);
    assert_eq!(out.status.code(), Some(2), "{}", out.stderr);
    assert!(
        out.stderr
            .contains("cluster.redis_url (--redis-url, IOLITE_REDIS_URL)"),
        "{}",
        out.stderr
    );
    let out = server_common::run_to_end(dir.path(), &["--store-kind", "postgres"], &[]);
    assert_eq!(out.status.code(), Some(2), "{}", out.stderr);
    assert!(
        out.stderr
            .contains("store.url (--store-url, IOLITE_STORE_URL)"),
        "{}",
        out.stderr
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn streams_adapter_shares_presence_and_messages() {
    let redis = Redis::start().await;
    let db = TestDb::create().await;
    let a = streams_node(&db, &redis);
    let b = streams_node(&db, &redis);
    wait_ready(&a, 200, "ready\n").await;
    wait_ready(&b, 200, "ready\n").await;
    assert!(a.log().contains("Redis streams adapter"), "{}", a.log());

    let mut ada = Client::guest(&a, "ada").await;
    let mut bob = Client::guest(&b, "bob").await;
    let joined = ada.ok("room:join", json!({"room": "lobby"})).await;
    assert_eq!(member_names(&joined), ["ada"]);
    let joined = bob.ok("room:join", json!({"room": "lobby"})).await;
    assert_eq!(member_names(&joined), ["ada", "bob"], "{joined}");
    ada.presence("lobby", &["ada", "bob"]).await;
    bob.presence("lobby", &["ada", "bob"]).await;

    let mut sent = Vec::new();
    for i in 0..3 {
        let m = ada
            .ok(
                "message:send",
                json!({"room": "lobby", "text": format!("hello {i}")}),
            )
            .await["message"]
            .clone();
        sent.push(m);
    }
    let reply = bob
        .ok("message:send", json!({"room": "lobby", "text": "hi ada"}))
        .await["message"]
        .clone();
    for m in &sent {
        assert_eq!(
            &bob.event("message").await,
            m,
            "B's client gets A's messages"
        );
    }
    assert_eq!(bob.event("message").await, reply);
    for m in &sent {
        assert_eq!(&ada.event("message").await, m, "the sender gets its own");
    }
    assert_eq!(
        ada.event("message").await,
        reply,
        "A's client gets B's reply"
    );

    // Typing and leaving cross nodes too.
    bob.ok("typing", json!({"room": "lobby", "typing": true}))
        .await;
    let t = ada.event("typing").await;
    assert_eq!(t["user"]["name"], "bob", "{t}");
    bob.ok("room:leave", json!({"room": "lobby"})).await;
    ada.presence("lobby", &["ada"]).await;

    // The messages went through the test's stream, not pub/sub channels.
    let len = redis_cli(&redis, &["XLEN", "iolite-test-stream"]);
    assert!(len.trim().parse::<u64>().unwrap() > 4, "XLEN {len}");
}

/// Runs `redis-cli` against the test's Redis and returns what it printed.
fn redis_cli(redis: &Redis, args: &[&str]) -> String {
    let out = Command::new("redis-cli")
        .args(["-p", &redis.port.to_string()])
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("cannot run redis-cli ({e})"));
    assert!(out.status.success(), "redis-cli {args:?}: {out:?}");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn streams_adapter_recovers_a_client_on_another_node_with_what_it_missed() {
    let redis = Redis::start().await;
    let db = TestDb::create().await;
    let mut a = streams_node(&db, &redis);
    let b = streams_node(&db, &redis);
    wait_ready(&a, 200, "ready\n").await;
    wait_ready(&b, 200, "ready\n").await;
    let proxy = Proxy::start(a.addr).await;

    let mut ada = Client::reconnecting_guest(&proxy.url(), "ada").await;
    assert!(matches!(
        ada.lifecycle().await,
        Lifecycle::Connect { recovered: false }
    ));
    let bob = Client::guest(&b, "bob").await;
    ada.ok("room:join", json!({"room": "lobby"})).await;
    bob.ok("room:join", json!({"room": "lobby"})).await;
    ada.presence("lobby", &["ada", "bob"]).await;
    let before = bob
        .ok("message:send", json!({"room": "lobby", "text": "before"}))
        .await["message"]
        .clone();
    assert_eq!(ada.event("message").await, before);
    let ada_id = ada.socket.id().unwrap();

    // Node A goes away (SIGTERM: it closes its clients, storing their sessions in Redis),
    // and for a while the load balancer has nowhere to send the client.
    proxy.point_to(None);
    a.term();
    assert!(
        a.wait_exit(Duration::from_secs(15)).await.is_some(),
        "node A did not exit\n{}",
        a.log()
    );
    match ada.lifecycle().await {
        Lifecycle::Disconnect(r) => assert_eq!(r, DisconnectReason::TransportClose),
        other => panic!("{other:?}"),
    }
    let mut missed = Vec::new();
    for i in 0..5 {
        let m = bob
            .ok(
                "message:send",
                json!({"room": "lobby", "text": format!("missed {i}")}),
            )
            .await["message"]
            .clone();
        missed.push(m);
    }
    assert!(!ada.socket.connected());

    // The client reaches node B and gets its session back with every missed message once,
    // in order, then live ones.
    proxy.point_to(Some(b.addr));
    loop {
        match ada.lifecycle().await {
            Lifecycle::Connect { recovered } => {
                assert!(recovered, "not recovered\nB:\n{}", b.log());
                break;
            }
            Lifecycle::ConnectError(_) => continue,
            other => panic!("{other:?}"),
        }
    }
    assert!(ada.socket.recovered());
    assert_eq!(ada.socket.id().unwrap(), ada_id, "the same session");
    for m in &missed {
        assert_eq!(&ada.event("message").await, m, "missed messages in order");
    }
    let after = bob
        .ok("message:send", json!({"room": "lobby", "text": "after"}))
        .await["message"]
        .clone();
    assert_eq!(ada.event("message").await, after, "nothing twice before it");
    // Still in the room on B: its own messages come back too.
    let own = ada
        .ok("message:send", json!({"room": "lobby", "text": "back"}))
        .await["message"]
        .clone();
    assert_eq!(ada.event("message").await, own);
    // Room for a duplicate to show up.
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(
        ada.buffered_messages(),
        Vec::<Value>::new(),
        "no duplicates"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn streams_adapter_a_killed_node_leaves_no_session_so_the_client_catches_up_with_sync() {
    let redis = Redis::start().await;
    let db = TestDb::create().await;
    let a = streams_node(&db, &redis);
    let b = streams_node(&db, &redis);
    wait_ready(&a, 200, "ready\n").await;
    wait_ready(&b, 200, "ready\n").await;
    let proxy = Proxy::start(a.addr).await;

    let mut ada = Client::reconnecting_guest(&proxy.url(), "ada").await;
    let bob = Client::guest(&b, "bob").await;
    ada.ok("room:join", json!({"room": "lobby"})).await;
    bob.ok("room:join", json!({"room": "lobby"})).await;
    let before = bob
        .ok("message:send", json!({"room": "lobby", "text": "before"}))
        .await["message"]
        .clone();
    assert_eq!(ada.event("message").await, before);
    let ada_id = ada.socket.id().unwrap();

    // SIGKILL (dropping the server kills it): the session lived only in node A's memory,
    // as in Node, where a session is stored when its socket closes on a live node.
    proxy.point_to(None);
    drop(a);
    loop {
        if let Lifecycle::Disconnect(_) = ada.lifecycle().await {
            break;
        }
    }
    let missed = bob
        .ok("message:send", json!({"room": "lobby", "text": "missed"}))
        .await["message"]
        .clone();
    proxy.point_to(Some(b.addr));
    loop {
        match ada.lifecycle().await {
            Lifecycle::Connect { recovered } => {
                assert!(!recovered, "nothing to recover from a killed node");
                break;
            }
            Lifecycle::ConnectError(_) => continue,
            other => panic!("{other:?}"),
        }
    }
    assert_ne!(ada.socket.id().unwrap(), ada_id, "a new session");
    // The chat's own catch-up still misses nothing. Until B forgets the killed node (10 s
    // without its heartbeat) the cluster cannot list a room's members (B waits for A's
    // answer); the join still succeeds, with the members on B (ada and bob are both there).
    let ack = ada
        .socket
        .emit_with_ack("room:join", &(json!({"room": "lobby"}),))
        .unwrap();
    let Ok(a) = tokio::time::timeout(Duration::from_secs(10), ack).await else {
        panic!("no answer to room:join; node B logged:\n{}", b.log());
    };
    let a = a.unwrap().arg::<Value>(0).unwrap();
    assert_eq!(a["ok"], true, "{a}");
    assert_eq!(member_names(&a), ["ada", "bob"], "{a}");
    let sync = ada
        .ok(
            "room:sync",
            json!({"room": "lobby", "after": before["id"].clone()}),
        )
        .await;
    assert_eq!(sync["messages"], json!([missed]), "{sync}");
}

/// With the streams adapter as with pub/sub, `/readyz` follows the Redis link when
/// `ready_requires_redis` is on (503 while Redis is down, 200 once it is back) and
/// `/metrics` has the `iolite_redis_*` series; the node serves its own clients meanwhile.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn streams_adapter_readiness_and_metrics_follow_redis() {
    let mut redis = Redis::start().await;
    let db = TestDb::create().await;
    let redis_url = redis.url();
    let a = Server::start_with(
        &[],
        &[
            ("IOLITE_STORE_KIND", "postgres"),
            ("IOLITE_STORE_URL", &db.url),
            ("IOLITE_CLUSTER_ADAPTER", "redis-streams"),
            ("IOLITE_REDIS_URL", &redis_url),
            ("IOLITE_READY_REQUIRES_REDIS", "true"),
        ],
    );
    wait_ready(&a, 200, "ready\n").await;
    assert_eq!(metric(&a, "iolite_redis_connected").await, 1);
    let mut ada = Client::guest(&a, "ada").await;
    ada.ok("room:join", json!({"room": "lobby"})).await;
    let m = ada
        .ok("message:send", json!({"room": "lobby", "text": "hi"}))
        .await["message"]
        .clone();
    assert_eq!(ada.event("message").await, m);
    // Its own broadcasts went through the stream (and came back to its client).
    assert!(metric(&a, "iolite_redis_published_total").await > 0);
    assert_eq!(metric(&a, "iolite_redis_publish_failures_total").await, 0);

    redis.kill();
    wait_ready(&a, 503, "redis unavailable\n").await;
    assert_eq!(metric(&a, "iolite_redis_connected").await, 0);
    assert_eq!(a.get("/healthz").await.status, 200);
    let m = ada
        .ok("message:send", json!({"room": "lobby", "text": "alone"}))
        .await["message"]
        .clone();
    assert_eq!(ada.event("message").await, m, "served while Redis is down");
    assert!(metric(&a, "iolite_redis_publish_failures_total").await > 0);
    // The reader tries again after a wait, and counts the attempt that failed.
    within(async {
        while metric(&a, "iolite_redis_connection_failures_total").await == 0 {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await;

    redis.restart().await;
    wait_ready(&a, 200, "ready\n").await;
    assert_eq!(metric(&a, "iolite_redis_connected").await, 1);
    assert!(metric(&a, "iolite_redis_resubscriptions_total").await >= 1);
    let m = ada
        .ok("message:send", json!({"room": "lobby", "text": "back"}))
        .await["message"]
        .clone();
    assert_eq!(ada.event("message").await, m);
}

/// `cluster.adapter = "redis-sharded"` (Redis 7 sharded pub/sub, as Node's
/// `createShardedAdapter`): two processes share presence and messages, over shard
/// channels, and report the link in `/metrics`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sharded_adapter_shares_presence_and_messages() {
    let redis = Redis::start().await;
    let db = TestDb::create().await;
    let redis_url = redis.url();
    let sharded_node = || {
        Server::start_with(
            &[],
            &[
                ("IOLITE_STORE_KIND", "postgres"),
                ("IOLITE_STORE_URL", &db.url),
                ("IOLITE_CLUSTER_ADAPTER", "redis-sharded"),
                ("IOLITE_REDIS_URL", &redis_url),
                ("IOLITE_CLUSTER_KEY", "iolite-sharded"),
                ("IOLITE_READY_REQUIRES_REDIS", "true"),
                ("IOLITE_CLUSTER_REQUESTS_TIMEOUT_MS", "2000"),
                ("IOLITE_CHAT_EVENTS_PER_SECOND", "1000"),
            ],
        )
    };
    let a = sharded_node();
    let b = sharded_node();
    wait_ready(&a, 200, "ready\n").await;
    wait_ready(&b, 200, "ready\n").await;
    assert!(
        a.log().contains("Redis sharded pub/sub adapter"),
        "{}",
        a.log()
    );
    // Both nodes are subscribed to the namespace's shard channel.
    within(async {
        while redis_cli(&redis, &["PUBSUB", "SHARDNUMSUB", "iolite-sharded#/#"])
            .lines()
            .nth(1)
            != Some("2")
        {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await;

    let mut ada = Client::guest(&a, "ada").await;
    let mut bob = Client::guest(&b, "bob").await;
    ada.ok("room:join", json!({"room": "lobby"})).await;
    let joined = bob.ok("room:join", json!({"room": "lobby"})).await;
    assert_eq!(member_names(&joined), ["ada", "bob"], "{joined}");
    ada.presence("lobby", &["ada", "bob"]).await;
    let m = ada
        .ok("message:send", json!({"room": "lobby", "text": "hello"}))
        .await["message"]
        .clone();
    assert_eq!(bob.event("message").await, m, "B's client gets A's message");
    assert_eq!(ada.event("message").await, m);
    let reply = bob
        .ok("message:send", json!({"room": "lobby", "text": "hi ada"}))
        .await["message"]
        .clone();
    assert_eq!(
        ada.event("message").await,
        reply,
        "A's client gets B's reply"
    );
    assert_eq!(metric(&a, "iolite_redis_connected").await, 1);
    assert!(metric(&a, "iolite_redis_published_total").await > 0);
    assert!(metric(&b, "iolite_redis_received_total").await > 0);
    // Nothing went through classic pub/sub.
    assert_eq!(redis_cli(&redis, &["PUBSUB", "NUMPAT"]).trim(), "0");
}

/// Two `iolite` processes on a real three-master Redis Cluster (`redis+cluster://`), with
/// the sharded adapter (its room channels spread over the masters) and then the pub/sub
/// adapter: presence and messages agree, and the nodes are ready and connected.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_redis_cluster_carries_the_chat_with_either_pub_sub_adapter() {
    let cluster = iolite_test_support::redis_cluster::RedisCluster::start(3);
    let redis_url = cluster.url();
    for adapter in ["redis-sharded", "redis"] {
        let db = TestDb::create().await;
        let start = || {
            Server::start_with(
                &[],
                &[
                    ("IOLITE_STORE_KIND", "postgres"),
                    ("IOLITE_STORE_URL", &db.url),
                    ("IOLITE_CLUSTER_ADAPTER", adapter),
                    ("IOLITE_REDIS_URL", &redis_url),
                    ("IOLITE_CLUSTER_KEY", "iolite-rc"),
                    ("IOLITE_READY_REQUIRES_REDIS", "true"),
                    ("IOLITE_CLUSTER_REQUESTS_TIMEOUT_MS", "2000"),
                    ("IOLITE_CHAT_EVENTS_PER_SECOND", "1000"),
                ],
            )
        };
        let a = start();
        let b = start();
        wait_ready(&a, 200, "ready\n").await;
        wait_ready(&b, 200, "ready\n").await;
        let mut ada = Client::guest(&a, "ada").await;
        let mut bob = Client::guest(&b, "bob").await;
        // Rooms whose channels live on different masters: each is joined on both nodes.
        for room in ["lobby", "random", "ops"] {
            ada.ok("room:join", json!({"room": room})).await;
            let joined = bob.ok("room:join", json!({"room": room})).await;
            assert_eq!(
                member_names(&joined),
                ["ada", "bob"],
                "{adapter} {room}: {joined}"
            );
            ada.presence(room, &["ada", "bob"]).await;
            let m = ada
                .ok("message:send", json!({"room": room, "text": "hello"}))
                .await["message"]
                .clone();
            assert_eq!(bob.event("message").await, m, "{adapter} {room}: A to B");
            assert_eq!(ada.event("message").await, m);
            let reply = bob
                .ok("message:send", json!({"room": room, "text": "hi"}))
                .await["message"]
                .clone();
            assert_eq!(
                ada.event("message").await,
                reply,
                "{adapter} {room}: B to A"
            );
            assert_eq!(bob.event("message").await, reply);
        }
        assert_eq!(metric(&a, "iolite_redis_connected").await, 1, "{adapter}");
        assert!(
            metric(&b, "iolite_redis_received_total").await > 0,
            "{adapter}"
        );
        drop((a, b));
    }
}
