//! # iolite
//!
//! Socket.IO v5 for Rust: namespaces, rooms, acks, broadcasts and connection state
//! recovery, compatible with the official JavaScript and Python clients.
//!
//! ```
//! use iolite::parser::{Decoder, Framing, Packet};
//! use serde_json::json;
//!
//! // What a client sends inside an Engine.IO message...
//! let mut decoder = Decoder::default();
//! let packet = decoder.decode_text(r#"2/chat,7["hello",1]"#).unwrap().unwrap();
//! assert_eq!(packet.event_name(), Some("hello"));
//!
//! // ...and the ack a server frames once, Engine.IO prefix included.
//! let ack = Packet::ack(packet.nsp.clone(), packet.id.unwrap(), json!(["ok"]));
//! let mut frame = Vec::new();
//! ack.encode_into(&mut frame, Framing::EngineMessage);
//! assert_eq!(frame, br#"43/chat,7["ok"]"#);
//! ```
//!
//! ## Design
//! - [`parser`] is the Socket.IO packet codec, a pure module matching Node's
//!   `socket.io-parser` byte for byte: a [`Decoder`](parser::Decoder) state machine fed
//!   Engine.IO message payloads (text packets and their binary attachments), and an encoder
//!   that appends to a caller's buffer so a broadcast is encoded once.
//! - The Engine.IO transport underneath is [`iolite_engine`].

pub mod parser;
