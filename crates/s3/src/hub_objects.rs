//! [`HubObjects`]: the S3 engine as the hub's [`ObjectStoreApi`], for the services that keep
//! artifacts in S3 (CodePipeline, CodeBuild), the console's S3 browser and
//! `codeyard export terraform`. Every method authorizes the context as the matching S3 call
//! would ([`authz`]): s3:PutObject, s3:GetObject, s3:ListAllMyBuckets, s3:ListBucket (with its
//! `s3:prefix`/`s3:delimiter`/`s3:max-keys` condition keys), s3:GetBucketVersioning,
//! s3:GetBucketPolicy, s3:GetBucketTagging and s3:GetBucketNotification.

use crate::engine::{self, Engine, Listed};
use crate::{authz, meta};
use async_trait::async_trait;
use codeyard_core::hub::{
    BucketSettings, BucketSummary, ListedObject, ObjectInfo, ObjectListQuery, ObjectListing,
    ObjectReader, ObjectStoreApi, PutObjectOptions,
};
use codeyard_core::{AccessRequest, AwsError, AwsResult, RequestContext};
use codeyard_store::Batch;
use futures::TryStreamExt;
use std::path::Path;
use std::sync::Arc;

/// S3 for other services: the same engine, files in and out.
pub struct HubObjects {
    pub(crate) engine: Arc<Engine>,
    pub(crate) hub: Arc<codeyard_core::Hub>,
}

impl HubObjects {
    /// IAM for a call another service makes as `ctx` (see [`authz`]).
    async fn authorize(
        &self,
        ctx: &RequestContext,
        bucket: &str,
        requests: Vec<codeyard_core::AccessRequest>,
    ) -> AwsResult<()> {
        authz::authorize(&self.engine, &self.hub, ctx, Some(bucket), requests)
            .await
            .map_err(|d| d.to_error("AccessDenied"))
    }

    /// s3:GetObject (s3:GetObjectVersion for a version) on an object.
    async fn authorize_read(
        &self,
        ctx: &RequestContext,
        bucket: &str,
        key: &str,
        version_id: Option<&str>,
    ) -> AwsResult<()> {
        let action = if version_id.is_some() {
            "s3:GetObjectVersion"
        } else {
            "s3:GetObject"
        };
        let request = codeyard_core::AccessRequest::new(action, authz::object_arn(bucket, key));
        self.authorize(ctx, bucket, vec![request]).await
    }

    /// The version a GetObject as `ctx` reads, once authorized.
    async fn readable(
        &self,
        ctx: &RequestContext,
        bucket: &str,
        key: &str,
        version_id: Option<&str>,
    ) -> AwsResult<meta::ObjectDoc> {
        self.authorize_read(ctx, bucket, key, version_id).await?;
        let o = self
            .engine
            .get_version(bucket, key, version_id)
            .await
            .map_err(aws_error)?;
        crate::sse::unseal(&self.hub, ctx, o.headers.kms.as_ref())
            .await
            .map_err(aws_error)?;
        Ok(o)
    }
}

fn aws_error(e: s3s::S3Error) -> AwsError {
    let status = e.status_code().map(|s| s.as_u16()).unwrap_or(500);
    AwsError::new(
        status,
        e.code().as_str(),
        e.message().unwrap_or("S3 error").to_string(),
    )
}

fn info(bucket: &str, o: &meta::ObjectDoc) -> ObjectInfo {
    ObjectInfo {
        bucket: bucket.into(),
        key: o.key.clone(),
        etag: format!("\"{}\"", o.etag),
        size: o.size,
        version_id: (o.version_id != "null").then(|| o.version_id.clone()),
        last_modified: Some(codeyard_core::time::from_epoch_millis(o.last_modified_ms)),
    }
}

