//! What IAM must allow for an awsJson/awsQuery call: the [`AccessRequest`]s of an operation,
//! resolved from the generated IAM data ([`crate::Operation::iam`], AWS's Service Authorization
//! Reference) and the call's validated input.
//!
//! For each action of the operation:
//!
//! * no resource types: one request on `*`;
//! * each resource type's ARN template (`arn:${Partition}:codebuild:${Region}:${Account}:project/${ProjectName}`)
//!   is filled: `${Partition}` = `aws`, `${Region}` and `${Account}` from the context (ECR's
//!   `registryId` names the account), every other variable from the input member of the same
//!   name, case-insensitively (`projectName`; a list such as `repositoryNames` gives one request
//!   per element), or from [`ALIASES`] where the model names it differently. An input member
//!   ending in `Arn` whose value fits the template (`resourceArn`, `PolicyArn`, sts `RoleArn`) is
//!   the resource itself;
//! * of several resource types (events' rule on the default or on a custom bus), the ones that
//!   resolve with the most variables win; when none resolves, the first required type (else the
//!   first) is used with `*` for what the input does not carry, the most specific ARN there is.
//!
//! Condition keys the input carries are added: `aws:RequestTag/${TagKey}` and `aws:TagKeys` from
//! its tags (maps, `{Key, Value}` lists, key lists), and service keys named after input members
//! (`iam:PolicyARN`, `sts:RoleSessionName`, `codebuild:environment.image`) or in
//! [`CONDITION_ALIASES`].

use crate::IamAction;
use codeyard_core::{AccessRequest, RequestContext};
use serde_json::Value;
use std::collections::{BTreeMap, HashMap};

/// The access requests of `operation` of `model` for this input (empty for operations that need
/// no permission, such as `sts:GetCallerIdentity`, and for unknown operations).
pub fn access_requests(model: &str, ctx: &RequestContext, operation: &str, input: &Value) -> Vec<AccessRequest> {
    // AWS: "No permissions are required to perform this operation."
    if model == "sts" && operation == "GetCallerIdentity" {
        return Vec::new();
    }
    let Some(actions) = crate::iam_actions(model, operation) else { return Vec::new() };
    let mut vars = variables(model, operation, input);
    // IAM calls on "the caller's own user" (CreateAccessKey, GetUser without UserName).
    if model == "iam"
        && !vars.contains_key("usernamewithpath")
        && let Some((_, user)) = ctx.caller_arn.split_once(":user/")
    {
        vars.insert("usernamewithpath".into(), vec![user.to_string()]);
    }
    let mut out = Vec::new();
    for action in actions {
        let context = condition_context(model, operation, action, input);
        for (resource, account) in resources(ctx, action, &vars, input) {
            out.push(AccessRequest {
                action: action.action.to_string(),
                resource,
                context: context.clone(),
                resource_policy: None,
                resource_account: account.filter(|a| !a.is_empty() && *a != ctx.account),
                resource_policy_required: false,
            });
        }
    }
    out
}

/// The error code a model's denials answer: IAM and STS (awsQuery) `AccessDenied`, the awsJson
/// services `AccessDeniedException`.
pub fn denied_code(model: &str) -> &'static str {
    match model {
        "iam" | "sts" => "AccessDenied",
        _ => "AccessDeniedException",
    }
}

/// An input member that feeds an ARN variable under another name.
pub struct Alias {
    pub model: &'static str,
    /// The operations it applies to; empty: all of the model's.
    pub ops: &'static [&'static str],
    /// Dotted member path (`pipeline.name`; lists are walked through).
    pub member: &'static str,
    pub var: &'static str,
    /// The variable's value from the member's (`None` drops it).
    pub map: fn(&str, &Value) -> Option<String>,
    /// The value when the input does not carry the member at all.
    pub default: Option<&'static str>,
}

const RULE_OPS: &[&str] = &["DeleteRule", "DescribeRule", "DisableRule", "EnableRule", "PutRule", "ListTargetsByRule", "PutTargets", "RemoveTargets"];
const BUS_OPS: &[&str] = &["CreateEventBus", "DeleteEventBus", "DescribeEventBus"];

