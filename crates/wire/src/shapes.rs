//! Walking values against model shapes: input validation (AWS's "N validation errors detected"),
//! awsQuery form decoding into JSON, awsQuery XML encoding from JSON, and output checks.
//!
//! Services work on JSON values in the awsJson shape throughout; timestamps inside them are
//! epoch-second numbers (see `codeyard_core::time::epoch_json`). The query codecs translate at the
//! edge.

use crate::models::ServiceModel;
use regex::Regex;
use serde_json::{Map, Value};
use std::collections::{BTreeMap, HashMap};
use std::sync::{Mutex, OnceLock};

/// One failed constraint, in AWS's words.
#[derive(Clone, Debug, PartialEq)]
pub struct Problem {
    /// Member path as AWS prints it (`roleName`, `tags.1.member.key`).
    pub path: String,
    /// The member name at the end of the path.
    pub member: String,
    pub kind: ProblemKind,
    pub message: String,
}

#[derive(Clone, Debug, PartialEq)]
pub enum ProblemKind {
    Required,
    Length,
    Range,
    Enum,
    Pattern,
    /// The JSON type does not match (a SerializationException on AWS).
    Type,
}

/// AWS's combined message: `1 validation error detected: Value null at 'roleName' failed to ...`.
pub fn validation_message(problems: &[Problem]) -> String {
    let n = problems.len();
    let list = problems.iter().map(|p| p.message.as_str()).collect::<Vec<_>>().join("; ");
    format!("{n} validation error{} detected: {list}", if n == 1 { "" } else { "s" })
}

fn regex_cache() -> &'static Mutex<HashMap<String, Option<Regex>>> {
    static C: OnceLock<Mutex<HashMap<String, Option<Regex>>>> = OnceLock::new();
    C.get_or_init(Default::default)
}

fn pattern_matches(pattern: &str, s: &str) -> bool {
    let mut cache = regex_cache().lock().unwrap();
    // AWS validates with whole-value semantics (Java's `matches`): `[\w+=,.@-]+` refuses
    // `bad name!` although it contains a match.
    let re = cache.entry(pattern.to_string()).or_insert_with(|| Regex::new(&format!("^(?:{pattern})$")).ok());
    // Patterns Rust's regex cannot compile (Java-only syntax) are not enforced.
    re.as_ref().map(|r| r.is_match(s)).unwrap_or(true)
}

fn show(v: &Value) -> String {
    match v {
        Value::String(s) => format!("'{s}'"),
        Value::Null => "null".into(),
        other => format!("'{other}'"),
    }
}

/// Validates `input` against the operation's input shape. Problems are listed in model order.
pub fn validate_input(model: &ServiceModel, op: &str, input: &Value) -> Vec<Problem> {
    let mut problems = Vec::new();
    if let Some(shape) = model.input_shape(op) {
        walk_input(model, shape, input, "", "", &mut problems);
    }
    problems
}

/// The shape's `min`/`max` constraint that `measure` (a length, or a number's value) breaks, as
/// AWS words it: `Member must have length greater than or equal to 1`.
fn bound_broken(shape: &Value, measure: f64, what: &str) -> Option<String> {
    if let Some(min) = shape["min"].as_f64()
        && measure < min
    {
        return Some(format!("Member must have {what} greater than or equal to {min}"));
    }
    let max = shape["max"].as_f64()?;
    (measure > max).then(|| format!("Member must have {what} less than or equal to {max}"))
}

