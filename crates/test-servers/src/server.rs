//! The accept loop every mode shares: bind, ready line, connection limit, handshake deadline,
//! graceful shutdown and the final `stopped` line. A mode only supplies a [`Handler`].

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;
use tokio_tungstenite::tungstenite::{
    handshake::server::{ErrorResponse, Request, Response},
    http::StatusCode,
    protocol::WebSocketConfig,
};
use tokio_util::{sync::CancellationToken, task::TaskTracker};

use crate::cli::ServerArgs;
use crate::events::{self, Listening, ListeningTls, Stopped};
use crate::session::{ServerStream, Session};
use crate::shutdown::ShutdownSignal;
use crate::stats::Stats;
use crate::stats_line::{self, ExtraCounters};
use crate::tls::{self, ServerSocket, ServerTls};

/// How long open sessions get to finish their close handshakes at shutdown.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);
/// Read buffer per connection unless `--read-buffer-size` says otherwise.
pub const DEFAULT_READ_BUFFER_SIZE: usize = 4 << 10;
/// File descriptors the process needs besides its connections (listener, stdio, runtime).
const SPARE_FDS: u64 = 64;

/// A server mode: what to do with each accepted WebSocket.
pub trait Handler: Send + Sync + 'static {
    /// Serves one connection until it ends.
    fn serve(&self, ws: ServerStream, session: Session) -> impl Future<Output = ()> + Send;

    /// Counters of the mode's own, added to each `stats` line (none by default).
    fn extra_stats(&self) -> ExtraCounters {
        ExtraCounters::new()
    }
}

