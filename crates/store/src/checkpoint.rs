//! The SQLite store's background thread for everything that waits on the disk: WAL checkpoints
//! and, with [`Durability::Process`], the periodic fsync of the WAL.
//!
//! Both used to run on the writer thread (SQLite's automatic checkpoint at the end of a commit,
//! and the once-a-second `fdatasync`), so every write queued behind an fsync that a busy disk can
//! stretch to hundreds of milliseconds: the writes' tail latency was the disk's. Here they run on
//! their own connection and thread. A PASSIVE checkpoint never takes the write lock, so the
//! writer keeps appending to the WAL while pages are copied into the database file; the writer
//! restarts the WAL from its start on its next commit once a checkpoint has copied all of it.
//!
//! **Bounding the WAL.** SQLite restarts the WAL from its start only when a write transaction
//! begins while the whole WAL has been copied into the database. With checkpoints on this thread
//! and a writer that commits every fraction of a millisecond under load, that moment never comes:
//! each PASSIVE checkpoint copies what was there when it started while the writer appends more,
//! so the WAL grew without bound (2.3 GB in a sustained benchmark). So once the WAL file is over
//! [`WAL_LIMIT`], this thread asks the writer ([`Checkpointer::take_restart`]) to run one PASSIVE
//! checkpoint itself between two group commits: it copies only what arrived since this thread's
//! last checkpoint (the bulk is already copied), the next commit restarts the WAL from its start,
//! and `journal_size_limit` truncates the file back to [`WAL_LIMIT`]. The writer pays that
//! checkpoint (a few milliseconds, two fsyncs) once per [`WAL_LIMIT`] of writes, not per commit.
//!
//! The durability promise is unchanged: a commit is acknowledged once it is in the WAL (and, in
//! [`Durability::Power`], fsynced by the writer itself); this thread only bounds the WAL's size
//! and, in process mode, how much a power loss can take (the last [`SYNC_INTERVAL`]).

use crate::{Durability, StoreError, StoreResult};
use rusqlite::Connection;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// In [`crate::Durability::Process`] mode, how often the WAL is fsynced when there were commits.
pub const SYNC_INTERVAL: Duration = Duration::from_secs(1);

/// How often the WAL is checkpointed while there are commits (SQLite's own default, 1000 pages,
/// is reached in well under this at full write load, so the WAL stays a few MB).
const CHECKPOINT_INTERVAL: Duration = Duration::from_millis(100);

/// The WAL file size past which the writer finishes a checkpoint itself (see the module
/// documentation); also the size SQLite truncates the WAL back to when it restarts it.
pub(crate) const WAL_LIMIT: u64 = 64 << 20;

/// The writer's side: marks commits, and stops the thread when dropped (with the writer).
pub(crate) struct Checkpointer {
    dirty: Arc<AtomicBool>,
    restart: Arc<AtomicBool>,
    _stop: mpsc::Sender<()>,
}

impl Checkpointer {
    /// Opens the thread's connection to the database at `path` (already in WAL mode).
    pub(crate) fn spawn(path: &Path, durability: Durability, wal_limit: u64) -> StoreResult<Checkpointer> {
        let conn = Connection::open(path).map_err(backend)?;
        let sync = if durability == Durability::Power { "FULL" } else { "NORMAL" };
        conn.pragma_update(None, "synchronous", sync).map_err(backend)?;
        let wal = PathBuf::from(format!("{}-wal", path.display()));
        let dirty = Arc::new(AtomicBool::new(false));
        let (stop, stopped) = mpsc::channel::<()>();
        let restart = Arc::new(AtomicBool::new(false));
        let (d, r) = (dirty.clone(), restart.clone());
        let periodic_sync = durability == Durability::Process;
        std::thread::Builder::new()
            .name("store-checkpoint".into())
            .spawn(move || run(conn, wal, d, r, wal_limit, stopped, periodic_sync))
            .map_err(backend)?;
        Ok(Checkpointer { dirty, restart, _stop: stop })
    }

    /// Whether the writer should finish a checkpoint itself now (the WAL is over its limit).
    pub(crate) fn take_restart(&self) -> bool {
        self.restart.load(Ordering::Acquire) && self.restart.swap(false, Ordering::AcqRel)
    }

    /// Called by the writer after each commit.
    pub(crate) fn committed(&self) {
        self.dirty.store(true, Ordering::Release);
    }
}

fn backend(e: impl std::fmt::Display) -> StoreError {
    StoreError::Backend(e.to_string())
}

/// The writer's half of bounding the WAL: a PASSIVE checkpoint on the writer's own connection
/// between two transactions, so that nothing is appended while it runs and, unless a reader
/// still holds an older snapshot (then the next round tries again), the whole WAL is copied and
/// the next commit restarts it.
pub(crate) fn finish_on_writer(conn: &Connection) {
    let started = Instant::now();
    match conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |r| Ok((r.get::<_, i64>(1)?, r.get::<_, i64>(2)?))) {
        Ok((log, copied)) => {
            tracing::debug!(wal_frames = log, copied, took_ms = started.elapsed().as_millis() as u64, "store: WAL checkpointed by the writer")
        }
        Err(e) => tracing::warn!(error = %e, "store checkpoint on the writer failed"),
    }
}

fn run(
    conn: Connection,
    wal: PathBuf,
    dirty: Arc<AtomicBool>,
    restart: Arc<AtomicBool>,
    wal_limit: u64,
    stopped: mpsc::Receiver<()>,
    periodic_sync: bool,
) {
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
            if std::fs::metadata(&wal).is_ok_and(|m| m.len() > wal_limit) {
                restart.store(true, Ordering::Release);
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
