//! Transports, acks, binary and events against a real Socket.IO server.

mod common;

use std::time::Duration;

use common::*;
use iolite_client::{Binary, Transport};
use serde::{Deserialize, Serialize};
use serde_json::json;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn echo_with_ack_on_every_transport() {
    let peer = Peer::start();
    for mode in MODES {
        let s = peer.socket(mode).await;
        assert!(s.connected());
        assert!(s.id().is_some());
        let back = call(&s, "echo", &("hello", 1, json!({"a": [1.5, null, "€"]}))).await;
        assert_eq!(
            back,
            [json!("hello"), json!(1), json!({"a": [1.5, null, "€"]})],
            "{mode:?}"
        );
        // No ack: the server emits "echo" back.
        s.emit("echo", &("again", 2)).unwrap();
        let ev = next_event(&s).await;
        assert_eq!(ev.name, "echo");
        assert_eq!(
            ev.args.args::<(String, u32)>().unwrap(),
            ("again".into(), 2)
        );
        assert!(ev.ack.is_none());
        // The recovery offset the server appends is taken out of the arguments.
        assert!(ev.offset.is_some(), "{mode:?}");
        s.disconnect();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_transport_mode_is_what_the_server_sees() {
    let peer = Peer::start();
    let ws = peer.socket(&[Transport::WebSocket]).await;
    assert_eq!(ws.transport(), Some(Transport::WebSocket));
    assert_eq!(call(&ws, "whoami", &()).await[0]["transport"], "websocket");

    let polling = peer.socket(&[Transport::Polling]).await;
    assert_eq!(
        call(&polling, "whoami", &()).await[0]["transport"],
        "polling"
    );
    // A while later it still polls: polling-only never upgrades.
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(polling.transport(), Some(Transport::Polling));
    assert_eq!(
        call(&polling, "whoami", &()).await[0]["transport"],
        "polling"
    );

    // Polling with upgrades off stays on polling too.
    let m = peer
        .builder(&[Transport::Polling, Transport::WebSocket])
        .upgrade(false)
        .build()
        .unwrap();
    let s = within(m.socket("/").connect()).await.unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(call(&s, "whoami", &()).await[0]["transport"], "polling");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn upgrades_from_polling_to_websocket_without_losing_order() {
    let peer = Peer::start();
    let m = peer.manager(&[Transport::Polling, Transport::WebSocket]);
    let s = within(m.socket("/").connect()).await.unwrap();
    // Connected over polling first.
    let first = call(&s, "whoami", &()).await;
    let id = first[0]["id"].clone();
    // Emits keep flowing while the upgrade happens.
    for i in 0..300 {
        s.emit("echo", &(i,)).unwrap();
        if i % 50 == 0 {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }
    for i in 0..300 {
        let ev = next_event(&s).await;
        assert_eq!(
            (ev.name.as_str(), ev.args.arg::<u32>(0).unwrap()),
            ("echo", i)
        );
    }
    wait_transport(&m, Transport::WebSocket).await;
    let who = call(&s, "whoami", &()).await;
    assert_eq!(who[0]["transport"], "websocket");
    // Same Engine.IO session and Socket.IO socket: an upgrade, not a reconnection.
    assert_eq!(who[0]["id"], id);
    assert!(s
        .try_next_lifecycle()
        .is_some_and(|l| matches!(l, iolite_client::Lifecycle::Connect { .. })));
    assert_eq!(s.try_next_lifecycle(), None);
}

#[derive(Serialize, Deserialize, Debug, PartialEq)]
struct File {
    name: String,
    parts: Vec<Binary>,
    meta: Meta,
}

#[derive(Serialize, Deserialize, Debug, PartialEq)]
struct Meta {
    thumb: Option<Binary>,
    size: u32,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn binary_nested_both_ways() {
    let peer = Peer::start();
    for mode in MODES {
        let s = peer.socket(mode).await;
        let file = File {
            name: "f".into(),
            parts: vec![Binary::from(vec![0u8, 1, 2, 255]), Binary::from(Vec::new())],
            meta: Meta {
                thumb: Some(Binary::from(vec![7u8; 3000])),
                size: 3,
            },
        };
        // With an ack: the answer carries the same buffers.
        let ack = s
            .emit_with_ack("echo", &(&file, Binary::from(vec![9u8])))
            .unwrap();
        let answer = within(ack).await.unwrap();
        assert_eq!(answer.attachments().len(), 4, "{mode:?}");
        let (back, extra): (File, Binary) = answer.args().unwrap();
        assert_eq!(back, file);
        assert_eq!(extra.as_bytes(), [9]);
        assert_eq!(answer.binary(1).map(|b| b.to_vec()), Some(vec![9]));
        // Without an ack: a BINARY_EVENT from the server.
        s.emit("echo", &(&file,)).unwrap();
        let ev = next_event(&s).await;
        assert_eq!(ev.args.arg::<File>(0).unwrap(), file);
        // What the server received: a Buffer (it comes back as an attachment, where an
        // array of numbers would come back as JSON).
        s.emit("echo", &(Binary::from(vec![1u8, 2]),)).unwrap();
        next_event(&s).await;
        let last = within(s.emit_with_ack("last-any", &()).unwrap())
            .await
            .unwrap();
        assert_eq!(last.attachments().len(), 1);
        let (name, buf): (String, Binary) = last.arg(0).unwrap();
        assert_eq!((name.as_str(), buf.as_bytes()), ("echo", &[1u8, 2][..]));
        s.disconnect();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_to_client_acks() {
    let peer = Peer::start();
    for mode in MODES {
        let s = peer.socket(mode).await;
        s.on("question", |args, ack| {
            let ack = ack.expect("the server asks for an ack");
            let n: u32 = args.arg(0).unwrap();
            ack.send(&("answer", n + 1, Binary::from(vec![n as u8])))
                .unwrap();
        });
        let r = within(s.emit_with_ack("ask-me", &(2000, 41)).unwrap())
            .await
            .unwrap();
        assert_eq!(r.get(0).unwrap()["response"][0], "answer", "{mode:?}");
        assert_eq!(r.get(0).unwrap()["response"][1], 42);
        // The buffer of our answer reached the server as a Buffer and came back as one.
        assert_eq!(r.attachments(), [bytes::Bytes::from_static(&[41])]);

        // Not answering: the server's own timeout fires.
        s.off("question");
        let r = call(&s, "ask-me", &(100, 1)).await;
        assert_eq!(r[0], json!({"error": "operation has timed out"}));
        // The unanswered question reached the event queue, with its ack sender.
        let mut ev = next_event(&s).await;
        assert_eq!(ev.name, "question");
        assert!(ev.ack.is_some());
        assert_eq!(ev.offset, None, "events with an ack id carry no offset");
        // Answering late is harmless.
        assert!(ev.ack(&("late",)).unwrap());
        s.disconnect();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ack_timeout_and_disconnected_acks() {
    let peer = Peer::start();
    let s = peer.socket(&[Transport::WebSocket]).await;
    // Nobody on the server handles this event, so no answer ever comes.
    let started = std::time::Instant::now();
    let r = within(
        s.emit_with_ack_timeout("nobody-listens", &(1,), Duration::from_millis(150))
            .unwrap(),
    )
    .await;
    assert!(matches!(r, Err(iolite_client::AckError::Timeout)), "{r:?}");
    assert!(started.elapsed() >= Duration::from_millis(150));
    // A pending ack fails when the socket disconnects.
    let pending = s.emit_with_ack("nobody-listens", &()).unwrap();
    s.disconnect();
    let r = within(pending).await;
    assert!(
        matches!(r, Err(iolite_client::AckError::Disconnected)),
        "{r:?}"
    );

    // The manager-wide default timeout.
    let m = peer
        .builder(&[Transport::WebSocket])
        .ack_timeout(Some(Duration::from_millis(100)))
        .build()
        .unwrap();
    let s = within(m.socket("/").connect()).await.unwrap();
    let r = within(s.emit_with_ack("nobody-listens", &()).unwrap()).await;
    assert!(matches!(r, Err(iolite_client::AckError::Timeout)), "{r:?}");
    // ...which an answered emit does not hit.
    assert_eq!(call(&s, "echo", &(5,)).await, [json!(5)]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn burst_of_1000_arrives_in_order() {
    let peer = Peer::start();
    for mode in MODES {
        let s = peer.socket(mode).await;
        let ack = s.emit_with_ack("burst", &(1000,)).unwrap();
        for i in 0..1000u32 {
            let ev = next_event(&s).await;
            assert_eq!(ev.name, "seq");
            assert_eq!(ev.args.len(), 1);
            assert_eq!(ev.args.arg::<u32>(0).unwrap(), i, "{mode:?}");
        }
        within(ack).await.unwrap();
        assert!(s.try_next_event().is_none());
        s.disconnect();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn catch_all_and_named_handlers() {
    let peer = Peer::start();
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let (tx2, mut rx2) = tokio::sync::mpsc::unbounded_channel();
    let m = peer.manager(&[Transport::WebSocket]);
    let s = within(
        m.socket("/")
            .on("seq", move |args, _| {
                let _ = tx2.send(args.arg::<u32>(0).unwrap());
            })
            .on_any(move |ev| {
                let _ = tx.send((ev.name, ev.args.values().to_vec()));
            })
            .connect(),
    )
    .await
    .unwrap();
    s.emit("echo", &("x",)).unwrap();
    let (name, args) = within(rx.recv()).await.unwrap();
    assert_eq!((name.as_str(), args), ("echo", vec![json!("x")]));
    call(&s, "burst", &(3,)).await;
    for i in 0..3 {
        assert_eq!(within(rx2.recv()).await, Some(i));
    }
    // Handlers took everything: nothing reached the queue.
    assert!(s.try_next_event().is_none());
    // Without the catch-all, events queue up.
    s.off_any();
    s.emit("echo", &("y",)).unwrap();
    assert_eq!(next_event(&s).await.args.arg::<String>(0).unwrap(), "y");
}
