//! The head of the request that opened a session, kept small for the session's life.

use std::net::SocketAddr;
use std::sync::OnceLock;

use bytes::{Bytes, BytesMut};
use http::header::{HeaderName, HeaderValue};
use http::request::Parts;
use http::{Extensions, HeaderMap, Method, Uri, Version};

/// The opening request's head (method, URI with the query, headers, extensions), as a
/// session keeps it.
///
/// hyper hands out the URI and header values as slices of its 8 KiB read buffer, so keeping
/// them as they are would keep that buffer alive for the whole session. Here the path and
/// every header are copied into one small buffer, and a `HeaderMap` (over 0.6 KiB for a
/// handful of headers) is built from it only when someone asks for the headers; most
/// sessions never do after the handshake; the `Uri` too is built on first use. The peer
/// address is kept beside the extensions, so these are usually empty and hold no map.
pub struct RequestHead {
    /// `None` for `GET`, which nearly every session's request is: 8 bytes where a `Method`
    /// is 24.
    method: Option<Box<Method>>,
    /// Built from the target in `raw` on first use.
    uri: OnceLock<Box<Uri>>,
    version: Version,
    /// The target at the start of `raw` is in absolute form (`http://host/path`).
    absolute: bool,
    remote: Option<SocketAddr>,
    extensions: Extensions,
    /// The request target as sent (the path and query, or the whole URI in absolute form),
    /// then one line per header: a sensitivity mark (`+` or `-`), the name, `:`, the value,
    /// `\n`. A name has no `:` and a value no `\n`.
    raw: Bytes,
    /// Length of the target at the start of `raw`.
    path_len: u32,
    /// The headers and, if asked for, the whole head, built on first use (one box for both).
    built: OnceLock<Box<Built>>,
}

struct Built {
    headers: HeaderMap,
    parts: OnceLock<Parts>,
}

/// What `method` means when it is `None`.
static GET: Method = Method::GET;

impl RequestHead {
    /// Copies what a session keeps of `parts`.
    pub fn new(mut parts: Parts) -> Self {
        let absolute = parts.uri.scheme().is_some() || parts.uri.authority().is_some();
        let whole;
        let path = if absolute {
            whole = parts.uri.to_string();
            whole.as_str()
        } else {
            parts.uri.path_and_query().map_or("", |pq| pq.as_str())
        };
        let size = path.len()
            + parts
                .headers
                .iter()
                .map(|(n, v)| n.as_str().len() + v.len() + 3)
                .sum::<usize>();
        // A `Uri` is at most 64 KiB; past 4 GiB (not an `http` URI) the target is dropped.
        let path_len = u32::try_from(path.len()).unwrap_or(0);
        let mut raw = BytesMut::with_capacity(size);
        raw.extend_from_slice(&path.as_bytes()[..path_len as usize]);
        for (name, value) in &parts.headers {
            raw.extend_from_slice(if value.is_sensitive() { b"+" } else { b"-" });
            raw.extend_from_slice(name.as_str().as_bytes());
            raw.extend_from_slice(b":");
            raw.extend_from_slice(value.as_bytes());
            raw.extend_from_slice(b"\n");
        }
        let raw = raw.freeze();
        let remote = parts.extensions.remove::<SocketAddr>();
        let extensions = if parts.extensions.is_empty() {
            Extensions::new()
        } else {
            parts.extensions
        };
        Self {
            method: (parts.method != Method::GET).then(|| Box::new(parts.method)),
            uri: OnceLock::new(),
            version: parts.version,
            absolute,
            remote,
            extensions,
            raw,
            path_len,
            built: OnceLock::new(),
        }
    }

    /// A head with only `headers` (for a handshake made by hand, as in tests).
    pub fn from_headers(headers: HeaderMap) -> Self {
        let head = Self::new(http::Request::new(()).into_parts().0);
        let _ = head.built.set(Box::new(Built {
            headers,
            parts: OnceLock::new(),
        }));
        head
    }

    /// The request method.
    pub fn method(&self) -> &Method {
        self.method.as_deref().unwrap_or(&GET)
    }

    /// The request URI (for a server: the path and query), built on first use.
    pub fn uri(&self) -> &Uri {
        self.uri.get_or_init(|| {
            let path = self.raw.slice(..self.path_len as usize);
            Box::new(Uri::from_maybe_shared(path).unwrap_or_else(|_| Uri::from_static("/")))
        })
    }

