//! The pipeline as AWS declares it (botocore's `PipelineDeclaration`), and the documents the
//! crate keeps in the store. Member names are AWS's, so a declaration goes to and from the wire
//! unchanged (Terraform reads back exactly what it sent).

use codeyard_core::hub::ArtifactLocation;
use codeyard_core::time::Timestamp;
use serde::{Deserialize, Serialize};
use codeyard_api::codepipeline as cp;
use std::collections::BTreeMap;

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct PipelineDeclaration {
    pub name: String,
    pub role_arn: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub artifact_store: Option<ArtifactStore>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub artifact_stores: Option<BTreeMap<String, ArtifactStore>>,
    pub stages: Vec<StageDeclaration>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub execution_mode: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pipeline_type: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub variables: Option<Vec<VariableDeclaration>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub triggers: Option<AsDeclared<Vec<cp::PipelineTriggerDeclaration>>>,
}

/// A part of the declaration codeyard keeps and returns as declared but does not act on
/// (V2 triggers and stage conditions, a Commands action's environment variables): the
/// generated API shape, compared by value (the generated shapes have no `PartialEq`).
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(transparent)]
pub struct AsDeclared<T>(pub T);

impl<T: Serialize> PartialEq for AsDeclared<T> {
    fn eq(&self, other: &Self) -> bool {
        serde_json::to_value(&self.0).ok() == serde_json::to_value(&other.0).ok()
    }
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct ArtifactStore {
    #[serde(rename = "type")]
    pub store_type: String,
    pub location: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub encryption_key: Option<EncryptionKey>,
}

/// The KMS key the pipeline's artifacts are written under (`type` is always `KMS`); without
/// one the bucket's default encryption applies.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct EncryptionKey {
    pub id: String,
    #[serde(rename = "type")]
    pub key_type: String,
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct VariableDeclaration {
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub default_value: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct StageDeclaration {
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub blockers: Option<AsDeclared<Vec<cp::BlockerDeclaration>>>,
    pub actions: Vec<ActionDeclaration>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub on_failure: Option<AsDeclared<cp::FailureConditions>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub on_success: Option<AsDeclared<cp::SuccessConditions>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub before_entry: Option<AsDeclared<cp::BeforeEntryConditions>>,
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq, PartialOrd, Ord)]
pub struct ActionTypeId {
    pub category: String,
    pub owner: String,
    pub provider: String,
    pub version: String,
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct ArtifactRef {
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub files: Option<Vec<String>>,
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct ActionDeclaration {
    pub name: String,
    pub action_type_id: ActionTypeId,
    /// AWS answers 1 when the declaration left it out.
    #[serde(default = "one")]
    pub run_order: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub configuration: Option<BTreeMap<String, String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub commands: Option<Vec<String>>,
    #[serde(default)]
    pub output_artifacts: Vec<ArtifactRef>,
    #[serde(default)]
    pub input_artifacts: Vec<ArtifactRef>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub output_variables: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub role_arn: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub region: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout_in_minutes: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub environment_variables: Option<AsDeclared<Vec<cp::EnvironmentVariable>>>,
}

fn one() -> i64 {
    1
}

impl ActionDeclaration {
    pub fn config(&self, key: &str) -> Option<&str> {
        self.configuration
            .as_ref()
            .and_then(|c| c.get(key))
            .map(String::as_str)
    }
}

impl PipelineDeclaration {
    pub fn execution_mode(&self) -> &str {
        self.execution_mode.as_deref().unwrap_or("SUPERSEDED")
    }
    pub fn pipeline_type(&self) -> &str {
        self.pipeline_type.as_deref().unwrap_or("V1")
    }
    /// The artifact bucket for actions in `region` (the pipeline's own region by default).
    pub fn artifact_bucket(&self, region: &str) -> Option<String> {
        self.artifact_store_in(region).map(|s| s.location.clone())
    }

    /// The artifact store of `region` (the one store of a single-region pipeline).
    pub fn artifact_store_in(&self, region: &str) -> Option<&ArtifactStore> {
        if let Some(s) = &self.artifact_store {
            return Some(s);
        }
        self.artifact_stores
            .as_ref()
            .and_then(|m| m.get(region).or_else(|| m.values().next()))
    }
}

/// Inbound transition of a stage.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
pub struct Transition {
    pub enabled: bool,
    pub last_changed_by: Option<String>,
    pub last_changed_at: Option<Timestamp>,
    pub disabled_reason: Option<String>,
}

/// A pipeline as stored: `codepipeline/<account>/<region>/pipelines`, keyed by name.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct PipelineDoc {
    pub declaration: PipelineDeclaration,
    pub arn: String,
    pub created: Timestamp,
    pub updated: Timestamp,
    #[serde(default)]
    pub tags: BTreeMap<String, String>,
    /// Stage name -> inbound transition, only for stages whose transition was ever changed.
    #[serde(default)]
    pub transitions: BTreeMap<String, Transition>,
    /// Source action name -> last revision seen by the change poller.
    #[serde(default)]
    pub polled_revisions: BTreeMap<String, String>,
}

impl PipelineDoc {
    pub fn transition_enabled(&self, stage: &str) -> bool {
        self.transitions.get(stage).is_none_or(|t| t.enabled)
    }
}

/// Terminal and live statuses, as AWS spells them.
/// The status of an execution, a stage or an action run; stored and answered as AWS spells
/// it (`InProgress`, ...), so documents written before this was an enum read the same.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Status {
    InProgress,
    Succeeded,
    Failed,
    Stopped,
    Stopping,
    Superseded,
    Cancelled,
    Abandoned,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::InProgress => "InProgress",
            Status::Succeeded => "Succeeded",
            Status::Failed => "Failed",
            Status::Stopped => "Stopped",
            Status::Stopping => "Stopping",
            Status::Superseded => "Superseded",
            Status::Cancelled => "Cancelled",
            Status::Abandoned => "Abandoned",
        }
    }

    /// Still moving: in progress or being stopped.
    pub fn is_live(self) -> bool {
        matches!(self, Status::InProgress | Status::Stopping)
    }
}

