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
use codeyard_api::Timestamp;
use codeyard_api::codebuild::{
    Report, ReportExportConfig, ReportExportConfigType, ReportGroup, ReportGroupStatusType, ReportStatusType, ReportType,
    Tag, TestCase as ApiTestCase, TestReportSummary,
};
use codeyard_core::{AwsResult, RequestContext, arn::arn, ids, time};
use codeyard_store::{Batch, Expect, StateStoreExt};
use codeyard_wire::Platform;
use quick_xml::events::Event;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::Path;

/// A test case's outcome, as CodeBuild names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum TestStatus {
    Succeeded,
    Failed,
    Error,
    Skipped,
    Unknown,
}

impl TestStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            TestStatus::Succeeded => "SUCCEEDED",
            TestStatus::Failed => "FAILED",
            TestStatus::Error => "ERROR",
            TestStatus::Skipped => "SKIPPED",
            TestStatus::Unknown => "UNKNOWN",
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct TestCase {
    pub suite: String,
    pub prefix: String,
    pub name: String,
    pub status: TestStatus,
    pub duration_ns: i64,
    pub message: Option<String>,
}

/// A report group as stored (the model's `ReportGroup` layout).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ReportGroupRecord {
    pub arn: String,
    pub name: String,
    pub r#type: ReportType,
    pub export_config: ReportExportConfig,
    pub created: Timestamp,
    pub last_modified: Timestamp,
    #[serde(default)]
    pub tags: Vec<Tag>,
    pub status: ReportGroupStatusType,
}

impl ReportGroupRecord {
    pub fn to_api(&self) -> ReportGroup {
        crate::io::as_model(self)
    }
}

/// One test case of a stored report.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TestCaseRecord {
    pub report_arn: String,
    #[serde(default)]
    pub test_raw_data_path: String,
    pub prefix: String,
    pub name: String,
    pub status: TestStatus,
    pub duration_in_nano_seconds: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    pub expired: Timestamp,
    pub test_suite_name: String,
}

impl TestCaseRecord {
    pub fn to_api(&self) -> ApiTestCase {
        crate::io::as_model(self)
    }
}

/// A report as stored: the model's `Report` layout with its test cases.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ReportRecord {
    pub arn: String,
    pub r#type: ReportType,
    pub name: String,
    pub report_group_arn: String,
    pub execution_id: String,
    pub status: ReportStatusType,
    pub created: Timestamp,
    pub expired: Timestamp,
    pub export_config: ReportExportConfig,
    pub truncated: bool,
    pub test_summary: TestReportSummary,
    #[serde(default)]
    pub test_cases: Vec<TestCaseRecord>,
}

impl ReportRecord {
    /// The model's `Report` (without its test cases).
    pub fn to_api(&self) -> Report {
        crate::io::as_model(self)
    }
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
                        status: TestStatus::Succeeded,
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
                            b"failure" => TestStatus::Failed,
                            b"error" => TestStatus::Error,
                            _ => TestStatus::Skipped,
                        };
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

/// A new, active report group.
pub fn new_group(
    region: &str,
    account: &str,
    name: &str,
    r#type: ReportType,
    export_config: ReportExportConfig,
    tags: Vec<Tag>,
) -> ReportGroupRecord {
    let now = Timestamp::from(time::now());
    ReportGroupRecord {
        arn: group_arn(region, account, name),
        name: name.to_string(),
        r#type,
        export_config,
        created: now,
        last_modified: now,
        tags,
        status: ReportGroupStatusType::Active,
    }
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
            .get_as::<ReportGroupRecord>(&gns, &group_name)
            .await
            .map_err(|e| e.to_string())?
        {
            Some((g, _)) => g,
            None => {
                let g = new_group(
                    &ctx.region,
                    &ctx.account,
                    &group_name,
                    ReportType::Test,
                    ReportExportConfig { export_config_type: Some(ReportExportConfigType::NoExport), s3_destination: None },
                    vec![],
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
        let mut counts: BTreeMap<String, i32> = BTreeMap::new();
        for c in &cases {
            *counts.entry(c.status.as_str().to_string()).or_insert(0) += 1;
        }
        let failed = cases.iter().any(|c| matches!(c.status, TestStatus::Failed | TestStatus::Error));
        let status = if !problems.is_empty() && cases.is_empty() {
            ReportStatusType::Incomplete
        } else if failed {
            ReportStatusType::Failed
        } else {
            ReportStatusType::Succeeded
        };
        let now = time::now();
        let expired = Timestamp::from(now + chrono::Duration::days(30));
        let report = ReportRecord {
            arn: report_arn.clone(),
            r#type: ReportType::Test,
            name: group_name.clone(),
            report_group_arn: group.arn.clone(),
            execution_id: b.arn.clone(),
            status,
            created: Timestamp::from(now),
            expired,
            export_config: group.export_config.clone(),
            truncated: false,
            test_summary: TestReportSummary {
                total: cases.len() as i32,
                status_counts: counts,
                duration_in_nano_seconds: cases.iter().map(|c| c.duration_ns).sum(),
            },
            test_cases: cases
                .iter()
                .map(|c| TestCaseRecord {
                    report_arn: report_arn.clone(),
                    test_raw_data_path: String::new(),
                    prefix: c.prefix.clone(),
                    name: c.name.clone(),
                    status: c.status,
                    duration_in_nano_seconds: c.duration_ns,
                    message: c.message.clone(),
                    expired,
                    test_suite_name: c.suite.clone(),
                })
                .collect(),
        };
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

pub async fn load_report(
    platform: &Platform,
    ctx: &RequestContext,
    report_arn: &str,
) -> AwsResult<Option<ReportRecord>> {
    Ok(platform
        .store
        .get_as::<ReportRecord>(&ns(&ctx.account, &ctx.region, "reports"), report_key(report_arn))
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
        assert_eq!(c[0].status, super::TestStatus::Succeeded);
        assert_eq!(c[0].duration_ns, 500_000_000);
        assert_eq!(c[1].status, super::TestStatus::Failed);
        assert_eq!(c[1].message.as_deref(), Some("expected 1\ntrace"));
        assert_eq!(c[2].status, super::TestStatus::Skipped);
        assert_eq!(c[2].suite, "S");
    }
}
