//! Turns llvm-cov's JSON summary into per-crate and per-file figures, a Markdown table, and
//! the check against the floors kept in `.config/coverage-floor.json` (which only go up).

use std::collections::BTreeMap;
use std::path::Path;

use anyhow::{Context, Result};
use serde_json::Value;

/// Lines and regions covered, out of how many.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Counts {
    pub(crate) lines: u64,
    pub(crate) lines_covered: u64,
    pub(crate) regions: u64,
    pub(crate) regions_covered: u64,
}

impl Counts {
    fn add(&mut self, other: Counts) {
        self.lines += other.lines;
        self.lines_covered += other.lines_covered;
        self.regions += other.regions;
        self.regions_covered += other.regions_covered;
    }

    pub(crate) fn line_percent(&self) -> f64 {
        percent(self.lines_covered, self.lines)
    }

    pub(crate) fn region_percent(&self) -> f64 {
        percent(self.regions_covered, self.regions)
    }
}

fn percent(part: u64, whole: u64) -> f64 {
    if whole == 0 {
        100.0
    } else {
        100.0 * part as f64 / whole as f64
    }
}

/// One measured crate: its totals and each of its files (path relative to the crate).
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct CrateCoverage {
    pub(crate) name: String,
    pub(crate) total: Counts,
    pub(crate) files: BTreeMap<String, Counts>,
}

/// Groups the files of an `llvm-cov export --summary-only` document by crate (a file belongs
/// to `crates/<name>/`), keeping only the crates in `measured`, in that order.
pub(crate) fn summarize(json: &str, root: &Path, measured: &[&str]) -> Result<Vec<CrateCoverage>> {
    let document: Value = serde_json::from_str(json).context("llvm-cov JSON is not JSON")?;
    let files = document["data"][0]["files"]
        .as_array()
        .context("llvm-cov JSON has no data[0].files")?;
    let root = root.to_string_lossy().replace('\\', "/");
    let mut crates: Vec<CrateCoverage> = measured
        .iter()
        .map(|name| CrateCoverage {
            name: (*name).to_owned(),
            total: Counts::default(),
            files: BTreeMap::new(),
        })
        .collect();
    for file in files {
        let name = file["filename"]
            .as_str()
            .unwrap_or_default()
            .replace('\\', "/");
        let relative = name
            .strip_prefix(&root)
            .unwrap_or(&name)
            .trim_start_matches('/');
        let Some(entry) = crates
            .iter_mut()
            .find(|c| relative.starts_with(&format!("crates/{}/", c.name)))
        else {
            continue;
        };
        let summary = &file["summary"];
        let counts = Counts {
            lines: summary["lines"]["count"].as_u64().unwrap_or(0),
            lines_covered: summary["lines"]["covered"].as_u64().unwrap_or(0),
            regions: summary["regions"]["count"].as_u64().unwrap_or(0),
            regions_covered: summary["regions"]["covered"].as_u64().unwrap_or(0),
        };
        entry.total.add(counts);
        let in_crate = relative[format!("crates/{}/", entry.name).len()..].to_owned();
        entry.files.insert(in_crate, counts);
    }
    Ok(crates)
}

/// A Markdown summary: one row per crate, then each crate's files, least covered first.
pub(crate) fn markdown(crates: &[CrateCoverage]) -> String {
    let mut out = String::from("| crate | lines | regions |\n|---|---|---|\n");
    for krate in crates {
        out.push_str(&format!("| {} | {} |\n", krate.name, cells(krate.total)));
    }
    for krate in crates {
        out.push_str(&format!(
            "\n{}, per file (least covered first):\n\n| file | lines | regions |\n|---|---|---|\n",
            krate.name
        ));
        let mut files: Vec<_> = krate.files.iter().collect();
        files.sort_by(|a, b| a.1.line_percent().total_cmp(&b.1.line_percent()));
        for (file, counts) in files {
            out.push_str(&format!("| {file} | {} |\n", cells(*counts)));
        }
    }
    out
}

fn cells(counts: Counts) -> String {
    format!(
        "{:.1}% ({}/{}) | {:.1}% ({}/{})",
        counts.line_percent(),
        counts.lines_covered,
        counts.lines,
        counts.region_percent(),
        counts.regions_covered,
        counts.regions
    )
}

