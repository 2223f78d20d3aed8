//! iolite nodes and a Node.js socket.io 4.8 node (@socket.io/redis-adapter 8.3.0) on one real
//! `redis-server` form one cluster: everything the adapter carries crosses both ways.
//!
//! Each test starts its own `redis-server`, its own iolite nodes (in this process) and, where
//! it needs one, its own Node node (tests/redis/node-node.mjs); clients are iolite-client
//! over WebSocket.

#![allow(clippy::unwrap_used)] // test code: a failure is the test failing

mod common;

use std::time::{Duration, Instant};

use bytes::Bytes;
use common::*;
use iolite::{AckError, AdapterError};
use iolite_client::{Binary, Socket};
use iolite_redis::AdapterOptions;
use serde_json::{json, Value};

/// Waits until every node sees `n` nodes.
async fn cluster_of(n: usize, io: &[&IoNode], node: Option<&mut NodePeer>) {
    for a in io {
        let ns = a.io.root_ns();
        eventually(|| {
            let ns = ns.clone();
            async move { ns.server_count().await == n }
        })
        .await;
    }
    if let Some(node) = node {
        within(async {
            while node.ok("serverCount", json!({})).await != json!(n) {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        })
        .await;
    }
}

/// After a broadcast some clients must not get: the next broadcast (published later by the
/// same node, so delivered later) is what they get next.
async fn gets_marker_next(s: &Socket, marker: &str) {
    let (name, _) = next(s).await;
    assert_eq!(name, marker, "an event arrived before the marker");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn broadcasts_rooms_except_and_local_cross_both_ways() {
    let redis = RedisServer::start();
    let mut node = NodePeer::start(&redis, 5000).await;
    let a = IoNode::start(&redis, "a").await;
    // Three iolite nodes and one Node.js node, clients spread over all four.
    let b = IoNode::start(&redis, "b").await;
    let c = IoNode::start(&redis, "c").await;
    cluster_of(4, &[&a, &b, &c], Some(&mut node)).await;

    let a1 = client(&a.url(), "a1", &["r"]).await;
    let a2 = client(&a.url(), "a2", &["r", "muted"]).await;
    let a3 = client(&a.url(), "a3", &[]).await;
    let n1 = client(&node.url(), "n1", &["r"]).await;
    let n2 = client(&node.url(), "n2", &["r", "muted"]).await;
    let n3 = client(&node.url(), "n3", &[]).await;
    let b1 = client(&b.url(), "b1", &["r"]).await;
    let c1 = client(&c.url(), "c1", &["r", "muted"]).await;
    let all = [&a1, &a2, &a3, &n1, &n2, &n3, &b1, &c1];

    // Node to everyone, binary included.
    node.ok(
        "emit",
        json!({"event": "hello", "args": ["from node", {"$bin": "0a0b"}, {"n": 1.5}]}),
    )
    .await;
    for s in all {
        let ev = within(s.next_event()).await.unwrap();
        assert_eq!(ev.name, "hello");
        assert_eq!(ev.args.get(0), Some(&json!("from node")));
        assert_eq!(ev.args.binary(1).map(|b| &b[..]), Some(&[0x0a, 0x0b][..]));
        assert_eq!(ev.args.get(2), Some(&json!({"n": 1.5})));
    }

    // iolite to everyone, binary included.
    a.io.broadcast()
        .bin(vec![Bytes::from_static(b"\x01\x02\x03")])
        .emit_args(
            "from-io",
            vec![
                json!("x"),
                json!({"file": {"_placeholder": true, "num": 0}}),
            ],
        )
        .unwrap();
    for s in all {
        let ev = within(s.next_event()).await.unwrap();
        assert_eq!(ev.name, "from-io");
        assert_eq!(ev.args.get(0), Some(&json!("x")));
        let file = ev.args.values()[1]["file"].clone();
        let atts = ev.args.attachments();
        assert_eq!(
            iolite::parser::binary::attachment(&file, atts).map(|b| &b[..]),
            Some(&[1, 2, 3][..])
        );
    }

    // One room (its own channel) minus another, from Node.
    node.ok(
        "emit",
        json!({"room": "r", "except": "muted", "event": "r-node", "args": [1]}),
    )
    .await;
    node.ok("emit", json!({"event": "m1", "args": []})).await;
    assert_eq!(expect(&a1, "r-node").await, vec![json!(1)]);
    assert_eq!(expect(&n1, "r-node").await, vec![json!(1)]);
    assert_eq!(expect(&b1, "r-node").await, vec![json!(1)]);
    for s in all {
        gets_marker_next(s, "m1").await;
    }

    // The same from iolite.
    a.io.to("r").except("muted").emit("r-io", &2).unwrap();
    a.io.emit("m2", &()).unwrap();
    assert_eq!(expect(&a1, "r-io").await, vec![json!(2)]);
    assert_eq!(expect(&n1, "r-io").await, vec![json!(2)]);
    assert_eq!(expect(&b1, "r-io").await, vec![json!(2)]);
    for s in all {
        gets_marker_next(s, "m2").await;
    }

    // Two rooms go on the namespace channel.
    a.io.to("muted").to("nobody").emit("two-rooms", &3).unwrap();
    a.io.emit("m3", &()).unwrap();
    for s in [&a2, &n2, &c1] {
        assert_eq!(expect(s, "two-rooms").await, vec![json!(3)]);
    }
    for s in all {
        gets_marker_next(s, "m3").await;
    }

    // `local` stays on its node, both ways.
    a.io.broadcast().local().emit("local-io", &4).unwrap();
    node.ok(
        "emit",
        json!({"local": true, "event": "local-node", "args": [5]}),
    )
    .await;
    a.io.emit("m4", &()).unwrap();
    for s in [&a1, &a2, &a3] {
        assert_eq!(expect(s, "local-io").await, vec![json!(4)]);
        gets_marker_next(s, "m4").await;
    }
    for s in [&n1, &n2, &n3] {
        assert_eq!(expect(s, "local-node").await, vec![json!(5)]);
        gets_marker_next(s, "m4").await;
    }
    for s in [&b1, &c1] {
        gets_marker_next(s, "m4").await;
    }

    // socket.broadcast (except the sender's own room) from an iolite socket.
    let mut a = a;
    let a4 = client(&a.url(), "a4", &[]).await;
    let sender = loop {
        // a1..a3 connected first.
        let s = a.next_socket().await;
        if s.handshake().auth()["name"] == "a4" {
            break s;
        }
    };
    sender.broadcast().emit("not-me", &6).unwrap();
    sender.emit("only-me", &7).unwrap();
    assert_eq!(expect(&n3, "not-me").await, vec![json!(6)]);
    assert_eq!(expect(&a1, "not-me").await, vec![json!(6)]);
    assert_eq!(expect(&a4, "only-me").await, vec![json!(7)]);
}

/// Answers every "q" the client gets: its name, or (binary) two bytes.
fn answer_acks(s: &Socket, name: &'static str, binary: bool) {
    let s = s.clone();
    tokio::spawn(async move {
        while let Some(mut ev) = s.next_event().await {
            if ev.name == "q" {
                if binary {
                    let _ = ev.ack(&(Binary::from(vec![0xbe, 0xef]),));
                } else {
                    let _ = ev.ack(&(json!({"name": name, "got": ev.args.values()}),));
                }
            }
        }
    });
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acks_from_many_clients_across_both() {
    let redis = RedisServer::start();
    let mut node = NodePeer::start(&redis, 5000).await;
    let a = IoNode::start(&redis, "a").await;
    let b = IoNode::start(&redis, "b").await;
    cluster_of(3, &[&a, &b], Some(&mut node)).await;
    let clients = [
        (client(&a.url(), "a1", &[]).await, "a1", false),
        (client(&a.url(), "a2", &["q"]).await, "a2", false),
        (client(&b.url(), "b1", &["q"]).await, "b1", false),
        (client(&node.url(), "n1", &["q"]).await, "n1", false),
        (client(&node.url(), "n2", &["q"]).await, "n2", true),
    ];
    for (s, name, bin) in &clients {
        answer_acks(s, name, *bin);
    }

    // From iolite: every client on every node.
    let stream =
        a.io.broadcast()
            .timeout(Duration::from_secs(3))
            .emit_with_ack("q", &1)
            .unwrap();
    let got = within(stream.collect()).await.unwrap();
    let mut names: Vec<String> = Vec::new();
    for r in &got {
        match r.first() {
            v if !iolite::parser::binary::is_placeholder(&v) => {
                names.push(v["name"].as_str().unwrap().to_owned())
            }
            placeholder => {
                // The binary answer from a Node client, as a placeholder + attachment.
                let bin = iolite::parser::binary::attachment(&placeholder, &r.attachments).unwrap();
                assert_eq!(&bin[..], &[0xbe, 0xef]);
                names.push("n2".into());
            }
        }
    }
    names.sort();
    assert_eq!(names, ["a1", "a2", "b1", "n1", "n2"]);

    // From Node, to one room.
    let r = node
        .ok(
            "emitWithAck",
            json!({"room": "q", "event": "q", "args": [2], "timeout": 3000}),
        )
        .await;
    assert_eq!(r["err"], Value::Null, "{r}");
    let mut names: Vec<String> = r["responses"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| match v.get("name") {
            Some(n) => n.as_str().unwrap().to_owned(),
            None => {
                assert_eq!(v, &json!({"$bin": "beef"}));
                "n2".into()
            }
        })
        .collect();
    names.sort();
    assert_eq!(names, ["a2", "b1", "n1", "n2"]);
    // The iolite clients got Node's arguments.
    let a2 = r["responses"]
        .as_array()
        .unwrap()
        .iter()
        .find(|v| v["name"] == "a2")
        .unwrap();
    assert_eq!(a2["got"], json!([2]));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fetch_sockets_on_each_side_sees_both() {
    let redis = RedisServer::start();
    let mut node = NodePeer::start(&redis, 5000).await;
    // Answers go to the asking node's own response channel, which Node listens on too.
    let opts = AdapterOptions {
        publish_on_specific_response_channel: true,
        ..Default::default()
    };
    let mut a = IoNode::start_with(&redis, "a", opts).await;
    cluster_of(2, &[&a], Some(&mut node)).await;
    let _a1 = client(&a.url(), "a1", &["team"]).await;
    let a1s = a.next_socket().await;
    let _a2 = client(&a.url(), "a2", &[]).await;
    let _n1 = client(&node.url(), "n1", &["team"]).await;
    let n1_id = node.event("connection").await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let _n2 = client(&node.url(), "n2", &[]).await;

    // From iolite.
    let all = a.io.fetch_sockets().await.unwrap();
    assert_eq!(all.len(), 4);
    let team = a.io.to("team").fetch_sockets().await.unwrap();
    let mut ids: Vec<String> = team.iter().map(|s| s.id().to_string()).collect();
    ids.sort();
    let mut want = vec![a1s.id().to_string(), n1_id.clone()];
    want.sort();
    assert_eq!(ids, want);
    let n1 = team.iter().find(|s| s.id().as_str() == n1_id).unwrap();
    assert!(n1.local().is_none());
    assert_eq!(n1.data_value(), &json!({"node": "node", "name": "n1"}));
    assert!(n1.rooms().iter().any(|r| &**r == "team"));
    assert!(n1.rooms().iter().any(|r| **r == *n1_id));
    assert_eq!(n1.handshake().auth()["name"], "n1");
    assert_eq!(
        n1.handshake().query("transport").as_deref(),
        Some("websocket")
    );
    let except =
        a.io.to("team")
            .except(n1_id.clone())
            .fetch_sockets()
            .await
            .unwrap();
    assert_eq!(except.len(), 1);
    assert_eq!(except[0].id(), a1s.id());

    // From Node.
    let found = node.ok("fetchSockets", json!({"room": "team"})).await;
    let found = found.as_array().unwrap();
    assert_eq!(found.len(), 2, "{found:?}");
    let a1 = found.iter().find(|s| s["id"] == a1s.id().as_str()).unwrap();
    assert_eq!(a1["data"], json!({"node": "a", "name": "a1"}));
    assert_eq!(a1["auth"], json!({"name": "a1", "rooms": ["team"]}));
    assert!(a1["url"].as_str().unwrap().starts_with("/socket.io/?"));
    let mut rooms: Vec<&str> = a1["rooms"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r.as_str().unwrap())
        .collect();
    rooms.sort();
    let mut want = vec![a1s.id().to_string(), "team".to_owned()];
    want.sort();
    assert_eq!(rooms, want);
    let everyone = node.ok("fetchSockets", json!({})).await;
    assert_eq!(everyone.as_array().unwrap().len(), 4);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn remote_join_leave_disconnect_both_ways() {
    let redis = RedisServer::start();
    let mut node = NodePeer::start(&redis, 5000).await;
    let mut a = IoNode::start(&redis, "a").await;
    cluster_of(2, &[&a], Some(&mut node)).await;
    let a1 = client(&a.url(), "a1", &["r"]).await;
    let a1s = a.next_socket().await;
    let n1 = client(&node.url(), "n1", &["r"]).await;
    let n1_id = node.event("connection").await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let has_room = |s: &iolite::SocketRef, room: &str| s.rooms().iter().any(|r| &**r == room);
    let node_rooms = |v: Value, id: &str| -> Vec<String> {
        v.as_array()
            .unwrap()
            .iter()
            .find(|s| s["id"] == id)
            .map(|s| {
                s["rooms"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|r| r.as_str().unwrap().to_owned())
                    .collect()
            })
            .unwrap_or_default()
    };

    // Node makes the sockets in "r" join "j": the iolite socket joins.
    node.ok("socketsJoin", json!({"room": "r", "join": "j"}))
        .await;
    eventually(|| {
        let ok = has_room(&a1s, "j");
        async move { ok }
    })
    .await;
    // iolite makes them join "k": the Node socket joins (and the iolite one at once).
    a.io.to("r").join("k").unwrap();
    assert!(has_room(&a1s, "k"));
    within(async {
        while !node_rooms(node.ok("localSockets", json!({})).await, &n1_id)
            .contains(&"k".to_owned())
        {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await;
    // Leaves, both ways.
    a.io.broadcast().leave("j").unwrap();
    node.ok("socketsLeave", json!({"leave": "k"})).await;
    eventually(|| {
        let ok = !has_room(&a1s, "k") && !has_room(&a1s, "j");
        async move { ok }
    })
    .await;
    within(async {
        loop {
            let rooms = node_rooms(node.ok("localSockets", json!({})).await, &n1_id);
            if !rooms.contains(&"j".to_owned()) && !rooms.contains(&"k".to_owned()) {
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await;

    // RemoteSocket from iolite on the Node socket: join, then a room emit reaches it.
    let remote =
        a.io.fetch_sockets()
            .await
            .unwrap()
            .into_iter()
            .find(|s| s.id().as_str() == n1_id)
            .unwrap();
    remote.join("solo").unwrap();
    within(async {
        while !node_rooms(node.ok("localSockets", json!({})).await, &n1_id)
            .contains(&"solo".to_owned())
        {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await;
    remote.emit("direct", &"hi").unwrap();
    assert_eq!(expect(&n1, "direct").await, vec![json!("hi")]);
    // And Node's RemoteSocket on the iolite one.
    node.ok(
        "remote",
        json!({"sid": a1s.id().as_str(), "action": "join", "room": "node-solo"}),
    )
    .await;
    eventually(|| {
        let ok = has_room(&a1s, "node-solo");
        async move { ok }
    })
    .await;
    node.ok(
        "remote",
        json!({"sid": a1s.id().as_str(), "action": "emit", "event": "direct", "args": ["yo"]}),
    )
    .await;
    assert_eq!(expect(&a1, "direct").await, vec![json!("yo")]);

    // Disconnects: Node's disconnectSockets reaches the iolite client...
    node.ok(
        "disconnectSockets",
        json!({"room": "node-solo", "close": false}),
    )
    .await;
    assert_eq!(disconnected(&a1).await, "io server disconnect");
    // ...and iolite's reaches the Node client.
    remote.disconnect(false).unwrap();
    assert_eq!(disconnected(&n1).await, "io server disconnect");
    eventually(|| {
        let n = a.io.sockets().len();
        async move { n == 0 }
    })
    .await;
    assert_eq!(node.ok("localSockets", json!({})).await, json!([]));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_side_emits_rooms_and_server_count() {
    let redis = RedisServer::start();
    let mut node = NodePeer::start(&redis, 5000).await;
    let mut a = IoNode::start(&redis, "a").await;
    let mut b = IoNode::start(&redis, "b").await;
    cluster_of(3, &[&a, &b], Some(&mut node)).await;

    // iolite → Node and the other iolite node; not to itself.
    a.io.root_ns()
        .server_side_emit("sse", vec![json!(1), json!("x")])
        .unwrap();
    let ev = node.event("serverSide").await;
    assert_eq!(ev["name"], "sse");
    assert_eq!(ev["args"], json!([1, "x"]));
    assert_eq!(ev["withAck"], false);
    assert_eq!(
        b.next_server_side().await,
        ("sse".into(), vec![json!(1), json!("x")])
    );
    assert!(a.server_side.try_recv().is_err());

    // With answers.
    let mut answers =
        a.io.root_ns()
            .server_side_emit_with_ack("who", vec![json!(7)], Duration::from_secs(3))
            .await
            .unwrap();
    answers.sort_by_key(|v| v["node"].as_str().unwrap().to_owned());
    assert_eq!(
        answers,
        vec![
            json!({"node": "b", "args": [7]}),
            json!({"node": "node", "args": [7]})
        ]
    );
    assert_eq!(node.event("serverSide").await["withAck"], true);
    assert_eq!(b.next_server_side().await.0, "who");

    // Node → both iolite nodes.
    node.ok(
        "serverSideEmit",
        json!({"event": "sse", "args": [2, {"k": null}]}),
    )
    .await;
    for n in [&mut a, &mut b] {
        assert_eq!(
            n.next_server_side().await,
            ("sse".into(), vec![json!(2), json!({"k": null})])
        );
    }
    let r = node
        .ok(
            "serverSideEmitWithAck",
            json!({"event": "who", "args": [3]}),
        )
        .await;
    assert_eq!(r["err"], Value::Null, "{r}");
    let mut got: Vec<Value> = r["responses"].as_array().unwrap().clone();
    got.sort_by_key(|v| v["node"].as_str().unwrap().to_owned());
    assert_eq!(
        got,
        vec![
            json!({"node": "a", "args": [3]}),
            json!({"node": "b", "args": [3]})
        ]
    );

    // Rooms of every node, both ways.
    let _a1 = client(&a.url(), "a1", &["room-a"]).await;
    let _n1 = client(&node.url(), "n1", &["room-n"]).await;
    node.event("connection").await;
    let rooms = a.io.root_ns().adapter().all_rooms().await.unwrap();
    assert!(rooms.iter().any(|r| &**r == "room-a"), "{rooms:?}");
    assert!(rooms.iter().any(|r| &**r == "room-n"), "{rooms:?}");
    let rooms = node.ok("allRooms", json!({})).await;
    assert!(
        rooms.as_array().unwrap().contains(&json!("room-a")),
        "{rooms}"
    );
    assert!(
        rooms.as_array().unwrap().contains(&json!("room-n")),
        "{rooms}"
    );

    // A node leaving is counted out.
    b.redis.close();
    cluster_of(2, &[&a], Some(&mut node)).await;
    assert!(b.io.root_ns().server_side_emit("sse", vec![]).is_err());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_that_stops_answering_does_not_stall_requests() {
    let redis = RedisServer::start();
    let mut node = NodePeer::start(&redis, 5000).await;
    let opts = AdapterOptions {
        requests_timeout: Duration::from_millis(500),
        ..Default::default()
    };
    let a = IoNode::start_with(&redis, "a", opts).await;
    cluster_of(2, &[&a], Some(&mut node)).await;
    let a1 = client(&a.url(), "a1", &[]).await;
    answer_acks(&a1, "a1", false);

    // Frozen: still subscribed (counted), answers nothing.
    node.signal("-STOP");
    let t = Instant::now();
    let r = a.io.fetch_sockets().await;
    assert!(matches!(r, Err(AdapterError::Timeout)), "{r:?}");
    let r = a.io.root_ns().adapter().all_rooms().await;
    assert_eq!(r, Err(AdapterError::Timeout));
    let r =
        a.io.root_ns()
            .server_side_emit_with_ack("who", vec![], Duration::from_millis(500))
            .await;
    assert_eq!(r, Err(AdapterError::Timeout));
    // A broadcast with acks ends at its timeout with this node's answers.
    let stream =
        a.io.broadcast()
            .timeout(Duration::from_millis(500))
            .emit_with_ack("q", &0)
            .unwrap();
    let (err, got) = stream.collect().await.unwrap_err();
    assert_eq!(err, AckError::Timeout);
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].first()["name"], "a1");
    let elapsed = t.elapsed();
    assert!(
        elapsed >= Duration::from_millis(1900) && elapsed < Duration::from_secs(4),
        "{elapsed:?}"
    );

    // Thawed, it answers again.
    node.signal("-CONT");
    let _n1 = client(&node.url(), "n1", &[]).await;
    let all = within(a.io.fetch_sockets()).await.unwrap();
    assert_eq!(all.len(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_restart_reconnects_and_resubscribes() {
    let mut redis = RedisServer::start();
    let mut node = NodePeer::start(&redis, 5000).await;
    let a = IoNode::start(&redis, "a").await;
    cluster_of(2, &[&a], Some(&mut node)).await;
    let a1 = client(&a.url(), "a1", &[]).await;
    let n1 = client(&node.url(), "n1", &[]).await;
    a.io.emit("before", &1).unwrap();
    expect(&a1, "before").await;
    expect(&n1, "before").await;
    assert_eq!(a.redis.stats().failures(), 0);
    let received = a.redis.stats().received();

    redis.stop();
    // Local clients are still served; publishing fails (at once or, for the first one,
    // in the background) and is counted.
    let stats = a.redis.stats();
    within(async {
        let mut i = 0;
        loop {
            let r = a.io.emit("during", &i);
            expect(&a1, "during").await;
            if r.is_err() && stats.failures() > 0 && !stats.is_connected() {
                assert!(
                    matches!(
                        r,
                        Err(iolite::EmitError::Adapter(AdapterError::Unavailable(_)))
                    ),
                    "{r:?}"
                );
                break;
            }
            i += 1;
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await;
    assert_eq!(a.io.root_ns().server_count().await, 1);
    assert!(matches!(
        a.io.fetch_sockets().await,
        Err(AdapterError::Unavailable(_))
    ));

    redis.restart();
    within(a.redis.ready()).await;
    assert!(stats.resubscriptions() >= 1);
    cluster_of(2, &[&a], Some(&mut node)).await;
    // Broadcasts flow again both ways (n1 may have missed "during"s: drain to the new one).
    a.io.emit("after", &2).unwrap();
    loop {
        let (name, _) = next(&n1).await;
        if name == "after" {
            break;
        }
        assert_eq!(name, "during");
    }
    loop {
        let (name, _) = next(&a1).await;
        if name == "after" {
            break;
        }
    }
    node.ok("emit", json!({"event": "node-after", "args": [3]}))
        .await;
    assert_eq!(expect(&a1, "node-after").await, vec![json!(3)]);
    assert!(a.redis.stats().received() > received);
    assert!(a.redis.stats().is_connected());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn garbage_on_the_channels_is_counted_and_ignored() {
    let redis = RedisServer::start();
    let a = IoNode::start(&redis, "a").await;
    let b = IoNode::start(&redis, "b").await;
    cluster_of(2, &[&a, &b], None).await;
    let b1 = client(&b.url(), "b1", &[]).await;

    let raw = redis::Client::open(redis.url()).unwrap();
    let mut c = raw.get_multiplexed_async_connection().await.unwrap();
    let garbage: [&[u8]; 6] = [
        b"",
        b"\xc1",
        b"{not json",
        b"\x93\xa1x",
        b"\xdf\xff\xff\xff\xff",
        b"\x93\xa6zzzzzz\x81\xa4type\x09\x80",
    ];
    for channel in [
        "socket.io#/#",
        "socket.io-request#/#",
        "socket.io-response#/#",
        "socket.io#/#room#",
    ] {
        for g in garbage {
            let _: i64 = redis::cmd("PUBLISH")
                .arg(channel)
                .arg(g)
                .query_async(&mut c)
                .await
                .unwrap();
        }
    }
    // Well-formed JSON of unknown types and answers to nothing are ignored too.
    for g in [
        &br#"{"type":42,"uid":"x"}"#[..],
        br#"{"requestId":"nope","type":8,"clientCount":1}"#,
    ] {
        let _: i64 = redis::cmd("PUBLISH")
            .arg("socket.io-request#/#")
            .arg(g)
            .query_async(&mut c)
            .await
            .unwrap();
    }
    a.io.emit("still-fine", &1).unwrap();
    assert_eq!(expect(&b1, "still-fine").await, vec![json!(1)]);
    eventually(|| {
        let n = b.redis.stats().malformed();
        async move { n >= 20 }
    })
    .await;
    assert_eq!(a.io.fetch_sockets().await.unwrap().len(), 1);
}
