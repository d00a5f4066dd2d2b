//! The server's [`Authorizer`]: every enforcement point's [`AccessRequest`] evaluated with
//! codeyard-policy against the caller's policies.
//!
//! The caller is `ctx.caller_arn`:
//! * `arn:aws:iam::<acct>:root`: allowed, except what a resource policy explicitly denies;
//! * `arn:aws:iam::<acct>:user/<path/>name`: the user's inline and attached policies and those of
//!   its groups, capped by its permissions boundary;
//! * `arn:aws:sts::<acct>:assumed-role/R/S`: role R's inline and attached policies, capped by its
//!   boundary and by the session policies stored with the STS session of `ctx.access_key`
//!   (none for the sessions services act in, which have no access key);
//! * anything else (an unsigned request): anonymous, which only a resource policy can allow.
//!
//! Parsed policies are cached per principal and session, and the cache entry is valid while
//! [`Iam::generation`] has not moved (any IAM write moves it), so a decision costs an
//! evaluation, not a store read (`cargo run --release -p codeyard-iam --example
//! authorize_bench`). Denials are recorded ([`crate::audit`]) in `enforce` and `audit` mode.

use crate::audit::{DenialRecord, Denials};
use crate::entities::Holder;
use crate::groups::Group;
use crate::iam::{Iam, Role, Tag};
use crate::sts::Sts;
use async_trait::async_trait;
use codeyard_core::{AccessRequest, AwsResult, Denied, IamMode, RequestContext, authz::Authorizer};
use codeyard_policy::{Decision, PolicySet, Principal, PrincipalKind, Request, SourcedPolicy, evaluate};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

/// Entries kept in each cache before it is cleared (principals, resource policy texts).
const CACHE_LIMIT: usize = 4096;

/// What one principal brings to every decision.
pub(crate) struct Resolved {
    generation: u64,
    pub principal: Principal,
    /// Identity policies, permissions boundary and session policies (no resource policy).
    pub policies: PolicySet,
    /// aws:userid, aws:PrincipalTag/* ...
    pub keys: Vec<(String, String)>,
}

#[derive(Clone)]
pub struct IamAuthorizer {
    inner: Arc<Inner>,
}

struct Inner {
    iam: Iam,
    sts: Sts,
    mode: IamMode,
    principals: Mutex<HashMap<String, Arc<Resolved>>>,
    resource_policies: Mutex<HashMap<String, Option<Arc<SourcedPolicy>>>>,
    denials: Denials,
}

impl IamAuthorizer {
    pub fn new(iam: Iam, sts: Sts, mode: IamMode, denials: Denials) -> Self {
        IamAuthorizer {
            inner: Arc::new(Inner {
                iam,
                sts,
                mode,
                principals: Mutex::new(HashMap::new()),
                resource_policies: Mutex::new(HashMap::new()),
                denials,
            }),
        }
    }

    /// The decision for one request, whatever the mode (also used by the Simulate* calls).
    /// `resource_policy_required`: the resource's policy must allow even within the account
    /// (role trust policies for `sts:AssumeRole`).
    pub async fn decide(&self, ctx: &RequestContext, request: &AccessRequest, resource_policy_required: bool) -> AwsResult<(Decision, Request)> {
        let resolved = self.resolve(ctx).await?;
        let req = build_request(&resolved, ctx, request);
        let mut policies = resolved.policies.clone();
        policies.resource = request.resource_policy.as_deref().and_then(|text| self.resource_policy(text));
        policies.resource_policy_required = resource_policy_required;
        Ok((evaluate(&req, &policies), req))
    }

    /// [`IamAuthorizer::decide`] with the mode applied: `Err` only when `enforce` refuses.
    /// Every denial is recorded for `codeyard doctor`.
    pub async fn check(&self, ctx: &RequestContext, request: &AccessRequest, resource_policy_required: bool) -> Result<(), Denied> {
        if self.inner.mode == IamMode::Off {
            return Ok(());
        }
        match self.decide(ctx, request, resource_policy_required).await {
            Ok((decision, req)) => self.conclude(&req, &decision, request).await,
            Err(e) => {
                let message = format!("User: {} is not authorized to perform: {} (IAM could not be read: {})", ctx.caller_arn, request.action, e.message);
                Err(Denied { message, action: request.action.clone(), resource: request.resource.clone() })
            }
        }
    }

