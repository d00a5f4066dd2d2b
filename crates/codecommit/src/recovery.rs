//! Start-up repair of the repositories after a crash, before anything serves them.
//!
//! A server killed at any instant leaves at most: git's lock files (`refs/heads/main.lock`,
//! `packed-refs.lock`, ...) of an update that was under way, a receive-pack quarantine
//! (`objects/incoming-*`) or temporary pack files of a push that never finished, and refs whose
//! change is not yet published as an event. The git processes themselves die with the server
//! ([`crate::git::die_with_server`]), and the data-dir lock keeps any other server out, so at
//! start-up nothing else can be using these files. In order:
//!
//! 1. **Locks and temporaries** are removed. A stale lock is what would otherwise refuse every
//!    later push to that branch ("cannot lock ref", "Unable to create ... .lock: File exists").
//!    A ref update is atomic in git (the lock file is renamed over the ref), so removing a lock
//!    rolls the update back to the ref's old value; a rename that happened completed it.
//! 2. **Refs whose object is missing** (a push whose objects did not reach the disk, only
//!    possible after a power loss without `--durability power`) are rolled back to the value
//!    last published, or removed if there is none.
//! 3. **Unpublished ref changes** are published by [`crate::events::Publisher::reconcile_all`]:
//!    one event per ref that differs from the store's record, in the same commit that moves the
//!    record, so every completed update raises its event exactly once.
//!
//! Each repair is logged (WARN) with the repository and what was done.

use crate::events::{self, RefState};
use crate::git;
use crate::repos::{Repos, Repository};
use codeyard_core::AwsResult;
use codeyard_store::StateStoreExt;
use std::path::{Path, PathBuf};

/// Lock files git leaves when it dies while changing the repository's top-level files.
const TOP_LEVEL_LOCKS: &[&str] = &["HEAD.lock", "config.lock", "packed-refs.lock", "shallow.lock", "index.lock", "FETCH_HEAD.lock"];

/// Repairs every repository; answers how many repairs were made.
pub async fn repair_all(repos: &Repos) -> AwsResult<usize> {
    let mut total = 0;
    for ns in repos.store.namespaces("codecommit/").await? {
        if !ns.ends_with("/repositories") {
            continue;
        }
        for repo in repos.store.list_all_as::<Repository>(&ns).await? {
            match repair(repos, &repo).await {
                Ok(done) => {
                    for what in &done {
                        tracing::warn!(repository = %repo.name, id = %repo.id, "start-up repair: {what}");
                    }
                    total += done.len();
                }
                Err(e) => tracing::warn!(repository = %repo.name, "start-up repair failed: {e}"),
            }
        }
    }
    Ok(total)
}

/// Repairs one repository (steps 1 and 2 of the module documentation); answers what it did.
pub async fn repair(repos: &Repos, repo: &Repository) -> AwsResult<Vec<String>> {
    let dir = repos.dir(repo);
    if !tokio::fs::try_exists(&dir).await.unwrap_or(false) {
        return Ok(Vec::new());
    }
    let d = dir.clone();
    let mut done = tokio::task::spawn_blocking(move || remove_leftovers(&d))
        .await
        .map_err(|e| codeyard_core::AwsError::internal(format!("repair: {e}")))?;
    done.extend(roll_back_dangling_refs(repos, repo, &dir).await?);
    Ok(done)
}

