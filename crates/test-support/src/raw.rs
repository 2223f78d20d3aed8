//! A raw TCP client for adversarial tests: it writes any bytes and reads server frames.

use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::frames::ServerFrame;

/// A valid upgrade request for `path` on `host`.
pub fn upgrade_request(host: &str, path: &str) -> String {
    format!(
        "GET {path} HTTP/1.1\r\nHost: {host}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
    )
}

/// A client that speaks raw bytes.
pub struct RawClient {
    /// The socket.
    pub stream: TcpStream,
    buf: Vec<u8>,
}

/// What the server did, as seen from the raw client.
#[derive(Debug, PartialEq, Eq)]
pub enum Event {
    /// A frame.
    Frame(ServerFrame),
    /// The server closed the TCP connection.
    Eof,
    /// Nothing within the timeout.
    Timeout,
}

impl RawClient {
    /// Connects to `addr` without any handshake.
    pub async fn connect(addr: std::net::SocketAddr) -> std::io::Result<Self> {
        let stream = TcpStream::connect(addr).await?;
        stream.set_nodelay(true)?;
        Ok(Self {
            stream,
            buf: Vec::new(),
        })
    }

    /// Connects and completes a WebSocket handshake; panics if the server refuses.
    pub async fn handshake(addr: std::net::SocketAddr) -> std::io::Result<Self> {
        let mut c = Self::connect(addr).await?;
        c.send(upgrade_request(&addr.to_string(), "/").as_bytes())
            .await?;
        let head = c.read_http_head(Duration::from_secs(5)).await?;
        if !head.starts_with("HTTP/1.1 101") {
            return Err(std::io::Error::other(format!("handshake refused: {head}")));
        }
        Ok(c)
    }

    /// Writes bytes.
    pub async fn send(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        self.stream.write_all(bytes).await
    }

    /// Reads until the end of an HTTP head and returns it as text.
    pub async fn read_http_head(&mut self, timeout: Duration) -> std::io::Result<String> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            if let Some(i) = self.buf.windows(4).position(|w| w == b"\r\n\r\n") {
                let head: Vec<u8> = self.buf.drain(..i + 4).collect();
                return Ok(String::from_utf8_lossy(&head).into_owned());
            }
            if self.fill(deadline).await? == 0 {
                let rest = String::from_utf8_lossy(&self.buf).into_owned();
                self.buf.clear();
                return Ok(rest);
            }
        }
    }

    /// The next frame, EOF, or a timeout.
    pub async fn next_event(&mut self, timeout: Duration) -> std::io::Result<Event> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            if let Some((f, n)) = ServerFrame::parse(&self.buf) {
                self.buf.drain(..n);
                return Ok(Event::Frame(f));
            }
            match self.fill(deadline).await {
                Ok(0) => return Ok(Event::Eof),
                Ok(_) => {}
                Err(e) if e.kind() == std::io::ErrorKind::TimedOut => return Ok(Event::Timeout),
                Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => return Ok(Event::Eof),
                Err(e) => return Err(e),
            }
        }
    }

    /// Reads frames until a close frame and returns its code; `None` if the connection
    /// ended or timed out without one.
    pub async fn expect_close(&mut self, timeout: Duration) -> std::io::Result<Option<u16>> {
        loop {
            match self.next_event(timeout).await? {
                Event::Frame(f) if f.opcode == 0x8 => return Ok(f.close_code()),
                Event::Frame(_) => {}
                Event::Eof | Event::Timeout => return Ok(None),
            }
        }
    }

    async fn fill(&mut self, deadline: tokio::time::Instant) -> std::io::Result<usize> {
        let mut tmp = [0u8; 8192];
        match tokio::time::timeout_at(deadline, self.stream.read(&mut tmp)).await {
            Ok(Ok(n)) => {
                self.buf.extend_from_slice(&tmp[..n]);
                Ok(n)
            }
            Ok(Err(e)) => Err(e),
            Err(_) => Err(std::io::ErrorKind::TimedOut.into()),
        }
    }
}
