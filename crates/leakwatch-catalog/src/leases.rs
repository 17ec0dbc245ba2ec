//! Leases: a named role that one process at a time holds for a while, such
//! as delivering the alert outbox (`alert-delivery`) when several servers
//! share one catalog.
//!
//! A lease is a row (name, holder, expiry). Taking and renewing it is one
//! write transaction, so it is decided the same way on SQLite and PostgreSQL:
//! the row is read and changed while other writers wait. Expiry is measured
//! by **the database's clock** (`clock_timestamp()` on PostgreSQL, the time
//! of the SQLite call on SQLite's one machine), never by the holders' clocks,
//! so machines whose clocks disagree still agree on who holds it. A holder
//! that wants to know how long it may act counts the lease time from before
//! it asked, on its own monotonic clock (see [`Lease::held`]): that ends no
//! later than the database's expiry, whatever the clocks read.
//!
//! These tables version themselves apart (`leases_version` in `meta`).

use std::time::Duration;

use crate::db::{args, Dialect, Lock};
use crate::error::Result;
use crate::Catalog;

const MIGRATIONS: &[&str] = &[r#"
CREATE TABLE leases (
    name          TEXT PRIMARY KEY,
    holder        TEXT NOT NULL,
    -- Milliseconds since the Unix epoch, by the database's clock.
    expires_at_ms INTEGER NOT NULL
) STRICT;
"#];

const PG_MIGRATIONS: &[&str] = &[r#"
CREATE TABLE leases (
    name          TEXT PRIMARY KEY,
    holder        TEXT NOT NULL,
    expires_at_ms BIGINT NOT NULL
);
"#];

pub(crate) fn migrate(catalog: &mut Catalog) -> Result<()> {
    let migrations = match catalog.dialect() {
        Dialect::Sqlite => MIGRATIONS,
        Dialect::Postgres => PG_MIGRATIONS,
    };
    crate::migrate_set(catalog, "leases_version", migrations)
}

/// The database's clock in milliseconds since the Unix epoch.
/// `clock_timestamp()`, not `now()`: `now()` is when the transaction began,
/// which is before the wait for the lock.
pub(crate) fn db_now_ms(dialect: Dialect) -> &'static str {
    match dialect {
        Dialect::Postgres => "SELECT CAST(floor(extract(epoch FROM clock_timestamp()) * 1000) AS BIGINT)",
        Dialect::Sqlite => "SELECT CAST((julianday('now') - 2440587.5) * 86400000.0 AS INTEGER)",
    }
}

/// A lease as one call found or left it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lease {
    /// Whether the caller holds it now.
    pub held: bool,
    /// Who holds it (the caller, when `held`).
    pub holder: String,
    /// How long until it expires, by the database's clock, from when it was
    /// read; 0 or less when it has expired.
    pub expires_in_ms: i64,
}

/// A name for this process as a lease holder: its process id and a random
/// part, so that a restarted process (or one on another machine with the
/// same pid) is not mistaken for the one before.
pub fn lease_holder_name() -> String {
    format!("pid{}-{:016x}", std::process::id(), rand::random::<u64>())
}

impl Catalog {
    /// Takes the lease `name` for `holder` for `ttl` from now (by the
    /// database's clock) if it is free, expired, or already `holder`'s (a
    /// renewal); otherwise leaves it to whoever holds it. Either way returns
    /// the lease as it then is.
    pub fn take_lease(&mut self, name: &str, holder: &str, ttl: Duration) -> Result<Lease> {
        let ttl_ms = i64::try_from(ttl.as_millis()).unwrap_or(i64::MAX / 2);
        let tx = self.db.write(Lock::Lease)?;
        let now: i64 = tx.query_one(db_now_ms(tx.dialect()), &[])?.get(0)?;
        let current = tx
            .query_opt("SELECT holder, expires_at_ms FROM leases WHERE name = ?1", args![name])?
            .map(|r| Ok::<_, crate::CatalogError>((r.get::<String>(0)?, r.get::<i64>(1)?)))
            .transpose()?;
        let expires = now.saturating_add(ttl_ms);
        match current {
            Some((other, expires_at)) if other != holder && expires_at > now => {
                return Ok(Lease { held: false, holder: other, expires_in_ms: expires_at - now });
            }
            Some(_) => {
                tx.execute(
                    "UPDATE leases SET holder = ?2, expires_at_ms = ?3 WHERE name = ?1",
                    args![name, holder, expires],
                )?;
            }
            None => {
                tx.execute(
                    "INSERT INTO leases (name, holder, expires_at_ms) VALUES (?1, ?2, ?3)",
                    args![name, holder, expires],
                )?;
            }
        }
        tx.commit()?;
        Ok(Lease { held: true, holder: holder.to_owned(), expires_in_ms: ttl_ms })
    }

