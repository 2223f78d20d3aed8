//! The load generator's server contract (`docs/bench-contract.md`) on iolite: raw
//! WebSocket (`iolite-ws`) on one port, Socket.IO (`iolite`) on another.
//!
//! ```text
//! cargo run --release -p iolite-bench --example bench_server -- --ws-port 3000 --sio-port 3001
//! ```
//!
//! - `ws://HOST:WS_PORT/echo`: every text or binary message comes back to its sender.
//! - `ws://HOST:WS_PORT/broadcast?room=NAME`: every text or binary message goes to every
//!   other connection of room NAME (no `room`: the room named ""), framed once.
//! - `http://HOST:SIO_PORT/socket.io/`, namespace `/`: `echo` (ack with the same
//!   arguments, or without an ack emit `echo` back), `join` / `leave` `{room}` (ack
//!   when asked), `publish` `{room, payload}` (emits `message` with `payload` to the
//!   room, except the sender).
//!
//! `--redis redis://HOST:PORT/` makes the Socket.IO side a node of a cluster through the
//! Redis pub/sub adapter (`iolite-redis`, default options): `publish` reaches the room on
//! every node attached to that Redis, iolite's or Node's (scripts/bench `cluster-fanout`).
//! It listens only once the adapter has subscribed. The raw WebSocket side stays local.
//!
//! Port 0 picks a free port; the chosen ports are printed. The tests start the same
//! servers in-process through [`serve_ws`] and [`serve_sio`] (or [`sio_on`] with a
//! Redis-backed builder).

use std::collections::HashMap;
use std::future::{poll_fn, Future};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock, RwLockReadGuard, RwLockWriteGuard};

use iolite::{AckSender, Args, Data, SocketIo, SocketRef};
use iolite_ws::{
    accept_connection_with, Config, Connection, Message, PreparedMessage, Reject, Sender,
};
use serde::Deserialize;
use tokio::net::{TcpListener, TcpStream};

/// The allocator the `iolite` binary ships with: tokio's 128-byte-aligned task and I/O blocks
/// from slabs, without glibc's holes around each (docs/benchmarks.md, "The allocator's share").
#[global_allocator]
static ALLOC: iolite_ws::slab_alloc::SlabAlloc = iolite_ws::slab_alloc::SlabAlloc::new();

type Members = RwLock<HashMap<u64, Sender>>;

/// Rooms of the raw WebSocket broadcast endpoint.
#[derive(Default)]
struct Rooms {
    rooms: RwLock<HashMap<String, Arc<Members>>>,
    next_id: AtomicU64,
}

fn read<T>(l: &RwLock<T>) -> RwLockReadGuard<'_, T> {
    l.read().unwrap_or_else(|e| e.into_inner())
}

fn write<T>(l: &RwLock<T>) -> RwLockWriteGuard<'_, T> {
    l.write().unwrap_or_else(|e| e.into_inner())
}

impl Rooms {
    fn join(&self, room: &str, sender: Sender) -> (u64, Arc<Members>) {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let members = write(&self.rooms)
            .entry(room.to_owned())
            .or_default()
            .clone();
        write(&members).insert(id, sender);
        (id, members)
    }

    fn leave(&self, room: &str, id: u64, members: &Members) {
        let empty = {
            let mut m = write(members);
            m.remove(&id);
            m.is_empty()
        };
        if empty {
            let mut rooms = write(&self.rooms);
            // Someone may have joined between the two locks.
            if rooms.get(room).is_some_and(|m| read(m).is_empty()) {
                rooms.remove(room);
            }
        }
    }
}

enum Route {
    Echo,
    Broadcast(String),
}

fn route(uri: &http::Uri) -> Option<Route> {
    match uri.path() {
        "/echo" => Some(Route::Echo),
        "/broadcast" => {
            let room = uri
                .query()
                .unwrap_or("")
                .split('&')
                .find_map(|kv| kv.strip_prefix("room="))
                .unwrap_or("");
            Some(Route::Broadcast(room.to_owned()))
        }
        _ => None,
    }
}

