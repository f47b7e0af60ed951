//! The router's side of a reconnect, without sockets: stamping, interrupting, resending,
//! orphaning and making subscriptions again, and the races between them.

use std::time::Duration;

use serde_json::{Value, json};
use tokio::sync::oneshot;
use tokio::time::Instant;

use super::*;
use crate::rpc::feed::{self, Item, SubscriptionSource};
use crate::rpc::incoming::Incoming;
use crate::rpc::types::RpcError;

/// Registers call `id`, resendable if `resend`; returns where its outcome goes.
fn call(router: &Router, id: i64, resend: bool) -> oneshot::Receiver<Outcome> {
    let (reply, outcome) = oneshot::channel();
    let mut waiting = Waiting::new(Pending::Call(reply), None);
    waiting.resend = resend.then(|| Box::new(Message::text(format!("request {id}"))));
    router.register_waiting(id, waiting).unwrap();
    outcome
}

/// A live subscription `id` made with `subscribe_ticks`, as the router holds it once its
/// subscribe was answered.
fn subscription(router: &Router, id: i64) -> SubscriptionSource {
    let call = subscribe_call("subscribe_ticks", &json!({"count": 5}), "unsubscribe");
    let (sink, source) = feed::channel(8, Some(call));
    let (reply, _answer) = oneshot::channel::<Outcome>();
    let pending = Pending::Subscribe {
        reply,
        sink,
        unsubscribe: "unsubscribe".into(),
    };
    router.register(id, pending, None).unwrap();
    router.route(Incoming::answer(id, Value::from(100 + id)));
    source
}

fn notification(subscription: i64, n: u64) -> Incoming {
    Incoming {
        id: None,
        result: None,
        error: None,
        method: true,
        params: Some(json!({"subscription": subscription, "result": n})),
    }
}

