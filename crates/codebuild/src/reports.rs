//! Test reports: the buildspec's `reports:` files parsed into report groups, reports and test
//! cases.
//!
//! XML formats (JUnit, and TestNG / NUnit / xUnit-like files that use `<testcase>` elements)
//! are read with one streaming parser: a `<testcase>` is a test, a `<failure>` or `<error>`
//! inside it fails it, `<skipped>` skips it. A build's reports go to group
//! `<project>-<name>` (created on first use, as AWS does) or to the group an ARN names.

use crate::artifacts;
use crate::build::BuildRecord;
use crate::buildspec::{ArtifactSpec, Buildspec};
use crate::io::ns;
use codeyard_core::{AwsResult, RequestContext, arn::arn, ids, time};
use codeyard_store::{Batch, Expect, StateStoreExt};
use codeyard_wire::Platform;
use quick_xml::events::Event;
use serde_json::{Value, json};
use std::path::Path;

#[derive(Debug, Clone, PartialEq)]
pub struct TestCase {
    pub suite: String,
    pub prefix: String,
    pub name: String,
    pub status: String,
    pub duration_ns: i64,
    pub message: Option<String>,
}

fn attr(e: &quick_xml::events::BytesStart, name: &[u8]) -> Option<String> {
    e.attributes()
        .flatten()
        .find(|a| a.key.as_ref() == name)
        .and_then(|a| a.unescape_value().ok())
        .map(|v| v.to_string())
}

/// Parses JUnit-style XML.
pub fn parse_xml(text: &str) -> Result<Vec<TestCase>, String> {
    let mut reader = quick_xml::Reader::from_str(text);
    let mut cases = Vec::new();
    let mut suite = String::new();
    let mut current: Option<TestCase> = None;
    let mut in_message = false;
    loop {
        let ev = reader
            .read_event()
            .map_err(|e| format!("invalid XML: {e}"))?;
        let empty = matches!(ev, Event::Empty(_));
        match ev {
            Event::Start(e) | Event::Empty(e) => match e.name().as_ref() {
                b"testsuite" => suite = attr(&e, b"name").unwrap_or_default(),
                b"testcase" => {
                    let secs: f64 = attr(&e, b"time")
                        .and_then(|t| t.parse().ok())
                        .unwrap_or(0.0);
                    let case = TestCase {
                        suite: suite.clone(),
                        prefix: attr(&e, b"classname").unwrap_or_default(),
                        name: attr(&e, b"name").unwrap_or_default(),
                        status: "SUCCEEDED".into(),
                        duration_ns: (secs * 1e9) as i64,
                        message: None,
                    };
                    if empty {
                        cases.push(case);
                    } else {
                        current = Some(case);
                    }
                }
                tag @ (b"failure" | b"error" | b"skipped") => {
                    if let Some(c) = current.as_mut() {
                        c.status = match tag {
                            b"failure" => "FAILED",
                            b"error" => "ERROR",
                            _ => "SKIPPED",
                        }
                        .into();
                        c.message = attr(&e, b"message");
                        in_message = !empty;
                    }
                }
                _ => {}
            },
            Event::Text(t) if in_message => {
                if let Some(c) = current.as_mut() {
                    let text = t.unescape().map(|s| s.to_string()).unwrap_or_default();
                    if !text.trim().is_empty() {
                        let m = c.message.get_or_insert_with(String::new);
                        if !m.is_empty() {
                            m.push('\n');
                        }
                        m.push_str(text.trim());
                    }
                }
            }
            Event::End(e) => match e.name().as_ref() {
                b"testcase" => {
                    if let Some(c) = current.take() {
                        cases.push(c);
                    }
                }
                b"failure" | b"error" | b"skipped" => in_message = false,
                _ => {}
            },
            Event::Eof => break,
            _ => {}
        }
    }
    Ok(cases)
}

pub fn group_arn(region: &str, account: &str, name: &str) -> String {
    arn(
        "codebuild",
        region,
        account,
        &format!("report-group/{name}"),
    )
}

/// A new report group document (the model's `ReportGroup`).
pub fn new_group(
    region: &str,
    account: &str,
    name: &str,
    typ: &str,
    export: Value,
    tags: Value,
) -> Value {
    let now = time::epoch_json(&time::now());
    json!({
        "arn": group_arn(region, account, name), "name": name, "type": typ, "exportConfig": export,
        "created": now, "lastModified": now, "tags": tags, "status": "ACTIVE",
    })
}

