//! `ReconnectPolicy` (exponential backoff with full jitter, caps on attempts and time) and
//! `Backoff`, the delay generator one resilient connection draws its waits from.

use std::time::Duration;

use rand::rngs::SmallRng;
use rand::{RngExt, SeedableRng};

use super::classify::RetryClass;

/// Default for [`ReconnectPolicy::initial_delay`]: 100 ms. Short, so a server restart costs
/// little; the full jitter spreads even this first wait over many clients.
pub const DEFAULT_INITIAL_DELAY: Duration = Duration::from_millis(100);
/// Default for [`ReconnectPolicy::max_delay`]: 30 s. A client never waits longer than this
/// between attempts, so it notices a recovered server within half a minute.
pub const DEFAULT_MAX_DELAY: Duration = Duration::from_secs(30);
/// Default for [`ReconnectPolicy::multiplier`]: 2, the classic doubling.
pub const DEFAULT_MULTIPLIER: f64 = 2.0;
/// Default for [`ReconnectPolicy::max_attempts`]: no cap on attempts (the time cap,
/// [`DEFAULT_MAX_ELAPSED`], bounds the outage instead).
pub const DEFAULT_MAX_ATTEMPTS: Option<u32> = None;
/// Default for [`ReconnectPolicy::max_elapsed`]: 5 minutes. Every wait is bounded: a message
/// queued during an outage is sent or handed back within this time (plus one connect timeout).
pub const DEFAULT_MAX_ELAPSED: Option<Duration> = Some(Duration::from_secs(300));
/// Default for [`ReconnectPolicy::try_again_later_floor`]: 5 s. Close code 1013 and HTTP 429
/// mean "overloaded": coming back within milliseconds would add to the load.
pub const DEFAULT_TRY_AGAIN_LATER_FLOOR: Duration = Duration::from_secs(5);
/// Default for [`ReconnectPolicy::stable_after`]: 10 s. A connection that dies sooner does not
/// reset the backoff, so a server that accepts and then drops at once is not hammered.
pub const DEFAULT_STABLE_AFTER: Duration = Duration::from_secs(10);

/// When and how often a resilient connection reconnects.
///
/// The delay before attempt `n` (0-based, counting failures since the backoff was last
/// reset) is drawn uniformly from `[0, min(max_delay, initial_delay * multiplier^n)]`
/// ("full jitter"), so clients cut at the same moment do not come back in lockstep. A
/// server's `Retry-After` replaces the draw (see [`RetryClass::RetryAfter`]); 1013 and 429
/// add [`try_again_later_floor`](Self::try_again_later_floor) to it.
#[derive(Debug, Clone, PartialEq)]
pub struct ReconnectPolicy {
    /// Ceiling of the first delay. Default: [`DEFAULT_INITIAL_DELAY`] (100 ms).
    pub initial_delay: Duration,
    /// Largest delay between two attempts (also caps `Retry-After`). Default:
    /// [`DEFAULT_MAX_DELAY`] (30 s).
    pub max_delay: Duration,
    /// Growth of the ceiling per failed attempt; at least 1. Default: [`DEFAULT_MULTIPLIER`] (2).
    pub multiplier: f64,
    /// Give up after this many failed attempts in one outage; `None`: no cap. Default:
    /// [`DEFAULT_MAX_ATTEMPTS`] (none).
    pub max_attempts: Option<u32>,
    /// Give up once an outage has lasted this long (no attempt starts after it); `None`: no
    /// cap. Default: [`DEFAULT_MAX_ELAPSED`] (5 min).
    pub max_elapsed: Option<Duration>,
    /// Least wait after close code 1013 or HTTP 429 without `Retry-After`. Default:
    /// [`DEFAULT_TRY_AGAIN_LATER_FLOOR`] (5 s).
    pub try_again_later_floor: Duration,
    /// A connection that lasted at least this long resets the backoff when it drops.
    /// Default: [`DEFAULT_STABLE_AFTER`] (10 s).
    pub stable_after: Duration,
}

