//! `security --list`: the catalogue as an aligned table or a JSON array, and the list of
//! valid paths that a 404 answer carries.

use std::io::Write;

use serde::Serialize;

use super::catalogue::{Category, SCENARIOS};

/// The catalogue as `--list --json` prints it.
#[derive(Debug, Serialize)]
struct Entry {
    name: &'static str,
    category: Category,
    attack: &'static str,
    expected: &'static str,
}

/// Prints the catalogue on stdout: a table, or a JSON array with `json`.
pub fn print(json: bool) -> std::io::Result<()> {
    let mut stdout = std::io::stdout().lock();
    if json {
        let entries: Vec<Entry> = SCENARIOS
            .iter()
            .map(|s| Entry {
                name: s.name,
                category: s.category,
                attack: s.attack,
                expected: s.expected,
            })
            .collect();
        serde_json::to_writer(&mut stdout, &entries)?;
        writeln!(stdout)?;
    } else {
        stdout.write_all(table().as_bytes())?;
    }
    stdout.flush()
}

/// The catalogue as an aligned text table, one scenario per line.
pub fn table() -> String {
    let rows: Vec<[&str; 4]> = std::iter::once(["NAME", "CATEGORY", "ATTACK", "A CORRECT CLIENT"])
        .chain(
            SCENARIOS
                .iter()
                .map(|s| [s.name, s.category.as_str(), s.attack, s.expected]),
        )
        .collect();
    let width = |column: usize| rows.iter().map(|row| row[column].len()).max().unwrap_or(0);
    let widths = [width(0), width(1), width(2)];
    let mut out = String::new();
    for [name, category, attack, expected] in rows {
        out.push_str(&format!(
            "{name:w0$}  {category:w1$}  {attack:w2$}  {expected}\n",
            w0 = widths[0],
            w1 = widths[1],
            w2 = widths[2],
        ));
    }
    out
}

/// The valid scenario names, one per line (the body of a 404).
pub fn names() -> String {
    SCENARIOS.iter().map(|s| format!("/{}\n", s.name)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_table_lists_every_scenario() {
        let table = table();
        assert_eq!(table.lines().count(), SCENARIOS.len() + 1);
        for scenario in SCENARIOS {
            assert!(table.contains(scenario.name));
        }
        assert_eq!(names().lines().count(), SCENARIOS.len());
    }
}
