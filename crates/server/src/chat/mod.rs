//! The chat application on Socket.IO: the `/` namespace as `docs/chat-protocol.md`
//! describes it.
//!
//! Who is who lives in each socket's data (`{"user": {"id", "name"}}`, see
//! [`SocketData`]), so presence is always computed from the sockets in a room
//! (`fetch_sockets`), never from a table of our own that could drift from them. Each
//! user's sockets are also in the room `user:<id>` (chat room names cannot contain `:`),
//! which lets `typing` skip every tab of the typer.

pub mod rate;

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use iolite::{AckSender, Args, ConnectError, Event, Namespace, SocketIo, SocketRef};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};

use crate::auth::{self, Verifier};
use crate::metrics::Metrics;
use crate::store::{Appended, NewMessage, Store, StoreError, User};
use rate::{Admit, Limiter};

/// The chat's limits.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct ChatSettings {
    /// Longest message, in characters.
    pub message_length: usize,
    /// Most rooms one socket may be in.
    pub rooms_per_socket: usize,
    /// Largest history page.
    pub history_page: usize,
    /// Events per second per connection (token bucket; burst twice that). 0: no limit.
    pub events_per_second: u32,
}

impl Default for ChatSettings {
    fn default() -> Self {
        Self {
            message_length: 2000,
            rooms_per_socket: 50,
            history_page: 50,
            events_per_second: 20,
        }
    }
}

/// Longest room name, in characters.
pub const ROOM_NAME_MAX: usize = 64;
/// Longest guest name, in characters (after trimming).
pub const GUEST_NAME_MAX: usize = 32;
/// Longest display name taken from a token's `name` claim; longer ones are cut.
pub const TOKEN_NAME_MAX: usize = 64;
/// Longest `clientId`, in characters.
pub const CLIENT_ID_MAX: usize = 64;

/// The client events the chat handles.
pub const EVENTS: &[&str] = &[
    "rooms:list",
    "room:join",
    "room:leave",
    "message:send",
    "history",
    "room:sync",
    "typing",
];

/// What the chat keeps in each socket's data (`socket.data`): read it with
/// `socket.data::<SocketData>()`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SocketData {
    /// Who is connected.
    pub user: User,
    /// The rooms the user may join, when the token's `rooms` claim limits them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub allowed_rooms: Option<Vec<String>>,
}

/// A refused request: `{ok: false, error: {code, message}}`, or `chat:error`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, thiserror::Error)]
#[error("{code}: {message}")]
pub struct ChatError {
    /// `bad_request`, `forbidden`, `not_found`, `too_long`, `too_many_rooms`,
    /// `rate_limited` or `internal`.
    pub code: &'static str,
    /// For people.
    pub message: String,
}

impl ChatError {
    fn new(code: &'static str, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
        }
    }
    fn bad_request(message: impl Into<String>) -> Self {
        Self::new("bad_request", message)
    }
    fn forbidden(message: impl Into<String>) -> Self {
        Self::new("forbidden", message)
    }
}

/// A room in `hello` and `rooms:list`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RoomSummary {
    /// The name.
    pub name: String,
    /// Distinct users in it now.
    pub members: usize,
    /// Its latest message id, 0 when it has none.
    pub last_id: i64,
}

/// Whether `name` is a valid room name: 1 to 64 characters of ASCII letters, digits,
/// `-`, `_` and `.`.
pub fn valid_room_name(name: &str) -> bool {
    (1..=ROOM_NAME_MAX).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
}

/// A guest name, trimmed, or why it is refused.
pub fn guest_name(raw: &str) -> Result<String, &'static str> {
    let name = raw.trim();
    let n = name.chars().count();
    if n == 0 {
        return Err("the name is empty");
    }
    if n > GUEST_NAME_MAX {
        return Err("the name is longer than 32 characters");
    }
    if name.chars().any(char::is_control) {
        return Err("the name contains control characters");
    }
    Ok(name.to_owned())
}

