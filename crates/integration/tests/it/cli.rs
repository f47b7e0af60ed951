//! The command-line contract of `test-servers`: help, usage errors, ready line, port in
//! use, and signals.

use integration::{TestServer, run_test_servers};

#[test]
fn help_lists_the_modes() {
    let output = run_test_servers(&["--help"]);
    assert!(output.status.success());
    let help = String::from_utf8_lossy(&output.stdout);
    assert!(help.contains("echo"), "{help}");
}

#[test]
fn an_unknown_flag_is_a_usage_error_with_status_2() {
    let output = run_test_servers(&["echo", "--no-such-flag"]);
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("--no-such-flag"), "{stderr}");
    assert!(
        output.stdout.is_empty(),
        "usage errors print nothing on stdout"
    );
}

#[test]
fn an_unknown_mode_is_a_usage_error_with_status_2() {
    let output = run_test_servers(&["teleport", "--port", "0"]);
    assert_eq!(output.status.code(), Some(2));
}

#[test]
fn the_ready_line_follows_the_contract() {
    let server = TestServer::start("echo");
    let ready = server.ready_line().as_object().unwrap();
    let keys: Vec<&str> = ready.keys().map(String::as_str).collect();
    assert_eq!(keys, ["event", "mode", "addr", "url"]);
    assert_eq!(ready["mode"], "echo");
    assert_ne!(
        server.addr().port(),
        0,
        "port 0 is replaced by the bound port"
    );
    assert_eq!(server.url(), format!("ws://{}/", server.addr()));
    let (status, stopped) = server.stop();
    assert!(status.success());
    assert_eq!(stopped["reason"], "stdin closed");
}

#[test]
fn a_port_in_use_exits_1_with_one_line_naming_the_address() {
    let server = TestServer::start("echo");
    let port = server.addr().port().to_string();
    let output = run_test_servers(&["echo", "--host", "127.0.0.1", "--port", &port]);
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&output.stderr);
    let errors: Vec<&str> = stderr
        .lines()
        .filter(|line| line.starts_with("error:"))
        .collect();
    assert_eq!(errors.len(), 1, "{stderr}");
    assert!(
        errors[0].contains(&server.addr().to_string()),
        "{}",
        errors[0]
    );
    assert!(errors[0].to_lowercase().contains("in use"), "{}", errors[0]);
    assert!(
        output.stdout.is_empty(),
        "no ready line when the bind failed"
    );
}

#[test]
fn a_bad_option_value_is_a_usage_error() {
    let output = run_test_servers(&["echo", "--port", "0", "--idle-timeout", "whenever"]);
    assert_eq!(output.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&output.stderr).contains("idle-timeout"));
}

#[cfg(unix)]
#[test]
fn sigterm_and_sigint_stop_the_server_gracefully() {
    use nix::sys::signal::{Signal, kill};
    use nix::unistd::Pid;

    for (signal, reason) in [
        (Signal::SIGTERM, "terminate"),
        (Signal::SIGINT, "interrupt"),
    ] {
        let mut server = TestServer::start("echo");
        kill(Pid::from_raw(server.pid() as i32), signal).unwrap();
        let (status, stopped) = server.wait_stopped();
        assert!(status.success(), "{signal}: {status:?}");
        assert_eq!(stopped["reason"], reason);
        assert_eq!(stopped["mode"], "echo");
    }
}
