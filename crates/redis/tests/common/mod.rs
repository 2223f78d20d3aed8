//! Real peers for the cluster tests: a `redis-server` of the test's own, iolite nodes in
//! this process, a Node.js socket.io 4.8 node with @socket.io/redis-adapter
//! (tests/redis/node-node.mjs) as a child process, and iolite-client clients.

#![allow(dead_code)]
#![allow(clippy::unwrap_used, clippy::expect_used)] // test helpers: a failure is the test failing

use std::collections::HashMap;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use iolite::{SocketIo, SocketRef};
use iolite_client::{Lifecycle, Manager, Socket, Transport};
use iolite_redis::{AdapterOptions, RedisClient, RedisOptions};
use serde_json::{json, Value};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::sync::{mpsc, oneshot};

/// Awaits `f`, failing the test after 10 s.
pub async fn within<F: std::future::Future>(f: F) -> F::Output {
    tokio::time::timeout(Duration::from_secs(10), f)
        .await
        .expect("timed out")
}

pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A `redis-server` on a free port, without persistence; killed when dropped.
pub struct RedisServer {
    child: Option<Child>,
    pub port: u16,
}

impl RedisServer {
    pub fn start() -> Self {
        let mut s = Self {
            child: None,
            port: free_port(),
        };
        s.spawn();
        s
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/", self.port)
    }

