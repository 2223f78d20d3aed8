//! The chat protocol (docs/chat-protocol.md) end to end: an in-process iolite server with
//! the chat installed on a temporary SQLite store, and real Socket.IO clients
//! (`iolite-client`) over TCP.

#![allow(clippy::unwrap_used)] // test helpers: a failure is the test failing

use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use iolite::{Recovery, SocketIo};
use iolite_client::{ConnectError, DisconnectReason, Lifecycle, Manager, Socket, Transport};
use iolite_server::auth::{AuthConfig, Verifier};
use iolite_server::chat::{Chat, ChatSettings};
use iolite_server::metrics::Metrics;
use iolite_server::store::{self, StoreConfig};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{json, Value};

const SECRET: &str = "chat tests secret, long enough to be a real one";
const ISSUER: &str = "https://issuer.test";

struct Server {
    url: String,
    io: SocketIo,
    db: std::path::PathBuf,
    _dir: tempfile::TempDir,
}

async fn start(verifier: Option<Verifier>, settings: ChatSettings) -> Server {
    start_on(SocketIo::new(), verifier, settings).await
}

async fn start_on(io: SocketIo, verifier: Option<Verifier>, settings: ChatSettings) -> Server {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("history.sqlite3");
    let store = store::open(&StoreConfig { path: db.clone() }).unwrap();
    let chat = Chat::new(store, verifier.map(Arc::new), settings, Metrics::new());
    chat.install(&io);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let served = io.clone();
    tokio::spawn(async move { served.serve(listener).await });
    Server {
        url,
        io,
        db,
        _dir: dir,
    }
}

fn fast() -> ChatSettings {
    ChatSettings {
        events_per_second: 10_000,
        ..Default::default()
    }
}

fn jwt_verifier() -> Verifier {
    Verifier::from_config(&AuthConfig {
        secret: Some(SECRET.into()),
        issuer: Some(ISSUER.into()),
        ..Default::default()
    })
    .unwrap()
}

fn token(claims: Value) -> String {
    jsonwebtoken::encode(
        &Header::new(Algorithm::HS256),
        &claims,
        &EncodingKey::from_secret(SECRET.as_bytes()),
    )
    .unwrap()
}

fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

async fn within<F: Future>(f: F) -> F::Output {
    tokio::time::timeout(Duration::from_secs(10), f)
        .await
        .expect("timed out")
}

/// A connected client with a buffer of the events not asked for yet.
struct Client {
    socket: Socket,
    hello: Value,
    pending: Vec<(String, Value)>,
}

async fn try_connect(
    server: &Server,
    auth: Value,
    header: Option<String>,
    transports: &[Transport],
) -> Result<Client, ConnectError> {
    let mut b = Manager::builder(&server.url)
        .reconnection(false)
        .transports(transports.iter().copied())
        .timeout(Duration::from_secs(5));
    if let Some(h) = header {
        b = b.header("Authorization", h);
    }
    let socket = within(b.build().unwrap().socket("/").auth(auth).connect()).await?;
    let mut c = Client {
        socket,
        hello: Value::Null,
        pending: Vec::new(),
    };
    c.hello = c.event("hello").await;
    Ok(c)
}

async fn guest(server: &Server, name: &str) -> Client {
    try_connect(
        server,
        json!({ "name": name }),
        None,
        &[Transport::WebSocket],
    )
    .await
    .unwrap()
}

async fn refused(server: &Server, auth: Value, header: Option<String>) -> (String, Value) {
    match try_connect(server, auth, header, &[Transport::WebSocket]).await {
        Err(ConnectError::Refused { message, data }) => (message, data.unwrap_or(Value::Null)),
        Err(e) => panic!("refused with another error: {e:?}"),
        Ok(c) => panic!("connected: {}", c.hello),
    }
}

impl Client {
    /// A request with an ack; the answer.
    async fn req(&self, event: &str, payload: Value) -> Value {
        let ack = self.socket.emit_with_ack(event, &(payload,)).unwrap();
        within(ack).await.unwrap().arg::<Value>(0).unwrap()
    }

    /// A request that must succeed.
    async fn ok(&self, event: &str, payload: Value) -> Value {
        let a = self.req(event, payload.clone()).await;
        assert_eq!(a["ok"], true, "{event} {payload}: {a}");
        a
    }

    /// A request that must fail with `code`.
    async fn fails(&self, event: &str, payload: Value, code: &str) -> Value {
        let a = self.req(event, payload.clone()).await;
        assert_eq!(a["ok"], false, "{event} {payload}: {a}");
        assert_eq!(a["error"]["code"], code, "{event} {payload}: {a}");
        assert!(a["error"]["message"].is_string(), "{a}");
        a
    }

