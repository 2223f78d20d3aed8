//! The HTTP API for backends (`/api/...`, documented in `docs/openapi.yaml`): publish
//! events to rooms or sockets, post chat messages, list rooms and who is in them,
//! disconnect sockets. JSON in and out; every request needs the API key, as
//! `Authorization: Bearer <key>` or `X-Api-Key: <key>`; errors are
//! `{"error": {"code", "message"}}` with a matching status. Without a configured key the
//! API is off and every `/api` path answers 404.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Instant;

use axum::extract::rejection::{JsonRejection, PathRejection};
use axum::extract::{DefaultBodyLimit, FromRequestParts, Path, State};
use axum::http::request::Parts;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use iolite::{AdapterError, EmitError, RemoteSocket, Sid, SocketIo};
use serde::Deserialize;
use serde_json::{json, Value};

use crate::chat::{Chat, ChatError};
use crate::metrics::Metrics;
use crate::store::User;

/// Longest event name the API accepts, in bytes.
pub const EVENT_NAME_MAX: usize = 256;
/// Longest room name the API accepts, in bytes.
pub const ROOM_NAME_MAX: usize = 256;

/// Every route, as (method, path under `/api`); `docs/openapi.yaml` describes exactly
/// these (a test checks both ways).
pub const ROUTES: &[(&str, &str)] = &[
    ("GET", "/rooms"),
    ("POST", "/rooms/{room}/events"),
    ("POST", "/rooms/{room}/messages"),
    ("GET", "/rooms/{room}/presence"),
    ("GET", "/sockets/{id}"),
    ("DELETE", "/sockets/{id}"),
    ("POST", "/sockets/{id}/events"),
];

/// What the API handlers share.
#[derive(Clone)]
pub struct ApiState {
    /// The Socket.IO server.
    pub io: SocketIo,
    /// Counters.
    pub metrics: Arc<Metrics>,
    /// The key; `None` turns the API off.
    pub key: Option<Arc<str>>,
    /// The chat, for posting messages into its history.
    pub chat: Option<Arc<Chat>>,
}

/// An error answer: `{"error": {"code", "message"}}`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    /// The HTTP status.
    pub status: StatusCode,
    /// A stable code for programs (`unauthorized`, `not_found`, ...).
    pub code: &'static str,
    /// For people.
    pub message: String,
}

impl ApiError {
    fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        Self {
            status,
            code,
            message: message.into(),
        }
    }
    fn bad_request(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "bad_request", message)
    }
    fn not_found(message: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, "not_found", message)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = json!({"error": {"code": self.code, "message": self.message}});
        let mut r = (self.status, Json(body)).into_response();
        if self.status == StatusCode::UNAUTHORIZED {
            r.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Bearer realm=\"iolite\""),
            );
        }
        r
    }
}

impl From<JsonRejection> for ApiError {
    fn from(r: JsonRejection) -> Self {
        match r.status() {
            StatusCode::PAYLOAD_TOO_LARGE => Self::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "payload_too_large",
                "the request body is larger than limits.max_payload",
            ),
            StatusCode::UNSUPPORTED_MEDIA_TYPE => Self::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "unsupported_media_type",
                "send JSON with Content-Type: application/json",
            ),
            _ => Self::bad_request(r.body_text()),
        }
    }
}

impl From<PathRejection> for ApiError {
    fn from(r: PathRejection) -> Self {
        Self::bad_request(r.body_text())
    }
}

