//! The Engine.IO transports: WebSocket, and HTTP long-polling driven by two tasks (the
//! long GET and the POSTs).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::Method;
use iolite_engine::{decode_payload, Packet, PayloadLimits, Transport};
use iolite_ws::{
    ClientBuilder, Config as WsConfig, Limits, MaybeTlsStream, Receiver, Sender, SlowConsumer,
};
use iolite_ws_proto::Message;
use serde::Deserialize;
use tokio::io::ReadHalf;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use crate::codec::Frame;
use crate::config::{Endpoint, Rng};
use crate::error::DisconnectReason;
use crate::http::{HttpClient, HttpError, Tls};

/// The handshake data of the `open` packet. Parsed leniently (any sid) so that servers
/// other than Node's work too.
#[derive(Clone, Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct Handshake {
    pub(crate) sid: String,
    #[serde(default)]
    pub(crate) upgrades: Vec<String>,
    pub(crate) ping_interval: u64,
    pub(crate) ping_timeout: u64,
    #[serde(default)]
    pub(crate) max_payload: Option<usize>,
}

impl Handshake {
    pub(crate) fn parse(packet: &Packet) -> Result<Self, String> {
        match packet {
            Packet::Open(json) => {
                serde_json::from_str(json.as_str()).map_err(|e| format!("invalid handshake: {e}"))
            }
            other => Err(format!(
                "expected the open packet, got {:?}",
                other.packet_type()
            )),
        }
    }

    /// How long without a ping before the connection is considered dead.
    pub(crate) fn ping_deadline(&self) -> Duration {
        Duration::from_millis(self.ping_interval.saturating_add(self.ping_timeout))
    }
}

/// Everything the transports need from the manager's configuration.
#[derive(Clone)]
pub(crate) struct TransportConfig {
    pub(crate) endpoint: Arc<Endpoint>,
    pub(crate) headers: Arc<Vec<(String, String)>>,
    pub(crate) tls: Tls,
    pub(crate) max_payload: usize,
    pub(crate) max_queued_bytes: usize,
}

/// What a transport reports to the driver.
pub(crate) enum TransportEvent {
    /// One packet (WebSocket).
    Packet(Packet),
    /// The packets of one polling response, in order.
    Packets(Vec<Packet>),
    /// A POST completed: the next may go.
    PostDone,
    /// The GET loop stopped after its last response, as asked (upgrade).
    Paused,
    /// The transport is gone.
    Closed(DisconnectReason, String),
}

/// An open WebSocket transport.
pub(crate) struct WsTransport {
    pub(crate) sender: Sender,
    receiver: Receiver<ReadHalf<MaybeTlsStream>>,
}

impl WsTransport {
    /// Connects to the Engine.IO WebSocket endpoint (with `sid` when probing for an upgrade).
    pub(crate) async fn connect(cfg: &TransportConfig, sid: Option<&str>) -> Result<Self, String> {
        let limits = Limits::default()
            .max_message_size(cfg.max_payload)
            .max_frame_payload(cfg.max_payload)
            .max_inflated_size(cfg.max_payload);
        let ws_config = WsConfig::default()
            .ping_interval(None)
            .limits(limits)
            .max_queued_bytes(cfg.max_queued_bytes)
            .slow_consumer(SlowConsumer::Reject);
        #[allow(unused_mut)]
        let mut builder = ClientBuilder::new(cfg.endpoint.ws_url(sid)).config(ws_config);
        for (k, v) in cfg.headers.iter() {
            builder = builder.header(k.clone(), v.clone());
        }
        #[cfg(feature = "tls")]
        if cfg.endpoint.secure {
            let mut tls = cfg.tls.clone();
            builder = builder.tls(tls.config()?);
        }
        let (ws, _accepted) = builder
            .connect()
            .await
            .map_err(|e| format!("websocket error: {e}"))?;
        let (sender, receiver) = ws.split();
        Ok(Self { sender, receiver })
    }

