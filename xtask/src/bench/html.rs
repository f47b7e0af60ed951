//! The self-contained HTML page of `cargo xtask bench`: the comparison table, a latency
//! percentile curve per contender and throughput bars, as inline SVG (no scripts, no
//! network); each target met or missed, a missed one linked to its flamegraph if recorded.

use std::fmt::Write as _;

use serde_json::Value;

const COLORS: [&str; 4] = ["#6b7280", "#d97706", "#2563eb", "#059669"];
const POINTS: [(&str, &str); 6] = [
    ("min", "min"),
    ("p50", "p50"),
    ("p90", "p90"),
    ("p99", "p99"),
    ("p99.9", "p99.9"),
    ("max", "max"),
];
const WIDTH: f64 = 640.0;
const HEIGHT: f64 = 260.0;
const LEFT: f64 = 70.0;
const BOTTOM: f64 = 30.0;
const TOP: f64 = 16.0;

/// The whole page for the suite's `document` (as written to report.json).
pub(super) fn render(document: &Value, table: &str) -> String {
    let mut body = String::new();
    let _ = writeln!(
        body,
        "<p>{} run on {} cores, wall time {:.1}s. Ratios compare each contender with the \
         first of its group (lower latency / higher rate is better); a resilient / plain row is \
         measured within one run, the two connections alternating in short slices (the median \
         of the per-slice ratios, with quartiles and range); a deflate row comes from one \
         compression run the same way (off, on and no context takeover taking turns, each on \
         its own test-servers perf; wire: payload bytes after compression per byte before; vs \
         off: medians of per-round ratios). WebSocket sink: <code>{}</code>, echo: \
         <code>{}</code>.</p>",
        if document["quick"] == true {
            "Quick"
        } else {
            "Full"
        },
        document["cores"],
        document["wall_time_s"].as_f64().unwrap_or(0.0),
        escape(document["servers"]["websocket_sink"].as_str().unwrap_or("")),
        escape(document["servers"]["websocket_echo"].as_str().unwrap_or("")),
    );
    let _ = writeln!(body, "<pre>{}</pre>", escape(table));
    for group in document["groups"].as_array().into_iter().flatten() {
        let name = group["name"].as_str().unwrap_or("");
        let results = group["results"].as_array().cloned().unwrap_or_default();
        let _ = writeln!(body, "<h2>{}</h2>", escape(name));
        if results
            .iter()
            .any(|r| r["report"]["summary"]["latency"].is_object())
        {
            body.push_str(&percentile_chart(&results));
        }
        if group["metric"] == "rate" {
            body.push_str(&rate_bars(&results));
        }
        if group["metric"] == "compare" {
            body.push_str(&compare_table(group));
        } else {
            body.push_str(&target_list(group));
        }
    }
    format!(
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <title>ws-client benchmarks</title><style>\
         body{{font-family:system-ui,sans-serif;max-width:60rem;margin:2rem auto;padding:0 1rem;color:#111}}\
         pre{{background:#f3f4f6;padding:1rem;overflow-x:auto;font-size:.8rem}}\
         svg{{display:block;margin:.5rem 0 1.5rem}} text{{font-size:11px;fill:#374151}}\
         </style></head><body><h1>ws-client benchmarks</h1>\n{body}</body></html>\n"
    )
}

/// A `compare` group: each contender's own figures and ws-client's ratio to it (median,
/// quartiles, range), with the targets on it met or missed.
fn compare_table(group: &Value) -> String {
    let mut out = String::from(
        "<table border=\"1\" cellpadding=\"4\" style=\"border-collapse:collapse;font-size:.8rem\">\
         <tr><th>contender</th><th>own figures (median)</th><th>ws-client / contender: median \
         (p25..p75, min..max)</th><th>target</th></tr>\n",
    );
    for result in group["results"].as_array().into_iter().flatten() {
        let figures = &result["report"]["figures"];
        let names = result["report"]["params"]["contenders"].as_array().cloned();
        for name in names.unwrap_or_default().iter().filter_map(Value::as_str) {
            let own: Vec<String> = figures["contenders"][name]
                .as_object()
                .into_iter()
                .flatten()
                .filter_map(|(k, v)| Some(format!("{k} {:.1}", v["median"].as_f64()?)))
                .collect();
            let mut ratios = Vec::new();
            let mut verdicts = Vec::new();
            for (metric, r) in figures["ratios"][name].as_object().into_iter().flatten() {
                if metric == "mb_per_s" {
                    continue;
                }
                let get = |k: &str| r[k].as_f64().unwrap_or(f64::NAN);
                ratios.push(format!(
                    "{metric} {:.3} ({:.3}..{:.3}, {:.3}..{:.3})",
                    get("median"),
                    get("p25"),
                    get("p75"),
                    get("min"),
                    get("max")
                ));
            }
            for target in group["targets"].as_array().into_iter().flatten() {
                if target["contender"] != name {
                    continue;
                }
                let (verdict, color) = match target["met"].as_bool() {
                    Some(true) => ("met", "#059669"),
                    Some(false) => ("missed", "#dc2626"),
                    None => ("unknown", "#6b7280"),
                };
                verdicts.push(format!(
                    "{} {}: <b style=\"color:{color}\">{verdict}</b>{}",
                    escape(target["metric"].as_str().unwrap_or("")),
                    escape(target["target"].as_str().unwrap_or("")),
                    flamegraph_link(target)
                ));
            }
            let _ = writeln!(
                out,
                "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
                escape(name),
                escape(&own.join(", ")),
                escape(&ratios.join("; ")),
                verdicts.join("<br>")
            );
        }
    }
    out.push_str("</table>\n");
    out
}

/// The targets of a group that is not a `compare` run (RPC figures, the open model's tail).
fn target_list(group: &Value) -> String {
    let mut out = String::new();
    for target in group["targets"].as_array().into_iter().flatten() {
        let (verdict, color) = match target["met"].as_bool() {
            Some(true) => ("met", "#059669"),
            Some(false) => ("missed", "#dc2626"),
            None => ("unknown", "#6b7280"),
        };
        let figure = target["ratio"]["median"]
            .as_f64()
            .or_else(|| target["value"].as_f64())
            .map_or_else(|| "?".to_owned(), |v| format!("{v:.3}"));
        let _ = writeln!(
            out,
            "<li>{} {} {} (measured {figure}): <b style=\"color:{color}\">{verdict}</b>{}</li>",
            escape(target["contender"].as_str().unwrap_or("")),
            escape(target["metric"].as_str().unwrap_or("")),
            escape(target["target"].as_str().unwrap_or("")),
            flamegraph_link(target)
        );
    }
    if out.is_empty() {
        return out;
    }
    format!("<ul>\n{out}</ul>\n")
}

/// A link to a missed target's flamegraph (beside report.html in target/bench/), if any.
fn flamegraph_link(target: &Value) -> String {
    let Some(path) = target["flamegraph"].as_str() else {
        return String::new();
    };
    let file = path.rsplit('/').next().unwrap_or(path);
    format!(" (<a href=\"{}\">flamegraph</a>)", escape(file))
}

/// Latency at each percentile, one line per contender, on a log scale of microseconds.
fn percentile_chart(results: &[Value]) -> String {
    let series: Vec<(String, Vec<f64>)> = results
        .iter()
        .filter_map(|r| {
            let latency = &r["report"]["summary"]["latency"];
            let values: Option<Vec<f64>> = POINTS
                .iter()
                .map(|(key, _)| latency[*key].as_f64())
                .collect();
            Some((r["contender"].as_str()?.to_owned(), values?))
        })
        .collect();
    let all = series.iter().flat_map(|(_, v)| v.iter().copied());
    let low = all.clone().fold(f64::INFINITY, f64::min).max(0.1);
    let high = all.fold(0.0, f64::max).max(low * 10.0);
    let (low_decade, high_decade) = (low.log10().floor(), high.log10().ceil());
    let plot_w = WIDTH - LEFT - 120.0;
    let plot_h = HEIGHT - TOP - BOTTOM;
    let x = |i: usize| LEFT + plot_w * i as f64 / (POINTS.len() - 1) as f64;
    let y = |us: f64| {
        let t = (us.max(0.1).log10() - low_decade) / (high_decade - low_decade);
        TOP + plot_h * (1.0 - t)
    };
    let mut svg = format!(
        "<svg width=\"{WIDTH}\" height=\"{HEIGHT}\" viewBox=\"0 0 {WIDTH} {HEIGHT}\" \
         role=\"img\" aria-label=\"latency percentiles\">"
    );
    let mut decade = low_decade;
    while decade <= high_decade {
        let value = 10f64.powf(decade);
        let gy = y(value);
        let _ = write!(
            svg,
            "<line x1=\"{LEFT}\" x2=\"{}\" y1=\"{gy:.1}\" y2=\"{gy:.1}\" stroke=\"#e5e7eb\"/>\
             <text x=\"{}\" y=\"{:.1}\" text-anchor=\"end\">{}</text>",
            LEFT + plot_w,
            LEFT - 6.0,
            gy + 4.0,
            micros_label(value)
        );
        decade += 1.0;
    }
    for (i, (_, label)) in POINTS.iter().enumerate() {
        let _ = write!(
            svg,
            "<text x=\"{:.1}\" y=\"{}\" text-anchor=\"middle\">{label}</text>",
            x(i),
            HEIGHT - 10.0
        );
    }
    for (n, (name, values)) in series.iter().enumerate() {
        let color = COLORS[n % COLORS.len()];
        let points: Vec<String> = values
            .iter()
            .enumerate()
            .map(|(i, v)| format!("{:.1},{:.1}", x(i), y(*v)))
            .collect();
        let _ = write!(
            svg,
            "<polyline fill=\"none\" stroke=\"{color}\" stroke-width=\"2\" points=\"{}\"/>\
             <rect x=\"{}\" y=\"{}\" width=\"10\" height=\"10\" fill=\"{color}\"/>\
             <text x=\"{}\" y=\"{}\">{}</text>",
            points.join(" "),
            LEFT + plot_w + 14.0,
            TOP + 16.0 * n as f64,
            LEFT + plot_w + 28.0,
            TOP + 9.0 + 16.0 * n as f64,
            escape(name)
        );
    }
    svg.push_str("</svg>\n");
    svg
}

/// One horizontal bar per contender, proportional to its rate.
fn rate_bars(results: &[Value]) -> String {
    let bars: Vec<(String, f64, String)> = results
        .iter()
        .filter_map(|r| {
            let report = &r["report"];
            Some((
                r["contender"].as_str()?.to_owned(),
                report["rate"].as_f64()?,
                report["rate_unit"].as_str().unwrap_or("/s").to_owned(),
            ))
        })
        .collect();
    let top = bars.iter().map(|b| b.1).fold(0.0, f64::max).max(1.0);
    let row = 24.0;
    let height = row * bars.len() as f64 + 8.0;
    let label_w = 170.0;
    let plot_w = WIDTH - label_w - 120.0;
    let mut svg = format!(
        "<svg width=\"{WIDTH}\" height=\"{height}\" viewBox=\"0 0 {WIDTH} {height}\" \
         role=\"img\" aria-label=\"throughput\">"
    );
    for (n, (name, rate, unit)) in bars.iter().enumerate() {
        let top_y = 4.0 + row * n as f64;
        let width = plot_w * rate / top;
        let _ = write!(
            svg,
            "<text x=\"{}\" y=\"{:.1}\" text-anchor=\"end\">{}</text>\
             <rect x=\"{label_w}\" y=\"{top_y:.1}\" width=\"{width:.1}\" height=\"{}\" fill=\"{}\"/>\
             <text x=\"{:.1}\" y=\"{:.1}\">{} {}</text>",
            label_w - 6.0,
            top_y + 14.0,
            escape(name),
            row - 6.0,
            COLORS[n % COLORS.len()],
            label_w + width + 6.0,
            top_y + 14.0,
            human(*rate),
            escape(unit)
        );
    }
    svg.push_str("</svg>\n");
    svg
}

fn micros_label(us: f64) -> String {
    if us >= 1e6 {
        format!("{}s", us / 1e6)
    } else if us >= 1e3 {
        format!("{}ms", us / 1e3)
    } else {
        format!("{us}us")
    }
}

fn human(rate: f64) -> String {
    if rate >= 1e6 {
        format!("{:.2}M", rate / 1e6)
    } else if rate >= 1e3 {
        format!("{:.1}k", rate / 1e3)
    } else {
        format!("{rate:.0}")
    }
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn the_page_has_a_chart_per_kind_of_figure() {
        let latency = json!({"min": 10.0, "p50": 20.0, "p90": 25.0, "p99": 40.0, "p99.9": 90.0, "max": 900.0});
        let document = json!({"quick": true, "cores": 2, "wall_time_s": 1.0, "servers": {},
            "groups": [{"name": "rt <16 B>", "metric": "rate", "results": [
                {"contender": "ws-client", "report": {"rate": 5.0e4, "rate_unit": "msg/s",
                    "summary": {"latency": latency}}}]}]});
        let page = render(&document, "table");
        assert!(page.contains("<polyline"), "{page}");
        assert!(page.contains("<rect"), "{page}");
        assert!(page.contains("rt &lt;16 B&gt;"), "{page}");
    }

    #[test]
    fn a_missed_target_links_its_flamegraph() {
        let missed = json!({"contender": "tcp", "metric": "rate", "target": ">= 0.5",
            "ratio": {"median": 0.3}, "met": false,
            "flamegraph": "target/bench/flamegraph-compare-one-way-16-b.svg"});
        let report = json!({"params": {"contenders": ["ws-client", "tcp"]},
            "figures": {"contenders": {}, "ratios": {"tcp": {"rate": {"median": 0.3}}}}});
        let tail = json!({"contender": "test-servers load", "metric": "p99_us",
            "target": "<= 5000", "value": 6000.0, "met": false,
            "flamegraph": "target/bench/flamegraph-open-model-load.svg"});
        let document = json!({"quick": true, "cores": 2, "wall_time_s": 1.0, "servers": {},
        "groups": [
            {"name": "compare: one-way, 16 B", "metric": "compare", "targets": [missed],
             "results": [{"contender": "ws-client vs others", "report": report}]},
            {"name": "open model", "metric": "tail", "targets": [tail], "results": []},
        ]});
        let page = render(&document, "table");
        assert!(
            page.contains("missed</b> (<a href=\"flamegraph-compare-one-way-16-b.svg\">"),
            "{page}"
        );
        assert!(
            page.contains("<li>test-servers load p99_us &lt;= 5000 (measured 6000.000): "),
            "{page}"
        );
        assert!(
            page.contains("<a href=\"flamegraph-open-model-load.svg\">"),
            "{page}"
        );
    }
}
