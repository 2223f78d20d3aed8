//! Manager options (socket.io-client's `ManagerOptions`), the server's address and the
//! reconnection backoff.

#[cfg(feature = "tls")]
use std::sync::Arc;
use std::time::Duration;

use iolite_engine::Transport;

use crate::codec::Parser;
use crate::error::BuildError;
use crate::manager::Manager;

/// Configures a [`Manager`]: one Engine.IO connection to a server, shared by the sockets
/// of every namespace. Defaults are socket.io-client's.
///
/// ```no_run
/// use std::time::Duration;
/// use iolite_client::{Manager, Transport};
///
/// let manager = Manager::builder("http://127.0.0.1:3000")
///     .transports([Transport::WebSocket])
///     .reconnection_delay(Duration::from_millis(200))
///     .build()?;
/// # Ok::<(), iolite_client::BuildError>(())
/// ```
#[derive(Clone)]
pub struct ManagerBuilder {
    pub(crate) url: String,
    pub(crate) path: String,
    pub(crate) query: Vec<(String, String)>,
    pub(crate) headers: Vec<(String, String)>,
    pub(crate) transports: Vec<Transport>,
    pub(crate) upgrade: bool,
    pub(crate) reconnection: bool,
    pub(crate) reconnection_attempts: Option<u32>,
    pub(crate) reconnection_delay: Duration,
    pub(crate) reconnection_delay_max: Duration,
    pub(crate) randomization_factor: f64,
    pub(crate) timeout: Duration,
    pub(crate) ack_timeout: Option<Duration>,
    pub(crate) max_payload: usize,
    pub(crate) max_attachments: usize,
    pub(crate) max_queued_bytes: usize,
    pub(crate) max_buffered_packets: usize,
    pub(crate) parser: Parser,
    #[cfg(feature = "tls")]
    pub(crate) tls: Option<Arc<rustls::ClientConfig>>,
}

impl std::fmt::Debug for ManagerBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ManagerBuilder")
            .field("url", &self.url)
            .field("path", &self.path)
            .field("transports", &self.transports)
            .field("upgrade", &self.upgrade)
            .field("reconnection", &self.reconnection)
            .finish_non_exhaustive()
    }
}

impl ManagerBuilder {
    pub(crate) fn new(url: impl Into<String>) -> Self {
        Self {
            url: url.into(),
            path: "/socket.io/".into(),
            query: Vec::new(),
            headers: Vec::new(),
            transports: vec![Transport::Polling, Transport::WebSocket],
            upgrade: true,
            reconnection: true,
            reconnection_attempts: None,
            reconnection_delay: Duration::from_millis(1000),
            reconnection_delay_max: Duration::from_millis(5000),
            randomization_factor: 0.5,
            timeout: Duration::from_secs(20),
            ack_timeout: None,
            max_payload: 16 << 20,
            max_attachments: 10,
            max_queued_bytes: 16 << 20,
            max_buffered_packets: 1 << 16,
            parser: Parser::Json,
            #[cfg(feature = "tls")]
            tls: None,
        }
    }

    /// The server's path (`path`). Default `/socket.io/`.
    pub fn path(mut self, path: impl Into<String>) -> Self {
        let mut p: String = path.into();
        if !p.starts_with('/') {
            p.insert(0, '/');
        }
        if !p.ends_with('/') {
            p.push('/');
        }
        self.path = p;
        self
    }

    /// Adds a query parameter to every request (`query`).
    pub fn query(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.query.push((key.into(), value.into()));
        self
    }

    /// Adds a header to every HTTP request and the WebSocket handshake (`extraHeaders`).
    pub fn header(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.headers.push((name.into(), value.into()));
        self
    }

    /// The transports to use, the first to open the connection (`transports`). Default
    /// `[Polling, WebSocket]`: long-polling first, then an upgrade to WebSocket.
    /// `[WebSocket]` connects over WebSocket directly; `[Polling]` never upgrades.
    pub fn transports(mut self, transports: impl IntoIterator<Item = Transport>) -> Self {
        self.transports = Vec::new();
        for t in transports {
            if !self.transports.contains(&t) {
                self.transports.push(t);
            }
        }
        self
    }