    /// Whether an AWS service principal (`codebuild.amazonaws.com`) may do `request` (assume a
    /// role): only the resource's policy (the trust policy) can allow it. The service acts for
    /// `account`, which it names as `aws:SourceAccount`.
    pub async fn check_service(&self, account: &str, service: &str, request: &AccessRequest) -> Result<(), Denied> {
        if self.inner.mode == IamMode::Off {
            return Ok(());
        }
        let resources = if request.resource == "*" { Vec::new() } else { vec![request.resource.clone()] };
        let mut req = Request::new(Principal::service(service), &request.action, resources).with("aws:SourceAccount", account).with("aws:SecureTransport", "true");
        for (k, values) in &request.context {
            req.context.set_multi(k, values.clone());
        }
        let policies = PolicySet {
            resource: request.resource_policy.as_deref().and_then(|text| self.resource_policy(text)),
            resource_policy_required: true,
            ..Default::default()
        };
        let decision = evaluate(&req, &policies);
        self.conclude(&req, &decision, request).await
    }

    /// Records a denial and applies the mode.
    async fn conclude(&self, req: &Request, decision: &Decision, request: &AccessRequest) -> Result<(), Denied> {
        let Some(message) = decision.message(req) else {
            return Ok(());
        };
        let enforced = self.inner.mode == IamMode::Enforce;
        if let Err(e) = self.inner.denials.record(DenialRecord::new(req, decision, &message, enforced)).await {
            tracing::warn!(error = %e, "could not record a denial");
        }
        if enforced {
            tracing::debug!(%message, "denied");
            return Err(Denied { message, action: request.action.clone(), resource: request.resource.clone() });
        }
        tracing::info!(%message, "would be denied (--iam audit)");
        Ok(())
    }

    fn resource_policy(&self, text: &str) -> Option<Arc<SourcedPolicy>> {
        let mut cache = self.inner.resource_policies.lock().unwrap();
        if let Some(p) = cache.get(text) {
            return p.clone();
        }
        let parsed = SourcedPolicy::parse("resource-based policy", text).map_err(|e| tracing::warn!(error = %e, "resource policy does not parse")).ok();
        if cache.len() >= CACHE_LIMIT {
            cache.clear();
        }
        cache.insert(text.to_string(), parsed.clone());
        parsed
    }

    /// The caller's policies, from the cache while IAM has not changed.
    pub(crate) async fn resolve(&self, ctx: &RequestContext) -> AwsResult<Arc<Resolved>> {
        let cache_key = format!("{}\n{}", ctx.caller_arn, ctx.access_key);
        // Read before loading: a write during the load leaves an entry that is already stale.
        let generation = self.inner.iam.generation();
        if let Some(r) = self.inner.principals.lock().unwrap().get(&cache_key).filter(|r| r.generation == generation) {
            return Ok(r.clone());
        }
        let resolved = Arc::new(self.load(ctx, generation).await?);
        let mut cache = self.inner.principals.lock().unwrap();
        if cache.len() >= CACHE_LIMIT {
            cache.clear();
        }
        cache.insert(cache_key, resolved.clone());
        Ok(resolved)
    }

