//! CloudWatch Logs' domain: log groups, log streams and their events, per account and region.
//!
//! Storage (namespaces under `logs/<account>/<region>`):
//! * `.../groups`, keyed by group name: [`LogGroup`].
//! * `.../streams:<group>`, keyed by stream name: [`StreamMeta`].
//! * `.../events:<group>:<stream>`, keyed by a zero-padded chunk number: [`Chunk`], up to
//!   [`CHUNK_MAX_EVENTS`] events or [`CHUNK_MAX_BYTES`] of messages each.
//!
//! `:` cannot occur in group or stream names, so these namespaces never collide and a group's
//! streams and events are found by namespace prefix. Appending rewrites only the last chunk
//! (or starts a new one) and the stream's metadata, in one conditional batch: a build that
//! streams a line at a time costs one small commit per call, not a growing document. Appends to
//! one stream are serialized by an in-process lock; the version condition on the stream's
//! metadata catches everything else (a concurrent DeleteLogGroup).

pub use codeyard_api::logs::LogGroupClass;
use codeyard_core::AwsError;
use codeyard_core::tags::{self, MAX_TAGS};
use codeyard_store::{Batch, Expect, SharedStore, StateStoreExt, StoreError, Update};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};

pub const CHUNK_MAX_EVENTS: usize = 1000;
pub const CHUNK_MAX_BYTES: usize = 64 * 1024;
/// Retention values CloudWatch Logs accepts, in days.
pub const RETENTION_DAYS: &[i64] = &[
    1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922,
    3288, 3653,
];
/// PutLogEvents refuses events more than 2 hours in the future ...
const TOO_NEW_MS: i64 = 2 * 3600 * 1000;
/// ... or more than 14 days in the past.
const TOO_OLD_MS: i64 = 14 * 24 * 3600 * 1000;
const DAY_MS: i64 = 24 * 3600 * 1000;

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct LogGroup {
    pub name: String,
    pub created_ms: i64,
    pub retention_days: Option<i64>,
    pub kms_key_id: Option<String>,
    /// Stored as the model's string (`STANDARD`), so records written before stay readable.
    pub class: LogGroupClass,
    pub tags: BTreeMap<String, String>,
}

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct StreamMeta {
    pub name: String,
    pub created_ms: i64,
    pub first_event_ms: Option<i64>,
    pub last_event_ms: Option<i64>,
    pub last_ingestion_ms: Option<i64>,
    pub stored_bytes: i64,
    /// Events stored so far (also the next sequence token).
    pub event_count: u64,
    /// Chunks written so far; the last one is `chunks - 1`.
    pub chunks: u64,
    pub last_chunk_events: usize,
    pub last_chunk_bytes: usize,
}

/// One stored event: (timestamp ms, ingestion time ms, message).
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct StoredEvent(pub i64, pub i64, pub String);

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct Chunk {
    pub events: Vec<StoredEvent>,
}

/// An event read back, with its place in the stream's append order.
#[derive(Clone, Debug)]
pub struct Event {
    pub timestamp: i64,
    pub ingestion: i64,
    pub message: String,
    pub seq: u64,
}

/// What PutLogEvents could not store.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Rejected {
    pub too_new_start: Option<usize>,
    pub too_old_end: Option<usize>,
    pub expired_end: Option<usize>,
}

impl Rejected {
    pub fn is_empty(&self) -> bool {
        *self == Rejected::default()
    }
}

/// Where a group lives: account and region.
pub use codeyard_core::scope::Scope;

/// CloudWatch Logs' store namespaces and ARNs within a [`Scope`].
pub(crate) trait LogsScope {
    fn groups_ns(&self) -> String;
    fn streams_ns(&self, group: &str) -> String;
    fn events_prefix(&self, group: &str) -> String;
    fn events_ns(&self, group: &str, stream: &str) -> String;
    fn group_arn(&self, group: &str) -> String;
    fn stream_arn(&self, group: &str, stream: &str) -> String;
}