const fn alias(model: &'static str, ops: &'static [&'static str], member: &'static str, var: &'static str) -> Alias {
    Alias { model, ops, member, var, map: same, default: None }
}

/// Where a model names an ARN variable's member differently.
pub const ALIASES: &[Alias] = &[
    Alias { map: with_path, ..alias("iam", &[], "RoleName", "RoleNameWithPath") },
    Alias { map: with_path, ..alias("iam", &["CreatePolicy"], "PolicyName", "PolicyNameWithPath") },
    Alias { map: with_path, ..alias("iam", &[], "UserName", "UserNameWithPath") },
    Alias { map: with_path, ..alias("iam", &[], "GroupName", "GroupNameWithPath") },
    Alias { map: log_group_name, ..alias("logs", &[], "logGroupIdentifier", "LogGroupName") },
    alias("events", &["DeleteRule", "DescribeRule", "DisableRule", "EnableRule", "PutRule"], "Name", "RuleName"),
    alias("events", &["ListTargetsByRule", "PutTargets", "RemoveTargets"], "Rule", "RuleName"),
    // A rule on the default bus is `rule/<name>`; on another bus `rule/<bus>/<name>`.
    Alias { map: custom_bus, ..alias("events", RULE_OPS, "EventBusName", "EventBusName") },
    Alias { map: bus_name, default: Some("default"), ..alias("events", BUS_OPS, "Name", "EventBusName") },
    Alias { map: bus_name, default: Some("default"), ..alias("events", &["PutEvents"], "Entries.EventBusName", "EventBusName") },
    alias("codecommit", &["UpdateRepositoryName"], "oldName", "RepositoryName"),
    alias("codebuild", &["CreateProject", "UpdateProject", "DeleteProject"], "name", "ProjectName"),
    alias("codebuild", &["BatchGetProjects"], "names", "ProjectName"),
    Alias { map: build_project, ..alias("codebuild", &["BatchGetBuilds", "BatchDeleteBuilds"], "ids", "ProjectName") },
    Alias { map: build_project, ..alias("codebuild", &["StopBuild", "RetryBuild"], "id", "ProjectName") },
    alias("codebuild", &["CreateReportGroup"], "name", "ReportGroupName"),
    Alias { map: report_group, ..alias("codebuild", &["BatchGetReports"], "reportArns", "ReportGroupName") },
    Alias { map: report_group, ..alias("codebuild", &["DescribeTestCases"], "reportArn", "ReportGroupName") },
    alias("codepipeline", &["DeletePipeline", "GetPipeline", "GetPipelineState", "StartPipelineExecution"], "name", "PipelineName"),
    alias("codepipeline", &["CreatePipeline", "UpdatePipeline"], "pipeline.name", "PipelineName"),
    alias("ecr", &[], "registryId", "Account"),
];

/// Service condition keys whose member is not named after the key: (model, key, member path).
pub const CONDITION_ALIASES: &[(&str, &str, &str)] = &[
    ("events", "events:TargetArn", "Targets.Arn"),
    ("events", "events:source", "Entries.Source"),
    ("events", "events:detail-type", "Entries.DetailType"),
];

fn same(v: &str, _: &Value) -> Option<String> {
    Some(v.to_string())
}

/// IAM's `${RoleNameWithPath}`: `path/to/name` when the input has a `Path` (`/path/to/`).
fn with_path(name: &str, input: &Value) -> Option<String> {
    let path = scalars(input, &["Path"]).into_iter().next().unwrap_or_default();
    Some(format!("{}{name}", path.trim_start_matches('/')))
}

/// `arn:aws:logs:r:a:log-group:NAME[:*]` or a plain name -> the name.
fn log_group_name(v: &str, _: &Value) -> Option<String> {
    match v.split_once(":log-group:") {
        Some((_, name)) if v.starts_with("arn:") => Some(name.trim_end_matches(":*").to_string()),
        _ => Some(v.to_string()),
    }
}

fn bus_name(v: &str, _: &Value) -> Option<String> {
    Some(v.rsplit_once(":event-bus/").map_or(v, |(_, n)| n).to_string())
}

fn custom_bus(v: &str, input: &Value) -> Option<String> {
    bus_name(v, input).filter(|b| b != "default")
}

/// A build id (`project:uuid`) or ARN (`arn:...:build/project:uuid`) -> the project.
fn build_project(v: &str, _: &Value) -> Option<String> {
    let id = v.rsplit_once(":build/").map_or(v, |(_, id)| id);
    id.split(':').next().map(str::to_string)
}

/// A report ARN (`arn:...:report/group:uuid`) -> its report group.
fn report_group(v: &str, _: &Value) -> Option<String> {
    let (_, rest) = v.rsplit_once(":report/")?;
    rest.split(':').next().map(str::to_string)
}

/// The ARN variables the input carries, by lowercase name.
fn variables(model: &str, operation: &str, input: &Value) -> HashMap<String, Vec<String>> {
    let mut vars: HashMap<String, Vec<String>> = HashMap::new();
    for (name, value) in input.as_object().into_iter().flatten() {
        let values = scalars(value, &[]);
        if values.is_empty() {
            continue;
        }
        let lower = name.to_lowercase();
        if value.is_array()
            && let Some(singular) = lower.strip_suffix('s')
        {
            vars.entry(singular.to_string()).or_insert_with(|| values.clone());
        }
        vars.insert(lower, values);
    }
    for a in ALIASES.iter().filter(|a| a.model == model && (a.ops.is_empty() || a.ops.contains(&operation))) {
        let path: Vec<&str> = a.member.split('.').collect();
        let found = scalars(input, &path);
        let var = a.var.to_lowercase();
        let mut mapped: Vec<String> = found.iter().filter_map(|v| (a.map)(v, input)).collect();
        if let Some(d) = a.default
            && (found.is_empty() || mapped.len() < count_items(input, &path))
        {
            mapped.push(d.to_string());
        }
        mapped.dedup();
        if found.is_empty() && mapped.is_empty() {
            continue;
        }
        if mapped.is_empty() {
            vars.remove(&var);
        } else {
            vars.insert(var, mapped);
        }
    }
    vars
}

/// How many list elements a path walks through (PutEvents entries without an EventBusName go
/// to the default bus).
fn count_items(input: &Value, path: &[&str]) -> usize {
    match (input, path) {
        (Value::Array(items), _) => items.iter().map(|i| count_items(i, path)).sum(),
        (Value::Object(_), [first, rest @ ..]) if !rest.is_empty() => member(input, first).map_or(0, |v| count_items(v, rest)),
        _ => 1,
    }
}

fn member<'a>(v: &'a Value, name: &str) -> Option<&'a Value> {
    v.as_object()?.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v)
}

