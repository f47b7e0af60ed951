//! The control API of `chaos` mode: a tiny HTTP/1.1 server (one request per connection,
//! parsed with httparse) on the port the ready line names in `control`.
//!
//! - `GET /faults`: the fault set in force, as JSON.
//! - `PUT /faults` (or `POST`): replace it with the JSON body (fields left out are off).
//! - `PATCH /faults`: change only the fields the body names (`null` turns one off).
//! - `POST /reset`: clear every fault.
//!
//! A change applies to open connections at once. Bad input gets 400 with
//! `{"error":"..."}` naming the field. Requests are bounded: 16 KiB of head, 64 KiB of
//! body, 5 s in all.

use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio_util::{sync::CancellationToken, task::TaskTracker};

use super::faults::Faults;
use crate::server;

/// Largest request head.
const MAX_HEAD: usize = 16 << 10;
/// Largest request body.
const MAX_BODY: usize = 64 << 10;
/// Longest time one control request may take.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(5);

/// An answer: status code, reason phrase, JSON body.
type Answer = (u16, &'static str, String);

/// Serves the control API until `shutdown`.
pub async fn serve(
    listener: TcpListener,
    faults: Arc<watch::Sender<Faults>>,
    shutdown: CancellationToken,
    tracker: TaskTracker,
) {
    loop {
        let (tcp, peer) = tokio::select! {
            () = shutdown.cancelled() => return,
            accepted = server::accept(&listener) => accepted,
        };
        let faults = Arc::clone(&faults);
        tracker.spawn(async move {
            if tokio::time::timeout(REQUEST_TIMEOUT, handle(tcp, &faults))
                .await
                .is_err()
            {
                tracing::debug!(%peer, "control API: request timed out");
            }
        });
    }
}

/// Reads one request, answers it, closes.
async fn handle(mut tcp: TcpStream, faults: &watch::Sender<Faults>) {
    let answer = match read_request(&mut tcp).await {
        Ok(Some(request)) => route(&request, faults),
        Ok(None) => return,
        Err(answer) => answer,
    };
    let (status, reason, body) = answer;
    let response = format!(
        "HTTP/1.1 {status} {reason}\r\ncontent-type: application/json\r\n\
         content-length: {}\r\nconnection: close\r\n\r\n{body}\n",
        body.len() + 1
    );
    if tcp.write_all(response.as_bytes()).await.is_ok() {
        let _ = tcp.shutdown().await;
    }
}

/// A parsed control request.
#[derive(Debug)]
struct Request {
    method: String,
    path: String,
    body: Vec<u8>,
}

/// Reads a request head and its body; `Ok(None)` when the client went away first.
async fn read_request(tcp: &mut TcpStream) -> Result<Option<Request>, Answer> {
    let mut bytes = Vec::with_capacity(1024);
    let mut scratch = [0u8; 4096];
    let (method, path, body_at, length, expect_continue) = loop {
        let n = match tcp.read(&mut scratch).await {
            Ok(0) | Err(_) => return Ok(None),
            Ok(n) => n,
        };
        bytes.extend_from_slice(&scratch[..n]);
        let mut headers = [httparse::EMPTY_HEADER; 32];
        let mut request = httparse::Request::new(&mut headers);
        match request.parse(&bytes) {
            Ok(httparse::Status::Complete(body_at)) => {
                let mut length = 0;
                let mut expect_continue = false;
                for header in request.headers.iter() {
                    let value = std::str::from_utf8(header.value).unwrap_or_default().trim();
                    if header.name.eq_ignore_ascii_case("content-length") {
                        length = value
                            .parse::<usize>()
                            .map_err(|_| bad_request("content-length is not a number"))?;
                    } else if header.name.eq_ignore_ascii_case("transfer-encoding") {
                        return Err(bad_request("send the body with a content-length"));
                    } else if header.name.eq_ignore_ascii_case("expect") {
                        expect_continue = value.eq_ignore_ascii_case("100-continue");
                    }
                }
                let method = request.method.unwrap_or_default().to_owned();
                let path = request.path.unwrap_or_default();
                let path = path
                    .split_once('?')
                    .map_or(path, |(path, _)| path)
                    .to_owned();
                break (method, path, body_at, length, expect_continue);
            }
            Ok(httparse::Status::Partial) if bytes.len() < MAX_HEAD => {}
            Ok(httparse::Status::Partial) => return Err(bad_request("request head too large")),
            Err(e) => return Err(bad_request(&format!("not an HTTP request: {e}"))),
        }
    };
    if length > MAX_BODY {
        return Err(bad_request("body too large (64 KiB at most)"));
    }
    if expect_continue && bytes.len() - body_at < length {
        let _ = tcp.write_all(b"HTTP/1.1 100 Continue\r\n\r\n").await;
    }
    let mut body = bytes.split_off(body_at);
    while body.len() < length {
        match tcp.read(&mut scratch).await {
            Ok(0) | Err(_) => return Ok(None),
            Ok(n) => body.extend_from_slice(&scratch[..n]),
        }
    }
    body.truncate(length);
    Ok(Some(Request { method, path, body }))
}

/// Answers one request.
fn route(request: &Request, faults: &watch::Sender<Faults>) -> Answer {
    let current = *faults.borrow();
    let changed = match (request.path.as_str(), request.method.as_str()) {
        ("/faults", "GET") => return ok(&current),
        ("/faults", "PUT" | "POST") => Faults::from_json(&request.body),
        ("/faults", "PATCH") => current.merged(&request.body),
        ("/reset", "POST") => Ok(Faults::default()),
        ("/faults", _) => return not_allowed("GET, PUT, POST or PATCH"),
        ("/reset", _) => return not_allowed("POST"),
        _ => {
            return (
                404,
                "Not Found",
                error_json("no such path; use GET, PUT or PATCH /faults, or POST /reset"),
            );
        }
    };
    match changed {
        Ok(new) => {
            faults.send_replace(new);
            tracing::info!(faults = %new.to_json(), "faults changed");
            ok(&new)
        }
        Err(message) => {
            tracing::debug!(%message, "control API: bad request");
            bad_request(&message)
        }
    }
}

/// 200 with the fault set.
fn ok(faults: &Faults) -> Answer {
    (200, "OK", faults.to_json())
}

/// 400 with `message`.
fn bad_request(message: &str) -> Answer {
    (400, "Bad Request", error_json(message))
}

/// 405 naming the methods allowed.
fn not_allowed(allowed: &str) -> Answer {
    (
        405,
        "Method Not Allowed",
        error_json(&format!("method not allowed here; use {allowed}")),
    )
}

/// `{"error": message}`.
fn error_json(message: &str) -> String {
    serde_json::json!({ "error": message }).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(method: &str, path: &str, body: &str) -> Request {
        Request {
            method: method.into(),
            path: path.into(),
            body: body.as_bytes().to_vec(),
        }
    }

    #[test]
    fn routes_change_the_fault_set() {
        let (faults, watching) = watch::channel(Faults::default());
        let (status, _, body) = route(&request("PUT", "/faults", r#"{"latency_ms":50}"#), &faults);
        assert_eq!(status, 200, "{body}");
        assert_eq!(watching.borrow().latency_ms, 50);
        let (status, _, _) = route(&request("PATCH", "/faults", r#"{"down":true}"#), &faults);
        assert_eq!(status, 200);
        assert!(watching.borrow().down && watching.borrow().latency_ms == 50);
        let (status, _, body) = route(&request("GET", "/faults", ""), &faults);
        assert_eq!(status, 200);
        assert_eq!(
            Faults::from_json(body.as_bytes()).unwrap(),
            *watching.borrow()
        );
        let (status, _, _) = route(&request("POST", "/reset", ""), &faults);
        assert_eq!(status, 200);
        assert_eq!(*watching.borrow(), Faults::default());
    }

    #[test]
    fn bad_requests_leave_the_fault_set_alone() {
        let (faults, watching) = watch::channel(Faults::default());
        let (status, _, body) = route(&request("PUT", "/faults", r#"{"latency_ms":"x"}"#), &faults);
        assert_eq!(status, 400);
        assert!(body.contains("latency_ms"), "{body}");
        assert_eq!(route(&request("DELETE", "/faults", ""), &faults).0, 405);
        assert_eq!(route(&request("GET", "/reset", ""), &faults).0, 405);
        assert_eq!(route(&request("GET", "/", ""), &faults).0, 404);
        assert_eq!(*watching.borrow(), Faults::default());
    }
}