impl LogsScope for Scope<'_> {
    fn groups_ns(&self) -> String {
        self.namespace("logs", "groups")
    }
    fn streams_ns(&self, group: &str) -> String {
        self.namespace("logs", &format!("streams:{group}"))
    }
    fn events_prefix(&self, group: &str) -> String {
        self.namespace("logs", &format!("events:{group}:"))
    }
    fn events_ns(&self, group: &str, stream: &str) -> String {
        format!("{}{stream}", self.events_prefix(group))
    }
    fn group_arn(&self, group: &str) -> String {
        self.arn("logs", &format!("log-group:{group}"))
    }
    fn stream_arn(&self, group: &str, stream: &str) -> String {
        format!("{}:log-stream:{stream}", self.group_arn(group))
    }
}

fn chunk_key(n: u64) -> String {
    format!("{n:012}")
}

/// What goes wrong in CloudWatch Logs' domain. The API edge turns it into AWS's error
/// (`From<LogsError> for AwsError`); the domain never names a wire code.
#[derive(Debug)]
pub enum LogsError {
    GroupNotFound,
    StreamNotFound,
    GroupExists,
    StreamExists,
    /// A request CloudWatch Logs refuses, with its message.
    Invalid(String),
    /// A conditional delete lost its race with another change to the group.
    Contended,
    Store(StoreError),
}

pub type LogsResult<T> = Result<T, LogsError>;

codeyard_core::wrap_error!(StoreError => LogsError::Store);

impl From<LogsError> for AwsError {
    fn from(e: LogsError) -> Self {
        let not_found = |m: &str| AwsError::client("ResourceNotFoundException", m);
        let exists = |m: &str| AwsError::client("ResourceAlreadyExistsException", m);
        match e {
            LogsError::GroupNotFound => not_found("The specified log group does not exist."),
            LogsError::StreamNotFound => not_found("The specified log stream does not exist."),
            LogsError::GroupExists => exists("The specified log group already exists"),
            LogsError::StreamExists => exists("The specified log stream already exists"),
            LogsError::Invalid(m) => AwsError::client("InvalidParameterException", m),
            LogsError::Contended => {
                AwsError::client("OperationAbortedException", "Multiple requests to modify the same resource were in conflict.")
            }
            LogsError::Store(e) => e.into(),
        }
    }
}

pub(crate) fn invalid(message: impl Into<String>) -> LogsError {
    LogsError::Invalid(message.into())
}

fn too_many_tags() -> LogsError {
    invalid(format!("A log group can have at most {MAX_TAGS} tags."))
}

fn conflict(e: &StoreError) -> bool {
    matches!(e, StoreError::Conflict(..))
}

/// The logs store of one server. Cheap to clone.
#[derive(Clone)]
pub struct Logs {
    store: SharedStore,
    stream_locks: Arc<Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>>,
}

impl Logs {
    pub fn new(store: SharedStore) -> Self {
        Logs {
            store,
            stream_locks: Default::default(),
        }
    }

    fn lock_for(&self, ns: &str) -> Arc<tokio::sync::Mutex<()>> {
        let mut locks = self.stream_locks.lock().unwrap();
        locks.entry(ns.to_string()).or_default().clone()
    }

    // ------------------------------------------------------------------ groups

    pub async fn create_group(
        &self,
        s: Scope<'_>,
        name: &str,
        kms_key_id: Option<String>,
        class: Option<LogGroupClass>,
        tags: BTreeMap<String, String>,
    ) -> LogsResult<()> {
        if tags.len() > MAX_TAGS {
            return Err(too_many_tags());
        }
        let group = LogGroup {
            name: name.to_string(),
            created_ms: codeyard_core::time::epoch_millis(&codeyard_core::time::now()),
            retention_days: None,
            kms_key_id,
            class: class.unwrap_or(LogGroupClass::Standard),
            tags,
        };
        match self
            .store
            .commit(Batch::new().put(s.groups_ns(), name, &group, Expect::Absent))
            .await
        {
            Ok(()) => Ok(()),
            Err(e) if conflict(&e) => Err(LogsError::GroupExists),
            Err(e) => Err(e.into()),
        }
    }

    async fn group_versioned(&self, s: Scope<'_>, name: &str) -> LogsResult<(LogGroup, i64)> {
        self.store
            .get_as::<LogGroup>(&s.groups_ns(), name)
            .await?
            .ok_or(LogsError::GroupNotFound)
    }

