//! The network-namespace tier's fixture: two namespaces made for one test, joined by a veth
//! pair (server side 192.0.2.1/24, client side 192.0.2.2/24, documentation addresses that
//! exist only inside them), with real faults: the link cut, a black hole, a `tbf` rate limit.
//! The server runs in its namespace under `ip netns exec`; the client runs on a thread that
//! entered the other one (`in_namespace`). Needs Linux, root and iproute2; elsewhere each test
//! prints `skipped: <reason>` and passes, unless `WS_CLIENT_NETNS=require` (as `.ci/run` sets).
//!
//! Nothing here touches the root namespace: the veth is created with its two ends already in
//! the two namespaces, and every `ip`/`tc` command names its namespace (`-n`). Dropping the
//! pair (on a panic's unwinding too) deletes both namespaces, which removes the veth; a new
//! pair first deletes the leftovers of test processes that died without dropping theirs.

use std::fs::File;
use std::future::Future;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::Once;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use integration::{Launch, TestServer};
use nix::sched::CloneFlags;
use wait_timeout::ChildExt;

/// `require`: a missing tier fails the test instead of skipping it.
pub(crate) const NETNS_ENV: &str = "WS_CLIENT_NETNS";
/// The server's address, on its end of the veth.
pub(crate) const SERVER_IP: &str = "192.0.2.1";
/// The client's address, on its end of the veth.
pub(crate) const CLIENT_IP: &str = "192.0.2.2";
/// Every namespace this fixture makes is `wsc-<pid>-<counter>-<s|c>`.
const PREFIX: &str = "wsc-";
/// Interface names only need to be unique inside their own namespace (at most 15 bytes).
const SERVER_IF: &str = "wsc-srv";
const CLIENT_IF: &str = "wsc-cli";
/// Fixed, locally administered MACs, and one that neither end has (for the black hole).
const SERVER_MAC: &str = "02:00:00:00:02:01";
const CLIENT_MAC: &str = "02:00:00:00:02:02";
const NOWHERE_MAC: &str = "02:00:00:00:02:ff";
/// The most one `ip` or `tc` command may take.
const COMMAND_LIMIT: Duration = Duration::from_secs(10);

/// Two namespaces joined by a veth pair; dropped, both are deleted.
#[derive(Debug)]
pub(crate) struct NetnsPair {
    server: String,
    client: String,
    ip: PathBuf,
    tc: Option<PathBuf>,
}

impl NetnsPair {
    /// A new pair, or `None` after printing `skipped: <reason>` when the tier cannot run
    /// here (not root, no `ip`, `ip netns add` refused). With
    /// `WS_CLIENT_NETNS=require` it panics with the reason instead.
    pub(crate) fn create_or_skip() -> Option<Self> {
        match Self::create() {
            Ok(pair) => Some(pair),
            Err(reason) if std::env::var(NETNS_ENV).as_deref() == Ok("require") => {
                panic!("the network-namespace tier is required ({NETNS_ENV}=require): {reason}")
            }
            Err(reason) => {
                eprintln!("skipped: {reason} (set {NETNS_ENV}=require to fail instead)");
                None
            }
        }
    }

