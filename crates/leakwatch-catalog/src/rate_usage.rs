//! Rate-limit consumption shared between servers on one catalog, so that a
//! key's limit holds across replicas without a database round trip per
//! request.
//!
//! Each server answers from token buckets in its own memory and, every sync
//! interval, calls [`Catalog::exchange_rate_usage`] once: it adds what it
//! admitted per key since the last call to its own counters, and reads the
//! other servers' counters. A counter is a row (replica, key): the requests
//! that replica admitted for that key since the row was born (`born_ms`), so
//! a reader takes the difference from what it saw last, and a row that was
//! pruned and born again is told apart by its birth time. Key 0 (no key has
//! it) is every replica's heartbeat: the replicas alive are those whose
//! heartbeat is recent. Negative ids are anonymous callers' address groups,
//! as the servers name them (a keyed hash: never an address).
//!
//! On PostgreSQL the exchange is one statement; rows not updated for ten
//! minutes (replicas gone) are pruned by [`Catalog::prune_rate_usage`].
//! Times are the database's clock, so replicas' clocks need not agree.
//!
//! These tables version themselves apart (`rate_usage_version` in `meta`).

use std::fmt::Write as _;
use std::time::Duration;

use crate::db::{args, Dialect, Lock};
use crate::error::Result;
use crate::Catalog;

