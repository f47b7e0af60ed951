//! `cargo xtask bench [--quick]`: builds release `test-servers` and `ws-bench`, starts the
//! servers (test-servers echo/rpc/perf and ws-bench's baselines), runs the standard suite
//! with raw TCP and bare tokio-tungstenite beside ws-client (and permessage-deflate's cost
//! and savings, on servers `ws-bench compression` starts itself; the open model against
//! `test-servers load` and `echo`), prints a comparison with
//! ratios and writes `target/bench/report.json` and a self-contained `report.html`. With
//! `--flamegraphs`, each run that missed a target is run again, ws-client alone, under perf
//! (bench/flame.rs): `target/bench/flamegraph-<group>.svg`.

mod compare;
mod flame;
mod html;
mod open_model;
mod suite;
mod table;
mod targets;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use serde_json::{Value, json};

use crate::cargo;
use crate::server::Server;
use suite::Urls;

/// How long one benchmark run may take before it is killed.
const RUN_TIMEOUT: Duration = Duration::from_secs(180);

#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// A short run (about a second per figure) that finishes in under a minute.
    #[arg(long)]
    quick: bool,
    /// For each run that misses a target, profile ws-client's side of it again (a few
    /// seconds under `perf record`, servers it starts included) into
    /// `target/bench/flamegraph-<group>.svg` (needs perf and inferno).
    #[arg(long)]
    flamegraphs: bool,
}

pub(crate) fn run(args: &Args) -> Result<()> {
    let started = Instant::now();
    if args.flamegraphs {
        flame::check_tools()?;
    }
    let binaries = build()?;
    let test_servers = binaries
        .get("test-servers")
        .context("cargo built no test-servers executable")?;
    let ws_bench = binaries
        .get("ws-bench")
        .context("cargo built no ws-bench executable")?;
    let build_time = started.elapsed();

    let has_perf = has_perf_mode(test_servers)?;
    // One thread, as the baseline servers run (ws-bench serve): every contender of a
    // group then meets a server that works the same way.
    let echo = Server::start(
        "test-servers echo",
        test_servers,
        // Room for the open model's 10,000 connections beside stragglers of earlier runs.
        &["echo", "--threads", "1", "--max-connections", "20000"],
        Stdio::null(),
    )?;
    let rpc = Server::start(
        "test-servers rpc",
        test_servers,
        &["rpc", "--threads", "1"],
        Stdio::null(),
    )?;
    let load = Server::start(
        "test-servers load",
        test_servers,
        &["load", "--threads", "1", "--max-connections", "20000"],
        Stdio::null(),
    )?;
    let perf = if has_perf {
        let args = ["perf", "--threads", "1"];
        Some(Server::start(
            "test-servers perf",
            test_servers,
            &args,
            Stdio::null(),
        )?)
    } else {
        None
    };
    let tung_sink = Server::start(
        "tungstenite-sink",
        ws_bench,
        &["serve", "tungstenite-sink"],
        Stdio::null(),
    )?;
    let jsonrpsee_rpc = Server::start(
        "jsonrpsee-rpc",
        ws_bench,
        &["serve", "jsonrpsee-rpc"],
        Stdio::null(),
    )?;
    let (ws_echo, ws_sink) = match &perf {
        Some(perf) => (perf.path("echo"), perf.path("sink")),
        None => (echo.url.clone(), tung_sink.url.clone()),
    };

    let urls = Urls {
        ws_echo,
        ws_sink,
        rpc: rpc.url.clone(),
        jsonrpsee_rpc: jsonrpsee_rpc.url.clone(),
        echo: echo.url.clone(),
        load: load.url.clone(),
    };
    let mut groups = suite::suite(&urls, args.quick);
    if has_perf {
        let test_servers = test_servers.to_string_lossy();
        groups.extend(suite::compression(&test_servers, args.quick));
        groups.extend(compare::groups(&test_servers, args.quick));
    }
    let servers: HashMap<String, u32> = [&echo, &rpc, &load, &jsonrpsee_rpc, &tung_sink]
        .into_iter()
        .chain(&perf)
        .map(|s| (s.url.clone(), s.pid()))
        .collect();
    let root = cargo::workspace_root();
    let out = root.join("target").join("bench");
    std::fs::create_dir_all(&out).with_context(|| format!("cannot create {}", out.display()))?;
    let mut results = Vec::new();
    let mut failures = 0;
    for group in &groups {
        let mut measured = Vec::new();
        let mut group_targets = Vec::new();
        for (contender, bench_args) in &group.runs {
            eprintln!("[{}] {contender}", group.name);
            let report = match run_one(ws_bench, bench_args) {
                Ok(report) => report,
                Err(e) => {
                    failures += 1;
                    eprintln!("  failed: {e:#}");
                    measured.push(json!({"contender": contender, "error": format!("{e:#}")}));
                    continue;
                }
            };
            let mut judged = targets::judge(group.name, group.metric, contender, &report);
            measured.push(json!({"contender": contender, "report": report}));
            if !(args.flamegraphs && targets::any_missed(&judged)) {
                group_targets.extend(judged);
                continue;
            }
            let several = group.runs.len() > 1;
            if let Some(profile) = flame::plan(group.name, contender, bench_args, several) {
                eprintln!("[{}] {contender}: target missed, profiling", group.name);
                match flame::record(&profile, ws_bench, &servers, &out) {
                    Ok(svg) => {
                        let shown = svg.strip_prefix(&root).unwrap_or(&svg);
                        for target in judged.iter_mut().filter(|t| t["met"] == false) {
                            target["flamegraph"] = json!(shown.display().to_string());
                        }
                    }
                    Err(e) => {
                        failures += 1;
                        eprintln!("  profile failed: {e:#}");
                    }
                }
            }
            group_targets.extend(judged);
        }
        results.push(
            json!({"name": group.name, "metric": group.metric, "results": measured,
                            "targets": group_targets}),
        );
    }
    drop((echo, rpc, load, perf, tung_sink, jsonrpsee_rpc));

    let table = table::comparison(&results);
    println!("{table}");
    let document = json!({
        "quick": args.quick,
        "cores": std::thread::available_parallelism().map_or(0, |n| n.get()),
        "servers": {"websocket_sink": urls.ws_sink, "websocket_echo": urls.ws_echo,
                    "perf_mode": has_perf},
        "wall_time_s": started.elapsed().as_secs_f64(),
        "build_time_s": build_time.as_secs_f64(),
        "groups": results,
    });
    let json_path = out.join("report.json");
    let text = serde_json::to_string_pretty(&document).context("serializing the report")?;
    std::fs::write(&json_path, text)
        .with_context(|| format!("cannot write {}", json_path.display()))?;
    let html_path = out.join("report.html");
    std::fs::write(&html_path, html::render(&document, &table))
        .with_context(|| format!("cannot write {}", html_path.display()))?;
    println!(
        "wall time {:.1}s (build {:.1}s); wrote {} and {}",
        started.elapsed().as_secs_f64(),
        build_time.as_secs_f64(),
        json_path.display(),
        html_path.display()
    );
    if failures > 0 {
        bail!("{failures} benchmark run(s) failed");
    }
    Ok(())
}

