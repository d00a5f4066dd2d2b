//! Object listings: ListObjectsV2, ListObjects (v1) and ListObjectVersions, keys URL-encoded
//! when the client asks for it.

use super::*;

/// What every listing request says alike: (URL-encode keys, at most how many, the prefix).
macro_rules! listing_params {
    ($i:expr) => {
        (
            $i.encoding_type
                .as_ref()
                .is_some_and(|e| e.as_str() == "url"),
            $i.max_keys.unwrap_or(1000).clamp(0, 1000) as usize,
            $i.prefix.clone().unwrap_or_default(),
        )
    };
}

/// A listing's output: the members given, then those every listing fills alike from the
/// input `i`, the engine's page `l` and the common prefixes `cps`.
macro_rules! listing_output {
    ($out:ident { $($member:ident: $value:expr,)* } from $i:expr, $l:expr, $cps:expr, $url:expr, $max:expr) => {
        $out {
            $($member: $value,)*
            name: Some($i.bucket),
            max_keys: Some($max as i32),
            is_truncated: Some($l.truncated),
            common_prefixes: nonempty($cps),
            delimiter: $i.delimiter.filter(|d| !d.is_empty()).map(|d| enc(d, $url)),
            encoding_type: $i.encoding_type,
            request_charged: None,
        }
    };
}

/// `None` for an empty list: S3 leaves the element out.
fn nonempty<T>(v: Vec<T>) -> Option<Vec<T>> {
    (!v.is_empty()).then_some(v)
}

/// The objects and common prefixes of a ListObjects(V2) page, with `account` as the owner
/// when the listing shows one.
fn objects_and_prefixes(
    entries: Vec<Listed>,
    url: bool,
    account: Option<&str>,
) -> (Vec<Object>, Vec<CommonPrefix>) {
    let mut contents = Vec::new();
    let mut cps = Vec::new();
    for e in entries {
        match e {
            Listed::Object(o) => contents.push(Object {
                key: Some(enc(o.key, url)),
                e_tag: Some(etag(&o.etag)),
                last_modified: Some(ts(o.last_modified_ms)),
                size: Some(o.size as i64),
                storage_class: Some(ObjectStorageClass::from(
                    o.headers.storage_class.unwrap_or_else(|| "STANDARD".into()),
                )),
                owner: account.map(owner),
                checksum_algorithm: o.checksum.map(|(a, _)| vec![ChecksumAlgorithm::from(a)]),
                ..Default::default()
            }),
            Listed::Prefix(p) => cps.push(CommonPrefix {
                prefix: Some(enc(p, url)),
            }),
        }
    }
    (contents, cps)
}

pub(super) async fn list_objects_v2(api: &Api, req: S3Request<ListObjectsV2Input>) -> R<ListObjectsV2Output> {
    let i = req.input;
    let (url, max, prefix) = listing_params!(i);
    let token_key = match &i.continuation_token {
        Some(t) => Some(crate::engine::continuation_start(t).ok_or_else(|| {
            s3err("InvalidArgument", 400, "The continuation token provided is incorrect")
        })?),
        None => None,
    };
    let start = match (&token_key, &i.start_after) {
        (Some(t), _) => Some(t.clone()),
        (None, Some(s)) => Some(s.clone()),
        _ => None,
    };
    let l = api.engine.list_objects(&i.bucket, &prefix, i.delimiter.as_deref(), start.as_deref(), max).await?;
    let account = if i.fetch_owner.unwrap_or(false) {
        Some(api.engine.bucket(&i.bucket).await?.account)
    } else {
        None
    };
    let (contents, cps) = objects_and_prefixes(l.entries, url, account.as_deref());
    let key_count = (contents.len() + cps.len()) as i32;
    let next = l.last.as_ref().filter(|_| l.truncated);
    ok(listing_output!(ListObjectsV2Output {
        prefix: Some(enc(prefix, url)),
        key_count: Some(key_count),
        continuation_token: i.continuation_token,
        next_continuation_token: next.map(|k| crate::engine::continuation_token(k)),
        contents: nonempty(contents),
        start_after: i.start_after.map(|s| enc(s, url)),
    } from i, l, cps, url, max))
}

