//! The client's opening handshake (RFC 6455 section 4.1): the upgrade request is written in
//! one piece (with the permessage-deflate offer, if configured), and the response is parsed
//! with `httparse` and checked field by field (the extension answer by `negotiate`).
//! Whatever arrives after the response head is kept: it is the start of the first frames.

use bytes::{Buf, BytesMut};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_tungstenite::tungstenite::handshake::{client::generate_key, derive_accept_key};

use crate::config::DeflateConfig;
use crate::error::Error;
use crate::tls::Socket;
use crate::wire::negotiate::{self, DeflateParams};

/// Most bytes of response head read before the handshake is refused.
const MAX_RESPONSE_HEAD: usize = 64 << 10;
/// Most response header fields accepted (tungstenite's own cap is 124).
const MAX_RESPONSE_HEADERS: usize = 64;
/// Most characters of a refusing response's body quoted in the error.
const QUOTED_BODY: usize = 200;

/// What the client asks for.
#[derive(Debug)]
pub(crate) struct Request<'a> {
    /// `Host` header value (`host` or `host:port`).
    pub(crate) host: &'a str,
    /// Path and query (`/chat?room=1`).
    pub(crate) target: &'a str,
    /// Extra headers, already checked to be valid HTTP.
    pub(crate) headers: &'a [(String, String)],
    /// Subprotocols offered, most preferred first.
    pub(crate) subprotocols: &'a [String],
    /// permessage-deflate, offered with these parameters.
    pub(crate) compression: Option<&'a DeflateConfig>,
}

/// What the handshake established.
#[derive(Debug)]
pub(crate) struct Upgraded {
    /// The subprotocol the server chose, if any.
    pub(crate) subprotocol: Option<String>,
    /// permessage-deflate as agreed, if the server accepted the offer.
    pub(crate) compression: Option<DeflateParams>,
    /// Bytes that followed the response head (frames the server sent at once).
    pub(crate) buffered: BytesMut,
}

/// Sends the upgrade request and checks the answer.
pub(crate) async fn upgrade(socket: &mut Socket, request: &Request<'_>) -> Result<Upgraded, Error> {
    let key = generate_key();
    socket.write_all(&encode_request(request, &key)).await?;
    socket.flush().await?;
    let mut buffer = BytesMut::with_capacity(1024);
    loop {
        let read = socket.read_buf(&mut buffer).await?;
        if read == 0 {
            return Err(Error::HandshakeRejected {
                status: None,
                reason: "the server closed the connection during the handshake".into(),
                retry_after: None,
            });
        }
        if let Some(accepted) = check_response(&buffer, request, &key)? {
            buffer.advance(accepted.head_len);
            return Ok(Upgraded {
                subprotocol: accepted.subprotocol,
                compression: accepted.compression,
                buffered: buffer,
            });
        }
        if buffer.len() >= MAX_RESPONSE_HEAD {
            return Err(Error::HandshakeRejected {
                status: None,
                reason: format!("the response head is larger than {MAX_RESPONSE_HEAD} bytes"),
                retry_after: None,
            });
        }
    }
}

/// The request bytes: `GET`, the standard upgrade headers, then the configured ones.
fn encode_request(request: &Request<'_>, key: &str) -> Vec<u8> {
    let mut text = format!(
        "GET {} HTTP/1.1\r\nHost: {}\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\
         Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: {key}\r\n",
        request.target, request.host
    );
    if !request.subprotocols.is_empty() {
        text.push_str("Sec-WebSocket-Protocol: ");
        text.push_str(&request.subprotocols.join(", "));
        text.push_str("\r\n");
    }
    if let Some(config) = request.compression {
        text.push_str("Sec-WebSocket-Extensions: ");
        text.push_str(&negotiate::offer(config));
        text.push_str("\r\n");
    }
    for (name, value) in request.headers {
        text.push_str(name);
        text.push_str(": ");
        text.push_str(value);
        text.push_str("\r\n");
    }
    text.push_str("\r\n");
    text.into_bytes()
}

/// What a valid 101 answer established.
#[derive(Debug, PartialEq, Eq)]
struct Accepted {
    /// Bytes of the response head.
    head_len: usize,
    subprotocol: Option<String>,
    compression: Option<DeflateParams>,
}

