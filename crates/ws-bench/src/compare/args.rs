//! `compare`'s command line: the scenario, what each slice sends, the contenders and the
//! slice plan.

use std::path::PathBuf;

use clap::{Args, ValueEnum};

/// What the contenders are compared on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum Scenario {
    /// Sequential round trips (one message, wait for its echo): p50, p99 per slice.
    Rtt,
    /// Pipelined messages into a sink; a slice ends when the sink confirms all arrived.
    OneWay,
    /// Pipelined messages echoed back, `--window` in flight.
    Echo,
    /// Connect + upgrade (raw TCP: connect only), one at a time: p50 per slice. The close
    /// that follows is not timed.
    Connect,
}

impl Scenario {
    pub(crate) fn name(self) -> &'static str {
        match self {
            Scenario::Rtt => "rtt",
            Scenario::OneWay => "one-way",
            Scenario::Echo => "echo",
            Scenario::Connect => "connect",
        }
    }
}

/// One contender: a client implementation against a server.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum ContenderKind {
    /// ws-client against `test-servers perf --threads 1` (the reference of every ratio).
    #[value(name = "ws-client")]
    WsClient,
    /// Raw TCP, 4-byte length prefixes, against `ws-bench serve tcp-echo` / `tcp-count-sink`:
    /// one write per whole message, small messages gathered and written once per chunk.
    Tcp,
    /// Bare tokio-tungstenite (`feed`, then `flush` once per chunk) against test-servers perf.
    Tungstenite,
    /// fastwebsockets (its hyper handshake, then frames on the bare TCP stream, writes
    /// buffered and flushed once per chunk) against test-servers perf.
    Fastwebsockets,
    /// ws-client against `ws-bench serve fws-echo` / `fws-sink`, a fastwebsockets server:
    /// ws-client's ratio to this one compares the servers.
    #[value(name = "ws-client@fws-server")]
    WsClientFwsServer,
}

impl ContenderKind {
    pub(crate) fn name(self) -> &'static str {
        match self {
            ContenderKind::WsClient => "ws-client",
            ContenderKind::Tcp => "tcp",
            ContenderKind::Tungstenite => "tungstenite",
            ContenderKind::Fastwebsockets => "fastwebsockets",
            ContenderKind::WsClientFwsServer => "ws-client@fws-server",
        }
    }
}

#[derive(Debug, Args)]
pub(crate) struct CompareArgs {
    #[arg(value_enum)]
    pub(crate) scenario: Scenario,
    /// Payload bytes per message.
    #[arg(long, default_value_t = 16)]
    pub(crate) size: usize,
    /// Echo: most messages in flight; a quarter of it goes out per flush.
    #[arg(long, default_value_t = 256, value_parser = clap::value_parser!(u32).range(4..))]
    pub(crate) window: u32,
    /// The contenders, ws-client first (every ratio is ws-client's figure over another's).
    #[arg(
        long,
        value_enum,
        value_delimiter = ',',
        default_value = "ws-client,tcp,tungstenite,fastwebsockets"
    )]
    pub(crate) contenders: Vec<ContenderKind>,
    /// wss://: the WebSocket servers run with TLS (test-servers perf --tls, its CA trusted
    /// by every client); contenders ws-client and tungstenite (with rustls) only.
    #[arg(long)]
    pub(crate) tls: bool,
    #[command(flatten)]
    pub(crate) plan: crate::interleave::Plan,
    /// The test-servers executable [default: the one beside this ws-bench].
    #[arg(long)]
    pub(crate) server_bin: Option<PathBuf>,
    #[command(flatten)]
    pub(crate) common: crate::cli::CommonArgs,
}
