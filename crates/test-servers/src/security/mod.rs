//! `security` mode: a hostile server for testing what clients do under attack. The URL
//! path picks the attack (`ws://host:port/reserved-bits`); `--list` prints the catalogue.
//!
//! It runs on the shared accept loop (`server::run`: ready line, `--max-connections`,
//! graceful shutdown, `stopped` line) as a [`Service`] of its own that takes the raw TCP
//! stream, because most attacks happen during or right after the handshake, where a
//! WebSocket library would not misbehave.
//! Every connection is bounded by `--max-scenario-time` and memory stays bounded: the
//! request is read up to 16 KiB, client frames are skimmed, large messages are streamed.
//! Each connection's end is reported on stdout (a `scenario` event: the client's close
//! code, bytes written, time taken).

pub mod behaviour;
pub mod catalogue;
pub mod conn;
pub mod deflate;
pub mod frame;
pub mod handshake;
pub mod list;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::Context as _;
use serde_json::{Map, Value};
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;

use crate::cli::SecurityArgs;
use crate::events::ScenarioEnded;
use crate::server::{self, Context, Service};
use crate::stats::Stats;
use catalogue::{Play, Scenario};
use conn::Conn;
use handshake::{RequestError, plain_response};

/// The hostile server: a [`Service`] on the shared accept loop, taking raw connections.
#[derive(Debug)]
struct SecurityServer {
    /// Connections served per scenario name (only those run at least once), for the
    /// `stopped` line.
    runs: Mutex<BTreeMap<&'static str, u64>>,
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
    tracing::info!(scenarios = catalogue::SCENARIOS.len(), "security mode");
    let security = SecurityServer {
        runs: Mutex::new(BTreeMap::new()),
        handshake_timeout: args.server.handshake_timeout,
        scenario_time: args.max_scenario_time,
    };
    server::run(mode, &args.server, security).await
}

impl Service for SecurityServer {
    async fn serve_tcp(
        self: Arc<Self>,
        tcp: TcpStream,
        peer: SocketAddr,
        admitted: bool,
        context: Context,
    ) {
        self.serve(tcp, peer, admitted, &context).await;
    }

    fn stopped_extra(&self) -> Map<String, Value> {
        let runs = self.runs.lock().unwrap_or_else(|e| e.into_inner());
        let scenarios = runs
            .iter()
            .map(|(name, count)| ((*name).to_owned(), Value::from(*count)))
            .collect();
        Map::from_iter([("scenarios".to_owned(), Value::Object(scenarios))])
    }
}

impl SecurityServer {
    /// Serves one connection: reads the upgrade request, routes it, plays the attack
    /// within the scenario time, and says goodbye at shutdown.
    async fn serve(&self, mut tcp: TcpStream, peer: SocketAddr, admitted: bool, context: &Context) {
        let _ = tcp.set_nodelay(true);
        let stats = &context.stats;
        let read = tokio::time::timeout(self.handshake_timeout, handshake::read_request(&mut tcp));
        let request = tokio::select! {
            read = read => read,
            () = context.shutdown.cancelled() => return,
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
                    return self.attack(conn, scenario, context).await;
                }
            },
        };
        Stats::bump(&stats.connections_rejected);
        if let Some(response) = refusal {
            let _ = tokio::time::timeout(self.handshake_timeout, async {
                let _ = tcp.write_all(response.as_bytes()).await;
                let _ = tcp.shutdown().await;
            })
            .await;
        }
    }

    /// Plays `scenario` on `conn`, bounded by the scenario time and the shutdown.
    async fn attack(&self, mut conn: Conn, scenario: &'static Scenario, context: &Context) {
        let stats = &context.stats;
        Stats::bump(&stats.connections_accepted);
        stats.connections_active.fetch_add(1, Ordering::Relaxed);
        *self
            .runs
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .entry(scenario.name)
            .or_default() += 1;
        let peer = conn.peer;
        let started = Instant::now();
        tracing::debug!(%peer, scenario = scenario.name, attack = scenario.attack, "playing");
        let outcome = tokio::select! {
            played = play(&mut conn, scenario) => match played {
                Ok(()) => "finished",
                Err(_) => "connection failed",
            },
            () = tokio::time::sleep(self.scenario_time) => "scenario time reached",
            () = context.shutdown.cancelled() => "shutdown",
        };
        if outcome == "shutdown" {
            conn.going_away().await;
        }
        crate::events::emit(&ScenarioEnded {
            event: "scenario",
            name: scenario.name,
            outcome,
            client_close: conn.client_close.map(|code| code.unwrap_or(1005)),
            bytes_out: conn.written,
            elapsed_ms: u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX),
        });
        tracing::debug!(
            %peer,
            scenario = scenario.name,
            outcome,
            client_close = ?conn.client_close,
            "scenario ended"
        );
        stats.connections_active.fetch_sub(1, Ordering::Relaxed);
    }
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
        Play::Deflate(attack) => attack.play(conn).await,
    }
}
