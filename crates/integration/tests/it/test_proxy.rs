//! Proxies the proxy tests start in their own runtime on 127.0.0.1:0: an HTTP `CONNECT`
//! proxy (optionally with Basic auth) and a SOCKS5 proxy (optionally with user/password),
//! each forwarding to the server it is asked for, or refusing as told. They record each
//! tunnel asked for (target, and the first bytes the client sent through it), so a test can
//! tell the connection really went through the proxy, and whether TLS ran end to end.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use base64::Engine;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::{JoinHandle, JoinSet};

/// One tunnel a client asked for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Tunnel {
    /// The target as asked for: `host:port` (SOCKS5: an address, or a name with `socks5h`).
    pub(crate) target: String,
    /// SOCKS5: the target came as a name (address type 3), not an address.
    pub(crate) by_name: bool,
    /// The first bytes the client sent through the tunnel (empty if it was refused).
    pub(crate) first_bytes: Vec<u8>,
}

/// What the proxy does with a request that passed its authentication.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Answer {
    /// Connect to the target and forward both ways.
    Forward,
    /// HTTP: answer with this status line (`"403 Forbidden"`); SOCKS5: reply with the code
    /// in its first byte (`"\x05"`).
    Refuse(&'static str),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Http,
    Socks5,
}

/// A running test proxy; stopped (with its connections) when dropped.
#[derive(Debug)]
pub(crate) struct TestProxy {
    addr: SocketAddr,
    kind: Kind,
    tunnels: Arc<Mutex<Vec<Tunnel>>>,
    task: JoinHandle<()>,
}

impl Drop for TestProxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}

#[derive(Debug)]
struct Rules {
    credentials: Option<(String, String)>,
    answer: Answer,
    tunnels: Arc<Mutex<Vec<Tunnel>>>,
}

impl TestProxy {
    /// An HTTP `CONNECT` proxy; with `credentials`, it answers 407 unless the request has
    /// `Proxy-Authorization: Basic` with exactly them.
    pub(crate) async fn http(credentials: Option<(&str, &str)>, answer: Answer) -> Self {
        Self::start(Kind::Http, credentials, answer).await
    }

    /// A SOCKS5 proxy; with `credentials`, only user/password authentication with exactly
    /// them (RFC 1929), else only "no authentication".
    pub(crate) async fn socks5(credentials: Option<(&str, &str)>, answer: Answer) -> Self {
        Self::start(Kind::Socks5, credentials, answer).await
    }

    async fn start(kind: Kind, credentials: Option<(&str, &str)>, answer: Answer) -> Self {
        let listener = TcpListener::bind(("127.0.0.1", 0)).await.unwrap();
        let addr = listener.local_addr().unwrap();
        let tunnels = Arc::new(Mutex::new(Vec::new()));
        let rules = Arc::new(Rules {
            credentials: credentials.map(|(user, password)| (user.into(), password.into())),
            answer,
            tunnels: Arc::clone(&tunnels),
        });
        let task = tokio::spawn(async move {
            // Dropped with this task: the connections end with the proxy.
            let mut connections = JoinSet::new();
            while let Ok((tcp, _)) = listener.accept().await {
                let rules = Arc::clone(&rules);
                connections.spawn(async move {
                    let _ = match kind {
                        Kind::Http => serve_http(tcp, &rules).await,
                        Kind::Socks5 => serve_socks5(tcp, &rules).await,
                    };
                });
            }
        });
        Self {
            addr,
            kind,
            tunnels,
            task,
        }
    }

    /// The proxy URL, with `user:password@` (written as given: percent-encode it) if any.
    /// Without, it is also how errors name the proxy.
    pub(crate) fn url(&self, userinfo: Option<&str>) -> String {
        let scheme = match self.kind {
            Kind::Http => "http",
            Kind::Socks5 => "socks5",
        };
        self.url_as(scheme, userinfo)
    }

    /// The URL with another scheme (`socks5h`, or a wrong one).
    pub(crate) fn url_as(&self, scheme: &str, userinfo: Option<&str>) -> String {
        match userinfo {
            Some(userinfo) => format!("{scheme}://{userinfo}@{}", self.addr),
            None => format!("{scheme}://{}", self.addr),
        }
    }

    /// The tunnels asked for so far.
    pub(crate) fn tunnels(&self) -> Vec<Tunnel> {
        self.tunnels.lock().unwrap().clone()
    }
}

