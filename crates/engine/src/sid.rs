//! Session ids.
//!
//! Node's engine.io (`base64id`) makes a session id from 15 bytes, base64-encoded with
//! `/` and `+` swapped for `_` and `-`: 20 characters of the URL-safe alphabet, no padding
//! (`lv_VI97HAXpY6yYWAAAC`). Of those 15 bytes Node draws only 12 at random; the last
//! 3 are a per-process counter (the `AAAC` above). Here all 15 come from the operating
//! system's CSPRNG, so ids have the same shape and 120 unguessable bits.

use std::fmt;
use std::str::FromStr;

use base64::Engine as _;

use crate::error::RequestError;

/// Length of a session id, in characters.
pub const SID_LEN: usize = 20;

/// Random bytes behind an id: a multiple of 3, so base64 needs no padding.
const RAW_LEN: usize = 15;

/// A session id: 20 characters of the URL-safe base64 alphabet (`A-Z a-z 0-9 - _`).
///
/// `Copy` and stored inline, so a session table keyed by it hashes and compares 20 bytes
/// and never allocates.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Sid([u8; SID_LEN]);

/// The operating system's random number generator failed, so no session id could be
/// made. Node answers the handshake with [`RequestError::BadRequest`]
/// (`ID_GENERATION_ERROR`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[error("the system random number generator failed")]
pub struct RandomError;

impl From<RandomError> for RequestError {
    fn from(_: RandomError) -> Self {
        Self::BadRequest
    }
}

/// A string that cannot be a session id made by [`Sid::generate`], so it names no
/// session ([`RequestError::UnknownSid`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[error("not a session id")]
pub struct InvalidSid;

impl From<InvalidSid> for RequestError {
    fn from(_: InvalidSid) -> Self {
        Self::UnknownSid
    }
}

impl Sid {
    /// A new id from 15 bytes of the operating system's CSPRNG (one `getrandom` call).
    pub fn generate() -> Result<Self, RandomError> {
        let mut raw = [0u8; RAW_LEN];
        getrandom::fill(&mut raw).map_err(|_| RandomError)?;
        Ok(Self::from_random(raw))
    }

    /// The id for 15 given bytes. For tests and for callers with their own CSPRNG; the
    /// bytes must be unpredictable, as the id is the only credential of a session.
    pub fn from_random(raw: [u8; RAW_LEN]) -> Self {
        let mut out = [0u8; SID_LEN];
        // 15 bytes encode to exactly 20 characters, so this cannot fail; were it to, the
        // id would be all 'A's rather than a panic.
        let _ = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode_slice(raw, &mut out);
        Self(out)
    }

    /// Parses an id from a `sid` query parameter. Fails unless `s` is exactly 20
    /// characters of the URL-safe base64 alphabet; such a string names no session.
    pub fn parse(s: &str) -> Result<Self, InvalidSid> {
        let bytes: [u8; SID_LEN] = s.as_bytes().try_into().map_err(|_| InvalidSid)?;
        if bytes
            .iter()
            .all(|&b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        {
            Ok(Self(bytes))
        } else {
            Err(InvalidSid)
        }
    }

    /// The id as a string.
    pub fn as_str(&self) -> &str {
        // Every constructor checks (or produces) ASCII; "" would only hide a bug here.
        std::str::from_utf8(&self.0).unwrap_or_default()
    }
}

impl fmt::Display for Sid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl fmt::Debug for Sid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Sid({})", self.as_str())
    }
}

impl FromStr for Sid {
    type Err = InvalidSid;
    fn from_str(s: &str) -> Result<Self, InvalidSid> {
        Self::parse(s)
    }
}

impl AsRef<str> for Sid {
    fn as_ref(&self) -> &str {
        self.as_str()
    }
}

impl serde::Serialize for Sid {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl<'de> serde::Deserialize<'de> for Sid {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        Self::parse(&s).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_ids_have_nodes_shape() {
        let mut seen = std::collections::HashSet::new();
        for _ in 0..1000 {
            let sid = Sid::generate().unwrap();
            let s = sid.as_str();
            assert_eq!(s.len(), 20);
            assert!(
                s.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'),
                "{s}"
            );
            assert_eq!(Sid::parse(s), Ok(sid));
            assert!(seen.insert(sid), "duplicate {s}");
        }
    }

    #[test]
    fn encoding_is_base64_with_nodes_substitutions() {
        // Buffer.from([0xfb,0xff,...]).toString("base64") = "+/..." -> "-_..." in Node.
        let mut raw = [0u8; 15];
        raw[0] = 0xfb;
        raw[1] = 0xff;
        raw[2] = 0xbf;
        assert_eq!(Sid::from_random(raw).as_str(), "-_-_AAAAAAAAAAAAAAAA");
        // The id from the protocol document is a valid id.
        let doc = Sid::parse("lv_VI97HAXpY6yYWAAAC").unwrap();
        assert_eq!(doc.to_string(), "lv_VI97HAXpY6yYWAAAC");
        assert_eq!("lv_VI97HAXpY6yYWAAAC".parse::<Sid>(), Ok(doc));
        assert_eq!(format!("{doc:?}"), "Sid(lv_VI97HAXpY6yYWAAAC)");
    }

    #[test]
    fn parse_rejects_what_cannot_be_an_id() {
        for bad in [
            "",
            "lv_VI97HAXpY6yYWAAA",   // 19
            "lv_VI97HAXpY6yYWAAAC0", // 21
            "lv_VI97HAXpY6yYWAAA+",
            "lv_VI97HAXpY6yYWAAA/",
            "lv_VI97HAXpY6yYWAAA=",
            "lv_VI97HAXpY6yYWAA é",
        ] {
            assert_eq!(Sid::parse(bad), Err(InvalidSid), "{bad:?}");
        }
        assert_eq!(RequestError::from(InvalidSid), RequestError::UnknownSid);
        assert_eq!(RequestError::from(RandomError), RequestError::BadRequest);
    }

    #[test]
    fn serde_as_a_string() {
        let sid = Sid::parse("lv_VI97HAXpY6yYWAAAC").unwrap();
        assert_eq!(
            serde_json::to_string(&sid).unwrap(),
            r#""lv_VI97HAXpY6yYWAAAC""#
        );
        assert_eq!(
            serde_json::from_str::<Sid>(r#""lv_VI97HAXpY6yYWAAAC""#).unwrap(),
            sid
        );
        assert!(serde_json::from_str::<Sid>(r#""short""#).is_err());
    }
}
