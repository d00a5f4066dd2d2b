//! Build projects: the stored record, validation and AWS's defaults.
//!
//! A project is a [`ProjectRecord`]: every member CreateProject takes, in the model's types,
//! with AWS's defaults filled in, so what a client sends comes back member for member
//! (Terraform's plan stays empty). It is stored in the model's `Project` JSON layout.

use crate::error::{CodeBuildError, CodeBuildResult};
use codeyard_api::Timestamp;
use codeyard_api::codebuild::*;
use codeyard_core::{arn::arn, time};
use serde::{Deserialize, Serialize};

/// AWS's limit of projects per account and region.
pub const MAX_PROJECTS: usize = 5000;

fn invalid(msg: impl Into<String>) -> CodeBuildError {
    CodeBuildError::Invalid(msg.into())
}

pub fn project_arn(region: &str, account: &str, name: &str) -> String {
    arn("codebuild", region, account, &format!("project/{name}"))
}

/// A build project as stored.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ProjectRecord {
    pub name: String,
    pub arn: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    pub source: ProjectSource,
    #[serde(default)]
    pub secondary_sources: Vec<ProjectSource>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source_version: Option<String>,
    #[serde(default)]
    pub secondary_source_versions: Vec<ProjectSourceVersion>,
    pub artifacts: ProjectArtifacts,
    #[serde(default)]
    pub secondary_artifacts: Vec<ProjectArtifacts>,
    pub cache: ProjectCache,
    pub environment: ProjectEnvironment,
    #[serde(default)]
    pub service_role: String,
    pub timeout_in_minutes: i32,
    pub queued_timeout_in_minutes: i32,
    pub encryption_key: String,
    #[serde(default)]
    pub tags: Vec<Tag>,
    pub created: Timestamp,
    pub last_modified: Timestamp,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vpc_config: Option<VpcConfig>,
    pub badge: ProjectBadge,
    pub logs_config: LogsConfig,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub file_system_locations: Option<Vec<ProjectFileSystemLocation>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub build_batch_config: Option<ProjectBuildBatchConfig>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub concurrent_build_limit: Option<i32>,
    pub project_visibility: ProjectVisibilityType,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auto_retry_limit: Option<i32>,
}

impl ProjectRecord {
    /// The model's `Project`, as BatchGetProjects and CreateProject answer it.
    pub fn to_api(&self) -> Project {
        crate::io::as_model(self)
    }
}

/// Project source and artifact rules AWS enforces at CreateProject / UpdateProject.
pub fn validate(p: &ProjectRecord) -> CodeBuildResult<()> {
    let source = &p.source;
    let stype = source.r#type.as_str();
    let location = source.location.as_deref().unwrap_or("");
    let buildspec = source.buildspec.as_deref().unwrap_or("");
    match source.r#type {
        SourceType::NoSource if buildspec.trim().is_empty() => {
            return Err(invalid("Project buildspec cannot be empty for NO_SOURCE source type"));
        }
        SourceType::Codecommit
        | SourceType::S3
        | SourceType::Github
        | SourceType::GithubEnterprise
        | SourceType::Bitbucket
        | SourceType::Gitlab
        | SourceType::GitlabSelfManaged
            if location.is_empty() =>
        {
            return Err(invalid(format!("Source location is required for source type {stype}")));
        }
        _ => {}
    }
    if source.r#type == SourceType::S3 && !location.contains('/') {
        return Err(invalid(format!("Invalid S3 source location: {location}, expected <bucket>/<key>")));
    }
    let pipeline_artifacts = p.artifacts.r#type == ArtifactsType::Codepipeline;
    if pipeline_artifacts != (source.r#type == SourceType::Codepipeline) {
        return Err(invalid(
            "Project source and artifacts types must both be CODEPIPELINE when either is CODEPIPELINE",
        ));
    }
    if p.artifacts.r#type == ArtifactsType::S3 && p.artifacts.location.as_deref().unwrap_or("").is_empty() {
        return Err(invalid("Artifacts location is required for artifacts type S3"));
    }
    if p.secondary_sources.iter().any(|s| s.source_identifier.as_deref().unwrap_or("").is_empty()) {
        return Err(invalid("Secondary sources must have a sourceIdentifier"));
    }
    if p.secondary_artifacts.iter().any(|a| a.artifact_identifier.as_deref().unwrap_or("").is_empty()) {
        return Err(invalid("Secondary artifacts must have an artifactIdentifier"));
    }
    validate_env_var_names(p.environment.environment_variables.iter().flatten().map(|v| v.name.as_str()))?;
    if p.cache.r#type == CacheType::S3 && p.cache.location.as_deref().unwrap_or("").is_empty() {
        return Err(invalid("Cache location is required for cache type S3"));
    }
    if p.cache.r#type == CacheType::Local && p.cache.modes.as_ref().is_none_or(|m| m.is_empty()) {
        return Err(invalid("Cache modes are required for cache type LOCAL"));
    }
    Ok(())
}

