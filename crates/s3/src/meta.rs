//! The metadata S3 keeps in the state store, and where.
//!
//! Bucket names are global in S3 (one namespace across accounts and regions), so buckets live
//! in `s3/global/buckets`. Per bucket:
//!
//! * `s3/objects/<bucket>`: the newest version of every key (possibly a delete marker), keyed by
//!   object key: what GET/HEAD/ListObjects read.
//! * `s3/versions/<bucket>`: every version (only for buckets whose versioning was ever turned
//!   on), keyed `<key>\u{1}<rev>` where `rev` sorts newest first, so one listing gives
//!   ListObjectVersions' order (key ascending, newest version first).
//! * `s3/uploads/<bucket>`: multipart uploads in progress (`<key>\u{1}<upload id>`), and
//!   `s3/parts/<upload id>`: their parts by zero-padded number.

use crate::blobs::BlobRef;
pub use codeyard_core::hub::Versioning;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

pub const BUCKETS_NS: &str = "s3/global/buckets";
/// Separates an object key from a version or upload id in document keys; sorts before every
/// printable character so all entries of key `a` come before those of `a0` or `a/`.
pub const SEP: char = '\u{1}';

pub fn objects_ns(bucket: &str) -> String {
    format!("s3/objects/{bucket}")
}
pub fn versions_ns(bucket: &str) -> String {
    format!("s3/versions/{bucket}")
}
pub fn uploads_ns(bucket: &str) -> String {
    format!("s3/uploads/{bucket}")
}
pub fn parts_ns(upload_id: &str) -> String {
    format!("s3/parts/{upload_id}")
}

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct BucketDoc {
    pub name: String,
    pub account: String,
    pub region: String,
    /// Epoch milliseconds.
    pub created_ms: i64,
    /// `None`: never enabled.
    #[serde(default)]
    pub versioning: Option<Versioning>,
    /// Sub-resource configurations as put (`tagging`, `cors`, `lifecycle`, ...): the XML s3s
    /// writes for the DTO; `policy` as the policy text, `canned-acl` as the ACL's name.
    #[serde(default)]
    pub configs: BTreeMap<String, String>,
    /// Whether object changes are sent to EventBridge (the notification configuration's
    /// `EventBridgeConfiguration`).
    #[serde(default)]
    pub eventbridge: bool,
}

impl BucketDoc {
    /// The stored configuration `key` read back into its s3s DTO (the XML PutBucketX stored,
    /// rooted at `<C>`), if the bucket has one; an error names the configuration that does not
    /// read.
    pub fn config<T: for<'x> s3s::xml::DeserializeContent<'x>>(&self, key: &str) -> Result<Option<T>, String> {
        let Some(xml) = self.configs.get(key) else {
            return Ok(None);
        };
        let mut d = s3s::xml::Deserializer::new(xml.as_bytes());
        d.named_element("C", |d| d.content())
            .map(Some)
            .map_err(|e| format!("stored {key} of bucket {}: {e:?}", self.name))
    }
}

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct ObjectDoc {
    pub key: String,
    /// "null" for versions written while versioning was off or suspended.
    pub version_id: String,
    /// Orders versions of a key (nanoseconds, unique within the process).
    pub seq: u64,
    #[serde(default)]
    pub delete_marker: bool,
    #[serde(default)]
    pub blobs: Vec<BlobRef>,
    pub size: u64,
    /// Without quotes.
    pub etag: String,
    pub last_modified_ms: i64,
    #[serde(default)]
    pub headers: StoredHeaders,
    #[serde(default)]
    pub metadata: BTreeMap<String, String>,
    #[serde(default)]
    pub tags: Vec<(String, String)>,
    /// (algorithm, base64 value) of a whole-object checksum the client asked for.
    #[serde(default)]
    pub checksum: Option<(String, String)>,
    #[serde(default)]
    pub parts_count: Option<i32>,
    /// Whether a copy of this version is in the versions namespace.
    #[serde(default)]
    pub archived: bool,
    /// The multipart upload that produced this version (a repeated Complete of the same
    /// upload answers with it, as AWS does).
    #[serde(default)]
    pub upload_id: Option<String>,
}

/// The representation headers stored with an object and returned on GET/HEAD.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
pub struct StoredHeaders {
    pub content_type: Option<String>,
    pub content_encoding: Option<String>,
    pub content_disposition: Option<String>,
    pub content_language: Option<String>,
    pub cache_control: Option<String>,
    pub expires: Option<String>,
    pub website_redirect_location: Option<String>,
    pub storage_class: Option<String>,
    pub acl: Option<String>,
    /// SSE-KMS's key and sealed data key; `None` is SSE-S3 ([`crate::sse`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kms: Option<KmsSealed>,
}

/// The KMS side of an SSE-KMS object or multipart upload ([`crate::sse`] seals and checks it).
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
pub struct KmsSealed {
    /// The KMS key's ARN (what `x-amz-server-side-encryption-aws-kms-key-id` answers).
    pub key_arn: String,
    /// The data key as KMS sealed it (base64 of the ciphertext blob).
    pub data_key: String,
    /// The encryption context the data key is bound to.
    pub context: BTreeMap<String, String>,
    pub bucket_key_enabled: bool,
}

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct UploadDoc {
    pub upload_id: String,
    pub key: String,
    pub initiated_ms: i64,
    pub headers: StoredHeaders,
    pub metadata: BTreeMap<String, String>,
    pub tags: Vec<(String, String)>,
    pub checksum_algorithm: Option<String>,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct PartDoc {
    pub number: i32,
    pub blob: BlobRef,
    /// Without quotes.
    pub etag: String,
    pub last_modified_ms: i64,
    #[serde(default)]
    pub checksum: Option<(String, String)>,
}

pub fn version_doc_key(key: &str, seq: u64) -> String {
    format!("{key}{SEP}{:016x}", u64::MAX - seq)
}

pub fn upload_doc_key(key: &str, upload_id: &str) -> String {
    format!("{key}{SEP}{upload_id}")
}

/// A fresh version id that also encodes the version's position: the first 16 characters are
/// the `rev` of [`version_doc_key`], so GET by version id is one document read.
pub fn new_version_id(seq: u64) -> String {
    let r: u32 = rand_u32();
    format!("{:016x}{r:08x}", u64::MAX - seq)
}

/// The document key of a (non-null) version id, if it is one of ours.
pub fn version_doc_key_for_id(key: &str, version_id: &str) -> Option<String> {
    let rev = version_id.get(..16)?;
    if version_id.len() != 24 || !version_id.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    Some(format!("{key}{SEP}{rev}"))
}

fn rand_u32() -> u32 {
    let u = uuid::Uuid::new_v4();
    u32::from_le_bytes(u.as_bytes()[..4].try_into().unwrap())
}

/// Monotonic sequence numbers for versions: wall-clock nanoseconds, bumped so that two writes
/// in one process never share one.
pub fn next_seq() -> u64 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static LAST: AtomicU64 = AtomicU64::new(0);
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64;
    let mut prev = LAST.load(Ordering::Relaxed);
    loop {
        let next = now.max(prev + 1);
        match LAST.compare_exchange(prev, next, Ordering::SeqCst, Ordering::Relaxed) {
            Ok(_) => return next,
            Err(p) => prev = p,
        }
    }
}

pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}

/// A bucket's ARN (IAM resources, event resources).
pub fn bucket_arn(bucket: &str) -> String {
    format!("arn:aws:s3:::{bucket}")
}

/// An object's ARN.
pub fn object_arn(bucket: &str, key: &str) -> String {
    format!("arn:aws:s3:::{bucket}/{key}")
}