    fn create() -> Result<Self, String> {
        if !nix::unistd::Uid::effective().is_root() {
            return Err("network namespaces need root".to_owned());
        }
        let ip = find_tool("ip").ok_or("no `ip` command (iproute2) found")?;
        static SWEEP: Once = Once::new();
        SWEEP.call_once(|| sweep_stale(&ip));
        static COUNTER: AtomicU32 = AtomicU32::new(0);
        let stem = format!(
            "{PREFIX}{}-{}",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::Relaxed)
        );
        let server = format!("{stem}-s");
        let client = format!("{stem}-c");
        run(&ip, &["netns", "add", &server])?;
        // From here on, dropping the pair deletes what exists of it.
        let pair = Self {
            server,
            client,
            ip,
            tc: find_tool("tc"),
        };
        pair.ip(&["netns", "add", &pair.client])?;
        pair.wire()?;
        Ok(pair)
    }

    /// The veth between the namespaces, addresses, links up; no IPv6 (so nothing but the
    /// test's own traffic crosses the link).
    fn wire(&self) -> Result<(), String> {
        for namespace in [&self.server, &self.client] {
            in_namespace(namespace, COMMAND_LIMIT, async { disable_ipv6() })?;
        }
        let (s, c) = (self.server.as_str(), self.client.as_str());
        let link = [
            "-n", s, "link", "add", SERVER_IF, "address", SERVER_MAC, "type",
        ];
        let peer = [
            "veth", "peer", "name", CLIENT_IF, "address", CLIENT_MAC, "netns", c,
        ];
        self.ip(&[&link[..], &peer[..]].concat())?;
        for (namespace, device, address) in [
            (s, SERVER_IF, format!("{SERVER_IP}/24")),
            (c, CLIENT_IF, format!("{CLIENT_IP}/24")),
        ] {
            self.ip(&["-n", namespace, "link", "set", "lo", "up"])?;
            self.ip(&["-n", namespace, "addr", "add", &address, "dev", device])?;
            self.ip(&["-n", namespace, "link", "set", device, "up"])?;
        }
        Ok(())
    }

    /// The server's namespace.
    pub(crate) fn server_ns(&self) -> &str {
        &self.server
    }

    /// The client's namespace.
    pub(crate) fn client_ns(&self) -> &str {
        &self.client
    }

    /// Starts `test-servers <mode>` on 192.0.2.1 (port 0) in the server's namespace.
    pub(crate) fn start_server(&self, mode: &str, args: &[&str]) -> TestServer {
        let exec = [self.ip.as_os_str(), "netns".as_ref(), "exec".as_ref()];
        Launch::new(mode)
            .launcher(exec.into_iter().chain([std::ffi::OsStr::new(&self.server)]))
            .host(SERVER_IP)
            .args(args)
            .start()
    }

    /// Cuts the link: the server's end goes down. The client's end stays up (it only loses
    /// its carrier) and keeps its route, so its writes succeed and its segments go out and
    /// vanish; nothing (no RST, no FIN) comes back: a silent partition. (Taking the client's
    /// end down instead is a local fault: its route goes and connects fail at once.)
    /// Blocks the calling thread for the few milliseconds `ip` takes.
    pub(crate) fn link_down(&self) {
        self.must(&["-n", &self.server, "link", "set", SERVER_IF, "down"]);
    }

    /// Heals [`link_down`](Self::link_down).
    pub(crate) fn link_up(&self) {
        self.must(&["-n", &self.server, "link", "set", SERVER_IF, "up"]);
    }

    /// A black hole with the link up: each end sends its frames to a MAC address nobody
    /// has (permanent neighbour entries), so every packet is sent and dropped on arrival.
    pub(crate) fn black_hole(&self) {
        for (namespace, peer, device) in self.ends() {
            let set = [
                "neigh",
                "replace",
                peer,
                "lladdr",
                NOWHERE_MAC,
                "dev",
                device,
            ];
            self.must(&[&["-n", namespace][..], &set[..], &["nud", "permanent"][..]].concat());
        }
    }

    /// Heals [`black_hole`](Self::black_hole): the entries go, ARP finds the peers again.
    pub(crate) fn heal_black_hole(&self) {
        for (namespace, peer, device) in self.ends() {
            self.must(&["-n", namespace, "neigh", "del", peer, "dev", device]);
        }
    }

    /// A `tbf` qdisc on both ends' egress, for example `("1mbit", "5kb", "100ms")`.
    pub(crate) fn limit(&self, rate: &str, burst: &str, latency: &str) {
        let tbf = [
            "root", "tbf", "rate", rate, "burst", burst, "latency", latency,
        ];
        for (namespace, _, device) in self.ends() {
            let replace = ["-n", namespace, "qdisc", "replace", "dev", device];
            self.must_tc(&[&replace[..], &tbf[..]].concat());
        }
    }

    /// Removes [`limit`](Self::limit)'s qdiscs.
    pub(crate) fn unlimit(&self) {
        for (namespace, _, device) in self.ends() {
            self.must_tc(&["-n", namespace, "qdisc", "del", "dev", device, "root"]);
        }
    }

    /// Whether `tc` is there (for the rate-limit tests); prints the skip otherwise, or
    /// panics with `WS_CLIENT_NETNS=require`.
    pub(crate) fn has_tc_or_skip(&self) -> bool {
        if self.tc.is_some() {
            return true;
        }
        let reason = "no `tc` command (iproute2) found";
        if std::env::var(NETNS_ENV).as_deref() == Ok("require") {
            panic!("the network-namespace tier is required ({NETNS_ENV}=require): {reason}");
        }
        eprintln!("skipped: {reason}");
        false
    }

    /// (namespace, the other end's address, this end's device) for each end.
    fn ends(&self) -> [(&str, &str, &str); 2] {
        [
            (&self.server, CLIENT_IP, SERVER_IF),
            (&self.client, SERVER_IP, CLIENT_IF),
        ]
    }

    fn ip(&self, args: &[&str]) -> Result<Output, String> {
        run(&self.ip, args)
    }

    fn must(&self, args: &[&str]) {
        self.ip(args).unwrap_or_else(|e| panic!("{e}"));
    }

    fn must_tc(&self, args: &[&str]) {
        let tc = self.tc.as_deref().expect("checked by has_tc_or_skip");
        run(tc, args).unwrap_or_else(|e| panic!("{e}"));
    }
}

