//! One soak echo client: a `ResilientConnection` (short heartbeat, quick reconnects) sending
//! sequence-numbered messages at a fixed rate, as an application with acknowledgements would.
//! "Written" is not "delivered": a message written just before a cut can be lost in the
//! network. So the client keeps every message whose echo has not come back (bounded), writes
//! those again after each reconnect (a new generation in the connection's status), and counts
//! a message delivered once, at its first echo. A message handed back with `SendFailed` is
//! given up on and counted as failed; whatever is neither at the end of the drain is lost.

use std::collections::BTreeMap;
use std::pin::Pin;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::task::{Context as TaskContext, Poll};
use std::time::Duration;

use anyhow::{Context, Result};
use futures_util::StreamExt;
use futures_util::stream::FuturesUnordered;
use tokio::sync::watch;
use tokio::time::{Instant, sleep_until, timeout};
use ws_client::Message;
use ws_client::resilient::{
    Delivery, HeartbeatConfig, LinkStatus, ResilientConnection, ResilientSender, SendFailed,
};

use super::Plan;
use super::tally::{EchoTally, Tally, bump};

/// Payload sizes, taken in turn by sequence number.
const SIZES: [usize; 3] = [32, 512, 4096];
/// Sequence number, intended send time, client number.
const HEADER: usize = 8 + 8 + 4;
/// Most messages kept unacknowledged; sends beyond are skipped (and counted).
const MAX_UNACKNOWLEDGED: usize = 4096;
/// How often the drain looks whether everything is accounted for.
const DRAIN_TICK: Duration = Duration::from_millis(50);
/// Longest wait for the first connection.
const FIRST_CONNECT: Duration = Duration::from_secs(15);

/// What every echo client shares.
#[derive(Debug)]
pub(crate) struct EchoPlan {
    pub(crate) url: String,
    /// Time between two messages of one client.
    pub(crate) interval: Duration,
    pub(crate) heartbeat: HeartbeatConfig,
}

/// The messages of one client not resolved yet: sequence number to intended send time.
#[derive(Debug, Default)]
struct Book {
    next_seq: u64,
    unacknowledged: BTreeMap<u64, u64>,
}

/// Runs client `id` from `begin` to the end of the drain.
pub(crate) async fn run(
    id: u32,
    begin: Instant,
    echo: Arc<EchoPlan>,
    plan: Arc<Plan>,
    tally: Arc<Tally>,
) -> Result<()> {
    sleep_until(begin).await;
    let config = super::resilient_config(&echo.url, echo.heartbeat);
    let mut connection = timeout(FIRST_CONNECT, ResilientConnection::connect(config))
        .await
        .with_context(|| format!("echo client {id}: no connection within {FIRST_CONNECT:?}"))?
        .with_context(|| format!("echo client {id} cannot connect to {}", echo.url))?;
    let book = Arc::new(Mutex::new(Book::default()));
    let sending = send(
        Sender {
            id,
            begin,
            interval: echo.interval,
            connection: connection.sender(),
            book: Arc::clone(&book),
            plan: Arc::clone(&plan),
            tally: Arc::clone(&tally),
        },
        connection.status(),
    );
    tokio::pin!(sending);
    loop {
        tokio::select! {
            () = &mut sending => break,
            received = connection.receive_with_generation() => match received {
                Ok((_, message)) => acknowledge(id, &message, &book, &plan, &tally),
                Err(e) => {
                    eprintln!("note: echo client {id}: the connection ended: {e}");
                    sending.await;
                    break;
                }
            },
        }
    }
    // Everything is resolved (or the drain is over): what is left is counted as lost.
    let _ = connection.close().await;
    Ok(())
}

/// The sending half of one client.
struct Sender {
    id: u32,
    begin: Instant,
    interval: Duration,
    connection: ResilientSender,
    book: Arc<Mutex<Book>>,
    plan: Arc<Plan>,
    tally: Arc<Tally>,
}

/// Sends on schedule until the end, writes the unacknowledged messages again after each
/// reconnect, and gives up on those handed back; then waits for the rest (the drain).
async fn send(sender: Sender, mut status: watch::Receiver<LinkStatus>) {
    let echo = &sender.tally.echo;
    let mut deliveries = FuturesUnordered::new();
    let mut generation = 1;
    let mut watching = true;
    let mut next = 0_u64;
    loop {
        let intended = sender.begin + sender.interval.mul_f64(next as f64);
        let sending = intended < sender.plan.end;
        if !sending
            && (lock(&sender.book).unacknowledged.is_empty()
                || Instant::now() >= sender.plan.drain_end)
        {
            break;
        }
        let wake = if sending {
            intended
        } else {
            Instant::now() + DRAIN_TICK
        };
        tokio::select! {
            biased;
            Some((seq, outcome)) = deliveries.next(), if !deliveries.is_empty() => {
                if let Err(failed) = outcome {
                    give_up(&sender.book, echo, seq, &failed);
                }
            }
            changed = status.changed(), if watching => {
                if changed.is_err() {
                    watching = false;
                    continue;
                }
                let LinkStatus::Up { generation: now } = *status.borrow_and_update() else {
                    continue;
                };
                if now > generation {
                    echo.reconnects.fetch_add(now - generation, Ordering::Relaxed);
                    generation = now;
                    // Anything written on an earlier connection may have been lost with it.
                    let again: Vec<(u64, u64)> = lock(&sender.book)
                        .unacknowledged
                        .iter()
                        .map(|(&seq, &stamp)| (seq, stamp))
                        .collect();
                    for (seq, stamp) in again {
                        bump(&echo.resent);
                        sender.write(seq, stamp, &mut deliveries).await;
                    }
                }
            }
            () = sleep_until(wake) => {
                if sending {
                    next += 1;
                    let stamp = nanos(intended - sender.plan.epoch);
                    let seq = {
                        let mut book = lock(&sender.book);
                        (book.unacknowledged.len() < MAX_UNACKNOWLEDGED).then(|| {
                            let seq = book.next_seq;
                            book.next_seq += 1;
                            book.unacknowledged.insert(seq, stamp);
                            seq
                        })
                    };
                    match seq {
                        Some(seq) => {
                            bump(&echo.sent);
                            sender.write(seq, stamp, &mut deliveries).await;
                        }
                        None => bump(&echo.skipped),
                    }
                }
            }
        }
    }
}