/// Parses the response: `Ok(None)` while incomplete; once it is a valid 101 for `key`, what
/// it established; the reason it is not otherwise.
fn check_response(
    bytes: &[u8],
    request: &Request<'_>,
    key: &str,
) -> Result<Option<Accepted>, Error> {
    let mut headers = [httparse::EMPTY_HEADER; MAX_RESPONSE_HEADERS];
    let mut response = httparse::Response::new(&mut headers);
    let head_len = match response.parse(bytes) {
        Ok(httparse::Status::Complete(len)) => len,
        Ok(httparse::Status::Partial) => return Ok(None),
        Err(e) => {
            return Err(Error::HandshakeRejected {
                status: None,
                reason: format!("the answer is not a valid HTTP response ({e})"),
                retry_after: None,
            });
        }
    };
    let status = response.code.unwrap_or_default();
    if status != 101 {
        let phrase = response.reason.unwrap_or("unexpected status");
        let body = String::from_utf8_lossy(&bytes[head_len..]);
        let body: String = body.trim().chars().take(QUOTED_BODY).collect();
        return Err(Error::HandshakeRejected {
            status: Some(status),
            reason: if body.is_empty() {
                phrase.to_owned()
            } else {
                format!("{phrase}; body: {body}")
            },
            // Delta-seconds only (`Retry-After: 120`); an HTTP-date is not read.
            retry_after: response
                .headers
                .iter()
                .find(|h| h.name.eq_ignore_ascii_case("retry-after"))
                .and_then(|h| std::str::from_utf8(h.value).ok()?.trim().parse().ok())
                .map(std::time::Duration::from_secs),
        });
    }
    let invalid = |reason: String| Error::HandshakeRejected {
        status: Some(101),
        reason,
        retry_after: None,
    };
    let header = |name: &str| {
        response
            .headers
            .iter()
            .find(|h| h.name.eq_ignore_ascii_case(name))
            .map(|h| String::from_utf8_lossy(h.value).trim().to_owned())
    };
    match header("upgrade") {
        Some(value) if value.eq_ignore_ascii_case("websocket") => {}
        other => {
            return Err(invalid(format!(
                "Upgrade header is {other:?}, not \"websocket\""
            )));
        }
    }
    match header("connection") {
        Some(value)
            if value
                .split(',')
                .any(|token| token.trim().eq_ignore_ascii_case("upgrade")) => {}
        other => {
            return Err(invalid(format!(
                "Connection header is {other:?}, not \"Upgrade\""
            )));
        }
    }
    let expected = derive_accept_key(key.as_bytes());
    match header("sec-websocket-accept") {
        Some(value) if value == expected => {}
        other => {
            return Err(invalid(format!(
                "Sec-WebSocket-Accept is {other:?}, expected {expected:?} for the key sent"
            )));
        }
    }
    // An extension the client did not offer (or not as answered) would mean frames it
    // cannot read.
    let extensions: Vec<&str> = response
        .headers
        .iter()
        .filter(|h| h.name.eq_ignore_ascii_case("sec-websocket-extensions"))
        .map(|h| std::str::from_utf8(h.value).unwrap_or("\u{fffd}").trim())
        .collect();
    let compression = negotiate::check_answer(request.compression, &extensions).map_err(invalid)?;
    let subprotocol = header("sec-websocket-protocol");
    if let Some(chosen) = &subprotocol {
        if !request.subprotocols.iter().any(|offered| offered == chosen) {
            return Err(invalid(format!(
                "the server chose subprotocol {chosen:?}, which this client did not offer"
            )));
        }
    }
    Ok(Some(Accepted {
        head_len,
        subprotocol,
        compression,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: &str = "dGhlIHNhbXBsZSBub25jZQ==";

    fn request<'a>(subprotocols: &'a [String]) -> Request<'a> {
        Request {
            host: "example.com",
            target: "/chat",
            headers: &[],
            subprotocols,
            compression: None,
        }
    }

    fn response(extra: &str) -> String {
        format!(
            "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
             Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n{extra}\r\n"
        )
    }

    #[test]
    fn the_rfc_example_is_accepted_and_trailing_bytes_kept() {
        let text = format!("{}\u{81}\u{0}", response(""));
        let head = check_response(text.as_bytes(), &request(&[]), KEY).unwrap();
        let accepted = Accepted {
            head_len: response("").len(),
            subprotocol: None,
            compression: None,
        };
        assert_eq!(head, Some(accepted));
        let partial = &text.as_bytes()[..20];
        assert_eq!(check_response(partial, &request(&[]), KEY).unwrap(), None);
    }

    #[test]
    fn wrong_answers_are_refused_with_their_status() {
        let refused = |text: &str, offered: &[String]| match check_response(
            text.as_bytes(),
            &request(offered),
            KEY,
        ) {
            Err(Error::HandshakeRejected { status, .. }) => status,
            other => panic!("{text:?}: {other:?}"),
        };
        let not_found = "HTTP/1.1 404 Not Found\r\nContent-Length: 4\r\n\r\nnope";
        assert_eq!(refused(not_found, &[]), Some(404));
        let busy = "HTTP/1.1 503 Busy\r\nRetry-After: 7\r\nContent-Length: 0\r\n\r\n";
        match check_response(busy.as_bytes(), &request(&[]), KEY) {
            Err(Error::HandshakeRejected { retry_after, .. }) => {
                assert_eq!(retry_after, Some(std::time::Duration::from_secs(7)));
            }
            other => panic!("{other:?}"),
        }
        let bad_accept = response("").replace("s3pPLMBiTxaQ9kYGzzhZRbK+xOo=", "AAAA");
        assert_eq!(refused(&bad_accept, &[]), Some(101));
        let extension = response("Sec-WebSocket-Extensions: permessage-deflate\r\n");
        assert_eq!(refused(&extension, &[]), Some(101));
        let protocol = response("Sec-WebSocket-Protocol: chat\r\n");
        assert_eq!(refused(&protocol, &["mqtt".into()]), Some(101));
        assert_eq!(refused("SSH-2.0-OpenSSH\r\n\r\n", &[]), None);
        let flood = format!("HTTP/1.1 101 OK\r\n{}", "X-A: b\r\n".repeat(100));
        assert_eq!(refused(&flood, &[]), None);
    }

    #[test]
    fn an_offered_subprotocol_is_returned() {
        let text = response("Sec-WebSocket-Protocol: chat\r\n");
        let offered = ["mqtt".to_owned(), "chat".to_owned()];
        let accepted = check_response(text.as_bytes(), &request(&offered), KEY)
            .unwrap()
            .unwrap();
        assert_eq!(accepted.subprotocol.as_deref(), Some("chat"));
    }

    #[test]
    fn a_deflate_offer_is_sent_and_its_answer_checked() {
        let config = DeflateConfig {
            server_no_context_takeover: true,
            ..DeflateConfig::default()
        };
        let offering = Request {
            compression: Some(&config),
            ..request(&[])
        };
        let text = String::from_utf8(encode_request(&offering, KEY)).unwrap();
        assert!(text.contains(
            "\r\nSec-WebSocket-Extensions: permessage-deflate; server_no_context_takeover; \
             client_max_window_bits\r\n"
        ));
        // Over two header lines, one of them empty.
        let accepted = response(
            "sec-websocket-extensions: \r\nSec-WebSocket-Extensions: permessage-deflate; \
             server_no_context_takeover; client_max_window_bits=10\r\n",
        );
        let agreed = check_response(accepted.as_bytes(), &offering, KEY)
            .unwrap()
            .unwrap()
            .compression
            .expect("agreed");
        assert!(agreed.server_no_context_takeover);
        assert_eq!(agreed.client_max_window_bits, 10);
        let declined = check_response(response("").as_bytes(), &offering, KEY).unwrap();
        assert_eq!(declined.unwrap().compression, None);
        for bad in [
            "Sec-WebSocket-Extensions: permessage-deflate\r\n",
            "Sec-WebSocket-Extensions: permessage-deflate; server_no_context_takeover; x\r\n",
            "Sec-WebSocket-Extensions: x-other\r\n",
        ] {
            match check_response(response(bad).as_bytes(), &offering, KEY) {
                Err(Error::HandshakeRejected {
                    status: Some(101), ..
                }) => {}
                other => panic!("{bad:?}: {other:?}"),
            }
        }
    }

    #[test]
    fn the_request_carries_key_subprotocols_and_headers() {
        let headers = [("Authorization".to_owned(), "Bearer x".to_owned())];
        let offered = ["a".to_owned(), "b".to_owned()];
        let request = Request {
            headers: &headers,
            ..request(&offered)
        };
        let text = String::from_utf8(encode_request(&request, KEY)).unwrap();
        assert!(text.starts_with("GET /chat HTTP/1.1\r\nHost: example.com\r\n"));
        assert!(text.contains(&format!("Sec-WebSocket-Key: {KEY}\r\n")));
        assert!(text.contains("Sec-WebSocket-Protocol: a, b\r\n"));
        assert!(text.ends_with("Authorization: Bearer x\r\n\r\n"));
    }
}
