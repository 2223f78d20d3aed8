//! Binary attachments and the placeholders that stand for them in the JSON.
//!
//! A BINARY_EVENT / BINARY_ACK is sent as a text packet whose JSON holds a placeholder
//! `{"_placeholder":true,"num":N}` where each buffer was, followed by the buffers as
//! separate binary messages, buffer `N` being the `N`-th (Node's `deconstructPacket`).
//! [`Packet`](crate::parser::Packet) keeps that shape: placeholders in `data`, buffers in
//! `attachments`.
//!
//! To build one, let [`Attachments`] number the buffers:
//!
//! ```
//! use bytes::Bytes;
//! use iolite::parser::{binary::Attachments, Namespace, Packet, PacketType};
//! use serde_json::json;
//!
//! let mut att = Attachments::new();
//! let data = json!(["upload", {"name": "a.bin", "file": att.push(Bytes::from_static(b"\x01\x02"))}]);
//! let packet = Packet::event(Namespace::ROOT, data).with_attachments(att.into_vec());
//! assert_eq!(packet.kind, PacketType::BinaryEvent);
//! assert_eq!(
//!     packet.encode(),
//!     r#"51-["upload",{"name":"a.bin","file":{"_placeholder":true,"num":0}}]"#
//! );
//! ```

use bytes::Bytes;
use serde_json::{Map, Value};

use super::error::DecodeError;

/// The placeholder for attachment `num`: `{"_placeholder":true,"num":num}`.
pub fn placeholder(num: usize) -> Value {
    let mut map = Map::with_capacity(2);
    map.insert("_placeholder".to_owned(), Value::Bool(true));
    map.insert("num".to_owned(), Value::from(num));
    Value::Object(map)
}

/// Whether `value` is what Node's decoder takes for a placeholder: an object whose
/// `_placeholder` is `true`, whatever else it holds.
pub fn is_placeholder(value: &Value) -> bool {
    matches!(value, Value::Object(map) if map.get("_placeholder") == Some(&Value::Bool(true)))
}

/// The attachment index of a placeholder, if `value` is one with a non-negative integer
/// `num` (`0`, `0.0` and `0e0` alike, as JavaScript reads them).
pub fn placeholder_index(value: &Value) -> Option<usize> {
    if !is_placeholder(value) {
        return None;
    }
    let num = value.get("num")?;
    if let Some(n) = num.as_u64() {
        return usize::try_from(n).ok();
    }
    let f = num.as_f64()?;
    // Beyond 2^53 a double no longer tells integers apart; no attachment list is that long.
    if f >= 0.0 && f.fract() == 0.0 && f < 9_007_199_254_740_992.0 {
        usize::try_from(f as u64).ok()
    } else {
        None
    }
}

/// The attachment a placeholder stands for, if `value` is a placeholder within range.
pub fn attachment<'a>(value: &Value, attachments: &'a [Bytes]) -> Option<&'a Bytes> {
    attachments.get(placeholder_index(value)?)
}

/// Collects the buffers of a packet being built and hands out their placeholders, so the
/// numbering cannot go wrong.
#[derive(Clone, Debug, Default)]
pub struct Attachments(Vec<Bytes>);

impl Attachments {
    /// No attachments yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds `buffer` as the next attachment and returns the placeholder to put in the JSON.
    pub fn push(&mut self, buffer: Bytes) -> Value {
        self.0.push(buffer);
        placeholder(self.0.len() - 1)
    }

    /// How many buffers were added.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether none was added.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The buffers, for [`Packet::with_attachments`](crate::parser::Packet::with_attachments).
    pub fn into_vec(self) -> Vec<Bytes> {
        self.0
    }
}

