//! Who may connect and how many: the browser `Origin` allow-list and the limits on open
//! TCP connections, in all and per client address, counted at accept.

use std::collections::HashMap;
use std::hash::{BuildHasher, Hash};
use std::net::IpAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

/// One allowed origin: `scheme://host[:port]`, where the host may start with `*.` (any
/// subdomain, not the domain itself); `*` alone allows every origin.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum OriginPattern {
    /// `*`.
    Any,
    /// An origin, or subdomains of one.
    Origin {
        /// `http` or `https`.
        scheme: String,
        /// Lowercase host (IPv6 in brackets); for a wildcard, the part after `*.`.
        host: String,
        /// Whether the host was `*.host`.
        wildcard: bool,
        /// The port, the scheme's default when absent.
        port: u16,
    },
}

fn default_port(scheme: &str) -> u16 {
    if scheme == "https" {
        443
    } else {
        80
    }
}

/// Splits `scheme://authority` and checks what a browser `Origin` may contain.
fn split_origin(s: &str) -> Result<(String, String, u16), String> {
    let (scheme, rest) = s
        .split_once("://")
        .ok_or_else(|| format!("{s:?} is not an origin like https://chat.example.com"))?;
    let scheme = scheme.to_ascii_lowercase();
    if scheme != "http" && scheme != "https" {
        return Err(format!("{s:?}: the scheme must be http or https"));
    }
    if rest.is_empty() || rest.contains(['/', '?', '#', '@', ' ']) {
        return Err(format!(
            "{s:?}: an origin is scheme://host[:port], without a path, query or user"
        ));
    }
    let (host, port) = if let Some(v6) = rest.strip_prefix('[') {
        let (addr, after) = v6
            .split_once(']')
            .ok_or_else(|| format!("{s:?}: unclosed [ in the host"))?;
        let port = match after {
            "" => None,
            p => Some(
                p.strip_prefix(':')
                    .ok_or_else(|| format!("{s:?}: unexpected text after the host"))?,
            ),
        };
        (format!("[{}]", addr.to_ascii_lowercase()), port)
    } else {
        match rest.rsplit_once(':') {
            Some((h, p)) => (h.to_ascii_lowercase(), Some(p)),
            None => (rest.to_ascii_lowercase(), None),
        }
    };
    if host.is_empty() || host == "[]" {
        return Err(format!("{s:?}: the host is empty"));
    }
    let port = match port {
        None => default_port(&scheme),
        Some(p) => p
            .parse::<u16>()
            .ok()
            .filter(|p| *p != 0)
            .ok_or_else(|| format!("{s:?}: bad port {p:?}"))?,
    };
    Ok((scheme, host, port))
}

impl OriginPattern {
    /// Parses an `allowed_origins` entry.
    pub fn parse(s: &str) -> Result<Self, String> {
        let s = s.trim();
        if s == "*" {
            return Ok(Self::Any);
        }
        let (scheme, host, port) = split_origin(s)?;
        let (host, wildcard) = match host.strip_prefix("*.") {
            Some(h) => (h.to_owned(), true),
            None => (host, false),
        };
        if host.contains('*') {
            return Err(format!(
                "{s:?}: a wildcard may only start the host, as in https://*.example.com"
            ));
        }
        if wildcard && !host.contains('.') {
            return Err(format!(
                "{s:?}: *.{host} would match every name under a top-level domain"
            ));
        }
        Ok(Self::Origin {
            scheme,
            host,
            wildcard,
            port,
        })
    }

    /// Parses a public URL (`https://chat.example.com/`, a path is allowed) into the
    /// pattern of its origin.
    pub fn parse_url(url: &str) -> Result<Self, String> {
        let url = url.trim();
        let after = url
            .find("://")
            .map(|i| i + 3)
            .ok_or_else(|| format!("{url:?} is not a URL like https://chat.example.com"))?;
        let end = url[after..]
            .find(['/', '?', '#'])
            .map_or(url.len(), |i| after + i);
        match Self::parse(&url[..end])? {
            Self::Origin { wildcard: true, .. } | Self::Any => {
                Err(format!("{url:?}: a public URL cannot have a wildcard"))
            }
            p => Ok(p),
        }
    }

