//! One connection's life inside the background task: the writer (outage queue first, then
//! new messages), the reader (messages to the receive side, pongs to the heartbeat) and the
//! heartbeat run side by side in the task until one of them ends the connection.

use std::collections::VecDeque;

use tokio::sync::mpsc;
use tokio::sync::mpsc::error::TrySendError;
use tokio::time::Instant;

use super::classify::copy_error;
use super::heartbeat::{self, Liveness};
use super::metrics::Metrics;
use super::queue::{OutageQueue, Outgoing, QueuePolicy};
use super::shared::{Command, Pinned};
use super::task::{Inbound, Stop, Task};
use crate::connection::WebSocketConnection;
use crate::error::Error;
use crate::message::MessageType;
use crate::split::{WsReceiver, WsSender};

/// How a session ended.
#[derive(Debug)]
pub(crate) enum SessionEnd {
    /// The connection failed or the peer closed it.
    Lost(Error),
    /// The owner closed or dropped the connection; the close handshake's outcome.
    Stopped(Stop, Result<(), Error>),
}

enum Ended {
    Lost(Error),
    Stop(Stop),
}

/// Runs `connection` until it fails or the owner stops it. A message whose write was cut
/// short goes back to the head of the outage queue (or to its sender with `FailFast`).
pub(crate) async fn run(
    task: &mut Task,
    connection: WebSocketConnection,
    generation: u64,
) -> SessionEnd {
    let (sender, mut receiver) = match connection.split() {
        Ok(halves) => halves,
        Err(error) => return SessionEnd::Lost(error),
    };
    // Which messages of a cut batch the socket took is read from the write side's counts:
    // over TLS they must only count what reached the socket, not what TLS buffered.
    sender.lock().await.count_records();
    let live = Liveness::new(Instant::now());
    let heartbeat = task.config.heartbeat;
    let close_timeout = task.config.transport.close_timeout;
    let metrics = &task.shared.metrics;
    let mut inflight = Inflight::default();
    let ended = {
        let write = write(
            &sender,
            Channels {
                queue: &mut task.queue,
                batch: &mut task.batch,
                commands: &mut task.commands,
                held: &mut task.held,
            },
            &mut inflight,
            metrics,
            generation,
        );
        let read = read(&mut receiver, &task.incoming, &live, generation, metrics);
        let beat = async {
            match heartbeat {
                Some(config) => heartbeat::run(&sender, &live, config).await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            ended = write => ended,
            error = read => Ended::Lost(error),
            error = beat => Ended::Lost(error),
            () = task.token.cancelled() => Ended::Stop(Stop::Shutdown),
        }
    };
    match ended {
        Ended::Lost(error) => {
            // The owner did not close it: a "closed" seen here is a connection that went away.
            let error = match error {
                Error::ConnectionClosed => Error::ConnectionLost("the connection closed".into()),
                other => other,
            };
            let written = sender.lock().await.written_total();
            let unwritten = inflight.settle(written, &task.shared.metrics);
            for outgoing in unwritten.into_iter().rev() {
                match task.config.queue {
                    QueuePolicy::Queue { .. } => task.queue.push_front(outgoing),
                    QueuePolicy::FailFast => task.fail(outgoing, copy_error(&error)),
                }
            }
            // The rest of a batch the writer had begun: after the cut write's messages, as if
            // sent during the outage (within the queue's bounds), so the order holds.
            while let Some(outgoing) = task.batch.pop_front() {
                task.park(outgoing);
            }
            let metrics = &task.shared.metrics;
            metrics.queued(task.queue.len(), task.queue.bytes());
            tracing::debug!(%error, generation, "connection lost");
            SessionEnd::Lost(error)
        }
        Ended::Stop(stop) => {
            // Only a shutdown can cut a write. The close frame goes out after what the cut
            // batch left in the write buffer, so which of its messages were written is known
            // only after the close; the rest is handed back when the task ends.
            let closed = close(&sender, &mut receiver, &task.incoming, generation);
            let result = match tokio::time::timeout(close_timeout, closed).await {
                Ok(result) => result,
                Err(_) => Err(Error::CloseTimeout {
                    after: close_timeout,
                }),
            };
            let written = sender.lock().await.written_total();
            let unwritten = inflight.settle(written, &task.shared.metrics);
            for outgoing in unwritten.into_iter().rev() {
                task.queue.push_front(outgoing);
            }
            SessionEnd::Stopped(stop, result)
        }
    }
}

/// Most messages written with one flush.
const BATCH_MESSAGES: usize = 256;
/// Most payload bytes gathered for one flush (a larger message is written alone).
const BATCH_BYTES: usize = 256 << 10;

/// Where the writer takes messages from: the outage queue first, then the rest of a batch
/// command begun, then the handles' commands; `held` is a command taken out of turn (met
/// while gathering a batch), served before the channel.
pub(crate) struct Channels<'a> {
    pub(crate) queue: &'a mut OutageQueue,
    pub(crate) batch: &'a mut VecDeque<Outgoing>,
    pub(crate) commands: &'a mut mpsc::Receiver<Command>,
    pub(crate) held: &'a mut Option<Command>,
}

