//! UPLOAD_ARTIFACTS: the buildspec's artifacts to S3 (the project's artifacts settings) or to
//! the output artifacts a pipeline asked for.

use crate::artifacts::{self, Selected};
use crate::build::BuildRecord;
use crate::buildspec::{ArtifactSpec, Buildspec};
use crate::runner::{put_file, scratch_file};
use codeyard_core::RequestContext;
use codeyard_wire::Platform;
use serde_json::{Value, json};
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
            put_file(platform, ctx, &out.bucket, &out.key, &zip).await?;
            let location = format!("arn:aws:s3:::{}/{}", out.bucket, out.key);
            if i == 0 {
                b.artifacts = json!({"location": location});
            } else {
                b.secondary_artifacts
                    .push(json!({"location": location, "artifactIdentifier": out.name}));
            }
        }
        return Ok(());
    }
    let primary = b.artifacts_config.clone();
    if primary["type"] == "S3" {
        let aspec = spec
            .artifacts
            .as_ref()
            .ok_or("no artifacts section in the buildspec")?;
        b.artifacts = to_s3(platform, ctx, b, &primary, aspec, src_dir, scratch).await?;
    } else {
        b.artifacts = json!({"location": ""});
    }
    for cfg in b.secondary_artifacts_config.clone() {
        if cfg["type"] != "S3" {
            continue;
        }
        let id = cfg["artifactIdentifier"].as_str().unwrap_or("").to_string();
        let aspec = secondary(spec, &id)?;
        let mut out = to_s3(platform, ctx, b, &cfg, aspec, src_dir, scratch).await?;
        out["artifactIdentifier"] = json!(id);
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
    cfg: &Value,
    aspec: &ArtifactSpec,
    src_dir: &Path,
    scratch: &Path,
) -> Result<Value, String> {
    let bucket = cfg["location"].as_str().unwrap_or("");
    let name = match (cfg["overrideArtifactName"].as_bool(), &aspec.name) {
        (Some(true), Some(n)) => n.clone(),
        _ => cfg["name"]
            .as_str()
            .filter(|s| !s.is_empty())
            .unwrap_or(&b.project_name)
            .to_string(),
    };
    let mut parts: Vec<String> = Vec::new();
    if let Some(p) = cfg["path"]
        .as_str()
        .map(|p| p.trim_matches('/'))
        .filter(|p| !p.is_empty())
    {
        parts.push(p.to_string());
    }
    if cfg["namespaceType"] == "BUILD_ID" {
        parts.push(b.uuid.clone());
    }
    parts.push(name.trim_matches('/').to_string());
    let key = parts.join("/");
    let files = select(src_dir, aspec, "the primary artifact")?;
    if cfg["packaging"] == "ZIP" {
        let zip = zip_to(files, scratch).await?;
        put_file(platform, ctx, bucket, &key, &zip).await?;
    } else {
        for f in files {
            put_file(platform, ctx, bucket, &format!("{key}/{}", f.name), &f.path).await?;
        }
    }
    let mut out = json!({"location": format!("arn:aws:s3:::{bucket}/{key}")});
    for k in [
        "encryptionDisabled",
        "overrideArtifactName",
        "bucketOwnerAccess",
    ] {
        if let Some(v) = cfg.get(k).filter(|v| !v.is_null()) {
            out[k] = v.clone();
        }
    }
    Ok(out)
}
