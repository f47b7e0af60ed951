//! Recording a [`Profile`] with `perf record` and drawing it with inferno
//! (`perf script | inferno-collapse-perf | inferno-flamegraph`); the perf data file is
//! deleted once the SVG is written (or the run failed).

use std::collections::HashMap;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::Duration;

use anyhow::{Context, Result, bail};
use wait_timeout::ChildExt;

use super::{Profile, Target, perf_args};

/// How long a profiled run may take (open model ramp-up and perf's start included).
const TIMEOUT: Duration = Duration::from_secs(120);

/// Fails unless perf can record here and inferno's two tools run, saying how to get them.
pub(in crate::bench) fn check_tools() -> Result<()> {
    for tool in ["inferno-collapse-perf", "inferno-flamegraph"] {
        // Their --help: they take no --version.
        let found = Command::new(tool)
            .arg("--help")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        if !found {
            bail!("--flamegraphs needs {tool} on PATH: cargo install inferno");
        }
    }
    let data = std::env::temp_dir().join(format!("xtask-perf-check-{}.data", std::process::id()));
    let status = Command::new("perf")
        .arg("record")
        .arg("-q")
        .arg("-o")
        .arg(&data)
        .args(["--", "true"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
    let _ = std::fs::remove_file(&data);
    match status {
        Ok(s) if s.success() => Ok(()),
        Ok(s) => bail!(
            "--flamegraphs: `perf record -- true` failed ({s}); allow it with \
             `sysctl kernel.perf_event_paranoid=1` (or run as root)"
        ),
        Err(_) => bail!(
            "--flamegraphs needs perf on PATH: on Debian `apt-get install linux-perf`, \
             on Ubuntu `linux-tools-generic`"
        ),
    }
}

/// Records `profile` and writes its SVG into `out`; returns the SVG's path. `servers`: the
/// suite's server pids by URL (for [`Target::Attach`]).
pub(in crate::bench) fn record(
    profile: &Profile,
    ws_bench: &Path,
    servers: &HashMap<String, u32>,
    out: &Path,
) -> Result<PathBuf> {
    let svg = out.join(&profile.svg);
    let data = Removed(svg.with_extension("perf.data"));
    let data_arg = data.0.to_string_lossy().into_owned();
    let ws_bench_arg = ws_bench.to_string_lossy().into_owned();
    match &profile.target {
        Target::Follow => {
            let args = perf_args(profile, &data_arg, &ws_bench_arg, &[]);
            let mut perf = spawn("perf", &args, Stdio::null())?;
            let status = wait(&mut perf, "perf record")?;
            if !status.success() {
                bail!("perf record {} failed ({status})", args.join(" "));
            }
        }
        Target::Attach(url) => {
            let server = *servers
                .get(url)
                .with_context(|| format!("no server of the suite listens on {url}"))?;
            let mut bench = spawn(ws_bench, &profile.args, Stdio::null())?;
            let args = perf_args(profile, &data_arg, &ws_bench_arg, &[server, bench.id()]);
            let perf = spawn("perf", &args, Stdio::null());
            let bench_status = wait(&mut bench, "ws-bench");
            let mut perf = perf?;
            // perf record -p stops on SIGINT and writes its data (exiting with 130, so its
            // status says nothing; the data file does). `kill` signals our own child only.
            let _ = Command::new("kill")
                .args(["-INT", &perf.id().to_string()])
                .status();
            let status = wait(&mut perf, "perf record")?;
            let bench_status = bench_status?;
            if !bench_status.success() {
                bail!(
                    "ws-bench {} failed ({bench_status})",
                    profile.args.join(" ")
                );
            }
            if std::fs::metadata(&data.0).map_or(0, |m| m.len()) == 0 {
                bail!("perf record {} wrote no data ({status})", args.join(" "));
            }
        }
    }
    draw(&data.0, &profile.title, &svg)?;
    Ok(svg)
}

/// `perf script -i data | inferno-collapse-perf | inferno-flamegraph --title t > svg`.
fn draw(data: &Path, title: &str, svg: &Path) -> Result<()> {
    let file = File::create(svg).with_context(|| format!("cannot write {}", svg.display()))?;
    let mut script = Command::new("perf")
        .arg("script")
        .arg("-i")
        .arg(data)
        // Inlined frames through addr2line take minutes; the symbols alone suffice here.
        .arg("--no-inline")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .context("cannot run perf script")?;
    let mut collapse = Command::new("inferno-collapse-perf")
        .stdin(script.stdout.take().context("perf script's stdout")?)
        .stdout(Stdio::piped())
        .spawn()
        .context("cannot run inferno-collapse-perf")?;
    let mut graph = Command::new("inferno-flamegraph")
        .args(["--title", title])
        .stdin(
            collapse
                .stdout
                .take()
                .context("inferno-collapse-perf's stdout")?,
        )
        .stdout(file)
        .spawn()
        .context("cannot run inferno-flamegraph")?;
    for (child, name) in [
        (&mut script, "perf script"),
        (&mut collapse, "inferno-collapse-perf"),
        (&mut graph, "inferno-flamegraph"),
    ] {
        let status = wait(child, name)?;
        if !status.success() {
            bail!("{name} failed ({status}) drawing {}", svg.display());
        }
    }
    Ok(())
}

fn spawn(program: impl AsRef<std::ffi::OsStr>, args: &[String], stdout: Stdio) -> Result<Child> {
    let program = program.as_ref();
    Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .stdout(stdout)
        .stderr(Stdio::inherit())
        .spawn()
        .with_context(|| format!("cannot start {}", program.to_string_lossy()))
}

/// Waits for `child` up to [`TIMEOUT`], killing it after that.
fn wait(child: &mut Child, name: &str) -> Result<ExitStatus> {
    match child
        .wait_timeout(TIMEOUT)
        .with_context(|| format!("waiting for {name}"))?
    {
        Some(status) => Ok(status),
        None => {
            let _ = child.kill();
            let _ = child.wait();
            bail!("{name} took over {TIMEOUT:?}")
        }
    }
}

/// A file removed when this is dropped (perf's data: large, needed only until drawn).
struct Removed(PathBuf);

impl Drop for Removed {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}
