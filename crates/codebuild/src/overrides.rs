//! A build's effective configuration: its project merged with StartBuild's `*Override`
//! members. The input is the model's typed [`StartBuildInput`], so an override the model
//! refuses (a non-numeric `timeoutInMinutesOverride`) never reaches a build; callers that do
//! not come through the wire (EventBridge targets) validate with [`validated_input`].

use codeyard_api::codebuild::*;
use crate::error::{CodeBuildError, CodeBuildResult};
use crate::project::ProjectRecord;
use codeyard_core::{AwsError, AwsResult};
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// What a build runs with (every member model-shaped). A build record embeds it flattened
/// ([`crate::build::BuildRecord::config`]); the serde names are the stored record's.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Effective {
    pub source: ProjectSource,
    pub secondary_sources: Vec<ProjectSource>,
    pub secondary_source_versions: Vec<ProjectSourceVersion>,
    /// What the project asks for; where they went is the record's `artifacts`.
    #[serde(rename = "artifacts_config")]
    pub artifacts: ProjectArtifacts,
    #[serde(rename = "secondary_artifacts_config")]
    pub secondary_artifacts: Vec<ProjectArtifacts>,
    pub cache: ProjectCache,
    pub environment: ProjectEnvironment,
    pub service_role: String,
    pub logs_config: LogsConfig,
    pub timeout_minutes: i64,
    pub queued_timeout_minutes: i64,
    pub encryption_key: Option<String>,
    pub source_version: Option<String>,
}

fn invalid(msg: impl Into<String>) -> CodeBuildError {
    CodeBuildError::Invalid(msg.into())
}

/// StartBuild input from a JSON value that did not pass the wire (an EventBridge target's
/// input): checked against the model first, refused with ValidationException as AWS does.
pub fn validated_input(input: Value) -> AwsResult<StartBuildInput> {
    use codeyard_wire::shapes::{validate_input, validation_message};
    let model = codeyard_wire::models::model("codebuild").ok_or_else(|| AwsError::internal("the codebuild model is not embedded"))?;
    let problems = validate_input(model, "StartBuild", &input);
    if !problems.is_empty() {
        return Err(AwsError::validation(validation_message(&problems)));
    }
    serde_json::from_value(input).map_err(|e| AwsError::validation(e.to_string()))
}

/// Artifacts of one type with nothing else set.
pub fn artifacts_of(r#type: ArtifactsType) -> ProjectArtifacts {
    ProjectArtifacts {
        r#type,
        location: None,
        path: None,
        namespace_type: None,
        name: None,
        packaging: None,
        override_artifact_name: None,
        encryption_disabled: None,
        artifact_identifier: None,
        bucket_owner_access: None,
    }
}

fn merged_source(project: &ProjectRecord, input: &StartBuildInput, pipeline: bool) -> CodeBuildResult<ProjectSource> {
    let mut source = project.source.clone();
    if let Some(t) = &input.source_type_override {
        source.r#type = t.clone();
    }
    if let Some(l) = &input.source_location_override {
        source.location = Some(l.clone());
    }
    if let Some(d) = input.git_clone_depth_override {
        source.git_clone_depth = Some(d);
    }
    if let Some(s) = input.insecure_ssl_override {
        source.insecure_ssl = Some(s);
    }
    if let Some(b) = &input.buildspec_override {
        source.buildspec = Some(b.clone());
    }
    if pipeline {
        source.r#type = SourceType::Codepipeline;
        source.location = None;
        source.git_clone_depth = None;
    } else if source.r#type == SourceType::Codepipeline {
        return Err(invalid(
            "Project source type CODEPIPELINE can only be built by CodePipeline; give sourceTypeOverride to start it directly",
        ));
    }
    let stype = source.r#type.as_str();
    let no_location = matches!(source.r#type, SourceType::NoSource | SourceType::Codepipeline);
    if !no_location && source.location.as_deref().unwrap_or("").is_empty() {
        return Err(invalid(format!("Source location is required for source type {stype}")));
    }
    if !no_location && !matches!(source.r#type, SourceType::Codecommit | SourceType::S3) {
        return Err(invalid(format!("codeyard builds do not support source type {stype} yet")));
    }
    Ok(source)
}