/// Compares without an early exit, so the time taken does not tell how much of a guessed
/// key was right.
fn same_key(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// The key a request presents: `Authorization: Bearer <key>` or `X-Api-Key: <key>`.
fn presented_key(parts: &Parts) -> Option<&[u8]> {
    if let Some(v) = parts.headers.get(header::AUTHORIZATION) {
        let v = v.as_bytes();
        let scheme = v.get(..7)?;
        if scheme.eq_ignore_ascii_case(b"bearer ") {
            return Some(v[7..].trim_ascii());
        }
        return None;
    }
    parts
        .headers
        .get("x-api-key")
        .map(|v| v.as_bytes().trim_ascii())
}

/// Proof that the request carries the API key (an extractor: handlers that take it answer
/// 401 to anyone else, before their body is read).
pub struct Authorized;

impl FromRequestParts<ApiState> for Authorized {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &ApiState) -> Result<Self, ApiError> {
        let Some(key) = &state.key else {
            return Err(disabled());
        };
        match presented_key(parts) {
            Some(k) if same_key(k, key.as_bytes()) => Ok(Authorized),
            Some(_) => {
                state.metrics.refusal("api_key");
                Err(ApiError::new(
                    StatusCode::UNAUTHORIZED,
                    "unauthorized",
                    "wrong API key",
                ))
            }
            None => {
                state.metrics.refusal("api_key");
                Err(ApiError::new(
                    StatusCode::UNAUTHORIZED,
                    "unauthorized",
                    "an API key is required: Authorization: Bearer <key> or X-Api-Key: <key>",
                ))
            }
        }
    }
}

fn disabled() -> ApiError {
    ApiError::not_found("the HTTP API is off: set api.key (IOLITE_API_KEY) to turn it on")
}

/// The `/api` routes (to nest under `/api`), with a body limit of `max_body` bytes.
pub fn router(state: ApiState, max_body: usize) -> Router {
    let metrics = state.metrics.clone();
    Router::new()
        .route("/rooms", get(list_rooms))
        .route("/rooms/{room}/events", post(publish_to_room))
        .route("/rooms/{room}/messages", post(post_message))
        .route("/rooms/{room}/presence", get(presence))
        .route("/sockets/{id}/events", post(publish_to_socket))
        .route("/sockets/{id}", get(socket_info).delete(disconnect_socket))
        .fallback(unknown_route)
        .method_not_allowed_fallback(method_not_allowed)
        .with_state(state)
        .layer(DefaultBodyLimit::max(max_body))
        .layer(axum::middleware::map_response(move |r: Response| {
            metrics.api_request(r.status().as_u16());
            std::future::ready(r)
        }))
}

async fn unknown_route(_: Authorized) -> ApiError {
    ApiError::not_found("no such API route (see docs/openapi.yaml)")
}

async fn method_not_allowed(_: Authorized) -> ApiError {
    ApiError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        "method_not_allowed",
        "this route does not take that method (see docs/openapi.yaml)",
    )
}

/// `{event, data}`: an event and its one argument (none when `data` is absent).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EventBody {
    event: String,
    #[serde(default)]
    data: Option<Value>,
}

fn check_event(event: &str) -> Result<(), ApiError> {
    if event.is_empty() || event.len() > EVENT_NAME_MAX {
        return Err(ApiError::bad_request(format!(
            "event must be 1 to {EVENT_NAME_MAX} bytes"
        )));
    }
    Ok(())
}

fn check_room(room: &str) -> Result<(), ApiError> {
    if room.is_empty() || room.len() > ROOM_NAME_MAX {
        return Err(ApiError::bad_request(format!(
            "room must be 1 to {ROOM_NAME_MAX} bytes"
        )));
    }
    Ok(())
}

fn args(data: Option<Value>) -> Vec<Value> {
    data.into_iter().collect()
}

fn emit_error(e: EmitError) -> ApiError {
    match e {
        EmitError::Reserved(name) => {
            ApiError::bad_request(format!("{name:?} is a reserved event name"))
        }
        EmitError::Serialize(e) => ApiError::bad_request(e.to_string()),
        EmitError::QueueFull => {
            // Counted by the engine (`iolite_queue_overflows_total`).
            ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "queue_full",
                "the socket's send queue is full; it is not reading fast enough",
            )
        }
        EmitError::Closed => ApiError::not_found("the socket disconnected"),
        other => ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            other.to_string(),
        ),
    }
}

