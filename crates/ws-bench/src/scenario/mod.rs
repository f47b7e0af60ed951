//! The scenarios, one file each. Each takes its parsed arguments and returns a `Report`.

pub(crate) mod batch_cost;
pub(crate) mod connect;
pub(crate) mod idle;
pub(crate) mod open_model;
pub(crate) mod pacer;
pub(crate) mod resilient_cost;
pub(crate) mod rpc;
pub(crate) mod rpc_compare;
pub(crate) mod rtt;
pub(crate) mod throughput;

use std::time::{Duration, Instant};

use anyhow::{Result, bail};

use crate::clients::Received;

/// Nanoseconds from `epoch` to now, as put in a message's time stamp.
pub(crate) fn nanos_since(epoch: Instant) -> u64 {
    u64::try_from(epoch.elapsed().as_nanos()).unwrap_or(u64::MAX)
}

/// Time from a stamp (nanoseconds since `epoch`) to now.
pub(crate) fn since_stamp(epoch: Instant, stamp: u64) -> Duration {
    Duration::from_nanos(nanos_since(epoch).saturating_sub(stamp))
}

/// Checks that an echo has the size that was sent.
pub(crate) fn check_echo(received: Option<Received>, size: usize) -> Result<Received> {
    match received {
        Some(r) if r.len == size => Ok(r),
        Some(r) => bail!(
            "sent {size} bytes, the echo has {}: is this an echo server?",
            r.len
        ),
        None => bail!("the server closed the connection instead of echoing"),
    }
}
