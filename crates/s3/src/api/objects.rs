//! Single objects: PUT, GET, HEAD, DELETE (one and many) and copy, with conditional requests
//! and ranges.

use super::*;

pub(super) fn stored_headers(
    content_type: Option<String>,
    content_encoding: Option<String>,
    content_disposition: Option<String>,
    content_language: Option<String>,
    cache_control: Option<String>,
    expires: Option<&Timestamp>,
    website_redirect_location: Option<String>,
    storage_class: Option<&StorageClass>,
    acl: Option<&ObjectCannedACL>,
) -> StoredHeaders {
    StoredHeaders {
        content_type,
        // aws-chunked is transfer framing, not the object's encoding.
        content_encoding: content_encoding
            .map(|e| {
                e.split(',')
                    .map(str::trim)
                    .filter(|p| !p.eq_ignore_ascii_case("aws-chunked"))
                    .collect::<Vec<_>>()
                    .join(",")
            })
            .filter(|e| !e.is_empty()),
        content_disposition,
        content_language,
        cache_control,
        expires: expires.map(|t| {
            let mut buf = Vec::new();
            let _ = t.format(TimestampFormat::HttpDate, &mut buf);
            String::from_utf8_lossy(&buf).to_string()
        }),
        website_redirect_location,
        storage_class: storage_class
            .map(|s| s.as_str().to_string())
            .filter(|s| s != "STANDARD"),
        acl: acl.map(|a| a.as_str().to_string()),
        kms: None,
    }
}

/// RFC 7232 evaluation order, as S3 does it: If-Match, then If-Unmodified-Since (ignored when
/// If-Match is present), If-None-Match, then If-Modified-Since (ignored when If-None-Match
/// is present). `not_modified` is the error for a failed If-None-Match/If-Modified-Since
/// (304 for GET/HEAD, 412 for copy sources).
pub(super) fn check_conditions(
    o: &ObjectDoc,
    if_match: Option<&ETagCondition>,
    if_unmodified_since: Option<&Timestamp>,
    if_none_match: Option<&ETagCondition>,
    if_modified_since: Option<&Timestamp>,
    not_modified_is_412: bool,
) -> S3Result<()> {
    let lm = o.last_modified_ms / 1000;
    let matches = |c: &ETagCondition| match c {
        ETagCondition::Any => true,
        ETagCondition::ETag(e) => e.value().trim_matches('"') == o.etag,
    };
    let failed = || {
        s3err(
            "PreconditionFailed",
            412,
            "At least one of the pre-conditions you specified did not hold",
        )
    };
    let not_modified = || {
        if not_modified_is_412 {
            return failed();
        }
        // A 304 still names the representation it refers to.
        let mut e = s3err("NotModified", 304, "Not Modified");
        let mut h = http::HeaderMap::new();
        if let Ok(v) = http::HeaderValue::from_str(&format!("\"{}\"", o.etag)) {
            h.insert(http::header::ETAG, v);
        }
        let mut buf = Vec::new();
        if ts(o.last_modified_ms)
            .format(TimestampFormat::HttpDate, &mut buf)
            .is_ok()
        {
            if let Ok(v) = http::HeaderValue::from_bytes(&buf) {
                h.insert(http::header::LAST_MODIFIED, v);
            }
        }
        e.set_headers(h);
        e
    };
    if let Some(c) = if_match {
        if !matches(c) {
            return Err(failed());
        }
    } else if let Some(t) = if_unmodified_since {
        if lm > ts_secs(t) {
            return Err(failed());
        }
    }
    if let Some(c) = if_none_match {
        if matches(c) {
            return Err(not_modified());
        }
    } else if let Some(t) = if_modified_since {
        if lm <= ts_secs(t) {
            return Err(not_modified());
        }
    }
    Ok(())
}

/// The version a GET or HEAD addresses, its conditions checked, and the range it asks for.
macro_rules! addressed {
    ($api:expr, $i:expr) => {{
        let o = $api
            .engine
            .get_version(&$i.bucket, &$i.key, $i.version_id.as_deref())
            .await?;
        let (m, um) = ($i.if_match.as_ref(), $i.if_unmodified_since.as_ref());
        check_conditions(&o, m, um, $i.if_none_match.as_ref(), $i.if_modified_since.as_ref(), false)?;
        let range = range_of(&o, $i.range.as_ref(), $i.part_number)?;
        (o, range)
    }};
}

