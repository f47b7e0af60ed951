//! `ws-bench merge`: reads the `--json` reports of several runs and combines them; a set of
//! `--segment` runs is first checked to make up one whole run (each of 0/N .. N-1/N once,
//! the same scenario, client and parameters), and its rate is the total over the wall time.
//!
//! Wall time of parallel segments: the longest `elapsed_s` among them, each measured by its
//! worker's own monotonic clock from its own start. Every segment runs the whole schedule
//! (ramp-up and duration) from its own start, so the longest of them is the scenario's
//! length; the span from the earliest start to the latest end would also count how far
//! apart the workers were started (pod scheduling, image pulls) and would rest on the
//! machines' wall clocks agreeing. That start spread is reported beside the rate as
//! `start_spread_s` instead: when it is not small next to the duration, the segments did
//! not overlap and the server saw less load at once than the merged rate says.

use std::collections::BTreeMap;
use std::path::PathBuf;

use anyhow::{Context, Result, bail};

use crate::report::Report;
use crate::segment::Segment;

/// Reads every file as a report and merges them (checking segments, if they are).
pub(crate) fn run(files: &[PathBuf]) -> Result<Report> {
    let mut named = Vec::new();
    for file in files {
        let text = std::fs::read_to_string(file)
            .with_context(|| format!("cannot read {}", file.display()))?;
        let report: Report = serde_json::from_str(text.trim())
            .with_context(|| format!("{} is not a ws-bench --json report", file.display()))?;
        if report.elapsed_s.is_nan() || report.elapsed_s < 0.0 {
            bail!(
                "{} is not a ws-bench --json report: elapsed_s is {}",
                file.display(),
                report.elapsed_s
            );
        }
        named.push((file.display().to_string(), report));
    }
    merge(named)
}

/// Merges reports named by where they came from. Whole runs (no segment, or 0/1) merge
/// side by side as they always have: rates add up. Segments must make up one run.
pub(crate) fn merge(named: Vec<(String, Report)>) -> Result<Report> {
    let segmented = named
        .iter()
        .any(|(_, report)| report.segment.is_some_and(Segment::is_part));
    if !segmented {
        return Report::merge(named.into_iter().map(|(_, report)| report).collect());
    }
    check_segments(&named)?;
    let starts: Vec<f64> = named.iter().filter_map(|(_, r)| r.started_unix_s).collect();
    let spread = (starts.len() == named.len()).then(|| {
        let earliest = starts.iter().copied().fold(f64::INFINITY, f64::min);
        let latest = starts.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        latest - earliest
    });
    let reports: Vec<Report> = named.into_iter().map(|(_, report)| report).collect();
    let combined = combined_figures(&reports);
    let mut merged = Report::merge(reports)?;
    merged.figures.extend(combined);
    // Report::merge keeps the longest elapsed time: the wall time (see the module's doc).
    let seconds = merged.elapsed_s.max(1e-9);
    merged.rate = merged.count as f64 / seconds;
    merged.mb_per_s = (merged.bytes > 0).then(|| merged.bytes as f64 / seconds / 1e6);
    if let Some(spread) = spread {
        merged
            .figures
            .insert("start_spread_s".into(), spread.into());
    }
    // Each segment's share of a split parameter is its figure `segment_<param>`; summed by
    // the merge they must give the parameter back.
    for (name, value) in &merged.figures {
        let Some(param) = name.strip_prefix("segment_") else {
            continue;
        };
        let asked = merged.params.get(param).and_then(|v| v.as_u64());
        if asked.is_some() && value.as_u64() != asked {
            bail!(
                "the segments' shares of {param} add up to {value}, not the {} the scenario \
                 asks for: were they made by different ws-bench versions?",
                asked.unwrap_or_default()
            );
        }
    }
    Ok(merged)
}

