//! A loopback server for integration tests: it binds 127.0.0.1:0, accepts WebSockets
//! with a given [`Config`], runs a handler per connection (echo by default) and reports
//! how every connection ended, so tests can assert on the server's side of the story.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use http::Request;
use iolite_ws::{
    accept, accept_connection_with, accept_with, ClientBuilder, CloseCode, Config, Connection,
    Error, Message, Offer, ProtocolError, Reject, WebSocket,
};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use crate::raw::RawClient;

/// How long helpers wait for something that should take milliseconds.
pub const PATIENCE: Duration = Duration::from_secs(5);

/// A handshake policy, as [`accept_with`] takes it.
pub type Policy =
    Arc<dyn Fn(&Request<()>, &Offer) -> Result<Option<String>, Reject> + Send + Sync + 'static>;

/// How one server-side connection ended.
#[derive(Debug)]
pub enum End {
    /// The opening handshake failed or was refused.
    Handshake(Error),
    /// The connection ended after the handshake: the error `recv` returned, or `None`
    /// after a clean close.
    Closed(Option<Error>),
}

/// A running loopback server. Dropping it stops accepting; open connections carry on.
pub struct Server {
    addr: SocketAddr,
    ends: mpsc::UnboundedReceiver<End>,
    accept_loop: JoinHandle<()>,
}

impl Server {
    /// An echo server: text and binary messages come back as they were sent.
    pub async fn echo(config: Config) -> Self {
        Self::start(config, None, |ws, _| echo(ws)).await
    }

    /// An echo server that runs `policy` on every upgrade request (see [`accept_with`]).
    pub async fn echo_with_policy<P>(config: Config, policy: P) -> Self
    where
        P: Fn(&Request<()>, &Offer) -> Result<Option<String>, Reject> + Send + Sync + 'static,
    {
        Self::start(config, Some(Arc::new(policy)), |ws, _| echo(ws)).await
    }

    /// An echo server that hands connections whose path starts with `/take` over to the
    /// test, which then drives the server side itself (sends, `recv`, close).
    pub async fn echo_and_hand_over(
        config: Config,
    ) -> (Self, mpsc::UnboundedReceiver<WebSocket<TcpStream>>) {
        let (tx, taken) = mpsc::unbounded_channel();
        let server = Self::start(config, None, move |ws, request| {
            let tx = tx.clone();
            async move {
                if request.uri().path().starts_with("/take") {
                    let _ = tx.send(ws);
                    None
                } else {
                    echo(ws).await
                }
            }
        })
        .await;
        (server, taken)
    }

    /// A server running `handler` on every accepted connection. The handler returns the
    /// error that ended the connection, if any, which [`Server::next_end`] reports.
    pub async fn start<H, F>(config: Config, policy: Option<Policy>, handler: H) -> Self
    where
        H: Fn(WebSocket<TcpStream>, Request<()>) -> F + Send + Sync + 'static,
        F: Future<Output = Option<Error>> + Send + 'static,
    {
        let config = Arc::new(config);
        let handler = Arc::new(handler);
        Self::serve(move |tcp| {
            let (config, policy, handler) = (config.clone(), policy.clone(), handler.clone());
            async move {
                let accepted = match policy {
                    Some(p) => accept_with(tcp, config, move |r, o| p(r, o)).await,
                    None => accept(tcp, config).await,
                };
                match accepted {
                    Err(e) => End::Handshake(e),
                    Ok((ws, request)) => End::Closed(handler(ws, request).await),
                }
            }
        })
        .await
    }

    /// An echo server on one-task [`Connection`]s: the read loop also writes.
    pub async fn echo_one_task(config: Config) -> Self {
        Self::start_one_task(config, |conn, _| echo_connection(conn)).await
    }

