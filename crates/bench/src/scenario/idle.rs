//! `idle`: hold connections open with heartbeats; the server's memory per connection.

use std::sync::atomic::Ordering;
use std::sync::Arc;

use serde_json::json;

use crate::conn::Route;
use crate::harness::{Harness, Phase, Shared};
use crate::report::Outcome;
use crate::scenario::echo::wait_idle;

/// Runs the scenario.
pub async fn run(h: &mut Harness) -> Outcome {
    let n = h.cfg().connections;
    let tasks: Vec<_> = (0..n)
        .map(|i| tokio::spawn(hold(h.shared(), i, n)))
        .collect();
    h.connect_phase(n).await;
    h.start_measure();
    h.run_for_duration().await;
    h.end_measure();
    let held = h.shared().open.load(Ordering::Relaxed);
    h.set_phase(Phase::Stop);
    for t in tasks {
        let _ = t.await;
    }
    let mut extra = std::collections::BTreeMap::new();
    extra.insert("held_at_end".into(), json!(held));
    if let Some(hb) = h.cfg().heartbeat {
        extra.insert("client_ping_s".into(), json!(hb.as_secs_f64()));
    }
    Outcome {
        extra,
        ..Outcome::default()
    }
}

async fn hold(sh: Arc<Shared>, i: usize, n: usize) {
    let mut phase = sh.phase();
    let Some(mut conn) = sh.open(i, n, Route::Echo).await else {
        return;
    };
    sh.mark_ready();
    match wait_idle(&mut conn, &mut phase).await {
        Ok(()) => sh.close(conn).await,
        Err(e) => sh.mark_dropped(&e),
    }
}
