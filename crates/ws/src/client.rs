//! Connecting to WebSocket servers (`ws://` and `wss://`).

use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::BytesMut;
use iolite_ws_proto::handshake::{ClientAccepted, ClientRequest};
use iolite_ws_proto::{DeflateConfig, HandshakeError, Role};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::net::TcpStream;

use crate::config::Config;
use crate::error::Error;
use crate::socket::WebSocket;

/// Builds a client connection.
///
/// ```no_run
/// # async fn run() -> Result<(), iolite_ws::Error> {
/// use iolite_ws::{ClientBuilder, Message};
/// let (mut ws, _) = ClientBuilder::new("ws://127.0.0.1:3000/").connect().await?;
/// ws.send(Message::text("hi")).ok();
/// while let Some(Ok(msg)) = ws.recv().await {
///     println!("{msg:?}");
/// }
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct ClientBuilder {
    url: String,
    config: Config,
    protocols: Vec<String>,
    headers: Vec<(String, String)>,
    deflate: Option<DeflateConfig>,
    #[cfg(feature = "tls")]
    tls: Option<Arc<rustls::ClientConfig>>,
}

impl ClientBuilder {
    /// A client for `url` (`ws://host[:port]/path?query` or `wss://...`).
    pub fn new(url: impl Into<String>) -> Self {
        Self {
            url: url.into(),
            // A client does not need to ping a server that pings it.
            config: Config::default().ping_interval(None),
            protocols: Vec::new(),
            headers: Vec::new(),
            deflate: None,
            #[cfg(feature = "tls")]
            tls: None,
        }
    }

    /// Connection configuration (limits, queue, keepalive).
    pub fn config(mut self, config: Config) -> Self {
        self.config = config;
        self
    }

    /// Offers a subprotocol.
    pub fn protocol(mut self, p: impl Into<String>) -> Self {
        self.protocols.push(p.into());
        self
    }

    /// Adds a request header (`Origin`, `Authorization`, ...).
    pub fn header(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.headers.push((name.into(), value.into()));
        self
    }

    /// Offers permessage-deflate.
    pub fn deflate(mut self, cfg: DeflateConfig) -> Self {
        self.deflate = Some(cfg);
        self
    }

    /// TLS configuration for `wss://`; by default the platform's roots plus Mozilla's.
    #[cfg(feature = "tls")]
    pub fn tls(mut self, cfg: Arc<rustls::ClientConfig>) -> Self {
        self.tls = Some(cfg);
        self
    }

    /// Connects, runs the handshake and returns the connection with the server's answer.
    pub async fn connect(self) -> Result<(WebSocket<MaybeTlsStream>, ClientAccepted), Error> {
        let url: http::Uri = self.url.parse().map_err(|_| Error::Url(self.url.clone()))?;
        let tls = match url.scheme_str() {
            Some("ws") => false,
            Some("wss") => true,
            _ => {
                return Err(Error::Url(format!(
                    "{}: scheme must be ws or wss",
                    self.url
                )))
            }
        };
        let host = url
            .host()
            .ok_or_else(|| Error::Url(format!("{}: no host", self.url)))?;
        let port = url.port_u16().unwrap_or(if tls { 443 } else { 80 });
        let host_header = match url.port_u16() {
            Some(p) => format!("{host}:{p}"),
            None => host.to_owned(),
        };
        let bare_host = host.trim_start_matches('[').trim_end_matches(']');
        let tcp = TcpStream::connect((bare_host, port)).await?;
        tcp.set_nodelay(true)?;
        let stream = if tls {
            #[cfg(feature = "tls")]
            {
                let cfg = match self.tls.clone() {
                    Some(c) => c,
                    None => default_tls()?,
                };
                let name = rustls_pki_types::ServerName::try_from(bare_host.to_owned())
                    .map_err(|e| Error::Tls(e.to_string()))?;
                let s = tokio_rustls::TlsConnector::from(cfg)
                    .connect(name, tcp)
                    .await?;
                MaybeTlsStream::Tls(Box::new(s))
            }
            #[cfg(not(feature = "tls"))]
            return Err(Error::Tls("built without the `tls` feature".into()));
        } else {
            MaybeTlsStream::Plain(tcp)
        };
        let request = ClientRequest {
            host: host_header,
            path: url
                .path_and_query()
                .map_or("/".into(), |p| p.as_str().to_owned()),
            protocols: self.protocols,
            deflate: self.deflate,
            headers: self.headers,
        };
        client_handshake(stream, request, Arc::new(self.config)).await
    }
}

