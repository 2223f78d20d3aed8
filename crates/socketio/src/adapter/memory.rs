//! The in-memory adapter: one node, and connection state recovery from memory.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::Instant;

use iolite_engine::Sid;
use serde_json::Value;

use super::{
    Adapter, AdapterError, BoxFuture, BroadcastOptions, LocalNamespace, PersistedSession,
    RegisterSession, RestoredSession,
};
use crate::parser::Packet;
use crate::sync::lock;

/// The default adapter: delivers on this node, and when connection state recovery is on
/// keeps disconnected sessions and the packets sent since, in memory, for the recovery
/// window (Node's `SessionAwareAdapter`).
pub struct InMemoryAdapter {
    local: LocalNamespace,
    recovery: Option<Store>,
}

struct Stored {
    offset: String,
    opts: BroadcastOptions,
    packet: Packet,
    at: Instant,
}

struct Store {
    sessions: Mutex<HashMap<Sid, (PersistedSession, Instant)>>,
    packets: Mutex<VecDeque<Stored>>,
    next: AtomicU64,
    prefix: String,
}

impl InMemoryAdapter {
    /// The adapter of a namespace.
    pub fn new(local: LocalNamespace) -> Self {
        let recovery = local.recovery().map(|_| {
            let mut prefix = [0u8; 4];
            let _ = getrandom::fill(&mut prefix);
            Store {
                sessions: Mutex::default(),
                packets: Mutex::default(),
                next: AtomicU64::new(0),
                prefix: format!("{:08x}", u32::from_le_bytes(prefix)),
            }
        });
        Self { local, recovery }
    }

    fn window(&self) -> std::time::Duration {
        self.local
            .recovery()
            .map(|r| r.max_disconnection_duration)
            .unwrap_or_default()
    }
}

impl Adapter for InMemoryAdapter {
    fn local(&self) -> &LocalNamespace {
        &self.local
    }

    fn broadcast(&self, mut packet: Packet, opts: BroadcastOptions) -> Result<(), AdapterError> {
        let Some(store) = self.recovery.as_ref().filter(|_| !opts.flags.volatile) else {
            self.local.broadcast(&packet, &opts);
            return Ok(());
        };
        // The offset goes last in the arguments, where Node's client reads it. Stored
        // and delivered under one lock, so a session being restored sees each packet
        // either in its missed list or live, never both nor neither.
        let n = store.next.fetch_add(1, Ordering::Relaxed);
        let offset = format!("{}-{n}", store.prefix);
        if let Value::Array(a) = &mut packet.data {
            a.push(Value::String(offset.clone()));
        }
        let now = Instant::now();
        let window = self.window();
        let mut packets = lock(&store.packets);
        while packets
            .front()
            .is_some_and(|p| now.duration_since(p.at) > window)
        {
            packets.pop_front();
        }
        self.local.broadcast(&packet, &opts);
        packets.push_back(Stored {
            offset,
            opts,
            packet,
            at: now,
        });
        Ok(())
    }

    fn persist_session(&self, session: PersistedSession) {
        let Some(store) = &self.recovery else { return };
        let now = Instant::now();
        let window = self.window();
        let mut sessions = lock(&store.sessions);
        sessions.retain(|_, (_, at)| now.duration_since(*at) <= window);
        sessions.insert(session.pid, (session, now));
    }

    fn restore_session<'a>(
        &'a self,
        pid: &'a str,
        offset: &'a str,
        register: RegisterSession<'a>,
    ) -> BoxFuture<'a, Result<bool, AdapterError>> {
        let restored = (|| {
            let store = self.recovery.as_ref()?;
            let pid = Sid::parse(pid).ok()?;
            let (session, at) = lock(&store.sessions).remove(&pid)?;
            if at.elapsed() > self.window() {
                return None;
            }
            let packets = lock(&store.packets);
            let index = packets.iter().position(|p| p.offset == offset)?;
            let missed = packets
                .iter()
                .skip(index + 1)
                .filter(|p| p.opts.matches(&session.rooms))
                .map(|p| p.packet.clone())
                .collect();
            // Registered while the packet log is locked: no broadcast slips in between.
            register(RestoredSession { session, missed });
            drop(packets);
            Some(())
        })();
        Box::pin(std::future::ready(Ok(restored.is_some())))
    }
}
