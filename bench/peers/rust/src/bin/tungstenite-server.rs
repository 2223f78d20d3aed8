//! The raw WebSocket side of docs/bench-contract.md on tokio-tungstenite, as iolite's
//! `bench_server.rs` does it: `/echo` sends every text or binary message back;
//! `/broadcast?room=NAME` sends it to every other connection of room NAME (no `room`: the
//! room named ""); any other path is refused with 404.
//!
//! `tungstenite-server [--host 127.0.0.1] [--port 3000]` (or env `PORT`).
//!
//! Each connection has a writer task fed by an unbounded channel, the usual shape of a
//! tokio-tungstenite broadcast server (its own examples do the same): a broadcast clones
//! the message (a `Bytes`-backed `Utf8Bytes`, so no copy of the payload) into each queue.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use futures_util::{SinkExt, StreamExt};
use tokio::net::TcpStream;
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::handshake::server::{ErrorResponse, Request, Response};
use tokio_tungstenite::tungstenite::http::StatusCode;
use tokio_tungstenite::tungstenite::Message;

type Members = HashMap<u64, mpsc::UnboundedSender<Message>>;

#[derive(Default)]
struct Rooms {
    rooms: Mutex<HashMap<String, Arc<Mutex<Members>>>>,
    next_id: AtomicU64,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Rooms {
    fn join(&self, room: &str, tx: mpsc::UnboundedSender<Message>) -> (u64, Arc<Mutex<Members>>) {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let members = lock(&self.rooms)
            .entry(room.to_owned())
            .or_default()
            .clone();
        lock(&members).insert(id, tx);
        (id, members)
    }

    fn leave(&self, room: &str, id: u64, members: &Mutex<Members>) {
        let empty = {
            let mut m = lock(members);
            m.remove(&id);
            m.is_empty()
        };
        if empty {
            let mut rooms = lock(&self.rooms);
            // Someone may have joined between the two locks.
            if rooms.get(room).is_some_and(|m| lock(m).is_empty()) {
                rooms.remove(room);
            }
        }
    }
}

enum Route {
    Echo,
    Broadcast(String),
}

fn route(path: &str, query: Option<&str>) -> Option<Route> {
    match path {
        "/echo" => Some(Route::Echo),
        "/broadcast" => {
            let room = query
                .unwrap_or("")
                .split('&')
                .find_map(|kv| kv.strip_prefix("room="))
                .unwrap_or("");
            Some(Route::Broadcast(room.to_owned()))
        }
        _ => None,
    }
}

// The large Err is tungstenite's own callback signature (an HTTP response).
#[allow(clippy::result_large_err)]
async fn serve(tcp: TcpStream, rooms: Arc<Rooms>) {
    let mut chosen = None;
    let accepted = tokio_tungstenite::accept_hdr_async(tcp, |req: &Request, resp: Response| {
        chosen = route(req.uri().path(), req.uri().query());
        match chosen {
            Some(_) => Ok(resp),
            None => {
                let mut e = ErrorResponse::new(Some("paths: /echo, /broadcast?room=NAME".into()));
                *e.status_mut() = StatusCode::NOT_FOUND;
                Err(e)
            }
        }
    })
    .await;
    let (Ok(ws), Some(r)) = (accepted, chosen) else {
        return;
    };
    let (mut sink, mut stream) = ws.split();
    match r {
        Route::Echo => {
            // tungstenite answers pings itself, on the next read or write.
            while let Some(Ok(msg)) = stream.next().await {
                if matches!(msg, Message::Text(_) | Message::Binary(_))
                    && sink.send(msg).await.is_err()
                {
                    break;
                }
            }
        }
        Route::Broadcast(room) => {
            let (tx, mut rx) = mpsc::unbounded_channel::<Message>();
            let (id, members) = rooms.join(&room, tx.clone());
            let writer = tokio::spawn(async move {
                while let Some(msg) = rx.recv().await {
                    // feed, then flush once the queue is empty: one write for a run of
                    // messages, as a busy server would want.
                    if sink.feed(msg).await.is_err() {
                        return;
                    }
                    while let Ok(more) = rx.try_recv() {
                        if sink.feed(more).await.is_err() {
                            return;
                        }
                    }
                    if sink.flush().await.is_err() {
                        return;
                    }
                }
            });
            while let Some(Ok(msg)) = stream.next().await {
                match msg {
                    Message::Text(_) | Message::Binary(_) => {
                        for (peer, s) in lock(&members).iter() {
                            if *peer != id {
                                let _ = s.send(msg.clone());
                            }
                        }
                    }
                    // The reader half sees pings; the pong goes out through the writer.
                    Message::Ping(p) => {
                        let _ = tx.send(Message::Pong(p));
                    }
                    _ => {}
                }
            }
            rooms.leave(&room, id, &members);
            drop(tx);
            writer.abort();
        }
    }
}

#[tokio::main]
async fn main() {
    let listener = iolite_bench_peers::start("tungstenite-server", 3000).await;
    let rooms = Arc::new(Rooms::default());
    loop {
        let tcp = match listener.accept().await {
            Ok((tcp, _)) => tcp,
            // Out of file descriptors: keep serving the open connections, try again shortly.
            Err(e) => {
                eprintln!("tungstenite-server: accept: {e}");
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                continue;
            }
        };
        // Latency is what is measured: no Nagle delay on small frames.
        let _ = tcp.set_nodelay(true);
        tokio::spawn(serve(tcp, rooms.clone()));
    }
}
