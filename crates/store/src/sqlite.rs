//! The SQLite backend (the default): one file `state.db` in the data dir, WAL mode,
//! `synchronous=FULL` so that a commit survives a power cut, not only a process crash.

use crate::*;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{Row, SqlitePool};
use std::path::Path;
use std::str::FromStr;

/// Schema migrations, applied in order; never edit one that has shipped, add the next.
const MIGRATIONS: &[(i64, &str)] = &[(1, include_str!("../migrations/0001_initial.sql"))];

pub struct SqliteStore {
    pool: SqlitePool,
}

fn backend(e: sqlx::Error) -> StoreError {
    StoreError::Backend(e.to_string())
}

fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

impl SqliteStore {
    /// Opens (creating if needed) the database file and applies migrations.
    pub async fn open(path: &Path) -> StoreResult<Self> {
        let opts = SqliteConnectOptions::from_str(&format!("sqlite://{}", path.display()))
            .map_err(backend)?
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Full)
            .busy_timeout(std::time::Duration::from_secs(30));
        let pool = SqlitePoolOptions::new().max_connections(8).connect_with(opts).await.map_err(backend)?;
        Self::migrate(pool).await
    }

    /// A private in-memory database (tests).
    pub async fn in_memory() -> StoreResult<Self> {
        let opts = SqliteConnectOptions::from_str("sqlite::memory:").map_err(backend)?;
        // One connection: every connection to :memory: is its own database.
        let pool = SqlitePoolOptions::new().max_connections(1).connect_with(opts).await.map_err(backend)?;
        Self::migrate(pool).await
    }

    /// Applies the migrations in `migrations/` that this database has not seen, in order,
    /// each in its own transaction, recording them in `schema_migrations`.
    async fn migrate(pool: SqlitePool) -> StoreResult<Self> {
        sqlx::query("CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, applied_ms INTEGER NOT NULL)")
            .execute(&pool)
            .await
            .map_err(backend)?;
        for (version, sql) in MIGRATIONS {
            let seen: Option<i64> = sqlx::query_scalar("SELECT version FROM schema_migrations WHERE version = ?")
                .bind(version)
                .fetch_optional(&pool)
                .await
                .map_err(backend)?;
            if seen.is_some() {
                continue;
            }
            let mut tx = pool.begin().await.map_err(backend)?;
            sqlx::raw_sql(sql).execute(&mut *tx).await.map_err(backend)?;
            sqlx::query("INSERT INTO schema_migrations (version, applied_ms) VALUES (?, ?)")
                .bind(version)
                .bind(now_ms())
                .execute(&mut *tx)
                .await
                .map_err(backend)?;
            tx.commit().await.map_err(backend)?;
        }
        Ok(SqliteStore { pool })
    }
}

#[async_trait]
impl StateStore for SqliteStore {
    async fn get(&self, ns: &str, key: &str) -> StoreResult<Option<Doc>> {
        let row = sqlx::query("SELECT value, version FROM documents WHERE ns = ? AND key = ?")
            .bind(ns)
            .bind(key)
            .fetch_optional(&self.pool)
            .await
            .map_err(backend)?;
        row.map(|r| {
            let text: String = r.get(0);
            Ok(Doc {
                key: key.to_string(),
                value: serde_json::from_str(&text).map_err(|e| StoreError::Backend(e.to_string()))?,
                version: r.get(1),
            })
        })
        .transpose()
    }

    async fn list(&self, ns: &str, prefix: &str, start_after: Option<&str>, limit: usize) -> StoreResult<Vec<Doc>> {
        // Range scan on the primary key: keys >= prefix, < prefix + U+10FFFF.
        let upper = format!("{prefix}\u{10FFFF}");
        let after = start_after.unwrap_or("");
        let rows = sqlx::query(
            "SELECT key, value, version FROM documents WHERE ns = ? AND key >= ? AND key < ? AND key > ? ORDER BY key LIMIT ?",
        )
        .bind(ns)
        .bind(prefix)
        .bind(&upper)
        .bind(after)
        .bind(limit as i64)
        .fetch_all(&self.pool)
        .await
        .map_err(backend)?;
        rows.into_iter()
            .map(|r| {
                let text: String = r.get(1);
                Ok(Doc {
                    key: r.get(0),
                    value: serde_json::from_str(&text).map_err(|e| StoreError::Backend(e.to_string()))?,
                    version: r.get(2),
                })
            })
            .collect()
    }

    async fn namespaces(&self, prefix: &str) -> StoreResult<Vec<String>> {
        let upper = format!("{prefix}\u{10FFFF}");
        let rows = sqlx::query("SELECT DISTINCT ns FROM documents WHERE ns >= ? AND ns < ? ORDER BY ns")
            .bind(prefix)
            .bind(&upper)
            .fetch_all(&self.pool)
            .await
            .map_err(backend)?;
        Ok(rows.into_iter().map(|r| r.get(0)).collect())
    }

