//! The AWS-validated event-pattern cases in shared/conformance/event-patterns, run straight
//! against the compiler and matcher (the e2e suite runs them again through TestEventPattern).

use codeyard_events::pattern::Pattern;
use std::path::PathBuf;

fn cases_dir() -> PathBuf {
    let manifest = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    for base in manifest.ancestors() {
        for cand in [
            base.join("shared/conformance/event-patterns"),
            base.join("../shared/conformance/event-patterns"),
        ] {
            if cand.is_dir() {
                return cand;
            }
        }
    }
    panic!(
        "shared/conformance/event-patterns not found above {}",
        manifest.display()
    );
}

#[test]
fn every_conformance_case_has_the_aws_outcome() {
    let dir = cases_dir();
    let snapshot: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(dir.join("aws-recorded-results.snapshot.json")).unwrap(),
    )
    .unwrap();
    let mut failures = Vec::new();
    let mut n = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy().to_string();
        let Some(case) = name.strip_suffix(".json5") else {
            continue;
        };
        n += 1;
        let doc: serde_json::Value =
            json5::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
        let pattern_text = doc["EventPattern"].to_string();
        let result = Pattern::parse(&pattern_text);
        if case.ends_with("_EXC") {
            match result {
                Ok(_) => failures.push(format!(
                    "{case}: expected InvalidEventPatternException, compiled"
                )),
                Err(e) => {
                    let key = format!(
                        "tests/aws/services/events/test_events_patterns.py::TestEventPattern::test_event_pattern[{case}]"
                    );
                    let want = &snapshot[&key]["recorded-content"][case]["exception_message"]["Error"]
                        ["Message"];
                    if let Some(want) = want.as_str()
                        && e.message() != want
                    {
                        failures.push(format!(
                            "{case}: message {:?}, AWS says {:?}",
                            e.message(),
                            want
                        ));
                    }
                }
            }
        } else {
            let expected = !case.ends_with("_NEG");
            match result {
                Err(e) => failures.push(format!("{case}: refused: {}", e.message())),
                Ok(p) => {
                    if p.matches(&doc["Event"]) != expected {
                        failures.push(format!("{case}: expected match={expected}"));
                    }
                }
            }
        }
    }
    // The duplicate-key pair (read as raw text: the second "location" wins, as in Jackson).
    let ev: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(dir.join("complex_multi_key_event.json")).unwrap(),
    )
    .unwrap();
    let p = Pattern::parse(
        &std::fs::read_to_string(dir.join("complex_multi_key_event_pattern.json")).unwrap(),
    )
    .unwrap();
    assert!(p.matches(&ev), "complex_multi_key");
    assert!(n >= 150, "only {n} cases found");
    assert!(
        failures.is_empty(),
        "{} of {n} cases differ from AWS:\n{}",
        failures.len(),
        failures.join("\n")
    );
}
