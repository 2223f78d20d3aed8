//! The namespace a packet is addressed to (`/`, `/admin`).

use std::borrow::Borrow;
use std::fmt;
use std::hash::{Hash, Hasher};
use std::ops::Deref;
use std::sync::Arc;

use super::error::NamespaceError;

/// A namespace name that the wire format can carry: it starts with `/` and has no comma.
///
/// Cheap to clone (a shared string; the main namespace `/` allocates nothing), so a
/// broadcast can put the same namespace in every packet. Compares, hashes and borrows as
/// its `str`, so it can key a `HashMap<Namespace, _>` looked up with a `&str`.
#[derive(Clone)]
pub struct Namespace(Repr);

#[derive(Clone)]
enum Repr {
    Static(&'static str),
    Shared(Arc<str>),
}

impl Namespace {
    /// The main namespace, `/`. Encoded packets leave it out.
    pub const ROOT: Namespace = Namespace(Repr::Static("/"));

    /// Validates `name`: it must start with `/` and contain no comma.
    pub fn new(name: &str) -> Result<Self, NamespaceError> {
        validate(name)?;
        Ok(if name == "/" {
            Self::ROOT
        } else {
            Self(Repr::Shared(Arc::from(name)))
        })
    }

    /// Like [`Namespace::new`], without copying a `'static` name.
    pub fn from_static(name: &'static str) -> Result<Self, NamespaceError> {
        validate(name)?;
        Ok(Self(Repr::Static(name)))
    }

    /// A name read off the wire: it starts with `/` and has no comma by construction.
    pub(crate) fn from_wire(name: &str) -> Self {
        debug_assert!(validate(name).is_ok(), "{name:?}");
        if name == "/" {
            Self::ROOT
        } else {
            Self(Repr::Shared(Arc::from(name)))
        }
    }

    /// The name, e.g. `/admin`.
    pub fn as_str(&self) -> &str {
        match &self.0 {
            Repr::Static(s) => s,
            Repr::Shared(s) => s,
        }
    }

    /// Whether this is the main namespace `/`.
    pub fn is_root(&self) -> bool {
        self.as_str() == "/"
    }
}

fn validate(name: &str) -> Result<(), NamespaceError> {
    if !name.starts_with('/') {
        return Err(NamespaceError::MissingLeadingSlash);
    }
    if name.contains(',') {
        return Err(NamespaceError::ContainsComma);
    }
    Ok(())
}

impl Default for Namespace {
    fn default() -> Self {
        Self::ROOT
    }
}

impl Deref for Namespace {
    type Target = str;
    fn deref(&self) -> &str {
        self.as_str()
    }
}

impl AsRef<str> for Namespace {
    fn as_ref(&self) -> &str {
        self.as_str()
    }
}

impl Borrow<str> for Namespace {
    fn borrow(&self) -> &str {
        self.as_str()
    }
}

impl PartialEq for Namespace {
    fn eq(&self, other: &Self) -> bool {
        self.as_str() == other.as_str()
    }
}

impl Eq for Namespace {}

impl PartialEq<str> for Namespace {
    fn eq(&self, other: &str) -> bool {
        self.as_str() == other
    }
}

impl PartialEq<&str> for Namespace {
    fn eq(&self, other: &&str) -> bool {
        self.as_str() == *other
    }
}

impl Hash for Namespace {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.as_str().hash(state);
    }
}

impl PartialOrd for Namespace {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Namespace {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.as_str().cmp(other.as_str())
    }
}

impl fmt::Debug for Namespace {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.as_str().fmt(f)
    }
}

impl fmt::Display for Namespace {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.as_str().fmt(f)
    }
}

impl TryFrom<&str> for Namespace {
    type Error = NamespaceError;
    fn try_from(name: &str) -> Result<Self, NamespaceError> {
        Self::new(name)
    }
}

impl TryFrom<String> for Namespace {
    type Error = NamespaceError;
    fn try_from(name: String) -> Result<Self, NamespaceError> {
        validate(&name)?;
        Ok(if name == "/" {
            Self::ROOT
        } else {
            Self(Repr::Shared(Arc::from(name)))
        })
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    #[test]
    fn names_must_start_with_a_slash_and_have_no_comma() {
        assert_eq!(Namespace::new("/admin").unwrap(), "/admin");
        assert_eq!(Namespace::new("/").unwrap(), Namespace::ROOT);
        assert!(Namespace::new("/").unwrap().is_root());
        assert_eq!(
            Namespace::new("admin"),
            Err(NamespaceError::MissingLeadingSlash)
        );
        assert_eq!(Namespace::new(""), Err(NamespaceError::MissingLeadingSlash));
        assert_eq!(Namespace::new("/a,b"), Err(NamespaceError::ContainsComma));
        assert_eq!(
            Namespace::try_from(String::from("/a,b")),
            Err(NamespaceError::ContainsComma)
        );
        assert_eq!(
            Namespace::from_static("/x").unwrap(),
            Namespace::try_from(String::from("/x")).unwrap()
        );
        assert_eq!(Namespace::default(), Namespace::ROOT);
    }

    #[test]
    fn keys_a_map_looked_up_by_str() {
        let mut map = HashMap::new();
        map.insert(Namespace::new("/chat").unwrap(), 1);
        assert_eq!(map.get("/chat"), Some(&1));
        assert_eq!(format!("{}", Namespace::ROOT), "/");
        assert_eq!(format!("{:?}", Namespace::ROOT), "\"/\"");
    }
}
