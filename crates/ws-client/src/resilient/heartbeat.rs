//! The heartbeat: a ping every interval, round-trip times from the pongs (last and smoothed
//! as TCP's SRTT, alpha 1/8), and dead-peer detection: no pong and no other traffic within
//! the timeout after a ping.

use std::collections::VecDeque;
use std::sync::Mutex;
use std::time::Duration;

use tokio::time::{Instant, sleep_until};

use crate::error::Error;
use crate::message::MessageType;
use crate::split::WsSender;

/// Default for [`HeartbeatConfig::interval`]: 15 s, under the 30-60 s idle timeouts common
/// in proxies and load balancers, so the pings also keep an idle connection open.
pub const DEFAULT_HEARTBEAT_INTERVAL: Duration = Duration::from_secs(15);
/// Default for [`HeartbeatConfig::timeout`]: 10 s, far above any sane round trip; a dead
/// peer is declared at most interval + timeout (25 s) after it fell silent.
pub const DEFAULT_HEARTBEAT_TIMEOUT: Duration = Duration::from_secs(10);

/// Marks the pings the heartbeat sends, so their pongs are told from the user's.
const PING_TAG: &[u8; 2] = b"hb";
/// Pings remembered for matching pongs; older ones are forgotten.
const PINGS_KEPT: usize = 16;

/// How often to ping and how long silence may last.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HeartbeatConfig {
    /// Time between pings. Default: [`DEFAULT_HEARTBEAT_INTERVAL`] (15 s).
    pub interval: Duration,
    /// After a ping, how long nothing at all may arrive (no pong, no other frame) before
    /// the peer is declared dead with [`Error::PeerDead`]. A dead peer is declared at most
    /// `interval + timeout` after the last frame from it. Keep it above the time the largest
    /// message takes to send: a ping waits behind a message being written. Default:
    /// [`DEFAULT_HEARTBEAT_TIMEOUT`] (10 s).
    pub timeout: Duration,
}

impl Default for HeartbeatConfig {
    fn default() -> Self {
        Self {
            interval: DEFAULT_HEARTBEAT_INTERVAL,
            timeout: DEFAULT_HEARTBEAT_TIMEOUT,
        }
    }
}

/// What the reader and the heartbeat of one connection share (one task: the lock is never
/// contended and never held across an await).
#[derive(Debug)]
pub(crate) struct Liveness {
    state: Mutex<State>,
}

#[derive(Debug)]
struct State {
    last_heard: Instant,
    /// When the first ping sent since `last_heard` went out.
    unanswered_since: Option<Instant>,
    /// The reader waits for the user to take a message, so it reads nothing: silence
    /// says nothing about the peer then.
    parked: bool,
    pings: VecDeque<(u64, Instant)>,
    next_seq: u64,
    srtt: Option<Duration>,
}

