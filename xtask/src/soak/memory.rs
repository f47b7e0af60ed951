//! Resident memory of the soak's processes: sampled from `/proc/PID/status` (`VmRSS`) every
//! second, then judged after the warm-up by a least-squares line through the samples: the
//! growth is its slope times the window it was fitted over.

use serde_json::{Value, json};

/// The resident memory of one process over the run.
#[derive(Debug)]
pub(crate) struct Series {
    pub(crate) name: &'static str,
    pub(crate) pid: u32,
    /// Whether its growth decides the verdict (the proxies' is only reported).
    pub(crate) judged: bool,
    /// (seconds into the run, bytes).
    pub(crate) samples: Vec<(f64, u64)>,
}

impl Series {
    pub(crate) fn new(name: &'static str, pid: u32, judged: bool) -> Self {
        Self {
            name,
            pid,
            judged,
            samples: Vec::new(),
        }
    }

    /// Takes a sample at `t` seconds (none if the process is gone).
    pub(crate) fn sample(&mut self, t: f64) {
        if let Some(bytes) = rss_bytes(self.pid) {
            self.samples.push((t, bytes));
        }
    }

    /// The line through the samples from `from` to `to` seconds, if there are enough.
    pub(crate) fn fit(&self, from: f64, to: f64) -> Option<Fit> {
        let window: Vec<(f64, f64)> = self
            .samples
            .iter()
            .filter(|(t, _)| (from..=to).contains(t))
            .map(|&(t, bytes)| (t, bytes as f64))
            .collect();
        fit(&window)
    }

    /// Its figures for the report: the first sample from `from` seconds on (the end of the
    /// warm-up), the last and the largest sample, and the fit.
    pub(crate) fn to_json(&self, from: f64, fit: Option<&Fit>) -> Value {
        let bytes = self.samples.iter().map(|&(_, bytes)| bytes);
        let after = self.samples.iter().find(|&&(t, _)| t >= from);
        json!({
            "judged": self.judged,
            "samples": self.samples.len(),
            "warm_up_bytes": after.map(|&(_, bytes)| bytes),
            "last_bytes": self.samples.last().map(|&(_, bytes)| bytes),
            "max_bytes": bytes.max(),
            "slope_bytes_per_s": fit.map(|fit| fit.slope),
            "window_s": fit.map(|fit| fit.window),
            "growth_bytes": fit.map(Fit::growth),
        })
    }
}

/// A least-squares line through memory samples.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Fit {
    /// Bytes per second.
    pub(crate) slope: f64,
    /// Seconds from the first sample to the last.
    pub(crate) window: f64,
    /// The line's value at the first sample, bytes.
    pub(crate) start: f64,
}

impl Fit {
    /// What the line grows over the window, in bytes.
    pub(crate) fn growth(&self) -> f64 {
        self.slope * self.window
    }
}

/// The least-squares line through `(t, bytes)` points; `None` for fewer than three, or all at
/// one time.
pub(crate) fn fit(points: &[(f64, f64)]) -> Option<Fit> {
    if points.len() < 3 {
        return None;
    }
    let n = points.len() as f64;
    let mean_t = points.iter().map(|p| p.0).sum::<f64>() / n;
    let mean_y = points.iter().map(|p| p.1).sum::<f64>() / n;
    let (mut covariance, mut variance) = (0.0, 0.0);
    for &(t, y) in points {
        covariance += (t - mean_t) * (y - mean_y);
        variance += (t - mean_t) * (t - mean_t);
    }
    if variance == 0.0 {
        return None;
    }
    let slope = covariance / variance;
    let first = points.iter().map(|p| p.0).fold(f64::INFINITY, f64::min);
    let last = points.iter().map(|p| p.0).fold(f64::NEG_INFINITY, f64::max);
    Some(Fit {
        slope,
        window: last - first,
        start: mean_y + slope * (first - mean_t),
    })
}

/// The resident set size of process `pid` in bytes, from `/proc/PID/status` (Linux only).
pub(crate) fn rss_bytes(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|rest| {
            rest.trim()
                .trim_end_matches("kB")
                .trim()
                .parse::<u64>()
                .ok()
        })
        .map(|kib| kib * 1024)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_straight_line_is_found_exactly() {
        let points: Vec<(f64, f64)> = (0..60)
            .map(|s| (30.0 + f64::from(s), 10e6 + 1000.0 * f64::from(s)))
            .collect();
        let line = fit(&points).unwrap();
        assert!((line.slope - 1000.0).abs() < 1e-6, "{line:?}");
        assert!((line.window - 59.0).abs() < 1e-9);
        assert!((line.growth() - 59_000.0).abs() < 1e-3);
        assert!((line.start - 10e6).abs() < 1e-3);
    }

    #[test]
    fn a_flat_series_with_a_spike_grows_little_and_too_few_points_give_nothing() {
        let mut points: Vec<(f64, f64)> = (0..100)
            .map(|s| (f64::from(s), 20e6 + if s % 2 == 0 { 4096.0 } else { 0.0 }))
            .collect();
        points[50].1 += 1e6;
        let line = fit(&points).unwrap();
        assert!(line.growth().abs() < 100e3, "{line:?}");
        assert_eq!(fit(&points[..2]), None);
        assert_eq!(fit(&[(1.0, 1.0), (1.0, 2.0), (1.0, 3.0)]), None);
    }

    #[test]
    fn samples_outside_the_window_are_left_out() {
        let mut series = Series::new("x", 0, true);
        // Warm-up: a steep climb; then flat.
        for s in 0..30_u32 {
            series
                .samples
                .push((f64::from(s), 1_000_000 * u64::from(s)));
        }
        for s in 30..60_u32 {
            series.samples.push((f64::from(s), 30_000_000));
        }
        let line = series.fit(30.0, 59.0).unwrap();
        assert!(line.growth().abs() < 1.0, "{line:?}");
        assert!(series.fit(0.0, 59.0).unwrap().growth() > 10e6);
        let report = series.to_json(30.0, Some(&line));
        assert_eq!(report["warm_up_bytes"], 30_000_000);
        assert_eq!(report["max_bytes"], 30_000_000);
        assert_eq!(report["samples"], 60);
    }

    #[test]
    fn this_process_has_a_resident_size() {
        if cfg!(target_os = "linux") {
            assert!(rss_bytes(std::process::id()).unwrap() > 0);
        }
    }
}