    pub async fn group(&self, s: Scope<'_>, name: &str) -> LogsResult<LogGroup> {
        Ok(self.group_versioned(s, name).await?.0)
    }

    /// Read-modify-write of a group (the store's compare-and-swap; losing every race is a
    /// 500 InternalFailure, as for every service).
    pub async fn update_group(
        &self,
        s: Scope<'_>,
        name: &str,
        change: impl Fn(&mut LogGroup) -> LogsResult<()> + Send + Sync,
    ) -> LogsResult<()> {
        self.store
            .update(&s.groups_ns(), name, |current: Option<LogGroup>| {
                let mut g = current.ok_or(LogsError::GroupNotFound)?;
                change(&mut g)?;
                Ok(Update::put(g))
            })
            .await
            .map(drop)
    }

    pub async fn set_retention(
        &self,
        s: Scope<'_>,
        name: &str,
        days: Option<i64>,
    ) -> LogsResult<()> {
        if let Some(d) = days.filter(|d| !RETENTION_DAYS.contains(d)) {
            let list = RETENTION_DAYS
                .iter()
                .map(|d| d.to_string())
                .collect::<Vec<_>>()
                .join(", ");
            return Err(invalid(format!(
                "1 validation error detected: Value '{d}' at 'retentionInDays' failed to satisfy constraint: Member must satisfy enum value set: [{list}]"
            )));
        }
        self.update_group(s, name, |g| {
            g.retention_days = days;
            Ok(())
        })
        .await
    }

    pub async fn tag_group(
        &self,
        s: Scope<'_>,
        name: &str,
        tags: BTreeMap<String, String>,
    ) -> LogsResult<()> {
        self.update_group(s, name, |g| {
            tags::add(&mut g.tags, tags.clone(), MAX_TAGS).map_err(|_| too_many_tags())
        })
        .await
    }

    pub async fn untag_group(&self, s: Scope<'_>, name: &str, keys: &[String]) -> LogsResult<()> {
        self.update_group(s, name, |g| {
            tags::remove(&mut g.tags, keys);
            Ok(())
        })
        .await
    }

    /// Deletes a group with all its streams and events, in one batch.
    pub async fn delete_group(&self, s: Scope<'_>, name: &str) -> LogsResult<()> {
        let (_, version) = self.group_versioned(s, name).await?;
        let mut batch = Batch::new().delete(s.groups_ns(), name, Expect::Version(version));
        for stream in self
            .store
            .list_all_as::<StreamMeta>(&s.streams_ns(name))
            .await?
        {
            batch = batch.delete(s.streams_ns(name), stream.name.clone(), Expect::Any);
        }
        for ns in self.store.namespaces(&s.events_prefix(name)).await? {
            for doc in self.all_docs(&ns).await? {
                batch = batch.delete(ns.clone(), doc, Expect::Any);
            }
        }
        match self.store.commit(batch).await {
            Ok(()) => Ok(()),
            Err(e) if conflict(&e) => Err(LogsError::Contended),
            Err(e) => Err(e.into()),
        }
    }

    /// The keys of every document in `ns`.
    async fn all_docs(&self, ns: &str) -> LogsResult<Vec<String>> {
        Ok(self.store.scan(ns, "").collect().await?.into_iter().map(|d| d.key).collect())
    }

    /// Groups whose names start with `prefix`, after `after`, at most `limit` + 1 (so the
    /// caller knows whether there is a next page).
    pub async fn list_groups(
        &self,
        s: Scope<'_>,
        prefix: &str,
        after: Option<&str>,
        limit: usize,
    ) -> LogsResult<Vec<LogGroup>> {
        let docs = self
            .store
            .list(&s.groups_ns(), prefix, after, limit)
            .await?;
        docs.iter()
            .map(|d| d.parse().map_err(LogsError::from))
            .collect()
    }

    pub async fn all_groups(&self, s: Scope<'_>) -> LogsResult<Vec<LogGroup>> {
        Ok(self.store.list_all_as(&s.groups_ns()).await?)
    }

    /// Bytes stored in a group (the sum over its streams).
    pub async fn group_stored_bytes(&self, s: Scope<'_>, name: &str) -> LogsResult<i64> {
        let streams: Vec<StreamMeta> = self.store.list_all_as(&s.streams_ns(name)).await?;
        Ok(streams.iter().map(|st| st.stored_bytes).sum())
    }