/// Serves the raw WebSocket endpoints on `listener`, for ever.
pub async fn serve_ws(listener: TcpListener) -> std::io::Result<()> {
    let config = Arc::new(Config::default());
    let rooms = Arc::new(Rooms::default());
    loop {
        let tcp = match listener.accept().await {
            Ok((tcp, _)) => tcp,
            // Out of file descriptors (or a connection reset before accept): keep serving
            // the connections already open, and try again shortly.
            Err(e) => {
                eprintln!("bench_server: accept: {e}");
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                continue;
            }
        };
        // Latency is what is measured: no Nagle delay on small frames.
        let _ = tcp.set_nodelay(true);
        let (config, rooms) = (config.clone(), rooms.clone());
        tokio::spawn(async move {
            let mut chosen = None;
            // Boxed: the handshake state is large and should not stay in the task for
            // the whole connection.
            let accepted = Box::pin(accept_connection_with(tcp, config, |req, _| {
                chosen = route(req.uri());
                match chosen {
                    Some(_) => Ok(None),
                    None => Err(Reject::new(404, "paths: /echo, /broadcast?room=NAME")),
                }
            }))
            .await;
            // One task per connection: the read loop also writes. Spawned apart from this
            // one, so an idle connection's task holds only its loop, not the handshake's.
            let (Ok((ws, _)), Some(r)) = (accepted, chosen) else {
                return;
            };
            match r {
                Route::Echo => tokio::spawn(echo(ws)),
                Route::Broadcast(room) => tokio::spawn(broadcast(ws, rooms, room)),
            };
        });
    }
}

// Plain fns returning `async move` blocks: an `async fn` keeps a second copy of its
// arguments (the connection) in its state, which every idle connection would carry.
#[allow(clippy::manual_async_fn)]
fn echo(mut ws: Connection<TcpStream>) -> impl Future<Output = ()> + Send {
    async move {
        while let Some(Ok(msg)) = poll_fn(|cx| ws.poll_recv(cx)).await {
            if matches!(msg, Message::Text(_) | Message::Binary(_)) && ws.send(msg).is_err() {
                break;
            }
        }
    }
}

#[allow(clippy::manual_async_fn)]
fn broadcast(
    mut ws: Connection<TcpStream>,
    rooms: Arc<Rooms>,
    room: String,
) -> impl Future<Output = ()> + Send {
    async move {
        let (id, members) = rooms.join(&room, ws.sender());
        while let Some(Ok(msg)) = poll_fn(|cx| ws.poll_recv(cx)).await {
            let prepared = match msg {
                Message::Text(t) => PreparedMessage::text(t),
                Message::Binary(b) => PreparedMessage::binary(b),
                _ => continue,
            };
            // A slow or closed peer is its own problem (iolite-ws closes it past its queue
            // limit); the others still get the message.
            let members = read(&members);
            iolite_ws::broadcast(
                members
                    .iter()
                    .filter(|(peer, _)| **peer != id)
                    .map(|(_, s)| s),
                &prepared,
            );
        }
        rooms.leave(&room, id, &members);
    }
}

#[derive(Deserialize)]
struct RoomArg {
    room: String,
}

#[derive(Deserialize)]
struct Publish {
    room: String,
    payload: serde_json::Value,
}

/// The Socket.IO side of the contract.
pub fn sio() -> SocketIo {
    sio_on(SocketIo::builder())
}

/// The Socket.IO side of the contract on a server from `builder` (with a cluster adapter,
/// say).
pub fn sio_on(builder: iolite::Builder) -> SocketIo {
    let io = builder.build();
    io.ns("/", |socket: SocketRef| async move {
        socket.on(
            "echo",
            |s: SocketRef, Args(args): Args, ack: AckSender| async move {
                if ack.is_requested() {
                    let _ = ack.send_args(args);
                } else {
                    let _ = s.emitter().emit_args("echo", args);
                }
            },
        );
        socket.on(
            "join",
            |s: SocketRef, Data(r): Data<RoomArg>, ack: AckSender| async move {
                s.join(r.room);
                let _ = ack.send_args(vec![]);
            },
        );
        socket.on(
            "leave",
            |s: SocketRef, Data(r): Data<RoomArg>, ack: AckSender| async move {
                s.leave(&r.room);
                let _ = ack.send_args(vec![]);
            },
        );
        socket.on(
            "publish",
            |s: SocketRef, Data(p): Data<Publish>| async move {
                let _ = s.to(p.room).emit("message", &p.payload);
            },
        );
    });
    io
}

