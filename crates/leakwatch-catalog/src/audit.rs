//! The audit log: one row per authenticated search, and per change made to the
//! breach catalog from the command line, appended and never changed.
//!
//! A row says when, which key, which endpoint, what was searched and how many
//! results came back. What was searched is recorded as a keyed BLAKE3 hash under
//! a key generated once per catalog, so the log proves *that* an address was
//! searched (an auditor holding the address can find its rows) without holding
//! the address. Domains are also kept in clear: they name organizations, not
//! people, and an auditor needs to read them.
//!
//! The log is tamper-evident: each row stores a keyed BLAKE3 of the previous
//! row's chain value and its own fields, under a key held outside the data
//! directory (the data key's audit key), so a row changed, inserted or removed
//! in the middle breaks the chain, and whoever has only the catalog file cannot
//! forge a new one. [`Catalog::verify_audit`] walks it.

use rand::TryRngCore;
use rusqlite::{params, OptionalExtension, TransactionBehavior};
use serde::Serialize;

use crate::error::{CatalogError, Result};
use crate::Catalog;

/// What kind of value a search was for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum SubjectKind {
    /// An email address, user name or phone number.
    Account,
    /// A domain whose addresses were searched.
    Domain,
    /// A website domain (stealer logs).
    WebsiteDomain,
    /// A breach of the catalog, changed or removed from the command line.
    Breach,
}

impl SubjectKind {
    pub fn as_str(self) -> &'static str {
        match self {
            SubjectKind::Account => "account",
            SubjectKind::Domain => "domain",
            SubjectKind::WebsiteDomain => "website-domain",
            SubjectKind::Breach => "breach",
        }
    }

    fn parse(s: &str) -> Option<SubjectKind> {
        Some(match s {
            "account" => SubjectKind::Account,
            "domain" => SubjectKind::Domain,
            "website-domain" => SubjectKind::WebsiteDomain,
            "breach" => SubjectKind::Breach,
            _ => return None,
        })
    }

    fn tag(self) -> u8 {
        match self {
            SubjectKind::Account => b'a',
            SubjectKind::Domain => b'd',
            SubjectKind::WebsiteDomain => b'w',
            SubjectKind::Breach => b'b',
        }
    }
}

/// A searched value as the audit log records it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Subject {
    pub kind: SubjectKind,
    /// The value in clear: domains only, never an account.
    pub clear: Option<String>,
    /// Keyed BLAKE3 of the normalized value, 32 hex digits.
    pub hash: String,
}

/// Hashes searched values with the catalog's audit key.
#[derive(Clone)]
pub struct AuditHasher {
    key: [u8; 32],
}

impl std::fmt::Debug for AuditHasher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("AuditHasher(..)")
    }
}

impl AuditHasher {
    /// A hasher under `key` (the data key's audit subject key).
    pub fn new(key: [u8; 32]) -> AuditHasher {
        AuditHasher { key }
    }

    /// The subject of a search for `value`, which the caller has normalized
    /// (lower-case address, A-label domain) so that equal searches hash equally.
    pub fn subject(&self, kind: SubjectKind, value: &str) -> Subject {
        let mut hasher = blake3::Hasher::new_keyed(&self.key);
        hasher.update(&[kind.tag()]);
        hasher.update(value.as_bytes());
        let mut out = [0u8; 16];
        hasher.finalize_xof().fill(&mut out);
        const HEX: &[u8; 16] = b"0123456789abcdef";
        let hash = out
            .iter()
            .flat_map(|b| [HEX[usize::from(b >> 4)] as char, HEX[usize::from(b & 15)] as char])
            .collect();
        let clear = (kind != SubjectKind::Account).then(|| value.to_owned());
        Subject { kind, clear, hash }
    }
}

/// One search, as the server hands it to the audit writer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AuditEntry {
    /// RFC 3339 UTC with milliseconds ([`crate::now`]).
    pub at: String,
    pub key_id: i64,
    pub key_name: String,
    /// The endpoint, e.g. `breachedaccount`.
    pub endpoint: String,
    pub subject: Subject,
    /// Results returned: breaches, aliases or websites.
    pub results: u64,
    /// The HTTP status answered (200, 404, 403, ...).
    pub status: u16,
}

