//! IAM for S3: every signed request, and every object the other services read or write through
//! the hub, is authorized as its caller (`codeyard_core::authz`), with the bucket policy as the
//! resource policy and the bucket's account as the resource's owner.
//!
//! The actions of an operation are the generated S3 data (`codeyard_api::iam_actions("s3",
//! op)`, whose `ACTION_OVERRIDES` in crates/codegen map `HeadObject` to `s3:GetObject` and so
//! on); the resource is `arn:aws:s3:::bucket` for bucket actions and `arn:aws:s3:::bucket/key`
//! for object actions. CopyObject / UploadPartCopy read their source (`x-amz-copy-source`) with
//! s3:GetObject on the source object; DeleteObjects needs s3:DeleteObject on each key (a denied
//! key is an `AccessDenied` entry of the result, the others are deleted). Condition keys: `s3:prefix`, `s3:delimiter`, `s3:max-keys` of
//! listings, `s3:VersionId`, and the `s3:x-amz-*` headers the action lists (`s3:x-amz-acl`);
//! `aws:SecureTransport` is `true` (the authorizer sets it for every request: the port stands in for AWS's HTTPS endpoints).
//!
//! Unsigned requests the gate let through as public reads ([`codeyard_wire::Anonymous`]) were
//! already decided by [`crate::anonymous`].

use crate::engine::Engine;
use codeyard_core::{AccessRequest, Denied, Hub, IamMode, RequestContext};
use s3s::access::{S3Access, S3AccessContext};
use s3s::dto::DeleteObjectsInput;
use s3s::{S3Error, S3ErrorCode, S3Request, S3Result};
use std::sync::Arc;

pub struct IamAccess {
    pub engine: Arc<Engine>,
    pub hub: Arc<Hub>,
    /// `--auth enforce`: a request s3s could not attribute to a key is refused (open mode
    /// strips signatures, so there every request reaches s3s unsigned).
    pub signatures_required: bool,
}

/// Keys of a DeleteObjects request IAM refused: (key, version id), answered as errors.
#[derive(Clone, Debug, Default)]
pub struct DeniedKeys(pub Vec<(String, Option<String>)>);

pub use crate::meta::{bucket_arn, object_arn};

fn denied(d: Denied) -> S3Error {
    S3Error::with_message(S3ErrorCode::AccessDenied, d.message)
}

/// Asks IAM for each request, with the bucket's policy and owner filled in.
pub async fn authorize(engine: &Engine, hub: &Hub, ctx: &RequestContext, bucket: Option<&str>, requests: Vec<AccessRequest>) -> Result<(), Denied> {
    if hub.iam_mode() == IamMode::Off || requests.is_empty() {
        return Ok(());
    }
    let doc = match bucket {
        Some(b) if !b.is_empty() => engine.bucket(b).await.ok(),
        _ => None,
    };
    let policy = doc.as_ref().and_then(|d| d.configs.get("policy")).cloned();
    for mut r in requests {
        r.resource_policy = policy.clone();
        if let Some(d) = doc.as_ref().filter(|d| !d.account.is_empty() && d.account != ctx.account) {
            r.resource_account = Some(d.account.clone());
        }
        hub.authorize(ctx, &r).await?;
    }
    Ok(())
}

/// The requests of an operation on a bucket (and key): one per action, its resource by the
/// action's resource types.
pub fn requests_for(op: &str, bucket: Option<&str>, key: Option<&str>) -> Vec<AccessRequest> {
    let Some(actions) = codeyard_api::iam_actions("s3", op) else { return Vec::new() };
    actions
        .iter()
        .map(|a| {
            let on_object = a.resources.iter().any(|r| r.kind == "object");
            let on_bucket = a.resources.iter().any(|r| r.kind == "bucket");
            let resource = match (bucket, key) {
                (Some(b), Some(k)) if on_object => object_arn(b, k),
                (Some(b), None) if on_object => object_arn(b, "*"),
                (Some(b), _) if on_bucket => bucket_arn(b),
                _ => "*".to_string(),
            };
            AccessRequest::new(a.action, resource)
        })
        .collect()
}

