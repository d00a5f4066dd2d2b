//! Content-addressed blob storage (layers, configs and manifests) through `object_store`'s
//! `LocalFileSystem` under `<data_dir>/registry`.
//!
//! Layout: `blobs/sha256/<hex>` holds the bytes of a digest, shared by every repository and
//! account; `uploads/<id>` is an upload in progress. An upload is appended to on disk, hashed as
//! it arrives, then renamed into `blobs/` (a rename is atomic and copies nothing, so a
//! 200 MB layer is written once). A blob is only ever visible complete. With
//! `--durability power` (`codeyard_store::files`) the file is fsynced before the rename and the
//! directory after it; by default the rename alone is what survives a killed server.

use bytes::Bytes;
use codeyard_core::{AwsError, AwsResult};
use futures::StreamExt;
use futures::stream::BoxStream;
use object_store::local::LocalFileSystem;
use object_store::path::Path as ObjPath;
use object_store::{GetOptions, GetRange, ObjectStore, ObjectStoreExt};
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Mutex;
use tokio::io::AsyncWriteExt;

pub struct BlobStore {
    store: LocalFileSystem,
    /// Running hashes of uploads in progress (offset, state); rebuilt from the file if missing
    /// (after a restart) or out of step.
    hashers: Mutex<HashMap<String, (u64, Sha256)>>,
}

fn io(e: impl std::fmt::Display) -> AwsError {
    AwsError::internal(format!("registry storage: {e}"))
}

pub fn blob_path(digest: &str) -> ObjPath {
    let hex = digest.strip_prefix("sha256:").unwrap_or(digest);
    ObjPath::from(format!("blobs/sha256/{hex}"))
}

fn upload_path(id: &str) -> ObjPath {
    ObjPath::from(format!("uploads/{id}"))
}

/// A blob's bytes (or a range of them) as a stream.
pub struct BlobRead {
    pub total: u64,
    pub range: std::ops::Range<u64>,
    pub stream: BoxStream<'static, Result<Bytes, object_store::Error>>,
}

impl BlobStore {
    pub fn open(root: PathBuf) -> anyhow::Result<Self> {
        std::fs::create_dir_all(root.join("blobs/sha256"))?;
        std::fs::create_dir_all(root.join("uploads"))?;
        let store = LocalFileSystem::new_with_prefix(&root)?
            .with_fsync(codeyard_store::files::fsync_files());
        Ok(BlobStore {
            store,
            hashers: Mutex::new(HashMap::new()),
        })
    }

    fn upload_file(&self, id: &str) -> AwsResult<PathBuf> {
        self.store.path_to_filesystem(&upload_path(id)).map_err(io)
    }

    /// The size of a stored blob, if it exists.
    pub async fn size(&self, digest: &str) -> AwsResult<Option<u64>> {
        match self.store.head(&blob_path(digest)).await {
            Ok(m) => Ok(Some(m.size)),
            Err(object_store::Error::NotFound { .. }) => Ok(None),
            Err(e) => Err(io(e)),
        }
    }

    pub async fn read_all(&self, digest: &str) -> AwsResult<Option<Bytes>> {
        match self.store.get(&blob_path(digest)).await {
            Ok(r) => Ok(Some(r.bytes().await.map_err(io)?)),
            Err(object_store::Error::NotFound { .. }) => Ok(None),
            Err(e) => Err(io(e)),
        }
    }

    /// Opens a blob, optionally a byte range of it (`start..=end`, end clamped).
    pub async fn open_read(
        &self,
        digest: &str,
        range: Option<(u64, Option<u64>)>,
    ) -> AwsResult<Option<BlobRead>> {
        let opts = GetOptions {
            range: range.map(|(s, e)| match e {
                Some(e) => GetRange::Bounded(s..e + 1),
                None => GetRange::Offset(s),
            }),
            ..Default::default()
        };
        match self.store.get_opts(&blob_path(digest), opts).await {
            Ok(r) => Ok(Some(BlobRead {
                total: r.meta.size,
                range: r.range.clone(),
                stream: r.into_stream(),
            })),
            Err(object_store::Error::NotFound { .. }) => Ok(None),
            Err(e) => Err(io(e)),
        }
    }

    /// Stores small bytes (a manifest) under their digest.
    pub async fn put_bytes(&self, digest: &str, bytes: Bytes) -> AwsResult<()> {
        if self.size(digest).await?.is_some() {
            return Ok(());
        }
        self.store
            .put(&blob_path(digest), bytes.into())
            .await
            .map_err(io)?;
        Ok(())
    }

    pub async fn delete(&self, digest: &str) -> AwsResult<()> {
        match self.store.delete(&blob_path(digest)).await {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
            Err(e) => Err(io(e)),
        }
    }

    /// Every stored blob: (digest, size, last modified).
    pub async fn list(&self) -> AwsResult<Vec<(String, u64, chrono::DateTime<chrono::Utc>)>> {
        let mut out = Vec::new();
        let mut s = self.store.list(Some(&ObjPath::from("blobs/sha256")));
        while let Some(m) = s.next().await {
            let m = m.map_err(io)?;
            if let Some(hex) = m.location.filename() {
                out.push((format!("sha256:{hex}"), m.size, m.last_modified));
            }
        }
        Ok(out)
    }

    /// Creates an empty upload.
    pub async fn start_upload(&self, id: &str) -> AwsResult<()> {
        let path = self.upload_file(id)?;
        tokio::fs::File::create(&path).await.map_err(io)?;
        self.hashers
            .lock()
            .unwrap()
            .insert(id.to_string(), (0, Sha256::new()));
        Ok(())
    }