    /// Whether to upgrade from polling to WebSocket when the server offers it (`upgrade`).
    /// Default true.
    pub fn upgrade(mut self, upgrade: bool) -> Self {
        self.upgrade = upgrade;
        self
    }

    /// Whether to reconnect after the connection is lost (`reconnection`). Default true.
    pub fn reconnection(mut self, on: bool) -> Self {
        self.reconnection = on;
        self
    }

    /// How many reconnection attempts before giving up (`reconnectionAttempts`); `None`
    /// (the default) never gives up.
    pub fn reconnection_attempts(mut self, attempts: Option<u32>) -> Self {
        self.reconnection_attempts = attempts;
        self
    }

    /// The first reconnection delay (`reconnectionDelay`), doubled on each attempt.
    /// Default 1 s.
    pub fn reconnection_delay(mut self, d: Duration) -> Self {
        self.reconnection_delay = d;
        self
    }

    /// The longest reconnection delay (`reconnectionDelayMax`). Default 5 s.
    pub fn reconnection_delay_max(mut self, d: Duration) -> Self {
        self.reconnection_delay_max = d;
        self
    }

    /// The jitter of reconnection delays, from 0 to 1 (`randomizationFactor`): each delay
    /// is moved up or down by up to this fraction. Default 0.5.
    pub fn randomization_factor(mut self, f: f64) -> Self {
        self.randomization_factor = f;
        self
    }

    /// How long opening the Engine.IO connection (handshake included) may take
    /// (`timeout`). Default 20 s.
    pub fn timeout(mut self, d: Duration) -> Self {
        self.timeout = d;
        self
    }

    /// The default timeout of [`crate::Socket::emit_with_ack`] (`ackTimeout`). Default
    /// none: wait until the answer comes or the socket disconnects.
    pub fn ack_timeout(mut self, d: Option<Duration>) -> Self {
        self.ack_timeout = d;
        self
    }

    /// The largest message accepted from the server, in bytes: a WebSocket message or a
    /// polling response body. Past it the connection fails with "transport error".
    /// Default 16 MiB.
    pub fn max_payload(mut self, bytes: usize) -> Self {
        self.max_payload = bytes;
        self
    }

    /// The most binary attachments one packet from the server may announce. Past it the
    /// connection closes with "parse error". Default 10, as socket.io-parser.
    pub fn max_attachments(mut self, n: usize) -> Self {
        self.max_attachments = n;
        self
    }

    /// Bytes that may wait to be written (the WebSocket send queue, or the polling write
    /// buffer). An emit past it fails with [`crate::EmitError::Full`]. Default 16 MiB.
    pub fn max_queued_bytes(mut self, bytes: usize) -> Self {
        self.max_queued_bytes = bytes;
        self
    }

    /// Packets a socket buffers while it is not connected (sent once it connects, as
    /// socket.io-client's `sendBuffer`). Past it emits fail with
    /// [`crate::EmitError::Full`]. Default 65,536.
    pub fn max_buffered_packets(mut self, n: usize) -> Self {
        self.max_buffered_packets = n;
        self
    }

    /// The Socket.IO parser (`parser`). Default [`Parser::Json`].
    pub fn parser(mut self, parser: Parser) -> Self {
        self.parser = parser;
        self
    }

    /// The TLS configuration for `https://` and `wss://`; by default the platform's roots
    /// plus Mozilla's.
    #[cfg(feature = "tls")]
    pub fn tls(mut self, config: Arc<rustls::ClientConfig>) -> Self {
        self.tls = Some(config);
        self
    }

    /// Builds the manager. Nothing connects until a socket is opened.
    pub fn build(self) -> Result<Manager, BuildError> {
        if self.transports.is_empty() {
            return Err(BuildError::NoTransport);
        }
        let endpoint = Endpoint::parse(&self.url, &self.path, &self.query)?;
        Manager::start(self, endpoint)
    }
}

/// Where the server is: parsed once from the URL.
#[derive(Clone, Debug)]
pub(crate) struct Endpoint {
    pub(crate) secure: bool,
    /// Host to connect to (no brackets around an IPv6 address).
    pub(crate) host: String,
    pub(crate) port: u16,
    /// `Host` header value (`host[:port]`).
    pub(crate) authority: String,
    /// The engine path, `/socket.io/`.
    pub(crate) path: String,
    /// Query parameters of the URL and the options, encoded, without `?` (may be empty).
    pub(crate) query: String,
}

