//! The job queue of distributed ingests: `leakwatch ingest --distributed`
//! enqueues one job per input (or per part of a large one), any number of
//! `leakwatch worker` processes take them, and the ingest waits for them all.
//!
//! A job is `queued`, then `running` under a worker's lease (holder and expiry
//! by the database's clock, renewed while the job runs), then `done` with its
//! output, or `failed` with its error after [`MAX_ATTEMPTS`]. A job whose lease
//! ran out (its worker died) is taken again by the next worker that asks.
//!
//! On PostgreSQL a worker takes a job with `SELECT ... FOR UPDATE SKIP
//! LOCKED`: workers asking at once each lock a different row, without
//! waiting for each other. A job is taken only while its ingest is alive: the
//! ingest holds the lease `ingest:ID` in the `leases` table, and a job of a
//! dead ingest is never started (its rows are removed by the next ingest).
//!
//! These tables version themselves apart (`jobs_version` in `meta`).

use std::time::Duration;

use crate::db::{args, Dialect, Lock};
use crate::error::Result;
use crate::leases::db_now_ms;
use crate::Catalog;

/// Attempts at a job before its error is final: a job that fails (as
/// opposed to one whose worker died) is tried again by another worker this
/// many times in all, for errors of one machine (a full disk).
pub const MAX_ATTEMPTS: i64 = 3;

const MIGRATIONS: &[&str] = &[r#"
CREATE TABLE ingest_jobs (
    id            INTEGER PRIMARY KEY,
    ingest        TEXT NOT NULL,
    job           INTEGER NOT NULL,
    spec          TEXT NOT NULL,
    -- queued | running | done | failed
    state         TEXT NOT NULL DEFAULT 'queued',
    holder        TEXT,
    attempts      INTEGER NOT NULL DEFAULT 0,
    -- The running job's lease, in milliseconds since the Unix epoch by the
    -- database's clock.
    expires_at_ms INTEGER NOT NULL DEFAULT 0,
    output        TEXT,
    error         TEXT,
    UNIQUE (ingest, job)
) STRICT;
CREATE INDEX ingest_jobs_state ON ingest_jobs (state, id);
"#];

const PG_MIGRATIONS: &[&str] = &[r#"
CREATE TABLE ingest_jobs (
    id            BIGSERIAL PRIMARY KEY,
    ingest        TEXT NOT NULL,
    job           BIGINT NOT NULL,
    spec          TEXT NOT NULL,
    state         TEXT NOT NULL DEFAULT 'queued',
    holder        TEXT,
    attempts      BIGINT NOT NULL DEFAULT 0,
    expires_at_ms BIGINT NOT NULL DEFAULT 0,
    output        TEXT,
    error         TEXT,
    UNIQUE (ingest, job)
);
CREATE INDEX ingest_jobs_state ON ingest_jobs (state, id);
"#];

pub(crate) fn migrate(catalog: &mut Catalog) -> Result<()> {
    let migrations = match catalog.dialect() {
        Dialect::Sqlite => MIGRATIONS,
        Dialect::Postgres => PG_MIGRATIONS,
    };
    crate::migrate_set(catalog, "jobs_version", migrations)
}

/// The lease an ingest holds while it waits for its jobs.
pub fn ingest_lease_name(ingest: &str) -> String {
    format!("ingest:{ingest}")
}

/// A job a worker took.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClaimedJob {
    pub id: i64,
    pub ingest: String,
    pub job: i64,
    pub spec: String,
    /// 1 for the first attempt; more when the job was taken over or retried.
    pub attempt: i64,
}

/// A job as its ingest sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JobRow {
    pub job: i64,
    pub state: String,
    pub holder: Option<String>,
    pub attempts: i64,
    pub output: Option<String>,
    pub error: Option<String>,
}

impl Catalog {
    /// Enqueues the jobs `(number, spec)` of ingest `ingest`, and removes the
    /// rows of ingests that are no longer alive (their lease ran out).
    pub fn enqueue_jobs(&mut self, ingest: &str, jobs: &[(i64, String)]) -> Result<()> {
        let tx = self.db.write(Lock::Catalog)?;
        let now: i64 = tx.query_one(db_now_ms(tx.dialect()), &[])?.get(0)?;
        tx.execute(
            "DELETE FROM ingest_jobs WHERE ingest <> ?1 AND NOT EXISTS (SELECT 1 FROM leases \
             WHERE leases.name = 'ingest:' || ingest_jobs.ingest AND leases.expires_at_ms > ?2)",
            args![ingest, now],
        )?;
        for (job, spec) in jobs {
            tx.execute(
                "INSERT INTO ingest_jobs (ingest, job, spec) VALUES (?1, ?2, ?3)",
                args![ingest, *job, spec.as_str()],
            )?;
        }
        tx.commit()
    }

