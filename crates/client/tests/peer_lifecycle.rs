//! Disconnections, reconnection, recovery, heartbeat and send limits against a real
//! Socket.IO server.

mod common;

use std::time::Duration;

use common::*;
use iolite_client::{ConnectError, DisconnectReason, EmitError, Lifecycle, Manager, Transport};
use serde_json::{json, Value};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_side_disconnect_reasons() {
    let peer = Peer::start();
    let observer = peer.socket(&[Transport::WebSocket]).await;
    for mode in MODES {
        // socket.disconnect(): a DISCONNECT packet, no reconnection.
        let s = peer.socket(mode).await;
        assert_eq!(
            next_lifecycle(&s).await,
            Lifecycle::Connect { recovered: false }
        );
        let id = s.id().unwrap();
        s.disconnect();
        assert_eq!(
            next_lifecycle(&s).await,
            Lifecycle::Disconnect(DisconnectReason::ClientDisconnect)
        );
        assert_eq!(
            last_reason(&observer, &id).await,
            "client namespace disconnect",
            "{mode:?}"
        );
        assert!(!s.active() && !s.connected() && s.id().is_none());
        assert!(matches!(s.emit("echo", &()), Err(EmitError::Closed)));
        tokio::time::sleep(Duration::from_millis(150)).await;
        assert!(!s.connected(), "no reconnection after a client disconnect");
        // The manager closed its connection with the last socket.
        assert_eq!(s.manager().transport(), None);

        // manager.close(): the connection goes, sockets get "forced close".
        let m = peer.manager(mode);
        let a = within(m.socket("/").connect()).await.unwrap();
        let b = within(m.socket("/dyn-b").connect()).await.unwrap();
        let (a_id, b_id) = (a.id().unwrap(), b.id().unwrap());
        m.close();
        for s in [&a, &b] {
            assert_eq!(
                next_lifecycle(s).await,
                Lifecycle::Connect { recovered: false }
            );
            assert_eq!(
                next_lifecycle(s).await,
                Lifecycle::Disconnect(DisconnectReason::ForcedClose)
            );
        }
        assert_eq!(
            last_reason(&observer, &a_id).await,
            "transport close",
            "{mode:?}"
        );
        assert_eq!(last_reason(&observer, &b_id).await, "transport close");
        // ...and they can connect again.
        a.connect();
        assert_eq!(
            next_lifecycle(&a).await,
            Lifecycle::Connect { recovered: false }
        );
        assert_eq!(call(&a, "echo", &(1,)).await, [json!(1)]);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_side_disconnect_reasons() {
    let peer = Peer::start();
    let observer = peer.socket(&[Transport::WebSocket]).await;
    for mode in MODES {
        // socket.disconnect() on the server: "io server disconnect", no reconnection.
        let m = peer.manager(mode);
        let s = within(m.socket("/").connect()).await.unwrap();
        let other = within(m.socket("/dyn-other").connect()).await.unwrap();
        next_lifecycle(&s).await;
        next_lifecycle(&other).await;
        let id = s.id().unwrap();
        s.emit("disconnect-me", &(false,)).unwrap();
        assert_eq!(
            next_lifecycle(&s).await,
            Lifecycle::Disconnect(DisconnectReason::ServerDisconnect),
            "{mode:?}"
        );
        assert_eq!(
            last_reason(&observer, &id).await,
            "server namespace disconnect"
        );
        assert!(!s.active());
        // The other namespace on the same connection is untouched.
        assert_eq!(call(&other, "echo", &(2,)).await, [json!(2)]);
        tokio::time::sleep(Duration::from_millis(150)).await;
        assert!(!s.connected());
        assert!(other.try_next_lifecycle().is_none());

        // socket.disconnect(true): the server disconnects every namespace of the
        // connection, then closes it. Nothing reconnects.
        s.connect();
        assert_eq!(
            next_lifecycle(&s).await,
            Lifecycle::Connect { recovered: false }
        );
        let (id, other_id) = (s.id().unwrap(), other.id().unwrap());
        s.emit("disconnect-me", &(true,)).unwrap();
        for x in [&s, &other] {
            assert_eq!(
                next_lifecycle(x).await,
                Lifecycle::Disconnect(DisconnectReason::ServerDisconnect),
                "{mode:?}"
            );
        }
        assert_eq!(
            last_reason(&observer, &id).await,
            "server namespace disconnect"
        );
        assert_eq!(
            last_reason(&observer, &other_id).await,
            "server namespace disconnect"
        );
        tokio::time::sleep(Duration::from_millis(150)).await;
        for x in [&s, &other] {
            assert!(!x.connected() && !x.active());
            assert_eq!(x.try_next_lifecycle(), None);
        }
        assert_eq!(m.transport(), None);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reconnects_after_drop_transport_and_sends_what_was_buffered() {
    let peer = Peer::start();
    let observer = peer.socket(&[Transport::WebSocket]).await;
    for mode in MODES {
        let s = peer.socket(mode).await;
        assert_eq!(
            next_lifecycle(&s).await,
            Lifecycle::Connect { recovered: false }
        );
        let old = s.id().unwrap();
        let engine = s.manager().engine_id().unwrap();
        s.emit("drop-transport", &()).unwrap();
        assert_eq!(
            next_lifecycle(&s).await,
            Lifecycle::Disconnect(DisconnectReason::TransportClose),
            "{mode:?}"
        );
        // Emits while reconnecting are buffered, then sent in order.
        s.emit("echo", &("while away", 1)).unwrap();
        s.emit("echo", &("while away", 2)).unwrap();
        let pending_ack = s.emit_with_ack("echo", &("acked",)).unwrap();
        // No event came before the drop, so there is no offset to recover from.
        assert_eq!(
            next_lifecycle(&s).await,
            Lifecycle::Connect { recovered: false }
        );
        assert!(!s.recovered());
        assert_ne!(s.id().unwrap(), old);
        assert_ne!(s.manager().engine_id().unwrap(), engine);
        assert_eq!(
            within(pending_ack).await.unwrap().values(),
            [json!("acked")]
        );
        for i in 1..=2 {
            assert_eq!(
                next_event(&s).await.args.args::<(String, u32)>().unwrap(),
                ("while away".into(), i)
            );
        }
        assert_eq!(last_reason(&observer, &old).await, "forced close");
        s.disconnect();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn recovery_delivers_missed_room_messages_in_order_once() {
    let peer = Peer::start();
    for mode in MODES {
        // A reconnects slowly enough for B to send while it is away.
        let ma = peer
            .builder(mode)
            .reconnection_delay(Duration::from_millis(400))
            .build()
            .unwrap();
        let a = within(ma.socket("/").connect()).await.unwrap();
        let b = peer.socket(&[Transport::WebSocket]).await;
        call(&a, "join", &("rec",)).await;
        call(&a, "set-data", &("kept",)).await;
        let a_id = a.id().unwrap();
        let mut got = Vec::new();
        for i in 0..5 {
            b.emit("to-room", &("rec", i)).unwrap();
        }
        for _ in 0..5 {
            let ev = next_event(&a).await;
            assert!(ev.offset.is_some());
            got.push(ev.args.arg::<u32>(0).unwrap());
        }
        next_lifecycle(&a).await;
        a.emit("drop-transport", &()).unwrap();
        assert_eq!(
            next_lifecycle(&a).await,
            Lifecycle::Disconnect(DisconnectReason::TransportClose)
        );
        // Missed while away.
        for i in 5..10 {
            b.emit("to-room", &("rec", i)).unwrap();
        }
        call(&b, "echo", &()).await;
        assert!(
            !a.connected(),
            "{mode:?}: reconnected before the test could send"
        );
        assert_eq!(
            next_lifecycle(&a).await,
            Lifecycle::Connect { recovered: true },
            "{mode:?}"
        );
        assert!(a.recovered());
        // Same socket id, rooms and data.
        assert_eq!(a.id().unwrap(), a_id);
        let who = call(&a, "whoami", &()).await;
        assert_eq!(who[0]["recovered"], true);
        assert_eq!(who[0]["id"], a_id.as_str());
        assert_eq!(call(&a, "get-data", &()).await, [json!("kept")]);
        for i in 10..15 {
            b.emit("to-room", &("rec", i)).unwrap();
        }
        for _ in 5..15 {
            got.push(next_event(&a).await.args.arg::<u32>(0).unwrap());
        }
        assert_eq!(got, (0..15).collect::<Vec<_>>(), "{mode:?}");
        call(&b, "echo", &()).await;
        call(&a, "echo", &()).await;
        assert!(a.try_next_event().is_none(), "duplicates");

        // A second drop recovers again, from the newer offset.
        a.emit("drop-transport", &()).unwrap();
        assert_eq!(
            next_lifecycle(&a).await,
            Lifecycle::Disconnect(DisconnectReason::TransportClose)
        );
        b.emit("to-room", &("rec", 15)).unwrap();
        call(&b, "echo", &()).await;
        assert_eq!(
            next_lifecycle(&a).await,
            Lifecycle::Connect { recovered: true }
        );
        assert_eq!(next_event(&a).await.args.arg::<u32>(0).unwrap(), 15);
        call(&a, "echo", &()).await;
        assert!(
            a.try_next_event().is_none(),
            "duplicates after the second recovery"
        );
        a.disconnect();
        b.disconnect();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pings_are_answered() {
    // The server drops a client that does not answer a ping within 100 ms.
    let peer = Peer::start_with(&[("PING_INTERVAL", "100"), ("PING_TIMEOUT", "100")]);
    let mut sockets = Vec::new();
    for mode in MODES {
        let s = peer.socket(mode).await;
        assert_eq!(
            next_lifecycle(&s).await,
            Lifecycle::Connect { recovered: false }
        );
        sockets.push((s.id().unwrap(), s));
    }
    tokio::time::sleep(Duration::from_millis(1200)).await;
    for (id, s) in &sockets {
        assert!(s.connected());
        assert_eq!(s.try_next_lifecycle(), None, "{:?}", s.transport());
        assert_eq!(call(s, "whoami", &()).await[0]["id"], id.as_str());
    }
    // The upgrade happened under the fast heartbeat too.
    assert_eq!(sockets[2].1.transport(), Some(Transport::WebSocket));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn emits_are_buffered_until_connected_and_bounded() {
    let peer = Peer::start();
    for mode in MODES {
        let m = peer.builder(mode).max_buffered_packets(3).build().unwrap();
        let s = m.socket("/").open().unwrap();
        assert!(!s.connected());
        for i in 0..3 {
            s.emit("echo", &("early", i)).unwrap();
        }
        assert!(matches!(
            s.emit("echo", &("early", 3)),
            Err(EmitError::Full)
        ));
        assert!(matches!(
            s.emit("connect", &()),
            Err(EmitError::Reserved(_))
        ));
        for i in 0..3 {
            assert_eq!(
                next_event(&s).await.args.args::<(String, u32)>().unwrap(),
                ("early".into(), i),
                "{mode:?}"
            );
        }
        // What a timed-out ack was waiting for is dropped from the buffer, as
        // socket.io-client does.
        s.disconnect();
        assert!(s.emit("echo", &()).unwrap_err().is_closed());
        assert!(s.emit_with_ack("echo", &()).unwrap_err().is_closed());
    }
}

/// Over polling, emits wait for the POST in flight; past the limit they are refused. (The
/// WebSocket case needs a server that stops reading: see `fake_server.rs`.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_polling_buffer_refuses_emits_and_recovers() {
    let peer = Peer::start();
    let chunk = "x".repeat(1000);
    for mode in [&[Transport::Polling][..]] {
        let m = peer.builder(mode).max_queued_bytes(4096).build().unwrap();
        let s = within(m.socket("/").connect()).await.unwrap();
        let (mut ok, mut full) = (0, 0);
        for _ in 0..5000 {
            match s.emit("nobody-listens", &(&chunk,)) {
                Ok(()) => ok += 1,
                Err(EmitError::Full) => full += 1,
                Err(e) => panic!("{e}"),
            }
        }
        assert!(ok >= 1 && full >= 1, "{mode:?}: {ok} sent, {full} refused");
        // Once drained, emits go through again.
        within(async {
            loop {
                if let Ok(ack) = s.emit_with_ack("echo", &("after",)) {
                    return ack.await.unwrap();
                }
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        })
        .await;
        assert!(s.connected());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reconnection_gives_up_after_its_attempts() {
    // A port with nothing listening.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let url = format!("http://127.0.0.1:{port}");
    for mode in MODES {
        let m = Manager::builder(&url)
            .transports(mode.iter().copied())
            .reconnection_attempts(Some(2))
            .reconnection_delay(Duration::from_millis(10))
            .build()
            .unwrap();
        let s = m.socket("/").open().unwrap();
        for _ in 0..3 {
            match next_lifecycle(&s).await {
                Lifecycle::ConnectError(ConnectError::Transport(e)) => {
                    assert!(e.contains("error"), "{e}");
                }
                other => panic!("{other:?}"),
            }
        }
        assert_eq!(
            next_lifecycle(&s).await,
            Lifecycle::ConnectError(ConnectError::ReconnectFailed)
        );
        assert!(!s.active());
        assert!(s.emit("echo", &()).unwrap_err().is_closed());
        assert_eq!(
            within(m.socket("/").connect()).await.unwrap_err(),
            ConnectError::ReconnectFailed
        );

        // Without reconnection the first failure is final.
        let m = Manager::builder(&url)
            .transports(mode.iter().copied())
            .reconnection(false)
            .build()
            .unwrap();
        assert!(matches!(
            within(m.socket("/").connect()).await,
            Err(ConnectError::Transport(_))
        ));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reconnects_when_the_server_comes_back() {
    let peer = Peer::start();
    let port = peer.port.to_string();
    let m = peer.manager(&[Transport::Polling, Transport::WebSocket]);
    let s = within(m.socket("/").connect()).await.unwrap();
    wait_transport(&m, Transport::WebSocket).await;
    next_lifecycle(&s).await;
    drop(peer);
    match next_lifecycle(&s).await {
        Lifecycle::Disconnect(r) => assert!(
            r == DisconnectReason::TransportClose || r == DisconnectReason::TransportError,
            "{r}"
        ),
        other => panic!("{other:?}"),
    }
    // Attempts fail while the server is down...
    assert!(matches!(
        next_lifecycle(&s).await,
        Lifecycle::ConnectError(ConnectError::Transport(_))
    ));
    let _peer = Peer::start_with(&[("PORT", &port)]);
    // ...and succeed once it is back.
    loop {
        match next_lifecycle(&s).await {
            Lifecycle::ConnectError(ConnectError::Transport(_)) => {}
            Lifecycle::Connect { recovered } => {
                assert!(!recovered, "a new server has no session to recover");
                break;
            }
            other => panic!("{other:?}"),
        }
    }
    assert_eq!(call(&s, "echo", &("back",)).await, [Value::from("back")]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dropping_every_handle_closes_the_connection() {
    let peer = Peer::start();
    let observer = peer.socket(&[Transport::WebSocket]).await;
    for mode in MODES {
        let s = peer.socket(mode).await;
        let id = s.id().unwrap();
        let events = s.clone();
        drop(s);
        // A clone still holds the connection.
        assert_eq!(call(&events, "echo", &(1,)).await, [json!(1)]);
        drop(events);
        assert_eq!(
            last_reason(&observer, &id).await,
            "transport close",
            "{mode:?}"
        );
    }
}
