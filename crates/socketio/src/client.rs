//! One Engine.IO connection as Socket.IO sees it: it decodes packets, routes them to the
//! namespaces the client joined, and runs the CONNECT handshake of each.

use std::sync::{Arc, Mutex, Weak};

use iolite_engine::{CloseReason, Data, Handler};
use serde_json::{json, Map, Value};

use crate::adapter::RegisterSession;
use crate::config::ParserKind;
use crate::error::DisconnectReason;
use crate::handler::run;
use crate::io::IoInner;
use crate::ns::NsInner;
use crate::outgoing::encode;
use crate::parser::{msgpack, DecodeState, Packet, PacketType};
use crate::room::Room;
use crate::socket::{Socket, SocketRef};
use crate::sync::{lock, read};

/// An Engine.IO session carrying Socket.IO.
pub(crate) type Conn = iolite_engine::Socket<ClientState>;

/// What Socket.IO keeps per Engine.IO session.
#[derive(Default)]
pub struct ClientState {
    /// A binary packet waiting for its attachments (the limits are the server's).
    decoder: Mutex<DecodeState>,
    /// The client's sockets, one per namespace (named by `socket.ns.name`).
    sockets: Mutex<ClientSockets>,
    /// Namespaces whose CONNECT is being handled: usually one for a moment, so a list
    /// sized exactly (16 bytes where a `Vec` is 24 in every client).
    connecting: Mutex<Box<[String]>>,
}

pub(crate) struct IoHandler {
    pub(crate) io: Weak<IoInner>,
}

impl Handler for IoHandler {
    type Data = ClientState;

    fn on_open(&self, conn: &Arc<Conn>) {
        let Some(io) = self.io.upgrade() else { return };
        // On the session's own heartbeat task: no task or timer per connection for it.
        conn.set_deadline(Some(
            tokio::time::Instant::now() + io.config.connect_timeout,
        ));
    }

    /// The connect timeout: a client that joined no namespace in time is dropped.
    fn on_deadline(&self, conn: &Arc<Conn>) {
        if lock(&conn.data().sockets).is_empty() {
            conn.close();
        }
    }

    fn on_message(&self, conn: &Arc<Conn>, data: Data) {
        let Some(io) = self.io.upgrade() else { return };
        let decoded = match io.config.parser {
            ParserKind::Json => {
                let mut d = lock(&conn.data().decoder);
                match data {
                    Data::Text(t) => d
                        .decode_text(&t, &io.config.parser_limits)
                        .map_err(|e| e.to_string()),
                    Data::Binary(b) => d.decode_binary(b).map_err(|e| e.to_string()),
                }
            }
            ParserKind::Msgpack => match data {
                Data::Binary(b) => msgpack::decode(&b, &io.config.parser_limits)
                    .map(Some)
                    .map_err(|e| e.to_string()),
                Data::Text(_) => Err("text message with the msgpack parser".into()),
            },
        };
        match decoded {
            Ok(Some(packet)) => route(&io, conn, packet),
            Ok(None) => {}
            Err(e) => {
                // Node: a packet that does not decode closes the connection.
                tracing::debug!(error = e, "invalid packet, closing the connection");
                conn.close();
            }
        }
    }

    fn on_close(&self, conn: &Arc<Conn>, reason: CloseReason) {
        let sockets = lock(&conn.data().sockets).take();
        for s in sockets {
            s.close(DisconnectReason::from(reason));
        }
    }
}

fn find(conn: &Conn, nsp: &str) -> Option<SocketRef> {
    lock(&conn.data().sockets)
        .as_slice()
        .iter()
        .find(|s| s.ns.name == nsp)
        .cloned()
}

pub(crate) fn remove_socket(conn: &Conn, nsp: &str) {
    lock(&conn.data().sockets).retain(|s| s.ns.name != nsp);
}

/// Node's `socket.disconnect(true)`: every namespace of the client, then the connection.
pub(crate) fn disconnect_client(conn: &Arc<Conn>) {
    let sockets = lock(&conn.data().sockets).as_slice().to_vec();
    for s in sockets {
        s.disconnect();
    }
    conn.close();
}

