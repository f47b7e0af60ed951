//! `cargo xtask ci`: the quality gates CI runs, in order, stopping at the first failure.

use anyhow::{Context, Result};

use crate::cargo;

/// Each step's name and its cargo arguments.
const STEPS: &[(&str, &[&str])] = &[
    ("fmt", &["fmt", "--all", "--check"]),
    (
        "clippy",
        &[
            "clippy",
            "--workspace",
            "--all-targets",
            "--locked",
            "--",
            "-D",
            "warnings",
        ],
    ),
    ("test", &["test", "--workspace", "--locked"]),
];

pub(crate) fn run() -> Result<()> {
    for (name, args) in STEPS {
        eprintln!("==> {name}");
        cargo::run(&mut cargo::cargo(*args)).with_context(|| format!("ci step `{name}` failed"))?;
    }
    println!("ci: all {} steps passed", STEPS.len());
    Ok(())
}
