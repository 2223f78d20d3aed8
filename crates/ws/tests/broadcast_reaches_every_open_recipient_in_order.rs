//! `iolite_ws::broadcast`: one prepared message to many connections, with the recipients'
//! state prefetched ahead of the sends. Every open recipient gets every message, in
//! publish order; a closed one refuses it without stopping the others; the count says how
//! many took it. More recipients than the prefetch reaches ahead, so every step of the
//! loop runs, including its last recipients, which nothing is prefetched for.

use std::time::Duration;

use iolite_test_support::harness::{pair, PATIENCE};
use iolite_test_support::raw::{Event, RawClient};
use iolite_ws::{broadcast, CloseCode, Config, PreparedMessage, WebSocket};
use tokio::net::TcpStream;

const RECIPIENTS: usize = 40;
const CLOSED: usize = 17;
const MESSAGES: usize = 3;

#[tokio::test]
async fn broadcast_reaches_every_open_recipient_in_order() {
    let mut servers: Vec<WebSocket<TcpStream>> = Vec::new();
    let mut clients: Vec<RawClient> = Vec::new();
    for _ in 0..RECIPIENTS {
        let (ws, raw) = pair(Config::default().ping_interval(None)).await;
        servers.push(ws);
        clients.push(raw);
    }
    let senders: Vec<_> = servers.iter().map(|ws| ws.sender()).collect();
    senders[CLOSED].close(CloseCode::NORMAL, "bye").unwrap();

    for m in 0..MESSAGES {
        let msg = PreparedMessage::text(format!("message {m}"));
        assert_eq!(broadcast(&senders, &msg), RECIPIENTS - 1);
    }
    // An empty list and a short one (shorter than the prefetch distance) work too.
    assert_eq!(broadcast(&[], &PreparedMessage::text("none")), 0);
    let short = PreparedMessage::text("short");
    assert_eq!(broadcast(&senders[..3], &short), 3);

    for (i, raw) in clients.iter_mut().enumerate() {
        if i == CLOSED {
            assert_eq!(raw.expect_close(PATIENCE).await.unwrap(), Some(1000));
            continue;
        }
        let mut expect: Vec<String> = (0..MESSAGES).map(|m| format!("message {m}")).collect();
        if i < 3 {
            expect.push("short".into());
        }
        for want in expect {
            match raw.next_event(PATIENCE).await.unwrap() {
                Event::Frame(f) => {
                    assert_eq!(f.opcode, 0x1, "recipient {i}");
                    assert_eq!(String::from_utf8(f.payload).unwrap(), want, "recipient {i}");
                }
                other => panic!("recipient {i}: {other:?} instead of {want:?}"),
            }
        }
        // Nothing else: each message once.
        assert!(matches!(
            raw.next_event(Duration::from_millis(50)).await.unwrap(),
            Event::Timeout
        ));
    }
    drop(servers);
}
