//! HTTP long-polling: the handshake GET, GETs that wait for packets, POSTs that carry them.

use std::future::Future;
use std::sync::Arc;

use bytes::Bytes;
use http::{header, HeaderValue, Request, Response, StatusCode};
use http_body_util::{BodyExt, Limited};

use crate::payload::{decode_payload, PayloadLimits, CONTENT_TYPE, POST_RESPONSE_BODY};
use crate::query::Transport;
use crate::server::head::RequestHead;
use crate::server::socket::{noop, take_payload, Conn, Core, Out, Phase, Socket};
use crate::server::{open_packet, set_cookie, Body, CloseReason, Handler, Inner};
use crate::sid::Sid;

fn payload_response(body: Vec<u8>) -> Response<Body> {
    let mut r = Response::new(Body::from(body));
    r.headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(CONTENT_TYPE));
    r
}

fn status(code: StatusCode) -> Response<Body> {
    let mut r = Response::new(Body::default());
    *r.status_mut() = code;
    r
}

/// Opens a session on polling and answers with its open packet (and anything the
/// handler queued on open).
pub(crate) async fn handshake<H: Handler>(
    inner: &Arc<Inner<H>>,
    sid: Sid,
    parts: http::request::Parts,
) -> Response<Body> {
    let core: Arc<dyn Core<H::Data>> = inner.clone();
    let socket = Arc::new(Socket::new(
        sid,
        RequestHead::new(parts),
        None,
        core,
        H::Data::default(),
    ));
    let open = open_packet(inner, sid, Transport::Polling);
    let _ = socket.push([Out::Text(open.into())]);
    inner.sessions.insert(sid, socket.clone());
    tokio::spawn(drive(socket.clone()));
    inner.handler.on_open(&socket);
    let body = take_payload(&mut socket.lock()).unwrap_or_else(noop);
    let mut r = payload_response(body);
    set_cookie(inner, &sid, r.headers_mut());
    r
}

/// The heartbeat of a polling session, until it moves to WebSocket or closes.
async fn drive<D: Send + Sync + 'static>(socket: Arc<Socket<D>>) {
    use crate::server::socket::Tick;
    let Some(wakes) = socket.polling.as_deref() else {
        return;
    };
    loop {
        let next = match socket.tick(false) {
            Tick::Wait(t) => t,
            Tick::Stop => return,
        };
        let sleep = tokio::time::sleep(iolite_ws::sweep::until(next));
        tokio::pin!(sleep);
        std::future::poll_fn(|cx| {
            if wakes.driver.poll(&wakes.driver_woken, cx).is_ready() {
                return std::task::Poll::Ready(());
            }
            Future::poll(sleep.as_mut(), cx)
        })
        .await;
    }
}

/// Clears the pending-GET mark; if the request goes away before it was answered, the
/// session fails as in Node ("poll connection closed prematurely").
struct PendingGet<'a, D: Send + Sync + 'static> {
    socket: &'a Arc<Socket<D>>,
    armed: bool,
}

impl<D: Send + Sync + 'static> Drop for PendingGet<'_, D> {
    fn drop(&mut self) {
        if self.armed {
            self.socket.lock().get_pending = false;
            self.socket.shutdown(CloseReason::TransportError, false);
        }
    }
}

