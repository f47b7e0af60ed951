//! What stops a server: SIGINT, SIGTERM, or (when asked) end of file on standard input.

use tokio::io::AsyncReadExt;

/// Resolves when the server should shut down, naming the reason.
pub async fn signal(exit_on_stdin_eof: bool) -> &'static str {
    tokio::select! {
        () = interrupt() => "interrupt",
        () = terminate() => "terminate",
        () = stdin_eof(), if exit_on_stdin_eof => "stdin closed",
    }
}

async fn interrupt() {
    if tokio::signal::ctrl_c().await.is_err() {
        std::future::pending::<()>().await;
    }
}

#[cfg(unix)]
async fn terminate() {
    use tokio::signal::unix::{SignalKind, signal};
    match signal(SignalKind::terminate()) {
        Ok(mut sigterm) => {
            sigterm.recv().await;
        }
        Err(_) => std::future::pending::<()>().await,
    }
}

#[cfg(not(unix))]
async fn terminate() {
    std::future::pending::<()>().await;
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