#[async_trait]
impl ObjectStoreApi for HubObjects {
    async fn put_object_file(
        &self,
        ctx: &RequestContext,
        bucket: &str,
        key: &str,
        source: &Path,
        options: PutObjectOptions,
    ) -> AwsResult<ObjectInfo> {
        let mut request =
            codeyard_core::AccessRequest::new("s3:PutObject", authz::object_arn(bucket, key));
        if let Some(acl) = &options.canned_acl {
            request = request.with("s3:x-amz-acl", acl.clone());
        }
        self.authorize(ctx, bucket, vec![request]).await?;
        engine::validate_key(key).map_err(aws_error)?;
        let b = self.engine.bucket(bucket).await.map_err(aws_error)?;
        let requested = match options.kms_key_id {
            Some(key_id) => crate::sse::Requested::Kms { key_id: Some(key_id), context: Default::default(), bucket_key_enabled: None },
            None => crate::sse::Requested::BucketDefault,
        };
        let kms = crate::sse::seal(&self.hub, ctx, &b, key, requested)
            .await
            .map_err(aws_error)?;
        let file = tokio::fs::File::open(source)
            .await
            .map_err(|e| AwsError::internal(format!("{}: {e}", source.display())))?;
        let stream = tokio_util::io::ReaderStream::with_capacity(file, 256 * 1024);
        let written = self
            .engine
            .blobs
            .write(stream, s3s::checksum::ChecksumHasher::default())
            .await
            .map_err(AwsError::internal)?;
        let doc = meta::ObjectDoc {
            key: key.into(),
            blobs: vec![written.blob.clone()],
            size: written.blob.size,
            etag: hex::encode(written.md5),
            last_modified_ms: meta::now_ms(),
            headers: meta::StoredHeaders {
                content_type: options.content_type,
                cache_control: options.cache_control,
                acl: options.canned_acl,
                kms,
                ..Default::default()
            },
            metadata: options.metadata.into_iter().collect(),
            ..Default::default()
        };
        let notice = engine::Notice::new("PutObject", ctx);
        match self
            .engine
            .commit_version(bucket, doc, Batch::new(), Some(&notice))
            .await
        {
            Ok(o) => Ok(info(bucket, &o)),
            Err(e) => {
                self.engine.blobs.delete(&[written.blob]).await;
                Err(aws_error(e))
            }
        }
    }

    async fn get_object_to_file(
        &self,
        ctx: &RequestContext,
        bucket: &str,
        key: &str,
        version_id: Option<&str>,
        dest: &Path,
    ) -> AwsResult<ObjectInfo> {
        use tokio::io::AsyncWriteExt;
        let o = self.readable(ctx, bucket, key, version_id).await?;
        let dir = dest
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .unwrap_or(Path::new("."));
        tokio::fs::create_dir_all(dir)
            .await
            .map_err(AwsError::internal)?;
        let tmp = dir.join(format!(
            ".{}.{}.part",
            dest.file_name()
                .and_then(|n| n.to_str())
                .unwrap_or("object"),
            uuid::Uuid::new_v4().simple()
        ));
        let result = async {
            let mut f = tokio::fs::File::create(&tmp).await?;
            let mut stream = self.engine.blobs.read(&o.blobs, 0..o.size);
            while let Some(chunk) = stream.try_next().await.map_err(std::io::Error::other)? {
                f.write_all(&chunk).await?;
            }
            f.sync_all().await?;
            drop(f);
            tokio::fs::rename(&tmp, dest).await
        }
        .await;
        if let Err(e) = result {
            let _ = tokio::fs::remove_file(&tmp).await;
            return Err(AwsError::internal(format!(
                "writing {}: {e}",
                dest.display()
            )));
        }
        Ok(info(bucket, &o))
    }

    /// Needs s3:GetObject (s3:GetObjectVersion for a version); the bytes stream from the blob
    /// store as they are read.
    async fn open_object(
        &self,
        ctx: &RequestContext,
        bucket: &str,
        key: &str,
        version_id: Option<&str>,
    ) -> AwsResult<(ObjectInfo, ObjectReader)> {
        let o = self.readable(ctx, bucket, key, version_id).await?;
        let stream = self
            .engine
            .blobs
            .read(&o.blobs, 0..o.size)
            .map_err(std::io::Error::other);
        let reader: ObjectReader = Box::new(tokio_util::io::StreamReader::new(stream));
        Ok((info(bucket, &o), reader))
    }

    /// HeadObject needs s3:GetObject, as on AWS.
    async fn head_object(
        &self,
        ctx: &RequestContext,
        bucket: &str,
        key: &str,
        version_id: Option<&str>,
    ) -> AwsResult<Option<ObjectInfo>> {
        self.authorize_read(ctx, bucket, key, version_id).await?;
        match self.engine.get_version(bucket, key, version_id).await {
            Ok(o) => Ok(Some(info(bucket, &o))),
            Err(e)
                if matches!(
                    e.code().as_str(),
                    "NoSuchKey" | "NoSuchVersion" | "MethodNotAllowed"
                ) =>
            {
                Ok(None)
            }
            Err(e) => Err(aws_error(e)),
        }
    }

