//! Slice interleaving, the one method every comparison uses: N contenders, each on its own
//! persistent connection(s), take turns in short slices (A B C A B C ...) after one
//! unmeasured warm-up round, with a short unmeasured gap after each slice (so a server can
//! drain what the last slice left in the socket buffers). Each round gives, per metric, a
//! ratio between two contenders measured moments apart, so a machine whose speed jumps
//! during the run moves both sides of a ratio alike; a figure is the median of the
//! per-round ratios, reported with its quartiles and range ([`Spread`]).
//!
//! Use: [`Plan::run`] with a closure that runs one slice of contender `turn.contender` until
//! `turn.until` and returns a [`Sample`] (named metrics, e.g. `rate`, `p50_us`); then
//! [`Rounds::ratio`] for a ratio's spread and [`Rounds::own`] for a contender's own figure.

use std::time::{Duration, Instant};

use anyhow::{Result, bail};
use hdrhistogram::Histogram;
use serde::Serialize;
use serde_json::Value;

/// How the slices are laid out; also the slice flags (`--slices`, `--slice`, `--gap`) of
/// every comparison that takes them (`#[command(flatten)]`).
#[derive(Debug, Clone, Copy, clap::Args)]
pub(crate) struct Plan {
    /// Measured rounds: the contenders take one slice each per round, in turns, after one
    /// unmeasured warm-up round.
    #[arg(long = "slices", value_name = "SLICES", default_value_t = 20, value_parser = clap::value_parser!(u32).range(1..))]
    pub(crate) rounds: u32,
    /// Length of one slice.
    #[arg(long, default_value = "250ms", value_parser = humantime::parse_duration)]
    pub(crate) slice: Duration,
    /// Unmeasured pause after each slice, for the server to drain what the slice left in
    /// the socket buffers.
    #[arg(long, default_value = "20ms", value_parser = humantime::parse_duration)]
    pub(crate) gap: Duration,
}

/// One contender's turn: which contender, which round, when its slice ends.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Turn {
    pub(crate) contender: usize,
    /// 0 is the warm-up round; measured rounds are 1..=rounds.
    pub(crate) round: u32,
    pub(crate) until: Instant,
}

impl Turn {
    /// Whether this slice is kept (not the warm-up).
    pub(crate) fn measured(&self) -> bool {
        self.round > 0
    }
}

/// What one slice measured: operations done, wall time, and named metrics.
#[derive(Debug, Clone, Default)]
pub(crate) struct Sample {
    pub(crate) count: u64,
    pub(crate) took: Duration,
    pub(crate) metrics: Vec<(&'static str, f64)>,
}

impl Sample {
    /// A rate sample: `count` operations in `took`; metric `rate` (per second).
    pub(crate) fn rate(count: u64, took: Duration) -> Self {
        let rate = count as f64 / took.as_secs_f64().max(1e-9);
        Self {
            count,
            took,
            metrics: vec![("rate", rate)],
        }
    }

    /// A latency sample from a histogram of nanoseconds: metrics `p50_us`, `p99_us`,
    /// `p999_us` (microseconds) and `rate` (operations per second of the slice).
    pub(crate) fn latency(histogram: &Histogram<u64>, took: Duration) -> Self {
        let us = |q: f64| histogram.value_at_quantile(q) as f64 / 1e3;
        let mut sample = Self::rate(histogram.len(), took);
        sample.metrics.extend([
            ("p50_us", us(0.5)),
            ("p99_us", us(0.99)),
            ("p999_us", us(0.999)),
        ]);
        sample
    }

    /// Adds a metric.
    pub(crate) fn with(mut self, name: &'static str, value: f64) -> Self {
        self.metrics.push((name, value));
        self
    }

    /// The value of metric `name` (NaN when absent).
    pub(crate) fn get(&self, name: &str) -> f64 {
        self.metrics
            .iter()
            .find(|(n, _)| *n == name)
            .map_or(f64::NAN, |(_, v)| *v)
    }
}

/// The measured samples: `samples[round][contender]`.
#[derive(Debug, Clone, Default)]
pub(crate) struct Rounds {
    pub(crate) samples: Vec<Vec<Sample>>,
}

impl Plan {
    /// Wall time the plan takes with `contenders` contenders (warm-up included).
    pub(crate) fn planned(&self, contenders: usize) -> Duration {
        (self.slice + self.gap) * (contenders as u32) * (self.rounds + 1)
    }

    /// Runs the warm-up round and the measured rounds; `slice` runs one contender's slice.
    /// The warm-up's samples are dropped.
    pub(crate) async fn run(
        &self,
        contenders: usize,
        mut slice: impl AsyncFnMut(Turn) -> Result<Sample>,
    ) -> Result<Rounds> {
        if contenders == 0 {
            bail!("nothing to compare: no contenders");
        }
        let mut rounds = Rounds::default();
        for round in 0..=self.rounds {
            let mut samples = Vec::with_capacity(contenders);
            for contender in 0..contenders {
                let turn = Turn {
                    contender,
                    round,
                    until: Instant::now() + self.slice,
                };
                samples.push(slice(turn).await?);
                tokio::time::sleep(self.gap).await;
            }
            if round > 0 {
                rounds.samples.push(samples);
            }
        }
        Ok(rounds)
    }
}

impl Rounds {
    /// Per round, `metric` of contender `subject` divided by that of contender `base`.
    pub(crate) fn ratios(&self, metric: &str, subject: usize, base: usize) -> Vec<f64> {
        self.samples
            .iter()
            .map(|round| round[subject].get(metric) / round[base].get(metric))
            .collect()
    }

