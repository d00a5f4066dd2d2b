//! Multipart uploads: create, upload parts (from bodies or copies), complete, abort, list.

use super::*;

pub(super) async fn create_multipart_upload(api: &Api, req: S3Request<CreateMultipartUploadInput>) -> R<CreateMultipartUploadOutput> {
    let ctx = ctx_of(&req);
    let i = req.input;
    validate_key(&i.key)?;
    let tags = parse_tagging_header(i.tagging.as_deref())?;
    let b = api.engine.bucket(&i.bucket).await?;
    let requested = requested_of!(i)?;
    let mut headers = headers_of!(i);
    // One data key for the whole upload: the completed object carries it.
    headers.kms = sse::seal(&api.hub, &ctx, &b, &i.key, requested).await?;
    let upload = UploadDoc {
        upload_id: uuid::Uuid::new_v4().simple().to_string(),
        key: i.key.clone(),
        initiated_ms: now_ms(),
        headers,
        metadata: i.metadata.clone().unwrap_or_default().into_iter().collect(),
        tags,
        checksum_algorithm: i
            .checksum_algorithm
            .as_ref()
            .map(|a| a.as_str().to_ascii_uppercase()),
    };
    api.engine.create_upload(&i.bucket, &upload).await?;
    let mut out = CreateMultipartUploadOutput {
        bucket: Some(i.bucket),
        key: Some(i.key),
        checksum_algorithm: i.checksum_algorithm,
        checksum_type: upload
            .checksum_algorithm
            .as_ref()
            .map(|_| ChecksumType::from_static(ChecksumType::COMPOSITE)),
        ..Default::default()
    };
    sse_out!(out, &upload.headers);
    out.upload_id = Some(upload.upload_id);
    ok(out)
}

pub(super) async fn upload_part(
    api: &Api,
    mut req: S3Request<UploadPartInput>,
) -> R<UploadPartOutput> {
    let (bucket, key, upload_id, number) = (
        req.input.bucket.clone(),
        req.input.key.clone(),
        req.input.upload_id.clone(),
        req.input.part_number,
    );
    if !(1..=10_000).contains(&number) {
        return Err(s3err(
            "InvalidArgument",
            400,
            "Part number must be an integer between 1 and 10000, inclusive",
        ));
    }
    let upload = api.engine.upload(&bucket, &key, &upload_id).await?;
    // S3 decrypts the upload's data key to encrypt each part (kms:Decrypt).
    sse::unseal(&api.hub, &ctx_of(&req), upload.headers.kms.as_ref()).await?;
    let (written, checksum) = receive_body!(api, req);
    let part = store_part(api, (&bucket, &key, &upload_id), number, written, checksum).await?;
    let mut out = UploadPartOutput {
        e_tag: Some(etag(&part.etag)),
        ..Default::default()
    };
    sse_out!(out, &upload.headers);
    set_checksums!(out, checksum_dto(part.checksum));
    ok(out)
}

/// Records a written part of an upload (bucket, key, upload id); the blob goes again if the
/// upload is gone.
async fn store_part(
    api: &Api,
    (bucket, key, upload_id): (&str, &str, &str),
    number: i32,
    written: crate::blobs::Written,
    checksum: Option<(String, String)>,
) -> S3Result<PartDoc> {
    let part = PartDoc {
        number,
        blob: written.blob.clone(),
        etag: hex::encode(written.md5),
        last_modified_ms: now_ms(),
        checksum,
    };
    if let Err(e) = api
        .engine
        .put_part(bucket, key, upload_id, part.clone())
        .await
    {
        api.engine.blobs.delete(&[written.blob]).await;
        return Err(e);
    }
    Ok(part)
}

