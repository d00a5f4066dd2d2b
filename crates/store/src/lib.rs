//! codeyard-store: the state store every service keeps its resources in.
//!
//! The model is deliberately small so that a second backend (Postgres) is a matter of one more
//! implementation of [`StateStore`], checked by the same [`conformance`] suite:
//!
//! * **Documents**: JSON values under `(namespace, key)`, each with a version that grows on
//!   every write. Namespaces are `"<service>/<account>/<region>/<kind>"` by convention, so a
//!   listing never crosses accounts or regions.
//! * **Batches**: puts, deletes and queue pushes committed atomically, each put or delete
//!   optionally conditional ([`Expect`]). A condition that fails aborts the whole batch with
//!   [`StoreError::Conflict`], so "create if absent" and compare-and-swap need no locks.
//! * **Queues**: durable work items (the outbox pattern). A state change and the work it causes
//!   are committed together; workers lease items, and an item whose worker died becomes visible
//!   again after the lease: delivery is at least once.
//! * **Counters**: monotonic per name (build numbers).
//! * **Bytes**: raw byte strings under `(namespace, key)`, written and removed in batches like
//!   documents (small S3 object bodies, committed with the metadata that names them).
//!
//! Backends: [`SqliteStore`] (the server's; one writer thread with group commit, reads on their
//! own connections, [`Durability`] says what an acknowledged write survives) and
//! [`MemoryStore`] (unit tests). [`StateStoreExt`] adds typed access, paged [`Scan`]s and the one
//! compare-and-swap loop ([`StateStoreExt::update`]); [`files`] holds the data-dir lock and the
//! file-durability policy object and blob writes share with the store.

mod sqlite;
mod checkpoint;
mod memory;
mod ext;
pub mod conformance;
pub mod files;

pub use sqlite::{Durability, SqliteStore, StoreOptions};
pub use memory::MemoryStore;
pub use ext::{Change, Scan, UPDATE_ATTEMPTS, Update};

use async_trait::async_trait;
use codeyard_core::AwsError;
use serde::{Serialize, de::DeserializeOwned};
use serde_json::Value;
use std::sync::Arc;
use std::time::Duration;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// A condition of a batch did not hold: (namespace, key) of the first failed one.
    #[error("conflict on {0}/{1}")]
    Conflict(String, String),
    /// [`StateStoreExt::update`] lost the compare-and-swap race on every attempt.
    #[error("{0}/{1} kept changing during the update; try again")]
    Contended(String, String),
    #[error("store: {0}")]
    Backend(String),
}

impl From<StoreError> for AwsError {
    fn from(e: StoreError) -> Self {
        AwsError::internal(e)
    }
}

pub type StoreResult<T> = Result<T, StoreError>;

/// A stored document.
#[derive(Clone, Debug, PartialEq)]
pub struct Doc {
    pub key: String,
    pub value: Value,
    pub version: i64,
}

impl Doc {
    pub fn parse<T: DeserializeOwned>(&self) -> StoreResult<T> {
        serde_json::from_value(self.value.clone()).map_err(|e| StoreError::Backend(format!("decode {}: {e}", self.key)))
    }
}

/// A condition on the current state of one document.
#[derive(Clone, Debug, PartialEq)]
pub enum Expect {
    /// No condition.
    Any,
    /// The document must not exist.
    Absent,
    /// The document must exist (any version).
    Present,
    /// The document must exist with exactly this version.
    Version(i64),
}

/// Checks `expect` against the version of `(ns, key)` (None: absent): every backend's condition.
pub(crate) fn check(expect: &Expect, current: Option<i64>, ns: &str, key: &str) -> StoreResult<()> {
    let ok = match expect {
        Expect::Any => true,
        Expect::Absent => current.is_none(),
        Expect::Present => current.is_some(),
        Expect::Version(v) => current == Some(*v),
    };
    if ok { Ok(()) } else { Err(StoreError::Conflict(ns.to_string(), key.to_string())) }
}

#[derive(Clone, Debug)]
pub enum Op {
    Put { ns: String, key: String, value: Value, expect: Expect },
    Delete { ns: String, key: String, expect: Expect },
    /// Push a work item on a durable queue.
    Enqueue { queue: String, payload: Value, delay: Duration },
    /// Store raw bytes under `(ns, key)` (small object bodies; see [`StateStore::get_bytes`]).
    /// Bytes live beside the documents, not in them: a listing of documents never reads them.
    PutBytes { ns: String, key: String, data: bytes::Bytes },
    /// Remove the bytes under `(ns, key)` (nothing if there are none).
    DeleteBytes { ns: String, key: String },
    /// Remove a (leased) queue item in this commit, as [`StateStore::ack`] does on its own:
    /// the work an item caused and its removal then commit together, or neither does.
    Ack { id: i64 },
}