    /// The spread of the per-round ratios `subject / base` of `metric`.
    pub(crate) fn ratio(&self, metric: &str, subject: usize, base: usize) -> Spread {
        Spread::of(&self.ratios(metric, subject, base))
    }

    /// Per round, `metric` of contender `contender`.
    pub(crate) fn values(&self, metric: &str, contender: usize) -> Vec<f64> {
        self.samples
            .iter()
            .map(|round| round[contender].get(metric))
            .collect()
    }

    /// The spread of contender `contender`'s own `metric` over the rounds.
    pub(crate) fn own(&self, metric: &str, contender: usize) -> Spread {
        Spread::of(&self.values(metric, contender))
    }

    /// Contender `contender`'s operations and wall time over every measured round.
    pub(crate) fn total(&self, contender: usize) -> (u64, Duration) {
        self.samples.iter().fold((0, Duration::ZERO), |(n, t), r| {
            (n + r[contender].count, t + r[contender].took)
        })
    }
}

/// Median, quartiles and range of a set of values (the finite ones; NaN where none are).
#[derive(Debug, Clone, Copy, Serialize)]
pub(crate) struct Spread {
    pub(crate) median: f64,
    pub(crate) p25: f64,
    pub(crate) p75: f64,
    pub(crate) min: f64,
    pub(crate) max: f64,
    /// How many finite values there were.
    pub(crate) count: usize,
}

impl Spread {
    pub(crate) fn of(values: &[f64]) -> Self {
        let mut sorted: Vec<f64> = values.iter().copied().filter(|v| v.is_finite()).collect();
        sorted.sort_by(f64::total_cmp);
        Self {
            median: quantile(&sorted, 0.5),
            p25: quantile(&sorted, 0.25),
            p75: quantile(&sorted, 0.75),
            min: quantile(&sorted, 0.0),
            max: quantile(&sorted, 1.0),
            count: sorted.len(),
        }
    }

    /// As JSON with `places` decimals; `null` when there were no finite values.
    pub(crate) fn json(&self, places: i32) -> Value {
        if self.count == 0 {
            return Value::Null;
        }
        serde_json::json!({
            "median": rounded(self.median, places),
            "p25": rounded(self.p25, places),
            "p75": rounded(self.p75, places),
            "min": rounded(self.min, places),
            "max": rounded(self.max, places),
            "count": self.count,
        })
    }
}

/// A [`Spread::json`] as `0.62 (0.60..0.65)`, or `-`.
pub(crate) fn spread_text(spread: &Value) -> String {
    let get = |name: &str| spread[name].as_f64();
    match (get("median"), get("p25"), get("p75")) {
        (Some(m), Some(low), Some(high)) => format!("{m:.2} ({low:.2}..{high:.2})"),
        _ => "-".into(),
    }
}

/// Quantile `q` (0..=1) of sorted `values`, interpolated between neighbours (NaN if empty).
pub(crate) fn quantile(sorted: &[f64], q: f64) -> f64 {
    let Some(last) = sorted.len().checked_sub(1) else {
        return f64::NAN;
    };
    let at = q * last as f64;
    let (low, high) = (at.floor() as usize, at.ceil() as usize);
    sorted[low] + (sorted[high] - sorted[low]) * (at - low as f64)
}

/// `value` rounded to `places` decimals, as JSON (`null` if not finite).
pub(crate) fn rounded(value: f64, places: i32) -> Value {
    if !value.is_finite() {
        return Value::Null;
    }
    let scale = 10f64.powi(places);
    Value::from((value * scale).round() / scale)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantiles_interpolate_between_neighbours() {
        let sorted = [0.8, 0.9, 1.0, 1.1];
        assert!((quantile(&sorted, 0.5) - 0.95).abs() < 1e-12);
        assert!((quantile(&sorted, 0.25) - 0.875).abs() < 1e-12);
        assert_eq!(quantile(&sorted, 0.0), 0.8);
        assert_eq!(quantile(&sorted, 1.0), 1.1);
        assert_eq!(quantile(&[2.0], 0.75), 2.0);
        assert!(quantile(&[], 0.5).is_nan());
    }

    #[test]
    fn spreads_skip_unknown_values() {
        let s = Spread::of(&[2.0, f64::NAN, 1.0, 3.0, 4.0]);
        assert_eq!((s.median, s.min, s.max, s.count), (2.5, 1.0, 4.0, 4));
        assert_eq!(spread_text(&s.json(2)), "2.50 (1.75..3.25)");
        assert_eq!(Spread::of(&[f64::NAN]).json(2), Value::Null);
    }

    #[tokio::test]
    async fn rounds_alternate_and_ratios_are_per_round() {
        let plan = Plan {
            rounds: 3,
            slice: Duration::from_millis(1),
            gap: Duration::ZERO,
        };
        let mut order = Vec::new();
        let rounds = plan
            .run(2, async |turn: Turn| {
                order.push((turn.round, turn.contender));
                // Contender 1 is twice as fast as 0, and both speed up each round.
                let rate = f64::from(turn.round) * (turn.contender as f64 + 1.0);
                Ok(Sample {
                    metrics: vec![("rate", rate)],
                    ..Sample::default()
                })
            })
            .await
            .unwrap();
        let want: Vec<_> = (0..=3).flat_map(|r| [(r, 0), (r, 1)]).collect();
        assert_eq!(order, want, "warm-up round first, then A B A B ...");
        assert_eq!(rounds.samples.len(), 3, "the warm-up is not kept");
        assert_eq!(rounds.ratios("rate", 1, 0), vec![2.0; 3]);
        assert_eq!(rounds.own("rate", 0).median, 2.0);
        assert_eq!(rounds.ratio("missing", 1, 0).count, 0);
    }
}
