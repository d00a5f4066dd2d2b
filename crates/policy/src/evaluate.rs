//! AWS's policy evaluation logic (IAM User Guide: "How AWS enforcement code logic evaluates
//! requests to allow or deny access", "Policy evaluation for requests within a single
//! account", "Cross-account policy evaluation logic").
//!
//! For each resource of the request:
//! 1. An applicable `Deny` in any policy (identity, resource, permissions boundary, session)
//!    is the answer: an explicit deny.
//! 2. The account's root user may do everything in its own account.
//! 3. Same account: a resource policy that allows the exact principal (user ARN, role session
//!    ARN, service, `*`) allows. One that allows the role's ARN allows too, unless the session's
//!    permissions boundary or session policies do not. One that names only the account
//!    delegates to the identity policies.
//! 4. Otherwise identity policies must allow, and then the permissions boundary (if any) and
//!    the session policies (if any) too.
//! 5. Cross-account: both sides must allow: the principal's identity side (identity ∩ boundary
//!    ∩ session) and the resource's policy (naming the account is enough there).
//! 6. Some resources must allow themselves even within the account, root included (role trust
//!    policies for `sts:AssumeRole`, KMS key policies): [`PolicySet::resource_policy_required`].
//!    Naming the account there delegates to its identity policies as in 3.
//!
//! Anything not allowed is an implicit deny, naming the policy type that did not allow it.
//! AWS Organizations SCPs and RCPs are not modelled (codeyard has no organizations).

use crate::condition::Context;
use crate::document::{Effect, Policy, Statement};
use crate::pattern::{expand, glob};
use crate::principal::{Principal, PrincipalKind, PrincipalMatch, matches};
use std::sync::Arc;

/// The request being authorized: who, which action, on what, with which condition keys.
#[derive(Clone, Debug)]
pub struct Request {
    pub principal: Principal,
    /// `s3:PutObject`.
    pub action: String,
    /// The resource ARNs the action touches; none means `*` (actions without a resource type,
    /// such as `s3:ListAllMyBuckets`). Every one must be allowed.
    pub resources: Vec<String>,
    /// The account owning the resources (`None`: the principal's own account).
    pub resource_account: Option<String>,
    pub context: Context,
}

impl Request {
    /// A request with the keys that come from the principal (`aws:PrincipalArn`,
    /// `aws:PrincipalAccount`, `aws:PrincipalType`, `aws:username` for users, `aws:userid`
    /// for role sessions as `role:session`), and the time (`aws:CurrentTime`,
    /// `aws:EpochTime`). Add request keys with [`Request::with`].
    pub fn new(principal: Principal, action: &str, resources: Vec<String>) -> Request {
        let mut context = Context::default();
        let now = chrono::Utc::now();
        context.set("aws:CurrentTime", now.format("%Y-%m-%dT%H:%M:%SZ").to_string());
        context.set("aws:EpochTime", now.timestamp().to_string());
        let account = principal.account.clone();
        match &principal.kind {
            PrincipalKind::Root => {
                context.set("aws:PrincipalType", "Account");
                context.set("aws:PrincipalArn", principal.arn.clone());
            }
            PrincipalKind::User { name } => {
                context.set("aws:PrincipalType", "User");
                context.set("aws:username", name.clone());
                context.set("aws:PrincipalArn", principal.arn.clone());
            }
            PrincipalKind::Role { .. } => {
                context.set("aws:PrincipalType", "AssumedRole");
                context.set("aws:PrincipalArn", principal.arn.clone());
            }
            PrincipalKind::AssumedRole { role, session } => {
                context.set("aws:PrincipalType", "AssumedRole");
                // aws:PrincipalArn of a role session is the role's ARN.
                context.set("aws:PrincipalArn", format!("arn:aws:iam::{account}:role/{role}"));
                context.set("aws:userid", format!("{role}:{session}"));
            }
            PrincipalKind::FederatedUser { .. } => {
                context.set("aws:PrincipalType", "FederatedUser");
                context.set("aws:PrincipalArn", principal.arn.clone());
            }
            PrincipalKind::Service => context.set("aws:PrincipalServiceName", principal.arn.clone()),
            PrincipalKind::Anonymous => context.set("aws:PrincipalType", "Anonymous"),
        }
        if principal.is_iam() {
            context.set("aws:PrincipalAccount", account);
        }
        Request { principal, action: action.to_string(), resources, resource_account: None, context }
    }

    /// Sets a condition key (`aws:SourceIp`, `aws:SecureTransport`, `s3:prefix`, ...).
    pub fn with(mut self, key: &str, value: impl Into<String>) -> Request {
        self.context.set(key, value);
        self
    }

