//! The emitter: publishes broadcasts and cluster requests from a process that runs no
//! Socket.IO server, byte for byte as Node's `@socket.io/redis-emitter` 5.x does, for the
//! nodes of a Redis adapter cluster (iolite or Node) to carry out.

use bytes::Bytes;
use serde_json::{json, Map, Value};

use crate::client::{RedisClient, RedisClientError};
use crate::msgpack;
use crate::wire::{to_json, RequestType};

/// The `uid` the emitter's messages carry (Node's emitter uses the same): no node has it,
/// so every node acts on them.
pub const EMITTER_UID: &str = "emitter";

/// Why the emitter did not publish.
#[derive(Debug, thiserror::Error)]
pub enum EmitterError {
    /// The event name is reserved (`connect`, `disconnect`, ...), as Node's emitter refuses.
    #[error("\"{0}\" is a reserved event name")]
    Reserved(String),
    /// The data could not be serialized to JSON.
    #[error("could not serialize: {0}")]
    Serialize(#[from] serde_json::Error),
    /// Redis cannot be reached, or the publish queue is full.
    #[error("Redis is unavailable: {0}")]
    Unavailable(String),
}

/// A message the emitter publishes: its channel and bytes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Message {
    /// The channel (`PUBLISH channel payload`).
    pub channel: String,
    /// The payload.
    pub payload: Vec<u8>,
}

/// Publishes to the nodes of a cluster from outside it (Node's `Emitter` from
/// `@socket.io/redis-emitter`). Cheap to clone.
///
/// ```no_run
/// use iolite_redis::{Emitter, RedisClient};
/// use serde_json::json;
///
/// # async fn run() -> Result<(), Box<dyn std::error::Error>> {
/// let emitter = Emitter::from_url("redis://127.0.0.1:6379/", "socket.io")?;
/// emitter.emit("time", vec![json!(1700000000)])?;
/// emitter.to("room1").except("room2").emit("news", vec![json!("hi")])?;
/// emitter.of("/admin").to("staff").sockets_join(["alerts"])?;
/// emitter.server_side_emit("reload", vec![])?;
/// emitter.flush().await?; // before the process exits
/// # Ok(()) }
/// ```
///
/// Publishing queues the message on the client's publishing connection (its only one: an
/// emitter does not subscribe) and returns; [`Emitter::flush`] waits until what was
/// queued is sent. Acknowledgements are not supported, as in Node.
#[derive(Clone, Debug)]
pub struct Emitter {
    client: RedisClient,
    key: String,
    nsp: String,
}

impl Emitter {
    /// An emitter on `client` for channel key `key` (the adapters' `key`, `socket.io` by
    /// default), namespace `/`.
    pub fn new(client: &RedisClient, key: impl Into<String>) -> Self {
        Self {
            client: client.clone(),
            key: key.into(),
            nsp: "/".into(),
        }
    }

    /// An emitter on a new client of the Redis server at `url`.
    pub fn from_url(url: &str, key: impl Into<String>) -> Result<Self, RedisClientError> {
        Ok(Self::new(&RedisClient::new(url)?, key))
    }

    /// The emitter of another namespace (a leading `/` is added when missing, as Node).
    pub fn of(&self, nsp: &str) -> Emitter {
        let nsp = if nsp.starts_with('/') {
            nsp.to_owned()
        } else {
            format!("/{nsp}")
        };
        Self {
            client: self.client.clone(),
            key: self.key.clone(),
            nsp,
        }
    }

    /// The namespace this emitter publishes for.
    pub fn namespace(&self) -> &str {
        &self.nsp
    }

    /// The client it publishes with (for its [`stats`](RedisClient::stats)).
    pub fn client(&self) -> &RedisClient {
        &self.client
    }

    fn operator(&self) -> BroadcastOperator {
        BroadcastOperator {
            emitter: self.clone(),
            rooms: Vec::new(),
            except: Vec::new(),
            flags: Map::new(),
            attachments: Vec::new(),
        }
    }

