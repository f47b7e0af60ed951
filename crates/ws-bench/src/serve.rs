//! `ws-bench serve`: the baseline servers (raw TCP echo/sink/counting sink, bare
//! tokio-tungstenite echo/sink, fastwebsockets echo/sink, a jsonrpsee JSON-RPC server), with
//! test-servers' contract: a JSON ready line on stdout once accepting, a `stopped` line at
//! exit (with message counts where the mode keeps them), stop on Ctrl-C or (with
//! --exit-on-stdin-eof) when stdin closes.

use std::io::Write;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use anyhow::{Context, Result};
use futures_util::{FutureExt, SinkExt, StreamExt};
use serde::Serialize;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::oneshot;

use crate::cli::{ServeArgs, ServeMode};
use crate::serve_fws;

/// Most echoes written between two flushes.
const MAX_BURST: usize = 256;

fn mode_name(mode: ServeMode) -> &'static str {
    match mode {
        ServeMode::TcpEcho => "tcp-echo",
        ServeMode::TcpSink => "tcp-sink",
        ServeMode::TungsteniteEcho => "tungstenite-echo",
        ServeMode::TungsteniteSink => "tungstenite-sink",
        ServeMode::FwsEcho => "fws-echo",
        ServeMode::FwsSink => "fws-sink",
        ServeMode::TcpCountSink => "tcp-count-sink",
        ServeMode::JsonrpseeRpc => "jsonrpsee-rpc",
    }
}

pub(crate) async fn run(args: &ServeArgs) -> Result<()> {
    let name = mode_name(args.mode);
    if args.mode == ServeMode::JsonrpseeRpc {
        return serve_jsonrpsee(args, name).await;
    }
    let listener = TcpListener::bind((args.host, args.port))
        .await
        .with_context(|| format!("cannot listen on {}:{}", args.host, args.port))?;
    let addr = listener.local_addr().context("no local address")?;
    let scheme = match args.mode {
        ServeMode::TcpEcho | ServeMode::TcpSink | ServeMode::TcpCountSink => "tcp",
        ServeMode::TungsteniteEcho
        | ServeMode::TungsteniteSink
        | ServeMode::FwsEcho
        | ServeMode::FwsSink
        | ServeMode::JsonrpseeRpc => "ws",
    };
    let stop = stop_signal(args.exit_on_stdin_eof);
    emit(&Event {
        event: "listening",
        mode: name,
        addr: Some(addr.to_string()),
        url: Some(format!("{scheme}://{addr}/")),
        reason: None,
        connections: None,
        counts: None,
    })?;

    let accepted = Arc::new(AtomicU64::new(0));
    tokio::pin!(stop);
    let reason = loop {
        tokio::select! {
            reason = &mut stop => break reason,
            connection = listener.accept() => {
                let Ok((stream, _)) = connection else { continue };
                accepted.fetch_add(1, Ordering::Relaxed);
                let _ = stream.set_nodelay(true);
                let mode = args.mode;
                tokio::spawn(async move {
                    if let Err(e) = serve(mode, stream).await {
                        // `compare connect` resets its raw TCP connections on purpose.
                        let reset = e.downcast_ref::<std::io::Error>().is_some_and(|e| {
                            e.kind() == std::io::ErrorKind::ConnectionReset
                        });
                        if !reset {
                            eprintln!("connection ended with an error: {e:#}");
                        }
                    }
                });
            }
        }
    };
    emit(&Event {
        event: "stopped",
        mode: name,
        addr: None,
        url: None,
        reason: Some(reason),
        connections: Some(accepted.load(Ordering::Relaxed)),
        counts: Some(Counts::now()),
    })
}

/// jsonrpsee runs its own accept loop: start it, print the ready line, stop it on the signal.
async fn serve_jsonrpsee(args: &ServeArgs, name: &'static str) -> Result<()> {
    let (addr, handle) = crate::jsonrpsee_rpc::start_server((args.host, args.port).into()).await?;
    let stop = stop_signal(args.exit_on_stdin_eof);
    emit(&Event {
        event: "listening",
        mode: name,
        addr: Some(addr.to_string()),
        url: Some(format!("ws://{addr}/")),
        reason: None,
        connections: None,
        counts: None,
    })?;
    let reason = stop.await;
    let _ = handle.stop();
    handle.stopped().await;
    emit(&Event {
        event: "stopped",
        mode: name,
        addr: None,
        url: None,
        reason: Some(reason),
        connections: None,
        counts: None,
    })
}

