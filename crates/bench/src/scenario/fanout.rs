//! `fanout` and `burst`: publishers send to rooms, subscribers receive. Every delivery is
//! checked against its publisher's sequence numbers: lost, duplicated, reordered.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use serde_json::json;
use tokio::sync::Notify;
use tokio::time::MissedTickBehavior;

use crate::conn::{Conn, ConnError, Incoming, Route};
use crate::harness::{next_phase, wait_phase, Harness, Phase, Shared};
use crate::options::Load;
use crate::payload::{now_ns, ns_at, payload, Stamp, MESSAGE};
use crate::report::Outcome;
use crate::scenario::echo::wait_idle;
use crate::stats::{OrderTotals, OrderTracker, Seen};

/// The name of room `k`.
pub fn room_name(k: usize) -> String {
    format!("r{k}")
}

struct Publisher {
    room: usize,
    published: AtomicU64,
    /// Closed loop: the sequence number waited for (`u64::MAX`: none) and how many
    /// subscribers have yet to get it.
    waiting_seq: AtomicU64,
    remaining: AtomicUsize,
    all_got_it: Notify,
}

struct Plan {
    pubs: Vec<Publisher>,
    /// Subscribers ready, per room.
    room_subs: Vec<AtomicUsize>,
}

/// Runs `fanout` (or `burst`, when the load is [`Load::Burst`]).
pub async fn run(h: &mut Harness) -> Outcome {
    let cfg = h.cfg().clone();
    let (n, rooms, p) = (cfg.connections, cfg.rooms, cfg.publishers);
    let plan = Arc::new(Plan {
        pubs: (0..p)
            .map(|j| Publisher {
                room: j % rooms,
                published: AtomicU64::new(0),
                waiting_seq: AtomicU64::new(u64::MAX),
                remaining: AtomicUsize::new(0),
                all_got_it: Notify::new(),
            })
            .collect(),
        room_subs: (0..rooms).map(|_| AtomicUsize::new(0)).collect(),
    });
    let total = n + p;
    let subs: Vec<_> = (0..n)
        .map(|i| tokio::spawn(subscriber(h.shared(), plan.clone(), i, total)))
        .collect();
    let pubs: Vec<_> = (0..p)
        .map(|j| tokio::spawn(publisher(h.shared(), plan.clone(), j, n + j, total)))
        .collect();
    h.connect_phase(total).await;
    h.start_measure();
    let sh = h.shared();
    if cfg.load == Load::Burst {
        // Publishers are busy until their last message is queued.
        let s = sh.clone();
        while s.busy.load(Ordering::Relaxed) > 0 {
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
    } else {
        h.run_for_duration().await;
    }
    h.set_phase(Phase::Drain);
    while sh.busy.load(Ordering::Relaxed) > 0 {
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    let expected: u64 = plan
        .pubs
        .iter()
        .map(|pb| {
            pb.published.load(Ordering::Relaxed)
                * plan.room_subs[pb.room].load(Ordering::Relaxed) as u64
        })
        .sum();
    let s = sh.clone();
    h.drain_until(move || s.rec.count() >= expected).await;
    h.end_measure();
    h.set_phase(Phase::Stop);
    let mut order = OrderTotals::default();
    for t in subs {
        if let Ok(o) = t.await {
            order.merge(&o);
        }
    }
    for t in pubs {
        let _ = t.await;
    }
    let sent: u64 = plan
        .pubs
        .iter()
        .map(|pb| pb.published.load(Ordering::Relaxed))
        .sum();
    let ready_subs: usize = plan
        .room_subs
        .iter()
        .map(|r| r.load(Ordering::Relaxed))
        .sum();
    let mut extra = std::collections::BTreeMap::new();
    extra.insert("connections_target".into(), json!(total));
    extra.insert("subscribers".into(), json!(ready_subs));
    extra.insert("publishers".into(), json!(p));
    extra.insert("rooms".into(), json!(rooms));
    if cfg.load == Load::Burst {
        extra.insert("messages_per_publisher".into(), json!(cfg.messages));
    }
    Outcome {
        sent,
        received: order.unique,
        expected: Some(expected),
        order: Some(order),
        messages: sent,
        deliveries: Some(order.unique),
        recipients_per_message: Some(ready_subs as f64 / rooms as f64),
        extra,
    }
}

async fn subscriber(sh: Arc<Shared>, plan: Arc<Plan>, i: usize, total: usize) -> OrderTotals {
    let mut phase = sh.phase();
    let room = i % plan.room_subs.len();
    let name = room_name(room);
    let Some(mut conn) = sh.open(i, total, Route::Room(&name)).await else {
        return OrderTotals::default();
    };
    if let Err(e) = conn.join_and_wait(&name, sh.cfg.timeout).await {
        sh.mark_failed(&e);
        sh.close(conn).await;
        return OrderTotals::default();
    }
    plan.room_subs[room].fetch_add(1, Ordering::Relaxed);
    sh.mark_ready();
    let mut trackers = vec![OrderTracker::default(); plan.pubs.len()];
    let r = receive(&sh, &plan, &mut conn, &mut phase, i, room, &mut trackers).await;
    let mut totals = OrderTotals::default();
    for t in &trackers {
        totals.add(t);
    }
    match r {
        Ok(()) => sh.close(conn).await,
        Err(e) => sh.mark_dropped(&e),
    }
    totals
}

async fn receive(
    sh: &Shared,
    plan: &Plan,
    conn: &mut Conn,
    phase: &mut tokio::sync::watch::Receiver<Phase>,
    i: usize,
    room: usize,
    trackers: &mut [OrderTracker],
) -> Result<(), ConnError> {
    if *phase.borrow() >= Phase::Stop {
        return Ok(());
    }
    loop {
        tokio::select! {
            r = conn.next() => {
                let Incoming::Stamp(s) = r? else { continue };
                let src = s.src as usize;
                let from_room = plan.pubs.get(src).map(|pb| pb.room);
                if s.kind != MESSAGE || from_room != Some(room) {
                    sh.errors.add("a delivery this subscriber's room was not sent");
                    continue;
                }
                match trackers[src].observe(s.seq) {
                    Seen::New | Seen::Reordered => {
                        sh.rec.record(i, now_ns().saturating_sub(s.ts_ns));
                        let pb = &plan.pubs[src];
                        if pb.waiting_seq.load(Ordering::Acquire) == s.seq
                            && pb.remaining.fetch_sub(1, Ordering::AcqRel) == 1
                        {
                            pb.all_got_it.notify_one();
                        }
                    }
                    Seen::Duplicate => {}
                }
            }
            p = next_phase(phase) => if p >= Phase::Stop { return Ok(()) },
        }
    }
}

async fn publisher(sh: Arc<Shared>, plan: Arc<Plan>, j: usize, slot: usize, total: usize) {
    let mut phase = sh.phase();
    let room = plan.pubs[j].room;
    let name = room_name(room);
    // Publisher j on node j of --url: with one publisher and several nodes, it is on the
    // first and the others get its messages through the cluster adapter.
    let Some(mut conn) = sh.open_on(j, slot, total, Route::Room(&name)).await else {
        return;
    };
    sh.mark_ready();
    // Busy from before Measure, so the coordinator cannot see "no publisher busy" before
    // the publishers started.
    sh.busy.fetch_add(1, Ordering::Relaxed);
    let r = if wait_phase(&mut phase, Phase::Measure).await == Phase::Measure {
        let mut p = Pub {
            sh: &sh,
            plan: &plan,
            j,
            name: &name,
            seq: 0,
        };
        match sh.cfg.load {
            Load::Rate(rate) => p.open_loop(&mut conn, &mut phase, rate).await,
            Load::Closed { .. } => p.closed_loop(&mut conn, &mut phase).await,
            Load::Burst => p.burst(&mut conn).await,
            Load::None => Ok(()),
        }
    } else {
        Ok(())
    };
    sh.busy.fetch_sub(1, Ordering::Relaxed);
    let r = match r {
        Ok(()) => wait_idle(&mut conn, &mut phase).await,
        e => e,
    };
    match r {
        Ok(()) => sh.close(conn).await,
        Err(e) => sh.mark_dropped(&e),
    }
}

struct Pub<'a> {
    sh: &'a Shared,
    plan: &'a Plan,
    j: usize,
    name: &'a str,
    seq: u64,
}

impl Pub<'_> {
    async fn publish(&mut self, conn: &mut Conn, ts_ns: u64) -> Result<(), ConnError> {
        let p = payload(
            &Stamp {
                kind: MESSAGE,
                src: self.j as u32,
                seq: self.seq,
                ts_ns,
            },
            self.sh.cfg.payload,
        );
        conn.publish(self.name, &p).await?;
        self.seq += 1;
        self.plan.pubs[self.j]
            .published
            .store(self.seq, Ordering::Relaxed);
        self.sh.sent.fetch_add(1, Ordering::Relaxed);
        Ok(())
    }

    async fn open_loop(
        &mut self,
        conn: &mut Conn,
        phase: &mut tokio::sync::watch::Receiver<Phase>,
        rate: f64,
    ) -> Result<(), ConnError> {
        let p = self.plan.pubs.len();
        let period = Duration::from_secs_f64(p as f64 / rate).max(Duration::from_micros(1));
        let offset = period.mul_f64(self.j as f64 / p as f64);
        let end = self.sh.measure_end();
        let mut tick = tokio::time::interval_at((self.sh.measure_start() + offset).into(), period);
        tick.set_missed_tick_behavior(MissedTickBehavior::Burst);
        // The schedule ends the sends (see echo's open loop).
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
                    self.publish(conn, ns_at(t)).await?;
                }
                _ = &mut stop_sending => return Ok(()),
                r = conn.next() => { r?; }
                p = next_phase(phase) => if p >= Phase::Stop { return Ok(()) },
            }
        }
    }

    async fn closed_loop(
        &mut self,
        conn: &mut Conn,
        phase: &mut tokio::sync::watch::Receiver<Phase>,
    ) -> Result<(), ConnError> {
        let me = &self.plan.pubs[self.j];
        let subs = self.plan.room_subs[me.room].load(Ordering::Relaxed);
        while *phase.borrow() < Phase::Drain {
            if subs > 0 {
                me.remaining.store(subs, Ordering::Release);
                me.waiting_seq.store(self.seq, Ordering::Release);
            }
            self.publish(conn, now_ns()).await?;
            if subs == 0 {
                // Nobody to wait for: do not spin.
                tokio::time::sleep(Duration::from_millis(10)).await;
                continue;
            }
            let deadline = tokio::time::sleep(self.sh.cfg.timeout);
            tokio::pin!(deadline);
            loop {
                tokio::select! {
                    _ = me.all_got_it.notified() => break,
                    _ = &mut deadline => {
                        self.sh.errors.add("closed loop: a message did not reach every subscriber within --timeout");
                        break;
                    }
                    r = conn.next() => { r?; }
                    p = next_phase(phase) => if p >= Phase::Drain { break },
                }
            }
        }
        me.waiting_seq.store(u64::MAX, Ordering::Release);
        Ok(())
    }

    async fn burst(&mut self, conn: &mut Conn) -> Result<(), ConnError> {
        for _ in 0..self.sh.cfg.messages {
            self.publish(conn, now_ns()).await?;
        }
        Ok(())
    }
}
