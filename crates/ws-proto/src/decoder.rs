//! The read side of a connection: bytes in, messages out, every rule and limit enforced.

use std::sync::Arc;

use bytes::{Buf, Bytes, BytesMut};

use crate::close::{CloseCode, CloseFrame};
use crate::deflate::{DeflateParams, Inflater};
use crate::error::ProtocolError;
use crate::frame::{FrameHeader, OpCode};
use crate::limits::Limits;
use crate::mask::apply_mask;
use crate::message::{Message, Utf8Bytes};
use crate::utf8::Utf8Validator;
use crate::Role;

/// Decodes frames into messages for one connection.
///
/// Feed it the connection's read buffer; it consumes whole frames, unmasks and validates
/// payload bytes as soon as they arrive (so invalid UTF-8 fails the connection mid-frame),
/// reassembles fragments, inflates compressed messages and enforces [`Limits`].
pub struct Decoder {
    role: Role,
    /// Shared: every connection of a server has the same limits, and this is 8 bytes
    /// against 32 in each one's state.
    limits: Arc<Limits>,
    inflate: Option<InflateState>,
    frame: Option<InFrame>,
    /// A fragmented (or compressed) message in progress. Boxed: most of the time there is
    /// none, and every connection holds a decoder.
    partial: Option<Box<Partial>>,
    utf8: Utf8Validator,
    /// Boxed: a ping is rare, and every connection holds a decoder.
    pending_pong: Option<Box<bytes::Bytes>>,
    close_received: bool,
}

struct InflateState {
    // Boxed and created on the first compressed message: an idle connection holds none.
    inflater: Option<Box<Inflater>>,
    no_context_takeover: bool,
}

struct InFrame {
    header: FrameHeader,
    len: usize,
    /// Payload bytes already unmasked (and validated, for text).
    processed: usize,
    validate_utf8: bool,
}

struct Partial {
    text: bool,
    compressed: bool,
    /// Uncompressed: the fragments so far (the first fragment's buffer, extended).
    buf: BytesMut,
    /// Compressed: the inflated output so far.
    inflated: Vec<u8>,
    fragments: usize,
    wire_len: usize,
}

impl Decoder {
    /// A decoder for the given role; `deflate` is the negotiated permessage-deflate, if any.
    /// `limits` is a [`Limits`] or, to share one among many decoders, an `Arc` of one.
    pub fn new(
        role: Role,
        limits: impl Into<Arc<Limits>>,
        deflate: Option<&DeflateParams>,
    ) -> Self {
        Self {
            role,
            limits: limits.into(),
            inflate: deflate.map(|p| InflateState {
                inflater: None,
                no_context_takeover: p.decompress_no_context_takeover,
            }),
            frame: None,
            partial: None,
            utf8: Utf8Validator::new(),
            pending_pong: None,
            close_received: false,
        }
    }

    /// The limits in force.
    pub fn limits(&self) -> &Limits {
        &self.limits
    }

    /// Decodes the next message from the front of `buf`, consuming what it uses.
    ///
    /// Returns `Ok(None)` when more bytes are needed. Control frames are returned as they
    /// arrive, also in the middle of a fragmented message. On `Err`, fail the connection
    /// with [`ProtocolError::close_code`]. After a close frame, further bytes are ignored.
    pub fn decode(&mut self, buf: &mut BytesMut) -> Result<Option<Message>, ProtocolError> {
        loop {
            if self.close_received {
                buf.clear();
                return Ok(None);
            }
            let frame = match &mut self.frame {
                Some(f) => f,
                None => {
                    let Some((header, head_len)) = FrameHeader::decode(buf)? else {
                        return Ok(None);
                    };
                    let frame = self.check_header(header)?;
                    buf.advance(head_len);
                    self.frame.insert(frame)
                }
            };
            let avail = buf.len().min(frame.len);
            if avail > frame.processed {
                let chunk = &mut buf[frame.processed..avail];
                if let Some(mask) = frame.header.mask {
                    apply_mask(chunk, mask, frame.processed);
                }
                if frame.validate_utf8 {
                    self.utf8
                        .feed(chunk)
                        .map_err(|_| ProtocolError::InvalidUtf8)?;
                }
                frame.processed = avail;
            }
            if avail < frame.len {
                return Ok(None);
            }
            let header = frame.header;
            let len = frame.len;
            self.frame = None;
            let payload = buf.split_to(len);
            if let Some(msg) = self.on_frame(header, payload)? {
                return Ok(Some(msg));
            }
        }
    }

