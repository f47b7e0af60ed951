//! The command line: one subcommand per scenario, plus `merge` and the baseline `serve`.

use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand, ValueEnum};

use crate::threshold::Threshold;

/// Load generator and benchmarks for any ws:// server, built on ws-client, with raw TCP and
/// bare tokio-tungstenite baselines to compare against.
///
/// Results go to stdout (a table, or one JSON object with --json); progress and notes go to
/// stderr. Exit status: 0 ok, 1 runtime failure, 2 usage error, 3 a --threshold violated
/// (soak: something lost, corrupted or wrong).
#[derive(Debug, Parser)]
#[command(name = "ws-bench", version, about, long_about = None)]
pub(crate) struct Cli {
    #[command(subcommand)]
    pub(crate) command: Command,
}

#[derive(Debug, Subcommand)]
pub(crate) enum Command {
    /// Sequential round trips: send one message, wait for its echo, repeat.
    Rtt(RttArgs),
    /// Pipelined messages: one-way into a sink, or echo with a window of messages in flight.
    Throughput(ThroughputArgs),
    /// Connect + handshake + close, C at a time: latency and rate.
    Connect(ConnectArgs),
    /// Open N idle connections and hold them.
    Idle(IdleArgs),
    /// JSON-RPC calls with W in flight on one connection.
    Rpc(RpcArgs),
    /// The RPC figures in alternating slices of one run: ws-client's RpcClient against
    /// jsonrpsee's client, test-servers rpc against a jsonrpsee server, and RPC calls/s
    /// against ws-client's own 16 B pipelined echo.
    RpcCompare(crate::scenario::rpc_compare::RpcCompareArgs),
    /// N connections each sending at a fixed rate; latency from the intended send time.
    OpenModel(OpenModelArgs),
    /// The resilient connection against a plain one in alternating slices of one run: the
    /// ratio of their rates per slice pair (median, quartiles, range).
    ResilientCost(ResilientCostArgs),
    /// permessage-deflate off against on (and without context takeover) on JSON payloads,
    /// in alternating slices of one run: wire bytes, MB/s and CPU per message both sides.
    Compression(crate::compression::args::CompressionArgs),
    /// Echo clients on resilient connections and RPC clients at fixed rates for a while
    /// (meant to run through `test-servers chaos`): every message and call accounted for.
    Soak(SoakArgs),
    /// Merge the --json outputs of several runs of one scenario (e.g. from several machines);
    /// --segment runs are checked to make up one whole run.
    Merge(MergeArgs),
    /// Run a baseline server (prints a JSON ready line on stdout, like test-servers).
    Serve(ServeArgs),
    /// Contenders (ws-client, raw TCP, tokio-tungstenite, fastwebsockets) in alternating
    /// slices of one run, on servers it starts: ws-client's figure over each other's per
    /// round (median, quartiles, range).
    Compare(crate::compare::args::CompareArgs),
    /// ws-client's batch send path against its per-message path and raw TCP, in
    /// alternating slices of one run (median ratio, quartiles, range).
    BatchCost(crate::scenario::batch_cost::BatchCostArgs),
}

/// Which client implementation drives the connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum ClientKind {
    /// This workspace's client library.
    #[value(name = "ws-client")]
    WsClient,
    /// Bare tokio-tungstenite with its default configuration (TCP_NODELAY on).
    Tungstenite,
    /// Raw tokio TCP, each message prefixed by its 4-byte big-endian length.
    Tcp,
}

impl ClientKind {
    pub(crate) fn name(self) -> &'static str {
        match self {
            ClientKind::WsClient => "ws-client",
            ClientKind::Tungstenite => "tungstenite",
            ClientKind::Tcp => "tcp",
        }
    }
}

/// Options every scenario shares: output, thresholds, runtime.
#[derive(Debug, Clone, Args)]
pub(crate) struct CommonArgs {
    /// Print one JSON object (figures and serialized histograms) instead of a table.
    #[arg(long)]
    pub(crate) json: bool,

