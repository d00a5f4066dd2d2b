//! Whole-value checks of the model's `pattern` constraints on an operation's top-level string
//! members (names, paths, ARNs).
//!
//! AWS matches these patterns against the whole value; the shared validator matches them
//! anywhere in the value, so `bad name!` would pass `[\w+=,.@-]+`. Until it anchors them this
//! check runs before every call and reports problems in the validator's words.

use codeyard_wire::models::ServiceModel;
use codeyard_wire::shapes::{Problem, ProblemKind};
use regex::Regex;
use serde_json::Value;
use std::collections::HashMap;
use std::sync::{Mutex, OnceLock};

fn anchored(pattern: &str) -> Option<Regex> {
    static CACHE: OnceLock<Mutex<HashMap<String, Option<Regex>>>> = OnceLock::new();
    let mut cache = CACHE.get_or_init(Default::default).lock().unwrap();
    cache
        .entry(pattern.to_string())
        .or_insert_with(|| Regex::new(&format!("^(?:{pattern})$")).ok())
        .clone()
}

/// Problems with top-level string members whose whole value does not match the pattern.
pub fn whole_value_problems(model: &ServiceModel, op: &str, input: &Value) -> Vec<Problem> {
    let mut out = Vec::new();
    let Some(shape) = model.input_shape(op).and_then(|s| model.shape(s)) else {
        return out;
    };
    let Some(members) = shape["members"].as_object() else {
        return out;
    };
    for (name, m) in members {
        let Some(value) = input.get(name).and_then(Value::as_str) else {
            continue;
        };
        let Some(member_shape) = m["shape"].as_str().and_then(|s| model.shape(s)) else {
            continue;
        };
        let Some(pattern) = member_shape["pattern"].as_str() else {
            continue;
        };
        if value.is_empty() {
            continue;
        }
        if anchored(pattern).is_some_and(|re| !re.is_match(value)) {
            out.push(Problem {
                path: name.clone(),
                member: name.clone(),
                kind: ProblemKind::Pattern,
                message: format!(
                    "Value '{value}' at '{name}' failed to satisfy constraint: Member must satisfy regular expression pattern: {pattern}"
                ),
            });
        }
    }
    out
}