/// The representation headers of a PutObject-like input (PutObject, CopyObject with
/// REPLACE, CreateMultipartUpload) as stored.
macro_rules! headers_of {
    ($i:expr) => {
        stored_headers(
            $i.content_type.clone(),
            $i.content_encoding.clone(),
            $i.content_disposition.clone(),
            $i.content_language.clone(),
            $i.cache_control.clone(),
            $i.expires.as_ref(),
            $i.website_redirect_location.clone(),
            $i.storage_class.as_ref(),
            $i.acl.as_ref(),
        )
    };
}
pub(super) use headers_of;

/// The encryption a PutObject-like input (PutObject, CopyObject, CreateMultipartUpload) asks
/// for in its headers ([`sse::requested`]).
macro_rules! requested_of {
    ($i:expr) => {
        sse::requested(
            $i.server_side_encryption.as_ref(),
            $i.ssekms_key_id.as_deref(),
            $i.ssekms_encryption_context.as_deref(),
            $i.bucket_key_enabled,
        )
    };
}
pub(super) use requested_of;

/// The source version of CopyObject or UploadPartCopy, its `x-amz-copy-source-if-*`
/// conditions checked.
macro_rules! copy_source_checked {
    ($api:expr, $i:expr) => {{
        let src = $api.copy_source(&$i.copy_source).await?;
        let (m, um) = ($i.copy_source_if_match.as_ref(), $i.copy_source_if_unmodified_since.as_ref());
        let (nm, ms) = ($i.copy_source_if_none_match.as_ref(), $i.copy_source_if_modified_since.as_ref());
        check_conditions(&src, m, um, nm, ms, true)?;
        src
    }};
}
pub(super) use copy_source_checked;

macro_rules! headers_out {
    ($out:ident, $o:expr) => {
        $out.content_type = $o
            .headers
            .content_type
            .clone()
            .or_else(|| Some("binary/octet-stream".into()));
        $out.content_encoding = $o.headers.content_encoding.clone();
        $out.content_disposition = $o.headers.content_disposition.clone();
        $out.content_language = $o.headers.content_language.clone();
        $out.cache_control = $o.headers.cache_control.clone();
        $out.expires = $o
            .headers
            .expires
            .as_deref()
            .and_then(|e| Timestamp::parse(TimestampFormat::HttpDate, e).ok());
        $out.website_redirect_location = $o.headers.website_redirect_location.clone();
        $out.storage_class = $o.headers.storage_class.clone().map(StorageClass::from);
        $out.e_tag = Some(etag(&$o.etag));
        $out.last_modified = Some(ts($o.last_modified_ms));
        $out.metadata = if $o.metadata.is_empty() {
            None
        } else {
            Some($o.metadata.clone().into_iter().collect())
        };
        $out.version_id = version_out(&$o.version_id);
        $out.parts_count = $o.parts_count;
        $out.accept_ranges = Some("bytes".into());
        sse_out!($out, &$o.headers);
    };
}

/// What GET and HEAD answer alike about the version read: its headers, its checksums (when
/// the request asks for them), the length and, for a range, the `Content-Range`.
macro_rules! representation_out {
    ($out:ident, $o:expr, $range:expr, $checksum_mode:expr) => {
        headers_out!($out, $o);
        let c = match $checksum_mode {
            Some(_) => checksum_out(&$o, $range.is_none()),
            None => Checksum::default(),
        };
        $out.checksum_type = c.checksum_type.clone();
        set_checksums!($out, c);
        match &$range {
            Some(r) => {
                $out.content_length = Some((r.end - r.start) as i64);
                $out.content_range = Some(format!("bytes {}-{}/{}", r.start, r.end.saturating_sub(1), $o.size));
            }
            None => $out.content_length = Some($o.size as i64),
        }
    };
}

