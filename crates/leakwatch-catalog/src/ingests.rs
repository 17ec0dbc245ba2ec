//! The ingest log: every `leakwatch ingest`, running or past, with its
//! progress, its inputs, and what each input gave (lines, accepted records,
//! rejections by reason with sample line numbers), for the web interface's
//! ingest status page.
//!
//! An ingest writes its row when it starts, its progress about once a second
//! while it reads, and its outcome when it ends. A process killed mid-way
//! leaves its row `running` with a progress time that stops moving; readers
//! tell it apart by that time ([`IngestRecord::updated_at`]).
//!
//! These tables version themselves apart from `schema.rs` (the
//! `ingests_version` row of `meta`), as the organization tables do.
//!
//! **Architecture Invariant:** nothing from inside a dump reaches these
//! tables: input names, counts, reasons and line numbers only.

use rusqlite::{params, TransactionBehavior};
use serde::Serialize;

use crate::error::{CatalogError, Result};
use crate::Catalog;

/// Migration `i` brings the ingest tables from version `i` to `i + 1`.
const MIGRATIONS: &[&str] = &[r#"
CREATE TABLE ingests (
    id              INTEGER PRIMARY KEY,
    breach          TEXT NOT NULL,
    -- The OS user who ran the ingest.
    started_by      TEXT NOT NULL,
    started_at      TEXT NOT NULL,
    -- The last progress report: a running ingest moves it about once a second.
    updated_at      TEXT NOT NULL,
    finished_at     TEXT,
    status          TEXT NOT NULL CHECK (status IN ('running', 'done', 'failed')),
    -- `reading INPUT` or `writing`.
    phase           TEXT NOT NULL,
    -- The inputs' raw sizes, when all are known (not for stdin).
    bytes_total     INTEGER CHECK (bytes_total >= 0),
    bytes_read      INTEGER NOT NULL DEFAULT 0 CHECK (bytes_read >= 0),
    records         INTEGER NOT NULL DEFAULT 0 CHECK (records >= 0),
    new_breach      INTEGER CHECK (new_breach IN (0, 1)),
    new_accounts    INTEGER CHECK (new_accounts >= 0),
    new_credentials INTEGER CHECK (new_credentials >= 0),
    -- Why it failed, or the warning of a published ingest.
    message         TEXT
) STRICT;

CREATE INDEX ingests_by_breach ON ingests (breach);

-- One row per input, in the order read; the counts once it has been read.
CREATE TABLE ingest_inputs (
    ingest_id INTEGER NOT NULL REFERENCES ingests (id),
    position  INTEGER NOT NULL,
    name      TEXT NOT NULL,
    format    TEXT,
    lines     INTEGER,
    accepted  INTEGER,
    PRIMARY KEY (ingest_id, position)
) STRICT;

CREATE TABLE ingest_rejections (
    ingest_id    INTEGER NOT NULL,
    position     INTEGER NOT NULL,
    reason       TEXT NOT NULL,
    count        INTEGER NOT NULL CHECK (count > 0),
    -- The first few rejected line numbers, comma-separated.
    sample_lines TEXT NOT NULL,
    PRIMARY KEY (ingest_id, position, reason),
    FOREIGN KEY (ingest_id, position) REFERENCES ingest_inputs (ingest_id, position)
) STRICT;
"#];

const VERSION_ROW: &str = "ingests_version";

pub(crate) fn migrate(catalog: &mut Catalog) -> Result<()> {
    crate::migrate_set(catalog, VERSION_ROW, MIGRATIONS)
}

/// An ingest as it starts.
#[derive(Debug, Clone)]
pub struct NewIngest<'a> {
    pub breach: &'a str,
    pub started_by: &'a str,
    /// The inputs' names, in the order they will be read.
    pub inputs: &'a [String],
    pub bytes_total: Option<u64>,
}

/// Where a running ingest is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IngestProgress {
    pub phase: String,
    pub bytes_read: u64,
    pub records: u64,
}

/// What one input gave.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct IngestInput {
    pub name: String,
    /// `None` for an input not (yet) read.
    pub format: Option<String>,
    pub lines: Option<u64>,
    pub accepted: Option<u64>,
    /// By reason, most frequent first.
    pub rejected: Vec<Rejection>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Rejection {
    pub reason: String,
    pub count: u64,
    pub sample_lines: Vec<u64>,
}

/// What a published ingest added.
#[derive(Debug, Clone)]
pub struct IngestOutcome {
    pub inputs: Vec<IngestInput>,
    pub new_breach: bool,
    pub new_accounts: u64,
    pub new_credentials: u64,
    pub records: u64,
    /// A warning of an ingest published all the same.
    pub warning: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum IngestStatus {
    Running,
    Done,
    Failed,
}

impl IngestStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            IngestStatus::Running => "running",
            IngestStatus::Done => "done",
            IngestStatus::Failed => "failed",
        }
    }
}

