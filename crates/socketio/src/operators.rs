//! Broadcasts: `to`, `except`, `local`, `volatile`, `timeout`, and the server-side
//! operations on the sockets they select.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use serde::Serialize;
use serde_json::Value;

use crate::ack::AckStream;
use crate::adapter::{AckCollector, AdapterError, BroadcastOptions};
use crate::error::EmitError;
use crate::ns::NsInner;
use crate::parser::{Packet, RESERVED_EVENTS};
use crate::remote::RemoteSocket;
use crate::room::Room;
use crate::socket::SocketRef;

/// A broadcast being built: which sockets, with which flags. Every emit encodes the
/// packet once and hands the same bytes to each recipient; the namespace's adapter
/// carries it to the other nodes of a cluster.
#[derive(Clone)]
pub struct BroadcastOperators {
    ns: Arc<NsInner>,
    opts: BroadcastOptions,
    attachments: Vec<Bytes>,
}

impl BroadcastOperators {
    pub(crate) fn new(ns: Arc<NsInner>) -> Self {
        Self {
            ns,
            opts: BroadcastOptions::default(),
            attachments: Vec::new(),
        }
    }

    /// Adds a room to send to (Node's `to` / `in`).
    pub fn to(mut self, room: impl Into<Room>) -> Self {
        let r = room.into();
        if !self.opts.rooms.contains(&r) {
            self.opts.rooms.push(r);
        }
        self
    }

    /// Same as [`BroadcastOperators::to`] (Node's `in`).
    pub fn within(self, room: impl Into<Room>) -> Self {
        self.to(room)
    }

    /// Leaves out the sockets in a room.
    pub fn except(mut self, room: impl Into<Room>) -> Self {
        self.opts.except.push(room.into());
        self
    }

    /// Only this node's sockets (a cluster adapter does not publish it).
    pub fn local(mut self) -> Self {
        self.opts.flags.local = true;
        self
    }

    /// Drop the packet for clients that cannot take it right now.
    pub fn volatile(mut self) -> Self {
        self.opts.flags.volatile = true;
        self
    }

    /// Compression hint (Node's `compress`), passed to cluster adapters; WebSocket
    /// compression follows the server's permessage-deflate settings.
    pub fn compress(mut self, compress: bool) -> Self {
        self.opts.flags.compress = Some(compress);
        self
    }

    /// How long [`BroadcastOperators::emit_with_ack`] waits for the acks.
    pub fn timeout(mut self, t: Duration) -> Self {
        self.opts.flags.timeout = Some(t);
        self
    }

    /// Binary attachments referenced by placeholders in the arguments.
    pub fn bin(mut self, attachments: Vec<Bytes>) -> Self {
        self.attachments = attachments;
        self
    }

    /// The options this broadcast was built with.
    pub fn options(&self) -> &BroadcastOptions {
        &self.opts
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
    /// It fails when a cluster adapter cannot publish it (it was still delivered here).
    pub fn emit_args(&self, event: &str, args: Vec<Value>) -> Result<(), EmitError> {
        let packet = self.event_packet(event, args)?;
        Ok(self.ns.adapter.broadcast(packet, self.opts.clone())?)
    }

    /// Emits with one argument and collects every recipient's ack within the timeout
    /// (default 5 s when none was set), on every node.
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
        let packet = self.event_packet(event, args)?;
        let (collector, rx, shared) = AckCollector::new();
        self.ns
            .adapter
            .broadcast_with_ack(packet, self.opts.clone(), collector)?;
        let adapter = self.ns.adapter.clone();
        Ok(AckStream {
            rx,
            server_count: Some(Box::pin(async move { adapter.server_count().await })),
            timeout: self.opts.flags.timeout.unwrap_or(Duration::from_secs(5)),
            shared,
        })
    }

    /// The selected sockets on every node (Node's `fetchSockets`).
    pub async fn fetch_sockets(&self) -> Result<Vec<RemoteSocket>, AdapterError> {
        let infos = self.ns.adapter.fetch_sockets(self.opts.clone()).await?;
        Ok(infos
            .into_iter()
            .map(|info| RemoteSocket::new(info, self.ns.clone()))
            .collect())
    }

    /// The selected sockets on this node.
    pub fn sockets(&self) -> Vec<SocketRef> {
        self.ns.adapter.local().sockets(&self.opts)
    }

    /// Makes the selected sockets, on every node, join a room (Node's `socketsJoin`).
    pub fn join(&self, room: impl Into<Room>) -> Result<(), AdapterError> {
        self.ns
            .adapter
            .add_sockets(self.opts.clone(), vec![room.into()])
    }

    /// Makes the selected sockets, on every node, leave a room (Node's `socketsLeave`).
    pub fn leave(&self, room: impl Into<Room>) -> Result<(), AdapterError> {
        self.ns
            .adapter
            .del_sockets(self.opts.clone(), vec![room.into()])
    }

    /// Disconnects the selected sockets on every node (Node's `disconnectSockets(close)`).
    pub fn disconnect(&self, close: bool) -> Result<(), AdapterError> {
        self.ns.adapter.disconnect_sockets(self.opts.clone(), close)
    }
}