    fn spawn(&mut self) {
        let child = Command::new("redis-server")
            .args(["--port", &self.port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no"])
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap_or_else(|e| {
                panic!(
                    "cannot run `redis-server` ({e}): the Redis adapter tests need a real Redis \
                     server on PATH (Debian: apt-get install redis-server)"
                )
            });
        self.child = Some(child);
        // Ready when it answers PING.
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        loop {
            if ping(self.port) {
                return;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "redis-server did not come up on port {}",
                self.port
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Kills the server (connections drop at once).
    pub fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Starts it again on the same port, empty.
    pub fn restart(&mut self) {
        self.stop();
        self.spawn();
    }
}

pub fn ping(port: u16) -> bool {
    use std::io::{Read, Write};
    let Ok(mut s) = std::net::TcpStream::connect(("127.0.0.1", port)) else {
        return false;
    };
    let _ = s.set_read_timeout(Some(Duration::from_millis(500)));
    if s.write_all(b"PING\r\n").is_err() {
        return false;
    }
    let mut buf = [0u8; 7];
    s.read_exact(&mut buf).is_ok() && &buf == b"+PONG\r\n"
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.stop();
    }
}

fn workspace() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// `npm ci` in tests/redis, once, when its node_modules lacks a package the tests use.
fn ensure_node_modules() {
    static DONE: OnceLock<()> = OnceLock::new();
    DONE.get_or_init(|| {
        let dir = workspace().join("tests/redis");
        let modules = dir.join("node_modules/@socket.io");
        if modules.join("redis-adapter").exists()
            && modules.join("redis-emitter").exists()
            && modules.join("redis-streams-adapter").exists()
        {
            return;
        }
        let status = Command::new("npm")
            .args(["ci", "--no-audit", "--no-fund"])
            .current_dir(&dir)
            .status()
            .unwrap_or_else(|e| panic!("cannot run `npm ci` in {}: {e}", dir.display()));
        assert!(status.success(), "`npm ci` in {} failed", dir.display());
    });
}

type Pending = Arc<Mutex<HashMap<u64, oneshot::Sender<Result<Value, String>>>>>;

/// The Node.js socket.io node (tests/redis/node-node.mjs), killed when dropped.
pub struct NodePeer {
    child: tokio::process::Child,
    stdin: tokio::process::ChildStdin,
    pending: Pending,
    events: mpsc::UnboundedReceiver<Value>,
    next: AtomicU64,
    pub port: u16,
}

impl NodePeer {
    pub async fn start(redis: &RedisServer, requests_timeout_ms: u64) -> Self {
        Self::start_env(redis, requests_timeout_ms, &[]).await
    }

    /// [`NodePeer::start`] with more environment (`ADAPTER=streams`, `RECOVERY=1`).
    pub async fn start_env(
        redis: &RedisServer,
        requests_timeout_ms: u64,
        env: &[(&str, &str)],
    ) -> Self {
        Self::start_script(redis, "tests/redis/node-node.mjs", requests_timeout_ms, env).await
    }

    /// [`NodePeer::start_env`] running another script of the same protocol
    /// (tests/redis/sharded-node.mjs).
    pub async fn start_script(
        redis: &RedisServer,
        script: &str,
        requests_timeout_ms: u64,
        env: &[(&str, &str)],
    ) -> Self {
        let url = format!("redis://127.0.0.1:{}", redis.port);
        Self::spawn(("REDIS_URL", &url), script, requests_timeout_ms, env).await
    }

    /// [`NodePeer::start_script`] on a Redis Cluster.
    pub async fn start_on_cluster(
        cluster: &iolite_test_support::redis_cluster::RedisCluster,
        script: &str,
        requests_timeout_ms: u64,
        env: &[(&str, &str)],
    ) -> Self {
        let urls = cluster.node_urls();
        Self::spawn(("REDIS_CLUSTER", &urls), script, requests_timeout_ms, env).await
    }

    async fn spawn(
        redis: (&str, &str),
        script: &str,
        requests_timeout_ms: u64,
        env: &[(&str, &str)],
    ) -> Self {
        ensure_node_modules();
        let mut child = tokio::process::Command::new("node")
            .arg(script)
            .envs(env.iter().copied())
            .current_dir(workspace())
            .env(redis.0, redis.1)
            .env("PORT", "0")
            .env("REQUESTS_TIMEOUT", requests_timeout_ms.to_string())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .kill_on_drop(true)
            .spawn()
            .expect("cannot run `node`: the cluster tests need Node.js");
        let stdin = child.stdin.take().unwrap();
        let stdout = child.stdout.take().unwrap();
        let pending: Pending = Arc::default();
        let (tx, mut events) = mpsc::unbounded_channel();
        let p = pending.clone();
        tokio::spawn(async move {
            let mut lines = BufReader::new(stdout).lines();
            while let Ok(Some(line)) = lines.next_line().await {
                let Ok(v) = serde_json::from_str::<Value>(&line) else {
                    continue; // `listening on ...`
                };
                if let Some(id) = v.get("id").and_then(Value::as_u64) {
                    if let Some(reply) = p.lock().unwrap().remove(&id) {
                        let r = match v.get("error") {
                            Some(e) => Err(e.to_string()),
                            None => Ok(v["ok"].clone()),
                        };
                        let _ = reply.send(r);
                    }
                } else {
                    let _ = tx.send(v);
                }
            }
        });
        let port = within(async {
            loop {
                let ev = events.recv().await.expect("the Node node exited");
                if ev["event"] == "listening" {
                    return ev["port"].as_u64().unwrap() as u16;
                }
            }
        })
        .await;
        Self {
            child,
            stdin,
            pending,
            events,
            next: AtomicU64::new(1),
            port,
        }
    }

    /// Runs a command (see node-node.mjs) and returns its result.
    pub async fn call(&mut self, op: &str, args: Value) -> Result<Value, String> {
        let id = self.next.fetch_add(1, Ordering::Relaxed);
        let mut cmd = args;
        cmd["id"] = json!(id);
        cmd["op"] = json!(op);
        let (tx, rx) = oneshot::channel();
        self.pending.lock().unwrap().insert(id, tx);
        let mut line = serde_json::to_vec(&cmd).unwrap();
        line.push(b'\n');
        self.stdin.write_all(&line).await.unwrap();
        within(rx).await.expect("the Node node exited")
    }

    /// [`NodePeer::call`] that must succeed.
    pub async fn ok(&mut self, op: &str, args: Value) -> Value {
        self.call(op, args)
            .await
            .unwrap_or_else(|e| panic!("{op}: {e}"))
    }

    /// The next event of this kind (`connection`, `serverSide`).
    pub async fn event(&mut self, kind: &str) -> Value {
        within(async {
            loop {
                let ev = self.events.recv().await.expect("the Node node exited");
                if ev["event"] == kind {
                    return ev;
                }
            }
        })
        .await
    }

    /// Freezes (SIGSTOP) or thaws (SIGCONT) the process: frozen, it stays subscribed and
    /// counted but answers nothing.
    pub fn signal(&self, sig: &str) {
        let pid = self.child.id().unwrap();
        let ok = Command::new("kill")
            .args([sig, &pid.to_string()])
            .status()
            .unwrap()
            .success();
        assert!(ok, "kill {sig} {pid}");
    }

    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }
}

/// An iolite node in this process with the Redis adapter.
pub struct IoNode {
    pub io: SocketIo,
    pub port: u16,
    pub redis: RedisClient,
    pub name: &'static str,
    sockets: mpsc::UnboundedReceiver<SocketRef>,
    pub server_side: mpsc::UnboundedReceiver<(String, Vec<Value>)>,
}

/// Connection settings fast enough for tests.
pub fn fast() -> RedisOptions {
    RedisOptions {
        connection_timeout: Duration::from_millis(500),
        response_timeout: Duration::from_millis(1000),
        reconnect_delay: Duration::from_millis(50),
        reconnect_delay_max: Duration::from_millis(300),
        ..Default::default()
    }
}

impl IoNode {
    pub async fn start(redis: &RedisServer, name: &'static str) -> Self {
        Self::start_with(redis, name, AdapterOptions::default()).await
    }

    pub async fn start_with(redis: &RedisServer, name: &'static str, opts: AdapterOptions) -> Self {
        Self::start_url(&redis.url(), name, opts).await
    }

    /// A node whose Redis is at `url` (a Sentinel URL, say).
    pub async fn start_url(url: &str, name: &'static str, opts: AdapterOptions) -> Self {
        let client = RedisClient::with_options(url, fast()).unwrap();
        let io = SocketIo::builder()
            .adapter(client.adapter_factory(opts))
            .build();
        let (tx, sockets) = mpsc::unbounded_channel();
        let ns = io.ns("/", move |socket: SocketRef| {
            let tx = tx.clone();
            async move {
                let auth = socket.handshake().auth().clone();
                socket
                    .set_data(&json!({"node": name, "name": auth["name"]}))
                    .unwrap();
                for r in auth["rooms"].as_array().cloned().unwrap_or_default() {
                    socket.join(r.as_str().unwrap().to_owned());
                }
                let _ = tx.send(socket);
            }
        });
        let (stx, server_side) = mpsc::unbounded_channel();
        for event in ["sse", "who"] {
            let stx = stx.clone();
            ns.on_server_side(event, move |args, ack| {
                let _ = stx.send((event.to_owned(), args.clone()));
                if let Some(ack) = ack {
                    ack.send(json!({"node": name, "args": args}));
                }
            });
        }
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let io2 = io.clone();
        tokio::spawn(async move { io2.serve(listener).await });
        within(client.ready()).await;
        Self {
            io,
            port,
            redis: client,
            name,
            sockets,
            server_side,
        }
    }

    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// The server side of the next client that connects here.
    pub async fn next_socket(&mut self) -> SocketRef {
        within(self.sockets.recv()).await.unwrap()
    }

    /// The next server-side event this node's handlers got.
    pub async fn next_server_side(&mut self) -> (String, Vec<Value>) {
        within(self.server_side.recv()).await.unwrap()
    }
}

/// A client connected over WebSocket to `url` with `auth: {name, rooms}`.
pub async fn client(url: &str, name: &str, rooms: &[&str]) -> Socket {
    let m = Manager::builder(url)
        .transports([Transport::WebSocket])
        .reconnection(false)
        .timeout(Duration::from_secs(5))
        .build()
        .unwrap();
    within(
        m.socket("/")
            .auth(json!({"name": name, "rooms": rooms}))
            .connect(),
    )
    .await
    .unwrap()
}

/// The next event's name and arguments (failing after 10 s).
pub async fn next(s: &Socket) -> (String, Vec<Value>) {
    let ev = within(s.next_event()).await.expect("socket closed");
    let args = ev.args.to_json_lossy();
    (ev.name, args.as_array().cloned().unwrap_or_default())
}

/// The next event, which must be `name`; returns its arguments.
pub async fn expect(s: &Socket, name: &str) -> Vec<Value> {
    let (n, args) = next(s).await;
    assert_eq!(n, name, "args {args:?}");
    args
}

/// Waits until the socket is disconnected; returns the reason.
pub async fn disconnected(s: &Socket) -> String {
    within(async {
        loop {
            if let Lifecycle::Disconnect(r) = s.next_lifecycle().await {
                return r.as_str().to_owned();
            }
        }
    })
    .await
}

/// Polls `f` until it returns true (failing after 10 s).
pub async fn eventually<F, Fut>(mut f: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    within(async {
        while !f().await {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await
}

/// `{"$bin": "<hex>"}` values replaced by placeholders, their bytes collected in order.
pub fn with_placeholders(v: &Value, atts: &mut Vec<bytes::Bytes>) -> Value {
    match v {
        Value::Object(m) => {
            if let Some(Value::String(h)) = m.get("$bin") {
                let b: Vec<u8> = (0..h.len())
                    .step_by(2)
                    .map(|i| u8::from_str_radix(&h[i..i + 2], 16).unwrap())
                    .collect();
                atts.push(bytes::Bytes::from(b));
                return json!({"_placeholder": true, "num": atts.len() - 1});
            }
            Value::Object(
                m.iter()
                    .map(|(k, x)| (k.clone(), with_placeholders(x, atts)))
                    .collect(),
            )
        }
        Value::Array(a) => Value::Array(a.iter().map(|x| with_placeholders(x, atts)).collect()),
        _ => v.clone(),
    }
}

fn strings(v: &Value) -> Vec<String> {
    match v {
        Value::String(s) => vec![s.clone()],
        Value::Array(a) => a.iter().map(|s| s.as_str().unwrap().to_owned()).collect(),
        _ => Vec::new(),
    }
}

/// What the Rust emitter publishes for an emitter command (tests/redis/emitter-ops.mjs).
pub fn emitter_message(
    emitter: &iolite_redis::Emitter,
    c: &Value,
) -> Result<iolite_redis::Message, iolite_redis::EmitterError> {
    let e = match c["nsp"].as_str() {
        Some(n) => emitter.of(n),
        None => emitter.clone(),
    };
    let args: Vec<Value> = c["args"].as_array().cloned().unwrap_or_default();
    let op = c["op"].as_str().unwrap();
    if op == "serverSideEmit" {
        return Ok(e.server_side_emit_message(c["event"].as_str().unwrap(), args));
    }
    // An operator with no room yet: `to` of an empty list, as the Node side does.
    let mut o = e.bin(Vec::new());
    for r in strings(&c["to"]) {
        o = o.to(r);
    }
    for r in strings(&c["except"]) {
        o = o.except(r);
    }
    for f in strings(&c["flags"]) {
        o = match f.as_str() {
            "volatile" => o.volatile(),
            "compress" => o.compress(true),
            "nocompress" => o.compress(false),
            other => panic!("flag {other}"),
        };
    }
    match op {
        "emit" => {
            let mut atts = Vec::new();
            let args: Vec<Value> = args
                .iter()
                .map(|a| with_placeholders(a, &mut atts))
                .collect();
            o.bin(atts).emit_message(c["event"].as_str().unwrap(), args)
        }
        "socketsJoin" => Ok(o.sockets_join_message(strings(&c["rooms"]))),
        "socketsLeave" => Ok(o.sockets_leave_message(strings(&c["rooms"]))),
        "disconnectSockets" => Ok(o.disconnect_sockets_message(c["close"] == json!(true))),
        other => panic!("op {other}"),
    }
}

/// Who publishes the emitter commands of a test: Node's @socket.io/redis-emitter
/// (tests/redis/emitter-node.mjs) or iolite-redis's `Emitter`.
#[allow(clippy::large_enum_variant)] // a handful per test run
pub enum EmitterPeer {
    Node {
        child: tokio::process::Child,
        stdin: tokio::process::ChildStdin,
        lines: tokio::io::Lines<BufReader<tokio::process::ChildStdout>>,
        next: u64,
    },
    Rust(iolite_redis::Emitter),
}

impl EmitterPeer {
    pub async fn node(redis: &RedisServer) -> Self {
        ensure_node_modules();
        let mut child = tokio::process::Command::new("node")
            .arg("tests/redis/emitter-node.mjs")
            .current_dir(workspace())
            .env("REDIS_URL", format!("redis://127.0.0.1:{}", redis.port))
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .kill_on_drop(true)
            .spawn()
            .expect("cannot run `node`");
        let stdin = child.stdin.take().unwrap();
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let ready = within(lines.next_line()).await.unwrap().unwrap();
        assert_eq!(ready, r#"{"event":"ready"}"#);
        Self::Node {
            child,
            stdin,
            lines,
            next: 1,
        }
    }

    pub fn rust(redis: &RedisServer) -> Self {
        let client = RedisClient::with_options(&redis.url(), fast()).unwrap();
        Self::Rust(iolite_redis::Emitter::new(&client, "socket.io"))
    }

    /// Publishes command `c`; returns once Redis has it.
    pub async fn run(&mut self, c: Value) {
        match self {
            Self::Node {
                stdin, lines, next, ..
            } => {
                let mut c = c;
                c["id"] = json!(*next);
                *next += 1;
                let mut line = serde_json::to_vec(&c).unwrap();
                line.push(b'\n');
                stdin.write_all(&line).await.unwrap();
                let answer = within(lines.next_line()).await.unwrap().unwrap();
                let v: Value = serde_json::from_str(&answer).unwrap();
                assert_eq!(v["ok"], json!(true), "{c}: {v}");
            }
            Self::Rust(e) => {
                let m = emitter_message(e, &c).unwrap();
                e.publish(m).unwrap();
                within(e.flush()).await.unwrap();
            }
        }
    }
}

/// A TCP proxy whose target can be switched: the client keeps one URL while the node
/// behind it changes. With no target it closes new connections at once; `cut` closes the
/// ones it carries (a transport close, as when a network path breaks).
pub struct Proxy {
    pub port: u16,
    target: Arc<Mutex<Option<u16>>>,
    conns: Arc<Mutex<Vec<tokio::task::AbortHandle>>>,
    task: tokio::task::JoinHandle<()>,
}

impl Proxy {
    pub async fn start(to: u16) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let target = Arc::new(Mutex::new(Some(to)));
        let conns: Arc<Mutex<Vec<tokio::task::AbortHandle>>> = Arc::default();
        let (t, c) = (target.clone(), conns.clone());
        let task = tokio::spawn(async move {
            while let Ok((mut inbound, _)) = listener.accept().await {
                let Some(to) = *t.lock().unwrap() else {
                    continue;
                };
                let h = tokio::spawn(async move {
                    if let Ok(mut out) = tokio::net::TcpStream::connect(("127.0.0.1", to)).await {
                        let _ = tokio::io::copy_bidirectional(&mut inbound, &mut out).await;
                    }
                });
                c.lock().unwrap().push(h.abort_handle());
            }
        });
        Self {
            port,
            target,
            conns,
            task,
        }
    }

    pub fn point_to(&self, to: Option<u16>) {
        *self.target.lock().unwrap() = to;
    }

    pub fn cut(&self) {
        for h in self.conns.lock().unwrap().drain(..) {
            h.abort();
        }
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.task.abort();
        self.cut();
    }
}
