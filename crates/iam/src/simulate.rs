//! iam:SimulatePrincipalPolicy and iam:SimulateCustomPolicy, answered by the evaluator that
//! enforces (codeyard-policy), so "why was I denied?" gets the same answer the request got.
//!
//! Each action is evaluated on each resource (`*` when none is given). MatchedStatements names
//! the policy that decided: the explicitly denying one, or for an allow the first identity
//! policy that allows on its own.

use crate::authorizer::IamAuthorizer;
use crate::policy_document::{DocumentKind, validate};
use codeyard_api::iam::*;
use codeyard_core::{AwsError, AwsResult, RequestContext};
use codeyard_policy::{Decision, PolicyKind, PolicySet, Principal, Request, SourcedPolicy, evaluate};
use std::sync::Arc;

/// The inputs both calls share.
pub struct Simulation {
    pub principal: Principal,
    pub policies: PolicySet,
    pub keys: Vec<(String, String)>,
    pub actions: Vec<String>,
    pub resources: Vec<String>,
    pub resource_owner: Option<String>,
    pub context: Vec<ContextEntry>,
}

fn parse_inputs(label: &str, docs: &[String]) -> AwsResult<Vec<Arc<SourcedPolicy>>> {
    docs.iter()
        .enumerate()
        .map(|(i, d)| {
            validate(d, DocumentKind::Identity)?;
            SourcedPolicy::parse(format!("{label}.{}", i + 1), d).map_err(|e| AwsError::client("MalformedPolicyDocument", e.to_string()))
        })
        .collect()
}

fn resource_policy(doc: Option<&str>) -> AwsResult<Option<Arc<SourcedPolicy>>> {
    doc.map(|d| SourcedPolicy::parse("ResourcePolicy", d).map_err(|e| AwsError::client("MalformedPolicyDocument", e.to_string()))).transpose()
}

pub async fn principal_policy(auth: &IamAuthorizer, ctx: &RequestContext, input: SimulatePrincipalPolicyInput) -> AwsResult<SimulatePrincipalPolicyOutput> {
    let (principal, mut policies, keys) = auth.policies_of(&input.policy_source_arn).await?;
    policies.identity.extend(parse_inputs("PolicyInputList", input.policy_input_list.as_deref().unwrap_or_default())?);
    if let Some(b) = input.permissions_boundary_policy_input_list.as_deref().filter(|b| !b.is_empty()) {
        policies.permissions_boundary = parse_inputs("PermissionsBoundaryPolicyInputList", b)?.into_iter().next();
    }
    policies.resource = resource_policy(input.resource_policy.as_deref())?;
    let principal = input.caller_arn.as_deref().map(Principal::from_arn).unwrap_or(principal);
    let sim = Simulation {
        principal,
        policies,
        keys,
        actions: input.action_names,
        resources: input.resource_arns.unwrap_or_default(),
        resource_owner: input.resource_owner,
        context: input.context_entries.unwrap_or_default(),
    };
    Ok(run(ctx, &sim))
}

pub async fn custom_policy(ctx: &RequestContext, input: SimulateCustomPolicyInput) -> AwsResult<SimulateCustomPolicyOutput> {
    let mut policies = PolicySet { identity: parse_inputs("PolicyInputList", &input.policy_input_list)?, ..Default::default() };
    if let Some(b) = input.permissions_boundary_policy_input_list.as_deref().filter(|b| !b.is_empty()) {
        policies.permissions_boundary = parse_inputs("PermissionsBoundaryPolicyInputList", b)?.into_iter().next();
    }
    policies.resource = resource_policy(input.resource_policy.as_deref())?;
    if policies.resource.is_some() && input.caller_arn.is_none() {
        return Err(AwsError::client("InvalidInput", "CallerArn is required when ResourcePolicy is specified."));
    }
    // Without a caller the policies are simulated for an IAM user of the account (never root,
    // whom no identity policy limits).
    let caller = input.caller_arn.unwrap_or_else(|| format!("arn:aws:iam::{}:user/SimulatedUser", ctx.account));
    let sim = Simulation {
        principal: Principal::from_arn(&caller),
        policies,
        keys: Vec::new(),
        actions: input.action_names,
        resources: input.resource_arns.unwrap_or_default(),
        resource_owner: input.resource_owner,
        context: input.context_entries.unwrap_or_default(),
    };
    Ok(run(ctx, &sim))
}