/// The figures Report::merge cannot add up (it keeps the first run's value of any that is
/// not a whole number), combined across segments: CPU seconds add up and give the CPU per
/// message again, the time to open is the longest, the open-file limit the lowest.
fn combined_figures(reports: &[Report]) -> serde_json::Map<String, serde_json::Value> {
    let all = |name: &str| -> Option<Vec<f64>> {
        reports
            .iter()
            .map(|report| report.figures.get(name).and_then(serde_json::Value::as_f64))
            .collect()
    };
    let mut combined = serde_json::Map::new();
    if let Some(cpu) = all("client_cpu_s") {
        let cpu: f64 = cpu.iter().sum();
        let count: u64 = reports.iter().map(|report| report.count).sum();
        combined.insert("client_cpu_s".into(), cpu.into());
        if reports
            .iter()
            .all(|r| r.figures.contains_key("client_cpu_us_per_message"))
        {
            let per_message = cpu * 1e6 / count.max(1) as f64;
            combined.insert("client_cpu_us_per_message".into(), per_message.into());
        }
    }
    if let Some(open) = all("open_s") {
        combined.insert(
            "open_s".into(),
            open.iter().copied().fold(0.0, f64::max).into(),
        );
    }
    if let Some(limits) = all("open_file_limit") {
        let lowest = limits.iter().copied().fold(f64::INFINITY, f64::min);
        combined.insert("open_file_limit".into(), (lowest as u64).into());
    }
    combined
}

/// Refuses a set of segments that is not exactly one run: whole runs among them, different
/// counts N, different scenarios or parameters, a segment twice or one missing.
fn check_segments(named: &[(String, Report)]) -> Result<()> {
    let Some((first_name, first)) = named.first() else {
        bail!("nothing to merge");
    };
    let first_segment = first.segment.unwrap_or(Segment::WHOLE);
    for (name, report) in named {
        let segment = report.segment.unwrap_or(Segment::WHOLE);
        if !segment.is_part() {
            bail!(
                "{name} is a whole run (no --segment, or 0/1) and others are segments: merge \
                 the segments of one run, or whole runs, not both"
            );
        }
        if segment.count != first_segment.count {
            bail!(
                "{name} is segment {segment} but {first_name} is segment {first_segment}: \
                 the segments of one run all have the same N"
            );
        }
        if let Some(difference) = difference(first, report) {
            bail!(
                "{name} (segment {segment}) and {first_name} (segment {first_segment}) ran \
                 different scenarios: {difference}; segments of one run have the same \
                 scenario, client and parameters"
            );
        }
    }
    let mut by_index: BTreeMap<u32, Vec<&str>> = BTreeMap::new();
    for (name, report) in named {
        let index = report.segment.map_or(0, |segment| segment.index);
        by_index.entry(index).or_default().push(name);
    }
    let count = first_segment.count;
    let got = by_index
        .iter()
        .flat_map(|(index, names)| names.iter().map(move |_| format!("{index}/{count}")))
        .collect::<Vec<_>>()
        .join(", ");
    if let Some((index, names)) = by_index.iter().find(|(_, names)| names.len() > 1) {
        bail!(
            "segment {index}/{count} is there {} times ({}); got {got}",
            names.len(),
            names.join(", ")
        );
    }
    let missing: Vec<String> = (0..count)
        .filter(|index| !by_index.contains_key(index))
        .map(|index| format!("{index}/{count}"))
        .collect();
    match missing.as_slice() {
        [] => Ok(()),
        [one] => bail!("segment {one} is missing; got {got}"),
        many => bail!("segments {} are missing; got {got}", many.join(", ")),
    }
}

