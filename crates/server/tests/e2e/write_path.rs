//! The write path (issue 14): small S3 bodies live in the state store, committed with their
//! metadata (no file per object), large ones are files; both read back whole, ranges included,
//! after a `kill -9`.

use crate::common::*;
use aws_sdk_s3::primitives::ByteStream;

fn blob_files(dir: &std::path::Path) -> usize {
    std::fs::read_dir(dir.join("s3/blobs")).map(|d| d.count()).unwrap_or(0)
}

/// A server process (`kill -9` needs one) on a fresh data dir, with the bucket `bucket`.
async fn server_with_bucket(bucket: &str) -> (tempfile::TempDir, ServerProcess, aws_sdk_s3::Client) {
    let dir = tempfile::tempdir().unwrap();
    let server = ServerProcess::spawn(dir.path(), &[]);
    let c = s3_client(&server.endpoint).await;
    make_bucket(&c, bucket).await;
    (dir, server, c)
}

#[tokio::test(flavor = "multi_thread")]
async fn small_bodies_make_no_files_and_every_body_survives_kill_9() {
    let (dir, server, c) = server_with_bucket("write-path").await;
    let small: Vec<u8> = (0..64 * 1024).map(|i| (i % 251) as u8).collect();
    let large: Vec<u8> = (0..64 * 1024 + 1).map(|i| (i % 241) as u8).collect();
    let mut tasks = Vec::new();
    for i in 0..64 {
        let (c, body) = (c.clone(), small[..1024 * (i % 64 + 1)].to_vec());
        tasks.push(tokio::spawn(async move {
            c.put_object().bucket("write-path").key(format!("small/{i}")).body(ByteStream::from(body)).send().await.unwrap();
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    assert_eq!(blob_files(dir.path()), 0, "a body of 64 KiB or less made a file");
    c.put_object().bucket("write-path").key("large").body(ByteStream::from(large.clone())).send().await.unwrap();
    assert_eq!(blob_files(dir.path()), 1, "a body over 64 KiB is a file");
    // Overwrites replace bodies in the same commit: still no file for small ones.
    for _ in 0..3 {
        c.put_object().bucket("write-path").key("small/0").body(ByteStream::from(small.clone())).send().await.unwrap();
    }
    assert_eq!(blob_files(dir.path()), 1);
    server.kill9();

    let server = ServerProcess::spawn(dir.path(), &[]);
    let c = s3_client(&server.endpoint).await;
    for i in 1..64 {
        let got = c.get_object().bucket("write-path").key(format!("small/{i}")).send().await.unwrap();
        let bytes = got.body.collect().await.unwrap().into_bytes();
        assert_eq!(&bytes[..], &small[..1024 * (i % 64 + 1)], "small/{i}");
    }
    let got = c.get_object().bucket("write-path").key("small/0").range("bytes=100-199").send().await.unwrap();
    assert_eq!(&got.body.collect().await.unwrap().into_bytes()[..], &small[100..200]);
    let got = c.get_object().bucket("write-path").key("large").send().await.unwrap();
    assert_eq!(got.body.collect().await.unwrap().into_bytes().to_vec(), large);
    // Start-up garbage collection kept every referenced body.
    assert_eq!(blob_files(dir.path()), 1);
}

/// Concurrent PUTs of one key pipeline their commits (each builds on the one submitted before
/// it): every one is acknowledged with its own ETag, the last acknowledged one is the object,
/// also after a `kill -9` right after it, and none made a file.
#[tokio::test(flavor = "multi_thread")]
async fn pipelined_puts_of_one_key_all_land_and_the_last_survives_kill_9() {
    let (dir, server, c) = server_with_bucket("pipelined").await;
    for round in 0..4 {
        let mut tasks = Vec::new();
        for i in 0..32 {
            let c = c.clone();
            let body = format!("round {round} writer {i} ").repeat(200).into_bytes();
            tasks.push(tokio::spawn(async move {
                let etag = c.put_object().bucket("pipelined").key("hot").body(ByteStream::from(body.clone())).send().await.unwrap().e_tag;
                (etag, body.len())
            }));
        }
        let mut etags = std::collections::HashSet::new();
        for t in tasks {
            let (etag, _) = t.await.unwrap();
            etags.insert(etag.unwrap());
        }
        assert_eq!(etags.len(), 32, "each body its own ETag");
    }
    let last = b"the last acknowledged body".repeat(100);
    let acked = c.put_object().bucket("pipelined").key("hot").body(ByteStream::from(last.clone())).send().await.unwrap().e_tag;
    server.kill9();
    let server = ServerProcess::spawn(dir.path(), &[]);
    let c = s3_client(&server.endpoint).await;
    let got = c.get_object().bucket("pipelined").key("hot").send().await.unwrap();
    assert_eq!(got.e_tag, acked);
    assert_eq!(got.body.collect().await.unwrap().into_bytes().to_vec(), last);
    assert_eq!(blob_files(dir.path()), 0);
}
