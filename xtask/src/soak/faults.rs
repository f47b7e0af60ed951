//! The soak's fault schedule and the chaos proxies' control API. A 16 s cycle repeats from
//! 2 s into the run: cuts (every open connection reset, and reconnects reset for 200 ms), a
//! latency spike (200 ms ± 50 each way for 2 s), a black hole (2.5 s, so the echo clients'
//! 1 s + 1 s heartbeat finds it) and a short "down" (every connection reset, new ones refused
//! for 1 s). Only whole faults that end 3 s before the clients stop sending are scheduled,
//! and every fault is cleared then, so the drain runs on a healed network.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use anyhow::{Context, Result, bail};

/// The first fault starts this far into the run.
const FIRST: Duration = Duration::from_secs(2);
/// The schedule repeats with this period.
const CYCLE: Duration = Duration::from_secs(16);
/// Every fault is cleared this long before the clients stop sending.
const HEAL_BEFORE_END: Duration = Duration::from_secs(3);
/// Longest time one control request may take.
const CONTROL_TIMEOUT: Duration = Duration::from_secs(5);

/// A kind of fault.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Fault {
    /// Every open connection reset (RST); new ones too while it lasts.
    Cut,
    /// Latency with jitter, both ways.
    Latency,
    /// Nothing forwarded either way, sockets kept open.
    BlackHole,
    /// Every open connection reset, new ones refused (reset on accept).
    Down,
}

impl Fault {
    /// Every kind, in report order.
    pub(crate) const ALL: [Fault; 4] = [Fault::Cut, Fault::Latency, Fault::BlackHole, Fault::Down];

    /// Its name in the report.
    pub(crate) fn name(self) -> &'static str {
        match self {
            Fault::Cut => "cuts",
            Fault::Latency => "latency_spikes",
            Fault::BlackHole => "black_holes",
            Fault::Down => "downs",
        }
    }

    /// The `PATCH /faults` bodies that start and end it.
    fn bodies(self) -> (&'static str, &'static str) {
        match self {
            Fault::Cut => (r#"{"reset_after_ms":0}"#, r#"{"reset_after_ms":null}"#),
            Fault::Latency => (
                r#"{"latency_ms":200,"jitter_ms":50}"#,
                r#"{"latency_ms":0,"jitter_ms":0}"#,
            ),
            Fault::BlackHole => (r#"{"black_hole":true}"#, r#"{"black_hole":false}"#),
            Fault::Down => (
                r#"{"down":true,"reset_after_ms":0}"#,
                r#"{"down":false,"reset_after_ms":null}"#,
            ),
        }
    }
}

/// One cycle: (start, length, fault).
const PATTERN: [(Duration, Duration, Fault); 6] = [
    (Duration::ZERO, Duration::from_millis(200), Fault::Cut),
    (
        Duration::from_secs(3),
        Duration::from_secs(2),
        Fault::Latency,
    ),
    (
        Duration::from_secs(6),
        Duration::from_millis(200),
        Fault::Cut,
    ),
    (
        Duration::from_secs(8),
        Duration::from_millis(2500),
        Fault::BlackHole,
    ),
    (
        Duration::from_millis(11_500),
        Duration::from_millis(200),
        Fault::Cut,
    ),
    (Duration::from_secs(13), Duration::from_secs(1), Fault::Down),
];

/// What a step does to every proxy.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Action {
    /// `PATCH /faults` with this body; `Some` when it starts a fault.
    Patch(&'static str, Option<Fault>),
    /// `POST /reset`: every fault off.
    Heal,
}

/// A step of the schedule, `at` from the start of the run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Step {
    pub(crate) at: Duration,
    pub(crate) action: Action,
}

/// The schedule for clients that send for `duration`: whole faults only, ending by the heal,
/// which comes [`HEAL_BEFORE_END`] before the end (the last step).
pub(crate) fn schedule(duration: Duration) -> Vec<Step> {
    let heal = duration.saturating_sub(HEAL_BEFORE_END);
    let mut steps = Vec::new();
    let mut cycle = FIRST;
    while cycle < heal {
        for (start, length, fault) in PATTERN {
            let (on, off) = fault.bodies();
            if cycle + start + length <= heal {
                steps.push(Step {
                    at: cycle + start,
                    action: Action::Patch(on, Some(fault)),
                });
                steps.push(Step {
                    at: cycle + start + length,
                    action: Action::Patch(off, None),
                });
            }
        }
        cycle += CYCLE;
    }
    steps.sort_by_key(|step| step.at);
    steps.push(Step {
        at: heal,
        action: Action::Heal,
    });
    steps
}

