//! `--threshold` expressions such as `p99<5ms` or `rate>100000`, and checking a report
//! against them.

use std::fmt;
use std::str::FromStr;

use crate::report::Report;

/// What a threshold constrains.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Metric {
    /// A latency statistic of the main histogram: p50, p90, p99, p99.9, max, mean.
    Latency(&'static str),
    /// The run's rate (operations per second).
    Rate,
    /// A comparison's ratio (`resilient-cost`: the median of resilient / plain per slice).
    Ratio,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Op {
    Lt,
    Le,
    Gt,
    Ge,
}

impl Op {
    fn holds(self, left: f64, right: f64) -> bool {
        match self {
            Op::Lt => left < right,
            Op::Le => left <= right,
            Op::Gt => left > right,
            Op::Ge => left >= right,
        }
    }

    fn symbol(self) -> &'static str {
        match self {
            Op::Lt => "<",
            Op::Le => "<=",
            Op::Gt => ">",
            Op::Ge => ">=",
        }
    }
}

/// One parsed threshold. Latency bounds are kept in microseconds.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Threshold {
    text: String,
    metric: Metric,
    op: Op,
    bound: f64,
}

const LATENCY_METRICS: [&str; 6] = ["p50", "p90", "p99", "p99.9", "max", "mean"];

impl FromStr for Threshold {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        let compact: String = text.chars().filter(|c| !c.is_whitespace()).collect();
        let (at, op, len) = [("<=", Op::Le), (">=", Op::Ge), ("<", Op::Lt), (">", Op::Gt)]
            .iter()
            .find_map(|(symbol, op)| compact.find(symbol).map(|at| (at, *op, symbol.len())))
            .ok_or_else(|| format!("{text:?}: expected METRIC<VALUE or METRIC>VALUE"))?;
        let (name, value) = (&compact[..at], &compact[at + len..]);
        let metric = if name == "rate" {
            Metric::Rate
        } else if name == "ratio" {
            Metric::Ratio
        } else if let Some(known) = LATENCY_METRICS.iter().find(|m| **m == name) {
            Metric::Latency(known)
        } else {
            return Err(format!(
                "{text:?}: unknown metric {name:?} (p50, p90, p99, p99.9, max, mean, rate, ratio)"
            ));
        };
        let bound = match metric {
            Metric::Rate => parse_rate(value),
            Metric::Ratio => value.parse().ok(),
            Metric::Latency(_) => parse_micros(value),
        }
        .ok_or_else(|| format!("{text:?}: cannot read the value {value:?}"))?;
        Ok(Self {
            text: text.to_owned(),
            metric,
            op,
            bound,
        })
    }
}

/// `5ms`, `250us`, `250µs`, `1.5s`, `800ns` in microseconds; a bare number is microseconds.
fn parse_micros(value: &str) -> Option<f64> {
    let split = value
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(value.len());
    let number: f64 = value[..split].parse().ok()?;
    let scale = match &value[split..] {
        "ns" => 1e-3,
        "" | "us" | "µs" => 1.0,
        "ms" => 1e3,
        "s" => 1e6,
        _ => return None,
    };
    Some(number * scale)
}

/// `100000`, `100k`, `1.5M` per second.
fn parse_rate(value: &str) -> Option<f64> {
    let trimmed = value.trim_end_matches("/s");
    let (digits, scale) = match trimmed.chars().last()? {
        'k' | 'K' => (&trimmed[..trimmed.len() - 1], 1e3),
        'M' => (&trimmed[..trimmed.len() - 1], 1e6),
        _ => (trimmed, 1.0),
    };
    digits.parse::<f64>().ok().map(|n| n * scale)
}

/// A threshold the run did not meet.
#[derive(Debug)]
pub(crate) struct Violation {
    threshold: Threshold,
    actual: Option<f64>,
}

impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let t = &self.threshold;
        let (unit, places) = match t.metric {
            Metric::Rate => ("/s", 1),
            Metric::Ratio => ("", 3),
            Metric::Latency(_) => ("us", 1),
        };
        match self.actual {
            Some(actual) => write!(
                f,
                "threshold violated: {} (measured {actual:.places$}{unit}, wanted {} {}{unit})",
                t.text,
                t.op.symbol(),
                t.bound
            ),
            None => write!(
                f,
                "threshold violated: {} (this run has no such figure)",
                t.text
            ),
        }
    }
}

/// The thresholds `report` does not meet.
pub(crate) fn check(report: &Report, thresholds: &[Threshold]) -> Vec<Violation> {
    thresholds
        .iter()
        .filter_map(|threshold| {
            let actual = match threshold.metric {
                Metric::Rate => Some(report.rate),
                Metric::Ratio => report.figures.get("ratio").and_then(|r| r.as_f64()),
                Metric::Latency(name) => report.main_summary().and_then(|s| s.get(name)),
            };
            let met = actual.is_some_and(|a| threshold.op.holds(a, threshold.bound));
            (!met).then(|| Violation {
                threshold: threshold.clone(),
                actual,
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_latency_and_rate() {
        let t: Threshold = "p99<5ms".parse().unwrap();
        assert_eq!(
            (t.metric, t.op, t.bound),
            (Metric::Latency("p99"), Op::Lt, 5000.0)
        );
        let t: Threshold = "p99.9 <= 250us".parse().unwrap();
        assert_eq!(
            (t.metric, t.op, t.bound),
            (Metric::Latency("p99.9"), Op::Le, 250.0)
        );
        let t: Threshold = "rate>100k".parse().unwrap();
        assert_eq!((t.metric, t.op, t.bound), (Metric::Rate, Op::Gt, 100_000.0));
        let t: Threshold = "ratio>=0.95".parse().unwrap();
        assert_eq!((t.metric, t.op, t.bound), (Metric::Ratio, Op::Ge, 0.95));
        assert!("p42<1ms".parse::<Threshold>().is_err());
        assert!("p99=1ms".parse::<Threshold>().is_err());
        assert!("p99<1 parsec".parse::<Threshold>().is_err());
    }
}
