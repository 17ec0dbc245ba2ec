//! The catalog's tables and their versioned migrations (`PRAGMA user_version`).
//!
//! Each migration runs once, in a transaction, in order; a catalog written by a
//! newer build is refused instead of being misread.

use rusqlite::TransactionBehavior;

use crate::error::{CatalogError, Result};
use crate::Catalog;

/// Migration `i` brings the schema from version `i` to `i + 1`.
const MIGRATIONS: &[&str] = &[
    r#"
CREATE TABLE meta (
    name  TEXT PRIMARY KEY,
    value ANY NOT NULL
) STRICT;

CREATE TABLE api_keys (
    id                    INTEGER PRIMARY KEY,
    name                  TEXT NOT NULL UNIQUE,
    -- A hash of the secret: the secret itself is shown once and never stored.
    key_hash              BLOB NOT NULL UNIQUE CHECK (length(key_hash) = 32),
    -- The first characters of the secret, so people can tell keys apart.
    key_prefix            TEXT NOT NULL,
    role                  TEXT NOT NULL CHECK (role IN ('admin', 'analyst', 'domain')),
    -- Requests per minute; NULL means the server's default, 0 means no limit.
    rate_limit_per_minute INTEGER CHECK (rate_limit_per_minute >= 0),
    created_at            TEXT NOT NULL,
    revoked_at            TEXT
) STRICT;

CREATE TABLE api_key_domains (
    key_id INTEGER NOT NULL REFERENCES api_keys (id),
    domain TEXT NOT NULL,
    PRIMARY KEY (key_id, domain)
) STRICT;

CREATE TABLE audit_log (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    at           TEXT NOT NULL,
    key_id       INTEGER NOT NULL,
    key_name     TEXT NOT NULL,
    endpoint     TEXT NOT NULL,
    subject_kind TEXT NOT NULL,
    -- The searched value in clear for domains; NULL for accounts.
    subject      TEXT,
    -- Keyed BLAKE3 of the searched value, hex: lets an auditor find every search
    -- for one address without the log holding the address.
    subject_hash TEXT NOT NULL,
    results      INTEGER NOT NULL,
    status       INTEGER NOT NULL
) STRICT;

-- No index on subject_hash: the hashes are random, so an index would turn every
-- append into a random B-tree insert (six times the cost of the append itself,
-- measured); the log is written per search and read rarely, by a scan.

CREATE TRIGGER audit_log_no_update BEFORE UPDATE ON audit_log
BEGIN
    SELECT RAISE(ABORT, 'the audit log is append-only');
END;

CREATE TRIGGER audit_log_no_delete BEFORE DELETE ON audit_log
BEGIN
    SELECT RAISE(ABORT, 'the audit log is append-only');
END;

INSERT INTO meta (name, value) VALUES ('keys_version', 0);
"#,
    r#"
-- The tamper-evident chain: each row's keyed BLAKE3 of the previous row's chain
-- value and its own fields (`leakwatch audit-log verify`). Rows written before
-- this migration have none.
ALTER TABLE audit_log ADD COLUMN chain BLOB CHECK (chain IS NULL OR length(chain) = 32);
"#,
    r#"
-- Chain format 3: every row is chained and has a positive id. (Someone with the
-- file can drop this; `audit-log verify` checks that it is there, and the chain
-- that no such row was added.)
CREATE TRIGGER audit_log_chained_insert BEFORE INSERT ON audit_log
WHEN NEW.id IS NULL OR NEW.id <= 0 OR NEW.chain IS NULL
BEGIN
    SELECT RAISE(ABORT, 'audit rows have a positive id and a chain value');
END;

-- The subject key older builds kept here (before key rings): it let anyone with
-- this file test guessed addresses against the rows hashed under it.
DELETE FROM meta WHERE name = 'audit_key';
"#,
];

pub(crate) fn migrate(catalog: &mut Catalog) -> Result<()> {
    let latest = MIGRATIONS.len() as i64;
    loop {
        // Immediate: two processes opening a fresh catalog at once must not both
        // read version 0 and then both try to create the tables.
        let tx = catalog
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(|e| CatalogError::Sql { path: catalog.path.clone(), source: e })?;
        let version: i64 = tx
            .query_row("PRAGMA user_version", [], |r| r.get(0))
            .map_err(|e| CatalogError::Sql { path: catalog.path.clone(), source: e })?;
        if version > latest {
            return Err(CatalogError::UnsupportedVersion {
                path: catalog.path.clone(),
                found: version,
                supported: latest,
            });
        }
        if version == latest {
            return Ok(());
        }
        tx.execute_batch(MIGRATIONS[version as usize])
            .and_then(|()| tx.execute_batch(&format!("PRAGMA user_version = {}", version + 1)))
            .and_then(|()| tx.commit())
            .map_err(|e| CatalogError::Sql { path: catalog.path.clone(), source: e })?;
    }
}
