//! socket.io-adapter's `ClusterAdapter` protocol, shared by the adapters built on it: the
//! streams adapter (Node's `ClusterAdapterWithHeartbeat`, members known from heartbeats)
//! and the sharded pub/sub adapter (`ClusterAdapter`, members counted by Redis). How each
//! carries a message differs; what a node does with another node's message, and how it
//! waits for the answers to its own requests, is here.
//!
//! A message is `{type, data, uid, nsp}`, `type` socket.io-adapter's `MessageType`:
//!
//! | type | data |
//! |---|---|
//! | 1 `INITIAL_HEARTBEAT`, 2 `HEARTBEAT`, 13 `ADAPTER_CLOSE` | none |
//! | 3 `BROADCAST` | `{packet, opts: {rooms, except, flags}, requestId?}` |
//! | 4 `SOCKETS_JOIN` / 5 `SOCKETS_LEAVE` | `{opts, rooms}` |
//! | 6 `DISCONNECT_SOCKETS` | `{opts, close}` |
//! | 7 `FETCH_SOCKETS` / 8 its response | `{opts, requestId}` / `{requestId, sockets}` |
//! | 9 `SERVER_SIDE_EMIT` / 10 its response | `{packet: [event, ...args], requestId?}` / `{requestId, packet}` |
//! | 11 `BROADCAST_CLIENT_COUNT` / 12 `BROADCAST_ACK` | `{requestId, clientCount}` / `{requestId, packet}` |

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex, MutexGuard, Weak};
use std::time::Duration;

use bytes::Bytes;
use iolite::adapter::{
    AckCollector, AckEvent, AdapterError, BroadcastOptions, LocalNamespace, ServerAck,
};
use iolite::parser::Packet;
use iolite::{AckResponse, Room};
use serde_json::{json, Map, Value};
use tokio::sync::oneshot;

use crate::wire;

/// socket.io-adapter's `MessageType`.
pub(crate) mod kind {
    pub const INITIAL_HEARTBEAT: u8 = 1;
    pub const HEARTBEAT: u8 = 2;
    pub const BROADCAST: u8 = 3;
    pub const SOCKETS_JOIN: u8 = 4;
    pub const SOCKETS_LEAVE: u8 = 5;
    pub const DISCONNECT_SOCKETS: u8 = 6;
    pub const FETCH_SOCKETS: u8 = 7;
    pub const FETCH_SOCKETS_RESPONSE: u8 = 8;
    pub const SERVER_SIDE_EMIT: u8 = 9;
    pub const SERVER_SIDE_EMIT_RESPONSE: u8 = 10;
    pub const BROADCAST_CLIENT_COUNT: u8 = 11;
    pub const BROADCAST_ACK: u8 = 12;
    pub const ADAPTER_CLOSE: u8 = 13;
}

/// The uid of `@socket.io/redis-emitter`, which is no member of the cluster.
pub(crate) const EMITTER_UID: &str = "emitter";

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // Critical sections are map operations: a panic cannot leave one half done.
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// 16 hex characters, as socket.io-adapter's `randomId()` makes node and request ids.
pub(crate) fn random_id() -> String {
    let mut b = [0u8; 8];
    if getrandom::fill(&mut b).is_err() {
        // No OS randomness: the clock still tells nodes and requests apart.
        let t = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0);
        b = std::array::from_fn(|i| (t >> (i * 8)) as u8);
    }
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// Rooms as a message lists them.
pub(crate) fn rooms_json(rooms: &[Room]) -> Value {
    Value::Array(rooms.iter().map(|r| Value::String(r.to_string())).collect())
}

fn rooms_of(data: &Value) -> Vec<Room> {
    data.get("rooms")
        .and_then(Value::as_array)
        .map(|a| a.iter().filter_map(Value::as_str).map(Room::from).collect())
        .unwrap_or_default()
}

/// The `packet` of a server-side emit: the event, then its arguments.
pub(crate) fn server_side_packet(event: String, args: Vec<Value>) -> Value {
    let mut packet = Vec::with_capacity(args.len() + 1);
    packet.push(Value::String(event));
    packet.extend(args);
    Value::Array(packet)
}

