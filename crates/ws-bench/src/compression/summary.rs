//! `compression`'s report: per case and contender the wire bytes per payload byte, MB/s and
//! CPU per message on both sides, and against `off` the median of the per-round ratios with
//! quartiles and range; as JSON (`--json`) or as a table.

use std::fmt::Write as _;
use std::time::Duration;

use anyhow::Result;
use serde_json::{Value, json};

use super::args::{CompressionArgs, DeflateChoice};
use super::contender::{Outcome, Slice};
use super::{Case, cpu::ServerClock};
use crate::cli::ThroughputMode;
use crate::interleave::{Spread, rounded, spread_text};
use crate::report::Report;

/// Per-slice figures of one contender: MB/s, client and server CPU microseconds per message
/// (NaN where unknown or where a slice did nothing).
fn per_slice(slices: &[Slice], size: usize) -> [Vec<f64>; 3] {
    let per_message = |cpu: Option<Duration>, messages: u64| match cpu {
        Some(cpu) if messages > 0 => cpu.as_secs_f64() * 1e6 / messages as f64,
        _ => f64::NAN,
    };
    let mut figures: [Vec<f64>; 3] = Default::default();
    for slice in slices {
        let seconds = slice.took.as_secs_f64().max(1e-9);
        figures[0].push(slice.messages as f64 * size as f64 / seconds / 1e6);
        figures[1].push(per_message(slice.client_cpu, slice.messages));
        figures[2].push(per_message(slice.server_cpu, slice.messages));
    }
    figures
}

/// Median, quartiles and range of the finite `values` (`null` when there are none).
fn spread(values: &[f64]) -> Value {
    Spread::of(values).json(4)
}

/// CPU time per message in microseconds over the slices where it is known (a server
/// thread ending mid-slice leaves that slice unknown); `null` where none is.
fn total_per_message(slices: &[Slice], cpu: impl Fn(&Slice) -> Option<Duration>) -> Value {
    let (time, messages) = slices
        .iter()
        .filter_map(|s| Some((cpu(s)?, s.messages)))
        .fold((Duration::ZERO, 0), |(t, m), (cpu, n)| (t + cpu, m + n));
    if messages == 0 {
        return Value::Null;
    }
    rounded(time.as_secs_f64() * 1e6 / messages as f64, 3)
}

/// One contender's figures in one case; `base` is the `off` contender's per-slice figures.
fn contender(size: usize, outcome: &Outcome, base: &[Vec<f64>; 3]) -> Value {
    let slices = &outcome.slices;
    let figures = per_slice(slices, size);
    let messages: u64 = slices.iter().map(|s| s.messages).sum();
    let took: Duration = slices.iter().map(|s| s.took).sum();
    let seconds = took.as_secs_f64().max(1e-9);
    let ratio =
        |wire: u64, payload: u64| (payload > 0).then(|| rounded(wire as f64 / payload as f64, 4));
    let server = outcome.server;
    let mut entry = json!({
        "size": size,
        "deflate": outcome.choice.name(),
        "messages": messages,
        "sent_with_warmup": outcome.sent,
        "seconds": rounded(seconds, 3),
        "mb_per_s": rounded(messages as f64 * size as f64 / seconds / 1e6, 2),
        "msg_per_s": rounded(messages as f64 / seconds, 0),
        "client_cpu_us_per_msg": total_per_message(slices, |s| s.client_cpu),
        "server_cpu_us_per_msg": total_per_message(slices, |s| s.server_cpu),
        "server": server.map(|s| json!({
            "messages_in": s.messages_in, "bytes_in": s.bytes_in, "wire_bytes_in": s.wire_bytes_in,
            "messages_out": s.messages_out, "bytes_out": s.bytes_out, "wire_bytes_out": s.wire_bytes_out,
        })),
        "wire_ratio": server.and_then(|s| ratio(s.wire_bytes_in, s.bytes_in)),
        "wire_ratio_out": server.and_then(|s| ratio(s.wire_bytes_out, s.bytes_out)),
        "slices": {
            "mb_per_s": figures[0].iter().map(|v| rounded(*v, 2)).collect::<Vec<_>>(),
            "client_cpu_us_per_msg": figures[1].iter().map(|v| rounded(*v, 3)).collect::<Vec<_>>(),
            "server_cpu_us_per_msg": figures[2].iter().map(|v| rounded(*v, 3)).collect::<Vec<_>>(),
        },
    });
    if outcome.choice != DeflateChoice::Off {
        let ratios = |k: usize| -> Vec<f64> {
            figures[k]
                .iter()
                .zip(&base[k])
                .map(|(c, b)| c / b)
                .collect()
        };
        entry["vs_off"] = json!({
            "mb_per_s": spread(&ratios(0)),
            "client_cpu_per_msg": spread(&ratios(1)),
            "server_cpu_per_msg": spread(&ratios(2)),
        });
    }
    entry
}