/// Runs the client handshake on an already connected stream.
pub async fn client_handshake<S>(
    mut stream: S,
    request: ClientRequest,
    config: Arc<Config>,
) -> Result<(WebSocket<S>, ClientAccepted), Error>
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let mut key = [0u8; 16];
    getrandom::fill(&mut key).map_err(|e| Error::Io(std::io::Error::other(e.to_string())))?;
    let (bytes, mut parser) = request.build(key, config.handshake_limits.clone());
    let run = async {
        stream.write_all(&bytes).await?;
        let mut buf = BytesMut::with_capacity(1024);
        loop {
            if let Some((accepted, used)) = parser.parse(&buf)? {
                let _ = buf.split_to(used);
                return Ok::<_, Error>((accepted, buf));
            }
            if buf.len() == buf.capacity() {
                buf.reserve(1024);
            }
            if stream.read_buf(&mut buf).await? == 0 {
                return Err(HandshakeError::MalformedHttp.into());
            }
        }
    };
    let (accepted, leftover) = tokio::time::timeout(config.handshake_timeout, run)
        .await
        .map_err(|_| Error::HandshakeTimeout)??;
    let ws = WebSocket::from_stream(
        stream,
        Role::Client,
        config,
        accepted.deflate.clone(),
        accepted.protocol.clone(),
        leftover,
    );
    Ok((ws, accepted))
}

#[cfg(feature = "tls")]
fn default_tls() -> Result<Arc<rustls::ClientConfig>, Error> {
    let mut roots = rustls::RootCertStore::empty();
    roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
    for cert in rustls_native_certs::load_native_certs().certs {
        let _ = roots.add(cert);
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let cfg = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| Error::Tls(e.to_string()))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(Arc::new(cfg))
}

/// A client stream: plain TCP or TLS.
pub enum MaybeTlsStream {
    /// `ws://`
    Plain(TcpStream),
    /// `wss://`
    #[cfg(feature = "tls")]
    Tls(Box<tokio_rustls::client::TlsStream<TcpStream>>),
}

impl AsyncRead for MaybeTlsStream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        match self.get_mut() {
            Self::Plain(s) => Pin::new(s).poll_read(cx, buf),
            #[cfg(feature = "tls")]
            Self::Tls(s) => Pin::new(s.as_mut()).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for MaybeTlsStream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        match self.get_mut() {
            Self::Plain(s) => Pin::new(s).poll_write(cx, buf),
            #[cfg(feature = "tls")]
            Self::Tls(s) => Pin::new(s.as_mut()).poll_write(cx, buf),
        }
    }
    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        match self.get_mut() {
            Self::Plain(s) => Pin::new(s).poll_write_vectored(cx, bufs),
            #[cfg(feature = "tls")]
            Self::Tls(s) => Pin::new(s.as_mut()).poll_write_vectored(cx, bufs),
        }
    }
    fn is_write_vectored(&self) -> bool {
        true
    }
    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        match self.get_mut() {
            Self::Plain(s) => Pin::new(s).poll_flush(cx),
            #[cfg(feature = "tls")]
            Self::Tls(s) => Pin::new(s.as_mut()).poll_flush(cx),
        }
    }
    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        match self.get_mut() {
            Self::Plain(s) => Pin::new(s).poll_shutdown(cx),
            #[cfg(feature = "tls")]
            Self::Tls(s) => Pin::new(s.as_mut()).poll_shutdown(cx),
        }
    }
}