    /// Targets a room (Node's `to` / `in`).
    pub fn to(&self, room: impl Into<String>) -> BroadcastOperator {
        self.operator().to(room)
    }

    /// Leaves out the sockets in a room.
    pub fn except(&self, room: impl Into<String>) -> BroadcastOperator {
        self.operator().except(room)
    }

    /// Sets the `volatile` flag.
    pub fn volatile(&self) -> BroadcastOperator {
        self.operator().volatile()
    }

    /// Sets the `compress` flag.
    pub fn compress(&self, compress: bool) -> BroadcastOperator {
        self.operator().compress(compress)
    }

    /// Binary attachments, referenced by placeholders (`{"_placeholder": true, "num": N}`)
    /// in the arguments of the next emit.
    pub fn bin(&self, attachments: Vec<Bytes>) -> BroadcastOperator {
        self.operator().bin(attachments)
    }

    /// Emits to every client of the namespace.
    pub fn emit(&self, event: &str, args: Vec<Value>) -> Result<(), EmitterError> {
        self.operator().emit(event, args)
    }

    /// Every socket of the namespace joins `rooms`.
    pub fn sockets_join<R: Into<String>>(
        &self,
        rooms: impl IntoIterator<Item = R>,
    ) -> Result<(), EmitterError> {
        self.operator().sockets_join(rooms)
    }

    /// Every socket of the namespace leaves `rooms`.
    pub fn sockets_leave<R: Into<String>>(
        &self,
        rooms: impl IntoIterator<Item = R>,
    ) -> Result<(), EmitterError> {
        self.operator().sockets_leave(rooms)
    }

    /// Disconnects every socket of the namespace (`close`: their whole connection).
    pub fn disconnect_sockets(&self, close: bool) -> Result<(), EmitterError> {
        self.operator().disconnect_sockets(close)
    }

    /// The message [`Emitter::server_side_emit`] publishes.
    pub fn server_side_emit_message(&self, event: &str, args: Vec<Value>) -> Message {
        let mut data = Vec::with_capacity(args.len() + 1);
        data.push(Value::String(event.to_owned()));
        data.extend(args);
        let mut m = Map::new();
        m.insert("uid".into(), Value::String(EMITTER_UID.into()));
        m.insert(
            "type".into(),
            Value::from(RequestType::ServerSideEmit as u8),
        );
        m.insert("data".into(), Value::Array(data));
        Message {
            channel: self.request_channel(),
            payload: to_json(&Value::Object(m)),
        }
    }

    /// A server-side event for every node's handlers of the namespace (no answers).
    pub fn server_side_emit(&self, event: &str, args: Vec<Value>) -> Result<(), EmitterError> {
        self.publish(self.server_side_emit_message(event, args))
    }

    /// Waits until everything published before was sent to Redis.
    pub async fn flush(&self) -> Result<(), EmitterError> {
        self.client.start_publisher();
        self.client.flush().await.map_err(EmitterError::Unavailable)
    }

    /// Publishes a message on the emitter's client.
    pub fn publish(&self, message: Message) -> Result<(), EmitterError> {
        self.client.start_publisher();
        self.client
            .publish(message.channel, message.payload)
            .map_err(|e| EmitterError::Unavailable(e.to_string()))
    }

    fn broadcast_channel(&self) -> String {
        format!("{}#{}#", self.key, self.nsp)
    }

    fn request_channel(&self) -> String {
        format!("{}-request#{}#", self.key, self.nsp)
    }
}

/// Which sockets an emit, join, leave or disconnect is for (Node's `BroadcastOperator`):
/// made by [`Emitter::to`] and friends.
#[derive(Clone, Debug)]
pub struct BroadcastOperator {
    emitter: Emitter,
    /// In insertion order without repeats, as Node's `Set`.
    rooms: Vec<String>,
    except: Vec<String>,
    /// In the order they were first set, as Node's `Object.assign` keeps them.
    flags: Map<String, Value>,
    attachments: Vec<Bytes>,
}

