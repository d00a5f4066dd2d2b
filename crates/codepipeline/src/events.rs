//! The EventBridge events CodePipeline raises on the default bus, with AWS's detail shapes.

use crate::model::{ActionDeclaration, Execution};
use codeyard_core::hub::BusEvent;
use serde_json::{Value, json};

const SOURCE: &str = "aws.codepipeline";

fn base(exec: &Execution) -> serde_json::Map<String, Value> {
    let mut m = serde_json::Map::new();
    m.insert("pipeline".into(), json!(exec.pipeline));
    m.insert("execution-id".into(), json!(exec.id));
    m.insert("version".into(), json!(exec.pipeline_version as f64));
    m
}

fn region_account(exec: &Execution) -> (String, String) {
    let parts: Vec<&str> = exec.pipeline_arn.split(':').collect();
    (
        parts.get(3).unwrap_or(&"").to_string(),
        parts.get(4).unwrap_or(&"").to_string(),
    )
}

/// `state`: STARTED, SUCCEEDED, RESUMED, FAILED, CANCELED, SUPERSEDED, STOPPING, STOPPED.
pub fn pipeline(exec: &Execution, state: &str) -> BusEvent {
    let (region, account) = region_account(exec);
    let mut d = base(exec);
    d.insert("state".into(), json!(state));
    d.insert(
        "execution-trigger".into(),
        json!({"trigger-type": exec.trigger_type, "trigger-detail": exec.trigger_detail}),
    );
    d.insert("pipeline-execution-attempt".into(), json!(1.0));
    BusEvent::aws_service_event(
        &account,
        &region,
        SOURCE,
        "CodePipeline Pipeline Execution State Change",
        vec![exec.pipeline_arn.clone()],
        Value::Object(d),
    )
}

pub fn stage(exec: &Execution, stage: &str, state: &str) -> BusEvent {
    let (region, account) = region_account(exec);
    let mut d = base(exec);
    d.insert("stage".into(), json!(stage));
    d.insert("state".into(), json!(state));
    d.insert("pipeline-execution-attempt".into(), json!(1.0));
    BusEvent::aws_service_event(
        &account,
        &region,
        SOURCE,
        "CodePipeline Stage Execution State Change",
        vec![exec.pipeline_arn.clone()],
        Value::Object(d),
    )
}

/// `state`: STARTED, SUCCEEDED, FAILED, CANCELED, ABANDONED.
pub fn action(
    exec: &Execution,
    stage: &str,
    a: &ActionDeclaration,
    state: &str,
    result: Option<Value>,
) -> BusEvent {
    let (region, account) = region_account(exec);
    let mut d = base(exec);
    d.insert("stage".into(), json!(stage));
    d.insert("action".into(), json!(a.name));
    d.insert("state".into(), json!(state));
    d.insert("region".into(), json!(region));
    d.insert(
        "type".into(),
        json!({"owner": a.action_type_id.owner, "provider": a.action_type_id.provider,
               "category": a.action_type_id.category, "version": a.action_type_id.version}),
    );
    d.insert("pipeline-execution-attempt".into(), json!(1.0));
    if let Some(r) = result {
        d.insert("execution-result".into(), r);
    }
    BusEvent::aws_service_event(
        &account,
        &region,
        SOURCE,
        "CodePipeline Action Execution State Change",
        vec![exec.pipeline_arn.clone()],
        Value::Object(d),
    )
}
