//! `echo`: every connection sends payloads and the server echoes them; round-trip time.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use tokio::time::MissedTickBehavior;

use crate::conn::{Conn, ConnError, Incoming, Route};
use crate::harness::{next_phase, wait_phase, Harness, Phase, Shared};
use crate::options::Load;
use crate::payload::{now_ns, ns_at, payload, Stamp, ECHO};
use crate::report::Outcome;
use crate::stats::{OrderTotals, OrderTracker, Seen};

/// Runs the scenario.
pub async fn run(h: &mut Harness) -> Outcome {
    let n = h.cfg().connections;
    let tasks: Vec<_> = (0..n)
        .map(|i| tokio::spawn(conn_task(h.shared(), i, n)))
        .collect();
    h.connect_phase(n).await;
    h.start_measure();
    h.run_for_duration().await;
    h.set_phase(Phase::Drain);
    h.drain_busy().await;
    h.end_measure();
    h.set_phase(Phase::Stop);
    let mut order = OrderTotals::default();
    let mut sent = 0;
    for t in tasks {
        if let Ok((s, o)) = t.await {
            sent += s;
            order.merge(&o);
        }
    }
    Outcome {
        sent,
        received: order.unique,
        expected: Some(sent),
        order: Some(order),
        messages: order.unique,
        ..Outcome::default()
    }
}

struct Echoer {
    sh: Arc<Shared>,
    i: usize,
    seq: u64,
    outstanding: u64,
    sent: u64,
    order: OrderTracker,
}

impl Echoer {
    async fn send(&mut self, conn: &mut Conn, ts_ns: u64) -> Result<(), ConnError> {
        let p = payload(
            &Stamp {
                kind: ECHO,
                src: self.i as u32,
                seq: self.seq,
                ts_ns,
            },
            self.sh.cfg.payload,
        );
        conn.echo(&p).await?;
        self.seq += 1;
        self.outstanding += 1;
        self.sent += 1;
        self.sh.sent.fetch_add(1, Ordering::Relaxed);
        Ok(())
    }

    /// Takes a reply; true if it was one of ours.
    fn on_reply(&mut self, inc: Incoming) -> bool {
        let stamp = match inc {
            Incoming::Stamp(s) => s,
            Incoming::Ack { stamp: Some(s), .. } => s,
            _ => return false,
        };
        if stamp.kind != ECHO || stamp.src as usize != self.i {
            self.sh
                .errors
                .add("echo reply that this connection did not send");
            return false;
        }
        match self.order.observe(stamp.seq) {
            Seen::New | Seen::Reordered => {
                self.outstanding = self.outstanding.saturating_sub(1);
                self.sh
                    .rec
                    .record(self.i, now_ns().saturating_sub(stamp.ts_ns));
                true
            }
            Seen::Duplicate => false,
        }
    }
}

async fn conn_task(sh: Arc<Shared>, i: usize, n: usize) -> (u64, OrderTotals) {
    let mut phase = sh.phase();
    let Some(mut conn) = sh.open(i, n, Route::Echo).await else {
        return (0, OrderTotals::default());
    };
    sh.mark_ready();
    let mut e = Echoer {
        sh: sh.clone(),
        i,
        seq: 0,
        outstanding: 0,
        sent: 0,
        order: OrderTracker::default(),
    };
    if wait_phase(&mut phase, Phase::Measure).await != Phase::Measure {
        sh.close(conn).await;
        return (0, OrderTotals::default());
    }
    sh.busy.fetch_add(1, Ordering::Relaxed);
    let r = match sh.cfg.load {
        Load::Rate(rate) => open_loop(&mut e, &mut conn, &mut phase, rate).await,
        Load::Closed { in_flight } => closed_loop(&mut e, &mut conn, &mut phase, in_flight).await,
        Load::Burst | Load::None => Ok(()),
    };
    sh.busy.fetch_sub(1, Ordering::Relaxed);
    let mut totals = OrderTotals::default();
    totals.add(&e.order);
    match r {
        Ok(()) => {
            // Stay connected until Stop: closing early would show up in other
            // connections' numbers as server work.
            if sh.current_phase() < Phase::Stop {
                let _ = wait_idle(&mut conn, &mut phase).await;
            }
            sh.close(conn).await;
        }
        Err(err) => sh.mark_dropped(&err),
    }
    (e.sent, totals)
}

async fn closed_loop(
    e: &mut Echoer,
    conn: &mut Conn,
    phase: &mut tokio::sync::watch::Receiver<Phase>,
    in_flight: usize,
) -> Result<(), ConnError> {
    for _ in 0..in_flight {
        e.send(conn, now_ns()).await?;
    }
    let mut sending = true;
    loop {
        tokio::select! {
            r = conn.next() => {
                if e.on_reply(r?) {
                    if sending {
                        e.send(conn, now_ns()).await?;
                    } else if e.outstanding == 0 {
                        return Ok(());
                    }
                }
            }
            p = next_phase(phase) => {
                sending = p < Phase::Drain;
                if p >= Phase::Stop || !sending && e.outstanding == 0 {
                    return Ok(());
                }
            }
        }
    }
}

async fn open_loop(
    e: &mut Echoer,
    conn: &mut Conn,
    phase: &mut tokio::sync::watch::Receiver<Phase>,
    rate: f64,
) -> Result<(), ConnError> {
    let senders = e.sh.ready.load(Ordering::Relaxed).max(1);
    let period = Duration::from_secs_f64(senders as f64 / rate).max(Duration::from_micros(1));
    // Connections start at different offsets in the period, so the total is even.
    let offset = period.mul_f64((e.i % senders) as f64 / senders as f64);
    let end = e.sh.measure_end();
    let mut tick = tokio::time::interval_at((e.sh.measure_start() + offset).into(), period);
    tick.set_missed_tick_behavior(MissedTickBehavior::Burst);
    // The schedule, not the phase, ends the sends: every tick before `end` is sent, even
    // by a task that runs late. Biased, so due ticks go before the end is noticed.
    let stop_sending = tokio::time::sleep_until(end.into());
    tokio::pin!(stop_sending);
    let mut sending = true;
    loop {
        tokio::select! {
            biased;
            t = tick.tick(), if sending => {
                let t = t.into_std();
                if t < end {
                    e.send(conn, ns_at(t)).await?;
                } else {
                    sending = false;
                }
            }
            _ = &mut stop_sending, if sending => sending = false,
            r = conn.next() => {
                e.on_reply(r?);
            }
            p = next_phase(phase) => if p >= Phase::Stop { return Ok(()) },
        }
        if !sending && e.outstanding == 0 {
            return Ok(());
        }
    }
}

/// Keeps a connection serviced (Socket.IO pings) until Stop.
pub(crate) async fn wait_idle(
    conn: &mut Conn,
    phase: &mut tokio::sync::watch::Receiver<Phase>,
) -> Result<(), ConnError> {
    if *phase.borrow() >= Phase::Stop {
        return Ok(());
    }
    loop {
        tokio::select! {
            r = conn.next() => { r?; }
            p = next_phase(phase) => if p >= Phase::Stop { return Ok(()) },
        }
    }
}