pub(super) async fn list_objects(api: &Api, req: S3Request<ListObjectsInput>) -> R<ListObjectsOutput> {
    let i = req.input;
    let (url, max, prefix) = listing_params!(i);
    let l = api.engine.list_objects(&i.bucket, &prefix, i.delimiter.as_deref(), i.marker.as_deref(), max).await?;
    let account = api.engine.bucket(&i.bucket).await?.account;
    let (contents, cps) = objects_and_prefixes(l.entries, url, Some(&account));
    let next = l.last.clone().filter(|_| l.truncated && i.delimiter.is_some());
    ok(listing_output!(ListObjectsOutput {
        prefix: Some(prefix),
        marker: Some(enc(i.marker.unwrap_or_default(), url)),
        next_marker: next.map(|k| enc(k, url)),
        contents: nonempty(contents),
    } from i, l, cps, url, max))
}

pub(super) async fn list_object_versions(api: &Api, req: S3Request<ListObjectVersionsInput>) -> R<ListObjectVersionsOutput> {
    let i = req.input;
    let (url, max, prefix) = listing_params!(i);
    let account = api.engine.bucket(&i.bucket).await?.account;
    let (l, _) = api
        .engine
        .list_versions(
            &i.bucket,
            &prefix,
            i.delimiter.as_deref(),
            i.key_marker.as_deref(),
            i.version_id_marker.as_deref(),
            max,
        )
        .await?;
    let mut versions = Vec::new();
    let mut markers = Vec::new();
    let mut cps = Vec::new();
    let mut last_key: Option<String> = i
        .key_marker
        .clone()
        .filter(|_| i.version_id_marker.is_some());
    let mut next_version: Option<String> = None;
    for e in l.entries {
        match e {
            Listed::Object(o) => {
                let is_latest = last_key.as_deref() != Some(o.key.as_str());
                last_key = Some(o.key.clone());
                next_version = Some(o.version_id.clone());
                if o.delete_marker {
                    markers.push(DeleteMarkerEntry {
                        is_latest: Some(is_latest),
                        key: Some(enc(o.key, url)),
                        last_modified: Some(ts(o.last_modified_ms)),
                        owner: Some(owner(&account)),
                        version_id: Some(o.version_id),
                    });
                } else {
                    versions.push(ObjectVersion {
                        is_latest: Some(is_latest),
                        key: Some(enc(o.key, url)),
                        last_modified: Some(ts(o.last_modified_ms)),
                        owner: Some(owner(&account)),
                        version_id: Some(o.version_id),
                        e_tag: Some(etag(&o.etag)),
                        size: Some(o.size as i64),
                        storage_class: Some(ObjectVersionStorageClass::from_static(
                            ObjectVersionStorageClass::STANDARD,
                        )),
                        checksum_algorithm: o
                            .checksum
                            .map(|(a, _)| vec![ChecksumAlgorithm::from(a)]),
                        ..Default::default()
                    });
                }
            }
            Listed::Prefix(p) => {
                next_version = None;
                cps.push(CommonPrefix {
                    prefix: Some(enc(p, url)),
                })
            }
        }
    }
    let next_key = l.last.clone().filter(|_| l.truncated);
    ok(listing_output!(ListObjectVersionsOutput {
        prefix: Some(enc(prefix, url)),
        key_marker: Some(enc(i.key_marker.unwrap_or_default(), url)),
        version_id_marker: Some(i.version_id_marker.unwrap_or_default()),
        next_key_marker: next_key.map(|k| enc(k, url)),
        next_version_id_marker: next_version.filter(|_| l.truncated),
        versions: nonempty(versions),
        delete_markers: nonempty(markers),
    } from i, l, cps, url, max))
}
