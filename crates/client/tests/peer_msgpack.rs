//! The msgpack parser (socket.io-msgpack-parser) against a real server using it.

mod common;

use common::*;
use iolite_client::{Binary, ConnectError, DisconnectReason, Lifecycle, Parser, Transport};
use serde_json::json;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn msgpack_events_acks_binary_and_namespaces() {
    let peer = Peer::start_with(&[("PARSER", "msgpack")]);
    for mode in MODES {
        let m = peer.builder(mode).parser(Parser::Msgpack).build().unwrap();
        let s = within(m.socket("/").connect()).await.unwrap();
        // Echo with ack, numbers and nested binary included.
        let ack = s
            .emit_with_ack(
                "echo",
                &(
                    "hi",
                    1.5,
                    -3,
                    json!({"k": [true, null]}),
                    vec![Binary::from(vec![1u8, 2]), Binary::from(vec![3u8])],
                ),
            )
            .unwrap();
        let back = within(ack).await.unwrap();
        assert_eq!(
            back.values()[..4],
            [
                json!("hi"),
                json!(1.5),
                json!(-3),
                json!({"k": [true, null]})
            ],
            "{mode:?}"
        );
        let bins: Vec<Binary> = back.arg(4).unwrap();
        assert_eq!(bins, [Binary::from(vec![1u8, 2]), Binary::from(vec![3u8])]);
        // Server-to-client event with its recovery offset, and ack.
        s.emit("echo", &(Binary::from(vec![9u8]),)).unwrap();
        let ev = next_event(&s).await;
        assert_eq!(ev.args.arg::<Binary>(0).unwrap().as_bytes(), [9]);
        assert!(ev.offset.is_some());
        s.on("question", |args, ack| {
            let n: u32 = args.arg(0).unwrap();
            ack.unwrap().send(&(n * 2,)).unwrap();
        });
        assert_eq!(
            call(&s, "ask-me", &(2000, 21)).await[0],
            json!({"response": [42]})
        );
        // Ordering.
        call(&s, "burst", &(200,)).await;
        for i in 0..200u32 {
            assert_eq!(next_event(&s).await.args.arg::<u32>(0).unwrap(), i);
        }
        // Namespaces and connect errors.
        let admin = within(
            m.socket("/admin")
                .auth(json!({"token": "secret"}))
                .connect(),
        )
        .await
        .unwrap();
        assert_eq!(
            call(&admin, "whoami", &()).await[0]["auth"],
            json!({"token": "secret"})
        );
        let refused = within(
            peer.builder(mode)
                .parser(Parser::Msgpack)
                .build()
                .unwrap()
                .socket("/admin")
                .connect(),
        )
        .await;
        assert_eq!(
            refused.unwrap_err(),
            ConnectError::Refused {
                message: "not authorized".into(),
                data: Some(json!({"reason": "bad token"}))
            }
        );
        s.disconnect();
        admin.disconnect();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn msgpack_recovery() {
    let peer = Peer::start_with(&[("PARSER", "msgpack")]);
    let m = peer
        .builder(&[Transport::WebSocket])
        .parser(Parser::Msgpack)
        .reconnection_delay(std::time::Duration::from_millis(300))
        .build()
        .unwrap();
    let a = within(m.socket("/").connect()).await.unwrap();
    let b = within(
        peer.builder(&[Transport::WebSocket])
            .parser(Parser::Msgpack)
            .build()
            .unwrap()
            .socket("/")
            .connect(),
    )
    .await
    .unwrap();
    call(&a, "join", &("r",)).await;
    b.emit("to-room", &("r", 0)).unwrap();
    assert_eq!(next_event(&a).await.args.arg::<u32>(0).unwrap(), 0);
    next_lifecycle(&a).await;
    a.emit("drop-transport", &()).unwrap();
    assert_eq!(
        next_lifecycle(&a).await,
        Lifecycle::Disconnect(DisconnectReason::TransportClose)
    );
    b.emit("to-room", &("r", 1)).unwrap();
    call(&b, "echo", &()).await;
    assert_eq!(
        next_lifecycle(&a).await,
        Lifecycle::Connect { recovered: true }
    );
    assert_eq!(next_event(&a).await.args.arg::<u32>(0).unwrap(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_parser_mismatch_fails_the_connection() {
    // A JSON client on a msgpack server: the server cannot read the text CONNECT and
    // closes the connection.
    let peer = Peer::start_with(&[("PARSER", "msgpack")]);
    let m = peer
        .builder(&[Transport::WebSocket])
        .reconnection(false)
        .build()
        .unwrap();
    let r = within(m.socket("/").connect()).await;
    assert_eq!(
        r.unwrap_err(),
        ConnectError::Transport("transport close".into())
    );
    // And the other way round: a msgpack client on a JSON server.
    let json_peer = Peer::start();
    let m = json_peer
        .builder(&[Transport::WebSocket])
        .parser(Parser::Msgpack)
        .reconnection(false)
        .build()
        .unwrap();
    let r = within(m.socket("/").connect()).await;
    assert_eq!(
        r.unwrap_err(),
        ConnectError::Transport("transport close".into())
    );
}