    // ------------------------------------------------------------------ streams

    pub async fn create_stream(&self, s: Scope<'_>, group: &str, name: &str) -> LogsResult<()> {
        self.group(s, group).await?;
        let meta = StreamMeta {
            name: name.to_string(),
            created_ms: codeyard_core::time::epoch_millis(&codeyard_core::time::now()),
            ..Default::default()
        };
        match self
            .store
            .commit(Batch::new().put(s.streams_ns(group), name, &meta, Expect::Absent))
            .await
        {
            Ok(()) => Ok(()),
            Err(e) if conflict(&e) => Err(LogsError::StreamExists),
            Err(e) => Err(e.into()),
        }
    }

    pub async fn delete_stream(&self, s: Scope<'_>, group: &str, name: &str) -> LogsResult<()> {
        self.group(s, group).await?;
        let events_ns = s.events_ns(group, name);
        let lock = self.lock_for(&events_ns);
        let _held = lock.lock().await;
        let (_, version) = self
            .store
            .get_as::<StreamMeta>(&s.streams_ns(group), name)
            .await?
            .ok_or(LogsError::StreamNotFound)?;
        let mut batch = Batch::new().delete(s.streams_ns(group), name, Expect::Version(version));
        for key in self.all_docs(&events_ns).await? {
            batch = batch.delete(events_ns.clone(), key, Expect::Any);
        }
        self.store.commit(batch).await?;
        Ok(())
    }

    pub async fn streams(&self, s: Scope<'_>, group: &str) -> LogsResult<Vec<StreamMeta>> {
        self.group(s, group).await?;
        Ok(self.store.list_all_as(&s.streams_ns(group)).await?)
    }

    // ------------------------------------------------------------------ events

    /// PutLogEvents: checks the batch as CloudWatch Logs does, stores what is acceptable and
    /// reports the rest. Returns (next sequence token, rejected).
    pub async fn put_events(&self, s: Scope<'_>, group: &str, stream: &str, events: Vec<(i64, String)>) -> LogsResult<(String, Rejected)> {
        for pair in events.windows(2) {
            if pair[1].0 < pair[0].0 {
                return Err(invalid(
                    "Log events in a single PutLogEvents request must be in chronological order.",
                ));
            }
        }
        if let (Some(first), Some(last)) = (events.first(), events.last())
            && last.0 - first.0 > DAY_MS
        {
            return Err(invalid(
                "The batch of log events in a single PutLogEvents request cannot span more than 24 hours.",
            ));
        }
        let g = self.group(s, group).await?;
        let now = codeyard_core::time::epoch_millis(&codeyard_core::time::now());
        let mut rejected = Rejected::default();
        // Events are in order: the too-old ones are a prefix, the too-new ones a suffix.
        let too_old = events.iter().take_while(|e| e.0 < now - TOO_OLD_MS).count();
        let retention_cut = g.retention_days.map(|d| now - d * DAY_MS);
        let expired = retention_cut
            .map(|cut| events.iter().take_while(|e| e.0 < cut).count())
            .unwrap_or(0);
        let too_new_start = events.iter().position(|e| e.0 > now + TOO_NEW_MS);
        if too_old > 0 {
            rejected.too_old_end = Some(too_old);
        }
        if expired > 0 {
            rejected.expired_end = Some(expired);
        }
        rejected.too_new_start = too_new_start;
        let start = too_old.max(expired);
        let end = too_new_start.unwrap_or(events.len()).max(start);
        let accepted: Vec<(i64, String)> =
            events.into_iter().skip(start).take(end - start).collect();
        let count = self.append(s, group, stream, accepted, now).await?;
        Ok((format!("{count:056}"), rejected))
    }

