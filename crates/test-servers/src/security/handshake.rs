//! The upgrade request, read by hand (bounded), the correct 101 response, and the handshake
//! attacks: wrong accept value, wrong status, missing header, unoffered protocol or
//! extension, a dribbled response, no response, a flood of headers.

use std::time::Duration;

use tokio::io::AsyncReadExt;
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::handshake::derive_accept_key;

use super::conn::Conn;

/// Largest upgrade request read; a larger one is answered with 431.
pub const MAX_REQUEST: usize = 16 << 10;
/// Most request headers parsed.
const MAX_HEADERS: usize = 64;
/// Extra headers `header-flood` sends.
const FLOOD_HEADERS: usize = 10_000;
/// Pause between the bytes of `slow-handshake`.
const DRIBBLE: Duration = Duration::from_secs(1);

/// The parts of a client's upgrade request that the attacks need.
#[derive(Debug, Clone, Default)]
pub struct UpgradeRequest {
    /// The request target (path and query).
    pub target: String,
    /// `Sec-WebSocket-Key`, if the client sent one.
    pub key: Option<String>,
    /// The subprotocols the client offered.
    pub protocols: Vec<String>,
    /// The `Sec-WebSocket-Extensions` the client offered, joined.
    pub extensions: String,
}

impl UpgradeRequest {
    /// The path of the target, without the query.
    pub fn path(&self) -> &str {
        crate::target::split(&self.target).0
    }

    /// The correct `Sec-WebSocket-Accept` value for this request.
    pub fn accept(&self) -> String {
        derive_accept_key(self.key.as_deref().unwrap_or_default().as_bytes())
    }
}

/// Why an upgrade request could not be read.
#[derive(Debug)]
pub enum RequestError {
    /// The connection ended or failed first.
    Closed,
    /// The request is not valid HTTP.
    Malformed(String),
    /// The request is larger than [`MAX_REQUEST`].
    TooLarge,
}

/// Reads one upgrade request, at most [`MAX_REQUEST`] bytes (the caller bounds the time).
pub async fn read_request(tcp: &mut TcpStream) -> Result<UpgradeRequest, RequestError> {
    let mut buffer = Vec::with_capacity(1024);
    let mut scratch = [0u8; 1024];
    loop {
        let n = tcp
            .read(&mut scratch)
            .await
            .map_err(|_| RequestError::Closed)?;
        if n == 0 {
            return Err(RequestError::Closed);
        }
        buffer.extend_from_slice(&scratch[..n]);
        let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
        let mut request = httparse::Request::new(&mut headers);
        match request.parse(&buffer) {
            Ok(httparse::Status::Complete(_)) => return Ok(upgrade_request(&request)),
            Ok(httparse::Status::Partial) if buffer.len() < MAX_REQUEST => {}
            Ok(httparse::Status::Partial) => return Err(RequestError::TooLarge),
            Err(e) => return Err(RequestError::Malformed(e.to_string())),
        }
    }
}

fn upgrade_request(request: &httparse::Request<'_, '_>) -> UpgradeRequest {
    let mut upgrade = UpgradeRequest {
        target: request.path.unwrap_or("/").to_owned(),
        ..UpgradeRequest::default()
    };
    for header in request.headers.iter() {
        let value = String::from_utf8_lossy(header.value).trim().to_owned();
        if header.name.eq_ignore_ascii_case("sec-websocket-key") {
            upgrade.key = Some(value);
        } else if header.name.eq_ignore_ascii_case("sec-websocket-protocol") {
            upgrade
                .protocols
                .extend(value.split(',').map(|p| p.trim().to_owned()));
        } else if header.name.eq_ignore_ascii_case("sec-websocket-extensions") {
            if !upgrade.extensions.is_empty() {
                upgrade.extensions.push_str(", ");
            }
            upgrade.extensions.push_str(&value);
        }
    }
    upgrade
}

/// A 101 response with `accept` and the `extra` header lines (each ending in CRLF).
pub fn switching(accept: &str, extra: &str) -> String {
    format!(
        "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Accept: {accept}\r\n{extra}\r\n"
    )
}

/// A complete non-upgrade HTTP response that closes the connection.
pub fn plain_response(status: &str, body: &str) -> String {
    format!(
        "HTTP/1.1 {status}\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: {}\r\n\
         Connection: close\r\n\r\n{body}",
        body.len()
    )
}

/// The handshake attacks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HandshakeAttack {
    /// 101 with a Sec-WebSocket-Accept computed from another key.
    BadAccept,
    /// 200 OK instead of 101.
    BadStatus,
    /// 101 without `Upgrade: websocket`.
    NoUpgradeHeader,
    /// 101 selecting a subprotocol that was not offered.
    UnofferedSubprotocol,
    /// 101 enabling an extension that was not offered.
    UnofferedExtension,
    /// A valid 101 response, one byte per second.
    SlowHandshake,
    /// No response at all.
    NoResponse,
    /// 101 with thousands of headers.
    HeaderFlood,
}

