//! The command line: one subcommand per server mode, and the options every mode shares.

use std::net::IpAddr;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};

/// Real WebSocket servers for testing any client.
///
/// stdout carries machine-readable JSON lines (a `listening` line once the socket accepts,
/// a `stopped` line with counters at exit); stderr carries human logs (set RUST_LOG).
#[derive(Debug, Parser)]
#[command(name = "test-servers", version, about, long_about = None)]
pub struct Cli {
    /// The server to run.
    #[command(subcommand)]
    pub mode: Mode,

    /// Worker threads of the async runtime; 1 runs everything on one thread, which gives
    /// the lowest latency on a small machine (no wake-ups across threads)
    /// [default: one per CPU core].
    #[arg(long, global = true, value_parser = clap::value_parser!(u16).range(1..=1024))]
    pub threads: Option<u16>,
}

/// The server modes.
#[derive(Debug, Subcommand)]
pub enum Mode {
    /// Echo every text and binary message back unchanged; answer pings; honour close.
    Echo(EchoArgs),
    /// A JSON-RPC 2.0 server: echo, add, sleep, fail, ticks and the specification's examples.
    Rpc(RpcArgs),
    /// A benchmark target: /echo, /sink (count and discard), /source?count=N&size=S (push).
    Perf(PerfArgs),
    /// Many cheap connections: / and /idle hold (and echo), /broadcast fans messages out.
    Load(LoadArgs),
    /// A hostile server: the URL path picks an attack (/bad-accept, /reserved-bits...);
    /// --list prints the catalogue.
    Security(SecurityArgs),
    /// A fault-injecting TCP proxy in front of any upstream: latency, bandwidth, slicing,
    /// resets, black holes, refusals; changed while it runs through an HTTP control API.
    Chaos(ChaosArgs),
    /// Not a server: checks that one at --url answers (for container health checks and
    /// init containers); exit status 0 when it does, 1 with the reason when not.
    Healthcheck(crate::healthcheck::HealthcheckArgs),
}

impl Mode {
    /// The mode's name, as used on the command line and in the ready line.
    pub fn name(&self) -> &'static str {
        match self {
            Mode::Echo(_) => "echo",
            Mode::Rpc(_) => "rpc",
            Mode::Perf(_) => "perf",
            Mode::Load(_) => "load",
            Mode::Security(_) => "security",
            Mode::Chaos(_) => "chaos",
            Mode::Healthcheck(_) => "healthcheck",
        }
    }
}

/// Options of `test-servers echo`.
#[derive(Debug, Args)]
pub struct EchoArgs {
    /// Options every server mode shares.
    #[command(flatten)]
    pub server: ServerArgs,
}

/// Options of `test-servers rpc`.
#[derive(Debug, Args)]
pub struct RpcArgs {
    /// Options every server mode shares.
    #[command(flatten)]
    pub server: ServerArgs,

    /// Most requests in one batch; a larger batch is not run: each request in it that has
    /// an id gets error -32600 (in an array, as for any batch), and one more error with id
    /// null stands for its invalid elements, if any.
    #[arg(long, default_value_t = 100, value_parser = clap::value_parser!(u32).range(1..))]
    pub max_batch_size: u32,

    /// Most slow calls (such as `sleep`) running at once per connection; more are
    /// answered with -32000.
    #[arg(long, default_value_t = 4096, value_parser = clap::value_parser!(u32).range(1..))]
    pub max_calls_in_flight: u32,

    /// Most tick subscriptions at once per connection.
    #[arg(long, default_value_t = 64, value_parser = clap::value_parser!(u32).range(1..))]
    pub max_subscriptions: u32,
}

/// Options of `test-servers perf`.
#[derive(Debug, Args)]
pub struct PerfArgs {
    /// Options every server mode shares.
    #[command(flatten)]
    pub server: ServerArgs,

    /// Messages /source sends when the URL has no `count=`.
    #[arg(long, default_value_t = 1000)]
    pub source_count: u64,

