//! The comparison table of `cargo xtask bench`: one row per contender, with its ratio to
//! the first contender of its group (or, for a run that compares two sides itself, the
//! ratio it measured and its spread).

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
    out
}

/// A ratio a run measured itself (`resilient-cost`): median, quartiles, range, count.
fn measured_ratio(figures: &Value) -> String {
    let get = |name: &str| figures[name].as_f64().unwrap_or(f64::NAN);
    let slices = figures["ratios"].as_array().map_or(0, Vec::len);
    format!(
        "{:.3} resilient/plain (p25..p75 {:.3}..{:.3}, min..max {:.3}..{:.3}, {slices} slices)",
        get("ratio"),
        get("ratio_p25"),
        get("ratio_p75"),
        get("ratio_min"),
        get("ratio_max")
    )
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
}
