//! The timing arithmetic of `chaos` mode, free of I/O so it can be tested alone: when a
//! chunk in the delay line is due (latency ± jitter), how long a write waits for bandwidth
//! (a token bucket in bytes per second) and how big each paced write may be.

use std::hash::{BuildHasher, Hasher};
use std::time::Duration;

use tokio::time::Instant;

/// How much data one paced write carries, in time: small enough that a transfer's
/// duration is accurate to about this much, large enough not to wake up too often.
const PIECE_TIME: Duration = Duration::from_millis(20);
/// Largest paced write, in bytes.
const MAX_PIECE: usize = 64 << 10;

/// When a chunk read at `read_at` is due: `latency_ms` later, moved by `jitter_ms` times
/// `sample` (in -1..=1), never before it was read.
pub fn due(read_at: Instant, latency_ms: u64, jitter_ms: u64, sample: f64) -> Instant {
    let ms = latency_ms as f64 + jitter_ms as f64 * sample.clamp(-1.0, 1.0);
    read_at + Duration::from_secs_f64(ms.max(0.0) / 1000.0)
}

/// A token bucket: `rate` bytes per second, holding at most one piece's worth of unused
/// tokens. It may go into debt: a write of any size is allowed, and the next one waits until
/// the debt is paid back, so the average rate is exact whatever the timer's granularity.
#[derive(Debug, Clone)]
pub struct TokenBucket {
    rate: f64,
    burst: f64,
    tokens: f64,
    last: Instant,
}

impl TokenBucket {
    /// An empty bucket filling at `bytes_per_sec` from `now`: the first write waits for its
    /// own transmission time, as it would on a link of that speed.
    pub fn new(bytes_per_sec: u64, now: Instant) -> Self {
        let rate = bytes_per_sec.max(1) as f64;
        Self {
            rate,
            burst: piece_for(bytes_per_sec) as f64,
            tokens: 0.0,
            last: now,
        }
    }

    /// The rate in bytes per second.
    pub fn bytes_per_sec(&self) -> u64 {
        self.rate as u64
    }

    /// The largest write to make at once at this rate (about 20 ms of data).
    pub fn piece(&self) -> usize {
        self.burst as usize
    }

    /// Takes `bytes` tokens at `now`; returns how long to wait before writing them.
    pub fn take(&mut self, bytes: usize, now: Instant) -> Duration {
        let elapsed = now.saturating_duration_since(self.last).as_secs_f64();
        self.last = now;
        self.tokens = (self.tokens + elapsed * self.rate).min(self.burst);
        self.tokens -= bytes as f64;
        if self.tokens >= 0.0 {
            Duration::ZERO
        } else {
            Duration::from_secs_f64(-self.tokens / self.rate)
        }
    }
}

/// About [`PIECE_TIME`] of data at `bytes_per_sec`, between 1 byte and [`MAX_PIECE`].
fn piece_for(bytes_per_sec: u64) -> usize {
    let piece = bytes_per_sec as f64 * PIECE_TIME.as_secs_f64();
    (piece as usize).clamp(1, MAX_PIECE)
}

/// Samples for jitter: uniform in -1..=1 from a small xorshift generator (no cryptography
/// needed), seeded differently for every connection.
#[derive(Debug, Clone)]
pub struct Jitter(u64);

impl Jitter {
    /// A generator with a fresh random seed.
    pub fn new() -> Self {
        let seed = std::collections::hash_map::RandomState::new()
            .build_hasher()
            .finish();
        Self(seed | 1)
    }

    /// The next sample, uniform in -1..=1.
    pub fn sample(&mut self) -> f64 {
        // xorshift64*
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        let bits = self.0.wrapping_mul(0x2545_f491_4f6c_dd1d) >> 11;
        bits as f64 / (1u64 << 53) as f64 * 2.0 - 1.0
    }
}

impl Default for Jitter {
    fn default() -> Self {
        Self::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chunks_are_due_after_latency_give_or_take_jitter() {
        let now = Instant::now();
        let ms = |at: Instant| at.duration_since(now).as_secs_f64() * 1000.0;
        assert_eq!(due(now, 0, 0, 0.5), now);
        assert!((ms(due(now, 50, 0, 0.9)) - 50.0).abs() < 1e-6);
        assert!((ms(due(now, 50, 10, 1.0)) - 60.0).abs() < 1e-6);
        assert!((ms(due(now, 50, 10, -1.0)) - 40.0).abs() < 1e-6);
        // Never before the chunk was read, whatever the jitter.
        assert_eq!(due(now, 5, 10, -1.0), now);
    }

    #[test]
    fn the_bucket_paces_to_its_rate_over_many_writes() {
        let start = Instant::now();
        let mut bucket = TokenBucket::new(125_000, start);
        assert_eq!(bucket.piece(), 2500);
        // Write 256 KiB in pieces, sleeping exactly as told plus 1 ms of timer slack each
        // time: the total time stays that of the rate, not of the slack.
        let total = 256 << 10;
        let mut now = start;
        let mut sent = 0;
        while sent < total {
            let piece = bucket.piece().min(total - sent);
            let wait = bucket.take(piece, now);
            if !wait.is_zero() {
                now += wait + Duration::from_millis(1);
            }
            sent += piece;
        }
        let took = now.duration_since(start).as_secs_f64();
        let expected = total as f64 / 125_000.0;
        assert!(
            (took - expected).abs() / expected < 0.03,
            "took {took} s, expected {expected} s"
        );
    }

    #[test]
    fn an_idle_bucket_saves_at_most_one_piece() {
        let start = Instant::now();
        let mut bucket = TokenBucket::new(1000, start);
        assert_eq!(bucket.piece(), 20);
        let later = start + Duration::from_secs(60);
        assert_eq!(bucket.take(20, later), Duration::ZERO);
        assert_eq!(bucket.take(10, later), Duration::from_millis(10));
    }

    #[test]
    fn pieces_stay_within_bounds() {
        assert_eq!(piece_for(1), 1);
        assert_eq!(piece_for(10_000_000_000), MAX_PIECE);
    }

    #[test]
    fn jitter_samples_cover_both_sides_within_bounds() {
        let mut jitter = Jitter::new();
        let samples: Vec<f64> = (0..10_000).map(|_| jitter.sample()).collect();
        assert!(samples.iter().all(|s| (-1.0..=1.0).contains(s)));
        assert!(samples.iter().any(|&s| s < -0.9) && samples.iter().any(|&s| s > 0.9));
        let mean = samples.iter().sum::<f64>() / samples.len() as f64;
        assert!(mean.abs() < 0.05, "mean {mean}");
    }
}
