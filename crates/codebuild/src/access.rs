//! What a build does as its project's service role, and what CodeBuild checks before it acts.
//!
//! A build acts in the role's session `AWSCodeBuild-<build uuid>` ([`role_context`]): its log
//! stream, source download (codecommit:GitPull, s3:GetObject), artifacts and cache (S3) go
//! through the hub with that context, so IAM evaluates the role's policies and a denial fails
//! the build in the phase where AWS fails it.

use crate::build::BuildRecord;
use crate::executor::Provisioning;
use codeyard_core::{AccessRequest, RequestContext};
use codeyard_wire::Platform;

/// The context a build acts in: the service role's session, as CodeBuild names it (a project
/// without a role keeps the server's own context).
pub fn role_context(b: &BuildRecord) -> RequestContext {
    RequestContext::internal(&b.account, &b.region, &b.endpoint)
        .acting_as_role(&b.config.service_role, &format!("AWSCodeBuild-{}", b.uuid))
}

/// CodeBuild's service principal, the one a service role's trust policy must name.
pub const SERVICE_PRINCIPAL: &str = "codebuild.amazonaws.com";

/// Whether CodeBuild may assume `role` (its trust policy names codebuild.amazonaws.com), as
/// AWS checks it at CreateProject, UpdateProject and when a build starts; `Err` is AWS's
/// message. Asked under `--iam enforce` only, and only of IAM role ARNs (anything else keeps
/// the server's own context, see [`role_context`]).
pub async fn trusted(platform: &Platform, account: &str, role: &str, session: &str) -> Result<(), String> {
    let is_role = codeyard_core::arn::Arn::parse(role).is_some_and(|a| a.service == "iam" && a.resource.starts_with("role/"));
    if !is_role || platform.hub.iam_mode() != codeyard_core::IamMode::Enforce {
        return Ok(());
    }
    let Ok(issuer) = platform.hub.credentials() else {
        return Ok(());
    };
    match issuer.assume_role_as_service(account, role, SERVICE_PRINCIPAL, session, 900).await {
        Ok(_) => Ok(()),
        Err(e) => {
            tracing::warn!(role, error = %e.message, "CodeBuild cannot assume the service role");
            Err(format!("CodeBuild is not authorized to perform: sts:AssumeRole on {role}"))
        }
    }
}

/// What PROVISIONING checks before the sandbox is provisioned, in AWS's order: CodeBuild may
/// assume the role, the role may create the build's log stream (`log_stream`: the log pump's
/// answer), and the image may be pulled; answers the registry login of an image in codeyard's
/// ECR ([`image_pull`]). `Err` is the phase context (code, message).
pub async fn provisioning(
    platform: &Platform,
    ctx: &RequestContext,
    b: &BuildRecord,
    p: &Provisioning,
    log_stream: Option<&mut tokio::sync::oneshot::Receiver<Result<(), String>>>,
) -> Result<Option<(String, String)>, (String, String)> {
    let session = format!("AWSCodeBuild-{}", b.uuid);
    trusted(platform, &b.account, &b.config.service_role, &session)
        .await
        .map_err(|m| ("CLIENT_ERROR".to_string(), m))?;
    if let Some(rx) = log_stream
        && let Ok(Err(m)) = rx.await
    {
        return Err(("ACCESS_DENIED".to_string(), m));
    }
    image_pull(platform, ctx, b, p)
        .await
        .map_err(|m| ("BUILD_CONTAINER_UNABLE_TO_PULL_IMAGE".to_string(), m))
}

/// CodeBuild's message for a pull the registry refused.
pub fn pull_denied(image: &str, why: &str) -> String {
    format!(
        "Unable to pull customer's container image. CannotPullContainerError: Error response from daemon: pull access denied for {image}, repository does not exist or may require 'docker login': denied: {why}"
    )
}

/// The context CodeBuild pulls in with its own credentials (`imagePullCredentialsType:
/// CODEBUILD`): the service principal itself, which only the repository policy can allow.
pub fn codebuild_context(b: &BuildRecord, endpoint: &str) -> RequestContext {
    RequestContext {
        caller_arn: SERVICE_PRINCIPAL.to_string(),
        ..RequestContext::internal(&b.account, &b.region, endpoint)
    }
}

/// The registry login an image of this server's ECR is pulled with, issued as AWS issues it:
/// with `imagePullCredentialsType: SERVICE_ROLE` to the service role's session, which needs
/// ecr:GetAuthorizationToken, BatchGetImage and GetDownloadUrlForLayer on the repository
/// (checked here, so the refusal is CodeBuild's PROVISIONING message); with CODEBUILD to the
/// CodeBuild service principal, which the repository policy must allow (the registry decides
/// as it serves the pull). `None` for images elsewhere; `Err` is PROVISIONING's message.
async fn image_pull(
    platform: &Platform,
    ctx: &RequestContext,
    b: &BuildRecord,
    p: &Provisioning,
) -> Result<Option<(String, String)>, String> {
    let endpoint = &platform.config.public_endpoint;
    let resolver = crate::images::ImageResolver::new(endpoint, &platform.config.data_dir);
    let Some(repo) = crate::images::ecr_repository(&resolver, &p.image, &b.account, &b.region) else {
        return Ok(None);
    };
    let puller = if p.pull_credentials == "SERVICE_ROLE" {
        for (action, resource) in [
            ("ecr:GetAuthorizationToken", "*"),
            ("ecr:BatchGetImage", repo.as_str()),
            ("ecr:GetDownloadUrlForLayer", repo.as_str()),
        ] {
            if let Err(d) = platform.hub.authorize(ctx, &AccessRequest::new(action, resource)).await {
                return Err(pull_denied(&p.image, &d.message));
            }
        }
        RequestContext { endpoint: endpoint.clone(), ..ctx.clone() }
    } else {
        codebuild_context(b, endpoint)
    };
    let Ok(images) = platform.hub.images() else {
        return Ok(None);
    };
    let name = resolver.resolve(&p.image).map(|r| r.pull_name).unwrap_or_else(|_| p.image.clone());
    match images.pull_spec(&puller, &name).await {
        Ok(spec) => Ok(spec.map(|s| (s.username, s.password))),
        Err(e) => Err(pull_denied(&p.image, &e.message)),
    }
}

/// The service role's temporary credentials, or (Err) a fallback key and why it was used.
pub(crate) async fn role_credentials(
    platform: &Platform,
    b: &BuildRecord,
) -> Result<codeyard_core::hub::Credentials, (String, String, String)> {
    let fallback = |why: String| {
        let (id, secret) = platform
            .config
            .access_keys
            .first()
            .map(|k| (k.id.clone(), k.secret.clone()))
            .unwrap_or_else(|| ("test".into(), "test".into()));
        (id, secret, why)
    };
    let issuer = platform.hub.credentials().map_err(|_| {
        fallback("no STS in this server: commands get static test credentials".into())
    })?;
    if b.config.service_role.is_empty() {
        return Err(fallback(
            "the project has no service role: commands get static test credentials".into(),
        ));
    }
    issuer
        .assume_role_as_service(
            &b.account,
            &b.config.service_role,
            crate::access::SERVICE_PRINCIPAL,
            &format!("AWSCodeBuild-{}", b.uuid),
            3600,
        )
        .await
        .map_err(|e| {
            fallback(format!(
                "cannot assume the service role {}: {} (commands get static test credentials)",
                b.config.service_role, e.message
            ))
        })
}