fn adapter_error(e: AdapterError) -> ApiError {
    ApiError::new(
        StatusCode::SERVICE_UNAVAILABLE,
        "cluster_unavailable",
        e.to_string(),
    )
}

async fn publish_to_room(
    _: Authorized,
    State(st): State<ApiState>,
    room: Result<Path<String>, PathRejection>,
    body: Result<Json<EventBody>, JsonRejection>,
) -> Result<Json<Value>, ApiError> {
    let Path(room) = room?;
    let Json(body) = body?;
    check_room(&room)?;
    check_event(&body.event)?;
    let to = st.io.to(room.clone());
    // Counting every node's sockets would cost a cluster round trip per publish; the
    // answer says how many of them are on this node.
    let local = to.sockets().len();
    to.emit_args(&body.event, args(body.data))
        .map_err(emit_error)?;
    st.metrics.event_out(&body.event, local);
    Ok(Json(
        json!({"room": room, "event": body.event, "localRecipients": local}),
    ))
}

/// The socket with this id on any node (every socket is alone in a room named by its id).
async fn find_socket(st: &ApiState, id: &str) -> Result<RemoteSocket, ApiError> {
    let missing = || ApiError::not_found(format!("no connected socket with id {id:?}"));
    let sid = Sid::parse(id).map_err(|_| missing())?;
    let ns = st.io.of("/").ok_or_else(missing)?;
    ns.to(sid.as_str().to_owned())
        .fetch_sockets()
        .await
        .map_err(adapter_error)?
        .into_iter()
        .find(|s| s.id() == sid)
        .ok_or_else(missing)
}

async fn publish_to_socket(
    _: Authorized,
    State(st): State<ApiState>,
    id: Result<Path<String>, PathRejection>,
    body: Result<Json<EventBody>, JsonRejection>,
) -> Result<Json<Value>, ApiError> {
    let Path(id) = id?;
    let Json(body) = body?;
    check_event(&body.event)?;
    let socket = find_socket(&st, &id).await?;
    // On this node the socket's own emit tells whether its queue took the message.
    let sent = match socket.local() {
        Some(local) => local.emitter().emit_args(&body.event, args(body.data)),
        None => st
            .io
            .to(socket.id().as_str().to_owned())
            .emit_args(&body.event, args(body.data)),
    };
    sent.map_err(emit_error)?;
    st.metrics.event_out(&body.event, 1);
    Ok(Json(json!({"socket": id, "event": body.event})))
}

/// The user the chat put in a socket's data (`{"user": {"id", "name"}}`), if any.
fn user_of(s: &RemoteSocket) -> Option<Value> {
    let user = s.data_value().get("user")?;
    user.get("id")?.as_str()?;
    Some(user.clone())
}

/// A socket's rooms, its own id room left out, sorted.
fn rooms_of(s: &RemoteSocket) -> Vec<String> {
    let id = s.id();
    let mut r: Vec<String> = s
        .rooms()
        .iter()
        .filter(|r| ***r != *id.as_str())
        .map(|r| r.to_string())
        .collect();
    r.sort();
    r
}

fn socket_json(s: &RemoteSocket) -> Value {
    json!({
        "id": s.id().as_str(),
        "user": user_of(s),
        "data": s.data_value(),
        "rooms": rooms_of(s),
        "transport": s.local().map(|l| match l.transport() {
            iolite::Transport::Polling => "polling",
            iolite::Transport::WebSocket => "websocket",
        }),
    })
}

/// Distinct users (by id) among sockets, in id order; sockets without a user are not
/// counted.
fn distinct_users<'a>(sockets: impl IntoIterator<Item = &'a RemoteSocket>) -> Vec<Value> {
    let mut users = BTreeMap::new();
    for s in sockets {
        if let Some(u) = user_of(s) {
            let id = u.get("id").and_then(Value::as_str).unwrap_or("").to_owned();
            users.entry(id).or_insert(u);
        }
    }
    users.into_values().collect()
}

