//! Event arguments: JSON values plus binary attachments, and the [`Binary`] type that
//! moves bytes through serde as Socket.IO attachments.

use std::cell::RefCell;
use std::fmt;

use bytes::Bytes;
use serde::de::{self, DeserializeOwned, Deserializer, MapAccess, SeqAccess, Visitor};
use serde::ser::{SerializeMap, Serializer};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use iolite::parser::binary;

thread_local! {
    /// Attachments collected while serializing emitted arguments; `Some` only inside
    /// [`collect_binary`].
    static OUT: RefCell<Option<Vec<Bytes>>> = const { RefCell::new(None) };
    /// Attachments of the payload being deserialized; `Some` only inside [`with_binary`].
    static IN: RefCell<Option<Vec<Bytes>>> = const { RefCell::new(None) };
}

/// Bytes that travel as a Socket.IO binary attachment (a Node `Buffer` on the other side).
///
/// Put it anywhere in emitted arguments, at any depth, and it is sent as a binary
/// WebSocket message (or base64 over polling) with a placeholder in the JSON; read it back
/// from a [`Payload`] the same way:
///
/// ```
/// use iolite_client::{Binary, Payload};
/// use serde::{Deserialize, Serialize};
///
/// #[derive(Serialize, Deserialize, PartialEq, Debug)]
/// struct Upload { name: String, data: Binary }
///
/// let up = Upload { name: "a.bin".into(), data: Binary::from(vec![1, 2, 3]) };
/// let payload = Payload::from_args(&(&up, 7)).unwrap();
/// assert_eq!(payload.attachments().len(), 1);
/// let (back, n): (Upload, u32) = payload.args().unwrap();
/// assert_eq!((back, n), (up, 7));
/// ```
///
/// Outside of an emit (e.g. `serde_json::to_string`) it serializes as an array of byte
/// values, as serde does for bytes.
#[derive(Clone, Default, PartialEq, Eq, Hash)]
pub struct Binary(pub Bytes);

impl Binary {
    /// The bytes.
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }

    /// The shared buffer.
    pub fn into_bytes(self) -> Bytes {
        self.0
    }
}

impl fmt::Debug for Binary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Binary({:?})", self.0)
    }
}

impl From<Bytes> for Binary {
    fn from(b: Bytes) -> Self {
        Self(b)
    }
}

impl From<Vec<u8>> for Binary {
    fn from(b: Vec<u8>) -> Self {
        Self(b.into())
    }
}

impl From<&'static [u8]> for Binary {
    fn from(b: &'static [u8]) -> Self {
        Self(Bytes::from_static(b))
    }
}

impl From<Binary> for Bytes {
    fn from(b: Binary) -> Self {
        b.0
    }
}

impl std::ops::Deref for Binary {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        &self.0
    }
}

impl Serialize for Binary {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let num = OUT.with(|out| {
            out.borrow_mut().as_mut().map(|atts| {
                atts.push(self.0.clone());
                atts.len() - 1
            })
        });
        match num {
            Some(num) => {
                let mut map = s.serialize_map(Some(2))?;
                map.serialize_entry("_placeholder", &true)?;
                map.serialize_entry("num", &num)?;
                map.end()
            }
            None => s.serialize_bytes(&self.0),
        }
    }
}

impl<'de> Deserialize<'de> for Binary {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(BinaryVisitor)
    }
}

struct BinaryVisitor;

impl<'de> Visitor<'de> for BinaryVisitor {
    type Value = Binary;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a binary attachment")
    }

    fn visit_bytes<E: de::Error>(self, v: &[u8]) -> Result<Binary, E> {
        Ok(Binary(Bytes::copy_from_slice(v)))
    }

    fn visit_byte_buf<E: de::Error>(self, v: Vec<u8>) -> Result<Binary, E> {
        Ok(Binary(v.into()))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Binary, A::Error> {
        let mut out = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(1 << 16));
        while let Some(b) = seq.next_element::<u8>()? {
            out.push(b);
        }
        Ok(Binary(out.into()))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Binary, A::Error> {
        let mut is_placeholder = false;
        let mut num: Option<Value> = None;
        while let Some(key) = map.next_key::<String>()? {
            match key.as_str() {
                "_placeholder" => is_placeholder = map.next_value::<Value>()? == Value::Bool(true),
                "num" => num = Some(map.next_value()?),
                _ => {
                    map.next_value::<de::IgnoredAny>()?;
                }
            }
        }
        if !is_placeholder {
            return Err(de::Error::custom(
                "expected a binary attachment placeholder",
            ));
        }
        let mut obj = serde_json::Map::new();
        obj.insert("_placeholder".into(), Value::Bool(true));
        obj.insert("num".into(), num.unwrap_or(Value::Null));
        let index = binary::placeholder_index(&Value::Object(obj))
            .ok_or_else(|| de::Error::custom("invalid attachment placeholder"))?;
        IN.with(|atts| {
            atts.borrow()
                .as_ref()
                .and_then(|a| a.get(index).cloned())
                .map(Binary)
                .ok_or_else(|| de::Error::custom("placeholder for a missing attachment"))
        })
    }
}