    /// The path and query of the request URI (`/` if there were none).
    pub fn path_and_query(&self) -> &str {
        if self.absolute {
            return self.uri().path_and_query().map_or("/", |pq| pq.as_str());
        }
        self.target()
    }

    /// The request target as the client sent it (Node's `req.url`): the path and query,
    /// or the whole URI in absolute form (`/` if there were none).
    pub fn target(&self) -> &str {
        match std::str::from_utf8(&self.raw[..self.path_len as usize]) {
            Ok("") | Err(_) => "/",
            Ok(t) => t,
        }
    }

    /// The HTTP version.
    pub fn version(&self) -> Version {
        self.version
    }

    /// The peer address, where the server put one in the request's extensions.
    pub fn remote_addr(&self) -> Option<SocketAddr> {
        self.remote
    }

    /// The request's extensions, without the peer address (see
    /// [`RequestHead::remote_addr`]).
    pub fn extensions(&self) -> &Extensions {
        &self.extensions
    }

    /// The request headers, built on first use.
    pub fn headers(&self) -> &HeaderMap {
        &self.built().headers
    }

    /// The whole head as `http` has it (the peer address back in the extensions), built on
    /// first use.
    pub fn parts(&self) -> &Parts {
        self.built().parts.get_or_init(|| {
            let (mut parts, ()) = http::Request::new(()).into_parts();
            parts.method = self.method().clone();
            parts.uri = self.uri().clone();
            parts.version = self.version;
            parts.headers = self.headers().clone();
            parts.extensions = self.extensions.clone();
            if let Some(addr) = self.remote {
                parts.extensions.insert(addr);
            }
            parts
        })
    }

    fn built(&self) -> &Built {
        self.built.get_or_init(|| {
            Box::new(Built {
                headers: self.parse_headers(),
                parts: OnceLock::new(),
            })
        })
    }

    fn parse_headers(&self) -> HeaderMap {
        let lines = self.raw.slice(self.path_len as usize..);
        let mut map = HeaderMap::with_capacity(lines.iter().filter(|&&b| b == b'\n').count());
        let mut at = 0;
        while let Some(end) = lines[at..].iter().position(|&b| b == b'\n') {
            let line = lines.slice(at..at + end);
            at += end + 1;
            let Some(colon) = line.iter().position(|&b| b == b':') else {
                continue;
            };
            let (Some(&mark), Some(name)) = (line.first(), line.get(1..colon)) else {
                continue;
            };
            // Both were a valid name and value when they were copied.
            let (Ok(name), Ok(mut value)) = (
                HeaderName::from_bytes(name),
                HeaderValue::from_maybe_shared(line.slice(colon + 1..)),
            ) else {
                continue;
            };
            value.set_sensitive(mark == b'+');
            map.append(name, value);
        }
        map
    }
}

impl std::fmt::Debug for RequestHead {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RequestHead")
            .field("method", self.method())
            .field("path", &self.path_and_query())
            .field("remote", &self.remote)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::RequestHead;
    use bytes::Bytes;
    use http::{HeaderValue, Request, Uri};

