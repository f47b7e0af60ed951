//! The sweeper: one task per connection that fails calls once their deadline has passed,
//! instead of a timer per call (arming and clearing a timer per call cost more than the
//! rest of a call's bookkeeping).

use std::sync::Arc;

use tokio::time::Instant;

use crate::rpc::router::Router;
use crate::rpc::table::Outcome;

/// Fails the calls whose deadline has passed, at their deadlines, until the connection ends.
///
/// It sleeps until the earliest deadline it knows of; a call registering with an earlier
/// one wakes it, and so does the end of the connection.
pub(crate) async fn sweep_loop(router: Arc<Router>) {
    loop {
        let Some((expired, next)) = router.expire(Instant::now()) else {
            return;
        };
        for reply in expired {
            let _ = reply.send(Outcome::TimedOut);
        }
        match next {
            Some(next) => {
                tokio::select! {
                    () = tokio::time::sleep_until(next) => {}
                    () = router.sweep_requested() => {}
                }
            }
            None => router.sweep_requested().await,
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use serde_json::Value;
    use tokio::sync::oneshot;

    use super::*;
    use crate::error::Error;
    use crate::rpc::incoming::Incoming;
    use crate::rpc::table::{Answer, Pending};
    use crate::rpc::types::Id;

    /// Each call fails at its own deadline, whatever the order they were registered in, and
    /// an answer arriving after that is discarded instead of reaching anyone.
    #[tokio::test]
    async fn the_sweeper_fails_each_call_at_its_deadline_and_late_answers_are_dropped() {
        let router = Arc::new(Router::default());
        let sweeper = tokio::spawn(sweep_loop(Arc::clone(&router)));
        let started = Instant::now();
        let (long_reply, long) = oneshot::channel();
        let (short_reply, short) = oneshot::channel();
        let (answered_reply, answered) = oneshot::channel();
        let (unbounded_reply, unbounded) = oneshot::channel();
        // The later deadline first: the second registration must wake the sleeping sweeper.
        let long_after = Duration::from_millis(300);
        let short_after = Duration::from_millis(60);
        router
            .register(1, Pending::Call(long_reply), Some(started + long_after))
            .unwrap();
        router
            .register(2, Pending::Call(short_reply), Some(started + short_after))
            .unwrap();
        router
            .register(
                3,
                Pending::Call(answered_reply),
                Some(started + short_after),
            )
            .unwrap();
        router
            .register(4, Pending::Call(unbounded_reply), None)
            .unwrap();
        router.route(Incoming::answer(3, Value::from(3)));
        assert!(
            matches!(answered.await, Ok(Outcome::Answer(Answer::Decoded(r))) if r.id == Id::Number(3))
        );

        let bound = Duration::from_secs(5);
        assert!(matches!(
            tokio::time::timeout(bound, short).await,
            Ok(Ok(Outcome::TimedOut))
        ));
        let elapsed = started.elapsed();
        assert!(
            elapsed >= short_after && elapsed < long_after,
            "{elapsed:?}"
        );
        router.route(Incoming::answer(2, Value::from(2))); // late: nobody gets it, nothing breaks

        assert!(matches!(
            tokio::time::timeout(bound, long).await,
            Ok(Ok(Outcome::TimedOut))
        ));
        assert!(started.elapsed() >= long_after);

        // A call without a deadline is left to its caller; the end of the connection ends it.
        assert_eq!(router.waiting(), 1);
        router.fail_all(Error::ConnectionClosed);
        assert!(matches!(
            unbounded.await,
            Ok(Outcome::Failed(Error::ConnectionClosed))
        ));
        tokio::time::timeout(bound, sweeper)
            .await
            .expect("the sweeper ends with the connection")
            .unwrap();
    }
}