    /// Gives up the lease `name` if `holder` holds it, so that another
    /// process may take it at once instead of after its expiry. Returns
    /// whether it was `holder`'s.
    pub fn release_lease(&mut self, name: &str, holder: &str) -> Result<bool> {
        let tx = self.db.write(Lock::Lease)?;
        let released = tx.execute(
            "UPDATE leases SET expires_at_ms = 0 WHERE name = ?1 AND holder = ?2",
            args![name, holder],
        )? > 0;
        tx.commit()?;
        Ok(released)
    }

    /// The lease `name` as it stands, seen by `holder`; `None` if nobody
    /// ever took it.
    pub fn lease(&self, name: &str, holder: &str) -> Result<Option<Lease>> {
        let now: i64 = self.db.query_one(db_now_ms(self.dialect()), &[])?.get(0)?;
        let Some(r) =
            self.db.query_opt("SELECT holder, expires_at_ms FROM leases WHERE name = ?1", args![name])?
        else {
            return Ok(None);
        };
        let (current, expires_at): (String, i64) = (r.get(0)?, r.get(1)?);
        Ok(Some(Lease {
            held: current == holder && expires_at > now,
            holder: current,
            expires_in_ms: expires_at - now,
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TTL: Duration = Duration::from_millis(1_500);

    #[test]
    fn one_holder_at_a_time_renewal_expiry_takeover_and_release() {
        crate::testing::each_backend(|location| {
            let mut a = Catalog::open_at(location).unwrap();
            let mut b = Catalog::open_at(location).unwrap();
            assert_eq!(a.lease("alert-delivery", "a").unwrap(), None);

            let took = a.take_lease("alert-delivery", "a", TTL).unwrap();
            assert!(took.held && took.holder == "a");
            // Another holder is refused while it runs, and told who holds it.
            let refused = b.take_lease("alert-delivery", "b", TTL).unwrap();
            assert!(!refused.held);
            assert_eq!(refused.holder, "a");
            assert!(refused.expires_in_ms > 0 && refused.expires_in_ms <= 1_500, "{refused:?}");
            // Leases are by name: another name is free.
            assert!(b.take_lease("other", "b", TTL).unwrap().held);

            // Renewing before expiry keeps it past the first expiry.
            std::thread::sleep(Duration::from_millis(1_000));
            assert!(a.take_lease("alert-delivery", "a", TTL).unwrap().held, "renewal");
            std::thread::sleep(Duration::from_millis(1_000));
            assert!(!b.take_lease("alert-delivery", "b", TTL).unwrap().held, "renewed, so not expired");
            assert!(b.lease("alert-delivery", "a").unwrap().unwrap().held);

            // The holder stops renewing (it died): once expired, the other takes it over...
            std::thread::sleep(TTL);
            assert!(!b.lease("alert-delivery", "a").unwrap().unwrap().held, "expired");
            let taken = b.take_lease("alert-delivery", "b", TTL).unwrap();
            assert!(taken.held && taken.holder == "b");
            // ...and the old holder cannot renew what it lost.
            let lost = a.take_lease("alert-delivery", "a", TTL).unwrap();
            assert!(!lost.held);
            assert_eq!(lost.holder, "b");

            // Releasing: only the holder can, and the lease is free at once.
            assert!(!a.release_lease("alert-delivery", "a").unwrap());
            assert!(!a.take_lease("alert-delivery", "a", TTL).unwrap().held);
            assert!(b.release_lease("alert-delivery", "b").unwrap());
            assert!(a.take_lease("alert-delivery", "a", TTL).unwrap().held);
        });
    }

    #[test]
    fn racing_holders_never_both_hold_it() {
        crate::testing::each_backend(|location| {
            let holders: Vec<_> = (0..4)
                .map(|i| {
                    let location = location.clone();
                    std::thread::spawn(move || {
                        let mut c = Catalog::open_at(&location).unwrap();
                        (0..20)
                            .filter(|_| {
                                c.take_lease("race", &format!("h{i}"), Duration::from_secs(60)).unwrap().held
                            })
                            .count()
                    })
                })
                .collect();
            let wins: Vec<usize> = holders.into_iter().map(|h| h.join().unwrap()).collect();
            assert_eq!(wins.iter().filter(|&&n| n > 0).count(), 1, "exactly one holder: {wins:?}");
            assert_eq!(wins.iter().sum::<usize>(), 20, "the winner renews every time: {wins:?}");
        });
    }
}