fn walk_input(model: &ServiceModel, shape_name: &str, v: &Value, path: &str, member: &str, out: &mut Vec<Problem>) {
    let Some(shape) = model.shape(shape_name) else { return };
    let ty = shape["type"].as_str().unwrap_or("");
    let at = |p: &str| if p.is_empty() { String::new() } else { format!(" at '{p}'") };
    let mut push = |kind: ProblemKind, msg: String| {
        out.push(Problem { path: path.to_string(), member: member.to_string(), kind, message: msg })
    };
    match ty {
        "structure" => {
            let Some(obj) = v.as_object() else {
                if !v.is_null() {
                    push(ProblemKind::Type, format!("Value {}{} is not a structure", show(v), at(path)));
                }
                return;
            };
            let required: Vec<&str> =
                shape["required"].as_array().map(|a| a.iter().filter_map(Value::as_str).collect()).unwrap_or_default();
            if let Some(members) = shape["members"].as_object() {
                for (name, m) in members {
                    let child_path = if path.is_empty() { name.clone() } else { format!("{path}.{name}") };
                    match obj.get(name) {
                        None | Some(Value::Null) => {
                            if required.contains(&name.as_str()) {
                                out.push(Problem {
                                    path: child_path.clone(),
                                    member: name.clone(),
                                    kind: ProblemKind::Required,
                                    message: format!(
                                        "Value null at '{child_path}' failed to satisfy constraint: Member must not be null"
                                    ),
                                });
                            }
                        }
                        Some(child) => {
                            if let Some(s) = m["shape"].as_str() {
                                walk_input(model, s, child, &child_path, name, out);
                            }
                        }
                    }
                }
            }
        }
        "list" => {
            let Some(items) = v.as_array() else {
                push(ProblemKind::Type, format!("Value {}{} is not a list", show(v), at(path)));
                return;
            };
            let shown = format!("'[{}]'", items.iter().map(|i| i.to_string()).collect::<Vec<_>>().join(", "));
            if let Some(broken) = bound_broken(shape, items.len() as f64, "length") {
                push(ProblemKind::Length, format!("Value {shown}{} failed to satisfy constraint: {broken}", at(path)));
            }
            if let Some(member_shape) = shape["member"]["shape"].as_str() {
                for (i, item) in items.iter().enumerate() {
                    walk_input(model, member_shape, item, &format!("{path}.{}.member", i + 1), member, out);
                }
            }
        }
        "map" => {
            let Some(obj) = v.as_object() else {
                push(ProblemKind::Type, format!("Value {}{} is not a map", show(v), at(path)));
                return;
            };
            if let Some(max) = shape["max"].as_u64() {
                if obj.len() as u64 > max {
                    push(
                        ProblemKind::Length,
                        format!("Value{} failed to satisfy constraint: Member must have length less than or equal to {max}", at(path)),
                    );
                }
            }
            let key_shape = shape["key"]["shape"].as_str();
            let value_shape = shape["value"]["shape"].as_str();
            for (k, val) in obj {
                if let Some(ks) = key_shape {
                    walk_input(model, ks, &Value::String(k.clone()), &format!("{path}.{k}"), member, out);
                }
                if let Some(vs) = value_shape {
                    walk_input(model, vs, val, &format!("{path}.{k}"), member, out);
                }
            }
        }
        "string" => {
            let Some(s) = v.as_str() else {
                push(ProblemKind::Type, format!("Value {}{} is not a string", show(v), at(path)));
                return;
            };
            if let Some(broken) = bound_broken(shape, s.chars().count() as f64, "length") {
                push(ProblemKind::Length, format!("Value {}{} failed to satisfy constraint: {broken}", show(v), at(path)));
            }
            if let Some(values) = shape["enum"].as_array() {
                if !values.iter().any(|e| e.as_str() == Some(s)) {
                    let list = values.iter().filter_map(Value::as_str).collect::<Vec<_>>().join(", ");
                    push(
                        ProblemKind::Enum,
                        format!("Value {}{} failed to satisfy constraint: Member must satisfy enum value set: [{list}]", show(v), at(path)),
                    );
                }
            }
            if let Some(p) = shape["pattern"].as_str() {
                if !s.is_empty() && !pattern_matches(p, s) {
                    push(
                        ProblemKind::Pattern,
                        format!("Value {}{} failed to satisfy constraint: Member must satisfy regular expression pattern: {p}", show(v), at(path)),
                    );
                }
            }
        }
        "integer" | "long" | "double" | "float" => {
            let Some(n) = v.as_f64() else {
                push(ProblemKind::Type, format!("Value {}{} is not a number", show(v), at(path)));
                return;
            };
            if let Some(broken) = bound_broken(shape, n, "value") {
                push(ProblemKind::Range, format!("Value {}{} failed to satisfy constraint: {broken}", show(v), at(path)));
            }
        }
        "boolean" => {
            if !v.is_boolean() {
                push(ProblemKind::Type, format!("Value {}{} is not a boolean", show(v), at(path)));
            }
        }
        "timestamp" => {
            if !(v.is_number() || v.is_string()) {
                push(ProblemKind::Type, format!("Value {}{} is not a timestamp", show(v), at(path)));
            }
        }
        "blob" => {
            if !v.is_string() {
                push(ProblemKind::Type, format!("Value {}{} is not a blob", show(v), at(path)));
            }
        }
        _ => {}
    }
}

