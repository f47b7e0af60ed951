//! The integration harness: finds (or builds) the `test-servers` binary, runs it as a child
//! process on an ephemeral port, reads its ready line with a timeout, and always kills and
//! reaps it, printing its stderr when a test fails. A server is stopped the way its contract
//! says (stdin closed, so it exits cleanly and an instrumented build writes its coverage
//! profile) and killed only if it does not exit in time; what it cost is recorded (`usage`).
//! [`Launch`] starts one with another host, a given port or under a launcher (`ip netns exec`).

mod launch;
mod usage;
pub use launch::Launch;
pub use usage::{ServerUsage, USAGE_LOG_ENV};

use std::io::{BufRead, BufReader, Read};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, ExitStatus, Output, Stdio};
use std::sync::mpsc::{self, Receiver};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use serde_json::Value;
use wait_timeout::ChildExt;

/// How long a server may take to print its ready line once spawned.
pub const READY_TIMEOUT: Duration = Duration::from_secs(30);
/// How long a server may take to exit once asked to stop.
pub const EXIT_TIMEOUT: Duration = Duration::from_secs(15);
/// How long a dropped server's exit is waited for in the test's own thread once its stdin is
/// closed. A server that still has clients open (their test's runtime is blocked in this very
/// drop, so they cannot answer its close frames) is handed to a reaper thread instead.
pub const DROP_WAIT: Duration = Duration::from_millis(300);
/// How long the reaper gives a dropped server to exit before killing it: longer than the
/// server's own shutdown grace (5 s), so a normal stop always completes (and an instrumented
/// build writes its coverage profile).
pub const REAP_GRACE: Duration = Duration::from_secs(8);
/// How much of a server's stderr is kept for failure reports.
const STDERR_CAP: usize = 256 << 10;

/// The `test-servers` binary: `$TEST_SERVERS_BIN` if set (as `cargo xtask integration`
/// does), otherwise built once per test run with cargo.
pub fn test_servers_bin() -> &'static Path {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(|| {
        if let Some(path) = std::env::var_os("TEST_SERVERS_BIN") {
            return PathBuf::from(path);
        }
        let manifest = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../Cargo.toml");
        let mut build = escargot::CargoBuild::new()
            .manifest_path(manifest)
            .package("test-servers")
            .bin("test-servers");
        // Cargo sets these for the test process. Passed on, they differ from what a plain
        // `cargo` sees, and build scripts that watch them (ring's) would rebuild every run.
        for (key, _) in std::env::vars_os() {
            let name = key.to_string_lossy();
            if name.starts_with("CARGO_PKG_")
                || name.starts_with("CARGO_MANIFEST_")
                || matches!(
                    &*name,
                    "CARGO_CRATE_NAME"
                        | "CARGO_PRIMARY_PACKAGE"
                        | "CARGO_TARGET_TMPDIR"
                        | "OUT_DIR"
                )
            {
                build = build.env_remove(key);
            }
        }
        let built = build
            .run()
            .unwrap_or_else(|e| panic!("could not build test-servers: {e}"));
        built.path().to_path_buf()
    })
}

/// Runs `test-servers` with `args` to completion (for command-line tests), killing it if
/// it takes longer than [`EXIT_TIMEOUT`].
pub fn run_test_servers(args: &[&str]) -> Output {
    let mut command = Command::new(test_servers_bin());
    command.args(args);
    run_to_completion(command, EXIT_TIMEOUT)
}

/// Runs `command` with no stdin and captured output, killing it (and failing the test) if
/// it takes longer than `limit`.
pub fn run_to_completion(mut command: Command, limit: Duration) -> Output {
    let shown = format!("{command:?}");
    let mut child = command
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot spawn {shown}: {e}"));
    let stdout = collect(child.stdout.take().expect("piped stdout"));
    let stderr = collect(child.stderr.take().expect("piped stderr"));
    let status = match child.wait_timeout(limit).expect("wait for the child") {
        Some(status) => status,
        None => {
            let _ = child.kill();
            let _ = child.wait();
            panic!("{shown} did not exit within {limit:?}");
        }
    };
    Output {
        status,
        stdout: stdout.join().expect("stdout reader"),
        stderr: stderr.join().expect("stderr reader"),
    }
}

