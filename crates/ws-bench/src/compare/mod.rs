//! `compare`: ws-client against other clients (raw TCP, bare tokio-tungstenite,
//! fastwebsockets) and against itself on another server, all in one run on servers it
//! starts: `test-servers perf --threads 1` (/echo, /sink; `--tls` for wss://), `ws-bench
//! serve tcp-echo` / `tcp-count-sink` for raw TCP and `fws-echo` / `fws-sink` for the
//! fastwebsockets server. Every contender opens its persistent connection first; then they
//! take turns in short slices ([`crate::interleave`]), and each round gives ws-client's
//! figure over each other contender's. One-way slices end when the sink confirms every
//! message (a pong after them; the raw TCP sink's count); at the end every server's counts
//! are checked against what was sent.

pub(crate) mod args;
mod client;
mod drive;
mod open;
mod report;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};

use self::args::{CompareArgs, ContenderKind, Scenario};
use self::drive::{Contender, Load};
use self::open::{Endpoint, Tls};
use crate::compression::server::{self, PerfServer};
use crate::interleave::Turn;
use crate::progress::{Planned, Progress};
use crate::report::Report;

pub(crate) use self::report::emit;

/// The servers a run started, by role.
#[derive(Debug, Default)]
struct Servers {
    perf: Option<PerfServer>,
    fws: Option<PerfServer>,
    tcp: Option<PerfServer>,
}

pub(crate) async fn run(args: &CompareArgs) -> Result<Report> {
    check(args)?;
    let test_servers = server::locate(args.server_bin.as_deref())?;
    let me = std::env::current_exe().context("cannot find this executable's path")?;
    let echo = args.scenario != Scenario::OneWay;
    let kinds = &args.contenders;
    let mut servers = Servers::default();
    let needs = |wanted: &[ContenderKind]| kinds.iter().any(|k| wanted.contains(k));
    use ContenderKind as K;
    if needs(&[K::WsClient, K::Tungstenite, K::Fastwebsockets]) {
        let mut perf_args = vec!["perf", "--threads", "1"];
        if args.tls {
            perf_args.push("--tls");
        }
        servers.perf = Some(PerfServer::start_with(&test_servers, &perf_args)?);
    }
    if needs(&[K::WsClientFwsServer]) {
        let mode = if echo { "fws-echo" } else { "fws-sink" };
        servers.fws = Some(PerfServer::start_with(&me, &["serve", mode])?);
    }
    if needs(&[K::Tcp]) {
        let mode = if echo { "tcp-echo" } else { "tcp-count-sink" };
        servers.tcp = Some(PerfServer::start_with(&me, &["serve", mode])?);
    }
    let path = if echo { "echo" } else { "sink" };
    let tls = match (&servers.perf, args.tls) {
        (Some(perf), true) => Some(tls_of(perf)?),
        _ => None,
    };
    let progress = Progress::new(
        &format!("compare {}", args.scenario.name()),
        Planned::Time(args.plan.planned(kinds.len())),
        args.common.stall_timeout,
    );
    let window = args.window as usize;
    let load = Load {
        scenario: args.scenario,
        payload: vec![0x2a; args.size],
        window,
        chunk: match args.scenario {
            Scenario::Echo => (window / 4).max(1),
            _ => (65_536 / args.size.max(1)).clamp(1, 4096),
        },
        done: progress.counter(),
    };
    let mut contenders = Vec::with_capacity(kinds.len());
    for &kind in kinds {
        let (server, path) = match kind {
            K::WsClient | K::Tungstenite | K::Fastwebsockets => (&servers.perf, path),
            K::WsClientFwsServer => (&servers.fws, ""),
            K::Tcp => (&servers.tcp, ""),
        };
        let server = server.as_ref().context("the server was started")?;
        let endpoint = endpoint(&server.url, path, tls.clone())?;
        contenders.push(Contender::open(kind, endpoint, &load).await?);
    }
    let rounds = progress
        .watch(args.plan.run(contenders.len(), async |turn: Turn| {
            // Boxed: a slice's future is large (histograms, several clients' states).
            Box::pin(contenders[turn.contender].slice(&load, turn.until)).await
        }))
        .await?;
    let mut sent = Vec::with_capacity(contenders.len());
    for contender in contenders {
        let kind = contender.kind;
        sent.push((kind, contender.close().await?));
    }
    let counted = verify(servers, &sent, echo)?;
    let url = servers_url(args, &test_servers);
    let mut report = report::report(args, &url, &rounds);
    report::accounted(&mut report, &sent, counted);
    Ok(report)
}