/// CodeBuild refuses user variables with its reserved prefix.
pub fn validate_env_var_names<'a>(names: impl IntoIterator<Item = &'a str>) -> CodeBuildResult<()> {
    for name in names {
        if name.starts_with("CODEBUILD_") {
            return Err(invalid(format!(
                "Invalid environment variable name: {name}. Environment variables cannot start with the reserved prefix CODEBUILD_"
            )));
        }
    }
    Ok(())
}

/// Fills in, inside the members a request gave, what AWS fills in when it leaves them out.
fn apply_defaults(p: &mut ProjectRecord) {
    let env = &mut p.environment;
    let vars = env.environment_variables.get_or_insert_with(Vec::new);
    for v in vars.iter_mut() {
        v.r#type.get_or_insert(EnvironmentVariableType::Plaintext);
    }
    env.privileged_mode.get_or_insert(false);
    env.image_pull_credentials_type.get_or_insert(ImagePullCredentialsType::Codebuild);
    p.source.insecure_ssl.get_or_insert(false);
    if p.artifacts.r#type == ArtifactsType::S3 {
        p.artifacts.encryption_disabled.get_or_insert(false);
        p.artifacts.packaging.get_or_insert(ArtifactPackaging::None);
        p.artifacts.namespace_type.get_or_insert(ArtifactNamespace::None);
    }
    let logs = &mut p.logs_config;
    logs.cloud_watch_logs.get_or_insert(CloudWatchLogsConfig {
        status: LogsConfigStatusType::Enabled,
        group_name: None,
        stream_name: None,
    });
    logs.s3_logs.get_or_insert(S3LogsConfig {
        status: LogsConfigStatusType::Disabled,
        location: None,
        encryption_disabled: Some(false),
        bucket_owner_access: None,
    });
}

