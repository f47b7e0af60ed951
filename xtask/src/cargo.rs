//! Builds `cargo` commands (honouring `$CARGO`) that run from the workspace root, and runs them
//! with errors that name the command.

use std::collections::HashMap;
use std::env;
use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use anyhow::{Context, Result, bail};

/// The workspace root: the parent of this crate's directory.
pub(crate) fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("xtask lives one level below the workspace root")
        .to_path_buf()
}

/// `cargo <args>`, run from the workspace root, using the cargo that runs us (`$CARGO`).
pub(crate) fn cargo<I, S>(args: I) -> Command
where
    I: IntoIterator<Item = S>,
    S: AsRef<std::ffi::OsStr>,
{
    let program = env::var_os("CARGO").unwrap_or_else(|| OsString::from("cargo"));
    let mut command = Command::new(program);
    command.args(args).current_dir(workspace_root());
    // `cargo run -p xtask` sets these for us. Passed on, they differ from what a plain
    // `cargo` sees, and build scripts that watch them (ring's) would rebuild every time.
    for (key, _) in env::vars_os() {
        let name = key.to_string_lossy();
        if name.starts_with("CARGO_PKG_")
            || name.starts_with("CARGO_MANIFEST_")
            || matches!(
                &*name,
                "CARGO_CRATE_NAME" | "CARGO_PRIMARY_PACKAGE" | "CARGO_BIN_NAME"
            )
        {
            command.env_remove(key);
        }
    }
    command
}

/// Fails with an install hint unless the cargo subcommand `subcommand` (installed as the
/// crate `cargo-<subcommand>`) runs.
pub(crate) fn require_subcommand(subcommand: &str) -> Result<()> {
    let found = cargo([subcommand, "--version"])
        .output()
        .map(|output| output.status.success())
        .unwrap_or(false);
    if !found {
        bail!(
            "cargo-{subcommand} is not installed: run `cargo install --locked cargo-{subcommand}`"
        );
    }
    Ok(())
}

/// The command as a person would type it, for messages: `cargo test -p integration`.
pub(crate) fn display(command: &Command) -> String {
    let program = Path::new(command.get_program()).file_stem().map_or_else(
        || command.get_program().to_string_lossy(),
        |stem| stem.to_string_lossy(),
    );
    let mut shown = program.into_owned();
    for arg in command.get_args() {
        shown.push(' ');
        shown.push_str(&arg.to_string_lossy());
    }
    shown
}

/// Runs `command` with inherited stdio, announcing it first; fails unless it exits with 0.
pub(crate) fn run(command: &mut Command) -> Result<()> {
    let shown = display(command);
    eprintln!("$ {shown}");
    let status = command
        .status()
        .with_context(|| format!("could not start `{shown}`"))?;
    if !status.success() {
        bail!("`{shown}` failed ({status})");
    }
    Ok(())
}

/// Runs `command` (no stdin, stderr to the terminal) and returns its stdout, failing when it
/// exits with non-zero status or takes longer than `limit` (then it is killed). Its stdout
/// is read while it runs, so a large output cannot stall it.
pub(crate) fn stdout_within(command: &mut Command, limit: std::time::Duration) -> Result<String> {
    use std::io::Read;
    use wait_timeout::ChildExt;
    let shown = display(command);
    let mut child = command
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .with_context(|| format!("cannot start `{shown}`"))?;
    let mut stdout = child.stdout.take().context("stdout was not piped")?;
    let reader = std::thread::spawn(move || {
        let mut text = String::new();
        let _ = stdout.read_to_string(&mut text);
        text
    });
    let Some(status) = child
        .wait_timeout(limit)
        .with_context(|| format!("waiting for `{shown}`"))?
    else {
        let _ = child.kill();
        let _ = child.wait();
        bail!("`{shown}` took over {limit:?}");
    };
    let text = reader.join().unwrap_or_default();
    if !status.success() {
        bail!("`{shown}` failed ({status})");
    }
    Ok(text)
}

/// `cargo build <args>`: progress and rendered diagnostics go to the terminal; returns the
/// executables it built, by target name, read from cargo's JSON messages.
pub(crate) fn build_executables(args: &[&str]) -> Result<HashMap<String, PathBuf>> {
    let mut command = cargo(["build"]);
    command
        .args(args)
        .arg("--message-format=json-render-diagnostics");
    let shown = display(&command);
    eprintln!("$ {shown}");
    let output = command
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .output()
        .with_context(|| format!("could not start `{shown}`"))?;
    if !output.status.success() {
        bail!("`{shown}` failed ({})", output.status);
    }
    Ok(executables(&String::from_utf8_lossy(&output.stdout)))
}

/// Executables of cargo's `compiler-artifact` messages, by target name (the last one wins).
pub(crate) fn executables(messages: &str) -> HashMap<String, PathBuf> {
    messages
        .lines()
        .filter_map(|line| serde_json::from_str::<serde_json::Value>(line).ok())
        .filter(|message| message["reason"] == "compiler-artifact")
        .filter_map(|message| {
            let name = message["target"]["name"].as_str()?.to_owned();
            let path = PathBuf::from(message["executable"].as_str()?);
            Some((name, path))
        })
        .collect()
}