    /// Fail (exit 3) unless the run meets this, e.g. 'p99<5ms', 'rate>100000'. Metrics:
    /// p50, p90, p99, p99.9, max, mean (latency, with a unit ns/us/ms/s), rate (per second)
    /// and ratio (resilient-cost's median ratio, e.g. 'ratio>=0.95').
    #[arg(long = "threshold", value_name = "EXPR")]
    pub(crate) thresholds: Vec<Threshold>,

    /// Runtime worker threads; 1 runs everything on one thread (the fairest on a small box).
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u16).range(1..))]
    pub(crate) threads: u16,

    /// Abort the run when no progress is made for this long.
    #[arg(long, default_value = "10s", value_parser = humantime::parse_duration)]
    pub(crate) stall_timeout: Duration,
}

/// How long a scenario runs: a number of operations or a duration (not both).
#[derive(Debug, Clone, Args)]
pub(crate) struct BudgetArgs {
    /// Operations to measure (messages, calls, ...).
    #[arg(long, conflicts_with = "duration")]
    pub(crate) count: Option<u64>,

    /// How long to measure, e.g. 10s, 1m.
    #[arg(long, value_parser = humantime::parse_duration)]
    pub(crate) duration: Option<Duration>,
}

#[derive(Debug, Args)]
pub(crate) struct RttArgs {
    /// Server URL (ws://..., or host:port / tcp://host:port for --client tcp).
    pub(crate) url: String,
    /// Payload bytes per message.
    #[arg(long, default_value_t = 16)]
    pub(crate) size: usize,
    #[arg(long, value_enum, default_value_t = ClientKind::WsClient)]
    pub(crate) client: ClientKind,
    /// Unmeasured round trips before measuring.
    #[arg(long, default_value_t = 1000)]
    pub(crate) warmup: u64,
    #[command(flatten)]
    pub(crate) budget: BudgetArgs,
    #[command(flatten)]
    pub(crate) common: CommonArgs,
}

/// What happens to pipelined messages at the server.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum ThroughputMode {
    /// The server discards them; the run ends when the server answers our close.
    OneWay,
    /// The server echoes them; another task receives the echoes.
    Echo,
}

/// What `throughput` and `resilient-cost` send: pipelined messages, one-way or echoed.
#[derive(Debug, Clone, Args)]
pub(crate) struct PipelineArgs {
    /// Server URL: a sink for one-way, an echo server for echo.
    pub(crate) url: String,
    /// Payload bytes per message.
    #[arg(long, default_value_t = 16)]
    pub(crate) size: usize,
    #[arg(long, value_enum, default_value_t = ThroughputMode::OneWay)]
    pub(crate) mode: ThroughputMode,
    /// Echo mode: most messages in flight (sent, echo not yet received). A quarter of it
    /// goes out per flush.
    #[arg(long, default_value_t = 256, value_parser = clap::value_parser!(u32).range(4..))]
    pub(crate) window: u32,
}

impl PipelineArgs {
    /// The mode's name in reports.
    pub(crate) fn mode_name(&self) -> &'static str {
        match self.mode {
            ThroughputMode::OneWay => "one-way",
            ThroughputMode::Echo => "echo",
        }
    }
}

#[derive(Debug, Args)]
pub(crate) struct ThroughputArgs {
    #[command(flatten)]
    pub(crate) pipeline: PipelineArgs,
    #[arg(long, value_enum, default_value_t = ClientKind::WsClient)]
    pub(crate) client: ClientKind,
    #[command(flatten)]
    pub(crate) budget: BudgetArgs,
    #[command(flatten)]
    pub(crate) common: CommonArgs,
}

#[derive(Debug, Args)]
pub(crate) struct ConnectArgs {
    /// Server URL.
    pub(crate) url: String,
    /// Connections to open and close.
    #[arg(long, default_value_t = 1000)]
    pub(crate) count: u64,
    /// Connections in progress at once.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..))]
    pub(crate) concurrency: u32,
    #[arg(long, value_enum, default_value_t = ClientKind::WsClient)]
    pub(crate) client: ClientKind,
    /// Spread connections over source addresses 127.0.0.1 ..= 127.0.0.N (not with ws-client).
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u8).range(1..))]
    pub(crate) source_addrs: u8,
    #[command(flatten)]
    pub(crate) segment: crate::segment::SegmentArgs,
    #[command(flatten)]
    pub(crate) common: CommonArgs,
}