impl Default for ReconnectPolicy {
    fn default() -> Self {
        Self {
            initial_delay: DEFAULT_INITIAL_DELAY,
            max_delay: DEFAULT_MAX_DELAY,
            multiplier: DEFAULT_MULTIPLIER,
            max_attempts: DEFAULT_MAX_ATTEMPTS,
            max_elapsed: DEFAULT_MAX_ELAPSED,
            try_again_later_floor: DEFAULT_TRY_AGAIN_LATER_FLOOR,
            stable_after: DEFAULT_STABLE_AFTER,
        }
    }
}

impl ReconnectPolicy {
    /// The reason this policy cannot work, if any.
    pub(crate) fn problem(&self) -> Option<&'static str> {
        if !(self.multiplier >= 1.0 && self.multiplier.is_finite()) {
            return Some("reconnect multiplier must be a finite number >= 1");
        }
        if self.initial_delay > self.max_delay {
            return Some("reconnect initial_delay must not exceed max_delay");
        }
        if self.max_attempts == Some(0) {
            return Some("reconnect max_attempts must be at least 1");
        }
        None
    }

    /// The ceiling of the full-jitter draw after `failures` failed attempts:
    /// `min(max_delay, initial_delay * multiplier^failures)`.
    pub fn ceiling(&self, failures: u32) -> Duration {
        let max = self.max_delay.as_secs_f64();
        let grown = self.initial_delay.as_secs_f64()
            * self
                .multiplier
                .powi(i32::try_from(failures).unwrap_or(i32::MAX));
        Duration::from_secs_f64(if grown.is_finite() {
            grown.min(max)
        } else {
            max
        })
    }
}

/// The delays of one resilient connection: the policy, the count of failures since the last
/// reset, and its own random number generator (so that many clients draw independently).
#[derive(Debug, Clone)]
pub struct Backoff {
    policy: ReconnectPolicy,
    failures: u32,
    rng: SmallRng,
}

impl Backoff {
    /// A backoff for `policy`, its generator seeded from the operating system.
    pub fn new(policy: ReconnectPolicy) -> Self {
        Self::with_rng(policy, rand::make_rng())
    }

    /// A backoff whose draws are reproducible (for tests).
    pub fn with_seed(policy: ReconnectPolicy, seed: u64) -> Self {
        Self::with_rng(policy, SmallRng::seed_from_u64(seed))
    }

    fn with_rng(policy: ReconnectPolicy, rng: SmallRng) -> Self {
        Self {
            policy,
            failures: 0,
            rng,
        }
    }

    /// Failed attempts counted since the last [`reset`](Self::reset).
    pub fn failures(&self) -> u32 {
        self.failures
    }

    /// Starts over from the initial delay (after a connection proved stable).
    pub fn reset(&mut self) {
        self.failures = 0;
    }

    /// The wait before the next attempt after an error of `class`; counts one failure.
    pub fn next_delay(&mut self, class: RetryClass) -> Duration {
        let ceiling = self.policy.ceiling(self.failures);
        let (max, floor) = (self.policy.max_delay, self.policy.try_again_later_floor);
        self.failures = self.failures.saturating_add(1);
        let drawn = Duration::from_nanos(self.draw(ceiling));
        match class {
            RetryClass::Retry | RetryClass::Fatal => drawn,
            RetryClass::TryAgainLater => (floor + drawn).min(max.max(floor)),
            RetryClass::RetryAfter(after) => {
                let jitter = Duration::from_nanos(self.draw(after / 10));
                (after + jitter).min(max)
            }
        }
    }