/// One HTTP proxy connection: the request head, authentication, the answer, forwarding.
async fn serve_http(mut tcp: TcpStream, rules: &Rules) -> std::io::Result<()> {
    let mut head = Vec::new();
    while !head.ends_with(b"\r\n\r\n") && head.len() < 8192 {
        head.push(tcp.read_u8().await?);
    }
    let head = String::from_utf8_lossy(&head).into_owned();
    let target = match head.split(' ').collect::<Vec<_>>()[..] {
        ["CONNECT", target, ..] => target.to_owned(),
        _ => return respond(&mut tcp, "405 Method Not Allowed").await,
    };
    if let Some((user, password)) = &rules.credentials {
        let expected =
            base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
        let given = head.lines().find_map(|line| {
            let (name, value) = line.split_once(':')?;
            name.eq_ignore_ascii_case("proxy-authorization")
                .then(|| value.trim().to_owned())
        });
        if given != Some(format!("Basic {expected}")) {
            return respond(
                &mut tcp,
                "407 Proxy Authentication Required\r\nProxy-Authenticate: Basic realm=\"test\"",
            )
            .await;
        }
    }
    let status = match rules.answer {
        Answer::Refuse(status) => Err(status),
        Answer::Forward => TcpStream::connect(&target)
            .await
            .map_err(|_| "502 Bad Gateway"),
    };
    let tunnel = Tunnel {
        target,
        by_name: false,
        first_bytes: Vec::new(),
    };
    match status {
        Err(status) => {
            rules.tunnels.lock().unwrap().push(tunnel);
            respond(&mut tcp, status).await
        }
        Ok(server) => {
            tcp.write_all(b"HTTP/1.1 200 Connection established\r\n\r\n")
                .await?;
            forward(tcp, server, tunnel, rules).await;
            Ok(())
        }
    }
}

/// Answers with `status` (and any header lines after it) and no body.
async fn respond(tcp: &mut TcpStream, status: &str) -> std::io::Result<()> {
    let answer = format!("HTTP/1.1 {status}\r\nContent-Length: 0\r\n\r\n");
    tcp.write_all(answer.as_bytes()).await
}

/// One SOCKS5 connection: method choice, authentication, the request, the reply,
/// forwarding. Anything not SOCKS5 ends the connection.
async fn serve_socks5(mut tcp: TcpStream, rules: &Rules) -> std::io::Result<()> {
    let [version, count] = read_array(&mut tcp).await?;
    if version != 5 {
        return Ok(());
    }
    let mut methods = vec![0u8; usize::from(count)];
    tcp.read_exact(&mut methods).await?;
    let wanted = if rules.credentials.is_some() { 2 } else { 0 };
    if !methods.contains(&wanted) {
        return tcp.write_all(&[5, 0xff]).await;
    }
    tcp.write_all(&[5, wanted]).await?;
    if let Some((user, password)) = &rules.credentials {
        let [_, length] = read_array(&mut tcp).await?;
        let given_user = read_vec(&mut tcp, length).await?;
        let [length] = read_array(&mut tcp).await?;
        let given_password = read_vec(&mut tcp, length).await?;
        if given_user != user.as_bytes() || given_password != password.as_bytes() {
            return tcp.write_all(&[1, 1]).await;
        }
        tcp.write_all(&[1, 0]).await?;
    }
    let [_, _command, _, address_type] = read_array(&mut tcp).await?;
    let (host, by_name) = match address_type {
        1 => (
            std::net::Ipv4Addr::from(read_array::<4>(&mut tcp).await?).to_string(),
            false,
        ),
        4 => {
            let ip = std::net::Ipv6Addr::from(read_array::<16>(&mut tcp).await?);
            (format!("[{ip}]"), false)
        }
        _ => {
            let [length] = read_array(&mut tcp).await?;
            let name = read_vec(&mut tcp, length).await?;
            (String::from_utf8_lossy(&name).into_owned(), true)
        }
    };
    let port = u16::from_be_bytes(read_array(&mut tcp).await?);
    let tunnel = Tunnel {
        target: format!("{host}:{port}"),
        by_name,
        first_bytes: Vec::new(),
    };
    let server = match rules.answer {
        Answer::Refuse(code) => Err(code.as_bytes()[0]),
        Answer::Forward => TcpStream::connect(&tunnel.target).await.map_err(|_| 5),
    };
    match server {
        Err(code) => {
            rules.tunnels.lock().unwrap().push(tunnel);
            tcp.write_all(&[5, code, 0, 1, 0, 0, 0, 0, 0, 0]).await
        }
        Ok(server) => {
            tcp.write_all(&[5, 0, 0, 1, 127, 0, 0, 1, 0, 0]).await?;
            forward(tcp, server, tunnel, rules).await;
            Ok(())
        }
    }
}

async fn read_array<const N: usize>(tcp: &mut TcpStream) -> std::io::Result<[u8; N]> {
    let mut bytes = [0u8; N];
    tcp.read_exact(&mut bytes).await?;
    Ok(bytes)
}

async fn read_vec(tcp: &mut TcpStream, length: u8) -> std::io::Result<Vec<u8>> {
    let mut bytes = vec![0u8; usize::from(length)];
    tcp.read_exact(&mut bytes).await?;
    Ok(bytes)
}

/// Forwards both ways until either side ends; the tunnel is recorded with the client's
/// first bytes (up to 8) once they have come.
async fn forward(mut client: TcpStream, mut server: TcpStream, mut tunnel: Tunnel, rules: &Rules) {
    let mut first = [0u8; 8];
    let n = client.read(&mut first).await.unwrap_or(0);
    tunnel.first_bytes = first[..n].to_vec();
    rules.tunnels.lock().unwrap().push(tunnel);
    if n == 0 || server.write_all(&first[..n]).await.is_err() {
        return;
    }
    let _ = tokio::io::copy_bidirectional(&mut client, &mut server).await;
}
