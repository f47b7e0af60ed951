//! HTTP `CONNECT` tunnels (RFC 9110 section 9.3.6), with Basic auth (RFC 7617).
//!
//! Written here rather than taken from a crate: it is one request and one response head,
//! parsed with httparse (already used for the upgrade), and doing it by hand keeps what
//! matters here under control: the answer is read up to its blank line and not one byte
//! further (what follows belongs to the server), its size is capped, and each failure maps
//! to a [`ProxyFailure`].

use base64::Engine;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use super::ProxyFailure;
use super::address::Endpoint;
use crate::error::Error;

/// The largest proxy answer head read (status line and headers), in bytes.
pub(crate) const MAX_RESPONSE_HEAD: usize = 16 << 10;
/// The most headers a proxy answer may have.
const MAX_HEADERS: usize = 64;

/// Asks the proxy on `tcp` for a tunnel to `host:port` and reads its answer; on success
/// the next byte on `tcp` is the server's.
pub(crate) async fn tunnel(
    tcp: &mut TcpStream,
    endpoint: &Endpoint,
    host: &str,
    port: u16,
) -> Result<(), Error> {
    let request = request(endpoint, host, port);
    let lost = |e: std::io::Error| {
        endpoint.error(
            ProxyFailure::Protocol,
            format!("the connection to the proxy failed during CONNECT: {e}"),
        )
    };
    tcp.write_all(request.as_bytes()).await.map_err(lost)?;
    let head = read_head(tcp, endpoint).await?;
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut response = httparse::Response::new(&mut headers);
    let (status, phrase) = match response.parse(&head) {
        Ok(httparse::Status::Complete(_)) => (
            response.code.unwrap_or_default(),
            response.reason.unwrap_or_default().to_owned(),
        ),
        Ok(httparse::Status::Partial) | Err(_) => {
            return Err(endpoint.error(
                ProxyFailure::Protocol,
                format!(
                    "the answer to CONNECT is not HTTP (it starts {:?}); is this an HTTP proxy?",
                    String::from_utf8_lossy(&head[..head.len().min(40)])
                ),
            ));
        }
    };
    let answer = format!("HTTP {status} {phrase}").trim_end().to_owned();
    let target = authority(host, port);
    let (kind, reason) = match status {
        200..=299 => return Ok(()),
        // 401 is not the server's: the request went to the proxy only (tinyproxy answers
        // wrong credentials with it).
        401 | 407 if endpoint.credentials.is_some() => (
            ProxyFailure::AuthFailed,
            format!("{answer}: the proxy refused the user name and password in the proxy URL"),
        ),
        401 | 407 => (
            ProxyFailure::AuthRequired,
            format!(
                "{answer}: the proxy wants credentials; give them as user:password@ in the proxy URL"
            ),
        ),
        // 500: tinyproxy's answer when it cannot connect.
        500 | 502..=504 => (
            ProxyFailure::TargetUnreachable,
            format!("{answer}: the proxy could not reach {target}"),
        ),
        _ => (
            ProxyFailure::Refused,
            format!("{answer}: the proxy refused a tunnel to {target}"),
        ),
    };
    Err(endpoint.error(kind, reason))
}

/// The `CONNECT` request for `host:port`, with `Proxy-Authorization` when the endpoint has
/// credentials.
fn request(endpoint: &Endpoint, host: &str, port: u16) -> String {
    let target = authority(host, port);
    let mut request = format!("CONNECT {target} HTTP/1.1\r\nHost: {target}\r\n");
    if let Some(credentials) = &endpoint.credentials {
        let pair = format!("{}:{}", credentials.user, credentials.password);
        let encoded = base64::engine::general_purpose::STANDARD.encode(pair);
        request.push_str(&format!("Proxy-Authorization: Basic {encoded}\r\n"));
    }
    request.push_str("\r\n");
    request
}

/// `host:port`, an IPv6 address in brackets.
fn authority(host: &str, port: u16) -> String {
    if host.contains(':') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    }
}

