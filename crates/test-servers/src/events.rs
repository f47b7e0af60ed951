//! Machine-readable events: one JSON object per line on stdout, flushed at once. Each event
//! is a struct so that its fields keep the documented order (`event` first).

use std::io::Write;

use serde::Serialize;

use crate::stats::Counters;

/// Printed once the socket is bound and accepting: the members every ready line has, then
/// the ones the mode adds, in the order they were added.
#[derive(Debug, Serialize)]
pub struct Listening<'a> {
    /// Always `"listening"`.
    pub event: &'static str,
    /// The server mode.
    pub mode: &'a str,
    /// The bound address, with the real port when `--port 0` was given.
    pub addr: String,
    /// The URL clients connect to.
    pub url: String,
    /// What the mode adds (`--tls`: `ca_cert`; `chaos`: `upstream`, `control`).
    #[serde(flatten)]
    pub extra: Members,
}

impl<'a> Listening<'a> {
    /// The ready line of `mode` listening on `addr`, at `url`, with nothing added yet.
    pub fn new(mode: &'a str, addr: String, url: String) -> Self {
        Self {
            event: "listening",
            mode,
            addr,
            url,
            extra: Members::default(),
        }
    }

    /// Adds the member `name` after those already there.
    pub fn add(&mut self, name: &'static str, value: impl Into<String>) {
        self.extra.0.push((name, value.into()));
    }
}

/// Members of an event in a fixed order (a JSON object, whatever serde_json's features).
#[derive(Debug, Default)]
pub struct Members(Vec<(&'static str, String)>);

impl Serialize for Members {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_map(self.0.iter().map(|(name, value)| (name, value)))
    }
}

/// Printed once at exit, after open sessions were closed.
#[derive(Debug, Serialize)]
pub struct Stopped<'a> {
    /// Always `"stopped"`.
    pub event: &'static str,
    /// The server mode.
    pub mode: &'a str,
    /// What stopped the server: `interrupt`, `terminate` or `stdin closed`.
    pub reason: &'a str,
    /// Whether every session finished its close handshake within the grace period.
    pub clean: bool,
    /// The server's counters.
    #[serde(flatten)]
    pub counters: Counters,
    /// What the mode adds (`security`: runs per scenario).
    #[serde(flatten)]
    pub extra: serde_json::Map<String, serde_json::Value>,
}

/// Printed by `security` mode each time a connection's scenario ends, so that a test can
/// see what the client did from the server's side.
#[derive(Debug, Serialize)]
pub struct ScenarioEnded {
    /// Always `"scenario"`.
    pub event: &'static str,
    /// The scenario's name.
    pub name: &'static str,
    /// How it ended: `finished`, `connection failed`, `scenario time reached` or
    /// `shutdown`.
    pub outcome: &'static str,
    /// The code of the client's close frame (1005 when it had none); `null` when the
    /// client sent no close frame.
    pub client_close: Option<u16>,
    /// Bytes the server wrote on the connection (the socket took them; the client may not
    /// have read them all).
    pub bytes_out: u64,
    /// Milliseconds from the end of the upgrade request to the end of the scenario.
    pub elapsed_ms: u64,
}

/// Writes `event` as one JSON line on stdout and flushes it. A closed stdout (the parent
/// went away) is logged, not fatal: the server keeps serving until told to stop.
pub fn emit(event: &impl Serialize) {
    let mut stdout = std::io::stdout().lock();
    let written = serde_json::to_writer(&mut stdout, event)
        .map_err(std::io::Error::from)
        .and_then(|()| stdout.write_all(b"\n"))
        .and_then(|()| stdout.flush());
    if let Err(e) = written {
        tracing::warn!(error = %e, "could not write event to stdout");
    }
}
