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
