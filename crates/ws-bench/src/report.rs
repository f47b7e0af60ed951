//! `Report`: what a run measured, its JSON form (histograms as base64 hdrhistogram V2 +
//! deflate, so runs can be merged), and merging several reports into one.

use std::collections::BTreeMap;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use hdrhistogram::Histogram;
use hdrhistogram::serialization::{Deserializer, Serializer, V2DeflateSerializer};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::segment::Segment;

/// Name of the histogram thresholds and the table's first row look at.
pub(crate) const LATENCY: &str = "latency";

/// A new histogram of nanoseconds (3 significant digits, grows as needed).
pub(crate) fn new_histogram() -> Histogram<u64> {
    Histogram::new(3).expect("3 significant digits is a valid precision")
}

/// Records `elapsed` in nanoseconds into `histogram`.
pub(crate) fn record(histogram: &mut Histogram<u64>, elapsed: Duration) {
    let nanos = u64::try_from(elapsed.as_nanos()).unwrap_or(u64::MAX).max(1);
    // An auto-resizing histogram only fails to grow for values near u64::MAX.
    if histogram.record(nanos).is_err() {
        histogram.saturating_record(nanos);
    }
}

/// The result of one run (or of several merged), as printed with `--json`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct Report {
    /// The scenario: rtt, throughput, connect, idle, rpc, open-model.
    pub(crate) scenario: String,
    /// The client implementation: ws-client, tungstenite, tcp.
    pub(crate) client: String,
    pub(crate) url: String,
    /// The scenario's parameters (size, window, mode, ...).
    pub(crate) params: Map<String, Value>,
    /// Operations completed (messages, calls, connections).
    pub(crate) count: u64,
    /// Operations that failed.
    pub(crate) errors: u64,
    /// Payload bytes moved (0 where it does not apply).
    pub(crate) bytes: u64,
    /// Measured wall time, seconds (for merged runs: the longest).
    pub(crate) elapsed_s: f64,
    /// Operations per second (merged whole runs: the sum, as they ran side by side;
    /// merged segments of one run: the count over the longest elapsed time).
    pub(crate) rate: f64,
    /// What `rate` counts: msg/s, calls/s, conn/s.
    pub(crate) rate_unit: String,
    /// Payload megabytes (10^6) per second, where bytes apply.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) mb_per_s: Option<f64>,
    /// Scenario-specific figures (e.g. idle: opened, failed, open_s).
    #[serde(default)]
    pub(crate) figures: Map<String, Value>,
    /// Percentiles of each histogram, microseconds (derived from `histograms`).
    #[serde(default)]
    pub(crate) summary: BTreeMap<String, Summary>,
    /// Histograms of nanoseconds, serialized.
    #[serde(default)]
    pub(crate) histograms: BTreeMap<String, EncodedHistogram>,
    /// How many runs this report combines.
    #[serde(default = "one")]
    pub(crate) runs: u64,
    /// The part of the scenario this run made (`--segment`); absent where a scenario does
    /// not split, and in merged reports.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) segment: Option<Segment>,
    /// When the run started, seconds since the Unix epoch by this machine's clock (a merge
    /// of segments reports how far apart the workers started).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) started_unix_s: Option<f64>,
}

fn one() -> u64 {
    1
}

/// Percentiles of one histogram, in microseconds.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct Summary {
    pub(crate) count: u64,
    pub(crate) min: f64,
    pub(crate) p50: f64,
    pub(crate) p90: f64,
    pub(crate) p99: f64,
    #[serde(rename = "p99.9")]
    pub(crate) p99_9: f64,
    pub(crate) max: f64,
    pub(crate) mean: f64,
}

impl Summary {
    fn of(histogram: &Histogram<u64>) -> Self {
        let us = |nanos: u64| nanos as f64 / 1000.0;
        Self {
            count: histogram.len(),
            min: us(histogram.min()),
            p50: us(histogram.value_at_quantile(0.50)),
            p90: us(histogram.value_at_quantile(0.90)),
            p99: us(histogram.value_at_quantile(0.99)),
            p99_9: us(histogram.value_at_quantile(0.999)),
            max: us(histogram.max()),
            mean: histogram.mean() / 1000.0,
        }
    }

