//! WebSocket modes on the shared accept loop: [`WebSocket`] is the [`Service`] that takes
//! each TCP connection through TLS (`--tls`) and the upgrade handshake within its deadline,
//! with admission control (431 header cap, 403 origin list, 503 capacity; see
//! `admission.rs`) and permessage-deflate negotiation for the paths a handler serves on
//! `ws_client::wire`, then hands the session to the mode's [`Handler`].

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use anyhow::Context as _;
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::{
    handshake::server::{ErrorResponse, Request, Response},
    http::StatusCode,
};

use crate::admission::HandshakeRules;
use crate::cli::ServerArgs;
use crate::events::Listening;
use crate::server::{Context, Service};
use crate::session::{Deflate, ServerStream, Session};
use crate::stats::Stats;
use crate::stats_line::ExtraCounters;
use crate::tls::{self, ServerSocket, ServerTls};

/// A WebSocket mode: what to do with each upgraded connection.
pub trait Handler: Send + Sync + 'static {
    /// Serves one connection until it ends.
    fn serve(&self, ws: ServerStream, session: Session) -> impl Future<Output = ()> + Send;

    /// Counters of the mode's own, added to each `stats` line (none by default).
    fn extra_stats(&self) -> ExtraCounters {
        ExtraCounters::new()
    }

    /// Whether connections to `path` may agree to permessage-deflate: only paths served on
    /// `ws_client::wire` (tungstenite reads no compressed frame). None by default.
    fn deflate_on(_path: &str) -> bool
    where
        Self: Sized,
    {
        false
    }
}

/// A [`Handler`] served over WebSocket (and TLS with `--tls`).
#[derive(Debug)]
pub struct WebSocket<H> {
    handler: H,
    tls: Option<Arc<ServerTls>>,
    rules: Arc<HandshakeRules>,
    idle_timeout: Option<std::time::Duration>,
    /// The permessage-deflate policy (`None` with `--no-deflate`).
    deflate: Option<ws_client::DeflateConfig>,
}

impl<H: Handler> WebSocket<H> {
    /// `handler` under the limits of `args`; with `--tls`, makes the throw-away CA and
    /// server certificate.
    pub fn new(args: &ServerArgs, handler: H) -> anyhow::Result<Self> {
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
        Ok(Self {
            handler,
            tls,
            rules: Arc::new(HandshakeRules::new(args)),
            idle_timeout: args.idle_timeout(),
            deflate: args.deflate(),
        })
    }
}

impl<H: Handler> Service for WebSocket<H> {
    fn serve_tcp(
        self: Arc<Self>,
        tcp: TcpStream,
        peer: SocketAddr,
        admitted: bool,
        context: Context,
    ) -> impl Future<Output = ()> + Send + 'static {
        // Boxed, and made before the task runs: the handshake's state (and its arguments)
        // is freed once it is done instead of staying part of every connection's task.
        let handshaking = Box::pin(handshake(
            tcp,
            self.tls.clone(),
            peer,
            admitted,
            Arc::clone(&self.rules),
            Arc::clone(&context.stats),
            self.deflate
                .map(|policy| (policy, H::deflate_on as fn(&str) -> bool)),
        ));
        async move {
            let Some((ws, target, deflate)) = handshaking.await else {
                return;
            };
            let stats = &context.stats;
            Stats::bump(&stats.connections_accepted);
            stats.connections_active.fetch_add(1, Ordering::Relaxed);
            let session = Session {
                stats: Arc::clone(stats),
                shutdown: context.shutdown.clone(),
                idle_timeout: self.idle_timeout,
                target,
                deflate: deflate.map(Box::new),
            };
            // Boxed: the task's own allocation then holds only this small block, and the
            // serving future gets an allocation of its exact size. Awaited in place, it was
            // laid out inside the task beside this block's other states, rounded up to the
            // task's alignment: 1,920 bytes per load connection, measured with heaptrack,
            // against about 1,250 boxed.
            Box::pin(self.handler.serve(ws, session)).await;
            stats.connections_active.fetch_sub(1, Ordering::Relaxed);
        }
    }

    /// With `--tls`: `wss://` in the URL, and the CA certificate's file in `ca_cert`.
    async fn start(&self, ready: &mut Listening<'_>, _context: &Context) -> anyhow::Result<()> {
        if let Some(tls) = &self.tls {
            ready.url = format!("wss://{}/", ready.addr);
            ready.add("ca_cert", tls.ca_path().display().to_string());
        }
        Ok(())
    }

    fn extra_stats(&self) -> ExtraCounters {
        self.handler.extra_stats()
    }
}

/// The permessage-deflate policy, and which request paths it applies to.
type DeflatePolicy = (ws_client::DeflateConfig, fn(&str) -> bool);

/// Performs the TLS handshake (with `--tls`) and the upgrade handshake within the
/// deadline; refuses requests that break `rules` (431, 403), and answers 503 when
/// `admitted` is false. With `deflate` (the policy, and which paths may use it), a
/// permessage-deflate offer to such a path is accepted (narrowed to the policy) or declined.
async fn handshake(
    tcp: TcpStream,
    tls: Option<Arc<ServerTls>>,
    peer: SocketAddr,
    admitted: bool,
    rules: Arc<HandshakeRules>,
    stats: Arc<Stats>,
    deflate: Option<DeflatePolicy>,
) -> Option<(ServerStream, String, Option<Deflate>)> {
    let _ = tcp.set_nodelay(true);
    let mut target = String::from("/");
    let mut agreed = None;
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
            let mut response = response;
            if let Some((policy, _)) = deflate.filter(|(_, applies)| applies(request.uri().path()))
            {
                let offers = request
                    .headers()
                    .get_all("sec-websocket-extensions")
                    .iter()
                    .filter_map(|value| value.to_str().ok());
                if let Some(params) = ws_client::wire::accept_deflate(&policy, offers) {
                    if let Ok(value) = params.header_value().parse() {
                        response
                            .headers_mut()
                            .insert("sec-websocket-extensions", value);
                        agreed = Some(Deflate { params, policy });
                    }
                }
            }
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
        Ok(Ok(ws)) if admitted => Some((ws, target, agreed)),
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
