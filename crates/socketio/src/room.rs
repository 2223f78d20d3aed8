//! The room index of a namespace: room -> sockets and socket -> rooms, sharded so that
//! joins and broadcasts in unrelated rooms do not contend.
//!
//! A socket's own room (named by its id, which every socket is in) is not stored as a room:
//! it is the socket's entry itself, flagged, which saves four small tables per socket. Every
//! query below adds it back.

use std::collections::{HashMap, HashSet};
use std::hash::{BuildHasher, Hash};
use std::sync::{Arc, RwLock};

use iolite_engine::Sid;

use crate::adapter::{Adapter, BroadcastOptions};
use crate::socket::SocketRef;
use crate::sync::{read, write};

/// A room name.
pub type Room = Arc<str>;

const SHARDS: usize = 32;

/// A room's members, with the sockets themselves so that a broadcast needs no lookup.
type RoomShard = RwLock<HashMap<Room, HashMap<Sid, SocketRef>>>;
type SocketShard = RwLock<HashMap<Sid, Member>>;

/// A socket and the rooms it is in.
struct Member {
    socket: SocketRef,
    /// Its rooms but its own.
    rooms: RoomSet,
    /// In its own room (it may leave it, as in Node).
    own: bool,
}

/// A socket's rooms (but its own): most sockets are in none, and a set is 48 bytes before it
/// holds anything, so it is allocated with the first room and freed with the last.
#[derive(Default)]
#[allow(clippy::box_collection)] // the point: 8 bytes inline instead of 48
struct RoomSet(Option<Box<HashSet<Room>>>);

impl RoomSet {
    fn insert(&mut self, room: Room) -> bool {
        self.0.get_or_insert_with(Box::default).insert(room)
    }

    fn remove(&mut self, room: &str) -> bool {
        let Some(set) = &mut self.0 else {
            return false;
        };
        let removed = set.remove(room);
        if set.is_empty() {
            self.0 = None;
        }
        removed
    }

    fn len(&self) -> usize {
        self.0.as_ref().map_or(0, |s| s.len())
    }

    fn iter(&self) -> impl Iterator<Item = &Room> {
        self.0.iter().flat_map(|s| s.iter())
    }

