//! `compare`'s report: each contender's own figures per round (median, quartiles, range)
//! and ws-client's figure over each other contender's, per round; as JSON or a table.

use std::fmt::Write as _;
use std::io::Write as _;

use anyhow::{Context, Result};
use serde_json::{Map, Value, json};

use super::args::{CompareArgs, Scenario};
use crate::interleave::{Rounds, rounded, spread_text};
use crate::report::Report;

/// The metrics of a scenario, with their units.
pub(crate) fn metrics(scenario: Scenario) -> &'static [(&'static str, &'static str)] {
    match scenario {
        Scenario::Rtt | Scenario::Connect => &[("p50_us", "us"), ("p99_us", "us")],
        Scenario::OneWay | Scenario::Echo => &[("rate", "msg/s"), ("mb_per_s", "MB/s")],
    }
}

/// The report: ws-client's totals as the run's count and rate; under `figures`,
/// `contenders` (each one's figures) and `ratios` (ws-client over each other contender,
/// with every round's value).
pub(crate) fn report(args: &CompareArgs, url: &str, rounds: &Rounds) -> Report {
    let unit = match args.scenario {
        Scenario::Rtt => "rt/s",
        Scenario::Connect => "conn/s",
        _ => "msg/s",
    };
    let names: Vec<&str> = args.contenders.iter().map(|k| k.name()).collect();
    let mut report = Report::new("compare", "ws-client", url, unit)
        .param("compare", args.scenario.name())
        .param("size", args.size)
        .param("contenders", names.clone())
        .param("slices", rounds.samples.len())
        .param("slice_ms", args.plan.slice.as_millis() as u64)
        .param("gap_ms", args.plan.gap.as_millis() as u64)
        .param("tls", args.tls);
    if args.scenario == Scenario::Echo {
        report = report.param("window", args.window);
    }
    let (count, took) = rounds.total(0);
    let bytes = match args.scenario {
        Scenario::OneWay | Scenario::Echo => count * args.size as u64,
        _ => 0,
    };
    report.timed(count, bytes, took);
    let rounds = with_mb_per_s(rounds, args);
    let mut contenders = Map::new();
    let mut ratios = Map::new();
    for (index, name) in names.iter().enumerate() {
        let (count, took) = rounds.total(index);
        let mut own = Map::new();
        own.insert("count".into(), count.into());
        own.insert("seconds".into(), rounded(took.as_secs_f64(), 3));
        for (metric, _) in metrics(args.scenario) {
            own.insert((*metric).into(), rounds.own(metric, index).json(2));
        }
        contenders.insert((*name).into(), Value::Object(own));
        if index == 0 {
            continue;
        }
        let mut versus = Map::new();
        for (metric, _) in metrics(args.scenario) {
            let mut spread = rounds.ratio(metric, 0, index).json(4);
            if let Value::Object(fields) = &mut spread {
                let values = rounds.ratios(metric, 0, index);
                let values: Vec<Value> = values.iter().map(|v| rounded(*v, 4)).collect();
                fields.insert("rounds".into(), values.into());
            }
            versus.insert((*metric).into(), spread);
        }
        ratios.insert((*name).into(), Value::Object(versus));
    }
    report
        .figures
        .insert("contenders".into(), Value::Object(contenders));
    report
        .figures
        .insert("ratios".into(), Value::Object(ratios));
    report
}

/// Adds what each contender sent (warm-up included) and each server's `stopped` line.
pub(crate) fn accounted(
    report: &mut Report,
    sent: &[(super::args::ContenderKind, u64)],
    servers: Map<String, Value>,
) {
    if let Some(Value::Object(contenders)) = report.figures.get_mut("contenders") {
        for (kind, sent) in sent {
            if let Some(Value::Object(own)) = contenders.get_mut(kind.name()) {
                own.insert("sent_with_warmup".into(), (*sent).into());
            }
        }
    }
    report
        .figures
        .insert("servers".into(), Value::Object(servers));
}

/// The rounds with an `mb_per_s` metric beside each rate.
fn with_mb_per_s(rounds: &Rounds, args: &CompareArgs) -> Rounds {
    let mut rounds = rounds.clone();
    for sample in rounds.samples.iter_mut().flatten() {
        let rate = sample.get("rate");
        sample
            .metrics
            .push(("mb_per_s", rate * args.size as f64 / 1e6));
    }
    rounds
}

/// Prints `report` as one JSON line or as the table.
pub(crate) fn emit(report: &Report, json: bool) -> Result<()> {
    let text = if json {
        serde_json::to_string(report).context("serializing the report")? + "\n"
    } else {
        table(report)
    };
    let mut stdout = std::io::stdout().lock();
    stdout
        .write_all(text.as_bytes())
        .and_then(|()| stdout.flush())
        .context("writing to stdout")
}

/// One row per contender: its own figures, then ws-client's over it.
fn table(report: &Report) -> String {
    let param = |name: &str| report.params.get(name).cloned().unwrap_or(Value::Null);
    let scenario = param("compare");
    let mut out = String::new();
    let _ = writeln!(
        out,
        "compare {} | {} B{}{} | {} rounds of {} ms slices, taking turns\n  own figure: \
         median (p25..p75) over rounds; ws-client / contender: median of per-round ratios \
         (p25..p75)",
        scenario.as_str().unwrap_or("?"),
        param("size"),
        param("window")
            .as_u64()
            .map_or_else(String::new, |w| format!(", {w} in flight")),
        if param("tls") == json!(true) {
            ", wss://"
        } else {
            ""
        },
        param("slices"),
        param("slice_ms"),
    );
    let empty = Map::new();
    let object = |name: &str| report.figures.get(name).and_then(Value::as_object);
    let contenders = object("contenders").unwrap_or(&empty);
    let ratios = object("ratios").unwrap_or(&empty);
    let metric_names: Vec<&str> = contenders
        .values()
        .next()
        .and_then(Value::as_object)
        .map(|o| {
            o.keys()
                .map(String::as_str)
                .filter(|k| !matches!(*k, "count" | "seconds" | "sent_with_warmup"))
                .collect()
        })
        .unwrap_or_default();
    let mut header = format!("  {:<22}", "contender");
    for metric in &metric_names {
        let _ = write!(header, " {:<26}", metric);
    }
    for metric in &metric_names {
        let _ = write!(header, " {:<22}", format!("ws-client/it {metric}"));
    }
    out.push_str(header.trim_end());
    out.push('\n');
    let order = param("contenders");
    let names = order
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(Value::as_str);
    for (name, own) in names.filter_map(|n| Some((n, contenders.get(n)?))) {
        let mut row = format!("  {name:<22}");
        for metric in &metric_names {
            let spread = &own[*metric];
            let text = match (
                spread["median"].as_f64(),
                spread["p25"].as_f64(),
                spread["p75"].as_f64(),
            ) {
                (Some(m), Some(low), Some(high)) => format!("{m:.1} ({low:.1}..{high:.1})"),
                _ => "-".into(),
            };
            let _ = write!(row, " {text:<26}");
        }
        for metric in &metric_names {
            let _ = write!(
                row,
                " {:<22}",
                spread_text(&ratios.get(name).map_or(Value::Null, |r| r[*metric].clone()))
            );
        }
        out.push_str(row.trim_end());
        out.push('\n');
    }
    out
}
