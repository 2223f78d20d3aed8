//! `chat`: users in rooms of varied size send messages and typing events and move
//! between rooms (Socket.IO only: joins and leaves are requests).
//!
//! Room k is chosen with weight 1/(k+1), so a few rooms are large and most are small.
//! Each user acts at `--rate / users` per second on average (open loop, from a random
//! phase): 40% a message of `--payload` bytes, 50% a typing event (the bare header), 10%
//! a move (leave the room, join another drawn the same way). Latency covers every
//! delivery, messages and typing events alike; loss is not counted, since members
//! come and go while messages are in flight.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use serde_json::json;
use tokio::time::MissedTickBehavior;

use crate::conn::{Conn, ConnError, Incoming, Route};
use crate::harness::{next_phase, wait_phase, Harness, Phase, Shared};
use crate::options::Load;
use crate::payload::{now_ns, ns_at, payload, Stamp, MESSAGE, TYPING};
use crate::report::Outcome;
use crate::scenario::fanout::room_name;

/// xorshift64*: a small, seedable generator; the mix need not be cryptographic.
#[derive(Clone, Debug)]
pub struct Rng(u64);

impl Rng {
    /// A generator for user `u` of a run seeded with `seed`.
    pub fn new(seed: u64, u: u64) -> Self {
        let mut s = seed ^ u.wrapping_add(1).wrapping_mul(0x9E37_79B9_7F4A_7C15);
        if s == 0 {
            s = 0x2545_F491_4F6C_DD1D;
        }
        let mut r = Self(s);
        r.next_u64();
        r
    }

