//! The build id indexes ListBuilds and ListBuildsForProject page through, so neither loads a
//! build record.
//!
//! One store namespace per account and region (`codebuild/<acct>/<region>/build-index`) holds
//! one small document per build and ordering, the build id as its value:
//!
//! * `all/a/<sort>/<id>` and `all/d/<sort'>/<id>`: every build of the region, oldest and
//!   newest first;
//! * `project/<name>/a/<sort>/<id>` and `project/<name>/d/<sort'>/<id>`: the project's.
//!
//! `<sort>` is the start time and build number zero-padded (`<sort'>` their complements), so
//! the store's key order is the listing order and a page is one ranged read of 101 keys. The
//! entries are written in the commit that first stores the build ([`add`]) and removed in the
//! commit that deletes it ([`remove`]); DeleteProject keeps them, as AWS keeps a deleted
//! project's builds. A data dir from before the index is indexed once at start-up
//! ([`rebuild`]); the `meta/complete` document says the namespace's index is whole.

use crate::build::BuildRecord;
use crate::error::CodeBuildError;
use codeyard_core::AwsResult;
use codeyard_store::{Batch, Expect, SharedStore, StoreResult};

/// The page size of ListBuilds and ListBuildsForProject (AWS: "a list of up to 100 build IDs").
pub const PAGE: usize = 100;

const MARKER: &str = "meta/complete";
/// Keys are written with fixed widths: start times in ms and build numbers stay below these.
const TIME_MAX: i64 = 9_999_999_999_999_999;
const NUMBER_MAX: i64 = 999_999_999_999;

/// The index namespace of an account and region.
pub fn namespace(account: &str, region: &str) -> String {
    crate::io::ns(account, region, "build-index")
}

fn scope(project: Option<&str>) -> String {
    match project {
        Some(p) => format!("project/{p}/"),
        None => "all/".to_string(),
    }
}

/// The keys of one build's entries: (scope prefix + direction, sort key + id) for each.
fn entries(b: &BuildRecord) -> Vec<String> {
    let (t, n) = (b.start_ms.clamp(0, TIME_MAX), b.build_number.clamp(0, NUMBER_MAX));
    let ascending = format!("{t:016}.{n:012}/{}", b.id);
    let descending = format!("{:016}.{:012}/{}", TIME_MAX - t, NUMBER_MAX - n, b.id);
    [None, Some(b.project_name.as_str())]
        .into_iter()
        .flat_map(|p| {
            let s = scope(p);
            [format!("{s}a/{ascending}"), format!("{s}d/{descending}")]
        })
        .collect()
}

/// Adds `b`'s entries (and the namespace's "complete" mark) to the batch that first stores it.
pub fn add(mut batch: Batch, b: &BuildRecord) -> Batch {
    let ns = namespace(&b.account, &b.region);
    for key in entries(b) {
        batch = batch.put(&ns, key, &b.id, Expect::Any);
    }
    batch.put(&ns, MARKER, true, Expect::Any)
}

/// Removes `b`'s entries in the batch that deletes it.
pub fn remove(mut batch: Batch, b: &BuildRecord) -> Batch {
    let ns = namespace(&b.account, &b.region);
    for key in entries(b) {
        batch = batch.delete(&ns, key, Expect::Any);
    }
    batch
}

/// One page of build ids, newest first unless `ascending`, of a project or (None) the whole
/// region; `next_token` is the previous page's answer.
pub async fn page(
    store: &SharedStore,
    account: &str,
    region: &str,
    project: Option<&str>,
    ascending: bool,
    next_token: Option<&str>,
) -> AwsResult<(Vec<String>, Option<String>)> {
    let prefix = format!("{}{}/", scope(project), if ascending { "a" } else { "d" });
    let after = match next_token {
        None => None,
        Some(t) if valid_token(t) => Some(format!("{prefix}{t}")),
        Some(t) => return Err(CodeBuildError::Invalid(format!("Invalid next token: {t}")).into()),
    };
    let docs = store
        .list(&namespace(account, region), &prefix, after.as_deref(), PAGE + 1)
        .await?;
    let more = docs.len() > PAGE;
    let docs = &docs[..docs.len().min(PAGE)];
    let ids = docs.iter().filter_map(|d| d.value.as_str().map(str::to_string)).collect();
    let next = more
        .then(|| docs.last().map(|d| d.key[prefix.len()..].to_string()))
        .flatten();
    Ok((ids, next))
}

/// A token this module handed out: `<16 digits>.<12 digits>/<build id>`.
fn valid_token(t: &str) -> bool {
    let Some((sort, id)) = t.split_once('/') else {
        return false;
    };
    let digits = |s: &str, n: usize| s.len() == n && s.bytes().all(|b| b.is_ascii_digit());
    !id.is_empty() && sort.split_once('.').is_some_and(|(a, b)| digits(a, 16) && digits(b, 12))
}

/// Whether the namespace's index is whole (written by [`add`] and at the end of [`rebuild`]).
pub async fn complete(store: &SharedStore, account: &str, region: &str) -> StoreResult<bool> {
    Ok(store.get(&namespace(account, region), MARKER).await?.is_some())
}