/// The report: every case's contenders under `figures.cases`, the totals of every measured
/// slice as the report's count, bytes and time.
pub(super) fn report(args: &CompressionArgs, cases: &[Case]) -> Report {
    let url = args
        .url
        .clone()
        .unwrap_or_else(|| "test-servers perf, one started per contender and size".into());
    let clock = cases
        .iter()
        .flat_map(|c| &c.outcomes)
        .find_map(|o| o.clock)
        .map_or("unknown", ServerClock::name);
    let names: Vec<&str> = args.contenders.iter().map(|c| c.name()).collect();
    let mut report = Report::new("compression", "ws-client", &url, "msg/s")
        .param("mode", mode_name(args.mode))
        .param("sizes", args.sizes.clone())
        .param("contenders", names)
        .param("slices", args.plan.rounds)
        .param("slice_ms", args.plan.slice.as_millis() as u64)
        .param("gap_ms", args.plan.gap.as_millis() as u64)
        .param("server_cpu", clock);
    let (mut count, mut bytes, mut took) = (0, 0, Duration::ZERO);
    let mut entries = Vec::new();
    for case in cases {
        let base = case
            .outcomes
            .iter()
            .find(|o| o.choice == DeflateChoice::Off)
            .map(|o| per_slice(&o.slices, case.size))
            .unwrap_or_default();
        for outcome in &case.outcomes {
            for slice in &outcome.slices {
                count += slice.messages;
                bytes += slice.messages * case.size as u64;
                took += slice.took;
            }
            entries.push(contender(case.size, outcome, &base));
        }
    }
    report.timed(count, bytes, took);
    report.figures.insert("cases".into(), Value::Array(entries));
    report
}

fn mode_name(mode: ThroughputMode) -> &'static str {
    match mode {
        ThroughputMode::OneWay => "one-way",
        ThroughputMode::Echo => "echo",
    }
}

/// Prints `report` as one JSON line or as the table.
pub(crate) fn emit(report: &Report, json: bool) -> Result<()> {
    crate::output::emit_with(report, json, table)
}

/// The table: one row per case and contender.
pub(crate) fn table(report: &Report) -> String {
    let param = |name: &str| report.params.get(name).cloned().unwrap_or(Value::Null);
    let mode = param("mode");
    let echo = mode == "echo";
    let mut out = String::new();
    let _ = writeln!(
        out,
        "compression | {} JSON text messages | {}\n  {} slices of {} ms per contender, taking \
         turns; vs off: median of per-round ratios (p25..p75); server CPU: {}\n  wire/payload: \
         payload bytes after compression per byte before, from the server's counters \
         (frame headers not included){}",
        mode.as_str().unwrap_or("?"),
        report.url,
        param("slices"),
        param("slice_ms"),
        param("server_cpu").as_str().unwrap_or("?"),
        if echo {
            "; echo: client's / server's"
        } else {
            ""
        },
    );
    let _ = writeln!(
        out,
        "  {:<7} {:<20} {:>13} {:>8} {:>9} {:>9} | {:<21} {:<21} {:<21}",
        "size",
        "deflate",
        "wire/payload",
        "MB/s",
        "client",
        "server",
        "MB/s vs off",
        "client CPU/msg vs off",
        "server CPU/msg vs off"
    );
    let _ = writeln!(
        out,
        "  {:<7} {:<20} {:>13} {:>8} {:>9} {:>9}",
        "", "", "", "", "us/msg", "us/msg"
    );
    let empty = Vec::new();
    let cases = report.figures.get("cases").and_then(Value::as_array);
    for case in cases.unwrap_or(&empty) {
        let number = |v: &Value, places: usize| {
            v.as_f64()
                .map_or_else(|| "-".to_owned(), |v| format!("{v:.places$}"))
        };
        let wire = if echo {
            format!(
                "{}/{}",
                number(&case["wire_ratio"], 3),
                number(&case["wire_ratio_out"], 3)
            )
        } else {
            number(&case["wire_ratio"], 3)
        };
        let versus = |name: &str| spread_text(&case["vs_off"][name]);
        let row = format!(
            "  {:<7} {:<20} {:>13} {:>8} {:>9} {:>9} | {:<21} {:<21} {:<21}",
            size_name(case["size"].as_u64().unwrap_or(0)),
            case["deflate"].as_str().unwrap_or("?"),
            wire,
            number(&case["mb_per_s"], 1),
            number(&case["client_cpu_us_per_msg"], 2),
            number(&case["server_cpu_us_per_msg"], 2),
            versus("mb_per_s"),
            versus("client_cpu_per_msg"),
            versus("server_cpu_per_msg"),
        );
        out.push_str(row.trim_end());
        out.push('\n');
    }
    out
}

/// `1 KiB`, `64 KiB`, `100 B`.
fn size_name(size: u64) -> String {
    if size >= 1024 && size % 1024 == 0 {
        format!("{} KiB", size / 1024)
    } else {
        format!("{size} B")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spreads_skip_unknown_values_and_name_sizes() {
        let s = spread(&[2.0, f64::NAN, 1.0, 3.0, 4.0]);
        assert_eq!(s["median"], 2.5);
        assert_eq!(s["min"], 1.0);
        assert_eq!(s["count"], 4);
        assert_eq!(spread(&[f64::NAN]), Value::Null);
        assert_eq!(spread_text(&s), "2.50 (1.75..3.25)");
        assert_eq!(size_name(65_536), "64 KiB");
        assert_eq!(size_name(100), "100 B");
    }
}
