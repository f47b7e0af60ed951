//! One integration-test binary: ws-client against the real `test-servers` over loopback.
//! Each module covers one area; `support` holds the small helpers they share.

mod batch_send;
mod cancel_safety;
mod chaos;
mod chaos_faults;
mod cli;
mod close;
mod close_after;
mod close_paths;
mod connect_errors;
mod deflate;
mod deflate_interop;
mod deflate_servers;
mod echo;
mod errors;
mod hardening;
mod healthcheck;
mod hostile_client;
mod hostile_deflate;
mod hostile_server;
mod in_place;
mod load;
#[cfg(target_os = "linux")]
mod netns_faults;
#[cfg(target_os = "linux")]
mod netns_shaping;
#[cfg(target_os = "linux")]
mod netns_support;
mod perf;
mod proxy;
mod proxy_env;
mod raw_peer;
mod real_proxies;
mod resilient;
mod resilient_batch;
mod resilient_batch_send;
mod resilient_chaos;
mod resilient_faults;
mod resilient_figures;
mod resilient_heartbeat;
mod resilient_support;
mod review_findings;
mod rpc_client;
mod rpc_edges;
mod rpc_faults;
mod rpc_lifecycle;
mod rpc_limits;
mod rpc_memory;
mod rpc_resilient;
mod rpc_resilient_review;
mod rpc_resilient_review_resubscribe;
mod rpc_spec;
mod rpc_typed;
mod rpc_unreadable;
mod security;
mod seed_examples;
mod send_failures;
mod split;
mod split_api;
mod stalled;
mod support;
mod test_proxy;
mod tls;
mod tls_errors;
mod tls_peer;
