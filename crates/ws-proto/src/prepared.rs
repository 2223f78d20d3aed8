//! A message framed once and shared by any number of connections.

use std::sync::{Arc, OnceLock};

use bytes::Bytes;

use crate::frame::{Frame, OpCode};

/// A data message framed once, for broadcasts.
///
/// The server frame (header plus payload in one buffer) is built once; every recipient
/// gets a clone of the same `Bytes`, or of the one `Arc` around it (a pointer, where a send
/// queue wants its entries small). A compressed variant is built the first time a
/// connection with permessage-deflate (without context takeover) needs it, once per
/// window size, and then shared as well.
pub struct PreparedMessage {
    opcode: OpCode,
    payload: Bytes,
    frame: Arc<Bytes>,
    compressed: [OnceLock<Arc<Bytes>>; 7],
}

impl PreparedMessage {
    /// Prepares a text message.
    pub fn text(text: impl Into<crate::Utf8Bytes>) -> Self {
        Self::new(OpCode::Text, text.into().into_bytes())
    }

    /// Prepares a binary message.
    pub fn binary(payload: impl Into<Bytes>) -> Self {
        Self::new(OpCode::Binary, payload.into())
    }

    fn new(opcode: OpCode, payload: Bytes) -> Self {
        let frame = Arc::new(Frame::unmasked(opcode, payload.clone()).to_bytes());
        Self {
            opcode,
            payload,
            frame,
            compressed: Default::default(),
        }
    }

    /// The opcode (text or binary).
    pub fn opcode(&self) -> OpCode {
        self.opcode
    }

    /// The unframed payload.
    pub fn payload(&self) -> &Bytes {
        &self.payload
    }

    /// The complete uncompressed server frame.
    pub fn frame(&self) -> &Bytes {
        &self.frame
    }

    /// The complete uncompressed server frame, as the one `Arc` every recipient shares.
    pub fn shared_frame(&self) -> &Arc<Bytes> {
        &self.frame
    }

    /// The complete compressed server frame for a window of `window` bits (9-15).
    pub fn compressed_frame(&self, window: u8, level: u32) -> &Bytes {
        self.shared_compressed_frame(window, level)
    }

    /// [`PreparedMessage::compressed_frame`], as the one `Arc` every recipient shares.
    pub fn shared_compressed_frame(&self, window: u8, level: u32) -> &Arc<Bytes> {
        let window = window.clamp(9, 15);
        self.compressed[usize::from(window - 9)].get_or_init(|| {
            let body = crate::encoder::compress_shared(window, level, &self.payload);
            let header = crate::frame::FrameHeader {
                fin: true,
                rsv1: true,
                rsv23: false,
                opcode: self.opcode,
                mask: None,
                payload_len: 0,
            };
            Arc::new(Frame::new(header, body).to_bytes())
        })
    }
}

impl std::fmt::Debug for PreparedMessage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PreparedMessage")
            .field("opcode", &self.opcode)
            .field("len", &self.payload.len())
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Decoder, DeflateConfig, Encoder, Limits, Message, Role};
    use bytes::BytesMut;

    /// Masks a server frame as a client would, so a server-role decoder can read it back.
    fn as_client_bytes(frame: &Bytes) -> BytesMut {
        let (h, n) = crate::frame::FrameHeader::decode(frame).unwrap().unwrap();
        let mut out = BytesMut::new();
        let mut head = [0u8; crate::frame::MAX_HEAD_LEN];
        let hn = crate::frame::FrameHeader {
            mask: Some([9, 8, 7, 6]),
            ..h
        }
        .encode(&mut head);
        out.extend_from_slice(&head[..hn]);
        let mut p = frame[n..].to_vec();
        crate::mask::apply_mask(&mut p, [9, 8, 7, 6], 0);
        out.extend_from_slice(&p);
        out
    }

    #[test]
    fn shared_frame_is_the_same_allocation_for_every_connection() {
        let p = PreparedMessage::text("hello");
        let mut a = Encoder::new(Role::Server, None, 1);
        let mut b = Encoder::new(Role::Server, None, 2);
        let fa = a.encode_prepared(&p);
        let fb = b.encode_prepared(&p);
        assert_eq!(fa.payload().as_ptr(), fb.payload().as_ptr());
        assert_eq!(&fa.to_bytes()[..], &[0x81, 5, b'h', b'e', b'l', b'l', b'o']);
    }

    #[test]
    fn compressed_variant_decodes_and_is_shared() {
        let cfg = DeflateConfig::default().compress_threshold(0);
        let params = cfg.accept_offer(["permessage-deflate"]).unwrap().1;
        let text = "broadcast ".repeat(100);
        let p = PreparedMessage::text(text.clone());
        let mut a = Encoder::new(Role::Server, Some(&params), 1);
        let mut b = Encoder::new(Role::Server, Some(&params), 1);
        let fa = a.encode_prepared(&p);
        let fb = b.encode_prepared(&p);
        assert_eq!(fa.payload().as_ptr(), fb.payload().as_ptr());
        assert!(fa.wire_len() < text.len() / 4);
        let mut d = Decoder::new(Role::Server, Limits::default(), Some(&params));
        let mut buf = as_client_bytes(fa.payload());
        assert_eq!(d.decode(&mut buf).unwrap(), Some(Message::text(text)));
    }

    #[test]
    fn shared_prepared_is_one_arc_only_where_the_bytes_fit_the_connection() {
        let p = PreparedMessage::text("x".repeat(300));
        let a = Encoder::new(Role::Server, None, 1);
        let b = Encoder::new(Role::Server, None, 2);
        let (fa, fb) = (
            a.shared_prepared(&p).unwrap(),
            b.shared_prepared(&p).unwrap(),
        );
        assert!(std::sync::Arc::ptr_eq(fa, fb));
        assert_eq!(&fa[..2], &[0x81, 126]);
        // A client masks every frame: its own encoding.
        assert!(Encoder::new(Role::Client, None, 3)
            .shared_prepared(&p)
            .is_none());
        // Compression with context takeover depends on what was sent before: its own too.
        let cfg = DeflateConfig::default().compress_threshold(0);
        let mut params = cfg.accept_offer(["permessage-deflate"]).unwrap().1;
        params.compress_no_context_takeover = false;
        assert!(Encoder::new(Role::Server, Some(&params), 4)
            .shared_prepared(&p)
            .is_none());
        // Without it, the compressed frame is shared.
        params.compress_no_context_takeover = true;
        let c = Encoder::new(Role::Server, Some(&params), 5);
        let d = Encoder::new(Role::Server, Some(&params), 6);
        let (fc, fd) = (
            c.shared_prepared(&p).unwrap(),
            d.shared_prepared(&p).unwrap(),
        );
        assert!(std::sync::Arc::ptr_eq(fc, fd));
        assert_eq!(fc[0], 0xc1, "FIN, RSV1 (compressed), text");
    }
}