/// Reads the answer's head, up to and including its blank line and nothing after it: each
/// chunk is peeked first, and only the bytes that belong to the head are taken off the
/// socket. At most [`MAX_RESPONSE_HEAD`] bytes.
async fn read_head(tcp: &mut TcpStream, endpoint: &Endpoint) -> Result<Vec<u8>, Error> {
    let mut head = Vec::new();
    let mut chunk = [0u8; 2048];
    let failed = |e: std::io::Error| {
        endpoint.error(
            ProxyFailure::Protocol,
            format!("reading the proxy's answer to CONNECT failed: {e}"),
        )
    };
    loop {
        let peeked = tcp.peek(&mut chunk).await.map_err(failed)?;
        if peeked == 0 {
            return Err(endpoint.error(
                ProxyFailure::Protocol,
                format!(
                    "the proxy closed the connection after {} bytes of its answer to CONNECT",
                    head.len()
                ),
            ));
        }
        let before = head.len();
        head.extend_from_slice(&chunk[..peeked]);
        let end = end_of_head(&head, before.saturating_sub(2));
        let take = end.map_or(peeked, |end| end - before);
        tcp.read_exact(&mut chunk[..take]).await.map_err(failed)?;
        if let Some(end) = end {
            head.truncate(end);
            return Ok(head);
        }
        if head.len() > MAX_RESPONSE_HEAD {
            return Err(endpoint.error(
                ProxyFailure::Protocol,
                format!(
                    "the proxy's answer to CONNECT has no end of head within {MAX_RESPONSE_HEAD} bytes"
                ),
            ));
        }
    }
}

/// Where the head ends (just past its blank line), looking for it from `from`: a line may
/// end with CRLF or a bare LF (RFC 9112 section 2.2 lets a recipient take either).
fn end_of_head(head: &[u8], from: usize) -> Option<usize> {
    (from..head.len()).find_map(|at| {
        if head[at] != b'\n' {
            return None;
        }
        let next = at + 1 + usize::from(head.get(at + 1) == Some(&b'\r'));
        (head.get(next) == Some(&b'\n')).then_some(next + 1)
    })
}

#[cfg(test)]
mod tests {
    use tokio::net::TcpListener;

    use super::*;

    fn endpoint(url: &str) -> Endpoint {
        super::super::address::parse(url).unwrap()
    }

    #[test]
    fn the_request_names_the_server_and_carries_basic_auth() {
        let plain = request(
            &endpoint("http://proxy.example:3128"),
            "server.example",
            443,
        );
        assert_eq!(
            plain,
            "CONNECT server.example:443 HTTP/1.1\r\nHost: server.example:443\r\n\r\n"
        );
        let with_auth = request(
            &endpoint("http://Aladdin:open%20sesame@p.example"),
            "fd00::2",
            80,
        );
        assert_eq!(
            with_auth,
            "CONNECT [fd00::2]:80 HTTP/1.1\r\nHost: [fd00::2]:80\r\n\
             Proxy-Authorization: Basic QWxhZGRpbjpvcGVuIHNlc2FtZQ==\r\n\r\n"
        );
    }

    /// A proxy answering `answer` in one write, then `after` in another; returns the
    /// result of `tunnel` and what the client reads after it.
    async fn exchange(answer: Vec<u8>, after: &'static [u8]) -> (Result<(), Error>, Vec<u8>) {
        let listener = TcpListener::bind(("127.0.0.1", 0)).await.unwrap();
        let address = listener.local_addr().unwrap();
        let proxy = tokio::spawn(async move {
            let (mut tcp, _) = listener.accept().await.unwrap();
            let mut request = Vec::new();
            while !request.ends_with(b"\r\n\r\n") {
                let mut byte = [0u8];
                if tcp.read(&mut byte).await.unwrap() == 0 {
                    return;
                }
                request.push(byte[0]);
            }
            tcp.write_all(&answer).await.unwrap();
            let _ = tcp.write_all(after).await;
        });
        let endpoint = endpoint(&format!("http://{address}"));
        let mut tcp = TcpStream::connect(address).await.unwrap();
        let outcome = tunnel(&mut tcp, &endpoint, "server.example", 80).await;
        let mut rest = Vec::new();
        if outcome.is_ok() {
            tcp.read_to_end(&mut rest).await.unwrap();
        }
        proxy.await.unwrap();
        (outcome, rest)
    }

