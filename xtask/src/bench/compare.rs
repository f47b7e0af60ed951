//! The suite's `ws-bench compare` figures (issue 13's target table): each a single run in
//! which the contenders take turns in short slices, on servers the run starts itself; the
//! table rows (each contender's own figure, ws-client's ratio to it with its spread) and the
//! targets, each met or missed.

use serde_json::{Value, json};

use super::suite::Group;

/// A target on one ratio: ws-client's `metric` over `contender`'s, `at_least` or at most
/// `bound`.
#[derive(Debug, Clone, Copy)]
pub(super) struct Target {
    pub(super) contender: &'static str,
    pub(super) metric: &'static str,
    pub(super) at_least: bool,
    pub(super) bound: f64,
}

const fn at_least(contender: &'static str, metric: &'static str, bound: f64) -> Target {
    Target {
        contender,
        metric,
        at_least: true,
        bound,
    }
}

const fn at_most(contender: &'static str, metric: &'static str, bound: f64) -> Target {
    Target {
        contender,
        metric,
        at_least: false,
        bound,
    }
}

/// Name, `compare` arguments and targets of every figure.
fn figures() -> Vec<(&'static str, Vec<&'static str>, Vec<Target>)> {
    let all = "ws-client,tcp,tungstenite,fastwebsockets";
    let with_server = "ws-client,tcp,tungstenite,fastwebsockets,ws-client@fws-server";
    vec![
        (
            "compare: one-way, 16 B",
            vec!["one-way", "--size", "16", "--contenders", with_server],
            vec![
                at_least("tcp", "rate", 0.5),
                at_least("fastwebsockets", "rate", 1.5),
            ],
        ),
        (
            "compare: echo, 16 B, 256 in flight",
            vec![
                "echo",
                "--size",
                "16",
                "--window",
                "256",
                "--contenders",
                with_server,
            ],
            vec![
                at_least("tungstenite", "rate", 1.3),
                at_least("fastwebsockets", "rate", 1.0),
            ],
        ),
        (
            "compare: one-way, 64 KiB",
            vec!["one-way", "--size", "65536", "--contenders", all],
            vec![at_least("tcp", "rate", 0.95)],
        ),
        (
            "compare: echo, 64 KiB, 16 in flight",
            vec![
                "echo",
                "--size",
                "65536",
                "--window",
                "16",
                "--contenders",
                all,
            ],
            vec![at_least("tcp", "rate", 0.95)],
        ),
        (
            "compare: round trip, 16 B",
            vec!["rtt", "--size", "16", "--contenders", all],
            vec![
                at_most("tcp", "p50_us", 1.05),
                at_most("tcp", "p99_us", 1.15),
                at_most("fastwebsockets", "p50_us", 1.0),
                at_most("fastwebsockets", "p99_us", 1.0),
            ],
        ),
        (
            "compare: connect + upgrade",
            vec!["connect", "--contenders", all],
            vec![at_most("tcp", "p50_us", 1.5)],
        ),
        (
            "compare: wss:// round trip, 16 B",
            vec![
                "rtt",
                "--tls",
                "--size",
                "16",
                "--contenders",
                "ws-client,tungstenite",
            ],
            vec![at_most("tungstenite", "p50_us", 1.0)],
        ),
        (
            "compare: wss:// one-way, 64 KiB",
            vec![
                "one-way",
                "--tls",
                "--size",
                "65536",
                "--contenders",
                "ws-client,tungstenite",
            ],
            vec![at_least("tungstenite", "rate", 1.2)],
        ),
    ]
}

/// The `compare` groups (metric "compare"), each one run.
pub(super) fn groups(test_servers: &str, quick: bool) -> Vec<Group> {
    let (slices, slice) = if quick {
        ("6", "100ms")
    } else {
        ("20", "250ms")
    };
    figures()
        .into_iter()
        .map(|(name, args, _)| {
            let mut run = vec!["compare".to_owned()];
            run.extend(args.iter().map(|a| (*a).to_owned()));
            for extra in [
                "--server-bin",
                test_servers,
                "--slices",
                slices,
                "--slice",
                slice,
            ] {
                run.push(extra.to_owned());
            }
            run.push("--json".into());
            Group {
                name,
                metric: "compare",
                runs: vec![("ws-client vs others", run)],
            }
        })
        .collect()
}