impl Sender {
    /// Hands message `seq` to the connection; its receipt joins `deliveries`. A message
    /// refused at once is given up on.
    async fn write(&self, seq: u64, stamp: u64, deliveries: &mut FuturesUnordered<Tracked>) {
        let message = Message::binary(payload(self.id, seq, stamp));
        match self.connection.enqueue(message).await {
            Ok(delivery) => deliveries.push(Tracked { seq, delivery }),
            Err(failed) => give_up(&self.book, &self.tally.echo, seq, &failed),
        }
    }
}

/// A message's receipt with its sequence number.
struct Tracked {
    seq: u64,
    delivery: Delivery,
}

impl Future for Tracked {
    type Output = (u64, Result<(), SendFailed>);

    fn poll(mut self: Pin<&mut Self>, cx: &mut TaskContext<'_>) -> Poll<Self::Output> {
        let seq = self.seq;
        Pin::new(&mut self.delivery)
            .poll(cx)
            .map(|outcome| (seq, outcome))
    }
}

/// Message `seq` came back with `SendFailed`: given up on, unless already resolved (an
/// earlier copy's echo arrived, or an earlier copy failed too).
fn give_up(book: &Mutex<Book>, echo: &EchoTally, seq: u64, failed: &SendFailed) {
    if lock(book).unacknowledged.remove(&seq).is_some() {
        bump(&echo.failed);
        note_failure(echo, failed);
    }
}

/// Prints the first few reasons a message was handed back, on stderr.
fn note_failure(echo: &EchoTally, failed: &SendFailed) {
    if echo.failed.load(Ordering::Relaxed) <= 5 {
        eprintln!("note: a message was handed back: {}", failed.error);
    }
}

/// An echo came back: the first one of a message delivers it.
fn acknowledge(id: u32, message: &Message, book: &Mutex<Book>, plan: &Plan, tally: &Tally) {
    let echo = &tally.echo;
    let Some((seq, stamp)) = parse(id, &message.data) else {
        bump(&echo.corrupt);
        return;
    };
    let mut book = lock(book);
    match book.unacknowledged.get(&seq) {
        Some(&kept) if kept == stamp => {
            book.unacknowledged.remove(&seq);
            drop(book);
            bump(&echo.delivered);
            let sent_at = plan.epoch + Duration::from_nanos(stamp);
            tally.echo_latency(Instant::now().saturating_duration_since(sent_at));
        }
        None if seq < book.next_seq => bump(&echo.duplicates),
        _ => bump(&echo.corrupt),
    }
}

/// The payload of message `seq` of client `id`: sequence number, intended send time
/// (nanoseconds since the run's epoch), client number, then a fill byte that depends on the
/// sequence number; its size cycles through [`SIZES`].
fn payload(id: u32, seq: u64, stamp: u64) -> Vec<u8> {
    let size = SIZES[(seq % SIZES.len() as u64) as usize];
    let mut data = vec![fill(seq); size];
    data[..8].copy_from_slice(&seq.to_le_bytes());
    data[8..16].copy_from_slice(&stamp.to_le_bytes());
    data[16..HEADER].copy_from_slice(&id.to_le_bytes());
    data
}

/// The sequence number and stamp of a payload of client `id`, if it is whole and unchanged.
fn parse(id: u32, data: &[u8]) -> Option<(u64, u64)> {
    let word = |at: usize| Some(u64::from_le_bytes(data.get(at..at + 8)?.try_into().ok()?));
    let seq = word(0)?;
    let stamp = word(8)?;
    let whole = data.len() == SIZES[(seq % SIZES.len() as u64) as usize]
        && data[16..HEADER] == id.to_le_bytes()
        && data[HEADER..].iter().all(|&byte| byte == fill(seq));
    whole.then_some((seq, stamp))
}

fn fill(seq: u64) -> u8 {
    (seq % 251) as u8
}

/// Nanoseconds in `duration`, saturating.
fn nanos(duration: Duration) -> u64 {
    u64::try_from(duration.as_nanos()).unwrap_or(u64::MAX)
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|e| e.into_inner())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn payloads_carry_their_number_and_stamp_and_any_change_is_caught() {
        for seq in [0, 1, 2, 250, 251, 1 << 40] {
            let data = payload(7, seq, 123_456);
            assert_eq!(data.len(), SIZES[(seq % 3) as usize]);
            assert_eq!(parse(7, &data), Some((seq, 123_456)));
            assert_eq!(parse(8, &data), None, "another client's");
            let mut changed = data.clone();
            *changed.last_mut().unwrap() ^= 1;
            assert_eq!(parse(7, &changed), None, "a changed byte");
            assert_eq!(parse(7, &data[..data.len() - 1]), None, "a short one");
        }
        assert_eq!(parse(7, b"short"), None);
    }
}
