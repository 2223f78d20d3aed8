//! Every message from any client of the broadcast room reaches every client, including
//! its sender, and the page is served at `/`.

use std::time::Duration;

use iolite_ws::{ClientBuilder, Message};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

#[tokio::test]
async fn broadcast_reaches_every_client_and_page_is_served() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(iolite_server::broadcast::run(
        listener,
        std::future::pending(),
    ));

    let url = format!("ws://{addr}/ws");
    let mut clients = Vec::new();
    for _ in 0..3 {
        clients.push(ClientBuilder::new(url.clone()).connect().await.unwrap().0);
    }
    // Joining is asynchronous on the server; give the last upgrade a moment to register.
    tokio::time::sleep(Duration::from_millis(100)).await;
    clients[1].send(Message::text("hello room")).unwrap();
    for ws in &mut clients {
        let msg = tokio::time::timeout(Duration::from_secs(5), ws.recv())
            .await
            .unwrap();
        assert_eq!(msg.unwrap().unwrap(), Message::text("hello room"));
    }

    let mut tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
    tcp.write_all(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .await
        .unwrap();
    let mut page = String::new();
    tcp.read_to_string(&mut page).await.unwrap();
    assert!(page.starts_with("HTTP/1.1 200"), "{page}");
    assert!(page.contains("new WebSocket("));
}
