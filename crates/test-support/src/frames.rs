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
