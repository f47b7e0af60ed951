//! The router's side of a reconnect, without sockets: stamping, interrupting and resending
//! calls (subscriptions are in `orphan_tests`), and the helpers both use.

use serde_json::{Value, json};
use tokio::sync::oneshot;

use super::*;
use crate::rpc::feed::{self, Item, SubscriptionSource};
use crate::rpc::incoming::Incoming;

/// Registers call `id`, resendable if `resend`; returns where its outcome goes.
pub(super) fn call(router: &Router, id: i64, resend: bool) -> oneshot::Receiver<Outcome> {
    let (reply, outcome) = oneshot::channel();
    let mut waiting = Waiting::new(Pending::Call(reply), None);
    waiting.resend = resend.then(|| Box::new(Message::text(format!("request {id}"))));
    router.register_waiting(id, waiting).unwrap();
    outcome
}

/// Stamps a burst of messages carrying `ids` (see `Entry::id`) for `generation`; `None` if
/// refused, else the ids left to send.
pub(super) fn stamp(router: &Router, ids: &[i64], generation: u64) -> Option<Vec<i64>> {
    stamp_bound(
        router,
        &ids.iter().map(|&id| (id, 0)).collect::<Vec<_>>(),
        generation,
    )
}

/// [`stamp`] for `(id, only_on)` entries.
pub(super) fn stamp_bound(
    router: &Router,
    entries: &[(i64, u64)],
    generation: u64,
) -> Option<Vec<i64>> {
    let mut burst = Queue::default();
    for &(id, only_on) in entries {
        burst
            .messages
            .push_back(Message::text(format!("request {id}")));
        burst.calls.push_back(crate::rpc::writer::Entry {
            id,
            room: 1,
            only_on,
        });
    }
    if !router.stamp(&mut burst, generation) {
        return None;
    }
    assert_eq!(burst.messages.len(), burst.calls.len());
    for (message, entry) in burst.messages.iter().zip(&burst.calls) {
        assert_eq!(message.as_text().unwrap(), format!("request {}", entry.id));
    }
    Some(burst.calls.iter().map(|entry| entry.id).collect())
}

/// A live subscription `id` made with `subscribe_ticks` on connection `generation`, as the
/// router holds it once its subscribe was answered (with subscription id `100 + id`).
pub(super) fn subscription(router: &Router, id: i64, generation: u64) -> SubscriptionSource {
    let call = subscribe_call("subscribe_ticks", &json!({"count": 5}), "unsubscribe");
    let (sink, source) = feed::channel(8, Some(call));
    let (reply, _answer) = oneshot::channel::<Outcome>();
    let pending = Pending::Subscribe {
        reply,
        sink,
        unsubscribe: "unsubscribe".into(),
    };
    router.register(id, pending, None).unwrap();
    router.route_from(Incoming::answer(id, Value::from(100 + id)), generation);
    source
}

pub(super) fn notification(subscription: i64, n: u64) -> Incoming {
    Incoming {
        id: None,
        result: None,
        error: None,
        method: true,
        params: Some(json!({"subscription": subscription, "result": n})),
        raw: None,
    }
}

/// Everything buffered in `source` now.
pub(super) fn drain(source: &mut SubscriptionSource) -> Vec<Option<Value>> {
    let waker = futures_util::task::noop_waker();
    let mut cx = std::task::Context::from_waker(&waker);
    let mut items = Vec::new();
    while let std::task::Poll::Ready(Some(item)) = source.poll_recv(&mut cx) {
        items.push(match item {
            Item::Value(value) => Some(value),
            Item::Gap => None,
        });
    }
    items
}

pub(super) fn failed(outcome: &mut oneshot::Receiver<Outcome>) -> Option<String> {
    match outcome.try_recv() {
        Ok(Outcome::Failed(error)) => Some(format!("{error:?}")),
        _ => None,
    }
}

