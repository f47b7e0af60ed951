//! The router's side of a reconnect for subscriptions, without sockets: orphaning, making
//! them again (the gap, refusals, timeouts, drops), and the races between them.

use std::time::Duration;

use serde_json::{Value, json};
use tokio::sync::oneshot;
use tokio::time::Instant;

use super::tests::{drain, notification, stamp, subscription};
use super::*;
use crate::rpc::feed;
use crate::rpc::incoming::Incoming;
use crate::rpc::types::RpcError;

#[test]
fn an_orphan_is_made_again_once_and_its_gap_sits_between_old_and_new_notifications() {
    let router = Router::default();
    let mut source = subscription(&router, 1, 1);
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
            .route_from(Incoming::answer(*id, Value::from(202)), 2)
            .is_none()
    );
    router.route(notification(202, 0));
    assert_eq!(drain(&mut source), [Some(json!(0)), None, Some(json!(0))]);
    assert_eq!(source.key(), Some((Id::Number(202), 2)));
    assert!(
        !router.forget_subscription(&Id::Number(202), 1),
        "id 202 of another connection"
    );
    assert!(
        router.forget_subscription(&Id::Number(202), 2),
        "live again"
    );
}

#[test]
fn an_orphan_dropped_before_its_resubscribe_is_answered_is_ended_on_the_server() {
    let router = Router::default();
    let _source = subscription(&router, 1, 1);
    router.connection_lost(1);
    assert!(
        !router.forget_subscription(&Id::Number(101), 1),
        "no server holds an orphan: nothing to unsubscribe"
    );
    assert!(
        router
            .resubscribe_orphans(RpcCodec::Json, Duration::from_secs(5))
            .is_empty()
    );
    // Dropped while its resubscribe is out: the answer asks for an unsubscribe.
    let _source = subscription(&router, 2, 2);
    router.connection_lost(2);
    let requests = router.resubscribe_orphans(RpcCodec::Json, Duration::from_secs(5));
    assert!(!router.forget_subscription(&Id::Number(102), 2));
    let late = router.route_from(Incoming::answer(requests[0].0, Value::from(7)), 3);
    assert_eq!(
        late,
        Some(Unsubscribe {
            method: "unsubscribe".into(),
            id: Id::Number(7),
            generation: 3,
        })
    );
}

#[test]
fn a_refused_or_unanswered_resubscribe_ends_the_stream_with_the_reason() {
    let router = Router::default();
    let mut refused = subscription(&router, 1, 1);
    let mut unanswered = subscription(&router, 2, 1);
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
    let mut source = subscription(&router, 1, 1);
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

/// A resubscribe whose connection drops before its answer is not sent again with the
/// deadline it had: the orphan is made again on the next connection, with a timeout of its
/// own (an outage longer than the timeout does not end the subscription). One already
/// stamped for a newer connection stays.
#[test]
fn a_resubscribe_cut_off_by_a_drop_is_made_again_afresh() {
    let router = Router::default();
    let mut source = subscription(&router, 1, 1);
    router.connection_lost(1);
    let first = router.resubscribe_orphans(RpcCodec::Json, Duration::from_millis(10));
    assert_eq!(stamp(&router, &[first[0].0], 2), Some(vec![first[0].0]));
    assert!(router.connection_lost(2).is_empty(), "not resent as it was");
    let (expired, _) = router
        .expire(Instant::now() + Duration::from_secs(1))
        .unwrap();
    assert!(expired.is_empty());
    drain(&mut source);
    assert!(source.take_end().is_none(), "not ended by a stale timeout");
    let second = router.resubscribe_orphans(RpcCodec::Json, Duration::from_secs(5));
    assert_eq!(second.len(), 1);
    assert_ne!(second[0].0, first[0].0);
    assert_eq!(stamp(&router, &[first[0].0], 3), Some(vec![]), "stale one");
    // Stamped for connection 4 before the drop of 3 is handled: it went out on 4, stays.
    assert_eq!(stamp(&router, &[second[0].0], 4), Some(vec![second[0].0]));
    router.connection_lost(3);
    assert!(
        router
            .resubscribe_orphans(RpcCodec::Json, Duration::from_secs(5))
            .is_empty()
    );
    router.route_from(Incoming::answer(second[0].0, Value::from(9)), 4);
    assert_eq!(drain(&mut source), [None]);
    assert_eq!(source.key(), Some((Id::Number(9), 4)));
}

/// Two connections may give the same subscription id: an orphan of the first and a
/// subscription of the second with that id are two subscriptions, each made again, and
/// forgetting one leaves the other.
#[test]
fn orphans_of_two_connections_with_the_same_id_are_kept_apart() {
    let router = Router::default();
    let mut first = subscription(&router, 1, 1); // id 101 on connection 1
    router.connection_lost(1);
    let resubscribe = router.resubscribe_orphans(RpcCodec::Json, Duration::from_secs(5));
    assert_eq!(
        stamp(&router, &[resubscribe[0].0], 2),
        Some(vec![resubscribe[0].0])
    );
    // Connection 2 gives id 101 to a new subscription, then drops before the resubscribe
    // is answered.
    let call = subscribe_call("subscribe_ticks", &json!({"count": 6}), "unsubscribe");
    let (sink, mut second) = feed::channel(8, Some(call));
    let (reply, _answer) = oneshot::channel::<Outcome>();
    let pending = Pending::Subscribe {
        reply,
        sink,
        unsubscribe: "unsubscribe".into(),
    };
    router.register(50, pending, None).unwrap();
    router.route_from(Incoming::answer(50, Value::from(101)), 2);
    router.connection_lost(2);
    let again = router.resubscribe_orphans(RpcCodec::Json, Duration::from_secs(5));
    assert_eq!(again.len(), 2, "both made again");
    for (n, (id, _)) in again.iter().enumerate() {
        router.route_from(Incoming::answer(*id, Value::from(200 + n as i64)), 3);
    }
    for source in [&mut first, &mut second] {
        assert_eq!(drain(source), [None], "a gap, and not ended");
        assert!(source.take_end().is_none());
    }
    let first_key = first.key().unwrap();
    assert!(router.forget_subscription(&first_key.0, first_key.1));
    let second_key = second.key().unwrap();
    assert_ne!(first_key, second_key);
    assert!(router.forget_subscription(&second_key.0, second_key.1));
}

/// A subscription answered on a newer connection and routed before the drop of the older
/// one is handled (the reader routes whatever is buffered first) stays live.
#[test]
fn a_subscription_of_a_newer_connection_is_not_orphaned_by_an_older_drop() {
    let router = Router::default();
    let mut source = subscription(&router, 1, 2);
    router.connection_lost(1);
    assert!(
        router
            .resubscribe_orphans(RpcCodec::Json, Duration::from_secs(5))
            .is_empty()
    );
    router.route(notification(101, 0));
    assert_eq!(drain(&mut source), [Some(json!(0))]);
}