/// An atomic set of operations.
#[derive(Clone, Debug, Default)]
pub struct Batch {
    pub ops: Vec<Op>,
}

impl Batch {
    pub fn new() -> Self {
        Self::default()
    }
    pub fn put(mut self, ns: impl Into<String>, key: impl Into<String>, value: impl Serialize, expect: Expect) -> Self {
        let value = serde_json::to_value(value).expect("document serializes");
        self.ops.push(Op::Put { ns: ns.into(), key: key.into(), value, expect });
        self
    }
    pub fn delete(mut self, ns: impl Into<String>, key: impl Into<String>, expect: Expect) -> Self {
        self.ops.push(Op::Delete { ns: ns.into(), key: key.into(), expect });
        self
    }
    pub fn enqueue(mut self, queue: impl Into<String>, payload: impl Serialize) -> Self {
        let payload = serde_json::to_value(payload).expect("payload serializes");
        self.ops.push(Op::Enqueue { queue: queue.into(), payload, delay: Duration::ZERO });
        self
    }
    pub fn enqueue_delayed(mut self, queue: impl Into<String>, payload: impl Serialize, delay: Duration) -> Self {
        let payload = serde_json::to_value(payload).expect("payload serializes");
        self.ops.push(Op::Enqueue { queue: queue.into(), payload, delay });
        self
    }
    /// Store `data` under `(ns, key)` in this commit (replacing what was there).
    pub fn put_bytes(mut self, ns: impl Into<String>, key: impl Into<String>, data: bytes::Bytes) -> Self {
        self.ops.push(Op::PutBytes { ns: ns.into(), key: key.into(), data });
        self
    }
    pub fn delete_bytes(mut self, ns: impl Into<String>, key: impl Into<String>) -> Self {
        self.ops.push(Op::DeleteBytes { ns: ns.into(), key: key.into() });
        self
    }
    /// Acknowledge (remove) queue item `id` in this commit (nothing if it is gone already).
    pub fn ack(mut self, id: i64) -> Self {
        self.ops.push(Op::Ack { id });
        self
    }
    /// Raise an event on an event bus in this commit (see `codeyard_core::hub::BusEvent`).
    pub fn publish_event(self, event: codeyard_core::hub::BusEvent) -> Self {
        self.enqueue(codeyard_core::hub::EVENTS_INGRESS_QUEUE, event)
    }
    pub fn is_empty(&self) -> bool {
        self.ops.is_empty()
    }
}

/// A leased queue item.
#[derive(Clone, Debug)]
pub struct QueueItem {
    pub id: i64,
    pub queue: String,
    pub payload: Value,
    /// How many times it has been leased before this lease (0 on the first delivery).
    pub attempts: u32,
}

/// The state store contract. Every backend passes [`conformance::run_all`].
///
/// * Reads see every batch committed before they started.
/// * `commit` is atomic and durable when it returns: after a crash either all of a batch is
///   there or none of it.
/// * `list` returns documents of one namespace ordered by key, starting after `start_after`.
/// * `lease` hands each ready item to one caller at a time; an item not acked or released
///   within `lease` becomes ready again (at-least-once).
#[async_trait]
pub trait StateStore: Send + Sync + 'static {
    async fn get(&self, ns: &str, key: &str) -> StoreResult<Option<Doc>>;
    async fn list(&self, ns: &str, prefix: &str, start_after: Option<&str>, limit: usize) -> StoreResult<Vec<Doc>>;
    /// Namespaces starting with `prefix` (e.g. every account/region of one service).
    async fn namespaces(&self, prefix: &str) -> StoreResult<Vec<String>>;
    async fn commit(&self, batch: Batch) -> StoreResult<()>;
    /// [`commit`](Self::commit), with the batch's place in the commit order taken when this is
    /// called rather than when the answer is awaited: a batch submitted after another one's
    /// `submit` returned is applied after it (the writers of one S3 key pipeline their commits
    /// this way). The answer, as `commit`'s, comes once the batch is durable; dropping it does
    /// not withdraw the batch.
    fn submit(&self, batch: Batch) -> Submitted;
    async fn lease(&self, queue: &str, max: usize, lease: Duration) -> StoreResult<Vec<QueueItem>>;
    /// Acknowledge (remove) an item.
    async fn ack(&self, id: i64) -> StoreResult<()>;
    /// Make the item ready again after `delay` (a retry with backoff).
    async fn release(&self, id: i64, delay: Duration) -> StoreResult<()>;
    /// Items still in a queue (for observability and tests).
    async fn queue_len(&self, queue: &str) -> StoreResult<usize>;
    /// Increments and returns the counter (the first call returns 1).
    async fn next_counter(&self, name: &str) -> StoreResult<i64>;
    /// The bytes stored under `(ns, key)` by [`Batch::put_bytes`].
    async fn get_bytes(&self, ns: &str, key: &str) -> StoreResult<Option<bytes::Bytes>>;
    /// Keys of the bytes in `ns`, in order, after `start_after` (garbage collection).
    async fn list_bytes_keys(&self, ns: &str, start_after: Option<&str>, limit: usize) -> StoreResult<Vec<String>>;
}

