//! Packets with their exact wire text, shared by the decoder's and the encoder's tests so
//! both directions are checked against the same vectors.

use serde_json::{json, Value};

use super::{Namespace, Packet, PacketType};

/// A packet without attachments.
pub(crate) fn packet(kind: PacketType, nsp: &str, id: Option<u64>, data: Value) -> Packet {
    Packet {
        kind,
        nsp: Namespace::new(nsp).unwrap(),
        id,
        data,
        attachments: Vec::new(),
    }
}

/// Every example of the v5 protocol document's "Packet encoding" section, verbatim.
pub(crate) fn protocol_document_examples() -> Vec<(&'static str, Packet)> {
    use PacketType::*;
    vec![
        ("0", packet(Connect, "/", None, Value::Null)),
        (
            r#"0/admin,{"sid":"oSO0OpakMV_3jnilAAAA"}"#,
            packet(
                Connect,
                "/admin",
                None,
                json!({"sid": "oSO0OpakMV_3jnilAAAA"}),
            ),
        ),
        (
            r#"4{"message":"Not authorized"}"#,
            packet(
                ConnectError,
                "/",
                None,
                json!({"message": "Not authorized"}),
            ),
        ),
        (r#"2["foo"]"#, packet(Event, "/", None, json!(["foo"]))),
        (
            r#"2/admin,["bar"]"#,
            packet(Event, "/admin", None, json!(["bar"])),
        ),
        (
            r#"212["foo"]"#,
            packet(Event, "/", Some(12), json!(["foo"])),
        ),
        (
            r#"3/admin,13["bar"]"#,
            packet(Ack, "/admin", Some(13), json!(["bar"])),
        ),
        ("1", packet(Disconnect, "/", None, Value::Null)),
        ("1/admin,", packet(Disconnect, "/admin", None, Value::Null)),
    ]
}
