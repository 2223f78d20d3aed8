//! Builders for exact (and exactly wrong) WebSocket frames.

/// A frame to put on the wire byte for byte, whatever the RFC says.
#[derive(Clone, Debug)]
pub struct FrameSpec {
    /// FIN bit.
    pub fin: bool,
    /// RSV1..3 bits as the 3 low bits (RSV1 = 0b100).
    pub rsv: u8,
    /// Opcode (any value 0-15).
    pub opcode: u8,
    /// Masking key; `None` sends an unmasked frame.
    pub mask: Option<[u8; 4]>,
    /// Payload (masked on output if `mask` is set).
    pub payload: Vec<u8>,
    /// Overrides the declared length (for frames that lie about their size).
    pub declared_len: Option<u64>,
}

impl FrameSpec {
    /// A final, masked frame (as a well-behaved client sends).
    pub fn client(opcode: u8, payload: impl Into<Vec<u8>>) -> Self {
        Self {
            fin: true,
            rsv: 0,
            opcode,
            mask: Some([0x37, 0xfa, 0x21, 0x3d]),
            payload: payload.into(),
            declared_len: None,
        }
    }

    /// Sets FIN.
    pub fn fin(mut self, fin: bool) -> Self {
        self.fin = fin;
        self
    }

    /// Sets the RSV bits (0b100 = RSV1).
    pub fn rsv(mut self, rsv: u8) -> Self {
        self.rsv = rsv;
        self
    }

    /// Sends the frame unmasked.
    pub fn unmasked(mut self) -> Self {
        self.mask = None;
        self
    }

    /// Declares a length different from the payload's.
    pub fn declared_len(mut self, len: u64) -> Self {
        self.declared_len = Some(len);
        self
    }

    /// The frame's bytes.
    pub fn encode(&self) -> Vec<u8> {
        let mut v = Vec::with_capacity(self.payload.len() + 14);
        v.push(u8::from(self.fin) << 7 | (self.rsv & 7) << 4 | (self.opcode & 0x0f));
        let len = self.declared_len.unwrap_or(self.payload.len() as u64);
        let mask_bit = if self.mask.is_some() { 0x80 } else { 0 };
        if len < 126 {
            v.push(mask_bit | len as u8);
        } else if len <= 0xffff {
            v.push(mask_bit | 126);
            v.extend_from_slice(&(len as u16).to_be_bytes());
        } else {
            v.push(mask_bit | 127);
            v.extend_from_slice(&len.to_be_bytes());
        }
        match self.mask {
            Some(m) => {
                v.extend_from_slice(&m);
                v.extend(self.payload.iter().enumerate().map(|(i, b)| b ^ m[i & 3]));
            }
            None => v.extend_from_slice(&self.payload),
        }
        v
    }
}

/// A masked client frame's bytes.
pub fn client_frame(opcode: u8, fin: bool, payload: &[u8]) -> Vec<u8> {
    FrameSpec::client(opcode, payload).fin(fin).encode()
}

/// A masked close frame with `code` and `reason`.
pub fn close_frame(code: u16, reason: &[u8]) -> Vec<u8> {
    let mut p = code.to_be_bytes().to_vec();
    p.extend_from_slice(reason);
    client_frame(0x8, true, &p)
}

/// A decoded server frame, as the raw client sees it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ServerFrame {
    /// FIN bit.
    pub fin: bool,
    /// RSV1 bit.
    pub rsv1: bool,
    /// Opcode.
    pub opcode: u8,
    /// Payload.
    pub payload: Vec<u8>,
}

impl ServerFrame {
    /// The status code of a close frame (1005 if it has none).
    pub fn close_code(&self) -> Option<u16> {
        (self.opcode == 0x8).then(|| match self.payload[..] {
            [a, b, ..] => u16::from_be_bytes([a, b]),
            _ => 1005,
        })
    }

    /// The reason of a close frame, if it has a code and the reason is UTF-8.
    pub fn close_reason(&self) -> Option<&str> {
        if self.opcode != 0x8 {
            return None;
        }
        std::str::from_utf8(self.payload.get(2..)?).ok()
    }

