//! Object bytes: immutable blobs with unique names, in the state store when small, written
//! through `object_store` otherwise.
//!
//! **Small bodies (up to [`INLINE_LIMIT`]) live in the state store** ([`Batch::put_bytes`], the
//! `bytes` table beside the documents), committed in the same group commit as the metadata that
//! names them: no file is created, renamed, fsynced or unlinked for them, and the store's own
//! transaction makes "never partial, never lost once acknowledged" hold (with `--durability
//! power` too, through the group commit's fsync). [`write`](BlobStore::write) hands such a blob
//! back as pending ([`BlobRef::pending`]); the engine stages it into the commit that names it
//! ([`BlobStore::stage`]) and removes a replaced one in that same commit
//! ([`BlobStore::drop_in`]). Why 64 KiB: below it, a body is a handful of SQLite overflow pages
//! appended to the WAL with the commit the request pays anyway, while a file costs an inode
//! allocation, a rename and later an unlink (on this disk's journal-less ext4 the allocation
//! scans recently freed inodes: 15-35 % of PutObject's CPU); above it, a body would hold the one
//! writer thread for the copy of a large row, be written twice (WAL, then checkpoint) and fill
//! the WAL quickly, which a file's single write and rename do not.
//!
//! **Larger bodies** are files. Every object version (and every multipart part) gets its own blob `blobs/<uuid>`; a blob is
//! never overwritten, so a reader can never see a half-replaced object. A blob only becomes
//! part of S3's visible state when the metadata that names it is committed to the state store,
//! which happens after the blob is in place (LocalFileSystem: staging file, rename). How far
//! "in place" goes follows the server's durability (`codeyard_store::files`): by default the
//! rename is enough (a killed server loses nothing acknowledged, and no write pays an fsync);
//! with `--durability power` the file and its directory are fsynced before the metadata commit,
//! so a power loss cannot lose an acknowledged object either. Anything in `blobs/` that no metadata names (a crash
//! between the two steps, a staging file of a killed upload) is removed at start-up by
//! [`BlobStore::collect_garbage`].

use bytes::Bytes;
use codeyard_store::{Batch, SharedStore};
use futures::{Stream, StreamExt, TryStreamExt, stream::BoxStream};
use object_store::{
    ObjectStore, ObjectStoreExt, PutPayload, WriteMultipart, path::Path as StorePath,
};
use s3s::checksum::ChecksumHasher;
use serde::{Deserialize, Serialize};
use std::collections::HashSet;
use std::path::PathBuf;
use std::sync::Arc;

type StdError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// One stored run of bytes (an object is one blob, or one per part after a multipart upload).
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct BlobRef {
    pub name: String,
    pub size: u64,
    /// In the state store ([`INLINE_NS`]) rather than a file.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub inline: bool,
    /// The bytes of an inline blob that no commit holds yet: [`BlobStore::stage`] puts them in
    /// the commit that names the blob. Never serialized.
    #[serde(skip)]
    pub pending: Option<Bytes>,
}

/// Bodies up to this size are kept in the state store (see the module documentation).
pub const INLINE_LIMIT: usize = 64 * 1024;

/// The state store namespace of inline bodies (bytes, keyed by blob name).
pub const INLINE_NS: &str = "s3/bodies";

/// What writing a body produced.
pub struct Written {
    pub blob: BlobRef,
    pub md5: [u8; 16],
    pub checksum: s3s::dto::Checksum,
}

/// Bodies up to this size are written with one `put`; larger ones stream as a multipart write.
const SINGLE_PUT_LIMIT: usize = 8 * 1024 * 1024;

pub struct BlobStore {
    /// The state store: small bodies.
    state: SharedStore,
    store: Arc<dyn ObjectStore>,
    /// The directory of the local backend (None for a remote S3-compatible backend).
    local_root: Option<PathBuf>,
    /// Group fsync of `blobs/` for `--durability power`: concurrent small writes share it.
    dir_sync: Option<codeyard_store::files::DirSync>,
}

#[derive(Debug)]
pub enum BlobError {
    /// The client's body failed (disconnect, bad aws-chunked framing, signature).
    Body(String),
    Store(String),
}

impl std::error::Error for BlobError {}

impl std::fmt::Display for BlobError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            BlobError::Body(e) => write!(f, "reading the request body: {e}"),
            BlobError::Store(e) => write!(f, "object storage: {e}"),
        }
    }
}

