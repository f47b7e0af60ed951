//! `Proxy::FromEnv` end to end. The environment belongs to the whole process and tests run
//! on parallel threads, so the variables are set only in a child: this test binary run
//! again on this one test, which then connects with the variables it was given.

use std::process::Command;
use std::time::Duration;

use ws_client::{Proxy, TransportConfig};

use crate::support::{assert_echoes, connect_with, echo_server, within};
use crate::test_proxy::{Answer, TestProxy};

/// Set in the child: the URL it is to connect to.
const CHILD_URL: &str = "WS_CLIENT_PROXY_ENV_CHILD_URL";
/// Every variable `Proxy::FromEnv` reads, removed from the child before it gets its own.
const PROXY_VARIABLES: [&str; 9] = [
    "http_proxy",
    "HTTP_PROXY",
    "https_proxy",
    "HTTPS_PROXY",
    "all_proxy",
    "ALL_PROXY",
    "no_proxy",
    "NO_PROXY",
    "REQUEST_METHOD",
];

#[tokio::test]
async fn from_env_takes_the_proxy_from_the_variables_and_honours_no_proxy() {
    if let Ok(url) = std::env::var(CHILD_URL) {
        // The child: connect as the variables say, and echo once.
        let config = TransportConfig {
            proxy: Proxy::FromEnv,
            ..TransportConfig::new(url)
        };
        let mut connection = connect_with(config).await;
        assert_echoes(&mut connection, "configured by the environment").await;
        within(connection.disconnect()).await.unwrap();
        return;
    }
    let server = echo_server(&[]);
    let http = TestProxy::http(None, Answer::Forward).await;
    let socks = TestProxy::socks5(None, Answer::Forward).await;
    let (http_url, socks_url) = (http.url(None), socks.url(None));

    // ws://: HTTP_PROXY.
    run_child(server.url(), &[("HTTP_PROXY", &http_url)]).await;
    assert_eq!((http.tunnels().len(), socks.tunnels().len()), (1, 0));
    // ws:// does not read HTTPS_PROXY; ALL_PROXY is the fallback.
    let vars = [
        ("HTTPS_PROXY", http_url.as_str()),
        ("ALL_PROXY", &socks_url),
    ];
    run_child(server.url(), &vars).await;
    assert_eq!((http.tunnels().len(), socks.tunnels().len()), (1, 1));
    // NO_PROXY lists the server: a direct connection.
    let vars = [
        ("http_proxy", http_url.as_str()),
        ("NO_PROXY", "example.com, 127.0.0.0/8"),
    ];
    run_child(server.url(), &vars).await;
    assert_eq!((http.tunnels().len(), socks.tunnels().len()), (1, 1));
    // Under CGI a request's `Proxy:` header arrives as HTTP_PROXY (httpoxy): not read
    // there, so the connection is direct; ALL_PROXY still applies.
    run_child(
        server.url(),
        &[("REQUEST_METHOD", "GET"), ("HTTP_PROXY", &http_url)],
    )
    .await;
    assert_eq!((http.tunnels().len(), socks.tunnels().len()), (1, 1));
    let vars = [
        ("REQUEST_METHOD", "POST"),
        ("HTTP_PROXY", http_url.as_str()),
        ("ALL_PROXY", &socks_url),
    ];
    run_child(server.url(), &vars).await;
    assert_eq!((http.tunnels().len(), socks.tunnels().len()), (1, 2));
}

/// Runs this test again in a child process with `vars` (and no other proxy variable) set,
/// connecting to `url`; fails if the child's test fails.
async fn run_child(url: &str, vars: &[(&str, &str)]) {
    let name = concat!(
        module_path!(),
        "::from_env_takes_the_proxy_from_the_variables_and_honours_no_proxy"
    );
    let name = name.split_once("::").map_or(name, |(_, test)| test);
    let mut command = Command::new(std::env::current_exe().unwrap());
    command.args([name, "--exact", "--nocapture", "--test-threads=1"]);
    for variable in PROXY_VARIABLES {
        command.env_remove(variable);
    }
    command.env(CHILD_URL, url).envs(vars.iter().copied());
    // Blocking wait off the runtime's thread: the test proxies run on it. Under the step
    // timeout, so that the child's own failure is what a slow child reports.
    let limit = Duration::from_secs(15);
    let output = within(tokio::task::spawn_blocking(move || {
        integration::run_to_completion(command, limit)
    }))
    .await
    .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success() && stdout.contains("1 passed"),
        "the child with {vars:?} failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
}