    /// As [`Server::start`], with every connection a one-task [`Connection`].
    pub async fn start_one_task<H, F>(config: Config, handler: H) -> Self
    where
        H: Fn(Connection<TcpStream>, Request<()>) -> F + Send + Sync + 'static,
        F: Future<Output = Option<Error>> + Send + 'static,
    {
        let config = Arc::new(config);
        let handler = Arc::new(handler);
        Self::serve(move |tcp| {
            let (config, handler) = (config.clone(), handler.clone());
            async move {
                match accept_connection_with(tcp, config, |_, _| Ok(None)).await {
                    Err(e) => End::Handshake(e),
                    Ok((conn, request)) => End::Closed(handler(conn, request).await),
                }
            }
        })
        .await
    }

    /// Listens on 127.0.0.1:0 and runs `connection` on every accepted socket in a task of
    /// its own, reporting how each ended.
    async fn serve<C, F>(connection: C) -> Self
    where
        C: Fn(TcpStream) -> F + Send + 'static,
        F: Future<Output = End> + Send + 'static,
    {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind 127.0.0.1:0");
        let addr = listener.local_addr().expect("listener address");
        let (tx, ends) = mpsc::unbounded_channel();
        let accept_loop = tokio::spawn(async move {
            loop {
                let Ok((tcp, _)) = listener.accept().await else {
                    // Out of file descriptors, say: back off rather than spin.
                    tokio::time::sleep(Duration::from_millis(10)).await;
                    continue;
                };
                let _ = tcp.set_nodelay(true);
                let (end, tx) = (connection(tcp), tx.clone());
                tokio::spawn(async move {
                    let _ = tx.send(end.await);
                });
            }
        });
        Self {
            addr,
            ends,
            accept_loop,
        }
    }

    /// The listening address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `ws://` URL of the server's root.
    pub fn url(&self) -> String {
        format!("ws://{}/", self.addr)
    }

    /// How the next connection ended, in the order they ended; `None` on timeout.
    pub async fn next_end(&mut self, timeout: Duration) -> Option<End> {
        tokio::time::timeout(timeout, self.ends.recv())
            .await
            .ok()
            .flatten()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.accept_loop.abort();
    }
}

impl End {
    /// The protocol error that failed the connection, if that is how it ended.
    pub fn protocol_error(self) -> Option<ProtocolError> {
        match self {
            Self::Closed(Some(Error::Protocol(e))) => Some(e),
            _ => None,
        }
    }
}

/// Runs a raw client against the server at `addr`: handshake, write `bytes`, and return
/// the code of the close frame the server answers with (`None` if it closed without one
/// or said nothing within [`PATIENCE`]). After a close frame the server must also close
/// the TCP connection, or this panics.
pub async fn close_code_for(addr: SocketAddr, bytes: &[u8]) -> Option<u16> {
    let mut raw = RawClient::handshake(addr).await.expect("raw handshake");
    close_code_on(&mut raw, bytes).await
}

/// As [`close_code_for`], on a connection the test opened (with extensions, say).
pub async fn close_code_on(raw: &mut RawClient, bytes: &[u8]) -> Option<u16> {
    let code = raw
        .send_until_close(bytes, PATIENCE)
        .await
        .expect("read the server's answer");
    if code.is_some() {
        assert!(
            raw.expect_eof(PATIENCE).await.expect("read until EOF"),
            "server sent close {code:?} but kept the TCP connection open"
        );
    }
    code
}

/// Echoes text and binary messages until the connection ends; returns `recv`'s error.
pub async fn echo<S>(mut ws: WebSocket<S>) -> Option<Error>
where
    S: AsyncRead + AsyncWrite + Send + 'static,
{
    while let Some(next) = ws.recv().await {
        match next {
            Ok(msg @ (Message::Text(_) | Message::Binary(_))) => {
                let _ = ws.send(msg);
            }
            Ok(_) => {}
            Err(e) => return Some(e),
        }
    }
    None
}

/// As [`echo`], on a one-task [`Connection`].
pub async fn echo_connection<S>(mut conn: Connection<S>) -> Option<Error>
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    while let Some(next) = conn.recv().await {
        match next {
            Ok(msg @ (Message::Text(_) | Message::Binary(_))) => {
                let _ = conn.send(msg);
            }
            Ok(_) => {}
            Err(e) => return Some(e),
        }
    }
    None
}

