//! One soak RPC client: calls at a fixed rate (open model: each call starts on time whatever
//! the earlier ones do), alternating `add` and `echo`, each answer checked. Every call must
//! resolve: with the right answer, a wrong one, an error or its timeout; one that does not
//! resolve within the timeout plus a margin is lost.
//!
//! The connection is behind [`RpcLink`]: today a plain `RpcClient`, replaced by a new one
//! when it has failed, so a client that reconnects by itself can take its place.

use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context as _, Result};
use futures_util::stream::FuturesUnordered;
use futures_util::{FutureExt, StreamExt};
use serde_json::{Value, json};
use tokio::task::JoinHandle;
use tokio::time::{Instant, sleep_until, timeout};
use ws_client::rpc::{RpcClient, RpcConfig};
use ws_client::{Error, TransportConfig};

use super::Plan;
use super::tally::{RpcTally, Tally, bump, get};

/// How long past its own timeout a call may take before it counts as lost.
const LOST_MARGIN: Duration = Duration::from_secs(1);
/// Wait between two failed connection attempts.
const RETRY: Duration = Duration::from_millis(200);

/// What every RPC client shares.
#[derive(Debug)]
pub(crate) struct RpcPlan {
    pub(crate) url: String,
    /// Time between two calls of one client.
    pub(crate) interval: Duration,
    /// Each call's timeout.
    pub(crate) timeout: Duration,
}

/// How one call ended.
#[derive(Debug)]
enum Outcome {
    Ok(Duration),
    Wrong(Value),
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
    let mut link = RpcLink::new(&rpc.url);
    link.first()
        .await
        .with_context(|| format!("RPC client {id} cannot connect to {}", rpc.url))?;
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
                match link.client(&tally.rpc) {
                    Some(client) => calls.push(call(client, id, next, intended, rpc.timeout)),
                    None => count(&tally, Outcome::Failed(Error::NotConnected)),
                }
            }
        }
    }
    while let Some(outcome) = calls.next().await {
        count(&tally, outcome);
    }
    link.close().await;
    Ok(())
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
    let answer = client.call_with_timeout(method, params, limit);
    match timeout(limit + LOST_MARGIN, answer).await {
        Err(_) => Outcome::Lost,
        Ok(Err(Error::CallTimeout { .. })) => Outcome::TimedOut,
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
        Outcome::Failed(e) => {
            bump(&rpc.errors);
            if get(&rpc.errors) <= 3 {
                match e {
                    Error::NotConnected => eprintln!("note: a call failed: no connection yet"),
                    e => eprintln!("note: a call failed: {e}"),
                }
            }
        }
        Outcome::TimedOut => bump(&rpc.timeouts),
        Outcome::Lost => {
            bump(&rpc.lost);
            eprintln!("note: a call did not resolve within its timeout + {LOST_MARGIN:?}");
        }
    }
}

/// The connection calls go over: a plain `RpcClient`, replaced once it has failed by a new
/// one connected in the background (one attempt at a time, [`RETRY`] apart after a failure).
/// Calls made while there is none fail at once with `NotConnected`.
#[derive(Debug)]
struct RpcLink {
    config: RpcConfig,
    current: Option<RpcClient>,
    connecting: Option<JoinHandle<Result<RpcClient, Error>>>,
    retry_at: Instant,
    connected_before: bool,
}

impl RpcLink {
    fn new(url: &str) -> Self {
        Self {
            config: RpcConfig {
                transport: TransportConfig {
                    connect_timeout: Duration::from_secs(2),
                    close_timeout: Duration::from_secs(2),
                    ..TransportConfig::new(url)
                },
                ..RpcConfig::new(url)
            },
            current: None,
            connecting: None,
            retry_at: Instant::now(),
            connected_before: false,
        }
    }

    /// Connects the first client, retrying for at most [`FIRST_CONNECT`].
    async fn first(&mut self) -> Result<()> {
        let deadline = Instant::now() + FIRST_CONNECT;
        loop {
            match RpcClient::connect(self.config.clone()).await {
                Ok(client) => {
                    self.current = Some(client);
                    self.connected_before = true;
                    return Ok(());
                }
                Err(e) if Instant::now() + RETRY >= deadline => return Err(e.into()),
                Err(_) => sleep_until(Instant::now() + RETRY).await,
            }
        }
    }

    /// The client to call on now, if connected; starts a connection attempt if none is up.
    fn client(&mut self, tally: &RpcTally) -> Option<RpcClient> {
        if self.current.as_ref().is_some_and(RpcClient::is_closed) {
            self.current = None;
        }
        if self.current.is_none() {
            if let Some(attempt) = self.connecting.take_if(|task| task.is_finished()) {
                match attempt.now_or_never() {
                    Some(Ok(Ok(client))) => {
                        if self.connected_before {
                            bump(&tally.reconnects);
                        }
                        self.connected_before = true;
                        self.current = Some(client);
                    }
                    _ => self.retry_at = Instant::now() + RETRY,
                }
            }
            if self.current.is_none()
                && self.connecting.is_none()
                && Instant::now() >= self.retry_at
            {
                let config = self.config.clone();
                self.connecting = Some(tokio::spawn(RpcClient::connect(config)));
            }
        }
        self.current.clone()
    }

    /// Closes the client (within its close timeout) and stops an attempt under way.
    async fn close(self) {
        if let Some(attempt) = self.connecting {
            attempt.abort();
        }
        if let Some(client) = self.current {
            let _ = client.close().await;
        }
    }
}