    async fn load(&self, ctx: &RequestContext, generation: u64) -> AwsResult<Resolved> {
        let iam = &self.inner.iam;
        let principal = if ctx.caller_arn.starts_with("arn:") {
            Principal::from_arn(&ctx.caller_arn)
        } else if is_service_principal(&ctx.caller_arn) {
            // A service acting as itself (CodeBuild pulling an image with its own credentials):
            // only a resource policy naming it can allow; it acts for the context's account.
            Principal::service(&ctx.caller_arn)
        } else {
            Principal::anonymous()
        };
        let account = principal.account.clone();
        let mut policies = PolicySet::default();
        let mut keys = Vec::new();
        match &principal.kind {
            PrincipalKind::Root => keys.push(("aws:userid".into(), account.clone())),
            PrincipalKind::Service => keys.push(("aws:SourceAccount".into(), ctx.account.clone())),
            PrincipalKind::User { name } => {
                if let Ok(user) = iam.get_user(&account, name).await {
                    keys.push(("aws:userid".into(), user.id.clone()));
                    push_tags(&mut keys, &user.tags);
                    policies.identity = self.identity_of(&account, &user).await?;
                    for g in &user.groups {
                        if let Ok(group) = iam.entity::<Group>(&account, g).await {
                            policies.identity.extend(self.identity_of(&account, &group).await?);
                        }
                    }
                    policies.permissions_boundary = self.boundary(&account, user.permissions_boundary.as_deref()).await?;
                }
            }
            PrincipalKind::AssumedRole { role, session } => {
                if let Ok(r) = iam.entity::<Role>(&account, role).await {
                    keys.push(("aws:userid".into(), format!("{}:{session}", r.id)));
                    push_tags(&mut keys, &r.tags);
                    policies.identity = self.identity_of(&account, &r).await?;
                    policies.permissions_boundary = self.boundary(&account, r.permissions_boundary.as_deref()).await?;
                }
                if !ctx.access_key.is_empty()
                    && let Some(s) = self.inner.sts.session(&ctx.access_key).await?
                {
                    if let Some(text) = &s.policy {
                        policies.session.extend(parse("session policy", text));
                    }
                    for arn in &s.policy_arns {
                        if let Some(text) = iam.managed_document(&account, arn).await? {
                            policies.session.extend(parse(arn, &text));
                        }
                    }
                }
            }
            _ => {}
        }
        Ok(Resolved { generation, principal, policies, keys })
    }

    /// A role's, user's or group's inline and attached policies, parsed.
    async fn identity_of<H: Holder>(&self, account: &str, h: &H) -> AwsResult<Vec<Arc<SourcedPolicy>>> {
        let mut out = Vec::new();
        for (name, text) in h.inline_policies() {
            out.extend(parse(&format!("{} {} inline policy {name}", H::KIND.noun(), h.name()), text));
        }
        for arn in h.attached() {
            if let Some(text) = self.inner.iam.managed_document(account, arn).await? {
                out.extend(parse(arn, &text));
            }
        }
        Ok(out)
    }

