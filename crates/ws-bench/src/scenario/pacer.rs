//! One clock for many periodic senders: the open model's schedule (sender k due at
//! `begin_k + m * interval`) kept in one heap, and each sender woken at its due time by one
//! high-resolution timer (a `timerfd` on Linux), instead of a tokio timer per sender.
//!
//! Why: tokio's timers fire on a 1 ms wheel (a sleep ends at the first tick at or after its
//! deadline, and the runtime parks with a millisecond timeout), so with a timer per sender
//! every message starts up to a millisecond or two late, and the senders whose deadlines
//! share a tick all go at once: a burst every millisecond. Latency is measured from the
//! intended time, so that lateness was counted as the server's. Here each due time is kept
//! to the microsecond and senders go one after another, spread as the schedule says.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Result;
use tokio::sync::Notify;

/// The schedule of `senders` periodic senders and the task that wakes them.
#[derive(Debug)]
pub(crate) struct Pacer {
    /// Next due time and sender index, soonest first.
    due: BinaryHeap<Reverse<(Instant, usize)>>,
    wakers: Vec<Arc<Notify>>,
    interval: Duration,
    end: Instant,
}

impl Pacer {
    /// Sender `k` (of `firsts.len()`) is first due at `firsts[k]`, then every `interval`,
    /// while before `end`. Returns the pacer and each sender's wake-up.
    pub(crate) fn new(
        firsts: &[Instant],
        interval: Duration,
        end: Instant,
    ) -> (Self, Vec<Arc<Notify>>) {
        let wakers: Vec<_> = firsts.iter().map(|_| Arc::new(Notify::new())).collect();
        let due = firsts
            .iter()
            .enumerate()
            .filter(|(_, first)| **first < end)
            .map(|(k, first)| Reverse((*first, k)))
            .collect();
        let pacer = Self {
            due,
            wakers: wakers.clone(),
            interval,
            end,
        };
        (pacer, wakers)
    }

    /// Wakes every sender at each of its due times until the schedule ends. A sender that
    /// is not waiting at its time finds the wake-up stored (`Notify::notify_one`).
    pub(crate) async fn run(mut self) -> Result<()> {
        let mut timer = Timer::new()?;
        while let Some(Reverse((next, _))) = self.due.peek().copied() {
            timer.sleep_until(next).await?;
            let now = Instant::now();
            while let Some(Reverse((at, k))) = self.due.peek().copied() {
                if at > now {
                    break;
                }
                self.due.pop();
                self.wakers[k].notify_one();
                let following = at + self.interval;
                if following < self.end {
                    self.due.push(Reverse((following, k)));
                }
            }
        }
        Ok(())
    }
}

#[cfg(target_os = "linux")]
use linux::Timer;

/// A `timerfd` on the runtime's reactor: wakes the task within microseconds of its time.
#[cfg(target_os = "linux")]
mod linux {
    use std::os::fd::{AsFd, AsRawFd, RawFd};
    use std::time::Instant;

    use anyhow::{Context, Result};
    use nix::sys::time::TimeSpec;
    use nix::sys::timerfd::{ClockId, Expiration, TimerFd, TimerFlags, TimerSetTimeFlags};
    use tokio::io::unix::AsyncFd;

    /// The timer's file descriptor, in the form tokio's `AsyncFd` takes.
    struct Fd(TimerFd);

    impl AsRawFd for Fd {
        fn as_raw_fd(&self) -> RawFd {
            self.0.as_fd().as_raw_fd()
        }
    }

    pub(super) struct Timer(AsyncFd<Fd>);

    impl Timer {
        pub(super) fn new() -> Result<Self> {
            let fd = TimerFd::new(
                ClockId::CLOCK_MONOTONIC,
                TimerFlags::TFD_NONBLOCK | TimerFlags::TFD_CLOEXEC,
            )
            .context("cannot create a timerfd")?;
            // `new` is deprecated for a descriptor the caller may close while registered; `Fd`
            // owns it, so it lives exactly as long as the registration (`register` is the
            // `unsafe` spelling of the same, and this workspace forbids unsafe code).
            #[allow(deprecated)]
            Ok(Self(
                AsyncFd::new(Fd(fd)).context("cannot register the timerfd")?,
            ))
        }

        /// Returns at `at` or just after it (at once if it has passed).
        pub(super) async fn sleep_until(&mut self, at: Instant) -> Result<()> {
            let left = at.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Ok(());
            }
            let timer = &self.0.get_ref().0;
            timer
                .set(
                    Expiration::OneShot(TimeSpec::from_duration(left)),
                    TimerSetTimeFlags::empty(),
                )
                .context("cannot arm the timerfd")?;
            loop {
                let mut ready = self.0.readable().await.context("timerfd")?;
                // One read takes the expiry; `EAGAIN` means it has not fired yet.
                match ready.get_inner().0.wait() {
                    Ok(()) => return Ok(()),
                    Err(nix::errno::Errno::EAGAIN) => ready.clear_ready(),
                    Err(e) => return Err(e).context("reading the timerfd"),
                }
            }
        }
    }
}

/// Elsewhere, tokio's timer (millisecond resolution).
#[cfg(not(target_os = "linux"))]
struct Timer;

#[cfg(not(target_os = "linux"))]
impl Timer {
    fn new() -> Result<Self> {
        Ok(Self)
    }

    async fn sleep_until(&mut self, at: Instant) -> Result<()> {
        tokio::time::sleep_until(tokio::time::Instant::from_std(at)).await;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every sender is woken for each of its due times (several that pass while it is not
    /// waiting may come as one wake-up), and the schedule ends. A wake-up before the next
    /// due time can only be a permit left by one already served (on a busy machine the
    /// sender may still be working when the pacer wakes it).
    #[tokio::test]
    async fn wakes_each_sender_at_its_due_times_and_not_before() {
        let start = Instant::now() + Duration::from_millis(5);
        let interval = Duration::from_millis(7);
        let firsts: Vec<_> = (0..4_u32)
            .map(|k| start + Duration::from_millis(2) * k)
            .collect();
        let end = start + Duration::from_millis(40);
        let (pacer, wakers) = Pacer::new(&firsts, interval, end);
        let pacing = tokio::spawn(pacer.run());
        let mut senders = Vec::new();
        for (k, waker) in wakers.into_iter().enumerate() {
            let mut due = firsts[k];
            senders.push(tokio::spawn(async move {
                let (mut served, mut early) = (0, 0);
                while due < end {
                    waker.notified().await;
                    let now = Instant::now();
                    if now < due {
                        // A permit stored by a due time this sender already served (it
                        // was busy when the pacer woke it): the sender waits again, as
                        // open_model's does. More of these than due times would mean the
                        // pacer wakes early.
                        early += 1;
                        continue;
                    }
                    while due <= now && due < end {
                        served += 1;
                        due += interval;
                    }
                }
                assert!(
                    early <= served,
                    "{early} early wake-ups for {served} due times"
                );
                served
            }));
        }
        let within = Duration::from_secs(10);
        tokio::time::timeout(within, pacing)
            .await
            .expect("the pacer ends")
            .unwrap()
            .unwrap();
        for (k, sender) in senders.into_iter().enumerate() {
            let served = tokio::time::timeout(within, sender)
                .await
                .expect("every sender is woken until its last due time")
                .unwrap();
            let expected = (0..)
                .take_while(|m| firsts[k] + interval * *m < end)
                .count();
            assert_eq!(served, expected, "sender {k}");
        }
    }
}