/// The room holding every socket of a user.
pub fn user_room(user_id: &str) -> String {
    format!("user:{user_id}")
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// Per-socket state (in the socket's extensions).
struct ConnState {
    user: User,
    allowed: Option<HashSet<String>>,
    /// The chat rooms this socket joined (or is joining): counted against
    /// `rooms_per_socket`, and what is left behind when it disconnects (by then the
    /// socket is out of every room already).
    rooms: Mutex<HashSet<String>>,
    limiter: Mutex<Limiter>,
}

impl ConnState {
    fn may_join(&self, room: &str) -> bool {
        self.allowed.as_ref().is_none_or(|a| a.contains(room))
    }
}

fn conn_state(socket: &SocketRef) -> Option<Arc<ConnState>> {
    socket.extensions().get::<Arc<ConnState>>().cloned()
}

/// Whether the socket is in the chat room (its own id is a room too, but not a chat one).
fn in_room(socket: &SocketRef, room: &str) -> bool {
    room != socket.id().as_str() && socket.rooms().iter().any(|r| &**r == room)
}

fn parse<T: DeserializeOwned>(v: Value) -> Result<T, ChatError> {
    // serde would also read a struct from an array (`["general"]`): the protocol says
    // objects.
    if !v.is_object() {
        return Err(ChatError::bad_request("the payload must be an object"));
    }
    serde_json::from_value(v).map_err(|e| ChatError::bad_request(format!("invalid payload: {e}")))
}

fn room_arg(room: String) -> Result<String, ChatError> {
    if valid_room_name(&room) {
        Ok(room)
    } else {
        Err(ChatError::bad_request(
            "room names are 1 to 64 characters of letters, digits, '-', '_' and '.'",
        ))
    }
}

#[derive(Deserialize)]
struct RoomReq {
    room: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct SendReq {
    room: String,
    text: String,
    #[serde(default)]
    client_id: Option<String>,
}

#[derive(Deserialize)]
struct HistoryReq {
    room: String,
    #[serde(default)]
    before: Option<i64>,
    #[serde(default)]
    limit: Option<i64>,
}

#[derive(Deserialize)]
struct SyncReq {
    room: String,
    after: i64,
}

#[derive(Deserialize)]
struct TypingReq {
    room: String,
    typing: bool,
}

type Answer = Result<Map<String, Value>, ChatError>;

fn answer(v: Value) -> Answer {
    match v {
        Value::Object(m) => Ok(m),
        _ => Ok(Map::new()),
    }
}

/// The chat: its store, verifier, limits and metrics, and the namespace it serves.
pub struct Chat {
    store: Arc<dyn Store>,
    verifier: Option<Arc<Verifier>>,
    settings: ChatSettings,
    metrics: Arc<Metrics>,
    // The handlers hold the chat and the chat holds the namespace: a cycle, on purpose,
    // as both live as long as the server.
    ns: OnceLock<Namespace>,
}

impl std::fmt::Debug for Chat {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Chat")
            .field("settings", &self.settings)
            .field("auth", &self.verifier.is_some())
            .finish_non_exhaustive()
    }
}

impl Chat {
    /// A chat on this store; `verifier` `None` is guest mode.
    pub fn new(
        store: Arc<dyn Store>,
        verifier: Option<Arc<Verifier>>,
        settings: ChatSettings,
        metrics: Arc<Metrics>,
    ) -> Arc<Chat> {
        Arc::new(Chat {
            store,
            verifier,
            settings,
            metrics,
            ns: OnceLock::new(),
        })
    }

    /// The history store.
    pub fn store(&self) -> &Arc<dyn Store> {
        &self.store
    }

    /// The limits.
    pub fn settings(&self) -> &ChatSettings {
        &self.settings
    }

    /// Registers the `/` namespace: the middleware that identifies users and the
    /// handlers of the protocol. Call once.
    pub fn install(self: &Arc<Self>, io: &SocketIo) {
        let chat = self.clone();
        let ns = io.ns("/", move |s: SocketRef| {
            let chat = chat.clone();
            async move { chat.connected(s).await }
        });
        let chat = self.clone();
        ns.use_middleware(move |s: SocketRef| {
            let chat = chat.clone();
            async move { chat.identify(&s) }
        });
        if self.ns.set(ns).is_err() {
            tracing::warn!("Chat::install called twice; the first namespace stays in use");
        }
    }

    /// A store failure: logged and counted here, answered `internal`.
    fn store_failed(&self, e: StoreError) -> ChatError {
        tracing::error!(error = %e, "chat history");
        self.metrics.error("store");
        ChatError::new("internal", "the history store failed")
    }

    fn ns(&self) -> Result<&Namespace, ChatError> {
        self.ns
            .get()
            .ok_or_else(|| ChatError::new("internal", "the chat is not installed"))
    }

    /// The connect middleware: who is this? Guest name or token; the answer goes in the
    /// socket's data.
    fn identify(&self, s: &SocketRef) -> Result<(), ConnectError> {
        let refuse = |reason: &str, code: &str, message: String| {
            self.metrics.refusal(reason);
            Err(ConnectError::new(message).with_data(json!({ "code": code })))
        };
        let data = match &self.verifier {
            None => {
                let raw = s.handshake().auth().get("name").and_then(Value::as_str);
                match raw.map(guest_name) {
                    Some(Ok(name)) => SocketData {
                        user: User {
                            id: format!("guest:{name}"),
                            name,
                        },
                        allowed_rooms: None,
                    },
                    Some(Err(why)) => return refuse("invalid_name", "invalid_name", why.into()),
                    None => {
                        return refuse(
                            "invalid_name",
                            "invalid_name",
                            "a name is required (auth.name)".into(),
                        )
                    }
                }
            }
            Some(verifier) => {
                let Some(token) = auth::token_from_handshake(s.handshake()) else {
                    return refuse(
                        "auth",
                        "auth_required",
                        "authentication required: a token in auth.token or an \
                         Authorization: Bearer header"
                            .into(),
                    );
                };
                match verifier.verify(&token) {
                    Ok(claims) => {
                        let name = claims
                            .name
                            .as_deref()
                            .map(|n| {
                                n.chars()
                                    .filter(|c| !c.is_control())
                                    .take(TOKEN_NAME_MAX)
                                    .collect::<String>()
                                    .trim()
                                    .to_owned()
                            })
                            .filter(|n| !n.is_empty())
                            .unwrap_or_else(|| claims.sub.clone());
                        SocketData {
                            user: User {
                                id: claims.sub,
                                name,
                            },
                            allowed_rooms: claims.rooms,
                        }
                    }
                    Err(e) => {
                        tracing::debug!(error = %e, "token refused");
                        return refuse("auth", "invalid_token", e.to_string());
                    }
                }
            }
        };
        s.set_data(&data).map_err(|e| {
            tracing::error!(error = %e, "socket data");
            ConnectError::new("internal error").with_data(json!({"code": "internal"}))
        })?;
        // Joined as the socket connects, so it is never without it.
        s.join(user_room(&data.user.id));
        Ok(())
    }

    async fn connected(self: Arc<Self>, s: SocketRef) {
        let Ok(data) = s.data::<SocketData>() else {
            // Only a socket that skipped the middleware (a recovered session from a
            // server that did not set the data) can get here.
            s.disconnect();
            return;
        };
        let user_room = user_room(&data.user.id);
        let rooms: HashSet<String> = s
            .rooms()
            .iter()
            .filter(|r| &***r != s.id().as_str() && ***r != *user_room)
            .map(|r| r.to_string())
            .collect();
        let state = Arc::new(ConnState {
            user: data.user.clone(),
            allowed: data.allowed_rooms.map(|r| r.into_iter().collect()),
            rooms: Mutex::new(rooms.clone()),
            limiter: Mutex::new(Limiter::new(
                self.settings.events_per_second,
                Instant::now(),
            )),
        });
        s.extensions().insert(state);

        // Handlers first, before any await, so that no event is missed.
        for &event in EVENTS {
            let chat = self.clone();
            s.on(
                event,
                move |s: SocketRef, Args(args): Args, ack: AckSender| {
                    let chat = chat.clone();
                    async move { chat.dispatch(event, s, args, ack).await }
                },
            );
        }
        let chat = self.clone();
        s.on_any(move |s: SocketRef, Event(name): Event| {
            let chat = chat.clone();
            async move {
                if !EVENTS.contains(&name.as_str()) {
                    chat.unknown_event(&s);
                }
            }
        });
        let chat = self.clone();
        s.on_disconnect(move |s: SocketRef, _reason| async move {
            chat.disconnected(s).await;
        });

        // Already joined in the middleware, unless that was skipped for a recovered session.
        s.join(user_room);
        // A recovered socket is back in its rooms: the others saw it leave.
        for room in &rooms {
            self.announce_presence(room).await;
        }
        let rooms = match self.room_summaries().await {
            Ok(r) => r,
            Err(e) => {
                self.store_failed(e);
                Vec::new()
            }
        };
        let hello = json!({
            "user": data.user,
            "rooms": rooms,
            "limits": {
                "messageLength": self.settings.message_length,
                "roomsPerSocket": self.settings.rooms_per_socket,
                "historyPage": self.settings.history_page,
                "eventsPerSecond": self.settings.events_per_second,
            },
        });
        if s.emit("hello", &hello).is_ok() {
            self.metrics.event_out("hello", 1);
        }
    }

    async fn disconnected(&self, s: SocketRef) {
        let Some(state) = conn_state(&s) else { return };
        let rooms = std::mem::take(&mut *lock(&state.rooms));
        for room in rooms {
            self.announce_presence_if_gone(&room, &state.user.id).await;
        }
    }

    /// The rate limit, then what the socket is refused beyond it.
    fn admit(&self, s: &SocketRef, state: &ConnState) -> Result<(), (ChatError, bool)> {
        let verdict = lock(&state.limiter).admit(Instant::now());
        match verdict {
            Admit::Yes => Ok(()),
            Admit::Refused | Admit::Disconnect => {
                let disconnect = verdict == Admit::Disconnect;
                if disconnect {
                    tracing::info!(socket = %s.id(), user = state.user.id, "disconnected: too many events");
                    self.metrics.refusal("rate_limited");
                }
                Err((
                    ChatError::new(
                        "rate_limited",
                        format!(
                            "more than {} events a second",
                            self.settings.events_per_second
                        ),
                    ),
                    disconnect,
                ))
            }
        }
    }

    fn unknown_event(&self, s: &SocketRef) {
        self.metrics.event_in("unknown");
        let Some(state) = conn_state(s) else { return };
        let e = match self.admit(s, &state) {
            Ok(()) => ChatError::bad_request("unknown event"),
            Err((e, disconnect)) => {
                self.reply_error(s, None, e);
                if disconnect {
                    s.disconnect();
                }
                return;
            }
        };
        self.reply_error(s, None, e);
    }

    async fn dispatch(
        self: Arc<Self>,
        event: &'static str,
        s: SocketRef,
        args: Vec<Value>,
        ack: AckSender,
    ) {
        let arrived = Instant::now();
        self.metrics.event_in(event);
        let Some(state) = conn_state(&s) else { return };
        if let Err((e, disconnect)) = self.admit(&s, &state) {
            self.reply(&s, ack, Err(e));
            if disconnect {
                s.disconnect();
            }
            return;
        }
        let arg = args.into_iter().next().unwrap_or(Value::Null);
        let result = match event {
            "rooms:list" => self.rooms_list().await,
            "room:join" => self.join(&s, &state, arg).await,
            "room:leave" => self.leave(&s, &state, arg).await,
            "message:send" => self.send(&s, &state, arg, arrived).await,
            "history" => self.history(&state, arg).await,
            "room:sync" => self.sync(&state, arg).await,
            "typing" => self.typing(&s, &state, arg),
            _ => Err(ChatError::bad_request("unknown event")),
        };
        self.reply(&s, ack, result);
    }

    fn reply(&self, s: &SocketRef, ack: AckSender, result: Answer) {
        match result {
            Ok(fields) => {
                if ack.is_requested() {
                    let mut m = Map::with_capacity(fields.len() + 1);
                    m.insert("ok".into(), Value::Bool(true));
                    m.extend(fields);
                    let _ = ack.send(&m);
                }
            }
            Err(e) => self.reply_error(s, Some(ack), e),
        }
    }

    fn reply_error(&self, s: &SocketRef, ack: Option<AckSender>, e: ChatError) {
        self.metrics.error(e.code);
        match ack {
            Some(ack) if ack.is_requested() => {
                let _ = ack.send(&json!({"ok": false, "error": e}));
            }
            _ => {
                if s.emit("chat:error", &e).is_ok() {
                    self.metrics.event_out("chat:error", 1);
                }
            }
        }
    }

    /// Every room with its member count and last id.
    pub async fn room_summaries(&self) -> Result<Vec<RoomSummary>, StoreError> {
        let rooms = self.store.rooms().await?;
        let mut out = Vec::with_capacity(rooms.len());
        for r in rooms {
            let members = self.members(&r.name).await.len();
            out.push(RoomSummary {
                name: r.name,
                members,
                last_id: r.last_id,
            });
        }
        Ok(out)
    }

    /// The distinct users in a room now, by name, from the sockets in it (on every node).
    pub async fn members(&self, room: &str) -> Vec<User> {
        let Ok(ns) = self.ns() else {
            return Vec::new();
        };
        match room_users(ns, room).await {
            Ok(users) => members_of(&users),
            Err(e) => {
                tracing::error!(room, error = %e, "presence");
                Vec::new()
            }
        }
    }

    /// Sends `presence` to the room.
    async fn announce_presence(&self, room: &str) {
        let Ok(ns) = self.ns() else { return };
        if let Ok(users) = room_users(ns, room).await {
            self.send_presence(ns, room, &users);
        }
    }

    /// Sends `presence` to the room if no socket of `user_id` is left in it.
    async fn announce_presence_if_gone(&self, room: &str, user_id: &str) {
        let Ok(ns) = self.ns() else { return };
        let Ok(users) = room_users(ns, room).await else {
            return;
        };
        if !users.iter().any(|u| u.id == user_id) {
            self.send_presence(ns, room, &users);
        }
    }

    /// `users`: one per socket in the room.
    fn send_presence(&self, ns: &Namespace, room: &str, users: &[User]) {
        if users.is_empty() {
            return;
        }
        let payload = json!({"room": room, "members": members_of(users)});
        if ns.to(room.to_owned()).emit("presence", &payload).is_ok() {
            self.metrics.event_out("presence", users.len());
        }
    }

    async fn rooms_list(&self) -> Answer {
        let rooms = self
            .room_summaries()
            .await
            .map_err(|e| self.store_failed(e))?;
        answer(json!({ "rooms": rooms }))
    }

    async fn join(&self, s: &SocketRef, state: &ConnState, arg: Value) -> Answer {
        let req: RoomReq = parse(arg)?;
        let room = room_arg(req.room)?;
        if !state.may_join(&room) {
            return Err(ChatError::forbidden("your token does not allow this room"));
        }
        let ns = self.ns()?;
        // Every socket is alone in a room named by its id, and ids have the shape of room
        // names: joining one would receive what is sent to that socket.
        if iolite::Sid::parse(&room)
            .ok()
            .and_then(|sid| ns.get_socket(&sid))
            .is_some()
        {
            return Err(ChatError::forbidden("this room name is reserved"));
        }
        let newly = {
            let mut rooms = lock(&state.rooms);
            if rooms.contains(&room) {
                false
            } else if rooms.len() >= self.settings.rooms_per_socket {
                return Err(ChatError::new(
                    "too_many_rooms",
                    format!(
                        "at most {} rooms per connection",
                        self.settings.rooms_per_socket
                    ),
                ));
            } else {
                rooms.insert(room.clone());
                true
            }
        };
        let created = match self.store.create_room(&room).await {
            Ok(c) => c,
            Err(e) => {
                if newly {
                    lock(&state.rooms).remove(&room);
                }
                return Err(self.store_failed(e));
            }
        };
        if created {
            let n = ns.sockets().len();
            if ns.emit("room:new", &json!({ "name": room })).is_ok() {
                self.metrics.event_out("room:new", n);
            }
        }
        // Joined before the history is read, so no message falls between the two (one
        // may come twice: clients deduplicate by id).
        s.join(room.clone());
        let users = room_users(ns, &room).await?;
        let mine = users.iter().filter(|u| u.id == state.user.id).count();
        if newly && mine == 1 {
            self.send_presence(ns, &room, &users);
        }
        let members = members_of(&users);
        let page = self
            .store
            .before(&room, None, self.settings.history_page)
            .await
            .map_err(|e| self.store_failed(e))?;
        answer(json!({
            "room": room,
            "members": members,
            "messages": page.messages,
            "hasMore": page.has_more,
        }))
    }

    async fn leave(&self, s: &SocketRef, state: &ConnState, arg: Value) -> Answer {
        let req: RoomReq = parse(arg)?;
        let room = room_arg(req.room)?;
        let was_in = lock(&state.rooms).remove(&room);
        if was_in {
            s.leave(&room);
            self.announce_presence_if_gone(&room, &state.user.id).await;
        }
        Ok(Map::new())
    }

    async fn send(&self, s: &SocketRef, state: &ConnState, arg: Value, arrived: Instant) -> Answer {
        let req: SendReq = parse(arg)?;
        let room = room_arg(req.room)?;
        if !in_room(s, &room) {
            return Err(ChatError::forbidden("join the room first"));
        }
        let appended = self
            .post(&room, state.user.clone(), &req.text, req.client_id, arrived)
            .await?;
        answer(json!({ "message": appended.message }))
    }

    /// Validates, stores and broadcasts a message from `user` to `room` (the sender's
    /// sockets in the room get it too), as `message:send` does, without requiring a
    /// socket in the room: for the HTTP API. A duplicate `client_id` returns the stored
    /// message and broadcasts nothing.
    pub async fn post(
        &self,
        room: &str,
        user: User,
        text: &str,
        client_id: Option<String>,
        arrived: Instant,
    ) -> Result<Appended, ChatError> {
        let room = room_arg(room.to_owned())?;
        let text = text.trim();
        // A character is at most 4 bytes: past that no need to count.
        let too_long = text.len() > self.settings.message_length.saturating_mul(4)
            || text.chars().count() > self.settings.message_length;
        if too_long {
            return Err(ChatError::new(
                "too_long",
                format!(
                    "messages are at most {} characters",
                    self.settings.message_length
                ),
            ));
        }
        if text.is_empty() {
            return Err(ChatError::bad_request("empty message"));
        }
        if let Some(c) = &client_id {
            if c.is_empty() || c.chars().count() > CLIENT_ID_MAX {
                return Err(ChatError::bad_request(
                    "clientId must be 1 to 64 characters",
                ));
            }
        }
        let ns = self.ns()?;
        let appended = self
            .store
            .append(NewMessage {
                room: room.clone(),
                user,
                text: text.to_owned(),
                client_id,
                ts: now_ms(),
            })
            .await
            .map_err(|e| self.store_failed(e))?;
        if !appended.duplicate {
            let to = ns.to(room);
            let n = to.sockets().len();
            if to.emit("message", &appended.message).is_ok() {
                self.metrics.event_out("message", n);
                self.metrics.delivery_latency(arrived.elapsed());
            }
        }
        Ok(appended)
    }

    async fn history(&self, state: &ConnState, arg: Value) -> Answer {
        let req: HistoryReq = parse(arg)?;
        let room = room_arg(req.room)?;
        if !state.may_join(&room) {
            return Err(ChatError::forbidden("your token does not allow this room"));
        }
        if req.before.is_some_and(|b| b < 0) {
            return Err(ChatError::bad_request("before must be a message id"));
        }
        let limit = match req.limit {
            None => self.settings.history_page,
            Some(l) if l < 1 => return Err(ChatError::bad_request("limit must be at least 1")),
            Some(l) => usize::try_from(l)
                .unwrap_or(usize::MAX)
                .min(self.settings.history_page),
        };
        self.known_room(&room).await?;
        let page = self
            .store
            .before(&room, req.before, limit)
            .await
            .map_err(|e| self.store_failed(e))?;
        answer(json!({"messages": page.messages, "hasMore": page.has_more}))
    }

    async fn sync(&self, state: &ConnState, arg: Value) -> Answer {
        let req: SyncReq = parse(arg)?;
        let room = room_arg(req.room)?;
        if !state.may_join(&room) {
            return Err(ChatError::forbidden("your token does not allow this room"));
        }
        if req.after < 0 {
            return Err(ChatError::bad_request("after must be a message id or 0"));
        }
        self.known_room(&room).await?;
        let page = self
            .store
            .after(&room, req.after, self.settings.history_page)
            .await
            .map_err(|e| self.store_failed(e))?;
        answer(json!({"messages": page.messages, "hasMore": page.has_more}))
    }

    async fn known_room(&self, room: &str) -> Result<(), ChatError> {
        match self
            .store
            .room(room)
            .await
            .map_err(|e| self.store_failed(e))?
        {
            Some(_) => Ok(()),
            None => Err(ChatError::new("not_found", "no such room")),
        }
    }

    fn typing(&self, s: &SocketRef, state: &ConnState, arg: Value) -> Answer {
        let req: TypingReq = parse(arg)?;
        let room = room_arg(req.room)?;
        if !in_room(s, &room) {
            return Err(ChatError::forbidden("join the room first"));
        }
        let ns = self.ns()?;
        let to = ns
            .to(room.clone())
            .except(user_room(&state.user.id))
            .volatile();
        let n = to.sockets().len();
        let payload = json!({"room": room, "user": state.user, "typing": req.typing});
        if to.emit("typing", &payload).is_ok() {
            self.metrics.event_out("typing", n);
        }
        Ok(Map::new())
    }
}

/// The user of each socket in the room, on every node.
async fn room_users(ns: &Namespace, room: &str) -> Result<Vec<User>, ChatError> {
    match ns.to(room.to_owned()).fetch_sockets().await {
        Ok(sockets) => Ok(sockets
            .iter()
            .filter_map(|s| s.data::<SocketData>().ok().map(|d| d.user))
            .collect()),
        Err(e) => {
            // The cluster did not answer (Redis down, a node that just died and is still
            // counted): this node's members are better than refusing the join.
            tracing::warn!(room, error = %e, "presence from this node only");
            Ok(ns
                .to(room.to_owned())
                .sockets()
                .iter()
                .filter_map(|s| s.data::<SocketData>().ok().map(|d| d.user))
                .collect())
        }
    }
}

/// The distinct users, by name then id.
fn members_of(users: &[User]) -> Vec<User> {
    let mut by_id: HashMap<&str, &User> = HashMap::new();
    for u in users {
        by_id.entry(u.id.as_str()).or_insert(u);
    }
    let mut members: Vec<User> = by_id.into_values().cloned().collect();
    members.sort_by(|a, b| a.name.cmp(&b.name).then_with(|| a.id.cmp(&b.id)));
    members
}