    /// Sets a multi-valued condition key (`aws:TagKeys`, `codecommit:References`).
    pub fn with_values(mut self, key: &str, values: Vec<String>) -> Request {
        self.context.set_multi(key, values);
        self
    }

    /// The resources belong to this account (cross-account when it is not the principal's).
    pub fn owned_by(mut self, account: &str) -> Request {
        self.resource_account = Some(account.to_string());
        self
    }
}

/// A parsed policy and where it came from (for explanations and audit records):
/// `arn:aws:iam::aws:policy/ReadOnlyAccess`, `role/build-role inline policy s3`, `bucket policy of b`.
#[derive(Clone, Debug)]
pub struct SourcedPolicy {
    pub source: String,
    pub policy: Policy,
}

impl SourcedPolicy {
    pub fn new(source: impl Into<String>, policy: Policy) -> Arc<SourcedPolicy> {
        Arc::new(SourcedPolicy { source: source.into(), policy })
    }
    pub fn parse(source: impl Into<String>, text: &str) -> Result<Arc<SourcedPolicy>, crate::ParseError> {
        Ok(SourcedPolicy::new(source, Policy::parse(text)?))
    }
}

/// Every policy that applies to one request.
#[derive(Clone, Debug, Default)]
pub struct PolicySet {
    /// The principal's identity policies: a user's inline and attached policies and those of
    /// its groups; a role session's role's inline and attached policies.
    pub identity: Vec<Arc<SourcedPolicy>>,
    /// The resource's policy (bucket policy, repository policy, role trust policy).
    pub resource: Option<Arc<SourcedPolicy>>,
    /// The user's or role's permissions boundary.
    pub permissions_boundary: Option<Arc<SourcedPolicy>>,
    /// Session policies passed to AssumeRole (inline and managed).
    pub session: Vec<Arc<SourcedPolicy>>,
    /// The resource policy must allow even within the account (role trust policies, KMS key
    /// policies): without a statement naming the principal or its account, nothing allows.
    pub resource_policy_required: bool,
}

/// The policy type a decision names.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PolicyKind {
    Identity,
    Resource,
    PermissionsBoundary,
    Session,
}

impl PolicyKind {
    /// As AWS's denial messages name it.
    pub fn label(self) -> &'static str {
        match self {
            PolicyKind::Identity => "identity-based policy",
            PolicyKind::Resource => "resource-based policy",
            PolicyKind::PermissionsBoundary => "permissions boundary",
            PolicyKind::Session => "session policy",
        }
    }
}

#[derive(Clone, Debug, PartialEq)]
pub enum Decision {
    Allow,
    /// A `Deny` statement applied.
    ExplicitDeny { kind: PolicyKind, source: String, sid: Option<String>, statement: usize, resource: String },
    /// Nothing allowed it; `kind` is the policy type whose Allow was missing.
    ImplicitDeny { kind: PolicyKind, resource: String },
}

impl Decision {
    pub fn is_allowed(&self) -> bool {
        *self == Decision::Allow
    }
}

/// Evaluates `req` against `policies`.
pub fn evaluate(req: &Request, policies: &PolicySet) -> Decision {
    let star = ["*".to_string()];
    let resources: &[String] = if req.resources.is_empty() { &star } else { &req.resources };
    for resource in resources {
        let d = evaluate_one(req, resource, policies);
        if d != Decision::Allow {
            return d;
        }
    }
    Decision::Allow
}

/// How a statement applies to the request (`None`: it does not).
fn applies(st: &Statement, req: &Request, resource: &str, variables: bool, resource_policy: bool) -> Option<PrincipalMatch> {
    let service = req.action.split_once(':').map_or("", |(svc, _)| svc);
    let action_hit = st.action.values.iter().any(|a| a == "*" || (same_service(a, service) && crate::pattern::wildcard_match(a, &req.action, true)));
    if action_hit == st.action.negated {
        return None;
    }
    if let Some(r) = &st.resource {
        let hit = r.values.iter().any(|p| {
            if p == "*" || (!p.contains(['*', '?', '$']) && p == resource) {
                return true;
            }
            p.contains(['*', '?', '$']) && expand(p, &req.context, variables).is_some_and(|t| glob(&t, resource, false))
        });
        if hit == r.negated {
            return None;
        }
    }
    let how = if resource_policy {
        let p = st.principal.as_ref()?;
        let best = p.values.iter().filter_map(|(kind, value)| matches(kind, value, &req.principal)).max();
        match (p.negated, best) {
            (false, Some(m)) => m,
            (false, None) => return None,
            (true, Some(_)) => return None,
            (true, None) => PrincipalMatch::Direct,
        }
    } else {
        PrincipalMatch::Direct
    };
    st.conditions.iter().all(|c| c.holds(&req.context, variables)).then_some(how)
}

