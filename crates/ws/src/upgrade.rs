//! Accepting WebSockets on connections routed by hyper (and so axum or any tower stack).

use std::sync::Arc;

use bytes::{Bytes, BytesMut};
use http::{Request, Response, StatusCode};
use http_body_util::Empty;
use hyper::upgrade::{OnUpgrade, Upgraded};
use hyper_util::rt::TokioIo;
use iolite_ws_proto::handshake::Offer;
use iolite_ws_proto::{DeflateParams, HandshakeError, Role};
use tokio::io::{AsyncRead, AsyncWrite};

use crate::config::Config;
use crate::connection::Connection;
use crate::error::Error;
use crate::socket::WebSocket;

/// A WebSocket over a hyper-upgraded connection.
pub type UpgradedWebSocket = WebSocket<TokioIo<Upgraded>>;

/// Whether `req` asks for a WebSocket upgrade (cheap; full checks are in [`upgrade`]).
pub fn is_upgrade_request<B>(req: &Request<B>) -> bool {
    req.headers()
        .get(http::header::UPGRADE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| {
            v.split(',')
                .any(|t| t.trim().eq_ignore_ascii_case("websocket"))
        })
}

/// Validates the upgrade request and returns the `101` response to send back through
/// hyper, and a [`PendingUpgrade`] that resolves to the connection once hyper hands the
/// socket over. `protocol` is selected only if the client offered it. On error, answer
/// with [`HandshakeError::status`].
pub fn upgrade<B>(
    req: &mut Request<B>,
    config: Arc<Config>,
    protocol: Option<&str>,
) -> Result<(Response<Empty<Bytes>>, PendingUpgrade), HandshakeError> {
    let offer = Offer::from_request(req)?;
    let accept = offer.accept(protocol, config.deflate.as_ref());
    let on_upgrade = hyper::upgrade::on(req);
    let mut resp = Response::new(Empty::new());
    *resp.status_mut() = StatusCode::SWITCHING_PROTOCOLS;
    *resp.headers_mut() = accept.headers();
    Ok((
        resp,
        PendingUpgrade {
            on_upgrade,
            config,
            deflate: accept.deflate,
            protocol: accept.protocol,
        },
    ))
}

/// A WebSocket waiting for hyper to finish the upgrade.
pub struct PendingUpgrade {
    on_upgrade: OnUpgrade,
    config: Arc<Config>,
    deflate: Option<DeflateParams>,
    protocol: Option<String>,
}

impl PendingUpgrade {
    /// Waits for the upgraded connection (after hyper has sent the 101 response).
    pub async fn finish(self) -> Result<UpgradedWebSocket, Error> {
        Ok(WebSocket::from_stream(
            upgraded(self.on_upgrade).await?,
            Role::Server,
            self.config,
            self.deflate,
            self.protocol,
            BytesMut::new(),
        ))
    }

    /// As [`PendingUpgrade::finish`], as a one-task [`Connection`].
    pub async fn finish_connection(self) -> Result<Connection<TokioIo<Upgraded>>, Error> {
        Ok(Connection::from_stream(
            upgraded(self.on_upgrade).await?,
            Role::Server,
            self.config,
            self.deflate,
            BytesMut::new(),
        ))
    }
}

/// What [`PendingUpgrade::finish_connection_as`] gives back.
pub enum UpgradedConnection<T>
where
    T: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    /// On the stream hyper was serving, taken back out of hyper.
    Direct(Connection<T>),
    /// On hyper's `Upgraded`: the stream was of another type.
    Boxed(Connection<TokioIo<Upgraded>>),
}

impl PendingUpgrade {
    /// As [`PendingUpgrade::finish_connection`], with the stream taken back out of hyper
    /// when hyper was serving a `TokioIo<T>` (as `SocketIo::serve` and plain TCP servers
    /// do): the connection then reads and writes `T` itself, without the boxed stream and
    /// dynamic calls of `Upgraded`, and holds 48 bytes less. Any other stream (TLS, a
    /// server that wraps it) comes back as [`UpgradedConnection::Boxed`].
    pub async fn finish_connection_as<T>(self) -> Result<UpgradedConnection<T>, Error>
    where
        T: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    {
        let upgraded = self
            .on_upgrade
            .await
            .map_err(|e| Error::Io(std::io::Error::other(e)))?;
        Ok(match upgraded.downcast::<TokioIo<T>>() {
            Ok(parts) => UpgradedConnection::Direct(Connection::from_stream(
                parts.io.into_inner(),
                Role::Server,
                self.config,
                self.deflate,
                BytesMut::from(parts.read_buf),
            )),
            Err(upgraded) => UpgradedConnection::Boxed(Connection::from_stream(
                TokioIo::new(upgraded),
                Role::Server,
                self.config,
                self.deflate,
                BytesMut::new(),
            )),
        })
    }
}

/// The connection hyper hands over once it has sent the `101` response.
async fn upgraded(on_upgrade: OnUpgrade) -> Result<TokioIo<Upgraded>, Error> {
    on_upgrade
        .await
        .map(TokioIo::new)
        .map_err(|e| Error::Io(std::io::Error::other(e)))
}