impl AuditEntry {
    /// A change made from the command line by the OS user `user`: no API key
    /// (`key_id` 0, the user in `key_name`), the command as the endpoint (e.g.
    /// `cli breach remove`), status 0. `results` counts what it changed.
    pub fn cli(user: &str, command: &str, subject: Subject, results: u64) -> AuditEntry {
        AuditEntry {
            at: crate::now(),
            key_id: 0,
            key_name: user.to_owned(),
            endpoint: format!("cli {command}"),
            subject,
            results,
            status: 0,
        }
    }
}

/// A stored row.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AuditRecord {
    pub id: i64,
    #[serde(flatten)]
    pub entry: AuditEntry,
}

/// What [`Catalog::verify_audit`] found.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct AuditVerification {
    pub rows: u64,
    /// Rows whose chain value checked.
    pub chained: u64,
    /// Rows at the start written before the log was chained.
    pub unchained: u64,
    /// The first row whose chain value does not check.
    pub broken: Option<i64>,
}

/// One link: keyed BLAKE3 of the previous link, the row id and every field,
/// each length-prefixed so that no two rows encode alike.
fn chain_link(key: &[u8; 32], prev: &[u8; 32], id: i64, e: &AuditEntry) -> [u8; 32] {
    let mut h = blake3::Hasher::new_keyed(key);
    h.update(prev);
    h.update(&id.to_le_bytes());
    let mut field = |bytes: &[u8]| {
        h.update(&(bytes.len() as u64).to_le_bytes());
        h.update(bytes);
    };
    field(e.at.as_bytes());
    field(&e.key_id.to_le_bytes());
    field(e.key_name.as_bytes());
    field(e.endpoint.as_bytes());
    field(e.subject.kind.as_str().as_bytes());
    match &e.subject.clear {
        Some(c) => field(&[&[1u8][..], c.as_bytes()].concat()),
        None => field(&[0u8]),
    }
    field(e.subject.hash.as_bytes());
    field(&(e.results.min(i64::MAX as u64)).to_le_bytes());
    field(&e.status.to_le_bytes());
    *h.finalize().as_bytes()
}

/// Which rows `audit-log` shows.
#[derive(Debug, Clone, Default)]
pub struct AuditFilter {
    pub key_name: Option<String>,
    /// Only searches for this subject hash ([`AuditHasher::subject`]).
    pub subject_hash: Option<String>,
    /// Only searches for this subject in clear (a domain).
    pub subject: Option<String>,
    /// Only the last this many rows.
    pub last: Option<u64>,
}

impl Catalog {
    /// The catalog's audit hasher; its key is generated on first use and kept in
    /// the catalog.
    pub fn audit_hasher(&mut self) -> Result<AuditHasher> {
        let path = self.path.clone();
        let sql = |e| CatalogError::Sql { path: path.clone(), source: e };
        let mut fresh = [0u8; 32];
        rand::rngs::OsRng
            .try_fill_bytes(&mut fresh)
            .map_err(|e| CatalogError::Io { path: self.path.clone(), source: std::io::Error::other(e) })?;
        let tx = self.conn.transaction_with_behavior(TransactionBehavior::Immediate).map_err(sql)?;
        tx.execute("INSERT OR IGNORE INTO meta (name, value) VALUES ('audit_key', ?1)", [fresh.as_slice()])
            .map_err(sql)?;
        let key: Vec<u8> =
            tx.query_row("SELECT value FROM meta WHERE name = 'audit_key'", [], |r| r.get(0)).map_err(sql)?;
        tx.commit().map_err(sql)?;
        let key = key.try_into().map_err(|_| CatalogError::DataCorruption {
            path: self.path.clone(),
            detail: "the audit key is not 32 bytes".into(),
        })?;
        Ok(AuditHasher { key })
    }

