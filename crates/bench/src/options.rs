//! The command line, and its validation into a [`RunConfig`].

use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand, ValueEnum};
use serde::{Deserialize, Serialize};

use crate::conn::Endpoint;

/// `iolite-bench`: a load generator for WebSocket and Socket.IO servers.
#[derive(Parser, Debug, Clone)]
#[command(
    name = "iolite-bench",
    version,
    about = "Load generator for WebSocket and Socket.IO servers (iolite, socketioxide, Node ws, Node socket.io)",
    after_help = "Every peer implements the same small server contract: docs/bench-contract.md."
)]
pub struct Cli {
    /// The scenario to run.
    #[command(subcommand)]
    pub command: Command,
}

/// A scenario, or `plot`.
#[derive(Subcommand, Debug, Clone)]
pub enum Command {
    /// Round trips: every connection sends, the server echoes.
    Echo(EchoArgs),
    /// Publishers send to rooms; subscribers spread over the rooms receive. Delivery
    /// latency, loss and order.
    Fanout(FanoutArgs),
    /// Fanout without a rate: each publisher sends --messages as fast as it can; loss
    /// and order.
    Burst(BurstArgs),
    /// Hold connections open with heartbeats; server memory per connection.
    Idle(IdleArgs),
    /// Connect, one round trip, disconnect, at a rate.
    Churn(ChurnArgs),
    /// A chat: rooms of varied size, messages, typing events, joins and leaves (Socket.IO).
    Chat(ChatArgs),
    /// Plot several JSON results against connections or recipients (one series per label).
    Plot(PlotArgs),
}

/// Transport and protocol spoken to the server.
#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Protocol {
    /// Raw WebSocket: text frames, paths /echo and /broadcast?room=NAME.
    Ws,
    /// Socket.IO v5 over a WebSocket from the start.
    Sio,
    /// Socket.IO v5 over HTTP long-polling only.
    SioPolling,
}

impl Protocol {
    /// The name used on the command line and in results.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Ws => "ws",
            Self::Sio => "sio",
            Self::SioPolling => "sio-polling",
        }
    }
}

/// Options every scenario takes.
#[derive(Args, Debug, Clone)]
pub struct Common {
    /// The server: ws://HOST:PORT (raw WebSocket paths are appended to its path) or, for
    /// Socket.IO, ws:// or http://HOST:PORT[/engine.io-path/] (default path /socket.io/).
    /// Several, comma-separated, for the nodes of a cluster: connection i goes to URL
    /// i % count (fanout: subscriber i; publisher j to URL j % count).
    #[arg(long, default_value = "ws://127.0.0.1:3000")]
    pub url: String,
    /// ws, sio (Socket.IO over WebSocket) or sio-polling (Socket.IO over long-polling).
    #[arg(long, value_enum, default_value_t = Protocol::Ws)]
    pub protocol: Protocol,
    /// Client connections (fanout, burst: subscribers; churn: cycles in flight at most).
    #[arg(short = 'c', long, default_value_t = 100)]
    pub connections: usize,
    /// Open loop: messages per second over all senders (churn: connections per second;
    /// chat: user actions per second). Latency counts from the scheduled send time.
    #[arg(long, conflicts_with = "closed_loop")]
    pub rate: Option<f64>,
    /// Closed loop: send the next message when the previous one arrived (the default
    /// without --rate).
    #[arg(long)]
    pub closed_loop: bool,
    /// Payload size in bytes (at least the ~20-40 byte header the receiver reads).
    #[arg(long, default_value_t = 64)]
    pub payload: usize,
    /// Length of the measured phase (seconds, or with a unit: 500ms, 2m).
    #[arg(long, default_value = "10", value_parser = parse_duration)]
    pub duration: Duration,
    /// Spread the opening of connections over this time (0: as fast as allowed).
    #[arg(long, default_value = "0", value_parser = parse_duration)]
    pub ramp_up: Duration,
    /// Connection attempts in flight at once (keep it under the server's listen backlog:
    /// tokio's default is 128, Node's 511).
    #[arg(long, default_value_t = 100)]
    pub connect_concurrency: usize,
    /// The server's pid: its CPU time (/proc/PID/stat) and RSS (/proc/PID/status) are
    /// sampled at the start and end of the measured phase. Several (repeated or
    /// comma-separated) for the nodes of a cluster: CPU time and RSS are summed.
    #[arg(long, value_delimiter = ',')]
    pub server_pid: Vec<u32>,
    /// Another process to sample over the same window and report apart from the server
    /// (the Redis server of a cluster, say); repeated or comma-separated.
    #[arg(long, value_delimiter = ',')]
    pub watch_pid: Vec<u32>,
    /// Write the results as JSON to this file (`-`: standard output).
    #[arg(long)]
    pub json: Option<PathBuf>,
    /// Write an SVG plot of throughput and latency over the run to this file.
    #[arg(long)]
    pub plot: Option<PathBuf>,
    /// A name for this run in results and plots (the server's name, say).
    #[arg(long)]
    pub label: Option<String>,
    /// Generator worker threads (default: one per CPU).
    #[arg(long)]
    pub threads: Option<usize>,
    /// Deadline for connecting, joining and each closed-loop wait.
    #[arg(long, default_value = "10", value_parser = parse_duration)]
    pub timeout: Duration,
    /// After the measured phase, wait this long without progress for messages in flight.
    #[arg(long, default_value = "5", value_parser = parse_duration)]
    pub drain: Duration,
    /// No progress bar.
    #[arg(long)]
    pub no_progress: bool,
}

