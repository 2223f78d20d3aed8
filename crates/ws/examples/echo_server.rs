//! Echo server: sends every text or binary message back with its opcode. This is the
//! Autobahn testee (`scripts/autobahn server`), with permessage-deflate enabled.
//!
//! Usage: `echo_server [PORT] [--one-task]` (default port 9001), listens on 127.0.0.1.
//! `--one-task` serves each connection as a one-task `Connection` (`scripts/autobahn
//! server-one-task`) instead of a `WebSocket` with its writer task.

use std::sync::Arc;

use iolite_ws::{accept, accept_connection_with, Config, DeflateConfig, Limits, Message};

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let one_task = args.iter().any(|a| a == "--one-task");
    let port: u16 = args.iter().find_map(|p| p.parse().ok()).unwrap_or(9001);
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
        if one_task {
            tokio::spawn(async move {
                let Ok((mut conn, _)) = accept_connection_with(tcp, config, |_, _| Ok(None)).await
                else {
                    return;
                };
                while let Some(Ok(msg)) = conn.recv().await {
                    if matches!(msg, Message::Text(_) | Message::Binary(_))
                        && conn.send(msg).is_err()
                    {
                        break;
                    }
                }
            });
            continue;
        }
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
