//! UPLOAD_ARTIFACTS: the buildspec's artifacts to S3 (the project's artifacts settings) or to
//! the output artifacts a pipeline asked for.

use crate::artifacts::{self, Selected};
use crate::build::BuildRecord;
use crate::buildspec::{ArtifactSpec, Buildspec};
use crate::io::{put_file, scratch_file};
use codeyard_core::RequestContext;
use codeyard_wire::Platform;
use codeyard_api::codebuild::{ArtifactNamespace, ArtifactPackaging, ArtifactsType, BuildArtifacts, ProjectArtifacts};
use std::path::Path;

fn select(src_dir: &Path, spec: &ArtifactSpec, what: &str) -> Result<Vec<Selected>, String> {
    let files = artifacts::select(src_dir, spec)?;
    if files.is_empty() {
        return Err(format!("no matching artifact paths found for {what}"));
    }
    Ok(files)
}

async fn zip_to(files: Vec<Selected>, scratch: &Path) -> Result<std::path::PathBuf, String> {
    let dest = scratch_file(scratch, "artifact.zip");
    let d = dest.clone();
    tokio::task::spawn_blocking(move || artifacts::write_zip(&files, &d))
        .await
        .map_err(|e| e.to_string())?
        .map_err(|e| e.to_string())?;
    Ok(dest)
}

fn secondary<'a>(spec: &'a Buildspec, id: &str) -> Result<&'a ArtifactSpec, String> {
    spec.secondary_artifacts
        .iter()
        .find(|(n, _)| n == id)
        .map(|(_, s)| s)
        .ok_or_else(|| format!("no definition for secondary artifact {id} in buildspec"))
}

pub async fn upload(
    platform: &Platform,
    ctx: &RequestContext,
    b: &mut BuildRecord,
    spec: &Buildspec,
    src_dir: &Path,
    scratch: &Path,
) -> Result<(), String> {
    if let Some(p) = b.pipeline.clone() {
        for (i, out) in p.outputs.iter().enumerate() {
            let aspec = if i == 0 {
                spec.artifacts.as_ref().ok_or(
                    "no artifacts section in the buildspec for the pipeline's output artifact",
                )?
            } else {
                secondary(spec, &out.name)?
            };
            let zip = zip_to(select(src_dir, aspec, &out.name)?, scratch).await?;
            // Under the pipeline's artifact store key, as CodePipeline hands it to the build.
            put_file(platform, ctx, (&out.bucket, &out.key), &zip, out.kms_key_id.as_deref()).await?;
            let location = format!("arn:aws:s3:::{}/{}", out.bucket, out.key);
            if i == 0 {
                b.artifacts = BuildArtifacts { location: Some(location), ..Default::default() };
            } else {
                b.secondary_artifacts.push(BuildArtifacts {
                    location: Some(location),
                    artifact_identifier: Some(out.name.clone()),
                    ..Default::default()
                });
            }
        }
        return Ok(());
    }
    let primary = b.config.artifacts.clone();
    if primary.r#type == ArtifactsType::S3 {
        let aspec = spec
            .artifacts
            .as_ref()
            .ok_or("no artifacts section in the buildspec")?;
        b.artifacts = to_s3(platform, ctx, b, &primary, aspec, src_dir, scratch).await?;
    } else {
        b.artifacts = BuildArtifacts { location: Some(String::new()), ..Default::default() };
    }
    for cfg in b.config.secondary_artifacts.clone() {
        if cfg.r#type != ArtifactsType::S3 {
            continue;
        }
        let id = cfg.artifact_identifier.clone().unwrap_or_default();
        let aspec = secondary(spec, &id)?;
        let mut out = to_s3(platform, ctx, b, &cfg, aspec, src_dir, scratch).await?;
        out.artifact_identifier = Some(id);
        b.secondary_artifacts.push(out);
    }
    Ok(())
}

/// Uploads one artifact as the project's S3 settings say: `<path>/<build uuid if BUILD_ID>/<name>`,
/// one zip object (packaging ZIP) or the files under that prefix (NONE).
async fn to_s3(
    platform: &Platform,
    ctx: &RequestContext,
    b: &BuildRecord,
    cfg: &ProjectArtifacts,
    aspec: &ArtifactSpec,
    src_dir: &Path,
    scratch: &Path,
) -> Result<BuildArtifacts, String> {
    let bucket = cfg.location.as_deref().unwrap_or("");
    let name = match (cfg.override_artifact_name, &aspec.name) {
        (Some(true), Some(n)) => n.clone(),
        _ => cfg
            .name
            .as_deref()
            .filter(|s| !s.is_empty())
            .unwrap_or(&b.project_name)
            .to_string(),
    };
    let mut parts: Vec<String> = Vec::new();
    if let Some(p) = cfg
        .path
        .as_deref()
        .map(|p| p.trim_matches('/'))
        .filter(|p| !p.is_empty())
    {
        parts.push(p.to_string());
    }
    if cfg.namespace_type == Some(ArtifactNamespace::BuildId) {
        parts.push(b.uuid.clone());
    }
    parts.push(name.trim_matches('/').to_string());
    let key = parts.join("/");
    let files = select(src_dir, aspec, "the primary artifact")?;
    // Under the build's encryption key (the project's, aws/s3 by default) unless the project
    // turned artifact encryption off.
    let kms_key = match cfg.encryption_disabled {
        Some(true) => None,
        _ => b.config.encryption_key.as_deref(),
    };
    if cfg.packaging == Some(ArtifactPackaging::Zip) {
        let zip = zip_to(files, scratch).await?;
        put_file(platform, ctx, (bucket, &key), &zip, kms_key).await?;
    } else {
        for f in files {
            put_file(platform, ctx, (bucket, &format!("{key}/{}", f.name)), &f.path, kms_key).await?;
        }
    }
    Ok(BuildArtifacts {
        location: Some(format!("arn:aws:s3:::{bucket}/{key}")),
        encryption_disabled: cfg.encryption_disabled,
        override_artifact_name: cfg.override_artifact_name,
        bucket_owner_access: cfg.bucket_owner_access.clone(),
        ..Default::default()
    })
}
