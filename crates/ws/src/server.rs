//! Accepting WebSocket connections on any byte stream.

use std::sync::Arc;

use http::Request;
use iolite_ws_proto::handshake::{reject_response, Offer, RequestParser};
use iolite_ws_proto::{HandshakeError, Role};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

use crate::config::Config;
use crate::connection::Connection;
use crate::error::Error;
use crate::socket::WebSocket;

/// An application's refusal of a handshake: the HTTP status and a short body.
#[derive(Clone, Debug)]
pub struct Reject {
    /// HTTP status, such as 403 for a foreign Origin or 401 for missing credentials.
    pub status: u16,
    /// Plain-text body.
    pub body: String,
}

impl Reject {
    /// A refusal with `status` and `body`.
    pub fn new(status: u16, body: impl Into<String>) -> Self {
        Self {
            status,
            body: body.into(),
        }
    }
}

/// Accepts a WebSocket on `stream`: reads and validates the upgrade request, answers it
/// and returns the connection with the request (path, query, headers such as `Origin`).
/// Selects no subprotocol; see [`accept_with`] to choose one or to refuse.
pub async fn accept<S>(stream: S, config: Arc<Config>) -> Result<(WebSocket<S>, Request<()>), Error>
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    accept_with(stream, config, |_, _| Ok(None)).await
}

/// As [`accept`], with a policy run on the validated request before answering: it returns
/// the subprotocol to select (one the client offered) or a [`Reject`].
pub async fn accept_with<S, F>(
    stream: S,
    config: Arc<Config>,
    policy: F,
) -> Result<(WebSocket<S>, Request<()>), Error>
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    F: FnOnce(&Request<()>, &Offer) -> Result<Option<String>, Reject>,
{
    let n = negotiate(stream, &config, policy).await?;
    let ws = WebSocket::from_stream(
        n.stream,
        Role::Server,
        config,
        n.deflate,
        n.protocol,
        n.leftover,
    );
    Ok((ws, n.request))
}

/// As [`accept_with`], as a one-task [`Connection`].
pub async fn accept_connection_with<S, F>(
    stream: S,
    config: Arc<Config>,
    policy: F,
) -> Result<(Connection<S>, Request<()>), Error>
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    F: FnOnce(&Request<()>, &Offer) -> Result<Option<String>, Reject>,
{
    let n = negotiate(stream, &config, policy).await?;
    let conn = Connection::from_stream(n.stream, Role::Server, config, n.deflate, n.leftover);
    Ok((conn, n.request))
}

/// A stream whose opening handshake has been answered.
struct Negotiated<S> {
    stream: S,
    request: Request<()>,
    deflate: Option<iolite_ws_proto::DeflateParams>,
    protocol: Option<String>,
    /// Bytes read past the request.
    leftover: bytes::BytesMut,
}

/// Reads and validates the upgrade request, runs `policy` and answers.
async fn negotiate<S, F>(mut stream: S, config: &Config, policy: F) -> Result<Negotiated<S>, Error>
where
    S: AsyncRead + AsyncWrite + Unpin,
    F: FnOnce(&Request<()>, &Offer) -> Result<Option<String>, Reject>,
{
    let mut buf = bytes::BytesMut::with_capacity(1024);
    let mut parser = RequestParser::new(config.handshake_limits.clone());
    let read_head = async {
        loop {
            match parser.parse(&buf) {
                Ok(Some(done)) => return Ok(done),
                Ok(None) => {}
                Err(e) => return Err(Error::Handshake(e)),
            }
            if buf.len() == buf.capacity() {
                buf.reserve(buf.capacity().min(config.handshake_limits.max_header_bytes));
            }
            if stream.read_buf(&mut buf).await? == 0 {
                return Err(Error::Handshake(HandshakeError::MalformedHttp));
            }
        }
    };
    let head = tokio::time::timeout(config.handshake_timeout, read_head).await;
    let (request, used) = match head {
        Err(_) => return Err(Error::HandshakeTimeout),
        Ok(Err(Error::Handshake(e))) => {
            return Err(refuse(&mut stream, reject_response(&e), Error::Handshake(e)).await)
        }
        Ok(Err(e)) => return Err(e),
        Ok(Ok(v)) => v,
    };
    let offer = match Offer::from_request(&request) {
        Ok(o) => o,
        Err(e) => return Err(refuse(&mut stream, reject_response(&e), Error::Handshake(e)).await),
    };
    let protocol = match policy(&request, &offer) {
        Ok(p) => p,
        Err(r) => {
            let bytes = iolite_ws_proto::handshake::reject_with(r.status, &r.body);
            return Err(refuse(&mut stream, bytes, Error::Refused(r.status)).await);
        }
    };
    let accepted = offer.accept(protocol.as_deref(), config.deflate.as_ref());
    stream.write_all(&accepted.response_bytes()).await?;
    let _ = buf.split_to(used);
    Ok(Negotiated {
        stream,
        request,
        deflate: accepted.deflate,
        protocol: accepted.protocol,
        leftover: buf,
    })
}

async fn refuse<S: AsyncWrite + Unpin>(stream: &mut S, response: Vec<u8>, err: Error) -> Error {
    tracing::debug!(error = %err, "refusing handshake");
    let _ = stream.write_all(&response).await;
    let _ = stream.shutdown().await;
    err
}