/// `echo` options.
#[derive(Args, Debug, Clone)]
pub struct EchoArgs {
    #[command(flatten)]
    #[allow(missing_docs)]
    pub common: Common,
    /// Closed loop: requests in flight per connection.
    #[arg(long, default_value_t = 1)]
    pub in_flight: usize,
}

/// Rooms and publishers of `fanout` and `burst`.
#[derive(Args, Debug, Clone)]
pub struct RoomArgs {
    /// Rooms; subscriber i joins room i % rooms.
    #[arg(long, default_value_t = 1)]
    pub rooms: usize,
    /// Publishers (default: one per room); publisher j sends to room j % rooms.
    #[arg(long)]
    pub publishers: Option<usize>,
}

/// `fanout` options.
#[derive(Args, Debug, Clone)]
pub struct FanoutArgs {
    #[command(flatten)]
    #[allow(missing_docs)]
    pub common: Common,
    #[command(flatten)]
    #[allow(missing_docs)]
    pub rooms: RoomArgs,
}

/// `burst` options.
#[derive(Args, Debug, Clone)]
pub struct BurstArgs {
    #[command(flatten)]
    #[allow(missing_docs)]
    pub common: Common,
    #[command(flatten)]
    #[allow(missing_docs)]
    pub rooms: RoomArgs,
    /// Messages each publisher sends.
    #[arg(long, default_value_t = 1000)]
    pub messages: u64,
}

/// `idle` options.
#[derive(Args, Debug, Clone)]
pub struct IdleArgs {
    #[command(flatten)]
    #[allow(missing_docs)]
    pub common: Common,
    /// Raw WebSocket: the client pings this often (Socket.IO: the server's own heartbeat
    /// is answered).
    #[arg(long, default_value = "25", value_parser = parse_duration)]
    pub heartbeat: Duration,
}

/// `churn` options.
#[derive(Args, Debug, Clone)]
pub struct ChurnArgs {
    #[command(flatten)]
    #[allow(missing_docs)]
    pub common: Common,
}

/// `chat` options.
#[derive(Args, Debug, Clone)]
pub struct ChatArgs {
    #[command(flatten)]
    #[allow(missing_docs)]
    pub common: Common,
    /// Rooms (default: one per 20 users); sizes follow 1/rank (Zipf).
    #[arg(long)]
    pub rooms: Option<usize>,
    /// Seed of the room choices and action mix.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
}