/// The minimum line coverage per crate, in percent. The file says it too: floors only go up.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Floors(BTreeMap<String, f64>);

impl Floors {
    pub(crate) fn read(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read the coverage floors {}", path.display()))?;
        Self::parse(&text).with_context(|| format!("in {}", path.display()))
    }

    fn parse(text: &str) -> Result<Self> {
        let document: Value = serde_json::from_str(text).context("not JSON")?;
        let lines = document["line_percent"]
            .as_object()
            .context("no \"line_percent\" object")?;
        let mut floors = BTreeMap::new();
        for (name, value) in lines {
            let floor = value
                .as_f64()
                .with_context(|| format!("floor of {name} is not a number"))?;
            floors.insert(name.clone(), floor);
        }
        Ok(Self(floors))
    }

    /// One message per crate below its floor (a crate with a floor but no figures counts).
    pub(crate) fn check(&self, crates: &[CrateCoverage]) -> Vec<String> {
        let mut below = Vec::new();
        for (name, floor) in &self.0 {
            match crates.iter().find(|c| &c.name == name) {
                Some(krate) if krate.total.line_percent() >= *floor => {}
                Some(krate) => below.push(format!(
                    "{name} lines {:.2}% < floor {floor:.2}%",
                    krate.total.line_percent()
                )),
                None => below.push(format!("{name}: no coverage figures")),
            }
        }
        below
    }

    /// These floors, each raised to the measured figure (rounded down to 0.1) where higher.
    pub(crate) fn raised(&self, crates: &[CrateCoverage]) -> Self {
        let mut floors = self.0.clone();
        for krate in crates {
            let measured = (krate.total.line_percent() * 10.0).floor() / 10.0;
            let floor = floors.entry(krate.name.clone()).or_insert(0.0);
            *floor = floor.max(measured);
        }
        Self(floors)
    }

    pub(crate) fn write(&self, path: &Path) -> Result<()> {
        let document = serde_json::json!({
            "comment": "Minimum line coverage per crate, checked by `cargo xtask coverage`. Floors only go up: `cargo xtask coverage --raise-floor` raises them to what is measured.",
            "line_percent": self.0,
        });
        std::fs::write(path, serde_json::to_string_pretty(&document)? + "\n")
            .with_context(|| format!("cannot write {}", path.display()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const EXPORT: &str = r#"{"data":[{"files":[
      {"filename":"/w/crates/ws-client/src/lib.rs","summary":{"lines":{"count":100,"covered":96},"regions":{"count":50,"covered":40}}},
      {"filename":"/w/crates/ws-client/src/wire/frame.rs","summary":{"lines":{"count":100,"covered":90},"regions":{"count":50,"covered":50}}},
      {"filename":"/w/crates/test-servers/src/main.rs","summary":{"lines":{"count":10,"covered":5},"regions":{"count":4,"covered":2}}},
      {"filename":"/w/crates/ws-bench/src/main.rs","summary":{"lines":{"count":10,"covered":0},"regions":{"count":4,"covered":0}}}
    ]}]}"#;

    #[test]
    fn files_are_grouped_by_measured_crate() {
        let crates = summarize(EXPORT, Path::new("/w"), &["ws-client", "test-servers"]).unwrap();
        assert_eq!(crates[0].total.lines, 200);
        assert_eq!(crates[0].total.lines_covered, 186);
        assert_eq!(crates[0].files.len(), 2);
        assert!(crates[0].files.contains_key("src/wire/frame.rs"));
        assert_eq!(crates[1].total.line_percent(), 50.0);
        let table = markdown(&crates);
        assert!(table.contains("| ws-client | 93.0% (186/200) | 90.0% (90/100) |"));
    }

    #[test]
    fn floors_fail_below_and_only_rise() {
        let crates = summarize(EXPORT, Path::new("/w"), &["ws-client", "test-servers"]).unwrap();
        let floors =
            Floors::parse(r#"{"line_percent":{"ws-client":93.0,"test-servers":60.0}}"#).unwrap();
        let below = floors.check(&crates);
        assert_eq!(below, ["test-servers lines 50.00% < floor 60.00%"]);
        let raised = floors.raised(&crates);
        assert_eq!(raised.0["ws-client"], 93.0);
        assert_eq!(raised.0["test-servers"], 60.0, "a floor never goes down");
    }
}