/// Checks every placeholder in `data` against `count` received attachments, as Node's
/// `reconstructPacket` does when the last buffer arrives: `num` must be a number from 0 to
/// `count - 1`. Stricter than Node in one case: a fractional `num` is rejected (Node lets
/// `0.5` through and puts `undefined` in its place). Like Node, an attachment may be
/// referenced twice or not at all.
pub(crate) fn check_placeholders(data: &Value, count: usize) -> Result<(), DecodeError> {
    // Iterative, so nesting depth costs heap, not stack.
    let mut stack = vec![data];
    while let Some(v) = stack.pop() {
        match v {
            // A placeholder is replaced whole: Node does not look inside it.
            Value::Object(_) if is_placeholder(v) => match placeholder_index(v) {
                Some(n) if n < count => {}
                _ => return Err(DecodeError::InvalidPlaceholder),
            },
            Value::Object(map) => stack.extend(map.values()),
            Value::Array(items) => stack.extend(items),
            _ => {}
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn placeholders_are_numbered_in_push_order() {
        let mut att = Attachments::new();
        assert!(att.is_empty());
        assert_eq!(
            att.push(Bytes::from_static(b"a")),
            json!({"_placeholder": true, "num": 0})
        );
        assert_eq!(att.push(Bytes::from_static(b"b")), placeholder(1));
        assert_eq!(att.len(), 2);
        let bufs = att.into_vec();
        assert_eq!(attachment(&placeholder(1), &bufs).unwrap(), "b");
        assert_eq!(attachment(&placeholder(2), &bufs), None);
    }

    #[test]
    fn placeholder_shape() {
        assert!(is_placeholder(&json!({"_placeholder": true})));
        assert!(is_placeholder(
            &json!({"num": 0, "_placeholder": true, "x": 1})
        ));
        assert!(!is_placeholder(&json!({"_placeholder": "true", "num": 0})));
        assert!(!is_placeholder(&json!({"_placeholder": 1, "num": 0})));
        assert!(!is_placeholder(&json!([true])));
        assert_eq!(
            placeholder_index(&json!({"_placeholder": true, "num": 3})),
            Some(3)
        );
        assert_eq!(
            placeholder_index(&json!({"_placeholder": true, "num": 3.0})),
            Some(3)
        );
        assert_eq!(
            placeholder_index(&json!({"_placeholder": true, "num": -0.0})),
            Some(0)
        );
        for bad in [json!(0.5), json!(-1), json!("0"), json!(null), json!(1e300)] {
            assert_eq!(
                placeholder_index(&json!({"_placeholder": true, "num": bad})),
                None
            );
        }
        assert_eq!(placeholder_index(&json!({"_placeholder": true})), None);
    }

    #[test]
    fn check_follows_reconstruct_packet() {
        let two = json!(["a", placeholder(0), {"x": [placeholder(1)]}]);
        assert_eq!(check_placeholders(&two, 2), Ok(()));
        assert_eq!(
            check_placeholders(&two, 1),
            Err(DecodeError::InvalidPlaceholder)
        );
        // Duplicate and unused indexes are fine, as in Node.
        assert_eq!(
            check_placeholders(&json!([placeholder(0), placeholder(0)]), 3),
            Ok(())
        );
        assert_eq!(check_placeholders(&json!(["no binary here"]), 2), Ok(()));
        for bad in [
            json!(["a", {"_placeholder": true, "num": "splice"}]),
            json!(["a", {"_placeholder": true, "num": 1}]),
            json!(["a", {"_placeholder": true, "num": -1}]),
            json!(["a", {"_placeholder": true, "num": 0.5}]),
            json!(["a", {"_placeholder": true}]),
            json!(["a", {"deep": {"er": [{"_placeholder": true, "num": 7}]}}]),
        ] {
            assert_eq!(
                check_placeholders(&bad, 1),
                Err(DecodeError::InvalidPlaceholder),
                "{bad}"
            );
        }
        // Not a placeholder unless `_placeholder` is exactly `true`.
        assert_eq!(
            check_placeholders(&json!([{"_placeholder": "yes", "num": 99}]), 1),
            Ok(())
        );
        // Node replaces a placeholder whole, without looking inside.
        assert_eq!(
            check_placeholders(
                &json!([{"_placeholder": true, "num": 0, "x": placeholder(9)}]),
                1
            ),
            Ok(())
        );
    }
}
