//! "CodeCommit Repository State Change" events: exactly one per accepted ref update.
//!
//! The store keeps, per repository, a [`RefState`] document: the value of every branch and tag
//! as last published. Publishing an update means committing, in ONE store batch, the events and
//! the new RefState, conditional on the RefState version read (compare-and-swap). So:
//!
//! * a crash after git moved a ref but before the batch committed loses nothing: at start-up
//!   [`Publisher::reconcile_all`] compares every repository's refs with its RefState and
//!   publishes the differences (one event per changed ref);
//! * nothing is published twice: an update is published by the batch that moves RefState past
//!   it, and a batch built on a stale RefState fails its condition.
//!
//! Within one run the exact updates are known (the commands receive-pack accepted, or the
//! update-ref an API call made), and each becomes its own event with its own old and new
//! commit. Two pushes can finish in either order, so an update whose old value is not yet the
//! published one waits as "pending" (in memory) until its predecessor is published, and then
//! both go out in order. When no update of a repository is in flight any more, whatever still
//! differs between git and RefState (an update whose request died) is published as a
//! difference and leftover pending updates are dropped.

use crate::git::{self, ZERO_OID};
use crate::repos::{self, Repos, Repository};
use codeyard_core::AwsResult;
use codeyard_core::hub::BusEvent;
use codeyard_store::{Batch, Expect, StateStoreExt};
use serde_json::{Value, json};
use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

pub const DETAIL_TYPE: &str = "CodeCommit Repository State Change";

pub use crate::repos::{RefState, refstate_namespace as namespace};

/// One accepted ref update (`ZERO_OID` as old: created; as new: deleted).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RefUpdate {
    pub name: String,
    pub old: String,
    pub new: String,
}

/// Only branches and tags raise events (and are tracked).
fn tracked(full_ref: &str) -> bool {
    full_ref.starts_with("refs/heads/") || full_ref.starts_with("refs/tags/")
}

/// The event detail AWS sends for one reference change.
pub fn detail(repo: &Repository, update: &RefUpdate, caller: Option<&str>) -> Value {
    let (kind, short) = match update.name.strip_prefix("refs/heads/") {
        Some(b) => ("branch", b),
        None => (
            "tag",
            update
                .name
                .strip_prefix("refs/tags/")
                .unwrap_or(&update.name),
        ),
    };
    let event = if update.old == ZERO_OID {
        "referenceCreated"
    } else if update.new == ZERO_OID {
        "referenceDeleted"
    } else {
        "referenceUpdated"
    };
    let mut d = json!({
        "event": event,
        "repositoryName": repo.name,
        "repositoryId": repo.id,
        "referenceType": kind,
        "referenceName": short,
        "referenceFullName": update.name,
    });
    if update.new != ZERO_OID {
        d["commitId"] = json!(update.new);
    }
    if update.old != ZERO_OID {
        d["oldCommitId"] = json!(update.old);
    }
    if let Some(c) = caller {
        d["callerUserArn"] = json!(c);
    }
    d
}

#[derive(Default)]
struct RepoEvents {
    inflight: AtomicUsize,
    /// Updates accepted by git whose predecessor is not published yet, by ref.
    pending: tokio::sync::Mutex<HashMap<String, Vec<RefUpdate>>>,
}

/// Publishes ref updates of every repository (see the module documentation).
pub struct Publisher {
    repos: Repos,
    by_repo: Mutex<HashMap<String, Arc<RepoEvents>>>,
}

/// Marks a ref-changing operation in flight; hand it back to [`Publisher::finish`].
pub struct InFlight {
    entry: Arc<RepoEvents>,
    done: bool,
}

impl Drop for InFlight {
    fn drop(&mut self) {
        if !self.done {
            self.entry.inflight.fetch_sub(1, Ordering::SeqCst);
        }
    }
}

impl Publisher {
    pub fn new(repos: Repos) -> Self {
        Publisher {
            repos,
            by_repo: Mutex::new(HashMap::new()),
        }
    }

    fn entry(&self, repo_id: &str) -> Arc<RepoEvents> {
        self.by_repo
            .lock()
            .unwrap()
            .entry(repo_id.to_string())
            .or_default()
            .clone()
    }

    /// Call before changing refs of a repository (before receive-pack starts).
    pub fn begin(&self, repo: &Repository) -> InFlight {
        let entry = self.entry(&repo.id);
        entry.inflight.fetch_add(1, Ordering::SeqCst);
        InFlight { entry, done: false }
    }

