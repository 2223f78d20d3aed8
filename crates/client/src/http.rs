//! A minimal HTTP/1.1 client for the long-polling transport: one keep-alive connection,
//! reopened when the server closes it. The transport uses two of them, so the long GET
//! and a POST can be in flight at the same time.

use std::sync::Arc;

use bytes::Bytes;
use http::{header, Method, Request, StatusCode};
use http_body_util::{BodyExt, Full, Limited};
use hyper::client::conn::http1::{self, SendRequest};
use hyper_util::rt::TokioIo;
use iolite_ws::MaybeTlsStream;
use tokio::net::TcpStream;
use tokio::task::JoinHandle;

use crate::config::Endpoint;

/// TLS settings shared by every connection of a manager.
#[derive(Clone)]
pub(crate) struct Tls {
    #[cfg(feature = "tls")]
    pub(crate) config: Option<Arc<rustls::ClientConfig>>,
}

impl Tls {
    /// The configuration to use, built once on first use.
    #[cfg(feature = "tls")]
    pub(crate) fn config(&mut self) -> Result<Arc<rustls::ClientConfig>, String> {
        if let Some(c) = &self.config {
            return Ok(c.clone());
        }
        let c = default_tls()?;
        self.config = Some(c.clone());
        Ok(c)
    }
}

#[cfg(feature = "tls")]
fn default_tls() -> Result<Arc<rustls::ClientConfig>, String> {
    let mut roots = rustls::RootCertStore::empty();
    roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
    for cert in rustls_native_certs::load_native_certs().certs {
        let _ = roots.add(cert);
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let cfg = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(Arc::new(cfg))
}

/// Opens a TCP (and TLS, for `https`) connection to the server.
pub(crate) async fn connect_stream(
    endpoint: &Endpoint,
    tls: &mut Tls,
) -> Result<MaybeTlsStream, String> {
    let tcp = TcpStream::connect((endpoint.host.as_str(), endpoint.port))
        .await
        .map_err(|e| e.to_string())?;
    let _ = tcp.set_nodelay(true);
    if !endpoint.secure {
        return Ok(MaybeTlsStream::Plain(tcp));
    }
    #[cfg(feature = "tls")]
    {
        let cfg = tls.config()?;
        let name = rustls_pki_types::ServerName::try_from(endpoint.host.clone())
            .map_err(|e| e.to_string())?;
        let s = tokio_rustls::TlsConnector::from(cfg)
            .connect(name, tcp)
            .await
            .map_err(|e| e.to_string())?;
        Ok(MaybeTlsStream::Tls(Box::new(s)))
    }
    #[cfg(not(feature = "tls"))]
    {
        let _ = tls;
        Err("https needs the `tls` feature".into())
    }
}

/// Why a request failed.
#[derive(Debug)]
pub(crate) enum HttpError {
    /// Connecting or the exchange failed.
    Io(String),
    /// The server answered with another status than 200.
    Status(StatusCode),
    /// The response body is over the limit.
    TooLarge,
}

impl std::fmt::Display for HttpError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Io(e) => write!(f, "{e}"),
            Self::Status(s) => write!(f, "HTTP status {}", s.as_u16()),
            Self::TooLarge => f.write_str("response body over the limit"),
        }
    }
}

struct Conn {
    sender: SendRequest<Full<Bytes>>,
    task: JoinHandle<()>,
}

impl Drop for Conn {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// One keep-alive HTTP/1.1 connection to the server.
pub(crate) struct HttpClient {
    endpoint: Arc<Endpoint>,
    headers: Arc<Vec<(String, String)>>,
    tls: Tls,
    conn: Option<Conn>,
}

impl HttpClient {
    pub(crate) fn new(
        endpoint: Arc<Endpoint>,
        headers: Arc<Vec<(String, String)>>,
        tls: Tls,
    ) -> Self {
        Self {
            endpoint,
            headers,
            tls,
            conn: None,
        }
    }

    async fn open(&mut self) -> Result<(), HttpError> {
        let stream = connect_stream(&self.endpoint, &mut self.tls)
            .await
            .map_err(HttpError::Io)?;
        let (sender, conn) = http1::handshake(TokioIo::new(stream))
            .await
            .map_err(|e| HttpError::Io(e.to_string()))?;
        let task = tokio::spawn(async move {
            if let Err(e) = conn.await {
                tracing::debug!(error = %e, "polling connection ended");
            }
        });
        self.conn = Some(Conn { sender, task });
        Ok(())
    }

    /// Sends a request and reads the whole response body (at most `max_body` bytes).
    /// A request on a reused connection that the server had closed is retried once on a
    /// new one.
    pub(crate) async fn request(
        &mut self,
        method: Method,
        target: &str,
        body: Bytes,
        max_body: usize,
    ) -> Result<Bytes, HttpError> {
        let mut retried = false;
        loop {
            let reused = match &self.conn {
                Some(c) if !c.sender.is_closed() => true,
                _ => {
                    self.conn = None;
                    self.open().await?;
                    false
                }
            };
            match self
                .try_request(method.clone(), target, body.clone(), max_body)
                .await
            {
                Err(HttpError::Io(e)) if reused && !retried => {
                    tracing::debug!(error = %e, "retrying on a new connection");
                    self.conn = None;
                    retried = true;
                }
                Err(e) => {
                    self.conn = None;
                    return Err(e);
                }
                Ok(b) => return Ok(b),
            }
        }
    }

    async fn try_request(
        &mut self,
        method: Method,
        target: &str,
        body: Bytes,
        max_body: usize,
    ) -> Result<Bytes, HttpError> {
        let conn = self
            .conn
            .as_mut()
            .ok_or_else(|| HttpError::Io("not connected".into()))?;
        conn.sender
            .ready()
            .await
            .map_err(|e| HttpError::Io(e.to_string()))?;
        let mut req = Request::builder()
            .method(method.clone())
            .uri(target)
            .header(header::HOST, self.endpoint.authority.as_str())
            .header(header::ACCEPT, "*/*");
        if method == Method::POST {
            req = req.header(header::CONTENT_TYPE, "text/plain;charset=UTF-8");
        }
        for (k, v) in self.headers.iter() {
            req = req.header(k.as_str(), v.as_str());
        }
        let req = req
            .body(Full::new(body))
            .map_err(|e| HttpError::Io(e.to_string()))?;
        let res = conn
            .sender
            .send_request(req)
            .await
            .map_err(|e| HttpError::Io(e.to_string()))?;
        let status = res.status();
        if let Some(len) = res
            .headers()
            .get(header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<u64>().ok())
        {
            if len > max_body as u64 {
                return Err(HttpError::TooLarge);
            }
        }
        let body = Limited::new(res.into_body(), max_body)
            .collect()
            .await
            .map_err(|e| {
                if e.is::<http_body_util::LengthLimitError>() {
                    HttpError::TooLarge
                } else {
                    HttpError::Io(e.to_string())
                }
            })?
            .to_bytes();
        if status != StatusCode::OK {
            return Err(HttpError::Status(status));
        }
        Ok(body)
    }
}