    /// Takes the oldest job that is queued, or running under a lease that ran
    /// out, of an ingest that is alive, for `holder` for `ttl`.
    pub fn claim_job(&mut self, holder: &str, ttl: Duration) -> Result<Option<ClaimedJob>> {
        let ttl_ms = i64::try_from(ttl.as_millis()).unwrap_or(i64::MAX / 2);
        // Row locks decide who takes a job: no advisory lock, so that workers
        // asking at once skip each other's rows instead of queueing.
        let tx = self.db.write(Lock::Rows)?;
        let now: i64 = tx.query_one(db_now_ms(tx.dialect()), &[])?.get(0)?;
        let skip_locked = match tx.dialect() {
            Dialect::Postgres => " FOR UPDATE OF j SKIP LOCKED",
            // SQLite's one writer at a time is the lock.
            Dialect::Sqlite => "",
        };
        let sql = format!(
            "SELECT j.id, j.ingest, j.job, j.spec, j.attempts FROM ingest_jobs j \
             JOIN leases l ON l.name = 'ingest:' || j.ingest AND l.expires_at_ms > ?1 \
             WHERE j.state = 'queued' OR (j.state = 'running' AND j.expires_at_ms <= ?1) \
             ORDER BY j.id LIMIT 1{skip_locked}"
        );
        let Some(row) = tx.query_opt(&sql, args![now])? else {
            return Ok(None);
        };
        let job = ClaimedJob {
            id: row.get(0)?,
            ingest: row.get(1)?,
            job: row.get(2)?,
            spec: row.get(3)?,
            attempt: row.get::<i64>(4)? + 1,
        };
        tx.execute(
            "UPDATE ingest_jobs SET state = 'running', holder = ?2, attempts = ?3, expires_at_ms = ?4, \
             error = NULL WHERE id = ?1",
            args![job.id, holder, job.attempt, now.saturating_add(ttl_ms)],
        )?;
        tx.commit()?;
        Ok(Some(job))
    }

    /// Extends `holder`'s lease on job `id` to `ttl` from now. False when the
    /// job is no longer `holder`'s (its lease ran out and another took it),
    /// or when its ingest is no longer alive (the ingest's lease ran out: no
    /// one will commit the job's output): the holder must then stop and
    /// report nothing.
    pub fn renew_job(&mut self, id: i64, holder: &str, ttl: Duration) -> Result<bool> {
        let ttl_ms = i64::try_from(ttl.as_millis()).unwrap_or(i64::MAX / 2);
        let tx = self.db.write(Lock::Rows)?;
        let now: i64 = tx.query_one(db_now_ms(tx.dialect()), &[])?.get(0)?;
        let renewed = tx.execute(
            "UPDATE ingest_jobs SET expires_at_ms = ?3 WHERE id = ?1 AND holder = ?2 AND state = 'running' \
             AND EXISTS (SELECT 1 FROM leases WHERE leases.name = 'ingest:' || ingest_jobs.ingest \
             AND leases.expires_at_ms > ?4)",
            args![id, holder, now.saturating_add(ttl_ms), now],
        )? > 0;
        tx.commit()?;
        Ok(renewed)
    }

    /// Records job `id` as done with `output`, if `holder` still holds it.
    pub fn finish_job(&mut self, id: i64, holder: &str, output: &str) -> Result<bool> {
        let tx = self.db.write(Lock::Rows)?;
        let done = tx.execute(
            "UPDATE ingest_jobs SET state = 'done', output = ?3 WHERE id = ?1 AND holder = ?2 \
             AND state = 'running'",
            args![id, holder, output],
        )? > 0;
        tx.commit()?;
        Ok(done)
    }

    /// Records that job `id` failed with `error`: queued again for another
    /// attempt, or failed for good after [`MAX_ATTEMPTS`].
    pub fn fail_job(&mut self, id: i64, holder: &str, error: &str) -> Result<bool> {
        let tx = self.db.write(Lock::Rows)?;
        let failed = tx.execute(
            "UPDATE ingest_jobs SET state = CASE WHEN attempts >= ?4 THEN 'failed' ELSE 'queued' END, \
             holder = NULL, expires_at_ms = 0, error = ?3 WHERE id = ?1 AND holder = ?2 AND state = 'running'",
            args![id, holder, error, MAX_ATTEMPTS],
        )? > 0;
        tx.commit()?;
        Ok(failed)
    }

    /// The jobs of ingest `ingest`, in job order.
    pub fn jobs(&self, ingest: &str) -> Result<Vec<JobRow>> {
        self.db
            .query(
                "SELECT job, state, holder, attempts, output, error FROM ingest_jobs WHERE ingest = ?1 \
                 ORDER BY job",
                args![ingest],
            )?
            .into_iter()
            .map(|r| {
                Ok(JobRow {
                    job: r.get(0)?,
                    state: r.get(1)?,
                    holder: r.get(2)?,
                    attempts: r.get(3)?,
                    output: r.get(4)?,
                    error: r.get(5)?,
                })
            })
            .collect()
    }

