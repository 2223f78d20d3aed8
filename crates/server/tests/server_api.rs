//! The HTTP API against the real binary, with real Socket.IO clients on the other end:
//! the key, publishing to rooms and sockets, chat messages, rooms and presence,
//! disconnecting, and the answers to bad requests.

// Test code: a panic is a test failure.
#![allow(clippy::unwrap_used)]

mod server_common;

use iolite_client::{DisconnectReason, Transport};
use serde_json::{json, Value};
use server_common::{call, next_disconnect, next_named, within, Resp, Server};

const KEY: &str = "test-api-key-0123456789";

fn start() -> Server {
    Server::start_with(&["--max-payload", "4096"], &[("IOLITE_API_KEY", KEY)])
}

async fn api(server: &Server, method: &str, path: &str, body: Option<Value>) -> Resp {
    let auth = format!("Bearer {KEY}");
    let body = body.map(|b| b.to_string());
    let mut headers = vec![("authorization", auth.as_str())];
    if body.is_some() {
        headers.push(("content-type", "application/json"));
    }
    server
        .request(method, path, &headers, body.as_deref().map(str::as_bytes))
        .await
}

fn assert_error(r: &Resp, status: u16, code: &str) {
    assert_eq!(r.status, status, "{}", r.text());
    assert_eq!(
        r.header("content-type"),
        Some("application/json"),
        "{}",
        r.text()
    );
    let v = r.json();
    assert_eq!(v["error"]["code"], code, "{v}");
    assert!(
        v["error"]["message"]
            .as_str()
            .is_some_and(|m| !m.is_empty()),
        "{v}"
    );
}

#[tokio::test]
async fn without_a_key_configured_the_api_is_off() {
    let server = Server::start(&[]);
    let r = server.get("/api/rooms").await;
    assert_error(&r, 404, "not_found");
    assert!(r.json()["error"]["message"]
        .as_str()
        .unwrap()
        .contains("api.key"));
    let r = server
        .request(
            "POST",
            "/api/rooms/general/events",
            &[("authorization", "Bearer anything-at-all-1234")],
            Some(b"{}"),
        )
        .await;
    assert_error(&r, 404, "not_found");
}

#[tokio::test]
async fn a_missing_or_wrong_key_gets_401() {
    let server = start();
    let r = server.get("/api/rooms").await;
    assert_error(&r, 401, "unauthorized");
    assert_eq!(
        r.header("www-authenticate"),
        Some("Bearer realm=\"iolite\"")
    );
    for (name, value) in [
        ("authorization", "Bearer wrong-key-0123456789".to_owned()),
        ("authorization", format!("Bearer {KEY}x")),
        ("authorization", format!("Basic {KEY}")),
        ("authorization", "Bearer".to_owned()),
        ("x-api-key", "wrong".to_owned()),
        ("x-api-key", KEY[..KEY.len() - 1].to_owned()),
    ] {
        let r = server
            .request("GET", "/api/rooms", &[(name, &value)], None)
            .await;
        assert_error(&r, 401, "unauthorized");
    }
    // 401 comes before the body is looked at, and for routes that do not exist.
    let r = server
        .request("POST", "/api/rooms/general/events", &[], Some(b"not json"))
        .await;
    assert_error(&r, 401, "unauthorized");
    assert_error(&server.get("/api/nothing/here").await, 401, "unauthorized");

    // Both ways of giving the key work.
    let r = server
        .request("GET", "/api/rooms", &[("x-api-key", KEY)], None)
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    let bearer = format!("Bearer {KEY}");
    let r = server
        .request("GET", "/api/rooms", &[("authorization", &bearer)], None)
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    let m = server.get("/metrics").await.text();
    assert!(
        server_common::sample(&m, "iolite_refusals_total{reason=\"api_key\"}").unwrap() >= 9.0,
        "{m}"
    );
}

