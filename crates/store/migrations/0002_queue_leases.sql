-- Whether an item is leased (rather than waiting out a delay): at start-up, under the data-dir
-- lock, the leases of a previous (dead) process are handed back at once instead of after their
-- lease time.
ALTER TABLE queue_items ADD COLUMN leased INTEGER NOT NULL DEFAULT 0;