/// The targets of group `name`, judged on its `report` (`met`: null when the ratio is
/// missing).
pub(super) fn judge(name: &str, report: &Value) -> Vec<Value> {
    let Some((_, _, targets)) = figures().into_iter().find(|(n, _, _)| *n == name) else {
        return Vec::new();
    };
    targets
        .iter()
        .map(|t| {
            let spread = &report["figures"]["ratios"][t.contender][t.metric];
            let median = spread["median"].as_f64();
            let met = median.map(|m| {
                if t.at_least {
                    m >= t.bound
                } else {
                    m <= t.bound
                }
            });
            json!({
                "contender": t.contender,
                "metric": t.metric,
                "target": format!("{} {}", if t.at_least { ">=" } else { "<=" }, t.bound),
                "ratio": spread,
                "met": met,
            })
        })
        .collect()
}

/// A `compare` run's rows: per contender its own figures, ws-client's ratio to it (median,
/// p25..p75, min..max) and the targets on it.
pub(super) fn rows(name: &str, report: &Value) -> String {
    let mut out = String::new();
    let figures = &report["figures"];
    let judged = judge(name, report);
    let contenders = report["params"]["contenders"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    for contender in contenders.iter().filter_map(Value::as_str) {
        let own = &figures["contenders"][contender];
        let mut text = String::new();
        for (metric, value) in own.as_object().into_iter().flatten() {
            if let Some(median) = value["median"].as_f64() {
                text.push_str(&format!("{metric} {median:.1}; "));
            }
        }
        for (metric, ratio) in figures["ratios"][contender]
            .as_object()
            .into_iter()
            .flatten()
        {
            if metric == "mb_per_s" {
                continue;
            }
            let get = |k: &str| ratio[k].as_f64().unwrap_or(f64::NAN);
            text.push_str(&format!(
                "ws-client/it {metric} {:.3} (p25..p75 {:.3}..{:.3}, min..max {:.3}..{:.3})",
                get("median"),
                get("p25"),
                get("p75"),
                get("min"),
                get("max")
            ));
            for target in judged
                .iter()
                .filter(|t| t["contender"] == contender && t["metric"] == metric.as_str())
            {
                let verdict = match target["met"].as_bool() {
                    Some(true) => "met",
                    Some(false) => "MISSED",
                    None => "unknown",
                };
                text.push_str(&format!(
                    " [target {}: {verdict}]",
                    target["target"].as_str().unwrap_or("?")
                ));
            }
            text.push_str("; ");
        }
        out.push_str(&format!(
            "{name:<32} {contender:<24} {}\n",
            text.trim_end_matches("; ")
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets_are_judged_on_the_median_ratio() {
        let report = json!({"params": {"contenders": ["ws-client", "tcp"]}, "figures": {
            "contenders": {"ws-client": {"rate": {"median": 900.0}}, "tcp": {"rate": {"median": 1000.0}}},
            "ratios": {"tcp": {"rate": {"median": 0.9, "p25": 0.85, "p75": 0.95, "min": 0.8, "max": 1.0}}},
        }});
        let judged = judge("compare: one-way, 64 KiB", &report);
        assert_eq!(judged.len(), 1);
        assert_eq!(judged[0]["met"], false);
        let judged = judge("compare: one-way, 16 B", &report);
        assert_eq!(judged[0]["met"], true, "0.9 >= 0.5");
        assert_eq!(judged[1]["met"], Value::Null, "no fastwebsockets ratio");
        let rows = rows("compare: one-way, 64 KiB", &report);
        assert!(
            rows.contains("ws-client/it rate 0.900 (p25..p75 0.850..0.950, min..max 0.800..1.000) [target >= 0.95: MISSED]"),
            "{rows}"
        );
    }
}
