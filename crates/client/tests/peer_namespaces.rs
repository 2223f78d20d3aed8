//! Rooms, namespaces, auth and connect errors against a real Socket.IO server.

mod common;

use common::*;
use iolite_client::{ConnectError, Lifecycle, Transport};
use serde_json::json;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn to_room_reaches_members_only() {
    let peer = Peer::start();
    for mode in MODES {
        let a = peer.socket(mode).await;
        let b = peer.socket(mode).await;
        let c = peer.socket(mode).await;
        let rooms = call(&a, "join", &("r1",)).await;
        let a_id = a.id().unwrap();
        let mut expected = vec![a_id.clone(), "r1".to_owned()];
        expected.sort();
        assert_eq!(rooms[0], json!(expected));
        call(&c, "join", &("r1",)).await;
        b.emit("to-room", &("r1", "hi", json!({"n": 1}))).unwrap();
        for s in [&a, &c] {
            let ev = next_event(s).await;
            assert_eq!(ev.name, "room", "{mode:?}");
            assert_eq!(ev.args.values(), [json!("hi"), json!({"n": 1})]);
        }
        // The sender is not in the room and gets nothing; a member sending is excluded.
        c.emit("to-room", &("r1", "from c")).unwrap();
        assert_eq!(
            next_event(&a).await.args.arg::<String>(0).unwrap(),
            "from c"
        );
        call(&b, "echo", &()).await;
        call(&c, "echo", &()).await;
        assert!(b.try_next_event().is_none());
        assert!(c.try_next_event().is_none());
        // After leaving, nothing more.
        let rooms = call(&a, "leave", &("r1",)).await;
        assert_eq!(rooms[0], json!([a_id]));
        b.emit("to-room", &("r1", "after")).unwrap();
        assert_eq!(next_event(&c).await.args.arg::<String>(0).unwrap(), "after");
        call(&a, "echo", &()).await;
        assert!(a.try_next_event().is_none());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admin_namespace_auth_ok_and_refused() {
    let peer = Peer::start();
    for mode in MODES {
        let m = peer.manager(mode);
        let admin = within(
            m.socket("/admin")
                .auth(json!({"token": "secret", "user": "ann"}))
                .connect(),
        )
        .await
        .unwrap();
        assert_eq!(admin.namespace(), "/admin");
        let who = call(&admin, "whoami", &()).await;
        assert_eq!(
            who[0]["auth"],
            json!({"token": "secret", "user": "ann"}),
            "{mode:?}"
        );
        assert_eq!(who[0]["id"], admin.id().unwrap());
        assert_eq!(
            call(&admin, "echo", &(1, "a")).await,
            [json!(1), json!("a")]
        );

        let m2 = peer.manager(mode);
        let refused = within(m2.socket("/admin").auth(json!({"token": "nope"})).connect()).await;
        assert_eq!(
            refused.unwrap_err(),
            ConnectError::Refused {
                message: "not authorized".into(),
                data: Some(json!({"reason": "bad token"})),
            },
            "{mode:?}"
        );
        // No auth at all is refused the same way.
        let refused = within(m2.socket("/admin").connect()).await.unwrap_err();
        assert!(
            matches!(refused, ConnectError::Refused { ref message, .. } if message == "not authorized")
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refused_socket_is_closed_and_reports_connect_error() {
    let peer = Peer::start();
    let m = peer.manager(&[Transport::WebSocket]);
    let s = m
        .socket("/admin")
        .auth(json!({"token": "x"}))
        .open()
        .unwrap();
    match next_lifecycle(&s).await {
        Lifecycle::ConnectError(ConnectError::Refused { message, data }) => {
            assert_eq!(message, "not authorized");
            assert_eq!(data, Some(json!({"reason": "bad token"})));
        }
        other => panic!("{other:?}"),
    }
    assert!(!s.active());
    assert!(s.emit("echo", &()).unwrap_err().is_closed());
    // Connecting again with the right token works on the same socket.
    let s = within(
        m.socket("/admin")
            .auth(json!({"token": "secret"}))
            .connect(),
    )
    .await
    .unwrap();
    assert!(s.connected());
    assert_eq!(
        next_lifecycle(&s).await,
        Lifecycle::Connect { recovered: false }
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dynamic_and_invalid_namespaces() {
    let peer = Peer::start();
    let m = peer.manager(&[Transport::WebSocket]);
    let dyn1 = within(m.socket("/dyn-abc1").connect()).await.unwrap();
    assert_eq!(call(&dyn1, "name", &()).await, [json!("/dyn-abc1")]);
    assert_eq!(call(&dyn1, "echo", &("x",)).await, [json!("x")]);
    let dyn2 = within(m.socket("dyn-zz9").connect()).await.unwrap();
    assert_eq!(dyn2.namespace(), "/dyn-zz9");
    assert_eq!(call(&dyn2, "name", &()).await, [json!("/dyn-zz9")]);

    let err = within(m.socket("/nope").connect()).await.unwrap_err();
    assert_eq!(
        err,
        ConnectError::Refused {
            message: "Invalid namespace".into(),
            data: None
        }
    );
    let err = within(m.socket("/dyn-UPPER").connect()).await.unwrap_err();
    assert!(
        matches!(err, ConnectError::Refused { ref message, .. } if message == "Invalid namespace")
    );
    assert_eq!(
        within(m.socket("/a,b").connect()).await.unwrap_err(),
        ConnectError::InvalidNamespace("/a,b".into())
    );
    // The refusals did not disturb the others.
    assert_eq!(call(&dyn1, "name", &()).await, [json!("/dyn-abc1")]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn namespaces_share_one_connection() {
    let peer = Peer::start();
    for mode in MODES {
        let m = peer.manager(mode);
        let root = within(m.socket("/").connect()).await.unwrap();
        let admin = within(
            m.socket("/admin")
                .auth(json!({"token": "secret"}))
                .connect(),
        )
        .await
        .unwrap();
        let dynamic = within(m.socket("/dyn-x").connect()).await.unwrap();
        let engine = m.engine_id().unwrap();
        // Each namespace has its own socket id, over the same Engine.IO session.
        assert_ne!(root.id(), admin.id());
        assert_eq!(m.engine_id().unwrap(), engine);
        // Interleaved traffic stays in its namespace.
        for i in 0..20 {
            root.emit("echo", &("root", i)).unwrap();
            admin.emit("echo", &("admin", i)).unwrap();
            dynamic.emit("echo", &("dyn", i)).unwrap();
        }
        for (s, tag) in [(&root, "root"), (&admin, "admin"), (&dynamic, "dyn")] {
            for i in 0..20 {
                let ev = next_event(s).await;
                assert_eq!(
                    ev.args.args::<(String, u32)>().unwrap(),
                    (tag.to_owned(), i),
                    "{mode:?}"
                );
            }
        }
        // The same namespace again is the same socket.
        let again = m.socket("/admin").open().unwrap();
        assert_eq!(again.id(), admin.id());
        // Leaving one namespace keeps the connection for the others.
        admin.disconnect();
        assert_eq!(call(&root, "echo", &(1,)).await, [json!(1)]);
        assert_eq!(m.engine_id().unwrap(), engine);
        // The server saw the client leave the namespace.
        let admin_id = again.id();
        assert_eq!(admin_id, None);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn broadcasts_to_all_and_except() {
    let peer = Peer::start();
    let a = peer.socket(&[Transport::WebSocket]).await;
    let b = peer.socket(&[Transport::Polling]).await;
    call(&b, "join", &("quiet",)).await;
    call(&a, "to-all", &("hey",)).await;
    for s in [&a, &b] {
        let ev = next_event(s).await;
        assert_eq!(
            (ev.name.as_str(), ev.args.arg::<String>(0).unwrap().as_str()),
            ("all", "hey")
        );
    }
    call(&a, "to-all-except", &("quiet", "psst")).await;
    let ev = next_event(&a).await;
    assert_eq!(ev.name, "except");
    call(&b, "echo", &()).await;
    assert!(b.try_next_event().is_none());
}
