//! `cargo xtask soak [--duration 10m]`: builds `test-servers` and `ws-bench`, starts an echo
//! and an rpc server with a `test-servers chaos` proxy in front of each, runs `ws-bench soak`
//! (echo clients on resilient connections, RPC clients, open-model load) through the proxies
//! while the fault schedule (`soak/faults.rs`) runs on their control APIs, and samples the
//! resident memory of the servers, the proxies and the client every second. Judges the run
//! (`soak/verdict.rs`): nothing lost silently, nothing wrong, no RPC call timed out (their
//! timeout outlasts every fault) or failed unexplained, no process died, and no server
//! or client grew by more than `--max-growth-mib` after the warm-up (least-squares slope ×
//! window, `soak/memory.rs`). Writes `target/soak/report.json` and the processes' logs there.

mod faults;
mod memory;
mod verdict;

use std::fs::File;
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use serde_json::Value;
use wait_timeout::ChildExt;

use crate::cargo;
use crate::server::Server;
use faults::{Action, Control, Fault};
use memory::Series;

/// The client's longest wait for outstanding echoes after it stops sending.
const DRAIN: Duration = Duration::from_secs(20);
/// Each RPC call's timeout: longer than the longest outage the fault schedule can cause
/// (a 2.5 s black hole, found by the 1 s + 1 s heartbeat, then a 3 s connect timeout and a
/// backoff of at most 2 s), so a call that times out was lost, and the verdict says so.
pub(crate) const RPC_TIMEOUT: Duration = Duration::from_secs(15);
/// How long past its drain the client may take before it is killed.
const CLIENT_GRACE: Duration = Duration::from_secs(30);
/// How long a server may take to stop once its stdin is closed.
const STOP_GRACE: Duration = Duration::from_secs(10);
/// Time between two memory samples.
const SAMPLE_EVERY: Duration = Duration::from_secs(1);
/// Time between two progress lines on the terminal.
const PRINT_EVERY: Duration = Duration::from_secs(10);
/// Longest pause of the main loop.
const TICK: Duration = Duration::from_millis(100);

#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// How long the clients send, e.g. 60s, 10m (a drain of at most 20 s follows).
    #[arg(long, default_value = "10m", value_parser = humantime::parse_duration)]
    duration: Duration,
    /// Memory samples before this are not judged; with less than 15 s left after it, the
    /// memory verdict is skipped.
    #[arg(long, default_value = "30s", value_parser = humantime::parse_duration)]
    warm_up: Duration,
    /// Most growth allowed to a server or the client after the warm-up, in MiB.
    #[arg(long, default_value_t = 2.0)]
    max_growth_mib: f64,
    /// Build and run release binaries (default: debug, as the tests use).
    #[arg(long)]
    release: bool,
    /// Echo clients (50 messages/s each).
    #[arg(long, default_value_t = 4)]
    echo_clients: u32,
    /// RPC clients (20 calls/s each).
    #[arg(long, default_value_t = 2)]
    rpc_clients: u32,
}