/// Whose answers a request waits for.
pub(crate) enum Expected {
    /// These nodes' (the streams adapter knows the members from their heartbeats); a node
    /// that leaves meanwhile is no longer waited for.
    Nodes(HashSet<String>),
    /// This many, from any node (the sharded adapter counts the subscribers, as Node's
    /// `ClusterAdapter` does).
    Count(usize),
}

impl Expected {
    fn answered_by(&mut self, uid: &str) {
        match self {
            Self::Nodes(missing) => {
                missing.remove(uid);
            }
            Self::Count(n) => *n = n.saturating_sub(1),
        }
    }

    fn is_complete(&self) -> bool {
        match self {
            Self::Nodes(missing) => missing.is_empty(),
            Self::Count(n) => *n == 0,
        }
    }
}

struct Pending {
    expected: Expected,
    responses: Vec<Value>,
    done: Option<oneshot::Sender<Vec<Value>>>,
}

impl Pending {
    fn finish_if_complete(&mut self) -> bool {
        if !self.expected.is_complete() {
            return false;
        }
        if let Some(tx) = self.done.take() {
            let _ = tx.send(std::mem::take(&mut self.responses));
        }
        true
    }
}

/// Sends an answer (type, data, binary attachments of data) to the node that asked: the
/// streams adapter appends it to the stream, the sharded adapter publishes it on the
/// asking node's response channel.
pub(crate) type Respond = Arc<dyn Fn(u8, Value, Vec<Bytes>) + Send + Sync>;

/// A message from another node, decoded.
pub(crate) struct Message<'a> {
    /// Its `MessageType`.
    pub ty: u8,
    /// The sending node.
    pub uid: &'a str,
    /// Its `data` (`Null` when it has none), binary values as placeholders.
    pub data: &'a Value,
    /// The binary values the placeholders of `data` stand for.
    pub attachments: &'a [Bytes],
}

/// One namespace's side of the protocol: this node's requests waiting for answers, and
/// what it does with the other nodes' messages.
pub(crate) struct Cluster {
    local: LocalNamespace,
    /// `fetch_sockets` and server-side emits with answers.
    requests: Mutex<HashMap<String, Pending>>,
    /// Broadcasts with acks this node sent, until their timeout.
    acks: Arc<Mutex<HashMap<String, AckCollector>>>,
    /// How long a broadcast with acks waits when it was given no timeout.
    default_ack_timeout: Duration,
}

impl Cluster {
    pub(crate) fn new(local: LocalNamespace, default_ack_timeout: Duration) -> Self {
        Self {
            local,
            requests: Mutex::default(),
            acks: Arc::default(),
            default_ack_timeout,
        }
    }

    pub(crate) fn local(&self) -> &LocalNamespace {
        &self.local
    }

    /// Forgets every request (the adapter closes).
    pub(crate) fn clear(&self) {
        lock(&self.requests).clear();
        lock(&self.acks).clear();
    }

    /// Node `uid` left: its answers are no longer waited for.
    pub(crate) fn remove_node(&self, uid: &str) {
        lock(&self.requests).retain(|_, p| {
            if let Expected::Nodes(missing) = &mut p.expected {
                missing.remove(uid);
            }
            !p.finish_if_complete()
        });
    }

    /// Sends a request with `publish` (which gets its fresh request id) and waits for the
    /// answers' data: the sockets of `FETCH_SOCKETS` answers, the `packet` of each
    /// `SERVER_SIDE_EMIT` answer.
    pub(crate) async fn request(
        &self,
        expected: Expected,
        timeout: Duration,
        publish: impl FnOnce(&str) -> Result<(), AdapterError>,
    ) -> Result<Vec<Value>, AdapterError> {
        if expected.is_complete() {
            return Ok(Vec::new());
        }
        let id = random_id();
        let (tx, rx) = oneshot::channel();
        lock(&self.requests).insert(
            id.clone(),
            Pending {
                expected,
                responses: Vec::new(),
                done: Some(tx),
            },
        );
        if let Err(e) = publish(&id) {
            lock(&self.requests).remove(&id);
            return Err(e);
        }
        let r = tokio::time::timeout(timeout, rx).await;
        lock(&self.requests).remove(&id);
        match r {
            Ok(Ok(v)) => Ok(v),
            _ => Err(AdapterError::Timeout),
        }
    }