impl Endpoint {
    pub(crate) fn parse(
        url: &str,
        path: &str,
        extra: &[(String, String)],
    ) -> Result<Self, BuildError> {
        let bad = || BuildError::Url(url.to_owned());
        let uri: http::Uri = url.parse().map_err(|_| bad())?;
        let secure = match uri.scheme_str() {
            Some("http") | Some("ws") => false,
            Some("https") | Some("wss") => true,
            _ => return Err(bad()),
        };
        let host = uri.host().ok_or_else(bad)?;
        if host.is_empty() {
            return Err(bad());
        }
        let port = uri.port_u16().unwrap_or(if secure { 443 } else { 80 });
        let authority = match uri.port_u16() {
            Some(p) => format!("{host}:{p}"),
            None => host.to_owned(),
        };
        let mut query = uri.query().unwrap_or("").to_owned();
        for (k, v) in extra {
            if !query.is_empty() {
                query.push('&');
            }
            query.push_str(&encode_component(k));
            query.push('=');
            query.push_str(&encode_component(v));
        }
        Ok(Self {
            secure,
            host: host
                .trim_start_matches('[')
                .trim_end_matches(']')
                .to_owned(),
            port,
            authority,
            path: path.to_owned(),
            query,
        })
    }

    /// The path and query of an Engine.IO request.
    pub(crate) fn request_target(
        &self,
        transport: Transport,
        sid: Option<&str>,
        cache_buster: Option<&str>,
    ) -> String {
        let mut s = String::with_capacity(self.path.len() + self.query.len() + 64);
        s.push_str(&self.path);
        s.push('?');
        if !self.query.is_empty() {
            s.push_str(&self.query);
            s.push('&');
        }
        s.push_str("EIO=4&transport=");
        s.push_str(transport.as_str());
        if let Some(t) = cache_buster {
            s.push_str("&t=");
            s.push_str(t);
        }
        if let Some(sid) = sid {
            s.push_str("&sid=");
            s.push_str(&encode_component(sid));
        }
        s
    }

    /// The WebSocket URL of the Engine.IO endpoint.
    pub(crate) fn ws_url(&self, sid: Option<&str>) -> String {
        let scheme = if self.secure { "wss" } else { "ws" };
        format!(
            "{scheme}://{}{}",
            self.authority,
            self.request_target(Transport::WebSocket, sid, None)
        )
    }
}

