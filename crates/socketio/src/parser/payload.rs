//! What each packet type may carry: socket.io-parser's `isPayloadValid`.

use serde_json::Value;

use super::error::DecodeError;
use super::packet::PacketType;

/// Event names a peer may not send, because Socket.IO or Node's `EventEmitter` gives them
/// a meaning of their own. An EVENT naming one is rejected as an invalid payload.
pub const RESERVED_EVENTS: [&str; 6] = [
    "connect",        // client side
    "connect_error",  // client side
    "disconnect",     // both sides
    "disconnecting",  // server side
    "newListener",    // Node's EventEmitter
    "removeListener", // Node's EventEmitter
];

/// Checks a payload that is present (Node runs `isPayloadValid` only when there is JSON
/// after the header: a packet without one is accepted whatever its type).
pub(crate) fn validate(kind: PacketType, data: &Value) -> Result<(), DecodeError> {
    match kind {
        PacketType::Connect => match data {
            Value::Object(_) => Ok(()),
            _ => Err(DecodeError::InvalidConnectPayload),
        },
        PacketType::Disconnect => Err(DecodeError::UnexpectedDisconnectPayload),
        PacketType::ConnectError => match data {
            Value::String(_) | Value::Object(_) => Ok(()),
            _ => Err(DecodeError::InvalidConnectErrorPayload),
        },
        PacketType::Event | PacketType::BinaryEvent => match data {
            Value::Array(items) => match items.first() {
                None => Err(DecodeError::MissingEventName),
                Some(Value::Number(_)) => Ok(()),
                Some(Value::String(name)) => match reserved(name) {
                    Some(r) => Err(DecodeError::ReservedEventName(r)),
                    None => Ok(()),
                },
                Some(_) => Err(DecodeError::InvalidEventName),
            },
            _ => Err(DecodeError::EventPayloadNotArray),
        },
        PacketType::Ack | PacketType::BinaryAck => match data {
            Value::Array(_) => Ok(()),
            _ => Err(DecodeError::AckPayloadNotArray),
        },
    }
}

/// The reserved name `name` equals, if any (case-sensitive, as `indexOf`).
pub(crate) fn reserved(name: &str) -> Option<&'static str> {
    RESERVED_EVENTS.iter().copied().find(|r| *r == name)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use PacketType::*;

    #[test]
    fn connect_takes_an_object() {
        assert_eq!(validate(Connect, &json!({})), Ok(()));
        assert_eq!(validate(Connect, &json!({"token": "123"})), Ok(()));
        for bad in [
            json!([]),
            json!("invalid"),
            json!(null),
            json!(1),
            json!(false),
        ] {
            assert_eq!(
                validate(Connect, &bad),
                Err(DecodeError::InvalidConnectPayload)
            );
        }
    }

    #[test]
    fn disconnect_takes_nothing() {
        for bad in [json!({}), json!([]), json!(null)] {
            assert_eq!(
                validate(Disconnect, &bad),
                Err(DecodeError::UnexpectedDisconnectPayload)
            );
        }
    }

    #[test]
    fn connect_error_takes_a_string_or_an_object() {
        assert_eq!(validate(ConnectError, &json!("Unauthorized")), Ok(()));
        assert_eq!(validate(ConnectError, &json!({"message": "x"})), Ok(()));
        for bad in [json!([]), json!(1), json!(null), json!(true)] {
            assert_eq!(
                validate(ConnectError, &bad),
                Err(DecodeError::InvalidConnectErrorPayload)
            );
        }
    }

    #[test]
    fn event_takes_a_named_array() {
        for kind in [Event, BinaryEvent] {
            assert_eq!(validate(kind, &json!(["a", 1, {}])), Ok(()));
            assert_eq!(validate(kind, &json!([1, "a", {}])), Ok(()));
            assert_eq!(validate(kind, &json!([-1.5])), Ok(()));
            assert_eq!(validate(kind, &json!([""])), Ok(()));
            assert_eq!(
                validate(kind, &json!({})),
                Err(DecodeError::EventPayloadNotArray)
            );
            assert_eq!(
                validate(kind, &json!("invalid")),
                Err(DecodeError::EventPayloadNotArray)
            );
            assert_eq!(
                validate(kind, &json!([])),
                Err(DecodeError::MissingEventName)
            );
            for bad in [
                json!([{"toString": "foo"}]),
                json!([true, "foo"]),
                json!([null, "bar"]),
            ] {
                assert_eq!(validate(kind, &bad), Err(DecodeError::InvalidEventName));
            }
            for name in RESERVED_EVENTS {
                assert_eq!(
                    validate(kind, &json!([name, "123"])),
                    Err(DecodeError::ReservedEventName(name))
                );
            }
            // Reserved names match exactly.
            assert_eq!(validate(kind, &json!(["Connect"])), Ok(()));
            assert_eq!(validate(kind, &json!(["connect "])), Ok(()));
        }
    }

    #[test]
    fn ack_takes_any_array() {
        for kind in [Ack, BinaryAck] {
            assert_eq!(validate(kind, &json!([])), Ok(()));
            assert_eq!(validate(kind, &json!(["connect"])), Ok(()));
            assert_eq!(
                validate(kind, &json!({})),
                Err(DecodeError::AckPayloadNotArray)
            );
        }
    }
}