    #[tokio::test]
    async fn bytes_after_the_head_are_left_for_the_server() {
        let answer = b"HTTP/1.1 200 Connection established\r\nX: y\r\n\r\nfirst".to_vec();
        let (outcome, rest) = exchange(answer, b" second").await;
        outcome.unwrap();
        assert_eq!(rest, b"first second");
    }

    /// A proxy that ends its lines with a bare LF is understood, not waited on until the
    /// connect deadline; the bytes after its blank line still go to the server.
    #[tokio::test]
    async fn an_answer_with_bare_lf_line_ends_is_read() {
        for answer in [
            &b"HTTP/1.1 200 OK\nVia: lf-proxy\n\nfirst"[..],
            b"HTTP/1.1 200 OK\r\nVia: mixed\n\r\nfirst",
        ] {
            let exchanged = tokio::time::timeout(
                std::time::Duration::from_secs(5),
                exchange(answer.to_vec(), b" second"),
            );
            let (outcome, rest) = exchanged.await.expect("the answer's end was not seen");
            outcome.unwrap();
            assert_eq!(rest, b"first second");
        }
    }

    #[test]
    fn the_end_of_a_head_is_found_across_reads() {
        let head = b"HTTP/1.1 200 OK\r\n\r\nrest";
        for from in 0..=16 {
            assert_eq!(end_of_head(head, from), Some(19), "from {from}");
        }
        assert_eq!(end_of_head(b"HTTP/1.1 200 OK\r\n\r", 0), None);
        assert_eq!(end_of_head(b"HTTP/1.1 200 OK\n", 0), None);
    }

    #[tokio::test]
    async fn refusals_and_garbage_are_proxy_errors() {
        let kind = |outcome: Result<(), Error>| match outcome {
            Err(Error::Proxy { kind, reason, .. }) => (kind, reason),
            other => panic!("{other:?}"),
        };
        let (outcome, _) = exchange(b"HTTP/1.1 403 Forbidden\r\n\r\n".to_vec(), b"").await;
        let (failure, reason) = kind(outcome);
        assert_eq!(failure, ProxyFailure::Refused);
        assert!(reason.contains("HTTP 403 Forbidden"), "{reason}");
        assert!(reason.contains("server.example:80"), "{reason}");
        let (outcome, _) = exchange(b"HTTP/1.0 502 Bad Gateway\r\n\r\n".to_vec(), b"").await;
        assert_eq!(kind(outcome).0, ProxyFailure::TargetUnreachable);
        for status in ["407 Who", "401 Unauthorized"] {
            let answer = format!("HTTP/1.1 {status}\r\n\r\n").into_bytes();
            let (outcome, _) = exchange(answer, b"").await;
            assert_eq!(kind(outcome).0, ProxyFailure::AuthRequired);
        }
        let (outcome, _) = exchange(b"SSH-2.0-OpenSSH\r\n\r\n".to_vec(), b"").await;
        let (failure, reason) = kind(outcome);
        assert_eq!(failure, ProxyFailure::Protocol);
        assert!(reason.contains("SSH-2.0"), "{reason}");
        let (outcome, _) = exchange(b"HTTP/1.1 200 OK\r\n".to_vec(), b"").await;
        assert!(kind(outcome).1.contains("closed the connection"));
        let endless = [
            b"HTTP/1.1 200 OK\r\n".to_vec(),
            vec![b'x'; 2 * MAX_RESPONSE_HEAD],
        ];
        let (outcome, _) = exchange(endless.concat(), b"").await;
        let (failure, reason) = kind(outcome);
        assert_eq!(failure, ProxyFailure::Protocol);
        assert!(reason.contains("no end of head"), "{reason}");
    }
}
