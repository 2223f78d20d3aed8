//! Frame headers (RFC 6455 §5.2) and outgoing frames.

use bytes::Bytes;

use crate::error::ProtocolError;

/// The longest frame header: 2 bytes, 8 bytes of extended length, 4 bytes of mask.
pub const MAX_HEAD_LEN: usize = 14;

/// Frame opcodes (RFC 6455 §5.2, §11.8).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum OpCode {
    /// 0x0: continues a fragmented message.
    Continuation = 0x0,
    /// 0x1: text data.
    Text = 0x1,
    /// 0x2: binary data.
    Binary = 0x2,
    /// 0x8: close.
    Close = 0x8,
    /// 0x9: ping.
    Ping = 0x9,
    /// 0xA: pong.
    Pong = 0xa,
}

impl OpCode {
    /// Decodes an opcode; reserved values are a protocol error.
    pub fn from_u8(b: u8) -> Result<Self, ProtocolError> {
        Ok(match b {
            0x0 => Self::Continuation,
            0x1 => Self::Text,
            0x2 => Self::Binary,
            0x8 => Self::Close,
            0x9 => Self::Ping,
            0xa => Self::Pong,
            other => return Err(ProtocolError::ReservedOpcode(other)),
        })
    }

    /// Control frames are 0x8-0xF (RFC 6455 §5.5).
    pub fn is_control(self) -> bool {
        (self as u8) & 0x8 != 0
    }
}

/// A decoded frame header.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FrameHeader {
    /// Final fragment of a message.
    pub fin: bool,
    /// RSV1: "compressed" under permessage-deflate.
    pub rsv1: bool,
    /// RSV2 and RSV3, which no extension we speak defines.
    pub rsv23: bool,
    /// The opcode.
    pub opcode: OpCode,
    /// The masking key, if the frame is masked.
    pub mask: Option<[u8; 4]>,
    /// The payload length as declared.
    pub payload_len: u64,
}

impl FrameHeader {
    /// Decodes a header from the front of `buf`. Returns `Ok(None)` when more bytes are
    /// needed, or the header and its length in bytes. Only the header's own syntax is
    /// checked here; role and state rules belong to the decoder.
    #[inline]
    pub fn decode(buf: &[u8]) -> Result<Option<(Self, usize)>, ProtocolError> {
        let [b0, b1, ..] = *buf else {
            return Ok(None);
        };
        let opcode = OpCode::from_u8(b0 & 0x0f)?;
        let masked = b1 & 0x80 != 0;
        let (payload_len, mut pos) = match b1 & 0x7f {
            126 => match buf.get(2..4) {
                Some(b) => (u64::from(u16::from_be_bytes([b[0], b[1]])), 4),
                None => return Ok(None),
            },
            127 => match buf.get(2..10) {
                Some(b) => {
                    let mut a = [0u8; 8];
                    a.copy_from_slice(b);
                    let len = u64::from_be_bytes(a);
                    if len >> 63 != 0 {
                        return Err(ProtocolError::InvalidLength);
                    }
                    (len, 10)
                }
                None => return Ok(None),
            },
            n => (u64::from(n), 2),
        };
        let mask = if masked {
            match buf.get(pos..pos + 4) {
                Some(m) => {
                    pos += 4;
                    Some([m[0], m[1], m[2], m[3]])
                }
                None => return Ok(None),
            }
        } else {
            None
        };
        Ok(Some((
            Self {
                fin: b0 & 0x80 != 0,
                rsv1: b0 & 0x40 != 0,
                rsv23: b0 & 0x30 != 0,
                opcode,
                mask,
                payload_len,
            },
            pos,
        )))
    }

    /// Encodes the header into `out`, returning the number of bytes written.
    /// Uses the shortest length encoding, as RFC 6455 §5.2 requires.
    #[inline]
    pub fn encode(&self, out: &mut [u8; MAX_HEAD_LEN]) -> usize {
        let mut b0 = self.opcode as u8;
        if self.fin {
            b0 |= 0x80;
        }
        if self.rsv1 {
            b0 |= 0x40;
        }
        out[0] = b0;
        let mask_bit = if self.mask.is_some() { 0x80 } else { 0 };
        let mut pos = match self.payload_len {
            n @ 0..=125 => {
                out[1] = mask_bit | n as u8;
                2
            }
            n @ 126..=0xffff => {
                out[1] = mask_bit | 126;
                out[2..4].copy_from_slice(&(n as u16).to_be_bytes());
                4
            }
            n => {
                out[1] = mask_bit | 127;
                out[2..10].copy_from_slice(&n.to_be_bytes());
                10
            }
        };
        if let Some(m) = self.mask {
            out[pos..pos + 4].copy_from_slice(&m);
            pos += 4;
        }
        pos
    }
}