    /// How many more bytes the frame being received needs (0 between frames). Lets the
    /// I/O layer size one read for a large frame; bounded by the limits already checked.
    pub fn frame_remaining(&self, buffered: usize) -> usize {
        self.frame
            .as_ref()
            .map_or(0, |f| f.len.saturating_sub(buffered))
    }

    /// Takes the payload of the pong owed for the latest ping. Only the latest is kept
    /// (RFC 6455 §5.5.3 allows answering just the most recent ping), so a ping flood
    /// costs at most one pong.
    pub fn take_pending_pong(&mut self) -> Option<bytes::Bytes> {
        self.pending_pong.take().map(|b| *b)
    }

    /// Whether the peer's close frame has been received.
    pub fn close_received(&self) -> bool {
        self.close_received
    }

    /// Whether a fragmented message is in progress.
    pub fn in_message(&self) -> bool {
        self.partial.is_some() || self.frame.is_some()
    }

    fn check_header(&mut self, h: FrameHeader) -> Result<InFrame, ProtocolError> {
        if h.rsv23 {
            return Err(ProtocolError::ReservedBits);
        }
        match (self.role, h.mask.is_some()) {
            (Role::Server, false) => return Err(ProtocolError::UnmaskedFrame),
            (Role::Client, true) => return Err(ProtocolError::MaskedFrame),
            _ => {}
        }
        let len = usize::try_from(h.payload_len)
            .ok()
            .filter(|&l| l <= self.limits.max_frame_payload)
            .ok_or(ProtocolError::FrameTooLarge {
                len: h.payload_len,
                max: self.limits.max_frame_payload,
            })?;
        let mut validate_utf8 = false;
        if h.opcode.is_control() {
            if !h.fin {
                return Err(ProtocolError::FragmentedControlFrame);
            }
            if len > 125 {
                return Err(ProtocolError::ControlFrameTooLong);
            }
            if h.rsv1 {
                return Err(ProtocolError::ReservedBits);
            }
        } else if h.opcode == OpCode::Continuation {
            let Some(p) = &self.partial else {
                return Err(ProtocolError::UnexpectedContinuation);
            };
            if h.rsv1 {
                return Err(ProtocolError::CompressedContinuation);
            }
            if p.fragments >= self.limits.max_fragments {
                return Err(ProtocolError::TooManyFragments {
                    max: self.limits.max_fragments,
                });
            }
            if p.wire_len.saturating_add(len) > self.limits.max_message_size {
                return Err(ProtocolError::MessageTooLarge {
                    max: self.limits.max_message_size,
                });
            }
            validate_utf8 = p.text && !p.compressed;
        } else {
            if self.partial.is_some() {
                return Err(ProtocolError::ExpectedContinuation);
            }
            if h.rsv1 && self.inflate.is_none() {
                return Err(ProtocolError::ReservedBits);
            }
            if len > self.limits.max_message_size {
                return Err(ProtocolError::MessageTooLarge {
                    max: self.limits.max_message_size,
                });
            }
            if h.opcode == OpCode::Text {
                self.utf8.reset();
                validate_utf8 = !h.rsv1;
            }
        }
        Ok(InFrame {
            header: h,
            len,
            processed: 0,
            validate_utf8,
        })
    }

    fn on_frame(
        &mut self,
        h: FrameHeader,
        payload: BytesMut,
    ) -> Result<Option<Message>, ProtocolError> {
        match h.opcode {
            OpCode::Ping => {
                let payload = payload.freeze();
                self.pending_pong = Some(Box::new(payload.clone()));
                Ok(Some(Message::Ping(payload)))
            }
            OpCode::Pong => Ok(Some(Message::Pong(payload.freeze()))),
            OpCode::Close => {
                let frame = CloseFrame::parse(&payload)?;
                self.close_received = true;
                Ok(Some(Message::Close(frame)))
            }
            OpCode::Text | OpCode::Binary => {
                let text = h.opcode == OpCode::Text;
                if h.fin && !h.rsv1 {
                    return Ok(Some(self.complete(text, payload.freeze())?));
                }
                let mut partial = Box::new(Partial {
                    text,
                    compressed: h.rsv1,
                    buf: BytesMut::new(),
                    inflated: Vec::new(),
                    fragments: 1,
                    wire_len: payload.len(),
                });
                if h.rsv1 {
                    self.partial = Some(partial);
                    self.inflate_into_partial(&payload, h.fin)?;
                } else {
                    // The first fragment's buffer becomes the message buffer: no copy.
                    partial.buf = payload;
                    self.partial = Some(partial);
                }
                self.finish_if(h.fin)
            }
            OpCode::Continuation => {
                let Some(p) = &mut self.partial else {
                    return Err(ProtocolError::UnexpectedContinuation);
                };
                p.fragments += 1;
                p.wire_len += payload.len();
                if p.compressed {
                    self.inflate_into_partial(&payload, h.fin)?;
                } else {
                    p.buf.extend_from_slice(&payload);
                }
                self.finish_if(h.fin)
            }
        }
    }

