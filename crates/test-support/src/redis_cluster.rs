//! A real Redis Cluster for tests: `redis-server --cluster-enabled yes` masters on free
//! ports, made one by `redis-cli --cluster create` (Debian: redis-server, redis-tools).

#![allow(clippy::unwrap_used)] // a failure is the test failing

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A free port for a cluster node, below Linux's ephemeral range (32768 and up) together
/// with its cluster bus port (10,000 higher). A port from the ephemeral range can be taken
/// as the local port of some outgoing connection while its node is down, so a restarted
/// node could not bind it again; and a bus port must stay below 65536.
fn free_node_port() -> u16 {
    use std::sync::atomic::{AtomicU32, Ordering};
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let seed = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos())
        ^ std::process::id().wrapping_mul(2_654_435_761);
    for _ in 0..1000 {
        let n = seed.wrapping_add(NEXT.fetch_add(7919, Ordering::Relaxed));
        let port = 10_000 + (n % 12_000) as u16;
        let free = |p: u16| std::net::TcpListener::bind(("127.0.0.1", p)).is_ok();
        if free(port) && free(port + 10_000) {
            return port;
        }
    }
    panic!("no free port pair below 32768 for a cluster node")
}

fn ping(port: u16) -> bool {
    redis_cli(port, &["PING"]).trim() == "PONG"
}

/// A Redis Cluster of `redis-server --cluster-enabled yes` masters on free ports, made one
/// by `redis-cli --cluster create` (slots spread evenly, no replicas); killed when dropped.
pub struct RedisCluster {
    children: Vec<Option<Child>>,
    /// The masters' ports, in creation order.
    pub ports: Vec<u16>,
    dir: PathBuf,
}

impl RedisCluster {
    /// Starts `masters` masters and makes them one cluster; returns once every node says
    /// the cluster is up.
    pub fn start(masters: usize) -> Self {
        let dir = std::env::temp_dir().join(format!(
            "iolite-redis-cluster-{}-{}",
            std::process::id(),
            free_port()
        ));
        std::fs::create_dir_all(&dir).unwrap();
        let ports: Vec<u16> = (0..masters).map(|_| free_node_port()).collect();
        let mut c = Self {
            children: Vec::new(),
            ports: ports.clone(),
            dir,
        };
        for i in 0..masters {
            let child = c.spawn(i);
            c.children.push(Some(child));
        }
        let mut create = Command::new("redis-cli");
        create.arg("--cluster").arg("create");
        for p in &ports {
            create.arg(format!("127.0.0.1:{p}"));
        }
        let out = create
            .args(["--cluster-replicas", "0", "--cluster-yes"])
            .output()
            .expect("cannot run `redis-cli` (Debian: apt-get install redis-tools)");
        assert!(
            out.status.success(),
            "redis-cli --cluster create failed: {}",
            String::from_utf8_lossy(&out.stdout)
        );
        c.wait_ok();
        c
    }

    fn spawn(&self, i: usize) -> Child {
        let port = self.ports[i];
        let child = Command::new("redis-server")
            .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no"])
            .args(["--cluster-enabled", "yes", "--cluster-node-timeout", "2000"])
            .arg("--cluster-config-file")
            .arg(self.dir.join(format!("nodes-{port}.conf")))
            .arg("--dir")
            .arg(&self.dir)
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot run `redis-server` ({e})"));
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while !ping(port) {
            assert!(
                std::time::Instant::now() < deadline,
                "redis-server did not come up on port {port}"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        child
    }

    /// Waits until every node says the cluster is up with all its slots.
    pub fn wait_ok(&self) {
        let deadline = std::time::Instant::now() + Duration::from_secs(20);
        loop {
            let ok = self.ports.iter().all(|p| {
                let info = redis_cli(*p, &["CLUSTER", "INFO"]);
                info.contains("cluster_state:ok") && info.contains("cluster_slots_ok:16384")
            });
            if ok {
                return;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "the Redis Cluster did not come up"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// `redis+cluster://127.0.0.1:P1,127.0.0.1:P2,...`, for iolite-redis.
    pub fn url(&self) -> String {
        let hosts: Vec<String> = self
            .ports
            .iter()
            .map(|p| format!("127.0.0.1:{p}"))
            .collect();
        format!("redis+cluster://{}", hosts.join(","))
    }

    /// `redis://127.0.0.1:P1,redis://127.0.0.1:P2,...`, for node-redis's `createCluster`.
    pub fn node_urls(&self) -> String {
        let urls: Vec<String> = self
            .ports
            .iter()
            .map(|p| format!("redis://127.0.0.1:{p}"))
            .collect();
        urls.join(",")
    }

    /// Kills master `i` (its slots are down until it is back: no replicas).
    pub fn stop(&mut self, i: usize) {
        if let Some(mut c) = self.children[i].take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Starts master `i` again: it keeps its identity and slots (its nodes file), not its
    /// data.
    pub fn restart(&mut self, i: usize) {
        self.stop(i);
        let child = self.spawn(i);
        self.children[i] = Some(child);
        self.wait_ok();
    }
}

impl Drop for RedisCluster {
    fn drop(&mut self) {
        for i in 0..self.children.len() {
            self.stop(i);
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// What `redis-cli -p port args...` prints (empty when it cannot run).
pub fn redis_cli(port: u16, args: &[&str]) -> String {
    Command::new("redis-cli")
        .args(["-p", &port.to_string()])
        .args(args)
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
        .unwrap_or_default()
}