impl std::fmt::Display for Status {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct SourceRevision {
    pub action_name: String,
    pub revision_id: String,
    pub revision_summary: Option<String>,
    pub revision_url: Option<String>,
}

/// An artifact produced in an execution, with the revision it carries (a commit id).
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct ProducedArtifact {
    pub location: ArtifactLocation,
    pub revision: Option<String>,
    pub revision_summary: Option<String>,
    pub revision_url: Option<String>,
    pub created: Timestamp,
}

/// One run of one action (a retry adds a new run; older runs stay for ListActionExecutions).
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct ActionRun {
    pub action_execution_id: String,
    pub stage: String,
    pub action: String,
    /// False once a stage retry replaced this run.
    pub current: bool,
    pub status: Status,
    pub start_time: Timestamp,
    pub last_update_time: Timestamp,
    pub input_artifacts: Vec<ArtifactLocation>,
    pub output_artifacts: Vec<ArtifactLocation>,
    pub resolved_configuration: BTreeMap<String, String>,
    pub external_execution_id: Option<String>,
    pub external_execution_url: Option<String>,
    pub summary: Option<String>,
    pub error_code: Option<String>,
    pub error_message: Option<String>,
    #[serde(default)]
    pub output_variables: BTreeMap<String, String>,
    /// Manual approvals: the token PutApprovalResult must present.
    pub token: Option<String>,
}

#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
pub struct StageRun {
    /// None until the execution entered the stage.
    pub status: Option<Status>,
    pub entered_at: Option<Timestamp>,
    #[serde(default)]
    pub manual_retries: u32,
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct StopRequest {
    pub abandon: bool,
    pub reason: Option<String>,
}

/// A pipeline execution as stored: `codepipeline/<account>/<region>/executions`, keyed
/// `<pipeline>/<execution id>`. It carries the declaration it started with, so an update of
/// the pipeline does not change a running execution.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct Execution {
    pub id: String,
    pub pipeline: String,
    pub pipeline_arn: String,
    pub pipeline_version: i64,
    pub declaration: PipelineDeclaration,
    /// Start order within the server (orders executions that started in the same millisecond).
    pub seq: i64,
    pub status: Status,
    pub status_summary: Option<String>,
    pub trigger_type: String,
    pub trigger_detail: String,
    pub execution_mode: String,
    pub start_time: Timestamp,
    pub last_update_time: Timestamp,
    pub client_request_token: Option<String>,
    /// Pipeline variables resolved at start (declared defaults overridden by the request).
    pub variables: Vec<(String, String)>,
    /// Source action name -> revision to fetch (from an event or a request override).
    #[serde(default)]
    pub revision_overrides: BTreeMap<String, String>,
    pub source_revisions: Vec<SourceRevision>,
    /// Stage name -> progress.
    pub stages: BTreeMap<String, StageRun>,
    pub runs: Vec<ActionRun>,
    /// Artifact name -> where it is.
    pub artifacts: BTreeMap<String, ProducedArtifact>,
    /// Action namespace -> its output variables.
    #[serde(default)]
    pub namespaces: BTreeMap<String, BTreeMap<String, String>>,
    pub stop: Option<StopRequest>,
}

impl Execution {
    pub fn is_terminal(&self) -> bool {
        !self.status.is_live()
    }
    pub fn stage(&self, name: &str) -> StageRun {
        self.stages.get(name).cloned().unwrap_or_default()
    }
    pub fn current_run(&self, stage: &str, action: &str) -> Option<&ActionRun> {
        self.runs
            .iter()
            .rev()
            .find(|r| r.current && r.stage == stage && r.action == action)
    }
    pub fn current_run_mut(&mut self, stage: &str, action: &str) -> Option<&mut ActionRun> {
        self.runs
            .iter_mut()
            .rev()
            .find(|r| r.current && r.stage == stage && r.action == action)
    }
    pub fn run_by_id_mut(&mut self, id: &str) -> Option<&mut ActionRun> {
        self.runs.iter_mut().find(|r| r.action_execution_id == id)
    }
    /// The index of the stage the execution is in or waits for: the first not Succeeded.
    pub fn frontier(&self) -> Option<usize> {
        self.declaration.stages.iter().position(|s| {
            self.stages.get(&s.name).and_then(|r| r.status) != Some(Status::Succeeded)
        })
    }
}