/// The source of a copy: `x-amz-copy-source: /bucket/key[?versionId=v]`, percent-encoded.
fn copy_source(headers: &http::HeaderMap) -> Option<(String, String)> {
    let v = headers.get("x-amz-copy-source")?.to_str().ok()?;
    let v = v.split('?').next().unwrap_or(v);
    let decoded = percent_encoding::percent_decode_str(v.trim_start_matches('/')).decode_utf8_lossy().to_string();
    let (b, k) = decoded.split_once('/')?;
    Some((b.to_string(), k.to_string()))
}

/// Condition keys from the query and headers, for the keys each action supports.
fn add_conditions(r: &mut AccessRequest, uri: &http::Uri, headers: &http::HeaderMap) {
    let supported: &[&str] = lookup_action(&r.action).map(|a| a.condition_keys).unwrap_or_default();
    let query: Vec<(String, String)> = uri.query().map(|q| url::form_urlencoded::parse(q.as_bytes()).into_owned().collect()).unwrap_or_default();
    for (param, key) in [("prefix", "s3:prefix"), ("delimiter", "s3:delimiter"), ("max-keys", "s3:max-keys"), ("versionId", "s3:VersionId")] {
        if supported.contains(&key)
            && let Some((_, v)) = query.iter().find(|(k, _)| k == param)
        {
            r.context.insert(key.to_string(), vec![v.clone()]);
        }
    }
    for key in supported.iter().filter(|k| k.starts_with("s3:x-amz-")) {
        if let Some(v) = headers.get(&key[3..]).and_then(|v| v.to_str().ok()) {
            r.context.insert(key.to_string(), vec![v.to_string()]);
        }
    }
}

/// The reference entry of an S3 action (`s3:PutObject`), for its condition keys.
fn lookup_action(action: &str) -> Option<&'static codeyard_api::IamAction> {
    codeyard_api::generated::s3::OPERATIONS.iter().flat_map(|o| o.iam.iter()).find(|a| a.action == action)
}

#[async_trait::async_trait]
impl S3Access for IamAccess {
    async fn check(&self, cx: &mut S3AccessContext<'_>) -> S3Result<()> {
        if cx.extensions_mut().get::<codeyard_wire::Anonymous>().is_some() {
            return Ok(());
        }
        if self.signatures_required && cx.credentials().is_none() {
            return Err(S3Error::with_message(S3ErrorCode::AccessDenied, "Access Denied"));
        }
        let Some(ctx) = cx.extensions_mut().get::<RequestContext>().cloned() else {
            return Err(S3Error::with_message(S3ErrorCode::AccessDenied, "Access Denied"));
        };
        let op = cx.s3_op().name().to_string();
        // Checked per key once the body is read (`delete_objects`).
        if op == "DeleteObjects" || self.hub.iam_mode() == IamMode::Off {
            return Ok(());
        }
        let (bucket, key) = match cx.s3_path() {
            s3s::path::S3Path::Root => (None, None),
            s3s::path::S3Path::Bucket { bucket } => (Some(bucket.to_string()), None),
            s3s::path::S3Path::Object { bucket, key } => (Some(bucket.to_string()), Some(key.to_string())),
        };
        let source = copy_source(cx.headers());
        let mut requests = requests_for(&op, bucket.as_deref(), key.as_deref());
        for r in requests.iter_mut() {
            add_conditions(r, cx.uri(), cx.headers());
        }
        if let Some((sb, sk)) = &source {
            // The copy's read is of the source object, under the source bucket's policy.
            let (reads, writes): (Vec<_>, Vec<_>) = requests.into_iter().partition(|r| r.action == "s3:GetObject");
            requests = writes;
            let reads = reads.into_iter().map(|r| AccessRequest { resource: object_arn(sb, sk), ..r }).collect();
            authorize(&self.engine, &self.hub, &ctx, Some(sb), reads).await.map_err(denied)?;
        }
        authorize(&self.engine, &self.hub, &ctx, bucket.as_deref(), requests).await.map_err(denied)
    }