    async fn join(&self, room: &str) -> Value {
        self.ok("room:join", json!({ "room": room })).await
    }

    async fn say(&self, room: &str, text: &str) -> Value {
        self.ok("message:send", json!({"room": room, "text": text}))
            .await["message"]
            .clone()
    }

    /// The next event named `name` (others are kept for later).
    async fn event(&mut self, name: &str) -> Value {
        if let Some(i) = self.pending.iter().position(|(n, _)| n == name) {
            return self.pending.remove(i).1;
        }
        loop {
            let e = within(self.socket.next_event())
                .await
                .unwrap_or_else(|| panic!("socket gone waiting for {name}"));
            let v = e.args.arg::<Value>(0).unwrap();
            if e.name == name {
                return v;
            }
            self.pending.push((e.name, v));
        }
    }

    /// Reads what arrives for `d` and returns the events named `name` among them.
    async fn collect(&mut self, name: &str, d: Duration) -> Vec<Value> {
        let deadline = tokio::time::Instant::now() + d;
        while let Ok(Some(e)) = tokio::time::timeout_at(deadline, self.socket.next_event()).await {
            let v = e.args.arg::<Value>(0).unwrap_or(Value::Null);
            self.pending.push((e.name, v));
        }
        let (matching, rest) = std::mem::take(&mut self.pending)
            .into_iter()
            .partition(|(n, _)| n == name);
        self.pending = rest;
        matching.into_iter().map(|(_, v)| v).collect()
    }

    fn members(v: &Value) -> Vec<String> {
        v["members"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| m["name"].as_str().unwrap().to_owned())
            .collect()
    }
}

#[tokio::test]
async fn guest_hello_and_invalid_names() {
    let server = start(None, ChatSettings::default()).await;
    let ada = guest(&server, "  ada  ").await;
    assert_eq!(
        ada.hello,
        json!({
            "user": {"id": "guest:ada", "name": "ada"},
            "rooms": [],
            "limits": {"messageLength": 2000, "roomsPerSocket": 50, "historyPage": 50, "eventsPerSecond": 20},
        })
    );
    let long = "x".repeat(33);
    for auth in [
        json!({}),
        json!({"name": ""}),
        json!({"name": "   "}),
        json!({"name": long}),
        json!({"name": "bell\u{7}"}),
        json!({"name": "new\nline"}),
        json!({"name": 42}),
        json!({"name": ["ada"]}),
        json!({"token": "a.b.c"}),
    ] {
        let (message, data) = refused(&server, auth.clone(), None).await;
        assert_eq!(data, json!({"code": "invalid_name"}), "{auth}: {message}");
        assert!(!message.is_empty());
    }
    // 32 characters (not bytes) is the limit.
    let name: String = "é".repeat(32);
    let c = guest(&server, &name).await;
    assert_eq!(c.hello["user"]["name"], name.as_str());
    // The first client was not disturbed.
    ada.ok("rooms:list", json!({})).await;
}

