//! `rpc`: JSON-RPC calls on one connection with W in flight, through ws-client's
//! `RpcClient`, the bare tokio-tungstenite baseline or jsonrpsee's client; calls/s and
//! latency percentiles.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use anyhow::{Context, Result, bail};
use hdrhistogram::Histogram;
use serde_json::{Value, json};
use ws_client::rpc::{RpcClient, RpcConfig};

use crate::cli::{RpcArgs, RpcClientKind, RpcMethodArg};
use crate::jsonrpsee_rpc::{self, JsonrpseeClient};
use crate::progress::{Budget, Progress};
use crate::report::{self, LATENCY, Report};
use crate::rpc_answer::Answer;
use crate::rpc_baseline::TungRpc;

/// The client under test. Cheap to clone.
#[derive(Debug, Clone)]
pub(crate) enum Caller {
    Ws(RpcClient),
    Tung(TungRpc),
    Jsonrpsee(Arc<JsonrpseeClient>),
}

impl Caller {
    /// Connects the client of `kind` to `url` for `window` calls in flight.
    pub(crate) async fn connect(kind: RpcClientKind, url: &str, window: usize) -> Result<Self> {
        Ok(match kind {
            RpcClientKind::WsClient => {
                let config = RpcConfig {
                    max_in_flight: window.max(ws_client::rpc::DEFAULT_MAX_IN_FLIGHT),
                    ..RpcConfig::new(url)
                };
                let client = RpcClient::connect(config)
                    .await
                    .with_context(|| format!("RpcClient cannot connect to {url}"))?;
                Caller::Ws(client)
            }
            RpcClientKind::Tungstenite => Caller::Tung(TungRpc::connect(url, window).await?),
            RpcClientKind::Jsonrpsee => {
                Caller::Jsonrpsee(Arc::new(jsonrpsee_rpc::connect(url, window).await?))
            }
        })
    }

    /// Calls `method` and decodes its result as an [`Answer`], each client through its
    /// typed API (its fastest).
    pub(crate) async fn call(&self, method: &str, params: &Value) -> Result<Answer> {
        match self {
            Caller::Ws(client) => Ok(client.request::<Answer>(method, params).await?),
            Caller::Tung(client) => client.call(method, params.clone()).await,
            Caller::Jsonrpsee(client) => jsonrpsee_rpc::call(client, method, params).await,
        }
    }

    /// Closes the connection (jsonrpsee's client closes when dropped).
    pub(crate) async fn close(&self) -> Result<()> {
        match self {
            Caller::Ws(client) => client.close().await?,
            Caller::Tung(client) => client.close().await?,
            Caller::Jsonrpsee(_) => {}
        }
        Ok(())
    }
}

/// What the calls of `method` send and must get back from test-servers rpc.
pub(crate) fn call_of(method: RpcMethodArg) -> (&'static str, Value, Answer) {
    match method {
        RpcMethodArg::Add => ("add", json!([1, 2]), Answer::Sum(3)),
        RpcMethodArg::Echo => ("echo", json!([1, 2]), Answer::Pair(1, 2)),
    }
}

/// What every worker shares.
#[derive(Debug)]
struct Shared {
    caller: Caller,
    method: &'static str,
    params: Value,
    expected: Answer,
    budget: Budget,
    issued: AtomicU64,
    done: Arc<AtomicU64>,
    errors: AtomicU64,
    first_error: Mutex<Option<String>>,
    histogram: Mutex<Histogram<u64>>,
}

pub(crate) async fn run(args: &RpcArgs) -> Result<Report> {
    let window = args.window as usize;
    let caller = Caller::connect(args.client, &args.url, window).await?;
    let (method, params, expected) = call_of(args.method);
    // One call first, so a wrong server fails at once with a clear message.
    let answer = caller.call(method, &params).await.context("first call")?;
    if answer != expected {
        bail!("{method} answered {answer}, expected {expected}: is this test-servers rpc?");
    }

    let planned = Budget::from_args(&args.budget, 100_000);
    let progress = Progress::new("rpc", planned, args.common.stall_timeout);
    let shared = Arc::new(Shared {
        caller: caller.clone(),
        method,
        params,
        expected,
        budget: Budget::start(planned),
        issued: AtomicU64::new(0),
        done: progress.counter(),
        errors: AtomicU64::new(0),
        first_error: Mutex::new(None),
        histogram: Mutex::new(report::new_histogram()),
    });
    let started = Instant::now();
    let workers: Vec<_> = (0..window)
        .map(|_| tokio::spawn(worker(Arc::clone(&shared))))
        .collect();
    progress
        .watch(async {
            for worker in workers {
                worker.await.context("an rpc worker panicked")?;
            }
            anyhow::Ok(())
        })
        .await?;
    let elapsed = started.elapsed();
    caller.close().await.context("closing the connection")?;

    let histogram = shared
        .histogram
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .clone();
    let errors = shared.errors.load(Ordering::Relaxed);
    let mut report = Report::new("rpc", args.client.name(), &args.url, "calls/s")
        .param("window", args.window)
        .param("method", method);
    report.timed(histogram.len(), 0, elapsed);
    report.errors = errors;
    let first_error = shared
        .first_error
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .take();
    if let Some(error) = first_error {
        eprintln!("note: {errors} calls failed; the first: {error}");
        report.figures.insert("first_error".into(), error.into());
    }
    report.histogram(LATENCY, &histogram)?;
    Ok(report)
}

/// Makes calls one after another until the shared budget is spent.
async fn worker(shared: Arc<Shared>) {
    loop {
        let number = shared.issued.fetch_add(1, Ordering::Relaxed);
        if shared.budget.exhausted_now(number) {
            return;
        }
        let started = Instant::now();
        let outcome = shared.caller.call(shared.method, &shared.params).await;
        let elapsed = started.elapsed();
        match outcome {
            Ok(answer) if answer == shared.expected => {
                let mut histogram = shared.histogram.lock().unwrap_or_else(|e| e.into_inner());
                report::record(&mut histogram, elapsed);
            }
            other => {
                shared.errors.fetch_add(1, Ordering::Relaxed);
                let what = match other {
                    Ok(answer) => format!("unexpected answer {answer}"),
                    Err(e) => format!("{e:#}"),
                };
                let mut first = shared.first_error.lock().unwrap_or_else(|e| e.into_inner());
                first.get_or_insert(what);
                if shared.errors.load(Ordering::Relaxed) > 1000 {
                    return;
                }
            }
        }
        shared.done.fetch_add(1, Ordering::Relaxed);
    }
}
