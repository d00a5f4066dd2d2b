//! Structural validation of a pipeline declaration, as CreatePipeline and UpdatePipeline do it
//! (after the wire layer checked the model's constraints). Error codes are AWS's:
//! `InvalidStructureException` for the shape of the pipeline, `InvalidActionDeclarationException`
//! for one action's configuration, `ValidationException` for fields a pipeline type lacks.

use crate::action_types;
use crate::model::PipelineDeclaration;
use crate::variables;
use codeyard_core::{AwsError, AwsResult};
use std::collections::{BTreeMap, HashSet};

fn structure(msg: impl Into<String>) -> AwsError {
    AwsError::client("InvalidStructureException", msg)
}

fn action_decl(msg: impl Into<String>) -> AwsError {
    AwsError::client("InvalidActionDeclarationException", msg)
}

/// AWS requires the whole name to match (`[A-Za-z0-9.@\-_]+`). Requests through the wire are
/// already checked against the model's (anchored) patterns; this keeps the domain's own
/// declarations honest where no wire is involved (engine tests, stored pipelines).
fn check_name(what: &str, field: &str, value: &str, extra: &str) -> AwsResult<()> {
    if !value.is_empty()
        && value
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_".contains(c) || extra.contains(c))
    {
        return Ok(());
    }
    Err(AwsError::validation(format!(
        "1 validation error detected: Value '{value}' at '{field}' failed to satisfy constraint: Member must satisfy regular expression pattern: [A-Za-z0-9{extra}\\-_]+ ({what})"
    )))
}

fn names(p: &PipelineDeclaration) -> AwsResult<()> {
    check_name("pipeline name", "pipeline.name", &p.name, ".@")?;
    for s in &p.stages {
        check_name("stage name", "pipeline.stages.member.name", &s.name, ".@")?;
        for a in &s.actions {
            check_name(
                "action name",
                "pipeline.stages.member.actions.member.name",
                &a.name,
                ".@",
            )?;
            for art in a.input_artifacts.iter().chain(a.output_artifacts.iter()) {
                check_name(
                    "artifact name",
                    "pipeline.stages.member.actions.member.outputArtifacts.member.name",
                    &art.name,
                    "",
                )?;
            }
            if let Some(ns) = &a.namespace {
                check_name(
                    "namespace",
                    "pipeline.stages.member.actions.member.namespace",
                    ns,
                    "@",
                )?;
            }
        }
    }
    for v in p.variables.iter().flatten() {
        check_name(
            "variable name",
            "pipeline.variables.member.name",
            &v.name,
            "@",
        )?;
    }
    Ok(())
}