/// An ingest as the log holds it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct IngestRecord {
    pub id: i64,
    pub breach: String,
    pub started_by: String,
    pub started_at: String,
    /// The last progress report (RFC 3339, as [`crate::now`] writes).
    pub updated_at: String,
    pub finished_at: Option<String>,
    pub status: IngestStatus,
    pub phase: String,
    pub bytes_total: Option<u64>,
    pub bytes_read: u64,
    pub records: u64,
    pub new_breach: Option<bool>,
    pub new_accounts: Option<u64>,
    pub new_credentials: Option<u64>,
    pub message: Option<String>,
    pub inputs: Vec<IngestInput>,
}

impl IngestRecord {
    /// Lines rejected over all inputs, by reason, most frequent first.
    pub fn rejected_by_reason(&self) -> Vec<(String, u64)> {
        let mut by: std::collections::BTreeMap<&str, u64> = Default::default();
        for r in self.inputs.iter().flat_map(|i| &i.rejected) {
            *by.entry(&r.reason).or_default() += r.count;
        }
        let mut by: Vec<(String, u64)> = by.into_iter().map(|(r, n)| (r.to_owned(), n)).collect();
        by.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
        by
    }

    /// Records accepted over all inputs read.
    pub fn accepted(&self) -> u64 {
        self.inputs.iter().filter_map(|i| i.accepted).sum()
    }
}

impl Catalog {
    /// Logs an ingest as running; its id.
    pub fn start_ingest(&mut self, ingest: &NewIngest) -> Result<i64> {
        let path = self.path.clone();
        let sql = |e| CatalogError::Sql { path: path.clone(), source: e };
        let now = crate::now();
        let tx = self.conn.transaction_with_behavior(TransactionBehavior::Immediate).map_err(sql)?;
        tx.execute(
            "INSERT INTO ingests (breach, started_by, started_at, updated_at, status, phase, bytes_total) \
             VALUES (?1, ?2, ?3, ?3, 'running', 'starting', ?4)",
            params![ingest.breach, ingest.started_by, now, ingest.bytes_total.map(to_i64)],
        )
        .map_err(sql)?;
        let id = tx.last_insert_rowid();
        for (position, name) in ingest.inputs.iter().enumerate() {
            tx.execute(
                "INSERT INTO ingest_inputs (ingest_id, position, name) VALUES (?1, ?2, ?3)",
                params![id, position as i64, name],
            )
            .map_err(sql)?;
        }
        tx.commit().map_err(sql)?;
        Ok(id)
    }

    /// Records where a running ingest is.
    pub fn ingest_progress(&self, id: i64, progress: &IngestProgress) -> Result<()> {
        self.conn
            .execute(
                "UPDATE ingests SET updated_at = ?2, phase = ?3, bytes_read = ?4, records = ?5 \
                 WHERE id = ?1 AND status = 'running'",
                params![
                    id,
                    crate::now(),
                    progress.phase,
                    to_i64(progress.bytes_read),
                    to_i64(progress.records)
                ],
            )
            .map_err(|e| self.sql(e))?;
        Ok(())
    }