impl BlobStore {
    /// The backend chosen by configuration: `CODEYARD_S3_BACKEND=s3://bucket[/prefix]` (with
    /// the usual `AWS_*` variables for its endpoint and credentials) stores bytes in any
    /// S3-compatible service; otherwise the local filesystem under `<data_dir>/s3`.
    pub fn open(data_dir: &std::path::Path, state: SharedStore) -> anyhow::Result<BlobStore> {
        if let Ok(url) = std::env::var("CODEYARD_S3_BACKEND") {
            if let Some(rest) = url.strip_prefix("s3://") {
                let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
                let s3 = object_store::aws::AmazonS3Builder::from_env()
                    .with_bucket_name(bucket)
                    .build()?;
                let store: Arc<dyn ObjectStore> = if prefix.is_empty() {
                    Arc::new(s3)
                } else {
                    Arc::new(object_store::prefix::PrefixStore::new(
                        s3,
                        prefix.trim_end_matches('/'),
                    ))
                };
                return Ok(BlobStore {
                    state,
                    store,
                    local_root: None,
                    dir_sync: None,
                });
            }
            anyhow::bail!("CODEYARD_S3_BACKEND must be s3://bucket[/prefix], not {url}");
        }
        let root = data_dir.join("s3");
        std::fs::create_dir_all(root.join("blobs"))?;
        let fs = object_store::local::LocalFileSystem::new_with_prefix(&root)?
            .with_fsync(codeyard_store::files::fsync_files());
        // LocalFileSystem streams reads in 8 KiB pieces (one blocking task each); 1 MiB pieces
        // make GET several times faster.
        let chunked = object_store::chunked::ChunkedStore::new(Arc::new(fs), 1024 * 1024);
        Ok(BlobStore {
            state,
            store: Arc::new(chunked),
            dir_sync: Some(codeyard_store::files::DirSync::new(root.join("blobs"))),
            local_root: Some(root),
        })
    }

    fn path(name: &str) -> StorePath {
        StorePath::from(format!("blobs/{name}"))
    }

    /// Streams a body into a new blob, hashing it on the way (MD5 for the ETag, plus whatever
    /// checksums `hasher` has switched on). A file blob is durable when this returns; an
    /// inline one (up to [`INLINE_LIMIT`]) is pending until the commit that names it.
    pub async fn write<S, E>(
        &self,
        body: S,
        mut hasher: ChecksumHasher,
    ) -> Result<Written, BlobError>
    where
        S: Stream<Item = Result<Bytes, E>> + Send,
        E: std::fmt::Display,
    {
        use md5::Digest;
        let name = uuid::Uuid::new_v4().simple().to_string();
        let path = Self::path(&name);
        let mut md5 = md5::Md5::new();
        let mut size = 0u64;
        let mut body = std::pin::pin!(body);
        let mut first: Vec<Bytes> = Vec::new();
        let mut buffered = 0usize;
        let mut writer: Option<WriteMultipart> = None;
        while let Some(chunk) = body.next().await {
            let chunk = match chunk {
                Ok(c) => c,
                Err(e) => {
                    if let Some(w) = writer {
                        let _ = w.abort().await;
                    }
                    return Err(BlobError::Body(e.to_string()));
                }
            };
            md5.update(&chunk);
            hasher.update(&chunk);
            size += chunk.len() as u64;
            match writer.as_mut() {
                Some(w) => {
                    w.wait_for_capacity(4)
                        .await
                        .map_err(|e| BlobError::Store(e.to_string()))?;
                    w.put(chunk);
                }
                None => {
                    buffered += chunk.len();
                    first.push(chunk);
                    if buffered > SINGLE_PUT_LIMIT {
                        let upload = self
                            .store
                            .put_multipart(&path)
                            .await
                            .map_err(|e| BlobError::Store(e.to_string()))?;
                        let mut w = WriteMultipart::new_with_chunk_size(upload, SINGLE_PUT_LIMIT);
                        for c in first.drain(..) {
                            w.put(c);
                        }
                        writer = Some(w);
                    }
                }
            }
        }
        let mut pending = None;
        match writer {
            Some(w) => {
                w.finish()
                    .await
                    .map_err(|e| BlobError::Store(e.to_string()))?;
            }
            None if buffered <= INLINE_LIMIT => {
                pending = Some(if first.len() == 1 {
                    first.pop().unwrap_or_default()
                } else {
                    let mut bytes = Vec::with_capacity(buffered);
                    for c in &first {
                        bytes.extend_from_slice(c);
                    }
                    Bytes::from(bytes)
                });
            }
            None => match &self.local_root {
                // Small bodies on the local disk: one blocking hop (write, rename) and, with
                // `--durability power`, the file's fsync plus a directory fsync shared with every
                // concurrent write, instead of one directory fsync per object.
                Some(root) => {
                    let mut bytes = Vec::with_capacity(buffered);
                    for c in &first {
                        bytes.extend_from_slice(c);
                    }
                    codeyard_store::files::write_atomically(
                        &root.join("blobs").join(&name),
                        bytes,
                        self.dir_sync.as_ref(),
                    )
                    .await
                    .map_err(|e| BlobError::Store(e.to_string()))?;
                }
                None => {
                    let payload: PutPayload = first.into_iter().collect();
                    self.store
                        .put(&path, payload)
                        .await
                        .map_err(|e| BlobError::Store(e.to_string()))?;
                }
            },
        }
        Ok(Written {
            blob: BlobRef {
                name,
                size,
                inline: pending.is_some(),
                pending,
            },
            md5: md5.finalize().into(),
            checksum: hasher.finalize(),
        })
    }

