//! The room index of a namespace: room -> sockets and socket -> rooms, sharded so that
//! joins and broadcasts in unrelated rooms do not contend.

use std::collections::{HashMap, HashSet};
use std::hash::{BuildHasher, Hash};
use std::sync::{Arc, RwLock};

use iolite_engine::Sid;

use crate::adapter::{Adapter, BroadcastOptions};
use crate::sync::{read, write};

/// A room name.
pub type Room = Arc<str>;

const SHARDS: usize = 32;

type RoomShard = RwLock<HashMap<Room, HashSet<Sid>>>;
type SocketShard = RwLock<HashMap<Sid, HashSet<Room>>>;

pub(crate) struct RoomIndex {
    hasher: std::collections::hash_map::RandomState,
    rooms: Box<[RoomShard]>,
    sockets: Box<[SocketShard]>,
    /// Told when a room is created or deleted ([`Adapter::room_changed`]).
    adapter: Arc<dyn Adapter>,
}

impl RoomIndex {
    pub(crate) fn new(adapter: Arc<dyn Adapter>) -> Self {
        Self {
            hasher: Default::default(),
            rooms: (0..SHARDS).map(|_| RwLock::default()).collect(),
            sockets: (0..SHARDS).map(|_| RwLock::default()).collect(),
            adapter,
        }
    }

    fn shard<K: Hash + ?Sized>(&self, k: &K) -> usize {
        (self.hasher.hash_one(k) as usize) % SHARDS
    }

    pub(crate) fn join(&self, sid: Sid, room: Room) {
        let new = write(&self.sockets[self.shard(&sid)])
            .entry(sid)
            .or_default()
            .insert(room.clone());
        if new {
            let created = {
                let mut shard = write(&self.rooms[self.shard(&*room)]);
                let set = shard.entry(room.clone()).or_default();
                let created = set.is_empty();
                set.insert(sid);
                created
            };
            if created {
                self.adapter.room_changed(&room, true);
            }
        }
    }

    pub(crate) fn leave(&self, sid: Sid, room: &str) {
        let removed = write(&self.sockets[self.shard(&sid)])
            .get_mut(&sid)
            .is_some_and(|r| r.remove(room));
        if removed {
            let mut shard = write(&self.rooms[self.shard(room)]);
            if let Some(set) = shard.get_mut(room) {
                set.remove(&sid);
                if set.is_empty() {
                    if let Some((room, _)) = shard.remove_entry(room) {
                        drop(shard);
                        self.adapter.room_changed(&room, false);
                    }
                }
            }
        }
    }

    pub(crate) fn leave_all(&self, sid: Sid) {
        let rooms = write(&self.sockets[self.shard(&sid)]).remove(&sid);
        for room in rooms.into_iter().flatten() {
            let mut shard = write(&self.rooms[self.shard(&*room)]);
            if let Some(set) = shard.get_mut(&room) {
                set.remove(&sid);
                if set.is_empty() {
                    shard.remove(&room);
                    drop(shard);
                    self.adapter.room_changed(&room, false);
                }
            }
        }
    }

    pub(crate) fn has_room(&self, room: &str) -> bool {
        read(&self.rooms[self.shard(room)]).contains_key(room)
    }

    pub(crate) fn rooms_of(&self, sid: Sid) -> Vec<Room> {
        read(&self.sockets[self.shard(&sid)])
            .get(&sid)
            .map(|r| r.iter().cloned().collect())
            .unwrap_or_default()
    }

    pub(crate) fn all_rooms(&self) -> Vec<Room> {
        self.rooms
            .iter()
            .flat_map(|s| read(s).keys().cloned().collect::<Vec<_>>())
            .collect()
    }

    fn in_rooms(&self, rooms: &[Room], out: &mut HashSet<Sid>) {
        for room in rooms {
            if let Some(set) = read(&self.rooms[self.shard(&**room)]).get(room) {
                out.extend(set.iter().copied());
            }
        }
    }

    /// The sockets a target reaches.
    pub(crate) fn select(&self, target: &BroadcastOptions) -> Vec<Sid> {
        if target.rooms.len() == 1 && target.except.is_empty() {
            // The common case (one room) without building a set.
            return read(&self.rooms[self.shard(&*target.rooms[0])])
                .get(&target.rooms[0])
                .map(|s| s.iter().copied().collect())
                .unwrap_or_default();
        }
        let mut set = HashSet::new();
        if target.rooms.is_empty() {
            for s in self.sockets.iter() {
                set.extend(read(s).keys().copied());
            }
        } else {
            self.in_rooms(&target.rooms, &mut set);
        }
        if !target.except.is_empty() {
            let mut ex = HashSet::new();
            self.in_rooms(&target.except, &mut ex);
            set.retain(|s| !ex.contains(s));
        }
        set.into_iter().collect()
    }
}