/// Serves [`sio`] on `listener` until it fails.
pub async fn serve_sio(listener: TcpListener) -> std::io::Result<()> {
    sio().serve(listener).await
}

/// [`sio`] as a node of the cluster on the Redis server at `url`, once its adapter has
/// subscribed (so a broadcast from another node cannot be missed by a client that joined
/// here first). Fails when `url` is not a Redis URL or Redis does not answer in 10 s.
pub async fn sio_redis(url: &str) -> std::io::Result<SocketIo> {
    let redis = iolite_redis::RedisClient::new(url)
        .map_err(|e| std::io::Error::other(format!("--redis {url}: {e}")))?;
    let io = sio_on(
        SocketIo::builder().adapter(redis.adapter_factory(iolite_redis::AdapterOptions::default())),
    );
    tokio::time::timeout(std::time::Duration::from_secs(10), redis.ready())
        .await
        .map_err(|_| {
            std::io::Error::new(
                std::io::ErrorKind::TimedOut,
                format!("--redis {url}: not subscribed after 10 s"),
            )
        })?;
    Ok(io)
}

fn port_arg(args: &[String], name: &str, default: u16) -> Result<u16, String> {
    match args.iter().position(|a| a == name) {
        None => Ok(default),
        Some(i) => args
            .get(i + 1)
            .and_then(|v| v.parse().ok())
            .ok_or_else(|| format!("{name} needs a port number")),
    }
}

/// A listener with a deep accept queue: tokio's `bind` asks for 128, and a burst of
/// connects beyond that is dropped and retried by the client's TCP a second later.
pub async fn listen(host: &str, port: u16) -> std::io::Result<TcpListener> {
    let addr = tokio::net::lookup_host((host, port))
        .await?
        .next()
        .ok_or_else(|| std::io::Error::other(format!("{host}: no address")))?;
    let socket = if addr.is_ipv4() {
        tokio::net::TcpSocket::new_v4()?
    } else {
        tokio::net::TcpSocket::new_v6()?
    };
    socket.set_reuseaddr(true)?;
    socket.bind(addr)?;
    socket.listen(4096)
}

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let parsed = (|| {
        let host = match args.iter().position(|a| a == "--host") {
            Some(i) => args.get(i + 1).cloned().ok_or("--host needs an address")?,
            None => "127.0.0.1".to_owned(),
        };
        let redis = match args.iter().position(|a| a == "--redis") {
            Some(i) => Some(args.get(i + 1).cloned().ok_or("--redis needs a URL")?),
            None => None,
        };
        Ok::<_, String>((
            host,
            port_arg(&args, "--ws-port", 3000)?,
            port_arg(&args, "--sio-port", 3001)?,
            redis,
        ))
    })();
    let (host, ws_port, sio_port, redis) = match parsed {
        Ok(v) => v,
        Err(e) => {
            eprintln!("bench_server: {e}\nusage: bench_server [--host 127.0.0.1] [--ws-port 3000] [--sio-port 3001] [--redis redis://HOST:PORT/]");
            std::process::exit(2);
        }
    };
    // Subscribed before listening: a client that can connect can receive from every node.
    let io = match &redis {
        Some(url) => sio_redis(url).await?,
        None => sio(),
    };
    let ws = listen(&host, ws_port).await?;
    let sio = listen(&host, sio_port).await?;
    println!("bench_server pid {}", std::process::id());
    println!(
        "ws  ws://{} (/echo, /broadcast?room=NAME)",
        ws.local_addr()?
    );
    println!("sio http://{}/socket.io/", sio.local_addr()?);
    if let Some(url) = &redis {
        println!("cluster: Redis pub/sub adapter at {url}");
    }
    tokio::select! {
        r = serve_ws(ws) => r,
        r = io.serve(sio) => r,
    }
}
