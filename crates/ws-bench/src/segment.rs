//! `--segment I/N`: one of N workers' share of a scenario (like k6's execution segments),
//! the rule that splits connections and concurrency between the workers, and the check that
//! a split gives every worker something to do.
//!
//! The rule is round robin: connection k (counting from 0, in the single-machine run's
//! order) belongs to segment k mod N. Segment I therefore has `ceil((total - I) / N)` of
//! them (10 over 4: 3, 3, 2, 2), the segments together have every one exactly once, and
//! the connections of each segment are spread evenly over the ramp-up instead of taking a
//! quarter of it. Rates are per connection, so the rate follows the connections.

use clap::error::ErrorKind;
use clap::{Args, CommandFactory};
use serde::{Deserialize, Serialize};

use crate::cli::{Cli, Command};

/// Segment `index` of `count` (0 <= index < count; a report file that says otherwise is
/// refused when it is read).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "SegmentFields")]
pub(crate) struct Segment {
    pub(crate) index: u32,
    pub(crate) count: u32,
}

/// A segment as a report file has it, before it is checked.
#[derive(Deserialize)]
struct SegmentFields {
    index: u32,
    count: u32,
}

impl TryFrom<SegmentFields> for Segment {
    type Error = String;

    fn try_from(fields: SegmentFields) -> Result<Self, String> {
        Segment::new(fields.index, fields.count)
    }
}

impl std::fmt::Display for Segment {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.index, self.count)
    }
}

impl Segment {
    /// The whole run: segment 0 of 1.
    pub(crate) const WHOLE: Segment = Segment { index: 0, count: 1 };

    /// Parses `I/N` (clap's value parser for `--segment`).
    pub(crate) fn parse(text: &str) -> Result<Segment, String> {
        let usage = "expected I/N, segment I of N counting from 0 (e.g. 0/4 .. 3/4)";
        let (index, count) = text
            .split_once('/')
            .ok_or_else(|| format!("{text:?} has no '/': {usage}"))?;
        let number = |part: &str, what: &str| {
            part.trim()
                .parse::<u32>()
                .map_err(|_| format!("{what} {part:?} is not a whole number: {usage}"))
        };
        Segment::new(number(index, "the index")?, number(count, "the count")?)
            .map_err(|e| format!("{e}: {usage}"))
    }

    /// Segment `index` of `count`, if there is such a segment.
    fn new(index: u32, count: u32) -> Result<Segment, String> {
        if count == 0 {
            return Err("the count must be at least 1 (0/1 is the whole run)".into());
        }
        if index >= count {
            return Err(format!(
                "index {index} is not below the count {count}: the segments of {count} are \
                 0/{count} .. {}/{count}",
                count - 1
            ));
        }
        Ok(Segment { index, count })
    }

    /// Whether this is a part of a run rather than the whole of it.
    pub(crate) fn is_part(self) -> bool {
        self.count > 1
    }

    /// This segment's share of `total` items (connections, attempts in flight, operations):
    /// the items k < total with k mod N = I.
    pub(crate) fn share(self, total: u64) -> u64 {
        let (index, count) = (u64::from(self.index), u64::from(self.count));
        total.saturating_sub(index).div_ceil(count)
    }

    /// The single-machine index of this segment's `local`-th item.
    pub(crate) fn global(self, local: u64) -> u64 {
        u64::from(self.index) + u64::from(self.count) * local
    }

    /// Refuses a split that leaves a segment without any of `total` (named by its `flag`).
    /// The whole run is no split: it may ask for none (`--count 0`), as before segments.
    fn check(self, flag: &str, total: u64) -> Result<(), String> {
        if !self.is_part() || u64::from(self.count) <= total {
            return Ok(());
        }
        Err(format!(
            "--segment {self}: {count} segments need at least {count} for {flag} (one \
             each), but it is {total}; use at most {total} segments or raise {flag}",
            count = self.count
        ))
    }
}