    #[test]
    fn a_kept_request_head_does_not_point_into_the_read_buffer() {
        // As hyper does: the URI and the header values are slices of one read buffer.
        let mut raw = b"/socket.io/?EIO=4&transport=websocketabc123tokenhttp://a.example".to_vec();
        raw.resize(8192, 0);
        let buf = Bytes::from(raw);
        let span = buf.as_ptr() as usize..buf.as_ptr() as usize + buf.len();
        let mut req = Request::new(());
        *req.uri_mut() = Uri::from_maybe_shared(buf.slice(0..37)).unwrap();
        let h = req.headers_mut();
        h.append(
            "x-a",
            HeaderValue::from_maybe_shared(buf.slice(37..43)).unwrap(),
        );
        h.append(
            "x-a",
            HeaderValue::from_maybe_shared(buf.slice(43..48)).unwrap(),
        );
        let mut secret = HeaderValue::from_maybe_shared(buf.slice(43..48)).unwrap();
        secret.set_sensitive(true);
        h.insert("authorization", secret);
        h.insert(
            "origin",
            HeaderValue::from_maybe_shared(buf.slice(48..64)).unwrap(),
        );
        let addr: std::net::SocketAddr = "10.1.2.3:4567".parse().unwrap();
        req.extensions_mut().insert(addr);
        let (parts, ()) = req.into_parts();
        assert!(span.contains(&(parts.uri.path().as_ptr() as usize)));

        let head = RequestHead::new(parts);
        assert_eq!(
            head.path_and_query(),
            "/socket.io/?EIO=4&transport=websocket"
        );
        assert_eq!(head.target(), "/socket.io/?EIO=4&transport=websocket");
        assert_eq!(head.uri(), "/socket.io/?EIO=4&transport=websocket");
        assert!(!span.contains(&(head.uri().path().as_ptr() as usize)));
        assert_eq!(head.remote_addr(), Some(addr));
        assert!(head.extensions().is_empty(), "the address is kept apart");
        let headers = head.headers();
        let a: Vec<_> = headers.get_all("x-a").iter().collect();
        assert_eq!(a, ["abc123", "token"]);
        assert_eq!(headers["origin"], "http://a.example");
        assert!(headers["authorization"].is_sensitive());
        assert!(!headers["origin"].is_sensitive());
        assert_eq!(headers.len(), 4);
        for v in headers.values() {
            assert!(!span.contains(&(v.as_bytes().as_ptr() as usize)));
        }
        // The whole head, as http has it, with the address back in the extensions.
        let parts = head.parts();
        assert_eq!(parts.headers, *headers);
        assert_eq!(parts.extensions.get::<std::net::SocketAddr>(), Some(&addr));
        assert_eq!(parts.uri, *head.uri());
    }

    #[test]
    fn values_with_colons_and_odd_bytes_survive() {
        let mut req = Request::new(());
        let h = req.headers_mut();
        h.insert("cookie", HeaderValue::from_static("a=1; b=x:y:z"));
        h.insert("x-odd", HeaderValue::from_bytes(b"caf\xe9\tok").unwrap());
        h.insert("x-empty", HeaderValue::from_static(""));
        let head = RequestHead::new(req.into_parts().0);
        assert_eq!(head.headers()["cookie"], "a=1; b=x:y:z");
        assert_eq!(head.headers()["x-odd"].as_bytes(), b"caf\xe9\tok");
        assert_eq!(head.headers()["x-empty"], "");
        assert_eq!(head.headers().len(), 3);
        assert_eq!(head.uri(), "/");
        assert_eq!(head.path_and_query(), "/");
    }

    #[test]
    fn an_absolute_form_target_is_kept_whole() {
        let mut req = Request::new(());
        *req.uri_mut() = Uri::from_static("http://a.example:8080/socket.io/?EIO=4&x=1");
        let head = RequestHead::new(req.into_parts().0);
        assert_eq!(head.path_and_query(), "/socket.io/?EIO=4&x=1");
        assert_eq!(head.target(), "http://a.example:8080/socket.io/?EIO=4&x=1");
        assert_eq!(head.uri().host(), Some("a.example"));
        assert_eq!(
            head.parts().uri,
            "http://a.example:8080/socket.io/?EIO=4&x=1"
        );
    }

    #[test]
    fn the_longest_target_http_allows_is_kept() {
        let mut long = format!("/socket.io/?EIO=4&x={}", "a".repeat(70_000));
        let mut req = Request::new(());
        while Uri::try_from(long.as_str()).is_err() {
            long.pop();
        }
        assert!(long.len() > 60_000);
        *req.uri_mut() = Uri::try_from(long.as_str()).unwrap();
        req.headers_mut()
            .insert("x-a", HeaderValue::from_static("1"));
        let head = RequestHead::new(req.into_parts().0);
        assert_eq!(head.target(), long);
        assert_eq!(head.path_and_query(), long);
        assert_eq!(head.uri(), long.as_str());
        assert_eq!(head.headers()["x-a"], "1");
    }

    #[test]
    fn the_method_headers_and_parts_come_back_as_given() {
        for method in [http::Method::GET, http::Method::POST, http::Method::OPTIONS] {
            let mut req = Request::new(());
            *req.method_mut() = method.clone();
            req.headers_mut()
                .insert("x-a", HeaderValue::from_static("1"));
            let head = RequestHead::new(req.into_parts().0);
            assert_eq!(head.method(), method);
            assert_eq!(head.headers()["x-a"], "1");
            let parts = head.parts();
            assert_eq!(parts.method, method);
            assert_eq!(parts.headers["x-a"], "1");
        }
        // Kept for every session's life: the headers and the whole head are built on
        // first use, in one box.
        assert!(std::mem::size_of::<RequestHead>() <= 120);
    }
}