    /// The next Engine.IO packet. Cancel safe.
    pub(crate) async fn recv(&mut self) -> TransportEvent {
        loop {
            let msg = match self.receiver.recv().await {
                None => {
                    return TransportEvent::Closed(
                        DisconnectReason::TransportClose,
                        "websocket closed".into(),
                    )
                }
                Some(Err(iolite_ws::Error::AbnormalClosure)) => {
                    return TransportEvent::Closed(
                        DisconnectReason::TransportClose,
                        "websocket connection lost".into(),
                    )
                }
                Some(Err(e)) => {
                    return TransportEvent::Closed(
                        DisconnectReason::TransportError,
                        format!("websocket error: {e}"),
                    )
                }
                Some(Ok(m)) => m,
            };
            match msg {
                Message::Text(t) => {
                    return match Packet::decode_text(t) {
                        Ok(p) => TransportEvent::Packet(p),
                        Err(e) => TransportEvent::Closed(
                            DisconnectReason::TransportError,
                            format!("parser error: {e}"),
                        ),
                    }
                }
                Message::Binary(b) => return TransportEvent::Packet(Packet::decode_binary(b)),
                Message::Close(_) => {
                    return TransportEvent::Closed(
                        DisconnectReason::TransportClose,
                        "websocket closed by the server".into(),
                    )
                }
                Message::Ping(_) | Message::Pong(_) => {}
            }
        }
    }

    /// Sends a frame (control packets of the engine: probe, pong, upgrade).
    pub(crate) fn send(&self, frame: Frame) -> bool {
        self.sender.send(frame.into_ws()).is_ok()
    }

    /// Starts the close handshake.
    pub(crate) fn close(&self) {
        let _ = self.sender.close(iolite_ws::CloseCode::NORMAL, "");
    }
}

/// Opens a WebSocket for the upgrade of session `sid` and runs the probe: `2probe` out,
/// `3probe` back.
pub(crate) async fn probe(cfg: TransportConfig, sid: String) -> Result<WsTransport, String> {
    let mut ws = WsTransport::connect(&cfg, Some(&sid)).await?;
    if !ws.send(Frame::Text(iolite_ws_proto::Utf8Bytes::from_static(
        "2probe",
    ))) {
        return Err("probe error: websocket closed".into());
    }
    match ws.recv().await {
        TransportEvent::Packet(p) if p == Packet::probe_pong() => Ok(ws),
        TransportEvent::Closed(_, e) => Err(format!("probe error: {e}")),
        _ => Err("probe error".into()),
    }
}

/// The long-polling transport of an open session.
pub(crate) struct Polling {
    events: mpsc::Receiver<TransportEvent>,
    post_tx: mpsc::Sender<Bytes>,
    /// A POST is in flight.
    pub(crate) post_in_flight: bool,
    /// The GET loop stopped (after a pause).
    pub(crate) paused: bool,
    pause: Arc<PauseFlag>,
    tasks: [JoinHandle<()>; 2],
    cfg: TransportConfig,
    sid: String,
    /// The server's `maxPayload`: POST bodies are cut to it.
    pub(crate) max_post: usize,
}

struct PauseFlag {
    on: AtomicBool,
}

impl Drop for Polling {
    fn drop(&mut self) {
        for t in &self.tasks {
            t.abort();
        }
    }
}

/// The handshake over polling: a GET without `sid`. Returns the handshake, the packets
/// that came with it, and the connection to keep polling on.
pub(crate) async fn polling_handshake(
    cfg: &TransportConfig,
    rng: &mut Rng,
) -> Result<(Handshake, Vec<Packet>, HttpClient), String> {
    let mut http = HttpClient::new(cfg.endpoint.clone(), cfg.headers.clone(), cfg.tls.clone());
    let target = cfg
        .endpoint
        .request_target(Transport::Polling, None, Some(&rng.token()));
    let body = http
        .request(Method::GET, &target, Bytes::new(), cfg.max_payload)
        .await
        .map_err(|e| format!("xhr poll error: {e}"))?;
    let packets =
        decode_body(body, cfg.max_payload).map_err(|(_, _, e)| format!("xhr poll error: {e}"))?;
    let mut it = packets.into_iter();
    let first = it.next().ok_or("xhr poll error: empty handshake")?;
    let hs = Handshake::parse(&first)?;
    Ok((hs, it.collect(), http))
}

