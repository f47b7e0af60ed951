//! The standard suite of `cargo xtask bench`: which ws-bench runs make up each figure (the
//! client comparisons are `compare` runs, in bench/compare.rs), JSON-RPC with bare
//! tokio-tungstenite beside ws-client, the resilient connection's cost
//! against a plain one (`resilient-cost`: both in one run, alternating slices), and
//! permessage-deflate off against on (`compression`, the same way), and latency under load
//! (`open_model.rs`).

/// One benchmark figure: several contenders measured the same way.
#[derive(Debug)]
pub(super) struct Group {
    pub(super) name: &'static str,
    /// "p50" (lower is better), "rate" (higher is better), "ratio" (one run comparing two
    /// contenders itself: `resilient-cost`'s median ratio, higher is better) or
    /// "compression" (one `compression` run: a row per payload size and deflate setting) or
    /// "compare" (one `compare` run: a row per contender, ratios with spread and targets).
    pub(super) metric: &'static str,
    pub(super) runs: Vec<(&'static str, Vec<String>)>,
}

/// Where each kind of server listens.
#[derive(Debug)]
pub(super) struct Urls {
    pub(super) ws_echo: String,
    pub(super) ws_sink: String,
    pub(super) rpc: String,
    /// `ws-bench serve jsonrpsee-rpc`.
    pub(super) jsonrpsee_rpc: String,
    /// `test-servers echo` (its own framing, many connections), for the open model.
    pub(super) echo: String,
    /// `test-servers load`, for the open model.
    pub(super) load: String,
}

/// The standard suite: every group measures raw TCP (where it applies), bare
/// tokio-tungstenite and ws-client the same way, against the same kind of server.
pub(super) fn suite(urls: &Urls, quick: bool) -> Vec<Group> {
    let time = if quick { "1s" } else { "5s" };
    let with = |parts: &[&str]| -> Vec<String> {
        let mut args: Vec<String> = parts.iter().map(|p| (*p).to_owned()).collect();
        args.push("--json".into());
        args
    };
    // Round trips, one-way and echo rates and connects: `compare` runs (bench/compare.rs).
    let mut groups = Vec::new();
    for (window, name) in [
        ("1", "JSON-RPC calls, 1 in flight"),
        ("256", "JSON-RPC calls, 256 in flight"),
    ] {
        let rpc = |client: &str| {
            with(&[
                "rpc",
                &urls.rpc,
                "--client",
                client,
                "--window",
                window,
                "--duration",
                time,
            ])
        };
        groups.push(Group {
            name,
            metric: "rate",
            runs: vec![
                ("tungstenite+serde_json", rpc("tungstenite")),
                ("jsonrpsee", rpc("jsonrpsee")),
                ("ws-client", rpc("ws-client")),
            ],
        });
    }
    groups.extend(resilient_cost(urls, quick));
    groups.extend(rpc_compare(urls, quick));
    groups.extend(super::open_model::groups(&urls.load, &urls.echo, quick));
    groups
}

/// The RPC figures, each from one `rpc-compare` run of alternating slices, 256 in flight:
/// ws-client's RpcClient against jsonrpsee's client (same test-servers rpc), test-servers
/// rpc against a jsonrpsee server (same RpcClient), RPC calls/s against ws-client's 16 B
/// pipelined echo.
fn rpc_compare(urls: &Urls, quick: bool) -> Vec<Group> {
    let (rounds, slice) = if quick {
        ("6", "100ms")
    } else {
        ("20", "250ms")
    };
    let jsonrpsee = [
        "--no-jsonrpsee-client",
        "--jsonrpsee-url",
        &urls.jsonrpsee_rpc,
    ];
    let echo = ["--no-jsonrpsee-client", "--echo-url", &urls.ws_echo];
    [
        ("RPC 256 in flight: ws-client / jsonrpsee client", &[][..]),
        (
            "RPC 256 in flight: test-servers / jsonrpsee server",
            &jsonrpsee[..],
        ),
        ("RPC 256 in flight / own 16 B pipelined echo", &echo[..]),
    ]
    .into_iter()
    .map(|(name, extra)| {
        let mut args: Vec<String> = [
            "rpc-compare",
            &urls.rpc,
            "--rounds",
            rounds,
            "--slice",
            slice,
        ]
        .iter()
        .chain(extra)
        .map(|a| (*a).to_owned())
        .collect();
        args.push("--json".into());
        Group {
            name,
            metric: "ratio",
            runs: vec![("ws-client vs contender", args)],
        }
    })
    .collect()
}

/// The resilient connection against a plain one, each figure from one run of alternating
/// slices: 16 B pipelined echo, 64 KiB one-way and 64 KiB echo.
fn resilient_cost(urls: &Urls, quick: bool) -> Vec<Group> {
    let (slices, slice) = if quick {
        ("6", "100ms")
    } else {
        ("20", "250ms")
    };
    [
        ("resilient / plain: echo, 16 B", &urls.ws_echo, "echo", "16"),
        (
            "resilient / plain: one-way, 64 KiB",
            &urls.ws_sink,
            "one-way",
            "65536",
        ),
        (
            "resilient / plain: echo, 64 KiB",
            &urls.ws_echo,
            "echo",
            "65536",
        ),
    ]
    .into_iter()
    .map(|(name, url, mode, size)| {
        let args = [
            "resilient-cost",
            url,
            "--mode",
            mode,
            "--size",
            size,
            "--slices",
            slices,
            "--slice",
            slice,
            "--json",
        ];
        Group {
            name,
            metric: "ratio",
            runs: vec![("resilient vs plain", args.map(str::to_owned).to_vec())],
        }
    })
    .collect()
}

/// permessage-deflate off, on and without context takeover on 1 KiB and 64 KiB JSON, each
/// run starting its own `test-servers perf` per contender (so it reads their CPU time and
/// wire bytes): one-way into `/sink`, and (full run) echo through `/echo`.
pub(super) fn compression(test_servers: &str, quick: bool) -> Vec<Group> {
    let (slices, slice) = if quick {
        ("6", "100ms")
    } else {
        ("20", "250ms")
    };
    let modes: &[(&'static str, &str)] = if quick {
        &[("deflate: one-way, JSON", "one-way")]
    } else {
        &[
            ("deflate: one-way, JSON", "one-way"),
            ("deflate: echo, JSON", "echo"),
        ]
    };
    modes
        .iter()
        .map(|&(name, mode)| {
            let args = [
                "compression",
                "--server-bin",
                test_servers,
                "--mode",
                mode,
                "--slices",
                slices,
                "--slice",
                slice,
                "--json",
            ];
            Group {
                name,
                metric: "compression",
                runs: vec![("ws-client", args.map(str::to_owned).to_vec())],
            }
        })
        .collect()
}
