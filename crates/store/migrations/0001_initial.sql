-- Documents: every service keeps its resources as JSON documents in namespaces.
-- A namespace is "<service>/<account>/<region>/<kind>" (or "<service>/<account>/<kind>" for
-- global state). `version` increases by one on every write (conditional writes use it).
CREATE TABLE IF NOT EXISTS documents (
    ns TEXT NOT NULL,
    key TEXT NOT NULL,
    value TEXT NOT NULL,
    version INTEGER NOT NULL,
    updated_ms INTEGER NOT NULL,
    PRIMARY KEY (ns, key)
);

-- Durable queues (outboxes): an item is leased by a worker until `visible_at_ms`, then
-- acknowledged (deleted) or released with a later visibility for a retry.
CREATE TABLE IF NOT EXISTS queue_items (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    queue TEXT NOT NULL,
    payload TEXT NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    visible_at_ms INTEGER NOT NULL,
    created_ms INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS queue_items_ready ON queue_items (queue, visible_at_ms, id);

-- Monotonic counters (build numbers, sequence tokens).
CREATE TABLE IF NOT EXISTS counters (
    name TEXT PRIMARY KEY,
    value INTEGER NOT NULL
);
