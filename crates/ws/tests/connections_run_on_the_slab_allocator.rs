//! With `SlabAlloc` as the process's global allocator (as in the `iolite` binary), tokio's
//! tasks and I/O registrations come from its slabs, and waves of connections that open,
//! echo and close, both split (`WebSocket`) and one-task (`Connection`), reuse the freed
//! blocks without a byte going astray.

use std::alloc::{GlobalAlloc, Layout};
use std::sync::atomic::{AtomicUsize, Ordering};

use iolite_test_support::harness::{Server, PATIENCE};
use iolite_ws::slab_alloc::SlabAlloc;
use iolite_ws::{ClientBuilder, CloseCode, Config, Message};

/// `SlabAlloc`, counting the blocks its slabs serve (over-aligned, at most 1 KiB).
struct Counted {
    inner: SlabAlloc,
    slab_blocks: AtomicUsize,
}

unsafe impl GlobalAlloc for Counted {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        if layout.align() > 16 && layout.size() <= 1024 {
            self.slab_blocks.fetch_add(1, Ordering::Relaxed);
        }
        unsafe { self.inner.alloc(layout) }
    }
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        unsafe { self.inner.alloc_zeroed(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { self.inner.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        unsafe { self.inner.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static ALLOC: Counted = Counted {
    inner: SlabAlloc::new(),
    slab_blocks: AtomicUsize::new(0),
};

const CLIENTS: usize = 200;
const MESSAGES: usize = 20;

/// `CLIENTS` connections at once, each sending `MESSAGES` messages of its own and checking
/// every echo, then closing.
async fn wave(server: &Server, wave: usize) {
    let clients: Vec<_> = (0..CLIENTS)
        .map(|c| {
            let url = server.url();
            tokio::spawn(async move {
                let (mut ws, _) = ClientBuilder::new(url).connect().await.expect("connect");
                for m in 0..MESSAGES {
                    let body = format!("wave {wave} client {c} message {m} {}", "x".repeat(m * 37));
                    ws.send(Message::text(body.clone())).expect("queue");
                    loop {
                        match ws.recv().await {
                            Some(Ok(Message::Ping(_) | Message::Pong(_))) => continue,
                            Some(Ok(got)) => {
                                assert_eq!(got, Message::text(body), "echo");
                                break;
                            }
                            other => panic!("client {c}: {other:?}"),
                        }
                    }
                }
                let _ = ws.sender().close(CloseCode::NORMAL, "");
                while let Some(Ok(_)) = ws.recv().await {}
            })
        })
        .collect();
    for c in clients {
        tokio::time::timeout(PATIENCE * 4, c)
            .await
            .expect("wave within 20 s")
            .expect("client task");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn waves_of_connections_echo_on_slab_blocks() {
    let before = ALLOC.slab_blocks.load(Ordering::Relaxed);
    let split = Server::echo(Config::default()).await;
    let one_task = Server::echo_one_task(Config::default()).await;
    for w in 0..3 {
        wave(&split, w).await;
        wave(&one_task, w).await;
    }
    let served = ALLOC.slab_blocks.load(Ordering::Relaxed) - before;
    // Each connection is at least one task and one I/O registration on each side.
    assert!(
        served >= 2 * 3 * CLIENTS * 2,
        "only {served} over-aligned blocks came from the slabs"
    );
}
