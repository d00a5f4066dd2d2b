//! Object tags: the `x-amz-tagging` header, the tagging sub-resource, and the limits AWS
//! enforces on both (bucket tags are a configuration sub-resource, see [`super::config`]).

use super::*;

pub(super) fn parse_tagging_header(h: Option<&str>) -> S3Result<Vec<(String, String)>> {
    let Some(h) = h else { return Ok(Vec::new()) };
    let tags: Vec<(String, String)> = url::form_urlencoded::parse(h.as_bytes())
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    validate_tags(&tags)?;
    Ok(tags)
}

pub(super) fn validate_tags(tags: &[(String, String)]) -> S3Result<()> {
    if tags.len() > 10 {
        return Err(s3err(
            "InvalidTag",
            400,
            "Object tags cannot be greater than 10",
        ));
    }
    let mut seen = std::collections::HashSet::new();
    for (k, v) in tags {
        if k.is_empty() || k.chars().count() > 128 || v.chars().count() > 256 {
            return Err(s3err(
                "InvalidTag",
                400,
                "The TagKey you have provided is invalid",
            ));
        }
        if !seen.insert(k) {
            return Err(s3err(
                "InvalidTag",
                400,
                "Cannot provide multiple Tags with the same key",
            ));
        }
    }
    Ok(())
}

pub(super) fn tag_set(tags: &[(String, String)]) -> TagSet {
    tags.iter()
        .map(|(k, v)| Tag {
            key: Some(k.clone()),
            value: Some(v.clone()),
        })
        .collect()
}

pub(super) fn from_tag_set(t: &TagSet) -> Vec<(String, String)> {
    t.iter()
        .map(|t| {
            (
                t.key.clone().unwrap_or_default(),
                t.value.clone().unwrap_or_default(),
            )
        })
        .collect()
}

pub(super) async fn get_object_tagging(api: &Api, req: S3Request<GetObjectTaggingInput>) -> R<GetObjectTaggingOutput> {
    let i = req.input;
    let o = api
        .engine
        .get_version(&i.bucket, &i.key, i.version_id.as_deref())
        .await?;
    ok(GetObjectTaggingOutput {
        tag_set: tag_set(&o.tags),
        version_id: version_out(&o.version_id),
    })
}

pub(super) async fn put_object_tagging(api: &Api, req: S3Request<PutObjectTaggingInput>) -> R<PutObjectTaggingOutput> {
    let i = req.input;
    let tags = from_tag_set(&i.tagging.tag_set);
    validate_tags(&tags)?;
    let o = api
        .engine
        .set_tags(&i.bucket, &i.key, i.version_id.as_deref(), tags)
        .await?;
    ok(PutObjectTaggingOutput {
        version_id: version_out(&o.version_id),
    })
}

pub(super) async fn delete_object_tagging(api: &Api, req: S3Request<DeleteObjectTaggingInput>) -> R<DeleteObjectTaggingOutput> {
    let i = req.input;
    let o = api
        .engine
        .set_tags(&i.bucket, &i.key, i.version_id.as_deref(), Vec::new())
        .await?;
    Ok(S3Response::with_status(
        DeleteObjectTaggingOutput {
            version_id: version_out(&o.version_id),
        },
        http::StatusCode::NO_CONTENT,
    ))
}