impl Drop for NetnsPair {
    fn drop(&mut self) {
        for namespace in [&self.server, &self.client] {
            remove_namespace(&self.ip, namespace);
        }
    }
}

/// Kills what still runs in `namespace` (a server whose test dropped it last is normally
/// gone by now), then deletes it; the veth goes with the namespace. Never panics.
fn remove_namespace(ip: &Path, namespace: &str) {
    if let Ok(output) = run(ip, &["netns", "pids", namespace]) {
        let pids = String::from_utf8_lossy(&output.stdout).into_owned();
        for pid in pids
            .split_whitespace()
            .filter_map(|p| p.parse::<i32>().ok())
        {
            if pid != std::process::id() as i32 {
                let pid = nix::unistd::Pid::from_raw(pid);
                let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGKILL);
            }
        }
    }
    if let Err(e) = run(ip, &["netns", "del", namespace]) {
        eprintln!("could not delete network namespace {namespace}: {e}");
    }
}

/// Deletes `wsc-<pid>-...` namespaces whose process is gone (a test run killed mid-test).
fn sweep_stale(ip: &Path) {
    let Ok(list) = run(ip, &["netns", "list"]) else {
        return;
    };
    for line in String::from_utf8_lossy(&list.stdout).lines() {
        let name = line.split_whitespace().next().unwrap_or_default();
        let pid = name
            .strip_prefix(PREFIX)
            .and_then(|rest| rest.split('-').next());
        if let Some(pid) = pid.and_then(|p| p.parse::<u32>().ok()) {
            if !Path::new(&format!("/proc/{pid}")).exists() {
                remove_namespace(ip, name);
            }
        }
    }
}

/// Runs `ip args` (for tests of the fixture itself).
pub(crate) fn ip_command(args: &[&str]) -> Result<Output, String> {
    run(&find_tool("ip").ok_or("no `ip` command")?, args)
}

/// Deletes the namespaces of dead test processes now (a new pair does it once per process).
pub(crate) fn sweep_stale_namespaces() {
    sweep_stale(&find_tool("ip").expect("ip"));
}