pub fn pipeline(p: &PipelineDeclaration) -> AwsResult<()> {
    names(p)?;
    match (&p.artifact_store, &p.artifact_stores) {
        (Some(_), Some(_)) => {
            return Err(structure(
                "Either artifactStore or artifactStores may be specified, but not both",
            ));
        }
        (None, None) => {
            return Err(structure(
                "Pipeline must have an artifactStore or artifactStores",
            ));
        }
        _ => {}
    }
    // AWS answers InvalidStructureException for V2-only features in a V1 pipeline
    // ("Triggers on tag can only be used with V2 pipelines").
    if p.pipeline_type() != "V2" {
        if p.execution_mode() != "SUPERSEDED" {
            return Err(structure(format!(
                "Execution mode {} can only be used with V2 pipelines",
                p.execution_mode()
            )));
        }
        if p.variables.as_ref().is_some_and(|v| !v.is_empty()) {
            return Err(structure(
                "Pipeline variables can only be used with V2 pipelines",
            ));
        }
        if p.triggers.as_ref().is_some_and(|v| !v.0.is_empty()) {
            return Err(structure("Triggers can only be used with V2 pipelines"));
        }
    }
    let mut names = HashSet::new();
    for v in p.variables.iter().flatten() {
        if !names.insert(v.name.as_str()) {
            return Err(structure(format!(
                "Pipeline variable names must be unique: '{}' is declared twice",
                v.name
            )));
        }
    }
    if p.stages.len() < 2 {
        return Err(structure(format!(
            "Pipeline has only {} stage(s). There should be a minimum of 2 stages in a pipeline",
            p.stages.len()
        )));
    }
    let mut stage_names = HashSet::new();
    let mut produced: BTreeMap<String, (usize, i64)> = BTreeMap::new();
    let mut namespaces = HashSet::new();
    // Every output first, so the "produced earlier" check can say what is wrong.
    for (si, stage) in p.stages.iter().enumerate() {
        if !stage_names.insert(stage.name.as_str()) {
            return Err(structure(format!(
                "Stage names must be unique within a pipeline: '{}'",
                stage.name
            )));
        }
        if stage.actions.is_empty() {
            return Err(AwsError::client(
                "InvalidStageDeclarationException",
                format!("Stage '{}' must contain at least one action", stage.name),
            ));
        }
        let mut action_names = HashSet::new();
        for a in &stage.actions {
            if !action_names.insert(a.name.as_str()) {
                return Err(structure(format!(
                    "Action names must be unique within a stage: '{}' in stage '{}'",
                    a.name, stage.name
                )));
            }
            let is_source = a.action_type_id.category == "Source";
            if si == 0 && !is_source {
                return Err(structure(format!(
                    "Stage '{}' contains action '{}' of category {}: the first stage of a pipeline may contain only Source actions",
                    stage.name, a.name, a.action_type_id.category
                )));
            }
            if si > 0 && is_source {
                return Err(structure(format!(
                    "Action '{}' in stage '{}' is a Source action: Source actions are allowed only in the first stage",
                    a.name, stage.name
                )));
            }
            for o in &a.output_artifacts {
                if produced.insert(o.name.clone(), (si, a.run_order)).is_some() {
                    return Err(structure(format!(
                        "Output artifact name '{}' must be unique within a pipeline",
                        o.name
                    )));
                }
            }
            if let Some(ns) = &a.namespace
                && !namespaces.insert(ns.clone())
            {
                return Err(structure(format!(
                    "Namespace '{ns}' is used by more than one action"
                )));
            }
        }
    }
    for (si, stage) in p.stages.iter().enumerate() {
        for a in &stage.actions {
            action(p, stage.name.as_str(), si, a, &produced, &namespaces)?;
        }
    }
    Ok(())
}

/// An action's input or output artifacts must number within its type's `(min, max)`.
fn check_artifact_count(
    a: &crate::model::ActionDeclaration,
    stage: &str,
    id: &crate::model::ActionTypeId,
    kind: &str,
    count: usize,
    (min, max): (u32, u32),
) -> AwsResult<()> {
    let n = count as u32;
    if n < min || n > max {
        return Err(structure(format!(
            "Action '{}' in stage '{}' has {n} {kind} artifacts; {}/{} actions take {min} to {max}",
            a.name, stage, id.category, id.provider
        )));
    }
    Ok(())
}