#[tokio::test]
async fn jwt_refusals_and_claims() {
    let server = start(Some(jwt_verifier()), fast()).await;
    let good = json!({"sub": "u-1", "name": "Ada L.", "iss": ISSUER, "exp": now() + 600});

    let (message, data) = refused(&server, json!({"name": "ada"}), None).await;
    assert_eq!(data, json!({"code": "auth_required"}), "{message}");
    for (claims, why) in [
        (
            json!({"sub": "u-1", "iss": ISSUER, "exp": now() - 3600}),
            "token expired",
        ),
        (
            json!({"sub": "u-1", "iss": ISSUER, "exp": now() + 600, "nbf": now() + 3600}),
            "token not yet valid",
        ),
        (
            json!({"sub": "u-1", "iss": "https://evil.test", "exp": now() + 600}),
            "wrong issuer",
        ),
    ] {
        let (message, data) = refused(&server, json!({"token": token(claims)}), None).await;
        assert_eq!(data, json!({"code": "invalid_token"}));
        assert_eq!(message, why);
    }
    let forged = jsonwebtoken::encode(
        &Header::new(Algorithm::HS256),
        &good,
        &EncodingKey::from_secret(b"not the secret"),
    )
    .unwrap();
    let (message, data) = refused(&server, json!({"token": forged}), None).await;
    assert_eq!(
        (message.as_str(), data),
        ("bad signature", json!({"code": "invalid_token"}))
    );
    let (message, data) = refused(&server, json!({"token": "garbage"}), None).await;
    assert_eq!(data, json!({"code": "invalid_token"}));
    assert!(message.starts_with("malformed token"), "{message}");
    // A bad header token is refused too, not ignored.
    let (_, data) = refused(&server, json!({}), Some("Bearer nope".into())).await;
    assert_eq!(data, json!({"code": "invalid_token"}));

    // From auth.token.
    let c = try_connect(
        &server,
        json!({"token": token(good.clone())}),
        None,
        &[Transport::WebSocket],
    )
    .await
    .unwrap();
    assert_eq!(c.hello["user"], json!({"id": "u-1", "name": "Ada L."}));
    // From the Authorization header, on polling (the handshake is a GET) and on a
    // WebSocket-only connection (the upgrade request); no name claim: the name is `sub`.
    let t = token(json!({"sub": "u-2", "iss": ISSUER, "exp": now() + 600}));
    for transports in [&[Transport::Polling][..], &[Transport::WebSocket][..]] {
        let c = try_connect(&server, json!({}), Some(format!("Bearer {t}")), transports)
            .await
            .unwrap();
        assert_eq!(c.hello["user"], json!({"id": "u-2", "name": "u-2"}));
    }

    // The rooms claim limits joins and history.
    let t = token(json!({"sub": "u-3", "iss": ISSUER, "exp": now() + 600, "rooms": ["ops"]}));
    let limited = try_connect(&server, json!({"token": t}), None, &[Transport::WebSocket])
        .await
        .unwrap();
    limited.join("ops").await;
    limited
        .fails("room:join", json!({"room": "general"}), "forbidden")
        .await;
    c.join("general").await;
    limited
        .fails("history", json!({"room": "general"}), "forbidden")
        .await;
    limited
        .fails(
            "room:sync",
            json!({"room": "general", "after": 0}),
            "forbidden",
        )
        .await;
    limited
        .fails(
            "message:send",
            json!({"room": "general", "text": "hi"}),
            "forbidden",
        )
        .await;
    let m = limited.say("ops", "allowed").await;
    assert_eq!(m["user"], json!({"id": "u-3", "name": "u-3"}));
}

#[tokio::test]
async fn two_clients_exchange_messages() {
    let server = start(None, fast()).await;
    let mut ada = guest(&server, "ada").await;
    let mut bob = guest(&server, "bob").await;

    let j = ada.join("general").await;
    assert_eq!(
        j,
        json!({"ok": true, "room": "general", "members": [{"id": "guest:ada", "name": "ada"}],
               "messages": [], "hasMore": false})
    );
    // A new room is announced to everyone.
    assert_eq!(bob.event("room:new").await, json!({"name": "general"}));
    assert_eq!(ada.event("room:new").await, json!({"name": "general"}));
    bob.join("general").await;

    let sent = ada
        .ok(
            "message:send",
            json!({"room": "general", "text": "  hello bob \n", "clientId": "c-1"}),
        )
        .await["message"]
        .clone();
    assert_eq!(sent["text"], "hello bob");
    assert_eq!(sent["room"], "general");
    assert_eq!(sent["user"], json!({"id": "guest:ada", "name": "ada"}));
    assert_eq!(sent["clientId"], "c-1");
    assert!(sent["id"].as_i64().unwrap() > 0);
    let ts = sent["ts"].as_i64().unwrap();
    assert!((ts - now() * 1000).abs() < 60_000, "ts {ts}");
    // Everyone in the room gets it, the sender included.
    assert_eq!(bob.event("message").await, sent);
    assert_eq!(ada.event("message").await, sent);

    let reply = bob.say("general", "hi ada").await;
    assert!(reply["id"].as_i64().unwrap() > sent["id"].as_i64().unwrap());
    assert_eq!(ada.event("message").await, reply);
    assert_eq!(bob.event("message").await, reply);

    // Someone not in the room gets nothing, and cannot send there.
    let mut eve = guest(&server, "eve").await;
    eve.fails(
        "message:send",
        json!({"room": "general", "text": "let me in"}),
        "forbidden",
    )
    .await;
    let third = ada.say("general", "third").await;
    assert!(eve
        .collect("message", Duration::from_millis(200))
        .await
        .is_empty());
    assert_eq!(bob.event("message").await, third);

    // Joining an existing room announces nothing; rooms:list and hello show it.
    eve.join("general").await;
    let quiet = eve.join("quiet").await;
    assert_eq!(quiet["members"].as_array().unwrap().len(), 1);
    let news = bob.collect("room:new", Duration::from_millis(200)).await;
    assert_eq!(news, vec![json!({"name": "quiet"})]);
    let list = bob.ok("rooms:list", json!({})).await;
    assert_eq!(
        list["rooms"],
        json!([
            {"name": "general", "members": 3, "lastId": third["id"]},
            {"name": "quiet", "members": 1, "lastId": 0},
        ])
    );
    let late = guest(&server, "late").await;
    assert_eq!(late.hello["rooms"], list["rooms"]);

    // Leaving: no more messages from the room.
    bob.ok("room:leave", json!({"room": "general"})).await;
    bob.ok("room:leave", json!({"room": "general"})).await;
    bob.fails(
        "message:send",
        json!({"room": "general", "text": "gone"}),
        "forbidden",
    )
    .await;
    let last = ada.say("general", "after bob left").await;
    assert_eq!(eve.event("message").await, last);
    assert!(bob
        .collect("message", Duration::from_millis(200))
        .await
        .is_empty());
}

