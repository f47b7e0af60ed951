//! How a `test-servers` child is started: mode, arguments, host, port, and an optional
//! launcher the command runs under (`ip netns exec NS` puts the server in a network
//! namespace). The launcher must exec the server in place, as `ip netns exec` does, so the
//! child's pid is the server's (signals, usage, the graceful stop all reach the server).

use std::ffi::OsString;
use std::net::SocketAddr;
use std::process::{Command, Stdio};
use std::sync::mpsc::RecvTimeoutError;

use serde_json::Value;
use wait_timeout::ChildExt;

use crate::{
    EXIT_TIMEOUT, READY_TIMEOUT, TestServer, capture_stderr, read_events, test_servers_bin,
};

/// A `test-servers` command line to start as a [`TestServer`]. Defaults: host `127.0.0.1`,
/// port 0 (ephemeral), no launcher; `--exit-on-stdin-eof` is always passed.
///
/// ```no_run
/// # fn demo(namespace: &str) {
/// use integration::Launch;
///
/// let server = Launch::new("echo")
///     .launcher(["ip", "netns", "exec", namespace])
///     .host("192.0.2.1")
///     .start();
/// # }
/// ```
#[derive(Debug, Clone)]
pub struct Launch {
    mode: String,
    args: Vec<String>,
    host: String,
    port: u16,
    launcher: Vec<OsString>,
}

impl Launch {
    /// `test-servers <mode>` on `127.0.0.1`, port 0.
    pub fn new(mode: &str) -> Self {
        Self {
            mode: mode.to_owned(),
            args: Vec::new(),
            host: "127.0.0.1".to_owned(),
            port: 0,
            launcher: Vec::new(),
        }
    }

    /// Extra command-line arguments for the mode (appended).
    pub fn args(mut self, args: &[&str]) -> Self {
        self.args.extend(args.iter().map(|&arg| arg.to_owned()));
        self
    }

    /// The address to bind (`--host`).
    pub fn host(mut self, host: &str) -> Self {
        host.clone_into(&mut self.host);
        self
    }

    /// The port to bind: only one the system handed out before (a killed server's, to
    /// restart it), never a fixed number.
    pub fn port(mut self, port: u16) -> Self {
        self.port = port;
        self
    }

    /// A program and its arguments that the server's command line is appended to, for
    /// example `["ip", "netns", "exec", "NS"]`. It must exec the server in place.
    pub fn launcher<S: Into<OsString>>(mut self, launcher: impl IntoIterator<Item = S>) -> Self {
        self.launcher = launcher.into_iter().map(Into::into).collect();
        self
    }

    /// Starts the server and waits for its ready line; panics (with its stderr) if it does
    /// not become ready.
    pub fn start(self) -> TestServer {
        self.try_start().unwrap_or_else(|e| panic!("{e}"))
    }

    /// Starts the server; on failure returns a description including the server's stderr.
    pub fn try_start(self) -> Result<TestServer, String> {
        let launcher: Vec<_> = self
            .launcher
            .iter()
            .map(|part| part.to_string_lossy().into_owned() + " ")
            .collect();
        let description = format!(
            "{}test-servers {} {}",
            launcher.concat(),
            self.mode,
            self.args.join(" ")
        );
        let port = self.port.to_string();
        let mut command = match self.launcher.split_first() {
            Some((program, rest)) => {
                let mut command = Command::new(program);
                command.args(rest).arg(test_servers_bin());
                command
            }
            None => Command::new(test_servers_bin()),
        };
        let mut child = command
            .arg(&self.mode)
            .args(["--host", &self.host, "--port", &port, "--exit-on-stdin-eof"])
            .args(&self.args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| format!("cannot spawn {description}: {e}"))?;
        let stdin = child.stdin.take();
        let events = read_events(child.stdout.take().expect("piped stdout"));
        let stderr = capture_stderr(child.stderr.take().expect("piped stderr"));
        let mut server = TestServer {
            pid: child.id(),
            child: Some(child),
            stdin,
            events,
            stderr,
            ready: Value::Null,
            addr: SocketAddr::from(([127, 0, 0, 1], 0)),
            url: String::new(),
            description,
            usage_recorded: false,
        };
        let ready = match server.events.recv_timeout(READY_TIMEOUT) {
            Ok(event) => event,
            Err(RecvTimeoutError::Timeout) => {
                return Err(server.failure(&format!("no ready line within {READY_TIMEOUT:?}")));
            }
            Err(RecvTimeoutError::Disconnected) => {
                let status = server.child().wait_timeout(EXIT_TIMEOUT).ok().flatten();
                return Err(
                    server.failure(&format!("exited before its ready line (status {status:?})"))
                );
            }
        };
        if ready["event"] != "listening" {
            return Err(server.failure(&format!("first stdout line is not a ready line: {ready}")));
        }
        server.addr = ready["addr"]
            .as_str()
            .and_then(|a| a.parse().ok())
            .ok_or_else(|| server.failure(&format!("ready line has no valid addr: {ready}")))?;
        server.url = ready["url"].as_str().unwrap_or_default().to_owned();
        server.ready = ready;
        Ok(server)
    }
}