/// Decodes a GET response body. On a malformed packet: the packets before it, the close
/// reason and a description.
fn decode_body(
    body: Bytes,
    max: usize,
) -> Result<Vec<Packet>, (Vec<Packet>, DisconnectReason, String)> {
    let limits = PayloadLimits::default()
        .max_payload_bytes(max)
        .max_packets(max.saturating_add(1));
    let decoder = match decode_payload(body, &limits) {
        Ok(d) => d,
        Err(e) => {
            return Err((Vec::new(), DisconnectReason::TransportError, e.to_string()));
        }
    };
    let mut out = Vec::new();
    for p in decoder {
        match p {
            Ok(p) => out.push(p),
            Err(e) => {
                return Err((
                    out,
                    DisconnectReason::TransportError,
                    format!("parser error: {e}"),
                ))
            }
        }
    }
    Ok(out)
}

impl Polling {
    /// Starts polling session `sid`. `get` is the connection of the handshake.
    pub(crate) fn start(
        cfg: TransportConfig,
        sid: String,
        get: HttpClient,
        max_post: usize,
    ) -> Self {
        let (ev_tx, events) = mpsc::channel(16);
        let (post_tx, post_rx) = mpsc::channel::<Bytes>(1);
        let pause = Arc::new(PauseFlag {
            on: AtomicBool::new(false),
        });
        let get_task = tokio::spawn(get_loop(
            cfg.clone(),
            sid.clone(),
            get,
            ev_tx.clone(),
            pause.clone(),
        ));
        let post = HttpClient::new(cfg.endpoint.clone(), cfg.headers.clone(), cfg.tls.clone());
        let post_task = tokio::spawn(post_loop(cfg.clone(), sid.clone(), post, post_rx, ev_tx));
        Self {
            events,
            post_tx,
            post_in_flight: false,
            paused: false,
            pause,
            tasks: [get_task, post_task],
            cfg,
            sid,
            max_post,
        }
    }

    /// The next event of the GET or POST task. Cancel safe.
    pub(crate) async fn recv(&mut self) -> TransportEvent {
        match self.events.recv().await {
            Some(TransportEvent::PostDone) => {
                self.post_in_flight = false;
                TransportEvent::PostDone
            }
            Some(TransportEvent::Paused) => {
                self.paused = true;
                TransportEvent::Paused
            }
            Some(ev) => ev,
            None => {
                TransportEvent::Closed(DisconnectReason::TransportError, "polling stopped".into())
            }
        }
    }

    /// POSTs `frames` (the caller cut them to [`Polling::max_post`]).
    pub(crate) fn post(&mut self, frames: &[Frame]) {
        let body = encode_payload(frames);
        // At most one POST is in flight, and the channel holds one.
        if self.post_tx.try_send(Bytes::from(body)).is_ok() {
            self.post_in_flight = true;
        }
    }

    /// Stops polling after the GET in flight completes (the server ends it with a `noop`
    /// when the upgrade starts); [`TransportEvent::Paused`] reports it.
    pub(crate) fn pause(&self) {
        self.pause.on.store(true, Ordering::Release);
    }

