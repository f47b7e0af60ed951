//! The router's own tests: what is an answer, and late answers to abandoned subscribes.

use tokio::sync::oneshot;

use super::*;
use crate::rpc::feed;

/// A request from the server carrying the id of a pending call leaves the call waiting
/// for its real answer.
#[tokio::test]
async fn a_request_with_a_pending_id_is_not_an_answer() {
    let router = Router::default();
    let (reply, mut waiting) = oneshot::channel();
    router.register(5, Pending::Call(reply), None).unwrap();
    router.route(Incoming {
        method: true,
        ..Incoming::answer(5, Value::from(5))
    });
    assert!(
        waiting.try_recv().is_err(),
        "the request completed the call"
    );
    router.route(Incoming::answer(5, Value::from(5)));
    assert!(
        matches!(waiting.await, Ok(Outcome::Answer(Answer::Decoded(r))) if r.result == Some(Value::from(5)))
    );
}

/// A subscribe that timed out, or whose caller went away, and is answered later with a
/// subscription id asks for an unsubscribe; an error answer asks for nothing.
#[tokio::test]
async fn late_answers_to_abandoned_subscribes_ask_for_an_unsubscribe() {
    let router = Router::default();
    let subscribe = |router: &Router, id: i64, deadline: Option<Instant>| {
        let (reply, outcome) = oneshot::channel();
        let (sink, _source) = feed::channel(1, None);
        let unsubscribe = "unsub".to_owned();
        let pending = Pending::Subscribe {
            reply,
            sink,
            unsubscribe,
        };
        router.register(id, pending, deadline).unwrap();
        outcome
    };
    let timed_out = subscribe(&router, 1, Some(Instant::now()));
    let (expired, _) = router.expire(Instant::now()).unwrap();
    assert_eq!(expired.len(), 1);
    expired.into_iter().for_each(|reply| {
        let _ = reply.send(Outcome::TimedOut);
    });
    assert!(matches!(timed_out.await, Ok(Outcome::TimedOut)));
    drop(subscribe(&router, 2, None));
    router.forget(2);
    drop(subscribe(&router, 3, None));
    router.forget(3);
    assert_eq!(router.waiting(), 3, "abandoned subscribes are remembered");

    let late = router.route(Incoming {
        result: Some(Value::from(42)),
        ..Incoming::answer(1, Value::from(1))
    });
    let expected = |id| Unsubscribe {
        method: "unsub".into(),
        id,
        generation: 0,
    };
    assert_eq!(late, Some(expected(Id::Number(42))));
    let late = router.route(Incoming {
        result: Some(Value::from("s")),
        ..Incoming::answer(2, Value::from(2))
    });
    assert_eq!(late, Some(expected(Id::String("s".into()))));
    let failed = router.route(Incoming {
        result: None,
        error: Some(crate::rpc::RpcError {
            code: 1,
            message: "no".into(),
            data: None,
        }),
        ..Incoming::answer(3, Value::from(3))
    });
    assert_eq!(failed, None);
    assert_eq!(router.waiting(), 0);
}
