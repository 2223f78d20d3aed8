//! `churn`: connect, one round trip, disconnect, again and again.
//!
//! Open loop (`--rate` cycles per second): a cycle starts on every tick; when
//! `--connections` cycles are already in flight the tick is skipped and counted as an
//! error, so an overloaded server shows up instead of the generator queueing without end.
//! Closed loop: `--connections` workers each run cycles back to back.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use serde_json::json;
use tokio::time::MissedTickBehavior;

use crate::conn::{Conn, ConnError, Incoming, Route};
use crate::harness::{wait_phase, Harness, Phase, Shared};
use crate::options::Load;
use crate::payload::{now_ns, payload, Stamp, ECHO};
use crate::report::Outcome;

/// Runs the scenario.
pub async fn run(h: &mut Harness) -> Outcome {
    let cfg = h.cfg().clone();
    let sh = h.shared();
    h.connect_phase(0).await;
    let spawner = match cfg.load {
        Load::Rate(rate) => tokio::spawn(open_loop(sh.clone(), rate)),
        _ => tokio::spawn(closed_loop(sh.clone())),
    };
    h.start_measure();
    h.run_for_duration().await;
    h.set_phase(Phase::Drain);
    h.drain_busy().await;
    h.end_measure();
    h.set_phase(Phase::Stop);
    let _ = spawner.await;
    let completed = sh.rec.count();
    let mut extra = std::collections::BTreeMap::new();
    extra.insert("max_in_flight".into(), json!(cfg.connections));
    // Churn holds no connections of its own: each cycle opens and closes one.
    extra.insert("connections_target".into(), json!(0));
    Outcome {
        sent: sh.sent.load(Ordering::Relaxed),
        received: completed,
        messages: completed,
        extra,
        ..Outcome::default()
    }
}

async fn open_loop(sh: Arc<Shared>, rate: f64) {
    let mut phase = sh.phase();
    if wait_phase(&mut phase, Phase::Measure).await != Phase::Measure {
        return;
    }
    let period = Duration::from_secs_f64(1.0 / rate).max(Duration::from_micros(1));
    let mut tick = tokio::time::interval(period);
    tick.set_missed_tick_behavior(MissedTickBehavior::Burst);
    let mut k = 0usize;
    let mut tasks = tokio::task::JoinSet::new();
    while *phase.borrow() == Phase::Measure {
        tokio::select! {
            _ = tick.tick() => {
                if sh.busy.load(Ordering::Relaxed) >= sh.cfg.connections {
                    sh.errors.add("skipped: --connections cycles already in flight");
                    continue;
                }
                sh.busy.fetch_add(1, Ordering::Relaxed);
                let s = sh.clone();
                tasks.spawn(async move {
                    cycle(&s, k).await;
                    s.busy.fetch_sub(1, Ordering::Relaxed);
                });
                k += 1;
            }
            _ = phase.changed() => {}
            Some(_) = tasks.join_next() => {}
        }
    }
    while tasks.join_next().await.is_some() {}
}

async fn closed_loop(sh: Arc<Shared>) {
    let mut phase = sh.phase();
    if wait_phase(&mut phase, Phase::Measure).await != Phase::Measure {
        return;
    }
    let workers = sh.cfg.connections;
    let tasks: Vec<_> = (0..workers)
        .map(|w| {
            let s = sh.clone();
            tokio::spawn(async move {
                s.busy.fetch_add(1, Ordering::Relaxed);
                let mut k = w;
                while s.current_phase() == Phase::Measure {
                    cycle(&s, k).await;
                    k += workers;
                }
                s.busy.fetch_sub(1, Ordering::Relaxed);
            })
        })
        .collect();
    for t in tasks {
        let _ = t.await;
    }
}

/// One connect, echo, close; counts and records it.
async fn cycle(sh: &Shared, k: usize) {
    sh.sent.fetch_add(1, Ordering::Relaxed);
    let t0 = now_ns();
    let conn = match Conn::connect(sh.cfg.endpoint_for(k), Route::Echo, &sh.conn_cfg).await {
        Ok(c) => c,
        Err(e) => {
            sh.errors.add(e.kind());
            return;
        }
    };
    if let Some(r) = &sh.connect_rec {
        r.record(k, now_ns().saturating_sub(t0));
    }
    sh.open.fetch_add(1, Ordering::Relaxed);
    match exchange(sh, conn, k).await {
        Ok(()) => sh.rec.record(k, now_ns().saturating_sub(t0)),
        Err(e) => sh.errors.add(e.kind()),
    }
    sh.open.fetch_sub(1, Ordering::Relaxed);
}

async fn exchange(sh: &Shared, mut conn: Conn, k: usize) -> Result<(), ConnError> {
    let stamp = Stamp {
        kind: ECHO,
        src: (k % u32::MAX as usize) as u32,
        seq: 0,
        ts_ns: now_ns(),
    };
    let wait = async {
        conn.echo(&payload(&stamp, sh.cfg.payload)).await?;
        loop {
            match conn.next().await? {
                Incoming::Stamp(s) | Incoming::Ack { stamp: Some(s), .. } if s == stamp => {
                    return Ok(())
                }
                _ => {}
            }
        }
    };
    let r = tokio::time::timeout(sh.cfg.timeout, wait)
        .await
        .unwrap_or_else(|_| Err(ConnError::Protocol("no echo within --timeout".into())));
    conn.close(Duration::from_secs(1)).await;
    r
}