/// The names `ip netns list` shows.
pub(crate) fn namespace_names() -> Vec<String> {
    let list = ip_command(&["netns", "list"]).unwrap_or_else(|e| panic!("{e}"));
    String::from_utf8_lossy(&list.stdout)
        .lines()
        .filter_map(|line| line.split_whitespace().next().map(str::to_owned))
        .collect()
}

/// Runs `future` to completion on a new thread that first entered the network namespace
/// `namespace` (`setns(2)` moves only the calling thread), on a current-thread runtime of
/// its own, so every socket it opens lives in that namespace. Panics if it takes longer than
/// `limit`; a panic inside it is passed on to the caller.
pub(crate) fn in_namespace<F>(namespace: &str, limit: Duration, future: F) -> F::Output
where
    F: Future + Send,
    F::Output: Send,
{
    let path = Path::new("/run/netns").join(namespace);
    let name = format!(
        "{} (netns {namespace})",
        std::thread::current().name().unwrap_or("test")
    );
    std::thread::scope(|scope| {
        let thread = std::thread::Builder::new()
            .name(name)
            .spawn_scoped(scope, move || {
                let file = File::open(&path)
                    .unwrap_or_else(|e| panic!("cannot open {}: {e}", path.display()));
                nix::sched::setns(&file, CloneFlags::CLONE_NEWNET)
                    .unwrap_or_else(|e| panic!("setns {}: {e}", path.display()));
                tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .expect("a current-thread runtime")
                    .block_on(async { tokio::time::timeout(limit, future).await })
            })
            .expect("spawn the namespace thread");
        match thread.join() {
            Ok(Ok(output)) => output,
            Ok(Err(_)) => panic!("the client in {namespace} did not finish within {limit:?}"),
            Err(panic) => std::panic::resume_unwind(panic),
        }
    })
}

/// Turns IPv6 off in the calling thread's network namespace (for interfaces made after);
/// refuses if the thread is still in the process's own namespace.
fn disable_ipv6() -> Result<(), String> {
    let namespace_of = |path: &str| std::fs::read_link(path).map_err(|e| format!("{path}: {e}"));
    if namespace_of("/proc/thread-self/ns/net")? == namespace_of("/proc/self/ns/net")? {
        return Err("refusing to change IPv6 settings outside the test's namespace".to_owned());
    }
    for scope in ["all", "default"] {
        let path = format!("/proc/sys/net/ipv6/conf/{scope}/disable_ipv6");
        // A kernel without IPv6 has no such file, and nothing to turn off.
        if Path::new(&path).exists() {
            std::fs::write(&path, "1").map_err(|e| format!("cannot write {path}: {e}"))?;
        }
    }
    Ok(())
}

/// `name` on `$PATH` or in the usual system directories (root's `PATH` may lack `sbin`).
fn find_tool(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(["/usr/sbin", "/sbin", "/usr/bin", "/bin"].map(PathBuf::from))
        .map(|dir| dir.join(name))
        .find(|candidate| candidate.is_file())
}

/// Runs `program args`, bounded by [`COMMAND_LIMIT`]; a failure carries its stderr.
fn run(program: &Path, args: &[&str]) -> Result<Output, String> {
    let shown = format!("{} {}", program.display(), args.join(" "));
    let mut child = Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("cannot run {shown}: {e}"))?;
    match child.wait_timeout(COMMAND_LIMIT) {
        Ok(Some(_)) => {}
        _ => {
            let _ = child.kill();
        }
    }
    // `ip`'s output is a few lines: it fits the pipes, so reading after the exit is safe.
    let output = child
        .wait_with_output()
        .map_err(|e| format!("{shown}: {e}"))?;
    if output.status.success() {
        Ok(output)
    } else {
        let stderr = String::from_utf8_lossy(&output.stderr);
        Err(format!(
            "`{shown}` failed ({}): {}",
            output.status,
            stderr.trim()
        ))
    }
}
