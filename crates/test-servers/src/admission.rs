//! Admission of WebSocket upgrades: the rules every upgrade request is held to (431 for
//! oversized headers, 403 for an origin not on the `--allowed-origin` list) and the
//! tungstenite limits, both from the command line. `upgrade.rs` applies them.

use std::time::Duration;

use tokio_tungstenite::tungstenite::{
    handshake::server::Request, http::StatusCode, protocol::WebSocketConfig,
};

use crate::cli::ServerArgs;

/// Read buffer per connection unless `--read-buffer-size` says otherwise.
pub const DEFAULT_READ_BUFFER_SIZE: usize = 4 << 10;

/// The tungstenite limits from the command line; the frame limit never exceeds the
/// message limit so oversized frames are refused from their header.
pub fn websocket_config(args: &ServerArgs) -> WebSocketConfig {
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
#[derive(Debug)]
pub struct HandshakeRules {
    /// The tungstenite limits.
    pub config: WebSocketConfig,
    /// `--handshake-timeout`.
    pub deadline: Duration,
    /// `--allowed-origin`, normalized; empty allows any origin.
    allowed_origins: Vec<String>,
    /// `--max-header-bytes`.
    max_header_bytes: usize,
}

impl HandshakeRules {
    /// The rules `args` set.
    pub fn new(args: &ServerArgs) -> Self {
        Self {
            config: websocket_config(args),
            deadline: args.handshake_timeout,
            allowed_origins: args.allowed_origins.clone(),
            max_header_bytes: args.max_header_bytes as usize,
        }
    }

    /// Why `request` is refused, if it is: 431 for oversized headers, 403 for an origin
    /// not allowed.
    ///
    /// tungstenite refuses some requests before they get here, as a failed connection
    /// without any HTTP answer: more than `MAX_HEADERS` (124) headers, which is httparse's
    /// buffer in `handshake/headers.rs`, and more than 65536 bytes (or 512 reads) before
    /// the end of the headers (`AttackCheck` in `handshake/machine.rs`). Hence the cap of
    /// 65536 on `--max-header-bytes`.
    pub fn refusal(&self, request: &Request) -> Option<(StatusCode, &'static str)> {
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
        HandshakeRules::new(&server_args(args).unwrap())
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