/// The `--segment` flag of the scenarios that split.
#[derive(Debug, Clone, Copy, Args)]
pub(crate) struct SegmentArgs {
    /// Run only segment I of N of the scenario (e.g. 2/4, from 0/4 to 3/4), for N workers
    /// that together make the whole run (connection k goes to segment k mod N; each keeps
    /// its rate per connection; counts and durations stay as given). The --json report
    /// records the segment; `ws-bench merge` checks that the segments add up. 0/1 is the
    /// whole run.
    #[arg(long, value_name = "I/N", default_value = "0/1", value_parser = Segment::parse)]
    pub(crate) segment: Segment,
}

/// Checks `--segment` against the numbers it splits (clap cannot see across flags); the
/// error is clap's usage error (exit status 2).
pub(crate) fn validate(cli: &Cli) -> Result<(), clap::Error> {
    let (subcommand, checked) = match &cli.command {
        Command::OpenModel(args) => (
            "open-model",
            args.segment
                .segment
                .check("--connections", u64::from(args.connections)),
        ),
        Command::Connect(args) => {
            let segment = args.segment.segment;
            let checked = segment
                .check("--count", args.count)
                .and_then(|()| segment.check("--concurrency", u64::from(args.concurrency)));
            ("connect", checked)
        }
        Command::Idle(args) => {
            let segment = args.segment.segment;
            let checked = segment
                .check("--connections", args.connections)
                .and_then(|()| segment.check("--concurrency", u64::from(args.concurrency)));
            ("idle", checked)
        }
        _ => return Ok(()),
    };
    checked.map_err(|message| {
        // Built, so that the error's usage line is the subcommand's.
        let mut command = Cli::command();
        command.build();
        match command.find_subcommand_mut(subcommand) {
            Some(sub) => sub.error(ErrorKind::ArgumentConflict, message),
            None => command.error(ErrorKind::ArgumentConflict, message),
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shares_add_up_to_the_total_for_many_splits() {
        for total in 0..=300_u64 {
            for count in 1..=40_u32 {
                let segments = (0..count).map(|index| Segment { index, count });
                let shares: Vec<u64> = segments.clone().map(|s| s.share(total)).collect();
                assert_eq!(shares.iter().sum::<u64>(), total, "{total} over {count}");
                let (most, least) = (shares.iter().max(), shares.iter().min());
                assert!(
                    most.zip(least).is_some_and(|(a, b)| a - b <= 1),
                    "{shares:?}"
                );
                // Every single-machine index belongs to exactly one segment.
                let mut seen: Vec<u64> = segments
                    .flat_map(|s| (0..s.share(total)).map(move |local| s.global(local)))
                    .collect();
                seen.sort_unstable();
                assert_eq!(seen, (0..total).collect::<Vec<_>>(), "{total} over {count}");
            }
        }
        let ten_over_four: Vec<u64> = (0..4)
            .map(|index| Segment { index, count: 4 }.share(10))
            .collect();
        assert_eq!(ten_over_four, [3, 3, 2, 2]);
        assert_eq!(Segment::WHOLE.share(7), 7);
    }

    #[test]
    fn parse_accepts_i_of_n_and_says_what_is_wrong_otherwise() {
        assert_eq!(Segment::parse("2/4"), Ok(Segment { index: 2, count: 4 }));
        assert_eq!(Segment::parse("0/1"), Ok(Segment::WHOLE));
        let refused = |text: &str| Segment::parse(text).expect_err(text);
        assert!(refused("4/4").contains("0/4 .. 3/4"), "{}", refused("4/4"));
        assert!(refused("0/0").contains("at least 1"), "{}", refused("0/0"));
        assert!(refused("2").contains("no '/'"), "{}", refused("2"));
        assert!(
            refused("-1/4").contains("not a whole number"),
            "{}",
            refused("-1/4")
        );
        assert!(
            refused("1/x").contains("not a whole number"),
            "{}",
            refused("1/x")
        );
    }

    #[test]
    fn check_refuses_more_segments_than_connections() {
        let segment = Segment { index: 0, count: 8 };
        assert!(segment.check("--connections", 8).is_ok());
        let message = segment.check("--connections", 5).expect_err("8 over 5");
        assert!(message.contains("at most 5 segments"), "{message}");
    }
}
