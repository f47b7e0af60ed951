//! The open-model figures of `cargo xtask bench`: many connections each sending at a fixed
//! rate against `test-servers load` and `test-servers echo` (full run: 10,000 connections x
//! 5 msg/s; quick: 1,000), latency from each message's intended send time, reported as
//! p50 / p99 / p99.9 with the errors and the client's own CPU time.

use serde_json::Value;

use super::suite::Group;

/// The metric name of these groups in the report (rows drawn by [`row`]).
pub(super) const METRIC: &str = "tail";

/// One group, two runs: the same open model against `load` and against `echo`.
pub(super) fn groups(load_url: &str, echo_url: &str, quick: bool) -> Vec<Group> {
    let (name, connections, ramp_up, duration) = if quick {
        ("open model, 1,000 x 5 msg/s", "1000", "1s", "3s")
    } else {
        ("open model, 10,000 x 5 msg/s", "10000", "5s", "20s")
    };
    let run = |url: &str| {
        [
            "open-model",
            url,
            "--connections",
            connections,
            "--rate",
            "5",
            "--ramp-up",
            ramp_up,
            "--duration",
            duration,
            "--json",
        ]
        .map(str::to_owned)
        .to_vec()
    };
    vec![Group {
        name,
        metric: METRIC,
        runs: vec![
            ("test-servers load", run(load_url)),
            ("test-servers echo", run(echo_url)),
        ],
    }]
}

/// A table row: rate, p50 and p99 in the usual columns, then p99.9, max, errors and the
/// client's CPU per message (so a tail from a starved client can be told apart).
pub(super) fn row(name: &str, contender: &str, report: &Value) -> String {
    let latency = &report["summary"]["latency"];
    let millis = |key: &str| {
        latency[key]
            .as_f64()
            .map_or_else(|| "-".to_owned(), |us| format!("{:.2}ms", us / 1000.0))
    };
    let figures = &report["figures"];
    let cpu = figures["client_cpu_us_per_message"]
        .as_f64()
        .map_or_else(|| "-".to_owned(), |us| format!("{us:.1}us"));
    format!(
        "{name:<32} {contender:<24} {:>12.0} {:>10} {:>10} {:>10}  p99.9 {}, max {}, errors {}, \
         client CPU {cpu}/msg\n",
        report["rate"].as_f64().unwrap_or(0.0),
        "-",
        millis("p50"),
        millis("p99"),
        millis("p99.9"),
        millis("max"),
        report["errors"].as_u64().unwrap_or(0),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn full_run_is_ten_thousand_connections_at_five_per_second_against_both_servers() {
        let groups = groups("ws://l/", "ws://e/", false);
        assert_eq!(groups.len(), 1);
        let runs = &groups[0].runs;
        assert_eq!(runs.len(), 2);
        for ((_, args), url) in runs.iter().zip(["ws://l/", "ws://e/"]) {
            assert_eq!(args[1], url);
            let after = |flag: &str| {
                let at = args.iter().position(|a| a == flag).unwrap();
                args[at + 1].clone()
            };
            assert_eq!(after("--connections"), "10000");
            assert_eq!(after("--rate"), "5");
            assert!(args.contains(&"--json".to_owned()));
        }
    }

    #[test]
    fn a_row_shows_the_tail_and_the_errors() {
        let report = json!({
            "rate": 50000.0, "errors": 2,
            "summary": {"latency": {"p50": 250.0, "p99": 4000.0, "p99.9": 12500.0, "max": 30000.0}},
            "figures": {"client_cpu_us_per_message": 11.5},
        });
        let row = row("open model", "test-servers load", &report);
        assert!(row.contains("4.00ms"), "{row}");
        assert!(row.contains("p99.9 12.50ms"), "{row}");
        assert!(row.contains("errors 2"), "{row}");
        assert!(row.contains("11.5us/msg"), "{row}");
    }
}
