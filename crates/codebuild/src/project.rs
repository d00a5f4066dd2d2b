//! Build projects: validation, AWS's defaults, and the stored form.
//!
//! A project is kept exactly in the model's `Project` shape (a JSON value), so that what a
//! client sends comes back member for member (Terraform's plan stays empty) and fields this
//! crate does not interpret (vpcConfig, fileSystemLocations, ...) still round-trip.

use crate::error::{CodeBuildError, CodeBuildResult};
use codeyard_core::{arn::arn, time};
use serde_json::{Map, Value, json};

/// AWS's limit of projects per account and region.
pub const MAX_PROJECTS: usize = 5000;

fn invalid(msg: impl Into<String>) -> CodeBuildError {
    CodeBuildError::Invalid(msg.into())
}

pub fn project_arn(region: &str, account: &str, name: &str) -> String {
    arn("codebuild", region, account, &format!("project/{name}"))
}

/// Project source and artifact rules AWS enforces at CreateProject / UpdateProject.
pub fn validate(p: &Value) -> CodeBuildResult<()> {
    let source = &p["source"];
    let stype = source["type"].as_str().unwrap_or("");
    let location = source["location"].as_str().unwrap_or("");
    let buildspec = source["buildspec"].as_str().unwrap_or("");
    match stype {
        "NO_SOURCE" if buildspec.trim().is_empty() => {
            return Err(invalid(
                "Project buildspec cannot be empty for NO_SOURCE source type",
            ));
        }
        "CODEPIPELINE" => {}
        "CODECOMMIT"
        | "S3"
        | "GITHUB"
        | "GITHUB_ENTERPRISE"
        | "BITBUCKET"
        | "GITLAB"
        | "GITLAB_SELF_MANAGED"
            if location.is_empty() =>
        {
            return Err(invalid(format!(
                "Source location is required for source type {stype}"
            )));
        }
        _ => {}
    }
    if stype == "S3" && !location.contains('/') {
        return Err(invalid(format!(
            "Invalid S3 source location: {location}, expected <bucket>/<key>"
        )));
    }
    let atype = p["artifacts"]["type"].as_str().unwrap_or("");
    if (atype == "CODEPIPELINE") != (stype == "CODEPIPELINE") {
        return Err(invalid(
            "Project source and artifacts types must both be CODEPIPELINE when either is CODEPIPELINE",
        ));
    }
    if atype == "S3" && p["artifacts"]["location"].as_str().unwrap_or("").is_empty() {
        return Err(invalid(
            "Artifacts location is required for artifacts type S3",
        ));
    }
    for s in p["secondarySources"].as_array().into_iter().flatten() {
        if s["sourceIdentifier"].as_str().unwrap_or("").is_empty() {
            return Err(invalid("Secondary sources must have a sourceIdentifier"));
        }
    }
    for a in p["secondaryArtifacts"].as_array().into_iter().flatten() {
        if a["artifactIdentifier"].as_str().unwrap_or("").is_empty() {
            return Err(invalid(
                "Secondary artifacts must have an artifactIdentifier",
            ));
        }
    }
    validate_env_vars(
        p["environment"]["environmentVariables"]
            .as_array()
            .map(|v| v.as_slice())
            .unwrap_or(&[]),
    )?;
    if p["cache"]["type"] == "S3" && p["cache"]["location"].as_str().unwrap_or("").is_empty() {
        return Err(invalid("Cache location is required for cache type S3"));
    }
    if p["cache"]["type"] == "LOCAL" && p["cache"]["modes"].as_array().is_none_or(|m| m.is_empty())
    {
        return Err(invalid("Cache modes are required for cache type LOCAL"));
    }
    Ok(())
}

