//! The soak's verdict, its `report.json` and the table it prints: what the client counted
//! (from its `summary` line), the faults injected, each process's memory after the warm-up,
//! and the problems that fail the run.

use std::fmt::Write as _;
use std::process::ExitStatus;
use std::time::Duration;

use serde_json::{Value, json};

use super::Observed;
use super::faults::Fault;
use super::memory::Series;

/// Memory is judged only over at least this long after the warm-up.
const MIN_WINDOW: Duration = Duration::from_secs(15);
const MIB: f64 = 1024.0 * 1024.0;

/// What the verdict is made from.
#[derive(Debug)]
pub(crate) struct Inputs<'a> {
    pub(crate) duration: Duration,
    pub(crate) warm_up: Duration,
    /// Most growth allowed after the warm-up, bytes.
    pub(crate) max_growth: f64,
    pub(crate) release: bool,
    pub(crate) observed: &'a Observed,
    pub(crate) series: &'a [Series],
    /// Each server's exit status once stopped (`None`: it had to be killed) and its
    /// `stopped` line (counters; the proxies' count the resets they made).
    pub(crate) stops: &'a [(String, Option<ExitStatus>, Value)],
    pub(crate) wall_time: Duration,
}

/// The outcome: the report, the table, and what failed (nothing: the run passed).
#[derive(Debug)]
pub(crate) struct Verdict {
    pub(crate) report: Value,
    pub(crate) table: String,
    pub(crate) problems: Vec<String>,
}

/// Judges a run.
pub(crate) fn judge(inputs: &Inputs<'_>) -> Verdict {
    let observed = inputs.observed;
    let mut problems = observed.problems.clone();
    let summary = observed.summary.clone().unwrap_or(Value::Null);
    match &observed.summary {
        None => problems.push("the client printed no summary (see target/soak/client.log)".into()),
        Some(summary) => {
            let reported = summary["problems"].as_array().into_iter().flatten();
            problems.extend(reported.filter_map(Value::as_str).map(str::to_owned));
            // The calls' timeout outlasts every fault of the schedule: a call that timed out
            // was lost (a request dropped on the way ends exactly so).
            let timeouts = summary["rpc"]["timeouts"].as_u64().unwrap_or(0);
            if timeouts > 0 {
                problems.push(format!(
                    "{timeouts} RPC calls timed out ({}, longer than any fault): lost",
                    shown(super::RPC_TIMEOUT)
                ));
            }
            let cuts = observed.faults[0] + observed.faults[3];
            let clients = summary["echo"]["clients"].as_u64().unwrap_or(0);
            if cuts > 0 && clients > 0 && summary["echo"]["reconnects"] == 0 {
                problems.push(format!(
                    "connections were cut {cuts} times but no echo client reconnected"
                ));
            }
        }
    }
    match observed.client_status {
        // 3: something lost or wrong, which the summary's problems say.
        Some(status) if status.success() || status.code() == Some(3) => {}
        Some(status) => problems.push(format!("the client failed ({status})")),
        None => problems.push("the client was killed".into()),
    }
    let mut stopped = serde_json::Map::new();
    for (name, status, line) in inputs.stops {
        stopped.insert(name.clone(), line.clone());
        if !status.is_some_and(|status| status.success()) {
            let how = status.map_or("killed".to_owned(), |status| status.to_string());
            problems.push(format!("{name} did not stop cleanly ({how})"));
        }
    }

    let (from, to) = (inputs.warm_up.as_secs_f64(), inputs.duration.as_secs_f64());
    let judged = inputs.duration >= inputs.warm_up + MIN_WINDOW;
    let memory_note = if judged {
        format!("memory judged from {from:.0} s to {to:.0} s (least-squares slope x window)")
    } else {
        format!(
            "memory not judged: a {} run leaves under {} after the {} warm-up",
            shown(inputs.duration),
            shown(MIN_WINDOW),
            shown(inputs.warm_up)
        )
    };
    let mut memory = serde_json::Map::new();
    let mut rows = String::new();
    for series in inputs.series {
        let fit = if judged { series.fit(from, to) } else { None };
        if judged && series.judged {
            match &fit {
                Some(fit) if fit.growth() > inputs.max_growth => problems.push(format!(
                    "{} grew {:.2} MiB after the warm-up (at most {:.2})",
                    series.name,
                    fit.growth() / MIB,
                    inputs.max_growth / MIB
                )),
                Some(_) => {}
                None => problems.push(format!("{}: too few memory samples", series.name)),
            }
        }
        let figures = series.to_json(from, fit.as_ref());
        let mib = |key: &str| {
            figures[key]
                .as_f64()
                .map_or("-".into(), |b| format!("{:.1}", b / MIB))
        };
        let slope = fit.map_or("-".into(), |fit| format!("{:.2}", fit.slope / 1024.0));
        let growth = fit.map_or("-".into(), |fit| format!("{:.2}", fit.growth() / MIB));
        let note = if series.judged {
            ""
        } else {
            "  (reported, not judged)"
        };
        let _ = writeln!(
            rows,
            "  {:<14}{:>13}{:>10}{:>10}{:>13}{:>12}{note}",
            series.name,
            mib("warm_up_bytes"),
            mib("last_bytes"),
            mib("max_bytes"),
            slope,
            growth
        );
        memory.insert(series.name.to_owned(), figures);
    }

    let faults: serde_json::Map<String, Value> = Fault::ALL
        .iter()
        .zip(observed.faults)
        .map(|(fault, count)| (fault.name().to_owned(), count.into()))
        .collect();
    let samples: serde_json::Map<String, Value> = inputs
        .series
        .iter()
        .map(|series| {
            let points: Vec<Value> = series.samples.iter().map(|&(t, b)| json!([t, b])).collect();
            (series.name.to_owned(), points.into())
        })
        .collect();
    let report = json!({
        "duration_s": to,
        "warm_up_s": from,
        "build": if inputs.release { "release" } else { "debug" },
        "wall_time_s": inputs.wall_time.as_secs_f64(),
        "faults": faults,
        "client": summary,
        "memory_judged": judged,
        "max_growth_bytes": inputs.max_growth,
        "memory": memory,
        "samples": samples,
        "stopped": stopped,
        "ok": problems.is_empty(),
        "problems": problems,
    });
    let mut proxies = (0, 0);
    for line in stopped.values().filter(|line| line["mode"] == "chaos") {
        proxies.0 += line["faults_reset"].as_u64().unwrap_or(0);
        proxies.1 += line["refused_down"].as_u64().unwrap_or(0);
    }
    let table = table(
        inputs,
        &summary,
        &faults,
        proxies,
        &memory_note,
        &rows,
        &problems,
    );
    Verdict {
        report,
        table,
        problems,
    }
}