/// `plot` options.
#[derive(Args, Debug, Clone)]
pub struct PlotArgs {
    /// The x axis.
    #[arg(long, value_enum, default_value_t = PlotX::Connections)]
    pub x: PlotX,
    /// The SVG file to write.
    #[arg(short, long, default_value = "bench.svg")]
    pub out: PathBuf,
    /// JSON results of earlier runs.
    #[arg(required = true)]
    pub files: Vec<PathBuf>,
}

/// The x axis of `plot`.
#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum PlotX {
    /// Connections opened.
    Connections,
    /// Recipients of each message (subscribers per room).
    Recipients,
}

/// A duration: plain seconds (`10`, `0.5`) or with a unit (`500ms`, `10s`, `2m`).
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    let (num, scale) = if let Some(n) = s.strip_suffix("ms") {
        (n, 0.001)
    } else if let Some(n) = s.strip_suffix('s') {
        (n, 1.0)
    } else if let Some(n) = s.strip_suffix('m') {
        (n, 60.0)
    } else {
        (s, 1.0)
    };
    let v: f64 = num
        .trim()
        .parse()
        .map_err(|_| format!("`{s}` is not a duration (seconds, or 500ms, 10s, 2m)"))?;
    let secs = v * scale;
    if !(0.0..=7.0 * 86400.0).contains(&secs) {
        return Err(format!("`{s}` is out of range (0 to 7 days)"));
    }
    Ok(Duration::from_secs_f64(secs))
}

/// A scenario's name.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Scenario {
    /// Round trips.
    Echo,
    /// Publish to rooms at a rate.
    Fanout,
    /// Publish K messages as fast as possible.
    Burst,
    /// Hold connections.
    Idle,
    /// Connect, exchange, disconnect.
    Churn,
    /// A chat.
    Chat,
}

impl Scenario {
    /// The subcommand name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Echo => "echo",
            Self::Fanout => "fanout",
            Self::Burst => "burst",
            Self::Idle => "idle",
            Self::Churn => "churn",
            Self::Chat => "chat",
        }
    }
}

/// Open or closed loop.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Load {
    /// Messages (or connections, or actions) per second over all senders.
    Rate(f64),
    /// The next send waits for the previous one; `in_flight` at once per sender.
    Closed {
        /// Requests in flight per sender.
        in_flight: usize,
    },
    /// As fast as the send queue takes them (burst).
    Burst,
    /// Nothing is sent (idle).
    None,
}

/// A validated run.
#[derive(Clone, Debug, Serialize)]
pub struct RunConfig {
    /// Which scenario.
    pub scenario: Scenario,
    /// Where and how to connect (the first of [`endpoints`](Self::endpoints)).
    pub endpoint: Endpoint,
    /// Every node given to --url, in order; connection i goes to `endpoints[i % len]`.
    pub endpoints: Vec<Endpoint>,
    /// The URL as given.
    pub url: String,
    /// Connections (subscribers, users, churn concurrency).
    pub connections: usize,
    /// Open or closed loop.
    pub load: Load,
    /// Payload bytes.
    pub payload: usize,
    /// The measured phase.
    #[serde(serialize_with = "ser_secs")]
    pub duration: Duration,
    /// Connection ramp.
    #[serde(serialize_with = "ser_secs")]
    pub ramp_up: Duration,
    /// Connection attempts at once.
    pub connect_concurrency: usize,
    /// Rooms (fanout, burst, chat).
    pub rooms: usize,
    /// Publishers (fanout, burst).
    pub publishers: usize,
    /// Messages per publisher (burst).
    pub messages: u64,
    /// Client ping interval on raw WebSocket (idle).
    #[serde(serialize_with = "ser_opt_secs")]
    pub heartbeat: Option<Duration>,
    /// Seed (chat).
    pub seed: u64,
    /// Server processes to sample (their CPU time and RSS are summed).
    pub server_pids: Vec<u32>,
    /// Other processes sampled over the same window, reported apart.
    pub watch_pids: Vec<u32>,
    /// Connect / join / closed-loop deadline.
    #[serde(serialize_with = "ser_secs")]
    pub timeout: Duration,
    /// Quiet time that ends the drain.
    #[serde(serialize_with = "ser_secs")]
    pub drain: Duration,
    /// Draw a progress bar.
    #[serde(skip)]
    pub progress: bool,
    /// Run label.
    pub label: Option<String>,
}