async fn list_rooms(_: Authorized, State(st): State<ApiState>) -> Result<Json<Value>, ApiError> {
    let Some(ns) = st.io.of("/") else {
        return Ok(Json(json!({"rooms": []})));
    };
    // One fetch of every socket on every node, grouped by room here.
    let sockets = ns
        .broadcast()
        .fetch_sockets()
        .await
        .map_err(adapter_error)?;
    let mut by_room: BTreeMap<String, Vec<&RemoteSocket>> = BTreeMap::new();
    for s in &sockets {
        for room in rooms_of(s) {
            by_room.entry(room).or_default().push(s);
        }
    }
    let rooms: Vec<Value> = by_room
        .into_iter()
        .map(|(name, members)| {
            json!({
                "name": name,
                "sockets": members.len(),
                "members": distinct_users(members.iter().copied()).len(),
            })
        })
        .collect();
    Ok(Json(json!({ "rooms": rooms })))
}

async fn presence(
    _: Authorized,
    State(st): State<ApiState>,
    room: Result<Path<String>, PathRejection>,
) -> Result<Json<Value>, ApiError> {
    let Path(room) = room?;
    check_room(&room)?;
    let sockets = match st.io.of("/") {
        Some(ns) => ns
            .to(room.clone())
            .fetch_sockets()
            .await
            .map_err(adapter_error)?,
        None => Vec::new(),
    };
    Ok(Json(json!({
        "room": room,
        "sockets": sockets.iter().map(socket_json).collect::<Vec<_>>(),
        "users": distinct_users(&sockets),
    })))
}

async fn socket_info(
    _: Authorized,
    State(st): State<ApiState>,
    id: Result<Path<String>, PathRejection>,
) -> Result<Json<Value>, ApiError> {
    let Path(id) = id?;
    Ok(Json(socket_json(&find_socket(&st, &id).await?)))
}

async fn disconnect_socket(
    _: Authorized,
    State(st): State<ApiState>,
    id: Result<Path<String>, PathRejection>,
) -> Result<Json<Value>, ApiError> {
    let Path(id) = id?;
    let socket = find_socket(&st, &id).await?;
    socket.disconnect(false).map_err(adapter_error)?;
    Ok(Json(json!({"socket": id, "disconnected": true})))
}

/// `{user: {id, name}, text, clientId?}`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct MessageBody {
    user: User,
    text: String,
    #[serde(default)]
    client_id: Option<String>,
}

fn chat_error(e: ChatError) -> ApiError {
    let status = match e.code {
        "bad_request" | "too_long" => StatusCode::BAD_REQUEST,
        "forbidden" => StatusCode::FORBIDDEN,
        "not_found" => StatusCode::NOT_FOUND,
        "rate_limited" => StatusCode::TOO_MANY_REQUESTS,
        _ => StatusCode::INTERNAL_SERVER_ERROR,
    };
    ApiError::new(status, e.code, e.message)
}