/// Checks an output value against the operation's output shape: members the model does not
/// name, and values of the wrong JSON type (a timestamp that is not a number). Returns
/// human-readable violations; strict mode counts them.
pub fn check_output(model: &ServiceModel, op: &str, output: &Value) -> Vec<String> {
    let mut out = Vec::new();
    if let Some(shape) = model.output_shape(op) {
        walk_output(model, shape, output, op, &mut out);
    }
    out
}

fn walk_output(model: &ServiceModel, shape_name: &str, v: &Value, path: &str, out: &mut Vec<String>) {
    let Some(shape) = model.shape(shape_name) else { return };
    if v.is_null() {
        return;
    }
    let bad = |out: &mut Vec<String>, what: &str| out.push(format!("{path}: expected {what}, got {v}"));
    match shape["type"].as_str().unwrap_or("") {
        "structure" => {
            let Some(obj) = v.as_object() else { return bad(out, "structure") };
            let members = shape["members"].as_object();
            for (k, child) in obj {
                match members.and_then(|m| m.get(k)) {
                    Some(m) => {
                        if let Some(s) = m["shape"].as_str() {
                            walk_output(model, s, child, &format!("{path}.{k}"), out);
                        }
                    }
                    None => out.push(format!("{path}.{k}: not a member of {shape_name}")),
                }
            }
        }
        "list" => {
            let Some(items) = v.as_array() else { return bad(out, "list") };
            if let Some(s) = shape["member"]["shape"].as_str() {
                for (i, item) in items.iter().enumerate() {
                    walk_output(model, s, item, &format!("{path}[{i}]"), out);
                }
            }
        }
        "map" => {
            let Some(obj) = v.as_object() else { return bad(out, "map") };
            if let Some(s) = shape["value"]["shape"].as_str() {
                for (k, item) in obj {
                    walk_output(model, s, item, &format!("{path}.{k}"), out);
                }
            }
        }
        "string" | "blob" => {
            if !v.is_string() {
                bad(out, "string")
            }
        }
        "integer" | "long" => {
            if !(v.is_i64() || v.is_u64()) {
                bad(out, "integer")
            }
        }
        "double" | "float" => {
            if !v.is_number() {
                bad(out, "number")
            }
        }
        "boolean" => {
            if !v.is_boolean() {
                bad(out, "boolean")
            }
        }
        "timestamp" => {
            if !v.is_number() {
                bad(out, "epoch-seconds number")
            }
        }
        _ => {}
    }
}

// ---------------------------------------------------------------- awsQuery decoding

/// Decodes awsQuery form parameters (`Tags.member.1.Key=...`) into the JSON value of the
/// operation's input shape. Scalars are typed by the model (numbers, booleans).
pub fn query_to_json(model: &ServiceModel, op: &str, params: &BTreeMap<String, String>) -> Value {
    match model.input_shape(op) {
        Some(shape) => decode_struct(model, shape, params, "").unwrap_or(Value::Object(Map::new())),
        None => Value::Object(Map::new()),
    }
}

