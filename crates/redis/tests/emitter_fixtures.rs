//! iolite-redis's `Emitter` publishes what Node's @socket.io/redis-emitter 5.1.0 publishes,
//! byte for byte, for every command of tests/redis/gen-emitter-fixtures.mjs.

#![allow(clippy::unwrap_used)] // test code: a failure is the test failing

mod common;

use common::emitter_message;
use iolite_redis::{Emitter, EmitterError, RedisClient};
use serde_json::Value;

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

#[test]
fn same_bytes_as_the_node_emitter() {
    let fixtures: Vec<Value> =
        serde_json::from_str(include_str!("fixtures/emitter-wire.json")).unwrap();
    assert!(fixtures.len() >= 20);
    // Never connects: messages are only built here.
    let client = RedisClient::new("redis://127.0.0.1:1/").unwrap();
    for f in &fixtures {
        let cmd = &f["cmd"];
        let key = cmd["key"].as_str().unwrap_or("socket.io");
        let emitter = Emitter::new(&client, key);
        let got = emitter_message(&emitter, cmd);
        if f["error"].is_string() {
            assert!(
                matches!(got, Err(EmitterError::Reserved(_))),
                "{cmd}: {got:?}"
            );
            continue;
        }
        let got = got.unwrap();
        let want = &f["published"].as_array().unwrap()[0];
        assert_eq!(got.channel, want["channel"].as_str().unwrap(), "{cmd}");
        assert_eq!(hex(&got.payload), want["hex"].as_str().unwrap(), "{cmd}");
    }
}
