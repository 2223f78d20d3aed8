//! Event names as a socket's handler list keeps them.

/// Longest name kept inline.
const INLINE: usize = 22;

/// An event name: up to 22 bytes inline, which covers the names apps use, longer ones
/// boxed. A boxed name is a 32-byte heap chunk per socket and handler.
#[derive(Clone)]
pub(crate) enum EventName {
    Inline { len: u8, bytes: [u8; INLINE] },
    Boxed(Box<str>),
}

impl EventName {
    pub(crate) fn new(name: &str) -> Self {
        match u8::try_from(name.len()) {
            Ok(len) if name.len() <= INLINE => {
                let mut bytes = [0; INLINE];
                bytes[..name.len()].copy_from_slice(name.as_bytes());
                Self::Inline { len, bytes }
            }
            _ => Self::Boxed(name.into()),
        }
    }

    pub(crate) fn as_bytes(&self) -> &[u8] {
        match self {
            Self::Inline { len, bytes } => &bytes[..usize::from(*len)],
            Self::Boxed(s) => s.as_bytes(),
        }
    }

    /// Whether this is `name`.
    pub(crate) fn is(&self, name: &str) -> bool {
        self.as_bytes() == name.as_bytes()
    }
}

#[cfg(test)]
mod tests {
    use super::EventName;

    #[test]
    fn short_names_are_inline_and_long_ones_boxed() {
        assert_eq!(std::mem::size_of::<EventName>(), 24);
        for name in ["", "chat", "é", &"x".repeat(22)] {
            let n = EventName::new(name);
            assert!(matches!(n, EventName::Inline { .. }), "{name}");
            assert!(n.is(name));
            assert!(!n.is(&format!("{name}!")));
        }
        let long = "y".repeat(23);
        let n = EventName::new(&long);
        assert!(matches!(n, EventName::Boxed(_)));
        assert!(n.is(&long) && !n.is(&long[..22]));
    }
}