/// The printed table.
fn table(
    inputs: &Inputs<'_>,
    summary: &Value,
    faults: &serde_json::Map<String, Value>,
    (resets, refused): (u64, u64),
    memory_note: &str,
    rows: &str,
    problems: &[String],
) -> String {
    let (echo, rpc) = (&summary["echo"], &summary["rpc"]);
    let n = |value: &Value| value.as_u64().map_or("-".into(), |n| n.to_string());
    let faults: Vec<String> = Fault::ALL
        .iter()
        .map(|fault| {
            let name = fault.name();
            format!("{} {}", faults[name], name.replace('_', " "))
        })
        .collect();
    let mut out = String::new();
    let _ = writeln!(
        out,
        "soak: {} of load ({} build), wall time {}",
        shown(inputs.duration),
        if inputs.release { "release" } else { "debug" },
        shown(Duration::from_secs(inputs.wall_time.as_secs()))
    );
    let _ = writeln!(
        out,
        "faults: {} (all cleared 3 s before the end); the proxies reset {resets} connections \
         and refused {refused} while down",
        faults.join(", ")
    );
    let _ = writeln!(
        out,
        "echo  {} clients x {}/s: sent {}, delivered {}, failed back {}, lost silently {}; \
         resent {}, duplicates {}, reconnects {}; latency p50 {}, p99 {}",
        n(&echo["clients"]),
        echo["rate_per_client"],
        n(&echo["sent"]),
        n(&echo["delivered"]),
        n(&echo["failed"]),
        n(&echo["lost"]),
        n(&echo["resent"]),
        n(&echo["duplicates"]),
        n(&echo["reconnects"]),
        latency(&echo["latency"]["p50_us"]),
        latency(&echo["latency"]["p99_us"]),
    );
    let _ = writeln!(
        out,
        "rpc   {} clients x {}/s: calls {}, ok {}, interrupted {}, errors {}, timeouts {}, \
         wrong {}, lost {}; reconnects {}; latency p50 {}, p99 {}",
        n(&rpc["clients"]),
        rpc["rate_per_client"],
        n(&rpc["calls"]),
        n(&rpc["ok"]),
        n(&rpc["interrupted"]),
        n(&rpc["errors"]),
        n(&rpc["timeouts"]),
        n(&rpc["wrong"]),
        n(&rpc["lost"]),
        n(&rpc["reconnects"]),
        latency(&rpc["latency"]["p50_us"]),
        latency(&rpc["latency"]["p99_us"]),
    );
    let _ = writeln!(out, "{memory_note}:");
    let _ = writeln!(
        out,
        "  {:<14}{:>13}{:>10}{:>10}{:>13}{:>12}",
        "process", "warm-up MiB", "last MiB", "max MiB", "slope KiB/s", "growth MiB"
    );
    out.push_str(rows);
    if problems.is_empty() {
        out.push_str("verdict: PASS");
    } else {
        let _ = write!(out, "verdict: FAIL\n  - {}", problems.join("\n  - "));
    }
    out
}