fn add_unique(list: &mut Vec<String>, item: String) {
    if !list.contains(&item) {
        list.push(item);
    }
}

fn strings(list: &[String]) -> Value {
    Value::Array(list.iter().cloned().map(Value::String).collect())
}

impl BroadcastOperator {
    /// Adds a room to send to.
    pub fn to(mut self, room: impl Into<String>) -> Self {
        add_unique(&mut self.rooms, room.into());
        self
    }

    /// Leaves out the sockets in a room.
    pub fn except(mut self, room: impl Into<String>) -> Self {
        add_unique(&mut self.except, room.into());
        self
    }

    /// Sets the `volatile` flag.
    pub fn volatile(mut self) -> Self {
        self.flags.insert("volatile".into(), Value::Bool(true));
        self
    }

    /// Sets the `compress` flag.
    pub fn compress(mut self, compress: bool) -> Self {
        self.flags.insert("compress".into(), Value::Bool(compress));
        self
    }

    /// Binary attachments, referenced by placeholders in the arguments.
    pub fn bin(mut self, attachments: Vec<Bytes>) -> Self {
        self.attachments = attachments;
        self
    }

    /// The message [`BroadcastOperator::emit`] publishes: the msgpack array
    /// `["emitter", {type: 2, data: [event, ...args], nsp}, {rooms, flags, except}]` on the
    /// namespace's broadcast channel, or the room's own when there is exactly one room.
    pub fn emit_message(&self, event: &str, args: Vec<Value>) -> Result<Message, EmitterError> {
        if iolite::parser::RESERVED_EVENTS.contains(&event) {
            return Err(EmitterError::Reserved(event.to_owned()));
        }
        let mut data = Vec::with_capacity(args.len() + 1);
        data.push(Value::String(event.to_owned()));
        data.extend(args);
        let msg = json!([
            EMITTER_UID,
            {"type": 2, "data": data, "nsp": self.emitter.nsp},
            {
                "rooms": strings(&self.rooms),
                "flags": Value::Object(self.flags.clone()),
                "except": strings(&self.except),
            },
        ]);
        let mut channel = self.emitter.broadcast_channel();
        if let [room] = self.rooms.as_slice() {
            channel.push_str(room);
            channel.push('#');
        }
        Ok(Message {
            channel,
            payload: msgpack::to_vec(&msg, &self.attachments),
        })
    }

    /// Emits to the selected clients.
    pub fn emit(&self, event: &str, args: Vec<Value>) -> Result<(), EmitterError> {
        self.emitter.publish(self.emit_message(event, args)?)
    }

    fn request(&self, kind: RequestType, last: (&str, Value)) -> Message {
        let mut m = Map::new();
        m.insert("type".into(), Value::from(kind as u8));
        m.insert(
            "opts".into(),
            json!({"rooms": strings(&self.rooms), "except": strings(&self.except)}),
        );
        m.insert(last.0.into(), last.1);
        Message {
            channel: self.emitter.request_channel(),
            payload: to_json(&Value::Object(m)),
        }
    }

    fn room_list<R: Into<String>>(rooms: impl IntoIterator<Item = R>) -> Value {
        Value::Array(rooms.into_iter().map(|r| Value::String(r.into())).collect())
    }

    /// The message [`BroadcastOperator::sockets_join`] publishes.
    pub fn sockets_join_message<R: Into<String>>(
        &self,
        rooms: impl IntoIterator<Item = R>,
    ) -> Message {
        self.request(RequestType::RemoteJoin, ("rooms", Self::room_list(rooms)))
    }

    /// The selected sockets join `rooms` (Node's `socketsJoin`).
    pub fn sockets_join<R: Into<String>>(
        &self,
        rooms: impl IntoIterator<Item = R>,
    ) -> Result<(), EmitterError> {
        self.emitter.publish(self.sockets_join_message(rooms))
    }