pub type SharedStore = Arc<dyn StateStore>;

/// The answer to a [`StateStore::submit`]ted batch.
pub type Submitted = std::pin::Pin<Box<dyn std::future::Future<Output = StoreResult<()>> + Send + 'static>>;

/// Typed conveniences over any [`StateStore`]: typed reads and writes, paged iteration
/// ([`scan`](StateStoreExt::scan)) and compare-and-swap updates with one retry policy
/// ([`update`](StateStoreExt::update)). Use these instead of hand-written paging and retry loops.
#[async_trait]
pub trait StateStoreExt: StateStore {
    async fn get_as<T: DeserializeOwned + Send>(&self, ns: &str, key: &str) -> StoreResult<Option<(T, i64)>> {
        match self.get(ns, key).await? {
            Some(d) => Ok(Some((d.parse()?, d.version))),
            None => Ok(None),
        }
    }

    /// Every document of a namespace (paged internally), ordered by key.
    async fn list_all_as<T: DeserializeOwned + Send>(&self, ns: &str) -> StoreResult<Vec<T>> {
        self.scan(ns, "").collect_as().await
    }

    async fn put_as<T: Serialize + Sync>(&self, ns: &str, key: &str, value: &T) -> StoreResult<()> {
        self.commit(Batch::new().put(ns, key, value, Expect::Any)).await
    }

    /// Pages through the documents of `ns` whose key starts with `prefix`, in key order
    /// ([`Scan::DEFAULT_PAGE`] at a time unless [`Scan::page_size`] says otherwise):
    ///
    /// ```ignore
    /// let mut scan = store.scan(&ns, "build/");
    /// while let Some(page) = scan.next_page().await? {
    ///     for doc in page { /* ... */ }
    /// }
    /// ```
    ///
    /// Each page is one consistent read; a document written meanwhile shows up if its key is
    /// after the last one already returned.
    fn scan<'a>(&'a self, ns: &str, prefix: &str) -> Scan<'a, Self> {
        Scan::new(self, ns, prefix)
    }

    /// Compare-and-swap on one document: reads it, asks `change` what to do with it (`None`:
    /// it does not exist), and writes the answer conditional on the version read. When another
    /// writer got there first, it re-reads and asks again, up to [`UPDATE_ATTEMPTS`] times with
    /// a short growing backoff; then it gives up with [`StoreError::Contended`] (a 500
    /// InternalFailure at the edge, which every SDK retries). `change` may also add more
    /// operations to the same atomic batch ([`Update::also`]), e.g. an event.
    ///
    /// Answers the document as stored afterwards (`None` when deleted or left absent), or the
    /// first error `change` returned (it is not retried).
    async fn update<T, E, F>(&self, ns: &str, key: &str, mut change: F) -> Result<Option<T>, E>
    where
        T: Serialize + DeserializeOwned + Send + Sync,
        E: From<StoreError> + Send,
        F: FnMut(Option<T>) -> Result<Update<T>, E> + Send,
    {
        for attempt in 0..UPDATE_ATTEMPTS {
            if attempt > 0 {
                tokio::time::sleep(ext::backoff(attempt)).await;
            }
            let (current, expect) = match self.get_as::<T>(ns, key).await? {
                Some((value, version)) => (Some(value), Expect::Version(version)),
                None => (None, Expect::Absent),
            };
            let Update { change: decided, also } = change(current)?;
            let (batch, after) = match decided {
                Change::Keep(value) => {
                    if also.is_empty() {
                        return Ok(value);
                    }
                    // Still conditional: the extra operations assume the state that was read.
                    let guard = match &value {
                        Some(v) => Batch::new().put(ns, key, v, expect),
                        None => Batch::new().delete(ns, key, expect),
                    };
                    (guard, value)
                }
                Change::Put(value) => (Batch::new().put(ns, key, &value, expect), Some(value)),
                Change::Delete => (Batch::new().delete(ns, key, expect), None),
            };
            let mut batch = batch;
            batch.ops.extend(also.ops);
            match self.commit(batch).await {
                Ok(()) => return Ok(after),
                Err(StoreError::Conflict(cns, ckey)) if cns == ns && ckey == key => continue,
                Err(e) => return Err(e.into()),
            }
        }
        Err(StoreError::Contended(ns.to_string(), key.to_string()).into())
    }
}

impl<S: StateStore + ?Sized> StateStoreExt for S {}
