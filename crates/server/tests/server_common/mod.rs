//! Test helpers: the real `iolite` binary in a temporary directory, a small HTTP/1.1
//! client with keep-alive (plain or TLS), and Socket.IO clients of the chat.

#![allow(dead_code)]

use std::future::Future;
use std::io::{BufRead, BufReader, Read};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1::SendRequest;
use hyper_util::rt::TokioIo;
use iolite_client::{Lifecycle, Manager, Socket, Transport};
use serde_json::Value;

/// The binary under test.
pub fn binary() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_iolite"))
}

/// A command for the binary in `dir`, with no `IOLITE_*` variable inherited from the
/// environment the tests run in.
pub fn command(dir: &Path) -> Command {
    let mut cmd = Command::new(binary());
    cmd.current_dir(dir);
    for (k, _) in std::env::vars_os() {
        if k.to_string_lossy().starts_with("IOLITE_") || k == "RUST_LOG" {
            cmd.env_remove(k);
        }
    }
    cmd
}

/// What a finished run printed and how it ended.
pub struct Output {
    pub status: ExitStatus,
    pub stdout: String,
    pub stderr: String,
}

/// Runs the binary to completion (for `--help`, `--print-config` and refused
/// configurations), failing after 20 s.
pub fn run_to_end(dir: &Path, args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut child = command(dir)
        .args(args)
        .envs(env.iter().copied())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start iolite");
    let mut out = child.stdout.take().expect("stdout");
    let mut err = child.stderr.take().expect("stderr");
    let t_out = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = out.read_to_string(&mut s);
        s
    });
    let t_err = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = err.read_to_string(&mut s);
        s
    });
    let deadline = Instant::now() + Duration::from_secs(20);
    let status = loop {
        if let Some(s) = child.try_wait().expect("wait") {
            break s;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("iolite {args:?} did not exit within 20 s");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    Output {
        status,
        stdout: t_out.join().unwrap_or_default(),
        stderr: t_err.join().unwrap_or_default(),
    }
}

/// A running `iolite`, killed when dropped. Its working directory (where `data/` goes) is
/// a fresh temporary directory unless given.
pub struct Server {
    child: Child,
    pub addr: SocketAddr,
    /// `http://127.0.0.1:PORT` or `https://...`.
    pub url: String,
    lines: Arc<Mutex<Vec<String>>>,
    stderr: Arc<Mutex<String>>,
    pub dir: Arc<tempfile::TempDir>,
}

impl Server {
    /// Starts the binary with these flags, on a free port of 127.0.0.1.
    pub fn start(args: &[&str]) -> Self {
        Self::start_with(args, &[])
    }

    /// Starts the binary with these flags and variables; `IOLITE_PORT=0` unless the
    /// caller sets a port.
    pub fn start_with(args: &[&str], env: &[(&str, &str)]) -> Self {
        Self::start_in(Arc::new(tempfile::tempdir().expect("tempdir")), args, env)
    }

    /// [`Server::start_with`] in a given directory.
    pub fn start_in(dir: Arc<tempfile::TempDir>, args: &[&str], env: &[(&str, &str)]) -> Self {
        let mut cmd = command(dir.path());
        if !env.iter().any(|(k, _)| *k == "IOLITE_PORT") {
            cmd.env("IOLITE_PORT", "0");
        }
        let mut child = cmd
            .args(args)
            .envs(env.iter().copied())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start iolite");
        let stdout = child.stdout.take().expect("stdout");
        let stderr_pipe = child.stderr.take().expect("stderr");
        let lines = Arc::new(Mutex::new(Vec::new()));
        let stderr = Arc::new(Mutex::new(String::new()));
        let (tx, rx) = std::sync::mpsc::channel();
        {
            let lines = lines.clone();
            std::thread::spawn(move || {
                let mut tx = Some(tx);
                for line in BufReader::new(stdout).lines() {
                    let Ok(line) = line else { break };
                    if let Some(at) = line.find("listening on ") {
                        // Up to a space (text logs) or a quote (JSON logs).
                        let url = line[at + "listening on ".len()..]
                            .split(|c: char| c.is_whitespace() || c == '"')
                            .next()
                            .unwrap_or("")
                            .to_owned();
                        lines.lock().unwrap().push(line);
                        if let Some(tx) = tx.take() {
                            let _ = tx.send(url);
                        }
                        continue;
                    }
                    lines.lock().unwrap().push(line);
                }
            });
        }
        {
            let stderr = stderr.clone();
            std::thread::spawn(move || {
                for line in BufReader::new(stderr_pipe).lines() {
                    let Ok(line) = line else { break };
                    let mut s = stderr.lock().unwrap();
                    s.push_str(&line);
                    s.push('\n');
                }
            });
        }
        let url = match rx.recv_timeout(Duration::from_secs(30)) {
            Ok(url) => url,
            Err(_) => {
                let _ = child.kill();
                let _ = child.wait();
                std::thread::sleep(Duration::from_millis(100));
                panic!(
                    "iolite did not print `listening on`; stdout:\n{}\nstderr:\n{}",
                    lines.lock().unwrap().join("\n"),
                    stderr.lock().unwrap()
                );
            }
        };
        let addr: SocketAddr = url
            .split_once("://")
            .map(|(_, a)| a)
            .unwrap_or("")
            .parse()
            .unwrap_or_else(|e| panic!("bad listen URL {url:?}: {e}"));
        Self {
            child,
            addr,
            url,
            lines,
            stderr,
            dir,
        }
    }

    /// The port.
    pub fn port(&self) -> u16 {
        self.addr.port()
    }

    /// Everything logged so far.
    pub fn log(&self) -> String {
        self.lines.lock().unwrap().join("\n")
    }

    /// Waits until a log line contains `needle`.
    pub async fn wait_log(&self, needle: &str, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline {
            if self
                .lines
                .lock()
                .unwrap()
                .iter()
                .any(|l| l.contains(needle))
            {
                return true;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        false
    }

    /// Sends SIGTERM.
    pub fn term(&self) {
        let ok = Command::new("kill")
            .arg("-TERM")
            .arg(self.child.id().to_string())
            .status()
            .expect("run kill")
            .success();
        assert!(ok, "kill -TERM failed");
    }

    /// Waits for the process to exit.
    pub async fn wait_exit(&mut self, timeout: Duration) -> Option<ExitStatus> {
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline {
            if let Some(s) = self.child.try_wait().expect("try_wait") {
                return Some(s);
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        None
    }

    /// A keep-alive HTTP connection to the server.
    pub async fn http(&self) -> Http {
        Http::connect(self.addr).await.expect("connect")
    }

    /// One request on a fresh connection.
    pub async fn request(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: Option<&[u8]>,
    ) -> Resp {
        self.http()
            .await
            .request(method, path, headers, body)
            .await
            .expect("request")
    }

    /// `GET path` on a fresh connection.
    pub async fn get(&self, path: &str) -> Resp {
        self.request("GET", path, &[], None).await
    }

    /// A Socket.IO manager for this server on `transports`, reconnection off.
    pub fn manager(&self, transports: &[Transport]) -> Manager {
        Manager::builder(&self.url)
            .transports(transports.iter().copied())
            .reconnection(false)
            .timeout(Duration::from_secs(5))
            .build()
            .expect("manager")
    }

    /// A guest of the chat, connected on `transports`.
    pub async fn guest(&self, name: &str, transports: &[Transport]) -> Socket {
        within(
            self.manager(transports)
                .socket("/")
                .auth(serde_json::json!({ "name": name }))
                .connect(),
        )
        .await
        .expect("connect")
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A response, read whole.
#[derive(Debug)]
pub struct Resp {
    pub status: u16,
    pub headers: http::HeaderMap,
    pub body: Vec<u8>,
}

impl Resp {
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {:?}", self.text()))
    }
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
}

/// An HTTP/1.1 connection with keep-alive.
pub struct Http {
    sender: SendRequest<Full<Bytes>>,
    host: String,
}

impl Http {
    /// Over plain TCP.
    pub async fn connect(addr: SocketAddr) -> std::io::Result<Self> {
        let tcp = tokio::net::TcpStream::connect(addr).await?;
        Self::over(tcp, addr.to_string()).await
    }

    /// Over TLS, with this client configuration, to `name` (the certificate's name).
    pub async fn connect_tls(
        addr: SocketAddr,
        config: Arc<rustls::ClientConfig>,
        name: &str,
    ) -> std::io::Result<Self> {
        let tcp = tokio::net::TcpStream::connect(addr).await?;
        let server_name = rustls::pki_types::ServerName::try_from(name.to_owned())
            .map_err(|e| std::io::Error::other(e.to_string()))?;
        let tls = tokio_rustls::TlsConnector::from(config)
            .connect(server_name, tcp)
            .await?;
        Self::over(tls, format!("{name}:{}", addr.port())).await
    }

    async fn over<S>(io: S, host: String) -> std::io::Result<Self>
    where
        S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
    {
        let (sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(io))
            .await
            .map_err(std::io::Error::other)?;
        tokio::spawn(async move {
            let _ = conn.with_upgrades().await;
        });
        Ok(Self { sender, host })
    }

    /// Sends a request and reads the whole response.
    pub async fn request(
        &mut self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: Option<&[u8]>,
    ) -> Result<Resp, hyper::Error> {
        let mut b = http::Request::builder()
            .method(method)
            .uri(path)
            .header("host", &self.host);
        for (k, v) in headers {
            b = b.header(*k, *v);
        }
        let req = b
            .body(Full::new(Bytes::copy_from_slice(body.unwrap_or_default())))
            .expect("request");
        self.sender.ready().await?;
        let resp = self.sender.send_request(req).await?;
        let status = resp.status().as_u16();
        let headers = resp.headers().clone();
        let body = resp.into_body().collect().await?.to_bytes().to_vec();
        Ok(Resp {
            status,
            headers,
            body,
        })
    }

    /// Whether the server closed the connection.
    pub fn is_closed(&self) -> bool {
        self.sender.is_closed()
    }
}

/// Awaits `f`, failing the test after 10 s.
pub async fn within<F: Future>(f: F) -> F::Output {
    tokio::time::timeout(Duration::from_secs(10), f)
        .await
        .expect("timed out")
}

/// The next event named `name`, skipping others (`hello`, `presence`...).
pub async fn next_named(s: &Socket, name: &str) -> iolite_client::Event {
    within(async {
        loop {
            let e = s.next_event().await.expect("socket closed");
            if e.name == name {
                return e;
            }
        }
    })
    .await
}

/// Emits with an ack and returns the answer's first argument.
pub async fn call(s: &Socket, event: &str, payload: Value) -> Value {
    let ack = s.emit_with_ack(event, &(payload,)).expect("emit");
    within(ack)
        .await
        .expect("ack")
        .get(0)
        .cloned()
        .unwrap_or(Value::Null)
}

/// The next disconnect of a socket, skipping other lifecycle events.
pub async fn next_disconnect(s: &Socket) -> iolite_client::DisconnectReason {
    within(async {
        loop {
            if let Lifecycle::Disconnect(r) = s.next_lifecycle().await {
                return r;
            }
        }
    })
    .await
}

/// A free TCP port on 127.0.0.1 (free when asked; the caller binds it soon after).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("free port")
}

/// The value of a sample line (`name{labels} value`) in a Prometheus exposition.
pub fn sample(text: &str, series: &str) -> Option<f64> {
    text.lines()
        .find(|l| l.starts_with(series) && l[series.len()..].starts_with(' '))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
}