#[derive(Debug, Args)]
pub(crate) struct IdleArgs {
    /// Server URL.
    pub(crate) url: String,
    /// Connections to open and hold.
    #[arg(long, default_value_t = 1000)]
    pub(crate) connections: u64,
    /// How long to hold them once opened.
    #[arg(long, default_value = "10s", value_parser = humantime::parse_duration)]
    pub(crate) hold: Duration,
    /// Connection attempts in progress at once.
    #[arg(long, default_value_t = 64, value_parser = clap::value_parser!(u32).range(1..))]
    pub(crate) concurrency: u32,
    /// Spread connections over source addresses 127.0.0.1 ..= 127.0.0.N; above 1 the
    /// connections are made with tokio-tungstenite set up like ws-client (4 KiB read buffer).
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u8).range(1..))]
    pub(crate) source_addrs: u8,
    #[command(flatten)]
    pub(crate) segment: crate::segment::SegmentArgs,
    #[command(flatten)]
    pub(crate) common: CommonArgs,
}

/// The JSON-RPC method each call makes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum RpcMethodArg {
    /// `add` with `[1,2]`, expecting 3.
    Add,
    /// `echo` with `[1,2]`, expecting it back.
    Echo,
}

/// Which JSON-RPC client makes the calls.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum RpcClientKind {
    /// ws-client's RpcClient.
    #[value(name = "ws-client")]
    WsClient,
    /// Bare tokio-tungstenite + serde_json, calls matched by id (rpc_baseline.rs).
    Tungstenite,
    /// jsonrpsee's WebSocket client (jsonrpsee_rpc.rs).
    Jsonrpsee,
}

impl RpcClientKind {
    pub(crate) fn name(self) -> &'static str {
        match self {
            RpcClientKind::WsClient => "ws-client",
            RpcClientKind::Tungstenite => "tungstenite",
            RpcClientKind::Jsonrpsee => "jsonrpsee",
        }
    }
}

#[derive(Debug, Args)]
pub(crate) struct RpcArgs {
    /// URL of a JSON-RPC server (e.g. test-servers rpc).
    pub(crate) url: String,
    /// Calls in flight at once on the one connection.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..))]
    pub(crate) window: u32,
    #[arg(long, value_enum, default_value_t = RpcMethodArg::Add)]
    pub(crate) method: RpcMethodArg,
    #[arg(long, value_enum, default_value_t = RpcClientKind::WsClient)]
    pub(crate) client: RpcClientKind,
    #[command(flatten)]
    pub(crate) budget: BudgetArgs,
    #[command(flatten)]
    pub(crate) common: CommonArgs,
}

#[derive(Debug, Args)]
pub(crate) struct OpenModelArgs {
    /// URL of an echo server.
    pub(crate) url: String,
    /// Connections, each sending at --rate.
    #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u32).range(1..))]
    pub(crate) connections: u32,
    /// Messages per second per connection.
    #[arg(long, default_value_t = 100.0)]
    pub(crate) rate: f64,
    /// Connections start evenly spread over this time.
    #[arg(long, default_value = "1s", value_parser = humantime::parse_duration)]
    pub(crate) ramp_up: Duration,
    /// How long every connection sends after the ramp-up.
    #[arg(long, default_value = "10s", value_parser = humantime::parse_duration)]
    pub(crate) duration: Duration,
    /// Payload bytes per message (at least 8: it carries the intended send time).
    #[arg(long, default_value_t = 16, value_parser = clap::value_parser!(u64).range(8..))]
    pub(crate) size: u64,
    /// The client (tcp: against `ws-bench serve tcp-echo`, the kernel's share alone).
    #[arg(long, value_enum, default_value_t = ClientKind::WsClient)]
    pub(crate) client: ClientKind,
    #[command(flatten)]
    pub(crate) segment: crate::segment::SegmentArgs,
    #[command(flatten)]
    pub(crate) common: CommonArgs,
}

