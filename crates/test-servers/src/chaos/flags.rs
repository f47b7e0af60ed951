//! The fault flags of `test-servers chaos`: the fault set in force at start-up, with the
//! names and limits of the control API's JSON fields (`--latency-ms` is `latency_ms`).

use clap::Args;

use super::faults::{
    Direction, Faults, MAX_BANDWIDTH_KBPS, MAX_DELAY_MS, MAX_SLICE_BYTES, MAX_TIMER_MS,
};

/// The fault flags of `test-servers chaos`: the state at start-up.
#[derive(Debug, Clone, Default, Args)]
pub struct FaultFlags {
    /// Delay added to every chunk of bytes, in milliseconds, in the ways --direction names.
    #[arg(long, default_value_t = 0, value_parser = clap::value_parser!(u64).range(0..=MAX_DELAY_MS))]
    pub latency_ms: u64,

    /// Each chunk's delay varies by up to this many milliseconds either side of the latency.
    #[arg(long, default_value_t = 0, value_parser = clap::value_parser!(u64).range(0..=MAX_DELAY_MS))]
    pub jitter_ms: u64,

    /// Which ways latency, jitter, bandwidth and the slicer apply to.
    #[arg(long, value_enum, default_value_t = Direction::Both)]
    pub direction: Direction,

    /// Bandwidth limit per connection and way, in kilobits per second (1000 = 125 KB/s).
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..=MAX_BANDWIDTH_KBPS))]
    pub bandwidth_kbps: Option<u64>,

    /// Write what is forwarded in pieces of at most this many bytes.
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..=MAX_SLICE_BYTES))]
    pub slice_bytes: Option<u64>,

    /// Pause after each slicer piece, in milliseconds.
    #[arg(long, default_value_t = 0, requires = "slice_bytes", value_parser = clap::value_parser!(u64).range(0..=MAX_DELAY_MS))]
    pub slice_delay_ms: u64,

    /// Reset (RST) a connection once this many bytes, both ways together, were forwarded.
    #[arg(long)]
    pub reset_after_bytes: Option<u64>,

    /// Reset (RST) a connection this many milliseconds after it was accepted.
    #[arg(long, value_parser = clap::value_parser!(u64).range(0..=MAX_TIMER_MS))]
    pub reset_after_ms: Option<u64>,

    /// Close (FIN) a connection once this many bytes, both ways together, were forwarded.
    #[arg(long)]
    pub close_after_bytes: Option<u64>,

    /// Forward nothing and keep the sockets open (a half-open connection).
    #[arg(long)]
    pub black_hole: bool,

    /// Start down: new connections are reset as soon as they are accepted.
    #[arg(long)]
    pub down: bool,
}

impl From<&FaultFlags> for Faults {
    fn from(flags: &FaultFlags) -> Self {
        Faults {
            latency_ms: flags.latency_ms,
            jitter_ms: flags.jitter_ms,
            direction: flags.direction,
            bandwidth_kbps: flags.bandwidth_kbps,
            slice_bytes: flags.slice_bytes,
            slice_delay_ms: flags.slice_delay_ms,
            reset_after_bytes: flags.reset_after_bytes,
            reset_after_ms: flags.reset_after_ms,
            close_after_bytes: flags.close_after_bytes,
            black_hole: flags.black_hole,
            down: flags.down,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_give_the_same_fault_set_as_json() {
        use clap::Parser;
        let cli = crate::cli::Cli::try_parse_from([
            "test-servers",
            "chaos",
            "--upstream",
            "db.example:5432",
            "--latency-ms",
            "50",
            "--jitter-ms",
            "10",
            "--direction",
            "downstream",
            "--bandwidth-kbps",
            "1000",
            "--slice-bytes",
            "16",
            "--slice-delay-ms",
            "1",
            "--reset-after-bytes",
            "7",
            "--reset-after-ms",
            "9",
            "--close-after-bytes",
            "8",
            "--black-hole",
        ])
        .unwrap();
        let crate::cli::Mode::Chaos(args) = cli.mode else {
            panic!("parsed the wrong mode")
        };
        let json = Faults::from_json(
            br#"{"latency_ms":50,"jitter_ms":10,"direction":"downstream","bandwidth_kbps":1000,
                 "slice_bytes":16,"slice_delay_ms":1,"reset_after_bytes":7,"reset_after_ms":9,
                 "close_after_bytes":8,"black_hole":true}"#,
        );
        assert_eq!(Faults::from(&args.faults), json.unwrap());
        assert_eq!(args.port, 9002);
        assert_eq!(args.control_port, 0);
    }
}