    /// The exact origin this pattern is for, to show in logs (`*.host` for wildcards).
    pub fn display(&self) -> String {
        match self {
            Self::Any => "*".into(),
            Self::Origin {
                scheme,
                host,
                wildcard,
                port,
            } => {
                let star = if *wildcard { "*." } else { "" };
                if *port == default_port(scheme) {
                    format!("{scheme}://{star}{host}")
                } else {
                    format!("{scheme}://{star}{host}:{port}")
                }
            }
        }
    }

    fn matches(&self, scheme: &str, host: &str, port: u16) -> bool {
        match self {
            Self::Any => true,
            Self::Origin {
                scheme: s,
                host: h,
                wildcard,
                port: p,
            } => {
                s == scheme
                    && *p == port
                    && if *wildcard {
                        host.len() > h.len() + 1
                            && host.ends_with(h.as_str())
                            && host.as_bytes()[host.len() - h.len() - 1] == b'.'
                    } else {
                        host == h
                    }
            }
        }
    }
}

/// The origins browsers may connect from.
#[derive(Clone, Debug, Default)]
pub struct OriginPolicy {
    patterns: Vec<OriginPattern>,
}

impl OriginPolicy {
    /// A policy allowing these patterns.
    pub fn new(patterns: Vec<OriginPattern>) -> Self {
        Self { patterns }
    }

    /// The server's own origins for a listen address: `scheme://host:port`, and when the
    /// host is a loopback or every interface, the `localhost`, `127.0.0.1` and `[::1]`
    /// spellings of it (a browser on this machine may use any of them).
    pub fn own_origins(host: &str, port: u16, tls: bool) -> Vec<OriginPattern> {
        let scheme = if tls { "https" } else { "http" };
        let local = match host.parse::<IpAddr>() {
            Ok(ip) => ip.is_loopback() || ip.is_unspecified(),
            Err(_) => host.eq_ignore_ascii_case("localhost"),
        };
        let mut hosts: Vec<String> = Vec::new();
        if local {
            hosts.extend(["localhost", "127.0.0.1", "[::1]"].map(String::from));
        }
        let is_v6 = host.parse::<std::net::Ipv6Addr>().is_ok();
        let own = if is_v6 {
            format!("[{}]", host.to_ascii_lowercase())
        } else {
            host.to_ascii_lowercase()
        };
        let unspecified = host.parse::<IpAddr>().is_ok_and(|ip| ip.is_unspecified());
        if !unspecified && !hosts.contains(&own) {
            hosts.push(own);
        }
        hosts
            .into_iter()
            .map(|host| OriginPattern::Origin {
                scheme: scheme.into(),
                host,
                wildcard: false,
                port,
            })
            .collect()
    }

    /// The patterns, for the startup log.
    pub fn patterns(&self) -> &[OriginPattern] {
        &self.patterns
    }

    /// Whether a request with this `Origin` header may connect. A request without one is
    /// not from a browser page on another site (browsers send `Origin` on every
    /// WebSocket handshake and cross-origin request), so it may; `null` (sandboxed
    /// frames, `file:` pages) may not unless `*` is allowed.
    pub fn allows(&self, origin: Option<&http::HeaderValue>) -> bool {
        let Some(origin) = origin else { return true };
        if self.patterns.contains(&OriginPattern::Any) {
            return true;
        }
        let Ok(origin) = origin.to_str() else {
            return false;
        };
        let Ok((scheme, host, port)) = split_origin(origin) else {
            return false;
        };
        self.patterns
            .iter()
            .any(|p| p.matches(&scheme, &host, port))
    }
}

/// Why a new connection was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Refusal {
    /// `limits.max_connections` reached.
    Total,
    /// `limits.connections_per_ip` reached for this address.
    PerIp,
}

impl Refusal {
    /// The metrics label.
    pub fn reason(self) -> &'static str {
        match self {
            Self::Total => "limit_total",
            Self::PerIp => "limit_ip",
        }
    }

    /// What the refused client is told.
    pub fn message(self) -> &'static str {
        match self {
            Self::Total => "the server has too many connections; try again later",
            Self::PerIp => "too many connections from your address; close some and try again",
        }
    }
}

const SHARDS: usize = 16;

