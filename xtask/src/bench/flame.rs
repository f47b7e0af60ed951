//! `cargo xtask bench --flamegraphs`: for a run that missed a target, which ws-bench command
//! is profiled (ws-client's side alone, a few seconds), how perf records it and the SVG's
//! name in `target/bench/`. Running perf and inferno is in flame/record.rs.

mod record;

pub(super) use record::{check_tools, record};

/// perf's sampling frequency (Hz): odd, so it does not beat with timers.
const FREQUENCY: &str = "499";
/// Call graphs from the stack (the release build has no frame pointers); 16 KiB per sample.
const CALL_GRAPH: &str = "dwarf,16384";
/// How long a profiled run measures (the open model's ramp-up comes before it, unrecorded).
const PROFILE_TIME: &str = "3s";
/// A `compare` profile: slices of ws-client alone (one more warms up), about 3 s.
const PROFILE_SLICES: (&str, &str) = ("10", "250ms");

/// How perf gets at the processes to profile.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Target {
    /// perf starts ws-bench and follows its children: the servers a `compare` run starts.
    Follow,
    /// ws-bench talks to the suite's server at this URL: once ws-bench runs, perf attaches to
    /// it and to that server by pid.
    Attach(String),
}

/// One profile to record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Profile {
    /// The SVG's file name in `target/bench/`.
    pub(super) svg: String,
    /// The flamegraph's title.
    pub(super) title: String,
    /// ws-bench's arguments.
    pub(super) args: Vec<String>,
    pub(super) target: Target,
    /// Milliseconds perf waits before it records (the open model's ramp-up).
    pub(super) delay_ms: u64,
}

/// The profile of run `contender` of group `group` (ws-bench arguments `args`), or `None`
/// for a kind of run that has no targets. `several_runs`: the group has more than one run,
/// so the file name names the run too.
pub(super) fn plan(
    group: &str,
    contender: &str,
    args: &[String],
    several_runs: bool,
) -> Option<Profile> {
    let mut svg = format!("flamegraph-{}", slug(group));
    if several_runs {
        svg.push('-');
        svg.push_str(&slug(contender));
    }
    svg.push_str(".svg");
    let title = format!("{group}: {contender} (ws-client alone)");
    let (args, target, delay_ms) = match args.first().map(String::as_str)? {
        "compare" => {
            let mut args = args.to_vec();
            set(&mut args, "--contenders", "ws-client");
            set(&mut args, "--slices", PROFILE_SLICES.0);
            set(&mut args, "--slice", PROFILE_SLICES.1);
            (args, Target::Follow, 0)
        }
        "rpc-compare" => {
            // rpc-compare needs a second contender; `rpc` runs the same RpcClient alone.
            let url = args.get(1)?.clone();
            let window = value(args, "--window").unwrap_or("256").to_owned();
            let run = [
                "rpc",
                &url,
                "--client",
                "ws-client",
                "--window",
                &window,
                "--duration",
                PROFILE_TIME,
                "--json",
            ];
            (run.map(str::to_owned).to_vec(), Target::Attach(url), 0)
        }
        "open-model" => {
            let mut args = args.to_vec();
            set(&mut args, "--duration", PROFILE_TIME);
            let ramp = value(&args, "--ramp-up").and_then(|r| humantime::parse_duration(r).ok());
            let delay = ramp.map_or(0, |r| r.as_millis() as u64);
            let url = args.get(1)?.clone();
            (args, Target::Attach(url), delay)
        }
        _ => return None,
    };
    Some(Profile {
        svg,
        title,
        args,
        target,
        delay_ms,
    })
}

/// `perf record`'s arguments writing to `data`: with [`Target::Follow`] it starts
/// `ws_bench args...`; with [`Target::Attach`] it attaches to `pids`.
pub(super) fn perf_args(
    profile: &Profile,
    data: &str,
    ws_bench: &str,
    pids: &[u32],
) -> Vec<String> {
    let mut out: Vec<String> = [
        "record",
        "-F",
        FREQUENCY,
        "--call-graph",
        CALL_GRAPH,
        "-o",
        data,
    ]
    .map(str::to_owned)
    .to_vec();
    if profile.delay_ms > 0 {
        out.extend(["-D".to_owned(), profile.delay_ms.to_string()]);
    }
    match profile.target {
        Target::Follow => {
            out.extend(["--".to_owned(), ws_bench.to_owned()]);
            out.extend(profile.args.iter().cloned());
        }
        Target::Attach(_) => {
            let pids: Vec<String> = pids.iter().map(u32::to_string).collect();
            out.extend(["-p".to_owned(), pids.join(",")]);
        }
    }
    out
}

/// The value after `flag` in `args`.
fn value<'a>(args: &'a [String], flag: &str) -> Option<&'a str> {
    let at = args.iter().position(|a| a == flag)?;
    args.get(at + 1).map(String::as_str)
}

/// Sets `flag`'s value in `args` (replaced in place, or added before a trailing `--json`).
fn set(args: &mut Vec<String>, flag: &str, to: &str) {
    if let Some(at) = args.iter().position(|a| a == flag)
        && at + 1 < args.len()
    {
        args[at + 1] = to.to_owned();
        return;
    }
    let at = args
        .iter()
        .position(|a| a == "--json")
        .unwrap_or(args.len());
    args.splice(at..at, [flag.to_owned(), to.to_owned()]);
}

