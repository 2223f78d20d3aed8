//! Emitters reach a cluster of iolite nodes and a Node.js socket.io node on one real
//! `redis-server`: Node's @socket.io/redis-emitter 5.x (tests/redis/emitter-node.mjs) and
//! iolite-redis's `Emitter` run the same commands, and iolite-client clients of every node
//! get what they must, and nothing else.

#![allow(clippy::unwrap_used)] // test code: a failure is the test failing

mod common;

use std::time::Duration;

use common::*;
use iolite::SocketRef;
use iolite_client::{Manager, Socket, Transport};
use serde_json::json;

/// A client of namespace `nsp` with `auth: {name, rooms}`.
async fn client_of(url: &str, nsp: &str, name: &str, rooms: &[&str]) -> Socket {
    let m = Manager::builder(url)
        .transports([Transport::WebSocket])
        .reconnection(false)
        .timeout(Duration::from_secs(5))
        .build()
        .unwrap();
    within(
        m.socket(nsp)
            .auth(json!({"name": name, "rooms": rooms}))
            .connect(),
    )
    .await
    .unwrap()
}

/// An `/admin` namespace on an iolite node (with the same adapter), joining `auth.rooms`.
async fn admin_ns(node: &IoNode) {
    node.io.ns("/admin", |socket: SocketRef| async move {
        let auth = socket.handshake().auth().clone();
        for r in auth["rooms"].as_array().cloned().unwrap_or_default() {
            socket.join(r.as_str().unwrap().to_owned());
        }
    });
    within(node.redis.ready()).await;
}

/// The next event must be `marker` (nothing the client must not get came before it).
async fn marker_next(s: &Socket, marker: &str) {
    let (name, args) = next(s).await;
    assert_eq!(name, marker, "an event came before the marker: {args:?}");
}