async fn post_message(
    _: Authorized,
    State(st): State<ApiState>,
    room: Result<Path<String>, PathRejection>,
    body: Result<Json<MessageBody>, JsonRejection>,
) -> Result<Json<Value>, ApiError> {
    let arrived = Instant::now();
    let Path(room) = room?;
    let Json(body) = body?;
    let Some(chat) = &st.chat else {
        return Err(ApiError::not_found(
            "the chat is not running on this server",
        ));
    };
    if body.user.id.trim().is_empty() || body.user.name.trim().is_empty() {
        return Err(ApiError::bad_request(
            "user.id and user.name must not be empty",
        ));
    }
    let appended = chat
        .post(&room, body.user, &body.text, body.client_id, arrived)
        .await
        .map_err(chat_error)?;
    Ok(Json(json!({ "message": appended.message })))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use std::collections::BTreeSet;

    use http_body_util::BodyExt;

    use super::*;

    /// The (method, path) pairs `docs/openapi.yaml` describes.
    fn documented() -> BTreeSet<(String, String)> {
        let yaml = include_str!("../../../docs/openapi.yaml");
        let mut out = BTreeSet::new();
        let mut path = None;
        let mut in_paths = false;
        for line in yaml.lines() {
            if !line.starts_with(' ') {
                in_paths = line == "paths:";
                continue;
            }
            if !in_paths {
                continue;
            }
            if let Some(p) = line.strip_prefix("  /") {
                path = Some(format!("/{}", p.trim_end_matches(':')));
            } else if let Some(m) = line.strip_prefix("    ") {
                let m = m.trim_end_matches(':');
                if ["get", "post", "put", "patch", "delete"].contains(&m) {
                    out.insert((m.to_uppercase(), path.clone().unwrap()));
                }
            }
        }
        out
    }

    #[test]
    fn the_openapi_document_describes_exactly_the_routes() {
        let routes: BTreeSet<(String, String)> = ROUTES
            .iter()
            .map(|(m, p)| (m.to_string(), p.to_string()))
            .collect();
        assert_eq!(documented(), routes);
    }

    #[tokio::test]
    async fn every_listed_route_is_served() {
        let state = ApiState {
            io: SocketIo::new(),
            metrics: Metrics::new(),
            key: Some(Arc::from("0123456789abcdef")),
            chat: None,
        };
        let router = router(state, 1 << 16);
        for (method, path) in ROUTES {
            let uri = path
                .replace("{room}", "general")
                .replace("{id}", "AAAAAAAAAAAAAAAAAAAA");
            let req = http::Request::builder()
                .method(*method)
                .uri(&uri)
                .header("authorization", "Bearer 0123456789abcdef")
                .header("content-type", "application/json")
                .body(axum::body::Body::from("{\"event\": \"x\"}"))
                .unwrap();
            let resp = tower_service::Service::call(&mut router.clone(), req)
                .await
                .unwrap();
            let status = resp.status();
            let body = resp.into_body().collect().await.unwrap().to_bytes();
            let text = String::from_utf8_lossy(&body);
            assert_ne!(status, StatusCode::METHOD_NOT_ALLOWED, "{method} {path}");
            assert!(
                !text.contains("no such API route"),
                "{method} {path}: {text}"
            );
            assert_ne!(status, StatusCode::UNAUTHORIZED, "{method} {path}");
        }
    }

    #[test]
    fn keys_compare_whole() {
        assert!(same_key(b"0123456789abcdef", b"0123456789abcdef"));
        assert!(!same_key(b"0123456789abcdef", b"0123456789abcdeg"));
        assert!(!same_key(b"0123456789abcdef", b"0123456789abcde"));
        assert!(!same_key(b"", b"x"));
    }

    fn parts(headers: &[(&str, &str)]) -> Parts {
        let mut b = http::Request::builder();
        for (k, v) in headers {
            b = b.header(*k, *v);
        }
        b.body(())
            .map(|r| r.into_parts().0)
            .unwrap_or_else(|_| http::Request::new(()).into_parts().0)
    }

    #[test]
    fn the_key_comes_from_bearer_or_x_api_key() {
        assert_eq!(
            presented_key(&parts(&[("authorization", "Bearer abc")])),
            Some(&b"abc"[..])
        );
        assert_eq!(
            presented_key(&parts(&[("authorization", "bearer  abc ")])),
            Some(&b"abc"[..])
        );
        assert_eq!(
            presented_key(&parts(&[("authorization", "Basic abc")])),
            None
        );
        assert_eq!(presented_key(&parts(&[("authorization", "Bear")])), None);
        assert_eq!(
            presented_key(&parts(&[("x-api-key", "k")])),
            Some(&b"k"[..])
        );
        assert_eq!(presented_key(&parts(&[])), None);
    }
}