/// An outgoing frame: a header kept inline (no allocation) and a shared payload.
///
/// The payload is written with a vectored write next to the header, so a large payload
/// is never copied. A prepared message has an empty header and the whole frame as payload.
#[derive(Clone)]
pub struct Frame {
    head: [u8; MAX_HEAD_LEN],
    head_len: u8,
    payload: Bytes,
}

impl Frame {
    /// Frames `payload` with the given header fields (`header.payload_len` is ignored).
    /// If `header.mask` is set the payload must already be masked.
    pub fn new(mut header: FrameHeader, payload: Bytes) -> Self {
        header.payload_len = payload.len() as u64;
        let mut head = [0u8; MAX_HEAD_LEN];
        let head_len = header.encode(&mut head) as u8;
        Self {
            head,
            head_len,
            payload,
        }
    }

    /// An unmasked, final, uncompressed frame: what a server sends.
    #[inline]
    pub fn unmasked(opcode: OpCode, payload: Bytes) -> Self {
        Self::new(
            FrameHeader {
                fin: true,
                rsv1: false,
                rsv23: false,
                opcode,
                mask: None,
                payload_len: 0,
            },
            payload,
        )
    }

    /// A frame whose bytes are already complete (a prepared message).
    pub fn raw(bytes: Bytes) -> Self {
        Self {
            head: [0; MAX_HEAD_LEN],
            head_len: 0,
            payload: bytes,
        }
    }

    /// The header bytes (empty for a raw frame).
    #[inline]
    pub fn head(&self) -> &[u8] {
        &self.head[..usize::from(self.head_len)]
    }

    /// The payload bytes.
    #[inline]
    pub fn payload(&self) -> &Bytes {
        &self.payload
    }

    /// Total bytes on the wire.
    #[inline]
    pub fn wire_len(&self) -> usize {
        usize::from(self.head_len) + self.payload.len()
    }

    /// Copies header and payload into one contiguous buffer.
    pub fn to_bytes(&self) -> Bytes {
        let mut v = Vec::with_capacity(self.wire_len());
        v.extend_from_slice(self.head());
        v.extend_from_slice(&self.payload);
        Bytes::from(v)
    }
}

impl std::fmt::Debug for Frame {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Frame")
            .field("head", &self.head())
            .field("payload_len", &self.payload.len())
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn roundtrip(len: u64, mask: Option<[u8; 4]>) {
        let h = FrameHeader {
            fin: true,
            rsv1: true,
            rsv23: false,
            opcode: OpCode::Binary,
            mask,
            payload_len: len,
        };
        let mut out = [0u8; MAX_HEAD_LEN];
        let n = h.encode(&mut out);
        assert_eq!(FrameHeader::decode(&out[..n]), Ok(Some((h, n))));
        for short in 0..n {
            assert_eq!(FrameHeader::decode(&out[..short]), Ok(None));
        }
    }

    #[test]
    fn lengths_7_16_64_bit_roundtrip() {
        for len in [0, 1, 125, 126, 65535, 65536, 1 << 40] {
            roundtrip(len, None);
            roundtrip(len, Some([1, 2, 3, 4]));
        }
    }

    #[test]
    fn msb_of_64_bit_length_is_rejected() {
        let buf = [0x82, 127, 0x80, 0, 0, 0, 0, 0, 0, 0];
        assert_eq!(FrameHeader::decode(&buf), Err(ProtocolError::InvalidLength));
    }

    #[test]
    fn reserved_opcodes_are_rejected() {
        for op in [3u8, 4, 5, 6, 7, 0xb, 0xc, 0xd, 0xe, 0xf] {
            assert_eq!(
                FrameHeader::decode(&[0x80 | op, 0]),
                Err(ProtocolError::ReservedOpcode(op))
            );
        }
    }
}
