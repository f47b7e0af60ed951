//! What each spawned server cost: its peak resident memory and CPU time, read from `/proc`
//! just before the harness stops it, appended as one JSON line per server to the file named
//! by `$TEST_SERVERS_USAGE_LOG` (set by `cargo xtask integration` and `cargo xtask coverage`,
//! which list the heaviest tests). Linux only; elsewhere nothing is recorded.
//!
//! Hand-written rather than the `procfs` crate: two fields of two files do not justify its
//! dependency tree in every test build.

use std::io::Write;
use std::time::Duration;

/// The environment variable naming the file the records are appended to.
pub const USAGE_LOG_ENV: &str = "TEST_SERVERS_USAGE_LOG";

/// One server's resource use, as far as `/proc` could tell.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ServerUsage {
    /// Peak resident set size (`VmHWM`), in bytes.
    pub peak_rss_bytes: u64,
    /// User plus system CPU time.
    pub cpu_time: Duration,
}

impl ServerUsage {
    /// Reads the usage of the live process `pid`; `None` where `/proc` is not there (not
    /// Linux) or the process is gone.
    pub fn of(pid: u32) -> Option<Self> {
        let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
        Some(Self {
            peak_rss_bytes: peak_rss_bytes(&status)?,
            cpu_time: cpu_time(&stat)?,
        })
    }
}

/// `VmHWM:    1234 kB` from `/proc/PID/status`, in bytes.
fn peak_rss_bytes(status: &str) -> Option<u64> {
    let line = status.lines().find(|line| line.starts_with("VmHWM:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}

/// utime + stime (fields 14 and 15) from `/proc/PID/stat`. The command name (field 2) may
/// hold spaces and parentheses, so fields are counted from after its closing parenthesis.
fn cpu_time(stat: &str) -> Option<Duration> {
    let after_name = &stat[stat.rfind(')')? + 1..];
    let mut fields = after_name.split_whitespace().skip(11); // field 3 is the first here
    let utime: u64 = fields.next()?.parse().ok()?;
    let stime: u64 = fields.next()?.parse().ok()?;
    // The kernel reports these in USER_HZ ticks, which is 100 on every Linux ABI Rust runs on.
    Some(Duration::from_millis((utime + stime) * 10))
}

/// Appends one record for the server `description` to `$TEST_SERVERS_USAGE_LOG`, if set.
/// The test is named by its thread (libtest and nextest both name it after the test).
/// Errors are ignored: the record is a report, never a reason to fail a test.
pub(crate) fn record(description: &str, usage: ServerUsage) {
    let Some(path) = std::env::var_os(USAGE_LOG_ENV) else {
        return;
    };
    let test = std::thread::current()
        .name()
        .unwrap_or("(unnamed thread)")
        .to_owned();
    let line = serde_json::json!({
        "test": test,
        "server": description.trim(),
        "peak_rss_bytes": usage.peak_rss_bytes,
        "cpu_ms": usage.cpu_time.as_millis() as u64,
    });
    // One short `write` on a file opened for appending: records from parallel test
    // processes do not interleave.
    if let Ok(mut file) = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
    {
        let _ = file.write_all(format!("{line}\n").as_bytes());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_proc_fields() {
        let status =
            "Name:\ttest-servers\nVmPeak:\t  9000 kB\nVmHWM:\t    5120 kB\nVmRSS:\t 4000 kB\n";
        assert_eq!(peak_rss_bytes(status), Some(5120 * 1024));
        assert_eq!(peak_rss_bytes("Name: x\n"), None);

        // A command name with a space and a parenthesis must not shift the fields.
        let stat = "4242 (odd) name) S 1 4242 4242 0 -1 4194560 100 0 0 0 37 5 0 0 20 0 3 0 1 2 3";
        assert_eq!(cpu_time(stat), Some(Duration::from_millis(420)));
        assert_eq!(cpu_time("garbage"), None);
    }

    #[test]
    fn reads_this_process_on_linux() {
        let usage = ServerUsage::of(std::process::id());
        if cfg!(target_os = "linux") {
            let usage = usage.expect("/proc is readable on Linux");
            assert!(usage.peak_rss_bytes > 0);
        }
    }
}
