//! Machine-readable events: one JSON object per line on stdout, flushed at once. Each event
//! is a struct so that its fields keep the documented order (`event` first).

use std::io::Write;

use serde::Serialize;

use crate::stats::Counters;

/// Printed once the socket is bound and accepting.
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
}

/// The ready line of a `--tls` server: the [`Listening`] fields, then where the CA
/// certificate clients must trust was written (a PEM file).
#[derive(Debug, Serialize)]
pub struct ListeningTls<'a> {
    /// The fields every ready line has (`url` is `wss://...`).
    #[serde(flatten)]
    pub listening: Listening<'a>,
    /// Path of the CA certificate's PEM file.
    pub ca_cert: String,
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
