//! Prints a report: a human table on stdout, or one JSON object with `--json`.

use std::fmt::Write as _;
use std::io::Write as _;

use anyhow::{Context, Result};

use crate::report::Report;

/// Writes `report` to stdout as JSON (one line) or as a table.
pub(crate) fn emit(report: &Report, json: bool) -> Result<()> {
    emit_with(report, json, table)
}

/// Writes `report` to stdout as JSON (one line) or as the text `table` makes of it.
pub(crate) fn emit_with(report: &Report, json: bool, table: fn(&Report) -> String) -> Result<()> {
    let text = if json {
        let mut line = serde_json::to_string(report).context("serializing the report")?;
        line.push('\n');
        line
    } else {
        table(report)
    };
    let mut stdout = std::io::stdout().lock();
    stdout
        .write_all(text.as_bytes())
        .and_then(|()| stdout.flush())
        .context("writing to stdout")
}

/// The report as a few lines of text.
pub(crate) fn table(report: &Report) -> String {
    let mut out = String::new();
    let params: Vec<String> = report
        .params
        .iter()
        .map(|(name, value)| match value {
            serde_json::Value::String(s) => format!("{name}={s}"),
            other => format!("{name}={other}"),
        })
        .collect();
    let runs = if report.runs > 1 {
        format!(" ({} runs merged)", report.runs)
    } else {
        String::new()
    };
    let _ = writeln!(
        out,
        "{} | client {} | {}{runs}\n  {}",
        report.scenario,
        report.client,
        report.url,
        params.join(" ")
    );
    let _ = write!(
        out,
        "  {} done, {} errors in {:.2}s: {} {}",
        report.count,
        report.errors,
        report.elapsed_s,
        human_rate(report.rate),
        report.rate_unit
    );
    if let Some(mb) = report.mb_per_s {
        let _ = write!(out, ", {mb:.1} MB/s");
    }
    out.push('\n');
    // Single figures on one line, lists (per-slice figures) on a line each.
    let (lists, single): (Vec<_>, Vec<_>) = report.figures.iter().partition(|(_, v)| v.is_array());
    if !single.is_empty() {
        let figures: Vec<String> = single
            .iter()
            .map(|(name, value)| format!("{name}={value}"))
            .collect();
        let _ = writeln!(out, "  {}", figures.join(" "));
    }
    for (name, value) in lists {
        let _ = writeln!(out, "  {name}: {value}");
    }
    if !report.summary.is_empty() {
        let _ = writeln!(
            out,
            "  {:<10} {:>9} {:>9} {:>9} {:>9} {:>9} {:>9} {:>9}",
            "histogram", "count", "p50", "p90", "p99", "p99.9", "max", "mean"
        );
        for (name, s) in &report.summary {
            let _ = writeln!(
                out,
                "  {:<10} {:>9} {:>9} {:>9} {:>9} {:>9} {:>9} {:>9}",
                name,
                s.count,
                micros(s.p50),
                micros(s.p90),
                micros(s.p99),
                micros(s.p99_9),
                micros(s.max),
                micros(s.mean)
            );
        }
    }
    out
}

/// A duration given in microseconds, with a fitting unit: `21.3us`, `4.21ms`, `1.50s`.
pub(crate) fn micros(us: f64) -> String {
    if us < 1000.0 {
        format!("{us:.1}us")
    } else if us < 1_000_000.0 {
        format!("{:.2}ms", us / 1000.0)
    } else {
        format!("{:.2}s", us / 1_000_000.0)
    }
}

/// A rate with a k/M suffix: `24.4k`, `4.25M`.
pub(crate) fn human_rate(rate: f64) -> String {
    if rate >= 1e6 {
        format!("{:.2}M", rate / 1e6)
    } else if rate >= 1e4 {
        format!("{:.1}k", rate / 1e3)
    } else {
        format!("{rate:.0}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn units_fit_the_size() {
        assert_eq!(micros(21.34), "21.3us");
        assert_eq!(micros(4210.0), "4.21ms");
        assert_eq!(micros(1_500_000.0), "1.50s");
        assert_eq!(human_rate(4_250_000.0), "4.25M");
        assert_eq!(human_rate(24_400.0), "24.4k");
        assert_eq!(human_rate(950.0), "950");
    }
}