/// The scalar values at a dotted path (member names case-insensitive, lists walked through).
fn scalars(v: &Value, path: &[&str]) -> Vec<String> {
    match (v, path) {
        (Value::Array(items), _) => items.iter().flat_map(|i| scalars(i, path)).collect(),
        (Value::String(s), []) => vec![s.clone()],
        (Value::Number(n), []) => vec![n.to_string()],
        (Value::Bool(b), []) => vec![b.to_string()],
        (Value::Object(_), [first, rest @ ..]) => member(v, first).map(|m| scalars(m, rest)).unwrap_or_default(),
        _ => Vec::new(),
    }
}

/// The `${...}` variable names of a template, in order.
fn template_vars(template: &str) -> Vec<&str> {
    template.split("${").skip(1).filter_map(|s| s.split_once('}').map(|(v, _)| v)).collect()
}

const GLOBAL_VARS: &[&str] = &["Partition", "Region", "Account"];

/// Whether an ARN has the template's shape (each variable matching any text).
fn fits(template: &str, arn: &str) -> bool {
    let mut glob = String::new();
    let mut rest = template;
    while let Some((lit, after)) = rest.split_once("${") {
        glob.push_str(lit);
        glob.push('*');
        rest = after.split_once('}').map_or("", |(_, r)| r);
    }
    glob.push_str(rest);
    glob_match(&glob, arn)
}