/// Counts open TCP connections, in all and per client address. Each accepted connection
/// holds a [`ConnectionGuard`] for as long as its stream lives (an upgraded WebSocket
/// included), and gives its place back when dropped.
pub struct ConnectionLimiter {
    max_total: usize,
    per_ip: usize,
    total: AtomicUsize,
    hasher: std::collections::hash_map::RandomState,
    by_ip: Box<[Mutex<HashMap<IpAddr, usize>>]>,
}

/// The address a per-IP limit counts: IPv4 as is (IPv4-mapped IPv6 too), IPv6 by its /64,
/// the block one subscriber usually gets.
fn ip_key(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V4(_) => ip,
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => {
                let s = v6.segments();
                IpAddr::V6(std::net::Ipv6Addr::new(s[0], s[1], s[2], s[3], 0, 0, 0, 0))
            }
        },
    }
}

impl ConnectionLimiter {
    /// A limiter with these limits.
    pub fn new(max_total: usize, per_ip: usize) -> Arc<Self> {
        Arc::new(Self {
            max_total,
            per_ip,
            total: AtomicUsize::new(0),
            hasher: Default::default(),
            by_ip: (0..SHARDS).map(|_| Mutex::default()).collect(),
        })
    }

    fn shard<K: Hash>(&self, k: &K) -> MutexGuard<'_, HashMap<IpAddr, usize>> {
        let i = (self.hasher.hash_one(k) as usize) % SHARDS;
        // A panic while holding the lock cannot leave the map inconsistent (one insert or
        // one decrement), so a poisoned lock is still usable.
        self.by_ip[i].lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Takes a place for a connection from `ip`, or says why not.
    pub fn try_acquire(self: &Arc<Self>, ip: IpAddr) -> Result<ConnectionGuard, Refusal> {
        let key = ip_key(ip);
        if self
            .total
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                (n < self.max_total).then_some(n + 1)
            })
            .is_err()
        {
            return Err(Refusal::Total);
        }
        let mut shard = self.shard(&key);
        let n = shard.entry(key).or_insert(0);
        if *n >= self.per_ip {
            drop(shard);
            self.total.fetch_sub(1, Ordering::AcqRel);
            return Err(Refusal::PerIp);
        }
        *n += 1;
        Ok(ConnectionGuard {
            limiter: self.clone(),
            key,
        })
    }

    /// Open connections now.
    pub fn open(&self) -> usize {
        self.total.load(Ordering::Acquire)
    }

    /// Open connections from the address (its /64 for IPv6).
    pub fn open_from(&self, ip: IpAddr) -> usize {
        let key = ip_key(ip);
        self.shard(&key).get(&key).copied().unwrap_or(0)
    }

    fn release(&self, key: IpAddr) {
        let mut shard = self.shard(&key);
        if let Some(n) = shard.get_mut(&key) {
            *n -= 1;
            if *n == 0 {
                shard.remove(&key);
            }
        }
        drop(shard);
        self.total.fetch_sub(1, Ordering::AcqRel);
    }
}

/// A connection's place in the [`ConnectionLimiter`], given back on drop.
pub struct ConnectionGuard {
    limiter: Arc<ConnectionLimiter>,
    key: IpAddr,
}

impl Drop for ConnectionGuard {
    fn drop(&mut self) {
        self.limiter.release(self.key);
    }
}