    /// The message [`BroadcastOperator::sockets_leave`] publishes.
    pub fn sockets_leave_message<R: Into<String>>(
        &self,
        rooms: impl IntoIterator<Item = R>,
    ) -> Message {
        self.request(RequestType::RemoteLeave, ("rooms", Self::room_list(rooms)))
    }

    /// The selected sockets leave `rooms` (Node's `socketsLeave`).
    pub fn sockets_leave<R: Into<String>>(
        &self,
        rooms: impl IntoIterator<Item = R>,
    ) -> Result<(), EmitterError> {
        self.emitter.publish(self.sockets_leave_message(rooms))
    }

    /// The message [`BroadcastOperator::disconnect_sockets`] publishes.
    pub fn disconnect_sockets_message(&self, close: bool) -> Message {
        self.request(RequestType::RemoteDisconnect, ("close", Value::Bool(close)))
    }

    /// Disconnects the selected sockets (`close`: their whole connection).
    pub fn disconnect_sockets(&self, close: bool) -> Result<(), EmitterError> {
        self.emitter.publish(self.disconnect_sockets_message(close))
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use crate::wire::{BroadcastMessage, Request, RequestKind, Target};

    fn emitter() -> Emitter {
        Emitter::new(&RedisClient::new("redis://127.0.0.1:1/").unwrap(), "k")
    }

    #[test]
    fn channels_and_namespaces() {
        let e = emitter();
        assert_eq!(e.of("chat").namespace(), "/chat");
        assert_eq!(e.of("/chat").namespace(), "/chat");
        let m = e.of("chat").to("r").emit_message("x", vec![]).unwrap();
        assert_eq!(m.channel, "k#/chat#r#");
        let m = e.to("a").to("b").to("a").emit_message("x", vec![]).unwrap();
        assert_eq!(m.channel, "k#/#");
        let m = e.server_side_emit_message("x", vec![]);
        assert_eq!(m.channel, "k-request#/#");
    }

    #[test]
    fn reserved_events_are_refused() {
        for ev in ["connect", "disconnect", "disconnecting", "newListener"] {
            assert!(matches!(
                emitter().to("r").emit_message(ev, vec![]),
                Err(EmitterError::Reserved(_))
            ));
        }
    }

    #[test]
    fn messages_read_back_as_the_adapter_reads_them() {
        let e = emitter();
        let m = e
            .of("/a")
            .to("r")
            .except("x")
            .volatile()
            .bin(vec![Bytes::from_static(b"\x01")])
            .emit_message("ev", vec![json!({"_placeholder": true, "num": 0})])
            .unwrap();
        let b = BroadcastMessage::decode(&m.payload).unwrap();
        assert_eq!(b.uid, EMITTER_UID);
        assert_eq!(b.packet.nsp.as_str(), "/a");
        assert_eq!(b.packet.attachments, vec![Bytes::from_static(b"\x01")]);
        assert!(b.opts.flags.volatile);
        assert_eq!(b.opts.except.len(), 1);

        let m = e.to("r").sockets_join_message(["j1", "j2"]);
        assert_eq!(
            String::from_utf8(m.payload.clone()).unwrap(),
            r#"{"type":2,"opts":{"rooms":["r"],"except":[]},"rooms":["j1","j2"]}"#
        );
        let r = Request::decode(&m.payload).unwrap().unwrap();
        assert!(matches!(
            r.kind,
            RequestKind::RemoteJoin {
                target: Target::Sockets(_),
                ..
            }
        ));
        let m = e.except("v").disconnect_sockets_message(true);
        assert_eq!(
            String::from_utf8(m.payload).unwrap(),
            r#"{"type":4,"opts":{"rooms":[],"except":["v"]},"close":true}"#
        );
    }
}