    /// Appends entries in one transaction: the server batches them, so that an
    /// audited search costs a fraction of a commit. Each row is chained to the
    /// one before under `chain_key`.
    pub fn append_audit(&mut self, entries: &[AuditEntry], chain_key: &[u8; 32]) -> Result<()> {
        let path = self.path.clone();
        let sql = |e| CatalogError::Sql { path: path.clone(), source: e };
        let tx = self.conn.transaction_with_behavior(TransactionBehavior::Immediate).map_err(sql)?;
        {
            // Under the immediate transaction nobody else appends: the next id
            // and the last chain value are ours to extend.
            let last: Option<(i64, Option<Vec<u8>>)> = tx
                .query_row("SELECT id, chain FROM audit_log ORDER BY id DESC LIMIT 1", [], |r| {
                    Ok((r.get(0)?, r.get(1)?))
                })
                .optional()
                .map_err(sql)?;
            let seq: i64 = tx
                .query_row("SELECT seq FROM sqlite_sequence WHERE name = 'audit_log'", [], |r| r.get(0))
                .optional()
                .map_err(sql)?
                .unwrap_or(0);
            let mut id = seq.max(last.as_ref().map_or(0, |l| l.0));
            let mut prev: [u8; 32] =
                last.and_then(|l| l.1).and_then(|c| c.try_into().ok()).unwrap_or([0u8; 32]);
            let mut insert = tx
                .prepare_cached(
                    "INSERT INTO audit_log
                     (id, at, key_id, key_name, endpoint, subject_kind, subject, subject_hash, results,
                      status, chain)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)",
                )
                .map_err(sql)?;
            for e in entries {
                id += 1;
                prev = chain_link(chain_key, &prev, id, e);
                insert
                    .execute(params![
                        id,
                        e.at,
                        e.key_id,
                        e.key_name,
                        e.endpoint,
                        e.subject.kind.as_str(),
                        e.subject.clear,
                        e.subject.hash,
                        e.results as i64,
                        e.status,
                        prev.as_slice(),
                    ])
                    .map_err(sql)?;
            }
        }
        tx.commit().map_err(sql)
    }

    /// Walks the chain from the first row: where it breaks, the log was changed
    /// (or is checked with another key).
    pub fn verify_audit(&self, chain_key: &[u8; 32]) -> Result<AuditVerification> {
        let sql = |e| self.sql(e);
        let mut stmt = self
            .conn
            .prepare(
                "SELECT id, at, key_id, key_name, endpoint, subject_kind, subject, subject_hash, results,
                        status, chain
                 FROM audit_log ORDER BY id",
            )
            .map_err(sql)?;
        let mut rows = stmt.query([]).map_err(sql)?;
        let mut out = AuditVerification::default();
        let mut prev = [0u8; 32];
        while let Some(r) = rows.next().map_err(sql)? {
            let id: i64 = r.get(0).map_err(sql)?;
            let kind: String = r.get(5).map_err(sql)?;
            let chain: Option<Vec<u8>> = r.get(10).map_err(sql)?;
            out.rows += 1;
            let Some(chain) = chain else {
                if out.chained == 0 {
                    // Written before the chain existed.
                    out.unchained += 1;
                    continue;
                }
                out.broken = Some(id);
                break;
            };
            let entry = AuditEntry {
                at: r.get(1).map_err(sql)?,
                key_id: r.get(2).map_err(sql)?,
                key_name: r.get(3).map_err(sql)?,
                endpoint: r.get(4).map_err(sql)?,
                subject: Subject {
                    kind: SubjectKind::parse(&kind).unwrap_or(SubjectKind::Account),
                    clear: r.get(6).map_err(sql)?,
                    hash: r.get(7).map_err(sql)?,
                },
                results: r.get::<_, i64>(8).map_err(sql)?.max(0) as u64,
                status: r.get(9).map_err(sql)?,
            };
            // An unknown kind string cannot have been written by us: hash the
            // stored text so that the row fails unless it is exactly as written.
            let link = if SubjectKind::parse(&kind).is_some() {
                chain_link(chain_key, &prev, id, &entry)
            } else {
                [0xff; 32]
            };
            if chain.as_slice() != link.as_slice() {
                out.broken = Some(id);
                break;
            }
            prev = link;
            out.chained += 1;
        }
        Ok(out)
    }

    /// Stored rows, oldest first.
    pub fn audit_entries(&self, filter: &AuditFilter) -> Result<Vec<AuditRecord>> {
        let sql = |e| self.sql(e);
        let mut stmt = self
            .conn
            .prepare(
                "SELECT * FROM (
                     SELECT id, at, key_id, key_name, endpoint, subject_kind, subject, subject_hash, results, status
                     FROM audit_log
                     WHERE (?1 IS NULL OR key_name = ?1) AND (?2 IS NULL OR subject_hash = ?2)
                         AND (?4 IS NULL OR subject = ?4)
                     ORDER BY id DESC LIMIT ?3)
                 ORDER BY id",
            )
            .map_err(sql)?;
        let limit = filter.last.map_or(-1, |n| n.min(i64::MAX as u64) as i64);
        let rows = stmt
            .query_map(params![filter.key_name, filter.subject_hash, limit, filter.subject], |r| {
                Ok((
                    r.get::<_, i64>(0)?,
                    AuditEntry {
                        at: r.get(1)?,
                        key_id: r.get(2)?,
                        key_name: r.get(3)?,
                        endpoint: r.get(4)?,
                        subject: Subject { kind: SubjectKind::Account, clear: r.get(6)?, hash: r.get(7)? },
                        results: r.get::<_, i64>(8)?.max(0) as u64,
                        status: r.get(9)?,
                    },
                    r.get::<_, String>(5)?,
                ))
            })
            .map_err(sql)?;
        let mut out = Vec::new();
        for row in rows {
            let (id, mut entry, kind) = row.map_err(sql)?;
            entry.subject.kind = SubjectKind::parse(&kind).ok_or_else(|| CatalogError::DataCorruption {
                path: self.path.clone(),
                detail: format!("audit row {id} has unknown subject kind {kind:?}"),
            })?;
            out.push(AuditRecord { id, entry });
        }
        Ok(out)
    }

    /// How many rows the audit log holds.
    pub fn audit_len(&self) -> Result<u64> {
        self.conn
            .query_row("SELECT count(*) FROM audit_log", [], |r| r.get::<_, i64>(0))
            .optional()
            .map(|n| n.unwrap_or(0).max(0) as u64)
            .map_err(|e| self.sql(e))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(hasher: &AuditHasher, key: &str, kind: SubjectKind, value: &str, results: u64) -> AuditEntry {
        AuditEntry {
            at: crate::now(),
            key_id: 1,
            key_name: key.into(),
            endpoint: "breachedaccount".into(),
            subject: hasher.subject(kind, value),
            results,
            status: if results > 0 { 200 } else { 404 },
        }
    }

    #[test]
    fn entries_are_appended_read_back_and_filtered() {
        let tmp = tempfile::tempdir().unwrap();
        let mut catalog = Catalog::open_in(tmp.path()).unwrap();
        let hasher = catalog.audit_hasher().unwrap();
        let entries = [
            entry(&hasher, "a", SubjectKind::Account, "bob@example.com", 2),
            entry(&hasher, "b", SubjectKind::Domain, "example.com", 7),
            entry(&hasher, "a", SubjectKind::Account, "eve@example.com", 0),
            entry(&hasher, "b", SubjectKind::Account, "bob@example.com", 2),
        ];
        catalog.append_audit(&entries[..2], &[5; 32]).unwrap();
        catalog.append_audit(&entries[2..], &[5; 32]).unwrap();
        assert_eq!(catalog.audit_len().unwrap(), 4);

        let all = catalog.audit_entries(&AuditFilter::default()).unwrap();
        assert_eq!(all.iter().map(|r| &r.entry).collect::<Vec<_>>(), entries.iter().collect::<Vec<_>>());
        assert!(all.windows(2).all(|w| w[0].id < w[1].id));

        let by_key = AuditFilter { key_name: Some("a".into()), ..AuditFilter::default() };
        assert_eq!(catalog.audit_entries(&by_key).unwrap().len(), 2);
        let bob = hasher.subject(SubjectKind::Account, "bob@example.com").hash;
        let by_subject = AuditFilter { subject_hash: Some(bob), ..AuditFilter::default() };
        let rows = catalog.audit_entries(&by_subject).unwrap();
        assert_eq!(rows.iter().map(|r| r.entry.key_name.as_str()).collect::<Vec<_>>(), ["a", "b"]);
        let domain = AuditFilter { subject: Some("example.com".into()), ..AuditFilter::default() };
        assert_eq!(catalog.audit_entries(&domain).unwrap()[0].entry, entries[1]);
        let last = AuditFilter { last: Some(1), ..AuditFilter::default() };
        assert_eq!(catalog.audit_entries(&last).unwrap()[0].entry, entries[3]);
    }

    #[test]
    fn addresses_are_hashed_with_a_key_that_persists_and_domains_stay_readable() {
        let tmp = tempfile::tempdir().unwrap();
        let mut catalog = Catalog::open_in(tmp.path()).unwrap();
        let hasher = catalog.audit_hasher().unwrap();
        let account = hasher.subject(SubjectKind::Account, "bob@example.com");
        assert_eq!(account.clear, None);
        assert_eq!(account.hash.len(), 32);
        assert_ne!(account.hash, hasher.subject(SubjectKind::Domain, "bob@example.com").hash);
        assert_eq!(hasher.subject(SubjectKind::Domain, "example.com").clear.as_deref(), Some("example.com"));
        catalog
            .append_audit(&[entry(&hasher, "a", SubjectKind::Account, "bob@example.com", 1)], &[5; 32])
            .unwrap();
        drop(catalog);

        for file in ["catalog.sqlite", "catalog.sqlite-wal"] {
            let bytes = std::fs::read(tmp.path().join(file)).unwrap_or_default();
            assert!(!bytes.windows(15).any(|w| w == b"bob@example.com"), "address in clear in {file}");
        }
        let mut again = Catalog::open_in(tmp.path()).unwrap();
        assert_eq!(again.audit_hasher().unwrap().subject(SubjectKind::Account, "bob@example.com"), account);
        let other = Catalog::open_in(&tmp.path().join("other")).unwrap().audit_hasher().unwrap();
        assert_ne!(other.subject(SubjectKind::Account, "bob@example.com"), account);
    }

    #[test]
    fn command_line_changes_are_logged_with_their_user_and_chained() {
        let tmp = tempfile::tempdir().unwrap();
        let mut catalog = Catalog::open_in(tmp.path()).unwrap();
        let hasher = AuditHasher::new([3; 32]);
        let subject = hasher.subject(SubjectKind::Breach, "Acme");
        assert_eq!(subject.clear.as_deref(), Some("Acme"), "breach names are kept readable");
        let entry = AuditEntry::cli("alice", "breach remove", subject, 12);
        catalog.append_audit(std::slice::from_ref(&entry), &[5; 32]).unwrap();
        let rows = catalog.audit_entries(&AuditFilter::default()).unwrap();
        assert_eq!(rows.len(), 1);
        assert_eq!(rows[0].entry, entry);
        assert_eq!(
            (rows[0].entry.key_id, rows[0].entry.key_name.as_str(), rows[0].entry.endpoint.as_str()),
            (0, "alice", "cli breach remove")
        );
        assert_eq!(rows[0].entry.subject.kind, SubjectKind::Breach);
        assert_eq!(catalog.verify_audit(&[5; 32]).unwrap().broken, None);
    }

    #[test]
    fn the_log_refuses_updates_and_deletes() {
        let tmp = tempfile::tempdir().unwrap();
        let mut catalog = Catalog::open_in(tmp.path()).unwrap();
        let hasher = catalog.audit_hasher().unwrap();
        catalog
            .append_audit(&[entry(&hasher, "a", SubjectKind::Account, "bob@example.com", 1)], &[5; 32])
            .unwrap();
        for statement in ["UPDATE audit_log SET results = 0", "DELETE FROM audit_log"] {
            let err = catalog.conn.execute(statement, []).unwrap_err();
            assert!(err.to_string().contains("append-only"), "{statement}: {err}");
        }
        assert_eq!(catalog.audit_len().unwrap(), 1);
    }

    #[test]
    fn the_chain_checks_and_pins_the_first_changed_row() {
        let tmp = tempfile::tempdir().unwrap();
        let mut catalog = Catalog::open_in(tmp.path()).unwrap();
        let hasher = AuditHasher::new([3; 32]);
        let key = [5u8; 32];
        for batch in 0..3 {
            let entries: Vec<_> = (0..4)
                .map(|i| entry(&hasher, "a", SubjectKind::Account, &format!("u{batch}{i}@example.com"), i))
                .collect();
            catalog.append_audit(&entries, &key).unwrap();
        }
        let ok = catalog.verify_audit(&key).unwrap();
        assert_eq!((ok.rows, ok.chained, ok.broken), (12, 12, None));
        assert_eq!(catalog.verify_audit(&[6; 32]).unwrap().broken, Some(1), "another key");
        // Someone with the file (not the key) drops the trigger and edits row 7.
        catalog.conn.execute_batch("DROP TRIGGER audit_log_no_update").unwrap();
        catalog.conn.execute("UPDATE audit_log SET results = 99 WHERE id = 7", []).unwrap();
        assert_eq!(catalog.verify_audit(&key).unwrap().broken, Some(7));
        catalog.conn.execute("UPDATE audit_log SET results = 2 WHERE id = 7", []).unwrap();
        assert_eq!(catalog.verify_audit(&key).unwrap().broken, None, "restored");
        catalog.conn.execute_batch("DROP TRIGGER audit_log_no_delete").unwrap();
        catalog.conn.execute("DELETE FROM audit_log WHERE id = 5", []).unwrap();
        assert_eq!(catalog.verify_audit(&key).unwrap().broken, Some(6), "a row removed");
    }
}
