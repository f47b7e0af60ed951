//! Raises the open-file soft limit to the hard limit at start-up: every connection costs a
//! file descriptor, and the usual soft limit (often 1024) would cap a server far below
//! `--max-connections`. The hard limit itself can only be raised by the administrator.

/// The open-file limit in force after trying to raise it, if the platform has one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FdLimit {
    /// The soft limit before.
    pub before: u64,
    /// The soft limit now: what the process can actually open.
    pub now: u64,
    /// The hard limit (the ceiling for `now`).
    pub hard: u64,
}

/// Raises the soft limit on open files as far as the hard limit allows and logs the result;
/// warns when `wanted` descriptors (connections plus a few for the process) will not fit.
pub fn raise(wanted: u64) -> Option<FdLimit> {
    let limit = raise_to_hard();
    match limit {
        Some(limit) => {
            tracing::info!(
                soft_before = limit.before,
                soft = limit.now,
                hard = limit.hard,
                "open-file limit"
            );
            if limit.now < wanted {
                tracing::warn!(
                    limit = limit.now,
                    wanted,
                    "the open-file limit is below --max-connections: accepts beyond it fail \
                     (the hard limit is raised with `ulimit -Hn` or limits.conf, as root)"
                );
            }
        }
        None => tracing::debug!("no open-file limit to raise on this platform"),
    }
    limit
}

#[cfg(unix)]
fn raise_to_hard() -> Option<FdLimit> {
    use nix::sys::resource::{Resource, getrlimit, setrlimit};

    let (soft, hard) = getrlimit(Resource::RLIMIT_NOFILE).ok()?;
    let mut limit = FdLimit {
        before: soft,
        now: soft,
        hard,
    };
    if soft >= hard {
        return Some(limit);
    }
    // macOS refuses a soft limit above OPEN_MAX (10240) when the hard limit is unlimited.
    for target in [hard, hard.min(10_240)] {
        if target > soft && setrlimit(Resource::RLIMIT_NOFILE, target, hard).is_ok() {
            limit.now = target;
            break;
        }
    }
    if limit.now == soft {
        tracing::warn!(soft, hard, "could not raise the open-file soft limit");
    }
    Some(limit)
}

#[cfg(not(unix))]
fn raise_to_hard() -> Option<FdLimit> {
    None
}

#[cfg(all(test, unix))]
mod tests {
    use super::*;

    #[test]
    fn the_soft_limit_ends_at_the_hard_limit_or_higher_than_before() {
        let limit = raise(0).expect("unix has an open-file limit");
        assert!(limit.now >= limit.before);
        assert!(limit.now <= limit.hard);
    }
}