/// Percent-encodes a query component (`encodeURIComponent`).
fn encode_component(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.!~*'()".contains(&b) {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// A small PRNG (xorshift64*) seeded from the OS, for jitter and cache busting.
#[derive(Debug)]
pub(crate) struct Rng(u64);

impl Rng {
    pub(crate) fn new() -> Self {
        let mut seed = [0u8; 8];
        if getrandom::fill(&mut seed).is_err() {
            // No OS randomness: jitter merely becomes predictable.
            let t = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_nanos() as u64);
            seed = t.to_ne_bytes();
        }
        Self(u64::from_ne_bytes(seed) | 1)
    }

    pub(crate) fn next_u64(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// A float in `[0, 1)`.
    pub(crate) fn next_f64(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    /// A short random token for the `t` parameter.
    pub(crate) fn token(&mut self) -> String {
        const ALPHABET: &[u8] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz-_";
        let mut x = self.next_u64();
        (0..8)
            .map(|_| {
                let c = ALPHABET[(x & 63) as usize];
                x >>= 6;
                char::from(c)
            })
            .collect()
    }
}

/// socket.io-client's backoff (`backo2`): `min * 2^attempt`, moved up or down by a random
/// fraction up to `jitter`, capped at `max`.
#[derive(Debug)]
pub(crate) struct Backoff {
    min_ms: f64,
    max_ms: f64,
    jitter: f64,
    pub(crate) attempts: u32,
}

impl Backoff {
    pub(crate) fn new(min: Duration, max: Duration, jitter: f64) -> Self {
        Self {
            min_ms: min.as_secs_f64() * 1000.0,
            max_ms: max.as_secs_f64() * 1000.0,
            jitter: if jitter > 0.0 && jitter <= 1.0 {
                jitter
            } else {
                0.0
            },
            attempts: 0,
        }
    }

    /// The next delay (and one more attempt).
    pub(crate) fn duration(&mut self, rng: &mut Rng) -> Duration {
        let mut ms = self.min_ms * 2f64.powi(self.attempts.min(1024) as i32);
        self.attempts = self.attempts.saturating_add(1);
        if self.jitter > 0.0 {
            let rand = rng.next_f64();
            let deviation = (rand * self.jitter * ms).floor();
            ms = if ((rand * 10.0).floor() as u64) & 1 == 0 {
                ms - deviation
            } else {
                ms + deviation
            };
        }
        let ms = ms.min(self.max_ms).max(0.0);
        Duration::from_secs_f64(ms.floor() / 1000.0)
    }

    pub(crate) fn reset(&mut self) {
        self.attempts = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoints() {
        let e = Endpoint::parse(
            "http://127.0.0.1:3000/ignored?a=1",
            "/socket.io/",
            &[("b c".into(), "d&e".into())],
        )
        .unwrap();
        assert_eq!(
            (e.secure, e.host.as_str(), e.port, e.authority.as_str()),
            (false, "127.0.0.1", 3000, "127.0.0.1:3000")
        );
        assert_eq!(
            e.request_target(Transport::Polling, Some("ab+c"), Some("tok")),
            "/socket.io/?a=1&b%20c=d%26e&EIO=4&transport=polling&t=tok&sid=ab%2Bc"
        );
        assert_eq!(
            e.ws_url(None),
            "ws://127.0.0.1:3000/socket.io/?a=1&b%20c=d%26e&EIO=4&transport=websocket"
        );
        let e = Endpoint::parse("wss://[::1]/", "/x/", &[]).unwrap();
        assert_eq!(
            (e.secure, e.host.as_str(), e.port, e.authority.as_str()),
            (true, "::1", 443, "[::1]")
        );
        assert_eq!(
            e.request_target(Transport::WebSocket, None, None),
            "/x/?EIO=4&transport=websocket"
        );
        assert!(Endpoint::parse("ftp://x", "/", &[]).is_err());
        assert!(Endpoint::parse("not a url", "/", &[]).is_err());
        assert!(Endpoint::parse("/relative", "/", &[]).is_err());
    }

    #[test]
    fn backoff_doubles_and_caps() {
        let mut rng = Rng::new();
        let mut b = Backoff::new(Duration::from_millis(100), Duration::from_millis(1000), 0.0);
        let d: Vec<u128> = (0..6).map(|_| b.duration(&mut rng).as_millis()).collect();
        assert_eq!(d, [100, 200, 400, 800, 1000, 1000]);
        b.reset();
        assert_eq!(b.duration(&mut rng).as_millis(), 100);
        let mut b = Backoff::new(
            Duration::from_millis(1000),
            Duration::from_millis(5000),
            0.5,
        );
        for _ in 0..200 {
            b.reset();
            let d = b.duration(&mut rng).as_millis();
            assert!((500..=1500).contains(&d), "{d}");
        }
        // Attempts far past any sane count still give the cap.
        b.attempts = u32::MAX;
        assert_eq!(b.duration(&mut rng).as_millis(), 5000);
    }

    #[test]
    fn jitter_spreads_both_ways() {
        let mut rng = Rng::new();
        let mut b = Backoff::new(
            Duration::from_millis(1000),
            Duration::from_millis(5000),
            0.5,
        );
        let (mut below, mut above) = (0, 0);
        for _ in 0..400 {
            b.reset();
            let d = b.duration(&mut rng).as_millis();
            if d < 1000 {
                below += 1;
            } else if d > 1000 {
                above += 1;
            }
        }
        assert!(below > 50 && above > 50, "{below} {above}");
    }

    #[test]
    fn tokens_are_url_safe() {
        let mut rng = Rng::new();
        let t = rng.token();
        assert_eq!(t.len(), 8);
        assert!(t
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'));
        assert_ne!(rng.token(), t);
    }
}
