//! An in-memory [`StateStore`] for unit tests: the same contract as SQLite (it runs the same
//! [`conformance`](crate::conformance) suite), no files, no threads. Nothing survives the
//! process, so it is never the server's store.

use crate::*;
use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;

#[derive(Default)]
struct State {
    /// (namespace, key) -> (value, version).
    docs: BTreeMap<(String, String), (Value, i64)>,
    /// id -> item; ids grow, so iteration order is enqueue order.
    queue: BTreeMap<i64, Item>,
    next_id: i64,
    counters: HashMap<String, i64>,
    /// (namespace, key) -> bytes.
    bytes: BTreeMap<(String, String), bytes::Bytes>,
}

struct Item {
    queue: String,
    payload: Value,
    attempts: u32,
    visible_at_ms: i64,
}

#[derive(Default)]
pub struct MemoryStore {
    state: Mutex<State>,
}

impl MemoryStore {
    pub fn new() -> Self {
        Self::default()
    }

    /// Applies a batch, all or nothing (`commit` and `submit`).
    fn apply(&self, batch: Batch) -> StoreResult<()> {
        let mut s = self.state.lock().unwrap();
        // Check every condition against the state as it evolves within the batch, on a copy of
        // what the batch touches, then apply: all or nothing.
        let mut staged: BTreeMap<(String, String), Option<(Value, i64)>> = BTreeMap::new();
        let mut enqueued = Vec::new();
        let mut bytes_ops: Vec<((String, String), Option<bytes::Bytes>)> = Vec::new();
        let mut acked = Vec::new();
        let now = now_ms();
        for op in batch.ops {
            match op {
                Op::Put { ns, key, value, expect } => {
                    let k = (ns, key);
                    let current = staged.get(&k).cloned().unwrap_or_else(|| s.docs.get(&k).cloned());
                    check(&expect, current.as_ref().map(|c| c.1), &k.0, &k.1)?;
                    let version = current.map(|c| c.1 + 1).unwrap_or(1);
                    staged.insert(k, Some((value, version)));
                }
                Op::Delete { ns, key, expect } => {
                    let k = (ns, key);
                    let current = staged.get(&k).cloned().unwrap_or_else(|| s.docs.get(&k).cloned());
                    check(&expect, current.as_ref().map(|c| c.1), &k.0, &k.1)?;
                    staged.insert(k, None);
                }
                Op::Enqueue { queue, payload, delay } => {
                    enqueued.push(Item { queue, payload, attempts: 0, visible_at_ms: now + delay.as_millis() as i64 });
                }
                Op::PutBytes { ns, key, data } => bytes_ops.push(((ns, key), Some(data))),
                Op::DeleteBytes { ns, key } => bytes_ops.push(((ns, key), None)),
                Op::Ack { id } => acked.push(id),
            }
        }
        for id in acked {
            s.queue.remove(&id);
        }
        for (k, data) in bytes_ops {
            set_or_remove(&mut s.bytes, k, data);
        }
        for (k, v) in staged {
            set_or_remove(&mut s.docs, k, v);
        }
        for item in enqueued {
            s.next_id += 1;
            let id = s.next_id;
            s.queue.insert(id, item);
        }
        Ok(())
    }
}

/// Stores `value` under `key`, or removes the key when there is none.
fn set_or_remove<K: Ord, V>(map: &mut BTreeMap<K, V>, key: K, value: Option<V>) {
    match value {
        Some(v) => {
            map.insert(key, v);
        }
        None => {
            map.remove(&key);
        }
    }
}

fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

#[async_trait]
impl StateStore for MemoryStore {
    async fn get(&self, ns: &str, key: &str) -> StoreResult<Option<Doc>> {
        let s = self.state.lock().unwrap();
        Ok(s.docs
            .get(&(ns.to_string(), key.to_string()))
            .map(|(value, version)| Doc { key: key.to_string(), value: value.clone(), version: *version }))
    }

    async fn list(&self, ns: &str, prefix: &str, start_after: Option<&str>, limit: usize) -> StoreResult<Vec<Doc>> {
        let s = self.state.lock().unwrap();
        let from = (ns.to_string(), prefix.to_string());
        Ok(s.docs
            .range(from..)
            .take_while(|((n, k), _)| n == ns && k.starts_with(prefix))
            .filter(|((_, k), _)| start_after.is_none_or(|a| k.as_str() > a))
            .take(limit)
            .map(|((_, k), (value, version))| Doc { key: k.clone(), value: value.clone(), version: *version })
            .collect())
    }

    async fn namespaces(&self, prefix: &str) -> StoreResult<Vec<String>> {
        let s = self.state.lock().unwrap();
        let mut out: Vec<String> = Vec::new();
        for (ns, _) in s.docs.range((prefix.to_string(), String::new())..).map(|(k, _)| k) {
            if !ns.starts_with(prefix) {
                break;
            }
            if out.last() != Some(ns) {
                out.push(ns.clone());
            }
        }
        Ok(out)
    }

    async fn commit(&self, batch: Batch) -> StoreResult<()> {
        self.apply(batch)
    }

