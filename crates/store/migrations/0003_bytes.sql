-- Raw bytes beside the documents (small S3 object bodies): written in the same transaction as
-- the documents that name them, read by (ns, key) only. A rowid table (not WITHOUT ROWID):
-- rows are up to 64 KiB, stored in overflow pages.
CREATE TABLE IF NOT EXISTS bytes (
    ns TEXT NOT NULL,
    key TEXT NOT NULL,
    data BLOB NOT NULL,
    PRIMARY KEY (ns, key)
);