    async fn commit(&self, batch: Batch) -> StoreResult<()> {
        if batch.is_empty() {
            return Ok(());
        }
        let mut tx = self.pool.begin().await.map_err(backend)?;
        // Take the write lock up front so conditions and writes see one state.
        sqlx::query("UPDATE counters SET value = value WHERE 0").execute(&mut *tx).await.map_err(backend)?;
        let now = now_ms();
        for op in batch.ops {
            match op {
                Op::Put { ns, key, value, expect } => {
                    let current: Option<i64> = sqlx::query_scalar("SELECT version FROM documents WHERE ns = ? AND key = ?")
                        .bind(&ns)
                        .bind(&key)
                        .fetch_optional(&mut *tx)
                        .await
                        .map_err(backend)?;
                    check(&expect, current, &ns, &key)?;
                    let text = serde_json::to_string(&value).map_err(|e| StoreError::Backend(e.to_string()))?;
                    sqlx::query(
                        "INSERT INTO documents (ns, key, value, version, updated_ms) VALUES (?, ?, ?, 1, ?)
                         ON CONFLICT (ns, key) DO UPDATE SET value = excluded.value, version = documents.version + 1, updated_ms = excluded.updated_ms",
                    )
                    .bind(&ns)
                    .bind(&key)
                    .bind(text)
                    .bind(now)
                    .execute(&mut *tx)
                    .await
                    .map_err(backend)?;
                }
                Op::Delete { ns, key, expect } => {
                    let current: Option<i64> = sqlx::query_scalar("SELECT version FROM documents WHERE ns = ? AND key = ?")
                        .bind(&ns)
                        .bind(&key)
                        .fetch_optional(&mut *tx)
                        .await
                        .map_err(backend)?;
                    check(&expect, current, &ns, &key)?;
                    sqlx::query("DELETE FROM documents WHERE ns = ? AND key = ?")
                        .bind(&ns)
                        .bind(&key)
                        .execute(&mut *tx)
                        .await
                        .map_err(backend)?;
                }
                Op::Enqueue { queue, payload, delay } => {
                    let text = serde_json::to_string(&payload).map_err(|e| StoreError::Backend(e.to_string()))?;
                    sqlx::query("INSERT INTO queue_items (queue, payload, attempts, visible_at_ms, created_ms) VALUES (?, ?, 0, ?, ?)")
                        .bind(&queue)
                        .bind(text)
                        .bind(now + delay.as_millis() as i64)
                        .bind(now)
                        .execute(&mut *tx)
                        .await
                        .map_err(backend)?;
                }
            }
        }
        tx.commit().await.map_err(backend)
    }

    async fn lease(&self, queue: &str, max: usize, lease: Duration) -> StoreResult<Vec<QueueItem>> {
        let mut tx = self.pool.begin().await.map_err(backend)?;
        sqlx::query("UPDATE counters SET value = value WHERE 0").execute(&mut *tx).await.map_err(backend)?;
        let now = now_ms();
        let rows = sqlx::query(
            "SELECT id, payload, attempts FROM queue_items WHERE queue = ? AND visible_at_ms <= ? ORDER BY id LIMIT ?",
        )
        .bind(queue)
        .bind(now)
        .bind(max as i64)
        .fetch_all(&mut *tx)
        .await
        .map_err(backend)?;
        let mut items = Vec::with_capacity(rows.len());
        for r in rows {
            let id: i64 = r.get(0);
            let text: String = r.get(1);
            let attempts: i64 = r.get(2);
            sqlx::query("UPDATE queue_items SET attempts = attempts + 1, visible_at_ms = ? WHERE id = ?")
                .bind(now + lease.as_millis() as i64)
                .bind(id)
                .execute(&mut *tx)
                .await
                .map_err(backend)?;
            items.push(QueueItem {
                id,
                queue: queue.to_string(),
                payload: serde_json::from_str(&text).map_err(|e| StoreError::Backend(e.to_string()))?,
                attempts: attempts as u32,
            });
        }
        tx.commit().await.map_err(backend)?;
        Ok(items)
    }

    async fn ack(&self, id: i64) -> StoreResult<()> {
        sqlx::query("DELETE FROM queue_items WHERE id = ?").bind(id).execute(&self.pool).await.map_err(backend)?;
        Ok(())
    }

    async fn release(&self, id: i64, delay: Duration) -> StoreResult<()> {
        sqlx::query("UPDATE queue_items SET visible_at_ms = ? WHERE id = ?")
            .bind(now_ms() + delay.as_millis() as i64)
            .bind(id)
            .execute(&self.pool)
            .await
            .map_err(backend)?;
        Ok(())
    }

    async fn queue_len(&self, queue: &str) -> StoreResult<usize> {
        let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM queue_items WHERE queue = ?")
            .bind(queue)
            .fetch_one(&self.pool)
            .await
            .map_err(backend)?;
        Ok(n as usize)
    }

    async fn next_counter(&self, name: &str) -> StoreResult<i64> {
        let v: i64 = sqlx::query_scalar(
            "INSERT INTO counters (name, value) VALUES (?, 1) ON CONFLICT (name) DO UPDATE SET value = counters.value + 1 RETURNING value",
        )
        .bind(name)
        .fetch_one(&self.pool)
        .await
        .map_err(backend)?;
        Ok(v)
    }
}

fn check(expect: &Expect, current: Option<i64>, ns: &str, key: &str) -> StoreResult<()> {
    let ok = match expect {
        Expect::Any => true,
        Expect::Absent => current.is_none(),
        Expect::Present => current.is_some(),
        Expect::Version(v) => current == Some(*v),
    };
    if ok { Ok(()) } else { Err(StoreError::Conflict(ns.to_string(), key.to_string())) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn in_memory_passes_conformance() {
        let s = SqliteStore::in_memory().await.unwrap();
        crate::conformance::run_all(&s).await;
    }

    #[tokio::test]
    async fn file_store_passes_conformance_and_persists() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.db");
        {
            let s = SqliteStore::open(&path).await.unwrap();
            crate::conformance::run_all(&s).await;
            s.put_as("t/persist", "k", &serde_json::json!({"a": 1})).await.unwrap();
        }
        let s = SqliteStore::open(&path).await.unwrap();
        let d = s.get("t/persist", "k").await.unwrap().unwrap();
        assert_eq!(d.value["a"], 1);
    }
}
