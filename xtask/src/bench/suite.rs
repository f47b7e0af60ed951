//! The standard suite of `cargo xtask bench`: which ws-bench runs make up each figure, with
//! raw TCP and bare tokio-tungstenite beside ws-client, the resilient connection's cost
//! against a plain one (`resilient-cost`: both in one run, alternating slices), and
//! permessage-deflate off against on (`compression`, the same way), and latency under load
//! (`open_model.rs`).

/// One benchmark figure: several contenders measured the same way.
#[derive(Debug)]
pub(super) struct Group {
    pub(super) name: &'static str,
    /// "p50" (lower is better), "rate" (higher is better), "ratio" (one run comparing two
    /// contenders itself: `resilient-cost`'s median ratio, higher is better) or
    /// "compression" (one `compression` run: a row per payload size and deflate setting).
    pub(super) metric: &'static str,
    pub(super) runs: Vec<(&'static str, Vec<String>)>,
}

/// Where each kind of server listens.
#[derive(Debug)]
pub(super) struct Urls {
    pub(super) echo: String,
    pub(super) ws_echo: String,
    pub(super) ws_sink: String,
    pub(super) tcp_echo: String,
    pub(super) tcp_sink: String,
    pub(super) rpc: String,
    /// `test-servers load`, for the open model.
    pub(super) load: String,
}

/// The standard suite: every group measures raw TCP (where it applies), bare
/// tokio-tungstenite and ws-client the same way, against the same kind of server.
pub(super) fn suite(urls: &Urls, quick: bool) -> Vec<Group> {
    let time = if quick { "1s" } else { "5s" };
    let connects = if quick { "1000" } else { "5000" };
    let with = |parts: &[&str]| -> Vec<String> {
        let mut args: Vec<String> = parts.iter().map(|p| (*p).to_owned()).collect();
        args.push("--json".into());
        args
    };
    let mut groups = vec![Group {
        name: "echo round trip, 16 B",
        metric: "p50",
        runs: vec![
            (
                "raw TCP",
                with(&["rtt", &urls.tcp_echo, "--client", "tcp", "--duration", time]),
            ),
            (
                "tungstenite",
                with(&[
                    "rtt",
                    &urls.echo,
                    "--client",
                    "tungstenite",
                    "--duration",
                    time,
                ]),
            ),
            ("ws-client", with(&["rtt", &urls.echo, "--duration", time])),
        ],
    }];
    for (size, label_one_way, label_echo) in [
        ("16", "pipelined one-way, 16 B", "pipelined echo, 16 B"),
        (
            "65536",
            "pipelined one-way, 64 KiB",
            "pipelined echo, 64 KiB",
        ),
    ] {
        let one_way = |client: &str, url: &str| {
            with(&[
                "throughput",
                url,
                "--client",
                client,
                "--size",
                size,
                "--duration",
                time,
            ])
        };
        groups.push(Group {
            name: label_one_way,
            metric: "rate",
            runs: vec![
                ("raw TCP", one_way("tcp", &urls.tcp_sink)),
                ("tungstenite", one_way("tungstenite", &urls.ws_sink)),
                ("ws-client", one_way("ws-client", &urls.ws_sink)),
            ],
        });
        let echo = |client: &str, url: &str| {
            with(&[
                "throughput",
                url,
                "--mode",
                "echo",
                "--client",
                client,
                "--size",
                size,
                "--duration",
                time,
            ])
        };
        groups.push(Group {
            name: label_echo,
            metric: "rate",
            runs: vec![
                ("raw TCP", echo("tcp", &urls.tcp_echo)),
                ("tungstenite", echo("tungstenite", &urls.ws_echo)),
                ("ws-client", echo("ws-client", &urls.ws_echo)),
            ],
        });
    }
    let connect =
        |client: &str, url: &str| with(&["connect", url, "--client", client, "--count", connects]);
    groups.push(Group {
        name: "connect + handshake + close",
        metric: "p50",
        runs: vec![
            ("raw TCP", connect("tcp", &urls.tcp_echo)),
            ("tungstenite", connect("tungstenite", &urls.echo)),
            ("ws-client", connect("ws-client", &urls.echo)),
        ],
    });
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
                ("ws-client", rpc("ws-client")),
            ],
        });
    }
    groups.extend(resilient_cost(urls, quick));
    groups.extend(super::open_model::groups(&urls.load, &urls.echo, quick));
    groups
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
