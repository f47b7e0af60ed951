//! One soak RPC client: calls at a fixed rate (open model: each call starts on time whatever
//! the earlier ones do), alternating `add` and `echo`, each answer checked. Every call must
//! resolve: with the right answer, a wrong one, an error or its timeout; one that does not
//! resolve within the timeout plus a margin is lost.
//!
//! The client runs on a resilient connection (`RpcClient::connect_resilient`): `add` calls
//! are marked idempotent (sent again after a reconnect), `echo` calls are not (a drop under
//! them fails them with `CallInterrupted`, counted as interrupted, never as lost). Any other
//! error is counted apart: nothing in a fault should cause one.

use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context as _, Result};
use futures_util::StreamExt;
use futures_util::stream::FuturesUnordered;
use serde_json::{Value, json};
use tokio::task::JoinHandle;
use tokio::time::{Instant, sleep_until, timeout};
use ws_client::Error;
use ws_client::resilient::{HeartbeatConfig, LinkStatus};
use ws_client::rpc::{CallOptions, RpcClient, RpcConfig};

use super::Plan;
use super::tally::{Tally, bump, get};

/// How long past its own timeout a call may take before it counts as lost.
const LOST_MARGIN: Duration = Duration::from_secs(1);

/// What every RPC client shares.
#[derive(Debug)]
pub(crate) struct RpcPlan {
    pub(crate) url: String,
    /// Time between two calls of one client.
    pub(crate) interval: Duration,
    /// Each call's timeout.
    pub(crate) timeout: Duration,
    /// The resilient connection's heartbeat.
    pub(crate) heartbeat: HeartbeatConfig,
}

/// How one call ended.
#[derive(Debug)]
enum Outcome {
    Ok(Duration),
    Wrong(Value),
    /// A non-idempotent call cut by a drop (`CallInterrupted`): what a fault may do.
    Interrupted,
    Failed(Error),
    TimedOut,
    Lost,
}

/// Longest wait for the first connection.
const FIRST_CONNECT: Duration = Duration::from_secs(15);

/// Runs client `id` from `begin` until its last call has resolved.
pub(crate) async fn run(
    id: u32,
    begin: Instant,
    rpc: Arc<RpcPlan>,
    plan: Arc<Plan>,
    tally: Arc<Tally>,
) -> Result<()> {
    sleep_until(begin).await;
    let client = timeout(FIRST_CONNECT, connect(&rpc))
        .await
        .with_context(|| format!("RPC client {id}: no connection within {FIRST_CONNECT:?}"))?
        .with_context(|| format!("RPC client {id} cannot connect to {}", rpc.url))?;
    let reconnects = count_reconnects(&client, Arc::clone(&tally));
    let mut calls = FuturesUnordered::new();
    let mut next = 0_u64;
    loop {
        let intended = begin + rpc.interval.mul_f64(next as f64);
        if intended >= plan.end {
            break;
        }
        tokio::select! {
            biased;
            Some(outcome) = calls.next(), if !calls.is_empty() => count(&tally, outcome),
            () = sleep_until(intended) => {
                next += 1;
                bump(&tally.rpc.calls);
                calls.push(call(client.clone(), id, next, intended, rpc.timeout));
            }
        }
    }
    while let Some(outcome) = calls.next().await {
        count(&tally, outcome);
    }
    let _ = client.close().await;
    reconnects.abort();
    Ok(())
}

/// A resilient RPC client of `rpc.url`: quick reconnects, the soak's heartbeat.
async fn connect(rpc: &RpcPlan) -> Result<RpcClient, Error> {
    let config = super::resilient_config(&rpc.url, rpc.heartbeat);
    RpcClient::connect_resilient(config, RpcConfig::default()).await
}

/// Counts the client's reconnects (each new connection generation after the first).
fn count_reconnects(client: &RpcClient, tally: Arc<Tally>) -> JoinHandle<()> {
    let mut status = client.status().expect("a resilient client has a status");
    tokio::spawn(async move {
        let mut seen = 1;
        while status.changed().await.is_ok() {
            if let LinkStatus::Up { generation } = *status.borrow_and_update()
                && generation > seen
            {
                tally
                    .rpc
                    .reconnects
                    .fetch_add(generation - seen, std::sync::atomic::Ordering::Relaxed);
                seen = generation;
            }
        }
    })
}

/// Makes call `n` of client `id`, intended at `intended`, and checks the answer.
async fn call(client: RpcClient, id: u32, n: u64, intended: Instant, limit: Duration) -> Outcome {
    let (method, params, expected) = if n % 2 == 0 {
        (
            "add",
            json!([n, id]),
            json!({ "result": n + u64::from(id) }),
        )
    } else {
        let params = json!({ "client": id, "n": n, "pad": "x".repeat((n % 97) as usize) });
        ("echo", params.clone(), params)
    };
    let options = CallOptions {
        timeout: Some(limit),
        idempotent: method == "add",
    };
    let answer = client.call_with(method, params, options);
    match timeout(limit + LOST_MARGIN, answer).await {
        Err(_) => Outcome::Lost,
        Ok(Err(Error::CallTimeout { .. })) => Outcome::TimedOut,
        Ok(Err(Error::CallInterrupted)) if !options.idempotent => Outcome::Interrupted,
        Ok(Err(e)) => Outcome::Failed(e),
        Ok(Ok(response)) => match response.into_result() {
            Ok(result) if result == expected => Outcome::Ok(intended.elapsed()),
            Ok(result) => Outcome::Wrong(result),
            Err(e) => Outcome::Failed(e),
        },
    }
}

/// Counts one outcome, printing the first few of a kind that needs explaining.
fn count(tally: &Tally, outcome: Outcome) {
    let rpc = &tally.rpc;
    match outcome {
        Outcome::Ok(latency) => {
            bump(&rpc.ok);
            tally.rpc_latency(latency);
        }
        Outcome::Wrong(result) => {
            bump(&rpc.wrong);
            eprintln!("note: a call got a wrong answer: {result}");
        }
        Outcome::Interrupted => bump(&rpc.interrupted),
        Outcome::Failed(e) => {
            bump(&rpc.errors);
            if get(&rpc.errors) <= 3 {
                eprintln!("note: a call failed: {e}");
            }
        }
        Outcome::TimedOut => bump(&rpc.timeouts),
        Outcome::Lost => {
            bump(&rpc.lost);
            eprintln!("note: a call did not resolve within its timeout + {LOST_MARGIN:?}");
        }
    }
}
