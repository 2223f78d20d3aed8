//! The adapter trait carries everything a cluster needs: two servers in one process, joined
//! by a small in-process bus adapter, serve raw WebSocket clients as one cluster. Broadcasts,
//! `except`, acks from many, fetch/join/leave/disconnect across nodes and server-side emits
//! all go through the trait, the way the Redis adapter uses it.

#![allow(clippy::unwrap_used)] // test helpers: a failure is the test failing

use std::sync::{Arc, Mutex};
use std::time::Duration;

use iolite::adapter::{
    AckCollector, Adapter, AdapterError, BoxFuture, BroadcastOptions, LocalNamespace, ServerAck,
    SocketInfo,
};
use iolite::parser::Packet;
use iolite::{Room, SocketIo, SocketRef};
use iolite_ws::{ClientBuilder, Message, WebSocket};
use serde_json::{json, Value};

type Ws = WebSocket<iolite_ws::MaybeTlsStream>;

/// The nodes of the cluster (namespace `/` of each).
#[derive(Default)]
struct Bus {
    nodes: Mutex<Vec<LocalNamespace>>,
    closed: std::sync::atomic::AtomicUsize,
}

struct BusAdapter {
    local: LocalNamespace,
    bus: Arc<Bus>,
}

impl BusAdapter {
    fn all(&self) -> Vec<LocalNamespace> {
        self.bus.nodes.lock().unwrap().clone()
    }
    fn others(&self) -> Vec<LocalNamespace> {
        let mut all = self.all();
        all.retain(|n| !n.same_as(&self.local));
        all
    }
}

impl Adapter for BusAdapter {
    fn local(&self) -> &LocalNamespace {
        &self.local
    }
    fn broadcast(&self, packet: Packet, opts: BroadcastOptions) -> Result<(), AdapterError> {
        if opts.flags.local {
            self.local.broadcast(&packet, &opts);
        } else {
            for n in self.all() {
                n.broadcast(&packet, &opts);
            }
        }
        Ok(())
    }
    fn broadcast_with_ack(
        &self,
        packet: Packet,
        opts: BroadcastOptions,
        acks: AckCollector,
    ) -> Result<(), AdapterError> {
        for n in self.all() {
            n.broadcast_with_ack(&packet, &opts, &acks);
        }
        Ok(())
    }
    fn server_count(&self) -> BoxFuture<'_, usize> {
        let n = self.all().len();
        Box::pin(async move { n })
    }
    fn fetch_sockets(
        &self,
        opts: BroadcastOptions,
    ) -> BoxFuture<'_, Result<Vec<SocketInfo>, AdapterError>> {
        let all = self.all();
        Box::pin(async move { Ok(all.iter().flat_map(|n| n.fetch_sockets(&opts)).collect()) })
    }
    fn add_sockets(&self, opts: BroadcastOptions, rooms: Vec<Room>) -> Result<(), AdapterError> {
        for n in self.all() {
            n.add_sockets(&opts, &rooms);
        }
        Ok(())
    }
    fn del_sockets(&self, opts: BroadcastOptions, rooms: Vec<Room>) -> Result<(), AdapterError> {
        for n in self.all() {
            n.del_sockets(&opts, &rooms);
        }
        Ok(())
    }
    fn disconnect_sockets(&self, opts: BroadcastOptions, close: bool) -> Result<(), AdapterError> {
        for n in self.all() {
            n.disconnect_sockets(&opts, close);
        }
        Ok(())
    }
    fn server_side_emit(&self, event: String, args: Vec<Value>) -> Result<(), AdapterError> {
        for n in self.others() {
            n.server_side_event(&event, args.clone(), None);
        }
        Ok(())
    }
    fn server_side_emit_with_ack(
        &self,
        event: String,
        args: Vec<Value>,
        timeout: Duration,
    ) -> BoxFuture<'_, Result<Vec<Value>, AdapterError>> {
        let others = self.others();
        Box::pin(async move {
            let mut out = Vec::new();
            for n in others {
                let (ack, rx) = ServerAck::channel();
                n.server_side_event(&event, args.clone(), Some(ack));
                match tokio::time::timeout(timeout, rx).await {
                    Ok(Ok(v)) => out.push(v),
                    _ => return Err(AdapterError::Timeout),
                }
            }
            Ok(out)
        })
    }
    fn close(&self) {
        self.bus
            .closed
            .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    }
}

struct Node {
    io: SocketIo,
    port: u16,
    sockets: tokio::sync::mpsc::UnboundedReceiver<SocketRef>,
}