pub(super) fn range_of(
    o: &ObjectDoc,
    range: Option<&Range>,
    part_number: Option<i32>,
) -> S3Result<Option<std::ops::Range<u64>>> {
    if let Some(n) = part_number {
        // Part N of a multipart object is the range its blob covers.
        if o.parts_count.is_none() {
            return if n == 1 {
                Ok(None)
            } else {
                Err(s3err(
                    "InvalidPartNumber",
                    416,
                    "The requested partnumber is not satisfiable",
                ))
            };
        }
        let idx = (n as usize)
            .checked_sub(1)
            .filter(|i| *i < o.blobs.len())
            .ok_or_else(|| {
                s3err(
                    "InvalidPartNumber",
                    416,
                    "The requested partnumber is not satisfiable",
                )
            })?;
        let start: u64 = o.blobs[..idx].iter().map(|b| b.size).sum();
        return Ok(Some(start..start + o.blobs[idx].size));
    }
    match range {
        None => Ok(None),
        Some(r) => match r.check(o.size) {
            Ok(r) => Ok(Some(r)),
            Err(_) => Err(s3err(
                "InvalidRange",
                416,
                "The requested range is not satisfiable",
            )),
        },
    }
}

/// The document of an object whose one blob was just written.
fn fresh_object(
    key: String,
    written: &crate::blobs::Written,
    headers: StoredHeaders,
    metadata: BTreeMap<String, String>,
    tags: Vec<(String, String)>,
    checksum: &Option<(String, String)>,
) -> ObjectDoc {
    ObjectDoc {
        key,
        blobs: vec![written.blob.clone()],
        size: written.blob.size,
        etag: hex::encode(written.md5),
        last_modified_ms: now_ms(),
        headers,
        metadata,
        tags,
        checksum: checksum.clone(),
        ..Default::default()
    }
}

impl Api {
    /// Commits a fresh object; when the commit fails its blob is removed again (nothing else
    /// names it).
    async fn commit_fresh(
        &self,
        bucket: &str,
        doc: ObjectDoc,
        notice: &Notice,
    ) -> S3Result<ObjectDoc> {
        let blob = doc.blobs[0].clone();
        let committed = self
            .engine
            .commit_version(bucket, doc, codeyard_store::Batch::new(), Some(notice))
            .await;
        if committed.is_err() {
            self.engine.blobs.delete(&[blob]).await;
        }
        committed
    }
}

pub(super) async fn put_object(api: &Api, req: S3Request<PutObjectInput>) -> R<PutObjectOutput> {
    let ctx = ctx_of(&req);
    let notice = Notice::new("PutObject", &ctx);
    validate_key(&req.input.key)?;
    let b = api.engine.bucket(&req.input.bucket).await?;
    let i = &req.input;
    if i.if_none_match.is_some() || i.if_match.is_some() {
        // Conditional writes: If-None-Match (`*` or an ETag) and If-Match, all 412 when
        // they fail; If-Match on a missing key is NoSuchKey.
        match api.engine.get_version(&b.name, &i.key, None).await.ok() {
            Some(cur) => check_conditions(
                &cur,
                i.if_match.as_ref(),
                None,
                i.if_none_match.as_ref(),
                None,
                true,
            )?,
            None if i.if_match.is_some() => {
                return Err(s3err("NoSuchKey", 404, "The specified key does not exist."));
            }
            None => {}
        }
    }
    let tags = parse_tagging_header(i.tagging.as_deref())?;
    let mut headers = headers_of!(i);
    let metadata: BTreeMap<String, String> =
        i.metadata.clone().unwrap_or_default().into_iter().collect();
    // KMS before the body is read: a write KMS refuses reads nothing.
    headers.kms = sse::seal(&api.hub, &ctx, &b, &i.key, requested_of!(i)?).await?;
    let mut req = req;
    let (written, checksum) = receive_body!(api, req);
    let doc = fresh_object(
        req.input.key.clone(),
        &written,
        headers,
        metadata,
        tags,
        &checksum,
    );
    let stored = api.commit_fresh(&b.name, doc, &notice).await?;
    let mut out = PutObjectOutput {
        e_tag: Some(etag(&stored.etag)),
        version_id: version_out(&stored.version_id),
        checksum_type: stored
            .checksum
            .as_ref()
            .map(|_| ChecksumType::from_static(ChecksumType::FULL_OBJECT)),
        ..Default::default()
    };
    sse_out!(out, &stored.headers);
    set_checksums!(out, checksum_dto(checksum));
    ok(out)
}