    fn inflate_into_partial(&mut self, input: &[u8], last: bool) -> Result<(), ProtocolError> {
        let (Some(state), Some(p)) = (&mut self.inflate, &mut self.partial) else {
            return Err(ProtocolError::ReservedBits);
        };
        let inflater = state.inflater.get_or_insert_with(Default::default);
        let start = p.inflated.len();
        inflater.inflate(input, last, &mut p.inflated, self.limits.max_inflated_size)?;
        if p.text {
            self.utf8
                .feed(&p.inflated[start..])
                .map_err(|_| ProtocolError::InvalidUtf8)?;
        }
        if last && state.no_context_takeover {
            // The peer starts afresh each message: free the window rather than keep it.
            state.inflater = None;
        }
        Ok(())
    }

    fn finish_if(&mut self, fin: bool) -> Result<Option<Message>, ProtocolError> {
        if !fin {
            return Ok(None);
        }
        match self.partial.take() {
            Some(p) if p.compressed => Ok(Some(self.complete(p.text, Bytes::from(p.inflated))?)),
            Some(p) => Ok(Some(self.complete(p.text, p.buf.freeze())?)),
            None => Ok(None),
        }
    }

    fn complete(&mut self, text: bool, payload: Bytes) -> Result<Message, ProtocolError> {
        if text {
            self.utf8.finish().map_err(|_| ProtocolError::InvalidUtf8)?;
            Ok(Message::Text(Utf8Bytes::from_validated(payload)))
        } else {
            Ok(Message::Binary(payload))
        }
    }
}