async fn node(bus: &Arc<Bus>, name: &'static str) -> Node {
    let b = bus.clone();
    let io = SocketIo::builder()
        .adapter(move |local| {
            b.nodes.lock().unwrap().push(local.clone());
            Arc::new(BusAdapter {
                local,
                bus: b.clone(),
            }) as Arc<dyn Adapter>
        })
        .build();
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
    let ns = io.ns("/", move |socket: SocketRef| {
        let tx = tx.clone();
        async move {
            let _ = tx.send(socket);
        }
    });
    ns.on_server_side("whoami", move |args, ack| {
        if let Some(ack) = ack {
            ack.send(json!({"node": name, "args": args}));
        }
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let io2 = io.clone();
    tokio::spawn(async move { io2.serve(listener).await });
    Node {
        io,
        port,
        sockets: rx,
    }
}

async fn recv_text(ws: &mut Ws) -> Option<String> {
    loop {
        match tokio::time::timeout(Duration::from_secs(2), ws.recv()).await {
            Ok(Some(Ok(Message::Text(t)))) => {
                let t = t.as_str().to_owned();
                if t == "2" {
                    continue; // ping
                }
                return Some(t);
            }
            Ok(Some(Ok(_))) => continue,
            _ => return None,
        }
    }
}

async fn connect(node: &mut Node) -> (Ws, SocketRef) {
    let url = format!(
        "ws://127.0.0.1:{}/socket.io/?EIO=4&transport=websocket",
        node.port
    );
    let (mut ws, _) = ClientBuilder::new(url).connect().await.unwrap();
    recv_text(&mut ws).await.unwrap(); // open
    ws.send(Message::text("40")).unwrap();
    assert!(recv_text(&mut ws).await.unwrap().starts_with("40"));
    let s = tokio::time::timeout(Duration::from_secs(5), node.sockets.recv())
        .await
        .unwrap()
        .unwrap();
    (ws, s)
}

async fn cluster() -> (Node, Node, [(Ws, SocketRef); 4]) {
    let bus = Arc::new(Bus::default());
    let mut a = node(&bus, "a").await;
    let mut b = node(&bus, "b").await;
    // The namespace (and so its adapter) exists once `ns` ran on both.
    assert_eq!(bus.nodes.lock().unwrap().len(), 2);
    let a1 = connect(&mut a).await;
    let a2 = connect(&mut a).await;
    let b1 = connect(&mut b).await;
    let b2 = connect(&mut b).await;
    (a, b, [a1, a2, b1, b2])
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn room_broadcasts_and_except_cross_nodes() {
    let (a, _b, [mut a1, mut a2, mut b1, mut b2]) = cluster().await;
    a1.1.join("r");
    b1.1.join("r");
    b2.1.join("r");
    b2.1.join("muted");
    a.io.to("r").except("muted").emit("news", &1).unwrap();
    assert_eq!(recv_text(&mut a1.0).await.unwrap(), r#"42["news",1]"#);
    assert_eq!(recv_text(&mut b1.0).await.unwrap(), r#"42["news",1]"#);
    assert_eq!(recv_text(&mut b2.0).await, None);
    assert_eq!(recv_text(&mut a2.0).await, None);
    // `local` stays on the node that sent it.
    a.io.to("r").local().emit("here", &2).unwrap();
    assert_eq!(recv_text(&mut a1.0).await.unwrap(), r#"42["here",2]"#);
    assert_eq!(recv_text(&mut b1.0).await, None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acks_are_collected_from_every_node() {
    let (a, _b, mut clients) = cluster().await;
    let stream =
        a.io.broadcast()
            .timeout(Duration::from_secs(3))
            .emit_with_ack("q", &"?")
            .unwrap();
    for (i, (ws, _)) in clients.iter_mut().enumerate() {
        let q = recv_text(ws).await.unwrap();
        let id: String = q[2..].chars().take_while(char::is_ascii_digit).collect();
        ws.send(Message::text(format!("43{id}[{i}]"))).unwrap();
    }
    let mut got: Vec<i64> = stream
        .collect()
        .await
        .unwrap()
        .iter()
        .map(|r| r.first().as_i64().unwrap())
        .collect();
    got.sort();
    assert_eq!(got, vec![0, 1, 2, 3]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_ack_missing_on_one_node_times_out_with_the_others() {
    let (a, _b, [mut a1, _a2, mut b1, _b2]) = cluster().await;
    a1.1.join("q");
    b1.1.join("q");
    let stream =
        a.io.to("q")
            .timeout(Duration::from_millis(300))
            .emit_with_ack("q", &0)
            .unwrap();
    let q = recv_text(&mut b1.0).await.unwrap();
    let id: String = q[2..].chars().take_while(char::is_ascii_digit).collect();
    b1.0.send(Message::text(format!("43{id}[\"b\"]"))).unwrap();
    recv_text(&mut a1.0).await.unwrap(); // asked, never answers
    let (err, got) = stream.collect().await.unwrap_err();
    assert_eq!(err, iolite::AckError::Timeout);
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].first(), json!("b"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fetch_join_leave_disconnect_reach_the_other_node() {
    let (a, b, [a1, _a2, mut b1, mut b2]) = cluster().await;
    b1.1.set_data(&json!({"user": "bo"})).unwrap();
    b1.1.join("team");
    a1.1.join("team");
    let mut found = a.io.to("team").fetch_sockets().await.unwrap();
    found.sort_by_key(|s| s.id().to_string());
    let mut want = vec![a1.1.id(), b1.1.id()];
    want.sort_by_key(|s| s.to_string());
    assert_eq!(found.iter().map(|s| s.id()).collect::<Vec<_>>(), want);
    let remote = found.iter().find(|s| s.id() == b1.1.id()).unwrap();
    assert!(remote.local().is_none(), "b1 lives on the other node");
    assert_eq!(remote.data_value(), &json!({"user": "bo"}));
    assert!(remote.rooms().iter().any(|r| &**r == "team"));

    // Join and leave from node a act on node b's socket.
    a.io.to("team").join("ops").unwrap();
    assert!(b1.1.rooms().iter().any(|r| &**r == "ops"));
    a.io.broadcast().leave("team").unwrap();
    assert!(!b1.1.rooms().iter().any(|r| &**r == "team"));

    // RemoteSocket::emit reaches it on its node.
    remote.emit("direct", &"hi").unwrap();
    assert_eq!(recv_text(&mut b1.0).await.unwrap(), r#"42["direct","hi"]"#);
    // Disconnect a socket of node b from node a.
    let b2_id = b2.1.id();
    let target =
        a.io.fetch_sockets()
            .await
            .unwrap()
            .into_iter()
            .find(|s| s.id() == b2_id)
            .unwrap();
    target.disconnect(false).unwrap();
    assert_eq!(recv_text(&mut b2.0).await.unwrap(), "41");
    assert!(b.io.sockets().iter().all(|s| s.id() != b2_id));
    assert_eq!(a.io.root_ns().server_count().await, 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_side_emit_reaches_the_other_nodes_with_answers() {
    let (a, b, _clients) = cluster().await;
    let answers =
        a.io.root_ns()
            .server_side_emit_with_ack("whoami", vec![json!(7)], Duration::from_secs(1))
            .await
            .unwrap();
    assert_eq!(answers, vec![json!({"node": "b", "args": [7]})]);
    let answers =
        b.io.root_ns()
            .server_side_emit_with_ack("whoami", vec![], Duration::from_secs(1))
            .await
            .unwrap();
    assert_eq!(answers, vec![json!({"node": "a", "args": []})]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_default_adapter_is_one_node() {
    let io = SocketIo::new();
    let ns = io.ns("/", || async {});
    assert_eq!(ns.server_count().await, 1);
    // Nobody else to tell: no error, no answers.
    ns.server_side_emit("x", vec![]).unwrap();
    let answers = ns
        .server_side_emit_with_ack("x", vec![], Duration::from_millis(10))
        .await
        .unwrap();
    assert!(answers.is_empty());
    assert!(io.fetch_sockets().await.unwrap().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn closing_the_server_closes_its_adapters_and_a_collector_relays_acks() {
    let bus = Arc::new(Bus::default());
    let mut a = node(&bus, "a").await;
    let (mut ws, _s) = connect(&mut a).await;
    // A cluster adapter answering another node's broadcast with acks: a collector of its
    // own, handed to this node's namespace, relays the count and the responses.
    let local = bus.nodes.lock().unwrap()[0].clone();
    let (collector, mut events) = AckCollector::channel();
    let packet = Packet::event(iolite::parser::Namespace::ROOT, json!(["q", 1]));
    assert_eq!(
        local.broadcast_with_ack(&packet, &BroadcastOptions::default(), &collector),
        1
    );
    let q = recv_text(&mut ws).await.unwrap();
    let id: String = q[2..].chars().take_while(char::is_ascii_digit).collect();
    ws.send(Message::text(format!("43{id}[\"ok\"]"))).unwrap();
    match events.recv().await.unwrap() {
        iolite::adapter::AckEvent::Clients(n) => assert_eq!(n, 1),
        other => panic!("{other:?}"),
    }
    match events.recv().await.unwrap() {
        iolite::adapter::AckEvent::Response(r) => assert_eq!(r.first(), json!("ok")),
        other => panic!("{other:?}"),
    }
    a.io.close();
    assert_eq!(bus.closed.load(std::sync::atomic::Ordering::SeqCst), 1);
}