    /// Sends the last packets, then the `close` packet, each in its own POST as
    /// engine.io-client does (the server handles a `close` before the Socket.IO packets
    /// that came in the same payload), waiting for the POST in flight first. Gives up
    /// after `wait`.
    pub(crate) async fn close(mut self, frames: Vec<Frame>, wait: Duration) {
        let deadline = tokio::time::Instant::now() + wait;
        while self.post_in_flight {
            match tokio::time::timeout_at(deadline, self.events.recv()).await {
                Ok(Some(TransportEvent::PostDone)) => self.post_in_flight = false,
                Ok(Some(TransportEvent::Closed(..))) | Ok(None) | Err(_) => return,
                Ok(Some(_)) => {}
            }
        }
        let mut http = HttpClient::new(
            self.cfg.endpoint.clone(),
            self.cfg.headers.clone(),
            self.cfg.tls.clone(),
        );
        let mut rng = Rng::new();
        for batch in [frames, vec![Frame::CLOSE]] {
            if batch.is_empty() {
                continue;
            }
            let target = self.cfg.endpoint.request_target(
                Transport::Polling,
                Some(&self.sid),
                Some(&rng.token()),
            );
            let body = Bytes::from(encode_payload(&batch));
            let sent = tokio::time::timeout_at(
                deadline,
                http.request(Method::POST, &target, body, 1 << 16),
            )
            .await;
            if !matches!(sent, Ok(Ok(_))) {
                return;
            }
        }
    }
}

/// A polling payload: the frames separated by 0x1e.
fn encode_payload(frames: &[Frame]) -> Vec<u8> {
    let mut body = Vec::with_capacity(frames.iter().map(|f| f.polling_len() + 1).sum());
    for (i, f) in frames.iter().enumerate() {
        if i > 0 {
            body.push(iolite_engine::SEPARATOR);
        }
        f.encode_polling_into(&mut body);
    }
    body
}

async fn get_loop(
    cfg: TransportConfig,
    sid: String,
    mut http: HttpClient,
    tx: mpsc::Sender<TransportEvent>,
    pause: Arc<PauseFlag>,
) {
    let mut rng = Rng::new();
    loop {
        if pause.on.load(Ordering::Acquire) {
            let _ = tx.send(TransportEvent::Paused).await;
            return;
        }
        let target =
            cfg.endpoint
                .request_target(Transport::Polling, Some(&sid), Some(&rng.token()));
        let ev = match http
            .request(Method::GET, &target, Bytes::new(), cfg.max_payload)
            .await
        {
            Err(HttpError::TooLarge) => TransportEvent::Closed(
                DisconnectReason::TransportError,
                "xhr poll error: payload over the limit".into(),
            ),
            Err(e) => TransportEvent::Closed(
                DisconnectReason::TransportError,
                format!("xhr poll error: {e}"),
            ),
            Ok(body) => match decode_body(body, cfg.max_payload) {
                Ok(packets) => match packets.iter().position(|p| *p == Packet::Close) {
                    None => TransportEvent::Packets(packets),
                    Some(at) => {
                        // A close packet: deliver what came before it, then close.
                        let mut packets = packets;
                        packets.truncate(at);
                        if !packets.is_empty()
                            && tx.send(TransportEvent::Packets(packets)).await.is_err()
                        {
                            return;
                        }
                        TransportEvent::Closed(
                            DisconnectReason::TransportClose,
                            "transport closed by the server".into(),
                        )
                    }
                },
                Err((packets, reason, e)) => {
                    if !packets.is_empty()
                        && tx.send(TransportEvent::Packets(packets)).await.is_err()
                    {
                        return;
                    }
                    TransportEvent::Closed(reason, e)
                }
            },
        };
        let last = matches!(ev, TransportEvent::Closed(..));
        if tx.send(ev).await.is_err() || last {
            return;
        }
    }
}

async fn post_loop(
    cfg: TransportConfig,
    sid: String,
    mut http: HttpClient,
    mut rx: mpsc::Receiver<Bytes>,
    tx: mpsc::Sender<TransportEvent>,
) {
    let mut rng = Rng::new();
    while let Some(body) = rx.recv().await {
        let target =
            cfg.endpoint
                .request_target(Transport::Polling, Some(&sid), Some(&rng.token()));
        let ev = match http.request(Method::POST, &target, body, 1 << 16).await {
            Ok(_) => TransportEvent::PostDone,
            Err(e) => TransportEvent::Closed(
                DisconnectReason::TransportError,
                format!("xhr post error: {e}"),
            ),
        };
        let last = matches!(ev, TransportEvent::Closed(..));
        if tx.send(ev).await.is_err() || last {
            return;
        }
    }
}