/// Runs `f` with `Binary` serializing as placeholders; returns its result and the
/// attachments, in placeholder order.
pub(crate) fn collect_binary<R>(f: impl FnOnce() -> R) -> (R, Vec<Bytes>) {
    struct Guard(Option<Vec<Bytes>>);
    impl Drop for Guard {
        fn drop(&mut self) {
            let prev = self.0.take();
            OUT.with(|out| *out.borrow_mut() = prev);
        }
    }
    let prev = OUT.with(|out| out.borrow_mut().replace(Vec::new()));
    let guard = Guard(prev);
    let r = f();
    let atts = OUT.with(|out| out.borrow_mut().take()).unwrap_or_default();
    drop(guard);
    (r, atts)
}

/// Runs `f` with placeholders deserializing into `Binary` from `attachments`.
fn with_binary<R>(attachments: &[Bytes], f: impl FnOnce() -> R) -> R {
    struct Guard(Option<Vec<Bytes>>);
    impl Drop for Guard {
        fn drop(&mut self) {
            let prev = self.0.take();
            IN.with(|a| *a.borrow_mut() = prev);
        }
    }
    let prev = IN.with(|a| a.borrow_mut().replace(attachments.to_vec()));
    let _guard = Guard(prev);
    f()
}

/// The arguments of an event or an ack: JSON values in which binary attachments are
/// placeholders (`{"_placeholder":true,"num":N}`), plus the attachments.
///
/// Read arguments with serde: [`Payload::arg`] one at a time, [`Payload::args`] all at
/// once (into a tuple, a `Vec` or a struct that deserializes from a sequence). [`Binary`]
/// fields receive their attachment.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Payload {
    /// Always a `Value::Array`.
    args: Value,
    attachments: Vec<Bytes>,
}

impl Payload {
    /// A payload of `args` whose placeholders refer to `attachments`.
    pub fn new(args: Vec<Value>, attachments: Vec<Bytes>) -> Self {
        Self {
            args: Value::Array(args),
            attachments,
        }
    }

    /// The payload an emit of `args` sends: a JSON array gives its items as arguments,
    /// any other value is one argument, and `null` (`()`) none.
    pub fn from_args<T: Serialize + ?Sized>(args: &T) -> Result<Self, serde_json::Error> {
        let (value, attachments) = collect_binary(|| serde_json::to_value(args));
        let args = match value? {
            Value::Array(items) => items,
            Value::Null => Vec::new(),
            v => vec![v],
        };
        Ok(Self::new(args, attachments))
    }

    /// How many arguments.
    pub fn len(&self) -> usize {
        self.values().len()
    }

    /// Whether there are no arguments.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The arguments as JSON, binary as placeholders.
    pub fn values(&self) -> &[Value] {
        match &self.args {
            Value::Array(a) => a,
            _ => &[],
        }
    }

    /// Argument `i` as JSON.
    pub fn get(&self, i: usize) -> Option<&Value> {
        self.values().get(i)
    }

    /// The binary attachments, in placeholder order.
    pub fn attachments(&self) -> &[Bytes] {
        &self.attachments
    }

    /// The attachment argument `i` is a placeholder for, if it is one.
    pub fn binary(&self, i: usize) -> Option<&Bytes> {
        binary::attachment(self.get(i)?, &self.attachments)
    }

    /// Deserializes argument `i`. A missing argument deserializes as `null` (so an
    /// `Option` gets `None`), as a JavaScript handler sees `undefined`.
    pub fn arg<T: DeserializeOwned>(&self, i: usize) -> Result<T, serde_json::Error> {
        with_binary(&self.attachments, || match self.get(i) {
            Some(v) => T::deserialize(v),
            None => T::deserialize(&Value::Null),
        })
    }

    /// Deserializes all arguments as one sequence: `(String, u32)`, `Vec<Value>`, ...
    pub fn args<T: DeserializeOwned>(&self) -> Result<T, serde_json::Error> {
        with_binary(&self.attachments, || T::deserialize(&self.args))
    }

    /// The arguments and the attachments.
    pub fn into_parts(self) -> (Vec<Value>, Vec<Bytes>) {
        let args = match self.args {
            Value::Array(a) => a,
            _ => Vec::new(),
        };
        (args, self.attachments)
    }