fn ser_secs<S: serde::Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_f64(d.as_secs_f64())
}

fn ser_opt_secs<S: serde::Serializer>(d: &Option<Duration>, s: S) -> Result<S::Ok, S::Error> {
    match d {
        Some(d) => s.serialize_f64(d.as_secs_f64()),
        None => s.serialize_none(),
    }
}

/// An option that makes no sense, with what to do instead.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum ConfigError {
    /// A bad value.
    #[error("{0}")]
    Invalid(String),
}

fn invalid<T>(msg: impl Into<String>) -> Result<T, ConfigError> {
    Err(ConfigError::Invalid(msg.into()))
}

/// The most a payload may be: the generator builds each one in memory.
pub const MAX_PAYLOAD: usize = 16 << 20;

impl RunConfig {
    /// The node connection `i` goes to: round-robin over --url.
    pub fn endpoint_for(&self, i: usize) -> &Endpoint {
        self.endpoints
            .get(i % self.endpoints.len().max(1))
            .unwrap_or(&self.endpoint)
    }

    /// Validates a scenario's options (`plot` is not a run: `None`).
    pub fn from_command(cmd: &Command) -> Option<Result<Self, ConfigError>> {
        Some(match cmd {
            Command::Echo(a) => Self::build(Scenario::Echo, &a.common, None, None, 0, a.in_flight),
            Command::Fanout(a) => {
                Self::build(Scenario::Fanout, &a.common, Some(&a.rooms), None, 0, 1)
            }
            Command::Burst(a) => Self::build(
                Scenario::Burst,
                &a.common,
                Some(&a.rooms),
                None,
                a.messages,
                1,
            ),
            Command::Idle(a) => {
                Self::build(Scenario::Idle, &a.common, None, None, 0, 1).map(|mut c| {
                    // Socket.IO has its own heartbeat, driven by the server.
                    if c.endpoint.protocol == Protocol::Ws {
                        c.heartbeat = Some(a.heartbeat);
                    }
                    c
                })
            }
            Command::Churn(a) => Self::build(Scenario::Churn, &a.common, None, None, 0, 1),
            Command::Chat(a) => Self::build(Scenario::Chat, &a.common, None, Some(a.rooms), 0, 1)
                .map(|mut c| {
                    c.seed = a.seed;
                    c
                }),
            Command::Plot(_) => return None,
        })
    }