/// Runs `handler` under the shared command-line contract until a shutdown signal.
pub async fn run<H: Handler>(
    mode: &'static str,
    args: &ServerArgs,
    handler: H,
) -> anyhow::Result<()> {
    crate::fd_limit::raise(u64::from(args.max_connections) + SPARE_FDS);
    let tls = if args.tls {
        let names = if args.tls_names.is_empty() {
            tls::default_names(args.host)
        } else {
            args.tls_names.clone()
        };
        Some(Arc::new(ServerTls::generate(&names).context("--tls")?))
    } else {
        None
    };
    let requested = SocketAddr::new(args.host, args.port);
    let listener = TcpListener::bind(requested).await.with_context(|| {
        format!("cannot listen on {requested} (is another server using that port? try --port 0)")
    })?;
    let addr = listener
        .local_addr()
        .context("cannot read the bound address")?;
    let mut stop = ShutdownSignal::install(args.exit_on_stdin_eof)
        .context("cannot install signal handlers")?;
    let stats = Arc::new(Stats::default());
    let shutdown = CancellationToken::new();
    let tracker = TaskTracker::new();
    let slots = Arc::new(Semaphore::new(args.max_connections as usize));
    let handler = Arc::new(handler);
    let rules = Arc::new(HandshakeRules {
        config: websocket_config(args),
        deadline: args.handshake_timeout,
        allowed_origins: args.allowed_origins.clone(),
        max_header_bytes: args.max_header_bytes as usize,
    });
    let session = Session {
        stats: Arc::clone(&stats),
        shutdown: shutdown.clone(),
        idle_timeout: args.idle_timeout(),
        target: String::from("/"),
    };

    let listening = Listening {
        event: "listening",
        mode,
        addr: addr.to_string(),
        url: format!("{}://{addr}/", if tls.is_some() { "wss" } else { "ws" }),
    };
    match &tls {
        Some(tls) => events::emit(&ListeningTls {
            listening,
            ca_cert: tls.ca_path().display().to_string(),
        }),
        None => events::emit(&listening),
    }
    tracing::info!(%addr, mode, "listening");
    if let Some(interval) = args.stats_interval() {
        let handler = Arc::clone(&handler);
        tracker.spawn(stats_line::report(
            mode,
            interval,
            Arc::clone(&stats),
            move || handler.extra_stats(),
            shutdown.clone(),
        ));
    }

    let stop = stop.wait();
    tokio::pin!(stop);
    let reason = loop {
        let (tcp, peer) = tokio::select! {
            reason = &mut stop => break reason,
            accepted = listener.accept() => match accepted {
                Ok(pair) => pair,
                Err(e) => {
                    // Out of file descriptors and the like: back off instead of spinning.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        let slot = Arc::clone(&slots).try_acquire_owned().ok();
        let handler = Arc::clone(&handler);
        let session = session.clone();
        // Boxed, and made outside the task: the handshake's state (and its arguments) is
        // freed once it is done instead of staying part of every connection's task.
        let handshaking = Box::pin(handshake(
            tcp,
            tls.clone(),
            peer,
            slot.is_some(),
            Arc::clone(&rules),
            Arc::clone(&session.stats),
        ));
        tracker.spawn(async move {
            let Some((ws, target)) = handshaking.await else {
                return;
            };
            let stats = Arc::clone(&session.stats);
            Stats::bump(&stats.connections_accepted);
            stats
                .connections_active
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            handler.serve(ws, Session { target, ..session }).await;
            stats
                .connections_active
                .fetch_sub(1, std::sync::atomic::Ordering::Relaxed);
            drop(slot);
        });
    };

    tracing::info!(reason, "shutting down");
    drop(listener);
    shutdown.cancel();
    tracker.close();
    let drained = tokio::time::timeout(SHUTDOWN_GRACE, tracker.wait())
        .await
        .is_ok();
    events::emit(&Stopped {
        event: "stopped",
        mode,
        reason,
        clean: drained,
        counters: stats.snapshot(),
    });
    Ok(())
}

/// The tungstenite limits from the command line; the frame limit never exceeds the
/// message limit so oversized frames are refused from their header.
fn websocket_config(args: &ServerArgs) -> WebSocketConfig {
    let max_message = usize::try_from(args.max_message_size).unwrap_or(usize::MAX);
    let max_frame = usize::try_from(args.max_frame_size)
        .unwrap_or(usize::MAX)
        .min(max_message);
    let read_buffer = args
        .read_buffer_size
        .map_or(DEFAULT_READ_BUFFER_SIZE, |size| size as usize);
    WebSocketConfig::default()
        .read_buffer_size(read_buffer)
        .write_buffer_size(64 << 10)
        .max_write_buffer_size((64 << 10) + max_message + 14)
        .max_message_size(Some(max_message))
        .max_frame_size(Some(max_frame))
}

/// What every upgrade request is held to, from the command line.
struct HandshakeRules {
    config: WebSocketConfig,
    /// `--handshake-timeout`.
    deadline: Duration,
    /// `--allowed-origin`, normalized; empty allows any origin.
    allowed_origins: Vec<String>,
    /// `--max-header-bytes`.
    max_header_bytes: usize,
}

impl HandshakeRules {
    /// Why `request` is refused, if it is: 431 for oversized headers, 403 for an origin
    /// not allowed.
    ///
    /// tungstenite refuses some requests before they get here, as a failed connection
    /// without any HTTP answer: more than `MAX_HEADERS` (124) headers, which is httparse's
    /// buffer in `handshake/headers.rs`, and more than 65536 bytes (or 512 reads) before
    /// the end of the headers (`AttackCheck` in `handshake/machine.rs`). Hence the cap of
    /// 65536 on `--max-header-bytes`.
    fn refusal(&self, request: &Request) -> Option<(StatusCode, &'static str)> {
        let header_bytes: usize = request
            .headers()
            .iter()
            .map(|(name, value)| name.as_str().len() + value.len())
            .sum();
        if header_bytes > self.max_header_bytes {
            return Some((
                StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
                "request headers too large (--max-header-bytes)\n",
            ));
        }
        if !self.allowed_origins.is_empty() {
            // Exactly one Origin header, and one of the allowed ones.
            let mut origins = request.headers().get_all("origin").iter();
            let allowed = match (origins.next(), origins.next()) {
                (Some(origin), None) => origin.to_str().is_ok_and(|origin| {
                    let origin = normalize_origin(origin);
                    self.allowed_origins.contains(&origin)
                }),
                _ => false,
            };
            if !allowed {
                return Some((
                    StatusCode::FORBIDDEN,
                    "origin not allowed (--allowed-origin)\n",
                ));
            }
        }
        None
    }
}

/// An origin with its scheme and host (everything up to a path) ASCII-lowercased, so
/// that `HTTPS://App.Example` matches `https://app.example`; anything not of the form
/// `scheme://...` (such as `null`) is left as it is.
pub fn normalize_origin(origin: &str) -> String {
    let Some((scheme, rest)) = origin.split_once("://") else {
        return origin.to_string();
    };
    let (authority, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
    format!(
        "{}://{}{path}",
        scheme.to_ascii_lowercase(),
        authority.to_ascii_lowercase()
    )
}

/// Performs the TLS handshake (with `--tls`) and the upgrade handshake within the
/// deadline; refuses requests that break `rules` (431, 403), and answers 503 when
/// `admitted` is false.
async fn handshake(
    tcp: TcpStream,
    tls: Option<Arc<ServerTls>>,
    peer: SocketAddr,
    admitted: bool,
    rules: Arc<HandshakeRules>,
    stats: Arc<Stats>,
) -> Option<(ServerStream, String)> {
    let _ = tcp.set_nodelay(true);
    let mut target = String::from("/");
    let config = rules.config;
    let deadline = rules.deadline;
    // The callback's signature is tungstenite's; its large error type is not ours to box.
    // A refusal makes tungstenite answer it and fail the handshake (counted as rejected).
    #[allow(clippy::result_large_err)]
    let check = |request: &Request, response: Response| -> Result<Response, ErrorResponse> {
        if let Some(path_and_query) = request.uri().path_and_query() {
            target = path_and_query.to_string();
        }
        if let Some((status, body)) = rules.refusal(request) {
            tracing::debug!(%peer, %status, "upgrade refused");
            let mut refusal = ErrorResponse::new(Some(body.into()));
            *refusal.status_mut() = status;
            return Err(refusal);
        }
        if admitted {
            return Ok(response);
        }
        let mut refusal = ErrorResponse::new(Some(
            "server at capacity (--max-connections); retry later\n".into(),
        ));
        *refusal.status_mut() = StatusCode::SERVICE_UNAVAILABLE;
        refusal
            .headers_mut()
            .insert("retry-after", "1".parse().expect("valid header value"));
        Err(refusal)
    };
    let upgrade = async {
        let socket = match tls {
            Some(tls) => tls.accept(tcp).await?,
            None => ServerSocket::Plain(tcp),
        };
        tokio_tungstenite::accept_hdr_async_with_config(socket, check, Some(config)).await
    };
    let outcome = tokio::time::timeout(deadline, upgrade).await;
    match outcome {
        Ok(Ok(ws)) if admitted => Some((ws, target)),
        Ok(Ok(_)) => None,
        Ok(Err(e)) => {
            Stats::bump(&stats.connections_rejected);
            tracing::debug!(%peer, error = %e, "handshake failed");
            None
        }
        Err(_) => {
            Stats::bump(&stats.connections_rejected);
            tracing::debug!(%peer, "handshake timed out");
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;
    use crate::cli::{Cli, Mode};

    fn server_args(args: &[&str]) -> Result<ServerArgs, clap::Error> {
        let cli = Cli::try_parse_from(["test-servers", "echo"].iter().chain(args))?;
        let Mode::Echo(echo) = cli.mode else {
            panic!("parsed the wrong mode")
        };
        Ok(echo.server)
    }

    fn rules(args: &[&str]) -> HandshakeRules {
        let args = server_args(args).unwrap();
        HandshakeRules {
            config: websocket_config(&args),
            deadline: args.handshake_timeout,
            allowed_origins: args.allowed_origins,
            max_header_bytes: args.max_header_bytes as usize,
        }
    }

    fn request(headers: &[(&str, &str)]) -> Request {
        let mut request = Request::builder().uri("/");
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        request.body(()).unwrap()
    }

    #[test]
    fn hardening_options_parse() {
        let args = server_args(&[]).unwrap();
        assert!(args.allowed_origins.is_empty());
        assert_eq!(args.max_header_bytes, 8192);
        let args = server_args(&[
            "--allowed-origin",
            "HTTPS://App.Example:8443",
            "--allowed-origin",
            "http://localhost",
            "--max-header-bytes",
            "1024",
        ])
        .unwrap();
        assert_eq!(
            args.allowed_origins,
            ["https://app.example:8443", "http://localhost"]
        );
        assert_eq!(args.max_header_bytes, 1024);
        for bad in ["app.example", "https://", "://x", "https://a.example/path"] {
            assert!(server_args(&["--allowed-origin", bad]).is_err(), "{bad}");
        }
        assert!(server_args(&["--max-header-bytes", "0"]).is_err());
        assert!(server_args(&["--max-header-bytes", "65537"]).is_err());
    }

    #[test]
    fn origins_normalize_scheme_and_host_only() {
        assert_eq!(
            normalize_origin("HTTPS://App.Example"),
            "https://app.example"
        );
        assert_eq!(normalize_origin("HTTP://A.B:80/Path"), "http://a.b:80/Path");
        assert_eq!(normalize_origin("null"), "null");
    }

    #[test]
    fn origins_are_checked_when_listed() {
        let any = rules(&[]);
        assert_eq!(any.refusal(&request(&[])), None);
        assert_eq!(
            any.refusal(&request(&[("origin", "https://x.example")])),
            None
        );

        let strict = rules(&["--allowed-origin", "https://good.example"]);
        assert_eq!(
            strict.refusal(&request(&[("origin", "https://good.example")])),
            None
        );
        assert_eq!(
            strict.refusal(&request(&[("origin", "HTTPS://Good.Example")])),
            None
        );
        let forbidden = Some((
            StatusCode::FORBIDDEN,
            "origin not allowed (--allowed-origin)\n",
        ));
        for origins in [
            &[][..],
            &[("origin", "https://bad.example")],
            &[("origin", "http://good.example")],
            &[("origin", "https://good.example:444")],
            &[("origin", "null")],
            &[
                ("origin", "https://good.example"),
                ("origin", "https://good.example"),
            ],
        ] {
            assert_eq!(strict.refusal(&request(origins)), forbidden, "{origins:?}");
        }
    }

    #[test]
    fn oversized_headers_are_431() {
        let rules = rules(&["--max-header-bytes", "100"]);
        let fits = "v".repeat(100 - "x-pad".len());
        assert_eq!(rules.refusal(&request(&[("x-pad", &fits)])), None);
        let over = format!("{fits}v");
        assert_eq!(
            rules
                .refusal(&request(&[("x-pad", &over)]))
                .map(|(status, _)| status),
            Some(StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE)
        );
    }
}