    /// A uniform draw in `[0, ceiling]`, in nanoseconds.
    fn draw(&mut self, ceiling: Duration) -> u64 {
        let ceiling = u64::try_from(ceiling.as_nanos()).unwrap_or(u64::MAX);
        self.rng.random_range(0..=ceiling)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy() -> ReconnectPolicy {
        ReconnectPolicy {
            initial_delay: Duration::from_millis(100),
            max_delay: Duration::from_secs(2),
            ..ReconnectPolicy::default()
        }
    }

    #[test]
    fn delays_stay_inside_the_growing_ceiling_and_use_all_of_it() {
        for seed in 0..50 {
            let mut backoff = Backoff::with_seed(policy(), seed);
            for failures in 0..12 {
                let ceiling = policy().ceiling(failures);
                let expected = Duration::from_millis(100 * (1 << failures)).min(policy().max_delay);
                assert_eq!(ceiling, expected, "failures {failures}");
                let delay = backoff.next_delay(RetryClass::Retry);
                assert!(delay <= ceiling, "{delay:?} > {ceiling:?}");
            }
        }
        // Over many draws the whole range is used: not a fixed fraction of the ceiling.
        let draws: Vec<Duration> = (0..1000)
            .map(|seed| Backoff::with_seed(policy(), seed).next_delay(RetryClass::Retry))
            .collect();
        let (low, high) = (draws.iter().min().unwrap(), draws.iter().max().unwrap());
        assert!(*low < Duration::from_millis(5), "{low:?}");
        assert!(*high > Duration::from_millis(95), "{high:?}");
    }

    #[test]
    fn retry_after_is_honoured_within_max_delay_and_1013_waits_longer() {
        let mut backoff = Backoff::with_seed(policy(), 7);
        for _ in 0..100 {
            let after = Duration::from_secs(1);
            let delay = backoff.next_delay(RetryClass::RetryAfter(after));
            assert!(delay >= after && delay <= after + after / 10, "{delay:?}");
        }
        let long = backoff.next_delay(RetryClass::RetryAfter(Duration::from_secs(60)));
        assert_eq!(long, policy().max_delay);
        let floor = Duration::from_millis(1500);
        let slow = ReconnectPolicy {
            try_again_later_floor: floor,
            ..policy()
        };
        let mut backoff = Backoff::with_seed(slow.clone(), 3);
        for _ in 0..100 {
            let delay = backoff.next_delay(RetryClass::TryAgainLater);
            assert!(delay >= floor && delay <= slow.max_delay, "{delay:?}");
        }
    }

    #[test]
    fn reset_starts_over_and_huge_counts_saturate() {
        let mut backoff = Backoff::with_seed(policy(), 1);
        for _ in 0..200 {
            backoff.next_delay(RetryClass::Retry);
        }
        assert_eq!(backoff.failures(), 200);
        assert_eq!(policy().ceiling(u32::MAX), policy().max_delay);
        backoff.reset();
        assert!(backoff.next_delay(RetryClass::Retry) <= policy().initial_delay);
    }

    #[test]
    fn independent_clients_do_not_come_back_in_lockstep() {
        // 100 clients with their own generators, all cut at the same moment.
        let first: Vec<Duration> = (0..100)
            .map(|_| Backoff::new(policy()).next_delay(RetryClass::Retry))
            .collect();
        let millis: std::collections::BTreeSet<u128> =
            first.iter().map(Duration::as_millis).collect();
        assert!(
            millis.len() >= 40,
            "only {} distinct ms: {first:?}",
            millis.len()
        );
        let spread = *first.iter().max().unwrap() - *first.iter().min().unwrap();
        assert!(spread >= Duration::from_millis(50), "spread {spread:?}");
    }

    #[test]
    fn unusable_policies_are_named() {
        let bad = ReconnectPolicy {
            multiplier: 0.5,
            ..policy()
        };
        assert!(bad.problem().is_some());
        let bad = ReconnectPolicy {
            initial_delay: Duration::from_secs(5),
            ..policy()
        };
        assert!(bad.problem().is_some());
        assert!(policy().problem().is_none());
    }
}