async fn scenario(node_emitter: bool) {
    let redis = RedisServer::start();
    let mut emitter = if node_emitter {
        EmitterPeer::node(&redis).await
    } else {
        EmitterPeer::rust(&redis)
    };
    let mut node = NodePeer::start(&redis, 5000).await;
    let mut a = IoNode::start(&redis, "a").await;
    let mut b = IoNode::start(&redis, "b").await;
    admin_ns(&a).await;
    admin_ns(&b).await;

    let a1 = client(&a.url(), "a1", &["r"]).await;
    let a2 = client(&a.url(), "a2", &["r", "muted"]).await;
    let b1 = client(&b.url(), "b1", &["r", "kick"]).await;
    let b2 = client(&b.url(), "b2", &[]).await;
    let n1 = client(&node.url(), "n1", &["r"]).await;
    let n2 = client(&node.url(), "n2", &["kick"]).await;
    let ad1 = client_of(&a.url(), "/admin", "ad1", &["staff"]).await;
    let ad2 = client_of(&b.url(), "/admin", "ad2", &[]).await;
    let root = [&a1, &a2, &b1, &b2, &n1, &n2];
    // Each node has its sockets (joined their rooms) before anything is emitted.
    for _ in 0..2 {
        a.next_socket().await;
        b.next_socket().await;
    }
    node.event("connection").await;
    node.event("connection").await;

    // To everyone, binary included.
    emitter
        .run(json!({"op": "emit", "event": "all", "args": ["x", {"$bin": "0a0b"}, {"n": 1.5}]}))
        .await;
    for s in root {
        let ev = within(s.next_event()).await.unwrap();
        assert_eq!(ev.name, "all");
        assert_eq!(ev.args.get(0), Some(&json!("x")));
        assert_eq!(ev.args.binary(1).map(|b| &b[..]), Some(&[0x0a, 0x0b][..]));
        assert_eq!(ev.args.get(2), Some(&json!({"n": 1.5})));
    }

    // One room (its own channel) but not another, volatile.
    emitter
        .run(json!({"op": "emit", "to": ["r"], "except": ["muted"], "flags": ["volatile"], "event": "r", "args": [1]}))
        .await;
    emitter
        .run(json!({"op": "emit", "event": "m1", "args": []}))
        .await;
    for s in [&a1, &b1, &n1] {
        assert_eq!(expect(s, "r").await, vec![json!(1)]);
    }
    for s in root {
        marker_next(s, "m1").await;
    }

    // Two rooms (the namespace channel).
    emitter
        .run(json!({"op": "emit", "to": ["muted", "kick"], "event": "two", "args": []}))
        .await;
    emitter
        .run(json!({"op": "emit", "event": "m2", "args": []}))
        .await;
    for s in [&a2, &b1, &n2] {
        expect(s, "two").await;
    }
    for s in root {
        marker_next(s, "m2").await;
    }

    // Another namespace: only its clients, on both iolite nodes; a room in it.
    emitter
        .run(json!({"op": "emit", "nsp": "/admin", "event": "adm", "args": ["all"]}))
        .await;
    emitter
        .run(json!({"op": "emit", "nsp": "admin", "to": ["staff"], "event": "adm", "args": ["staff"]}))
        .await;
    emitter
        .run(json!({"op": "emit", "event": "m3", "args": []}))
        .await;
    emitter
        .run(json!({"op": "emit", "nsp": "/admin", "event": "m3", "args": []}))
        .await;
    assert_eq!(expect(&ad1, "adm").await, vec![json!("all")]);
    assert_eq!(expect(&ad1, "adm").await, vec![json!("staff")]);
    assert_eq!(expect(&ad2, "adm").await, vec![json!("all")]);
    for s in root.into_iter().chain([&ad1, &ad2]) {
        marker_next(s, "m3").await;
    }

    // One socket, by its id room: on an iolite node and on the Node node.
    let b2_id = b2.id().unwrap();
    let n2_id = n2.id().unwrap();
    emitter
        .run(json!({"op": "emit", "to": [b2_id], "event": "direct", "args": ["b2"]}))
        .await;
    emitter
        .run(json!({"op": "emit", "to": [n2_id], "event": "direct", "args": ["n2"]}))
        .await;
    emitter
        .run(json!({"op": "emit", "event": "m4", "args": []}))
        .await;
    assert_eq!(expect(&b2, "direct").await, vec![json!("b2")]);
    assert_eq!(expect(&n2, "direct").await, vec![json!("n2")]);
    for s in root {
        marker_next(s, "m4").await;
    }

    // socketsJoin, then a broadcast to the new room.
    emitter
        .run(json!({"op": "socketsJoin", "to": ["r"], "rooms": ["joined", "j2"]}))
        .await;
    emitter
        .run(json!({"op": "emit", "to": ["joined"], "event": "j", "args": []}))
        .await;
    emitter
        .run(json!({"op": "emit", "event": "m5", "args": []}))
        .await;
    for s in [&a1, &a2, &b1, &n1] {
        expect(s, "j").await;
    }
    for s in root {
        marker_next(s, "m5").await;
    }
    let rooms = node.ok("localSockets", json!({})).await;
    let n1_rooms = rooms
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["id"] == json!(n1.id().unwrap()))
        .unwrap()["rooms"]
        .clone();
    assert!(
        n1_rooms.as_array().unwrap().contains(&json!("j2")),
        "{n1_rooms}"
    );

    // socketsLeave, but not for the muted.
    emitter
        .run(
            json!({"op": "socketsLeave", "to": ["joined"], "except": ["muted"], "rooms": "joined"}),
        )
        .await;
    emitter
        .run(json!({"op": "emit", "to": ["joined"], "event": "j", "args": []}))
        .await;
    emitter
        .run(json!({"op": "emit", "event": "m6", "args": []}))
        .await;
    expect(&a2, "j").await;
    for s in root {
        marker_next(s, "m6").await;
    }

    // serverSideEmit: every node's handlers.
    emitter
        .run(json!({"op": "serverSideEmit", "event": "sse", "args": ["hi", {"n": 1}]}))
        .await;
    for n in [&mut a, &mut b] {
        assert_eq!(
            n.next_server_side().await,
            ("sse".to_owned(), vec![json!("hi"), json!({"n": 1})])
        );
    }
    let ev = node.event("serverSide").await;
    assert_eq!(ev["name"], "sse");
    assert_eq!(ev["args"], json!(["hi", {"n": 1}]));
    assert_eq!(ev["withAck"], json!(false));

    // disconnectSockets of a room, on every node.
    emitter
        .run(json!({"op": "disconnectSockets", "to": ["kick"], "close": false}))
        .await;
    emitter
        .run(json!({"op": "emit", "event": "m7", "args": []}))
        .await;
    for s in [&b1, &n2] {
        assert_eq!(disconnected(s).await, "io server disconnect");
    }
    for s in [&a1, &a2, &b2, &n1] {
        marker_next(s, "m7").await;
    }
    eventually(|| {
        let io = a.io.clone();
        async move { io.fetch_sockets().await.map(|s| s.len()).unwrap_or(0) == 4 }
    })
    .await;

    // Nothing the nodes got was unreadable.
    for n in [&a, &b] {
        assert_eq!(n.redis.stats().malformed(), 0);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn node_emitter_reaches_iolite_and_node_clients() {
    scenario(true).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rust_emitter_reaches_iolite_and_node_clients() {
    scenario(false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn emitter_without_redis_reports_failures() {
    // A port nothing listens on.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let client =
        iolite_redis::RedisClient::with_options(&format!("redis://127.0.0.1:{port}/"), fast())
            .unwrap();
    let emitter = iolite_redis::Emitter::new(&client, "socket.io");
    // Queued before the first attempt, then failed with it.
    let _ = emitter.emit("e", vec![json!(1)]);
    assert!(within(emitter.flush()).await.is_err());
    assert!(matches!(
        emitter.to("r").emit("e", vec![]),
        Err(iolite_redis::EmitterError::Unavailable(_))
    ));
    assert!(emitter.server_side_emit("e", vec![]).is_err());
    assert!(client.stats().publish_failures() >= 2);
    assert!(matches!(
        emitter.emit("disconnect", vec![]),
        Err(iolite_redis::EmitterError::Reserved(_))
    ));
}