    /// Records a published ingest: what each input gave.
    pub fn finish_ingest(&mut self, id: i64, outcome: &IngestOutcome) -> Result<()> {
        let path = self.path.clone();
        let sql = |e| CatalogError::Sql { path: path.clone(), source: e };
        let now = crate::now();
        let tx = self.conn.transaction_with_behavior(TransactionBehavior::Immediate).map_err(sql)?;
        let changed = tx
            .execute(
                "UPDATE ingests SET status = 'done', updated_at = ?2, finished_at = ?2, phase = 'published', \
                 records = ?3, new_breach = ?4, new_accounts = ?5, new_credentials = ?6, message = ?7, \
                 bytes_read = coalesce(bytes_total, bytes_read) WHERE id = ?1",
                params![
                    id,
                    now,
                    to_i64(outcome.records),
                    outcome.new_breach,
                    to_i64(outcome.new_accounts),
                    to_i64(outcome.new_credentials),
                    outcome.warning
                ],
            )
            .map_err(sql)?;
        if changed == 0 {
            return Err(CatalogError::Invalid(format!("no ingest {id} in the log")));
        }
        // The inputs are those listed at the start, unless an archive or a
        // directory turned out to hold others: the read ones replace them.
        tx.execute("DELETE FROM ingest_rejections WHERE ingest_id = ?1", [id]).map_err(sql)?;
        tx.execute("DELETE FROM ingest_inputs WHERE ingest_id = ?1", [id]).map_err(sql)?;
        for (position, input) in outcome.inputs.iter().enumerate() {
            tx.execute(
                "INSERT INTO ingest_inputs (ingest_id, position, name, format, lines, accepted) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                params![
                    id,
                    position as i64,
                    input.name,
                    input.format,
                    input.lines.map(to_i64),
                    input.accepted.map(to_i64)
                ],
            )
            .map_err(sql)?;
            for r in &input.rejected {
                let samples: Vec<String> = r.sample_lines.iter().map(u64::to_string).collect();
                tx.execute(
                    "INSERT INTO ingest_rejections (ingest_id, position, reason, count, sample_lines) \
                     VALUES (?1, ?2, ?3, ?4, ?5)",
                    params![id, position as i64, r.reason, to_i64(r.count), samples.join(",")],
                )
                .map_err(sql)?;
            }
        }
        tx.commit().map_err(sql)
    }

    /// Records an ingest that ended without publishing anything, and why.
    pub fn fail_ingest(&self, id: i64, message: &str) -> Result<()> {
        self.conn
            .execute(
                "UPDATE ingests SET status = 'failed', updated_at = ?2, finished_at = ?2, message = ?3 \
                 WHERE id = ?1",
                params![id, crate::now(), message],
            )
            .map_err(|e| self.sql(e))?;
        Ok(())
    }

    /// The latest `limit` ingests, newest first, or those of one breach.
    pub fn ingests(&self, breach: Option<&str>, limit: usize) -> Result<Vec<IngestRecord>> {
        let sql = |e| self.sql(e);
        let mut statement = self
            .conn
            .prepare(
                "SELECT id, breach, started_by, started_at, updated_at, finished_at, status, phase, \
                 bytes_total, bytes_read, records, new_breach, new_accounts, new_credentials, message \
                 FROM ingests WHERE ?1 IS NULL OR breach = ?1 COLLATE NOCASE ORDER BY id DESC LIMIT ?2",
            )
            .map_err(sql)?;
        let mut records = statement
            .query_map(params![breach, limit.min(i64::MAX as usize) as i64], |r| {
                let status: String = r.get(6)?;
                Ok(IngestRecord {
                    id: r.get(0)?,
                    breach: r.get(1)?,
                    started_by: r.get(2)?,
                    started_at: r.get(3)?,
                    updated_at: r.get(4)?,
                    finished_at: r.get(5)?,
                    status: match status.as_str() {
                        "running" => IngestStatus::Running,
                        "done" => IngestStatus::Done,
                        _ => IngestStatus::Failed,
                    },
                    phase: r.get(7)?,
                    bytes_total: r.get::<_, Option<i64>>(8)?.map(to_u64),
                    bytes_read: to_u64(r.get(9)?),
                    records: to_u64(r.get(10)?),
                    new_breach: r.get(11)?,
                    new_accounts: r.get::<_, Option<i64>>(12)?.map(to_u64),
                    new_credentials: r.get::<_, Option<i64>>(13)?.map(to_u64),
                    message: r.get(14)?,
                    inputs: Vec::new(),
                })
            })
            .map_err(sql)?
            .collect::<rusqlite::Result<Vec<_>>>()
            .map_err(sql)?;
        let mut inputs = self
            .conn
            .prepare(
                "SELECT position, name, format, lines, accepted FROM ingest_inputs \
                 WHERE ingest_id = ?1 ORDER BY position",
            )
            .map_err(sql)?;
        let mut rejections = self
            .conn
            .prepare(
                "SELECT position, reason, count, sample_lines FROM ingest_rejections \
                 WHERE ingest_id = ?1 ORDER BY position, count DESC, reason",
            )
            .map_err(sql)?;
        for record in &mut records {
            let mut read: Vec<(i64, IngestInput)> = inputs
                .query_map([record.id], |r| {
                    Ok((
                        r.get(0)?,
                        IngestInput {
                            name: r.get(1)?,
                            format: r.get(2)?,
                            lines: r.get::<_, Option<i64>>(3)?.map(to_u64),
                            accepted: r.get::<_, Option<i64>>(4)?.map(to_u64),
                            rejected: Vec::new(),
                        },
                    ))
                })
                .map_err(sql)?
                .collect::<rusqlite::Result<_>>()
                .map_err(sql)?;
            let rows = rejections
                .query_map([record.id], |r| {
                    let samples: String = r.get(3)?;
                    Ok((
                        r.get::<_, i64>(0)?,
                        Rejection {
                            reason: r.get(1)?,
                            count: to_u64(r.get(2)?),
                            sample_lines: samples.split(',').filter_map(|n| n.parse().ok()).collect(),
                        },
                    ))
                })
                .map_err(sql)?;
            for row in rows {
                let (position, rejection) = row.map_err(sql)?;
                if let Some((_, input)) = read.iter_mut().find(|(p, _)| *p == position) {
                    input.rejected.push(rejection);
                }
            }
            record.inputs = read.into_iter().map(|(_, input)| input).collect();
        }
        Ok(records)
    }
}

