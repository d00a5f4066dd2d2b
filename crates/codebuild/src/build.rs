//! A build as stored, and as the API shows it.

use codeyard_api::Timestamp;
use codeyard_api::codebuild::{
    Build, BuildArtifacts, BuildPhase, BuildPhaseType, CloudWatchLogsConfig, ExportedEnvironmentVariable,
    LogsConfigStatusType, LogsLocation, PhaseContext, S3LogsConfig, StartBuildInput, StatusType,
};
use crate::overrides::Effective;
use codeyard_core::hub::BuildStatus;
use codeyard_core::{arn::arn, time};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

/// One phase of a build (phases are appended as the build reaches them).
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct PhaseRecord {
    pub phase_type: BuildPhaseType,
    pub status: Option<BuildStatus>,
    pub start_ms: i64,
    pub end_ms: Option<i64>,
    /// (statusCode, message)
    pub contexts: Vec<(String, String)>,
}

/// Inputs and outputs of a build started by a CodePipeline action.
#[derive(Clone, Debug, Serialize, Deserialize, Default)]
pub struct PipelineContext {
    pub inputs: Vec<codeyard_core::hub::ArtifactLocation>,
    pub outputs: Vec<codeyard_core::hub::ArtifactLocation>,
    pub source_revision: Option<String>,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct BuildRecord {
    /// `<project>:<uuid>`
    pub id: String,
    pub arn: String,
    pub uuid: String,
    pub account: String,
    pub region: String,
    pub project_name: String,
    pub build_number: i64,
    pub start_ms: i64,
    pub end_ms: Option<i64>,
    pub current_phase: BuildPhaseType,
    pub build_status: BuildStatus,
    pub build_complete: bool,
    pub resolved_source_version: Option<String>,
    pub phases: Vec<PhaseRecord>,
    /// The effective configuration (project merged with StartBuild overrides, see
    /// [`crate::overrides`]); flattened, so its members sit beside the others in the stored
    /// JSON as they did before it was one struct.
    #[serde(flatten)]
    pub config: Effective,
    pub log_group: String,
    pub log_stream: String,
    pub initiator: String,
    /// Where artifacts went.
    pub artifacts: BuildArtifacts,
    pub secondary_artifacts: Vec<BuildArtifacts>,
    pub exported: Vec<(String, String)>,
    pub report_arns: Vec<String>,
    pub buildspec_override: Option<String>,
    pub pipeline: Option<PipelineContext>,
    /// The StartBuild input this build came from (RetryBuild starts it again).
    pub request: StartBuildInput,
    /// One line on why it failed, for pipelines and `codeyard logs`.
    pub message: Option<String>,
    /// Endpoint clients used when starting the build (AWS_ENDPOINT_URL for its commands).
    pub endpoint: String,
}

pub fn build_arn(region: &str, account: &str, id: &str) -> String {
    arn("codebuild", region, account, &format!("build/{id}"))
}

/// A model shape as the API shows it (absent members left out, not null).
fn shape(v: &impl Serialize) -> Value {
    codeyard_api::encode(v).unwrap_or(Value::Null)
}

/// A time as build events show it (`Dec 1, 2026 7:46:22 PM`).
fn event_time(ms: i64) -> String {
    time::from_epoch_millis(ms)
        .format("%b %-d, %Y %-I:%M:%S %p")
        .to_string()
}

/// Whole seconds between two instants, rounded as AWS rounds a phase's duration.
fn duration_seconds(start_ms: i64, end_ms: i64) -> i64 {
    ((end_ms - start_ms).max(0) + 500) / 1000
}

pub fn deep_link(region: &str, group: &str, stream: &str) -> String {
    let enc = |s: &str| s.replace('/', "%2F");
    format!(
        "https://console.aws.amazon.com/cloudwatch/home?region={region}#logEvent:group={};stream={}",
        enc(group),
        enc(stream)
    )
}

impl BuildRecord {
    pub fn logs_enabled(&self) -> bool {
        self.config
            .logs_config
            .cloud_watch_logs
            .as_ref()
            .is_none_or(|c| c.status != LogsConfigStatusType::Disabled)
    }

    pub fn phase_mut(&mut self, phase_type: &str) -> Option<&mut PhaseRecord> {
        self.phases
            .iter_mut()
            .rev()
            .find(|p| p.phase_type.as_str() == phase_type)
    }

