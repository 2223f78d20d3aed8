//! Autobahn client driver: runs every case of a fuzzingserver (`kosoku -m fuzzingserver`)
//! with an echo client, then asks it to write the reports.
//!
//! Usage: `AUTOBAHN_AGENT=iolite autobahn_client ws://127.0.0.1:9001`

use iolite_ws::{ClientBuilder, Config, DeflateConfig, Message};

async fn connect(
    url: String,
) -> Result<iolite_ws::WebSocket<iolite_ws::MaybeTlsStream>, iolite_ws::Error> {
    let cfg = Config::default().ping_interval(None);
    let (ws, _) = ClientBuilder::new(url)
        .config(cfg)
        .deflate(
            // Offer client_no_context_takeover (13.2, 13.5, 13.6 need it offered) but let the
            // server keep its context, so our inflater's context takeover is exercised.
            DeflateConfig::default()
                .compress_threshold(0)
                .server_no_context_takeover(false),
        )
        .connect()
        .await?;
    Ok(ws)
}

async fn run_case(url: String, case: u32) {
    let mut ws = match connect(url).await {
        Ok(ws) => ws,
        Err(e) => {
            eprintln!("case {case}: connect failed: {e}");
            return;
        }
    };
    while let Some(msg) = ws.recv().await {
        match msg {
            Ok(m @ (Message::Text(_) | Message::Binary(_))) => {
                if ws.send(m).is_err() {
                    break;
                }
            }
            Ok(_) => {}
            Err(_) => break,
        }
    }
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let base = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "ws://127.0.0.1:9001".into());
    let agent = std::env::var("AUTOBAHN_AGENT").unwrap_or_else(|_| "iolite".into());

    let mut ws = connect(format!("{base}/getCaseCount")).await?;
    let count: u32 = match ws.recv().await {
        Some(Ok(Message::Text(t))) => t.trim().parse()?,
        other => return Err(format!("unexpected case count reply: {other:?}").into()),
    };
    while ws.recv().await.is_some() {}
    eprintln!("running {count} cases as agent {agent}");

    // Cases are independent connections; running a few at once keeps both cores busy
    // (the fuzzing server does most of the work). AUTOBAHN_PARALLEL=1 runs them in order.
    let parallel: u32 = std::env::var("AUTOBAHN_PARALLEL")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(2)
        .max(1);
    let mut workers = Vec::new();
    for worker in 0..parallel {
        let (base, agent) = (base.clone(), agent.clone());
        workers.push(tokio::spawn(async move {
            for case in (1..=count).filter(|c| c % parallel == worker) {
                run_case(format!("{base}/runCase?case={case}&agent={agent}"), case).await;
            }
        }));
    }
    for w in workers {
        w.await?;
    }

    let mut ws = connect(format!("{base}/updateReports?agent={agent}")).await?;
    while ws.recv().await.is_some() {}
    Ok(())
}