pub(super) async fn get_object(api: &Api, req: S3Request<GetObjectInput>) -> R<GetObjectOutput> {
    let ctx = ctx_of(&req);
    let i = req.input;
    let (o, range) = addressed!(api, i);
    sse::unseal(&api.hub, &ctx, o.headers.kms.as_ref()).await?;
    let r = range.clone().unwrap_or(0..o.size);
    let body = ObjectBody::new(api.engine.blobs.read(&o.blobs, r.clone()), r.end - r.start);
    let mut out = GetObjectOutput::default();
    representation_out!(out, o, range, i.checksum_mode);
    out.tag_count = (!o.tags.is_empty()).then_some(o.tags.len() as i32);
    out.body = Some(StreamingBlob::new(body));
    // response-* query parameters override the stored headers.
    out.content_type = i.response_content_type.or(out.content_type);
    out.content_disposition = i.response_content_disposition.or(out.content_disposition);
    out.content_encoding = i.response_content_encoding.or(out.content_encoding);
    out.content_language = i.response_content_language.or(out.content_language);
    out.cache_control = i.response_cache_control.or(out.cache_control);
    out.expires = i.response_expires.or(out.expires);
    ok(out)
}

pub(super) async fn head_object(api: &Api, req: S3Request<HeadObjectInput>) -> R<HeadObjectOutput> {
    let i = req.input;
    let (o, range) = addressed!(api, i);
    let mut out = HeadObjectOutput::default();
    representation_out!(out, o, range, i.checksum_mode);
    let mut headers = http::HeaderMap::new();
    if !o.tags.is_empty() {
        headers.insert("x-amz-tagging-count", http::HeaderValue::from(o.tags.len()));
    }
    Ok(S3Response::with_headers(out, headers))
}

pub(super) async fn delete_object(api: &Api, req: S3Request<DeleteObjectInput>) -> R<DeleteObjectOutput> {
    let notice = Notice::new("DeleteObject", &ctx_of(&req));
    let i = req.input;
    if let Some(m) = &i.if_match {
        let cur = api.engine.get_version(&i.bucket, &i.key, None).await?;
        check_conditions(&cur, Some(m), None, None, None, true)?;
    }
    let d = api
        .engine
        .delete_object(&i.bucket, &i.key, i.version_id.as_deref(), Some(&notice))
        .await?;
    Ok(S3Response::with_status(
        DeleteObjectOutput {
            delete_marker: d.delete_marker.then_some(true),
            // Deleting in a versioned bucket names the version ("null" included), as AWS does.
            version_id: d.version_id,
            request_charged: None,
        },
        http::StatusCode::NO_CONTENT,
    ))
}

pub(super) async fn delete_objects(api: &Api, req: S3Request<DeleteObjectsInput>) -> R<DeleteObjectsOutput> {
    let denied = req.extensions.get::<crate::authz::DeniedKeys>().cloned().unwrap_or_default();
    let notice = Notice::new("DeleteObjects", &ctx_of(&req));
    let i = req.input;
    api.engine.bucket(&i.bucket).await?;
    if i.delete.objects.len() + denied.0.len() > 1000 {
        return Err(malformed_xml());
    }
    let quiet = i.delete.quiet == Some(true);
    let mut deleted = Vec::new();
    // Keys IAM refused (`authz`): S3 reports each as AccessDenied and deletes the others.
    let mut errors: Vec<Error> = denied
        .0
        .into_iter()
        .map(|(key, version_id)| Error {
            code: Some("AccessDenied".into()),
            key: Some(key),
            message: Some("Access Denied".into()),
            version_id,
        })
        .collect();
    for o in i.delete.objects {
        match api
            .engine
            .delete_object(&i.bucket, &o.key, o.version_id.as_deref(), Some(&notice))
            .await
        {
            Ok(d) => {
                if !quiet {
                    let (version_id, marker_version) = match (&o.version_id, d.delete_marker) {
                        (Some(v), _) => (Some(v.clone()), None),
                        (None, true) => (None, d.version_id.clone()),
                        (None, false) => (None, None),
                    };
                    deleted.push(DeletedObject {
                        key: Some(o.key),
                        version_id,
                        delete_marker: d.delete_marker.then_some(true),
                        delete_marker_version_id: marker_version.or_else(|| {
                            if d.delete_marker {
                                o.version_id.clone()
                            } else {
                                None
                            }
                        }),
                    });
                }
            }
            Err(e) => errors.push(Error {
                code: Some(e.code().as_str().to_string()),
                key: Some(o.key),
                message: e.message().map(str::to_string),
                version_id: o.version_id,
            }),
        }
    }
    ok(DeleteObjectsOutput {
        deleted: Some(deleted),
        errors: (!errors.is_empty()).then_some(errors),
        request_charged: None,
    })
}