/// Runs `ws-bench args...` and returns the JSON report it prints.
fn run_one(ws_bench: &Path, args: &[String]) -> Result<Value> {
    let text = cargo::stdout_within(Command::new(ws_bench).args(args), RUN_TIMEOUT)?;
    serde_json::from_str(text.trim())
        .with_context(|| format!("ws-bench printed no JSON report: {text:?}"))
}

/// Builds release `test-servers` and `ws-bench`; returns their executables by name.
fn build() -> Result<HashMap<String, PathBuf>> {
    cargo::build_executables(&["--release", "-p", "test-servers", "-p", "ws-bench"])
}

/// Whether this test-servers has a `perf` mode (listed in its `--help`).
fn has_perf_mode(test_servers: &Path) -> Result<bool> {
    let output = Command::new(test_servers)
        .arg("--help")
        .stdin(Stdio::null())
        .output()
        .context("cannot run test-servers --help")?;
    let help = String::from_utf8_lossy(&output.stdout);
    Ok(help
        .lines()
        .any(|line| line.trim_start().starts_with("perf ")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn executables_are_found_by_target_name() {
        let messages = r#"{"reason":"compiler-artifact","target":{"name":"anyhow"},"executable":null}
{"reason":"compiler-artifact","target":{"name":"ws-bench"},"executable":"/t/release/ws-bench"}
{"reason":"build-finished","success":true}"#;
        let found = cargo::executables(messages);
        assert_eq!(found.len(), 1);
        assert_eq!(found["ws-bench"], PathBuf::from("/t/release/ws-bench"));
    }
}