impl Liveness {
    pub(crate) fn new(now: Instant) -> Self {
        Self {
            state: Mutex::new(State {
                last_heard: now,
                unanswered_since: None,
                parked: false,
                pings: VecDeque::with_capacity(PINGS_KEPT),
                next_seq: 0,
                srtt: None,
            }),
        }
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// A frame (any frame) arrived from the peer.
    pub(crate) fn heard(&self, now: Instant) {
        let mut state = self.state();
        state.last_heard = now;
        state.unanswered_since = None;
    }

    /// The reader starts waiting for room on the receive side.
    pub(crate) fn park(&self) {
        self.state().parked = true;
    }

    /// The reader reads again: the silence clock starts over.
    pub(crate) fn resume(&self, now: Instant) {
        self.state().parked = false;
        self.heard(now);
    }

    /// Registers a ping about to be sent; returns its payload.
    pub(crate) fn ping(&self, now: Instant) -> [u8; 10] {
        let mut state = self.state();
        let seq = state.next_seq;
        state.next_seq += 1;
        if state.pings.len() == PINGS_KEPT {
            state.pings.pop_front();
        }
        state.pings.push_back((seq, now));
        state.unanswered_since.get_or_insert(now);
        let mut payload = [0u8; 10];
        payload[..2].copy_from_slice(PING_TAG);
        payload[2..].copy_from_slice(&seq.to_be_bytes());
        payload
    }

    /// The ping `payload` was written at `now`: its round trip starts here.
    pub(crate) fn ping_written(&self, payload: &[u8; 10], now: Instant) {
        let seq = seq_of(payload);
        if let Some(entry) = self.state().pings.iter_mut().find(|(s, _)| Some(*s) == seq) {
            entry.1 = now;
        }
    }

    /// A pong arrived: its round-trip time and the updated smoothed one, if it answers one
    /// of our pings.
    pub(crate) fn pong(&self, payload: &[u8], now: Instant) -> Option<(Duration, Duration)> {
        let seq = seq_of(payload)?;
        let mut state = self.state();
        let sent = state.pings.iter().find(|(s, _)| *s == seq)?.1;
        state.pings.retain(|(s, _)| *s > seq);
        let rtt = now.saturating_duration_since(sent);
        let srtt = match state.srtt {
            None => rtt,
            Some(srtt) => srtt.mul_f64(7.0 / 8.0) + rtt.mul_f64(1.0 / 8.0),
        };
        state.srtt = Some(srtt);
        Some((rtt, srtt))
    }

    /// When the peer will be declared dead if nothing arrives, if a ping is unanswered.
    fn dead_at(&self, timeout: Duration) -> Option<Instant> {
        let state = self.state();
        match (state.parked, state.unanswered_since) {
            (false, Some(since)) => Some(since + timeout),
            _ => None,
        }
    }

    /// The dead-peer error, if the peer is dead at `now`.
    fn check(&self, now: Instant, timeout: Duration) -> Option<Error> {
        let dead_at = self.dead_at(timeout)?;
        (now >= dead_at).then(|| Error::PeerDead {
            silent_for: now.saturating_duration_since(self.state().last_heard),
        })
    }
}

/// The sequence number of one of our pings (or of its pong).
fn seq_of(payload: &[u8]) -> Option<u64> {
    match payload {
        [b'h', b'b', seq @ ..] => Some(u64::from_be_bytes(seq.try_into().ok()?)),
        _ => None,
    }
}

/// Pings every `config.interval` and returns the error that ends the connection: the peer
/// is dead, or a ping could not be written.
pub(crate) async fn run(sender: &WsSender, live: &Liveness, config: HeartbeatConfig) -> Error {
    let mut next_ping = Instant::now() + config.interval;
    loop {
        let wake = live
            .dead_at(config.timeout)
            .map_or(next_ping, |dead| dead.min(next_ping));
        sleep_until(wake).await;
        let now = Instant::now();
        if let Some(dead) = live.check(now, config.timeout) {
            return dead;
        }
        if now < next_ping {
            continue;
        }
        next_ping = now + config.interval;
        let payload = live.ping(now);
        let deadline = live.dead_at(config.timeout).unwrap_or(next_ping);
        // The ping may wait behind a message being written; the deadline still holds.
        tokio::select! {
            written = sender.send_slice(MessageType::Ping, &payload) => match written {
                Ok(()) => live.ping_written(&payload, Instant::now()),
                Err(error) => return error,
            },
            () = sleep_until(deadline) => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pongs_give_rtt_and_srtt_and_unknown_pongs_are_ignored() {
        let start = Instant::now();
        let live = Liveness::new(start);
        let first = live.ping(start);
        let (rtt, srtt) = live
            .pong(&first, start + Duration::from_millis(80))
            .unwrap();
        assert_eq!(
            (rtt, srtt),
            (Duration::from_millis(80), Duration::from_millis(80))
        );
        let second = live.ping(start + Duration::from_secs(1));
        let later = start + Duration::from_millis(1160);
        let (rtt, srtt) = live.pong(&second, later).unwrap();
        assert_eq!(rtt, Duration::from_millis(160));
        assert_eq!(srtt, Duration::from_millis(90)); // 80 * 7/8 + 160 / 8
        assert!(live.pong(&second, later).is_none(), "answered once");
        assert!(live.pong(b"user pong", later).is_none());
    }

    #[test]
    fn silence_after_a_ping_is_death_unless_traffic_came_or_the_reader_is_parked() {
        let timeout = Duration::from_secs(2);
        let start = Instant::now();
        let live = Liveness::new(start);
        assert!(
            live.check(start + Duration::from_secs(60), timeout)
                .is_none(),
            "no ping yet"
        );
        live.ping(start + Duration::from_secs(1));
        live.ping(start + Duration::from_secs(2)); // the first unanswered ping counts
        assert!(
            live.check(start + Duration::from_millis(2999), timeout)
                .is_none()
        );
        let dead = live.check(start + Duration::from_secs(3), timeout);
        assert!(
            matches!(dead, Some(Error::PeerDead { silent_for }) if silent_for == Duration::from_secs(3))
        );
        live.heard(start + Duration::from_millis(2500));
        assert!(
            live.check(start + Duration::from_secs(10), timeout)
                .is_none()
        );
        live.ping(start + Duration::from_secs(11));
        live.park();
        assert!(
            live.check(start + Duration::from_secs(20), timeout)
                .is_none(),
            "parked"
        );
        live.resume(start + Duration::from_secs(20));
        live.ping(start + Duration::from_secs(21));
        assert!(
            live.check(start + Duration::from_secs(23), timeout)
                .is_some()
        );
    }
}