pub(super) async fn copy_object(api: &Api, req: S3Request<CopyObjectInput>) -> R<CopyObjectOutput> {
    let ctx = ctx_of(&req);
    let notice = Notice::new("CopyObject", &ctx);
    let i = req.input;
    validate_key(&i.key)?;
    let dest_bucket = api.engine.bucket(&i.bucket).await?;
    let src = copy_source_checked!(api, i);
    let requested = requested_of!(i)?;
    let replace = i
        .metadata_directive
        .as_ref()
        .is_some_and(|d| d.as_str() == "REPLACE");
    let replace_tags = i
        .tagging_directive
        .as_ref()
        .is_some_and(|d| d.as_str() == "REPLACE");
    let (src_bucket, src_key) = match &i.copy_source {
        CopySource::Bucket { bucket, key, .. } => (bucket.to_string(), key.to_string()),
        _ => unreachable!("rejected by copy_source"),
    };
    if src_bucket == i.bucket
        && src_key == i.key
        && !replace
        && i.storage_class.is_none()
        && i.website_redirect_location.is_none()
        && requested == sse::Requested::BucketDefault
    {
        return Err(s3err(
            "InvalidRequest",
            400,
            "This copy request is illegal because it is trying to copy an object to itself without changing the object's metadata, storage class, website redirect location or encryption attributes.",
        ));
    }
    // The source's bytes need its key; the copy gets the request's encryption or the
    // destination bucket's default, never the source's.
    sse::unseal(&api.hub, &ctx, src.headers.kms.as_ref()).await?;
    let kms = sse::seal(&api.hub, &ctx, &dest_bucket, &i.key, requested).await?;
    let algo = i
        .checksum_algorithm
        .as_ref()
        .map(|a| a.as_str().to_ascii_uppercase())
        .or_else(|| src.checksum.as_ref().map(|c| c.0.clone()));
    let written = api.write_copy(&src, None, algo.as_deref()).await?;
    let (mut headers, metadata) = if replace {
        (
            headers_of!(i),
            i.metadata.clone().unwrap_or_default().into_iter().collect(),
        )
    } else {
        let mut h = src.headers.clone();
        if let Some(sc) = &i.storage_class {
            h.storage_class = Some(sc.as_str().to_string()).filter(|s| s != "STANDARD");
        }
        if let Some(w) = &i.website_redirect_location {
            h.website_redirect_location = Some(w.clone());
        }
        (h, src.metadata.clone())
    };
    headers.kms = kms;
    let tags = if replace_tags {
        parse_tagging_header(i.tagging.as_deref())?
    } else {
        src.tags.clone()
    };
    let checksum = written_checksum(&written, algo.as_ref());
    let doc = fresh_object(i.key.clone(), &written, headers, metadata, tags, &checksum);
    let stored = api.commit_fresh(&i.bucket, doc, &notice).await?;
    let mut result = CopyObjectResult {
        e_tag: Some(etag(&stored.etag)),
        last_modified: Some(ts(stored.last_modified_ms)),
        checksum_type: stored
            .checksum
            .as_ref()
            .map(|_| ChecksumType::from_static(ChecksumType::FULL_OBJECT)),
        ..Default::default()
    };
    set_checksums!(result, checksum_dto(checksum));
    let mut out = CopyObjectOutput {
        copy_object_result: Some(result),
        copy_source_version_id: version_out(&src.version_id),
        version_id: version_out(&stored.version_id),
        ..Default::default()
    };
    sse_out!(out, &stored.headers);
    ok(out)
}