fn route(io: &Arc<IoInner>, conn: &Arc<Conn>, packet: Packet) {
    let name = packet
        .nsp
        .as_str()
        .split('?')
        .next()
        .unwrap_or("/")
        .to_owned();
    match (find(conn, &name), packet.kind) {
        (None, PacketType::Connect) => {
            if lock(&conn.data().connecting).contains(&name) {
                conn.close();
                return;
            }
            connect(io, conn, name, packet);
        }
        (Some(s), k) if k != PacketType::Connect && k != PacketType::ConnectError => {
            s.on_packet(packet)
        }
        _ => {
            tracing::debug!(
                nsp = name,
                "packet in an invalid state, closing the connection"
            );
            conn.close();
        }
    }
}

fn connect(io: &Arc<IoInner>, conn: &Arc<Conn>, name: String, packet: Packet) {
    let auth = match packet.data {
        Value::Object(m) => Value::Object(m),
        _ => Value::Object(Map::new()),
    };
    let parser = io.config.parser;
    let Some(ns) = io.namespace_for(&name) else {
        let err =
            Packet::connect_error(packet.nsp.clone(), json!({"message": "Invalid namespace"}));
        let _ = encode(parser, &err).send(conn);
        return;
    };
    {
        let mut connecting = lock(&conn.data().connecting);
        let mut names = std::mem::take(&mut *connecting).into_vec();
        names.push(name.clone());
        *connecting = names.into_boxed_slice();
    }
    let conn = conn.clone();
    let skip = io
        .config
        .recovery
        .as_ref()
        .is_some_and(|r| r.skip_middlewares);
    run(Box::pin(async move {
        let done = |conn: &Conn| {
            let mut connecting = lock(&conn.data().connecting);
            let mut names = std::mem::take(&mut *connecting).into_vec();
            names.retain(|n| n != &name);
            *connecting = names.into_boxed_slice();
        };
        let pid = auth.get("pid").and_then(Value::as_str).map(str::to_owned);
        let offset = auth
            .get("offset")
            .and_then(Value::as_str)
            .map(str::to_owned);
        let Ok(fresh) = Socket::new(ns.clone(), conn.clone(), auth.clone(), None) else {
            done(&conn);
            conn.close();
            return;
        };
        let fresh = Arc::new(fresh);
        let recoverable = ns.recovery && pid.is_some() && offset.is_some();
        let mut middlewares_passed = false;
        if !(recoverable && skip) {
            // Middlewares see the socket before it is connected (`socket.connected` is
            // false there, as in Node); a refusal sends CONNECT_ERROR and drops it.
            if !run_middlewares(&ns, &conn, &fresh).await {
                done(&conn);
                return;
            }
            middlewares_passed = true;
        }
        if !conn.is_open() {
            done(&conn);
            return;
        }
        let mut recovered: Option<SocketRef> = None;
        if let (Some(pid), Some(offset)) = (&pid, &offset) {
            let slot = &mut recovered;
            let (ns2, conn2, auth2) = (&ns, &conn, &auth);
            let register: RegisterSession<'_> = Box::new(move |r| {
                let s = r.session;
                let Ok(socket) = Socket::new(
                    ns2.clone(),
                    conn2.clone(),
                    auth2.clone(),
                    Some((s.sid, s.pid, s.data)),
                ) else {
                    return;
                };
                let socket = Arc::new(socket);
                register(ns2, conn2, &socket, s.rooms);
                // As Node: the CONNECT reply, then the missed packets, before any new
                // broadcast (the in-memory adapter holds its packet log until this returns).
                send_connect(&socket);
                for p in &r.missed {
                    let _ = socket.send_packet(p);
                }
                *slot = Some(socket);
            });
            if let Err(e) = ns.adapter.restore_session(pid, offset, register).await {
                tracing::debug!(error = %e, "session not restored");
            }
        }
        let socket = match recovered {
            Some(s) => s,
            None => {
                if !middlewares_passed && !run_middlewares(&ns, &conn, &fresh).await {
                    done(&conn);
                    return;
                }
                if !conn.is_open() {
                    done(&conn);
                    return;
                }
                register(&ns, &conn, &fresh, Vec::new());
                send_connect(&fresh);
                fresh
            }
        };
        done(&conn);
        conn.set_deadline(None);
        let handler = read(&ns.connect).clone();
        let Some(h) = handler else {
            socket.release_held();
            return;
        };
        match h.call(socket.clone(), &auth) {
            Ok(mut f) => {
                // Its first poll registers the socket's handlers (as Node's synchronous
                // `connection` listeners do); packets held meanwhile go to them after.
                let pending = {
                    let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
                    f.as_mut().poll(&mut cx).is_pending()
                };
                socket.release_held();
                if pending {
                    f.await;
                }
            }
            Err(e) => {
                tracing::debug!(error = %e, "connect handler not called");
                socket.release_held();
            }
        }
    }));
}