const MIGRATIONS: &[&str] = &[r#"
CREATE TABLE rate_usage (
    replica    TEXT NOT NULL,
    key_id     INTEGER NOT NULL,
    spent      INTEGER NOT NULL,
    -- Milliseconds since the Unix epoch, by the database's clock.
    born_ms    INTEGER NOT NULL,
    updated_ms INTEGER NOT NULL,
    PRIMARY KEY (replica, key_id)
) STRICT;
"#];

const PG_MIGRATIONS: &[&str] = &[r#"
CREATE TABLE rate_usage (
    replica    TEXT NOT NULL,
    key_id     BIGINT NOT NULL,
    spent      BIGINT NOT NULL,
    born_ms    BIGINT NOT NULL,
    updated_ms BIGINT NOT NULL,
    PRIMARY KEY (replica, key_id)
);
"#];

pub(crate) fn migrate(catalog: &mut Catalog) -> Result<()> {
    let migrations = match catalog.dialect() {
        Dialect::Sqlite => MIGRATIONS,
        Dialect::Postgres => PG_MIGRATIONS,
    };
    crate::migrate_set(catalog, "rate_usage_version", migrations)
}

/// The key id of the heartbeat rows (API key ids start at 1).
pub const HEARTBEAT_KEY: i64 = 0;

/// How long a replica's rows are kept after its last update.
const KEEP_MS: i64 = 10 * 60 * 1000;

/// One replica's counter for one key, as another replica reads it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RateUsage {
    pub replica: String,
    pub key_id: i64,
    /// When the row was born (the counter started at 0 then).
    pub born_ms: i64,
    /// Requests admitted for the key by that replica since the row was born.
    pub spent: i64,
}

const PG_NOW: &str = "CAST(floor(extract(epoch FROM clock_timestamp()) * 1000) AS BIGINT)";
const SQLITE_NOW: &str = "CAST((julianday('now') - 2440587.5) * 86400000.0 AS INTEGER)";

impl Catalog {
    /// Adds `spent` (key id, requests admitted since the last call) to
    /// `replica`'s counters, beats its heartbeat, and returns the other
    /// replicas' rows updated within `recent` (their heartbeats included).
    /// One statement on PostgreSQL.
    pub fn exchange_rate_usage(
        &self,
        replica: &str,
        spent: &[(i64, u64)],
        recent: Duration,
    ) -> Result<Vec<RateUsage>> {
        let recent_ms = i64::try_from(recent.as_millis()).unwrap_or(KEEP_MS);
        // The rows are numbers this process formats: literal values keep the
        // whole batch in one statement whatever its length.
        let mut rows = format!("({HEARTBEAT_KEY}, 0)");
        for (key, n) in spent.iter().filter(|(key, n)| *key != HEARTBEAT_KEY && *n > 0) {
            let n = i64::try_from(*n).unwrap_or(i64::MAX);
            write!(rows, ", ({key}, {n})").expect("writing to a String");
        }
        let upsert = "ON CONFLICT (replica, key_id) DO UPDATE SET \
                      spent = rate_usage.spent + excluded.spent, updated_ms = excluded.updated_ms";
        let found = match self.dialect() {
            Dialect::Postgres => self.db.query(
                &format!(
                    "WITH clock AS (SELECT {PG_NOW} AS ms), \
                     incoming (key_id, spent) AS (VALUES {rows}), \
                     written AS (INSERT INTO rate_usage (replica, key_id, spent, born_ms, updated_ms) \
                         SELECT ?1, key_id, spent, ms, ms FROM incoming, clock {upsert}) \
                     SELECT replica, key_id, born_ms, spent FROM rate_usage, clock \
                     WHERE replica <> ?1 AND updated_ms >= ms - ?2"
                ),
                args![replica, recent_ms],
            )?,
            Dialect::Sqlite => {
                let tx = self.db.write(Lock::Catalog)?;
                tx.execute(
                    &format!(
                        "WITH clock AS (SELECT {SQLITE_NOW} AS ms), \
                         incoming (key_id, spent) AS (VALUES {rows}) \
                         INSERT INTO rate_usage (replica, key_id, spent, born_ms, updated_ms) \
                         SELECT ?1, key_id, spent, ms, ms FROM incoming, clock WHERE true {upsert}"
                    ),
                    args![replica],
                )?;
                let found = tx.query(
                    &format!(
                        "SELECT replica, key_id, born_ms, spent FROM rate_usage \
                         WHERE replica <> ?1 AND updated_ms >= {SQLITE_NOW} - ?2"
                    ),
                    args![replica, recent_ms],
                )?;
                tx.commit()?;
                found
            }
        };
        found
            .iter()
            .map(|r| {
                Ok(RateUsage { replica: r.get(0)?, key_id: r.get(1)?, born_ms: r.get(2)?, spent: r.get(3)? })
            })
            .collect()
    }

    /// Removes the counters of replicas that have not updated them for ten
    /// minutes (stopped servers); how many.
    pub fn prune_rate_usage(&self) -> Result<u64> {
        let now = match self.dialect() {
            Dialect::Postgres => PG_NOW,
            Dialect::Sqlite => SQLITE_NOW,
        };
        self.db.execute(&format!("DELETE FROM rate_usage WHERE updated_ms < {now} - ?1"), args![KEEP_MS])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replicas_see_each_others_counters_and_heartbeats_but_not_their_own() {
        crate::testing::each_backend(|location| {
            let a = Catalog::open_at(location).unwrap();
            let b = Catalog::open_at(location).unwrap();
            let recent = Duration::from_secs(5);
            assert_eq!(a.exchange_rate_usage("a", &[(7, 3), (8, 0)], recent).unwrap(), vec![]);
            let mut seen = b.exchange_rate_usage("b", &[(7, 1)], recent).unwrap();
            seen.sort_by_key(|u| u.key_id);
            let view: Vec<_> = seen.iter().map(|u| (u.replica.as_str(), u.key_id, u.spent)).collect();
            assert_eq!(view, [("a", HEARTBEAT_KEY, 0), ("a", 7, 3)]);
            let born = seen[1].born_ms;
            // Counters add up; the birth time stays.
            a.exchange_rate_usage("a", &[(7, 2)], recent).unwrap();
            let seen = b.exchange_rate_usage("b", &[], recent).unwrap();
            let row = seen.iter().find(|u| u.key_id == 7).unwrap();
            assert_eq!((row.spent, row.born_ms), (5, born));
            let seen = a.exchange_rate_usage("a", &[], recent).unwrap();
            let mut view: Vec<_> = seen.iter().map(|u| (u.replica.as_str(), u.key_id, u.spent)).collect();
            view.sort();
            assert_eq!(view, [("b", HEARTBEAT_KEY, 0), ("b", 7, 1)]);
            // Nothing is ten minutes old yet.
            assert_eq!(a.prune_rate_usage().unwrap(), 0);
        });
    }
}
