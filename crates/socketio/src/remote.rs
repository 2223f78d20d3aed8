//! Sockets found by `fetch_sockets`, on this node or another.

use std::sync::Arc;

use iolite_engine::Sid;
use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::Value;

use crate::adapter::{AdapterError, BroadcastOptions, SocketInfo};
use crate::error::EmitError;
use crate::ns::NsInner;
use crate::operators::BroadcastOperators;
use crate::room::Room;
use crate::socket::{Handshake, SocketRef};

/// A socket of the namespace, connected to this node or another (Node's `RemoteSocket`):
/// its id, rooms, data and handshake as they were when fetched, and operations that reach
/// it wherever it is.
#[derive(Clone)]
pub struct RemoteSocket {
    info: SocketInfo,
    ns: Arc<NsInner>,
}

impl std::fmt::Debug for RemoteSocket {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RemoteSocket")
            .field("id", &self.info.id)
            .field("rooms", &self.info.rooms)
            .finish()
    }
}

impl RemoteSocket {
    pub(crate) fn new(info: SocketInfo, ns: Arc<NsInner>) -> Self {
        Self { info, ns }
    }

    /// The socket id.
    pub fn id(&self) -> Sid {
        self.info.id
    }

    /// Its rooms when fetched (its own room included).
    pub fn rooms(&self) -> &[Room] {
        &self.info.rooms
    }

    /// Its data when fetched.
    pub fn data_value(&self) -> &Value {
        &self.info.data
    }

    /// Its data deserialized.
    pub fn data<T: DeserializeOwned>(&self) -> Result<T, serde_json::Error> {
        T::deserialize(&self.info.data)
    }

    /// Its handshake.
    pub fn handshake(&self) -> &Handshake {
        &self.info.handshake
    }

    /// The socket itself, when it is connected to this node.
    pub fn local(&self) -> Option<SocketRef> {
        self.ns.get_socket(&self.info.id)
    }

    fn me(&self) -> BroadcastOperators {
        BroadcastOperators::new(self.ns.clone()).to(Room::from(self.info.id.as_str()))
    }

    /// Emits to it, wherever it is.
    pub fn emit<T: Serialize + ?Sized>(&self, event: &str, data: &T) -> Result<(), EmitError> {
        self.me().emit(event, data)
    }

    /// Makes it join a room.
    pub fn join(&self, room: impl Into<Room>) -> Result<(), AdapterError> {
        self.ns
            .adapter
            .add_sockets(BroadcastOptions::socket(self.info.id), vec![room.into()])
    }

    /// Makes it leave a room.
    pub fn leave(&self, room: impl Into<Room>) -> Result<(), AdapterError> {
        self.ns
            .adapter
            .del_sockets(BroadcastOptions::socket(self.info.id), vec![room.into()])
    }

    /// Disconnects it (`close`: its whole connection).
    pub fn disconnect(&self, close: bool) -> Result<(), AdapterError> {
        self.ns
            .adapter
            .disconnect_sockets(BroadcastOptions::socket(self.info.id), close)
    }
}
