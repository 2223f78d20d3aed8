//! This node's side of a namespace, as an adapter sees it.

use std::sync::{Arc, Weak};

use serde_json::Value;
use tokio::sync::oneshot;

use super::{AckCollector, BroadcastOptions, SocketInfo};
use crate::ack::AckSlot;
use crate::config::Recovery;
use crate::ns::NsInner;
use crate::outgoing::encode;
use crate::parser::Packet;
use crate::room::Room;
use crate::socket::SocketRef;

/// This node's sockets and rooms of one namespace: what an adapter delivers to and
/// answers other nodes' requests from. Cheap to clone; it does not keep the namespace
/// alive.
#[derive(Clone)]
pub struct LocalNamespace {
    ns: Weak<NsInner>,
    name: Arc<str>,
    recovery: Option<Recovery>,
}

/// The answer to a server-side event that asked for one
/// ([`Namespace::server_side_emit_with_ack`](crate::Namespace::server_side_emit_with_ack)).
pub struct ServerAck(pub(crate) oneshot::Sender<Value>);

impl ServerAck {
    /// A server-side ack and the receiver its answer arrives on (for cluster adapters
    /// relaying a request from another node).
    pub fn channel() -> (Self, oneshot::Receiver<Value>) {
        let (tx, rx) = oneshot::channel();
        (Self(tx), rx)
    }

    /// Answers.
    pub fn send(self, value: Value) {
        let _ = self.0.send(value);
    }
}

impl LocalNamespace {
    pub(crate) fn new(ns: Weak<NsInner>, name: &str, recovery: Option<Recovery>) -> Self {
        Self {
            ns,
            name: Arc::from(name),
            recovery,
        }
    }

    /// Whether both are the same namespace of the same server.
    pub fn same_as(&self, other: &LocalNamespace) -> bool {
        Weak::ptr_eq(&self.ns, &other.ns)
    }

    /// The namespace name (`/`, `/chat`).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Connection state recovery settings, when enabled: an adapter that stores sessions
    /// keeps them this long.
    pub fn recovery(&self) -> Option<&Recovery> {
        self.recovery.as_ref()
    }

    fn ns(&self) -> Option<Arc<NsInner>> {
        self.ns.upgrade()
    }

    /// Sends `packet` to this node's sockets that `opts` selects, encoded once; returns
    /// how many it was handed to. Volatile packets skip clients that cannot take them now.
    pub fn broadcast(&self, packet: &Packet, opts: &BroadcastOptions) -> usize {
        let Some(ns) = self.ns() else { return 0 };
        let messages = encode(ns.parser(), packet).shared();
        let mut n = 0;
        ns.rooms.for_each(opts, |s| {
            if opts.flags.volatile && !s.conn.is_writable() {
                return;
            }
            if s.conn.send_shared(&messages).is_ok() {
                n += 1;
            }
        });
        n
    }

    /// Sends `packet` to this node's selected sockets with an ack id of this node, and
    /// reports to `acks` how many were asked, then (as they come) their responses.
    pub fn broadcast_with_ack(
        &self,
        packet: &Packet,
        opts: &BroadcastOptions,
        acks: &AckCollector,
    ) -> usize {
        let Some(ns) = self.ns() else {
            acks.client_count(0);
            return 0;
        };
        let mut packet = packet.clone();
        let id = ns.next_ack_id();
        packet.id = Some(id);
        let messages = encode(ns.parser(), &packet).shared();
        let mut n = 0;
        for s in ns.rooms.select(opts) {
            if opts.flags.volatile && !s.conn.is_writable() {
                continue;
            }
            s.register_ack(id, AckSlot::Many(acks.sender()));
            if s.conn.send_shared(&messages).is_ok() {
                acks.asked(id, &s);
                n += 1;
            } else {
                s.forget_ack(id);
            }
        }
        acks.client_count(n);
        n
    }

    /// This node's selected sockets.
    pub fn sockets(&self, opts: &BroadcastOptions) -> Vec<SocketRef> {
        let Some(ns) = self.ns() else {
            return Vec::new();
        };
        ns.rooms.select(opts)
    }

    /// This node's selected sockets, described for a `fetch_sockets` answer.
    pub fn fetch_sockets(&self, opts: &BroadcastOptions) -> Vec<SocketInfo> {
        self.sockets(opts)
            .into_iter()
            .map(|s| SocketInfo {
                id: s.id(),
                rooms: s.rooms(),
                data: s.data_value(),
                handshake: s.handshake().clone(),
            })
            .collect()
    }

    /// Makes this node's selected sockets join `rooms`.
    pub fn add_sockets(&self, opts: &BroadcastOptions, rooms: &[Room]) {
        for s in self.sockets(opts) {
            for r in rooms {
                s.join(r.clone());
            }
        }
    }

    /// Makes this node's selected sockets leave `rooms`.
    pub fn del_sockets(&self, opts: &BroadcastOptions, rooms: &[Room]) {
        for s in self.sockets(opts) {
            for r in rooms {
                s.leave(r);
            }
        }
    }

    /// Disconnects this node's selected sockets (`close`: their whole connection).
    pub fn disconnect_sockets(&self, opts: &BroadcastOptions, close: bool) {
        for s in self.sockets(opts) {
            if close {
                s.disconnect_all();
            } else {
                s.disconnect();
            }
        }
    }

    /// Every room with a socket on this node.
    pub fn rooms(&self) -> Vec<Room> {
        self.ns().map(|ns| ns.rooms.all_rooms()).unwrap_or_default()
    }

    /// Whether a socket here is in `room`.
    pub fn has_room(&self, room: &str) -> bool {
        self.ns().is_some_and(|ns| ns.rooms.has_room(room))
    }

    /// Whether `id` is the id of a socket connected here (so the room `id` is its own).
    pub fn has_socket(&self, id: &str) -> bool {
        let Ok(sid) = crate::Sid::parse(id) else {
            return false;
        };
        self.ns().is_some_and(|ns| ns.get_socket(&sid).is_some())
    }

    /// How many sockets are connected here.
    pub fn socket_count(&self) -> usize {
        self.ns().map(|ns| ns.socket_count()).unwrap_or(0)
    }

    /// Runs this node's handler for a server-side event from another node
    /// ([`Namespace::on_server_side`](crate::Namespace::on_server_side)); `ack` is
    /// answered by the handler, or dropped when there is none.
    pub fn server_side_event(&self, event: &str, args: Vec<Value>, ack: Option<ServerAck>) {
        if let Some(ns) = self.ns() {
            ns.server_side_event(event, args, ack);
        }
    }
}