impl HandshakeAttack {
    /// Every handshake attack (the catalogue's test checks each has one entry).
    pub const ALL: [HandshakeAttack; 8] = [
        HandshakeAttack::BadAccept,
        HandshakeAttack::BadStatus,
        HandshakeAttack::NoUpgradeHeader,
        HandshakeAttack::UnofferedSubprotocol,
        HandshakeAttack::UnofferedExtension,
        HandshakeAttack::SlowHandshake,
        HandshakeAttack::NoResponse,
        HandshakeAttack::HeaderFlood,
    ];

    /// Plays the attack on `conn`, then reads (and discards) whatever the client still
    /// sends; the caller bounds the time.
    pub async fn play(self, conn: &mut Conn) -> std::io::Result<()> {
        let accept = conn.request.accept();
        match self {
            HandshakeAttack::BadAccept => {
                let wrong = derive_accept_key(b"not the key the client sent");
                tracing::debug!(%wrong, right = %accept, "sending a wrong accept value");
                conn.write(switching(&wrong, "").as_bytes()).await?;
            }
            HandshakeAttack::BadStatus => {
                let body = "200 OK is not an upgrade\n";
                let response = format!(
                    "HTTP/1.1 200 OK\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
                     Sec-WebSocket-Accept: {accept}\r\nContent-Length: {}\r\n\r\n{body}",
                    body.len()
                );
                conn.write(response.as_bytes()).await?;
            }
            HandshakeAttack::NoUpgradeHeader => {
                let response = format!(
                    "HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\n\
                     Sec-WebSocket-Accept: {accept}\r\n\r\n"
                );
                conn.write(response.as_bytes()).await?;
            }
            HandshakeAttack::UnofferedSubprotocol => {
                let mut protocol = String::from("hostile.unoffered");
                while conn.request.protocols.contains(&protocol) {
                    protocol.push('x');
                }
                let extra = format!("Sec-WebSocket-Protocol: {protocol}\r\n");
                conn.write(switching(&accept, &extra).as_bytes()).await?;
            }
            HandshakeAttack::UnofferedExtension => {
                let extension = if conn.request.extensions.contains("permessage-deflate") {
                    "x-hostile-unoffered"
                } else {
                    "permessage-deflate"
                };
                let extra = format!("Sec-WebSocket-Extensions: {extension}\r\n");
                conn.write(switching(&accept, &extra).as_bytes()).await?;
            }
            HandshakeAttack::SlowHandshake => {
                let response = switching(&accept, "");
                for (sent, byte) in response.bytes().enumerate() {
                    conn.write(&[byte]).await?;
                    tracing::debug!(sent = sent + 1, of = response.len(), "dribbled a byte");
                    tokio::time::sleep(DRIBBLE).await;
                }
                conn.upgraded = true;
            }
            HandshakeAttack::NoResponse => tracing::debug!("not answering the request"),
            HandshakeAttack::HeaderFlood => {
                let mut response = switching(&accept, "");
                response.truncate(response.len() - 2);
                conn.write(response.as_bytes()).await?;
                // Sent in slices of 100 headers: the flood is never held whole.
                for start in (0..FLOOD_HEADERS).step_by(100) {
                    let slice: String = (start..start + 100)
                        .map(|i| format!("X-Flood-{i}: {}\r\n", "f".repeat(16)))
                        .collect();
                    conn.write(slice.as_bytes()).await?;
                }
                conn.write(b"\r\n").await?;
                conn.upgraded = true;
            }
        }
        conn.discard_input().await;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_accept_value_follows_rfc_6455() {
        let request = UpgradeRequest {
            key: Some("dGhlIHNhbXBsZSBub25jZQ==".into()),
            ..UpgradeRequest::default()
        };
        assert_eq!(request.accept(), "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
    }

    #[test]
    fn requests_are_parsed_for_what_the_attacks_need() {
        let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
        let mut request = httparse::Request::new(&mut headers);
        let raw = b"GET /bad-accept?x=1 HTTP/1.1\r\nHost: a\r\nSec-WebSocket-Key: k\r\n\
                    Sec-WebSocket-Protocol: a, b\r\nSec-WebSocket-Extensions: e1\r\n\r\n";
        assert!(request.parse(raw).unwrap().is_complete());
        let upgrade = upgrade_request(&request);
        assert_eq!(upgrade.path(), "/bad-accept");
        assert_eq!(upgrade.key.as_deref(), Some("k"));
        assert_eq!(upgrade.protocols, ["a", "b"]);
        assert_eq!(upgrade.extensions, "e1");
    }
}