fn glob_match(pattern: &str, text: &str) -> bool {
    let (p, t) = (pattern.as_bytes(), text.as_bytes());
    let (mut pi, mut ti, mut star, mut mark) = (0, 0, None, 0);
    while ti < t.len() {
        if pi < p.len() && p[pi] == b'*' {
            star = Some(pi);
            mark = ti;
            pi += 1;
        } else if pi < p.len() && p[pi] == t[ti] {
            pi += 1;
            ti += 1;
        } else if let Some(s) = star {
            pi = s + 1;
            mark += 1;
            ti = mark;
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|c| *c == b'*')
}

fn arn_account(arn: &str) -> Option<String> {
    arn.split(':').nth(4).map(str::to_string)
}

/// Fills a template, one ARN per combination of list values; `None` for a variable the input
/// does not carry, unless `wildcard` (then `*`).
fn fill(ctx: &RequestContext, template: &str, vars: &HashMap<String, Vec<String>>, wildcard: bool) -> Option<Vec<(String, Option<String>)>> {
    let account = vars.get("account").and_then(|a| a.first()).cloned().unwrap_or_else(|| ctx.account.clone());
    let mut arns = vec![template.replace("${Partition}", "aws").replace("${Region}", &ctx.region).replace("${Account}", &account)];
    for var in template_vars(template).into_iter().filter(|v| !GLOBAL_VARS.contains(v)) {
        let values = match vars.get(&var.to_lowercase()) {
            Some(v) => v.clone(),
            None if wildcard => vec!["*".to_string()],
            None => return None,
        };
        let placeholder = format!("${{{var}}}");
        arns = arns.iter().flat_map(|a| values.iter().map(|v| a.replacen(&placeholder, v, 1))).collect();
    }
    Some(arns.into_iter().map(|a| (a, Some(account.clone()))).collect())
}

/// (resource ARN, owning account) for each request of an action.
fn resources(ctx: &RequestContext, action: &IamAction, vars: &HashMap<String, Vec<String>>, input: &Value) -> Vec<(String, Option<String>)> {
    if action.resources.is_empty() {
        return vec![("*".to_string(), None)];
    }
    // An ARN the input names outright.
    let arns: Vec<String> = input
        .as_object()
        .into_iter()
        .flatten()
        .filter(|(k, _)| {
            let k = k.to_lowercase();
            k.ends_with("arn") || k.ends_with("arns")
        })
        .flat_map(|(_, v)| scalars(v, &[]))
        .filter(|v| v.starts_with("arn:"))
        .collect();
    let mut whole: Vec<(String, Option<String>)> = Vec::new();
    for r in action.resources {
        for a in arns.iter().filter(|a| fits(r.arn, a)) {
            if !whole.iter().any(|(w, _)| w == a) {
                whole.push((a.clone(), arn_account(a)));
            }
        }
    }
    if !whole.is_empty() {
        return whole;
    }
    let mut best: Vec<(String, Option<String>)> = Vec::new();
    let mut best_vars = 0;
    for r in action.resources {
        let Some(filled) = fill(ctx, r.arn, vars, false) else { continue };
        let n = template_vars(r.arn).iter().filter(|v| !GLOBAL_VARS.contains(v)).count();
        if n > best_vars || best.is_empty() {
            best = filled;
            best_vars = n;
        } else if n == best_vars {
            best.extend(filled);
        }
    }
    if !best.is_empty() {
        return best;
    }
    let fallback = action.resources.iter().find(|r| r.required).unwrap_or(&action.resources[0]);
    fill(ctx, fallback.arn, vars, true).unwrap_or_default()
}

/// The request's condition keys for an action, from the input.
fn condition_context(model: &str, operation: &str, action: &IamAction, input: &Value) -> BTreeMap<String, Vec<String>> {
    let _ = operation;
    let mut context: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let supports = |k: &str| action.condition_keys.contains(&k);
    if supports("aws:RequestTag/${TagKey}") || supports("aws:TagKeys") {
        let (pairs, keys) = tags(input);
        if supports("aws:RequestTag/${TagKey}") {
            for (k, v) in &pairs {
                context.entry(format!("aws:RequestTag/{k}")).or_default().push(v.clone());
            }
        }
        if supports("aws:TagKeys") && !keys.is_empty() {
            context.insert("aws:TagKeys".into(), keys);
        }
    }
    for key in action.condition_keys.iter().filter(|k| !k.starts_with("aws:") && !k.contains("${") && !k.contains('/')) {
        let path = CONDITION_ALIASES
            .iter()
            .find(|(m, k, _)| *m == model && k == key)
            .map(|(_, _, p)| p.to_string())
            .unwrap_or_else(|| key.split_once(':').map_or("", |(_, p)| p).to_string());
        let segments: Vec<&str> = path.split('.').collect();
        let values = scalars(input, &segments);
        if !values.is_empty() {
            context.insert(key.to_string(), values);
        }
    }
    context
}

/// The tags an input sets: (key, value) pairs and every key, from the shapes the models use
/// (`tags: {k: v}`, `Tags: [{Key, Value}]`, `tags: [{key, value}]`, `tagKeys: [k]`, logs'
/// UntagLogGroup `tags: [k]`).
fn tags(input: &Value) -> (Vec<(String, String)>, Vec<String>) {
    let (mut pairs, mut keys) = (Vec::new(), Vec::new());
    for (name, value) in input.as_object().into_iter().flatten() {
        match (name.to_lowercase().as_str(), value) {
            ("tags", Value::Object(map)) => {
                for (k, v) in map {
                    pairs.push((k.clone(), v.as_str().unwrap_or_default().to_string()));
                }
            }
            ("tags", Value::Array(items)) => {
                for item in items {
                    match item {
                        Value::String(k) => keys.push(k.clone()),
                        Value::Object(_) => {
                            let k = scalars(item, &["key"]).into_iter().next().unwrap_or_default();
                            let v = scalars(item, &["value"]).into_iter().next().unwrap_or_default();
                            pairs.push((k, v));
                        }
                        _ => {}
                    }
                }
            }
            ("tagkeys", v) => keys.extend(scalars(v, &[])),
            _ => {}
        }
    }
    keys.extend(pairs.iter().map(|(k, _)| k.clone()));
    keys.sort();
    keys.dedup();
    (pairs, keys)
}

/// An input of `operation` with every required member filled from the model (strings by
/// member name, lists with one element), for tests that every implemented operation resolves.
#[doc(hidden)]
pub fn sample_input(model: &str, operation: &str) -> Value {
    let Some(m) = codeyard_wire::models::model(model) else { return Value::Null };
    // ARN members get an ARN of the operation's first resource type.
    let arn = crate::iam_actions(model, operation)
        .and_then(|a| a.first())
        .and_then(|a| a.resources.first())
        .map(|r| {
            let mut arn = r.arn.replace("${Partition}", "aws").replace("${Region}", "us-east-1").replace("${Account}", "000000000000");
            for var in template_vars(r.arn) {
                arn = arn.replace(&format!("${{{var}}}"), "sample");
            }
            arn
        });
    match m.input_shape(operation) {
        Some(shape) => sample(m, shape, "value", arn.as_deref(), 0),
        None => Value::Object(Default::default()),
    }
}

fn sample(m: &codeyard_wire::models::ServiceModel, shape: &str, member_name: &str, arn: Option<&str>, depth: usize) -> Value {
    let Some(s) = m.shape(shape) else { return Value::Null };
    match s["type"].as_str().unwrap_or("") {
        "structure" if depth < 6 => {
            let required: Vec<&str> = s["required"].as_array().into_iter().flatten().filter_map(|r| r.as_str()).collect();
            let mut out = serde_json::Map::new();
            for (name, mem) in s["members"].as_object().into_iter().flatten() {
                if required.contains(&name.as_str()) {
                    out.insert(name.clone(), sample(m, mem["shape"].as_str().unwrap_or(""), name, arn, depth + 1));
                }
            }
            Value::Object(out)
        }
        "list" => Value::Array(vec![sample(m, s["member"]["shape"].as_str().unwrap_or(""), member_name, arn, depth + 1)]),
        "map" => serde_json::json!({"k": sample(m, s["value"]["shape"].as_str().unwrap_or(""), member_name, arn, depth + 1)}),
        "string" => match s["enum"].as_array().and_then(|e| e.first()) {
            Some(first) => first.clone(),
            None => {
                let lower = member_name.to_lowercase();
                match arn {
                    Some(arn) if lower.ends_with("arn") || lower.ends_with("arns") => Value::String(arn.to_string()),
                    _ => Value::String(format!("sample-{lower}")),
                }
            }
        },
        "integer" | "long" | "float" | "double" => serde_json::json!(1),
        "boolean" => Value::Bool(true),
        _ => Value::Null,
    }
}