fn merged_environment(project: &ProjectRecord, input: &StartBuildInput) -> CodeBuildResult<ProjectEnvironment> {
    let mut env = project.environment.clone();
    if let Some(v) = &input.image_override {
        env.image = v.clone();
    }
    if let Some(v) = &input.compute_type_override {
        env.compute_type = v.clone();
    }
    if let Some(v) = &input.environment_type_override {
        env.r#type = v.clone();
    }
    if let Some(v) = input.privileged_mode_override {
        env.privileged_mode = Some(v);
    }
    if let Some(v) = &input.certificate_override {
        env.certificate = Some(v.clone());
    }
    if let Some(v) = &input.image_pull_credentials_type_override {
        env.image_pull_credentials_type = Some(v.clone());
    }
    let mut vars = env.environment_variables.take().unwrap_or_default();
    if let Some(over) = &input.environment_variables_override {
        crate::project::validate_env_var_names(over.iter().map(|v| v.name.as_str()))?;
        for v in over {
            let mut v = v.clone();
            v.r#type.get_or_insert(EnvironmentVariableType::Plaintext);
            vars.retain(|x| x.name != v.name);
            vars.push(v);
        }
    }
    env.environment_variables = Some(vars);
    Ok(env)
}

/// The project merged with the input's overrides (`pipeline`: started by a CodePipeline
/// action, whose artifacts the action names).
pub fn effective(project: &ProjectRecord, input: &StartBuildInput, pipeline: bool) -> CodeBuildResult<Effective> {
    let artifacts = match (pipeline, &input.artifacts_override) {
        (true, _) => artifacts_of(ArtifactsType::Codepipeline),
        (false, Some(a)) => a.clone(),
        (false, None) => project.artifacts.clone(),
    };
    let secondary_artifacts = match (pipeline, &input.secondary_artifacts_override) {
        (true, _) => vec![],
        (false, Some(a)) => a.clone(),
        (false, None) => project.secondary_artifacts.clone(),
    };
    Ok(Effective {
        source: merged_source(project, input, pipeline)?,
        secondary_sources: input.secondary_sources_override.clone().unwrap_or_else(|| project.secondary_sources.clone()),
        secondary_source_versions: input
            .secondary_sources_version_override
            .clone()
            .unwrap_or_else(|| project.secondary_source_versions.clone()),
        artifacts,
        secondary_artifacts,
        cache: input.cache_override.clone().unwrap_or_else(|| project.cache.clone()),
        environment: merged_environment(project, input)?,
        service_role: input.service_role_override.clone().unwrap_or_else(|| project.service_role.clone()),
        logs_config: input.logs_config_override.clone().unwrap_or_else(|| project.logs_config.clone()),
        timeout_minutes: i64::from(input.timeout_in_minutes_override.unwrap_or(project.timeout_in_minutes)),
        queued_timeout_minutes: i64::from(
            input.queued_timeout_in_minutes_override.unwrap_or(project.queued_timeout_in_minutes),
        ),
        encryption_key: input
            .encryption_key_override
            .clone()
            .or_else(|| Some(project.encryption_key.clone()))
            .filter(|k| !k.is_empty()),
        source_version: input
            .source_version
            .as_deref()
            .or(project.source_version.as_deref())
            .filter(|s| !s.is_empty())
            .map(str::to_string),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_non_numeric_timeout_override_is_refused() {
        let e = validated_input(json!({"projectName": "p", "timeoutInMinutesOverride": "soon"})).unwrap_err();
        assert_eq!(e.code, "ValidationException");
    }

    #[test]
    fn overrides_replace_project_members() {
        let create: CreateProjectInput = serde_json::from_value(json!({
            "name": "p", "serviceRole": "r", "artifacts": {"type": "NO_ARTIFACTS"},
            "source": {"type": "NO_SOURCE", "buildspec": "version: 0.2"},
            "environment": {"type": "LINUX_CONTAINER", "image": "a", "computeType": "BUILD_GENERAL1_SMALL",
                            "environmentVariables": [{"name": "X", "value": "1", "type": "PLAINTEXT"}]},
            "timeoutInMinutes": 30,
        }))
        .unwrap();
        let project = crate::project::create(&create, "eu-west-1", "000000000000").unwrap();
        let input = validated_input(json!({
            "projectName": "p", "timeoutInMinutesOverride": 10, "imageOverride": "b",
            "environmentVariablesOverride": [{"name": "X", "value": "2"}],
        }))
        .unwrap();
        let e = effective(&project, &input, false).unwrap();
        assert_eq!(e.timeout_minutes, 10);
        assert_eq!(e.queued_timeout_minutes, 480);
        assert_eq!(e.environment.image, "b");
        let vars = e.environment.environment_variables.unwrap();
        assert_eq!((vars.len(), vars[0].value.as_str()), (1, "2"));
        assert_eq!(vars[0].r#type, Some(EnvironmentVariableType::Plaintext));
    }
}