    /// Publishes `updates` (the ones git accepted) of `repo`, in order per ref.
    pub async fn finish(
        &self,
        repo: &Repository,
        mut flight: InFlight,
        updates: Vec<RefUpdate>,
        caller: Option<&str>,
    ) -> AwsResult<()> {
        let entry = flight.entry.clone();
        let mut pending = entry.pending.lock().await;
        for u in updates
            .into_iter()
            .filter(|u| tracked(&u.name) && u.old != u.new)
        {
            pending.entry(u.name.clone()).or_default().push(u);
        }
        flight.done = true;
        let last = entry.inflight.fetch_sub(1, Ordering::SeqCst) == 1;
        self.publish_locked(repo, &mut pending, last, caller).await
    }

    /// Publishes whatever differs between git and the RefState of `repo` (start-up, or after
    /// something outside a request changed refs).
    pub async fn reconcile(&self, repo: &Repository) -> AwsResult<()> {
        let entry = self.entry(&repo.id);
        let mut pending = entry.pending.lock().await;
        let idle = entry.inflight.load(Ordering::SeqCst) == 0;
        self.publish_locked(repo, &mut pending, idle, None).await
    }

    pub async fn reconcile_all(&self) -> AwsResult<()> {
        for ns in self.repos.store.namespaces("codecommit/").await? {
            if !ns.ends_with("/repositories") {
                continue;
            }
            for repo in self.repos.store.list_all_as::<Repository>(&ns).await? {
                if let Err(e) = self.reconcile(&repo).await {
                    tracing::warn!(repository = %repo.name, "reconciling events failed: {e}");
                }
            }
        }
        Ok(())
    }

    async fn publish_locked(
        &self,
        repo: &Repository,
        pending: &mut HashMap<String, Vec<RefUpdate>>,
        idle: bool,
        caller: Option<&str>,
    ) -> AwsResult<()> {
        let dir = self.repos.dir(repo);
        let ns = namespace(&repo.account, &repo.region);
        let before = &*pending;
        // Under the per-repository lock only this process writes RefState, so this runs once
        // unless the metadata changed meanwhile (a rename or UpdateDefaultBranch).
        // Answers None when the repository was deleted meanwhile, else what is still pending
        // and the default branch set.
        let published = self
            .repos
            .store
            .update_many::<_, codeyard_core::AwsError, _, _>(|| async {
                let Some((mut state, version)) =
                    self.repos.store.get_as::<RefState>(&ns, &repo.id).await?
                else {
                    return Ok((Batch::new(), None)); // deleted meanwhile
                };
                let mut out: Vec<RefUpdate> = Vec::new();
                let mut chained = before.clone();
                for (name, list) in chained.iter_mut() {
                    loop {
                        let current = state
                            .refs
                            .get(name)
                            .cloned()
                            .unwrap_or_else(|| ZERO_OID.to_string());
                        let Some(i) = list.iter().position(|u| u.old == current) else {
                            break;
                        };
                        let u = list.remove(i);
                        set(&mut state, &u.name, &u.new);
                        out.push(u);
                    }
                }
                if idle {
                    let actual: BTreeMap<String, String> = git::refs(&dir)
                        .await?
                        .into_iter()
                        .filter(|(n, _)| tracked(n))
                        .collect();
                    let names: std::collections::BTreeSet<String> =
                        actual.keys().chain(state.refs.keys()).cloned().collect();
                    for name in names {
                        let old = state
                            .refs
                            .get(&name)
                            .cloned()
                            .unwrap_or_else(|| ZERO_OID.to_string());
                        let new = actual
                            .get(&name)
                            .cloned()
                            .unwrap_or_else(|| ZERO_OID.to_string());
                        if old != new {
                            // A change git made that no request published (a crash between git
                            // and the store, or a request that died): published now, once.
                            tracing::warn!(repository = %repo.name, reference = %name, %old, %new, "publishing an unpublished ref change");
                            set(&mut state, &name, &new);
                            out.push(RefUpdate { name, old, new });
                        }
                    }
                    chained.clear();
                }
                if out.is_empty() {
                    return Ok((Batch::new(), Some((chained, None))));
                }
                // The repository as it is named now; the first branch becomes the default branch.
                let current = self
                    .repos
                    .find(&repo.account, &repo.region, &repo.name)
                    .await?;
                let current = match current {
                    Some((r, v)) if r.id == repo.id => Some((r, v)),
                    _ => None,
                };
                let named = current
                    .as_ref()
                    .map(|(r, _)| r.clone())
                    .unwrap_or_else(|| repo.clone());
                let mut batch = Batch::new().put(&ns, &repo.id, &state, Expect::Version(version));
                for u in &out {
                    let d = detail(&named, u, caller);
                    batch = batch.publish_event(BusEvent::aws_service_event(
                        &repo.account,
                        &repo.region,
                        "aws.codecommit",
                        DETAIL_TYPE,
                        vec![named.arn()],
                        d,
                    ));
                }
                let mut new_default = None;
                if let Some((mut r, v)) = current
                    && r.default_branch.is_none()
                    && let Some(b) = out
                        .iter()
                        .find(|u| u.new != ZERO_OID)
                        .and_then(|u| u.name.strip_prefix("refs/heads/"))
                {
                    r.default_branch = Some(b.to_string());
                    new_default = Some(b.to_string());
                    batch = batch.put(
                        repos::namespace(&r.account, &r.region),
                        &r.name,
                        &r,
                        Expect::Version(v),
                    );
                }
                Ok((batch, Some((chained, new_default))))
            })
            .await?;
        let Some((chained, new_default)) = published else {
            return Ok(());
        };
        *pending = chained;
        pending.retain(|_, l| !l.is_empty());
        if let Some(b) = new_default {
            let _ = git::run(&dir, &["symbolic-ref", "HEAD", &format!("refs/heads/{b}")]).await;
        }
        Ok(())
    }
}