/// Whether an action pattern can match an action of `service` at all: a cheap check on the
/// `service:` prefix that spares the wildcard match for the other services' entries (policies
/// such as ReadOnlyAccess list thousands of them).
fn same_service(pattern: &str, service: &str) -> bool {
    match pattern.split_once(':') {
        Some((p, _)) if !p.contains(['*', '?']) => p.eq_ignore_ascii_case(service),
        _ => true,
    }
}

/// The first statement of `effect` in `p` that applies, with its index and how it matched.
fn find(p: &SourcedPolicy, effect: Effect, req: &Request, resource: &str, resource_policy: bool) -> Option<(usize, PrincipalMatch)> {
    let vars = p.policy.has_variables();
    p.policy
        .statements
        .iter()
        .enumerate()
        .filter(|(_, s)| s.effect == effect)
        .filter_map(|(i, s)| applies(s, req, resource, vars, resource_policy).map(|m| (i, m)))
        .max_by_key(|(i, m)| (*m, std::cmp::Reverse(*i)))
}

fn evaluate_one(req: &Request, resource: &str, ps: &PolicySet) -> Decision {
    let p = &req.principal;
    let iam = p.is_iam();
    let none: &[Arc<SourcedPolicy>] = &[];
    let identity = if iam { ps.identity.as_slice() } else { none };
    let boundary: Vec<Arc<SourcedPolicy>> = if iam { ps.permissions_boundary.iter().cloned().collect() } else { Vec::new() };
    let session = if iam { ps.session.as_slice() } else { none };
    let resource_pol: Vec<Arc<SourcedPolicy>> = ps.resource.iter().cloned().collect();

    // 1. Explicit deny anywhere.
    for (kind, list, is_resource) in [
        (PolicyKind::Identity, identity, false),
        (PolicyKind::Resource, resource_pol.as_slice(), true),
        (PolicyKind::PermissionsBoundary, boundary.as_slice(), false),
        (PolicyKind::Session, session, false),
    ] {
        for pol in list {
            if let Some((i, _)) = find(pol, Effect::Deny, req, resource, is_resource) {
                let sid = pol.policy.statements[i].sid.clone();
                return Decision::ExplicitDeny { kind, source: pol.source.clone(), sid, statement: i, resource: resource.to_string() };
            }
        }
    }
    let implicit = |kind| Decision::ImplicitDeny { kind, resource: resource.to_string() };
    let resource_grant = resource_pol.iter().filter_map(|pol| find(pol, Effect::Allow, req, resource, true)).map(|(_, m)| m).max();

    // Services and anonymous callers have no identity policies: only a resource policy grants.
    if !iam {
        return if resource_grant.is_some() { Decision::Allow } else { implicit(PolicyKind::Resource) };
    }
    // A resource whose policy must allow (role trust policies, KMS key policies) refuses
    // everyone it does not name, the account's root user included: a key policy without the
    // account statement locks IAM policies out (AWS KMS Developer Guide: "Default key policy").
    // (STS lets the account's root past its own roles' trust policies before evaluation:
    // codeyard_iam's IamAuthorizer::caller_may_assume.)
    if ps.resource_policy_required && resource_grant.is_none() {
        return implicit(PolicyKind::Resource);
    }
    let same_account = req.resource_account.as_deref().is_none_or(|a| a == p.account);
    let is_root = p.kind == PrincipalKind::Root;
    if is_root && same_account {
        return Decision::Allow;
    }
    let allows = |list: &[Arc<SourcedPolicy>]| list.iter().any(|pol| find(pol, Effect::Allow, req, resource, false).is_some());
    let identity_ok = is_root || allows(identity);
    let boundary_ok = boundary.is_empty() || allows(&boundary);
    let session_ok = session.is_empty() || allows(session);
    let identity_side = || {
        if !identity_ok {
            Err(PolicyKind::Identity)
        } else if !boundary_ok {
            Err(PolicyKind::PermissionsBoundary)
        } else if !session_ok {
            Err(PolicyKind::Session)
        } else {
            Ok(())
        }
    };
    if same_account {
        match resource_grant {
            Some(PrincipalMatch::Direct) => return Decision::Allow,
            Some(PrincipalMatch::Role) if boundary_ok && session_ok => return Decision::Allow,
            _ => {}
        }
        match identity_side() {
            Ok(()) => Decision::Allow,
            Err(kind) => implicit(kind),
        }
    } else {
        if let Err(kind) = identity_side() {
            return implicit(kind);
        }
        if resource_grant.is_none() {
            return implicit(PolicyKind::Resource);
        }
        Decision::Allow
    }
}

#[cfg(test)]
mod tests;