/// A chaos proxy's control API, at the `control` URL of its ready line.
#[derive(Debug, Clone)]
pub(crate) struct Control {
    addr: String,
}

impl Control {
    /// From the ready line's `control` (`http://127.0.0.1:PORT/`).
    pub(crate) fn new(url: &str) -> Result<Self> {
        let addr = url
            .strip_prefix("http://")
            .map(|rest| rest.trim_end_matches('/'))
            .filter(|addr| !addr.is_empty() && !addr.contains('/'))
            .with_context(|| format!("not a control API URL: {url:?}"))?;
        Ok(Self {
            addr: addr.to_owned(),
        })
    }

    /// Carries out `action`, failing unless the proxy answers 200.
    pub(crate) fn apply(&self, action: Action) -> Result<()> {
        match action {
            Action::Patch(body, _) => self.request("PATCH", "/faults", body),
            Action::Heal => self.request("POST", "/reset", ""),
        }
    }

    /// One HTTP/1.1 request, read to the end (the API closes after each answer).
    fn request(&self, method: &str, path: &str, body: &str) -> Result<()> {
        let shown = format!("{method} http://{}{path} {body}", self.addr);
        let exchange = || -> std::io::Result<String> {
            let mut tcp = TcpStream::connect(&self.addr)?;
            tcp.set_read_timeout(Some(CONTROL_TIMEOUT))?;
            tcp.set_write_timeout(Some(CONTROL_TIMEOUT))?;
            let request = format!(
                "{method} {path} HTTP/1.1\r\nHost: {}\r\nContent-Type: application/json\r\n\
                 Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
                self.addr,
                body.len()
            );
            tcp.write_all(request.as_bytes())?;
            let mut response = String::new();
            tcp.read_to_string(&mut response)?;
            Ok(response)
        };
        let response = exchange().with_context(|| format!("control request {shown}"))?;
        let status = response.split_whitespace().nth(1).unwrap_or_default();
        if status != "200" {
            bail!("control request {shown} was answered: {}", response.trim());
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn whole_faults_only_and_everything_healed_before_the_end() {
        let steps = schedule(Duration::from_secs(60));
        let last = steps.last().unwrap();
        assert_eq!(last.action, Action::Heal);
        assert_eq!(last.at, Duration::from_secs(57));
        assert!(steps.windows(2).all(|pair| pair[0].at <= pair[1].at));
        let started = |fault| {
            steps
                .iter()
                .filter(|step| matches!(step.action, Action::Patch(_, Some(f)) if f == fault))
                .count()
        };
        // Cycles at 2, 18, 34 and 50 s; the last one's faults up to 57 s.
        assert_eq!(started(Fault::Cut), 11);
        assert_eq!(started(Fault::Latency), 4);
        assert_eq!(started(Fault::BlackHole), 3);
        assert_eq!(started(Fault::Down), 3);
        // Each start has its end: as many clearing steps as starting ones.
        let clears = steps
            .iter()
            .filter(|step| matches!(step.action, Action::Patch(_, None)))
            .count();
        assert_eq!(clears, 21);
    }

    #[test]
    fn a_short_run_gets_what_fits_and_a_very_short_one_only_the_heal() {
        let steps = schedule(Duration::from_secs(10));
        let kinds: Vec<_> = steps.iter().map(|step| step.action).collect();
        assert_eq!(kinds.len(), 5, "{kinds:?}");
        assert!(
            matches!(kinds[0], Action::Patch(_, Some(Fault::Cut))),
            "{kinds:?}"
        );
        assert!(
            matches!(kinds[2], Action::Patch(_, Some(Fault::Latency))),
            "{kinds:?}"
        );
        assert_eq!(steps.last().unwrap().at, Duration::from_secs(7));
        assert_eq!(
            schedule(Duration::from_secs(2)),
            vec![Step {
                at: Duration::ZERO,
                action: Action::Heal
            }]
        );
    }

    #[test]
    fn control_urls_come_from_the_ready_line() {
        let addr = "127.0.0.1:0";
        let control = Control::new(&format!("http://{addr}/")).unwrap();
        assert_eq!(control.addr, addr);
        assert!(Control::new(&format!("ws://{addr}/")).is_err());
        assert!(Control::new("http:///").is_err());
    }
}
