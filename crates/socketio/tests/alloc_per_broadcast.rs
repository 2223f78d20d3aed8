//! A broadcast allocates the same on the broadcasting thread whatever the number of
//! recipients: the packet is encoded and framed once, and each recipient's queue gets a
//! shared reference (counted with a counting allocator; allocations are not timings).

#![allow(clippy::unwrap_used)] // test helpers: a failure is the test failing

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::time::Duration;

use iolite::{SocketIo, SocketRef};
use iolite_ws::{ClientBuilder, Message, WebSocket};

struct Counting;

thread_local! {
    static ALLOCS: Cell<u64> = const { Cell::new(0) };
}

// SAFETY: forwards to the system allocator; only counts.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        ALLOCS.with(|c| c.set(c.get() + 1));
        // SAFETY: same contract as the caller's.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: same contract as the caller's.
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        ALLOCS.with(|c| c.set(c.get() + 1));
        // SAFETY: same contract as the caller's.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

fn allocations() -> u64 {
    ALLOCS.with(Cell::get)
}

type Ws = WebSocket<iolite_ws::MaybeTlsStream>;

async fn recv_text(ws: &mut Ws) -> String {
    loop {
        match tokio::time::timeout(Duration::from_secs(5), ws.recv()).await {
            Ok(Some(Ok(Message::Text(t)))) => return t.as_str().to_owned(),
            Ok(Some(Ok(_))) => continue,
            other => panic!("no text message: {other:?}"),
        }
    }
}

/// Allocations on this thread for one `io.to(room).emit(..)` to `n` subscribers (the median
/// of nine), after warm-up broadcasts (as in a busy room): the queue storage the writers
/// give back on the worker threads reaches this thread through the pools' shared depot
/// once their thread-local parts are full.
async fn allocations_per_broadcast(n: usize) -> u64 {
    const ROUNDS: usize = 20;
    let io = SocketIo::new();
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    io.ns("/", move |socket: SocketRef| {
        let tx = tx.clone();
        async move {
            socket.join("room");
            let _ = tx.send(());
        }
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let io2 = io.clone();
    tokio::spawn(async move { io2.serve(listener).await });
    let url = format!("ws://127.0.0.1:{port}/socket.io/?EIO=4&transport=websocket");
    let mut clients = Vec::new();
    for _ in 0..n {
        let (mut ws, _) = ClientBuilder::new(url.clone()).connect().await.unwrap();
        recv_text(&mut ws).await;
        ws.send(Message::text("40")).unwrap();
        assert!(recv_text(&mut ws).await.starts_with("40"));
        rx.recv().await.unwrap();
        clients.push(ws);
    }
    let mut counts = Vec::new();
    for i in 0..ROUNDS {
        let before = allocations();
        io.to("room").emit("tick", &i).unwrap();
        counts.push(allocations() - before);
        // Every client gets every tick, before the next: each writer has then given its
        // queue storage back, so the rounds do not depend on the machine's speed.
        for ws in &mut clients {
            assert_eq!(recv_text(ws).await, format!(r#"42["tick",{i}]"#));
        }
    }
    // The median of the last broadcasts, once the pools are warm: a writer gives its
    // storage back just after its write, so now and then a broadcast right behind the
    // previous one finds the pool a few short and allocates them.
    let mut last = counts[ROUNDS - 9..].to_vec();
    last.sort_unstable();
    last[last.len() / 2]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn allocations_per_broadcast_do_not_grow_with_recipients() {
    let few = allocations_per_broadcast(10).await;
    let many = allocations_per_broadcast(400).await;
    println!("allocations per broadcast: {few} for 10 recipients, {many} for 400");
    assert_eq!(few, many, "10 recipients: {few}, 400 recipients: {many}");
    assert!(few < 40, "{few} allocations for one broadcast");
}