/// The close frame to answer a received one with: RFC 6455 §5.5.1 says to echo the code.
pub fn close_reply(received: &Option<CloseFrame>) -> Option<CloseFrame> {
    received
        .as_ref()
        .map(|f| CloseFrame::new(f.code, ""))
        .or(Some(CloseFrame::new(CloseCode::NORMAL, "")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::encoder::Encoder;

    fn client_frame(op: u8, fin: bool, payload: &[u8]) -> Vec<u8> {
        let mask = [1, 2, 3, 4];
        let mut v = vec![if fin { 0x80 } else { 0 } | op];
        let len = payload.len();
        if len < 126 {
            v.push(0x80 | len as u8);
        } else if len < 65536 {
            v.push(0x80 | 126);
            v.extend_from_slice(&(len as u16).to_be_bytes());
        } else {
            v.push(0x80 | 127);
            v.extend_from_slice(&(len as u64).to_be_bytes());
        }
        v.extend_from_slice(&mask);
        let mut p = payload.to_vec();
        apply_mask(&mut p, mask, 0);
        v.extend_from_slice(&p);
        v
    }

    fn server() -> Decoder {
        Decoder::new(Role::Server, Limits::default(), None)
    }

    #[test]
    fn decodes_byte_by_byte() {
        let mut d = server();
        let wire = [
            client_frame(1, false, b"hel"),
            client_frame(9, true, b"p"),
            client_frame(0, true, "lo €".as_bytes()),
        ]
        .concat();
        let mut buf = BytesMut::new();
        let mut out = vec![];
        for b in wire {
            buf.extend_from_slice(&[b]);
            while let Some(m) = d.decode(&mut buf).unwrap() {
                out.push(m);
            }
        }
        assert_eq!(
            out,
            vec![
                Message::Ping(Bytes::from_static(b"p")),
                Message::text("hello €")
            ]
        );
        assert_eq!(d.take_pending_pong(), Some(Bytes::from_static(b"p")));
        assert_eq!(d.take_pending_pong(), None);
    }

    #[test]
    fn invalid_utf8_fails_before_frame_completes() {
        let mut d = server();
        let wire = client_frame(1, true, &[b'a', 0xed, 0xa0, 0x80, b'b', b'c', b'd']);
        // Header (6 bytes) and the first three payload bytes only.
        let mut buf = BytesMut::from(&wire[..9]);
        assert_eq!(d.decode(&mut buf), Err(ProtocolError::InvalidUtf8));
    }

    #[test]
    fn role_and_rsv_rules() {
        let mut buf = BytesMut::from(&[0x81u8, 0x00][..]);
        assert_eq!(server().decode(&mut buf), Err(ProtocolError::UnmaskedFrame));
        let mut buf = BytesMut::from(&client_frame(1, true, b"x")[..]);
        let mut c = Decoder::new(Role::Client, Limits::default(), None);
        assert_eq!(c.decode(&mut buf), Err(ProtocolError::MaskedFrame));
        let mut f = client_frame(1, true, b"x");
        f[0] |= 0x40;
        assert_eq!(
            server().decode(&mut BytesMut::from(&f[..])),
            Err(ProtocolError::ReservedBits)
        );
        assert_eq!(
            server().decode(&mut BytesMut::from(&client_frame(0, true, b"x")[..])),
            Err(ProtocolError::UnexpectedContinuation)
        );
        assert_eq!(
            server().decode(&mut BytesMut::from(&client_frame(9, false, b"x")[..])),
            Err(ProtocolError::FragmentedControlFrame)
        );
        assert_eq!(
            server().decode(&mut BytesMut::from(&client_frame(9, true, &[0; 126])[..])),
            Err(ProtocolError::ControlFrameTooLong)
        );
        let two_starts = [client_frame(1, false, b"a"), client_frame(1, true, b"b")].concat();
        assert_eq!(
            server().decode(&mut BytesMut::from(&two_starts[..])),
            Err(ProtocolError::ExpectedContinuation)
        );
    }

    #[test]
    fn limits_just_at_and_just_over() {
        let limits = Limits::default()
            .max_frame_payload(10)
            .max_message_size(15)
            .max_fragments(3);
        let mut d = Decoder::new(Role::Server, limits.clone(), None);
        assert!(d
            .decode(&mut BytesMut::from(&client_frame(2, true, &[0; 10])[..]))
            .unwrap()
            .is_some());
        let mut d = Decoder::new(Role::Server, limits.clone(), None);
        assert_eq!(
            d.decode(&mut BytesMut::from(&client_frame(2, true, &[0; 11])[..])),
            Err(ProtocolError::FrameTooLarge { len: 11, max: 10 })
        );
        let at = [
            client_frame(2, false, &[0; 5]),
            client_frame(0, false, &[0; 5]),
            client_frame(0, true, &[0; 5]),
        ]
        .concat();
        let mut d = Decoder::new(Role::Server, limits.clone(), None);
        assert!(d.decode(&mut BytesMut::from(&at[..])).unwrap().is_some());
        let over = [
            client_frame(2, false, &[0; 5]),
            client_frame(0, false, &[0; 5]),
            client_frame(0, true, &[0; 6]),
        ]
        .concat();
        let mut d = Decoder::new(Role::Server, limits.clone(), None);
        assert_eq!(
            d.decode(&mut BytesMut::from(&over[..])),
            Err(ProtocolError::MessageTooLarge { max: 15 })
        );
        let many = [
            client_frame(2, false, b""),
            client_frame(0, false, b""),
            client_frame(0, false, b""),
            client_frame(0, true, b""),
        ]
        .concat();
        let mut d = Decoder::new(Role::Server, limits, None);
        assert_eq!(
            d.decode(&mut BytesMut::from(&many[..])),
            Err(ProtocolError::TooManyFragments { max: 3 })
        );
    }

    #[test]
    fn huge_declared_length_is_rejected_from_the_header_alone() {
        let mut buf = BytesMut::from(
            &[
                0x82u8, 0xff, 0x7f, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 1, 2, 3, 4,
            ][..],
        );
        assert!(matches!(
            server().decode(&mut buf),
            Err(ProtocolError::FrameTooLarge { .. })
        ));
    }

    #[test]
    fn compressed_fragments_roundtrip_through_encoder() {
        let params = crate::DeflateConfig::default()
            .compress_threshold(0)
            .accept_offer(["permessage-deflate"])
            .unwrap()
            .1;
        let mut enc = Encoder::new(Role::Client, Some(&params), 7);
        let text = "hello compressed world ".repeat(50);
        let frame = enc.encode(OpCode::Text, Bytes::from(text.clone()));
        assert!(frame.to_bytes()[0] & 0x40 != 0, "RSV1 set");
        let mut d = Decoder::new(Role::Server, Limits::default(), Some(&params));
        let mut buf = BytesMut::from(&frame.to_bytes()[..]);
        assert_eq!(d.decode(&mut buf).unwrap(), Some(Message::text(text)));
    }
}