impl std::fmt::Debug for ConnectionGuard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ConnectionGuard")
            .field("key", &self.key)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use http::HeaderValue;

    use super::*;

    fn policy(patterns: &[&str]) -> OriginPolicy {
        OriginPolicy::new(
            patterns
                .iter()
                .map(|p| OriginPattern::parse(p).unwrap())
                .collect(),
        )
    }

    fn allows(p: &OriginPolicy, origin: &str) -> bool {
        p.allows(Some(&HeaderValue::from_str(origin).unwrap()))
    }

    #[test]
    fn exact_origins_match_scheme_host_and_port() {
        let p = policy(&["https://chat.example.com", "http://localhost:3000"]);
        assert!(allows(&p, "https://chat.example.com"));
        assert!(allows(&p, "https://chat.example.com:443"));
        assert!(allows(&p, "HTTPS://Chat.Example.com"));
        assert!(allows(&p, "http://localhost:3000"));
        assert!(!allows(&p, "http://chat.example.com"));
        assert!(!allows(&p, "https://chat.example.com:8443"));
        assert!(!allows(&p, "https://chat.example.com.evil.net"));
        assert!(!allows(&p, "https://evilchat.example.com"));
        assert!(!allows(&p, "http://localhost:3001"));
        assert!(!allows(&p, "null"));
        assert!(!allows(&p, "garbage"));
        assert!(!allows(&p, "https://chat.example.com/"));
        assert!(p.allows(None));
    }

    #[test]
    fn wildcards_match_subdomains_only() {
        let p = policy(&["https://*.example.com"]);
        assert!(allows(&p, "https://a.example.com"));
        assert!(allows(&p, "https://a.b.example.com"));
        assert!(!allows(&p, "https://example.com"));
        assert!(!allows(&p, "https://aexample.com"));
        assert!(!allows(&p, "https://a.example.com.evil.net"));
        assert!(!allows(&p, "http://a.example.com"));
        assert!(!allows(&p, "https://a.example.com:8443"));
    }

    #[test]
    fn star_allows_everything() {
        let p = policy(&["*"]);
        assert!(allows(&p, "https://anything.net"));
        assert!(allows(&p, "null"));
    }

    #[test]
    fn bad_patterns_are_refused() {
        for bad in [
            "example.com",
            "ftp://example.com",
            "https://example.com/path",
            "https://ex*ample.com",
            "https://*.com",
            "https://example.com:0",
            "https://example.com:99999",
            "https://",
            "https://user@example.com",
            "https://[::1",
        ] {
            assert!(OriginPattern::parse(bad).is_err(), "{bad}");
        }
        assert!(OriginPattern::parse_url("https://chat.example.com/app/").is_ok());
        assert!(OriginPattern::parse_url("https://*.example.com").is_err());
        assert!(OriginPattern::parse_url("chat.example.com").is_err());
    }

    #[test]
    fn own_origins_of_a_loopback_address_include_every_spelling() {
        let p = OriginPolicy::new(OriginPolicy::own_origins("127.0.0.1", 3000, false));
        assert!(allows(&p, "http://127.0.0.1:3000"));
        assert!(allows(&p, "http://localhost:3000"));
        assert!(allows(&p, "http://[::1]:3000"));
        assert!(!allows(&p, "https://localhost:3000"));
        assert!(!allows(&p, "http://localhost:3001"));
        let p = OriginPolicy::new(OriginPolicy::own_origins("chat.internal", 443, true));
        assert!(allows(&p, "https://chat.internal"));
        assert!(!allows(&p, "https://localhost"));
        let p = OriginPolicy::new(OriginPolicy::own_origins("::1", 80, false));
        assert!(allows(&p, "http://[::1]"));
        assert!(allows(&p, "http://localhost"));
    }

    #[test]
    fn the_limiter_counts_per_address_and_in_all() {
        let l = ConnectionLimiter::new(3, 2);
        let a: IpAddr = "10.0.0.1".parse().unwrap();
        let b: IpAddr = "10.0.0.2".parse().unwrap();
        let g1 = l.try_acquire(a).unwrap();
        let _g2 = l.try_acquire(a).unwrap();
        assert_eq!(l.try_acquire(a).unwrap_err(), Refusal::PerIp);
        let _g3 = l.try_acquire(b).unwrap();
        assert_eq!(l.try_acquire(b).unwrap_err(), Refusal::Total);
        assert_eq!(l.open(), 3);
        drop(g1);
        assert_eq!(l.open(), 2);
        assert_eq!(l.open_from(a), 1);
        let _g4 = l.try_acquire(a).unwrap();
        assert_eq!(l.open(), 3);
    }

    #[test]
    fn ipv6_counts_by_64_and_mapped_v4_as_v4() {
        let l = ConnectionLimiter::new(10, 1);
        let _a = l.try_acquire("2001:db8::1".parse().unwrap()).unwrap();
        assert_eq!(
            l.try_acquire("2001:db8::2".parse().unwrap()).unwrap_err(),
            Refusal::PerIp
        );
        let _b = l.try_acquire("2001:db8:0:1::1".parse().unwrap()).unwrap();
        let _c = l.try_acquire("10.1.1.1".parse().unwrap()).unwrap();
        assert_eq!(
            l.try_acquire("::ffff:10.1.1.1".parse().unwrap())
                .unwrap_err(),
            Refusal::PerIp
        );
    }
}
