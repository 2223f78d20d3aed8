//! A raw TCP client for adversarial tests: it writes any bytes and reads server frames.

use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::frames::{FrameSpec, ServerFrame};

/// A valid upgrade request for `path` on `host`.
pub fn upgrade_request(host: &str, path: &str) -> String {
    format!(
        "GET {path} HTTP/1.1\r\nHost: {host}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
    )
}

/// The status code of an HTTP response head (`HTTP/1.1 431 ...` gives 431).
pub fn status(head: &str) -> Option<u16> {
    head.split_whitespace().nth(1)?.parse().ok()
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

    /// Connects and completes a WebSocket handshake; an error if the server refuses.
    pub async fn handshake(addr: std::net::SocketAddr) -> std::io::Result<Self> {
        Self::handshake_path(addr, "/").await
    }

    /// As [`RawClient::handshake`], requesting `path`.
    pub async fn handshake_path(addr: std::net::SocketAddr, path: &str) -> std::io::Result<Self> {
        let mut c = Self::connect(addr).await?;
        c.send(upgrade_request(&addr.to_string(), path).as_bytes())
            .await?;
        let head = c.read_http_head(Duration::from_secs(5)).await?;
        if !head.starts_with("HTTP/1.1 101") {
            return Err(std::io::Error::other(format!("handshake refused: {head}")));
        }
        Ok(c)
    }

    /// Connects and completes a WebSocket handshake for `path` with `extra` header lines
    /// (each ending in `\r\n`) added to the request; returns the client and the server's
    /// 101 head.
    pub async fn handshake_with(
        addr: std::net::SocketAddr,
        path: &str,
        extra: &str,
    ) -> std::io::Result<(Self, String)> {
        let request = upgrade_request(&addr.to_string(), path);
        // The request ends with the blank line; the extra headers go just before it.
        let head = request.strip_suffix("\r\n").unwrap_or(&request);
        let request = format!("{head}{extra}\r\n");
        let mut c = Self::connect(addr).await?;
        c.send(request.as_bytes()).await?;
        let head = c.read_http_head(Duration::from_secs(5)).await?;
        if !head.starts_with("HTTP/1.1 101") {
            return Err(std::io::Error::other(format!("handshake refused: {head}")));
        }
        Ok((c, head))
    }

    /// Connects, writes `request` as is and returns the server's HTTP response head
    /// (empty if the server closed without answering).
    pub async fn http_exchange(
        addr: std::net::SocketAddr,
        request: &[u8],
    ) -> std::io::Result<String> {
        let mut c = Self::connect(addr).await?;
        c.send(request).await?;
        c.read_http_head(Duration::from_secs(5)).await
    }

    /// The client's local address (the server sees it as the peer).
    pub fn local_addr(&self) -> std::io::Result<std::net::SocketAddr> {
        self.stream.local_addr()
    }

    /// Connects to `addr` and writes an upgrade request for `/` with `frames` right behind it,
    /// in one write (as a client that does not wait for the `101` may); returns the client
    /// and the response head it has read.
    pub async fn upgrade_with_frames(
        addr: std::net::SocketAddr,
        frames: &[FrameSpec],
        timeout: Duration,
    ) -> std::io::Result<(Self, String)> {
        let mut raw = Self::connect(addr).await?;
        let mut bytes = upgrade_request(&addr.to_string(), "/").into_bytes();
        for f in frames {
            bytes.extend(f.encode());
        }
        raw.send(&bytes).await?;
        let head = raw.read_http_head(timeout).await?;
        Ok((raw, head))
    }

    /// Writes bytes.
    pub async fn send(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        self.stream.write_all(bytes).await
    }

    /// Writes one frame exactly as specified.
    pub async fn send_frame(&mut self, frame: &FrameSpec) -> std::io::Result<()> {
        self.send(&frame.encode()).await
    }

    /// Writes `bytes` while reading server frames, and returns the code of the first close
    /// frame; `None` on EOF or timeout without one. Write errors are ignored: a server
    /// that fails the connection in the middle of a large write may reset it, and the
    /// close frame that came before is what the test is after.
    pub async fn send_until_close(
        &mut self,
        bytes: &[u8],
        timeout: Duration,
    ) -> std::io::Result<Option<u16>> {
        let deadline = tokio::time::Instant::now() + timeout;
        let Self { stream, buf } = self;
        let (mut rd, mut wr) = stream.split();
        let write = async {
            let _ = wr.write_all(bytes).await;
            std::future::pending::<()>().await;
        };
        let read = async {
            let mut tmp = vec![0u8; 64 << 10];
            loop {
                while let Some((f, n)) = ServerFrame::parse(buf) {
                    buf.drain(..n);
                    if f.opcode == 0x8 {
                        return Ok(f.close_code());
                    }
                }
                match rd.read(&mut tmp).await {
                    Ok(0) => return Ok(None),
                    Ok(n) => buf.extend_from_slice(&tmp[..n]),
                    Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => return Ok(None),
                    Err(e) => return Err(e),
                }
            }
        };
        tokio::select! {
            r = read => r,
            () = write => Ok(None),
            () = tokio::time::sleep_until(deadline) => Ok(None),
        }
    }

    /// Reads (and discards frames) until the server closes the TCP connection: `true`, or
    /// `false` if it is still open after `timeout`.
    pub async fn expect_eof(&mut self, timeout: Duration) -> std::io::Result<bool> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            match self.next_event(left).await? {
                Event::Frame(_) => {}
                Event::Eof => return Ok(true),
                Event::Timeout => return Ok(false),
            }
        }
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

/// Sends one HTTP/1.1 request to `addr` on its own connection (`Connection: close`, a
/// `text/plain` body of `body`) and returns the response body, read to the end within
/// `timeout`. For raw Engine.IO polling requests.
pub async fn http_request(
    addr: std::net::SocketAddr,
    method: &str,
    target: &str,
    body: &str,
    timeout: Duration,
) -> std::io::Result<String> {
    let mut s = TcpStream::connect(addr).await?;
    let head = format!(
        "{method} {target} HTTP/1.1\r\nHost: x\r\n\
         Content-Type: text/plain;charset=UTF-8\r\nContent-Length: {}\r\n\
         Connection: close\r\n\r\n",
        body.len()
    );
    s.write_all(head.as_bytes()).await?;
    s.write_all(body.as_bytes()).await?;
    let mut out = Vec::new();
    tokio::time::timeout(timeout, s.read_to_end(&mut out))
        .await
        .map_err(|_| std::io::Error::new(std::io::ErrorKind::TimedOut, "no answer in time"))??;
    let out = String::from_utf8(out)
        .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidData, e))?;
    match out.split_once("\r\n\r\n") {
        Some((_, body)) => Ok(body.to_owned()),
        None => Err(std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            format!("no response head in {out:?}"),
        )),
    }
}

/// The session id in an Engine.IO open packet's body (`0{"sid":"…",…}`), if there is one.
pub fn engine_sid(open: &str) -> Option<String> {
    open.split("\"sid\":\"")
        .nth(1)
        .and_then(|s| s.split('"').next())
        .map(str::to_owned)
}
