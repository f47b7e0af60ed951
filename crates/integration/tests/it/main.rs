//! One integration-test binary: ws-client against the real `test-servers` over loopback.
//! Each module covers one area; `support` holds the small helpers they share.

mod chaos;
mod chaos_faults;
mod cli;
mod close;
mod echo;
mod errors;
mod hardening;
mod hostile_client;
mod hostile_server;
mod load;
mod perf;
mod rpc_client;
mod rpc_spec;
mod security;
mod seed_examples;
mod split;
mod support;
mod tls;