    fn into_rooms(self) -> impl Iterator<Item = Room> {
        self.0.into_iter().flat_map(|s| s.into_iter())
    }
}

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

    /// Adds a socket of the namespace, in no room yet.
    pub(crate) fn add(&self, socket: &SocketRef) {
        write(&self.sockets[self.shard(&socket.id)])
            .entry(socket.id)
            .or_insert_with(|| Member {
                socket: socket.clone(),
                rooms: RoomSet::default(),
                own: false,
            });
    }

    /// The namespace's socket `sid`.
    pub(crate) fn socket(&self, sid: &Sid) -> Option<SocketRef> {
        read(&self.sockets[self.shard(sid)])
            .get(sid)
            .map(|m| m.socket.clone())
    }

    /// Every socket of the namespace.
    pub(crate) fn sockets(&self) -> Vec<SocketRef> {
        self.select(&BroadcastOptions::default())
    }

    /// How many sockets the namespace has.
    pub(crate) fn socket_count(&self) -> usize {
        self.sockets.iter().map(|s| read(s).len()).sum()
    }

    /// Makes socket `sid` join `room`; a socket that is not (or no longer) in the namespace
    /// joins nothing.
    pub(crate) fn join(&self, sid: Sid, room: Room) {
        let own = *room == *sid.as_str();
        let new = {
            let mut shard = write(&self.sockets[self.shard(&sid)]);
            let Some(member) = shard.get_mut(&sid) else {
                return;
            };
            if own {
                (!std::mem::replace(&mut member.own, true)).then(|| member.socket.clone())
            } else if member.rooms.insert(room.clone()) {
                Some(member.socket.clone())
            } else {
                None
            }
        };
        let Some(socket) = new else {
            return;
        };
        if own {
            self.adapter.room_changed(&room, true);
        } else {
            let created = {
                let mut shard = write(&self.rooms[self.shard(&*room)]);
                let members = shard.entry(room.clone()).or_default();
                let created = members.is_empty();
                members.insert(sid, socket);
                created
            };
            if created {
                self.adapter.room_changed(&room, true);
            }
        }
    }

    pub(crate) fn leave(&self, sid: Sid, room: &str) {
        let own = room == sid.as_str();
        let removed = write(&self.sockets[self.shard(&sid)])
            .get_mut(&sid)
            .is_some_and(|m| {
                if own {
                    std::mem::replace(&mut m.own, false)
                } else {
                    m.rooms.remove(room)
                }
            });
        if removed && own {
            self.adapter.room_changed(&Room::from(room), false);
        } else if removed {
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

    /// Takes socket `sid` out of every room and of the namespace.
    pub(crate) fn remove(&self, sid: Sid) {
        let Some(member) = write(&self.sockets[self.shard(&sid)]).remove(&sid) else {
            return;
        };
        if member.own {
            self.adapter.room_changed(&Room::from(sid.as_str()), false);
        }
        for room in member.rooms.into_rooms() {
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
        read(&self.rooms[self.shard(room)]).contains_key(room) || self.own_room(room).is_some()
    }

    pub(crate) fn rooms_of(&self, sid: Sid) -> Vec<Room> {
        read(&self.sockets[self.shard(&sid)])
            .get(&sid)
            .map(|m| {
                let mut rooms: Vec<Room> = Vec::with_capacity(m.rooms.len() + 1);
                if m.own {
                    rooms.push(Room::from(sid.as_str()));
                }
                rooms.extend(m.rooms.iter().cloned());
                rooms
            })
            .unwrap_or_default()
    }

    pub(crate) fn all_rooms(&self) -> Vec<Room> {
        let mut all: HashSet<Room> = self
            .rooms
            .iter()
            .flat_map(|s| read(s).keys().cloned().collect::<Vec<_>>())
            .collect();
        for shard in self.sockets.iter() {
            all.extend(
                read(shard)
                    .iter()
                    .filter(|(_, m)| m.own)
                    .map(|(sid, _)| Room::from(sid.as_str())),
            );
        }
        all.into_iter().collect()
    }

    /// The socket whose own room `room` is, when it is in it.
    fn own_room(&self, room: &str) -> Option<SocketRef> {
        let sid = Sid::parse(room).ok()?;
        read(&self.sockets[self.shard(&sid)])
            .get(&sid)
            .filter(|m| m.own)
            .map(|m| m.socket.clone())
    }

    /// Calls `f` with each socket a target reaches, after the index's locks are released:
    /// a send may close a socket (a slow client), which leaves its rooms.
    pub(crate) fn for_each(&self, target: &BroadcastOptions, f: impl FnMut(&SocketRef)) {
        for_each_prefetched(&self.select(target), f);
    }

    /// The sockets a target reaches.
    pub(crate) fn select(&self, target: &BroadcastOptions) -> Vec<SocketRef> {
        let except = self.excluded(&target.except);
        match &target.rooms[..] {
            // The common broadcasts (one room, the namespace) need no set to deduplicate.
            [room] => {
                let mut v = read(&self.rooms[self.shard(&**room)])
                    .get(room)
                    .map(|m| {
                        // Sized up front: one allocation per broadcast, whatever the room's
                        // size.
                        let mut v = Vec::with_capacity(m.len() + 1);
                        let mut ahead = m.values().skip(PREFETCH_STEP);
                        v.extend(
                            m.iter()
                                .inspect(|_| prefetch_counts(ahead.next()))
                                .filter(|(sid, _)| !except.contains(sid))
                                .map(|(_, s)| s.clone()),
                        );
                        v
                    })
                    .unwrap_or_default();
                // A socket's own room (also when a real room has the same name: a socket
                // joined another's id).
                if let Some(s) = self.own_room(room) {
                    if !except.contains(&s.id) && !v.iter().any(|o| o.id == s.id) {
                        v.push(s);
                    }
                }
                v
            }
            [] => {
                let n = self.sockets.iter().map(|s| read(s).len()).sum();
                let mut all = Vec::with_capacity(n);
                for shard in self.sockets.iter() {
                    let shard = read(shard);
                    let mut ahead = shard.values().skip(PREFETCH_STEP).map(|m| &m.socket);
                    all.extend(
                        shard
                            .iter()
                            .inspect(|_| prefetch_counts(ahead.next()))
                            .filter(|(sid, _)| !except.contains(sid))
                            .map(|(_, m)| m.socket.clone()),
                    );
                }
                all
            }
            rooms => {
                let mut set: HashMap<Sid, SocketRef> = HashMap::new();
                for room in rooms {
                    if let Some(members) = read(&self.rooms[self.shard(&**room)]).get(room) {
                        set.extend(
                            members
                                .iter()
                                .filter(|(sid, _)| !except.contains(sid))
                                .map(|(k, v)| (*k, v.clone())),
                        );
                    }
                    if let Some(s) = self.own_room(room) {
                        if !except.contains(&s.id) {
                            set.insert(s.id, s);
                        }
                    }
                }
                set.into_values().collect()
            }
        }
    }

    /// The sockets in any of `rooms`.
    fn excluded(&self, rooms: &[Room]) -> Excluded {
        let mut sids = Vec::new();
        for room in rooms {
            if let Some(members) = read(&self.rooms[self.shard(&**room)]).get(room) {
                sids.extend(members.keys().copied());
            }
            if let Some(s) = self.own_room(room) {
                sids.push(s.id);
            }
        }
        if sids.len() > Excluded::SCAN {
            Excluded::Set(sids.into_iter().collect())
        } else {
            Excluded::Few(sids)
        }
    }
}

/// Sockets left out of a broadcast. Usually one (the sender's own room, `socket.to(room)`):
/// comparing ids beats hashing each recipient's.
enum Excluded {
    Few(Vec<Sid>),
    Set(HashSet<Sid>),
}

impl Excluded {
    const SCAN: usize = 16;

    fn contains(&self, sid: &Sid) -> bool {
        match self {
            Self::Few(v) => v.contains(sid),
            Self::Set(s) => s.contains(sid),
        }
    }
}

/// How many sockets apart the steps of [`for_each_prefetched`] run.
const PREFETCH_STEP: usize = 8;

/// Has the CPU load the reference counts of `socket` (a clone of it follows soon), which
/// sit just before the value in an `Arc`'s block.
#[inline]
fn prefetch_counts(socket: Option<&SocketRef>) {
    if let Some(s) = socket {
        let value = Arc::as_ptr(s).cast::<u8>();
        iolite_ws::prefetch::write(value.wrapping_sub(2 * std::mem::size_of::<usize>()));
    }
}

/// Calls `f` with each of `sockets` in order, and meanwhile has the CPU load what a send
/// to a socket touches, a few sockets ahead: the socket, its session, its WebSocket
/// queue's state and the queue's next slot, one step each, each step reading what the
/// one before loaded (see `iolite_ws::prefetch`). With thousands of recipients this
/// state is not in the cache, and a send's locks would otherwise take its misses one
/// after another.
pub(crate) fn for_each_prefetched(sockets: &[SocketRef], mut f: impl FnMut(&SocketRef)) {
    const D: usize = PREFETCH_STEP;
    for (i, s) in sockets.iter().enumerate() {
        if let Some(a) = sockets.get(i + 4 * D) {
            iolite_ws::prefetch::write(&a.conn);
        }
        if let Some(a) = sockets.get(i + 3 * D) {
            a.conn.prefetch();
        }
        if let Some(a) = sockets.get(i + 2 * D) {
            a.conn.prefetch_transport();
        }
        if let Some(a) = sockets.get(i + D) {
            a.conn.prefetch_queue();
        }
        f(s);
    }
}