fn no_cache() -> ProjectCache {
    ProjectCache { r#type: CacheType::NoCache, location: None, modes: None, cache_namespace: None }
}

/// A new project from CreateProjectInput.
pub fn create(input: &CreateProjectInput, region: &str, account: &str) -> CodeBuildResult<ProjectRecord> {
    let now = Timestamp::from(time::now());
    let i = input.clone();
    let mut p = ProjectRecord {
        arn: project_arn(region, account, &i.name),
        name: i.name,
        description: i.description,
        source: i.source,
        secondary_sources: i.secondary_sources.unwrap_or_default(),
        source_version: i.source_version,
        secondary_source_versions: i.secondary_source_versions.unwrap_or_default(),
        artifacts: i.artifacts,
        secondary_artifacts: i.secondary_artifacts.unwrap_or_default(),
        cache: i.cache.unwrap_or_else(no_cache),
        environment: i.environment,
        service_role: i.service_role,
        timeout_in_minutes: i.timeout_in_minutes.unwrap_or(60),
        queued_timeout_in_minutes: i.queued_timeout_in_minutes.unwrap_or(480),
        encryption_key: i.encryption_key.unwrap_or_else(|| arn("kms", region, account, "alias/aws/s3")),
        tags: i.tags.unwrap_or_default(),
        created: now,
        last_modified: now,
        vpc_config: i.vpc_config,
        badge: ProjectBadge { badge_enabled: Some(i.badge_enabled.unwrap_or(false)), badge_request_url: None },
        logs_config: i.logs_config.unwrap_or_default(),
        file_system_locations: i.file_system_locations,
        build_batch_config: i.build_batch_config,
        concurrent_build_limit: i.concurrent_build_limit,
        project_visibility: ProjectVisibilityType::Private,
        auto_retry_limit: i.auto_retry_limit,
    };
    apply_defaults(&mut p);
    validate(&p)?;
    Ok(p)
}

/// The project after UpdateProjectInput: given members replace the stored ones.
pub fn update(current: &ProjectRecord, input: &UpdateProjectInput) -> CodeBuildResult<ProjectRecord> {
    let mut p = current.clone();
    let i = input.clone();
    macro_rules! replace {
        ($($field:ident),*) => { $(if let Some(v) = i.$field { p.$field = v; })* };
    }
    macro_rules! replace_opt {
        ($($field:ident),*) => { $(if i.$field.is_some() { p.$field = i.$field; })* };
    }
    replace!(source, secondary_sources, secondary_source_versions, artifacts, secondary_artifacts, cache, environment,
        service_role, timeout_in_minutes, queued_timeout_in_minutes, encryption_key, tags, logs_config);
    replace_opt!(description, source_version, vpc_config, file_system_locations, build_batch_config,
        concurrent_build_limit, auto_retry_limit);
    if let Some(b) = i.badge_enabled {
        p.badge.badge_enabled = Some(b);
    }
    p.last_modified = Timestamp::from(time::now());
    apply_defaults(&mut p);
    validate(&p)?;
    Ok(p)
}

/// Resolves `name` or a project ARN to a name.
pub fn name_of(name_or_arn: &str) -> &str {
    match name_or_arn.strip_prefix("arn:") {
        Some(_) => name_or_arn
            .rsplit_once(":project/")
            .map(|(_, n)| n)
            .unwrap_or(name_or_arn),
        None => name_or_arn,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn input() -> CreateProjectInput {
        serde_json::from_value(json!({"name": "p", "source": {"type": "NO_SOURCE", "buildspec": "version: 0.2"},
               "artifacts": {"type": "NO_ARTIFACTS"},
               "environment": {"type": "LINUX_CONTAINER", "image": "i", "computeType": "BUILD_GENERAL1_SMALL"},
               "serviceRole": "arn:aws:iam::000000000000:role/r"}))
        .unwrap()
    }

    fn with(patch: serde_json::Value) -> CreateProjectInput {
        let mut v = serde_json::to_value(input()).unwrap();
        for (k, val) in patch.as_object().unwrap() {
            v[k] = val.clone();
        }
        serde_json::from_value(v).unwrap()
    }

    #[test]
    fn defaults_and_round_trip() {
        let p = create(&input(), "eu-west-1", "000000000000").unwrap();
        assert_eq!(p.timeout_in_minutes, 60);
        assert_eq!(p.arn, "arn:aws:codebuild:eu-west-1:000000000000:project/p");
        assert_eq!(p.logs_config.cloud_watch_logs.as_ref().unwrap().status, LogsConfigStatusType::Enabled);
        assert_eq!(p.badge.badge_enabled, Some(false));
        let update_input: UpdateProjectInput =
            serde_json::from_value(json!({"name": "p", "description": "d", "badgeEnabled": true})).unwrap();
        let u = update(&p, &update_input).unwrap();
        assert_eq!(u.description.as_deref(), Some("d"));
        assert_eq!(u.badge.badge_enabled, Some(true));
        assert_eq!(u.created, p.created);
        // The stored layout is the model's Project: it reads back as one.
        let stored = serde_json::to_value(&u).unwrap();
        let back: ProjectRecord = serde_json::from_value(stored.clone()).unwrap();
        assert_eq!(back.description.as_deref(), Some("d"));
        let api: Project = serde_json::from_value(stored).unwrap();
        assert_eq!(api.name.as_deref(), Some("p"));
        assert_eq!(codeyard_api::encode(u.to_api()).unwrap()["environment"]["environmentVariables"], json!([]));
    }

    #[test]
    fn aws_rules() {
        let i = with(json!({"source": {"type": "NO_SOURCE"}}));
        assert!(matches!(create(&i, "r", "a").unwrap_err(), CodeBuildError::Invalid(_)));
        let i = with(json!({"source": {"type": "CODEPIPELINE"}}));
        assert!(create(&i, "r", "a").is_err(), "CODEPIPELINE source needs CODEPIPELINE artifacts");
        let i = with(json!({"source": {"type": "CODEPIPELINE"}, "artifacts": {"type": "CODEPIPELINE"}}));
        assert!(create(&i, "r", "a").is_ok(), "CODEPIPELINE needs no location");
        let i = with(json!({"source": {"type": "CODECOMMIT"}}));
        assert!(create(&i, "r", "a").is_err());
        let i = with(json!({"environment": {"type": "LINUX_CONTAINER", "image": "i", "computeType": "BUILD_GENERAL1_SMALL",
            "environmentVariables": [{"name": "CODEBUILD_X", "value": "1"}]}}));
        assert!(create(&i, "r", "a").is_err());
        assert_eq!(name_of("arn:aws:codebuild:r:a:project/x"), "x");
    }
}