    /// Appends events to a stream (in the order given). Returns the stream's event count.
    pub async fn append(&self, s: Scope<'_>, group: &str, stream: &str, events: Vec<(i64, String)>, now: i64) -> LogsResult<u64> {
        let streams_ns = s.streams_ns(group);
        let events_ns = s.events_ns(group, stream);
        let lock = self.lock_for(&events_ns);
        let _held = lock.lock().await;
        let (mut meta, meta_version) = self
            .store
            .get_as::<StreamMeta>(&streams_ns, stream)
            .await?
            .ok_or(LogsError::StreamNotFound)?;
        if events.is_empty() {
            return Ok(meta.event_count);
        }
        // Start from the last chunk if it has room, else a new one.
        let (mut chunk, mut chunk_no, mut chunk_expect) = if meta.chunks > 0
            && meta.last_chunk_events < CHUNK_MAX_EVENTS
            && meta.last_chunk_bytes < CHUNK_MAX_BYTES
        {
            let no = meta.chunks - 1;
            match self
                .store
                .get_as::<Chunk>(&events_ns, &chunk_key(no))
                .await?
            {
                Some((c, v)) => (c, no, Expect::Version(v)),
                None => (Chunk::default(), no, Expect::Absent),
            }
        } else {
            (Chunk::default(), meta.chunks, Expect::Absent)
        };
        let mut chunk_bytes = if chunk.events.is_empty() {
            0
        } else {
            meta.last_chunk_bytes
        };
        let mut batch = Batch::new();
        for (ts, message) in events {
            if chunk.events.len() >= CHUNK_MAX_EVENTS || chunk_bytes >= CHUNK_MAX_BYTES {
                batch = batch.put(events_ns.clone(), chunk_key(chunk_no), &chunk, chunk_expect);
                chunk = Chunk::default();
                chunk_no += 1;
                chunk_expect = Expect::Absent;
                chunk_bytes = 0;
            }
            let size = message.len() as i64;
            meta.first_event_ms = Some(meta.first_event_ms.map_or(ts, |f| f.min(ts)));
            meta.last_event_ms = Some(meta.last_event_ms.map_or(ts, |l| l.max(ts)));
            meta.stored_bytes += size;
            meta.event_count += 1;
            chunk_bytes += message.len();
            chunk.events.push(StoredEvent(ts, now, message));
        }
        meta.last_ingestion_ms = Some(now);
        meta.chunks = chunk_no + 1;
        meta.last_chunk_events = chunk.events.len();
        meta.last_chunk_bytes = chunk_bytes;
        batch = batch.put(events_ns.clone(), chunk_key(chunk_no), &chunk, chunk_expect);
        batch = batch.put(streams_ns, stream, &meta, Expect::Version(meta_version));
        match self.store.commit(batch).await {
            Ok(()) => Ok(meta.event_count),
            // The stream (or its group) was deleted meanwhile.
            Err(e) if conflict(&e) => Err(LogsError::StreamNotFound),
            Err(e) => Err(e.into()),
        }
    }

    /// Every unexpired event of a stream ordered by timestamp (ties in append order).
    pub async fn stream_events(
        &self,
        s: Scope<'_>,
        group: &str,
        stream: &str,
    ) -> LogsResult<Vec<Event>> {
        let events_ns = s.events_ns(group, stream);
        // Events older than the group's retention have expired: they are no longer returned
        // (their storage is reclaimed when the stream or the group is deleted).
        let retention = self
            .store
            .get_as::<LogGroup>(&s.groups_ns(), group)
            .await?
            .and_then(|(g, _)| g.retention_days);
        let now = codeyard_core::time::epoch_millis(&codeyard_core::time::now());
        let expired_before = retention.map_or(i64::MIN, |days| now - days * DAY_MS);
        let chunks: Vec<Chunk> = self.store.list_all_as(&events_ns).await?;
        let mut out = Vec::new();
        let mut seq = 0;
        for c in chunks {
            for StoredEvent(ts, ing, msg) in c.events {
                if ts < expired_before {
                    seq += 1;
                    continue;
                }
                out.push(Event {
                    timestamp: ts,
                    ingestion: ing,
                    message: msg,
                    seq,
                });
                seq += 1;
            }
        }
        out.sort_by_key(|e| (e.timestamp, e.seq));
        Ok(out)
    }

