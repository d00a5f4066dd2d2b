//! The conformance suite every [`StateStore`] backend runs. Each check uses its own namespace
//! and queue names, so the suite can run on a store that already holds data.

use crate::*;
use serde_json::json;

pub async fn run_all(s: &dyn StateStore) {
    documents_round_trip(s).await;
    conditions_abort_the_whole_batch(s).await;
    listing_is_ordered_and_paged(s).await;
    queues_lease_ack_and_release(s).await;
    counters_increase(s).await;
    scan_pages_through_everything(s).await;
    update_is_compare_and_swap(s).await;
    bytes_commit_with_the_batch(s).await;
    submitted_batches_apply_in_submission_order(s).await;
    an_ack_in_a_batch_commits_with_the_batch(s).await;
}

async fn submitted_batches_apply_in_submission_order(s: &dyn StateStore) {
    let ns = "conf/submit";
    // Each batch expects the version the one before leaves: it holds only if applied after it.
    let first = s.submit(Batch::new().put(ns, "k", 1, Expect::Absent));
    let second = s.submit(Batch::new().put(ns, "k", 2, Expect::Version(1)));
    let stale = s.submit(Batch::new().put(ns, "k", 3, Expect::Version(1)));
    let third = s.submit(Batch::new().put(ns, "k", 4, Expect::Version(2)));
    // Awaited out of order: the order is the submission's.
    third.await.unwrap();
    assert!(matches!(stale.await, Err(StoreError::Conflict(..))));
    second.await.unwrap();
    first.await.unwrap();
    let d = s.get(ns, "k").await.unwrap().unwrap();
    assert_eq!((d.value, d.version), (json!(4), 3));
}

async fn an_ack_in_a_batch_commits_with_the_batch(s: &dyn StateStore) {
    let (ns, q) = ("conf/ackbatch", "conf.ackbatch");
    s.commit(Batch::new().enqueue(q, json!(1))).await.unwrap();
    let item = s.lease(q, 1, Duration::from_secs(60)).await.unwrap().remove(0);
    // A batch that fails its condition acks nothing.
    let failed = s.commit(Batch::new().put(ns, "done", 1, Expect::Present).ack(item.id)).await;
    assert!(matches!(failed, Err(StoreError::Conflict(..))));
    assert_eq!(s.queue_len(q).await.unwrap(), 1);
    s.commit(Batch::new().put(ns, "done", 1, Expect::Absent).ack(item.id)).await.unwrap();
    assert_eq!(s.queue_len(q).await.unwrap(), 0);
    assert!(s.get(ns, "done").await.unwrap().is_some());
    // Acking an item that is gone is no error.
    s.commit(Batch::new().ack(item.id)).await.unwrap();
}

async fn bytes_commit_with_the_batch(s: &dyn StateStore) {
    let ns = "conf/bytes";
    let body = bytes::Bytes::from(vec![7u8; 5000]);
    assert!(s.get_bytes(ns, "a").await.unwrap().is_none());
    s.commit(Batch::new().put_bytes(ns, "a", body.clone()).put(ns, "doc", json!("a"), Expect::Absent)).await.unwrap();
    assert_eq!(s.get_bytes(ns, "a").await.unwrap(), Some(body.clone()));
    // A failed condition drops the batch's bytes too.
    let r = s.commit(Batch::new().put_bytes(ns, "b", body.clone()).put(ns, "doc", json!("b"), Expect::Absent)).await;
    assert!(matches!(r, Err(StoreError::Conflict(..))), "{r:?}");
    assert!(s.get_bytes(ns, "b").await.unwrap().is_none(), "a failed batch stored bytes");
    s.commit(Batch::new().put_bytes(ns, "b", bytes::Bytes::from_static(b""))).await.unwrap();
    s.commit(Batch::new().put_bytes(ns, "c", bytes::Bytes::from_static(b"x"))).await.unwrap();
    assert_eq!(s.get_bytes(ns, "b").await.unwrap().as_deref(), Some(&b""[..]));
    assert_eq!(s.list_bytes_keys(ns, None, 10).await.unwrap(), ["a", "b", "c"]);
    assert_eq!(s.list_bytes_keys(ns, Some("a"), 1).await.unwrap(), ["b"]);
    s.commit(Batch::new().delete_bytes(ns, "a").delete_bytes(ns, "missing")).await.unwrap();
    assert!(s.get_bytes(ns, "a").await.unwrap().is_none());
    assert!(s.list(ns, "", None, 10).await.unwrap().iter().all(|d| d.key == "doc"), "bytes are not documents");
}

