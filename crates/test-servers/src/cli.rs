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
}

/// The server modes.
#[derive(Debug, Subcommand)]
pub enum Mode {
    /// Echo every text and binary message back unchanged; answer pings; honour close.
    Echo(EchoArgs),
    /// A JSON-RPC 2.0 server: echo, add, sleep, fail, ticks and the specification's examples.
    Rpc(RpcArgs),
}

impl Mode {
    /// The mode's name, as used on the command line and in the ready line.
    pub fn name(&self) -> &'static str {
        match self {
            Mode::Echo(_) => "echo",
            Mode::Rpc(_) => "rpc",
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

    /// Most requests in one batch; a larger batch is answered with -32600.
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

    /// Shut down gracefully when standard input reaches end of file (lets a parent
    /// process stop the server by closing the pipe, and stops it if the parent dies).
    #[arg(long)]
    pub exit_on_stdin_eof: bool,
}

impl ServerArgs {
    /// The idle timeout, or `None` when disabled.
    pub fn idle_timeout(&self) -> Option<Duration> {
        (!self.idle_timeout.is_zero()).then_some(self.idle_timeout)
    }
}

/// Parses a human duration such as `10s`, `250ms` or `5m`.
fn parse_duration(text: &str) -> Result<Duration, String> {
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
        assert!(
            Cli::try_parse_from(["test-servers", "echo", "--handshake-timeout", "soon"]).is_err()
        );
    }
}