    /// ListBuckets needs s3:ListAllMyBuckets; the account's buckets in every region, by name.
    async fn list_buckets(&self, ctx: &RequestContext) -> AwsResult<Vec<BucketSummary>> {
        let request = AccessRequest::new("s3:ListAllMyBuckets", "*");
        authz::authorize(&self.engine, &self.hub, ctx, None, vec![request])
            .await
            .map_err(|d| d.to_error("AccessDenied"))?;
        let mut buckets = self
            .engine
            .list_buckets(&ctx.account)
            .await
            .map_err(aws_error)?;
        buckets.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(buckets
            .into_iter()
            .map(|b| BucketSummary {
                name: b.name,
                region: b.region,
                created: codeyard_core::time::from_epoch_millis(b.created_ms),
            })
            .collect())
    }

    /// ListObjectsV2 needs s3:ListBucket, with the listing's condition keys.
    async fn list_objects(
        &self,
        ctx: &RequestContext,
        bucket: &str,
        query: ObjectListQuery,
    ) -> AwsResult<ObjectListing> {
        let mut request = AccessRequest::new("s3:ListBucket", authz::bucket_arn(bucket));
        if let Some(p) = &query.prefix {
            request = request.with("s3:prefix", p.clone());
        }
        if let Some(d) = &query.delimiter {
            request = request.with("s3:delimiter", d.clone());
        }
        if query.max_keys > 0 {
            request = request.with("s3:max-keys", query.max_keys.to_string());
        }
        self.authorize(ctx, bucket, vec![request]).await?;
        let start = query
            .continuation_token
            .as_deref()
            .map(continuation_key)
            .transpose()?;
        let max = match query.max_keys {
            0 => 1000,
            n => n.min(1000),
        };
        let prefix = query.prefix.unwrap_or_default();
        let l = self
            .engine
            .list_objects(
                bucket,
                &prefix,
                query.delimiter.as_deref(),
                start.as_deref(),
                max,
            )
            .await
            .map_err(aws_error)?;
        let mut out = ObjectListing::default();
        for e in l.entries {
            match e {
                Listed::Object(o) => out.objects.push(ListedObject {
                    etag: format!("\"{}\"", o.etag),
                    last_modified: codeyard_core::time::from_epoch_millis(o.last_modified_ms),
                    size: o.size,
                    key: o.key,
                }),
                Listed::Prefix(p) => out.common_prefixes.push(p),
            }
        }
        if l.truncated {
            out.next_continuation_token = l.last.as_deref().map(engine::continuation_token);
        }
        Ok(out)
    }

    /// What GetBucketVersioning, GetBucketPolicy, GetBucketTagging and
    /// GetBucketNotificationConfiguration answer, each under its own permission (a caller
    /// denied any of them is denied the whole, as Terraform's read of the bucket would be).
    async fn bucket_settings(
        &self,
        ctx: &RequestContext,
        bucket: &str,
    ) -> AwsResult<BucketSettings> {
        let arn = authz::bucket_arn(bucket);
        let requests = [
            "s3:GetBucketVersioning",
            "s3:GetBucketPolicy",
            "s3:GetBucketTagging",
            "s3:GetBucketNotification",
        ]
        .into_iter()
        .map(|a| AccessRequest::new(a, arn.clone()))
        .collect();
        self.authorize(ctx, bucket, requests).await?;
        let b = self.engine.bucket(bucket).await.map_err(aws_error)?;
        Ok(BucketSettings {
            region: b.region.clone(),
            versioning: b.versioning,
            policy: config_text(&b, "policy"),
            tags: stored_tags(&b)?,
            eventbridge_notifications: b.eventbridge,
        })
    }

    /// HeadBucket needs s3:ListBucket.
    async fn bucket_exists(&self, ctx: &RequestContext, bucket: &str) -> AwsResult<bool> {
        let request = codeyard_core::AccessRequest::new("s3:ListBucket", authz::bucket_arn(bucket));
        self.authorize(ctx, bucket, vec![request]).await?;
        match self.engine.bucket(bucket).await {
            Ok(_) => Ok(true),
            Err(e) if e.code().as_str() == "NoSuchBucket" => Ok(false),
            Err(e) => Err(aws_error(e)),
        }
    }
}

/// A configuration sub-resource as stored in the bucket document (XML, or the policy's text).
fn config_text(b: &meta::BucketDoc, key: &str) -> Option<String> {
    b.configs.get(key).cloned()
}

