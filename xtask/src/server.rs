//! A server child process with the test-servers command-line contract (`test-servers` modes,
//! `ws-bench serve`): started with `--port 0 --exit-on-stdin-eof`, its JSON ready line read
//! within a timeout, its later stdout lines kept, stopped by closing its stdin (killed if it
//! does not exit in time, or when dropped).

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, ChildStdin, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use anyhow::{Context, Result};
use serde_json::Value;
use wait_timeout::ChildExt;

/// How long a server may take to print its ready line.
const READY_TIMEOUT: Duration = Duration::from_secs(30);

/// A running server; killed and reaped when dropped.
#[derive(Debug)]
pub(crate) struct Server {
    pub(crate) name: String,
    child: Child,
    stdin: Option<ChildStdin>,
    lines: mpsc::Receiver<String>,
    /// The ready line.
    pub(crate) ready: Value,
    /// The ready line's `url`.
    pub(crate) url: String,
}

impl Server {
    /// Starts `program args... --port 0 --exit-on-stdin-eof`, its stderr going to `stderr`,
    /// and reads its ready line.
    pub(crate) fn start(name: &str, program: &Path, args: &[&str], stderr: Stdio) -> Result<Self> {
        let mut child = Command::new(program)
            .args(args)
            .args(["--port", "0", "--exit-on-stdin-eof"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(stderr)
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
            name: name.to_owned(),
            child,
            stdin,
            lines,
            ready: Value::Null,
            url: String::new(),
        };
        let line = server
            .lines
            .recv_timeout(READY_TIMEOUT)
            .with_context(|| format!("{name}: no ready line within {READY_TIMEOUT:?}"))?;
        server.ready = serde_json::from_str(line.trim())
            .with_context(|| format!("{name}: the ready line is not JSON: {line:?}"))?;
        server.url = server.ready["url"]
            .as_str()
            .with_context(|| format!("{name}: the ready line has no url: {}", server.ready))?
            .to_owned();
        eprintln!("{name} listening on {}", server.url);
        Ok(server)
    }

    /// The URL with `path` (e.g. `sink`) in place of `/`.
    pub(crate) fn path(&self, path: &str) -> String {
        format!("{}{path}", self.url)
    }

    /// The process id.
    pub(crate) fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The exit status, if the process has ended.
    pub(crate) fn exited(&mut self) -> Result<Option<ExitStatus>> {
        self.child
            .try_wait()
            .with_context(|| format!("cannot check on {}", self.name))
    }

    /// Closes its stdin so it stops as its contract says; kills it after `grace`. Returns
    /// its exit status (`None`: it had to be killed) and its last stdout line.
    pub(crate) fn stop(mut self, grace: Duration) -> Result<(Option<ExitStatus>, Option<String>)> {
        drop(self.stdin.take());
        let status = self
            .child
            .wait_timeout(grace)
            .with_context(|| format!("waiting for {} to stop", self.name))?;
        let mut last = None;
        if status.is_some() {
            // The reader ends with the pipe; wait for what it still holds.
            while let Ok(line) = self.lines.recv_timeout(Duration::from_secs(1)) {
                last = Some(line);
            }
        }
        Ok((status, last))
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        eprintln!("{} stopped", self.name);
    }
}