/// Step 1: stale locks and temporary object files.
fn remove_leftovers(dir: &Path) -> Vec<String> {
    let mut done = Vec::new();
    for name in TOP_LEVEL_LOCKS {
        let p = dir.join(name);
        if std::fs::remove_file(&p).is_ok() {
            done.push(format!("removed stale lock {name}"));
        }
    }
    let mut locks = Vec::new();
    find_files(&dir.join("refs"), &mut |p| p.extension().is_some_and(|e| e == "lock"), &mut locks);
    for p in locks {
        if std::fs::remove_file(&p).is_ok() {
            let rel = p.strip_prefix(dir).unwrap_or(&p).display().to_string();
            done.push(format!("removed stale ref lock {rel} (the update it guarded is rolled back)"));
        }
    }
    // receive-pack's quarantine of a push that never finished, and temporary packs/objects.
    let objects = dir.join("objects");
    if let Ok(entries) = std::fs::read_dir(&objects) {
        for e in entries.flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            if name.starts_with("incoming-") || name.starts_with("tmp_objdir") {
                if std::fs::remove_dir_all(e.path()).is_ok() {
                    done.push(format!("removed the quarantine objects/{name} of an unfinished push"));
                }
            }
        }
    }
    if let Ok(entries) = std::fs::read_dir(objects.join("pack")) {
        for e in entries.flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            if (name.starts_with("tmp_") || name.starts_with(".tmp-")) && std::fs::remove_file(e.path()).is_ok() {
                done.push(format!("removed temporary pack file objects/pack/{name}"));
            }
        }
    }
    done
}

fn find_files(dir: &Path, want: &mut dyn FnMut(&Path) -> bool, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else { return };
    for e in entries.flatten() {
        let p = e.path();
        match e.file_type() {
            Ok(t) if t.is_dir() => find_files(&p, want, out),
            Ok(_) if want(&p) => out.push(p),
            _ => {}
        }
    }
}

/// Step 2: refs that name an object the repository does not have.
async fn roll_back_dangling_refs(repos: &Repos, repo: &Repository, dir: &Path) -> AwsResult<Vec<String>> {
    let refs = git::refs(dir).await?;
    if refs.is_empty() {
        return Ok(Vec::new());
    }
    let query: String = refs.iter().map(|(_, oid)| format!("{oid}\n")).collect();
    let out = git::run_with(git::command(dir), &["cat-file", "--batch-check=%(objectname) %(objecttype)"], Some(query.as_bytes())).await?;
    let missing: std::collections::HashSet<String> = out
        .text()
        .lines()
        .filter_map(|l| l.strip_suffix(" missing").map(str::to_string))
        .collect();
    if missing.is_empty() {
        return Ok(Vec::new());
    }
    let published = repos
        .store
        .get_as::<RefState>(&events::namespace(&repo.account, &repo.region), &repo.id)
        .await?
        .map(|(s, _)| s.refs)
        .unwrap_or_default();
    let mut done = Vec::new();
    for (name, oid) in refs.iter().filter(|(_, oid)| missing.contains(oid)) {
        let back = match published.get(name) {
            Some(p) if p != oid && git::object_type(dir, p).await?.is_some() => Some(p.clone()),
            _ => None,
        };
        match back {
            Some(p) => {
                git::run_ok(dir, &["update-ref", name, &p]).await?;
                done.push(format!("{name} named the missing object {oid}: rolled back to {p}"));
            }
            None => {
                git::run_ok(dir, &["update-ref", "-d", name]).await?;
                done.push(format!("{name} named the missing object {oid}: removed"));
            }
        }
    }
    Ok(done)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn stale_locks_and_quarantines_are_removed() {
        let dir = tempfile::tempdir().unwrap();
        let repo = dir.path().join("r.git");
        git::init_bare(&repo).await.unwrap();
        std::fs::create_dir_all(repo.join("refs/heads/feature")).unwrap();
        std::fs::write(repo.join("refs/heads/main.lock"), "x").unwrap();
        std::fs::write(repo.join("refs/heads/feature/a.lock"), "x").unwrap();
        std::fs::write(repo.join("packed-refs.lock"), "x").unwrap();
        std::fs::create_dir_all(repo.join("objects/incoming-abc/pack")).unwrap();
        std::fs::write(repo.join("objects/pack/tmp_pack_x"), "x").unwrap();
        let done = remove_leftovers(&repo);
        assert_eq!(done.len(), 5, "{done:?}");
        assert!(!repo.join("refs/heads/main.lock").exists());
        assert!(!repo.join("objects/incoming-abc").exists());
        assert!(remove_leftovers(&repo).is_empty(), "a second pass has nothing to do");
    }
}