/// Indexes `builds` (every build of one account and region) and marks the index whole; the
/// entries are committed in batches, the mark last, so an interrupted rebuild runs again.
pub async fn rebuild(store: &SharedStore, account: &str, region: &str, builds: &[BuildRecord]) -> StoreResult<()> {
    for chunk in builds.chunks(250) {
        let mut batch = Batch::new();
        for b in chunk {
            let ns = namespace(&b.account, &b.region);
            for key in entries(b) {
                batch = batch.put(&ns, key, &b.id, Expect::Any);
            }
        }
        store.commit(batch).await?;
    }
    store
        .commit(Batch::new().put(namespace(account, region), MARKER, true, Expect::Any))
        .await
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::time::Instant;

    /// A stored build with only what the index reads filled in.
    fn record(project: &str, n: i64, start_ms: i64) -> BuildRecord {
        serde_json::from_value(crate::build::tests::stored(project, n, start_ms)).unwrap()
    }

    async fn all_pages(store: &SharedStore, project: Option<&str>, ascending: bool) -> Vec<String> {
        let (mut out, mut token) = (Vec::new(), None);
        loop {
            let (ids, next) = page(store, "000000000000", "eu-west-1", project, ascending, token.as_deref()).await.unwrap();
            assert!(ids.len() <= PAGE);
            out.extend(ids);
            match next {
                Some(t) => token = Some(t),
                None => return out,
            }
        }
    }

    #[tokio::test]
    async fn pages_newest_first_or_oldest_first_and_deletes_leave_nothing() {
        let store: SharedStore = Arc::new(codeyard_store::MemoryStore::new());
        let mut builds = Vec::new();
        for n in 1..=250 {
            // Two projects interleaved; equal start times are ordered by build number.
            let b = record(if n % 2 == 0 { "even" } else { "odd" }, n, 1_700_000_000_000 + n / 3);
            store.commit(add(Batch::new(), &b)).await.unwrap();
            builds.push(b);
        }
        let newest: Vec<String> = builds.iter().rev().map(|b| b.id.clone()).collect();
        assert_eq!(all_pages(&store, None, false).await, newest);
        let oldest: Vec<String> = builds.iter().map(|b| b.id.clone()).collect();
        assert_eq!(all_pages(&store, None, true).await, oldest);
        let even: Vec<String> = newest.iter().filter(|i| i.starts_with("even:")).cloned().collect();
        assert_eq!(all_pages(&store, Some("even"), false).await, even);
        assert!(all_pages(&store, Some("ev"), false).await.is_empty(), "a prefix of a name is another project");
        let err = page(&store, "000000000000", "eu-west-1", None, false, Some("nonsense")).await.unwrap_err();
        assert_eq!(err.code, "InvalidInputException");

        for b in &builds {
            store.commit(remove(Batch::new(), b)).await.unwrap();
        }
        let left = store.list(&namespace("000000000000", "eu-west-1"), "", None, 10).await.unwrap();
        assert_eq!(left.iter().map(|d| d.key.as_str()).collect::<Vec<_>>(), [MARKER]);
    }

    #[tokio::test]
    async fn rebuild_indexes_what_was_there() {
        let store: SharedStore = Arc::new(codeyard_store::MemoryStore::new());
        let builds: Vec<BuildRecord> = (1..=600).map(|n| record("p", n, 1_700_000_000_000 + n)).collect();
        assert!(!complete(&store, "000000000000", "eu-west-1").await.unwrap());
        rebuild(&store, "000000000000", "eu-west-1", &builds).await.unwrap();
        assert!(complete(&store, "000000000000", "eu-west-1").await.unwrap());
        assert_eq!(all_pages(&store, Some("p"), true).await.len(), 600);
    }

    /// ListBuildsForProject's reads (the project document and one index page) against the
    /// SQLite store holding 10,000 builds: the median must stay under 5 ms.
    #[tokio::test(flavor = "multi_thread")]
    async fn a_page_of_10000_builds_is_read_in_milliseconds() {
        let dir = tempfile::tempdir().unwrap();
        let store: SharedStore = Arc::new(codeyard_store::SqliteStore::open(&dir.path().join("state.db")).await.unwrap());
        let bns = crate::io::ns("000000000000", "eu-west-1", "builds");
        let pns = crate::io::ns("000000000000", "eu-west-1", "projects");
        store.commit(Batch::new().put(&pns, "big", serde_json::json!({"name": "big"}), Expect::Any)).await.unwrap();
        for chunk in (1..=10_000i64).collect::<Vec<_>>().chunks(500) {
            let mut batch = Batch::new();
            for &n in chunk {
                let b = record(if n % 10 == 0 { "small" } else { "big" }, n, 1_700_000_000_000 + n * 1000);
                batch = add(batch.put(&bns, &b.id, &b, Expect::Any), &b);
            }
            store.commit(batch).await.unwrap();
        }
        let mut times = Vec::new();
        for i in 0..200 {
            let t = Instant::now();
            assert!(store.get(&pns, "big").await.unwrap().is_some());
            let (ids, next) = page(&store, "000000000000", "eu-west-1", Some("big"), i % 2 == 0, None).await.unwrap();
            times.push(t.elapsed());
            assert_eq!(ids.len(), PAGE);
            assert!(next.is_some());
        }
        times.sort();
        let median = times[times.len() / 2];
        eprintln!(
            "ListBuildsForProject reads at 10,000 builds (SQLite): median {:?}, p90 {:?}, max {:?}",
            median,
            times[times.len() * 9 / 10],
            times[times.len() - 1]
        );
        assert!(median.as_millis() < 5, "median {median:?}");
    }
}
