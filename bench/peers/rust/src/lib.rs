//! What both peer servers share: the command line and the listening socket, the same as
//! iolite's `crates/bench/examples/bench_server.rs` (`--host`, a deep accept queue).

use std::net::SocketAddr;

use tokio::net::{TcpListener, TcpSocket};

/// `--host` (default 127.0.0.1) and `--port` (default: env `PORT`, else `default_port`).
pub fn host_port(default_port: u16) -> Result<(String, u16), String> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let value = |name: &str| match args.iter().position(|a| a == name) {
        None => Ok(None),
        Some(i) => args
            .get(i + 1)
            .cloned()
            .map(Some)
            .ok_or_else(|| format!("{name} needs a value")),
    };
    let host = value("--host")?.unwrap_or_else(|| "127.0.0.1".to_owned());
    let port = match value("--port")?.or_else(|| std::env::var("PORT").ok()) {
        None => default_port,
        Some(p) => p
            .parse()
            .map_err(|_| format!("port `{p}` is not a port number"))?,
    };
    Ok((host, port))
}

/// A listener with a backlog of 4096, as bench_server's: tokio's `bind` asks for 128, and a
/// burst of connects beyond that is dropped and retried by the client's TCP a second later.
pub async fn listen(host: &str, port: u16) -> std::io::Result<TcpListener> {
    let addr: SocketAddr = tokio::net::lookup_host((host, port))
        .await?
        .next()
        .ok_or_else(|| std::io::Error::other(format!("{host}: no address")))?;
    let socket = if addr.is_ipv4() {
        TcpSocket::new_v4()?
    } else {
        TcpSocket::new_v6()?
    };
    socket.set_reuseaddr(true)?;
    socket.bind(addr)?;
    socket.listen(4096)
}

/// Parses the command line and listens, or exits with usage (status 2).
pub async fn start(name: &str, default_port: u16) -> TcpListener {
    let (host, port) = match host_port(default_port) {
        Ok(v) => v,
        Err(e) => {
            eprintln!("{name}: {e}\nusage: {name} [--host 127.0.0.1] [--port {default_port}] (or env PORT)");
            std::process::exit(2);
        }
    };
    match listen(&host, port).await {
        Ok(l) => {
            println!("{name} pid {}", std::process::id());
            match l.local_addr() {
                Ok(a) => println!("listening on {a}"),
                Err(_) => println!("listening on {host}:{port}"),
            }
            l
        }
        Err(e) => {
            eprintln!("{name}: listening on {host}:{port}: {e}");
            std::process::exit(1);
        }
    }
}
