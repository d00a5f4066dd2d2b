//! ECR as other services use it (the hub's [`ContainerImages`]): the image a tag names, for
//! CodePipeline's ECR source action, and how to pull an image from this registry, for ECS
//! tasks (the reference on the registry's own host and a token issued to the caller).

use crate::domain::{Ecr, RepoRef, repository_arn, repository_not_found};
use async_trait::async_trait;
use codeyard_core::hub::{ContainerImages, Hub, ImageInfo, PullSpec};
use codeyard_core::{AccessRequest, AwsResult, RequestContext};
use std::sync::Arc;

pub struct RegistryImages {
    pub ecr: Arc<Ecr>,
    pub hub: Arc<Hub>,
}

/// The repository path of an image in this registry: `<acct>.dkr.ecr.<region>.amazonaws.com/x`
/// (account and region from the host) or `<registry host>/x`; `None` for other registries.
pub fn own_image<'a>(
    image: &'a str,
    registry_host: &str,
    ctx: &RequestContext,
) -> Option<(String, String, &'a str)> {
    let (host, rest) = image.split_once('/')?;
    if host == registry_host {
        return Some((ctx.account.clone(), ctx.region.clone(), rest));
    }
    let labels: Vec<&str> = host.split('.').collect();
    let aws = matches!(labels.as_slice(), [acct, "dkr", "ecr", _, "amazonaws", "com"] | [acct, "dkr", "ecr", _, "amazonaws", "com", "cn"]
        if acct.len() == 12 && acct.bytes().all(|b| b.is_ascii_digit()));
    aws.then(|| (labels[0].to_string(), labels[3].to_string(), rest))
}

#[async_trait]
impl ContainerImages for RegistryImages {
    async fn image_by_tag(
        &self,
        ctx: &RequestContext,
        repository: &str,
        tag: &str,
    ) -> AwsResult<Option<ImageInfo>> {
        let r = RepoRef::new(&ctx.account, &ctx.region, repository);
        self.hub
            .authorize(
                ctx,
                &AccessRequest::new(
                    "ecr:DescribeImages",
                    repository_arn(&r.account, &r.region, &r.name),
                ),
            )
            .await
            .map_err(|d| d.to_error("AccessDeniedException"))?;
        if self.ecr.try_repository(&r).await?.is_none() {
            return Err(repository_not_found(&r));
        }
        let Some(digest) = self.ecr.tag(&r, tag).await? else {
            return Ok(None);
        };
        let Some(image) = self.ecr.image(&r, &digest).await? else {
            return Ok(None);
        };
        let tags = self
            .ecr
            .images(&r)
            .await?
            .into_iter()
            .find(|v| v.image.digest == digest)
            .map(|v| v.tags)
            .unwrap_or_else(|| vec![tag.to_string()]);
        Ok(Some(ImageInfo {
            registry_id: r.account.clone(),
            repository_name: r.name.clone(),
            repository_uri: format!("{}/{}", ctx.host(), r.name),
            image_digest: digest,
            image_tags: tags,
            image_pushed_at: image.pushed_at,
            image_size_in_bytes: image.size,
            image_manifest_media_type: image.media_type,
        }))
    }

    async fn pull_spec(&self, ctx: &RequestContext, image: &str) -> AwsResult<Option<PullSpec>> {
        let host = ctx.host().to_string();
        let Some((account, _region, rest)) = own_image(image, &host, ctx) else {
            return Ok(None);
        };
        let (token, _) = self
            .ecr
            .issue_token(&account, &ctx.region, &ctx.caller_arn)
            .await?;
        Ok(Some(PullSpec {
            reference: format!("{host}/{rest}"),
            username: "AWS".into(),
            password: token,
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn own_images_by_ecr_uri_or_registry_host() {
        let ctx = RequestContext::internal("000000000000", "eu-west-1", "http://localhost:4566");
        assert_eq!(
            own_image(
                "123456789012.dkr.ecr.us-east-1.amazonaws.com/app:1",
                "localhost:4566",
                &ctx
            ),
            Some(("123456789012".into(), "us-east-1".into(), "app:1"))
        );
        assert_eq!(
            own_image("localhost:4566/team/app@sha256:ab", "localhost:4566", &ctx),
            Some((
                "000000000000".into(),
                "eu-west-1".into(),
                "team/app@sha256:ab"
            ))
        );
        assert_eq!(
            own_image("docker.io/library/busybox", "localhost:4566", &ctx),
            None
        );
        assert_eq!(own_image("busybox", "localhost:4566", &ctx), None);
    }
}