#[tokio::test]
async fn presence_counts_each_user_once() {
    let server = start(None, fast()).await;
    let mut ada1 = guest(&server, "ada").await;
    let mut bob = guest(&server, "bob").await;

    ada1.join("general").await;
    assert_eq!(Client::members(&ada1.event("presence").await), ["ada"]);
    let j = bob.join("general").await;
    assert_eq!(Client::members(&j), ["ada", "bob"]);
    let p = ada1.event("presence").await;
    assert_eq!(p["room"], "general");
    assert_eq!(
        p["members"],
        json!([{"id": "guest:ada", "name": "ada"}, {"id": "guest:bob", "name": "bob"}])
    );
    assert_eq!(
        Client::members(&bob.event("presence").await),
        ["ada", "bob"]
    );

    // Ada's second tab: same user, counted once, nobody is told anything new.
    let mut ada2 = guest(&server, "ada").await;
    let j = ada2.join("general").await;
    assert_eq!(Client::members(&j), ["ada", "bob"]);
    let list = bob.ok("rooms:list", json!({})).await;
    assert_eq!(list["rooms"][0]["members"], 2);
    // One tab leaving: ada is still there.
    ada1.ok("room:leave", json!({"room": "general"})).await;
    // Carol joining is the next presence bob sees: nothing came in between.
    let carol = guest(&server, "carol").await;
    carol.join("general").await;
    assert_eq!(
        Client::members(&bob.event("presence").await),
        ["ada", "bob", "carol"]
    );
    assert_eq!(
        Client::members(&ada2.event("presence").await),
        ["ada", "bob", "carol"]
    );

    // The last tab of ada disconnecting: ada is gone.
    ada2.socket.disconnect();
    assert_eq!(
        Client::members(&bob.event("presence").await),
        ["bob", "carol"]
    );
    // A dropped connection (no DISCONNECT packet) counts as well.
    carol.socket.manager().close();
    assert_eq!(Client::members(&bob.event("presence").await), ["bob"]);
    let list = bob.ok("rooms:list", json!({})).await;
    assert_eq!(list["rooms"][0]["members"], 1);
    // ada1 left the room before: it hears nothing of it any more.
    assert!(ada1
        .collect("presence", Duration::from_millis(200))
        .await
        .is_empty());
}

#[tokio::test]
async fn typing_reaches_the_others_only() {
    let server = start(None, fast()).await;
    let mut ada1 = guest(&server, "ada").await;
    let mut ada2 = guest(&server, "ada").await;
    let mut bob = guest(&server, "bob").await;
    let mut eve = guest(&server, "eve").await;
    for c in [&ada1, &ada2, &bob] {
        c.join("general").await;
    }
    eve.join("elsewhere").await;
    // Typing is volatile: a recipient with something still queued (the presence updates of
    // the joins) would not get it, as in Socket.IO. A round trip each first: its answer is
    // written after whatever was queued before it.
    for c in [&bob, &ada1, &ada2] {
        c.ok("rooms:list", json!({})).await;
    }

    ada1.socket
        .emit("typing", &(json!({"room": "general", "typing": true}),))
        .unwrap();
    assert_eq!(
        bob.event("typing").await,
        json!({"room": "general", "user": {"id": "guest:ada", "name": "ada"}, "typing": true})
    );
    // With an ack, it is answered.
    bob.ok("typing", json!({"room": "general", "typing": false}))
        .await;
    // The next typing ada's tabs see is bob's: not their own.
    let expected =
        json!({"room": "general", "user": {"id": "guest:bob", "name": "bob"}, "typing": false});
    assert_eq!(ada1.event("typing").await, expected);
    assert_eq!(ada2.event("typing").await, expected);
    assert!(eve
        .collect("typing", Duration::from_millis(200))
        .await
        .is_empty());

    // Not in the room: refused, as chat:error without an ack.
    eve.socket
        .emit("typing", &(json!({"room": "general", "typing": true}),))
        .unwrap();
    let e = eve.event("chat:error").await;
    assert_eq!(e["code"], "forbidden");
    eve.fails(
        "typing",
        json!({"room": "general", "typing": true}),
        "forbidden",
    )
    .await;
    assert!(bob
        .collect("typing", Duration::from_millis(200))
        .await
        .is_empty());
}

