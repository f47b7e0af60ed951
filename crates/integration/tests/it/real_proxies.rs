//! ws-client through real third-party proxies: tinyproxy (HTTP `CONNECT`, Basic auth) and
//! microsocks (SOCKS5, with and without user/password), the Debian packages `.ci/run`
//! installs. Each test starts its daemon in the foreground on a free port of 127.0.0.1 and
//! kills it at the end. A missing binary skips the test with a message, unless
//! `WS_CLIENT_REAL_PROXIES=require` (as `.ci/run` sets): then it fails.

use std::io::{BufRead, BufReader, Read};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use integration::TestServer;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use ws_client::ProxyFailure;

use crate::proxy::{closed_port, proxy_failure, through};
use crate::support::{assert_echoes, connect_with, echo_server, within};

/// `require`: a missing proxy binary fails the test instead of skipping it.
const REQUIRE_ENV: &str = "WS_CLIENT_REAL_PROXIES";
/// How long a daemon may take to listen.
const START_TIMEOUT: Duration = Duration::from_secs(10);

/// A proxy daemon started by a test; killed and reaped when dropped.
#[derive(Debug)]
struct Daemon {
    child: Child,
    port: u16,
    config_dir: Option<PathBuf>,
}

impl Daemon {
    /// Kills it (if it still runs) and returns what it wrote to stderr.
    fn stop_for_stderr(&mut self) -> String {
        let _ = self.child.kill();
        let mut stderr = String::new();
        if let Some(mut pipe) = self.child.stderr.take() {
            let _ = pipe.read_to_string(&mut stderr);
        }
        stderr
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if let Some(dir) = &self.config_dir {
            let _ = std::fs::remove_dir_all(dir);
        }
    }
}

/// The path of `name` on `PATH` (or in the sbin folders), or `None` after saying the test
/// is skipped; panics instead when real proxies are required.
fn binary(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    let folders =
        std::env::split_paths(&path).chain(["/usr/sbin".into(), "/usr/local/sbin".into()]);
    let found = folders
        .map(|folder| folder.join(name))
        .find(|file| file.is_file());
    if found.is_none() {
        let required = std::env::var(REQUIRE_ENV).is_ok_and(|value| value == "require");
        assert!(
            !required,
            "{name} is not installed and {REQUIRE_ENV}=require"
        );
        eprintln!(
            "skipped: {name} is not installed (Debian: apt-get install {name}); \
             {REQUIRE_ENV}=require makes this a failure"
        );
    }
    found
}

/// Starts tinyproxy allowing `CONNECT` to `ports` only, with Basic auth if `credentials`;
/// ready once it prints "Accepting connections" (on stdout).
fn tinyproxy(ports: &[u16], credentials: Option<(&str, &str)>) -> Option<Daemon> {
    let binary = binary("tinyproxy")?;
    for _ in 0..5 {
        let port = closed_port();
        let dir =
            std::env::temp_dir().join(format!("ws-client-tinyproxy-{}-{port}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let mut config = format!(
            "Port {port}\nListen 127.0.0.1\nAllow 127.0.0.1\nTimeout 30\nMaxClients 16\nLogLevel Info\n"
        );
        for allowed in ports {
            config.push_str(&format!("ConnectPort {allowed}\n"));
        }
        if let Some((user, password)) = credentials {
            config.push_str(&format!("BasicAuth {user} {password}\n"));
        }
        let file = dir.join("tinyproxy.conf");
        std::fs::write(&file, config).unwrap();
        let mut child = Command::new(&binary)
            .arg("-d")
            .arg("-c")
            .arg(&file)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn tinyproxy");
        let lines = read_lines(child.stdout.take().unwrap());
        let mut daemon = Daemon {
            child,
            port,
            config_dir: Some(dir),
        };
        let mut seen = String::new();
        while let Ok(line) = lines.recv_timeout(START_TIMEOUT) {
            if line.contains("Accepting connections") {
                return Some(daemon);
            }
            seen.push_str(&line);
            seen.push('\n');
        }
        // No ready line: it exited (a port taken in the meantime: try another) or hung.
        let stderr = daemon.stop_for_stderr();
        assert!(
            stderr.contains("Could not create listening sockets"),
            "tinyproxy did not start:\n{seen}{stderr}"
        );
    }
    panic!("tinyproxy found no free port in five tries");
}

/// Starts microsocks, with user/password if `credentials`; ready once a SOCKS5 greeting on
/// its port is answered (it prints nothing when it listens, so its port is polled).
async fn microsocks(credentials: Option<(&str, &str)>) -> Option<Daemon> {
    let binary = binary("microsocks")?;
    for _ in 0..5 {
        let port = closed_port();
        let mut command = Command::new(&binary);
        command.args(["-i", "127.0.0.1", "-p", &port.to_string()]);
        if let Some((user, password)) = credentials {
            command.args(["-u", user, "-P", password]);
        }
        let child = command
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn microsocks");
        let mut daemon = Daemon {
            child,
            port,
            config_dir: None,
        };
        let started = Instant::now();
        while started.elapsed() < START_TIMEOUT {
            if let Some(status) = daemon.child.try_wait().unwrap() {
                let stderr = daemon.stop_for_stderr();
                assert!(
                    stderr.contains("in use"),
                    "microsocks exited ({status}): {stderr}"
                );
                break;
            }
            if answers_socks5(port).await {
                return Some(daemon);
            }
            // microsocks prints no ready line: its port is polled.
            tokio::time::sleep(Duration::from_millis(10)).await; // tidy:allow-sleep: no ready line
        }
    }
    panic!("microsocks did not start in five tries");
}

/// Whether a SOCKS5 server on `port` answers a greeting (methods: none, user/password).
async fn answers_socks5(port: u16) -> bool {
    let Ok(mut tcp) = TcpStream::connect(("127.0.0.1", port)).await else {
        return false;
    };
    let mut answer = [0u8; 2];
    within(async {
        tcp.write_all(&[5, 2, 0, 2]).await.is_ok() && tcp.read_exact(&mut answer).await.is_ok()
    })
    .await
        && answer[0] == 5
}

/// Forwards each line of `stream` to the receiver.
fn read_lines(stream: impl Read + Send + 'static) -> mpsc::Receiver<String> {
    let (sender, receiver) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stream).lines() {
            let Ok(line) = line else { break };
            if sender.send(line).is_err() {
                break;
            }
        }
    });
    receiver
}