    /// Parses one unmasked server frame from the front of `buf`, returning it and its size.
    pub fn parse(buf: &[u8]) -> Option<(Self, usize)> {
        let b0 = *buf.first()?;
        let b1 = *buf.get(1)?;
        let (len, mut pos) = match b1 & 0x7f {
            126 => (u16::from_be_bytes([*buf.get(2)?, *buf.get(3)?]) as usize, 4),
            127 => {
                let mut a = [0u8; 8];
                a.copy_from_slice(buf.get(2..10)?);
                (u64::from_be_bytes(a) as usize, 10)
            }
            n => (n as usize, 2),
        };
        if b1 & 0x80 != 0 {
            pos += 4;
        }
        let payload = buf.get(pos..pos + len)?.to_vec();
        Some((
            Self {
                fin: b0 & 0x80 != 0,
                rsv1: b0 & 0x40 != 0,
                opcode: b0 & 0x0f,
                payload,
            },
            pos + len,
        ))
    }
}

/// A permessage-deflate message payload (RFC 7692: raw deflate, the final `00 00 ff ff`
/// stripped) that inflates to `inflated` zero bytes at deflate's best ratio, ~1032:1.
///
/// Built by hand rather than compressed, so even a gigabyte costs no time: one dynamic
/// Huffman block whose only codes are literal 0, end-of-block, length 258 and distance 1,
/// so each 258-byte copy costs two bits (RFC 1951 §3.2.5-§3.2.7).
pub fn deflate_bomb(inflated: u64) -> Vec<u8> {
    let mut w = BitWriter::default();
    // Block header: not final, dynamic Huffman (BTYPE 10).
    w.bits(0, 1);
    w.bits(2, 2);
    // HLIT: 286 literal/length codes (up to 285); HDIST: 1 distance code; HCLEN: 18.
    w.bits(29, 5);
    w.bits(0, 5);
    w.bits(14, 4);
    // Code length code lengths, in RFC 1951's permuted order: only 18 (1 bit), 2 and 1
    // (2 bits each) are used. Canonical codes: 18 = 0, 1 = 10, 2 = 11.
    const ORDER: [u32; 18] = [16, 17, 18, 0, 8, 7, 9, 6, 10, 5, 11, 4, 12, 3, 13, 2, 14, 1];
    for sym in ORDER {
        w.bits(
            match sym {
                18 => 1,
                1 | 2 => 2,
                _ => 0,
            },
            3,
        );
    }
    // Literal/length code lengths: 0 -> 2, 1..=255 -> 0, 256 -> 2, 257..=284 -> 0,
    // 285 -> 1; then the one distance code: 0 -> 1.
    w.code(0b11, 2);
    w.code(0, 1);
    w.bits(138 - 11, 7);
    w.code(0, 1);
    w.bits(117 - 11, 7);
    w.code(0b11, 2);
    w.code(0, 1);
    w.bits(28 - 11, 7);
    w.code(0b10, 2);
    w.code(0b10, 2);
    // Canonical literal/length codes: 285 = 0, literal 0 = 10, end-of-block = 11.
    // Distance code 0 (distance 1) = 0.
    if inflated > 0 {
        w.code(0b10, 2);
        let rest = inflated - 1;
        // Each copy of 258 bytes at distance 1 is code 0 then distance 0: two zero bits.
        w.zeros(rest / 258 * 2);
        for _ in 0..rest % 258 {
            w.code(0b10, 2);
        }
    }
    w.code(0b11, 2);
    // The empty stored block a sync flush ends with; its `00 00 ff ff` is what RFC 7692
    // senders strip and receivers add back.
    w.bits(0, 3);
    w.finish()
}

/// Writes bits least significant first, as deflate packs them.
#[derive(Default)]
struct BitWriter {
    out: Vec<u8>,
    acc: u32,
    n: u32,
}

impl BitWriter {
    fn bits(&mut self, value: u32, count: u32) {
        self.acc |= value << self.n;
        self.n += count;
        while self.n >= 8 {
            self.out.push(self.acc as u8);
            self.acc >>= 8;
            self.n -= 8;
        }
    }

    /// A Huffman code, whose bits go out most significant first.
    fn code(&mut self, code: u32, len: u32) {
        for i in (0..len).rev() {
            self.bits((code >> i) & 1, 1);
        }
    }

    fn zeros(&mut self, mut count: u64) {
        while count > 0 && self.n > 0 {
            self.bits(0, 1);
            count -= 1;
        }
        let bytes = usize::try_from(count / 8).expect("bomb fits in memory");
        self.out.resize(self.out.len() + bytes, 0);
        for _ in 0..count % 8 {
            self.bits(0, 1);
        }
    }

    fn finish(mut self) -> Vec<u8> {
        if self.n > 0 {
            self.out.push(self.acc as u8);
        }
        self.out
    }
}
