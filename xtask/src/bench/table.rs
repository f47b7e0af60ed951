//! The comparison table of `cargo xtask bench`: one row per contender, with its ratio to
//! the first contender of its group (or, for a run that compares two sides itself, the
//! ratio it measured and its spread; for a `compression` run, a row per payload size and
//! deflate setting); after it, every missed target with the flamegraph recorded for it.

use serde_json::Value;

/// The comparison: one row per contender, the ratio against the group's first contender.
pub(super) fn comparison(groups: &[Value]) -> String {
    let mut out = format!(
        "{:<32} {:<24} {:>12} {:>10} {:>10} {:>10}  {}\n",
        "benchmark", "contender", "rate/s", "MB/s", "p50", "p99", "ratio"
    );
    for group in groups {
        let metric = group["metric"].as_str().unwrap_or("rate");
        let results = group["results"].as_array().cloned().unwrap_or_default();
        let figure = |result: &Value| -> Option<f64> {
            let report = &result["report"];
            match metric {
                "p50" => report["summary"]["latency"]["p50"].as_f64(),
                _ => report["rate"].as_f64(),
            }
        };
        let baseline = results.first().and_then(figure);
        let baseline_name = results
            .first()
            .and_then(|r| r["contender"].as_str())
            .unwrap_or("");
        for result in &results {
            let name = group["name"].as_str().unwrap_or("");
            let contender = result["contender"].as_str().unwrap_or("");
            if let Some(error) = result["error"].as_str() {
                out.push_str(&format!("{name:<32} {contender:<24} failed: {error}\n"));
                continue;
            }
            let report = &result["report"];
            if metric == "compression" {
                out.push_str(&compression_rows(name, report));
                continue;
            }
            if metric == "compare" {
                out.push_str(&super::compare::rows(name, report));
                continue;
            }
            if metric == super::open_model::METRIC {
                out.push_str(&super::open_model::row(name, contender, report));
                continue;
            }
            let latency = &report["summary"]["latency"];
            let micros = |v: &Value| v.as_f64().map_or_else(|| "-".to_owned(), micros);
            let ratio = match (figure(result), baseline) {
                _ if metric == "ratio" => measured_ratio(&report["figures"]),
                (Some(value), Some(base)) if base > 0.0 => {
                    format!("{:.2}x {metric} of {baseline_name}", value / base)
                }
                _ => "-".into(),
            };
            out.push_str(&format!(
                "{name:<32} {contender:<24} {:>12.0} {:>10} {:>10} {:>10}  {ratio}\n",
                report["rate"].as_f64().unwrap_or(0.0),
                report["mb_per_s"]
                    .as_f64()
                    .map_or("-".into(), |mb| format!("{mb:.1}")),
                micros(&latency["p50"]),
                micros(&latency["p99"]),
            ));
        }
    }
    out.push_str(&missed(groups));
    out
}

/// One line per missed target: group, what it is held to, the figure, and its flamegraph
/// (`cargo xtask bench --flamegraphs`) if one was recorded.
fn missed(groups: &[Value]) -> String {
    let mut out = String::new();
    for group in groups {
        let name = group["name"].as_str().unwrap_or("");
        for target in group["targets"].as_array().into_iter().flatten() {
            if target["met"] != false {
                continue;
            }
            let figure = target["ratio"]["median"]
                .as_f64()
                .or_else(|| target["value"].as_f64())
                .map_or_else(|| "?".to_owned(), |v| format!("{v:.3}"));
            let profile = target["flamegraph"]
                .as_str()
                .map_or_else(|| "no profile".to_owned(), |p| format!("profile {p}"));
            out.push_str(&format!(
                "MISSED {name}: {} {} {} (measured {figure}); {profile}\n",
                target["contender"].as_str().unwrap_or(""),
                target["metric"].as_str().unwrap_or(""),
                target["target"].as_str().unwrap_or(""),
            ));
        }
    }
    if !out.is_empty() {
        out.insert(0, '\n');
    }
    out
}

/// A ratio a run measured itself (`resilient-cost`, `rpc-compare`): median, quartiles,
/// range, count.
fn measured_ratio(figures: &Value) -> String {
    let get = |name: &str| figures[name].as_f64().unwrap_or(f64::NAN);
    let slices = figures["ratios"].as_array().map_or(0, Vec::len);
    // `rpc-compare` names its figure; `resilient-cost` does not.
    let what = figures["figure"].as_str().unwrap_or("resilient/plain");
    format!(
        "{:.3} {what} (p25..p75 {:.3}..{:.3}, min..max {:.3}..{:.3}, {slices} slices)",
        get("ratio"),
        get("ratio_p25"),
        get("ratio_p75"),
        get("ratio_min"),
        get("ratio_max")
    )
}