fn collect(mut pipe: impl Read + Send + 'static) -> std::thread::JoinHandle<Vec<u8>> {
    std::thread::spawn(move || {
        let mut bytes = Vec::new();
        let _ = pipe.read_to_end(&mut bytes);
        bytes
    })
}

/// A running `test-servers` child process.
#[derive(Debug)]
pub struct TestServer {
    /// `None` only once dropped (the reaper may own it then).
    child: Option<Child>,
    pid: u32,
    stdin: Option<ChildStdin>,
    events: Receiver<Value>,
    stderr: Arc<Mutex<String>>,
    ready: Value,
    addr: SocketAddr,
    url: String,
    description: String,
    usage_recorded: bool,
}

impl TestServer {
    /// Starts `test-servers <mode> --port 0` and waits for its ready line. Panics (with
    /// the server's stderr) if it does not become ready.
    pub fn start(mode: &str) -> Self {
        Self::start_with(mode, &[])
    }

    /// Like [`start`](Self::start), with extra command-line arguments for the mode.
    pub fn start_with(mode: &str, args: &[&str]) -> Self {
        Self::try_start(mode, args).unwrap_or_else(|e| panic!("{e}"))
    }

    /// Starts a server; on failure returns a description including the server's stderr.
    pub fn try_start(mode: &str, args: &[&str]) -> Result<Self, String> {
        Launch::new(mode).args(args).try_start()
    }

    /// Like [`start_with`](Self::start_with) on a given port instead of an ephemeral one:
    /// only to restart a server on the port a killed one had (a reconnect test), so the
    /// port is one the system handed out before, never a fixed number.
    pub fn start_on_port(mode: &str, port: u16, args: &[&str]) -> Self {
        Launch::new(mode).port(port).args(args).start()
    }

    /// The `ws://` (or, with `--tls`, `wss://`) URL from the ready line.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The URL with `path` (for example `"echo?n=3"`) in place of `/`.
    pub fn url_with_path(&self, path: &str) -> String {
        let scheme = if self.url.starts_with("wss://") {
            "wss"
        } else {
            "ws"
        };
        format!("{scheme}://{}/{}", self.addr, path.trim_start_matches('/'))
    }

    /// With `--tls`: the CA certificate's PEM file named by the ready line's `ca_cert`.
    pub fn ca_cert(&self) -> Option<&Path> {
        self.ready["ca_cert"].as_str().map(Path::new)
    }

    /// The bound address from the ready line.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The whole ready line.
    pub fn ready_line(&self) -> &Value {
        &self.ready
    }

    /// The child's process id (to send it signals).
    pub fn pid(&self) -> u32 {
        self.pid
    }

    /// The next JSON event the server prints after its ready line, if one comes in time.
    pub fn next_event(&self, timeout: Duration) -> Option<Value> {
        self.events.recv_timeout(timeout).ok()
    }

