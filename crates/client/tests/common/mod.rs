//! Test helpers: a real Socket.IO server to talk to, and managers set up for fast tests.
//!
//! The server is `tests/peers/reference-server.mjs` (Node's socket.io, implementing
//! `tests/peers/CONTRACT.md`), started with `node` from the workspace root. Set
//! `PEER_SERVER_CMD` to run another implementation of the contract instead (a shell
//! command, run from the workspace root, that prints `listening on <port>`).

#![allow(dead_code)]

use std::future::Future;
use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use iolite_client::{Lifecycle, Manager, ManagerBuilder, Socket, Transport};
use serde_json::Value;

/// A running peer server, killed when dropped.
pub struct Peer {
    child: Child,
    pub port: u16,
    pub url: String,
}

impl Peer {
    /// Starts the server with the contract's defaults.
    pub fn start() -> Self {
        Self::start_with(&[])
    }

    /// Starts the server with extra environment variables (`PING_INTERVAL`, ...).
    pub fn start_with(env: &[(&str, &str)]) -> Self {
        let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..");
        let cmd = std::env::var("PEER_SERVER_CMD")
            .unwrap_or_else(|_| "node tests/peers/reference-server.mjs".to_owned());
        let mut child = Command::new("sh")
            .arg("-c")
            .arg(format!("exec {cmd}"))
            .current_dir(&root)
            .env("PORT", "0")
            .envs(env.iter().copied())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start the peer server");
        let stdout = child.stdout.take().expect("piped stdout");
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            let mut tx = Some(tx);
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if let Some(port) = line.strip_prefix("listening on ") {
                    if let Some(tx) = tx.take() {
                        let _ = tx.send(port.trim().parse::<u16>().ok());
                    }
                }
                // Keep reading so the server never blocks on a full pipe.
            }
        });
        let port = match rx.recv_timeout(Duration::from_secs(20)) {
            Ok(Some(p)) => p,
            other => {
                let _ = child.kill();
                panic!("peer server `{cmd}` did not print `listening on <port>`: {other:?}");
            }
        };
        Self {
            child,
            port,
            url: format!("http://127.0.0.1:{port}"),
        }
    }

    /// Options for a manager of this server on `transports`, with fast reconnection.
    pub fn builder(&self, transports: &[Transport]) -> ManagerBuilder {
        Manager::builder(&self.url)
            .transports(transports.iter().copied())
            .reconnection_delay(Duration::from_millis(50))
            .reconnection_delay_max(Duration::from_millis(200))
            .randomization_factor(0.0)
            .timeout(Duration::from_secs(5))
    }

    /// A manager on `transports`.
    pub fn manager(&self, transports: &[Transport]) -> Manager {
        self.builder(transports).build().expect("manager")
    }

    /// A connected socket on namespace `/`.
    pub async fn socket(&self, transports: &[Transport]) -> Socket {
        within(self.manager(transports).socket("/").connect())
            .await
            .expect("connect")
    }
}

impl Drop for Peer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The transport modes every scenario runs on.
pub const MODES: [&[Transport]; 3] = [
    &[Transport::WebSocket],
    &[Transport::Polling],
    &[Transport::Polling, Transport::WebSocket],
];

/// Awaits `f`, failing the test after 10 s.
pub async fn within<F: Future>(f: F) -> F::Output {
    tokio::time::timeout(Duration::from_secs(10), f)
        .await
        .expect("timed out")
}

/// Emits with an ack and returns the answer's arguments as JSON.
pub async fn call<T: serde::Serialize + ?Sized>(s: &Socket, ev: &str, args: &T) -> Vec<Value> {
    let ack = s.emit_with_ack(ev, args).expect("emit");
    within(ack).await.expect("ack").values().to_vec()
}

/// The next event (failing after 10 s).
pub async fn next_event(s: &Socket) -> iolite_client::Event {
    within(s.next_event()).await.expect("socket gone")
}

/// The next lifecycle event (failing after 10 s).
pub async fn next_lifecycle(s: &Socket) -> Lifecycle {
    within(s.next_lifecycle()).await
}

/// Waits until the manager runs on `t`.
pub async fn wait_transport(m: &Manager, t: Transport) {
    within(async {
        while m.transport() != Some(t) {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await;
}

/// The disconnect reason the server recorded for socket `id`, asked through `via`.
pub async fn last_reason(via: &Socket, id: &str) -> Value {
    within(async {
        loop {
            let r = call(via, "last-reason", &(id,)).await;
            if r[0] != Value::Null {
                return r[0].clone();
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await
}