/// A `compression` run: per case, wire bytes per payload byte, CPU per message on both
/// sides, and against deflate off the median ratios (MB/s with its quartiles).
fn compression_rows(name: &str, report: &Value) -> String {
    let mut out = String::new();
    for case in report["figures"]["cases"].as_array().into_iter().flatten() {
        let number = |v: &Value, places: usize| {
            v.as_f64()
                .map_or_else(|| "?".to_owned(), |v| format!("{v:.places$}"))
        };
        let size = case["size"].as_u64().unwrap_or(0);
        let label = format!("{name}, {} KiB", size / 1024);
        let deflate = case["deflate"].as_str().unwrap_or("?");
        let mut text = format!(
            "wire {}, CPU/msg client {}us server {}us",
            number(&case["wire_ratio"], 3),
            number(&case["client_cpu_us_per_msg"], 2),
            number(&case["server_cpu_us_per_msg"], 2)
        );
        let versus = &case["vs_off"];
        if versus.is_object() {
            let median = |figure: &str| number(&versus[figure]["median"], 2);
            text.push_str(&format!(
                "; vs off: MB/s {}x ({}..{}), CPU/msg client {}x server {}x",
                median("mb_per_s"),
                number(&versus["mb_per_s"]["p25"], 2),
                number(&versus["mb_per_s"]["p75"], 2),
                median("client_cpu_per_msg"),
                median("server_cpu_per_msg")
            ));
        }
        out.push_str(&format!(
            "{label:<32} {deflate:<24} {:>12.0} {:>10} {:>10} {:>10}  {text}\n",
            case["msg_per_s"].as_f64().unwrap_or(0.0),
            number(&case["mb_per_s"], 1),
            "-",
            "-"
        ));
    }
    out
}

/// Microseconds with a fitting unit: `21.3us`, `4.21ms`, `1.50s`.
fn micros(us: f64) -> String {
    if us < 1000.0 {
        format!("{us:.1}us")
    } else if us < 1_000_000.0 {
        format!("{:.2}ms", us / 1000.0)
    } else {
        format!("{:.2}s", us / 1_000_000.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn ratios_compare_with_the_first_contender() {
        let groups = vec![json!({"name": "rt", "metric": "p50", "results": [
            {"contender": "raw TCP", "report": {"rate": 1000.0, "summary": {"latency": {"p50": 20.0, "p99": 40.0}}}},
            {"contender": "ws-client", "report": {"rate": 800.0, "summary": {"latency": {"p50": 25.0, "p99": 50.0}}}},
        ]})];
        let table = comparison(&groups);
        assert!(table.contains("1.25x p50 of raw TCP"), "{table}");
    }

    #[test]
    fn a_run_that_compares_itself_shows_its_ratio_and_spread() {
        let figures = json!({"ratio": 0.9612, "ratio_p25": 0.95, "ratio_p75": 0.97,
            "ratio_min": 0.9, "ratio_max": 0.99, "ratios": [0.9, 0.95, 0.9612, 0.97, 0.99]});
        let groups = vec![
            json!({"name": "resilient / plain", "metric": "ratio", "results": [
                {"contender": "ws-client", "report": {"rate": 1000.0, "summary": {}, "figures": figures}},
            ]}),
        ];
        let table = comparison(&groups);
        assert!(
            table.contains(
                "0.961 resilient/plain (p25..p75 0.950..0.970, min..max 0.900..0.990, 5 slices)"
            ),
            "{table}"
        );
    }

    #[test]
    fn a_missed_target_names_its_flamegraph() {
        let groups = vec![
            json!({"name": "compare: one-way, 16 B", "metric": "compare",
            "results": [], "targets": [
                {"contender": "tcp", "metric": "rate", "target": ">= 0.5",
                 "ratio": {"median": 0.31}, "met": false,
                 "flamegraph": "target/bench/flamegraph-compare-one-way-16-b.svg"},
                {"contender": "fastwebsockets", "metric": "rate", "target": ">= 1.5",
                 "ratio": {"median": 1.7}, "met": true},
                {"contender": "test-servers load", "metric": "p99_us", "target": "<= 5000",
                 "value": 6100.0, "met": false},
            ]}),
        ];
        let table = comparison(&groups);
        assert!(
            table.contains(
                "MISSED compare: one-way, 16 B: tcp rate >= 0.5 (measured 0.310); \
                 profile target/bench/flamegraph-compare-one-way-16-b.svg\n"
            ),
            "{table}"
        );
        assert!(
            table.contains("p99_us <= 5000 (measured 6100.000); no profile"),
            "{table}"
        );
        assert!(!table.contains("fastwebsockets rate"), "{table}");
    }

    #[test]
    fn a_compression_run_shows_a_row_per_case() {
        let cases = json!([
            {"size": 1024, "deflate": "off", "msg_per_s": 1000.0, "mb_per_s": 1.0,
             "wire_ratio": 1.0, "client_cpu_us_per_msg": 0.5, "server_cpu_us_per_msg": null},
            {"size": 1024, "deflate": "on", "msg_per_s": 500.0, "mb_per_s": 0.5,
             "wire_ratio": 0.3, "client_cpu_us_per_msg": 2.0, "server_cpu_us_per_msg": 1.5,
             "vs_off": {"mb_per_s": {"median": 0.5, "p25": 0.45, "p75": 0.55},
                        "client_cpu_per_msg": {"median": 4.0}, "server_cpu_per_msg": {"median": 3.0}}},
        ]);
        let groups = vec![
            json!({"name": "deflate: one-way, JSON", "metric": "compression",
            "results": [{"contender": "ws-client", "report": {"figures": {"cases": cases}}}]}),
        ];
        let table = comparison(&groups);
        assert!(
            table.contains("wire 1.000, CPU/msg client 0.50us server ?us\n"),
            "{table}"
        );
        assert!(
            table.contains(
                "wire 0.300, CPU/msg client 2.00us server 1.50us; vs off: MB/s 0.50x \
                 (0.45..0.55), CPU/msg client 4.00x server 3.00x"
            ),
            "{table}"
        );
        assert!(table.contains("deflate: one-way, JSON, 1 KiB"), "{table}");
    }
}
