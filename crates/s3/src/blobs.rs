//! Object bytes: immutable blobs with unique names, written through `object_store`.
//!
//! Every object version (and every multipart part) gets its own blob `blobs/<uuid>`; a blob is
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
}

/// What writing a body produced.
pub struct Written {
    pub blob: BlobRef,
    pub md5: [u8; 16],
    pub checksum: s3s::dto::Checksum,
}

/// Bodies up to this size are written with one `put`; larger ones stream as a multipart write.
const SINGLE_PUT_LIMIT: usize = 8 * 1024 * 1024;

pub struct BlobStore {
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
    pub fn open(data_dir: &std::path::Path) -> anyhow::Result<BlobStore> {
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
            store: Arc::new(chunked),
            dir_sync: Some(codeyard_store::files::DirSync::new(root.join("blobs"))),
            local_root: Some(root),
        })
    }

    fn path(name: &str) -> StorePath {
        StorePath::from(format!("blobs/{name}"))
    }

    /// Streams a body into a new blob, hashing it on the way (MD5 for the ETag, plus whatever
    /// checksums `hasher` has switched on). The blob is durable when this returns.
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
        match writer {
            Some(w) => {
                w.finish()
                    .await
                    .map_err(|e| BlobError::Store(e.to_string()))?;
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
            blob: BlobRef { name, size },
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
                pieces.push((Self::path(&b.name), (lo - start)..(hi - start), b.size));
            }
        }
        let store = self.store.clone();
        futures::stream::iter(pieces)
            .then(move |(path, r, full)| {
                let store = store.clone();
                async move {
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
                    Ok::<_, StdError>(got.into_stream().map_err(|e| Box::new(e) as StdError))
                }
            })
            .try_flatten()
            .boxed()
    }

    /// Removes blobs (best effort: a leftover is collected at the next start-up).
    pub async fn delete(&self, blobs: &[BlobRef]) {
        for b in blobs {
            if let Err(e) = self.store.delete(&Self::path(&b.name)).await {
                tracing::debug!(blob = %b.name, error = %e, "blob delete failed");
            }
        }
    }

    /// Removes every blob (and staging file of an interrupted write) that `referenced` does not
    /// name. Run at start-up, before any request can write a blob.
    pub async fn collect_garbage(&self, referenced: &HashSet<String>) -> anyhow::Result<usize> {
        let mut removed = 0;
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
