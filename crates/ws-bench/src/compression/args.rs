//! The command line of `ws-bench compression`: where the server is, the mode, the payload
//! sizes, the contenders (deflate settings) and the slices.

use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, ValueEnum};

use crate::cli::ThroughputMode;

/// A contender of `compression`: the client's permessage-deflate setting.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum DeflateChoice {
    /// No permessage-deflate offered.
    Off,
    /// `DeflateConfig::default()`: context takeover both ways, level 1.
    On,
    /// `DeflateConfig::no_context_takeover()`: each message compressed on its own.
    #[value(name = "no-context-takeover")]
    NoContextTakeover,
}

impl DeflateChoice {
    /// The name in reports.
    pub(crate) fn name(self) -> &'static str {
        match self {
            DeflateChoice::Off => "off",
            DeflateChoice::On => "on",
            DeflateChoice::NoContextTakeover => "no-context-takeover",
        }
    }
}

/// `compression`: one current-thread runtime, so the client's CPU time is one thread's work.
#[derive(Debug, Args)]
pub(crate) struct CompressionArgs {
    /// A running server's endpoint (a sink for one-way, an echo for echo) that every
    /// contender connects to; its CPU time and wire bytes are then unknown. Without it, a
    /// `test-servers perf` is started for each contender and size.
    #[arg(long, conflicts_with = "server_bin")]
    pub(crate) url: Option<String>,
    /// The test-servers executable to start (default: the one beside ws-bench).
    #[arg(long)]
    pub(crate) server_bin: Option<PathBuf>,
    /// One-way into `/sink` (the client compresses, the server inflates) or echo through
    /// `/echo` (both do both).
    #[arg(long, value_enum, default_value_t = ThroughputMode::OneWay)]
    pub(crate) mode: ThroughputMode,
    /// JSON payload sizes in bytes, one case each (at least 64).
    #[arg(long, value_delimiter = ',', default_values_t = [1024, 65536])]
    pub(crate) sizes: Vec<usize>,
    /// The contenders, in the order they take their slices; `off` is the base of the ratios.
    #[arg(long, value_enum, value_delimiter = ',',
          default_values_t = [DeflateChoice::Off, DeflateChoice::On, DeflateChoice::NoContextTakeover])]
    pub(crate) contenders: Vec<DeflateChoice>,
    #[command(flatten)]
    pub(crate) plan: crate::interleave::Plan,
    /// Bytes in flight in echo mode (at least 4 messages).
    #[arg(long, default_value_t = 256 * 1024)]
    pub(crate) window_bytes: usize,
    /// Print one JSON object instead of the table.
    #[arg(long)]
    pub(crate) json: bool,
    /// Abort the run when no message is done for this long.
    #[arg(long, default_value = "10s", value_parser = humantime::parse_duration)]
    pub(crate) stall_timeout: Duration,
}
