//! Broadcasts: `to`, `except`, `local`, `volatile`, `timeout`, and the server-side
//! operations on the sockets they select.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use serde::Serialize;
use serde_json::Value;
use tokio::sync::mpsc;

use crate::ack::{AckRequest, AckSlot, AckStream};
use crate::error::EmitError;
use crate::ns::NsInner;
use crate::outgoing::encode;
use crate::parser::{Packet, RESERVED_EVENTS};
use crate::room::{Room, Target};
use crate::socket::SocketRef;

/// A broadcast being built: which sockets, with which flags. Every emit encodes the
/// packet once and hands the same bytes to each recipient.
#[derive(Clone)]
pub struct BroadcastOperators {
    ns: Arc<NsInner>,
    target: Target,
    volatile: bool,
    local: bool,
    timeout: Option<Duration>,
    attachments: Vec<Bytes>,
}

impl BroadcastOperators {
    pub(crate) fn new(ns: Arc<NsInner>) -> Self {
        Self {
            ns,
            target: Target::default(),
            volatile: false,
            local: false,
            timeout: None,
            attachments: Vec::new(),
        }
    }

    /// Adds a room to send to (Node's `to` / `in`).
    pub fn to(mut self, room: impl Into<Room>) -> Self {
        let r = room.into();
        if !self.target.rooms.contains(&r) {
            self.target.rooms.push(r);
        }
        self
    }

    /// Same as [`BroadcastOperators::to`] (Node's `in`).
    pub fn within(self, room: impl Into<Room>) -> Self {
        self.to(room)
    }

    /// Leaves out the sockets in a room.
    pub fn except(mut self, room: impl Into<Room>) -> Self {
        self.target.except.push(room.into());
        self
    }

    /// Only this node's sockets (no effect without a cluster adapter).
    pub fn local(mut self) -> Self {
        self.local = true;
        self
    }

    /// Drop the packet for clients that cannot take it right now.
    pub fn volatile(mut self) -> Self {
        self.volatile = true;
        self
    }

    /// Compression hint (Node's `compress`); WebSocket compression follows the server's
    /// permessage-deflate settings.
    pub fn compress(self, _compress: bool) -> Self {
        self
    }

    /// How long [`BroadcastOperators::emit_with_ack`] waits for the acks.
    pub fn timeout(mut self, t: Duration) -> Self {
        self.timeout = Some(t);
        self
    }

    /// Binary attachments referenced by placeholders in the arguments.
    pub fn bin(mut self, attachments: Vec<Bytes>) -> Self {
        self.attachments = attachments;
        self
    }

    fn event_packet(&self, event: &str, args: Vec<Value>) -> Result<Packet, EmitError> {
        if RESERVED_EVENTS.contains(&event) {
            return Err(EmitError::Reserved(event.to_owned()));
        }
        let mut data = Vec::with_capacity(args.len() + 2);
        data.push(Value::String(event.to_owned()));
        data.extend(args);
        Ok(Packet::event(self.ns.nsp.clone(), Value::Array(data))
            .with_attachments(self.attachments.clone()))
    }

    /// Emits with one argument.
    pub fn emit<T: Serialize + ?Sized>(&self, event: &str, data: &T) -> Result<(), EmitError> {
        self.emit_args(event, vec![serde_json::to_value(data)?])
    }

    /// Emits with these arguments. Recipients whose queue is full are skipped (and closed
    /// if the slow-consumer policy says so); the broadcast itself does not fail for them.
    pub fn emit_args(&self, event: &str, args: Vec<Value>) -> Result<(), EmitError> {
        let mut packet = self.event_packet(event, args)?;
        if !self.volatile {
            self.ns.store_for_recovery(&mut packet, &self.target);
        }
        let messages = encode(self.ns.parser(), &packet).shared();
        for sid in self.ns.rooms.select(&self.target) {
            let Some(s) = self.ns.get_socket(&sid) else {
                continue;
            };
            if self.volatile && !s.conn.is_writable() {
                continue;
            }
            let _ = s.conn.send_shared(&messages);
        }
        Ok(())
    }

    /// Emits with one argument and collects every recipient's ack within the timeout
    /// (default 5 s when none was set).
    pub fn emit_with_ack<T: Serialize + ?Sized>(
        &self,
        event: &str,
        data: &T,
    ) -> Result<AckStream, EmitError> {
        self.emit_args_with_ack(event, vec![serde_json::to_value(data)?])
    }

    /// [`BroadcastOperators::emit_with_ack`] with several arguments.
    pub fn emit_args_with_ack(
        &self,
        event: &str,
        args: Vec<Value>,
    ) -> Result<AckStream, EmitError> {
        let mut packet = self.event_packet(event, args)?;
        let id = self.ns.next_ack_id();
        packet.id = Some(id);
        let messages = encode(self.ns.parser(), &packet).shared();
        let (tx, rx) = mpsc::unbounded_channel();
        let mut asked = Vec::new();
        for sid in self.ns.rooms.select(&self.target) {
            let Some(s) = self.ns.get_socket(&sid) else {
                continue;
            };
            if self.volatile && !s.conn.is_writable() {
                continue;
            }
            s.register_ack(id, AckSlot::Many(tx.clone()));
            if s.conn.send_shared(&messages).is_ok() {
                asked.push(Arc::downgrade(&s));
            } else {
                s.forget_ack(id);
            }
        }
        Ok(AckStream {
            rx,
            expected: asked.len(),
            timeout: self.timeout.unwrap_or(Duration::from_secs(5)),
            _request: AckRequest { id, sockets: asked },
        })
    }

    /// The selected sockets (Node's `fetchSockets`; on one node, the sockets themselves).
    pub async fn fetch_sockets(&self) -> Vec<SocketRef> {
        self.sockets()
    }

    /// The selected sockets on this node.
    pub fn sockets(&self) -> Vec<SocketRef> {
        self.ns
            .rooms
            .select(&self.target)
            .into_iter()
            .filter_map(|sid| self.ns.get_socket(&sid))
            .collect()
    }

    /// Makes the selected sockets join a room (Node's `socketsJoin`).
    pub fn join(&self, room: impl Into<Room>) {
        let room = room.into();
        for s in self.sockets() {
            s.join(room.clone());
        }
    }

    /// Makes the selected sockets leave a room (Node's `socketsLeave`).
    pub fn leave(&self, room: &str) {
        for s in self.sockets() {
            s.leave(room);
        }
    }

    /// Disconnects the selected sockets (Node's `disconnectSockets(close)`).
    pub fn disconnect(&self, close: bool) {
        for s in self.sockets() {
            if close {
                s.disconnect_all();
            } else {
                s.disconnect();
            }
        }
    }
}
