//! The open sessions, in a sharded map: lookups for unrelated sessions do not contend.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};

use crate::server::socket::Socket;
use crate::sid::Sid;

const SHARDS: usize = 64;

type Shard<D> = Mutex<HashMap<Sid, Arc<Socket<D>>>>;

pub(crate) struct Sessions<D> {
    shards: Box<[Shard<D>]>,
}

impl<D> Sessions<D> {
    pub(crate) fn new() -> Self {
        Self {
            shards: (0..SHARDS).map(|_| Mutex::new(HashMap::new())).collect(),
        }
    }

    fn shard(&self, sid: &Sid) -> MutexGuard<'_, HashMap<Sid, Arc<Socket<D>>>> {
        // Session ids are random: their first bytes spread evenly.
        let b = sid.as_str().as_bytes();
        let at = |i: usize| usize::from(b.get(i).copied().unwrap_or(0));
        let i = (at(0) * 64 + at(1)) % SHARDS;
        self.shards[i].lock().unwrap_or_else(|e| e.into_inner())
    }

    pub(crate) fn insert(&self, sid: Sid, socket: Arc<Socket<D>>) {
        self.shard(&sid).insert(sid, socket);
    }

    pub(crate) fn get(&self, sid: &Sid) -> Option<Arc<Socket<D>>> {
        self.shard(sid).get(sid).cloned()
    }

    pub(crate) fn remove(&self, sid: &Sid) {
        self.shard(sid).remove(sid);
    }

    pub(crate) fn len(&self) -> usize {
        self.shards
            .iter()
            .map(|s| s.lock().unwrap_or_else(|e| e.into_inner()).len())
            .sum()
    }

    pub(crate) fn all(&self) -> Vec<Arc<Socket<D>>> {
        let mut v = Vec::new();
        for s in self.shards.iter() {
            v.extend(
                s.lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .values()
                    .cloned(),
            );
        }
        v
    }
}
