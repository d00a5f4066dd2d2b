//! One async mutex per object key, so the writers of one key queue in-process instead of
//! racing on its compare-and-swap.
//!
//! Without it, N concurrent PUTs of one key all read the same current version, all send a
//! conditional commit, one wins and N-1 read and try again: O(N^2) work and a long tail. With it,
//! the writers of a key take turns (the read, the commit and nothing else is under the lock) and
//! each one's condition holds. The store's condition stays as the safety net for the writers
//! that do not take the lock (turning versioning on rewrites every key).
//!
//! Only one process writes a data dir (the data-dir lock), so an in-process lock is enough.
//! Entries live while someone holds or waits for them; the map holds only contended keys.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use tokio::sync::{Mutex as AsyncMutex, OwnedMutexGuard};

type Id = (String, String);

#[derive(Default)]
pub struct KeyLocks {
    /// Each contended key's mutex and how many requests hold or wait for it.
    held: Mutex<HashMap<Id, (Arc<AsyncMutex<()>>, usize)>>,
}

impl KeyLocks {
    /// Waits for the lock of `(bucket, key)`; it is released when the guard is dropped (also
    /// when a waiting or holding request is cancelled).
    pub async fn lock(&self, bucket: &str, key: &str) -> KeyGuard<'_> {
        let id = (bucket.to_string(), key.to_string());
        let mutex = {
            let mut held = self.held.lock().unwrap();
            let (mutex, users) = held.entry(id.clone()).or_default();
            *users += 1;
            mutex.clone()
        };
        // From here on a cancellation (the client went away) still gives the entry back.
        let entry = Entry { locks: self, id };
        let guard = mutex.lock_owned().await;
        KeyGuard {
            _guard: guard,
            _entry: entry,
        }
    }

    #[cfg(test)]
    pub(super) fn len(&self) -> usize {
        self.held.lock().unwrap().len()
    }
}

/// Holds a key's lock. Fields drop in order: the lock first, then the use of the map entry.
pub struct KeyGuard<'a> {
    _guard: OwnedMutexGuard<()>,
    _entry: Entry<'a>,
}

/// One request's use of a key's entry; the last one removes the entry.
struct Entry<'a> {
    locks: &'a KeyLocks,
    id: Id,
}

impl Drop for Entry<'_> {
    fn drop(&mut self) {
        let mut held = self.locks.held.lock().unwrap();
        if let Some((_, users)) = held.get_mut(&self.id) {
            *users -= 1;
            if *users == 0 {
                held.remove(&self.id);
            }
        }
    }
}