/// The bucket's tag set (its stored PutBucketTagging configuration; none when never set).
fn stored_tags(b: &meta::BucketDoc) -> AwsResult<Vec<(String, String)>> {
    let tagging: Option<s3s::dto::Tagging> = b.config("tagging").map_err(AwsError::internal)?;
    Ok(tagging
        .map(|t| t.tag_set)
        .unwrap_or_default()
        .into_iter()
        .map(|t| (t.key.unwrap_or_default(), t.value.unwrap_or_default()))
        .collect())
}

fn continuation_key(token: &str) -> AwsResult<String> {
    engine::continuation_start(token).ok_or_else(|| {
        AwsError::new(400, "InvalidArgument", "The continuation token provided is incorrect")
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use codeyard_core::{Authorizer, Denied, Hub, IamMode};
    use std::sync::Mutex;

    /// Records every request and refuses one action.
    #[derive(Default)]
    struct Recorder {
        seen: Mutex<Vec<AccessRequest>>,
        deny: Mutex<Option<String>>,
    }

    #[async_trait]
    impl Authorizer for Recorder {
        async fn authorize(&self, _ctx: &RequestContext, r: &AccessRequest) -> Result<(), Denied> {
            self.seen.lock().unwrap().push(r.clone());
            if self.deny.lock().unwrap().as_deref() == Some(r.action.as_str()) {
                return Err(Denied {
                    message: format!("not authorized to perform: {}", r.action),
                    action: r.action.clone(),
                    resource: r.resource.clone(),
                });
            }
            Ok(())
        }
        fn mode(&self) -> IamMode {
            IamMode::Enforce
        }
    }

    /// The object store over a fresh store, with the bucket `bkt` of 000000000000.
    async fn objects(dir: &Path) -> (HubObjects, Arc<Recorder>) {
        let engine = Arc::new(Engine::in_dir(dir).await);
        let hub = Arc::new(Hub::default());
        let recorder = Arc::new(Recorder::default());
        hub.set_authorizer(recorder.clone());
        engine
            .create_bucket("bkt", "000000000000", "eu-west-1", None)
            .await
            .unwrap();
        (HubObjects { engine, hub }, recorder)
    }

    fn ctx(account: &str) -> RequestContext {
        RequestContext::internal(account, "eu-west-1", "http://localhost:4566")
    }

    /// One page of the bucket's listing, asked as 000000000000.
    async fn list(o: &HubObjects, bucket: &str, query: ObjectListQuery) -> AwsResult<ObjectListing> {
        o.list_objects(&ctx("000000000000"), bucket, query).await
    }

    fn keys(listing: &ObjectListing) -> Vec<&str> {
        listing.objects.iter().map(|o| o.key.as_str()).collect()
    }

    async fn put(o: &HubObjects, dir: &Path, bucket: &str, key: &str, body: &str) {
        let src = dir.join("src");
        std::fs::write(&src, body).unwrap();
        o.put_object_file(&ctx("000000000000"), bucket, key, &src, Default::default())
            .await
            .unwrap();
    }

    #[tokio::test]
    async fn listings_page_by_folder_and_ask_for_s3s_permissions() {
        let dir = tempfile::tempdir().unwrap();
        let (o, rec) = objects(dir.path()).await;
        o.engine
            .create_bucket("other-bkt", "111111111111", "us-east-1", None)
            .await
            .unwrap();
        for key in ["a/b.txt", "a/c.txt", "c.txt", "d.txt"] {
            put(&o, dir.path(), "bkt", key, key).await;
        }
        let names: Vec<String> = o
            .list_buckets(&ctx("000000000000"))
            .await
            .unwrap()
            .into_iter()
            .map(|b| b.name)
            .collect();
        assert_eq!(names, ["bkt"], "only the caller's account");
        assert_eq!(
            rec.seen.lock().unwrap().last().unwrap().action,
            "s3:ListAllMyBuckets"
        );
        // Two entries a page: [a/, c.txt], then [d.txt].
        let q = |token: Option<String>| ObjectListQuery {
            prefix: None,
            delimiter: Some("/".into()),
            continuation_token: token,
            max_keys: 2,
        };
        let p1 = list(&o, "bkt", q(None)).await.unwrap();
        assert_eq!(p1.common_prefixes, ["a/"]);
        assert_eq!(keys(&p1), ["c.txt"]);
        assert_eq!(p1.objects[0].etag.len(), 34, "quoted MD5");
        let p2 = list(&o, "bkt", q(p1.next_continuation_token.clone())).await.unwrap();
        assert_eq!(keys(&p2), ["d.txt"]);
        assert!(p2.common_prefixes.is_empty() && p2.next_continuation_token.is_none());
        let r = rec.seen.lock().unwrap().last().unwrap().clone();
        assert_eq!(
            (r.action.as_str(), r.resource.as_str()),
            ("s3:ListBucket", "arn:aws:s3:::bkt")
        );
        assert_eq!(r.context["s3:delimiter"], ["/"]);
        assert_eq!(r.context["s3:max-keys"], ["2"]);
        let inside = ObjectListQuery {
            prefix: Some("a/".into()),
            delimiter: Some("/".into()),
            ..Default::default()
        };
        let a = list(&o, "bkt", inside).await.unwrap();
        assert_eq!(a.objects.len(), 2);
        let bad = ObjectListQuery {
            continuation_token: Some("!!".into()),
            ..Default::default()
        };
        let e = list(&o, "bkt", bad).await.unwrap_err();
        assert_eq!(e.code, "InvalidArgument");
        let e = list(&o, "nope", Default::default()).await.unwrap_err();
        assert_eq!(e.code, "NoSuchBucket");
        // Refused: AccessDenied, nothing listed.
        *rec.deny.lock().unwrap() = Some("s3:ListBucket".into());
        let e = list(&o, "bkt", Default::default()).await.unwrap_err();
        assert_eq!((e.status, e.code.as_str()), (403, "AccessDenied"));
    }

    #[tokio::test]
    async fn settings_and_streamed_reads() {
        let dir = tempfile::tempdir().unwrap();
        let (o, rec) = objects(dir.path()).await;
        let empty = o
            .bucket_settings(&ctx("000000000000"), "bkt")
            .await
            .unwrap();
        assert_eq!(empty.region, "eu-west-1");
        assert!(empty.versioning.is_none() && empty.policy.is_none() && empty.tags.is_empty());
        o.engine.set_versioning("bkt", meta::Versioning::Enabled).await.unwrap();
        let tagging = s3s::dto::Tagging {
            tag_set: vec![s3s::dto::Tag {
                key: Some("team".into()),
                value: Some("console".into()),
            }],
        };
        let mut xml = Vec::new();
        s3s::xml::Serializer::new(&mut xml)
            .content("C", &tagging)
            .unwrap();
        let xml = String::from_utf8(xml).unwrap();
        o.engine
            .set_config("bkt", "tagging", Some(xml))
            .await
            .unwrap();
        o.engine
            .set_config(
                "bkt",
                "policy",
                Some("{\"Statement\":[]}".to_string()),
            )
            .await
            .unwrap();
        let s = o
            .bucket_settings(&ctx("000000000000"), "bkt")
            .await
            .unwrap();
        assert_eq!(s.versioning, Some(meta::Versioning::Enabled));
        assert_eq!(s.tags, [("team".to_string(), "console".to_string())]);
        assert_eq!(s.policy.as_deref(), Some("{\"Statement\":[]}"));
        let asked: Vec<String> = rec
            .seen
            .lock()
            .unwrap()
            .iter()
            .rev()
            .take(4)
            .map(|r| r.action.clone())
            .collect();
        for a in [
            "s3:GetBucketVersioning",
            "s3:GetBucketPolicy",
            "s3:GetBucketTagging",
            "s3:GetBucketNotification",
        ] {
            assert!(asked.contains(&a.to_string()), "{a} not asked: {asked:?}");
        }
        *rec.deny.lock().unwrap() = Some("s3:GetBucketPolicy".into());
        let e = o
            .bucket_settings(&ctx("000000000000"), "bkt")
            .await
            .unwrap_err();
        assert_eq!(e.code, "AccessDenied");
        *rec.deny.lock().unwrap() = None;
        // A streamed read: the bytes, after s3:GetObject.
        let big = "x".repeat(200_000);
        put(&o, dir.path(), "bkt", "big.bin", &big).await;
        let (info, mut reader) = o
            .open_object(&ctx("000000000000"), "bkt", "big.bin", None)
            .await
            .unwrap();
        assert_eq!(info.size, 200_000);
        let mut got = String::new();
        tokio::io::AsyncReadExt::read_to_string(&mut reader, &mut got)
            .await
            .unwrap();
        assert_eq!(got, big);
        assert_eq!(
            rec.seen.lock().unwrap().last().unwrap().action,
            "s3:GetObject"
        );
        *rec.deny.lock().unwrap() = Some("s3:GetObject".into());
        assert!(
            o.open_object(&ctx("000000000000"), "bkt", "big.bin", None)
                .await
                .is_err()
        );
    }
}
