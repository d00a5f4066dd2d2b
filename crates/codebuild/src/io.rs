//! Leaf helpers the build's I/O modules share: store namespaces, scratch files, S3 transfers.
//! Nothing here depends on the runner, so cache/upload/source/reports do not either.

use codeyard_core::hub::PutObjectOptions;
use codeyard_core::{AwsError, RequestContext, ids};
use codeyard_wire::Platform;
use std::path::{Path, PathBuf};

/// The store namespace of one kind of CodeBuild record (`projects`, `builds`, ...).
pub fn ns(account: &str, region: &str, kind: &str) -> String {
    format!("codebuild/{account}/{region}/{kind}")
}

/// S3's error as CodeBuild reports it (`AccessDenied: <S3's message> status code: 403`);
/// other failures keep codeyard's own sentence.
pub fn s3_error(e: &AwsError) -> String {
    if e.status == 403 {
        format!("{}: {} status code: 403", e.code, e.message)
    } else {
        e.message.clone()
    }
}

/// Uploads a file to S3 through the hub, under `kms_key_id` (SSE-KMS) when given, else with
/// the bucket's default encryption.
pub async fn put_file(
    platform: &Platform,
    ctx: &RequestContext,
    (bucket, key): (&str, &str),
    path: &Path,
    kms_key_id: Option<&str>,
) -> Result<(), String> {
    let objects = platform.hub.objects().map_err(|e| e.message)?;
    let options = PutObjectOptions { kms_key_id: kms_key_id.map(str::to_string), ..Default::default() };
    objects
        .put_object_file(ctx, bucket, key, path, options)
        .await
        .map(|_| ())
        .map_err(|e| match e.status {
            403 => format!("Error uploading artifacts: {}", s3_error(&e)),
            _ => format!("cannot upload s3://{bucket}/{key}: {}", e.message),
        })
}

/// Downloads an S3 object through the hub into a new scratch file in `dir`; the file and the
/// object's version id.
pub async fn get_file(
    platform: &Platform,
    ctx: &RequestContext,
    bucket: &str,
    key: &str,
    version: Option<&str>,
    dir: &Path,
    name: &str,
) -> Result<(PathBuf, Option<String>), AwsError> {
    let objects = platform.hub.objects()?;
    let path = scratch_file(dir, name);
    let info = objects.get_object_to_file(ctx, bucket, key, version, &path).await?;
    Ok((path, info.version_id))
}

pub fn scratch_file(dir: &Path, name: &str) -> PathBuf {
    dir.join(format!("{}-{name}", ids::hex(8)))
}

/// A record kept in its model shape's JSON layout (projects, report groups, reports, test
/// cases) as that shape: one serde round trip instead of a copy per member; members the shape
/// lacks (a report's test cases) stay behind.
pub fn as_model<T: serde::de::DeserializeOwned + Default>(record: &impl serde::Serialize) -> T {
    match serde_json::to_value(record).and_then(serde_json::from_value) {
        Ok(shape) => shape,
        Err(e) => {
            tracing::error!("a record does not fit its model shape: {e}");
            T::default()
        }
    }
}
