//! The pieces of [`StateStoreExt`](crate::StateStoreExt): paged scans and compare-and-swap
//! updates, of one document ([`StateStoreExt::update`](crate::StateStoreExt::update)) or of
//! several in one atomic batch (`update_many` on a [`SharedStore`](crate::SharedStore)).

use crate::{Batch, Doc, StateStore, StoreError, StoreResult};
use serde::de::DeserializeOwned;
use std::future::Future;
use std::time::Duration;

/// How many times [`StateStoreExt::update`](crate::StateStoreExt::update) tries before it
/// answers [`StoreError::Contended`](crate::StoreError::Contended).
pub const UPDATE_ATTEMPTS: u32 = 10;

/// The pause before attempt `n` (1-based retries): 1, 2, 4, ... ms capped at 50 ms, with a
/// jitter of up to half of it so that writers that collided do not collide again in step.
pub(crate) fn backoff(attempt: u32) -> Duration {
    let base = (1u64 << attempt.min(6)).min(50);
    let jitter = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos() as u64)
        .unwrap_or(0)
        % (base * 500 + 1);
    Duration::from_micros(base * 1000 + jitter)
}

/// What an update does with the document it read.
pub enum Change<T> {
    /// Leave it as it is (this value, as read, is what `update` answers).
    Keep(Option<T>),
    /// Store this value (created when absent).
    Put(T),
    /// Remove it.
    Delete,
}

/// A [`Change`] plus, optionally, more operations committed atomically with it.
pub struct Update<T> {
    pub change: Change<T>,
    pub also: Batch,
}

impl<T> Update<T> {
    pub fn put(value: T) -> Self {
        Change::Put(value).into()
    }
    pub fn delete() -> Self {
        Change::Delete.into()
    }
    pub fn keep(value: Option<T>) -> Self {
        Change::Keep(value).into()
    }
    /// Commit `batch`'s operations in the same atomic batch as the change.
    pub fn also(mut self, batch: Batch) -> Self {
        self.also.ops.extend(batch.ops);
        self
    }
}

impl<T> From<Change<T>> for Update<T> {
    fn from(change: Change<T>) -> Self {
        Update { change, also: Batch::new() }
    }
}

impl dyn StateStore {
    /// Compare-and-swap over several documents (a rename that moves a document, a holder and
    /// the counter of the policy it attaches, a state document and the events it publishes):
    /// each `attempt` reads what it needs and answers the batch to commit, every write in it
    /// conditioned on the version it read ([`Expect::Version`](crate::Expect::Version), or
    /// [`Expect::Absent`](crate::Expect::Absent) for a document it found missing), and what to
    /// answer. An empty batch commits nothing. When a condition fails (another writer got there
    /// first) the attempt runs again on fresh reads, with the retry policy of
    /// [`StateStoreExt::update`](crate::StateStoreExt::update): [`UPDATE_ATTEMPTS`] tries with a
    /// growing backoff, then [`StoreError::Contended`] naming the document that kept changing.
    /// An error of `attempt` is answered as it is, not retried.
    ///
    /// ```ignore
    /// store.update_many(|| async {
    ///     let (from, v) = store.get_as::<Item>("items", "a").await?.ok_or(NotFound)?;
    ///     let batch = Batch::new().delete("items", "a", Expect::Version(v)).put("items", "b", &from, Expect::Absent);
    ///     Ok((batch, ()))
    /// }).await?;
    /// ```
    pub async fn update_many<R, E, F, Fut>(&self, mut attempt: F) -> Result<R, E>
    where
        E: From<StoreError>,
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<(Batch, R), E>>,
    {
        let mut contended = (String::new(), String::new());
        for n in 0..UPDATE_ATTEMPTS {
            if n > 0 {
                tokio::time::sleep(backoff(n)).await;
            }
            let (batch, answer) = attempt().await?;
            if batch.is_empty() {
                return Ok(answer);
            }
            match self.commit(batch).await {
                Ok(()) => return Ok(answer),
                Err(StoreError::Conflict(ns, key)) => contended = (ns, key),
                Err(e) => return Err(e.into()),
            }
        }
        Err(StoreError::Contended(contended.0, contended.1).into())
    }
}

/// A paged iteration over one namespace (see [`StateStoreExt::scan`](crate::StateStoreExt::scan)).
pub struct Scan<'a, S: ?Sized> {
    store: &'a S,
    ns: String,
    prefix: String,
    after: Option<String>,
    page: usize,
    done: bool,
}

impl<'a, S: StateStore + ?Sized> Scan<'a, S> {
    pub const DEFAULT_PAGE: usize = 500;

    pub(crate) fn new(store: &'a S, ns: &str, prefix: &str) -> Self {
        Scan { store, ns: ns.to_string(), prefix: prefix.to_string(), after: None, page: Self::DEFAULT_PAGE, done: false }
    }

    /// Documents per page (at least 1).
    pub fn page_size(mut self, n: usize) -> Self {
        self.page = n.max(1);
        self
    }

    /// Start after this key (resuming a scan, or a caller's pagination token).
    pub fn start_after(mut self, key: Option<&str>) -> Self {
        self.after = key.map(str::to_string);
        self
    }

    /// The next page, or `None` when the scan is over (never an empty page).
    pub async fn next_page(&mut self) -> StoreResult<Option<Vec<Doc>>> {
        if self.done {
            return Ok(None);
        }
        let docs = self.store.list(&self.ns, &self.prefix, self.after.as_deref(), self.page).await?;
        if docs.len() < self.page {
            self.done = true;
        }
        match docs.last() {
            Some(last) => {
                self.after = Some(last.key.clone());
                Ok(Some(docs))
            }
            None => {
                self.done = true;
                Ok(None)
            }
        }
    }