/// A condensed `progress` line of the client, with the last memory samples.
pub(crate) fn progress_line(progress: &Value, series: &[Series]) -> String {
    let (echo, rpc) = (&progress["echo"], &progress["rpc"]);
    let mut line = format!(
        "[{:>4.0} s] echo sent {} delivered {} unresolved {} failed {} reconnects {} | \
         rpc calls {} ok {} interrupted {} errors {} timeouts {} | RSS MiB",
        progress["t_s"].as_f64().unwrap_or(0.0),
        echo["sent"],
        echo["delivered"],
        echo["unresolved"],
        echo["failed"],
        echo["reconnects"],
        rpc["calls"],
        rpc["ok"],
        rpc["interrupted"],
        rpc["errors"],
        rpc["timeouts"],
    );
    for series in series.iter().filter(|series| series.judged) {
        if let Some(&(_, bytes)) = series.samples.last() {
            let _ = write!(line, " {} {:.1}", series.name, bytes as f64 / MIB);
        }
    }
    line
}

/// Microseconds as a person reads them.
fn latency(us: &Value) -> String {
    match us.as_f64() {
        None => "-".into(),
        Some(us) if us < 1000.0 => format!("{us:.0} us"),
        Some(us) if us < 1e6 => format!("{:.1} ms", us / 1e3),
        Some(us) => format!("{:.2} s", us / 1e6),
    }
}

fn shown(duration: Duration) -> String {
    humantime::format_duration(duration).to_string()
}

#[cfg(all(test, unix))]
mod tests {
    use std::os::unix::process::ExitStatusExt;

    use super::*;

    /// The verdict on a run whose client printed `summary` and exited 0, with one cut.
    fn judged(summary: Value) -> Verdict {
        let observed = Observed {
            faults: [1, 0, 0, 0],
            summary: Some(summary),
            client_status: Some(ExitStatus::from_raw(0)),
            problems: Vec::new(),
        };
        judge(&Inputs {
            duration: Duration::from_secs(20),
            warm_up: Duration::from_secs(30),
            max_growth: MIB,
            release: false,
            observed: &observed,
            series: &[],
            stops: &[],
            wall_time: Duration::from_secs(25),
        })
    }

    fn summary(rpc_timeouts: u64) -> Value {
        json!({
            "echo": { "clients": 1, "reconnects": 1 },
            "rpc": { "calls": 10, "ok": 10 - rpc_timeouts, "timeouts": rpc_timeouts },
            "problems": [],
        })
    }

    /// The soak's calls wait longer than any fault of its schedule lasts: one that timed
    /// out was lost, and a run with one fails.
    #[test]
    fn a_call_that_timed_out_fails_the_run() {
        assert_eq!(judged(summary(0)).problems, Vec::<String>::new());
        let verdict = judged(summary(3));
        assert!(
            verdict
                .problems
                .iter()
                .any(|p| p.contains("3 RPC calls timed out")),
            "{:?}",
            verdict.problems
        );
    }
}
