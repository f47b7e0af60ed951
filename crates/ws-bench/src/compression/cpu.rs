//! CPU time read around each slice: this process's (the client: `getrusage(RUSAGE_SELF)`,
//! user + system, microsecond resolution) and a server process's by pid (Linux: the sum of
//! its threads' run time in `/proc/PID/task/*/schedstat`, nanoseconds; where schedstat is
//! missing, `utime + stime` from `/proc/PID/stat`, 10 ms ticks). `None` where it cannot
//! be read (another OS, or a server that is not ours).

use std::time::Duration;

/// How a server's CPU time was read, for the report.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ServerClock {
    /// Each thread's run time from `/proc/PID/task/*/schedstat` (nanoseconds).
    Schedstat,
    /// `utime + stime` from `/proc/PID/stat` (clock ticks of 10 ms).
    Stat,
}

impl ServerClock {
    pub(crate) fn name(self) -> &'static str {
        match self {
            ServerClock::Schedstat => "/proc/PID/task/*/schedstat (ns)",
            ServerClock::Stat => "/proc/PID/stat utime+stime (10 ms ticks)",
        }
    }
}

/// CPU time (user + system) this process has used so far.
#[cfg(unix)]
pub(crate) fn client() -> Option<Duration> {
    use nix::sys::resource::{UsageWho, getrusage};
    let usage = getrusage(UsageWho::RUSAGE_SELF).ok()?;
    let micros = |t: nix::sys::time::TimeVal| {
        Duration::from_secs(u64::try_from(t.tv_sec()).ok()?)
            .checked_add(Duration::from_micros(u64::try_from(t.tv_usec()).ok()?))
    };
    micros(usage.user_time())?.checked_add(micros(usage.system_time())?)
}

/// CPU time this process has used so far: unknown on this OS.
#[cfg(not(unix))]
pub(crate) fn client() -> Option<Duration> {
    None
}

/// Which clock can read `pid`'s CPU time here, if any.
pub(crate) fn server_clock(pid: u32) -> Option<ServerClock> {
    if schedstat(pid).is_some() {
        Some(ServerClock::Schedstat)
    } else if stat(pid).is_some() {
        Some(ServerClock::Stat)
    } else {
        None
    }
}

/// CPU time process `pid` has used so far, read with `clock`.
pub(crate) fn server(pid: u32, clock: ServerClock) -> Option<Duration> {
    match clock {
        ServerClock::Schedstat => schedstat(pid),
        ServerClock::Stat => stat(pid),
    }
}

/// The sum of the first field (nanoseconds on a CPU) of every thread's schedstat.
fn schedstat(pid: u32) -> Option<Duration> {
    let tasks = std::fs::read_dir(format!("/proc/{pid}/task")).ok()?;
    let mut total = 0u64;
    let mut threads = 0;
    for task in tasks {
        let path = task.ok()?.path().join("schedstat");
        let Ok(text) = std::fs::read_to_string(&path) else {
            // A thread that ended since the directory was read.
            continue;
        };
        total += text.split_whitespace().next()?.parse::<u64>().ok()?;
        threads += 1;
    }
    (threads > 0).then(|| Duration::from_nanos(total))
}

/// `utime + stime` of `/proc/PID/stat` (fields 14 and 15), in ticks of 10 ms (Linux's
/// USER_HZ is 100 on every architecture it supports).
fn stat(pid: u32) -> Option<Duration> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name (field 2) may hold spaces and parentheses: count from its end.
    let after_name = &text[text.rfind(')')? + 1..];
    let mut fields = after_name.split_whitespace().skip(11);
    let utime: u64 = fields.next()?.parse().ok()?;
    let stime: u64 = fields.next()?.parse().ok()?;
    Some(Duration::from_millis((utime + stime) * 10))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Burns CPU until `clock` has moved by 20 ms (or 10 s have passed: a clock that does
    /// not move); returns how far it moved. On a busy machine this thread gets only part
    /// of a core, so the wall time it takes says nothing.
    fn spin_until_moved(clock: impl Fn() -> Duration) -> Duration {
        let before = clock();
        let started = std::time::Instant::now();
        let mut x = 1u64;
        loop {
            for _ in 0..10_000 {
                x = std::hint::black_box(x.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1));
            }
            let moved = clock().saturating_sub(before);
            if moved >= Duration::from_millis(20) || started.elapsed() > Duration::from_secs(10) {
                return moved;
            }
        }
    }

    #[cfg(unix)]
    #[test]
    fn the_client_clock_moves_with_work() {
        let moved = spin_until_moved(|| client().unwrap());
        assert!(moved >= Duration::from_millis(20), "{moved:?}");
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn a_process_is_read_by_pid_with_either_clock() {
        let pid = std::process::id();
        let clock = server_clock(pid).unwrap();
        let moved = spin_until_moved(|| server(pid, clock).unwrap());
        assert!(moved >= Duration::from_millis(20), "{clock:?}: {moved:?}");
        let moved = spin_until_moved(|| stat(pid).unwrap());
        assert!(moved >= Duration::from_millis(20), "stat: {moved:?}");
        assert!(server_clock(u32::MAX).is_none());
    }
}
