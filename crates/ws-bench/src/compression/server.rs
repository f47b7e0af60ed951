//! A server child (`test-servers perf`, or a `ws-bench serve` mode for `compare`) that
//! `compression` starts for one contender: started with
//! `--port 0 --exit-on-stdin-eof`, its ready line read within a timeout, stopped by closing
//! its stdin, and its `stopped` line (the counters, wire bytes included) read back.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use serde_json::Value;

/// How long the server may take to print its ready line, and to stop.
const READY_TIMEOUT: Duration = Duration::from_secs(20);
const STOP_TIMEOUT: Duration = Duration::from_secs(10);

/// A running server; killed and reaped when dropped without [`stop`](Self::stop).
#[derive(Debug)]
pub(crate) struct PerfServer {
    child: Child,
    stdin: Option<ChildStdin>,
    lines: mpsc::Receiver<String>,
    /// The ready line's `url` (ending in `/`).
    pub(crate) url: String,
    /// The whole ready line (e.g. `ca_cert` with `--tls`).
    pub(crate) ready: Value,
}

/// The counters of a server's `stopped` line that `compression` checks and reports.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Stopped {
    pub(crate) messages_in: u64,
    pub(crate) messages_out: u64,
    pub(crate) bytes_in: u64,
    pub(crate) bytes_out: u64,
    pub(crate) wire_bytes_in: u64,
    pub(crate) wire_bytes_out: u64,
}

/// The test-servers executable: `explicit`, else the one beside this ws-bench (cargo puts
/// both in the same target directory).
pub(crate) fn locate(explicit: Option<&Path>) -> Result<PathBuf> {
    if let Some(path) = explicit {
        return Ok(path.to_owned());
    }
    let me = std::env::current_exe().context("cannot find this executable's path")?;
    let beside = me.with_file_name(format!("test-servers{}", std::env::consts::EXE_SUFFIX));
    if !beside.is_file() {
        bail!(
            "no test-servers beside {} (build it with the same profile, e.g. `cargo build \
             --release -p test-servers`), or give --server-bin PATH or --url URL",
            me.display()
        );
    }
    Ok(beside)
}

impl PerfServer {
    /// Starts `program perf --threads 1` and reads its ready line.
    pub(crate) fn start(program: &Path) -> Result<Self> {
        Self::start_with(program, &["perf", "--threads", "1"])
    }

    /// Starts `program ARGS --port 0 --exit-on-stdin-eof` (a test-servers mode, or
    /// `ws-bench serve MODE`) and reads its ready line.
    pub(crate) fn start_with(program: &Path, args: &[&str]) -> Result<Self> {
        let mut command = Command::new(program);
        if std::env::var_os("RUST_LOG").is_none() {
            // Its start and stop notes would bury the table; warnings still show.
            command.env("RUST_LOG", "warn");
        }
        let mut child = command
            .args(args)
            .args(["--port", "0", "--exit-on-stdin-eof"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .with_context(|| format!("cannot start {}", program.display()))?;
        let stdin = child.stdin.take();
        let stdout = child.stdout.take().context("server stdout was not piped")?;
        let (sender, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if sender.send(line).is_err() {
                    break;
                }
            }
        });
        let mut server = Self {
            child,
            stdin,
            lines,
            url: String::new(),
            ready: Value::Null,
        };
        let line = server
            .lines
            .recv_timeout(READY_TIMEOUT)
            .with_context(|| format!("{} {} printed no ready line", program.display(), args[0]))?;
        let ready: Value = serde_json::from_str(line.trim())
            .with_context(|| format!("the ready line is not JSON: {line:?}"))?;
        server.url = ready["url"]
            .as_str()
            .with_context(|| format!("the ready line has no url: {ready}"))?
            .to_owned();
        server.ready = ready;
        Ok(server)
    }

    /// The process id, for its CPU time.
    pub(crate) fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Closes its stdin, waits for its `stopped` line and returns it.
    pub(crate) fn stop_line(mut self) -> Result<Value> {
        drop(self.stdin.take());
        loop {
            let line = self
                .lines
                .recv_timeout(STOP_TIMEOUT)
                .context("the server printed no stopped line")?;
            let Ok(event) = serde_json::from_str::<Value>(line.trim()) else {
                continue;
            };
            if event["event"] != "stopped" {
                continue;
            }
            // It exits right after the stopped line.
            self.child
                .wait()
                .context("waiting for the server to exit")?;
            return Ok(event);
        }
    }

    /// Closes its stdin, waits for its `stopped` line and returns its counters.
    pub(crate) fn stop(self) -> Result<Stopped> {
        let event = self.stop_line()?;
        let get = |name: &str| {
            event[name]
                .as_u64()
                .with_context(|| format!("the stopped line has no {name}: {event}"))
        };
        Ok(Stopped {
            messages_in: get("messages_in")?,
            messages_out: get("messages_out")?,
            bytes_in: get("bytes_in")?,
            bytes_out: get("bytes_out")?,
            wire_bytes_in: get("wire_bytes_in")?,
            wire_bytes_out: get("wire_bytes_out")?,
        })
    }
}

impl Drop for PerfServer {
    fn drop(&mut self) {
        drop(self.stdin.take());
        if !matches!(self.child.try_wait(), Ok(Some(_))) {
            let _ = self.child.kill();
        }
        let _ = self.child.wait();
    }
}
