//! Issue 13's targets, judged on each run of the suite: the `compare` figures (in
//! bench/compare.rs), the RPC figures of an `rpc-compare` run (the target each comparison
//! carries in its report) and the open model's tail (p99 <= 5 ms, p99.9 <= 20 ms, no errors).
//! Each target is a JSON object with `met` (true, false, or null when the figure is missing).

use serde_json::{Value, json};

use super::open_model;

/// The open model's targets: (metric, the report's latency key, bound in microseconds).
const OPEN_MODEL: [(&str, &str, f64); 2] =
    [("p99_us", "p99", 5000.0), ("p99.9_us", "p99.9", 20000.0)];

/// The targets of one run (`contender` of group `name`, whose metric is `metric`).
pub(super) fn judge(name: &str, metric: &str, contender: &str, report: &Value) -> Vec<Value> {
    match metric {
        "compare" => super::compare::judge(name, report),
        "ratio" => rpc_compare(report),
        open_model::METRIC => open_model_tail(contender, report),
        _ => Vec::new(),
    }
}

/// Whether any target of `targets` was missed (`met` false; an unknown one is not missed).
pub(super) fn any_missed(targets: &[Value]) -> bool {
    targets.iter().any(|t| t["met"] == false)
}

/// An `rpc-compare` report's comparisons, each against the target it names (`>=5`).
fn rpc_compare(report: &Value) -> Vec<Value> {
    let Some(comparisons) = report["figures"]["comparisons"].as_object() else {
        return Vec::new();
    };
    comparisons
        .iter()
        .filter_map(|(figure, c)| {
            let target = c["target"].as_str()?;
            let (at_least, bound) = parse_bound(target)?;
            let median = c["ratio"]["median"].as_f64();
            let met = median.map(|m| if at_least { m >= bound } else { m <= bound });
            Some(json!({
                "contender": c["base"],
                "metric": figure,
                "target": format!("{} {bound}", if at_least { ">=" } else { "<=" }),
                "ratio": c["ratio"],
                "met": met,
            }))
        })
        .collect()
}

/// `>=5` or `<= 1.5` into (at least, bound).
fn parse_bound(text: &str) -> Option<(bool, f64)> {
    let text = text.trim();
    let (at_least, rest) = if let Some(rest) = text.strip_prefix(">=") {
        (true, rest)
    } else {
        (false, text.strip_prefix("<=")?)
    };
    Some((at_least, rest.trim().parse().ok()?))
}

/// The open model's tail and errors for one run (`contender`: which server it ran against).
fn open_model_tail(contender: &str, report: &Value) -> Vec<Value> {
    let latency = &report["summary"]["latency"];
    let mut targets: Vec<Value> = OPEN_MODEL
        .iter()
        .map(|&(metric, key, bound)| {
            let value = latency[key].as_f64();
            json!({
                "contender": contender,
                "metric": metric,
                "target": format!("<= {bound}"),
                "value": value,
                "met": value.map(|v| v <= bound),
            })
        })
        .collect();
    let errors = report["errors"].as_u64();
    targets.push(json!({
        "contender": contender,
        "metric": "errors",
        "target": "= 0",
        "value": errors,
        "met": errors.map(|e| e == 0),
    }));
    targets
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rpc_compare_figures_are_held_to_the_target_they_carry() {
        let report = json!({"figures": {"comparisons": {
            "client_vs_jsonrpsee": {"base": "jsonrpsee@test-servers", "target": ">=5",
                                    "ratio": {"median": 8.1}},
            "rpc_vs_echo": {"base": "ws-client-echo-16B", "target": ">=0.6",
                            "ratio": {"median": 0.45}},
        }}});
        let judged = judge("RPC", "ratio", "ws-client vs contender", &report);
        assert_eq!(judged.len(), 2);
        let by = |m: &str| judged.iter().find(|t| t["metric"] == m).unwrap().clone();
        assert_eq!(by("client_vs_jsonrpsee")["met"], true);
        assert_eq!(by("rpc_vs_echo")["met"], false);
        assert_eq!(by("rpc_vs_echo")["target"], ">= 0.6");
        assert!(any_missed(&judged));
        // A resilient-cost run (also metric "ratio") carries no comparisons: no targets.
        assert!(
            judge(
                "resilient",
                "ratio",
                "x",
                &json!({"figures": {"ratio": 0.9}})
            )
            .is_empty()
        );
    }

    #[test]
    fn the_open_model_tail_is_judged_per_server() {
        let report = json!({"errors": 0,
            "summary": {"latency": {"p50": 300.0, "p99": 4000.0, "p99.9": 25000.0}}});
        let judged = judge(
            "open model",
            open_model::METRIC,
            "test-servers load",
            &report,
        );
        let met: Vec<(String, Value)> = judged
            .iter()
            .map(|t| (t["metric"].as_str().unwrap().to_owned(), t["met"].clone()))
            .collect();
        assert_eq!(
            met,
            [
                ("p99_us".to_owned(), json!(true)),
                ("p99.9_us".to_owned(), json!(false)),
                ("errors".to_owned(), json!(true)),
            ]
        );
        assert!(judged.iter().all(|t| t["contender"] == "test-servers load"));
        assert!(any_missed(&judged));
        assert!(!any_missed(&judged[..1]));
    }

    #[test]
    fn an_unknown_figure_is_not_a_miss() {
        let judged = judge("open model", open_model::METRIC, "echo", &json!({}));
        assert!(judged.iter().all(|t| t["met"].is_null()));
        assert!(!any_missed(&judged));
    }
}
