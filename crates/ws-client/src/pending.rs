//! `Pending`: what a receive still has to finish once a frame is out of `Inbound`: the
//! frame owed to the peer (a pong, the echo of its close, the close that fails the
//! connection) and what the caller is to be handed once that frame is written.
//!
//! It lives in the connection or receiver, not in the receive future, so a receive
//! cancelled while the peer is not reading loses neither: the next call resumes the
//! write (the reply is encoded once, whatever the number of attempts) under the deadline
//! set when the frame was read, then returns what was held.

use tokio::time::Instant;

use crate::error::Error;
use crate::link::{self, ConnectionState, Link, Received};
use crate::message::{Message, MessageType};
use crate::wire::Outbound;

/// A received frame whose answer is not written yet (see the module documentation).
/// Boxed: it is rare (a ping, a close, a failure), and the receiver stays small.
#[derive(Debug, Default)]
pub(crate) struct Pending(Option<Box<Held>>);

#[derive(Debug)]
struct Held {
    /// What the caller gets once the reply is written (or given up on).
    outcome: Result<Message, Error>,
    /// The frame owed to the peer; `None` once it is encoded, so it is never sent twice.
    reply: Option<Message>,
    /// When writing the reply gives up: the send timeout after the frame was read (the
    /// close timeout for the close frame that fails the connection).
    deadline: Instant,
    /// The ticket of the pong `reply` became when it was parked in the link (see
    /// [`park_pong`](Pending::park_pong)).
    parked: Option<u64>,
}

impl Pending {
    /// Whether a receive left something to finish.
    #[inline]
    pub(crate) fn is_empty(&self) -> bool {
        self.0.is_none()
    }

    /// Takes what a receive step produced: hands the outcome straight back when nothing
    /// is owed to the peer, otherwise keeps it (and returns `None`) until
    /// [`settle`](Self::settle) has written the reply.
    #[inline]
    pub(crate) fn hold(
        &mut self,
        received: Received,
        link: &Link,
    ) -> Option<Result<Message, Error>> {
        let (outcome, reply, timeout) = match received {
            Received::Message {
                message,
                reply: None,
            } => return Some(Ok(message)),
            Received::Message {
                message,
                reply: Some(reply),
            } => (Ok(message), reply, link.send_timeout),
            Received::Ended(error) => return Some(Err(error)),
            Received::Failed(error) => {
                let (Some(code), Some(reason)) = (error.close_code(), error.close_reason()) else {
                    return Some(Err(error));
                };
                let close = Message::close(code, reason);
                (Err(error), close, link.close_timeout)
            }
        };
        self.0 = Some(Box::new(Held {
            outcome,
            reply: Some(reply),
            deadline: link::deadline_after(timeout),
            parked: None,
        }));
        None
    }

    /// Writes the owed frame, then hands back what was held (`None` if nothing was).
    /// A reply that cannot be written by its deadline is given up on and logged; the
    /// failure shows on the next send or receive. Cancel-safe.
    pub(crate) async fn settle(
        &mut self,
        out: &mut Outbound,
        link: &Link,
    ) -> Option<Result<Message, Error>> {
        let held = self.0.as_mut()?;
        let deadline = held.deadline;
        if let Err(e) = write_reply(held, out, link, deadline).await {
            tracing::debug!(error = %e, "could not answer the peer");
        }
        self.0.take().map(|held| held.outcome)
    }

    /// For a split connection's receiver: moves a pong still owed into the link's
    /// [`ParkedPong`](crate::parked::ParkedPong), for whoever holds the write side to write
    /// between two of its writes. Returns its ticket and the deadline for answering, or
    /// `None` when what is owed is not a pong (a close is written as [`settle`](Self::settle)
    /// writes it). Once parked it stays parked: a resumed call gets the same ticket.
    pub(crate) fn park_pong(&mut self, link: &Link) -> Option<(u64, Instant)> {
        let held = self.0.as_mut()?;
        if let Some(pong) = held
            .reply
            .take_if(|reply| reply.message_type == MessageType::Pong)
        {
            held.parked = Some(link.pong.park(pong.data));
        }
        Some((held.parked?, held.deadline))
    }

    /// Hands back what was held without writing anything more (its parked pong was
    /// written by another holder of the write side, or is given up on).
    pub(crate) fn release(&mut self) -> Option<Result<Message, Error>> {
        self.0.take().map(|held| held.outcome)
    }

    /// For closing a connection that is no longer open: writes the owed frame by
    /// `deadline` (or the earlier deadline it already had) and drops what was held.
    pub(crate) async fn finish(
        &mut self,
        out: &mut Outbound,
        link: &Link,
        deadline: Instant,
    ) -> Result<(), Error> {
        let Some(held) = self.0.as_mut() else {
            return Ok(());
        };
        let deadline = deadline.min(held.deadline);
        let written = write_reply(held, out, link, deadline).await;
        self.0 = None;
        written
    }
}

/// Encodes the reply (once) and writes out everything buffered, by `deadline`.
async fn write_reply(
    held: &mut Held,
    out: &mut Outbound,
    link: &Link,
    deadline: Instant,
) -> Result<(), Error> {
    if let Some(reply) = &held.reply {
        // A pong may not follow our own close frame.
        let allowed =
            reply.message_type != MessageType::Pong || link.state() == ConnectionState::Open;
        if allowed {
            if !out.has_room(link.write_buffer_size) {
                link::flush_until(out, link, Some(deadline)).await?;
            }
            out.encode(reply.message_type, &reply.data);
        }
        held.reply = None;
    }
    link::flush_until(out, link, Some(deadline)).await
}
