//! Buckets themselves: create, head, delete, list, location and versioning.

use super::*;

pub(super) async fn create_bucket(api: &Api, req: S3Request<CreateBucketInput>) -> R<CreateBucketOutput> {
    let ctx = ctx_of(&req);
    let i = req.input;
    let region = i
        .create_bucket_configuration
        .as_ref()
        .and_then(|c| c.location_constraint.as_ref())
        .map(|l| l.as_str().to_string())
        .filter(|l| !l.is_empty())
        .unwrap_or_else(|| ctx.region.clone());
    let region = if region == "EU" {
        "eu-west-1".to_string()
    } else {
        region
    };
    api.engine
        .create_bucket(
            &i.bucket,
            &ctx.account,
            &region,
            i.acl.map(|a| a.as_str().to_string()),
        )
        .await?;
    if i.object_lock_enabled_for_bucket == Some(true) {
        api.engine.set_versioning(&i.bucket, Versioning::Enabled).await?;
        let cfg = ObjectLockConfiguration {
            object_lock_enabled: Some(ObjectLockEnabled::from_static(ObjectLockEnabled::ENABLED)),
            rule: None,
        };
        api.store_config(&i.bucket, SubResource::ObjectLock, &cfg)
            .await?;
    }
    if let Some(o) = i.object_ownership {
        let cfg = OwnershipControls {
            rules: vec![OwnershipControlsRule {
                object_ownership: o,
            }],
        };
        api.store_config(&i.bucket, SubResource::OwnershipControls, &cfg)
            .await?;
    }
    ok(CreateBucketOutput {
        location: Some(format!("/{}", i.bucket)),
        ..Default::default()
    })
}

pub(super) async fn head_bucket(api: &Api, req: S3Request<HeadBucketInput>) -> R<HeadBucketOutput> {
    let b = api.engine.bucket(&req.input.bucket).await?;
    ok(HeadBucketOutput {
        bucket_region: Some(b.region),
        ..Default::default()
    })
}

pub(super) async fn delete_bucket(api: &Api, req: S3Request<DeleteBucketInput>) -> R<DeleteBucketOutput> {
    api.engine.delete_bucket(&req.input.bucket).await?;
    ok(DeleteBucketOutput {})
}

pub(super) async fn list_buckets(api: &Api, req: S3Request<ListBucketsInput>) -> R<ListBucketsOutput> {
    let ctx = ctx_of(&req);
    let prefix = req.input.prefix.clone().unwrap_or_default();
    let buckets: Vec<Bucket> = api
        .engine
        .list_buckets(&ctx.account)
        .await?
        .into_iter()
        .filter(|b| b.name.starts_with(&prefix))
        .filter(|b| {
            req.input
                .bucket_region
                .as_ref()
                .is_none_or(|r| *r == b.region)
        })
        .map(|b| Bucket {
            name: Some(b.name),
            creation_date: Some(ts(b.created_ms)),
            bucket_region: Some(b.region),
        })
        .collect();
    ok(ListBucketsOutput {
        buckets: Some(buckets),
        owner: Some(owner(&ctx.account)),
        prefix: req.input.prefix,
        continuation_token: None,
    })
}

pub(super) async fn get_bucket_location(api: &Api, req: S3Request<GetBucketLocationInput>) -> R<GetBucketLocationOutput> {
    let b = api.engine.bucket(&req.input.bucket).await?;
    // us-east-1 is the empty LocationConstraint, as in AWS.
    let lc = (b.region != "us-east-1").then(|| BucketLocationConstraint::from(b.region));
    ok(GetBucketLocationOutput {
        location_constraint: lc,
    })
}

pub(super) async fn put_bucket_versioning(api: &Api, req: S3Request<PutBucketVersioningInput>) -> R<PutBucketVersioningOutput> {
    let status = req
        .input
        .versioning_configuration
        .status
        .as_ref()
        .and_then(|s| Versioning::parse(s.as_str()))
        .ok_or_else(malformed_xml)?;
    api.engine
        .set_versioning(&req.input.bucket, status)
        .await?;
    ok(PutBucketVersioningOutput {})
}

pub(super) async fn get_bucket_versioning(api: &Api, req: S3Request<GetBucketVersioningInput>) -> R<GetBucketVersioningOutput> {
    let b = api.engine.bucket(&req.input.bucket).await?;
    ok(GetBucketVersioningOutput {
        status: b.versioning.map(|v| BucketVersioningStatus::from(v.as_str().to_string())),
        mfa_delete: None,
    })
}