async fn run_middlewares(ns: &Arc<NsInner>, conn: &Arc<Conn>, socket: &SocketRef) -> bool {
    let mws = read(&ns.middlewares).clone();
    for mw in mws {
        if let Err(e) = mw(socket.clone()).await {
            if conn.is_open() {
                let mut data = Map::new();
                data.insert("message".into(), Value::String(e.message.clone()));
                if let Some(d) = e.data {
                    data.insert("data".into(), d);
                }
                let _ =
                    socket.send_packet(&Packet::connect_error(ns.nsp.clone(), Value::Object(data)));
            }
            return false;
        }
    }
    true
}

fn register(ns: &Arc<NsInner>, conn: &Arc<Conn>, socket: &SocketRef, rooms: Vec<Room>) {
    let pending = socket.take_pending_rooms();
    // In the namespace before it counts as connected, so that a join from another thread
    // in between finds it.
    ns.rooms.add(socket);
    socket
        .connected
        .store(true, std::sync::atomic::Ordering::Release);
    ns.rooms.join(socket.id, Room::from(socket.id.as_str()));
    for r in rooms.into_iter().chain(pending) {
        ns.rooms.join(socket.id, r);
    }
    lock(&conn.data().sockets).push(socket.clone());
}

fn send_connect(socket: &SocketRef) {
    let mut data = Map::new();
    data.insert("sid".into(), Value::String(socket.id.as_str().to_owned()));
    if let Some(pid) = socket.pid {
        data.insert("pid".into(), Value::String(pid.as_str().to_owned()));
    }
    let _ = socket.send_packet(&Packet::connect(socket.ns.nsp.clone(), Value::Object(data)));
}

/// A client's sockets, one per namespace. Most clients have one, kept inline: a list would
/// be an allocation per client.
#[derive(Default)]
enum ClientSockets {
    #[default]
    None,
    One(SocketRef),
    Many(Vec<SocketRef>),
}

impl ClientSockets {
    fn as_slice(&self) -> &[SocketRef] {
        match self {
            Self::None => &[],
            Self::One(s) => std::slice::from_ref(s),
            Self::Many(v) => v,
        }
    }

    fn is_empty(&self) -> bool {
        self.as_slice().is_empty()
    }

    fn push(&mut self, socket: SocketRef) {
        *self = match std::mem::take(self) {
            Self::None => Self::One(socket),
            Self::One(first) => Self::Many(vec![first, socket]),
            Self::Many(mut v) => {
                v.push(socket);
                Self::Many(v)
            }
        };
    }

    fn retain(&mut self, keep: impl FnMut(&SocketRef) -> bool) {
        let mut v = self.take();
        v.retain(keep);
        *self = match (v.pop(), v.is_empty()) {
            (None, _) => Self::None,
            (Some(s), true) => Self::One(s),
            (Some(s), false) => {
                v.push(s);
                Self::Many(v)
            }
        };
    }

    /// Takes them all out, leaving none.
    fn take(&mut self) -> Vec<SocketRef> {
        match std::mem::take(self) {
            Self::None => Vec::new(),
            Self::One(s) => vec![s],
            Self::Many(v) => v,
        }
    }
}
