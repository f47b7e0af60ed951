//! The RPC contenders against real servers: jsonrpsee's client and server (`rpc --client
//! jsonrpsee`, `serve jsonrpsee-rpc`) answer every call correctly, and `rpc-compare` reports
//! each figure with its spread. Small runs: correctness, not speed.

use integration::TestServer;

mod common;
use common::{Baseline, report, ws_bench};

#[test]
fn every_client_gets_every_answer_from_both_servers() {
    let test_servers = TestServer::start("rpc");
    let jsonrpsee = Baseline::start("jsonrpsee-rpc");
    for url in [test_servers.url(), jsonrpsee.url.as_str()] {
        for client in ["ws-client", "jsonrpsee", "tungstenite"] {
            for method in ["add", "echo"] {
                let args = [
                    "rpc", url, "--client", client, "--method", method, "--window", "256",
                    "--count", "1500",
                ];
                let report = report(&args);
                // `count` is the calls answered with the expected value.
                assert_eq!(report["count"], 1500, "{args:?}: {report}");
                assert_eq!(report["errors"], 0, "{args:?}: {report}");
                assert_eq!(report["client"], client);
            }
        }
    }
}

#[test]
fn rpc_compare_reports_every_figure_with_its_spread() {
    let rpc = TestServer::start("rpc");
    let perf = TestServer::start("perf");
    let jsonrpsee = Baseline::start("jsonrpsee-rpc");
    let echo = perf.url_with_path("echo");
    let args = [
        "rpc-compare",
        rpc.url(),
        "--jsonrpsee-url",
        &jsonrpsee.url,
        "--echo-url",
        &echo,
        "--rounds",
        "2",
        "--slice",
        "60ms",
        "--gap",
        "5ms",
    ];
    let report = report(&args);
    assert_eq!(report["scenario"], "rpc-compare");
    assert!(report["count"].as_u64().unwrap() > 0, "{report}");
    let figures = &report["figures"];
    for name in ["client_vs_jsonrpsee", "server_vs_jsonrpsee", "rpc_vs_echo"] {
        let ratio = &figures["comparisons"][name]["ratio"];
        assert_eq!(ratio["count"], 2, "{name}: {report}");
        for key in ["median", "p25", "p75", "min", "max"] {
            let value = ratio[key].as_f64().unwrap_or(f64::NAN);
            assert!(value.is_finite() && value > 0.0, "{name}.{key}: {report}");
        }
    }
    let rates = figures["rates"].as_object().expect("rates");
    assert_eq!(rates.len(), 4, "{report}");
    for (contender, rate) in rates {
        assert!(
            rate["min"].as_f64().unwrap_or(0.0) > 0.0,
            "{contender}: {report}"
        );
        // Client CPU per call: present and not negative (a slice may use less than the
        // clock's resolution, so zero is possible).
        let cpu = &figures["client_cpu_us"][contender];
        assert!(
            cpu["median"].as_f64().is_some_and(|v| v >= 0.0),
            "{contender}: {report}"
        );
    }
    // More than one figure: no flat `ratio` (which figure would it be?).
    assert!(figures.get("ratio").is_none(), "{report}");
}

#[test]
fn rpc_compare_with_one_figure_gives_it_flat_for_thresholds() {
    let rpc = TestServer::start("rpc");
    let base = [
        "rpc-compare",
        rpc.url(),
        "--rounds",
        "3",
        "--slice",
        "40ms",
        "--gap",
        "5ms",
    ];
    let report = report(&[&base[..], &["--threshold", "ratio>0"]].concat());
    let figures = &report["figures"];
    assert_eq!(figures["figure"], "client_vs_jsonrpsee", "{report}");
    assert!(figures["ratio"].as_f64().unwrap() > 0.0, "{report}");
    assert_eq!(
        figures["ratios"].as_array().map(Vec::len),
        Some(3),
        "{report}"
    );

    let output = ws_bench(&[&base[..], &["--no-jsonrpsee-client"]].concat());
    assert!(
        !output.status.success(),
        "no contender to compare must fail"
    );
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("nothing to compare"), "{stderr}");
}