    fn build(
        scenario: Scenario,
        c: &Common,
        room_args: Option<&RoomArgs>,
        chat_rooms: Option<Option<usize>>,
        messages: u64,
        in_flight: usize,
    ) -> Result<Self, ConfigError> {
        let endpoints = c
            .url
            .split(',')
            .map(|u| {
                let u = u.trim();
                if u.is_empty() {
                    return invalid(format!(
                        "--url {}: an empty URL in the comma-separated list",
                        c.url
                    ));
                }
                Endpoint::parse(u, c.protocol)
            })
            .collect::<Result<Vec<_>, _>>()?;
        let Some(endpoint) = endpoints.first().cloned() else {
            return invalid("--url is empty");
        };
        for pid in c.server_pid.iter().chain(&c.watch_pid) {
            if *pid == 0 {
                return invalid("--server-pid and --watch-pid take process ids, not 0");
            }
        }
        if c.connections == 0 {
            return invalid("--connections must be at least 1");
        }
        if c.connect_concurrency == 0 {
            return invalid("--connect-concurrency must be at least 1");
        }
        if c.payload > MAX_PAYLOAD {
            return invalid(format!(
                "--payload {} is over the limit of {MAX_PAYLOAD} bytes",
                c.payload
            ));
        }
        if let Some(r) = c.rate {
            if !r.is_finite() || r <= 0.0 {
                return invalid(format!("--rate {r}: must be a positive number per second"));
            }
        }
        if c.threads == Some(0) {
            return invalid("--threads must be at least 1");
        }
        if scenario != Scenario::Idle && scenario != Scenario::Burst && c.duration.is_zero() {
            return invalid("--duration must be more than 0");
        }
        if in_flight == 0 {
            return invalid("--in-flight must be at least 1");
        }
        if c.timeout.is_zero() {
            return invalid("--timeout must be more than 0");
        }
        let load = match scenario {
            Scenario::Idle => {
                if c.rate.is_some() || c.closed_loop {
                    return invalid("idle sends nothing: --rate and --closed-loop do not apply");
                }
                Load::None
            }
            Scenario::Burst => {
                if c.rate.is_some() || c.closed_loop {
                    return invalid(
                        "burst publishes as fast as it can: use fanout for --rate or --closed-loop",
                    );
                }
                if messages == 0 {
                    return invalid("--messages must be at least 1");
                }
                Load::Burst
            }
            Scenario::Chat => match c.rate {
                Some(r) => Load::Rate(r),
                None if c.closed_loop => {
                    return invalid("chat is open loop: give --rate (user actions per second)")
                }
                // One action per user every 5 s: a busy chat.
                None => Load::Rate((c.connections as f64 / 5.0).max(1.0)),
            },
            _ => match c.rate {
                Some(r) => Load::Rate(r),
                None => Load::Closed { in_flight },
            },
        };
        let (mut rooms, mut publishers) = (1, 1);
        if let Some(ra) = room_args {
            rooms = ra.rooms;
            publishers = ra.publishers.unwrap_or(ra.rooms);
            if rooms == 0 {
                return invalid("--rooms must be at least 1");
            }
            if publishers < rooms {
                return invalid(format!(
                    "--publishers {publishers} is less than --rooms {rooms}: publisher j sends to room j % rooms, so every room needs one"
                ));
            }
            if rooms > c.connections {
                return invalid(format!(
                    "--rooms {rooms} is more than --connections {}: some rooms would have no subscriber",
                    c.connections
                ));
            }
            if c.protocol == Protocol::Ws && rooms > 1 && c.url.contains('?') {
                return invalid(
                    "--url must not carry a query: the room goes there (/broadcast?room=NAME)",
                );
            }
        }
        if let Some(chat_rooms) = chat_rooms {
            if c.protocol == Protocol::Ws {
                return invalid(
                    "chat joins and leaves rooms at run time, which raw WebSocket has no way to say: use --protocol sio or sio-polling",
                );
            }
            rooms = chat_rooms.unwrap_or((c.connections / 20).max(1));
            if rooms == 0 {
                return invalid("--rooms must be at least 1");
            }
        }
        Ok(Self {
            scenario,
            endpoint,
            endpoints,
            url: c.url.clone(),
            connections: c.connections,
            load,
            payload: c.payload,
            duration: c.duration,
            ramp_up: c.ramp_up,
            connect_concurrency: c.connect_concurrency,
            rooms,
            publishers,
            messages,
            heartbeat: None,
            seed: 1,
            server_pids: c.server_pid.clone(),
            watch_pids: c.watch_pid.clone(),
            timeout: c.timeout,
            drain: c.drain,
            progress: !c.no_progress,
            label: c.label.clone(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("10"), Ok(Duration::from_secs(10)));
        assert_eq!(parse_duration("0.5"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("250ms"), Ok(Duration::from_millis(250)));
        assert_eq!(parse_duration("3s"), Ok(Duration::from_secs(3)));
        assert_eq!(parse_duration("2m"), Ok(Duration::from_secs(120)));
        assert!(parse_duration("-1").is_err());
        assert!(parse_duration("ten").is_err());
        assert!(parse_duration("1e99").is_err());
        assert!(parse_duration("NaN").is_err());
    }
}