fn decode_value(model: &ServiceModel, shape_name: &str, params: &BTreeMap<String, String>, key: &str, flattened: bool) -> Option<Value> {
    let shape = model.shape(shape_name)?;
    match shape["type"].as_str().unwrap_or("") {
        "structure" => decode_struct(model, shape_name, params, &format!("{key}.")),
        "list" => {
            let member_shape = shape["member"]["shape"].as_str()?;
            let flat = flattened || shape["flattened"].as_bool().unwrap_or(false);
            let member_name = shape["member"]["locationName"].as_str().unwrap_or("member");
            let base = if flat { key.to_string() } else { format!("{key}.{member_name}") };
            // An empty list is sent as `Key=` with no members.
            let mut items = Vec::new();
            for i in 1.. {
                match decode_value(model, member_shape, params, &format!("{base}.{i}"), false) {
                    Some(v) => items.push(v),
                    None => break,
                }
            }
            if items.is_empty() && !params.contains_key(key) {
                return None;
            }
            Some(Value::Array(items))
        }
        "map" => {
            let ks = shape["key"]["shape"].as_str()?;
            let vs = shape["value"]["shape"].as_str()?;
            let kname = shape["key"]["locationName"].as_str().unwrap_or("key");
            let vname = shape["value"]["locationName"].as_str().unwrap_or("value");
            let flat = shape["flattened"].as_bool().unwrap_or(false);
            let base = if flat { key.to_string() } else { format!("{key}.entry") };
            let mut obj = Map::new();
            for i in 1.. {
                let k = decode_value(model, ks, params, &format!("{base}.{i}.{kname}"), false);
                let Some(Value::String(k)) = k else { break };
                let v = decode_value(model, vs, params, &format!("{base}.{i}.{vname}"), false).unwrap_or(Value::Null);
                obj.insert(k, v);
            }
            if obj.is_empty() { None } else { Some(Value::Object(obj)) }
        }
        ty => {
            let raw = params.get(key)?;
            Some(match ty {
                "integer" | "long" => raw.parse::<i64>().map(Value::from).unwrap_or_else(|_| Value::String(raw.clone())),
                "double" | "float" => raw.parse::<f64>().map(Value::from).unwrap_or_else(|_| Value::String(raw.clone())),
                "boolean" => match raw.as_str() {
                    "true" => Value::Bool(true),
                    "false" => Value::Bool(false),
                    _ => Value::String(raw.clone()),
                },
                _ => Value::String(raw.clone()),
            })
        }
    }
}

fn decode_struct(model: &ServiceModel, shape_name: &str, params: &BTreeMap<String, String>, prefix: &str) -> Option<Value> {
    let shape = model.shape(shape_name)?;
    let mut obj = Map::new();
    if let Some(members) = shape["members"].as_object() {
        for (name, m) in members {
            let wire_name = m["locationName"].as_str().unwrap_or(name);
            let key = format!("{prefix}{wire_name}");
            if let Some(s) = m["shape"].as_str() {
                if let Some(v) = decode_value(model, s, params, &key, m["flattened"].as_bool().unwrap_or(false)) {
                    obj.insert(name.clone(), v);
                }
            }
        }
    }
    if obj.is_empty() && !prefix.is_empty() { None } else { Some(Value::Object(obj)) }
}

// ---------------------------------------------------------------- awsQuery / XML encoding

pub fn xml_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            '\r' => out.push_str("&#xD;"),
            _ => out.push(c),
        }
    }
    out
}

/// Writes the members of `v` (a value of shape `shape_name`) as XML elements.
pub fn json_to_xml(model: &ServiceModel, shape_name: &str, v: &Value, out: &mut String) {
    let Some(shape) = model.shape(shape_name) else { return };
    let Some(obj) = v.as_object() else { return };
    if let Some(members) = shape["members"].as_object() {
        for (name, m) in members {
            let Some(child) = obj.get(name) else { continue };
            if child.is_null() {
                continue;
            }
            let wire_name = m["locationName"].as_str().unwrap_or(name);
            if let Some(s) = m["shape"].as_str() {
                write_member(model, s, wire_name, child, m["flattened"].as_bool().unwrap_or(false), out);
            }
        }
    }
}