    /// A statistic by its threshold name (p50, p90, p99, p99.9, max, mean).
    pub(crate) fn get(&self, name: &str) -> Option<f64> {
        Some(match name {
            "p50" => self.p50,
            "p90" => self.p90,
            "p99" => self.p99,
            "p99.9" => self.p99_9,
            "max" => self.max,
            "mean" => self.mean,
            _ => return None,
        })
    }
}

/// A histogram in its portable form.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct EncodedHistogram {
    /// Unit of the recorded values: always "ns".
    pub(crate) unit: String,
    /// Always "hdrhistogram-v2-deflate-base64".
    pub(crate) encoding: String,
    pub(crate) data: String,
}

impl EncodedHistogram {
    fn encode(histogram: &Histogram<u64>) -> Result<Self> {
        let mut bytes = Vec::new();
        V2DeflateSerializer::new()
            .serialize(histogram, &mut bytes)
            .map_err(|e| anyhow::anyhow!("cannot serialize a histogram: {e:?}"))?;
        Ok(Self {
            unit: "ns".into(),
            encoding: "hdrhistogram-v2-deflate-base64".into(),
            data: BASE64.encode(bytes),
        })
    }

    pub(crate) fn decode(&self) -> Result<Histogram<u64>> {
        if self.unit != "ns" {
            bail!("histogram unit {:?} is not ns", self.unit);
        }
        let bytes = BASE64
            .decode(&self.data)
            .context("histogram data is not base64")?;
        let mut histogram: Histogram<u64> = Deserializer::new()
            .deserialize(&mut bytes.as_slice())
            .map_err(|e| anyhow::anyhow!("cannot read a histogram: {e:?}"))?;
        // Decoded histograms have a fixed range; let merging grow them.
        histogram.auto(true);
        Ok(histogram)
    }
}

impl Report {
    /// A report for `scenario` run with `client` against `url`; fill in the figures with
    /// [`timed`](Self::timed), [`histogram`](Self::histogram) and [`param`](Self::param).
    pub(crate) fn new(scenario: &str, client: &str, url: &str, rate_unit: &str) -> Self {
        Self {
            scenario: scenario.into(),
            client: client.into(),
            url: url.into(),
            params: Map::new(),
            count: 0,
            errors: 0,
            bytes: 0,
            elapsed_s: 0.0,
            rate: 0.0,
            rate_unit: rate_unit.into(),
            mb_per_s: None,
            figures: Map::new(),
            summary: BTreeMap::new(),
            histograms: BTreeMap::new(),
            runs: 1,
            segment: None,
            started_unix_s: None,
        }
    }

    /// Adds a parameter.
    pub(crate) fn param(mut self, name: &str, value: impl Into<Value>) -> Self {
        self.params.insert(name.into(), value.into());
        self
    }

    /// Sets count, elapsed time and rate (and MB/s when `bytes` is non-zero).
    pub(crate) fn timed(&mut self, count: u64, bytes: u64, elapsed: Duration) {
        let seconds = elapsed.as_secs_f64().max(1e-9);
        self.count = count;
        self.bytes = bytes;
        self.elapsed_s = seconds;
        self.rate = count as f64 / seconds;
        self.mb_per_s = (bytes > 0).then(|| bytes as f64 / seconds / 1e6);
    }

    /// Stores `histogram` under `name` (serialized) and its summary.
    pub(crate) fn histogram(&mut self, name: &str, histogram: &Histogram<u64>) -> Result<()> {
        if histogram.is_empty() {
            return Ok(());
        }
        self.summary.insert(name.into(), Summary::of(histogram));
        self.histograms
            .insert(name.into(), EncodedHistogram::encode(histogram)?);
        Ok(())
    }

    /// The summary thresholds are checked against: `latency`, else the first one.
    pub(crate) fn main_summary(&self) -> Option<&Summary> {
        self.summary
            .get(LATENCY)
            .or_else(|| self.summary.values().next())
    }