fn action(
    p: &PipelineDeclaration,
    stage: &str,
    si: usize,
    a: &crate::model::ActionDeclaration,
    produced: &BTreeMap<String, (usize, i64)>,
    namespaces: &HashSet<String>,
) -> AwsResult<()> {
    let id = &a.action_type_id;
    let Some(spec) = action_types::find(id) else {
        return Err(structure(format!(
            "ActionType (Category: '{}', Provider: '{}', Owner: '{}', Version: '{}') in action '{}' is not available: codeyard runs {}",
            id.category,
            id.provider,
            id.owner,
            id.version,
            a.name,
            action_types::CATALOG
                .iter()
                .filter(|s| !action_types::not_yet_run(&s.id()))
                .map(|s| format!("{}/{}", s.category, s.provider))
                .collect::<Vec<_>>()
                .join(", ")
        )));
    };
    if action_types::not_yet_run(id) {
        return Err(action_decl(format!(
            "Action '{}': codeyard does not run {} {} actions yet",
            a.name, id.category, id.provider
        )));
    }
    check_artifact_count(a, stage, id, "input", a.input_artifacts.len(), spec.inputs)?;
    check_artifact_count(a, stage, id, "output", a.output_artifacts.len(), spec.outputs)?;
    for i in &a.input_artifacts {
        match produced.get(&i.name) {
            Some((psi, order)) if *psi < si || (*psi == si && *order < a.run_order) => {}
            _ => {
                return Err(structure(format!(
                    "Input Artifact Bundle '{}' in action '{}' is not declared as an output artifact of any action that runs before it",
                    i.name, a.name
                )));
            }
        }
    }
    let config = a.configuration.clone().unwrap_or_default();
    for prop in spec.properties.iter().filter(|p| p.required) {
        if !config.contains_key(prop.name) {
            return Err(action_decl(format!(
                "Action configuration for action '{}' is missing required configuration '{}'",
                a.name, prop.name
            )));
        }
    }
    for key in config.keys() {
        if !spec.properties.iter().any(|p| p.name == key) {
            return Err(action_decl(format!(
                "Action configuration for action '{}' contains unknown configuration '{}'",
                a.name, key
            )));
        }
    }
    let bool_key = |k: &str| -> AwsResult<()> {
        match config.get(k).map(|v| v.to_ascii_lowercase()) {
            None => Ok(()),
            Some(v) if v == "true" || v == "false" => Ok(()),
            Some(v) => Err(action_decl(format!(
                "Action configuration for action '{}': {k} must be true or false, not '{v}'",
                a.name
            ))),
        }
    };
    bool_key("PollForSourceChanges")?;
    bool_key("Extract")?;
    if let Some(f) = config.get("OutputArtifactFormat")
        && f != "CODE_ZIP"
        && f != "CODEBUILD_CLONE_REF"
    {
        return Err(action_decl(format!(
            "Action configuration for action '{}': OutputArtifactFormat must be CODE_ZIP or CODEBUILD_CLONE_REF",
            a.name
        )));
    }
    if id.category == "Deploy" && id.provider == "S3" {
        let extract = config
            .get("Extract")
            .is_some_and(|v| v.eq_ignore_ascii_case("true"));
        if !extract && !config.contains_key("ObjectKey") {
            return Err(action_decl(format!(
                "Action configuration for action '{}' is missing required configuration 'ObjectKey' (required when Extract is false)",
                a.name
            )));
        }
    }
    if id.provider == "CodeBuild" {
        if let Some(ps) = config.get("PrimarySource") {
            if !a.input_artifacts.iter().any(|i| &i.name == ps) {
                return Err(action_decl(format!(
                    "Action configuration for action '{}': PrimarySource '{}' is not one of its input artifacts",
                    a.name, ps
                )));
            }
        } else if a.input_artifacts.len() > 1 {
            return Err(action_decl(format!(
                "Action configuration for action '{}' is missing required configuration 'PrimarySource' (required with several input artifacts)",
                a.name
            )));
        }
        if let Some(ev) = config.get("EnvironmentVariables")
            && !variables::has_references(ev)
            && serde_json::from_str::<Vec<serde_json::Value>>(ev).is_err()
        {
            return Err(action_decl(format!(
                "Action configuration for action '{}': EnvironmentVariables must be a JSON list of {{name, value, type}}",
                a.name
            )));
        }
    }
    // Variable references must name a namespace of the pipeline, `codepipeline` or `variables`.
    let declared: HashSet<&str> = p
        .variables
        .iter()
        .flatten()
        .map(|v| v.name.as_str())
        .collect();
    for value in config.values() {
        for (ns, var) in variables::references(value) {
            let ok = match ns.as_str() {
                "codepipeline" => var == "PipelineExecutionId",
                "variables" => declared.contains(var.as_str()),
                other => namespaces.contains(other),
            };
            if !ok {
                return Err(action_decl(format!(
                    "Action configuration for action '{}' refers to unknown variable '#{{{ns}.{var}}}'",
                    a.name
                )));
            }
        }
    }
    Ok(())
}