    /// The number of bytes received so far, or None if the upload does not exist.
    pub async fn upload_size(&self, id: &str) -> AwsResult<Option<u64>> {
        match tokio::fs::metadata(self.upload_file(id)?).await {
            Ok(m) => Ok(Some(m.len())),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(io(e)),
        }
    }

    /// Appends a body to an upload, hashing as it goes; returns the new size.
    pub async fn append<S, E>(&self, id: &str, mut body: S) -> AwsResult<u64>
    where
        S: futures::Stream<Item = Result<Bytes, E>> + Unpin,
        E: std::fmt::Display,
    {
        let path = self.upload_file(id)?;
        let mut file = tokio::fs::OpenOptions::new()
            .append(true)
            .open(&path)
            .await
            .map_err(io)?;
        let mut size = file.metadata().await.map_err(io)?.len();
        let mut hasher = {
            let mut map = self.hashers.lock().unwrap();
            match map.remove(id) {
                Some((off, h)) if off == size => Some(h),
                _ => None,
            }
        };
        while let Some(chunk) = body.next().await {
            let chunk = chunk.map_err(|e| {
                AwsError::client("BLOB_UPLOAD_INVALID", format!("upload body: {e}"))
            })?;
            if let Some(h) = hasher.as_mut() {
                h.update(&chunk);
            }
            file.write_all(&chunk).await.map_err(io)?;
            size += chunk.len() as u64;
        }
        file.flush().await.map_err(io)?;
        if let Some(h) = hasher {
            self.hashers
                .lock()
                .unwrap()
                .insert(id.to_string(), (size, h));
        }
        Ok(size)
    }

    /// Checks the upload against `digest` and moves it into place. Returns the blob's size, or
    /// `Err(actual digest)` when the bytes do not match (the upload is then discarded).
    pub async fn finish_upload(&self, id: &str, digest: &str) -> AwsResult<Result<u64, String>> {
        let path = self.upload_file(id)?;
        let file = tokio::fs::File::open(&path).await.map_err(io)?;
        let size = file.metadata().await.map_err(io)?.len();
        let running = self.hashers.lock().unwrap().remove(id);
        let actual = match running {
            Some((off, h)) if off == size => format!("sha256:{}", hex::encode(h.finalize())),
            _ => {
                let p = path.clone();
                tokio::task::spawn_blocking(move || -> std::io::Result<String> {
                    let mut f = std::fs::File::open(p)?;
                    let mut h = Sha256::new();
                    std::io::copy(&mut f, &mut h)?;
                    Ok(format!("sha256:{}", hex::encode(h.finalize())))
                })
                .await
                .map_err(io)?
                .map_err(io)?
            }
        };
        if actual != digest {
            self.discard_upload(id).await?;
            return Ok(Err(actual));
        }
        if codeyard_store::files::fsync_files() {
            file.sync_all().await.map_err(io)?;
        }
        drop(file);
        if self.size(digest).await?.is_some() {
            self.discard_upload(id).await?;
        } else {
            self.store
                .rename(&upload_path(id), &blob_path(digest))
                .await
                .map_err(io)?;
        }
        Ok(Ok(size))
    }

    pub async fn discard_upload(&self, id: &str) -> AwsResult<()> {
        self.hashers.lock().unwrap().remove(id);
        match tokio::fs::remove_file(self.upload_file(id)?).await {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(io(e)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn upload_verifies_digest_and_is_shared() {
        let dir = tempfile::tempdir().unwrap();
        let b = BlobStore::open(dir.path().to_path_buf()).unwrap();
        b.start_upload("u1").await.unwrap();
        let chunks = futures::stream::iter(vec![
            Ok::<_, std::io::Error>(Bytes::from_static(b"hello ")),
            Ok(Bytes::from_static(b"world")),
        ]);
        assert_eq!(b.append("u1", chunks).await.unwrap(), 11);
        let digest = crate::manifest::sha256_digest(b"hello world");
        // A wrong digest discards the upload.
        b.start_upload("u2").await.unwrap();
        b.append(
            "u2",
            futures::stream::iter(vec![Ok::<_, std::io::Error>(Bytes::from_static(b"x"))]),
        )
        .await
        .unwrap();
        assert!(b.finish_upload("u2", &digest).await.unwrap().is_err());
        assert_eq!(b.upload_size("u2").await.unwrap(), None);
        // The right one lands under its digest; ranges read part of it.
        assert_eq!(b.finish_upload("u1", &digest).await.unwrap(), Ok(11));
        assert_eq!(b.size(&digest).await.unwrap(), Some(11));
        let r = b
            .open_read(&digest, Some((6, Some(100))))
            .await
            .unwrap()
            .unwrap();
        let bytes: Vec<Bytes> = r.stream.map(|c| c.unwrap()).collect().await;
        assert_eq!(bytes.concat(), b"world");
        // A restart loses the running hash; the file is rehashed.
        let b2 = BlobStore::open(dir.path().to_path_buf()).unwrap();
        b2.start_upload("u3").await.unwrap();
        b2.hashers.lock().unwrap().clear();
        b2.append(
            "u3",
            futures::stream::iter(vec![Ok::<_, std::io::Error>(Bytes::from_static(
                b"hello world",
            ))]),
        )
        .await
        .unwrap();
        assert_eq!(b2.finish_upload("u3", &digest).await.unwrap(), Ok(11));
        assert_eq!(b2.list().await.unwrap().len(), 1);
    }
}
