//! A real rate limit between two network namespaces (`netns_support`): a `tbf` qdisc at
//! 1 Mbit/s on both ends' egress. An echo of 256 KiB arrives intact and in order, never
//! faster than the limit allows; the one-way rate measured by echoing large messages one at
//! a time is within 20% of the limit; the RPC client's calls all come back right through it.

use std::time::{Duration, Instant};

use futures_util::future::join_all;
use serde_json::{Value, json};
use ws_client::Message;
use ws_client::rpc::{RpcClient, RpcConfig};

use crate::netns_support::{NetnsPair, in_namespace};
use crate::support::{connect, pattern, within};

/// The shaped rate, as `tc` takes it and in bits per second.
const RATE: &str = "1mbit";
const RATE_BITS: f64 = 1_000_000.0;
/// A small bucket (a few full-size frames) and at most 100 ms of queue.
const BURST: &str = "5kb";
const LATENCY: &str = "100ms";
/// The pipelined echo: 32 messages of 8 KiB in flight at once.
const CHUNK: usize = 8 << 10;
const CHUNKS: usize = 32;
/// A rate sample: 4 messages of 64 KiB, each echoed before the next is sent.
const LARGE: usize = 64 << 10;
const LARGES: usize = 4;
/// Bounds a whole client run inside its namespace.
const RUN_LIMIT: Duration = Duration::from_secs(90);

/// Echoes `CHUNKS` messages of `CHUNK` bytes, sending and receiving at once, checks that
/// each comes back intact and in order, and returns the time from the first send to the last
/// echo. (Two TCP flows through two small shaped queues, each carrying the other's ACKs:
/// the echo's rate is well below the link's, and varies, so it is not the rate measured.)
async fn pipelined_echo(url: &str) -> Duration {
    let (sender, mut receiver) = connect(url).await.split().unwrap();
    let started = Instant::now();
    let send_all = async {
        for i in 0..CHUNKS {
            let payload = pattern(CHUNK, i as u8);
            within(sender.send(Message::binary(payload))).await.unwrap();
        }
    };
    let receive_all = async {
        for i in 0..CHUNKS {
            let echo = within(receiver.receive_message()).await.unwrap();
            assert!(
                echo.data == pattern(CHUNK, i as u8),
                "echo {i} differs (lost, reordered or torn)"
            );
        }
        started.elapsed()
    };
    let ((), elapsed) = tokio::join!(send_all, receive_all);
    within(sender.close(1000, "")).await.unwrap();
    elapsed
}

/// The one-way rate in payload bits per second: `LARGES` messages of `LARGE` bytes, each
/// echoed whole before the next goes (the server reads a whole message before echoing it),
/// so one direction carries data at a time and the bytes cross the link twice.
async fn one_way_rate(url: &str, seed: u8) -> f64 {
    let mut connection = connect(url).await;
    let started = Instant::now();
    for i in 0..LARGES {
        let payload = pattern(LARGE, seed.wrapping_add(i as u8));
        within(connection.send(Message::binary(payload.clone())))
            .await
            .unwrap();
        let echo = within(connection.receive_message()).await.unwrap();
        assert!(echo.data == payload, "echo {i} of sample {seed} differs");
    }
    let elapsed = started.elapsed();
    within(connection.close(1000, "")).await.unwrap();
    (2 * LARGE * LARGES * 8) as f64 / elapsed.as_secs_f64()
}

#[test]
fn netns_tbf_limits_an_echo_to_its_rate() {
    let Some(net) = NetnsPair::create_or_skip() else {
        return;
    };
    if !net.has_tc_or_skip() {
        return;
    }
    let server = net.start_server("echo", &[]);
    let url = server.url().to_owned();
    let (pipelined, rates, unshaped) = in_namespace(net.client_ns(), RUN_LIMIT, async {
        net.limit(RATE, BURST, LATENCY);
        let pipelined = pipelined_echo(&url).await;
        // A loaded machine can only slow a sample down; the best of three is the link's.
        let mut rates = Vec::new();
        for seed in 0..3u8 {
            let rate = one_way_rate(&url, seed).await;
            rates.push(rate);
            if rate >= 0.8 * RATE_BITS {
                break;
            }
        }
        net.unlimit();
        (pipelined, rates, one_way_rate(&url, 99).await)
    });
    let best = rates.iter().copied().fold(0.0, f64::max);
    let bits = (CHUNK * CHUNKS * 8) as f64;
    eprintln!(
        "tbf {RATE}: one-way {:?} Mbit/s (best {:.3}); 256 KiB pipelined echo in {pipelined:?} \
         ({:.3} Mbit/s); without the qdisc {:.1} Mbit/s",
        rates
            .iter()
            .map(|r| (r / 1e4).round() / 100.0)
            .collect::<Vec<_>>(),
        best / 1e6,
        bits / pipelined.as_secs_f64() / 1e6,
        unshaped / 1e6
    );
    // Firm: the payload cannot beat the shaped rate (its headers are shaped too).
    let floor = Duration::from_secs_f64(bits / (1.2 * RATE_BITS));
    assert!(
        pipelined >= floor,
        "256 KiB echoed in {pipelined:?}, under {floor:?}"
    );
    assert!(
        rates.iter().all(|&rate| rate <= 1.2 * RATE_BITS),
        "faster than the limit: {rates:?}"
    );
    assert!(
        best >= 0.8 * RATE_BITS,
        "slower than 80% of the limit: {rates:?}"
    );
    assert!(
        unshaped > 2.0 * RATE_BITS,
        "without the qdisc the echo should be far faster: {unshaped} bit/s"
    );
}

#[test]
fn netns_rpc_calls_through_a_rate_limited_link_all_come_back_right() {
    let Some(net) = NetnsPair::create_or_skip() else {
        return;
    };
    if !net.has_tc_or_skip() {
        return;
    }
    net.limit(RATE, BURST, LATENCY);
    let server = net.start_server("rpc", &[]);
    let url = server.url().to_owned();
    let text = "x".repeat(2 << 10);
    let elapsed = in_namespace(net.client_ns(), RUN_LIMIT, async {
        let client = within(RpcClient::connect(RpcConfig::new(&url)))
            .await
            .expect("connect the RPC client through the veth");
        let started = Instant::now();
        let calls = (0..50i64).map(|i| {
            let (client, text) = (&client, &text);
            async move {
                if i % 2 == 0 {
                    let params = json!({"i": i, "text": text});
                    let echoed: Value = within(client.request("echo", &params)).await.unwrap();
                    assert_eq!(echoed, params);
                } else {
                    let sum: Value = within(client.request("add", json!({"a": i, "b": 1000})))
                        .await
                        .unwrap();
                    assert_eq!(sum, json!({"result": i + 1000}));
                }
            }
        });
        within(join_all(calls)).await;
        let elapsed = started.elapsed();
        within(client.close()).await.unwrap();
        elapsed
    });
    // 25 echoes of 2 KiB each way: at 1 Mbit/s that cannot take less than ~0.4 s.
    let floor = Duration::from_secs_f64((25 * text.len() * 8) as f64 / (1.2 * RATE_BITS));
    eprintln!("50 calls through tbf {RATE}: {elapsed:?} (floor {floor:?})");
    assert!(
        elapsed >= floor,
        "{elapsed:?}: the rate limit did not apply"
    );
}