pub(crate) async fn get<H: Handler>(
    _inner: &Arc<Inner<H>>,
    socket: Arc<Socket<H::Data>>,
) -> Response<Body> {
    // Only a session opened on WebSocket has none, and its transport check refused this.
    let Some(wakes) = socket.polling.as_deref() else {
        return status(StatusCode::BAD_REQUEST);
    };
    {
        let mut st = socket.lock();
        if st.get_pending {
            drop(st);
            socket.shutdown(CloseReason::TransportError, false);
            return status(StatusCode::BAD_REQUEST);
        }
        if let Some(body) = take_payload(&mut st) {
            return payload_response(body);
        }
        if let Phase::Closing(_) = st.phase {
            drop(st);
            socket.finish();
            return payload_response(b"1".to_vec());
        }
        if st.upgrading || st.phase != Phase::Open {
            return payload_response(noop());
        }
        st.get_pending = true;
    }
    let mut pending = PendingGet {
        socket: &socket,
        armed: true,
    };
    loop {
        wakes.get.notified().await;
        let mut st = socket.lock();
        let (body, finish) = match take_payload(&mut st) {
            Some(body) => (body, false),
            None => match st.phase {
                Phase::Closing(_) => (b"1".to_vec(), true),
                Phase::Open if !matches!(st.conn, Conn::WebSocket) => continue,
                _ => (noop(), false),
            },
        };
        st.get_pending = false;
        pending.armed = false;
        drop(st);
        if finish {
            socket.finish();
        }
        return payload_response(body);
    }
}

/// Clears the pending-POST mark; a POST whose request goes away fails the session.
struct PendingPost<'a, D: Send + Sync + 'static> {
    socket: &'a Arc<Socket<D>>,
    armed: bool,
}

impl<D: Send + Sync + 'static> Drop for PendingPost<'_, D> {
    fn drop(&mut self) {
        self.socket.lock().post_pending = false;
        if self.armed {
            self.socket.shutdown(CloseReason::TransportError, false);
        }
    }
}

pub(crate) async fn post<H: Handler, B>(
    inner: &Arc<Inner<H>>,
    socket: Arc<Socket<H::Data>>,
    req: Request<B>,
) -> Response<Body>
where
    B: http_body::Body<Data = Bytes> + Send + 'static,
    B::Error: Into<crate::server::BoxError>,
{
    {
        let mut st = socket.lock();
        if st.post_pending {
            drop(st);
            socket.shutdown(CloseReason::TransportError, false);
            return status(StatusCode::BAD_REQUEST);
        }
        st.post_pending = true;
    }
    let mut pending = PendingPost {
        socket: &socket,
        armed: true,
    };
    let max = inner.config.max_payload;
    let headers = req.headers();
    if headers
        .get(header::CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes() == b"application/octet-stream")
    {
        // Engine.IO v4 sends binary as base64 text; Node refuses binary bodies.
        return status(StatusCode::BAD_REQUEST);
    }
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > max as u64) {
        pending.armed = false;
        return status(StatusCode::PAYLOAD_TOO_LARGE);
    }
    let body = match Limited::new(req.into_body(), max).collect().await {
        Ok(b) => b.to_bytes(),
        Err(e) => {
            pending.armed = false;
            if e.downcast_ref::<http_body_util::LengthLimitError>()
                .is_some()
            {
                return status(StatusCode::PAYLOAD_TOO_LARGE);
            }
            // The client went away mid-body.
            drop(pending);
            return status(StatusCode::BAD_REQUEST);
        }
    };
    pending.armed = false;
    let limits = PayloadLimits::default()
        .max_payload_bytes(max)
        .max_packets(inner.config.max_packets_per_post);
    // A malformed payload still gets `200 ok`, as from Node: the packets before the bad
    // one are handled, then the session closes with `parse error`.
    match decode_payload(body, &limits) {
        Ok(packets) => {
            for p in packets {
                match p {
                    Ok(p) => socket.on_packet(p),
                    Err(_) => {
                        socket.shutdown(CloseReason::ParseError, false);
                        break;
                    }
                }
            }
        }
        Err(e) if e.is_parse_error() => socket.shutdown(CloseReason::ParseError, false),
        Err(e) => {
            return status(StatusCode::from_u16(e.status()).unwrap_or(StatusCode::BAD_REQUEST));
        }
    }
    drop(pending);
    let mut r = Response::new(Body::from(POST_RESPONSE_BODY));
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(crate::payload::POST_RESPONSE_CONTENT_TYPE),
    );
    r
}