/// The messages of the batch being written, each with the position of its frame's last
/// byte in the connection's output (`None` until encoded). At the end of a session, those
/// the socket took whole count as written; the others were not, and go back in order.
#[derive(Default)]
struct Inflight(Vec<(Outgoing, Option<u64>)>);

impl Inflight {
    /// Answers the messages written whole (`end <= written`) and returns the others, in
    /// order.
    fn settle(&mut self, written: u64, metrics: &Metrics) -> Vec<Outgoing> {
        let mut unwritten = Vec::new();
        for (outgoing, end) in self.0.drain(..) {
            match end {
                Some(end) if end <= written => {
                    metrics.sent(outgoing.len());
                    outgoing.succeed();
                }
                _ => unwritten.push(outgoing),
            }
        }
        unwritten
    }
}

/// Writes the outage queue, then each message sent, gathering the messages already waiting
/// (up to [`BATCH_MESSAGES`] and [`BATCH_BYTES`]) into one flushed write. A message stays in
/// `inflight` until the flush that wrote it completed, so a session ended mid-write neither
/// loses it nor (knowing which frames the socket took whole) sends it twice.
async fn write(
    sender: &WsSender,
    channels: Channels<'_>,
    inflight: &mut Inflight,
    metrics: &Metrics,
    generation: u64,
) -> Ended {
    let Channels {
        queue,
        batch,
        commands,
        held,
    } = channels;
    loop {
        let command = if let Some(command) = held.take() {
            command
        } else if let Some(outgoing) = queue.pop_front() {
            metrics.queued(queue.len(), queue.bytes());
            Command::Send(outgoing)
        } else if let Some(outgoing) = batch.pop_front() {
            Command::Send(outgoing)
        } else {
            match commands.recv().await {
                Some(command) => command,
                None => return Ended::Stop(Stop::Shutdown),
            }
        };
        let first = match command {
            Command::Send(outgoing) => outgoing,
            Command::SendBatch(messages) => {
                *batch = messages;
                continue;
            }
            Command::Pinned(pinned) => {
                if let Err(error) = write_pinned(sender, pinned, generation, metrics).await {
                    return Ended::Lost(error);
                }
                continue;
            }
            Command::Close(reply) => return Ended::Stop(Stop::Close(reply)),
        };
        let mut bytes = first.len();
        inflight.0.push((first, None));
        while inflight.0.len() < BATCH_MESSAGES && bytes < BATCH_BYTES {
            let next = if let Some(outgoing) = queue.pop_front() {
                metrics.queued(queue.len(), queue.bytes());
                outgoing
            } else if let Some(outgoing) = batch.pop_front() {
                outgoing
            } else {
                match commands.try_recv() {
                    Ok(Command::Send(outgoing)) => outgoing,
                    Ok(Command::SendBatch(messages)) => {
                        *batch = messages;
                        continue;
                    }
                    Ok(other) => {
                        *held = Some(other);
                        break;
                    }
                    Err(_) => break,
                }
            };
            bytes += next.len();
            inflight.0.push((next, None));
        }
        let mut sink = sender.lock().await;
        for (outgoing, end) in &mut inflight.0 {
            let message = outgoing.message();
            // The frame's end is noted as it is encoded, before any flush that could be cut:
            // whoever writes the buffer out later (the close at a shutdown) writes it whole.
            match sink.encode_slice(message.message_type, &message.data).await {
                Ok(at) => *end = Some(at),
                Err(error) => return Ended::Lost(error),
            }
            if let Err(error) = sink.flush_if_full().await {
                return Ended::Lost(error);
            }
        }
        if let Err(error) = sink.flush().await {
            return Ended::Lost(error);
        }
        let written = sink.written_total();
        drop(sink);
        let unwritten = inflight.settle(written, metrics);
        debug_assert!(unwritten.is_empty(), "a completed flush wrote everything");
    }
}