    /// The arguments as one JSON array with each placeholder replaced by the array of its
    /// bytes (for logs and comparisons; the binary/JSON distinction is lost).
    pub fn to_json_lossy(&self) -> Value {
        fn walk(v: &Value, atts: &[Bytes]) -> Value {
            if let Some(b) = binary::attachment(v, atts) {
                return Value::Array(b.iter().map(|&x| Value::from(x)).collect());
            }
            match v {
                Value::Array(a) => Value::Array(a.iter().map(|x| walk(x, atts)).collect()),
                Value::Object(m) => {
                    Value::Object(m.iter().map(|(k, x)| (k.clone(), walk(x, atts))).collect())
                }
                other => other.clone(),
            }
        }
        walk(&self.args, &self.attachments)
    }

    pub(crate) fn take_last(&mut self) -> Option<Value> {
        match &mut self.args {
            Value::Array(a) => a.pop(),
            _ => None,
        }
    }

    pub(crate) fn last(&self) -> Option<&Value> {
        self.values().last()
    }
}

impl Serialize for Payload {
    /// Serializes the arguments as an array; inside an emit the attachments are sent again
    /// as attachments, so a received payload can be relayed as it came.
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeSeq;
        let mut seq = s.serialize_seq(Some(self.len()))?;
        for v in self.values() {
            seq.serialize_element(&Relay(v, &self.attachments))?;
        }
        seq.end()
    }
}

/// A value whose placeholders serialize as [`Binary`] again.
struct Relay<'a>(&'a Value, &'a [Bytes]);

impl Serialize for Relay<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeSeq;
        if let Some(b) = binary::attachment(self.0, self.1) {
            return Binary(b.clone()).serialize(s);
        }
        match self.0 {
            Value::Array(a) => {
                let mut seq = s.serialize_seq(Some(a.len()))?;
                for v in a {
                    seq.serialize_element(&Relay(v, self.1))?;
                }
                seq.end()
            }
            Value::Object(m) => {
                let mut map = s.serialize_map(Some(m.len()))?;
                for (k, v) in m {
                    map.serialize_entry(k, &Relay(v, self.1))?;
                }
                map.end()
            }
            other => other.serialize(s),
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn arguments_from_serde() {
        assert_eq!(
            Payload::from_args(&(1, "a")).unwrap().values(),
            [json!(1), json!("a")]
        );
        assert_eq!(Payload::from_args(&"x").unwrap().values(), [json!("x")]);
        assert!(Payload::from_args(&()).unwrap().is_empty());
        assert_eq!(
            Payload::from_args(&(vec![1, 2],)).unwrap().values(),
            [json!([1, 2])]
        );
        assert_eq!(
            Payload::from_args(&json!({"a": 1})).unwrap().values(),
            [json!({"a": 1})]
        );
    }

    #[test]
    fn binary_round_trip_at_depth() {
        let args = (
            json!("x"),
            vec![Binary::from(vec![1u8]), Binary::from(vec![2u8, 3])],
        );
        let p = Payload::from_args(&args).unwrap();
        assert_eq!(
            p.values(),
            [
                json!("x"),
                json!([{"_placeholder": true, "num": 0}, {"_placeholder": true, "num": 1}])
            ]
        );
        assert_eq!(p.attachments().len(), 2);
        let (s, bins): (String, Vec<Binary>) = p.args().unwrap();
        assert_eq!(s, "x");
        assert_eq!(bins[1].as_bytes(), [2, 3]);
        // Outside of a payload, Binary is plain bytes.
        assert_eq!(
            serde_json::to_string(&Binary::from(vec![7u8])).unwrap(),
            "[7]"
        );
        let b: Binary = serde_json::from_str("[7,8]").unwrap();
        assert_eq!(b.as_bytes(), [7, 8]);
    }

    #[test]
    fn bad_placeholders_are_errors_not_panics() {
        let p = Payload::new(vec![json!({"_placeholder": true, "num": 5})], vec![]);
        assert!(p.arg::<Binary>(0).is_err());
        let p = Payload::new(vec![json!({"_placeholder": true, "num": -1})], vec![]);
        assert!(p.arg::<Binary>(0).is_err());
        let p = Payload::new(vec![json!({"num": 0})], vec![Bytes::from_static(b"a")]);
        assert!(p.arg::<Binary>(0).is_err());
        assert_eq!(p.arg::<Option<u8>>(3).unwrap(), None);
    }

    #[test]
    fn relaying_a_payload_keeps_its_binary() {
        let p = Payload::from_args(&(1, json!({"k": [Binary::from(vec![9u8])]}).clone()));
        // json! cannot hold Binary as binary: it was turned into bytes before the emit.
        assert!(p.unwrap().attachments().is_empty());
        let p = Payload::from_args(&(1, vec![Binary::from(vec![9u8])])).unwrap();
        let relayed = Payload::from_args(&p).unwrap();
        assert_eq!(relayed, p);
        assert_eq!(p.to_json_lossy(), json!([1, [[9]]]));
        assert_eq!(p.binary(1), None);
    }
}
