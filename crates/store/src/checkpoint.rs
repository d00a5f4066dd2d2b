//! The SQLite store's background thread for everything that waits on the disk: WAL checkpoints
//! and, with [`Durability::Process`], the periodic fsync of the WAL.
//!
//! Both used to run on the writer thread (SQLite's automatic checkpoint at the end of a commit,
//! and the once-a-second `fdatasync`), so every write queued behind an fsync that a busy disk can
//! stretch to hundreds of milliseconds: the writes' tail latency was the disk's. Here they run on
//! their own connection and thread. A PASSIVE checkpoint never takes the write lock, so the
//! writer keeps appending to the WAL while pages are copied into the database file; the writer
//! restarts the WAL from its start on its next commit once a checkpoint has copied all of it.
//! The durability promise is unchanged: a commit is acknowledged once it is in the WAL (and, in
//! [`Durability::Power`], fsynced by the writer itself); this thread only bounds the WAL's size
//! and, in process mode, how much a power loss can take (the last [`SYNC_INTERVAL`]).

use crate::sqlite::SYNC_INTERVAL;
use crate::{Durability, StoreError, StoreResult};
use rusqlite::Connection;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// How often the WAL is checkpointed while there are commits (SQLite's own default, 1000 pages,
/// is reached in well under this at full write load, so the WAL stays a few MB).
const CHECKPOINT_INTERVAL: Duration = Duration::from_millis(100);

/// The writer's side: marks commits, and stops the thread when dropped (with the writer).
pub(crate) struct Checkpointer {
    dirty: Arc<AtomicBool>,
    _stop: mpsc::Sender<()>,
}

impl Checkpointer {
    /// Opens the thread's connection to the database at `path` (already in WAL mode).
    pub(crate) fn spawn(path: &Path, durability: Durability) -> StoreResult<Checkpointer> {
        let conn = Connection::open(path).map_err(backend)?;
        let sync = if durability == Durability::Power { "FULL" } else { "NORMAL" };
        conn.pragma_update(None, "synchronous", sync).map_err(backend)?;
        let wal = PathBuf::from(format!("{}-wal", path.display()));
        let dirty = Arc::new(AtomicBool::new(false));
        let (stop, stopped) = mpsc::channel::<()>();
        let d = dirty.clone();
        let periodic_sync = durability == Durability::Process;
        std::thread::Builder::new()
            .name("store-checkpoint".into())
            .spawn(move || run(conn, wal, d, stopped, periodic_sync))
            .map_err(backend)?;
        Ok(Checkpointer { dirty, _stop: stop })
    }

    /// Called by the writer after each commit.
    pub(crate) fn committed(&self) {
        self.dirty.store(true, Ordering::Release);
    }
}

fn backend(e: impl std::fmt::Display) -> StoreError {
    StoreError::Backend(e.to_string())
}

fn run(conn: Connection, wal: PathBuf, dirty: Arc<AtomicBool>, stopped: mpsc::Receiver<()>, periodic_sync: bool) {
    let mut wal_file: Option<std::fs::File> = None;
    let mut unsynced = false;
    let mut last_sync = Instant::now();
    loop {
        let last = matches!(stopped.recv_timeout(CHECKPOINT_INTERVAL), Err(mpsc::RecvTimeoutError::Disconnected));
        if dirty.swap(false, Ordering::AcqRel) {
            unsynced = true;
            // PASSIVE: copies what no reader still needs; never blocks the writer or readers.
            if let Err(e) = conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |_| Ok(())) {
                tracing::warn!(error = %e, "store checkpoint failed");
            }
        }
        if periodic_sync && unsynced && (last || last_sync.elapsed() >= SYNC_INTERVAL) {
            if wal_file.is_none() {
                wal_file = std::fs::OpenOptions::new().write(true).open(&wal).ok();
            }
            if let Some(f) = &wal_file
                && let Err(e) = f.sync_data()
            {
                tracing::warn!(error = %e, "fsync of the store's WAL failed");
            }
            unsynced = false;
            last_sync = Instant::now();
        }
        if last {
            return;
        }
    }
}