fn request(ctx: &RequestContext, sim: &Simulation, action: &str, resource: &str) -> Request {
    let resources = if resource == "*" { Vec::new() } else { vec![resource.to_string()] };
    let mut req = Request::new(sim.principal.clone(), action, resources).with("aws:RequestedRegion", ctx.region.clone());
    for (k, v) in &sim.keys {
        req.context.set(k, v.clone());
    }
    for e in &sim.context {
        if let Some(name) = &e.context_key_name {
            req.context.set_multi(name, e.context_key_values.clone().unwrap_or_default());
        }
    }
    // A resource owner other than the principal's account makes it a cross-account request.
    if let Some(owner) = sim.resource_owner.as_deref().and_then(|o| codeyard_core::arn::Arn::parse(o).map(|a| a.account).or_else(|| Some(o.to_string()))) {
        req = req.owned_by(&owner);
    }
    req
}

fn run(ctx: &RequestContext, sim: &Simulation) -> SimulatePolicyResponse {
    let star = vec!["*".to_string()];
    let resources = if sim.resources.is_empty() { &star } else { &sim.resources };
    let mut results = Vec::new();
    for action in &sim.actions {
        for resource in resources {
            let req = request(ctx, sim, action, resource);
            let decision = evaluate(&req, &sim.policies);
            let boundary = sim.policies.permissions_boundary.as_ref().map(|_| PermissionsBoundaryDecisionDetail {
                allowed_by_permissions_boundary: Some(!matches!(decision, Decision::ImplicitDeny { kind: PolicyKind::PermissionsBoundary, .. } | Decision::ExplicitDeny { kind: PolicyKind::PermissionsBoundary, .. })),
            });
            results.push(EvaluationResult {
                eval_action_name: action.clone(),
                eval_resource_name: Some(resource.clone()),
                eval_decision: eval_decision(&decision),
                matched_statements: Some(matched(&req, &decision, &sim.policies)),
                missing_context_values: Some(Vec::new()),
                organizations_decision_detail: None,
                permissions_boundary_decision_detail: boundary,
                eval_decision_details: None,
                resource_specific_results: None,
            });
        }
    }
    SimulatePolicyResponse { evaluation_results: Some(results), is_truncated: Some(false), marker: None }
}

fn eval_decision(d: &Decision) -> PolicyEvaluationDecisionType {
    match d {
        Decision::Allow => PolicyEvaluationDecisionType::Allowed,
        Decision::ExplicitDeny { .. } => PolicyEvaluationDecisionType::ExplicitDeny,
        Decision::ImplicitDeny { .. } => PolicyEvaluationDecisionType::ImplicitDeny,
    }
}

/// The statement(s) that decided: the denying one, or the first identity (else resource)
/// policy that allows by itself.
fn matched(req: &Request, d: &Decision, ps: &PolicySet) -> Vec<Statement> {
    match d {
        Decision::ExplicitDeny { source, .. } => vec![statement(source)],
        Decision::ImplicitDeny { .. } => Vec::new(),
        Decision::Allow => {
            let alone = |p: &Arc<SourcedPolicy>| {
                let one = PolicySet { identity: vec![p.clone()], resource: ps.resource.clone(), ..ps.clone() };
                evaluate(req, &one).is_allowed()
            };
            ps.identity.iter().find(|p| alone(p)).or(ps.resource.as_ref()).map(|p| vec![statement(&p.source)]).unwrap_or_default()
        }
    }
}

/// A policy source as Simulate* names it: (SourcePolicyId, SourcePolicyType).
fn statement(source: &str) -> Statement {
    let (id, kind) = if let Some(name) = source.strip_prefix("arn:") {
        let name = name.rsplit('/').next().unwrap_or(name).to_string();
        (name, if source.contains(":aws:policy/") { PolicySourceType::AwsManaged } else { PolicySourceType::UserManaged })
    } else if let Some((holder, name)) = source.split_once(" inline policy ") {
        let kind = match holder.split(' ').next() {
            Some("user") => PolicySourceType::User,
            Some("group") => PolicySourceType::Group,
            _ => PolicySourceType::Role,
        };
        (name.to_string(), kind)
    } else if source == "ResourcePolicy" || source == "resource-based policy" {
        (source.to_string(), PolicySourceType::Resource)
    } else {
        (source.to_string(), PolicySourceType::None)
    };
    Statement { source_policy_id: Some(id), source_policy_type: Some(kind), start_position: None, end_position: None }
}
