//! `ws-bench soak`: echo clients on resilient connections and RPC clients, each at a fixed
//! rate (open model), for a given time, meant to run through `test-servers chaos` while
//! faults are injected (`cargo xtask soak` does that). Every message and call is accounted
//! for: an echo message ends delivered (its echo came back), failed (handed back to its
//! sender) or lost (neither, after the drain); a call ends answered, wrong, interrupted (a
//! non-idempotent call cut by a drop), failed, timed out or lost. Prints a `progress` JSON
//! line every second and a `summary` line at the end, on stdout; `ok` in the summary is false
//! when anything was lost, corrupted or wrong, a call failed with an error a fault does not
//! explain, or calls were made and none was answered. A call's timeout is not judged here
//! (a fault longer than the timeout explains it): `cargo xtask soak` gives calls a timeout
//! longer than any of its faults and judges them.

mod echo;
mod rpc;
mod tally;

use std::sync::Arc;
use std::time::Duration;

use anyhow::{Result, bail};
use serde_json::{Value, json};
use tokio::task::JoinSet;
use tokio::time::{Instant, MissedTickBehavior};
use ws_client::TransportConfig;
use ws_client::resilient::{HeartbeatConfig, ReconnectPolicy, ResilientConfig};

use crate::cli::SoakArgs;
use echo::EchoPlan;
use rpc::RpcPlan;
use tally::{Tally, get};

/// Clients start spread over this time, so they do not send in lockstep.
const RAMP_UP: Duration = Duration::from_secs(1);
/// Time between start-up and the first client's start.
const LEAD_IN: Duration = Duration::from_millis(20);
/// Time between two `progress` lines.
const PROGRESS_EVERY: Duration = Duration::from_secs(1);

/// The run's clock, shared by every client.
#[derive(Debug)]
pub(crate) struct Plan {
    /// Stamps in messages count nanoseconds from here.
    pub(crate) epoch: Instant,
    /// Clients stop sending here.
    pub(crate) end: Instant,
    /// Echo clients stop waiting for echoes here (sooner if nothing is left).
    pub(crate) drain_end: Instant,
}

/// Runs the soak; returns whether nothing was lost, corrupted or wrong.
pub(crate) async fn run(args: &SoakArgs) -> Result<bool> {
    check(args)?;
    let epoch = Instant::now();
    let start = epoch + LEAD_IN;
    let plan = Arc::new(Plan {
        epoch,
        end: start + args.duration,
        drain_end: start + args.duration + args.drain,
    });
    let tally = Arc::new(Tally::new());
    let mut clients = JoinSet::new();
    let spread = |id: u32, of: u32| start + RAMP_UP.mul_f64(f64::from(id) / f64::from(of));
    if let Some(url) = &args.echo_url {
        let echo = Arc::new(EchoPlan {
            url: url.clone(),
            interval: Duration::from_secs_f64(1.0 / args.echo_rate),
            heartbeat: HeartbeatConfig {
                interval: args.heartbeat_interval,
                timeout: args.heartbeat_timeout,
            },
        });
        for id in 0..args.echo_clients {
            let begin = spread(id, args.echo_clients);
            let (echo, plan, tally) = (Arc::clone(&echo), Arc::clone(&plan), Arc::clone(&tally));
            clients.spawn(echo::run(id, begin, echo, plan, tally));
        }
    }
    if let Some(url) = &args.rpc_url {
        let rpc = Arc::new(RpcPlan {
            url: url.clone(),
            interval: Duration::from_secs_f64(1.0 / args.rpc_rate),
            timeout: args.rpc_timeout,
            heartbeat: HeartbeatConfig {
                interval: args.heartbeat_interval,
                timeout: args.heartbeat_timeout,
            },
        });
        for id in 0..args.rpc_clients {
            let begin = spread(id, args.rpc_clients);
            let (rpc, plan, tally) = (Arc::clone(&rpc), Arc::clone(&plan), Arc::clone(&tally));
            clients.spawn(rpc::run(id, begin, rpc, plan, tally));
        }
    }

    let mut ticks = tokio::time::interval_at(epoch + PROGRESS_EVERY, PROGRESS_EVERY);
    ticks.set_missed_tick_behavior(MissedTickBehavior::Delay);
    let mut failure = None;
    loop {
        tokio::select! {
            joined = clients.join_next() => match joined {
                None => break,
                Some(Ok(Ok(()))) => {}
                Some(Ok(Err(e))) => {
                    failure.get_or_insert(e);
                }
                Some(Err(e)) => {
                    failure.get_or_insert(anyhow::anyhow!("a client task panicked: {e}"));
                }
            },
            _ = ticks.tick() => println!("{}", tally.progress(epoch.elapsed().as_secs_f64())),
        }
    }
    if let Some(e) = failure {
        return Err(e);
    }
    let drain_s = Instant::now().saturating_duration_since(plan.end);
    let summary = summary(args, &tally, drain_s);
    println!("{summary}");
    Ok(summary["ok"] == true)
}