    /// The model's `Build`.
    pub fn to_api(&self) -> Build {
        let status = |s: &BuildStatus| StatusType::from(s.as_str());
        let phases = self
            .phases
            .iter()
            .map(|p| BuildPhase {
                phase_type: Some(p.phase_type.clone()),
                phase_status: p.status.as_ref().map(status),
                start_time: Some(Timestamp::from_millis(p.start_ms)),
                end_time: p.end_ms.map(Timestamp::from_millis),
                duration_in_seconds: p.end_ms.map(|e| duration_seconds(p.start_ms, e)),
                contexts: p.end_ms.map(|_| {
                    if p.contexts.is_empty() {
                        vec![PhaseContext { status_code: Some(String::new()), message: Some(String::new()) }]
                    } else {
                        p.contexts
                            .iter()
                            .map(|(c, m)| PhaseContext { status_code: Some(c.clone()), message: Some(m.clone()) })
                            .collect()
                    }
                }),
            })
            .collect();
        let cloud_watch_logs = self.config.logs_config.cloud_watch_logs.clone().unwrap_or(CloudWatchLogsConfig {
            status: LogsConfigStatusType::Enabled,
            group_name: None,
            stream_name: None,
        });
        let s3_logs = self.config.logs_config.s3_logs.clone().unwrap_or(S3LogsConfig {
            status: LogsConfigStatusType::Disabled,
            location: None,
            encryption_disabled: None,
            bucket_owner_access: None,
        });
        let mut logs = LogsLocation { cloud_watch_logs: Some(cloud_watch_logs), s3_logs: Some(s3_logs), ..Default::default() };
        if self.logs_enabled() {
            logs.group_name = Some(self.log_group.clone());
            logs.stream_name = Some(self.log_stream.clone());
            logs.deep_link = Some(deep_link(&self.region, &self.log_group, &self.log_stream));
            logs.cloud_watch_logs_arn = Some(arn(
                "logs",
                &self.region,
                &self.account,
                &format!("log-group:{}:log-stream:{}", self.log_group, self.log_stream),
            ));
        }
        Build {
            id: Some(self.id.clone()),
            arn: Some(self.arn.clone()),
            build_number: Some(self.build_number),
            start_time: Some(Timestamp::from_millis(self.start_ms)),
            end_time: self.end_ms.map(Timestamp::from_millis),
            current_phase: Some(self.current_phase.to_string()),
            build_status: Some(status(&self.build_status)),
            source_version: self.config.source_version.clone(),
            resolved_source_version: self.resolved_source_version.clone(),
            project_name: Some(self.project_name.clone()),
            phases: Some(phases),
            source: Some(self.config.source.clone()),
            secondary_sources: Some(self.config.secondary_sources.clone()),
            secondary_source_versions: Some(self.config.secondary_source_versions.clone()),
            artifacts: Some(self.artifacts.clone()),
            secondary_artifacts: Some(self.secondary_artifacts.clone()),
            cache: Some(self.config.cache.clone()),
            environment: Some(self.config.environment.clone()),
            service_role: Some(self.config.service_role.clone()),
            logs: Some(logs),
            timeout_in_minutes: Some(self.config.timeout_minutes as i32),
            queued_timeout_in_minutes: Some(self.config.queued_timeout_minutes as i32),
            build_complete: Some(self.build_complete),
            initiator: Some(self.initiator.clone()),
            encryption_key: self.config.encryption_key.clone(),
            exported_environment_variables: Some(
                self.exported
                    .iter()
                    .map(|(n, v)| ExportedEnvironmentVariable { name: Some(n.clone()), value: Some(v.clone()) })
                    .collect(),
            ),
            report_arns: Some(self.report_arns.clone()),
            ..Default::default()
        }
    }

    /// `detail` of a "CodeBuild Build State Change" event.
    pub fn state_event_detail(&self) -> Value {
        json!({
            "build-status": self.build_status,
            "project-name": self.project_name,
            "build-id": self.arn,
            "additional-information": self.additional_information(),
            "current-phase": self.current_phase,
            "current-phase-context": "[]",
            "version": "1",
        })
    }

    /// `detail` of a "CodeBuild Build Phase Change" event for a phase that just ended.
    pub fn phase_event_detail(&self, p: &PhaseRecord) -> Value {
        let end = p.end_ms.unwrap_or(p.start_ms);
        let ctx: Vec<Value> = p
            .contexts
            .iter()
            .map(|(c, m)| json!({"statusCode": c, "message": m}))
            .collect();
        json!({
            "completed-phase": p.phase_type,
            "project-name": self.project_name,
            "build-id": self.arn,
            "completed-phase-context": serde_json::to_string(&ctx).unwrap_or_default(),
            "additional-information": self.additional_information(),
            "completed-phase-status": p.status.map(BuildStatus::as_str).unwrap_or_default(),
            "completed-phase-duration-seconds": duration_seconds(p.start_ms, end),
            "version": "1",
            "completed-phase-start": event_time(p.start_ms),
            "completed-phase-end": event_time(end),
        })
    }