    fn submit(&self, batch: Batch) -> Submitted {
        // Applied now: the order of submission is the order of application.
        let applied = self.apply(batch);
        Box::pin(std::future::ready(applied))
    }

    async fn lease(&self, queue: &str, max: usize, lease: Duration) -> StoreResult<Vec<QueueItem>> {
        let mut s = self.state.lock().unwrap();
        let now = now_ms();
        let mut out = Vec::new();
        for (id, item) in s.queue.iter_mut() {
            if out.len() >= max {
                break;
            }
            if item.queue == queue && item.visible_at_ms <= now {
                out.push(QueueItem { id: *id, queue: queue.to_string(), payload: item.payload.clone(), attempts: item.attempts });
                item.attempts += 1;
                item.visible_at_ms = now + lease.as_millis() as i64;
            }
        }
        Ok(out)
    }

    async fn ack(&self, id: i64) -> StoreResult<()> {
        self.state.lock().unwrap().queue.remove(&id);
        Ok(())
    }

    async fn release(&self, id: i64, delay: Duration) -> StoreResult<()> {
        if let Some(item) = self.state.lock().unwrap().queue.get_mut(&id) {
            item.visible_at_ms = now_ms() + delay.as_millis() as i64;
        }
        Ok(())
    }

    async fn queue_len(&self, queue: &str) -> StoreResult<usize> {
        Ok(self.state.lock().unwrap().queue.values().filter(|i| i.queue == queue).count())
    }

    async fn next_counter(&self, name: &str) -> StoreResult<i64> {
        let mut s = self.state.lock().unwrap();
        let v = s.counters.entry(name.to_string()).or_insert(0);
        *v += 1;
        Ok(*v)
    }

    async fn get_bytes(&self, ns: &str, key: &str) -> StoreResult<Option<bytes::Bytes>> {
        Ok(self.state.lock().unwrap().bytes.get(&(ns.to_string(), key.to_string())).cloned())
    }

    async fn list_bytes_keys(&self, ns: &str, start_after: Option<&str>, limit: usize) -> StoreResult<Vec<String>> {
        let s = self.state.lock().unwrap();
        Ok(s.bytes
            .range((ns.to_string(), start_after.unwrap_or("").to_string())..)
            .take_while(|((n, _), _)| n == ns)
            .filter(|((_, k), _)| start_after.is_none_or(|a| k.as_str() > a))
            .take(limit)
            .map(|((_, k), _)| k.clone())
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn memory_store_passes_conformance() {
        crate::conformance::run_all(&MemoryStore::new()).await;
    }

    /// A store where another writer always changes the document just before our commit.
    struct AlwaysFirst(MemoryStore);

    #[async_trait]
    impl StateStore for AlwaysFirst {
        async fn get(&self, ns: &str, key: &str) -> StoreResult<Option<Doc>> {
            self.0.get(ns, key).await
        }
        async fn list(&self, ns: &str, p: &str, a: Option<&str>, l: usize) -> StoreResult<Vec<Doc>> {
            self.0.list(ns, p, a, l).await
        }
        async fn namespaces(&self, p: &str) -> StoreResult<Vec<String>> {
            self.0.namespaces(p).await
        }
        async fn commit(&self, batch: Batch) -> StoreResult<()> {
            self.0.commit(Batch::new().put("t/contended", "k", 0, Expect::Any)).await?;
            self.0.commit(batch).await
        }
        fn submit(&self, batch: Batch) -> Submitted {
            self.0.submit(batch)
        }
        async fn lease(&self, q: &str, m: usize, l: Duration) -> StoreResult<Vec<QueueItem>> {
            self.0.lease(q, m, l).await
        }
        async fn ack(&self, id: i64) -> StoreResult<()> {
            self.0.ack(id).await
        }
        async fn release(&self, id: i64, d: Duration) -> StoreResult<()> {
            self.0.release(id, d).await
        }
        async fn queue_len(&self, q: &str) -> StoreResult<usize> {
            self.0.queue_len(q).await
        }
        async fn next_counter(&self, n: &str) -> StoreResult<i64> {
            self.0.next_counter(n).await
        }
        async fn get_bytes(&self, ns: &str, k: &str) -> StoreResult<Option<bytes::Bytes>> {
            self.0.get_bytes(ns, k).await
        }
        async fn list_bytes_keys(&self, ns: &str, a: Option<&str>, l: usize) -> StoreResult<Vec<String>> {
            self.0.list_bytes_keys(ns, a, l).await
        }
    }

    #[tokio::test]
    async fn update_gives_up_with_contended_after_its_attempts() {
        let s = AlwaysFirst(MemoryStore::new());
        let mut calls = 0;
        let r = s
            .update("t/contended", "k", |cur: Option<i64>| {
                calls += 1;
                Ok::<_, StoreError>(Update::put(cur.unwrap_or(0) + 1))
            })
            .await;
        assert!(matches!(r, Err(StoreError::Contended(ref ns, ref k)) if ns == "t/contended" && k == "k"), "{r:?}");
        assert_eq!(calls, UPDATE_ATTEMPTS);
    }
}
