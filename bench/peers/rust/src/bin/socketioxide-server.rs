//! The Socket.IO side of docs/bench-contract.md on socketioxide (served by axum), the same
//! handlers as iolite's `bench_server.rs`: `echo` acks with what it got (or, without an ack
//! id, emits `echo`), `join` / `leave` `{room}` and ack, `publish` `{room, payload}` emits
//! `message` to the room except the sender.
//!
//! `socketioxide-server [--host 127.0.0.1] [--port 3001]` (or env `PORT`).

use std::convert::Infallible;
use std::sync::Arc;

use axum::serve::ListenerExt;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use socketioxide::adapter::Adapter;
use socketioxide::extract::{AckSender, Data, SocketRef};
use socketioxide::handler::{ConnectHandler, FromMessageParts};
use socketioxide::socket::Socket;
use socketioxide::SocketIo;

#[derive(Deserialize)]
struct RoomArg {
    room: String,
}

#[derive(Deserialize)]
struct Publish {
    room: String,
    payload: Value,
}

/// Whether the client asked for an ack: socketioxide's `AckSender` silently sends nothing
/// without one, and the contract says to emit `echo` back instead.
struct AckRequested(bool);

impl<A: Adapter> FromMessageParts<A> for AckRequested {
    type Error = Infallible;
    fn from_message_parts(
        _: &Arc<Socket<A>>,
        _: &mut socketioxide::handler::Value,
        ack_id: &Option<i64>,
    ) -> Result<Self, Infallible> {
        Ok(Self(ack_id.is_some()))
    }
}

/// Every argument of an event, as the contract's `echo` takes "any" arguments: socketioxide
/// hands a handler the first argument unless the type is tuple-like in serde's model, so
/// this reads and writes itself as a tuple of any length.
struct AllArgs(Vec<Value>);

impl<'de> Deserialize<'de> for AllArgs {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Visit;
        impl<'de> serde::de::Visitor<'de> for Visit {
            type Value = AllArgs;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("event arguments")
            }
            fn visit_seq<S: serde::de::SeqAccess<'de>>(
                self,
                mut seq: S,
            ) -> Result<AllArgs, S::Error> {
                let mut v = Vec::with_capacity(seq.size_hint().unwrap_or(1));
                while let Some(x) = seq.next_element()? {
                    v.push(x);
                }
                Ok(AllArgs(v))
            }
        }
        d.deserialize_tuple(usize::MAX, Visit)
    }
}

impl Serialize for AllArgs {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeTuple;
        let mut t = s.serialize_tuple(self.0.len())?;
        for v in &self.0 {
            t.serialize_element(v)?;
        }
        t.end()
    }
}

/// Registers the handlers. This runs as a connect middleware, which socketioxide awaits
/// before it sends the CONNECT packet: the connect handler itself is spawned after that
/// packet has gone out, so a client that emits at once (the generator joins its room as
/// soon as it is connected) could race it and have its first event dropped (seen here: 2
/// of 1000 `join`s never acked when the handlers were registered in the connect handler).
async fn register(socket: SocketRef) -> Result<(), Infallible> {
    socket.on(
        "echo",
        async |s: SocketRef,
               AckRequested(asked): AckRequested,
               ack: AckSender,
               Data::<AllArgs>(data)| {
            if asked {
                let _ = ack.send(&data);
            } else {
                let _ = s.emit("echo", &data);
            }
        },
    );
    socket.on(
        "join",
        async |s: SocketRef, ack: AckSender, Data::<RoomArg>(r)| {
            s.join(r.room);
            let _ = ack.send(&());
        },
    );
    socket.on(
        "leave",
        async |s: SocketRef, ack: AckSender, Data::<RoomArg>(r)| {
            s.leave(r.room);
            let _ = ack.send(&());
        },
    );
    socket.on("publish", async |s: SocketRef, Data::<Publish>(p)| {
        // A slow or closed receiver is its own problem; the others still get it.
        let _ = s.to(p.room).emit("message", &p.payload).await;
    });
    Ok(())
}

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let listener = iolite_bench_peers::start("socketioxide-server", 3001).await;
    let (layer, io) = SocketIo::new_layer();
    io.ns("/", (async || {}).with(register));
    let app = axum::Router::new().layer(layer);
    // Latency is what is measured: no Nagle delay on small frames.
    let listener = listener.tap_io(|tcp| {
        let _ = tcp.set_nodelay(true);
    });
    axum::serve(listener, app).await
}
