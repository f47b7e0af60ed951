//! The reader: the task that reads everything the server sends, decodes it (a fast path
//! for the commonest answer, whose result is left for its caller to decode; serde for the
//! rest) and hands it to the router (an answer it cannot read fails its call); ends the
//! subscriptions the router says nobody reads; and at the end of the connection fails
//! everything and stops the writer.

use std::sync::Arc;

use serde_json::Value;

use crate::error::Error;
use crate::message::{Message, MessageType};
use crate::rpc::codec::{Codec, RpcCodec};
use crate::rpc::incoming::{Incoming, Skimmed, plain_json_answer};
use crate::rpc::raw::RawResult;
use crate::rpc::request::WireRequest;
use crate::rpc::resume::NO_CALL;
use crate::rpc::router::Router;
use crate::rpc::table::Unsubscribe;
use crate::rpc::writer::Writer;
use crate::split::WsReceiver;

/// Reads the connection until it ends, routing every message, then fails all waiters and
/// stops the writer, so that the socket is let go.
///
/// The connection ends at the peer's close frame, not at the end of TCP that should follow
/// it: a server that closes and keeps TCP open must not leave calls waiting for their
/// timeout and subscriptions waiting for ever. (The transport has already echoed the close.)
pub(crate) async fn read_loop(
    mut receiver: WsReceiver,
    router: Arc<Router>,
    writer: Arc<Writer>,
    codec: RpcCodec,
) {
    let reason = loop {
        let message = match receiver.receive_message().await {
            Ok(message) if message.is_data() => message,
            // The peer's own close, or its answer to ours (then `ConnectionClosed`).
            Ok(message) if message.message_type == MessageType::Close => {
                break receiver.closed_error();
            }
            Ok(_) => continue, // pings are answered by the transport
            Err(error) => break error,
        };
        handle(message, 0, &router, &writer, codec);
    };
    router.fail_all(reason);
    writer.close();
}

/// Decodes one data message from the server, received on connection `generation` (0 on a
/// plain connection), (a batch answer, the fast path for a plain JSON answer, or serde) and
/// routes what it holds.
pub(crate) fn handle(
    message: Message,
    generation: u64,
    router: &Router,
    writer: &Writer,
    codec: RpcCodec,
) {
    if codec.is_batch(&message) {
        match codec.decode::<Vec<Incoming>>(&message) {
            Ok(batch) => batch
                .into_iter()
                .for_each(|incoming| deliver(router, writer, codec, incoming, generation)),
            Err(error) => {
                tracing::warn!(%error, "undecodable batch answer from the server");
                router.fail_batch(|| Error::Codec(format!("batch answer: {error}")));
            }
        }
        return;
    }
    let fast = (codec == RpcCodec::Json)
        .then(|| plain_json_answer(&message.data))
        .flatten();
    let incoming = match fast {
        Some((id, result)) => Incoming::raw_answer(id, RawResult::new(message.data, result)),
        None => match codec.decode::<Incoming>(&message) {
            Ok(incoming) => incoming,
            Err(error) => return unreadable(router, codec, &message, error),
        },
    };
    deliver(router, writer, codec, incoming, generation);
}

/// A message the client cannot read (a result no `Value` holds: a lone surrogate escape,
/// a number out of range, nesting past serde_json's limit; a member of the wrong type): if
/// it still shows the id of a call, and no `method`, that call fails at once with
/// [`Error::Codec`] rather than by its timeout; anything else is logged and ignored.
fn unreadable(router: &Router, codec: RpcCodec, message: &Message, error: Error) {
    let call = codec.decode::<Skimmed>(message).ok().and_then(|s| s.call());
    let Some(id) = call else {
        tracing::warn!(%error, "undecodable message from the server ignored");
        return;
    };
    tracing::warn!(id, %error, "unreadable answer from the server: its call fails");
    let why = match error {
        Error::Codec(why) => why,
        other => other.to_string(),
    };
    router.fail_unreadable(id, Error::Codec(format!("unreadable answer: {why}")));
}

/// Ends on the server a subscription nobody reads (its subscribe was answered after its
/// caller gave up): a notification to its unsubscribe method, on the connection that holds
/// it only. Never waits (the reader must not wait on the writer); dropped, and logged, if
/// the outgoing queue is full.
fn unsubscribe(writer: &Writer, codec: RpcCodec, late: Unsubscribe) {
    tracing::debug!(id = ?late.id, "subscribe answered after its caller gave up: unsubscribing");
    let params = Value::Array(vec![late.id.to_value()]);
    let sent = WireRequest::new(&late.method, &params, None)
        .encode(codec)
        .ok()
        .and_then(|message| Some((writer.try_reserve(&message)?, message)));
    match sent {
        Some((room, message)) => writer.push_call(room, message, NO_CALL, late.generation),
        None => {
            tracing::warn!(id = ?late.id, "could not queue the unsubscribe of a late subscription")
        }
    }
}

/// Routes one message, and sends the unsubscribe the router asks for, if it asks.
fn deliver(router: &Router, writer: &Writer, codec: RpcCodec, incoming: Incoming, generation: u64) {
    if let Some(late) = router.route_from(incoming, generation) {
        unsubscribe(writer, codec, late);
    }
}