/// The contenders must start with ws-client, appear once each, and suit --tls.
fn check(args: &CompareArgs) -> Result<()> {
    let kinds = &args.contenders;
    if kinds.first() != Some(&ContenderKind::WsClient) {
        bail!("--contenders must start with ws-client, the subject of every ratio");
    }
    for (i, kind) in kinds.iter().enumerate() {
        if kinds[..i].contains(kind) {
            bail!("--contenders names {} twice", kind.name());
        }
        if args.tls && !matches!(kind, ContenderKind::WsClient | ContenderKind::Tungstenite) {
            bail!(
                "--tls compares ws-client with tungstenite only, not {}",
                kind.name()
            );
        }
    }
    if args.size == 0 {
        bail!("--size must be at least 1");
    }
    Ok(())
}

/// `base` (a ready line's URL, ending in `/`) with `path`, and its socket address.
fn endpoint(base: &str, path: &str, tls: Option<Tls>) -> Result<Endpoint> {
    let url = format!("{base}{path}");
    let authority = url
        .split_once("://")
        .map(|(_, rest)| rest.split('/').next().unwrap_or(rest))
        .with_context(|| format!("{url}: no scheme"))?;
    let addr: SocketAddr = authority
        .parse()
        .with_context(|| format!("{url}: the server's address is not an IP:port"))?;
    let tls = tls.filter(|_| url.starts_with("wss://"));
    Ok(Endpoint { url, addr, tls })
}

fn tls_of(perf: &PerfServer) -> Result<Tls> {
    let ca_file = PathBuf::from(
        perf.ready["ca_cert"]
            .as_str()
            .with_context(|| format!("the --tls ready line names no ca_cert: {}", perf.ready))?,
    );
    let config = client::rustls_config(&ca_file)?;
    Ok(Tls { ca_file, config })
}

/// Every server counted what its contenders sent (and the echo servers sent it all back);
/// returns each server's `stopped` line by role (`perf`, `fws`, `tcp`).
fn verify(
    servers: Servers,
    sent: &[(ContenderKind, u64)],
    echo: bool,
) -> Result<serde_json::Map<String, serde_json::Value>> {
    let mut lines = serde_json::Map::new();
    use ContenderKind as K;
    let total = |kinds: &[ContenderKind]| -> u64 {
        sent.iter()
            .filter(|(k, _)| kinds.contains(k))
            .map(|(_, n)| n)
            .sum()
    };
    let checks = [
        (
            "perf",
            servers.perf,
            total(&[K::WsClient, K::Tungstenite, K::Fastwebsockets]),
        ),
        ("fws", servers.fws, total(&[K::WsClientFwsServer])),
    ];
    for (role, server, expected) in checks {
        let Some(server) = server else { continue };
        let line = server.stop_line()?;
        let (inbound, outbound) = (line["messages_in"].as_u64(), line["messages_out"].as_u64());
        let expected_out = if echo { expected } else { 0 };
        if inbound != Some(expected) || outbound != Some(expected_out) {
            bail!(
                "sent {expected} messages ({expected_out} to come back), the server counted \
                 {line}"
            );
        }
        lines.insert(role.into(), line);
    }
    if let Some(tcp) = servers.tcp {
        lines.insert("tcp".into(), tcp.stop_line()?);
    }
    Ok(lines)
}

fn servers_url(args: &CompareArgs, test_servers: &Path) -> String {
    format!(
        "{} perf --threads 1{} (and ws-bench serve baselines)",
        test_servers
            .file_name()
            .map_or_else(|| "test-servers".into(), |n| n.to_string_lossy()),
        if args.tls { " --tls" } else { "" }
    )
}
