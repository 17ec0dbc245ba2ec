//! Alert destinations, what the monitor already recorded per organization, and
//! the outbox of batches to deliver, with their attempts.
//!
//! Everything that names a person or opens a door is sealed by the caller
//! (`leakwatch-alert`, with keys from the key ring): the secrets of the
//! destinations, the payload of each batch. What was already recorded is a set
//! of keyed hashes. The catalog file alone names nobody and signs nothing.
//!
//! A scan is recorded in one transaction (the hashes it saw, its batches, the
//! generation it compared), so a crash leaves either all of it or none, and the
//! next scan finds again what the lost one had found.

use std::collections::HashSet;

use crate::db::{args, Db, Lock, Row, Value};
use crate::error::{CatalogError, Result};
use crate::Catalog;

/// A keyed hash of one exposure (an account and a breach), as the monitor
/// computes it.
pub type SeenMac = [u8; 16];

/// A destination as the monitor and the delivery read it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AlertRoute {
    pub id: i64,
    pub org_id: i64,
    pub org: String,
    pub kind: String,
    pub target: String,
    /// The caller's JSON, opaque here.
    pub settings: String,
    pub sealed_secret: Option<Vec<u8>>,
}

/// A destination to add.
#[derive(Debug, Clone)]
pub struct NewAlert<'a> {
    pub kind: &'a str,
    pub target: &'a str,
    pub settings: &'a str,
    pub sealed_secret: Option<&'a [u8]>,
}

/// What a scan found already there for an organization, at a generation.
#[derive(Debug, Clone, Default)]
pub struct Scan {
    pub generation: u64,
    pub macs: Vec<SeenMac>,
}

/// One batch for one destination, as a scan creates it.
#[derive(Debug, Clone)]
pub struct NewDelivery {
    pub alert_id: i64,
    pub delivery_id: String,
    pub exposures: u64,
    pub sealed: Vec<u8>,
}

/// A batch waiting in the outbox.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Delivery {
    pub id: i64,
    pub alert_id: i64,
    pub delivery_id: String,
    pub generation: u64,
    pub exposures: u64,
    pub sealed: Vec<u8>,
    pub created_at_ms: i64,
    pub attempts: u32,
    pub last_error: Option<String>,
    pub delivered: bool,
    pub given_up: bool,
}

/// Milliseconds since the Unix epoch, the outbox's clock.
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

impl Catalog {
    /// Adds a destination to `org`. When it is the organization's first,
    /// `baseline` is recorded as already seen, at its generation: alerts cover
    /// what is published after they were turned on, not the backlog (the audit
    /// is for that). Returns the destination's id.
    pub fn add_alert(&mut self, org: &str, alert: &NewAlert, baseline: &Scan) -> Result<i64> {
        let now = crate::now();
        let tx = self.db.write(Lock::Catalog)?;
        let org_id: Option<i64> = tx
            .query_opt("SELECT id FROM organizations WHERE name = ?1", args![org])?
            .map(|r| r.get(0))
            .transpose()?;
        let Some(org_id) = org_id else {
            return Err(CatalogError::Invalid(format!("no organization {org:?} (see `leakwatch org list`)")));
        };
        let existing: i64 = tx
            .query_one("SELECT count(*) FROM organization_alerts WHERE org_id = ?1", args![org_id])?
            .get(0)?;
        let duplicate: Option<i64> = tx
            .query_opt(
                "SELECT id FROM organization_alerts WHERE org_id = ?1 AND kind = ?2 AND target = ?3",
                args![org_id, alert.kind, alert.target],
            )?
            .map(|r| r.get(0))
            .transpose()?;
        if let Some(id) = duplicate {
            // The same destination again: its settings and secret replaced.
            tx.execute(
                "UPDATE organization_alerts SET settings = ?2, sealed_secret = ?3 WHERE id = ?1",
                args![id, alert.settings, alert.sealed_secret],
            )?;
            tx.commit()?;
            return Ok(id);
        }
        let id: i64 = tx
            .query_one(
                "INSERT INTO organization_alerts (org_id, kind, target, created_at, settings, sealed_secret) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6) RETURNING id",
                args![org_id, alert.kind, alert.target, now, alert.settings, alert.sealed_secret],
            )?
            .get(0)?;
        if existing == 0 {
            insert_seen(&tx, org_id, &baseline.macs)?;
            tx.execute(
                "UPDATE organizations SET alert_generation = ?2 WHERE id = ?1",
                args![org_id, baseline.generation as i64],
            )?;
        }
        tx.commit()?;
        Ok(id)
    }