async fn documents_round_trip(s: &dyn StateStore) {
    let ns = "conf/docs";
    assert!(s.get(ns, "a").await.unwrap().is_none());
    s.commit(Batch::new().put(ns, "a", json!({"x": 1}), Expect::Absent)).await.unwrap();
    let d = s.get(ns, "a").await.unwrap().unwrap();
    assert_eq!(d.value, json!({"x": 1}));
    assert_eq!(d.version, 1);
    s.commit(Batch::new().put(ns, "a", json!({"x": 2}), Expect::Version(1))).await.unwrap();
    assert_eq!(s.get(ns, "a").await.unwrap().unwrap().version, 2);
    s.commit(Batch::new().delete(ns, "a", Expect::Present)).await.unwrap();
    assert!(s.get(ns, "a").await.unwrap().is_none());
}

async fn conditions_abort_the_whole_batch(s: &dyn StateStore) {
    let ns = "conf/cond";
    s.commit(Batch::new().put(ns, "exists", json!(1), Expect::Any)).await.unwrap();
    let before = s.queue_len("conf.cond").await.unwrap();
    let r = s
        .commit(
            Batch::new()
                .put(ns, "new", json!(1), Expect::Absent)
                .enqueue("conf.cond", json!("work"))
                .put(ns, "exists", json!(2), Expect::Absent),
        )
        .await;
    assert!(matches!(r, Err(StoreError::Conflict(_, ref k)) if k == "exists"), "{r:?}");
    assert!(s.get(ns, "new").await.unwrap().is_none(), "a failed batch wrote a document");
    assert_eq!(s.queue_len("conf.cond").await.unwrap(), before, "a failed batch enqueued work");
    assert!(s.commit(Batch::new().put(ns, "exists", json!(3), Expect::Version(99))).await.is_err());
    assert!(s.commit(Batch::new().delete(ns, "missing", Expect::Present)).await.is_err());
    assert_eq!(s.get(ns, "exists").await.unwrap().unwrap().value, json!(1));
}

async fn listing_is_ordered_and_paged(s: &dyn StateStore) {
    let ns = "conf/list";
    let mut b = Batch::new();
    for k in ["b2", "a1", "b1", "c1", "b3"] {
        b = b.put(ns, k, json!(k), Expect::Any);
    }
    s.commit(b).await.unwrap();
    let keys = |v: Vec<Doc>| v.into_iter().map(|d| d.key).collect::<Vec<_>>();
    assert_eq!(keys(s.list(ns, "", None, 100).await.unwrap()), ["a1", "b1", "b2", "b3", "c1"]);
    assert_eq!(keys(s.list(ns, "b", None, 100).await.unwrap()), ["b1", "b2", "b3"]);
    assert_eq!(keys(s.list(ns, "b", Some("b1"), 1).await.unwrap()), ["b2"]);
    assert!(s.namespaces("conf/li").await.unwrap().contains(&ns.to_string()));
}

async fn queues_lease_ack_and_release(s: &dyn StateStore) {
    let q = "conf.queue";
    s.commit(Batch::new().enqueue(q, json!(1)).enqueue(q, json!(2))).await.unwrap();
    s.commit(Batch::new().enqueue_delayed(q, json!(3), Duration::from_secs(3600))).await.unwrap();
    let items = s.lease(q, 10, Duration::from_secs(60)).await.unwrap();
    assert_eq!(items.iter().map(|i| i.payload.clone()).collect::<Vec<_>>(), [json!(1), json!(2)]);
    assert_eq!(items[0].attempts, 0);
    // Leased items are invisible to other workers.
    assert!(s.lease(q, 10, Duration::from_secs(60)).await.unwrap().is_empty());
    s.ack(items[0].id).await.unwrap();
    s.release(items[1].id, Duration::ZERO).await.unwrap();
    let again = s.lease(q, 10, Duration::from_millis(1)).await.unwrap();
    assert_eq!(again.len(), 1);
    assert_eq!(again[0].payload, json!(2));
    assert_eq!(again[0].attempts, 1);
    // An expired lease makes the item visible again (at-least-once).
    tokio::time::sleep(Duration::from_millis(20)).await;
    let expired = s.lease(q, 10, Duration::from_secs(60)).await.unwrap();
    assert_eq!(expired.len(), 1);
    s.ack(expired[0].id).await.unwrap();
    assert_eq!(s.queue_len(q).await.unwrap(), 1, "the delayed item stays");
}

