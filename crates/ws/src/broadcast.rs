//! One prepared message to many connections.

use iolite_ws_proto::PreparedMessage;

use crate::sender::Sender;

/// How many recipients ahead [`broadcast`] has the CPU load a recipient's queue state; the
/// slot in its queue is loaded at half that distance.
const AHEAD: usize = 16;

/// Queues `msg` on each of `recipients`, in order, and returns how many took it. A
/// recipient that is closing or whose queue is full refuses it (as
/// [`Sender::send_prepared`] does, applying its [`crate::Config::slow_consumer`]); the
/// others still get it.
///
/// The frame is encoded once and its bytes shared by every recipient. Beyond a loop of
/// `send_prepared` calls, this one has the CPU load each recipient's state a few
/// recipients before it sends to it ([`Sender::prefetch`], [`Sender::prefetch_queue`]):
/// with thousands of recipients that state is not in the cache, and each send's lock
/// would otherwise wait for its misses one recipient after another.
///
/// ```
/// use iolite_ws::{broadcast, PreparedMessage, Sender};
///
/// fn publish(room: &[Sender], text: &str) -> usize {
///     broadcast(room, &PreparedMessage::text(text.to_owned()))
/// }
/// ```
pub fn broadcast<'a, I>(recipients: I, msg: &PreparedMessage) -> usize
where
    I: IntoIterator<Item = &'a Sender>,
    I::IntoIter: Clone,
{
    let iter = recipients.into_iter();
    let mut far = iter.clone().skip(AHEAD);
    let mut near = iter.clone().skip(AHEAD / 2);
    let mut n = 0;
    for s in iter {
        if let Some(a) = far.next() {
            a.prefetch();
        }
        if let Some(a) = near.next() {
            a.prefetch_queue();
        }
        if s.send_prepared(msg).is_ok() {
            n += 1;
        }
    }
    n
}