    /// The bytes `range` of the concatenation of `blobs`, as a stream.
    pub fn read(
        &self,
        blobs: &[BlobRef],
        range: std::ops::Range<u64>,
    ) -> BoxStream<'static, Result<Bytes, StdError>> {
        let mut pieces = Vec::new();
        let mut offset = 0u64;
        for b in blobs {
            let (start, end) = (offset, offset + b.size);
            offset = end;
            let lo = range.start.max(start);
            let hi = range.end.min(end);
            if lo < hi {
                pieces.push((b.clone(), (lo - start)..(hi - start), b.size));
            }
        }
        let (store, state) = (self.store.clone(), self.state.clone());
        futures::stream::iter(pieces)
            .then(move |(blob, r, full)| {
                let (store, state) = (store.clone(), state.clone());
                async move {
                    let range = r.start as usize..r.end as usize;
                    if blob.inline {
                        let bytes = match &blob.pending {
                            Some(b) => b.clone(),
                            None => state
                                .get_bytes(INLINE_NS, &blob.name)
                                .await
                                .map_err(|e| Box::new(e) as StdError)?
                                .ok_or_else(|| {
                                    format!("the body {} is missing from the state store", blob.name)
                                })?,
                        };
                        if bytes.len() < range.end {
                            return Err(format!("the body {} is shorter than its record", blob.name).into());
                        }
                        let one = futures::stream::once(async move { Ok(bytes.slice(range)) });
                        return Ok::<_, StdError>(one.boxed());
                    }
                    let path = Self::path(&blob.name);
                    let opts = object_store::GetOptions {
                        range: if r.start == 0 && r.end == full {
                            None
                        } else {
                            Some(r.into())
                        },
                        ..Default::default()
                    };
                    let got = store
                        .get_opts(&path, opts)
                        .await
                        .map_err(|e| Box::new(e) as StdError)?;
                    Ok::<_, StdError>(got.into_stream().map_err(|e| Box::new(e) as StdError).boxed())
                }
            })
            .try_flatten()
            .boxed()
    }

    /// Adds the pending bodies of `blobs` to `batch`, the commit that names them.
    pub fn stage(batch: Batch, blobs: &[BlobRef]) -> Batch {
        blobs.iter().fold(batch, |batch, b| match &b.pending {
            Some(bytes) => batch.put_bytes(INLINE_NS, &b.name, bytes.clone()),
            None => batch,
        })
    }

    /// Removes the inline ones of `garbage` in `batch` (the commit that stops naming them);
    /// answers the rest, files to [`delete`](Self::delete) after that commit.
    pub fn drop_in(batch: Batch, garbage: Vec<BlobRef>) -> (Batch, Vec<BlobRef>) {
        let (inline, files): (Vec<_>, Vec<_>) = garbage.into_iter().partition(|b| b.inline);
        let batch = inline
            .iter()
            .fold(batch, |batch, b| batch.delete_bytes(INLINE_NS, &b.name));
        (batch, files)
    }

    /// Removes blobs (best effort: a leftover is collected at the next start-up). Pending
    /// inline blobs were never stored: nothing to do for them.
    pub async fn delete(&self, blobs: &[BlobRef]) {
        let (stored_inline, files) = Self::drop_in(
            Batch::new(),
            blobs
                .iter()
                .filter(|b| b.pending.is_none())
                .cloned()
                .collect(),
        );
        if !stored_inline.is_empty() {
            if let Err(e) = self.state.commit(stored_inline).await {
                tracing::debug!(error = %e, "inline body delete failed");
            }
        }
        for b in &files {
            if let Err(e) = self.store.delete(&Self::path(&b.name)).await {
                tracing::debug!(blob = %b.name, error = %e, "blob delete failed");
            }
        }
    }

    /// Removes every blob (and staging file of an interrupted write) that `referenced` does not
    /// name. Run at start-up, before any request can write a blob.
    pub async fn collect_garbage(&self, referenced: &HashSet<String>) -> anyhow::Result<usize> {
        let mut removed = 0;
        let mut after: Option<String> = None;
        loop {
            let page = self
                .state
                .list_bytes_keys(INLINE_NS, after.as_deref(), 1000)
                .await?;
            let unreferenced: Vec<&String> =
                page.iter().filter(|k| !referenced.contains(*k)).collect();
            if !unreferenced.is_empty() {
                removed += unreferenced.len();
                let batch = unreferenced
                    .into_iter()
                    .fold(Batch::new(), |b, k| b.delete_bytes(INLINE_NS, k));
                self.state.commit(batch).await?;
            }
            if page.len() < 1000 {
                break;
            }
            after = page.last().cloned();
        }
        if let Some(root) = &self.local_root {
            for entry in std::fs::read_dir(root.join("blobs"))? {
                let entry = entry?;
                let name = entry.file_name().to_string_lossy().to_string();
                if !referenced.contains(&name) {
                    let _ = std::fs::remove_file(entry.path());
                    removed += 1;
                }
            }
            return Ok(removed);
        }
        let prefix = StorePath::from("blobs");
        let listed: Vec<_> = self.store.list(Some(&prefix)).try_collect().await?;
        for meta in listed {
            let name = meta.location.filename().unwrap_or_default().to_string();
            if !referenced.contains(&name) {
                let _ = self.store.delete(&meta.location).await;
                removed += 1;
            }
        }
        Ok(removed)
    }
}
