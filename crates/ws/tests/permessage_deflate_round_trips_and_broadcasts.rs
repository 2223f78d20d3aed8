//! permessage-deflate end to end (RFC 7692): negotiated by `ClientBuilder::deflate` and a
//! server `Config` with deflate; large text round-trips intact, frames are compressed on
//! the wire, and a prepared broadcast reaches compressing and plain clients alike.

use std::time::Duration;

use iolite_test_support::harness::{echo, Server, PATIENCE};
use iolite_test_support::raw::{Event, RawClient};
use iolite_ws::{ClientBuilder, Config, DeflateConfig, Message, PreparedMessage};
use iolite_ws_proto::Inflater;

fn deflate_server() -> Config {
    Config::default().deflate(Some(DeflateConfig::default()))
}

/// 100 KiB of repetitive text.
fn big_text() -> String {
    let line = "iolite compresses repetitive text very well; ";
    let mut s = line.repeat((100 << 10) / line.len() + 1);
    s.truncate(100 << 10);
    s
}

async fn next_data(ws: &mut iolite_ws::WebSocket<iolite_ws::MaybeTlsStream>) -> Message {
    loop {
        match tokio::time::timeout(PATIENCE, ws.recv())
            .await
            .expect("a message within 5 s")
        {
            Some(Ok(Message::Ping(_) | Message::Pong(_))) => {}
            Some(Ok(m)) => return m,
            other => panic!("expected a message, got {other:?}"),
        }
    }
}

#[tokio::test]
async fn large_text_round_trips_with_deflate_on_both_ends() {
    let (server, mut taken) = Server::echo_and_hand_over(deflate_server()).await;
    let (mut ws, accepted) = ClientBuilder::new(format!("ws://{}/take", server.addr()))
        .deflate(DeflateConfig::default())
        .connect()
        .await
        .unwrap();
    assert!(accepted.deflate.is_some());
    assert!(ws.deflate().is_some(), "client side negotiated deflate");
    let server_ws = taken.recv().await.unwrap();
    assert!(
        server_ws.deflate().is_some(),
        "server side negotiated deflate"
    );
    tokio::spawn(echo(server_ws));

    let text = big_text();
    ws.send(Message::text(text.clone())).unwrap();
    assert_eq!(next_data(&mut ws).await, Message::text(text));
    // Several messages in a row: compressor and inflater states stay in step.
    for i in 0..5 {
        let msg = Message::text(format!("{i}: {}", "abc".repeat(200 * (i + 1))));
        ws.send(msg.clone()).unwrap();
        assert_eq!(next_data(&mut ws).await, msg);
    }
}

#[tokio::test]
async fn server_frames_are_compressed_on_the_wire() {
    let server = Server::echo(deflate_server()).await;
    let (mut raw, head) = RawClient::handshake_with(
        server.addr(),
        "/",
        "Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits\r\n",
    )
    .await
    .unwrap();
    assert!(
        head.contains("Sec-WebSocket-Extensions: permessage-deflate"),
        "{head}"
    );
    let text = big_text();
    raw.send_frame(&iolite_test_support::frames::FrameSpec::client(
        0x1,
        text.as_bytes(),
    ))
    .await
    .unwrap();
    match raw.next_event(PATIENCE).await.unwrap() {
        Event::Frame(f) => {
            assert!(f.rsv1, "RSV1 marks a compressed message");
            assert!(
                f.payload.len() < text.len() / 20,
                "{} bytes",
                f.payload.len()
            );
            let mut out = Vec::new();
            Inflater::new()
                .inflate(&f.payload, true, &mut out, 1 << 20)
                .unwrap();
            assert_eq!(&out[..], text.as_bytes());
        }
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn client_without_deflate_gets_plain_frames_from_a_deflate_server() {
    let (server, mut taken) = Server::echo_and_hand_over(deflate_server()).await;
    let (mut ws, accepted) = ClientBuilder::new(format!("ws://{}/take", server.addr()))
        .connect()
        .await
        .unwrap();
    assert!(accepted.deflate.is_none());
    assert!(ws.deflate().is_none());
    let server_ws = taken.recv().await.unwrap();
    assert!(server_ws.deflate().is_none());
    tokio::spawn(echo(server_ws));
    let text = big_text();
    ws.send(Message::text(text.clone())).unwrap();
    assert_eq!(next_data(&mut ws).await, Message::text(text));
}

#[tokio::test]
async fn prepared_broadcast_reaches_deflate_and_plain_clients() {
    let (server, mut taken) = Server::echo_and_hand_over(deflate_server()).await;
    let url = format!("ws://{}/take", server.addr());
    let mut clients = vec![];
    for deflate in [true, true, false] {
        let builder = ClientBuilder::new(url.clone());
        let builder = if deflate {
            builder.deflate(DeflateConfig::default())
        } else {
            builder
        };
        let (ws, _) = builder.connect().await.unwrap();
        assert_eq!(ws.deflate().is_some(), deflate);
        clients.push(ws);
    }
    // A raw client with deflate shows what goes over the wire.
    let (mut raw, _) = RawClient::handshake_with(
        server.addr(),
        "/take",
        "Sec-WebSocket-Extensions: permessage-deflate\r\n",
    )
    .await
    .unwrap();
    let mut senders = vec![];
    let mut receivers = vec![];
    for _ in 0..4 {
        let ws = tokio::time::timeout(PATIENCE, taken.recv())
            .await
            .unwrap()
            .unwrap();
        senders.push((ws.deflate().is_some(), ws.sender()));
        receivers.push(ws);
    }
    assert_eq!(senders.iter().filter(|(d, _)| *d).count(), 3);

    let text = big_text();
    let prepared = PreparedMessage::text(text.clone());
    for (_, s) in &senders {
        s.send_prepared(&prepared).unwrap();
    }
    for ws in &mut clients {
        assert_eq!(next_data(ws).await, Message::text(text.clone()));
    }
    match raw.next_event(Duration::from_secs(5)).await.unwrap() {
        Event::Frame(f) => {
            assert!(
                f.rsv1 && f.payload.len() < text.len() / 20,
                "compressed once, shared"
            );
            let mut out = Vec::new();
            Inflater::new()
                .inflate(&f.payload, true, &mut out, 1 << 20)
                .unwrap();
            assert_eq!(&out[..], text.as_bytes());
        }
        other => panic!("{other:?}"),
    }
    drop(receivers);
}
