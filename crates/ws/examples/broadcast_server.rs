//! Broadcast server: every message from any client goes to all connected clients, framed
//! once as a prepared message.
//!
//! Usage: `broadcast_server [PORT]` (default 3000), listens on 127.0.0.1.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};

use iolite_ws::{accept, Config, Message, PreparedMessage, Sender};

type Peers = Arc<RwLock<HashMap<u64, Sender>>>;

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let port: u16 = std::env::args()
        .nth(1)
        .and_then(|p| p.parse().ok())
        .unwrap_or(3000);
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port)).await?;
    let config = Arc::new(Config::default());
    let peers: Peers = Arc::default();
    let next_id = AtomicU64::new(0);
    eprintln!("broadcast_server listening on ws://127.0.0.1:{port}");
    loop {
        let (tcp, _) = listener.accept().await?;
        tcp.set_nodelay(true)?;
        let (config, peers) = (config.clone(), peers.clone());
        let id = next_id.fetch_add(1, Ordering::Relaxed);
        tokio::spawn(async move {
            // Boxed: the task is sized for its largest state, and the handshake state is big;
            // boxing frees it after the handshake instead of keeping it for the whole connection.
            let Ok((ws, _)) = Box::pin(accept(tcp, config)).await else {
                return;
            };
            let (sender, mut receiver) = ws.split();
            peers
                .write()
                .unwrap_or_else(|e| e.into_inner())
                .insert(id, sender);
            while let Some(Ok(msg)) = receiver.recv().await {
                let prepared = match msg {
                    Message::Text(t) => PreparedMessage::text(t),
                    Message::Binary(b) => PreparedMessage::binary(b),
                    _ => continue,
                };
                for peer in peers.read().unwrap_or_else(|e| e.into_inner()).values() {
                    // A full or closed peer is its own problem; the others still get it.
                    let _ = peer.send_prepared(&prepared);
                }
            }
            peers.write().unwrap_or_else(|e| e.into_inner()).remove(&id);
        });
    }
}
