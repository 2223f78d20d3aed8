//! A client may write its first frames right behind the upgrade request, in the same
//! segment; the server has read them along with the head and must decode them.

use iolite_test_support::frames::FrameSpec;
use iolite_test_support::harness::{Server, PATIENCE};
use iolite_test_support::raw::{status, Event, RawClient};
use iolite_ws::Config;

#[tokio::test]
async fn frames_in_the_same_write_as_the_request_are_echoed() {
    let server = Server::echo(Config::default()).await;
    let frames = [
        FrameSpec::client(0x1, "first"),
        FrameSpec::client(0x2, vec![9u8; 70_000]),
    ];
    let (mut raw, head) = RawClient::upgrade_with_frames(server.addr(), &frames, PATIENCE)
        .await
        .unwrap();
    assert_eq!(status(&head), Some(101), "{head}");
    let mut got = vec![];
    while got.len() < 2 {
        match raw.next_event(PATIENCE).await.unwrap() {
            Event::Frame(f) => got.push((f.opcode, f.payload)),
            other => panic!("{other:?}"),
        }
    }
    assert_eq!(got, [(0x1, b"first".to_vec()), (0x2, vec![9u8; 70_000])]);
}

#[tokio::test]
async fn a_bad_frame_right_behind_the_request_is_still_closed_with_1002() {
    let server = Server::echo(Config::default()).await;
    let naked = [FrameSpec::client(0x1, "naked").unmasked()];
    let (mut raw, head) = RawClient::upgrade_with_frames(server.addr(), &naked, PATIENCE)
        .await
        .unwrap();
    assert_eq!(status(&head), Some(101), "{head}");
    assert_eq!(raw.expect_close(PATIENCE).await.unwrap(), Some(1002));
    iolite_test_support::harness::assert_echo(server.addr()).await;
}