/// A file-name part: lower-case letters and digits, every other run of characters one `-`.
fn slug(text: &str) -> String {
    let mut out = String::new();
    for c in text.chars() {
        if c.is_ascii_alphanumeric() {
            out.push(c.to_ascii_lowercase());
        } else if !out.is_empty() && !out.ends_with('-') {
            out.push('-');
        }
    }
    out.trim_end_matches('-').to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bench::{compare, open_model, suite};

    fn urls() -> suite::Urls {
        let url = |s: &str| format!("ws://srv.test/{s}");
        suite::Urls {
            ws_echo: url("echo"),
            ws_sink: url("sink"),
            rpc: "ws://rpc.test/".into(),
            jsonrpsee_rpc: url("j"),
            echo: url(""),
            load: "ws://load.test/".into(),
        }
    }

    #[test]
    fn a_compare_run_is_profiled_with_ws_client_alone_for_a_few_seconds() {
        let groups = compare::groups("/bin/test-servers", true);
        let group = groups
            .iter()
            .find(|g| g.name == "compare: wss:// round trip, 16 B");
        let (contender, args) = &group.unwrap().runs[0];
        let profile = plan("compare: wss:// round trip, 16 B", contender, args, false).unwrap();
        assert_eq!(profile.svg, "flamegraph-compare-wss-round-trip-16-b.svg");
        assert_eq!(profile.target, Target::Follow);
        assert_eq!(value(&profile.args, "--contenders"), Some("ws-client"));
        assert_eq!(value(&profile.args, "--slices"), Some("10"));
        assert_eq!(value(&profile.args, "--slice"), Some("250ms"));
        assert_eq!(
            value(&profile.args, "--server-bin"),
            Some("/bin/test-servers")
        );
        assert!(profile.args.contains(&"--tls".to_owned()));
        let perf = perf_args(&profile, "/t/x.data", "/bin/ws-bench", &[]);
        let expected = "record -F 499 --call-graph dwarf,16384 -o /t/x.data -- /bin/ws-bench \
                        compare rtt --tls --size 16 --contenders ws-client";
        assert!(perf.join(" ").starts_with(expected), "{perf:?}");
        assert!(!perf.contains(&"-p".to_owned()));
    }

    #[test]
    fn an_rpc_compare_run_is_profiled_as_an_rpc_run_attached_to_its_server() {
        let groups = suite::suite(&urls(), true);
        let group = groups
            .iter()
            .find(|g| g.name == "RPC 256 in flight / own 16 B pipelined echo")
            .unwrap();
        let (contender, args) = &group.runs[0];
        let profile = plan(group.name, contender, args, false).unwrap();
        assert_eq!(
            profile.svg,
            "flamegraph-rpc-256-in-flight-own-16-b-pipelined-echo.svg"
        );
        assert_eq!(
            profile.args.join(" "),
            "rpc ws://rpc.test/ --client ws-client --window 256 --duration 3s --json"
        );
        assert_eq!(profile.target, Target::Attach("ws://rpc.test/".into()));
        let perf = perf_args(&profile, "x.data", "ws-bench", &[7, 9]);
        assert_eq!(
            perf.join(" "),
            "record -F 499 --call-graph dwarf,16384 -o x.data -p 7,9"
        );
    }

    #[test]
    fn an_open_model_run_is_profiled_after_its_ramp_up_one_svg_per_server() {
        let groups = open_model::groups("ws://l/", "ws://e/", false);
        let group = &groups[0];
        let names: Vec<String> = group
            .runs
            .iter()
            .map(|(contender, args)| {
                let profile = plan(group.name, contender, args, group.runs.len() > 1).unwrap();
                assert_eq!(value(&profile.args, "--duration"), Some("3s"));
                assert_eq!(value(&profile.args, "--connections"), Some("10000"));
                assert_eq!(profile.target, Target::Attach(profile.args[1].clone()));
                let perf = perf_args(&profile, "x.data", "ws-bench", &[1, 2]).join(" ");
                assert!(perf.contains(" -D 5000 -p 1,2"), "{perf}");
                profile.svg
            })
            .collect();
        assert_eq!(
            names,
            [
                "flamegraph-open-model-10-000-x-5-msg-s-test-servers-load.svg",
                "flamegraph-open-model-10-000-x-5-msg-s-test-servers-echo.svg"
            ]
        );
    }

    #[test]
    fn runs_without_targets_get_no_profile() {
        let groups = suite::suite(&urls(), true);
        let resilient = groups
            .iter()
            .find(|g| g.name.starts_with("resilient"))
            .unwrap();
        let (contender, args) = &resilient.runs[0];
        assert_eq!(plan(resilient.name, contender, args, false), None);
    }

    #[test]
    fn a_missing_flag_is_added_before_json() {
        let mut args: Vec<String> = ["compare", "echo", "--json"].map(str::to_owned).to_vec();
        set(&mut args, "--slices", "10");
        assert_eq!(args.join(" "), "compare echo --slices 10 --json");
        assert_eq!(slug("  A::b  "), "a-b");
    }
}
