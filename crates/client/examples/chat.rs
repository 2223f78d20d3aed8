//! Connects to a Socket.IO server, prints what it sends, and sends a line per stdin line.
//!
//! ```text
//! cargo run -p iolite-client --example chat -- http://127.0.0.1:3000
//! ```
//! Lines are emitted as `echo` with an ack; the answer and every event are printed.

use iolite_client::{Lifecycle, Manager};
use tokio::io::{AsyncBufReadExt, BufReader};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let url = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "http://127.0.0.1:3000".into());
    let manager = Manager::new(url)?;
    let socket = manager
        .socket("/")
        .on_any(|event| println!("< {} {}", event.name, event.args.to_json_lossy()))
        .on_lifecycle(|l| match l {
            Lifecycle::Connect { recovered } => println!("* connected (recovered: {recovered})"),
            Lifecycle::Disconnect(reason) => println!("* disconnected: {reason}"),
            Lifecycle::ConnectError(e) => println!("* connect error: {e}"),
        })
        .connect()
        .await?;
    println!("* id {:?} over {:?}", socket.id(), socket.transport());

    let mut lines = BufReader::new(tokio::io::stdin()).lines();
    while let Some(line) = lines.next_line().await? {
        match socket.emit_with_ack("echo", &(line,)) {
            Ok(ack) => match ack.await {
                Ok(answer) => println!("> ack {}", answer.to_json_lossy()),
                Err(e) => println!("> no ack: {e}"),
            },
            Err(e) => println!("> not sent: {e}"),
        }
    }
    socket.disconnect();
    Ok(())
}