    /// Combines reports of one scenario run side by side (e.g. from several machines):
    /// counts, bytes and rates add up, the elapsed time is the longest, histograms merge.
    pub(crate) fn merge(reports: Vec<Report>) -> Result<Report> {
        let mut reports = reports.into_iter();
        let mut merged = reports.next().context("nothing to merge")?;
        let mut histograms = BTreeMap::new();
        for (name, encoded) in &merged.histograms {
            histograms.insert(name.clone(), encoded.decode()?);
        }
        for report in reports {
            if report.scenario != merged.scenario {
                bail!(
                    "cannot merge a {} run into {} runs",
                    report.scenario,
                    merged.scenario
                );
            }
            if report.client != merged.client && !merged.client.contains('+') {
                merged.client = format!("{}+{}", merged.client, report.client);
            }
            merged.count = sum("count", merged.count, report.count)?;
            merged.errors = sum("errors", merged.errors, report.errors)?;
            merged.bytes = sum("bytes", merged.bytes, report.bytes)?;
            merged.elapsed_s = merged.elapsed_s.max(report.elapsed_s);
            merged.rate += report.rate;
            merged.mb_per_s = match (merged.mb_per_s, report.mb_per_s) {
                (None, None) => None,
                (a, b) => Some(a.unwrap_or(0.0) + b.unwrap_or(0.0)),
            };
            merged.runs = sum("runs", merged.runs, report.runs)?;
            merged.started_unix_s = match (merged.started_unix_s, report.started_unix_s) {
                (Some(a), Some(b)) => Some(a.min(b)),
                (a, b) => a.or(b),
            };
            for (name, value) in report.figures {
                let sum = match (merged.figures.get(&name), &value) {
                    (Some(Value::Number(a)), Value::Number(b)) if a.is_u64() && b.is_u64() => {
                        let (a, b) = (a.as_u64().unwrap_or(0), b.as_u64().unwrap_or(0));
                        Value::from(sum(&name, a, b)?)
                    }
                    _ => continue,
                };
                merged.figures.insert(name, sum);
            }
            for (name, encoded) in &report.histograms {
                let histogram = encoded.decode()?;
                match histograms.get_mut(name) {
                    Some(into) => into
                        .add(&histogram)
                        .map_err(|e| anyhow::anyhow!("cannot merge histogram {name}: {e:?}"))?,
                    None => {
                        histograms.insert(name.clone(), histogram);
                    }
                }
            }
        }
        merged.segment = None;
        merged.summary.clear();
        merged.histograms.clear();
        for (name, histogram) in &histograms {
            merged.histogram(name, histogram)?;
        }
        Ok(merged)
    }
}

/// `a + b` of the field `what`, or an error where no run could have counted that much.
fn sum(what: &str, a: u64, b: u64) -> Result<u64> {
    a.checked_add(b)
        .with_context(|| format!("{what} adds up to a number too large for a count ({a} + {b})"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn histograms_survive_json_and_merge() {
        let mut a = new_histogram();
        let mut b = new_histogram();
        for micros in 1..=100 {
            record(&mut a, Duration::from_micros(micros));
            record(&mut b, Duration::from_micros(micros + 100));
        }
        let mut one = Report::new("rtt", "ws-client", "ws://x/", "msg/s");
        one.timed(100, 1600, Duration::from_secs(1));
        one.histogram(LATENCY, &a).unwrap();
        let mut two = one.clone();
        two.histograms.clear();
        two.histogram(LATENCY, &b).unwrap();
        let text = serde_json::to_string(&two).unwrap();
        let two: Report = serde_json::from_str(&text).unwrap();
        let merged = Report::merge(vec![one, two]).unwrap();
        assert_eq!(merged.count, 200);
        assert_eq!(merged.runs, 2);
        let summary = merged.main_summary().unwrap();
        assert_eq!(summary.count, 200);
        assert!((summary.max - 200.0).abs() < 1.0, "{summary:?}");
    }
}
