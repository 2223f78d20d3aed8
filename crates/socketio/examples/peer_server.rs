//! The server of the real-peer tests: `tests/peers/CONTRACT.md` on iolite (the same
//! behaviour as `tests/peers/reference-server.mjs` on Node's socket.io).
//!
//! `PORT=3000 cargo run -p iolite --example peer_server`; environment: `PORT`,
//! `PING_INTERVAL`, `PING_TIMEOUT` (ms), `MAX_PAYLOAD` (bytes), `CONNECT_TIMEOUT` (ms),
//! `PARSER` (`msgpack` or json).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use iolite::{
    AckSender, Args, Bin, ConnectError, Cors, Data, DisconnectReason, Event, ParserKind, Recovery,
    SocketIo, SocketRef, State,
};
use serde_json::{json, Value};

type Reasons = Arc<Mutex<HashMap<String, String>>>;

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

fn env_u64(name: &str) -> Option<u64> {
    std::env::var(name).ok()?.parse().ok()
}

fn sorted_rooms(s: &SocketRef) -> Vec<String> {
    let mut r: Vec<String> = s.rooms().iter().map(|r| r.to_string()).collect();
    r.sort();
    r
}

fn record_reason(socket: &SocketRef, reasons: &Reasons) {
    let reasons = reasons.clone();
    socket.on_disconnect(move |s: SocketRef, reason: DisconnectReason| async move {
        lock(&reasons).insert(s.id().to_string(), reason.as_str().to_owned());
    });
}

fn echo(socket: &SocketRef) {
    socket.on(
        "echo",
        |s: SocketRef, Args(args): Args, Bin(bin): Bin, ack: AckSender| async move {
            if ack.is_requested() {
                let _ = ack.bin(bin).send_args(args);
            } else {
                let _ = s.bin(bin).emit_args("echo", args);
            }
        },
    );
}

fn whoami(s: &SocketRef) -> Value {
    json!({
        "id": s.id().as_str(),
        "recovered": s.recovered(),
        "rooms": sorted_rooms(s),
        "transport": s.transport().as_str(),
    })
}

fn split_first(mut args: Vec<Value>) -> (Value, Vec<Value>) {
    if args.is_empty() {
        return (Value::Null, args);
    }
    let first = args.remove(0);
    (first, args)
}

