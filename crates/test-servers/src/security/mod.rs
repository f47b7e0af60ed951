//! `security` mode: a hostile server for testing what clients do under attack. The URL
//! path picks the attack (`ws://host:port/reserved-bits`); `--list` prints the catalogue.
//!
//! It keeps the command-line contract of the other modes (ready line, `--max-connections`,
//! graceful shutdown, `stopped` line) with its own accept loop, because most attacks happen
//! during or right after the handshake, where a WebSocket library would not misbehave.
//! Every connection is bounded by `--max-scenario-time` and memory stays bounded: the
//! request is read up to 16 KiB, client frames are skimmed, large messages are streamed.

pub mod behaviour;
pub mod catalogue;
pub mod conn;
pub mod frame;
pub mod handshake;
pub mod list;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::Context;
use serde::Serialize;
use tokio::io::AsyncWriteExt;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;
use tokio_util::{sync::CancellationToken, task::TaskTracker};

use crate::cli::SecurityArgs;
use crate::events::{self, Listening};
use crate::shutdown::ShutdownSignal;
use crate::stats::{Counters, Stats};
use catalogue::{Play, Scenario};
use conn::Conn;
use handshake::{RequestError, plain_response};

/// How long connections get to finish at shutdown.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);

/// The final line of the `security` mode: the shared counters plus runs per scenario.
#[derive(Debug, Serialize)]
struct Stopped<'a> {
    event: &'static str,
    mode: &'a str,
    reason: &'a str,
    clean: bool,
    #[serde(flatten)]
    counters: Counters,
    /// Connections served per scenario name (only those run at least once).
    scenarios: BTreeMap<&'static str, u64>,
}

/// What every connection task shares.
#[derive(Debug)]
struct Shared {
    stats: Arc<Stats>,
    runs: Mutex<BTreeMap<&'static str, u64>>,
    shutdown: CancellationToken,
    handshake_timeout: Duration,
    scenario_time: Duration,
}