pub(crate) fn run(args: &Args) -> Result<()> {
    let started = Instant::now();
    let out = cargo::workspace_root().join("target").join("soak");
    std::fs::create_dir_all(&out).with_context(|| format!("cannot create {}", out.display()))?;
    let (test_servers, ws_bench) = build(args.release)?;
    let log = |name: &str| -> Result<Stdio> {
        let path = out.join(format!("{name}.log"));
        let file =
            File::create(&path).with_context(|| format!("cannot create {}", path.display()))?;
        Ok(Stdio::from(file))
    };
    let echo = Server::start("echo server", &test_servers, &["echo"], log("echo-server")?)?;
    let rpc = Server::start("rpc server", &test_servers, &["rpc"], log("rpc-server")?)?;
    let proxy = |name, upstream: &Server, log_name| {
        let args = ["chaos", "--upstream", upstream.url.as_str()];
        Server::start(name, &test_servers, &args, log(log_name)?)
    };
    let echo_proxy = proxy("chaos (echo)", &echo, "chaos-echo")?;
    let rpc_proxy = proxy("chaos (rpc)", &rpc, "chaos-rpc")?;
    let controls = [&echo_proxy, &rpc_proxy]
        .map(|proxy| Control::new(proxy.ready["control"].as_str().unwrap_or_default()));
    let [echo_control, rpc_control] = controls;
    let controls = [echo_control?, rpc_control?];

    let duration = humantime::format_duration(args.duration).to_string();
    let drain = humantime::format_duration(DRAIN).to_string();
    let rpc_timeout = humantime::format_duration(RPC_TIMEOUT).to_string();
    let (echo_clients, rpc_clients) = (args.echo_clients.to_string(), args.rpc_clients.to_string());
    let client_args = [
        "soak",
        "--echo-url",
        &echo_proxy.url,
        "--rpc-url",
        &rpc_proxy.url,
        "--echo-clients",
        &echo_clients,
        "--rpc-clients",
        &rpc_clients,
        "--duration",
        &duration,
        "--drain",
        &drain,
        "--rpc-timeout",
        &rpc_timeout,
    ];
    let mut client = Client::start(&ws_bench, &client_args, &out)?;
    let mut servers = [echo, rpc, echo_proxy, rpc_proxy];
    let mut series = vec![
        Series::new("echo server", servers[0].pid(), true),
        Series::new("rpc server", servers[1].pid(), true),
        Series::new("client", client.child.id(), true),
        Series::new("chaos (echo)", servers[2].pid(), false),
        Series::new("chaos (rpc)", servers[3].pid(), false),
    ];
    let observed = drive(args, &mut client, &mut servers, &controls, &mut series);

    let mut stops = Vec::new();
    for server in servers {
        let name = server.name.clone();
        let (status, last_line) = server.stop(STOP_GRACE)?;
        let stopped = last_line.and_then(|line| serde_json::from_str(&line).ok());
        stops.push((name, status, stopped.unwrap_or(Value::Null)));
    }
    let observed = observed?;
    let verdict = verdict::judge(&verdict::Inputs {
        duration: args.duration,
        warm_up: args.warm_up,
        max_growth: args.max_growth_mib * 1024.0 * 1024.0,
        release: args.release,
        observed: &observed,
        series: &series,
        stops: &stops,
        wall_time: started.elapsed(),
    });
    let path = out.join("report.json");
    let text = serde_json::to_string_pretty(&verdict.report).context("serializing the report")?;
    std::fs::write(&path, text).with_context(|| format!("cannot write {}", path.display()))?;
    println!("{}", verdict.table);
    println!("wrote {} (logs beside it)", path.display());
    if !verdict.problems.is_empty() {
        bail!("soak failed: {}", verdict.problems.join("; "));
    }
    Ok(())
}

/// What the run saw, for the verdict.
#[derive(Debug, Default)]
pub(crate) struct Observed {
    /// Faults started, by kind (in [`Fault::ALL`] order).
    pub(crate) faults: [u64; 4],
    /// The client's `summary` line.
    pub(crate) summary: Option<Value>,
    /// The client's exit status (`None`: it was killed).
    pub(crate) client_status: Option<ExitStatus>,
    /// Problems seen while running (a process died, a control request failed).
    pub(crate) problems: Vec<String>,
}