/// Reads the build's report files and stores one report per `reports:` entry.
pub async fn collect(
    platform: &Platform,
    ctx: &RequestContext,
    b: &BuildRecord,
    spec: &Buildspec,
    src_dir: &Path,
) -> Result<Vec<String>, String> {
    let mut arns = Vec::new();
    for r in &spec.reports {
        let group_name = match r.name.strip_prefix("arn:") {
            Some(_) => r
                .name
                .rsplit_once("report-group/")
                .map(|(_, n)| n.to_string())
                .unwrap_or_else(|| r.name.clone()),
            None => format!("{}-{}", b.project_name, r.name),
        };
        let aspec = ArtifactSpec {
            files: r.files.clone(),
            base_directory: r.base_directory.clone(),
            discard_paths: r.discard_paths,
            ..Default::default()
        };
        let mut cases = Vec::new();
        let mut problems = Vec::new();
        for f in artifacts::select(src_dir, &aspec)? {
            match std::fs::read_to_string(&f.path)
                .map_err(|e| e.to_string())
                .and_then(|t| parse_xml(&t))
            {
                Ok(mut c) => cases.append(&mut c),
                Err(e) => problems.push(format!("{}: {e}", f.name)),
            }
        }
        let gns = ns(&ctx.account, &ctx.region, "report-groups");
        let group = match platform
            .store
            .get_as::<Value>(&gns, &group_name)
            .await
            .map_err(|e| e.to_string())?
        {
            Some((g, _)) => g,
            None => {
                let g = new_group(
                    &ctx.region,
                    &ctx.account,
                    &group_name,
                    "TEST",
                    json!({"exportConfigType": "NO_EXPORT"}),
                    json!([]),
                );
                let _ = platform
                    .store
                    .commit(Batch::new().put(&gns, &group_name, &g, Expect::Absent))
                    .await;
                g
            }
        };
        let report_id = format!("{group_name}:{}", ids::uuid());
        let report_arn = arn(
            "codebuild",
            &ctx.region,
            &ctx.account,
            &format!("report/{report_id}"),
        );
        let mut counts = serde_json::Map::new();
        for c in &cases {
            let n = counts.get(&c.status).and_then(Value::as_i64).unwrap_or(0);
            counts.insert(c.status.clone(), json!(n + 1));
        }
        let failed = cases
            .iter()
            .any(|c| c.status == "FAILED" || c.status == "ERROR");
        let status = if !problems.is_empty() && cases.is_empty() {
            "INCOMPLETE"
        } else if failed {
            "FAILED"
        } else {
            "SUCCEEDED"
        };
        let now = time::now();
        let report = json!({
            "arn": report_arn, "type": "TEST", "name": group_name, "reportGroupArn": group["arn"],
            "executionId": b.arn, "status": status, "created": time::epoch_json(&now),
            "expired": time::epoch_json(&(now + chrono::Duration::days(30))),
            "exportConfig": group["exportConfig"], "truncated": false,
            "testSummary": {"total": cases.len(), "statusCounts": counts,
                            "durationInNanoSeconds": cases.iter().map(|c| c.duration_ns).sum::<i64>()},
            "testCases": cases.iter().map(|c| {
                let mut v = json!({"reportArn": report_arn, "testRawDataPath": "", "prefix": c.prefix, "name": c.name,
                                   "status": c.status, "durationInNanoSeconds": c.duration_ns,
                                   "expired": time::epoch_json(&(now + chrono::Duration::days(30))), "testSuiteName": c.suite});
                if let Some(m) = &c.message { v["message"] = json!(m); }
                v
            }).collect::<Vec<_>>(),
        });
        platform
            .store
            .commit(Batch::new().put(
                ns(&ctx.account, &ctx.region, "reports"),
                &report_id,
                &report,
                Expect::Absent,
            ))
            .await
            .map_err(|e| e.to_string())?;
        arns.push(report_arn);
    }
    Ok(arns)
}

/// The report key (`<group>:<uuid>`) in a report ARN.
pub fn report_key(report_arn: &str) -> &str {
    report_arn
        .split_once(":report/")
        .map(|(_, k)| k)
        .unwrap_or(report_arn)
}

/// A stored report without its test cases (the model's `Report`).
pub fn report_api(doc: &Value) -> Value {
    let mut r = doc.clone();
    if let Some(o) = r.as_object_mut() {
        o.remove("testCases");
    }
    r
}

pub async fn load_report(
    platform: &Platform,
    ctx: &RequestContext,
    report_arn: &str,
) -> AwsResult<Option<Value>> {
    Ok(platform
        .store
        .get_as::<Value>(
            &ns(&ctx.account, &ctx.region, "reports"),
            report_key(report_arn),
        )
        .await?
        .map(|(v, _)| v))
}

#[cfg(test)]
mod tests {
    #[test]
    fn junit_cases() {
        let xml = r#"<?xml version="1.0"?><testsuites><testsuite name="S"><testcase classname="a.B" name="ok" time="0.5"/>
            <testcase classname="a.B" name="bad" time="1"><failure message="expected 1">trace</failure></testcase>
            <testcase name="skip"><skipped/></testcase></testsuite></testsuites>"#;
        let c = super::parse_xml(xml).unwrap();
        assert_eq!(c.len(), 3);
        assert_eq!(c[0].status, "SUCCEEDED");
        assert_eq!(c[0].duration_ns, 500_000_000);
        assert_eq!(c[1].status, "FAILED");
        assert_eq!(c[1].message.as_deref(), Some("expected 1\ntrace"));
        assert_eq!(c[2].status, "SKIPPED");
        assert_eq!(c[2].suite, "S");
    }
}