    /// Starts a broadcast with acks: its answers go to `acks` until `timeout` (the default
    /// when `None`). Returns the request id to publish it with; `publish` failed, call
    /// [`forget_ack`](Self::forget_ack).
    pub(crate) fn track_ack(&self, acks: &AckCollector, timeout: Option<Duration>) -> String {
        let id = random_id();
        lock(&self.acks).insert(id.clone(), acks.clone());
        // Nobody waits past the timeout: forget the request then, as Node does.
        let map = Arc::downgrade(&self.acks);
        let wait = timeout.unwrap_or(self.default_ack_timeout);
        let forget = id.clone();
        spawn(async move {
            tokio::time::sleep(wait).await;
            if let Some(map) = Weak::upgrade(&map) {
                lock(&map).remove(&forget);
            }
        });
        id
    }

    /// A broadcast with acks that could not be published.
    pub(crate) fn forget_ack(&self, id: &str) {
        lock(&self.acks).remove(id);
    }

    /// Acts on another node's message of types 3 to 12 (the heartbeat types are the
    /// adapter's). `deliver` delivers a plain broadcast here (the streams adapter adds the
    /// offset); `respond` makes what answers the sender, when there is something to answer.
    pub(crate) fn on_message(
        &self,
        msg: Message<'_>,
        respond: impl FnOnce() -> Respond,
        deliver: impl FnOnce(Packet, &BroadcastOptions),
    ) {
        let data = msg.data;
        let request_id = data
            .get("requestId")
            .and_then(Value::as_str)
            .map(str::to_owned);
        let opts = || wire::opts_from_json(data.get("opts"));
        match msg.ty {
            kind::BROADCAST => {
                let Ok(packet) = wire::packet_from_json(&data["packet"], msg.attachments) else {
                    return;
                };
                match request_id {
                    Some(id) => self.remote_broadcast_with_ack(id, packet, opts(), respond()),
                    None => deliver(packet, &opts()),
                }
            }
            kind::SOCKETS_JOIN => self.local.add_sockets(&opts(), &rooms_of(data)),
            kind::SOCKETS_LEAVE => self.local.del_sockets(&opts(), &rooms_of(data)),
            kind::DISCONNECT_SOCKETS => {
                let close = data.get("close").and_then(Value::as_bool).unwrap_or(false);
                self.local.disconnect_sockets(&opts(), close);
            }
            kind::FETCH_SOCKETS => {
                let sockets: Vec<Value> = self
                    .local
                    .fetch_sockets(&opts())
                    .iter()
                    .map(wire::socket_json)
                    .collect();
                respond()(
                    kind::FETCH_SOCKETS_RESPONSE,
                    json!({"requestId": request_id, "sockets": sockets}),
                    Vec::new(),
                );
            }
            kind::SERVER_SIDE_EMIT => self.remote_server_side_emit(request_id, data, respond),
            kind::FETCH_SOCKETS_RESPONSE | kind::SERVER_SIDE_EMIT_RESPONSE => {
                let Some(id) = request_id else { return };
                let mut requests = lock(&self.requests);
                let Some(p) = requests.get_mut(&id) else {
                    return;
                };
                if msg.ty == kind::FETCH_SOCKETS_RESPONSE {
                    if let Some(Value::Array(s)) = data.get("sockets") {
                        p.responses.extend(s.iter().cloned());
                    }
                } else {
                    p.responses
                        .push(data.get("packet").cloned().unwrap_or(Value::Null));
                }
                p.expected.answered_by(msg.uid);
                if p.finish_if_complete() {
                    requests.remove(&id);
                }
            }
            kind::BROADCAST_CLIENT_COUNT | kind::BROADCAST_ACK => {
                let Some(id) = request_id else { return };
                let Some(acks) = lock(&self.acks).get(&id).cloned() else {
                    return;
                };
                if msg.ty == kind::BROADCAST_CLIENT_COUNT {
                    let n = data.get("clientCount").and_then(Value::as_u64).unwrap_or(0);
                    acks.client_count(usize::try_from(n).unwrap_or(0));
                } else {
                    let mut own = Vec::new();
                    let mut arg = data.get("packet").cloned().unwrap_or(Value::Null);
                    wire::renumber(&mut arg, msg.attachments, &mut own);
                    acks.response(AckResponse {
                        args: vec![arg],
                        attachments: own,
                    });
                }
            }
            _ => {}
        }
    }