    /// Removes one of `org`'s destinations with its outbox rows; false when it
    /// has none with that id.
    pub fn remove_alert(&mut self, org: &str, id: i64) -> Result<bool> {
        let n = self.db.execute(
            "DELETE FROM organization_alerts WHERE id = ?1 AND org_id = \
             (SELECT id FROM organizations WHERE name = ?2)",
            args![id, org],
        )?;
        Ok(n > 0)
    }

    /// Every destination of every organization, by organization then id.
    pub fn alert_routes(&self) -> Result<Vec<AlertRoute>> {
        let rows = self.db.query(
            "SELECT a.id, o.id, o.name, a.kind, a.target, a.settings, a.sealed_secret \
             FROM organization_alerts a JOIN organizations o ON o.id = a.org_id ORDER BY o.name, a.id",
            &[],
        )?;
        rows.iter()
            .map(|r| {
                Ok(AlertRoute {
                    id: r.get(0)?,
                    org_id: r.get(1)?,
                    org: r.get(2)?,
                    kind: r.get(3)?,
                    target: r.get(4)?,
                    settings: r.get(5)?,
                    sealed_secret: r.get(6)?,
                })
            })
            .collect()
    }

    /// The generation the monitor last compared `org_id` with, and what was
    /// recorded as seen for it.
    pub fn alert_seen(&self, org_id: i64) -> Result<(Option<u64>, HashSet<SeenMac>)> {
        let generation: Option<i64> = self
            .db
            .query_opt("SELECT alert_generation FROM organizations WHERE id = ?1", args![org_id])?
            .map(|r| r.get(0))
            .transpose()?
            .flatten();
        let mut macs = HashSet::new();
        for r in self.db.query("SELECT mac FROM alert_seen WHERE org_id = ?1", args![org_id])? {
            if let Ok(mac) = <SeenMac>::try_from(r.get::<Vec<u8>>(0)?.as_slice()) {
                macs.insert(mac);
            }
        }
        Ok((generation.map(|g| g as u64), macs))
    }

    /// Records a scan of `org_id` at `scan.generation`: its new hashes and
    /// its batches, at once. Returns false, recording nothing, when another
    /// process recorded that generation (or a later one) first.
    pub fn record_scan(&mut self, org_id: i64, scan: &Scan, batches: &[NewDelivery]) -> Result<bool> {
        let tx = self.db.write(Lock::Catalog)?;
        let done: Option<Option<i64>> = tx
            .query_opt("SELECT alert_generation FROM organizations WHERE id = ?1", args![org_id])?
            .map(|r| r.get(0))
            .transpose()?;
        match done {
            None => return Ok(false),
            Some(Some(g)) if g as u64 >= scan.generation => return Ok(false),
            Some(_) => {}
        }
        insert_seen(&tx, org_id, &scan.macs)?;
        let now = now_ms();
        for b in batches {
            tx.execute(
                "INSERT INTO alert_outbox (alert_id, delivery_id, generation, exposures, sealed, \
                 created_at_ms, next_attempt_ms) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?6)",
                args![b.alert_id, &b.delivery_id, scan.generation as i64, b.exposures as i64, &b.sealed, now],
            )?;
        }
        tx.execute(
            "UPDATE organizations SET alert_generation = ?2 WHERE id = ?1",
            args![org_id, scan.generation as i64],
        )?;
        tx.commit()?;
        Ok(true)
    }