    /// Removes the jobs of ingest `ingest` (it committed or gave up).
    pub fn remove_jobs(&mut self, ingest: &str) -> Result<()> {
        let tx = self.db.write(Lock::Catalog)?;
        tx.execute("DELETE FROM ingest_jobs WHERE ingest = ?1", args![ingest])?;
        tx.commit()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TTL: Duration = Duration::from_millis(1_500);

    fn jobs(n: i64) -> Vec<(i64, String)> {
        (0..n).map(|j| (j, format!("spec {j}"))).collect()
    }

    #[test]
    fn jobs_are_taken_once_retaken_after_their_lease_and_only_for_a_live_ingest() {
        crate::testing::each_backend(|location| {
            let mut c = Catalog::open_at(location).unwrap();
            let mut w = Catalog::open_at(location).unwrap();
            c.enqueue_jobs("a", &jobs(2)).unwrap();
            // No live ingest holds "a": nothing to take.
            assert_eq!(w.claim_job("w1", TTL).unwrap(), None);
            assert!(c.take_lease(&ingest_lease_name("a"), "ingest", Duration::from_secs(60)).unwrap().held);

            let first = w.claim_job("w1", TTL).unwrap().unwrap();
            assert_eq!((first.job, first.spec.as_str(), first.attempt), (0, "spec 0", 1));
            let second = w.claim_job("w2", TTL).unwrap().unwrap();
            assert_eq!(second.job, 1);
            assert_eq!(w.claim_job("w3", TTL).unwrap(), None, "both are running");

            // w1 renews and finishes; w2 dies and its job is taken over.
            assert!(w.renew_job(first.id, "w1", TTL).unwrap());
            assert!(!w.renew_job(first.id, "w2", TTL).unwrap(), "not w2's");
            assert!(w.finish_job(first.id, "w1", "out 0").unwrap());
            // A job of an ingest that is no longer alive is not renewed: its
            // holder stops (a job waiting for inputs still staged would
            // otherwise wait for ever).
            let ingest = ingest_lease_name("a");
            assert!(c.take_lease(&ingest, "ingest", Duration::from_millis(1)).unwrap().held);
            std::thread::sleep(Duration::from_millis(20));
            assert!(!w.renew_job(second.id, "w2", TTL).unwrap(), "its ingest's lease ran out");
            assert!(c.take_lease(&ingest, "ingest", Duration::from_secs(60)).unwrap().held);
            std::thread::sleep(TTL + Duration::from_millis(200));
            let taken = w.claim_job("w3", TTL).unwrap().unwrap();
            assert_eq!((taken.job, taken.attempt), (1, 2));
            assert!(!w.finish_job(second.id, "w2", "late").unwrap(), "the dead holder's report is refused");
            assert!(!w.renew_job(second.id, "w2", TTL).unwrap());

            // A failure is retried until the attempts run out.
            assert!(w.fail_job(taken.id, "w3", "disk full").unwrap());
            let again = w.claim_job("w1", TTL).unwrap().unwrap();
            assert_eq!(again.attempt, 3);
            assert!(w.fail_job(again.id, "w1", "disk full").unwrap());
            assert_eq!(w.claim_job("w1", TTL).unwrap(), None, "failed for good");

            let rows = c.jobs("a").unwrap();
            assert_eq!(rows.len(), 2);
            assert_eq!((rows[0].state.as_str(), rows[0].output.as_deref()), ("done", Some("out 0")));
            assert_eq!((rows[1].state.as_str(), rows[1].error.as_deref()), ("failed", Some("disk full")));

            // The next ingest's enqueue removes the rows of a dead one.
            assert!(c.release_lease(&ingest_lease_name("a"), "ingest").unwrap());
            c.enqueue_jobs("b", &jobs(1)).unwrap();
            assert!(c.jobs("a").unwrap().is_empty());
            c.remove_jobs("b").unwrap();
            assert!(c.jobs("b").unwrap().is_empty());
        });
    }

    /// Workers asking at once never take the same job.
    #[test]
    fn racing_workers_take_each_job_once() {
        crate::testing::each_backend(|location| {
            let mut c = Catalog::open_at(location).unwrap();
            assert!(c.take_lease(&ingest_lease_name("r"), "ingest", Duration::from_secs(60)).unwrap().held);
            c.enqueue_jobs("r", &jobs(40)).unwrap();
            let workers: Vec<_> = (0..4)
                .map(|i| {
                    let location = location.clone();
                    std::thread::spawn(move || {
                        let mut w = Catalog::open_at(&location).unwrap();
                        let mut taken = Vec::new();
                        while let Some(job) = w.claim_job(&format!("w{i}"), Duration::from_secs(60)).unwrap()
                        {
                            assert!(w.finish_job(job.id, &format!("w{i}"), "ok").unwrap());
                            taken.push(job.job);
                        }
                        taken
                    })
                })
                .collect();
            let mut all: Vec<i64> = workers.into_iter().flat_map(|w| w.join().unwrap()).collect();
            all.sort();
            assert_eq!(all, (0..40).collect::<Vec<_>>());
        });
    }
}
