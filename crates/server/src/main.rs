//! `iolite`: for now, a WebSocket broadcast server with a small page to try it.
//!
//! Every text or binary message from any client goes to every connected client, framed
//! once as a prepared message. `GET /` serves the page, WebSocket upgrades on `/ws`.
//! The full server (Socket.IO, chat, auth, TLS, metrics) replaces this in a later issue.
//!
//! Usage: `iolite [--port N]` (default 3000, or `IOLITE_PORT`), listens on 127.0.0.1.

use std::net::SocketAddr;

use anyhow::Context as _;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .init();
    let port = port_from_args()?;
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .with_context(|| format!("cannot listen on {addr}"))?;
    tracing::info!("iolite listening on http://{addr} (WebSocket broadcast on ws://{addr}/ws)");
    let shutdown = async {
        let _ = tokio::signal::ctrl_c().await;
        tracing::info!("shutting down");
    };
    iolite_server::broadcast::run(listener, shutdown).await
}

fn port_from_args() -> anyhow::Result<u16> {
    let mut args = std::env::args().skip(1);
    let mut port = match std::env::var("IOLITE_PORT") {
        Ok(p) => p.parse().context("IOLITE_PORT must be a port number")?,
        Err(_) => 3000,
    };
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--port" | "-p" => {
                port = args
                    .next()
                    .context("--port needs a value")?
                    .parse()
                    .context("--port must be a port number")?;
            }
            "--help" | "-h" => {
                println!("usage: iolite [--port N]\n\nServes a WebSocket broadcast room on ws://127.0.0.1:N/ws and a page to try it on http://127.0.0.1:N/ (default port 3000, or IOLITE_PORT).");
                std::process::exit(0);
            }
            other => anyhow::bail!("unknown argument {other:?} (try --help)"),
        }
    }
    Ok(port)
}