    fn additional_information(&self) -> Value {
        let phases: Vec<Value> = self
            .phases
            .iter()
            .map(|p| {
                let mut v = json!({"start-time": event_time(p.start_ms), "phase-type": p.phase_type});
                if let Some(e) = p.end_ms {
                    v["end-time"] = json!(event_time(e));
                    v["duration-in-seconds"] = json!(duration_seconds(p.start_ms, e));
                }
                if let Some(s) = &p.status {
                    v["phase-status"] = json!(s);
                }
                v
            })
            .collect();
        let mut info = json!({
            "artifact": {"location": self.artifacts.location.as_deref().unwrap_or("")},
            "environment": {
                "image": self.config.environment.image, "privileged-mode": self.config.environment.privileged_mode,
                "compute-type": self.config.environment.compute_type, "type": self.config.environment.r#type,
                "environment-variables": shape(&self.config.environment.environment_variables),
            },
            "timeout-in-minutes": self.config.timeout_minutes,
            "build-complete": self.build_complete,
            "initiator": self.initiator,
            "build-start-time": event_time(self.start_ms),
            "source": shape(&self.config.source),
            "logs": {"group-name": self.log_group, "stream-name": self.log_stream,
                     "deep-link": deep_link(&self.region, &self.log_group, &self.log_stream)},
            "phases": phases,
            "queued-timeout-in-minutes": self.config.queued_timeout_minutes,
        });
        if let Some(v) = &self.config.source_version {
            info["source-version"] = json!(v);
        }
        info
    }

    pub fn outcome(&self) -> codeyard_core::hub::BuildOutcome {
        codeyard_core::hub::BuildOutcome {
            build_id: self.id.clone(),
            build_arn: self.arn.clone(),
            status: self.build_status,
            exported_variables: self.exported.clone(),
            message: self.message.clone(),
            log_url: Some(deep_link(&self.region, &self.log_group, &self.log_stream)),
        }
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use codeyard_api::codebuild::ArtifactsType;

    /// A stored build with only the required members filled in, in the shape stored records
    /// have (the configuration members beside the build's own).
    pub(crate) fn stored(project: &str, n: i64, start_ms: i64) -> Value {
        json!({
            "id": format!("{project}:{n:08}"), "arn": "", "uuid": format!("{n:08}"),
            "account": "000000000000", "region": "eu-west-1", "project_name": project,
            "build_number": n, "start_ms": start_ms, "end_ms": null,
            "current_phase": "COMPLETED", "build_status": "SUCCEEDED", "build_complete": true,
            "source_version": null, "resolved_source_version": null, "phases": [],
            "source": {"type": "NO_SOURCE"}, "secondary_sources": [], "secondary_source_versions": [],
            "artifacts_config": {"type": "NO_ARTIFACTS"}, "secondary_artifacts_config": [],
            "cache": {"type": "NO_CACHE"},
            "environment": {"type": "LINUX_CONTAINER", "image": "i", "computeType": "BUILD_GENERAL1_SMALL"},
            "service_role": "", "logs_config": {}, "log_group": "", "log_stream": "",
            "timeout_minutes": 60, "queued_timeout_minutes": 480, "encryption_key": null,
            "initiator": "", "artifacts": {}, "secondary_artifacts": [], "exported": [],
            "report_arns": [], "buildspec_override": null, "pipeline": null,
            "request": {"projectName": project}, "message": null, "endpoint": "",
        })
    }

    #[test]
    fn a_stored_build_loads_into_the_embedded_configuration_and_stores_the_same_json() {
        let mut v = stored("p", 7, 1_700_000_000_000);
        v["source_version"] = json!("main");
        v["artifacts_config"] = json!({"type": "S3", "location": "out-bucket", "name": "app.zip"});
        v["artifacts"] = json!({"location": "arn:aws:s3:::out-bucket/app.zip"});
        v["service_role"] = json!("arn:aws:iam::000000000000:role/build");
        v["timeout_minutes"] = json!(15);
        v["encryption_key"] = json!("arn:aws:kms:eu-west-1:000000000000:alias/aws/s3");
        let rec: BuildRecord = serde_json::from_value(v.clone()).unwrap();
        assert_eq!(rec.config.artifacts.r#type, ArtifactsType::S3);
        assert_eq!(rec.config.artifacts.location.as_deref(), Some("out-bucket"));
        assert_eq!(rec.artifacts.location.as_deref(), Some("arn:aws:s3:::out-bucket/app.zip"));
        assert_eq!(rec.config.source_version.as_deref(), Some("main"));
        assert_eq!(rec.config.service_role, "arn:aws:iam::000000000000:role/build");
        assert_eq!((rec.config.timeout_minutes, rec.config.queued_timeout_minutes), (15, 480));
        assert!(rec.config.encryption_key.is_some());
        // Stored again, it has the same members at the top (model shapes spell out their nulls),
        // and that loads back to the same record.
        let again = serde_json::to_value(&rec).unwrap();
        let members = |v: &Value| v.as_object().unwrap().keys().cloned().collect::<std::collections::BTreeSet<_>>();
        assert_eq!(members(&again), members(&v), "the stored shape is unchanged");
        let reloaded: BuildRecord = serde_json::from_value(again.clone()).unwrap();
        assert_eq!(serde_json::to_value(&reloaded).unwrap(), again);
    }
}
