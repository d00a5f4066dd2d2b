//! Matching throughput of the compiled rule index with 1, 100 and 10,000 rules on a bus,
//! mostly non-matching (each rule wants its own `source`), plus a share of rules that cannot
//! be indexed (prefix patterns) so the fallback path is measured too.
//!
//! `cargo run --release -p codeyard-events --example match_bench`

use codeyard_events::cache::BusRules;
use codeyard_events::model::Rule;
use serde_json::json;
use std::time::Instant;

fn rule(i: usize, pattern: String) -> Rule {
    Rule {
        name: format!("r{i:05}"),
        bus: "default".into(),
        arn: format!("arn:aws:events:eu-west-1:000000000000:rule/r{i:05}"),
        event_pattern: Some(pattern),
        schedule_expression: None,
        state: "ENABLED".into(),
        description: None,
        role_arn: None,
        created_by: "000000000000".into(),
        tags: Default::default(),
        targets: vec![],
        created_ms: 0,
    }
}

fn main() {
    let event = json!({
        "version": "0", "id": "e1", "detail-type": "CodeCommit Repository State Change", "source": "aws.codecommit",
        "account": "000000000000", "time": "2026-01-01T00:00:00Z", "region": "eu-west-1",
        "resources": ["arn:aws:codecommit:eu-west-1:000000000000:repo"],
        "detail": {"event": "referenceUpdated", "referenceType": "branch", "referenceName": "master", "commitId": "abc"}
    });
    println!("| rules on the bus | unindexed rules | matches | events/s (one core) | µs/event |");
    println!("|---|---|---|---|---|");
    for n in [1usize, 100, 10_000] {
        let mut bus = BusRules::default();
        // One rule matches; 1% of the others use a prefix on source (not indexable); the rest
        // want sources that never occur.
        bus.upsert(rule(0, r#"{"source":["aws.codecommit"],"detail":{"referenceName":["master"],"event":["referenceCreated","referenceUpdated"]}}"#.into()));
        let mut unindexed = 0;
        for i in 1..n {
            let p = if i % 100 == 0 {
                unindexed += 1;
                format!(
                    r#"{{"source":[{{"prefix":"svc-{i}."}}],"detail":{{"n":[{{"numeric":[">",{i}]}}]}}}}"#
                )
            } else {
                format!(
                    r#"{{"source":["svc-{i}"],"detail-type":["thing changed"],"detail":{{"state":["on"]}}}}"#
                )
            };
            bus.upsert(rule(i, p));
        }
        let iterations = 200_000;
        let start = Instant::now();
        let mut matched = 0;
        for _ in 0..iterations {
            matched += bus.matching(&event).len();
        }
        let secs = start.elapsed().as_secs_f64();
        assert_eq!(matched, iterations);
        println!(
            "| {n} | {unindexed} | 1 | {:.0} | {:.2} |",
            iterations as f64 / secs,
            secs * 1e6 / iterations as f64
        );
    }
}