    /// The next number.
    pub fn next_u64(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// Uniform in [0, 1).
    pub fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// Cumulative weights 1/(k+1) of `rooms` rooms.
pub fn zipf_table(rooms: usize) -> Vec<f64> {
    let mut acc = 0.0;
    (0..rooms)
        .map(|k| {
            acc += 1.0 / (k + 1) as f64;
            acc
        })
        .collect()
}

/// Draws a room from a [`zipf_table`].
pub fn pick_room(table: &[f64], rng: &mut Rng) -> usize {
    let total = table.last().copied().unwrap_or(1.0);
    let x = rng.unit() * total;
    table
        .partition_point(|&c| c <= x)
        .min(table.len().saturating_sub(1))
}

#[derive(Default)]
struct Counts {
    messages: AtomicU64,
    typing: AtomicU64,
    moves: AtomicU64,
    typing_delivered: AtomicU64,
}

/// Runs the scenario.
pub async fn run(h: &mut Harness) -> Outcome {
    let cfg = h.cfg().clone();
    let n = cfg.connections;
    let table = Arc::new(zipf_table(cfg.rooms));
    let counts = Arc::new(Counts::default());
    let tasks: Vec<_> = (0..n)
        .map(|u| tokio::spawn(user(h.shared(), table.clone(), counts.clone(), u, n)))
        .collect();
    h.connect_phase(n).await;
    h.start_measure();
    h.run_for_duration().await;
    h.set_phase(Phase::Drain);
    let sh = h.shared();
    while sh.busy.load(Ordering::Relaxed) > 0 {
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    // No exact count to wait for: wait until deliveries stop (at most --drain, and no
    // longer than a quarter second of quiet once they do).
    let quiet = cfg.drain.min(Duration::from_millis(250));
    let s = sh.clone();
    let mut last = (s.rec.count(), std::time::Instant::now());
    h.drain_until(move || {
        let c = s.rec.count();
        if c != last.0 {
            last = (c, std::time::Instant::now());
        }
        last.1.elapsed() >= quiet
    })
    .await;
    h.end_measure();
    h.set_phase(Phase::Stop);
    for t in tasks {
        let _ = t.await;
    }
    let delivered = sh.rec.count();
    let (m, t, mv) = (
        counts.messages.load(Ordering::Relaxed),
        counts.typing.load(Ordering::Relaxed),
        counts.moves.load(Ordering::Relaxed),
    );
    let mut extra = std::collections::BTreeMap::new();
    extra.insert("rooms".into(), json!(cfg.rooms));
    extra.insert("messages_sent".into(), json!(m));
    extra.insert("typing_sent".into(), json!(t));
    extra.insert("moves".into(), json!(mv));
    extra.insert(
        "typing_delivered".into(),
        json!(counts.typing_delivered.load(Ordering::Relaxed)),
    );
    Outcome {
        sent: m + t,
        received: delivered,
        messages: m + t,
        deliveries: Some(delivered),
        recipients_per_message: (m + t > 0).then(|| delivered as f64 / (m + t) as f64),
        extra,
        ..Outcome::default()
    }
}

async fn user(sh: Arc<Shared>, table: Arc<Vec<f64>>, counts: Arc<Counts>, u: usize, n: usize) {
    let mut phase = sh.phase();
    let mut rng = Rng::new(sh.cfg.seed, u as u64);
    let mut room = pick_room(&table, &mut rng);
    let Some(mut conn) = sh.open(u, n, Route::Echo).await else {
        return;
    };
    if let Err(e) = conn.join_and_wait(&room_name(room), sh.cfg.timeout).await {
        sh.mark_failed(&e);
        sh.close(conn).await;
        return;
    }
    sh.mark_ready();
    sh.busy.fetch_add(1, Ordering::Relaxed);
    // Validation makes chat open loop; anything else would send nothing.
    let rate = match sh.cfg.load {
        Load::Rate(r) => r,
        _ => 0.0,
    };
    let r = if wait_phase(&mut phase, Phase::Measure).await == Phase::Measure && rate > 0.0 {
        act(
            &sh, &table, &counts, &mut conn, &mut phase, &mut rng, &mut room, u, rate,
        )
        .await
    } else {
        Ok(())
    };
    sh.busy.fetch_sub(1, Ordering::Relaxed);
    let r = match r {
        Ok(()) => receive_until_stop(&sh, &counts, &mut conn, &mut phase, u).await,
        e => e,
    };
    match r {
        Ok(()) => sh.close(conn).await,
        Err(e) => sh.mark_dropped(&e),
    }
}

fn on_delivery(sh: &Shared, counts: &Counts, inc: Incoming, u: usize) {
    if let Incoming::Stamp(s) = inc {
        if s.kind == TYPING {
            counts.typing_delivered.fetch_add(1, Ordering::Relaxed);
        }
        if s.kind == TYPING || s.kind == MESSAGE {
            sh.rec.record(u, now_ns().saturating_sub(s.ts_ns));
        }
    }
}

#[allow(clippy::too_many_arguments)]
async fn act(
    sh: &Shared,
    table: &[f64],
    counts: &Counts,
    conn: &mut Conn,
    phase: &mut tokio::sync::watch::Receiver<Phase>,
    rng: &mut Rng,
    room: &mut usize,
    u: usize,
    rate: f64,
) -> Result<(), ConnError> {
    let users = sh.ready.load(Ordering::Relaxed).max(1);
    let period = Duration::from_secs_f64(users as f64 / rate).max(Duration::from_micros(1));
    let offset = period.mul_f64(rng.unit());
    let end = sh.measure_end();
    let mut tick = tokio::time::interval_at((sh.measure_start() + offset).into(), period);
    tick.set_missed_tick_behavior(MissedTickBehavior::Burst);
    let mut seq = 0;
    // The schedule ends the actions (see echo's open loop).
    let stop_sending = tokio::time::sleep_until(end.into());
    tokio::pin!(stop_sending);
    loop {
        tokio::select! {
            biased;
            t = tick.tick() => {
                let t = t.into_std();
                if t >= end {
                    return Ok(());
                }
                let ts_ns = ns_at(t);
                let roll = rng.next_u64() % 100;
                let name = room_name(*room);
                if roll < 40 {
                    let stamp = Stamp { kind: MESSAGE, src: u as u32, seq, ts_ns };
                    conn.publish(&name, &payload(&stamp, sh.cfg.payload)).await?;
                    counts.messages.fetch_add(1, Ordering::Relaxed);
                } else if roll < 90 {
                    let stamp = Stamp { kind: TYPING, src: u as u32, seq, ts_ns };
                    conn.publish(&name, &payload(&stamp, 0)).await?;
                    counts.typing.fetch_add(1, Ordering::Relaxed);
                } else {
                    conn.room_request("leave", &name).await?;
                    *room = pick_room(table, rng);
                    conn.room_request("join", &room_name(*room)).await?;
                    counts.moves.fetch_add(1, Ordering::Relaxed);
                    continue;
                }
                seq += 1;
                sh.sent.fetch_add(1, Ordering::Relaxed);
            }
            _ = &mut stop_sending => return Ok(()),
            r = conn.next() => on_delivery(sh, counts, r?, u),
            p = next_phase(phase) => if p >= Phase::Stop { return Ok(()) },
        }
    }
}

async fn receive_until_stop(
    sh: &Shared,
    counts: &Counts,
    conn: &mut Conn,
    phase: &mut tokio::sync::watch::Receiver<Phase>,
    u: usize,
) -> Result<(), ConnError> {
    if *phase.borrow() >= Phase::Stop {
        return Ok(());
    }
    loop {
        tokio::select! {
            r = conn.next() => on_delivery(sh, counts, r?, u),
            p = next_phase(phase) => if p >= Phase::Stop { return Ok(()) },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zipf_rooms_are_uneven_and_in_range() {
        let table = zipf_table(10);
        let mut rng = Rng::new(1, 0);
        let mut hits = [0u32; 10];
        for _ in 0..100_000 {
            hits[pick_room(&table, &mut rng)] += 1;
        }
        // Room 0 has weight 1, room 9 weight 1/10: about ten times the members.
        let ratio = f64::from(hits[0]) / f64::from(hits[9]);
        assert!((7.0..14.0).contains(&ratio), "{hits:?}");
        assert!(hits.iter().all(|&h| h > 0));
        assert_eq!(pick_room(&zipf_table(1), &mut rng), 0);
    }

    #[test]
    fn rng_is_seeded() {
        assert_eq!(Rng::new(5, 3).next_u64(), Rng::new(5, 3).next_u64());
        assert_ne!(Rng::new(5, 3).next_u64(), Rng::new(5, 4).next_u64());
        let mut r = Rng::new(0, 0);
        assert!((0..1000).map(|_| r.unit()).all(|x| (0.0..1.0).contains(&x)));
    }
}
