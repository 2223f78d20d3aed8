//! Mounting: a tower `Layer`/`Service` (axum, tower, hyper) and a standalone server.

use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use http::{Request, Response, StatusCode};
use http_body_util::{Either, Full};

use crate::io::SocketIo;

/// A tower layer that serves Socket.IO under its path and passes everything else to the
/// inner service.
///
/// ```no_run
/// # async fn f(router: axum_like::Router) {}
/// # mod axum_like { pub struct Router; }
/// let io = iolite::SocketIo::new();
/// let layer = io.layer(); // axum: Router::new().route(...).layer(layer)
/// ```
#[derive(Clone)]
pub struct IoLayer {
    io: SocketIo,
}

impl<S> tower_layer::Layer<S> for IoLayer {
    type Service = IoService<S>;
    fn layer(&self, inner: S) -> IoService<S> {
        IoService {
            io: self.io.clone(),
            inner,
        }
    }
}

/// The service [`IoLayer`] makes; see there.
#[derive(Clone)]
pub struct IoService<S> {
    io: SocketIo,
    inner: S,
}

/// The inner service of [`SocketIo::service`]: 404 for anything that is not Socket.IO.
#[derive(Clone, Copy, Debug, Default)]
pub struct NotFound;

impl<B> tower_service::Service<Request<B>> for NotFound {
    type Response = Response<Full<Bytes>>;
    type Error = Infallible;
    type Future = std::future::Ready<Result<Self::Response, Infallible>>;
    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }
    fn call(&mut self, _: Request<B>) -> Self::Future {
        let mut r = Response::new(Full::default());
        *r.status_mut() = StatusCode::NOT_FOUND;
        std::future::ready(Ok(r))
    }
}

impl<S, B, ResBody> tower_service::Service<Request<B>> for IoService<S>
where
    S: tower_service::Service<Request<B>, Response = Response<ResBody>> + Clone + Send + 'static,
    S::Future: Send + 'static,
    B: http_body::Body<Data = Bytes> + Send + 'static,
    B::Error: Into<iolite_engine::BoxError>,
{
    type Response = Response<Either<Full<Bytes>, ResBody>>;
    type Error = S::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, S::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: Request<B>) -> Self::Future {
        if req.uri().path().starts_with(self.io.config().path.as_str()) {
            let io = self.io.clone();
            Box::pin(async move { Ok(io.handle(req).await.map(Either::Left)) })
        } else {
            let fut = self.inner.call(req);
            Box::pin(async move { Ok(fut.await?.map(Either::Right)) })
        }
    }
}

impl SocketIo {
    /// A tower layer serving Socket.IO in front of another service.
    pub fn layer(&self) -> IoLayer {
        IoLayer { io: self.clone() }
    }

    /// A service serving Socket.IO alone (404 for other paths).
    pub fn service(&self) -> IoService<NotFound> {
        IoService {
            io: self.clone(),
            inner: NotFound,
        }
    }

    /// Serves Socket.IO on a listener, HTTP/1.1 with WebSocket upgrades, until the
    /// listener fails. Each request carries the peer address in its extensions.
    pub async fn serve(&self, listener: tokio::net::TcpListener) -> std::io::Result<()> {
        serve(listener, self.service()).await
    }
}

/// Serves any tower service (e.g. a [`SocketIo::layer`] over an app) on a listener,
/// HTTP/1.1 with upgrades; the peer address is put in each request's extensions.
pub async fn serve<S, ResBody>(listener: tokio::net::TcpListener, service: S) -> std::io::Result<()>
where
    S: tower_service::Service<Request<hyper::body::Incoming>, Response = Response<ResBody>>
        + Clone
        + Send
        + 'static,
    S::Future: Send + 'static,
    S::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
    ResBody: http_body::Body<Data = Bytes> + Send + 'static,
    ResBody::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    iolite_engine::serve_http1(listener, move |req| {
        let mut svc = service.clone();
        async move { tower_service::Service::call(&mut svc, req).await }
    })
    .await
}
