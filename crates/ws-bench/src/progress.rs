//! Progress of a run: a shared counter the workers bump, a live bar on stderr (shown only
//! after ~2 s and only on a terminal), and a watchdog that aborts a run that stops moving.

use std::future::Future;
use std::io::IsTerminal;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Result, bail};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

/// How long a run goes before its bar appears.
const SHOW_AFTER: Duration = Duration::from_secs(2);
/// How often the bar and the watchdog look at the counter.
const TICK: Duration = Duration::from_millis(200);

/// How much work a run plans, for the bar's length.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Planned {
    /// A number of operations.
    Count(u64),
    /// A length of time.
    Time(Duration),
}

/// A run's progress: counter, bar and watchdog.
#[derive(Debug)]
pub(crate) struct Progress {
    done: Arc<AtomicU64>,
    bar: ProgressBar,
    planned: Planned,
    stall: Duration,
}

impl Progress {
    /// A hidden bar for `label`; it shows itself once the run passes [`SHOW_AFTER`].
    pub(crate) fn new(label: &str, planned: Planned, stall: Duration) -> Self {
        let (length, template) = match planned {
            Planned::Count(n) => (n, "{prefix} [{bar:30}] {pos}/{len} ({per_sec}, eta {eta})"),
            Planned::Time(d) => (
                u64::try_from(d.as_millis()).unwrap_or(u64::MAX),
                "{prefix} [{bar:30}] {msg} done, {elapsed} elapsed",
            ),
        };
        let bar = ProgressBar::with_draw_target(Some(length), ProgressDrawTarget::hidden());
        if let Ok(style) = ProgressStyle::with_template(template) {
            bar.set_style(style.progress_chars("=> "));
        }
        bar.set_prefix(label.to_owned());
        Self {
            done: Arc::new(AtomicU64::new(0)),
            bar,
            planned,
            stall,
        }
    }

    /// The counter workers add their completed operations to.
    pub(crate) fn counter(&self) -> Arc<AtomicU64> {
        Arc::clone(&self.done)
    }

    /// Runs `work`, updating the bar meanwhile; fails if the counter does not move for the
    /// stall timeout.
    pub(crate) async fn watch<T>(&self, work: impl Future<Output = Result<T>>) -> Result<T> {
        let started = Instant::now();
        let mut tick = tokio::time::interval(TICK);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut last = self.done.load(Ordering::Relaxed);
        let mut last_change = Instant::now();
        let mut shown = false;
        tokio::pin!(work);
        loop {
            tokio::select! {
                biased;
                result = &mut work => {
                    self.bar.finish_and_clear();
                    return result;
                }
                _ = tick.tick() => {
                    let done = self.done.load(Ordering::Relaxed);
                    if done != last {
                        last = done;
                        last_change = Instant::now();
                    } else if last_change.elapsed() > self.stall {
                        self.bar.finish_and_clear();
                        bail!("no progress for {:?} ({done} operations done); is the server answering?", self.stall);
                    }
                    if !shown && started.elapsed() > SHOW_AFTER && std::io::stderr().is_terminal() {
                        self.bar.set_draw_target(ProgressDrawTarget::stderr());
                        shown = true;
                    }
                    match self.planned {
                        Planned::Count(_) => self.bar.set_position(done),
                        Planned::Time(_) => {
                            self.bar.set_position(u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX));
                            self.bar.set_message(done.to_string());
                        }
                    }
                }
            }
        }
    }
}

/// When a run stops: after a number of operations or at a point in time.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Budget {
    Count(u64),
    Until(Instant),
}

impl Budget {
    /// The budget from `--count`/`--duration`, `default_count` when neither is given.
    pub(crate) fn from_args(args: &crate::cli::BudgetArgs, default_count: u64) -> Planned {
        match (args.count, args.duration) {
            (_, Some(duration)) => Planned::Time(duration),
            (Some(count), None) => Planned::Count(count),
            (None, None) => Planned::Count(default_count),
        }
    }

    /// Starts the clock on `planned`.
    pub(crate) fn start(planned: Planned) -> Self {
        match planned {
            Planned::Count(n) => Budget::Count(n),
            Planned::Time(d) => Budget::Until(Instant::now() + d),
        }
    }

    /// Whether the operation numbered `done` (from 0) should not start. A deadline is
    /// checked every 16 operations only, to keep the clock off the hot path.
    pub(crate) fn exhausted(&self, done: u64) -> bool {
        match *self {
            Budget::Count(n) => done >= n,
            Budget::Until(deadline) => done % 16 == 0 && Instant::now() >= deadline,
        }
    }

    /// Like [`exhausted`](Self::exhausted), reading the clock every time (for operations
    /// numbered from a counter shared by several workers).
    pub(crate) fn exhausted_now(&self, done: u64) -> bool {
        match *self {
            Budget::Count(n) => done >= n,
            Budget::Until(deadline) => Instant::now() >= deadline,
        }
    }
}