pub(super) async fn upload_part_copy(api: &Api, req: S3Request<UploadPartCopyInput>) -> R<UploadPartCopyOutput> {
    let ctx = ctx_of(&req);
    let i = req.input;
    if !(1..=10_000).contains(&i.part_number) {
        return Err(s3err(
            "InvalidArgument",
            400,
            "Part number must be an integer between 1 and 10000, inclusive",
        ));
    }
    let upload = api.engine.upload(&i.bucket, &i.key, &i.upload_id).await?;
    let src = copy_source_checked!(api, i);
    sse::unseal(&api.hub, &ctx, src.headers.kms.as_ref()).await?;
    sse::unseal(&api.hub, &ctx, upload.headers.kms.as_ref()).await?;
    let range = match &i.copy_source_range {
        Some(r) => {
            let parsed = Range::parse(r).map_err(|_| s3err("InvalidArgument", 400, "The x-amz-copy-source-range value must be of the form bytes=first-last where first and last are the zero-based offsets of the first and last bytes to copy"))?;
            // A copy range must lie inside the source (no clamping, unlike GET).
            let beyond = matches!(parsed, Range::Int { last: Some(last), .. } if last >= src.size);
            if beyond {
                return Err(s3err(
                    "InvalidRange",
                    416,
                    format!(
                        "Range specified is not valid for source object of size: {}",
                        src.size
                    ),
                ));
            }
            Some(parsed.check(src.size).map_err(|_| {
                s3err(
                    "InvalidRange",
                    416,
                    "The requested range is not satisfiable",
                )
            })?)
        }
        None => None,
    };
    let written = api
        .write_copy(&src, range, upload.checksum_algorithm.as_deref())
        .await?;
    let checksum = written_checksum(&written, upload.checksum_algorithm.as_ref());
    let part = store_part(
        api,
        (&i.bucket, &i.key, &i.upload_id),
        i.part_number,
        written,
        checksum,
    )
    .await?;
    let mut result = CopyPartResult {
        e_tag: Some(etag(&part.etag)),
        last_modified: Some(ts(part.last_modified_ms)),
        ..Default::default()
    };
    set_checksums!(result, checksum_dto(part.checksum));
    let mut out = UploadPartCopyOutput {
        copy_part_result: Some(result),
        copy_source_version_id: version_out(&src.version_id),
        ..Default::default()
    };
    sse_out!(out, &upload.headers);
    ok(out)
}

pub(super) async fn complete_multipart_upload(api: &Api, req: S3Request<CompleteMultipartUploadInput>) -> R<CompleteMultipartUploadOutput> {
    let ctx = ctx_of(&req);
    let i = req.input;
    let listed: Vec<(i32, String)> = i
        .multipart_upload
        .as_ref()
        .and_then(|m| m.parts.as_ref())
        .map(|ps| {
            ps.iter()
                .map(|p| {
                    (
                        p.part_number.unwrap_or(0),
                        p.e_tag
                            .as_ref()
                            .map(|e| e.value().to_string())
                            .unwrap_or_default(),
                    )
                })
                .collect()
        })
        .unwrap_or_default();
    // Completing reads the parts back under the upload's data key (kms:Decrypt). A repeated
    // Complete of a finished upload finds no upload here and is answered by the engine.
    if let Ok(upload) = api.engine.upload(&i.bucket, &i.key, &i.upload_id).await {
        sse::unseal(&api.hub, &ctx, upload.headers.kms.as_ref()).await?;
    }
    let o = api
        .engine
        .complete_upload(
            &i.bucket,
            &i.key,
            &i.upload_id,
            &listed,
            Some(&Notice::new("CompleteMultipartUpload", &ctx)),
        )
        .await?;
    let mut out = CompleteMultipartUploadOutput {
        bucket: Some(i.bucket.clone()),
        key: Some(i.key.clone()),
        e_tag: Some(etag(&o.etag)),
        location: Some(format!("{}/{}/{}", ctx.endpoint, i.bucket, i.key)),
        version_id: version_out(&o.version_id),
        ..Default::default()
    };
    sse_out!(out, &o.headers);
    ok(out)
}

pub(super) async fn abort_multipart_upload(api: &Api, req: S3Request<AbortMultipartUploadInput>) -> R<AbortMultipartUploadOutput> {
    let i = req.input;
    api.engine
        .abort_upload(&i.bucket, &i.key, &i.upload_id)
        .await?;
    Ok(S3Response::with_status(
        AbortMultipartUploadOutput {
            request_charged: None,
        },
        http::StatusCode::NO_CONTENT,
    ))
}

