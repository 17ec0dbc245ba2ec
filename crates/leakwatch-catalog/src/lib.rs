//! The catalog: leakwatch's small mutable state, in one embedded SQLite file
//! beside the immutable index (`DATA/catalog.sqlite`).
//!
//! It holds API keys (as hashes, never the keys themselves), their roles, domains
//! and rate limits, the audit log of authenticated searches, organizations
//! with their domains, directories of accounts and alert destinations, and the
//! log of ingests (their progress and rejections by reason). The index
//! segments stay immutable and memory-mapped; everything that changes by the
//! minute lives here, behind SQL transactions, so that the CLI can add or revoke a
//! key while a server is running and the server sees it within a poll interval.
//!
//! **Architecture Invariant:** the audit log is append-only. This crate has no
//! update or delete path for it, and the schema refuses both with triggers, so a
//! bug elsewhere cannot rewrite history through this connection either.
//!
//! **Architecture Invariant:** a searched address never enters the catalog in
//! clear; the audit log holds a keyed hash of it ([`AuditHasher`]).

mod alerts;
mod audit;
mod directory;
mod error;
mod ingests;
mod keys;
mod orgs;
mod schema;

use std::path::{Path, PathBuf};
use std::time::Duration;

use rusqlite::Connection;

pub use alerts::{now_ms, AlertRoute, Delivery, NewAlert, NewDelivery, Scan, SeenMac};
pub use audit::{
    AuditEntry, AuditFilter, AuditHasher, AuditKey, AuditKeys, AuditRecord, AuditVerification, ChainPrefix,
    Subject, SubjectKind,
};
pub use directory::{
    parse_directory, DirectoryEntry, DirectoryFormat, DirectoryRecord, LeftOut, ParsedDirectory,
    RecordReader, EMPTY_NT_HASH,
};
pub use error::{CatalogError, Result};
pub use ingests::{
    IngestInput, IngestOutcome, IngestProgress, IngestRecord, IngestStatus, NewIngest, Rejection,
};
pub use keys::{hash_secret, ApiKey, CreatedKey, KeyHash, NewKey, Role};
pub use orgs::{AlertDestination, DirectoryChange, DirectoryImport, Organization, SealedDirectory};

/// The catalog's file name inside a data directory.
pub const CATALOG_FILE: &str = "catalog.sqlite";

/// An open catalog: one SQLite connection. Open one per thread that needs it;
/// SQLite's WAL mode lets readers and the one writer proceed together.
pub struct Catalog {
    conn: Connection,
    path: PathBuf,
}

impl std::fmt::Debug for Catalog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Catalog").field("path", &self.path).finish()
    }
}

impl Catalog {
    /// Opens the catalog of the data directory `root`, creating it (and the
    /// directory) on first use.
    pub fn open_in(root: &Path) -> Result<Catalog> {
        // Created readable by its owner only, like the data directory it is in.
        use std::os::unix::fs::DirBuilderExt;
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(root)
            .map_err(|e| CatalogError::Io { path: root.to_owned(), source: e })?;
        Catalog::open(&root.join(CATALOG_FILE))
    }

    /// Opens (or creates) the catalog file at `path` and brings its schema up to
    /// date.
    pub fn open(path: &Path) -> Result<Catalog> {
        create_private(path)?;
        let conn =
            Connection::open(path).map_err(|e| CatalogError::Sql { path: path.to_owned(), source: e })?;
        let mut catalog = Catalog { conn, path: path.to_owned() };
        // Another process (the CLI beside a running server) may hold the write
        // lock for a moment; waiting briefly beats failing a key creation.
        catalog.conn.busy_timeout(Duration::from_secs(10)).map_err(|e| catalog.sql(e))?;
        catalog
            .conn
            .execute_batch(
                "PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL; PRAGMA foreign_keys = ON;",
            )
            .map_err(|e| catalog.sql(e))?;
        schema::migrate(&mut catalog)?;
        orgs::migrate(&mut catalog)?;
        ingests::migrate(&mut catalog)?;
        Ok(catalog)
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Turns off SQLite's automatic checkpoints on this connection: the
    /// checkpoint (and its fsyncs) then runs only when [`Catalog::checkpoint`]
    /// is called, from wherever it delays nobody.
    pub fn manual_checkpoints(&self) -> Result<()> {
        self.conn.execute_batch("PRAGMA wal_autocheckpoint = 0").map_err(|e| self.sql(e))
    }

    /// Copies the write-ahead log into the database as far as it can without
    /// waiting for anyone (`PASSIVE`); returns the frames left in the log and
    /// how many of them are now copied.
    pub fn checkpoint(&self) -> Result<(i64, i64)> {
        self.conn
            .query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |r| Ok((r.get(1)?, r.get(2)?)))
            .map_err(|e| self.sql(e))
    }