    /// Batches due at `now_ms` (their next attempt is not later), oldest
    /// first, at most `limit`.
    pub fn due_deliveries(&self, now_ms: i64, limit: usize) -> Result<Vec<Delivery>> {
        self.deliveries(
            "WHERE delivered_at IS NULL AND given_up_at IS NULL AND next_attempt_ms <= ?1 \
             ORDER BY next_attempt_ms, id LIMIT ?2",
            args![now_ms, limit as i64],
        )
    }

    /// Every batch of one destination, newest first (for `org alert --list`).
    pub fn alert_deliveries(&self, alert_id: i64, limit: usize) -> Result<Vec<Delivery>> {
        self.deliveries("WHERE alert_id = ?1 ORDER BY id DESC LIMIT ?2", args![alert_id, limit as i64])
    }

    fn deliveries(&self, filter: &str, params: &[Value]) -> Result<Vec<Delivery>> {
        let sql = format!(
            "SELECT id, alert_id, delivery_id, generation, exposures, sealed, created_at_ms, attempts, \
             last_error, delivered_at IS NOT NULL, given_up_at IS NOT NULL FROM alert_outbox {filter}"
        );
        let delivery = |r: &Row| -> Result<Delivery> {
            Ok(Delivery {
                id: r.get(0)?,
                alert_id: r.get(1)?,
                delivery_id: r.get(2)?,
                generation: r.get::<i64>(3)? as u64,
                exposures: r.get::<i64>(4)? as u64,
                sealed: r.get(5)?,
                created_at_ms: r.get(6)?,
                attempts: r.get::<i64>(7)? as u32,
                last_error: r.get(8)?,
                delivered: r.get(9)?,
                given_up: r.get(10)?,
            })
        };
        self.db.query(&sql, params)?.iter().map(delivery).collect()
    }

    /// When the next pending batch is due, if any is pending.
    pub fn next_due_ms(&self) -> Result<Option<i64>> {
        self.db
            .query_one(
                "SELECT min(next_attempt_ms) FROM alert_outbox WHERE delivered_at IS NULL AND given_up_at IS NULL",
                &[],
            )?
            .get(0)
    }

    /// Counts an attempt of batch `id` before it is made, and sets when the
    /// next one is due should this one not succeed: a process killed during
    /// the attempt leaves a batch that is retried then. Returns the attempts
    /// made so far, this one included.
    pub fn begin_attempt(&mut self, id: i64, next_attempt_ms: i64) -> Result<u32> {
        let attempts: i64 = self
            .db
            .query_one(
                "UPDATE alert_outbox SET attempts = attempts + 1, next_attempt_ms = ?2 WHERE id = ?1 \
                 RETURNING attempts",
                args![id, next_attempt_ms],
            )?
            .get(0)?;
        Ok(attempts as u32)
    }

    /// Marks batch `id` delivered.
    pub fn delivered(&mut self, id: i64) -> Result<()> {
        self.db
            .execute(
                "UPDATE alert_outbox SET delivered_at = ?2, last_error = NULL WHERE id = ?1",
                args![id, crate::now()],
            )
            .map(drop)
    }

    /// Records why an attempt of batch `id` failed; with `give_up`, no more
    /// attempts are made.
    pub fn attempt_failed(&mut self, id: i64, error: &str, give_up: bool) -> Result<()> {
        let given_up_at = give_up.then(crate::now);
        self.db
            .execute(
                "UPDATE alert_outbox SET last_error = ?2, given_up_at = ?3 WHERE id = ?1",
                args![id, error, given_up_at],
            )
            .map(drop)
    }
}