/// Refuses settings that cannot run.
fn check(args: &SoakArgs) -> Result<()> {
    if args.echo_url.is_none() && args.rpc_url.is_none() {
        bail!("give --echo-url, --rpc-url or both");
    }
    for (rate, name) in [
        (args.echo_rate, "--echo-rate"),
        (args.rpc_rate, "--rpc-rate"),
    ] {
        if !(rate > 0.0 && rate.is_finite()) {
            bail!("{name} must be a positive number per second");
        }
    }
    if args.heartbeat_interval.is_zero() || args.heartbeat_timeout.is_zero() {
        bail!("--heartbeat-interval and --heartbeat-timeout must be above zero");
    }
    Ok(())
}

/// The `summary` line: every count, the lost ones, latencies, the verdict.
fn summary(args: &SoakArgs, tally: &Tally, drain: Duration) -> Value {
    let (echo, rpc) = (&tally.echo, &tally.rpc);
    // After the drain, a message neither delivered nor failed is lost silently.
    let lost = echo.unresolved();
    let mut problems = Vec::new();
    for (count, what) in [
        (lost, "echo messages lost silently"),
        (get(&echo.corrupt), "corrupt echoes"),
        (get(&rpc.lost), "RPC calls lost"),
        (get(&rpc.wrong), "wrong RPC answers"),
        (
            get(&rpc.errors),
            "RPC calls failed with an error other than an interrupted echo",
        ),
        (rpc.in_flight(), "RPC calls unresolved"),
    ] {
        if count > 0 {
            problems.push(format!("{count} {what}"));
        }
    }
    // A lost request ends in its call's timeout: a run that answered nothing passes nothing.
    if get(&rpc.calls) > 0 && get(&rpc.ok) == 0 {
        problems.push(format!(
            "none of {} RPC calls was answered",
            get(&rpc.calls)
        ));
    }
    let mut echo_json = tally.echo_json();
    echo_json["lost"] = lost.into();
    echo_json["clients"] = args
        .echo_url
        .as_ref()
        .map_or(0, |_| args.echo_clients)
        .into();
    echo_json["rate_per_client"] = args.echo_rate.into();
    echo_json["latency"] = tally.echo_percentiles();
    let mut rpc_json = tally.rpc_json();
    rpc_json["clients"] = args.rpc_url.as_ref().map_or(0, |_| args.rpc_clients).into();
    rpc_json["rate_per_client"] = args.rpc_rate.into();
    rpc_json["latency"] = tally.rpc_percentiles();
    json!({
        "event": "summary",
        "duration_s": args.duration.as_secs_f64(),
        "drain_s": drain.as_secs_f64(),
        "echo": echo_json,
        "rpc": rpc_json,
        "rss_bytes": tally::rss_bytes(),
        "ok": problems.is_empty(),
        "problems": problems,
    })
}

/// How every soak client connects: quick reconnects (at most 2 s apart), the soak's
/// heartbeat, and the first connect retried (the proxies may still be starting).
pub(crate) fn resilient_config(url: &str, heartbeat: HeartbeatConfig) -> ResilientConfig {
    ResilientConfig {
        transport: TransportConfig {
            connect_timeout: Duration::from_secs(3),
            close_timeout: Duration::from_secs(2),
            ..TransportConfig::new(url)
        },
        reconnect: ReconnectPolicy {
            max_delay: Duration::from_secs(2),
            stable_after: Duration::from_secs(2),
            ..ReconnectPolicy::default()
        },
        heartbeat: Some(heartbeat),
        retry_first_connect: true,
        ..ResilientConfig::new(url)
    }
}