    /// Creates the group and the stream if they do not exist (builds).
    pub async fn ensure_stream(&self, s: Scope<'_>, group: &str, stream: &str) -> LogsResult<()> {
        match self
            .create_group(s, group, None, None, BTreeMap::new())
            .await
        {
            Ok(()) => {}
            Err(LogsError::GroupExists) => {}
            Err(e) => return Err(e),
        }
        match self.create_stream(s, group, stream).await {
            Ok(()) => Ok(()),
            Err(LogsError::StreamExists) => Ok(()),
            Err(e) => Err(e),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SCOPE: Scope<'static> = Scope { account: "000000000000", region: "eu-west-1" };

    async fn logs() -> Logs {
        Logs::new(Arc::new(
            codeyard_store::SqliteStore::in_memory().await.unwrap(),
        ))
    }

    /// The messages of a stream's events, in order.
    async fn messages(l: &Logs, group: &str, stream: &str) -> Vec<String> {
        let events = l.stream_events(SCOPE, group, stream).await.unwrap();
        events.into_iter().map(|e| e.message).collect()
    }

    #[tokio::test]
    async fn appends_fill_chunks_and_read_back_in_order() {
        let l = logs().await;
        let s = SCOPE;
        l.ensure_stream(s, "g", "st").await.unwrap();
        l.ensure_stream(s, "g", "st").await.unwrap(); // idempotent
        // One line at a time past a chunk boundary, then one big batch.
        for i in 0..(CHUNK_MAX_EVENTS as i64 + 5) {
            l.append(s, "g", "st", vec![(1_000 + i, format!("line {i}"))], 7)
                .await
                .unwrap();
        }
        let batch: Vec<(i64, String)> = (0..1500).map(|i| (5_000 + i, format!("b{i}"))).collect();
        l.append(s, "g", "st", batch, 8).await.unwrap();
        let meta = l.streams(s, "g").await.unwrap().remove(0);
        assert_eq!(meta.event_count, CHUNK_MAX_EVENTS as u64 + 5 + 1500);
        assert_eq!(
            meta.chunks, 3,
            "1005 singles fill chunk 0 and start chunk 1; the batch fills chunk 1 and spills"
        );
        let events = l.stream_events(s, "g", "st").await.unwrap();
        assert_eq!(events.len() as u64, meta.event_count);
        assert!(events.windows(2).all(|w| w[0].timestamp <= w[1].timestamp));
        assert_eq!(events[0].message, "line 0");
        assert_eq!(events.last().unwrap().message, "b1499");
        // Deleting the group removes streams and events.
        l.delete_group(s, "g").await.unwrap();
        assert!(l.stream_events(s, "g", "st").await.unwrap().is_empty());
        assert_eq!(
            AwsError::from(l.group(s, "g").await.unwrap_err()).code,
            "ResourceNotFoundException"
        );
    }

    #[tokio::test]
    async fn put_events_reports_rejected_and_refuses_disorder() {
        let l = logs().await;
        let s = SCOPE;
        l.ensure_stream(s, "g", "st").await.unwrap();
        let now = codeyard_core::time::epoch_millis(&codeyard_core::time::now());
        let err = l
            .put_events(s, "g", "st", vec![(now, "b".into()), (now - 1, "a".into())])
            .await
            .unwrap_err();
        assert!(matches!(err, LogsError::Invalid(_)), "{err:?}");
        let (_, rejected) = l
            .put_events(
                s,
                "g",
                "st",
                vec![
                    (now - 15 * DAY_MS, "old".into()),
                    (now - 14 * DAY_MS - 1, "old2".into()),
                ],
            )
            .await
            .unwrap();
        assert_eq!(rejected.too_old_end, Some(2));
        let (_, rejected) = l
            .put_events(
                s,
                "g",
                "st",
                vec![(now, "ok".into()), (now + 3 * 3600 * 1000, "new".into())],
            )
            .await
            .unwrap();
        assert_eq!(rejected.too_new_start, Some(1));
        assert_eq!(messages(&l, "g", "st").await, ["ok"]);
        // Events older than the retention period expire.
        l.append(
            s,
            "g",
            "st",
            vec![(now - 2 * DAY_MS, "two days old".into())],
            now,
        )
        .await
        .unwrap();
        assert_eq!(l.stream_events(s, "g", "st").await.unwrap().len(), 2);
        l.set_retention(s, "g", Some(1)).await.unwrap();
        assert_eq!(messages(&l, "g", "st").await, ["ok"]);
    }
}
