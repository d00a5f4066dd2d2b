//! Engine tests over a real SQLite store and blob directory.

use super::*;
use bytes::Bytes;

impl Engine {
    /// An engine over a fresh SQLite store and blob directory in `dir`.
    pub(crate) async fn in_dir(dir: &std::path::Path) -> Engine {
        let store: SharedStore = std::sync::Arc::new(
            codeyard_store::SqliteStore::open(&dir.join("state.db"))
                .await
                .unwrap(),
        );
        Engine::open(dir, store).unwrap()
    }
}

async fn engine(dir: &std::path::Path) -> Engine {
    Engine::in_dir(dir).await
}

/// An engine with one (empty, unversioned) bucket.
async fn engine_with_bucket(dir: &std::path::Path, bucket: &str) -> Engine {
    let e = engine(dir).await;
    e.create_bucket(bucket, "000000000000", "eu-west-1", None)
        .await
        .unwrap();
    e
}

async fn put(e: &Engine, bucket: &str, key: &str, body: &'static [u8]) -> ObjectDoc {
    let body = futures::stream::iter(vec![Ok::<_, std::io::Error>(Bytes::from_static(body))]);
    let w = e.blobs.write(body, Default::default()).await.unwrap();
    let doc = ObjectDoc {
        key: key.into(),
        size: w.blob.size,
        blobs: vec![w.blob],
        etag: hex::encode(w.md5),
        ..Default::default()
    };
    e.commit_version(bucket, doc, Batch::new(), None)
        .await
        .unwrap()
}

fn blob_files(dir: &std::path::Path) -> usize {
    std::fs::read_dir(dir.join("s3/blobs")).unwrap().count()
}

/// Bodies kept in the state store.
async fn inline_bodies(e: &Engine) -> usize {
    e.store
        .list_bytes_keys(crate::blobs::INLINE_NS, None, 10_000)
        .await
        .unwrap()
        .len()
}

async fn read_all(e: &Engine, o: &ObjectDoc, range: std::ops::Range<u64>) -> Vec<u8> {
    let chunks: Vec<Bytes> = futures::TryStreamExt::try_collect(e.blobs.read(&o.blobs, range))
        .await
        .unwrap();
    chunks.concat()
}

#[tokio::test(flavor = "multi_thread")]
async fn small_bodies_live_in_the_store_and_large_ones_in_files() {
    let dir = tempfile::tempdir().unwrap();
    let e = engine_with_bucket(dir.path(), "sizes").await;
    let small: &'static [u8] = Box::leak(vec![b's'; crate::blobs::INLINE_LIMIT].into_boxed_slice());
    let large: &'static [u8] =
        Box::leak(vec![b'L'; crate::blobs::INLINE_LIMIT + 1].into_boxed_slice());
    let o = put(&e, "sizes", "small", small).await;
    assert!(o.blobs[0].inline);
    assert_eq!(blob_files(dir.path()), 0, "a small body made a file");
    assert_eq!(inline_bodies(&e).await, 1);
    let o = e.get_version("sizes", "small", None).await.unwrap();
    assert!(o.blobs[0].pending.is_none(), "a stored record carries no bytes");
    assert_eq!(read_all(&e, &o, 0..o.size).await, small);
    assert_eq!(read_all(&e, &o, 10..20).await, &small[10..20]);
    let l = put(&e, "sizes", "large", large).await;
    assert!(!l.blobs[0].inline);
    assert_eq!(blob_files(dir.path()), 1);
    assert_eq!(read_all(&e, &l, 0..l.size).await, large);
    // Overwriting the small object with a large one removes the inline body in its commit.
    put(&e, "sizes", "small", large).await;
    assert_eq!(inline_bodies(&e).await, 0);
    assert_eq!(blob_files(dir.path()), 2);
    put(&e, "sizes", "small", b"tiny again").await;
    assert_eq!((inline_bodies(&e).await, blob_files(dir.path())), (1, 1));
    e.delete_object("sizes", "small", None, None).await.unwrap();
    assert_eq!(inline_bodies(&e).await, 0);
}

