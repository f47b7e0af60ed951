//! `test-servers`: real WebSocket servers for testing any client. The binary's modules live
//! here so that each stays small: the command line, the shared accept loop and session
//! steps, and one module per mode.

pub mod admission;
pub mod chaos;
pub mod cli;
pub mod echo;
pub mod events;
pub mod fd_limit;
pub mod healthcheck;
pub mod load;
pub mod perf;
pub mod rpc;
pub mod security;
pub mod server;
pub mod session;
pub mod shutdown;
pub mod stats;
pub mod stats_line;
pub mod target;
pub mod tls;
pub mod upgrade;
pub mod wire_session;

use anyhow::ensure;

use cli::{Cli, Mode};
use upgrade::WebSocket;

/// Runs the mode chosen on the command line until it is told to stop.
pub async fn run(cli: Cli) -> anyhow::Result<()> {
    let name = cli.mode.name();
    match cli.mode {
        Mode::Echo(args) => {
            let limits = ws_client::wire::ReadLimits {
                message: usize::try_from(args.server.max_message_size)?,
                frame: usize::try_from(args.server.max_frame_size)?,
                read_size: args
                    .server
                    .read_buffer_size
                    .map_or(admission::DEFAULT_READ_BUFFER_SIZE, |size| size as usize),
            };
            let echo = WebSocket::new(&args.server, echo::EchoServer { limits })?;
            server::run(name, &args.server, echo).await
        }
        Mode::Rpc(args) => {
            let limits = rpc::RpcLimits {
                max_batch_size: args.max_batch_size as usize,
                max_calls_in_flight: args.max_calls_in_flight as usize,
                max_subscriptions: args.max_subscriptions as usize,
                max_retained_bytes: usize::try_from(args.server.max_message_size)?,
            };
            // The read buffer as given (not perf's 64 KiB): rpc is about many connections
            // with small calls as much as about speed.
            let read_limits = ws_client::wire::ReadLimits {
                message: usize::try_from(args.server.max_message_size)?,
                frame: usize::try_from(args.server.max_frame_size)?,
                read_size: args
                    .server
                    .read_buffer_size
                    .map_or(admission::DEFAULT_READ_BUFFER_SIZE, |size| size as usize),
            };
            let rpc = rpc::RpcServer {
                limits,
                read_limits,
            };
            server::run(name, &args.server, WebSocket::new(&args.server, rpc)?).await
        }
        Mode::Perf(args) => {
            ensure!(
                args.source_size <= args.server.max_message_size,
                "--source-size {} exceeds --max-message-size {}",
                args.source_size,
                args.server.max_message_size
            );
            let perf = perf::PerfServer {
                source_count: args.source_count,
                source_size: usize::try_from(args.source_size)?,
                max_message_size: usize::try_from(args.server.max_message_size)?,
                limits: wire_session::perf_limits(
                    usize::try_from(args.server.max_message_size)?,
                    usize::try_from(args.server.max_frame_size)?,
                    args.server
                        .read_buffer_size
                        .map_or(admission::DEFAULT_READ_BUFFER_SIZE, |size| size as usize),
                ),
            };
            server::run(name, &args.server, WebSocket::new(&args.server, perf)?).await
        }
        Mode::Load(args) => {
            let mut server_args = args.server;
            server_args
                .read_buffer_size
                .get_or_insert(load::LOAD_READ_BUFFER_SIZE);
            let load = load::LoadServer::new(
                args.broadcast_capacity as usize,
                usize::try_from(args.max_broadcast_size)?,
            );
            server::run(name, &server_args, WebSocket::new(&server_args, load)?).await
        }
        Mode::Security(args) => security::run(name, &args).await,
        Mode::Chaos(args) => chaos::run(name, &args).await,
        Mode::Healthcheck(args) => healthcheck::run(&args).await,
    }
}