    /// Bytes per /source message when the URL has no `size=` (at most --max-message-size).
    #[arg(long, default_value_t = 16)]
    pub source_size: u64,
}

/// Options of `test-servers load`.
#[derive(Debug, Args)]
pub struct LoadArgs {
    /// Options every server mode shares (--read-buffer-size defaults to 128 here).
    #[command(flatten)]
    pub server: ServerArgs,

    /// Messages the /broadcast ring holds; a receiver that falls further behind is closed
    /// with 1008. The ring's memory is at most this times --max-broadcast-size.
    #[arg(long, default_value_t = 1024, value_parser = clap::value_parser!(u32).range(1..=1 << 20))]
    pub broadcast_capacity: u32,

    /// Largest message accepted on /broadcast, in bytes; a larger one is closed with 1009.
    #[arg(long, default_value_t = 64 << 10, value_parser = clap::value_parser!(u64).range(1..=1 << 30))]
    pub max_broadcast_size: u64,
}

/// Options of `test-servers security`.
#[derive(Debug, Args)]
pub struct SecurityArgs {
    /// Options every server mode shares (the message and frame limits, the idle timeout
    /// and the read buffer size do not apply: this server does not play by the rules).
    #[command(flatten)]
    pub server: ServerArgs,

    /// Print the catalogue of scenarios (name, category, attack, what a correct client
    /// does) and exit without listening.
    #[arg(long)]
    pub list: bool,

    /// With --list: print the catalogue as a JSON array.
    #[arg(long, requires = "list")]
    pub json: bool,

    /// Longest time one connection is kept, whatever its scenario (e.g. 60s, 5s).
    #[arg(long, default_value = "60s", value_parser = parse_duration)]
    pub max_scenario_time: Duration,
}

/// Options of `test-servers chaos`: a raw TCP proxy, so none of the WebSocket options apply.
#[derive(Debug, Args)]
pub struct ChaosArgs {
    /// Where to forward connections: a `ws://` or `wss://` URL (its path is kept in the
    /// ready line's `url`) or `host:port`.
    #[arg(long, value_parser = crate::chaos::upstream::Upstream::parse)]
    pub upstream: crate::chaos::upstream::Upstream,

    /// Address to listen on (the control API listens there too).
    #[arg(long, default_value = "127.0.0.1")]
    pub host: IpAddr,

    /// Port to listen on; 0 picks a free ephemeral port (printed in the ready line). The
    /// default sits beside the other modes' 9001.
    #[arg(long, default_value_t = 9002)]
    pub port: u16,

    /// Port of the HTTP control API; 0 (the default) picks a free one, named in the ready
    /// line's `control`.
    #[arg(long, default_value_t = 0)]
    pub control_port: u16,

    /// Most connections proxied at once; more are reset at once.
    #[arg(long, default_value_t = 10_000, value_parser = clap::value_parser!(u32).range(1..))]
    pub max_connections: u32,

    /// Deadline for connecting to the upstream; a client whose upstream connection fails
    /// is reset (e.g. 10s, 500ms).
    #[arg(long, default_value = "10s", value_parser = parse_duration)]
    pub connect_timeout: Duration,

    /// Print a `stats` line on stdout this often (e.g. 1s); 0 prints none.
    #[arg(long, default_value = "0", value_parser = parse_duration)]
    pub stats_interval: Duration,

    /// Shut down when standard input reaches end of file.
    #[arg(long)]
    pub exit_on_stdin_eof: bool,

    /// The faults in force at start-up (the control API changes them later).
    #[command(flatten)]
    pub faults: crate::chaos::flags::FaultFlags,
}

/// Options every server mode shares: where to listen, limits and shutdown.
#[derive(Debug, Clone, Args)]
pub struct ServerArgs {
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1")]
    pub host: IpAddr,

    /// Port to listen on; 0 picks a free ephemeral port (printed in the ready line).
    #[arg(long, default_value_t = 9001)]
    pub port: u16,

    /// Largest message accepted, in bytes; a larger one closes the connection with 1009.
    #[arg(long, default_value_t = 16 << 20, value_parser = clap::value_parser!(u64).range(1..=1 << 30))]
    pub max_message_size: u64,