#[tokio::test(flavor = "multi_thread")]
async fn concurrent_puts_of_one_key_leave_one_whole_object_and_one_blob() {
    let dir = tempfile::tempdir().unwrap();
    let e = std::sync::Arc::new(engine_with_bucket(dir.path(), "race").await);
    const BODIES: [&[u8]; 8] = [
        b"aaaa",
        b"bbbbbbbb",
        b"cc",
        b"dddddd",
        b"e",
        b"ffff",
        b"ggggggg",
        b"hhh",
    ];
    let tasks: Vec<_> = BODIES
        .iter()
        .map(|b| {
            let e = e.clone();
            tokio::spawn(async move { put(&e, "race", "k", b).await })
        })
        .collect();
    for t in tasks {
        t.await.unwrap();
    }
    let o = e.get_version("race", "k", None).await.unwrap();
    let bytes = read_all(&e, &o, 0..o.size).await;
    assert!(
        BODIES.contains(&bytes.as_slice()),
        "a mix of writes: {bytes:?}"
    );
    assert_eq!(
        blob_files(dir.path()) + inline_bodies(&e).await,
        1,
        "replaced blobs were not all removed"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn listing_rolls_up_prefixes_and_pages() {
    let dir = tempfile::tempdir().unwrap();
    let e = engine_with_bucket(dir.path(), "list").await;
    for k in ["a/1", "a/2", "a/b/1", "b", "c/1", "c/2", "d"] {
        put(&e, "list", k, b"x").await;
    }
    let names = |l: &Listing| {
        l.entries
            .iter()
            .map(|x| match x {
                Listed::Object(o) => o.key.clone(),
                Listed::Prefix(p) => p.clone(),
            })
            .collect::<Vec<_>>()
    };
    let l = e
        .list_objects("list", "", Some("/"), None, 1000)
        .await
        .unwrap();
    assert_eq!(names(&l), vec!["a/", "b", "c/", "d"]);
    let l = e
        .list_objects("list", "", Some("/"), None, 2)
        .await
        .unwrap();
    assert!(l.truncated);
    assert_eq!(names(&l), vec!["a/", "b"]);
    let l2 = e
        .list_objects("list", "", Some("/"), l.last.as_deref(), 2)
        .await
        .unwrap();
    assert_eq!(names(&l2), vec!["c/", "d"]);
    assert!(!l2.truncated);
    let l = e
        .list_objects("list", "a/", Some("/"), None, 1000)
        .await
        .unwrap();
    assert_eq!(names(&l), vec!["a/1", "a/2", "a/b/"]);
}

#[tokio::test(flavor = "multi_thread")]
async fn garbage_collection_removes_only_unreferenced_blobs() {
    let dir = tempfile::tempdir().unwrap();
    let e = engine_with_bucket(dir.path(), "gc-bucket").await;
    put(&e, "gc-bucket", "kept", b"kept").await;
    std::fs::write(
        dir.path().join("s3/blobs/deadbeef#1"),
        b"staging file of a killed upload",
    )
    .unwrap();
    std::fs::write(
        dir.path().join("s3/blobs/0123abcd"),
        b"blob written, metadata never committed",
    )
    .unwrap();
    // An inline body whose object's commit named it, then was deleted before its removal ran.
    e.store
        .commit(Batch::new().put_bytes(
            crate::blobs::INLINE_NS,
            "feedface",
            Bytes::from_static(b"orphan"),
        ))
        .await
        .unwrap();
    assert_eq!(e.collect_garbage().await.unwrap(), 3);
    assert_eq!(blob_files(dir.path()), 0);
    assert_eq!(inline_bodies(&e).await, 1);
    assert_eq!(
        e.get_version("gc-bucket", "kept", None).await.unwrap().size,
        4
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn writers_of_one_key_take_turns_and_leave_no_lock_behind() {
    let dir = tempfile::tempdir().unwrap();
    let e = std::sync::Arc::new(engine_with_bucket(dir.path(), "turns").await);
    e.set_versioning("turns", Versioning::Enabled).await.unwrap();
    let tasks: Vec<_> = (0..32)
        .map(|i| {
            let e = e.clone();
            tokio::spawn(async move {
                let key = if i % 2 == 0 { "hot" } else { "warm" };
                put(&e, "turns", key, b"v").await
            })
        })
        .collect();
    let mut ids = HashSet::new();
    for t in tasks {
        ids.insert(t.await.unwrap().version_id);
    }
    assert_eq!(ids.len(), 32, "every write is its own version");
    let (l, _) = e
        .list_versions("turns", "", None, None, None, 1000)
        .await
        .unwrap();
    assert_eq!(l.entries.len(), 32);
    assert_eq!(e.key_locks.len(), 0, "the lock table holds only contended keys");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_cancelled_waiter_gives_its_key_lock_back() {
    let locks = std::sync::Arc::new(keylocks::KeyLocks::default());
    let held = locks.lock("b", "k").await;
    let waiter = {
        let locks = locks.clone();
        tokio::spawn(async move {
            let _g = locks.lock("b", "k").await;
        })
    };
    tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    waiter.abort();
    let _ = waiter.await;
    drop(held);
    assert_eq!(locks.len(), 0);
    let _again = locks.lock("b", "k").await;
    assert_eq!(locks.len(), 1);
}

/// Writers of one key in an unversioned bucket pipeline their commits (each builds on what the
/// one before submitted): every PUT succeeds, the last one is the object, every replaced body
/// is gone, and deletes and tag writes in between wait for the commits in flight.
#[tokio::test(flavor = "multi_thread")]
async fn pipelined_writers_of_one_key_keep_one_body_and_let_deletes_in() {
    let dir = tempfile::tempdir().unwrap();
    let e = std::sync::Arc::new(engine_with_bucket(dir.path(), "pipe").await);
    let tasks: Vec<_> = (0..64)
        .map(|i| {
            let e = e.clone();
            tokio::spawn(async move {
                match i % 16 {
                    5 => {
                        e.delete_object("pipe", "hot", None, None).await.unwrap();
                    }
                    9 => {
                        // NoSuchKey when a delete got in first.
                        let _ = e.set_tags("pipe", "hot", None, vec![("t".into(), "v".into())]).await;
                    }
                    _ => {
                        put(&e, "pipe", "hot", b"body").await;
                    }
                }
            })
        })
        .collect();
    for t in tasks {
        t.await.unwrap();
    }
    let last = put(&e, "pipe", "hot", b"last").await;
    assert_eq!(read_all(&e, &last, 0..4).await, b"last");
    assert_eq!(e.get_version("pipe", "hot", None).await.unwrap().seq, last.seq);
    assert_eq!(inline_bodies(&e).await, 1, "every replaced body is removed with its replacement");
    assert_eq!(e.key_locks.len(), 0);
}