/// Everything buffered in `source` now.
fn drain(source: &mut SubscriptionSource) -> Vec<Option<Value>> {
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

fn failed(outcome: &mut oneshot::Receiver<Outcome>) -> Option<String> {
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
    assert!(router.stamp([1, 2].into_iter(), 1));
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
    assert!(router.stamp([2, 3].into_iter(), 2));
    let resend = router.connection_lost(2);
    assert_eq!(resend.iter().map(|(id, _)| *id).collect::<Vec<_>>(), [2]);
    assert_eq!(failed(&mut unsent).as_deref(), Some("CallInterrupted"));
}

#[test]
fn a_stamp_for_a_connection_already_lost_is_refused() {
    let router = Router::default();
    let mut waiting = call(&router, 1, false);
    assert!(router.connection_lost(1).is_empty());
    assert!(!router.stamp([1].into_iter(), 1), "generation 1 is gone");
    assert!(
        waiting.try_recv().is_err(),
        "the call waits for a newer one"
    );
    assert!(router.stamp([1].into_iter(), 2));
    router.connection_lost(2);
    assert_eq!(failed(&mut waiting).as_deref(), Some("CallInterrupted"));
}

#[test]
fn a_batch_is_stamped_through_its_first_call_and_interrupted_whole() {
    let router = Router::default();
    let mut first = call(&router, 4, false);
    let mut second = call(&router, 5, false);
    router.register_batch(vec![4, 5]);
    assert!(router.stamp([NO_CALL, -4, -99].into_iter(), 1));
    router.connection_lost(1);
    assert!(failed(&mut first).is_some() && failed(&mut second).is_some());
}

#[test]
fn an_abandoned_subscribe_sent_on_a_lost_connection_is_forgotten() {
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
    assert!(router.stamp([1].into_iter(), 1));
    assert_eq!(router.waiting(), 1);
    assert!(router.connection_lost(1).is_empty());
    assert_eq!(router.waiting(), 0);
}

#[test]
fn an_orphan_is_made_again_once_and_its_gap_sits_between_old_and_new_notifications() {
    let router = Router::default();
    let mut source = subscription(&router, 1);
    router.route(notification(101, 0));
    router.connection_lost(1);
    router.route(notification(101, 1)); // late, for the old id: discarded
    let requests = router.resubscribe_orphans(RpcCodec::Json, Duration::from_secs(5));
    assert_eq!(requests.len(), 1);
    let (id, request) = &requests[0];
    let request: Value = serde_json::from_slice(&request.data).unwrap();
    assert_eq!(request["method"], "subscribe_ticks");
    assert_eq!(request["params"], json!({"count": 5}));
    assert_eq!(request["id"], *id);
    assert!(
        router
            .resubscribe_orphans(RpcCodec::Json, Duration::from_secs(5))
            .is_empty(),
        "its resubscribe is on its way already"
    );
    assert!(
        router
            .route(Incoming::answer(*id, Value::from(202)))
            .is_none()
    );
    router.route(notification(202, 0));
    assert_eq!(drain(&mut source), [Some(json!(0)), None, Some(json!(0))]);
    assert_eq!(source.id(), Some(Id::Number(202)));
    assert!(router.forget_subscription(&Id::Number(202)), "live again");
}

#[test]
fn an_orphan_dropped_before_its_resubscribe_is_answered_is_ended_on_the_server() {
    let router = Router::default();
    let _source = subscription(&router, 1);
    router.connection_lost(1);
    assert!(
        !router.forget_subscription(&Id::Number(101)),
        "no server holds an orphan: nothing to unsubscribe"
    );
    assert!(
        router
            .resubscribe_orphans(RpcCodec::Json, Duration::from_secs(5))
            .is_empty()
    );
    // Dropped while its resubscribe is out: the answer asks for an unsubscribe.
    let _source = subscription(&router, 2);
    router.connection_lost(2);
    let requests = router.resubscribe_orphans(RpcCodec::Json, Duration::from_secs(5));
    router.forget_subscription(&Id::Number(102));
    let late = router.route(Incoming::answer(requests[0].0, Value::from(7)));
    assert_eq!(
        late,
        Some(Unsubscribe {
            method: "unsubscribe".into(),
            id: Id::Number(7)
        })
    );
}

#[test]
fn a_refused_or_unanswered_resubscribe_ends_the_stream_with_the_reason() {
    let router = Router::default();
    let mut refused = subscription(&router, 1);
    let mut unanswered = subscription(&router, 2);
    router.connection_lost(1);
    let requests = router.resubscribe_orphans(RpcCodec::Json, Duration::from_millis(10));
    assert_eq!(requests.len(), 2);
    let refused_id = requests[0].0;
    let mut answer = Incoming::answer(refused_id, Value::Null);
    answer.result = None;
    answer.error = Some(RpcError {
        code: -32601,
        message: "gone".into(),
        data: None,
    });
    router.route(answer);
    let (expired, _) = router
        .expire(Instant::now() + Duration::from_secs(1))
        .unwrap();
    assert!(
        expired.is_empty(),
        "nobody waits on a resubscribe but its stream"
    );
    let ends: Vec<String> = [&mut refused, &mut unanswered]
        .into_iter()
        .filter_map(|source| {
            drain(source);
            source.take_end().map(|e| format!("{e:?}"))
        })
        .collect();
    assert_eq!(ends.len(), 2, "{ends:?}");
    assert!(ends.iter().any(|e| e.contains("gone")), "{ends:?}");
    assert!(ends.iter().any(|e| e.contains("CallTimeout")), "{ends:?}");
}

#[test]
fn the_end_of_the_connection_ends_orphans_too() {
    let router = Router::default();
    let mut source = subscription(&router, 1);
    router.connection_lost(1);
    router.fail_all(Error::ConnectionClosed);
    drain(&mut source);
    assert!(matches!(source.take_end(), Some(Error::ConnectionClosed)));
    assert!(
        router
            .resubscribe_orphans(RpcCodec::Json, Duration::from_secs(1))
            .is_empty()
    );
}
