//! The JSON-RPC baseline: bare tokio-tungstenite + serde_json, calls in flight matched by
//! id through a `HashMap`, a writer task that flushes once per burst and a reader task.
//! Written the way a careful user would without a library, to measure `RpcClient` against.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{Context, Result, anyhow, bail};
use futures_util::stream::{SplitSink, SplitStream};
use futures_util::{SinkExt, StreamExt};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;
use tokio_tungstenite::tungstenite::Message;

use crate::net::TungStream;
use crate::rpc_answer::Answer;

/// Most messages written between two flushes (as in ws-client's RpcClient).
const MAX_BURST: usize = 256;
/// How long closing may take.
const CLOSE_TIMEOUT: Duration = Duration::from_secs(5);

type Outcome = Result<Answer, String>;
type PendingCalls = Arc<Mutex<HashMap<u64, oneshot::Sender<Outcome>>>>;

/// A minimal JSON-RPC client. Cheap to clone.
#[derive(Debug, Clone)]
pub(crate) struct TungRpc {
    outbox: mpsc::Sender<Message>,
    pending: PendingCalls,
    next_id: Arc<AtomicU64>,
    reader: Arc<Mutex<Option<JoinHandle<()>>>>,
}

#[derive(Serialize)]
struct Request<'a> {
    jsonrpc: &'static str,
    method: &'a str,
    params: &'a Value,
    id: u64,
}

#[derive(Deserialize)]
struct Response {
    id: Option<u64>,
    result: Option<Answer>,
    error: Option<Value>,
}

impl TungRpc {
    /// Connects to `url` with tokio-tungstenite's defaults (TCP_NODELAY on).
    pub(crate) async fn connect(url: &str, window: usize) -> Result<Self> {
        let (ws, _) = tokio_tungstenite::connect_async_with_config(url, None, true)
            .await
            .with_context(|| format!("tokio-tungstenite cannot connect to {url}"))?;
        let (sink, stream) = ws.split();
        let (outbox, queued) = mpsc::channel(window + MAX_BURST);
        let pending = PendingCalls::default();
        tokio::spawn(write_loop(sink, queued));
        let reader = tokio::spawn(read_loop(stream, Arc::clone(&pending)));
        Ok(Self {
            outbox,
            pending,
            next_id: Arc::new(AtomicU64::new(1)),
            reader: Arc::new(Mutex::new(Some(reader))),
        })
    }

    /// Calls `method` and returns its result (an error object becomes an error).
    pub(crate) async fn call(&self, method: &str, params: Value) -> Result<Answer> {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let text = serde_json::to_string(&Request {
            jsonrpc: "2.0",
            method,
            params: &params,
            id,
        })?;
        let (reply, answer) = oneshot::channel();
        self.lock().insert(id, reply);
        if self.outbox.send(Message::text(text)).await.is_err() {
            self.lock().remove(&id);
            bail!("the connection is closed");
        }
        answer
            .await
            .map_err(|_| anyhow!("the connection closed before the answer"))?
            .map_err(|error| anyhow!("{method} failed: {error}"))
    }

    /// Closes the connection and waits for the reader to see its end.
    pub(crate) async fn close(&self) -> Result<()> {
        let _ = self.outbox.send(Message::Close(None)).await;
        let reader = self.reader.lock().unwrap_or_else(|e| e.into_inner()).take();
        if let Some(reader) = reader {
            tokio::time::timeout(CLOSE_TIMEOUT, reader)
                .await
                .context("the server did not answer our close")?
                .context("the reader panicked")?;
        }
        Ok(())
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<u64, oneshot::Sender<Outcome>>> {
        self.pending.lock().unwrap_or_else(|e| e.into_inner())
    }
}

async fn write_loop(mut sink: SplitSink<TungStream, Message>, mut queued: mpsc::Receiver<Message>) {
    while let Some(first) = queued.recv().await {
        let mut next = Some(first);
        let mut written = 0;
        while let Some(message) = next.take() {
            if sink.feed(message).await.is_err() {
                return;
            }
            written += 1;
            if written < MAX_BURST {
                next = queued.try_recv().ok();
            }
        }
        if sink.flush().await.is_err() {
            return;
        }
    }
}

async fn read_loop(mut stream: SplitStream<TungStream>, pending: PendingCalls) {
    while let Some(Ok(message)) = stream.next().await {
        let text = match message {
            Message::Text(text) => text,
            Message::Close(_) => break,
            _ => continue,
        };
        let Ok(response) = serde_json::from_str::<Response>(&text) else {
            continue;
        };
        let Some(id) = response.id else { continue };
        let waiter = pending
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&id);
        if let Some(waiter) = waiter {
            let answer = match (response.result, response.error) {
                (_, Some(error)) => Err(error.to_string()),
                (Some(result), None) => Ok(result),
                (None, None) => Err("a response with neither result nor error".into()),
            };
            let _ = waiter.send(answer);
        }
    }
    // Wake every caller still waiting: their senders are dropped.
    pending.lock().unwrap_or_else(|e| e.into_inner()).clear();
}