fn ids(page: &Value) -> Vec<i64> {
    page["messages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["id"].as_i64().unwrap())
        .collect()
}

#[tokio::test]
async fn history_pages_and_sync() {
    let server = start(None, fast()).await;
    let ada = guest(&server, "ada").await;
    let bob = guest(&server, "bob").await;
    ada.join("general").await;
    bob.join("other").await;
    let mut all = Vec::new();
    for i in 0..120 {
        all.push(
            ada.say("general", &format!("m{i}")).await["id"]
                .as_i64()
                .unwrap(),
        );
        if i % 10 == 0 {
            bob.say("other", "noise").await;
        }
    }

    // Joining gives the latest page.
    let j = bob.join("general").await;
    assert_eq!(ids(&j), all[70..]);
    assert_eq!(j["hasMore"], true);
    assert_eq!(j["messages"][49]["text"], "m119");

    // history walks back, without gap or duplicate.
    let mut seen = ids(&j);
    let mut before = seen[0];
    loop {
        let p = bob
            .ok("history", json!({"room": "general", "before": before}))
            .await;
        let mut page = ids(&p);
        assert!(page.windows(2).all(|w| w[0] < w[1]));
        before = page[0];
        page.extend(seen);
        seen = page;
        if p["hasMore"] == false {
            break;
        }
    }
    assert_eq!(seen, all);

    // limit: capped at historyPage, at least 1.
    let p = bob
        .ok("history", json!({"room": "general", "limit": 500}))
        .await;
    assert_eq!(ids(&p).len(), 50);
    let p = bob
        .ok(
            "history",
            json!({"room": "general", "limit": 5, "before": all[10]}),
        )
        .await;
    assert_eq!(ids(&p), all[5..10]);
    assert_eq!(p["hasMore"], true);
    let p = bob
        .ok(
            "history",
            json!({"room": "general", "limit": 5, "before": all[5]}),
        )
        .await;
    assert_eq!(ids(&p), all[0..5]);
    assert_eq!(p["hasMore"], false);
    // The socket does not have to be in the room to read it.
    let carol = guest(&server, "carol").await;
    let p = carol
        .ok("history", json!({"room": "general", "limit": 1}))
        .await;
    assert_eq!(ids(&p), [all[119]]);
    bob.fails(
        "history",
        json!({"room": "general", "limit": 0}),
        "bad_request",
    )
    .await;
    bob.fails(
        "history",
        json!({"room": "general", "before": -1}),
        "bad_request",
    )
    .await;
    bob.fails("history", json!({"room": "nowhere"}), "not_found")
        .await;

    // room:sync walks forward.
    let mut synced: Vec<i64> = Vec::new();
    let mut after = 0;
    loop {
        let p = carol
            .ok("room:sync", json!({"room": "general", "after": after}))
            .await;
        let page = ids(&p);
        assert!(page.len() <= 50);
        synced.extend(&page);
        if p["hasMore"] == false {
            break;
        }
        after = *page.last().unwrap();
    }
    assert_eq!(synced, all);
    let p = carol
        .ok("room:sync", json!({"room": "general", "after": all[119]}))
        .await;
    assert_eq!(p["messages"], json!([]));
    assert_eq!(p["hasMore"], false);
    let p = carol
        .ok("room:sync", json!({"room": "general", "after": all[117]}))
        .await;
    assert_eq!(ids(&p), all[118..]);
    carol
        .fails("room:sync", json!({"room": "general"}), "bad_request")
        .await;
    carol
        .fails(
            "room:sync",
            json!({"room": "general", "after": -5}),
            "bad_request",
        )
        .await;
    carol
        .fails(
            "room:sync",
            json!({"room": "nowhere", "after": 0}),
            "not_found",
        )
        .await;
}

#[tokio::test]
async fn resend_with_the_same_client_id_is_not_broadcast_again() {
    let server = start(None, fast()).await;
    let ada = guest(&server, "ada").await;
    let mut bob = guest(&server, "bob").await;
    ada.join("general").await;
    bob.join("general").await;

    let send = |text: &str, cid: &str| json!({"room": "general", "text": text, "clientId": cid});
    let first = ada.ok("message:send", send("once", "c-1")).await["message"].clone();
    assert_eq!(bob.event("message").await, first);
    let again = ada.ok("message:send", send("once (retry)", "c-1")).await;
    assert_eq!(again["message"], first);

    // After a reconnect (a new connection of the same user) too.
    ada.socket.disconnect();
    let ada = guest(&server, "ada").await;
    ada.join("general").await;
    let again = ada.ok("message:send", send("once", "c-1")).await;
    assert_eq!(again["message"], first);
    // Another user may use the same clientId.
    let own = bob.ok("message:send", send("mine", "c-1")).await["message"].clone();
    assert_ne!(own["id"], first["id"]);

    // The next message bob sees is his own: the resends were not broadcast.
    assert_eq!(bob.event("message").await, own);
    let history = bob.ok("history", json!({"room": "general"})).await;
    assert_eq!(ids(&history).len(), 2);

    let long_id = "c".repeat(65);
    ada.fails("message:send", send("x", &long_id), "bad_request")
        .await;
    ada.fails("message:send", send("x", ""), "bad_request")
        .await;
    ada.ok("message:send", send("x", &"c".repeat(64))).await;
}

#[tokio::test]
async fn message_length_is_counted_in_characters_after_trimming() {
    let server = start(
        None,
        ChatSettings {
            message_length: 10,
            ..fast()
        },
    )
    .await;
    let ada = guest(&server, "ada").await;
    assert_eq!(ada.hello["limits"]["messageLength"], 10);
    ada.join("general").await;
    let msg = |t: &str| json!({"room": "general", "text": t});
    let a = ada
        .fails("message:send", msg("12345678901"), "too_long")
        .await;
    assert!(a["error"]["message"].as_str().unwrap().contains("10"));
    ada.fails("message:send", msg(&"x".repeat(100_000)), "too_long")
        .await;
    assert_eq!(
        ada.say("general", "   1234567890   ").await["text"],
        "1234567890"
    );
    assert_eq!(
        ada.say("general", "😀😀😀😀😀😀😀😀😀😀").await["text"],
        "😀😀😀😀😀😀😀😀😀😀"
    );
    ada.fails("message:send", msg("   \n\t "), "bad_request")
        .await;
    ada.fails("message:send", msg(""), "bad_request").await;
    let p = ada.ok("history", json!({"room": "general"})).await;
    assert_eq!(ids(&p).len(), 2);
}

#[tokio::test]
async fn too_many_rooms() {
    let server = start(
        None,
        ChatSettings {
            rooms_per_socket: 3,
            ..fast()
        },
    )
    .await;
    let ada = guest(&server, "ada").await;
    for r in ["a", "b", "c"] {
        ada.join(r).await;
    }
    let e = ada
        .fails("room:join", json!({"room": "d"}), "too_many_rooms")
        .await;
    assert!(e["error"]["message"].as_str().unwrap().contains('3'));
    // Joining again a room already joined is fine.
    ada.join("a").await;
    ada.ok("room:leave", json!({"room": "a"})).await;
    ada.join("d").await;
    // The limit is per connection: another tab of the same user has its own.
    let ada2 = guest(&server, "ada").await;
    for r in ["a", "b", "c"] {
        ada2.join(r).await;
    }
    // "d" was refused before: it was never created.
    let list = ada.ok("rooms:list", json!({})).await;
    let names: Vec<&str> = list["rooms"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["a", "b", "c", "d"]);
}

#[tokio::test]
async fn rate_limit_answers_then_disconnects_while_others_are_served() {
    let server = start(
        None,
        ChatSettings {
            events_per_second: 5,
            ..Default::default()
        },
    )
    .await;
    let abuser = guest(&server, "abuser").await;
    let calm = guest(&server, "calm").await;
    calm.join("general").await;
    abuser.join("spam").await;

    // 30 requests at once: the rest of the burst (10, one went on the join) passes, then
    // rate_limited, and the sixth refusal within 10 s disconnects. `typing` answers
    // without waiting on anything, so the answers go out in order.
    let acks: Vec<_> = (0..30)
        .map(|_| {
            abuser
                .socket
                .emit_with_ack("typing", &(json!({"room": "spam", "typing": true}),))
                .unwrap()
        })
        .collect();
    let (mut ok, mut limited, mut lost) = (0, 0, 0);
    for a in acks {
        match within(a).await {
            Ok(p) => {
                let v = p.arg::<Value>(0).unwrap();
                if v["ok"] == true {
                    ok += 1;
                } else {
                    assert_eq!(v["error"]["code"], "rate_limited", "{v}");
                    limited += 1;
                }
            }
            Err(_) => lost += 1,
        }
    }
    // 5 tokens a second come back meanwhile: one or two more on a slow machine.
    assert!((9..=12).contains(&ok), "ok {ok}");
    assert_eq!(limited, 6, "refusals before the disconnect");
    assert_eq!(ok + limited + lost, 30);
    loop {
        match within(abuser.socket.next_lifecycle()).await {
            Lifecycle::Disconnect(r) => {
                assert_eq!(r, DisconnectReason::ServerDisconnect);
                break;
            }
            Lifecycle::Connect { .. } => continue,
            other => panic!("{other:?}"),
        }
    }
    // The other client was served all along.
    for i in 0..8 {
        calm.say("general", &format!("still here {i}")).await;
    }

    // Events without an ack are refused with chat:error.
    let mut typist = guest(&server, "typist").await;
    typist.join("general").await;
    for _ in 0..15 {
        typist
            .socket
            .emit("typing", &(json!({"room": "general", "typing": true}),))
            .unwrap();
    }
    let e = typist.event("chat:error").await;
    assert_eq!(e["code"], "rate_limited");
    assert!(e["message"].is_string());
}

#[tokio::test]
async fn bad_payloads_are_answered_bad_request() {
    let server = start(None, fast()).await;
    let mut ada = guest(&server, "ada").await;
    let bob = guest(&server, "bob").await;
    ada.join("general").await;
    bob.join("general").await;
    let huge = "r".repeat(100_000);
    let cases: Vec<(&str, Value)> = vec![
        ("room:join", Value::Null),
        ("room:join", json!("general")),
        ("room:join", json!(42)),
        ("room:join", json!(["general"])),
        ("room:join", json!({})),
        ("room:join", json!({"room": 5})),
        ("room:join", json!({"room": null})),
        ("room:join", json!({"room": ""})),
        ("room:join", json!({"room": "has space"})),
        ("room:join", json!({"room": "user:ada"})),
        ("room:join", json!({"room": "naïve"})),
        ("room:join", json!({"room": "x".repeat(65)})),
        ("room:join", json!({"room": huge})),
        ("room:leave", json!({})),
        ("room:leave", json!({"room": ["general"]})),
        ("message:send", json!({"room": "general"})),
        ("message:send", json!({"text": "hi"})),
        ("message:send", json!({"room": "general", "text": 5})),
        ("message:send", json!({"room": "general", "text": ["hi"]})),
        (
            "message:send",
            json!({"room": "general", "text": "hi", "clientId": 7}),
        ),
        ("message:send", json!({"room": huge, "text": "hi"})),
        ("history", json!({})),
        ("history", json!({"room": "general", "before": "x"})),
        ("history", json!({"room": "general", "limit": 1.5})),
        ("history", json!({"room": "general", "limit": "10"})),
        ("room:sync", json!({"room": "general", "after": "0"})),
        ("room:sync", json!({"room": "general", "after": 1e300})),
        ("typing", json!({"room": "general"})),
        ("typing", json!({"room": "general", "typing": "yes"})),
        ("typing", json!(null)),
    ];
    for (event, payload) in cases {
        let a = ada.req(event, payload.clone()).await;
        assert_eq!(a["ok"], false, "{event} {payload}");
        assert_eq!(a["error"]["code"], "bad_request", "{event} {payload}: {a}");
    }
    // No arguments at all, and several.
    let a = within(ada.socket.emit_with_ack("room:join", &()).unwrap())
        .await
        .unwrap()
        .arg::<Value>(0)
        .unwrap();
    assert_eq!(a["error"]["code"], "bad_request");
    // An unknown event, with or without ack, gets chat:error.
    ada.socket.emit("nope", &(json!({}),)).unwrap();
    assert_eq!(ada.event("chat:error").await["code"], "bad_request");
    // Without an ack, a bad payload is a chat:error.
    ada.socket.emit("typing", &(json!({"room": 1}),)).unwrap();
    assert_eq!(ada.event("chat:error").await["code"], "bad_request");

    // Everyone is still served.
    let m = bob.say("general", "fine").await;
    assert_eq!(ada.event("message").await, m);
    ada.say("general", "me too").await;
}

#[tokio::test]
async fn a_room_named_after_a_socket_id_is_refused() {
    let server = start(None, fast()).await;
    let ada = guest(&server, "ada").await;
    let bob = guest(&server, "bob").await;
    let bob_sid = bob.socket.id().unwrap();
    ada.fails("room:join", json!({"room": bob_sid}), "forbidden")
        .await;
    // Its own id is no chat room either.
    let own = ada.socket.id().unwrap();
    ada.fails(
        "message:send",
        json!({"room": own, "text": "to myself"}),
        "forbidden",
    )
    .await;
}

#[tokio::test]
async fn a_recovered_session_is_back_in_its_rooms() {
    let io = SocketIo::builder().recovery(Recovery::default()).build();
    let server = start_on(io, None, fast()).await;
    let socket = within(
        Manager::builder(&server.url)
            .transports([Transport::WebSocket])
            .reconnection_delay(Duration::from_millis(50))
            .reconnection_delay_max(Duration::from_millis(100))
            .randomization_factor(0.0)
            .build()
            .unwrap()
            .socket("/")
            .auth(json!({"name": "ada"}))
            .connect(),
    )
    .await
    .unwrap();
    let mut ada = Client {
        socket,
        hello: Value::Null,
        pending: Vec::new(),
    };
    ada.hello = ada.event("hello").await;
    let mut bob = guest(&server, "bob").await;
    ada.join("general").await;
    bob.join("general").await;
    assert_eq!(
        Client::members(&bob.event("presence").await),
        ["ada", "bob"]
    );

    // The server drops ada's connection without a DISCONNECT: she reconnects and
    // recovers her session.
    let sid = ada.socket.id().unwrap();
    let server_side = server
        .io
        .sockets()
        .into_iter()
        .find(|s| s.id().as_str() == sid)
        .unwrap();
    server_side.close_transport();
    assert_eq!(Client::members(&bob.event("presence").await), ["bob"]);
    // The first connect is still in the queue.
    assert_eq!(
        within(ada.socket.next_lifecycle()).await,
        Lifecycle::Connect { recovered: false }
    );
    assert_eq!(
        within(ada.socket.next_lifecycle()).await,
        Lifecycle::Disconnect(DisconnectReason::TransportClose)
    );
    assert_eq!(
        within(ada.socket.next_lifecycle()).await,
        Lifecycle::Connect { recovered: true }
    );
    assert_eq!(ada.socket.id().unwrap(), sid);
    assert_eq!(ada.event("hello").await["user"]["id"], "guest:ada");
    assert_eq!(
        Client::members(&bob.event("presence").await),
        ["ada", "bob"]
    );
    // Still in the room: she sends without joining again, and hears bob.
    let m = ada.say("general", "back").await;
    assert_eq!(bob.event("message").await, m);
    let m = bob.say("general", "welcome back").await;
    loop {
        let got = ada.event("message").await;
        if got["id"] == m["id"] {
            assert_eq!(got, m);
            break;
        }
    }
    // Her room count was rebuilt too: leaving works and is announced.
    ada.ok("room:leave", json!({"room": "general"})).await;
    assert_eq!(Client::members(&bob.event("presence").await), ["bob"]);
}

#[tokio::test]
async fn a_store_failure_is_answered_internal() {
    let server = start(None, fast()).await;
    let mut ada = guest(&server, "ada").await;
    ada.join("general").await;
    ada.say("general", "before").await;
    // Break the real database under the server: the messages are gone.
    let conn = rusqlite::Connection::open(&server.db).unwrap();
    conn.busy_timeout(Duration::from_secs(5)).unwrap();
    conn.execute_batch("DROP TABLE messages").unwrap();
    drop(conn);
    let a = ada
        .fails(
            "message:send",
            json!({"room": "general", "text": "after"}),
            "internal",
        )
        .await;
    assert_eq!(a["error"]["message"], "the history store failed");
    ada.fails("history", json!({"room": "general"}), "internal")
        .await;
    // Nothing was broadcast, and what does not need the messages still works.
    assert_eq!(ada.event("message").await["text"], "before");
    assert!(ada
        .collect("message", Duration::from_millis(200))
        .await
        .is_empty());
    let list = ada.ok("rooms:list", json!({})).await;
    assert_eq!(list["rooms"][0]["name"], "general");
    ada.ok("typing", json!({"room": "general", "typing": true}))
        .await;
}