/// Writes a pinned burst with one flush if it is for this connection's `generation`, and
/// drops it otherwise. Cut short by a drop, it is dropped too: the layer that pinned it
/// knows it sent on this generation and deals with the drop itself.
async fn write_pinned(
    sender: &WsSender,
    mut pinned: Pinned,
    generation: u64,
    metrics: &Metrics,
) -> Result<(), Error> {
    if pinned.generation != generation {
        return Ok(());
    }
    let count = pinned.messages.len();
    let bytes: usize = pinned.messages.iter().map(|m| m.data.len()).sum();
    let mut sink = sender.lock().await;
    sink.queue_all(&mut pinned.messages).await?;
    sink.flush().await?;
    metrics.sent_many(count, bytes);
    let _ = pinned.done.send(());
    Ok(())
}

/// Reads until the connection fails: data messages go to the receive side (a slot is
/// reserved before each read, so a message read is never lost), pongs to the heartbeat.
/// While the receive side is full it reads nothing, and the heartbeat does not count that
/// silence against the peer.
async fn read(
    receiver: &mut WsReceiver,
    incoming: &mpsc::Sender<Inbound>,
    live: &Liveness,
    generation: u64,
    metrics: &Metrics,
) -> Error {
    loop {
        let permit = match incoming.try_reserve() {
            Ok(permit) => permit,
            Err(TrySendError::Full(())) => {
                live.park();
                let permit = incoming.reserve().await;
                live.resume(Instant::now());
                match permit {
                    Ok(permit) => permit,
                    // The owner is gone; the task is being stopped.
                    Err(_) => return std::future::pending().await,
                }
            }
            Err(TrySendError::Closed(())) => return std::future::pending().await,
        };
        let message = loop {
            let message = match receiver.receive_message().await {
                Ok(message) => message,
                Err(error) => return error,
            };
            let now = Instant::now();
            live.heard(now);
            match message.message_type {
                MessageType::Text | MessageType::Binary => break message,
                MessageType::Pong => {
                    if let Some((rtt, srtt)) = live.pong(&message.data, now) {
                        metrics.round_trip(rtt, srtt);
                    }
                }
                MessageType::Ping => {}
                MessageType::Close => {
                    return Error::ClosedByPeer {
                        code: message.close_code().unwrap_or(1005),
                        reason: message.close_reason().unwrap_or_default(),
                    };
                }
            }
        };
        metrics.received(message.data.len());
        permit.send((generation, message));
    }
}

/// The close handshake (code 1000). Data that arrives meanwhile goes to the receive side if
/// it has room and is discarded otherwise, as `WebSocketConnection::disconnect` does.
async fn close(
    sender: &WsSender,
    receiver: &mut WsReceiver,
    incoming: &mpsc::Sender<Inbound>,
    generation: u64,
) -> Result<(), Error> {
    sender.close(1000, "").await?;
    loop {
        match receiver.receive_message().await {
            Ok(message) if message.message_type == MessageType::Close => return Ok(()),
            Ok(message) if message.is_data() => {
                let _ = incoming.try_send((generation, message));
            }
            Ok(_) => {}
            Err(Error::ConnectionClosed | Error::ClosedByPeer { .. }) => return Ok(()),
            Err(error) => return Err(error),
        }
    }
}