/// Runs `test-servers security` (or prints the catalogue with `--list`).
pub async fn run(mode: &'static str, args: &SecurityArgs) -> anyhow::Result<()> {
    if args.list {
        return match list::print(args.json) {
            // `test-servers security --list | head` is fine.
            Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
            printed => printed.context("cannot print the catalogue"),
        };
    }
    let server = &args.server;
    crate::fd_limit::raise(u64::from(server.max_connections) + 64);
    let requested = SocketAddr::new(server.host, server.port);
    let listener = TcpListener::bind(requested).await.with_context(|| {
        format!("cannot listen on {requested} (is another server using that port? try --port 0)")
    })?;
    let addr = listener
        .local_addr()
        .context("cannot read the bound address")?;
    let mut stop = ShutdownSignal::install(server.exit_on_stdin_eof)
        .context("cannot install signal handlers")?;
    let shared = Arc::new(Shared {
        stats: Arc::new(Stats::default()),
        runs: Mutex::new(BTreeMap::new()),
        shutdown: CancellationToken::new(),
        handshake_timeout: server.handshake_timeout,
        scenario_time: args.max_scenario_time,
    });
    let tracker = TaskTracker::new();
    let slots = Arc::new(Semaphore::new(server.max_connections as usize));

    events::emit(&Listening {
        event: "listening",
        mode,
        addr: addr.to_string(),
        url: format!("ws://{addr}/"),
    });
    tracing::info!(%addr, mode, scenarios = catalogue::SCENARIOS.len(), "listening");

    let stop = stop.wait();
    tokio::pin!(stop);
    let reason = loop {
        let (tcp, peer) = tokio::select! {
            reason = &mut stop => break reason,
            accepted = listener.accept() => match accepted {
                Ok(pair) => pair,
                Err(e) => {
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        let slot = Arc::clone(&slots).try_acquire_owned().ok();
        let shared = Arc::clone(&shared);
        tracker.spawn(async move {
            serve(tcp, peer, slot.is_some(), &shared).await;
            drop(slot);
        });
    };

    tracing::info!(reason, "shutting down");
    drop(listener);
    shared.shutdown.cancel();
    tracker.close();
    let drained = tokio::time::timeout(SHUTDOWN_GRACE, tracker.wait())
        .await
        .is_ok();
    let scenarios = shared
        .runs
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .clone();
    events::emit(&Stopped {
        event: "stopped",
        mode,
        reason,
        clean: drained,
        counters: shared.stats.snapshot(),
        scenarios,
    });
    Ok(())
}

/// Serves one connection: reads the upgrade request, routes it, plays the attack within
/// the scenario time, and says goodbye at shutdown.
async fn serve(mut tcp: TcpStream, peer: SocketAddr, admitted: bool, shared: &Shared) {
    let _ = tcp.set_nodelay(true);
    let stats = &shared.stats;
    let read = tokio::time::timeout(shared.handshake_timeout, handshake::read_request(&mut tcp));
    let request = tokio::select! {
        read = read => read,
        () = shared.shutdown.cancelled() => return,
    };
    let refusal = match request {
        Err(_) => {
            tracing::debug!(%peer, "no upgrade request in time");
            None
        }
        Ok(Err(RequestError::Closed)) => None,
        Ok(Err(RequestError::Malformed(e))) => Some(plain_response(
            "400 Bad Request",
            &format!("malformed request: {e}\n"),
        )),
        Ok(Err(RequestError::TooLarge)) => Some(plain_response(
            "431 Request Header Fields Too Large",
            "request too large\n",
        )),
        Ok(Ok(request)) => match catalogue::find(request.path()) {
            _ if !admitted => Some(plain_response(
                "503 Service Unavailable",
                "server at capacity (--max-connections); retry later\n",
            )),
            None => {
                tracing::debug!(%peer, target = %request.target, "unknown scenario");
                Some(plain_response(
                    "404 Not Found",
                    &format!(
                        "unknown scenario {:?}; the scenarios are:\n{}",
                        request.path(),
                        list::names()
                    ),
                ))
            }
            Some(scenario) => {
                let conn = Conn::new(tcp, peer, request, Arc::clone(stats));
                return attack(conn, scenario, shared).await;
            }
        },
    };
    Stats::bump(&stats.connections_rejected);
    if let Some(response) = refusal {
        let _ = tokio::time::timeout(shared.handshake_timeout, async {
            let _ = tcp.write_all(response.as_bytes()).await;
            let _ = tcp.shutdown().await;
        })
        .await;
    }
}

/// Plays `scenario` on `conn`, bounded by the scenario time and the shutdown.
async fn attack(mut conn: Conn, scenario: &'static Scenario, shared: &Shared) {
    let stats = &shared.stats;
    Stats::bump(&stats.connections_accepted);
    stats.connections_active.fetch_add(1, Ordering::Relaxed);
    *shared
        .runs
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .entry(scenario.name)
        .or_default() += 1;
    let peer = conn.peer;
    tracing::debug!(%peer, scenario = scenario.name, attack = scenario.attack, "playing");
    let outcome = tokio::select! {
        played = play(&mut conn, scenario) => match played {
            Ok(()) => "finished",
            Err(_) => "connection failed",
        },
        () = tokio::time::sleep(shared.scenario_time) => "scenario time reached",
        () = shared.shutdown.cancelled() => "shutdown",
    };
    if outcome == "shutdown" {
        conn.going_away().await;
    }
    tracing::debug!(
        %peer,
        scenario = scenario.name,
        outcome,
        client_close = ?conn.client_close,
        "scenario ended"
    );
    stats.connections_active.fetch_sub(1, Ordering::Relaxed);
}

/// The dispatcher: every kind of entry in the catalogue has its handler here.
async fn play(conn: &mut Conn, scenario: &Scenario) -> std::io::Result<()> {
    match scenario.play {
        Play::Handshake(attack) => attack.play(conn).await,
        Play::Frames(frames) => {
            conn.accept().await?;
            conn.send_frames(frames).await?;
            conn.answer_client().await;
            Ok(())
        }
        Play::Behaviour(attack) => {
            conn.accept().await?;
            attack.play(conn).await
        }
    }
}