    /// Largest frame accepted, in bytes (payload); checked from the frame header.
    #[arg(long, default_value_t = 16 << 20, value_parser = clap::value_parser!(u64).range(1..=1 << 30))]
    pub max_frame_size: u64,

    /// Most connections served at once; more are answered with HTTP 503.
    #[arg(long, default_value_t = 10_000, value_parser = clap::value_parser!(u32).range(1..))]
    pub max_connections: u32,

    /// Deadline for a client to complete the upgrade handshake (e.g. 10s, 500ms).
    #[arg(long, default_value = "10s", value_parser = parse_duration)]
    pub handshake_timeout: Duration,

    /// Close connections that send nothing for this long (e.g. 5m); 0 never closes them.
    #[arg(long, default_value = "5m", value_parser = parse_duration)]
    pub idle_timeout: Duration,

    /// Bytes tungstenite reads per system call, allocated up front for every connection
    /// (much of what an idle connection costs) [default: 4096; 128 in load mode].
    #[arg(long, value_parser = clap::value_parser!(u32).range(16..=1 << 24))]
    pub read_buffer_size: Option<u32>,

    /// Print a `stats` line on stdout this often (e.g. 1s): counters, rates over the
    /// interval and resident memory; 0 prints none.
    #[arg(long, default_value = "0", value_parser = parse_duration)]
    pub stats_interval: Duration,

    /// Shut down gracefully when standard input reaches end of file (lets a parent
    /// process stop the server by closing the pipe, and stops it if the parent dies).
    #[arg(long)]
    pub exit_on_stdin_eof: bool,

    /// Accept TLS (wss://) with a throw-away CA and server certificate made at start-up;
    /// the ready line names the CA's PEM file in `ca_cert`.
    #[arg(long)]
    pub tls: bool,

    /// Names and addresses the --tls certificate covers, comma-separated
    /// [default: localhost,127.0.0.1,::1 and --host].
    #[arg(long, value_delimiter = ',', requires = "tls")]
    pub tls_names: Vec<String>,

    /// Accept upgrades only from this `Origin` (e.g. https://app.example; repeat for
    /// more); others, and requests without one, get HTTP 403 [default: any origin].
    /// Scheme and host are compared case-insensitively, the rest exactly.
    // The doc comment is also the --help text, where a URL reads better bare.
    #[allow(rustdoc::bare_urls)]
    #[arg(long = "allowed-origin", value_name = "ORIGIN", value_parser = ServerArgs::parse_origin)]
    pub allowed_origins: Vec<String>,

    /// Decline permessage-deflate (RFC 7692). Without it, echo, perf's /echo and /sink and
    /// rpc accept a client's offer (narrowed to this server's policy) and compress what
    /// they send; the other modes and paths never compress.
    #[arg(long)]
    pub no_deflate: bool,

    /// With permessage-deflate, answer no context takeover both ways: each message is
    /// compressed on its own, so no compression memory is kept per connection between
    /// messages (a lower ratio, and more CPU per message).
    #[arg(long, conflicts_with = "no_deflate")]
    pub deflate_no_context_takeover: bool,

    /// Largest total size of an upgrade request's headers (names plus values), in bytes;
    /// a larger request gets HTTP 431. tungstenite itself drops requests with more than
    /// 124 headers or over 64 KiB, without an answer.
    #[arg(long, default_value_t = 8192, value_parser = clap::value_parser!(u32).range(1..=65536))]
    pub max_header_bytes: u32,
}

impl ServerArgs {
    /// The idle timeout, or `None` when disabled.
    pub fn idle_timeout(&self) -> Option<Duration> {
        (!self.idle_timeout.is_zero()).then_some(self.idle_timeout)
    }

    /// The permessage-deflate policy, or `None` with `--no-deflate`.
    pub fn deflate(&self) -> Option<ws_client::DeflateConfig> {
        if self.no_deflate {
            None
        } else if self.deflate_no_context_takeover {
            Some(ws_client::DeflateConfig::no_context_takeover())
        } else {
            Some(ws_client::DeflateConfig::default())
        }
    }