    /// The next page decoded as `T`.
    pub async fn next_page_as<T: DeserializeOwned>(&mut self) -> StoreResult<Option<Vec<T>>> {
        match self.next_page().await? {
            Some(docs) => docs.iter().map(Doc::parse).collect::<StoreResult<Vec<T>>>().map(Some),
            None => Ok(None),
        }
    }

    /// Every remaining document.
    pub async fn collect(mut self) -> StoreResult<Vec<Doc>> {
        let mut out = Vec::new();
        while let Some(page) = self.next_page().await? {
            out.extend(page);
        }
        Ok(out)
    }

    /// Every remaining document decoded as `T`.
    pub async fn collect_as<T: DeserializeOwned>(mut self) -> StoreResult<Vec<T>> {
        let mut out = Vec::new();
        while let Some(page) = self.next_page_as::<T>().await? {
            out.extend(page);
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use crate::{Batch, Expect, MemoryStore, SharedStore, StateStoreExt, StoreError, UPDATE_ATTEMPTS};
    use std::sync::Arc;
    use std::sync::atomic::{AtomicU32, Ordering};

    fn store() -> SharedStore {
        Arc::new(MemoryStore::new())
    }

    /// Moves `items/from` to `items/to`, adding one to `counts/moves`, in one batch.
    async fn rename(store: &SharedStore, from: &str, to: &str) -> Result<i64, StoreError> {
        store
            .update_many(|| async {
                let Some((item, v)) = store.get_as::<String>("items", from).await? else {
                    return Ok((Batch::new(), -1));
                };
                let (count, cv) = match store.get_as::<i64>("counts", "moves").await? {
                    Some((c, cv)) => (c, Expect::Version(cv)),
                    None => (0, Expect::Absent),
                };
                let batch = Batch::new()
                    .delete("items", from, Expect::Version(v))
                    .put("items", to, &item, Expect::Absent)
                    .put("counts", "moves", count + 1, cv);
                Ok((batch, count + 1))
            })
            .await
    }

    #[tokio::test]
    async fn writes_every_document_of_the_batch() {
        let store = store();
        store.put_as("items", "a", &"apple".to_string()).await.unwrap();
        assert_eq!(rename(&store, "a", "b").await.unwrap(), 1);
        assert!(store.get("items", "a").await.unwrap().is_none());
        assert_eq!(store.get_as::<String>("items", "b").await.unwrap().unwrap().0, "apple");
        assert_eq!(store.get_as::<i64>("counts", "moves").await.unwrap().unwrap().0, 1);
        // Nothing to move: an empty batch commits nothing and answers what the attempt said.
        assert_eq!(rename(&store, "a", "c").await.unwrap(), -1);
        assert_eq!(store.get_as::<i64>("counts", "moves").await.unwrap().unwrap().0, 1);
    }

    #[tokio::test]
    async fn retries_on_fresh_reads_when_a_document_changed_meanwhile() {
        let store = store();
        store.put_as("items", "a", &"apple".to_string()).await.unwrap();
        let runs = AtomicU32::new(0);
        let answer: Result<i64, StoreError> = store
            .update_many(|| async {
                let (item, v) = store.get_as::<String>("items", "a").await?.unwrap();
                let (count, cv) = store.get_as::<i64>("counts", "n").await?.map_or((0, Expect::Absent), |(c, v)| (c, Expect::Version(v)));
                if runs.fetch_add(1, Ordering::SeqCst) == 0 {
                    // Another writer bumps the counter after this attempt read it.
                    store.put_as("counts", "n", &10i64).await?;
                }
                Ok((Batch::new().put("items", "a", format!("{item}!"), Expect::Version(v)).put("counts", "n", count + 1, cv), count + 1))
            })
            .await;
        assert_eq!(answer.unwrap(), 11, "the second attempt saw the other writer's count");
        assert_eq!(runs.load(Ordering::SeqCst), 2);
        assert_eq!(store.get_as::<String>("items", "a").await.unwrap().unwrap().0, "apple!", "applied once");
    }

    #[tokio::test]
    async fn a_failed_condition_leaves_every_document_as_it_was() {
        let store = store();
        store.put_as("items", "a", &"apple".to_string()).await.unwrap();
        store.put_as("items", "b", &"banana".to_string()).await.unwrap();
        let runs = AtomicU32::new(0);
        let result: Result<(), StoreError> = store
            .update_many(|| async {
                runs.fetch_add(1, Ordering::SeqCst);
                // `b` exists, so its Absent condition fails on every attempt.
                let (_, v) = store.get_as::<String>("items", "a").await?.unwrap();
                Ok((Batch::new().put("items", "a", "changed", Expect::Version(v)).put("items", "b", "changed", Expect::Absent), ()))
            })
            .await;
        match result {
            Err(StoreError::Contended(ns, key)) => assert_eq!((ns.as_str(), key.as_str()), ("items", "b")),
            other => panic!("expected Contended, got {other:?}"),
        }
        assert_eq!(runs.load(Ordering::SeqCst), UPDATE_ATTEMPTS);
        assert_eq!(store.get_as::<String>("items", "a").await.unwrap().unwrap().0, "apple");
        assert_eq!(store.get_as::<String>("items", "b").await.unwrap().unwrap().0, "banana");
    }

    #[tokio::test]
    async fn an_error_of_the_attempt_is_answered_without_a_retry() {
        let store = store();
        let runs = AtomicU32::new(0);
        let result: Result<(), StoreError> = store
            .update_many(|| async {
                runs.fetch_add(1, Ordering::SeqCst);
                Err(StoreError::Backend("refused".into()))
            })
            .await;
        assert!(matches!(result, Err(StoreError::Backend(m)) if m == "refused"));
        assert_eq!(runs.load(Ordering::SeqCst), 1);
    }
}