fn on_root(socket: SocketRef, io: SocketIo, reasons: Reasons) {
    record_reason(&socket, &reasons);
    echo(&socket);
    // The last event's arguments with their binary attachments, as Node keeps the Buffers.
    type Last = (Value, Vec<bytes::Bytes>);
    let last_any: Arc<Mutex<Last>> = Arc::new(Mutex::new((Value::Null, Vec::new())));
    let la = last_any.clone();
    socket.on_any(
        move |Event(event): Event, Args(args): Args, Bin(bin): Bin| {
            let la = la.clone();
            async move {
                if event != "last-any" {
                    let mut v = vec![Value::String(event)];
                    v.extend(args);
                    *lock(&la) = (Value::Array(v), bin);
                }
            }
        },
    );
    socket.on("last-any", move |ack: AckSender| {
        let (v, bin) = lock(&last_any).clone();
        async move {
            let _ = ack.bin(bin).send(&v);
        }
    });
    socket.on(
        "join",
        |s: SocketRef, Data(room): Data<String>, ack: AckSender| async move {
            s.join(room);
            let _ = ack.send(&sorted_rooms(&s));
        },
    );
    socket.on(
        "leave",
        |s: SocketRef, Data(room): Data<String>, ack: AckSender| async move {
            s.leave(&room);
            let _ = ack.send(&sorted_rooms(&s));
        },
    );
    socket.on(
        "to-room",
        |s: SocketRef, Args(args): Args, Bin(bin): Bin| async move {
            let (room, rest) = split_first(args);
            if let Some(room) = room.as_str() {
                let _ = s.to(room).bin(bin).emit_args("room", rest);
            }
        },
    );
    let io2 = io.clone();
    socket.on("to-all-except", move |Args(args): Args, ack: AckSender| {
        let io = io2.clone();
        async move {
            let (room, rest) = split_first(args);
            if let Some(room) = room.as_str() {
                let _ = io.except(room).emit_args("except", rest);
            }
            let _ = ack.send_args(vec![]);
        }
    });
    let io2 = io.clone();
    socket.on(
        "to-all",
        move |Args(args): Args, Bin(bin): Bin, ack: AckSender| {
            let io = io2.clone();
            async move {
                let _ = io.broadcast().bin(bin).emit_args("all", args);
                let _ = ack.send_args(vec![]);
            }
        },
    );
    socket.on(
        "ask-me",
        |s: SocketRef, Args(args): Args, Bin(bin): Bin, ack: AckSender| async move {
            let (t, rest) = split_first(args);
            let t = Duration::from_millis(t.as_u64().unwrap_or(1000));
            let Ok(fut) = s.timeout(t).bin(bin).emit_args_with_ack("question", rest) else {
                return;
            };
            // The client's binary comes back as it came: placeholders plus attachments.
            let (answer, bin) = match fut.await {
                Ok(r) => (json!({ "response": r.args }), r.attachments),
                Err(e) => (json!({ "error": e.to_string() }), Vec::new()),
            };
            let _ = ack.bin(bin).send(&answer);
        },
    );
    let io2 = io.clone();
    socket.on("ask-room", move |Data((room, t)): Data<(String, u64)>, ack: AckSender| {
        let io = io2.clone();
        async move {
            let Ok(stream) = io
                .to(room)
                .timeout(Duration::from_millis(t))
                .emit_args_with_ack("question", vec![])
            else {
                return;
            };
            let answer = match stream.collect().await {
                Ok(r) => json!({"error": null, "responses": r.iter().map(|r| r.first()).collect::<Vec<_>>()}),
                Err((e, r)) => json!({"error": e.to_string(), "responses": r.iter().map(|r| r.first()).collect::<Vec<_>>()}),
            };
            let _ = ack.send(&answer);
        }
    });
    socket.on(
        "volatile",
        |s: SocketRef, Data(n): Data<u64>, ack: AckSender| async move {
            let _ = ack.send_args(vec![]);
            for i in 0..n {
                let _ = s.volatile().emit("v", &i);
            }
        },
    );
    socket.on(
        "burst",
        |s: SocketRef, Data(n): Data<u64>, ack: AckSender| async move {
            for i in 0..n {
                let _ = s.emit("seq", &i);
            }
            let _ = ack.send_args(vec![]);
        },
    );
    let io2 = io.clone();
    socket.on(
        "to-room-seq",
        move |Data((room, n)): Data<(String, u64)>, ack: AckSender| {
            let io = io2.clone();
            async move {
                let op = io.to(room);
                for i in 0..n {
                    let _ = op.emit("seq", &i);
                }
                let _ = ack.send_args(vec![]);
            }
        },
    );
    socket.on(
        "set-data",
        |s: SocketRef, Args(args): Args, ack: AckSender| async move {
            let mut d = s.data_value();
            if !d.is_object() {
                d = json!({});
            }
            d["value"] = args.into_iter().next().unwrap_or(Value::Null);
            let _ = s.set_data(&d);
            let _ = ack.send_args(vec![]);
        },
    );
    socket.on("get-data", |s: SocketRef, ack: AckSender| async move {
        let v = s.data_value().get("value").cloned().unwrap_or(Value::Null);
        let _ = ack.send(&v);
    });
    socket.on("whoami", |s: SocketRef, ack: AckSender| async move {
        let _ = ack.send(&whoami(&s));
    });
    socket.on(
        "disconnect-me",
        |s: SocketRef, Args(args): Args| async move {
            if args.first().and_then(Value::as_bool).unwrap_or(false) {
                s.disconnect_all();
            } else {
                s.disconnect();
            }
        },
    );
    socket.on("drop-transport", |s: SocketRef| async move {
        s.close_transport();
    });
    let io2 = io.clone();
    socket.on("disconnect-all", move || {
        let io = io2.clone();
        async move {
            let _ = io.broadcast().disconnect(false);
        }
    });
    let io2 = io.clone();
    socket.on("fetch", move |Data(room): Data<String>, ack: AckSender| {
        let io = io2.clone();
        async move {
            let mut ids: Vec<String> = io
                .to(room)
                .fetch_sockets()
                .await
                .unwrap_or_default()
                .iter()
                .map(|s| s.id().to_string())
                .collect();
            ids.sort();
            let _ = ack.send(&ids);
        }
    });
    let io2 = io.clone();
    socket.on(
        "join-all",
        move |Data((room, target)): Data<(String, String)>, ack: AckSender| {
            let io = io2.clone();
            async move {
                let _ = io.to(target).join(room);
                let _ = ack.send_args(vec![]);
            }
        },
    );
    let io2 = io.clone();
    socket.on(
        "leave-all",
        move |Data((room, target)): Data<(String, String)>, ack: AckSender| {
            let io = io2.clone();
            async move {
                let _ = io.to(target).leave(room);
                let _ = ack.send_args(vec![]);
            }
        },
    );
    socket.on(
        "last-reason",
        |Data(id): Data<String>, ack: AckSender, State(reasons): State<Reasons>| async move {
            let r = lock(&reasons).get(&id).cloned();
            let _ = ack.send(&r);
        },
    );
    let io2 = io.clone();
    socket.on("server-emit", move |Args(args): Args, ack: AckSender| {
        let io = io2.clone();
        async move {
            let _ = io.server_side_emit("hello", args);
            let _ = ack.send_args(vec![]);
        }
    });
}

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let reasons: Reasons = Arc::default();
    let mut b = SocketIo::builder()
        .recovery(Recovery {
            max_disconnection_duration: Duration::from_secs(120),
            skip_middlewares: true,
        })
        .cors(Cors::permissive())
        .with_state(reasons.clone());
    if let Some(ms) = env_u64("PING_INTERVAL") {
        b = b.ping_interval(Duration::from_millis(ms));
    }
    if let Some(ms) = env_u64("PING_TIMEOUT") {
        b = b.ping_timeout(Duration::from_millis(ms));
    }
    if let Some(n) = env_u64("MAX_PAYLOAD") {
        b = b.max_payload(n as usize);
    }
    if let Some(ms) = env_u64("CONNECT_TIMEOUT") {
        b = b.connect_timeout(Duration::from_millis(ms));
    }
    if std::env::var("PARSER").as_deref() == Ok("msgpack") {
        b = b.parser(ParserKind::Msgpack);
    }
    let io = b.build();

    let io2 = io.clone();
    let r = reasons.clone();
    io.ns("/", move |socket: SocketRef| {
        let (io, r) = (io2.clone(), r.clone());
        async move { on_root(socket, io, r) }
    });

    let r = reasons.clone();
    let admin = io.ns("/admin", move |socket: SocketRef| {
        let r = r.clone();
        async move {
            record_reason(&socket, &r);
            echo(&socket);
            socket.on("whoami", |s: SocketRef, ack: AckSender| async move {
                let mut v = whoami(&s);
                v["auth"] = s.handshake().auth().clone();
                let _ = ack.send(&v);
            });
        }
    });
    admin.use_middleware(|socket: SocketRef| async move {
        if socket
            .handshake()
            .auth()
            .get("token")
            .and_then(Value::as_str)
            == Some("secret")
        {
            Ok(())
        } else {
            Err(ConnectError::new("not authorized").with_data(json!({"reason": "bad token"})))
        }
    });

    let r = reasons.clone();
    io.dyn_ns(
        |name: &str| {
            name.strip_prefix("/dyn-").is_some_and(|rest| {
                !rest.is_empty()
                    && rest
                        .bytes()
                        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
            })
        },
        move |socket: SocketRef| {
            let r = r.clone();
            async move {
                record_reason(&socket, &r);
                echo(&socket);
                socket.on("name", |s: SocketRef, ack: AckSender| async move {
                    let _ = ack.send(s.ns());
                });
            }
        },
    );

    let port = env_u64("PORT").unwrap_or(0) as u16;
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port)).await?;
    println!("listening on {}", listener.local_addr()?.port());
    io.serve(listener).await
}