/// Runs the fault schedule and samples memory until the client exits.
fn drive(
    args: &Args,
    client: &mut Client,
    servers: &mut [Server],
    controls: &[Control],
    series: &mut [Series],
) -> Result<Observed> {
    let start = client.started;
    let schedule = faults::schedule(args.duration);
    let deadline = start + args.duration + DRAIN + CLIENT_GRACE;
    let mut observed = Observed::default();
    let mut steps = schedule.iter().peekable();
    let mut next_sample = start;
    let mut next_print = start + PRINT_EVERY;
    let mut progress = None;
    loop {
        let now = Instant::now();
        if now >= next_sample {
            let t = now.duration_since(start).as_secs_f64();
            series.iter_mut().for_each(|s| s.sample(t));
            next_sample += SAMPLE_EVERY;
        }
        while let Some(step) = steps.next_if(|step| start + step.at <= now) {
            for control in controls {
                if let Err(e) = control.apply(step.action) {
                    observed.problems.push(format!("{e:#}"));
                }
            }
            if let Action::Patch(_, Some(fault)) = step.action {
                let index = Fault::ALL.iter().position(|f| *f == fault).unwrap_or(0);
                observed.faults[index] += 1;
            }
        }
        for line in client.lines.try_iter() {
            match serde_json::from_str::<Value>(&line) {
                Ok(value) if value["event"] == "summary" => observed.summary = Some(value),
                Ok(value) if value["event"] == "progress" => progress = Some(value),
                _ => {}
            }
        }
        if now >= next_print {
            if let Some(line) = &progress {
                eprintln!("{}", verdict::progress_line(line, series));
            }
            next_print += PRINT_EVERY;
        }
        for server in servers.iter_mut() {
            if let Some(status) = server.exited()? {
                observed
                    .problems
                    .push(format!("{} exited during the run ({status})", server.name));
            }
        }
        if let Some(status) = client
            .child
            .try_wait()
            .context("cannot check on the client")?
        {
            observed.client_status = Some(status);
            // Its last lines may still be in the pipe.
            for line in client.lines.iter() {
                if let Ok(value) = serde_json::from_str::<Value>(&line) {
                    if value["event"] == "summary" {
                        observed.summary = Some(value);
                    }
                }
            }
            return Ok(observed);
        }
        if !observed.problems.is_empty() || now >= deadline {
            if now >= deadline {
                observed.problems.push(format!(
                    "the client did not finish within its time ({:?} after the start)",
                    deadline - start
                ));
            }
            let _ = client.child.kill();
            let _ = client.child.wait();
            observed.client_status = None;
            return Ok(observed);
        }
        let wake = steps
            .peek()
            .map_or(next_sample, |step| (start + step.at).min(next_sample));
        std::thread::sleep(wake.saturating_duration_since(Instant::now()).min(TICK));
    }
}

/// The `ws-bench soak` process: stdout lines through a channel (and into `client.jsonl`),
/// stderr into `client.log`.
#[derive(Debug)]
struct Client {
    child: Child,
    lines: mpsc::Receiver<String>,
    started: Instant,
}

impl Client {
    fn start(program: &Path, args: &[&str], out: &Path) -> Result<Self> {
        let stderr = File::create(out.join("client.log")).context("cannot create client.log")?;
        let mut copy =
            File::create(out.join("client.jsonl")).context("cannot create client.jsonl")?;
        let mut child = Command::new(program)
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(stderr)
            .spawn()
            .with_context(|| format!("cannot start {}", program.display()))?;
        let started = Instant::now();
        let stdout = child.stdout.take().context("client stdout was not piped")?;
        let (sender, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                let _ = writeln!(copy, "{line}");
                if sender.send(line).is_err() {
                    break;
                }
            }
        });
        eprintln!("ws-bench {}", args.join(" "));
        Ok(Self {
            child,
            lines,
            started,
        })
    }
}

impl Drop for Client {
    fn drop(&mut self) {
        if self
            .child
            .wait_timeout(Duration::ZERO)
            .ok()
            .flatten()
            .is_none()
        {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// Builds `test-servers` and `ws-bench`; returns their executables.
fn build(release: bool) -> Result<(PathBuf, PathBuf)> {
    let mut build_args = vec!["-p", "test-servers", "-p", "ws-bench"];
    if release {
        build_args.push("--release");
    }
    let mut built = cargo::build_executables(&build_args)?;
    let mut take = |name: &str| {
        built
            .remove(name)
            .with_context(|| format!("cargo built no {name} executable"))
    };
    Ok((take("test-servers")?, take("ws-bench")?))
}
