//! A build as stored, and as the API shows it.

use codeyard_api::Timestamp;
use codeyard_api::codebuild::{
    Build, BuildArtifacts, BuildPhase, BuildPhaseType, CloudWatchLogsConfig, ExportedEnvironmentVariable, LogsConfig,
    LogsConfigStatusType, LogsLocation, PhaseContext, ProjectArtifacts, ProjectCache, ProjectEnvironment, ProjectSource,
    ProjectSourceVersion, S3LogsConfig, StartBuildInput, StatusType,
};
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
    pub source_version: Option<String>,
    pub resolved_source_version: Option<String>,
    pub phases: Vec<PhaseRecord>,
    /// The effective configuration (project merged with StartBuild overrides, see
    /// [`crate::overrides`]).
    pub source: ProjectSource,
    pub secondary_sources: Vec<ProjectSource>,
    pub secondary_source_versions: Vec<ProjectSourceVersion>,
    pub artifacts_config: ProjectArtifacts,
    pub secondary_artifacts_config: Vec<ProjectArtifacts>,
    pub cache: ProjectCache,
    pub environment: ProjectEnvironment,
    pub service_role: String,
    pub logs_config: LogsConfig,
    pub log_group: String,
    pub log_stream: String,
    pub timeout_minutes: i64,
    pub queued_timeout_minutes: i64,
    pub encryption_key: Option<String>,
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
        self.logs_config
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
                duration_in_seconds: p.end_ms.map(|e| ((e - p.start_ms).max(0) + 500) / 1000),
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
        let cloud_watch_logs = self.logs_config.cloud_watch_logs.clone().unwrap_or(CloudWatchLogsConfig {
            status: LogsConfigStatusType::Enabled,
            group_name: None,
            stream_name: None,
        });
        let s3_logs = self.logs_config.s3_logs.clone().unwrap_or(S3LogsConfig {
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
            source_version: self.source_version.clone(),
            resolved_source_version: self.resolved_source_version.clone(),
            project_name: Some(self.project_name.clone()),
            phases: Some(phases),
            source: Some(self.source.clone()),
            secondary_sources: Some(self.secondary_sources.clone()),
            secondary_source_versions: Some(self.secondary_source_versions.clone()),
            artifacts: Some(self.artifacts.clone()),
            secondary_artifacts: Some(self.secondary_artifacts.clone()),
            cache: Some(self.cache.clone()),
            environment: Some(self.environment.clone()),
            service_role: Some(self.service_role.clone()),
            logs: Some(logs),
            timeout_in_minutes: Some(self.timeout_minutes as i32),
            queued_timeout_in_minutes: Some(self.queued_timeout_minutes as i32),
            build_complete: Some(self.build_complete),
            initiator: Some(self.initiator.clone()),
            encryption_key: self.encryption_key.clone(),
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
        let fmt = |ms: i64| {
            time::from_epoch_millis(ms)
                .format("%b %-d, %Y %-I:%M:%S %p")
                .to_string()
        };
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
            "completed-phase-duration-seconds": ((end - p.start_ms).max(0) + 500) / 1000,
            "version": "1",
            "completed-phase-start": fmt(p.start_ms),
            "completed-phase-end": fmt(end),
        })
    }

    fn additional_information(&self) -> Value {
        let fmt = |ms: i64| {
            time::from_epoch_millis(ms)
                .format("%b %-d, %Y %-I:%M:%S %p")
                .to_string()
        };
        let phases: Vec<Value> = self
            .phases
            .iter()
            .map(|p| {
                let mut v = json!({"start-time": fmt(p.start_ms), "phase-type": p.phase_type});
                if let Some(e) = p.end_ms {
                    v["end-time"] = json!(fmt(e));
                    v["duration-in-seconds"] = json!(((e - p.start_ms).max(0) + 500) / 1000);
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
                "image": self.environment.image, "privileged-mode": self.environment.privileged_mode,
                "compute-type": self.environment.compute_type, "type": self.environment.r#type,
                "environment-variables": shape(&self.environment.environment_variables),
            },
            "timeout-in-minutes": self.timeout_minutes,
            "build-complete": self.build_complete,
            "initiator": self.initiator,
            "build-start-time": fmt(self.start_ms),
            "source": shape(&self.source),
            "logs": {"group-name": self.log_group, "stream-name": self.log_stream,
                     "deep-link": deep_link(&self.region, &self.log_group, &self.log_stream)},
            "phases": phases,
            "queued-timeout-in-minutes": self.queued_timeout_minutes,
        });
        if let Some(v) = &self.source_version {
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