/// Echo over `ws://` and over `wss://` (TLS end to end) through the proxy URL `proxy`.
async fn echo_both_ways(proxy: &str, plain: &TestServer, tls: &TestServer) {
    let mut connection = connect_with(through(plain.url(), proxy)).await;
    assert_echoes(&mut connection, "ws:// through a real proxy").await;
    within(connection.disconnect()).await.unwrap();
    let ca = tls.ca_cert().expect("a --tls ready line names ca_cert");
    let config = through(tls.url(), proxy).with_ca_file(ca).unwrap();
    let mut connection = connect_with(config).await;
    assert_echoes(&mut connection, "wss:// through a real proxy").await;
    within(connection.disconnect()).await.unwrap();
}

#[tokio::test]
async fn tinyproxy_carries_ws_and_wss_and_refuses_a_wrong_password() {
    let (plain, tls) = (echo_server(&[]), echo_server(&["--tls"]));
    let closed = closed_port();
    let ports = [plain.addr().port(), tls.addr().port(), closed];
    let Some(daemon) = tinyproxy(&ports, Some(("alice", "s3cret"))) else {
        return;
    };
    let url = |userinfo: &str| format!("http://{userinfo}127.0.0.1:{}", daemon.port);
    echo_both_ways(&url("alice:s3cret@"), &plain, &tls).await;

    let (shown, kind, message) = proxy_failure(through(plain.url(), &url("alice:wrong@"))).await;
    assert_eq!(kind, ProxyFailure::AuthFailed, "{message}");
    assert_eq!(shown, url(""));
    assert!(!message.contains("wrong"), "{message}");
    let (_, kind, message) = proxy_failure(through(plain.url(), &url(""))).await;
    assert_eq!(kind, ProxyFailure::AuthRequired, "{message}");
    // An allowed port nothing listens on: tinyproxy tries, and answers 500.
    let nobody = format!("ws://127.0.0.1:{closed}/");
    let (_, kind, message) = proxy_failure(through(&nobody, &url("alice:s3cret@"))).await;
    assert_eq!(kind, ProxyFailure::TargetUnreachable, "{message}");
    // A port not in its ConnectPort list: tinyproxy refuses the tunnel (403).
    let elsewhere = format!("ws://127.0.0.1:{}/", closed_port());
    let (_, kind, message) = proxy_failure(through(&elsewhere, &url("alice:s3cret@"))).await;
    assert_eq!(kind, ProxyFailure::Refused, "{message}");
    assert!(message.contains("HTTP 403"), "{message}");
}

#[tokio::test]
async fn microsocks_carries_ws_and_wss_with_and_without_a_password() {
    let (plain, tls) = (echo_server(&[]), echo_server(&["--tls"]));
    let Some(open) = microsocks(None).await else {
        return;
    };
    echo_both_ways(&format!("socks5://127.0.0.1:{}", open.port), &plain, &tls).await;
    let Some(guarded) = microsocks(Some(("bob", "pa55"))).await else {
        return;
    };
    let url =
        |scheme: &str, userinfo: &str| format!("{scheme}://{userinfo}127.0.0.1:{}", guarded.port);
    echo_both_ways(&url("socks5", "bob:pa55@"), &plain, &tls).await;
    // socks5h: microsocks resolves the name itself.
    let by_name = format!("ws://localhost:{}/", plain.addr().port());
    let mut connection = connect_with(through(&by_name, &url("socks5h", "bob:pa55@"))).await;
    assert_echoes(&mut connection, "by name through microsocks").await;
    within(connection.disconnect()).await.unwrap();

    let (shown, kind, message) =
        proxy_failure(through(plain.url(), &url("socks5", "bob:wrong@"))).await;
    assert_eq!(kind, ProxyFailure::AuthFailed, "{message}");
    assert_eq!(shown, url("socks5", ""));
    let (_, kind, message) = proxy_failure(through(plain.url(), &url("socks5", ""))).await;
    assert_eq!(kind, ProxyFailure::AuthRequired, "{message}");
    // Nothing listens where it is asked to go.
    let elsewhere = format!("ws://127.0.0.1:{}/", closed_port());
    let (_, kind, message) = proxy_failure(through(&elsewhere, &url("socks5", "bob:pa55@"))).await;
    assert_eq!(kind, ProxyFailure::TargetUnreachable, "{message}");
}