    /// Each key is authorized on its own (s3:DeleteObject, s3:DeleteObjectVersion for a
    /// version); a denied key is left out of the deletion and answered as an `AccessDenied`
    /// entry of the result's errors, as S3 does ([`DeniedKeys`]).
    async fn delete_objects(&self, req: &mut S3Request<DeleteObjectsInput>) -> S3Result<()> {
        if req.extensions.get::<codeyard_wire::Anonymous>().is_some() || self.hub.iam_mode() == IamMode::Off {
            return Ok(());
        }
        let Some(ctx) = req.extensions.get::<RequestContext>().cloned() else {
            return Err(S3Error::with_message(S3ErrorCode::AccessDenied, "Access Denied"));
        };
        let bucket = req.input.bucket.clone();
        let mut denied_keys = DeniedKeys::default();
        let mut allowed = Vec::new();
        for o in std::mem::take(&mut req.input.delete.objects) {
            let action = if o.version_id.is_some() { "s3:DeleteObjectVersion" } else { "s3:DeleteObject" };
            let request = AccessRequest::new(action, object_arn(&bucket, &o.key));
            match authorize(&self.engine, &self.hub, &ctx, Some(&bucket), vec![request]).await {
                Ok(()) => allowed.push(o),
                Err(_) => denied_keys.0.push((o.key, o.version_id)),
            }
        }
        req.input.delete.objects = allowed;
        req.extensions.insert(denied_keys);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn operations_map_to_actions_and_resources() {
        let r = requests_for("GetObject", Some("b"), Some("k/1"));
        assert_eq!((r[0].action.as_str(), r[0].resource.as_str()), ("s3:GetObject", "arn:aws:s3:::b/k/1"));
        let r = requests_for("HeadObject", Some("b"), Some("k"));
        assert_eq!(r[0].action, "s3:GetObject");
        let r = requests_for("ListObjectsV2", Some("b"), None);
        assert_eq!((r[0].action.as_str(), r[0].resource.as_str()), ("s3:ListBucket", "arn:aws:s3:::b"));
        let r = requests_for("ListBuckets", None, None);
        assert_eq!((r[0].action.as_str(), r[0].resource.as_str()), ("s3:ListAllMyBuckets", "*"));
        let r = requests_for("CopyObject", Some("b"), Some("k"));
        assert_eq!(r.iter().map(|r| r.action.as_str()).collect::<Vec<_>>(), ["s3:GetObject", "s3:PutObject"]);
    }

    #[test]
    fn conditions_from_query_and_headers() {
        let mut r = AccessRequest::new("s3:ListBucket", "arn:aws:s3:::b");
        add_conditions(&mut r, &"/b?list-type=2&prefix=logs%2F&delimiter=/".parse().unwrap(), &http::HeaderMap::new());
        assert_eq!(r.context["s3:prefix"], ["logs/"]);
        assert_eq!(r.context["s3:delimiter"], ["/"]);
        let mut r = AccessRequest::new("s3:PutObject", "arn:aws:s3:::b/k");
        let mut h = http::HeaderMap::new();
        h.insert("x-amz-acl", "public-read".parse().unwrap());
        add_conditions(&mut r, &"/b/k".parse().unwrap(), &h);
        assert_eq!(r.context["s3:x-amz-acl"], ["public-read"]);
        h.insert("x-amz-copy-source", "/src/a%20b?versionId=1".parse().unwrap());
        assert_eq!(copy_source(&h), Some(("src".into(), "a b".into())));
    }
}