/// `soak`: prints a `progress` JSON line every second and a `summary` line at the end.
#[derive(Debug, Args)]
pub(crate) struct SoakArgs {
    /// URL of an echo server (usually a chaos proxy in front of one).
    #[arg(long)]
    pub(crate) echo_url: Option<String>,
    /// URL of a JSON-RPC server with `add` and `echo` (usually behind a chaos proxy).
    #[arg(long)]
    pub(crate) rpc_url: Option<String>,
    /// Echo clients, each on its own `ResilientConnection`.
    #[arg(long, default_value_t = 4)]
    pub(crate) echo_clients: u32,
    /// Messages per second per echo client.
    #[arg(long, default_value_t = 50.0)]
    pub(crate) echo_rate: f64,
    /// RPC clients, each on its own connection.
    #[arg(long, default_value_t = 2)]
    pub(crate) rpc_clients: u32,
    /// Calls per second per RPC client.
    #[arg(long, default_value_t = 20.0)]
    pub(crate) rpc_rate: f64,
    /// Timeout of each RPC call.
    #[arg(long, default_value = "2s", value_parser = humantime::parse_duration)]
    pub(crate) rpc_timeout: Duration,
    /// How long the clients send.
    #[arg(long, default_value = "60s", value_parser = humantime::parse_duration)]
    pub(crate) duration: Duration,
    /// After sending stops, the longest wait for outstanding echoes (the run ends sooner
    /// once every message is accounted for).
    #[arg(long, default_value = "20s", value_parser = humantime::parse_duration)]
    pub(crate) drain: Duration,
    /// Heartbeat interval of the echo clients (a ping after this much time).
    #[arg(long, default_value = "1s", value_parser = humantime::parse_duration)]
    pub(crate) heartbeat_interval: Duration,
    /// Heartbeat timeout of the echo clients (silence after a ping that means dead).
    #[arg(long, default_value = "1s", value_parser = humantime::parse_duration)]
    pub(crate) heartbeat_timeout: Duration,
    /// Runtime worker threads; 1 runs everything on one thread.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u16).range(1..))]
    pub(crate) threads: u16,
}

#[derive(Debug, Args)]
pub(crate) struct ResilientCostArgs {
    /// What both sides send (both connect to the URL; one-way checks the slice's end and
    /// flushes once per quarter window of messages).
    #[command(flatten)]
    pub(crate) pipeline: PipelineArgs,
    #[command(flatten)]
    pub(crate) plan: crate::interleave::Plan,
    /// Send each message on its own (`queue_slice`, `enqueue`) instead of a batch per chunk.
    #[arg(long)]
    pub(crate) per_message: bool,
    #[command(flatten)]
    pub(crate) common: CommonArgs,
}

#[derive(Debug, Args)]
pub(crate) struct MergeArgs {
    /// Files holding the --json output of runs of the same scenario.
    #[arg(required = true)]
    pub(crate) files: Vec<PathBuf>,
    #[command(flatten)]
    pub(crate) common: CommonArgs,
}

/// The baseline servers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum ServeMode {
    /// Raw TCP: writes back every byte it reads.
    TcpEcho,
    /// Raw TCP: reads and discards until the client shuts down its side.
    TcpSink,
    /// Bare tokio-tungstenite: echoes text and binary messages.
    TungsteniteEcho,
    /// Bare tokio-tungstenite: discards every message, answers close.
    TungsteniteSink,
    /// fastwebsockets (hyper upgrade): echoes text and binary messages.
    FwsEcho,
    /// fastwebsockets (hyper upgrade): discards every message, answers ping and close.
    FwsSink,
    /// Raw TCP, 4-byte length prefixes: counts messages; a prefix of 0xffffffff asks for
    /// the count so far (8 bytes back, big-endian).
    TcpCountSink,
    /// jsonrpsee's WebSocket server with `add` and `echo` answering as test-servers rpc.
    JsonrpseeRpc,
}

#[derive(Debug, Args)]
pub(crate) struct ServeArgs {
    #[arg(value_enum)]
    pub(crate) mode: ServeMode,
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1")]
    pub(crate) host: std::net::IpAddr,
    /// Port; 0 picks a free one (see the ready line).
    #[arg(long, default_value_t = 0)]
    pub(crate) port: u16,
    /// Stop when stdin closes (for parent processes).
    #[arg(long)]
    pub(crate) exit_on_stdin_eof: bool,
}