    async fn boundary(&self, account: &str, arn: Option<&str>) -> AwsResult<Option<Arc<SourcedPolicy>>> {
        let Some(arn) = arn else { return Ok(None) };
        Ok(match self.inner.iam.managed_document(account, arn).await? {
            Some(text) => parse(arn, &text),
            // A boundary whose policy is gone allows nothing, as on AWS.
            None => parse(arn, r#"{"Version":"2012-10-17","Statement":{"Effect":"Allow","NotAction":"*","Resource":"*"}}"#),
        })
    }

    /// SimulatePrincipalPolicy's subject: the policies of the user, role or group `arn` names.
    /// A role is simulated as itself (not one of its sessions); a group as a member of it.
    pub(crate) async fn policies_of(&self, source_arn: &str) -> AwsResult<(Principal, PolicySet, Vec<(String, String)>)> {
        let invalid = || codeyard_core::AwsError::client("InvalidInput", format!("Invalid ARN {source_arn}."));
        let arn = codeyard_core::arn::Arn::parse(source_arn).filter(|a| a.service == "iam").ok_or_else(invalid)?;
        let name = arn.resource.rsplit('/').next().unwrap_or_default().to_string();
        let iam = &self.inner.iam;
        let mut ctx = RequestContext::internal(&arn.account, codeyard_core::DEFAULT_REGION, "");
        if arn.resource.starts_with("user/") {
            iam.get_user(&arn.account, &name).await?;
            ctx.caller_arn = source_arn.to_string();
        } else if arn.resource.starts_with("role/") {
            iam.get_role(&arn.account, &name).await?;
            ctx.caller_arn = format!("arn:aws:sts::{}:assumed-role/{name}/simulation", arn.account);
        } else if arn.resource.starts_with("group/") {
            let group = iam.entity::<Group>(&arn.account, &name).await?;
            let policies = PolicySet { identity: self.identity_of(&arn.account, &group).await?, ..Default::default() };
            let member = Principal::from_arn(&format!("arn:aws:iam::{}:user/simulation", arn.account));
            return Ok((member, policies, Vec::new()));
        } else {
            return Err(invalid());
        }
        let resolved = self.load(&ctx, 0).await?;
        Ok((Principal::from_arn(source_arn), resolved.policies, resolved.keys))
    }

    pub fn denials(&self) -> &Denials {
        &self.inner.denials
    }
}

fn parse(source: &str, text: &str) -> Option<Arc<SourcedPolicy>> {
    SourcedPolicy::parse(source, text).map_err(|e| tracing::warn!(source, error = %e, "stored policy does not parse; ignored")).ok()
}

fn push_tags(keys: &mut Vec<(String, String)>, tags: &[Tag]) {
    keys.extend(tags.iter().map(|t| (format!("aws:PrincipalTag/{}", t.key), t.value.clone())));
}

/// `codebuild.amazonaws.com`: an AWS service principal, as a context names a service acting
/// as itself.
fn is_service_principal(caller: &str) -> bool {
    caller.ends_with(".amazonaws.com") && !caller.contains([':', '/'])
}

/// The evaluator's request: the principal's keys, the keys every request carries, the
/// enforcement point's keys.
fn build_request(resolved: &Resolved, ctx: &RequestContext, request: &AccessRequest) -> Request {
    let resources = if request.resource == "*" || request.resource.is_empty() { Vec::new() } else { vec![request.resource.clone()] };
    let mut req = Request::new(resolved.principal.clone(), &request.action, resources);
    for (k, v) in &resolved.keys {
        req.context.set(k, v.clone());
    }
    req.context.set("aws:RequestedRegion", ctx.region.clone());
    // The plain-HTTP port stands in for AWS's HTTPS endpoints (every AWS client and service
    // uses TLS there): the common "deny when aws:SecureTransport is false" statement would
    // otherwise lock out every caller here while it passes on AWS.
    req.context.set("aws:SecureTransport", "true");
    if let Some(ip) = ctx.source_ip {
        req.context.set("aws:SourceIp", ip.to_string());
    }
    for (k, values) in &request.context {
        req.context.set_multi(k, values.clone());
    }
    if let Some(owner) = &request.resource_account {
        req = req.owned_by(owner);
    }
    req
}

/// Whether the caller is the root user of the context's account and `request`'s resource is
/// that account's.
fn own_root_on_own_resource(ctx: &RequestContext, request: &AccessRequest) -> bool {
    request.resource_account.as_deref().is_none_or(|a| a == ctx.account)
        && ctx.caller_arn.strip_prefix("arn:aws:iam::").and_then(|r| r.strip_suffix(":root")) == Some(ctx.account.as_str())
}

#[async_trait]
impl crate::sts::TrustCheck for IamAuthorizer {
    async fn caller_may_assume(&self, ctx: &RequestContext, request: &AccessRequest) -> Result<(), Denied> {
        // The account's root assumes its own roles whatever their trust policy says (AWS
        // refuses root AssumeRole altogether): tools on the default `test` key keep working.
        if own_root_on_own_resource(ctx, request) {
            return Ok(());
        }
        self.check(ctx, request, true).await
    }
    async fn service_may_assume(&self, account: &str, service: &str, request: &AccessRequest) -> Result<(), Denied> {
        self.check_service(account, service, request).await
    }
}

#[async_trait]
impl Authorizer for IamAuthorizer {
    async fn authorize(&self, ctx: &RequestContext, request: &AccessRequest) -> Result<(), Denied> {
        if self.inner.mode == IamMode::Off {
            return Ok(());
        }
        // AWS's own resources (`arn:aws:iam::aws:policy/...`) are readable by every account,
        // as the account's own are: no cross-account resource policy is needed.
        if request.resource_account.as_deref() == Some("aws") {
            let own = AccessRequest { resource_account: None, ..request.clone() };
            return self.authorize(ctx, &own).await;
        }
        // Root in its own account without a resource policy: nothing can deny it.
        if request.resource_policy.is_none() && own_root_on_own_resource(ctx, request) {
            return Ok(());
        }
        self.check(ctx, request, request.resource_policy_required).await
    }

    fn mode(&self) -> IamMode {
        self.inner.mode
    }
}

#[cfg(test)]
mod tests;