fn write_member(model: &ServiceModel, shape_name: &str, tag: &str, v: &Value, flattened: bool, out: &mut String) {
    let Some(shape) = model.shape(shape_name) else { return };
    match shape["type"].as_str().unwrap_or("") {
        "structure" => {
            out.push_str(&format!("<{tag}>"));
            json_to_xml(model, shape_name, v, out);
            out.push_str(&format!("</{tag}>"));
        }
        "list" => {
            let member_shape = shape["member"]["shape"].as_str().unwrap_or("");
            let flat = flattened || shape["flattened"].as_bool().unwrap_or(false);
            let member_tag = shape["member"]["locationName"].as_str().unwrap_or("member");
            let items = v.as_array().cloned().unwrap_or_default();
            if flat {
                for item in &items {
                    write_member(model, member_shape, tag, item, false, out);
                }
            } else {
                out.push_str(&format!("<{tag}>"));
                for item in &items {
                    write_member(model, member_shape, member_tag, item, false, out);
                }
                out.push_str(&format!("</{tag}>"));
            }
        }
        "map" => {
            let ks = shape["key"]["shape"].as_str().unwrap_or("");
            let vs = shape["value"]["shape"].as_str().unwrap_or("");
            out.push_str(&format!("<{tag}>"));
            for (k, item) in v.as_object().into_iter().flatten() {
                out.push_str("<entry>");
                write_member(model, ks, "key", &Value::String(k.clone()), false, out);
                write_member(model, vs, "value", item, false, out);
                out.push_str("</entry>");
            }
            out.push_str(&format!("</{tag}>"));
        }
        "timestamp" => {
            let text = codeyard_core::time::parse_json(v).map(|t| codeyard_core::time::iso8601(&t)).unwrap_or_default();
            out.push_str(&format!("<{tag}>{text}</{tag}>"));
        }
        _ => {
            let text = match v {
                Value::String(s) => xml_escape(s),
                other => other.to_string(),
            };
            out.push_str(&format!("<{tag}>{text}</{tag}>"));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::models::model;
    use serde_json::json;

    #[test]
    fn required_and_length_problems_read_like_aws() {
        let iam = model("iam").unwrap();
        let p = validate_input(iam, "GetRole", &json!({}));
        assert_eq!(validation_message(&p), "1 validation error detected: Value null at 'RoleName' failed to satisfy constraint: Member must not be null");
        let long = "r".repeat(65);
        let p = validate_input(iam, "GetRole", &json!({"RoleName": long}));
        assert_eq!(p.len(), 1);
        assert!(p[0].message.contains("length less than or equal to 64"), "{}", p[0].message);
    }

    #[test]
    fn patterns_match_whole_values() {
        let iam = model("iam").unwrap();
        let p = validate_input(iam, "GetRole", &json!({"RoleName": "bad name!"}));
        assert_eq!(p.len(), 1, "{p:?}");
        assert_eq!(p[0].kind, ProblemKind::Pattern);
        assert!(validate_input(iam, "GetRole", &json!({"RoleName": "good-name_1"})).is_empty());
    }

    #[test]
    fn query_params_decode_by_shape() {
        let iam = model("iam").unwrap();
        let params: BTreeMap<String, String> = [
            ("RoleName", "r"),
            ("AssumeRolePolicyDocument", "{}"),
            ("MaxSessionDuration", "7200"),
            ("Tags.member.1.Key", "k1"),
            ("Tags.member.1.Value", "v1"),
            ("Tags.member.2.Key", "k2"),
            ("Tags.member.2.Value", "v2"),
        ]
        .into_iter()
        .map(|(a, b)| (a.to_string(), b.to_string()))
        .collect();
        let v = query_to_json(iam, "CreateRole", &params);
        assert_eq!(v["MaxSessionDuration"], 7200);
        assert_eq!(v["Tags"], json!([{"Key": "k1", "Value": "v1"}, {"Key": "k2", "Value": "v2"}]));
    }

    #[test]
    fn json_encodes_to_query_xml() {
        let iam = model("iam").unwrap();
        let mut out = String::new();
        json_to_xml(
            iam,
            "ListRoleTagsResponse",
            &json!({"Tags": [{"Key": "a", "Value": "<b>"}], "IsTruncated": false}),
            &mut out,
        );
        assert_eq!(out, "<Tags><member><Key>a</Key><Value>&lt;b&gt;</Value></member></Tags><IsTruncated>false</IsTruncated>");
    }

    #[test]
    fn output_check_flags_string_timestamps() {
        let logs = model("logs").unwrap();
        let v = json!({"logGroups": [{"logGroupName": "g", "creationTime": 5, "bogus": 1}]});
        let problems = check_output(logs, "DescribeLogGroups", &v);
        assert_eq!(problems.len(), 1, "{problems:?}");
        let cb = model("codebuild").unwrap();
        let v = json!({"builds": [{"id": "x", "startTime": "2024-01-01T00:00:00Z"}]});
        assert_eq!(check_output(cb, "BatchGetBuilds", &v).len(), 1);
    }
}
