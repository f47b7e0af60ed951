//! The writing and reading tasks of an RPC session over a resilient connection: the writer
//! hands each burst over pinned to the connection generation it stamped it with (`resume`),
//! waiting while the link is down; the reader routes what arrives and, when the link drops
//! or comes back, lets `resume` fail, resend and resubscribe.

use std::sync::Arc;

use tokio::sync::watch;

use crate::error::Error;
use crate::resilient::{LinkStatus, ResilientConnection, ResilientSender};
use crate::rpc::reader;
use crate::rpc::resume::Resubscribe;
use crate::rpc::router::Router;
use crate::rpc::writer::{Queue, Writer};

/// Writes bursts until asked to close (then closes the resilient connection) or the
/// connection has ended (then returns why, and the caller fails the calls).
pub(crate) async fn write_loop(
    writer: Arc<Writer>,
    router: Arc<Router>,
    link: ResilientSender,
) -> Result<(), Error> {
    let mut status = link.status();
    let mut burst = Queue::default();
    'next: loop {
        if writer.is_closing() {
            let _ = link.close_connection().await;
            return Ok(());
        }
        writer.woken().await;
        loop {
            writer.take_burst(&mut burst);
            if burst.is_empty() {
                continue 'next;
            }
            // Held by the burst, whatever the stamp leaves of it.
            let room = burst.room();
            let mut dropped = 0;
            let generation = loop {
                let generation = match up(&mut status, &writer, dropped).await {
                    Link::Up(generation) => generation,
                    Link::Closing => {
                        writer.requeue_front(&mut burst);
                        continue 'next;
                    }
                    Link::Ended => return Err(link.ended_error()),
                };
                if router.stamp(&mut burst, generation) {
                    break generation;
                }
                // That connection has dropped already: wait for a newer one.
                dropped = generation;
            };
            burst.calls.clear();
            let messages = std::mem::take(&mut burst.messages);
            if !messages.is_empty() {
                let written = link.send_pinned(generation, messages).await?;
                // Answered once written, or dropped unwritten with the connection (the
                // reader then fails or resends the calls stamped with it).
                let _ = written.await;
            }
            writer.release(room);
        }
    }
}

/// What the writer waits for.
enum Link {
    Up(u64),
    Closing,
    Ended,
}

/// Waits until a connection newer than `dropped` is up (its generation) or the link has
/// ended; returns early if the writer is asked to close meanwhile.
async fn up(status: &mut watch::Receiver<LinkStatus>, writer: &Writer, dropped: u64) -> Link {
    loop {
        match *status.borrow_and_update() {
            LinkStatus::Up { generation } if generation > dropped => return Link::Up(generation),
            LinkStatus::Up { .. } => {}
            LinkStatus::Ended => return Link::Ended,
            LinkStatus::Starting | LinkStatus::Down { .. } => {}
        }
        if writer.is_closing() {
            return Link::Closing;
        }
        tokio::select! {
            changed = status.changed() => if changed.is_err() { return Link::Ended },
            () = writer.woken() => {}
        }
    }
}

/// Reads until the resilient connection has ended, routing every message; on each change of
/// its status, first routes what the old connection delivered, then fails or resends the
/// calls it carried and makes the subscriptions again once a new one is up. At the end,
/// fails all waiters and stops the writer.
pub(crate) async fn read_loop(
    mut connection: ResilientConnection,
    router: Arc<Router>,
    writer: Arc<Writer>,
    resubscribe: Resubscribe,
) {
    let codec = resubscribe.codec;
    let mut status = connection.status();
    // The first connection is up: nothing to resubscribe for it.
    let mut resubscribed_for = 1;
    let mut watching = true;
    let reason = loop {
        tokio::select! {
            biased;
            changed = status.changed(), if watching => {
                if changed.is_err() {
                    watching = false; // the task is ending; `receive` says why
                    continue;
                }
                let now = *status.borrow_and_update();
                while let Some((generation, message)) = connection.try_receive_with_generation() {
                    reader::handle(message, generation, &router, &writer, codec);
                }
                let lost = match now {
                    LinkStatus::Down { generation } => generation,
                    LinkStatus::Up { generation } => generation - 1,
                    LinkStatus::Starting | LinkStatus::Ended => 0,
                };
                writer.push_front_unreserved(router.connection_lost(lost));
                if let LinkStatus::Up { generation } = now
                    && generation > resubscribed_for
                {
                    resubscribed_for = generation;
                    let requests = router.resubscribe_orphans(codec, resubscribe.timeout);
                    writer.push_front_unreserved(requests);
                }
            }
            received = connection.receive_with_generation() => match received {
                Ok((generation, message)) => {
                    reader::handle(message, generation, &router, &writer, codec);
                }
                Err(error) => break error,
            },
        }
    };
    router.fail_all(reason);
    writer.close();
}
