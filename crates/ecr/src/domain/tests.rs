//! Unit tests of the registry state.

use super::*;
use crate::blobs::BlobStore;
use crate::manifest;
use bytes::Bytes;
use codeyard_core::time::now;
use codeyard_store::{SharedStore, SqliteStore};
use std::sync::Arc;

async fn setup(dir: &std::path::Path, mutability: &str) -> (Ecr, RepoRef) {
    let store: SharedStore = Arc::new(SqliteStore::open(&dir.join("state.db")).await.unwrap());
    let blobs = Arc::new(BlobStore::open(dir.join("registry")).unwrap());
    let ecr = Ecr { store, blobs };
    let r = RepoRef::new("000000000000", "eu-west-1", "team/app");
    ecr.create_repository(Repository {
        name: r.name.clone(),
        account: r.account.clone(),
        region: r.region.clone(),
        arn: repository_arn(&r.account, &r.region, &r.name),
        created_at: now(),
        tag_mutability: mutability.into(),
        mutability_exclusions: None,
        scan_on_push: false,
        encryption: codeyard_api::ecr::EncryptionConfiguration { encryption_type: codeyard_api::ecr::EncryptionType::Aes256, kms_key: None },
        tags: vec![],
        policy: None,
        lifecycle_policy: None,
        lifecycle_evaluated_at: None,
    })
    .await
    .unwrap();
    (ecr, r)
}

async fn blob(ecr: &Ecr, r: &RepoRef, bytes: &'static [u8]) -> String {
    let id = ecr.start_upload(r).await.unwrap();
    ecr.blobs
        .append(
            &id,
            futures::stream::iter([Ok::<_, std::io::Error>(Bytes::from_static(bytes))]),
        )
        .await
        .unwrap();
    let d = manifest::sha256_digest(bytes);
    ecr.finish_upload(r, &id, &d).await.unwrap().unwrap();
    d
}

/// The events waiting on the bus's ingress queue (leased, so each is seen once).
async fn queued_events(ecr: &Ecr) -> Vec<codeyard_store::QueueItem> {
    let queue = codeyard_core::hub::EVENTS_INGRESS_QUEUE;
    ecr.store.lease(queue, 10, std::time::Duration::from_secs(30)).await.unwrap()
}

fn manifest_for(config: &str, layer: &str, extra: &str) -> Bytes {
    Bytes::from(format!(
        r#"{{"schemaVersion":2,"mediaType":"{}","config":{{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"{config}","size":2}},"layers":[{{"mediaType":"application/vnd.oci.image.layer.v1.tar","digest":"{layer}","size":5}}]{extra}}}"#,
        manifest::OCI_MANIFEST
    ))
}

/// A registry push (PutImage's checks off) of `manifest` under `tag`.
async fn push(ecr: &Ecr, r: &RepoRef, manifest: Bytes, tag: &str) -> Result<(ImageRecord, Vec<codeyard_core::hub::BusEvent>), PutError> {
    ecr.put_manifest(r, manifest, None, Some(tag), None, false).await
}

#[tokio::test]
async fn pushes_raise_events_and_immutable_tags_stay() {
    let dir = tempfile::tempdir().unwrap();
    let (ecr, r) = setup(dir.path(), "IMMUTABLE").await;
    let c = blob(&ecr, &r, b"{}").await;
    let l = blob(&ecr, &r, b"layer").await;
    let (img, events) = push(&ecr, &r, manifest_for(&c, &l, ""), "v1").await.unwrap();
    assert_eq!(events.len(), 1);
    assert_eq!(events[0].event["detail"]["action-type"], "PUSH");
    assert_eq!(events[0].event["detail"]["image-tag"], "v1");
    assert_eq!(events[0].event["detail-type"], "ECR Image Action");
    let queued = queued_events(&ecr).await;
    assert_eq!(queued.len(), 1, "the event is committed with the image");
    // The same push again is fine; another manifest under the tag is not.
    push(&ecr, &r, manifest_for(&c, &l, ""), "v1").await.unwrap();
    let moved = push(&ecr, &r, manifest_for(&c, &l, r#","annotations":{"x":"y"}"#), "v1").await;
    assert!(matches!(moved, Err(PutError::TagImmutable(_))));
    assert_eq!(ecr.tag(&r, "v1").await.unwrap(), Some(img.digest.clone()));
    // Missing blobs are refused.
    let missing = push(&ecr, &r, manifest_for(&c, &manifest::sha256_digest(b"nope"), ""), "v2").await;
    assert!(matches!(missing, Err(PutError::BlobsMissing(_))));
    // Delete raises DELETE; the blobs then go with garbage collection.
    ecr.delete_image(&r, &img.digest).await.unwrap().unwrap();
    let queued = queued_events(&ecr).await;
    assert!(
        queued
            .iter()
            .any(|q| q.payload["event"]["detail"]["action-type"] == "DELETE")
    );
    assert_eq!(
        ecr.collect_garbage(chrono::Duration::hours(1))
            .await
            .unwrap(),
        0,
        "recent uploads are kept"
    );
    assert_eq!(
        ecr.collect_garbage(chrono::Duration::zero()).await.unwrap(),
        3
    );
}
