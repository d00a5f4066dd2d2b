//! IAM for ECR: API calls and registry requests are authorized with the repository policy
//! (SetRepositoryPolicy) as the resource policy.
//!
//! Registry requests act as the principal that asked GetAuthorizationToken for their token
//! ([`crate::domain::TokenRecord::caller_arn`]), with the actions ECR documents for docker:
//! pulls `ecr:BatchGetImage` (manifests) and `ecr:GetDownloadUrlForLayer` (blobs),
//! `ecr:BatchCheckLayerAvailability` for a blob HEAD, pushes `ecr:InitiateLayerUpload`,
//! `ecr:UploadLayerPart`, `ecr:CompleteLayerUpload` and `ecr:PutImage`. Requests without a token
//! (open mode: a local registry) ask nothing.

use crate::domain::{Ecr, RepoRef, TokenRecord, repository_arn};
use codeyard_core::arn::Arn;
use codeyard_core::{AccessRequest, RequestContext};

/// The repository's policy, if it has one (and exists).
pub async fn repository_policy(ecr: &Ecr, repo: &RepoRef) -> Option<String> {
    ecr.repository(repo).await.ok().and_then(|(r, _)| r.policy)
}

/// Adds the repository policy of each request on a repository ARN.
pub async fn with_repository_policies(ecr: &Ecr, mut requests: Vec<AccessRequest>) -> Vec<AccessRequest> {
    for r in requests.iter_mut() {
        let Some(arn) = Arn::parse(&r.resource) else { continue };
        let Some(name) = arn.resource.strip_prefix("repository/").filter(|n| !n.contains('*')) else { continue };
        r.resource_policy = repository_policy(ecr, &RepoRef::new(&arn.account, &arn.region, name)).await;
    }
    requests
}

/// The context a registry request with this token runs as: the token's principal, in its own
/// account (the registry may be another's), in the repository's region.
pub fn token_context(wire: &RequestContext, token: &TokenRecord, region: &str) -> RequestContext {
    let caller_arn = token.caller_arn.clone().unwrap_or_else(|| format!("arn:aws:iam::{}:root", token.account));
    let account = Arn::parse(&caller_arn).map(|a| a.account).filter(|a| !a.is_empty()).unwrap_or_else(|| token.account.clone());
    RequestContext { account, region: region.to_string(), access_key: String::new(), caller_arn, ..wire.clone() }
}

/// What a registry operation on a repository needs, by route.
pub fn registry_actions(method: &http::Method, route: RegistryRoute) -> &'static [&'static str] {
    use http::Method;
    match (route, method) {
        (RegistryRoute::Manifest, &Method::GET | &Method::HEAD) => &["ecr:BatchGetImage"],
        (RegistryRoute::Manifest, &Method::PUT) => &["ecr:PutImage"],
        (RegistryRoute::Manifest, &Method::DELETE) => &["ecr:BatchDeleteImage"],
        // Answered "method not allowed" after this.
        (RegistryRoute::Manifest, _) => &["ecr:BatchGetImage"],
        (RegistryRoute::Blob, &Method::HEAD) => &["ecr:BatchCheckLayerAvailability"],
        (RegistryRoute::Blob, _) => &["ecr:GetDownloadUrlForLayer"],
        // A POST with `?digest=` is a whole upload in one request.
        (RegistryRoute::StartUpload { monolithic: true }, _) => &["ecr:InitiateLayerUpload", "ecr:UploadLayerPart", "ecr:CompleteLayerUpload"],
        (RegistryRoute::StartUpload { monolithic: false }, _) => &["ecr:InitiateLayerUpload"],
        (RegistryRoute::Upload, &Method::PATCH) => &["ecr:UploadLayerPart"],
        (RegistryRoute::Upload, &Method::PUT) => &["ecr:UploadLayerPart", "ecr:CompleteLayerUpload"],
        (RegistryRoute::Upload, _) => &["ecr:InitiateLayerUpload"],
        (RegistryRoute::Tags, _) => &["ecr:ListImages"],
        (RegistryRoute::Referrers, _) => &["ecr:BatchGetImage"],
    }
}

/// Which registry operation a matched path is (for its IAM actions).
pub fn route_of(caps: &regex::Captures<'_>, q: &std::collections::HashMap<String, String>) -> RegistryRoute {
    if caps.name("reference").is_some() {
        RegistryRoute::Manifest
    } else if let Some(upload) = caps.name("upload") {
        if upload.as_str().is_empty() {
            RegistryRoute::StartUpload { monolithic: q.contains_key("digest") }
        } else {
            RegistryRoute::Upload
        }
    } else if caps.name("digest").is_some() {
        RegistryRoute::Blob
    } else if caps.name("tags").is_some() {
        RegistryRoute::Tags
    } else {
        RegistryRoute::Referrers
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RegistryRoute {
    Manifest,
    Blob,
    StartUpload { monolithic: bool },
    Upload,
    Tags,
    Referrers,
}

/// The requests of a registry operation on a repository, with its policy.
pub async fn registry_requests(ecr: &Ecr, repo: &RepoRef, actions: &[&str], caller_account: &str) -> Vec<AccessRequest> {
    let policy = repository_policy(ecr, repo).await;
    let resource = repository_arn(&repo.account, &repo.region, &repo.name);
    actions
        .iter()
        .map(|a| {
            let mut r = AccessRequest::new(*a, resource.clone()).with_resource_policy(policy.clone());
            if repo.account != caller_account {
                r.resource_account = Some(repo.account.clone());
            }
            r
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pulls_and_pushes_need_ecrs_actions() {
        assert_eq!(registry_actions(&http::Method::GET, RegistryRoute::Manifest), ["ecr:BatchGetImage"]);
        assert_eq!(registry_actions(&http::Method::HEAD, RegistryRoute::Blob), ["ecr:BatchCheckLayerAvailability"]);
        assert_eq!(registry_actions(&http::Method::GET, RegistryRoute::Blob), ["ecr:GetDownloadUrlForLayer"]);
        assert_eq!(registry_actions(&http::Method::PUT, RegistryRoute::Manifest), ["ecr:PutImage"]);
        assert_eq!(registry_actions(&http::Method::PATCH, RegistryRoute::Upload), ["ecr:UploadLayerPart"]);
    }

    #[test]
    fn tokens_act_as_who_asked_for_them() {
        let wire = RequestContext::internal("000000000000", "us-east-1", "http://localhost:4566");
        let token = TokenRecord {
            account: "111122223333".into(),
            region: "eu-west-1".into(),
            expires_at: codeyard_core::time::now(),
            caller_arn: Some("arn:aws:sts::444455556666:assumed-role/R/s".into()),
        };
        let ctx = token_context(&wire, &token, "eu-west-1");
        assert_eq!(ctx.caller_arn, "arn:aws:sts::444455556666:assumed-role/R/s");
        assert_eq!(ctx.account, "444455556666");
        assert_eq!(ctx.region, "eu-west-1");
    }
}