async fn counters_increase(s: &dyn StateStore) {
    let a = s.next_counter("conf.counter").await.unwrap();
    let b = s.next_counter("conf.counter").await.unwrap();
    assert_eq!(b, a + 1);
    assert_eq!(s.next_counter("conf.other-counter").await.unwrap(), 1);
}

async fn scan_pages_through_everything(s: &dyn StateStore) {
    let ns = "conf/scan";
    let mut b = Batch::new();
    for i in 0..23 {
        b = b.put(ns, format!("item/{i:03}"), json!(i), Expect::Any);
    }
    b = b.put(ns, "other", json!(-1), Expect::Any);
    s.commit(b).await.unwrap();
    let mut scan = s.scan(ns, "item/").page_size(5);
    let mut sizes = Vec::new();
    let mut seen = Vec::new();
    while let Some(page) = scan.next_page_as::<i64>().await.unwrap() {
        sizes.push(page.len());
        seen.extend(page);
    }
    assert_eq!(sizes, [5, 5, 5, 5, 3]);
    assert_eq!(seen, (0..23).collect::<Vec<_>>());
    let rest = s.scan(ns, "item/").start_after(Some("item/020")).collect().await.unwrap();
    assert_eq!(rest.len(), 2);
    assert_eq!(s.list_all_as::<i64>(ns).await.unwrap().len(), 24);
    assert!(s.scan("conf/scan-empty", "").next_page().await.unwrap().is_none());
}

async fn update_is_compare_and_swap(s: &dyn StateStore) {
    let ns = "conf/update";
    // Create when absent, then change; extra operations commit with the change.
    let v = s
        .update(ns, "n", |cur: Option<i64>| Ok::<_, StoreError>(Update::put(cur.unwrap_or(0) + 1)))
        .await
        .unwrap();
    assert_eq!(v, Some(1));
    let v = s
        .update(ns, "n", |cur: Option<i64>| {
            Ok::<_, StoreError>(Update::put(cur.unwrap() + 1).also(Batch::new().enqueue("conf.update", json!("changed"))))
        })
        .await
        .unwrap();
    assert_eq!(v, Some(2));
    assert_eq!(s.queue_len("conf.update").await.unwrap(), 1);
    // Keep writes nothing; an error from the closure is answered as it is.
    let before = s.get(ns, "n").await.unwrap().unwrap().version;
    assert_eq!(s.update(ns, "n", |cur: Option<i64>| Ok::<_, StoreError>(Update::keep(cur))).await.unwrap(), Some(2));
    assert_eq!(s.get(ns, "n").await.unwrap().unwrap().version, before);
    let e = s.update(ns, "n", |_: Option<i64>| Err::<Update<i64>, _>(StoreError::Backend("no".into()))).await;
    assert!(matches!(e, Err(StoreError::Backend(ref m)) if m == "no"));
    // Concurrent increments all land: conflicts are retried.
    let mut handles = Vec::new();
    for _ in 0..8 {
        handles.push(s.update(ns, "n", |cur: Option<i64>| Ok::<_, StoreError>(Update::put(cur.unwrap() + 1))));
    }
    for r in futures_join(handles).await {
        r.unwrap();
    }
    assert_eq!(s.get(ns, "n").await.unwrap().unwrap().value, json!(10));
    let e = s.update(ns, "gone", |_: Option<i64>| Ok::<_, StoreError>(Update::delete())).await.unwrap();
    assert_eq!(e, None);
}

/// Polls every future to completion concurrently (the store crate has no futures dependency).
async fn futures_join<F: std::future::Future>(futs: Vec<F>) -> Vec<F::Output> {
    let mut futs: Vec<_> = futs.into_iter().map(Box::pin).collect();
    let mut out: Vec<Option<F::Output>> = futs.iter().map(|_| None).collect();
    std::future::poll_fn(|cx| {
        let mut pending = false;
        for (i, f) in futs.iter_mut().enumerate() {
            if out[i].is_none() {
                match f.as_mut().poll(cx) {
                    std::task::Poll::Ready(v) => out[i] = Some(v),
                    std::task::Poll::Pending => pending = true,
                }
            }
        }
        if pending { std::task::Poll::Pending } else { std::task::Poll::Ready(()) }
    })
    .await;
    out.into_iter().map(|o| o.unwrap()).collect()
}
