//! One contender of `compare`: its persistent connection (none for `connect`), one slice of
//! the scenario at a time, and at the end its connection closed.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use anyhow::{Result, bail};
use tokio::sync::Semaphore;

use super::args::{ContenderKind, Scenario};
use super::client::{Received, Rx, Tx};
use super::open::{self, Endpoint};
use crate::interleave::Sample;
use crate::report;

/// What every slice does.
#[derive(Debug)]
pub(crate) struct Load {
    pub(crate) scenario: Scenario,
    pub(crate) payload: Vec<u8>,
    /// Echo: most messages in flight.
    pub(crate) window: usize,
    /// Messages per flush (and per look at the clock).
    pub(crate) chunk: usize,
    /// Operations done so far, for the progress watchdog.
    pub(crate) done: Arc<AtomicU64>,
}

impl Load {
    fn bump(&self, n: usize) -> u64 {
        self.done.fetch_add(n as u64, Ordering::Relaxed);
        n as u64
    }
}

/// A contender and what it has sent (warm-up included), to check against its server.
#[derive(Debug)]
pub(crate) struct Contender {
    pub(crate) kind: ContenderKind,
    pub(crate) endpoint: Endpoint,
    halves: Option<(Tx, Rx)>,
    /// Messages sent so far (each round trip and each echo counts one).
    pub(crate) sent: u64,
    /// Syncs asked so far (the ping token).
    syncs: u64,
}

impl Contender {
    /// Opens the persistent connection (`connect` opens its own each time).
    pub(crate) async fn open(kind: ContenderKind, endpoint: Endpoint, load: &Load) -> Result<Self> {
        let halves = match load.scenario {
            Scenario::Connect => None,
            _ => Some(open::open(kind, &endpoint).await?),
        };
        Ok(Self {
            kind,
            endpoint,
            halves,
            sent: 0,
            syncs: 0,
        })
    }

    /// Runs one slice until `until`.
    pub(crate) async fn slice(&mut self, load: &Load, until: Instant) -> Result<Sample> {
        let started = Instant::now();
        let Some((tx, rx)) = self.halves.as_mut() else {
            let mut histogram = report::new_histogram();
            while Instant::now() < until {
                let took = open::connect_once(self.kind, &self.endpoint).await?;
                report::record(&mut histogram, took);
                load.bump(1);
            }
            return Ok(Sample::latency(&histogram, started.elapsed()));
        };
        let size = load.payload.len();
        let check = |received: Received| match received {
            Received::Data(len) if len == size => Ok(()),
            Received::Data(len) => bail!("sent {size} bytes, the echo has {len}"),
            Received::Synced(_) => bail!("an unasked-for pong"),
            Received::Closed => bail!("the server closed the connection"),
        };
        match load.scenario {
            Scenario::Connect => unreachable!("connect holds no connection"),
            Scenario::Rtt => {
                let mut histogram = report::new_histogram();
                while Instant::now() < until {
                    let sent = Instant::now();
                    tx.queue(&load.payload).await?;
                    tx.flush().await?;
                    check(rx.recv().await?)?;
                    report::record(&mut histogram, sent.elapsed());
                    self.sent += load.bump(1);
                }
                Ok(Sample::latency(&histogram, started.elapsed()))
            }
            Scenario::OneWay => {
                let mut sent = 0;
                while Instant::now() < until {
                    tx.queue_many(&load.payload, load.chunk).await?;
                    sent += load.bump(load.chunk);
                }
                self.syncs += 1;
                tx.sync(self.syncs).await?;
                let counted = rx.synced(self.syncs).await?;
                self.sent += sent;
                if let Some(counted) = counted.filter(|c| *c != self.sent) {
                    bail!("sent {} messages, the sink counted {counted}", self.sent);
                }
                Ok(Sample::rate(sent, started.elapsed()))
            }
            Scenario::Echo => {
                let sent = echo(load, until, tx, rx, check).await?;
                self.sent += sent;
                Ok(Sample::rate(sent, started.elapsed()))
            }
        }
    }

    /// Closes the connection: a close frame (or shutdown), then the peer's answer.
    pub(crate) async fn close(mut self) -> Result<u64> {
        if let Some((mut tx, mut rx)) = self.halves.take() {
            tx.close().await?;
            rx.drain().await?;
        }
        Ok(self.sent)
    }
}

/// Echo with at most `window` messages in flight: a chunk goes out (one flush) whenever there
/// is room for it and time left; the slice ends when every echo is in. Returns the count.
async fn echo(
    load: &Load,
    until: Instant,
    tx: &mut Tx,
    rx: &mut Rx,
    check: impl Fn(Received) -> Result<()>,
) -> Result<u64> {
    let room = Semaphore::new(load.window);
    let sending = async {
        let mut sent = 0;
        while Instant::now() < until {
            room.acquire_many(load.chunk as u32).await?.forget();
            tx.queue_many(&load.payload, load.chunk).await?;
            tx.flush().await?;
            sent += load.bump(load.chunk);
        }
        // Every permit back: every echo is in.
        let _all_in = room.acquire_many(load.window as u32).await?;
        anyhow::Ok(sent)
    };
    let receiving = async {
        loop {
            check(rx.recv().await?)?;
            room.add_permits(1);
        }
    };
    // The receive left waiting when the last echo is in is cancel-safe for every client:
    // nothing has arrived for it.
    tokio::select! {
        sent = sending => sent,
        failed = receiving => failed,
    }
}
