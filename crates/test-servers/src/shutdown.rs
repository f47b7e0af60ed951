//! What stops a server: SIGINT, SIGTERM, or (when asked) end of file on standard input.
//!
//! Signal handlers are installed by [`ShutdownSignal::install`], before the ready line is
//! printed, so a signal sent as soon as the server is ready is never lost.

use tokio::io::AsyncReadExt;

/// The installed shutdown triggers.
#[derive(Debug)]
pub struct ShutdownSignal {
    #[cfg(unix)]
    interrupt: tokio::signal::unix::Signal,
    #[cfg(unix)]
    terminate: tokio::signal::unix::Signal,
    #[cfg(windows)]
    interrupt: tokio::signal::windows::CtrlC,
    exit_on_stdin_eof: bool,
}

impl ShutdownSignal {
    /// Installs the signal handlers now.
    pub fn install(exit_on_stdin_eof: bool) -> std::io::Result<Self> {
        #[cfg(unix)]
        {
            use tokio::signal::unix::{SignalKind, signal};
            Ok(Self {
                interrupt: signal(SignalKind::interrupt())?,
                terminate: signal(SignalKind::terminate())?,
                exit_on_stdin_eof,
            })
        }
        #[cfg(windows)]
        {
            Ok(Self {
                interrupt: tokio::signal::windows::ctrl_c()?,
                exit_on_stdin_eof,
            })
        }
    }

    /// Resolves when the server should shut down, naming the reason.
    pub async fn wait(&mut self) -> &'static str {
        #[cfg(unix)]
        let terminate = self.terminate.recv();
        #[cfg(not(unix))]
        let terminate = std::future::pending::<Option<()>>();
        tokio::select! {
            _ = self.interrupt.recv() => "interrupt",
            _ = terminate => "terminate",
            () = stdin_eof(), if self.exit_on_stdin_eof => "stdin closed",
        }
    }
}

/// Reads and discards standard input until it ends (or fails).
async fn stdin_eof() {
    let mut stdin = tokio::io::stdin();
    let mut scratch = [0u8; 256];
    while let Ok(n) = stdin.read(&mut scratch).await {
        if n == 0 {
            break;
        }
    }
}