    /// The stats interval, or `None` when no `stats` lines are wanted.
    pub fn stats_interval(&self) -> Option<Duration> {
        (!self.stats_interval.is_zero()).then_some(self.stats_interval)
    }

    /// Parses an `--allowed-origin`: `scheme://host[:port]`, kept in the form
    /// [`crate::admission::normalize_origin`] gives so that it compares with `Origin` headers.
    fn parse_origin(text: &str) -> Result<String, String> {
        match text.split_once("://") {
            Some((scheme, host))
                if !scheme.is_empty() && !host.is_empty() && !host.contains('/') =>
            {
                Ok(crate::admission::normalize_origin(text))
            }
            _ => Err("write an origin as scheme://host[:port], e.g. https://app.example".into()),
        }
    }
}

/// Parses a human duration such as `10s`, `250ms` or `5m`.
pub(crate) fn parse_duration(text: &str) -> Result<Duration, String> {
    humantime::parse_duration(text).map_err(|e| format!("{e} (write e.g. 10s, 250ms or 5m)"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn command_line_is_well_formed() {
        Cli::command().debug_assert();
    }

    #[test]
    fn durations_parse() {
        let cli = Cli::try_parse_from([
            "test-servers",
            "echo",
            "--port",
            "0",
            "--idle-timeout",
            "0s",
        ])
        .unwrap();
        let Mode::Echo(args) = cli.mode else {
            panic!("parsed the wrong mode")
        };
        assert_eq!(args.server.idle_timeout(), None);
        assert_eq!(args.server.handshake_timeout, Duration::from_secs(10));
        assert_eq!(args.server.stats_interval(), None);
        assert_eq!(args.server.read_buffer_size, None);
        assert!(
            Cli::try_parse_from(["test-servers", "echo", "--handshake-timeout", "soon"]).is_err()
        );
    }

    #[test]
    fn threads_go_before_or_after_the_mode() {
        let parse = |args: &[&str]| Cli::try_parse_from(args).map(|cli| cli.threads);
        assert_eq!(parse(&["test-servers", "echo"]).unwrap(), None);
        assert_eq!(
            parse(&["test-servers", "--threads", "1", "echo"]).unwrap(),
            Some(1)
        );
        assert_eq!(
            parse(&["test-servers", "perf", "--threads", "4"]).unwrap(),
            Some(4)
        );
        assert!(parse(&["test-servers", "echo", "--threads", "0"]).is_err());
    }

    #[test]
    fn perf_and_load_options_parse() {
        let cli = Cli::try_parse_from([
            "test-servers",
            "perf",
            "--source-count",
            "5",
            "--stats-interval",
            "250ms",
        ])
        .unwrap();
        let Mode::Perf(args) = cli.mode else {
            panic!("parsed the wrong mode")
        };
        assert_eq!(args.source_count, 5);
        assert_eq!(args.source_size, 16);
        assert_eq!(
            args.server.stats_interval(),
            Some(Duration::from_millis(250))
        );
        let cli =
            Cli::try_parse_from(["test-servers", "load", "--read-buffer-size", "256"]).unwrap();
        let Mode::Load(args) = cli.mode else {
            panic!("parsed the wrong mode")
        };
        assert_eq!(args.server.read_buffer_size, Some(256));
        assert_eq!(args.broadcast_capacity, 1024);
        assert!(Cli::try_parse_from(["test-servers", "load", "--read-buffer-size", "8"]).is_err());
    }

    #[test]
    fn security_options_parse() {
        let cli = Cli::try_parse_from(["test-servers", "security", "--list", "--json"]).unwrap();
        let Mode::Security(args) = cli.mode else {
            panic!("parsed the wrong mode")
        };
        assert!(args.list && args.json);
        assert_eq!(args.max_scenario_time, Duration::from_secs(60));
        assert!(Cli::try_parse_from(["test-servers", "security", "--json"]).is_err());
    }
}