    fn remote_server_side_emit(
        &self,
        request_id: Option<String>,
        data: &Value,
        respond: impl FnOnce() -> Respond,
    ) {
        let mut args = data
            .get("packet")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        if args.is_empty() {
            return;
        }
        let Value::String(event) = args.remove(0) else {
            return;
        };
        let Some(id) = request_id else {
            self.local.server_side_event(&event, args, None);
            return;
        };
        let (ack, rx) = ServerAck::channel();
        self.local.server_side_event(&event, args, Some(ack));
        let respond = respond();
        spawn(async move {
            if let Ok(v) = rx.await {
                respond(
                    kind::SERVER_SIDE_EMIT_RESPONSE,
                    json!({"requestId": id, "packet": v}),
                    Vec::new(),
                );
            }
        });
    }

    /// Another node's broadcast with acks: ask this node's sockets, report how many, relay
    /// each answer until all came or the timeout passed.
    fn remote_broadcast_with_ack(
        &self,
        id: String,
        packet: Packet,
        opts: BroadcastOptions,
        respond: Respond,
    ) {
        let timeout = opts.flags.timeout.unwrap_or(self.default_ack_timeout);
        let (collector, mut events) = AckCollector::channel();
        let asked = self.local.broadcast_with_ack(&packet, &opts, &collector);
        // Published before any answer, as Node's node does.
        respond(
            kind::BROADCAST_CLIENT_COUNT,
            json!({"requestId": id, "clientCount": asked}),
            Vec::new(),
        );
        if asked == 0 {
            return;
        }
        spawn(async move {
            let _requests = collector;
            let deadline = tokio::time::Instant::now() + timeout;
            let mut answered = 0;
            while answered < asked {
                match tokio::time::timeout_at(deadline, events.recv()).await {
                    Ok(Some(AckEvent::Response(r))) => {
                        answered += 1;
                        let data = json!({
                            "requestId": id,
                            "packet": r.args.first().cloned().unwrap_or(Value::Null),
                        });
                        respond(kind::BROADCAST_ACK, data, r.attachments);
                    }
                    Ok(Some(AckEvent::Clients(_))) => {}
                    Ok(None) | Err(_) => break,
                }
            }
        });
    }
}

/// The `data` of a request: `fields` and the request id.
pub(crate) fn with_request_id(mut fields: Map<String, Value>, id: &str) -> Value {
    fields.insert("requestId".into(), Value::String(id.to_owned()));
    Value::Object(fields)
}

/// Spawns on the current runtime; without one the answer is dropped, which the asking
/// node sees as a timeout.
pub(crate) fn spawn<F: std::future::Future<Output = ()> + Send + 'static>(f: F) {
    match tokio::runtime::Handle::try_current() {
        Ok(rt) => {
            rt.spawn(f);
        }
        Err(_) => tracing::error!("iolite-redis: no tokio runtime to wait for an answer on"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_complete_by_node_or_by_count() {
        let mut by_node = Expected::Nodes(["a".to_owned(), "b".to_owned()].into());
        by_node.answered_by("a");
        by_node.answered_by("a");
        assert!(!by_node.is_complete());
        by_node.answered_by("b");
        assert!(by_node.is_complete());
        let mut by_count = Expected::Count(2);
        by_count.answered_by("a");
        assert!(!by_count.is_complete());
        by_count.answered_by("a");
        assert!(by_count.is_complete());
        by_count.answered_by("c");
        assert!(by_count.is_complete());
    }

    #[test]
    fn ids_are_16_hex_digits() {
        let (a, b) = (random_id(), random_id());
        assert_eq!(a.len(), 16);
        assert!(a.bytes().all(|c| c.is_ascii_hexdigit()));
        assert_ne!(a, b);
    }
}