/// SQLite integers are signed; counts and sizes this large do not occur.
fn to_i64(n: u64) -> i64 {
    n.min(i64::MAX as u64) as i64
}

fn to_u64(n: i64) -> u64 {
    n.max(0) as u64
}

#[cfg(test)]
mod tests {
    use super::*;

    fn input(name: &str, accepted: u64, rejected: &[(&str, u64)]) -> IngestInput {
        IngestInput {
            name: name.into(),
            format: Some("combo".into()),
            lines: Some(accepted + rejected.iter().map(|r| r.1).sum::<u64>()),
            accepted: Some(accepted),
            rejected: rejected
                .iter()
                .map(|&(reason, count)| Rejection { reason: reason.into(), count, sample_lines: vec![2, 7] })
                .collect(),
        }
    }

    #[test]
    fn an_ingest_is_logged_from_start_through_progress_to_its_outcome() {
        let tmp = tempfile::tempdir().unwrap();
        let mut catalog = Catalog::open_in(tmp.path()).unwrap();
        let names = ["a.txt".to_owned(), "b.txt".to_owned()];
        let new = NewIngest { breach: "Adobe", started_by: "alice", inputs: &names, bytes_total: Some(100) };
        let id = catalog.start_ingest(&new).unwrap();
        let failed = catalog.start_ingest(&NewIngest { breach: "Other", bytes_total: None, ..new }).unwrap();

        let running = &catalog.ingests(None, 10).unwrap()[1];
        assert_eq!(
            (running.id, running.status, running.phase.as_str()),
            (id, IngestStatus::Running, "starting")
        );
        assert_eq!(running.inputs.iter().map(|i| i.name.as_str()).collect::<Vec<_>>(), ["a.txt", "b.txt"]);
        assert_eq!(running.inputs[0].accepted, None);

        let progress = IngestProgress { phase: "reading b.txt".into(), bytes_read: 60, records: 9 };
        catalog.ingest_progress(id, &progress).unwrap();
        let running = &catalog.ingests(Some("adobe"), 10).unwrap()[0];
        assert_eq!((running.bytes_read, running.records, running.phase.as_str()), (60, 9, "reading b.txt"));

        catalog.fail_ingest(failed, "the store is locked by another writer").unwrap();
        let outcome = IngestOutcome {
            inputs: vec![
                input("a.txt", 5, &[("invalid email: no @", 3), ("no separator", 2)]),
                input("b.txt", 4, &[("no separator", 4)]),
            ],
            new_breach: true,
            new_accounts: 8,
            new_credentials: 7,
            records: 9,
            warning: None,
        };
        catalog.finish_ingest(id, &outcome).unwrap();
        // Progress after the end changes nothing.
        catalog
            .ingest_progress(id, &IngestProgress { phase: "x".into(), bytes_read: 1, records: 1 })
            .unwrap();

        let all = catalog.ingests(None, 10).unwrap();
        assert_eq!(all.iter().map(|r| r.id).collect::<Vec<_>>(), [failed, id], "newest first");
        assert_eq!(all[0].status, IngestStatus::Failed);
        assert_eq!(all[0].message.as_deref(), Some("the store is locked by another writer"));
        let done = &all[1];
        assert_eq!(
            (done.status, done.phase.as_str(), done.bytes_read),
            (IngestStatus::Done, "published", 100)
        );
        assert!(done.finished_at.is_some());
        assert_eq!(
            (done.new_breach, done.new_accounts, done.new_credentials),
            (Some(true), Some(8), Some(7))
        );
        assert_eq!(done.inputs, outcome.inputs);
        assert_eq!(done.accepted(), 9);
        assert_eq!(
            done.rejected_by_reason(),
            [("no separator".to_owned(), 6), ("invalid email: no @".to_owned(), 3)]
        );
        assert_eq!(catalog.ingests(Some("Nothing"), 10).unwrap(), []);
        assert_eq!(catalog.ingests(None, 1).unwrap().len(), 1);
        assert!(catalog.finish_ingest(999, &outcome).is_err());
    }
}