/// A line on stdout; fields in this order, `event` first, like test-servers' events.
#[derive(Debug, Serialize)]
struct Event {
    event: &'static str,
    mode: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    addr: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    url: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    reason: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    connections: Option<u64>,
    /// Messages and bytes in and out (fws and tcp-count-sink modes count them).
    #[serde(flatten, skip_serializing_if = "Option::is_none")]
    counts: Option<Counts>,
}

#[derive(Debug, Serialize)]
struct Counts {
    messages_in: u64,
    messages_out: u64,
    bytes_in: u64,
    bytes_out: u64,
}

impl Counts {
    fn now() -> Self {
        let get = |counter: &AtomicU64| counter.load(Ordering::Relaxed);
        Self {
            messages_in: get(&serve_fws::MESSAGES_IN),
            messages_out: get(&serve_fws::MESSAGES_OUT),
            bytes_in: get(&serve_fws::BYTES_IN),
            bytes_out: get(&serve_fws::BYTES_OUT),
        }
    }
}

/// Resolves with the reason to stop: Ctrl-C, or stdin closing when asked to watch it.
async fn stop_signal(watch_stdin: bool) -> &'static str {
    let (closed, stdin_closed) = oneshot::channel();
    if watch_stdin {
        std::thread::spawn(move || {
            let mut sink = Vec::new();
            let _ = std::io::Read::read_to_end(&mut std::io::stdin().lock(), &mut sink);
            let _ = closed.send(());
        });
    } else {
        std::mem::forget(closed);
    }
    tokio::select! {
        _ = tokio::signal::ctrl_c() => "interrupt",
        _ = stdin_closed => "stdin closed",
    }
}

fn emit(event: &Event) -> Result<()> {
    let line = serde_json::to_string(event).context("serializing an event")?;
    let mut stdout = std::io::stdout().lock();
    writeln!(stdout, "{line}")
        .and_then(|()| stdout.flush())
        .context("writing to stdout")
}

async fn serve(mode: ServeMode, mut stream: TcpStream) -> Result<()> {
    match mode {
        ServeMode::TcpEcho => {
            let (mut read, mut write) = stream.split();
            tokio::io::copy(&mut read, &mut write).await?;
            write.shutdown().await?;
        }
        ServeMode::TcpSink => {
            let mut buffer = vec![0_u8; 64 << 10];
            while stream.read(&mut buffer).await? > 0 {}
            stream.shutdown().await?;
        }
        ServeMode::TungsteniteEcho => {
            let mut ws = tokio_tungstenite::accept_async(stream).await?;
            while let Some(message) = ws.next().await {
                let message = message?;
                if !(message.is_binary() || message.is_text()) {
                    continue;
                }
                ws.feed(message).await?;
                // Echo whatever else is already readable before flushing once.
                for _ in 1..MAX_BURST {
                    match ws.next().now_or_never() {
                        Some(Some(Ok(m))) if m.is_binary() || m.is_text() => ws.feed(m).await?,
                        Some(Some(Ok(_))) => {}
                        Some(Some(Err(e))) => return Err(e.into()),
                        Some(None) | None => break,
                    }
                }
                ws.flush().await?;
            }
        }
        ServeMode::TungsteniteSink => {
            let mut ws = tokio_tungstenite::accept_async(stream).await?;
            while let Some(message) = ws.next().await {
                message?;
            }
        }
        ServeMode::FwsEcho => serve_fws::fastwebsockets(stream, true).await?,
        ServeMode::FwsSink => serve_fws::fastwebsockets(stream, false).await?,
        ServeMode::TcpCountSink => serve_fws::tcp_count_sink(stream).await?,
        ServeMode::JsonrpseeRpc => anyhow::bail!("jsonrpsee accepts its own connections"),
    }
    Ok(())
}