pub fn validate_env_vars(vars: &[Value]) -> CodeBuildResult<()> {
    validate_env_var_names(vars.iter().map(|v| v["name"].as_str().unwrap_or("")))
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

/// Members of CreateProjectInput / UpdateProjectInput that are stored as given.
const STORED: &[&str] = &[
    "description",
    "source",
    "secondarySources",
    "sourceVersion",
    "secondarySourceVersions",
    "artifacts",
    "secondaryArtifacts",
    "cache",
    "environment",
    "serviceRole",
    "timeoutInMinutes",
    "queuedTimeoutInMinutes",
    "encryptionKey",
    "tags",
    "vpcConfig",
    "logsConfig",
    "fileSystemLocations",
    "buildBatchConfig",
    "concurrentBuildLimit",
    "autoRetryLimit",
];

/// Fills in what AWS fills in when a request leaves it out.
fn apply_defaults(p: &mut Map<String, Value>, region: &str, account: &str) {
    p.entry("timeoutInMinutes").or_insert(json!(60));
    p.entry("queuedTimeoutInMinutes").or_insert(json!(480));
    p.entry("encryptionKey")
        .or_insert(json!(arn("kms", region, account, "alias/aws/s3")));
    p.entry("tags").or_insert(json!([]));
    p.entry("cache").or_insert(json!({"type": "NO_CACHE"}));
    p.entry("projectVisibility").or_insert(json!("PRIVATE"));
    p.entry("secondarySources").or_insert(json!([]));
    p.entry("secondaryArtifacts").or_insert(json!([]));
    p.entry("secondarySourceVersions").or_insert(json!([]));
    if let Some(env) = p.get_mut("environment").and_then(Value::as_object_mut) {
        env.entry("environmentVariables").or_insert(json!([]));
        env.entry("privilegedMode").or_insert(json!(false));
        env.entry("imagePullCredentialsType")
            .or_insert(json!("CODEBUILD"));
        for v in env
            .get_mut("environmentVariables")
            .and_then(Value::as_array_mut)
            .into_iter()
            .flatten()
        {
            if let Some(o) = v.as_object_mut() {
                o.entry("type").or_insert(json!("PLAINTEXT"));
            }
        }
    }
    if let Some(src) = p.get_mut("source").and_then(Value::as_object_mut) {
        src.entry("insecureSsl").or_insert(json!(false));
    }
    if let Some(a) = p.get_mut("artifacts").and_then(Value::as_object_mut)
        && a.get("type") == Some(&json!("S3"))
    {
        a.entry("encryptionDisabled").or_insert(json!(false));
        a.entry("packaging").or_insert(json!("NONE"));
        a.entry("namespaceType").or_insert(json!("NONE"));
    }
    let logs = p
        .entry("logsConfig")
        .or_insert(json!({}))
        .as_object_mut()
        .expect("logsConfig is an object");
    logs.entry("cloudWatchLogs")
        .or_insert(json!({"status": "ENABLED"}));
    logs.entry("s3Logs")
        .or_insert(json!({"status": "DISABLED", "encryptionDisabled": false}));
    let badge_enabled = p
        .remove("badgeEnabled")
        .and_then(|b| b.as_bool())
        .unwrap_or(false);
    p.insert("badge".into(), json!({"badgeEnabled": badge_enabled}));
}

/// A new project from CreateProjectInput.
pub fn create(input: &Value, region: &str, account: &str) -> CodeBuildResult<Value> {
    let name = input["name"].as_str().unwrap_or("").to_string();
    let now = time::epoch_json(&time::now());
    let mut p = Map::new();
    p.insert("name".into(), json!(name));
    p.insert("arn".into(), json!(project_arn(region, account, &name)));
    for k in STORED {
        if let Some(v) = input.get(*k).filter(|v| !v.is_null()) {
            p.insert(k.to_string(), v.clone());
        }
    }
    if let Some(b) = input.get("badgeEnabled") {
        p.insert("badgeEnabled".into(), b.clone());
    }
    p.insert("created".into(), now.clone());
    p.insert("lastModified".into(), now);
    apply_defaults(&mut p, region, account);
    let p = Value::Object(p);
    validate(&p)?;
    Ok(p)
}

/// The project after UpdateProjectInput: given members replace the stored ones.
pub fn update(current: &Value, input: &Value, region: &str, account: &str) -> CodeBuildResult<Value> {
    let mut p = current.as_object().cloned().unwrap_or_default();
    for k in STORED {
        if let Some(v) = input.get(*k).filter(|v| !v.is_null()) {
            p.insert(k.to_string(), v.clone());
        }
    }
    if let Some(b) = input.get("badgeEnabled").and_then(Value::as_bool) {
        p.insert("badgeEnabled".into(), json!(b));
    } else if let Some(b) = p.get("badge").and_then(|b| b.get("badgeEnabled")).cloned() {
        p.insert("badgeEnabled".into(), b);
    }
    p.insert("lastModified".into(), time::epoch_json(&time::now()));
    apply_defaults(&mut p, region, account);
    let p = Value::Object(p);
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

    fn input() -> Value {
        json!({"name": "p", "source": {"type": "NO_SOURCE", "buildspec": "version: 0.2"},
               "artifacts": {"type": "NO_ARTIFACTS"},
               "environment": {"type": "LINUX_CONTAINER", "image": "i", "computeType": "BUILD_GENERAL1_SMALL"},
               "serviceRole": "arn:aws:iam::000000000000:role/r"})
    }

    #[test]
    fn defaults_and_round_trip() {
        let p = create(&input(), "eu-west-1", "000000000000").unwrap();
        assert_eq!(p["timeoutInMinutes"], 60);
        assert_eq!(
            p["arn"],
            "arn:aws:codebuild:eu-west-1:000000000000:project/p"
        );
        assert_eq!(p["logsConfig"]["cloudWatchLogs"]["status"], "ENABLED");
        assert_eq!(p["badge"]["badgeEnabled"], false);
        let u = update(
            &p,
            &json!({"name": "p", "description": "d", "badgeEnabled": true}),
            "eu-west-1",
            "000000000000",
        )
        .unwrap();
        assert_eq!(u["description"], "d");
        assert_eq!(u["badge"]["badgeEnabled"], true);
        assert_eq!(u["created"], p["created"]);
    }

    #[test]
    fn aws_rules() {
        let mut i = input();
        i["source"] = json!({"type": "NO_SOURCE"});
        assert!(matches!(create(&i, "r", "a").unwrap_err(), CodeBuildError::Invalid(_)));
        let mut i = input();
        i["source"] = json!({"type": "CODEPIPELINE"});
        assert!(
            create(&i, "r", "a").is_err(),
            "CODEPIPELINE source needs CODEPIPELINE artifacts"
        );
        i["artifacts"] = json!({"type": "CODEPIPELINE"});
        assert!(
            create(&i, "r", "a").is_ok(),
            "CODEPIPELINE needs no location"
        );
        let mut i = input();
        i["source"] = json!({"type": "CODECOMMIT"});
        assert!(create(&i, "r", "a").is_err());
        let mut i = input();
        i["environment"]["environmentVariables"] = json!([{"name": "CODEBUILD_X", "value": "1"}]);
        assert!(create(&i, "r", "a").is_err());
        assert_eq!(name_of("arn:aws:codebuild:r:a:project/x"), "x");
    }
}
