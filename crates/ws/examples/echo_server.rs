//! Echo server: sends every text or binary message back with its opcode. This is the
//! Autobahn testee (`scripts/autobahn server`), with permessage-deflate enabled.
//!
//! Usage: `echo_server [PORT]` (default 9001), listens on 127.0.0.1.

use std::sync::Arc;

use iolite_ws::{accept, Config, DeflateConfig, Limits, Message};

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let port: u16 = std::env::args()
        .nth(1)
        .and_then(|p| p.parse().ok())
        .unwrap_or(9001);
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port)).await?;
    let config = Arc::new(
        Config::default()
            .deflate(Some(DeflateConfig::default().compress_threshold(0)))
            .limits(Limits::default())
            // Autobahn checks exact event sequences; unsolicited pings would show up in them.
            .ping_interval(None),
    );
    eprintln!("echo_server listening on ws://127.0.0.1:{port}");
    loop {
        let (tcp, _) = listener.accept().await?;
        tcp.set_nodelay(true)?;
        let config = config.clone();
        tokio::spawn(async move {
            let Ok((mut ws, _)) = accept(tcp, config).await else {
                return;
            };
            while let Some(Ok(msg)) = ws.recv().await {
                if matches!(msg, Message::Text(_) | Message::Binary(_)) && ws.send(msg).is_err() {
                    break;
                }
            }
        });
    }
}
