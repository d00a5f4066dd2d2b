//! The ECR source action (`RepositoryName`, `ImageTag` default `latest`): the image the tag
//! names (or the pushed digest when an "ECR Image Action" event started the execution), as
//! an output artifact holding `imageDetail.json` as AWS writes it, and the action's output
//! variables (RegistryId, RepositoryName, ImageTag, ImageDigest, ImageURI).

use super::{ActionCall, ActionOutcome, Scratch, config, on_denied, s3_denied, source_output, zip_options};
use crate::model::SourceRevision;
use codeyard_core::{AwsError, AwsResult};
use std::collections::BTreeMap;
use std::io::Write;

/// ECR refused the role (DescribeImages).
fn ecr_denied(repo: &str) -> impl FnOnce(AwsError) -> AwsError + '_ {
    on_denied(move |m| {
        format!(
            "The service role or action role doesn’t have the permissions required to access the Amazon ECR repository named {repo}. Update the IAM role permissions, and then try again. Error: {m}"
        )
    })
}

/// `imageDetail.json`: AWS's keys, the size as a string, the push time as `date` prints it.
pub fn image_detail(info: &codeyard_core::hub::ImageInfo, digest: &str) -> serde_json::Value {
    serde_json::json!({
        "ImageSizeInBytes": info.image_size_in_bytes.to_string(),
        "ImageDigest": digest,
        "Version": "1.0",
        "ImagePushedAt": info.image_pushed_at.format("%a %b %d %H:%M:%S UTC %Y").to_string(),
        "RegistryId": info.registry_id,
        "ImageURI": format!("{}@{digest}", info.repository_uri),
        "ImageTags": info.image_tags,
        "RepositoryName": info.repository_name,
    })
}

fn zip_one(path: &std::path::Path, name: &str, bytes: &[u8]) -> std::io::Result<()> {
    let file = std::fs::File::create(path)?;
    let mut zip = zip::ZipWriter::new(file);
    zip.start_file(name, zip::write::SimpleFileOptions::default())
        .map_err(std::io::Error::other)?;
    zip.write_all(bytes)?;
    zip.finish().map_err(std::io::Error::other)?.sync_all()
}

pub async fn run(call: &ActionCall<'_>) -> AwsResult<ActionOutcome> {
    let ActionCall { host, ref ctx, exec, run, decl, .. } = *call;
    let images = host.platform().hub.images()?;
    let objects = host.platform().hub.objects()?;
    let repo = config(run, "RepositoryName")
        .unwrap_or_default()
        .to_string();
    let tag = config(run, "ImageTag")
        .filter(|t| !t.is_empty())
        .unwrap_or("latest")
        .to_string();
    let info = match images.image_by_tag(ctx, &repo, &tag).await {
        Ok(Some(i)) => i,
        Ok(None) => {
            return Ok(ActionOutcome::failed(format!(
                "The image tag '{tag}' does not exist in the repository '{repo}'"
            )));
        }
        Err(e) if e.code == "RepositoryNotFoundException" => {
            return Ok(ActionOutcome::failed(format!(
                "The repository with name '{repo}' does not exist in the registry with id '{}'",
                ctx.account
            )));
        }
        Err(e) => return Err(ecr_denied(&repo)(e)),
    };
    // The pushed digest when an image push started the execution (the tag may have moved).
    let digest = exec
        .revision_overrides
        .get(&decl.name)
        .cloned()
        .unwrap_or_else(|| info.image_digest.clone());
    let detail = image_detail(&info, &digest);
    let out = source_output(run)?;
    let scratch = Scratch::new(host, ".zip")?;
    zip_one(
        &scratch.0,
        "imageDetail.json",
        detail.to_string().as_bytes(),
    )?;
    objects
        .put_object_file(ctx, &out.bucket, &out.key, &scratch.0, zip_options(out))
        .await
        .map_err(s3_denied)?;
    let uri = format!("{}@{digest}", info.repository_uri);
    let mut vars = BTreeMap::new();
    vars.insert("RegistryId".into(), info.registry_id.clone());
    vars.insert("RepositoryName".into(), repo.clone());
    vars.insert("ImageTag".into(), tag.clone());
    vars.insert("ImageDigest".into(), digest.clone());
    vars.insert("ImageURI".into(), uri);
    let summary = format!("Image {repo}:{tag} ({digest})");
    let url = format!(
        "https://{0}.console.aws.amazon.com/ecr/repositories/private/{1}/{repo}/_/image/{digest}/details?region={0}",
        ctx.region, info.registry_id
    );
    Ok(ActionOutcome {
        succeeded: true,
        summary: Some(summary.clone()),
        external_id: Some(digest.clone()),
        external_url: Some(url.clone()),
        output_variables: vars,
        artifact_revision: Some((digest.clone(), Some(summary.clone()), Some(url.clone()))),
        source_revision: Some(SourceRevision {
            action_name: decl.name.clone(),
            revision_id: digest,
            revision_summary: Some(summary),
            revision_url: Some(url),
        }),
        error: None,
    })
}