    /// Everything the server has written to stderr so far.
    pub fn stderr(&self) -> String {
        self.stderr
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// The server's peak resident memory and CPU time so far (Linux only).
    pub fn usage(&self) -> Option<ServerUsage> {
        ServerUsage::of(self.pid)
    }

    /// Appends this server's usage to `$TEST_SERVERS_USAGE_LOG` once, while it still runs.
    fn record_usage(&mut self) {
        if self.usage_recorded {
            return;
        }
        self.usage_recorded = true;
        if let Ok(None) = self.child().try_wait() {
            if let Some(usage) = self.usage() {
                usage::record(&self.description, usage);
            }
        }
    }

    /// Kills the server at once (SIGKILL on Unix): no close frames, no goodbye.
    pub fn kill(&mut self) {
        self.record_usage();
        let _ = self.child().kill();
        let _ = self.child().wait();
    }

    fn child(&mut self) -> &mut Child {
        self.child
            .as_mut()
            .expect("the child is only taken when dropped")
    }

    /// Stops the server gracefully by closing its stdin, then waits for it to exit.
    /// Returns its exit status and its final `stopped` event.
    pub fn stop(mut self) -> (ExitStatus, Value) {
        self.record_usage();
        drop(self.stdin.take());
        self.wait_stopped()
    }

    /// Waits for a server that was told to stop (for example by a signal) to exit.
    /// Returns its exit status and its final `stopped` event.
    pub fn wait_stopped(&mut self) -> (ExitStatus, Value) {
        self.record_usage();
        let status = match self
            .child()
            .wait_timeout(EXIT_TIMEOUT)
            .expect("wait for test-servers")
        {
            Some(status) => status,
            None => panic!(
                "{}",
                self.failure(&format!("did not exit within {EXIT_TIMEOUT:?}"))
            ),
        };
        let stopped = std::iter::from_fn(|| self.events.recv_timeout(EXIT_TIMEOUT).ok())
            .find(|event| event["event"] == "stopped")
            .unwrap_or_else(|| panic!("{}", self.failure("exited without a stopped line")));
        (status, stopped)
    }

    fn failure(&self, what: &str) -> String {
        format!(
            "{} {what}\n--- server stderr ---\n{}",
            self.description,
            self.stderr()
        )
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        self.record_usage();
        // Stop it as its contract says (stdin EOF), so it exits through its normal path.
        drop(self.stdin.take());
        let ca = self.ca_cert().map(Path::to_path_buf);
        if let Some(mut child) = self.child.take() {
            if matches!(child.wait_timeout(DROP_WAIT), Ok(Some(_))) {
                remove_ca(ca);
            } else {
                // Its clients belong to this (blocked) test; once the test returns they close
                // and the server finishes its stop. The reaper kills it if it does not.
                std::thread::spawn(move || {
                    if !matches!(child.wait_timeout(REAP_GRACE), Ok(Some(_))) {
                        let _ = child.kill();
                        let _ = child.wait();
                    }
                    remove_ca(ca);
                });
            }
        }
        if std::thread::panicking() {
            eprintln!("--- stderr of {} ---\n{}", self.description, self.stderr());
        }
    }
}

/// A killed `--tls` server cannot remove its CA file and folder: removes them.
fn remove_ca(ca: Option<PathBuf>) {
    if let Some(ca) = ca {
        let _ = std::fs::remove_file(&ca);
        if let Some(dir) = ca.parent() {
            let _ = std::fs::remove_dir(dir);
        }
    }
}

/// Parses each stdout line as JSON and forwards it; non-JSON lines are reported as such.
fn read_events(stdout: impl Read + Send + 'static) -> Receiver<Value> {
    let (sender, receiver) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            let event = serde_json::from_str(&line)
                .unwrap_or_else(|_| serde_json::json!({"event": "not-json", "line": line}));
            if sender.send(event).is_err() {
                break;
            }
        }
    });
    receiver
}

/// Keeps the last [`STDERR_CAP`] bytes of the child's stderr.
fn capture_stderr(stderr: impl Read + Send + 'static) -> Arc<Mutex<String>> {
    let captured = Arc::new(Mutex::new(String::new()));
    let sink = Arc::clone(&captured);
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines() {
            let Ok(line) = line else { break };
            let mut text = sink.lock().unwrap_or_else(|e| e.into_inner());
            if text.len() > STDERR_CAP {
                let cut = text.len() - STDERR_CAP / 2;
                let cut = (cut..text.len())
                    .find(|&i| text.is_char_boundary(i))
                    .unwrap_or(text.len());
                text.drain(..cut);
            }
            text.push_str(&line);
            text.push('\n');
        }
    });
    captured
}