fn set(state: &mut RefState, name: &str, oid: &str) {
    if oid == ZERO_OID {
        state.refs.remove(name);
    } else {
        state.refs.insert(name.to_string(), oid.to_string());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn repo() -> Repository {
        Repository {
            name: "r".into(),
            id: "id-1".into(),
            account: "000000000000".into(),
            region: "eu-west-1".into(),
            description: None,
            default_branch: None,
            tags: Default::default(),
            created: codeyard_core::time::now(),
            last_modified: codeyard_core::time::now(),
        }
    }

    #[test]
    fn detail_has_awss_shape() {
        let a = "a".repeat(40);
        let b = "b".repeat(40);
        let created = detail(
            &repo(),
            &RefUpdate {
                name: "refs/heads/main".into(),
                old: ZERO_OID.into(),
                new: a.clone(),
            },
            None,
        );
        assert_eq!(created["event"], "referenceCreated");
        assert_eq!(created["referenceType"], "branch");
        assert_eq!(created["referenceName"], "main");
        assert_eq!(created["commitId"], json!(a));
        assert!(created.get("oldCommitId").is_none());
        let updated = detail(
            &repo(),
            &RefUpdate {
                name: "refs/tags/v1".into(),
                old: a.clone(),
                new: b.clone(),
            },
            Some("arn"),
        );
        assert_eq!(updated["event"], "referenceUpdated");
        assert_eq!(updated["referenceType"], "tag");
        assert_eq!(updated["oldCommitId"], json!(a));
        let deleted = detail(
            &repo(),
            &RefUpdate {
                name: "refs/heads/x".into(),
                old: b,
                new: ZERO_OID.into(),
            },
            None,
        );
        assert_eq!(deleted["event"], "referenceDeleted");
        assert!(deleted.get("commitId").is_none());
    }
}

/// The outbox against a real store and real git: crash recovery and exactly-once.
#[cfg(test)]
mod outbox_tests {
    use super::*;
    use codeyard_core::RequestContext;
    use codeyard_core::hub::EVENTS_INGRESS_QUEUE;
    use codeyard_store::{SharedStore, SqliteStore};
    use std::path::Path;
    use std::sync::Arc;

    async fn setup(dir: &Path) -> (Repos, Repository, SharedStore) {
        let store: SharedStore = Arc::new(SqliteStore::open(&dir.join("state.db")).await.unwrap());
        let repos = Repos { store: store.clone(), data_dir: dir.to_path_buf() };
        let ctx = RequestContext::internal("000000000000", "eu-west-1", "http://localhost:4566");
        let repo = repos.create(&ctx, "r", None, Default::default()).await.unwrap();
        (repos, repo, store)
    }

    async fn commit(dir: &Path, parent: Option<&str>) -> String {
        let tree = git::run_ok(dir, &["mktree"]).await.unwrap().line();
        let mut args = vec!["commit-tree", tree.as_str(), "-m", "x"];
        if let Some(p) = parent {
            args.extend(["-p", p]);
        }
        let mut cmd = git::command(dir);
        cmd.env("GIT_AUTHOR_NAME", "a").env("GIT_AUTHOR_EMAIL", "a@b").env("GIT_COMMITTER_NAME", "a").env("GIT_COMMITTER_EMAIL", "a@b");
        git::run_with(cmd, &args, None).await.unwrap().line()
    }

    /// A repository with one commit `c1` not yet on any branch: the registry, the repository,
    /// the store, its directory and the commit.
    async fn with_a_commit(tmp: &Path) -> (Repos, Repository, SharedStore, std::path::PathBuf, String) {
        let (repos, repo, store) = setup(tmp).await;
        let dir = repos.dir(&repo);
        let c1 = commit(&dir, None).await;
        (repos, repo, store, dir, c1)
    }

    async fn drain(store: &SharedStore) -> Vec<Value> {
        let items = store.lease(EVENTS_INGRESS_QUEUE, 1000, std::time::Duration::from_secs(60)).await.unwrap();
        let mut out = Vec::new();
        for i in items {
            store.ack(i.id).await.unwrap();
            out.push(serde_json::from_value::<BusEvent>(i.payload).unwrap().event);
        }
        out
    }

    /// A ref moved by git whose event never got committed (a kill -9 in between) is published
    /// once by the start-up reconciliation, and a second reconciliation publishes nothing.
    #[tokio::test]
    async fn reconcile_publishes_missed_updates_once() {
        let tmp = tempfile::tempdir().unwrap();
        let (repos, _, store, dir, c1) = with_a_commit(tmp.path()).await;
        assert!(git::update_ref(&dir, "refs/heads/main", &c1, ZERO_OID).await.unwrap());
        let publisher = Publisher::new(repos.clone());
        publisher.reconcile_all().await.unwrap();
        let events = drain(&store).await;
        assert_eq!(events.len(), 1);
        assert_eq!(events[0]["detail"]["event"], "referenceCreated");
        assert_eq!(events[0]["detail"]["commitId"], json!(c1));
        // The first branch became the default branch.
        let (r, _) = repos.find("000000000000", "eu-west-1", "r").await.unwrap().unwrap();
        assert_eq!(r.default_branch.as_deref(), Some("main"));

        // A restarted server (a new publisher) finds nothing left to publish.
        let again = Publisher::new(repos.clone());
        again.reconcile_all().await.unwrap();
        assert!(drain(&store).await.is_empty());
    }

    /// Two updates of one ref reported in reverse order are still published as two events,
    /// in order, each with its own old and new commit.
    #[tokio::test]
    async fn out_of_order_updates_are_chained() {
        let tmp = tempfile::tempdir().unwrap();
        let (repos, repo, store, dir, c1) = with_a_commit(tmp.path()).await;
        let c2 = commit(&dir, Some(&c1)).await;
        let publisher = Publisher::new(repos.clone());
        let first = publisher.begin(&repo);
        let second = publisher.begin(&repo);
        git::update_ref(&dir, "refs/heads/main", &c1, ZERO_OID).await.unwrap();
        git::update_ref(&dir, "refs/heads/main", &c2, &c1).await.unwrap();
        let u1 = RefUpdate { name: "refs/heads/main".into(), old: ZERO_OID.into(), new: c1.clone() };
        let u2 = RefUpdate { name: "refs/heads/main".into(), old: c1.clone(), new: c2.clone() };
        publisher.finish(&repo, second, vec![u2], None).await.unwrap();
        assert!(drain(&store).await.is_empty(), "the second update waits for the first");
        publisher.finish(&repo, first, vec![u1], None).await.unwrap();
        let events = drain(&store).await;
        assert_eq!(events.len(), 2);
        assert_eq!(events[0]["detail"]["event"], "referenceCreated");
        assert_eq!(events[1]["detail"]["oldCommitId"], json!(c1));
        assert_eq!(events[1]["detail"]["commitId"], json!(c2));
        publisher.reconcile_all().await.unwrap();
        assert!(drain(&store).await.is_empty());
    }
}
