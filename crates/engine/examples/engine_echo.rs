//! An Engine.IO echo server: every message comes back to its sender.
//!
//! `cargo run -p iolite-engine --example engine_echo -- 3000`, then connect an
//! `engine.io-client` to `http://127.0.0.1:3000/engine.io/`. Environment: `PING_INTERVAL`,
//! `PING_TIMEOUT` (ms) and `MAX_PAYLOAD` (bytes) override Node's defaults.

use std::sync::Arc;
use std::time::Duration;

use iolite_engine::{CloseReason, Data, Engine, EngineConfig, Handler, Socket};

struct Echo;

impl Handler for Echo {
    type Data = ();
    fn on_open(&self, _socket: &Arc<Socket<()>>) {}
    fn on_message(&self, socket: &Arc<Socket<()>>, data: Data) {
        let _ = match data {
            Data::Text(t) => socket.send_text(&t),
            Data::Binary(b) => socket.send_binary(b),
        };
    }
    fn on_close(&self, socket: &Arc<Socket<()>>, reason: CloseReason) {
        println!("closed {} {reason}", socket.sid());
    }
}

fn env_ms(name: &str) -> Option<Duration> {
    std::env::var(name)
        .ok()?
        .parse()
        .ok()
        .map(Duration::from_millis)
}

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let port: u16 = std::env::args()
        .nth(1)
        .and_then(|p| p.parse().ok())
        .unwrap_or(0);
    let mut config = EngineConfig::default();
    if let Some(d) = env_ms("PING_INTERVAL") {
        config.ping_interval = d;
    }
    if let Some(d) = env_ms("PING_TIMEOUT") {
        config.ping_timeout = d;
    }
    if let Some(n) = std::env::var("MAX_PAYLOAD")
        .ok()
        .and_then(|v| v.parse().ok())
    {
        config.max_payload = n;
    }
    let engine = Engine::new(config, Echo);
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port)).await?;
    println!("listening on {}", listener.local_addr()?.port());
    engine.serve(listener).await
}