/// The first way `b` was run differently from `a`, if any.
fn difference(a: &Report, b: &Report) -> Option<String> {
    if a.scenario != b.scenario {
        return Some(format!("{} against {}", b.scenario, a.scenario));
    }
    if a.client != b.client {
        return Some(format!("client {} against {}", b.client, a.client));
    }
    let names = a.params.keys().chain(b.params.keys());
    for name in names {
        let (x, y) = (a.params.get(name), b.params.get(name));
        if x != y {
            let shown =
                |v: Option<&serde_json::Value>| v.map_or("absent".into(), |v| v.to_string());
            return Some(format!("{name}={} against {name}={}", shown(y), shown(x)));
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::report::{self, LATENCY};

    /// Segment `index` of `count` of an open-model run of 10 connections, `n` messages.
    fn part(index: u32, count: u32, n: u64) -> (String, Report) {
        let segment = Segment { index, count };
        let mut report = Report::new("open-model", "ws-client", "ws://x/", "msg/s")
            .param("connections", 10)
            .param("rate_per_connection", 5.0);
        report.timed(n, n * 16, Duration::from_millis(2000 + u64::from(index)));
        let mut histogram = report::new_histogram();
        for k in 1..=n {
            report::record(&mut histogram, Duration::from_micros(k));
        }
        report.histogram(LATENCY, &histogram).unwrap();
        report.segment = Some(segment);
        report.started_unix_s = Some(1000.0 + f64::from(index) / 10.0);
        let share = segment.share(10);
        report
            .figures
            .insert("segment_connections".into(), share.into());
        report.figures.insert("client_cpu_s".into(), 0.5.into());
        report
            .figures
            .insert("client_cpu_us_per_message".into(), (5e5 / n as f64).into());
        (format!("part{index}.json"), report)
    }

    #[test]
    fn four_segments_merge_into_one_run() {
        let merged = merge((0..4).map(|i| part(i, 4, 100 + u64::from(i))).collect()).unwrap();
        assert_eq!(merged.count, 406);
        assert_eq!(merged.runs, 4);
        assert_eq!(merged.segment, None);
        assert!(
            (merged.elapsed_s - 2.003).abs() < 1e-9,
            "{}",
            merged.elapsed_s
        );
        assert!(
            (merged.rate - 406.0 / 2.003).abs() < 1e-6,
            "{}",
            merged.rate
        );
        assert_eq!(merged.main_summary().unwrap().count, 406);
        assert_eq!(merged.figures["segment_connections"], 10);
        let spread = merged.figures["start_spread_s"].as_f64().unwrap();
        assert!((spread - 0.3).abs() < 1e-6, "{spread}");
        // Four workers' CPU time, over all their messages.
        assert_eq!(merged.figures["client_cpu_s"], 2.0);
        let per_message = merged.figures["client_cpu_us_per_message"]
            .as_f64()
            .unwrap();
        assert!((per_message - 2e6 / 406.0).abs() < 1e-6, "{per_message}");
    }

    fn refusal(named: Vec<(String, Report)>) -> String {
        format!("{:#}", merge(named).expect_err("a refused set"))
    }

    #[test]
    fn a_missing_or_duplicated_segment_is_refused_by_name() {
        let missing = refusal([0, 1, 3].map(|i| part(i, 4, 10)).into());
        assert_eq!(missing, "segment 2/4 is missing; got 0/4, 1/4, 3/4");
        let two_missing = refusal([0, 3].map(|i| part(i, 4, 10)).into());
        assert_eq!(two_missing, "segments 1/4, 2/4 are missing; got 0/4, 3/4");
        let mut twice: Vec<_> = (0..4).map(|i| part(i, 4, 10)).collect();
        twice.push(("again.json".into(), part(1, 4, 10).1));
        let duplicated = refusal(twice);
        assert!(
            duplicated.starts_with("segment 1/4 is there 2 times (part1.json, again.json)"),
            "{duplicated}"
        );
    }

    #[test]
    fn mismatched_segments_are_refused() {
        let mut other_n: Vec<_> = (0..3).map(|i| part(i, 4, 10)).collect();
        other_n.push(part(3, 5, 10));
        assert!(refusal(other_n).contains("the same N"));
        let mut other_rate: Vec<_> = (0..4).map(|i| part(i, 4, 10)).collect();
        other_rate[2]
            .1
            .params
            .insert("rate_per_connection".into(), 6.0.into());
        let message = refusal(other_rate);
        assert!(
            message.contains("rate_per_connection=6.0 against rate_per_connection=5.0"),
            "{message}"
        );
        let mut whole: Vec<_> = (0..4).map(|i| part(i, 4, 10)).collect();
        whole[0].1.segment = None;
        assert!(refusal(whole).contains("whole run"));
    }

    #[test]
    fn whole_runs_still_merge_side_by_side() {
        let mut a = part(0, 1, 100);
        let b = part(0, 1, 50);
        a.1.segment = None;
        let merged = merge(vec![a.clone(), b]).unwrap();
        assert_eq!(merged.count, 150);
        // Rates of runs side by side add up, as before segments existed.
        assert!(
            (merged.rate - (100.0 + 50.0) / 2.0).abs() < 1e-6,
            "{}",
            merged.rate
        );
        assert!(!merged.figures.contains_key("start_spread_s"));
    }
}
