//! Machine-readable events: one JSON object per line on stdout, flushed at once.

use std::io::Write;

use serde_json::Value;

/// Writes `event` as one JSON line on stdout and flushes it. A closed stdout (the parent
/// went away) is logged, not fatal: the server keeps serving until told to stop.
pub fn emit(event: &Value) {
    let mut stdout = std::io::stdout().lock();
    let written = serde_json::to_writer(&mut stdout, event)
        .map_err(std::io::Error::from)
        .and_then(|()| stdout.write_all(b"\n"))
        .and_then(|()| stdout.flush());
    if let Err(e) = written {
        tracing::warn!(error = %e, "could not write event to stdout");
    }
}