/// As [`pair`], with the server side a one-task [`Connection`].
pub async fn pair_one_task(config: Config) -> (Connection<TcpStream>, RawClient) {
    let (tcp, client) = raw_client_on_fresh_listener().await;
    let (conn, _) = accept_connection_with(tcp, Arc::new(config), |_, _| Ok(None))
        .await
        .expect("server handshake");
    (conn, raw_client(client).await)
}

/// Accepts one WebSocket with `config` on a fresh listener and connects a [`RawClient`]
/// to it: the test drives the server side directly.
pub async fn pair(config: Config) -> (WebSocket<TcpStream>, RawClient) {
    let (tcp, client) = raw_client_on_fresh_listener().await;
    let (ws, _) = accept(tcp, Arc::new(config))
        .await
        .expect("server handshake");
    (ws, raw_client(client).await)
}

/// A fresh listener's one accepted socket, and the raw client's handshake on it (which
/// completes once the server side answers).
async fn raw_client_on_fresh_listener() -> (TcpStream, JoinHandle<std::io::Result<RawClient>>) {
    let listener = TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind 127.0.0.1:0");
    let addr = listener.local_addr().expect("listener address");
    let client = tokio::spawn(RawClient::handshake(addr));
    let (tcp, _) = listener.accept().await.expect("accept");
    tcp.set_nodelay(true).expect("set_nodelay");
    (tcp, client)
}

async fn raw_client(handshake: JoinHandle<std::io::Result<RawClient>>) -> RawClient {
    handshake
        .await
        .expect("client task")
        .expect("client handshake")
}

/// Checks that the server at `addr` still serves a well-behaved client: a text and a
/// binary message make the round trip. Panics otherwise.
pub async fn assert_echo(addr: SocketAddr) {
    let round_trip = async {
        let (mut ws, _) = ClientBuilder::new(format!("ws://{addr}/"))
            .connect()
            .await
            .expect("a well-behaved client connects");
        let sent = [
            Message::text("still serving"),
            Message::binary(vec![7u8; 300]),
        ];
        for msg in &sent {
            ws.send(msg.clone()).expect("queue message");
        }
        for want in sent {
            loop {
                match ws.recv().await {
                    Some(Ok(Message::Ping(_) | Message::Pong(_))) => continue,
                    Some(Ok(got)) => {
                        assert_eq!(got, want, "echo of a well-behaved client");
                        break;
                    }
                    other => panic!("well-behaved client not served: {other:?}"),
                }
            }
        }
        let _ = ws.sender().close(CloseCode::NORMAL, "");
    };
    tokio::time::timeout(PATIENCE, round_trip)
        .await
        .expect("echo round trip within 5 s");
}

/// This process's resident set size in bytes (Linux `/proc/self/status`), or 0 where
/// it cannot be read. The servers under test run in the test process, so a test can
/// bound the memory an attack costs them.
pub fn rss_bytes() -> usize {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<usize>().ok())
        .map_or(0, |kib| kib << 10)
}

/// Whether a process still holds the IPv4 TCP socket from `local` to `remote` open
/// (Linux `/proc/net/tcp`: a socket that was closed, even with unsent data still in the
/// kernel, has no inode). Lets a test see that the server let go of a connection
/// without reading from the client's side.
pub fn socket_held(local: SocketAddr, remote: SocketAddr) -> bool {
    let table = std::fs::read_to_string("/proc/net/tcp").unwrap_or_default();
    let port = |field: &str| {
        field
            .rsplit(':')
            .next()
            .and_then(|p| u16::from_str_radix(p, 16).ok())
    };
    table.lines().skip(1).any(|line| {
        let f: Vec<&str> = line.split_whitespace().collect();
        f.len() > 9
            && port(f[1]) == Some(local.port())
            && port(f[2]) == Some(remote.port())
            && f[9] != "0"
    })
}