    pub(crate) fn sql(&self, source: rusqlite::Error) -> CatalogError {
        CatalogError::Sql { path: self.path.clone(), source }
    }
}

/// Creates the catalog file readable by its owner only, before SQLite opens it:
/// it holds key hashes and the audit log. SQLite gives its `-wal` and `-shm`
/// files the same permissions as the database.
fn create_private(path: &Path) -> Result<()> {
    use std::os::unix::fs::OpenOptionsExt;
    match std::fs::OpenOptions::new().write(true).create_new(true).mode(0o600).open(path) {
        Ok(_) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
        Err(e) => Err(CatalogError::Io { path: path.to_owned(), source: e }),
    }
}

/// Now, as the catalog writes times: RFC 3339 UTC with milliseconds.
pub fn now() -> String {
    format_time(time::OffsetDateTime::now_utc())
}

fn format_time(t: time::OffsetDateTime) -> String {
    const FORMAT: &[time::format_description::BorrowedFormatItem<'static>] = time::macros::format_description!(
        "[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:3]Z"
    );
    t.to_offset(time::UtcOffset::UTC).format(FORMAT).expect("a UTC time always formats")
}

/// Brings one set of tables to its latest version: `migrations[v]` takes it
/// from version `v` to `v + 1`, each step in its own immediate transaction
/// with the version kept in `meta` under `version_row`, so that concurrent
/// openers apply each step once. A catalog newer than this build is refused.
pub(crate) fn migrate_set(catalog: &mut Catalog, version_row: &str, migrations: &[&str]) -> Result<()> {
    use rusqlite::{params, OptionalExtension, TransactionBehavior};
    let latest = migrations.len() as i64;
    let path = catalog.path.clone();
    let sql = |e| CatalogError::Sql { path: path.clone(), source: e };
    loop {
        let tx = catalog.conn.transaction_with_behavior(TransactionBehavior::Immediate).map_err(sql)?;
        let version: i64 = tx
            .query_row("SELECT value FROM meta WHERE name = ?1", [version_row], |r| r.get(0))
            .optional()
            .map_err(sql)?
            .unwrap_or(0);
        if version > latest {
            return Err(CatalogError::UnsupportedVersion { path, found: version, supported: latest });
        }
        if version == latest {
            return Ok(());
        }
        tx.execute_batch(migrations[version as usize])
            .and_then(|()| {
                tx.execute(
                    "INSERT INTO meta (name, value) VALUES (?1, ?2) \
                     ON CONFLICT (name) DO UPDATE SET value = excluded.value",
                    params![version_row, version + 1],
                )
            })
            .and_then(|_| tx.commit())
            .map_err(sql)?;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_are_rfc3339_utc_with_milliseconds() {
        let t = time::macros::datetime!(2026-03-04 05:06:07.891234 +02:00);
        assert_eq!(format_time(t), "2026-03-04T03:06:07.891Z");
        assert_eq!(now().len(), "2026-03-04T03:06:07.891Z".len());
    }

    #[test]
    fn the_catalog_file_is_private_and_reopens() {
        use std::os::unix::fs::PermissionsExt;
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path().join("data");
        drop(Catalog::open_in(&root).unwrap());
        let meta = std::fs::metadata(root.join(CATALOG_FILE)).unwrap();
        assert_eq!(meta.permissions().mode() & 0o777, 0o600);
        Catalog::open_in(&root).unwrap();
    }

    #[test]
    fn manual_checkpoints_copy_the_whole_log_when_asked() {
        let tmp = tempfile::tempdir().unwrap();
        let mut writer = Catalog::open_in(tmp.path()).unwrap();
        writer.manual_checkpoints().unwrap();
        let keys = AuditKeys::new(vec![AuditKey::from_root(&[1; 32])], ChainPrefix::None);
        let hasher = keys.current().hasher();
        for i in 0..200 {
            let subject = hasher.subject(SubjectKind::Account, &format!("u{i}@example.com"));
            let entry = AuditEntry::cli("a", "test", subject, 0);
            writer.append_audit(&[entry], &keys).unwrap();
        }
        let checkpointer = Catalog::open_in(tmp.path()).unwrap();
        let (log, copied) = checkpointer.checkpoint().unwrap();
        assert!(log > 0 && copied == log, "{log} {copied}");
    }
}
