//! Reads the JUnit report cargo-nextest writes: each test's outcome (passed, failed, flaky,
//! skipped) and time, for the flakiness table and the slowest-tests list.

use std::path::Path;

use anyhow::{Context, Result};
use quick_xml::events::{BytesStart, Event};
use quick_xml::{Reader, XmlVersion};

/// How one test ended in one nextest run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Outcome {
    Passed,
    /// Failed on every attempt.
    Failed,
    /// Failed, then passed on a retry.
    Flaky,
    Skipped,
}

/// One `<testcase>` of the report.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct TestCase {
    /// `binary-id test::path`, e.g. `integration::it echo::round_trip`.
    pub(crate) id: String,
    pub(crate) seconds: f64,
    pub(crate) outcome: Outcome,
}

/// Every test case of the JUnit file at `path`.
pub(crate) fn read(path: &Path) -> Result<Vec<TestCase>> {
    let xml = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read the JUnit report {}", path.display()))?;
    parse(&xml).with_context(|| format!("cannot parse the JUnit report {}", path.display()))
}

/// Parses a JUnit document. nextest marks a test that passed on a retry with
/// `<flakyFailure>` children (and, when flaky tests fail the run, a `<failure>` as well), and
/// one that failed every attempt with `<failure>` plus `<rerunFailure>`s.
pub(crate) fn parse(xml: &str) -> Result<Vec<TestCase>> {
    let mut reader = Reader::from_str(xml);
    let mut cases = Vec::new();
    let mut open: Option<(TestCase, Marks)> = None;
    loop {
        match reader.read_event()? {
            Event::Start(tag) if tag.name().as_ref() == b"testcase" => {
                open = Some((test_case(&tag)?, Marks::default()));
            }
            Event::Empty(tag) if tag.name().as_ref() == b"testcase" => {
                cases.push(test_case(&tag)?);
            }
            Event::Start(tag) | Event::Empty(tag) => {
                if let Some((_, marks)) = open.as_mut() {
                    marks.note(tag.name().as_ref());
                }
            }
            Event::End(tag) if tag.name().as_ref() == b"testcase" => {
                if let Some((mut case, marks)) = open.take() {
                    case.outcome = marks.outcome();
                    cases.push(case);
                }
            }
            Event::Eof => break,
            _ => {}
        }
    }
    Ok(cases)
}

/// The child elements seen inside one `<testcase>`.
#[derive(Debug, Default)]
struct Marks {
    failure: bool,
    flaky: bool,
    skipped: bool,
}

impl Marks {
    fn note(&mut self, element: &[u8]) {
        match element {
            b"failure" | b"error" => self.failure = true,
            b"flakyFailure" | b"flakyError" => self.flaky = true,
            b"skipped" => self.skipped = true,
            _ => {}
        }
    }

    fn outcome(&self) -> Outcome {
        if self.flaky {
            Outcome::Flaky
        } else if self.failure {
            Outcome::Failed
        } else if self.skipped {
            Outcome::Skipped
        } else {
            Outcome::Passed
        }
    }
}

fn test_case(tag: &BytesStart<'_>) -> Result<TestCase> {
    let mut name = String::new();
    let mut class = String::new();
    let mut seconds = 0.0;
    for attribute in tag.attributes() {
        let attribute = attribute?;
        let value = attribute.normalized_value(XmlVersion::Explicit1_0)?;
        match attribute.key.as_ref() {
            b"name" => name = value.into_owned(),
            b"classname" => class = value.into_owned(),
            b"time" => seconds = value.parse().unwrap_or(0.0),
            _ => {}
        }
    }
    let id = if class.is_empty() {
        name
    } else {
        format!("{class} {name}")
    };
    Ok(TestCase {
        id,
        seconds,
        outcome: Outcome::Passed,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn outcomes_from_a_nextest_report() {
        let xml = r#"<?xml version="1.0" encoding="UTF-8"?>
<testsuites name="nextest-run" tests="4">
  <testsuite name="integration::it" tests="4">
    <testcase name="echo::ok" classname="integration::it" time="0.084"/>
    <testcase name="echo::flaky" classname="integration::it" time="0.016">
      <failure message="test passed on attempt 2/3" type="flaky failure"/>
      <flakyFailure time="0.9" message="panicked">text</flakyFailure>
    </testcase>
    <testcase name="echo::broken" classname="integration::it" time="1.5">
      <failure message="panicked" type="test failure">boom &amp; more</failure>
      <rerunFailure message="panicked">again</rerunFailure>
    </testcase>
    <testcase name="echo::ignored" classname="integration::it" time="0"><skipped/></testcase>
  </testsuite>
</testsuites>"#;
        let cases = parse(xml).expect("valid report");
        let summary: Vec<(&str, Outcome)> = cases
            .iter()
            .map(|case| (case.id.as_str(), case.outcome))
            .collect();
        assert_eq!(
            summary,
            [
                ("integration::it echo::ok", Outcome::Passed),
                ("integration::it echo::flaky", Outcome::Flaky),
                ("integration::it echo::broken", Outcome::Failed),
                ("integration::it echo::ignored", Outcome::Skipped),
            ]
        );
        assert_eq!(cases[2].seconds, 1.5);
    }

    #[test]
    fn malformed_report_is_an_error() {
        assert!(parse("<testsuites><testcase name=\"a\"></testsuites>").is_err());
    }
}