pub(super) async fn list_parts(api: &Api, req: S3Request<ListPartsInput>) -> R<ListPartsOutput> {
    let i = req.input;
    let upload = api.engine.upload(&i.bucket, &i.key, &i.upload_id).await?;
    let account = api.engine.bucket(&i.bucket).await?.account;
    let max = i.max_parts.unwrap_or(1000).clamp(0, 1000) as usize;
    let marker = i.part_number_marker.unwrap_or(0);
    let all: Vec<PartDoc> = api
        .engine
        .parts(&i.upload_id)
        .await?
        .into_iter()
        .filter(|p| p.number > marker)
        .collect();
    let truncated = all.len() > max;
    let parts: Vec<Part> = all
        .iter()
        .take(max)
        .map(|p| {
            let mut part = Part {
                part_number: Some(p.number),
                e_tag: Some(etag(&p.etag)),
                size: Some(p.blob.size as i64),
                last_modified: Some(ts(p.last_modified_ms)),
                ..Default::default()
            };
            set_checksums!(part, checksum_dto(p.checksum.clone()));
            part
        })
        .collect();
    let next = if truncated {
        parts.last().and_then(|p| p.part_number)
    } else {
        None
    };
    ok(ListPartsOutput {
        bucket: Some(i.bucket),
        key: Some(i.key),
        upload_id: Some(i.upload_id),
        max_parts: Some(max as i32),
        is_truncated: Some(truncated),
        part_number_marker: i.part_number_marker,
        next_part_number_marker: next,
        parts: (!parts.is_empty()).then_some(parts),
        owner: Some(owner(&account)),
        initiator: Some(initiator(&account)),
        storage_class: Some(StorageClass::from_static(StorageClass::STANDARD)),
        checksum_algorithm: upload.checksum_algorithm.map(ChecksumAlgorithm::from),
        ..Default::default()
    })
}

pub(super) async fn list_multipart_uploads(api: &Api, req: S3Request<ListMultipartUploadsInput>) -> R<ListMultipartUploadsOutput> {
    let i = req.input;
    let url = i
        .encoding_type
        .as_ref()
        .is_some_and(|e| e.as_str() == "url");
    let account = api.engine.bucket(&i.bucket).await?.account;
    let prefix = i.prefix.clone().unwrap_or_default();
    let max = i.max_uploads.unwrap_or(1000).clamp(0, 1000) as usize;
    let mut uploads: Vec<UploadDoc> = api.engine.list_uploads(&i.bucket, &prefix).await?;
    if let Some(km) = &i.key_marker {
        let um = i.upload_id_marker.clone().unwrap_or_default();
        uploads.retain(|u| {
            u.key.as_str() > km.as_str()
                || (u.key == *km && !um.is_empty() && u.upload_id.as_str() > um.as_str())
        });
    }
    let truncated = uploads.len() > max;
    uploads.truncate(max);
    let next_key = if truncated {
        uploads.last().map(|u| u.key.clone())
    } else {
        None
    };
    let next_id = if truncated {
        uploads.last().map(|u| u.upload_id.clone())
    } else {
        None
    };
    let list: Vec<MultipartUpload> = uploads
        .into_iter()
        .map(|u| MultipartUpload {
            key: Some(enc(u.key, url)),
            upload_id: Some(u.upload_id),
            initiated: Some(ts(u.initiated_ms)),
            owner: Some(owner(&account)),
            initiator: Some(initiator(&account)),
            storage_class: Some(StorageClass::from_static(StorageClass::STANDARD)),
            checksum_algorithm: u.checksum_algorithm.map(ChecksumAlgorithm::from),
            ..Default::default()
        })
        .collect();
    ok(ListMultipartUploadsOutput {
        bucket: Some(i.bucket),
        prefix: Some(enc(prefix, url)),
        key_marker: Some(i.key_marker.unwrap_or_default()),
        upload_id_marker: Some(i.upload_id_marker.unwrap_or_default()),
        max_uploads: Some(max as i32),
        is_truncated: Some(truncated),
        next_key_marker: next_key,
        next_upload_id_marker: next_id,
        uploads: (!list.is_empty()).then_some(list),
        delimiter: i.delimiter,
        encoding_type: i.encoding_type,
        ..Default::default()
    })
}