#[tokio::test]
async fn publishing_to_a_room_reaches_its_members_only() {
    let server = start();
    let ada = server.guest("ada", &[Transport::WebSocket]).await;
    let bob = server.guest("bob", &[Transport::Polling]).await;
    let eve = server.guest("eve", &[Transport::WebSocket]).await;
    for s in [&ada, &bob] {
        assert_eq!(
            call(s, "room:join", json!({"room": "general"})).await["ok"],
            true
        );
    }
    assert_eq!(
        call(&eve, "room:join", json!({"room": "random"})).await["ok"],
        true
    );

    let r = api(
        &server,
        "POST",
        "/api/rooms/general/events",
        Some(json!({"event": "announce", "data": {"text": "deploy at 5"}})),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()["localRecipients"], 2);
    for s in [&ada, &bob] {
        let e = next_named(s, "announce").await;
        assert_eq!(e.args.values(), [json!({"text": "deploy at 5"})]);
    }
    // Without data: an event with no argument.
    let r = api(
        &server,
        "POST",
        "/api/rooms/general/events",
        Some(json!({"event": "ping"})),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert!(next_named(&ada, "ping").await.args.values().is_empty());
    // eve, in another room, got neither.
    let r = api(
        &server,
        "POST",
        "/api/rooms/random/events",
        Some(json!({"event": "marker", "data": 1})),
    )
    .await;
    assert_eq!(r.json()["localRecipients"], 1);
    let first = within(eve.next_event()).await.unwrap();
    let mut names = vec![first.name];
    while let Some(e) = eve.try_next_event() {
        names.push(e.name);
    }
    assert!(
        !names.contains(&"announce".to_owned()) && !names.contains(&"ping".to_owned()),
        "{names:?}"
    );
    // A room nobody is in: fine, nobody gets it.
    let r = api(
        &server,
        "POST",
        "/api/rooms/empty/events",
        Some(json!({"event": "x"})),
    )
    .await;
    assert_eq!(r.json()["localRecipients"], 0);
}

#[tokio::test]
async fn publishing_to_one_socket_and_disconnecting_it() {
    let server = start();
    let ada = server.guest("ada", &[Transport::WebSocket]).await;
    let other = server.guest("ada", &[Transport::Polling]).await;
    let id = ada.id().unwrap();
    let r = api(
        &server,
        "POST",
        &format!("/api/sockets/{id}/events"),
        Some(json!({"event": "direct", "data": [1, 2]})),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(
        next_named(&ada, "direct").await.args.values(),
        [json!([1, 2])]
    );

    let info = api(&server, "GET", &format!("/api/sockets/{id}"), None).await;
    assert_eq!(info.status, 200);
    assert_eq!(
        info.json()["user"],
        json!({"id": "guest:ada", "name": "ada"})
    );
    assert_eq!(info.json()["transport"], "websocket");

    let r = api(&server, "DELETE", &format!("/api/sockets/{id}"), None).await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()["disconnected"], true);
    assert_eq!(
        next_disconnect(&ada).await,
        DisconnectReason::ServerDisconnect
    );
    // The other socket of the same user is still there.
    assert!(other.connected());
    let again = api(&server, "DELETE", &format!("/api/sockets/{id}"), None).await;
    assert_error(&again, 404, "not_found");
    let gone = api(
        &server,
        "POST",
        &format!("/api/sockets/{id}/events"),
        Some(json!({"event": "x"})),
    )
    .await;
    assert_error(&gone, 404, "not_found");
}

#[tokio::test]
async fn unknown_and_malformed_socket_ids_get_404() {
    let server = start();
    for id in ["AAAAAAAAAAAAAAAAAAAA", "not-a-socket-id", "%E2%82%AC"] {
        assert_error(
            &api(&server, "DELETE", &format!("/api/sockets/{id}"), None).await,
            404,
            "not_found",
        );
        assert_error(
            &api(&server, "GET", &format!("/api/sockets/{id}"), None).await,
            404,
            "not_found",
        );
        assert_error(
            &api(
                &server,
                "POST",
                &format!("/api/sockets/{id}/events"),
                Some(json!({"event": "x"})),
            )
            .await,
            404,
            "not_found",
        );
    }
}

#[tokio::test]
async fn rooms_and_presence_list_sockets_and_distinct_users() {
    let server = start();
    let ada1 = server.guest("ada", &[Transport::WebSocket]).await;
    let ada2 = server.guest("ada", &[Transport::Polling]).await;
    let bob = server.guest("bob", &[Transport::WebSocket]).await;
    for s in [&ada1, &ada2, &bob] {
        assert_eq!(
            call(s, "room:join", json!({"room": "general"})).await["ok"],
            true
        );
    }
    assert_eq!(
        call(&bob, "room:join", json!({"room": "ops"})).await["ok"],
        true
    );

    let rooms = api(&server, "GET", "/api/rooms", None).await;
    assert_eq!(rooms.status, 200);
    let rooms = rooms.json()["rooms"].as_array().unwrap().clone();
    let find = |name: &str| rooms.iter().find(|r| r["name"] == name).cloned();
    assert_eq!(
        find("general"),
        Some(json!({"name": "general", "sockets": 3, "members": 2})),
        "{rooms:?}"
    );
    assert_eq!(
        find("ops"),
        Some(json!({"name": "ops", "sockets": 1, "members": 1})),
        "{rooms:?}"
    );
    // Sockets' own id rooms are not listed.
    for s in [&ada1, &ada2, &bob] {
        assert!(find(&s.id().unwrap()).is_none(), "{rooms:?}");
    }

    let p = api(&server, "GET", "/api/rooms/general/presence", None).await;
    assert_eq!(p.status, 200, "{}", p.text());
    let p = p.json();
    assert_eq!(p["room"], "general");
    assert_eq!(
        p["users"],
        json!([{"id": "guest:ada", "name": "ada"}, {"id": "guest:bob", "name": "bob"}])
    );
    let mut ids: Vec<String> = p["sockets"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["id"].as_str().unwrap().to_owned())
        .collect();
    ids.sort();
    let mut expected: Vec<String> = [&ada1, &ada2, &bob]
        .iter()
        .map(|s| s.id().unwrap())
        .collect();
    expected.sort();
    assert_eq!(ids, expected);
    let bob_entry = p["sockets"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["id"] == bob.id().unwrap().as_str())
        .unwrap()
        .clone();
    assert!(
        bob_entry["rooms"]
            .as_array()
            .unwrap()
            .contains(&json!("ops")),
        "{bob_entry}"
    );
    assert_eq!(bob_entry["user"]["name"], "bob");

    // Leaving shows at once.
    assert_eq!(
        call(&bob, "room:leave", json!({"room": "general"})).await["ok"],
        true
    );
    let p = api(&server, "GET", "/api/rooms/general/presence", None)
        .await
        .json();
    assert_eq!(p["users"], json!([{"id": "guest:ada", "name": "ada"}]));
    // A room nobody is in is empty, not an error.
    let p = api(&server, "GET", "/api/rooms/nobody-here/presence", None).await;
    assert_eq!(p.status, 200);
    assert_eq!(
        p.json(),
        json!({"room": "nobody-here", "sockets": [], "users": []})
    );
}

#[tokio::test]
async fn posting_a_chat_message_stores_and_broadcasts_it() {
    let server = start();
    let ada = server.guest("ada", &[Transport::WebSocket]).await;
    assert_eq!(
        call(&ada, "room:join", json!({"room": "general"})).await["ok"],
        true
    );
    let r = api(
        &server,
        "POST",
        "/api/rooms/general/messages",
        Some(json!({"user": {"id": "bot:deploy", "name": "Deploy bot"}, "text": "shipped", "clientId": "d-1"})),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text());
    let stored = r.json()["message"].clone();
    assert_eq!(stored["text"], "shipped");
    let got = next_named(&ada, "message").await;
    assert_eq!(got.args.get(0).unwrap()["id"], stored["id"]);
    assert_eq!(got.args.get(0).unwrap()["user"]["name"], "Deploy bot");
    // The same clientId again: the stored message, not a second one.
    let again = api(
        &server,
        "POST",
        "/api/rooms/general/messages",
        Some(json!({"user": {"id": "bot:deploy", "name": "Deploy bot"}, "text": "shipped", "clientId": "d-1"})),
    )
    .await;
    assert_eq!(again.json()["message"]["id"], stored["id"]);
    // It is in the history a new member gets.
    let bob = server.guest("bob", &[Transport::Polling]).await;
    let joined = call(&bob, "room:join", json!({"room": "general"})).await;
    let texts: Vec<&Value> = joined["messages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| &m["text"])
        .collect();
    assert_eq!(texts, [&json!("shipped")], "{joined}");

    let bad_room = api(
        &server,
        "POST",
        "/api/rooms/bad%20room/messages",
        Some(json!({"user": {"id": "u", "name": "n"}, "text": "x"})),
    )
    .await;
    assert_error(&bad_room, 400, "bad_request");
    let empty = api(
        &server,
        "POST",
        "/api/rooms/general/messages",
        Some(json!({"user": {"id": "u", "name": "n"}, "text": "   "})),
    )
    .await;
    assert_eq!(empty.status, 400, "{}", empty.text());
    let no_user = api(
        &server,
        "POST",
        "/api/rooms/general/messages",
        Some(json!({"text": "x"})),
    )
    .await;
    assert_error(&no_user, 400, "bad_request");
}

#[tokio::test]
async fn bad_requests_get_json_errors_with_the_right_status() {
    let server = start();
    let bearer = format!("Bearer {KEY}");
    let auth = ("authorization", bearer.as_str());
    let json_ct = ("content-type", "application/json");
    let post = |body: &'static [u8], headers: Vec<(&'static str, &'static str)>| {
        let server = &server;
        async move {
            let mut h = vec![auth];
            h.extend(headers);
            server
                .request("POST", "/api/rooms/general/events", &h, Some(body))
                .await
        }
    };
    assert_error(&post(b"{not json", vec![json_ct]).await, 400, "bad_request");
    assert_error(
        &post(b"{\"event\": 5}", vec![json_ct]).await,
        400,
        "bad_request",
    );
    assert_error(
        &post(b"{\"data\": 1}", vec![json_ct]).await,
        400,
        "bad_request",
    );
    assert_error(
        &post(b"{\"event\": \"x\", \"extra\": 1}", vec![json_ct]).await,
        400,
        "bad_request",
    );
    assert_error(
        &post(b"{\"event\": \"\"}", vec![json_ct]).await,
        400,
        "bad_request",
    );
    assert_error(
        &post(b"{\"event\": \"connect\"}", vec![json_ct]).await,
        400,
        "bad_request",
    );
    assert_error(
        &post(b"{\"event\": \"disconnect\"}", vec![json_ct]).await,
        400,
        "bad_request",
    );
    assert_error(
        &post(b"{\"event\": \"x\"}", vec![]).await,
        415,
        "unsupported_media_type",
    );
    assert_error(
        &post(b"{\"event\": \"x\"}", vec![("content-type", "text/plain")]).await,
        415,
        "unsupported_media_type",
    );
    let long = format!("{{\"event\": \"{}\"}}", "e".repeat(300));
    let r = server
        .request(
            "POST",
            "/api/rooms/general/events",
            &[auth, json_ct],
            Some(long.as_bytes()),
        )
        .await;
    assert_error(&r, 400, "bad_request");
    // Over --max-payload (4096 bytes).
    let big = format!("{{\"event\": \"x\", \"data\": \"{}\"}}", "a".repeat(5000));
    let r = server
        .request(
            "POST",
            "/api/rooms/general/events",
            &[auth, json_ct],
            Some(big.as_bytes()),
        )
        .await;
    assert_error(&r, 413, "payload_too_large");

    assert_error(
        &server.request("PUT", "/api/rooms", &[auth], None).await,
        405,
        "method_not_allowed",
    );
    assert_error(
        &server
            .request("GET", "/api/rooms/general/events", &[auth], None)
            .await,
        405,
        "method_not_allowed",
    );
    assert_error(
        &server.request("GET", "/api/nothing", &[auth], None).await,
        404,
        "not_found",
    );
    assert_error(
        &server.request("GET", "/api", &[auth], None).await,
        404,
        "not_found",
    );
    let long_room = format!("/api/rooms/{}/events", "r".repeat(300));
    let r = server
        .request(
            "POST",
            &long_room,
            &[auth, json_ct],
            Some(b"{\"event\": \"x\"}"),
        )
        .await;
    assert_error(&r, 400, "bad_request");

    let m = server.get("/metrics").await.text();
    assert!(
        server_common::sample(&m, "iolite_api_requests_total{status=\"400\"}").unwrap() >= 8.0,
        "{m}"
    );
}
