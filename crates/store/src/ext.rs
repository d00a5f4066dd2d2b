//! The pieces of [`StateStoreExt`](crate::StateStoreExt): paged scans and compare-and-swap updates.

use crate::{Batch, Doc, StateStore, StoreResult};
use serde::de::DeserializeOwned;
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
