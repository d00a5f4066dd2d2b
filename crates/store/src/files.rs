//! Files beside the state store: the data-dir lock, and the one durability policy that object
//! and blob files follow together with the store (see [`Durability`]).
//!
//! Every file a service makes visible is written under a temporary name and renamed into place,
//! so a reader never sees a partial file and a crash leaves at worst an unreferenced temporary
//! (collected at start-up). What differs is when the bytes reach the disk:
//!
//! * [`Durability::Process`]: no fsync. A rename that returned is in the kernel, so the file
//!   survives the process being killed, and the store commit that names it comes after it.
//! * [`Durability::Power`]: the file is fsynced before the rename and the directory after it;
//!   concurrent writers into one directory share the directory fsync ([`DirSync`]).

use crate::Durability;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU8, AtomicU64, Ordering};

static FILE_DURABILITY: AtomicU8 = AtomicU8::new(0);

/// Sets the policy for files of this process (the server does, from `--durability`, before
/// any service opens its files).
pub fn set_durability(d: Durability) {
    FILE_DURABILITY.store(if d == Durability::Power { 1 } else { 0 }, Ordering::SeqCst);
}

/// The policy for files of this process.
pub fn durability() -> Durability {
    if FILE_DURABILITY.load(Ordering::SeqCst) == 1 { Durability::Power } else { Durability::Process }
}

/// Whether files must be fsynced before they are acknowledged.
pub fn fsync_files() -> bool {
    durability() == Durability::Power
}

/// Group fsync of one directory: every caller whose rename happened before an fsync started is
/// covered by it, so N concurrent writers cost one or two directory fsyncs instead of N.
pub struct DirSync {
    dir: PathBuf,
    requested: AtomicU64,
    completed: AtomicU64,
    turn: tokio::sync::Mutex<()>,
}

impl DirSync {
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        DirSync { dir: dir.into(), requested: AtomicU64::new(0), completed: AtomicU64::new(0), turn: tokio::sync::Mutex::new(()) }
    }

    /// Call after the rename; returns when the directory entry is on disk.
    pub async fn sync(&self) -> std::io::Result<()> {
        let ticket = self.requested.fetch_add(1, Ordering::SeqCst) + 1;
        let _turn = self.turn.lock().await;
        if self.completed.load(Ordering::SeqCst) >= ticket {
            return Ok(()); // an fsync that started after our rename already finished
        }
        let covers = self.requested.load(Ordering::SeqCst);
        let dir = self.dir.clone();
        tokio::task::spawn_blocking(move || std::fs::File::open(&dir)?.sync_all())
            .await
            .map_err(std::io::Error::other)??;
        self.completed.fetch_max(covers, Ordering::SeqCst);
        Ok(())
    }
}

/// Without fsync, files up to this size are written on the calling (async) thread.
const IN_PLACE_LIMIT: usize = 256 * 1024;

/// Writes `bytes` to `path` as a whole or not at all (temporary file, rename), fsyncing as the
/// process's [`durability`] asks (the directory through `dir_sync` when given).
pub async fn write_atomically(path: &Path, bytes: Vec<u8>, dir_sync: Option<&DirSync>) -> std::io::Result<()> {
    let power = fsync_files();
    let data_len = bytes.len();
    static SEQ: AtomicU64 = AtomicU64::new(0);
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(format!(".tmp-{}-{}", std::process::id(), SEQ.fetch_add(1, Ordering::Relaxed)));
    let tmp = PathBuf::from(tmp);
    let (p, t, data) = (path.to_path_buf(), tmp.clone(), bytes);
    let write = move || -> std::io::Result<()> {
        let mut f = std::fs::File::create(&t)?;
        f.write_all(&data)?;
        if power {
            f.sync_data()?;
        }
        std::fs::rename(&t, &p)
    };
    if !power && data_len <= IN_PLACE_LIMIT {
        // Tens of microseconds of page-cache work: cheaper in place than the two thread
        // switches of a blocking task (as the store's point reads do).
        write()?;
    } else {
        tokio::task::spawn_blocking(write).await.map_err(std::io::Error::other)??;
    }
    if power {
        match dir_sync {
            Some(d) => d.sync().await?,
            None => {
                let dir = path.parent().unwrap_or(Path::new(".")).to_path_buf();
                tokio::task::spawn_blocking(move || std::fs::File::open(dir)?.sync_all()).await.map_err(std::io::Error::other)??;
            }
        }
    }
    Ok(())
}

/// An exclusive lock on a data dir, held while the value lives: a second server on the same
/// directory (in this or another process) fails to start instead of corrupting the first one's
/// state. The lock is the kernel's (`flock` on `<dir>/codeyard.lock`), so it goes away with
/// the process however it ends; a stale lock file is never a problem.
pub struct DataDirLock {
    _file: std::fs::File,
    path: PathBuf,
}

impl DataDirLock {
    pub fn acquire(data_dir: &Path) -> std::io::Result<DataDirLock> {
        std::fs::create_dir_all(data_dir)?;
        let path = data_dir.join("codeyard.lock");
        let mut file = std::fs::OpenOptions::new().read(true).write(true).create(true).truncate(false).open(&path)?;
        match file.try_lock() {
            Ok(()) => {}
            Err(std::fs::TryLockError::WouldBlock) => {
                let holder = std::fs::read_to_string(&path).unwrap_or_default();
                let holder = holder.trim();
                let who = if holder.is_empty() { String::new() } else { format!(" (pid {holder})") };
                return Err(std::io::Error::new(
                    std::io::ErrorKind::AddrInUse,
                    format!(
                        "the data dir {} is in use by another codeyard server{who}; stop it or choose another --data-dir",
                        data_dir.display()
                    ),
                ));
            }
            Err(std::fs::TryLockError::Error(e)) => return Err(e),
        }
        file.set_len(0)?;
        write!(file, "{}", std::process::id())?;
        Ok(DataDirLock { _file: file, path })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_lock_on_one_dir_is_refused_until_the_first_is_dropped() {
        let dir = tempfile::tempdir().unwrap();
        let first = DataDirLock::acquire(dir.path()).unwrap();
        let err = DataDirLock::acquire(dir.path()).err().expect("second lock refused");
        assert!(err.to_string().contains("in use by another codeyard server"), "{err}");
        assert!(err.to_string().contains(&std::process::id().to_string()), "{err}");
        drop(first);
        DataDirLock::acquire(dir.path()).unwrap();
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn atomic_writes_land_whole() {
        let dir = tempfile::tempdir().unwrap();
        let sync = std::sync::Arc::new(DirSync::new(dir.path()));
        let mut tasks = Vec::new();
        for i in 0..20 {
            let (d, s) = (dir.path().to_path_buf(), sync.clone());
            tasks.push(tokio::spawn(async move {
                write_atomically(&d.join(format!("f{i}")), vec![i as u8; 4096], Some(&s)).await.unwrap();
            }));
        }
        for t in tasks {
            t.await.unwrap();
        }
        for i in 0..20 {
            assert_eq!(std::fs::read(dir.path().join(format!("f{i}"))).unwrap(), vec![i as u8; 4096]);
        }
        sync.sync().await.unwrap();
    }
}
