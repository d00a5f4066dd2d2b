//! The S3 browser: buckets, a bucket's objects by "folder" (prefix and `/` delimiter, paged as
//! ListObjectsV2 pages), a bucket's settings, and object downloads streamed from the store.
//! Everything goes through the hub's object store as the session's caller, authorized as the
//! matching S3 call (`s3:ListAllMyBuckets`, `s3:ListBucket`, `s3:GetBucket*`, `s3:GetObject`).

use super::*;
use codeyard_core::hub::ObjectListQuery;

/// Keys per page of the object browser unless `?max=` says otherwise (at most 1,000, as S3).
const PAGE: usize = 100;

pub async fn buckets(State(c): State<Shared>, headers: HeaderMap) -> Response {
    let s = session!(c, headers);
    let objects = ok!(c, s, c.app.platform.hub.objects());
    let buckets = ok!(c, s, objects.list_buckets(&c.context(&s)).await);
    c.page(&s, "buckets.html", "S3 buckets", json!({"buckets": buckets}))
}

#[derive(Deserialize)]
pub struct BucketQuery {
    prefix: Option<String>,
    /// The continuation token of the page to show.
    token: Option<String>,
    max: Option<usize>,
}

/// The "folders" above a prefix, for the breadcrumbs: (name, prefix) from the bucket down.
fn crumbs(prefix: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut at = 0;
    while let Some(i) = prefix[at..].find('/') {
        let end = at + i + 1;
        out.push((prefix[at..end].to_string(), prefix[..end].to_string()));
        at = end;
    }
    out
}

pub async fn bucket(State(c): State<Shared>, Path(bucket): Path<String>, Query(q): Query<BucketQuery>, headers: HeaderMap) -> Response {
    let s = session!(c, headers);
    let objects = ok!(c, s, c.app.platform.hub.objects());
    let prefix = q.prefix.clone().unwrap_or_default();
    let max = q.max.unwrap_or(PAGE).clamp(1, 1000);
    let query = ObjectListQuery { prefix: Some(prefix.clone()).filter(|p| !p.is_empty()), delimiter: Some("/".into()), continuation_token: q.token.clone(), max_keys: max };
    let page = ok!(c, s, objects.list_objects(&c.context(&s), &bucket, query).await);
    let folders: Vec<serde_json::Value> =
        page.common_prefixes.iter().map(|p| json!({"prefix": p, "name": p.strip_prefix(prefix.as_str()).unwrap_or(p)})).collect();
    let files: Vec<serde_json::Value> = page
        .objects
        .iter()
        .map(|o| {
            json!({"key": o.key, "name": o.key.strip_prefix(prefix.as_str()).unwrap_or(&o.key), "size": o.size, "etag": o.etag,
                   "modified": o.last_modified.timestamp()})
        })
        .collect();
    let parent = match prefix.trim_end_matches('/').rfind('/') {
        Some(i) => prefix[..=i].to_string(),
        None => String::new(),
    };
    let data = json!({"bucket": bucket, "prefix": prefix, "parent": parent, "crumbs": crumbs(&prefix), "folders": folders, "files": files,
        "next": page.next_continuation_token, "paged": q.token.is_some(), "max": q.max});
    c.page(&s, "bucket.html", &bucket, data)
}

pub async fn bucket_settings(State(c): State<Shared>, Path(bucket): Path<String>, headers: HeaderMap) -> Response {
    let s = session!(c, headers);
    let objects = ok!(c, s, c.app.platform.hub.objects());
    let settings = ok!(c, s, objects.bucket_settings(&c.context(&s), &bucket).await);
    c.page(&s, "bucket_settings.html", &bucket, json!({"bucket": bucket, "settings": settings}))
}

/// `Content-Disposition` for a download of `key`: its last segment as the file name, in both
/// the plain (ASCII, quotes dropped) and RFC 5987 (`filename*`, UTF-8) forms.
fn disposition(key: &str) -> String {
    let name = key.trim_end_matches('/').rsplit('/').next().filter(|n| !n.is_empty()).unwrap_or("download");
    let ascii: String = name.chars().map(|ch| if ch.is_ascii_graphic() && ch != '"' && ch != '\\' || ch == ' ' { ch } else { '_' }).collect();
    let encoded = percent_encode_attr(name);
    format!("attachment; filename=\"{ascii}\"; filename*=UTF-8''{encoded}")
}

/// RFC 5987 `attr-char` encoding.
fn percent_encode_attr(s: &str) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"!#$&+-.^_`|~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// An object (a build's artifact, a file of the S3 browser) streamed from the object store as
/// the session's caller, as an attachment.
pub async fn download(State(c): State<Shared>, Path((bucket, key)): Path<(String, String)>, headers: HeaderMap) -> Response {
    let s = quiet_session!(c, headers);
    let objects = ok!(c, s, c.app.platform.hub.objects());
    let (info, reader) = ok!(c, s, objects.open_object(&c.context(&s), &bucket, &key, None).await);
    let body = axum::body::Body::from_stream(tokio_util::io::ReaderStream::with_capacity(reader, 256 * 1024));
    (
        [
            (http::header::CONTENT_TYPE, "application/octet-stream".to_string()),
            (http::header::CONTENT_LENGTH, info.size.to_string()),
            (http::header::CONTENT_DISPOSITION, disposition(&key)),
            (http::header::ETAG, info.etag.clone()),
            (http::header::CACHE_CONTROL, "no-store".to_string()),
        ],
        body,
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn breadcrumbs_and_file_names() {
        assert_eq!(crumbs("a/b/"), vec![("a/".to_string(), "a/".to_string()), ("b/".to_string(), "a/b/".to_string())]);
        assert!(crumbs("").is_empty());
        assert_eq!(disposition("a/b.txt"), "attachment; filename=\"b.txt\"; filename*=UTF-8''b.txt");
        assert_eq!(disposition("x/\"ü\".zip"), "attachment; filename=\"___.zip\"; filename*=UTF-8''%22%C3%BC%22.zip");
    }
}
