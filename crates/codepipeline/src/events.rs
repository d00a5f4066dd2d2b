//! The EventBridge events CodePipeline raises on the default bus, with AWS's detail shapes.

use crate::model::{ActionDeclaration, Execution};
use codeyard_core::hub::BusEvent;
use serde_json::{Map, Value, json};

const SOURCE: &str = "aws.codepipeline";

/// The event of `detail_type` about `exec`: its `detail` is what every CodePipeline event
/// carries (pipeline, execution id, version, attempt) and then `fields`.
fn event(exec: &Execution, detail_type: &str, fields: Value) -> BusEvent {
    let (region, account) = region_account(exec);
    let mut d = Map::new();
    d.insert("pipeline".into(), json!(exec.pipeline));
    d.insert("execution-id".into(), json!(exec.id));
    d.insert("version".into(), json!(exec.pipeline_version as f64));
    if let Value::Object(fields) = fields {
        d.extend(fields);
    }
    d.insert("pipeline-execution-attempt".into(), json!(1.0));
    BusEvent::aws_service_event(&account, &region, SOURCE, detail_type, vec![exec.pipeline_arn.clone()], Value::Object(d))
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
    let trigger = json!({"trigger-type": exec.trigger_type, "trigger-detail": exec.trigger_detail});
    let fields = json!({"state": state, "execution-trigger": trigger});
    event(exec, "CodePipeline Pipeline Execution State Change", fields)
}

pub fn stage(exec: &Execution, stage: &str, state: &str) -> BusEvent {
    event(exec, "CodePipeline Stage Execution State Change", json!({"stage": stage, "state": state}))
}

/// `state`: STARTED, SUCCEEDED, FAILED, CANCELED, ABANDONED.
pub fn action(
    exec: &Execution,
    stage: &str,
    a: &ActionDeclaration,
    state: &str,
    result: Option<Value>,
) -> BusEvent {
    let (region, _) = region_account(exec);
    let t = &a.action_type_id;
    let mut fields = json!({
        "stage": stage,
        "action": a.name,
        "state": state,
        "region": region,
        "type": {"owner": t.owner, "provider": t.provider, "category": t.category, "version": t.version},
    });
    if let Some(r) = result {
        fields["execution-result"] = r;
    }
    event(exec, "CodePipeline Action Execution State Change", fields)
}