#[test]
fn calls_sent_on_a_lost_connection_fail_or_come_back_and_unsent_ones_wait() {
    let router = Router::default();
    let mut plain = call(&router, 1, false);
    let mut idempotent = call(&router, 2, true);
    let mut unsent = call(&router, 3, false);
    assert_eq!(stamp(&router, &[1, 2], 1), Some(vec![1, 2]));
    let resend = router.connection_lost(1);
    assert_eq!(failed(&mut plain).as_deref(), Some("CallInterrupted"));
    assert_eq!(resend.len(), 1);
    assert_eq!(resend[0].0, 2);
    assert_eq!(resend[0].1.as_text().unwrap(), "request 2");
    assert!(
        idempotent.try_recv().is_err(),
        "the resent call still waits"
    );
    assert!(
        unsent.try_recv().is_err(),
        "an unsent call waits for the next connection"
    );
    // A second report of the same drop changes nothing.
    assert!(router.connection_lost(1).is_empty());
    // Resent on generation 2 and lost again: back once more.
    assert_eq!(stamp(&router, &[2, 3], 2), Some(vec![2, 3]));
    let resend = router.connection_lost(2);
    assert_eq!(resend.iter().map(|(id, _)| *id).collect::<Vec<_>>(), [2]);
    assert_eq!(failed(&mut unsent).as_deref(), Some("CallInterrupted"));
}

#[test]
fn a_stamp_for_a_connection_already_lost_is_refused() {
    let router = Router::default();
    let mut waiting = call(&router, 1, false);
    assert!(router.connection_lost(1).is_empty());
    assert_eq!(stamp(&router, &[1], 1), None, "generation 1 is gone");
    assert!(
        waiting.try_recv().is_err(),
        "the call waits for a newer one"
    );
    assert_eq!(stamp(&router, &[1], 2), Some(vec![1]));
    router.connection_lost(2);
    assert_eq!(failed(&mut waiting).as_deref(), Some("CallInterrupted"));
}

#[test]
fn a_batch_is_stamped_through_its_first_call_and_interrupted_whole() {
    let router = Router::default();
    let mut first = call(&router, 4, false);
    let mut second = call(&router, 5, false);
    router.register_batch(vec![4, 5]);
    assert_eq!(
        stamp(&router, &[NO_CALL, -4, -99], 1),
        Some(vec![NO_CALL, -4]),
        "a batch that ended before it went out is not sent"
    );
    router.connection_lost(1);
    assert!(failed(&mut first).is_some() && failed(&mut second).is_some());
}

#[test]
fn a_subscribe_abandoned_before_it_went_out_is_never_sent() {
    let router = Router::default();
    let (sink, _source) = feed::channel(1, None);
    let (reply, answer) = oneshot::channel();
    let pending = Pending::Subscribe {
        reply,
        sink,
        unsubscribe: "unsubscribe".into(),
    };
    router.register(1, pending, None).unwrap();
    drop(answer);
    router.forget(1);
    assert_eq!(router.waiting(), 1);
    assert_eq!(stamp(&router, &[1], 1), Some(vec![]));
    assert_eq!(router.waiting(), 0);
}

/// A subscribe given up on after its request went out stays as abandoned (to undo a late
/// answer); once its connection drops no answer can come, so the entry goes too, instead
/// of filling the abandoned slots for good.
#[test]
fn a_subscribe_abandoned_after_it_went_out_is_forgotten_when_its_connection_drops() {
    let router = Router::default();
    let (sink, _source) = feed::channel(1, None);
    let (reply, answer) = oneshot::channel();
    let pending = Pending::Subscribe {
        reply,
        sink,
        unsubscribe: "unsubscribe".into(),
    };
    router.register(1, pending, None).unwrap();
    assert_eq!(stamp(&router, &[1], 1), Some(vec![1]));
    drop(answer);
    router.forget(1);
    assert_eq!(router.waiting(), 1, "kept, to undo a late answer");
    router.connection_lost(1);
    assert_eq!(router.waiting(), 0, "no answer can come any more");
}

/// What a stamp leaves out: a call given up on before it went out (never sent: its caller
/// was told it failed), and messages bound to another connection (a call among them fails
/// unsent, with `CallInterrupted`).
#[test]
fn a_stamp_leaves_out_calls_given_up_on_and_messages_of_another_connection() {
    let router = Router::default();
    let _kept = call(&router, 1, false);
    drop(call(&router, 2, true));
    router.forget(2);
    let mut bound_here = call(&router, 3, false);
    let mut bound_elsewhere = call(&router, 4, false);
    let entries = [(1, 0), (2, 0), (3, 2), (4, 1), (NO_CALL, 1), (NO_CALL, 2)];
    assert_eq!(stamp_bound(&router, &entries, 2), Some(vec![1, 3, NO_CALL]));
    assert!(bound_here.try_recv().is_err(), "sent: waits for its answer");
    assert_eq!(
        failed(&mut bound_elsewhere).as_deref(),
        Some("CallInterrupted")
    );
    assert_eq!(router.waiting(), 2);
}