/// Records `macs` as seen, many to a statement: on PostgreSQL each statement
/// is a round trip, and a baseline holds one hash per exposed account.
fn insert_seen(db: &Db, org_id: i64, macs: &[SeenMac]) -> Result<()> {
    for chunk in macs.chunks(500) {
        let rows: Vec<String> = (0..chunk.len()).map(|i| format!("(?1, ?{})", i + 2)).collect();
        let sql =
            format!("INSERT INTO alert_seen (org_id, mac) VALUES {} ON CONFLICT DO NOTHING", rows.join(", "));
        let mut params = vec![Value::from(org_id)];
        params.extend(chunk.iter().map(|mac| Value::from(mac.as_slice())));
        db.execute(&sql, &params)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn alert<'a>(target: &'a str) -> NewAlert<'a> {
        NewAlert { kind: "webhook", target, settings: "{}", sealed_secret: Some(b"sealed") }
    }

    #[test]
    fn the_first_destination_records_the_baseline_and_scans_are_recorded_once() {
        crate::testing::each_backend(|location| {
            let mut c = Catalog::open_at(location).unwrap();
            c.add_organization("acme", &["corp.example".to_owned()]).unwrap();
            assert!(c.add_alert("nobody", &alert("http://x"), &Scan::default()).is_err());
            let baseline = Scan { generation: 3, macs: vec![[1; 16], [2; 16]] };
            let id = c.add_alert("acme", &alert("http://127.0.0.1/hook"), &baseline).unwrap();
            // A second destination does not move the baseline.
            let later = Scan { generation: 9, macs: vec![[9; 16]] };
            let second = c.add_alert("acme", &alert("http://127.0.0.1/other"), &later).unwrap();
            assert_ne!(id, second);
            let routes = c.alert_routes().unwrap();
            assert_eq!(routes.len(), 2);
            assert_eq!(routes[0].sealed_secret.as_deref(), Some(&b"sealed"[..]));
            let org_id = routes[0].org_id;
            let (generation, seen) = c.alert_seen(org_id).unwrap();
            assert_eq!(generation, Some(3));
            assert_eq!(seen, HashSet::from([[1; 16], [2; 16]]));

            let scan = Scan { generation: 4, macs: vec![[3; 16]] };
            let batch =
                NewDelivery { alert_id: id, delivery_id: "d1".into(), exposures: 1, sealed: vec![7; 10] };
            assert!(c.record_scan(org_id, &scan, std::slice::from_ref(&batch)).unwrap());
            // The same generation again (another process, or a repeat): nothing.
            assert!(!c.record_scan(org_id, &scan, &[batch]).unwrap());
            assert_eq!(c.alert_seen(org_id).unwrap().1.len(), 3);

            let due = c.due_deliveries(now_ms() + 1, 10).unwrap();
            assert_eq!(due.len(), 1);
            assert_eq!((due[0].delivery_id.as_str(), due[0].generation, due[0].attempts), ("d1", 4, 0));
            let later = now_ms() + 60_000;
            assert_eq!(c.begin_attempt(due[0].id, later).unwrap(), 1);
            assert!(c.due_deliveries(now_ms() + 1, 10).unwrap().is_empty());
            assert_eq!(c.next_due_ms().unwrap(), Some(later));
            c.attempt_failed(due[0].id, "connection refused", false).unwrap();
            let again = c.due_deliveries(later, 10).unwrap();
            assert_eq!((again[0].attempts, again[0].last_error.as_deref()), (1, Some("connection refused")));
            c.delivered(due[0].id).unwrap();
            assert!(c.due_deliveries(i64::MAX, 10).unwrap().is_empty());
            let org = c.organization("acme").unwrap().unwrap();
            assert_eq!((org.alerts[0].pending, org.alerts[0].delivered), (0, 1));

            assert!(c.remove_alert("acme", id).unwrap());
            assert!(!c.remove_alert("acme", id).unwrap());
            assert!(c.alert_deliveries(id, 10).unwrap().is_empty());
        });
    }
}
