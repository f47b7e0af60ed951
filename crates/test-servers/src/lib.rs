//! `test-servers`: real WebSocket servers for testing any client. The binary's modules live
//! here so that each stays small: the command line, the shared accept loop and session
//! steps, and one module per mode.

pub mod cli;
pub mod echo;
pub mod events;
pub mod rpc;
pub mod server;
pub mod session;
pub mod shutdown;
pub mod stats;

use cli::{Cli, Mode};

/// Runs the mode chosen on the command line until it is told to stop.
pub async fn run(cli: Cli) -> anyhow::Result<()> {
    let name = cli.mode.name();
    match cli.mode {
        Mode::Echo(args) => server::run(name, &args.server, echo::EchoServer).await,
        Mode::Rpc(args) => {
            let limits = rpc::RpcLimits {
                max_batch_size: args.max_batch_size as usize,
                max_calls_in_flight: args.max_calls_in_flight as usize,
                max_subscriptions: args.max_subscriptions as usize,
            };
            server::run(name, &args.server, rpc::RpcServer { limits }).await
        }
    }
}
