//! Web sign-in sessions kept in the catalog, so that every server of a shared
//! (PostgreSQL) catalog knows a browser signed in at any of them.
//!
//! A row holds a hash of the session id (the id itself, the browser's
//! cookie, never reaches the catalog: a copy of the table signs nobody in),
//! the hash of the API key signed in with, and two times. The server decides
//! what is expired; this module stores, finds and forgets.
//!
//! These tables version themselves apart (`sessions_version` in `meta`).

use crate::db::{args, Dialect};
use crate::error::Result;
use crate::keys::KeyHash;
use crate::Catalog;

const MIGRATIONS: &[&str] = &[r#"
CREATE TABLE web_sessions (
    id_hash       BLOB PRIMARY KEY CHECK (length(id_hash) = 32),
    key_hash      BLOB NOT NULL CHECK (length(key_hash) = 32),
    created_at_ms INTEGER NOT NULL,
    last_seen_ms  INTEGER NOT NULL
) STRICT, WITHOUT ROWID;
"#];

const PG_MIGRATIONS: &[&str] = &[r#"
CREATE TABLE web_sessions (
    id_hash       BYTEA PRIMARY KEY CHECK (octet_length(id_hash) = 32),
    key_hash      BYTEA NOT NULL CHECK (octet_length(key_hash) = 32),
    created_at_ms BIGINT NOT NULL,
    last_seen_ms  BIGINT NOT NULL
);
"#];

pub(crate) fn migrate(catalog: &mut Catalog) -> Result<()> {
    let migrations = match catalog.dialect() {
        Dialect::Sqlite => MIGRATIONS,
        Dialect::Postgres => PG_MIGRATIONS,
    };
    crate::migrate_set(catalog, "sessions_version", migrations)
}

/// A stored session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredSession {
    pub key_hash: KeyHash,
    pub created_at_ms: i64,
    pub last_seen_ms: i64,
}

impl Catalog {
    /// Records a new session, then forgets sessions last seen before
    /// `idle_before_ms` or created before `created_before_ms`, and the least
    /// recently seen beyond the newest `keep`.
    pub fn create_session(
        &mut self,
        id_hash: &[u8; 32],
        key_hash: &KeyHash,
        now_ms: i64,
        (idle_before_ms, created_before_ms, keep): (i64, i64, usize),
    ) -> Result<()> {
        self.db.execute(
            "INSERT INTO web_sessions (id_hash, key_hash, created_at_ms, last_seen_ms) VALUES (?1, ?2, ?3, ?3)",
            args![id_hash.as_slice(), key_hash.as_slice(), now_ms],
        )?;
        self.db.execute(
            "DELETE FROM web_sessions WHERE last_seen_ms < ?1 OR created_at_ms < ?2",
            args![idle_before_ms, created_before_ms],
        )?;
        self.db.execute(
            "DELETE FROM web_sessions WHERE id_hash IN (SELECT id_hash FROM web_sessions \
             ORDER BY last_seen_ms DESC, id_hash LIMIT ?1 OFFSET ?2)",
            args![i64::MAX, keep.min(i64::MAX as usize) as i64],
        )?;
        Ok(())
    }

    /// The session whose id hashes to `id_hash`, if stored.
    pub fn session(&self, id_hash: &[u8; 32]) -> Result<Option<StoredSession>> {
        let Some(r) = self.db.query_opt(
            "SELECT key_hash, created_at_ms, last_seen_ms FROM web_sessions WHERE id_hash = ?1",
            args![id_hash.as_slice()],
        )?
        else {
            return Ok(None);
        };
        let key_hash: Vec<u8> = r.get(0)?;
        let Ok(key_hash) = KeyHash::try_from(key_hash) else {
            return Err(crate::CatalogError::DataCorruption {
                path: self.path().to_owned(),
                detail: "a web session's key hash has the wrong length".into(),
            });
        };
        Ok(Some(StoredSession { key_hash, created_at_ms: r.get(1)?, last_seen_ms: r.get(2)? }))
    }

    /// Notes that the session was used at `now_ms`.
    pub fn touch_session(&self, id_hash: &[u8; 32], now_ms: i64) -> Result<()> {
        self.db
            .execute(
                "UPDATE web_sessions SET last_seen_ms = ?2 WHERE id_hash = ?1 AND last_seen_ms < ?2",
                args![id_hash.as_slice(), now_ms],
            )
            .map(drop)
    }

    /// Forgets a session (sign-out, or found expired).
    pub fn remove_session(&self, id_hash: &[u8; 32]) -> Result<()> {
        self.db.execute("DELETE FROM web_sessions WHERE id_hash = ?1", args![id_hash.as_slice()]).map(drop)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sessions_are_stored_found_touched_and_forgotten() {
        crate::testing::each_backend(|location| {
            let mut a = Catalog::open_at(location).unwrap();
            let b = Catalog::open_at(location).unwrap();
            let keep_all = (0, 0, 100);
            a.create_session(&[1; 32], &[9; 32], 1_000, keep_all).unwrap();
            // Another connection (another server) sees it.
            let found = b.session(&[1; 32]).unwrap().unwrap();
            assert_eq!(found, StoredSession { key_hash: [9; 32], created_at_ms: 1_000, last_seen_ms: 1_000 });
            assert_eq!(b.session(&[2; 32]).unwrap(), None);
            b.touch_session(&[1; 32], 5_000).unwrap();
            b.touch_session(&[1; 32], 4_000).unwrap();
            assert_eq!(a.session(&[1; 32]).unwrap().unwrap().last_seen_ms, 5_000, "time only moves on");
            // A new session sweeps out the idle and the old ones, and keeps at most `keep`.
            a.create_session(&[2; 32], &[9; 32], 6_000, keep_all).unwrap();
            a.create_session(&[3; 32], &[9; 32], 7_000, (5_500, 0, 100)).unwrap();
            assert_eq!(a.session(&[1; 32]).unwrap(), None, "idle");
            a.create_session(&[4; 32], &[9; 32], 8_000, (0, 6_500, 100)).unwrap();
            assert_eq!(a.session(&[2; 32]).unwrap(), None, "too old");
            a.create_session(&[5; 32], &[9; 32], 9_000, (0, 0, 2)).unwrap();
            assert_eq!(a.session(&[3; 32]).unwrap(), None, "beyond the newest two");
            assert!(a.session(&[4; 32]).unwrap().is_some() && a.session(&[5; 32]).unwrap().is_some());
            b.remove_session(&[5; 32]).unwrap();
            assert_eq!(a.session(&[5; 32]).unwrap(), None);
        });
    }
}
