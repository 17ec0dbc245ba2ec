//! The audit log: one row per authenticated search, and per change made to the
//! breach catalog from the command line, appended and never changed.
//!
//! A row says when, which key, which endpoint, what was searched and how many
//! results came back. What was searched is recorded as a keyed BLAKE3 hash under
//! the audit subject key of the key ring (never kept in the catalog), so the log proves *that* an address was
//! searched (an auditor holding the address can find its rows) without holding
//! the address. Domains are also kept in clear: they name organizations, not
//! people, and an auditor needs to read them.
//!
//! The log is tamper-evident: each row stores a keyed BLAKE3 of the previous
//! row's chain value and its own fields, under the audit key of the key ring
//! (held outside the data directory: [`AuditKeys`]), so a row changed, inserted
//! or removed in the middle breaks the chain, and whoever has only the catalog
//! file cannot forge a new one. [`Catalog::verify_audit`] walks it.
//!
//! Chain format 3 (this one) links every row under a tag of its own and starts
//! from a keyed value that commits to whatever the log held before it: rows
//! written before the chain existed (their number and an unkeyed digest of
//! them) and the last link of the format-2 chain. A log begun with format 3
//! (every catalog of a ring with its own audit key) may hold no unchained row at
//! all; ids are positive and consecutive; rotating the audit key is a row of
//! the chain, linked under the old key and naming the new one
//! ([`SubjectKind::AuditKey`]).

use serde::Serialize;

use crate::db::{args, Db, Dialect, Lock, Row as DbRow, Value};
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
    /// The audit key the chain continues under from the next row (`rekey
    /// --audit`); the new key's id in clear.
    AuditKey,
    /// The API key presented with a refused request (keyed hash; never in clear).
    ApiKey,
    /// Nothing was searched: a request refused before it was read (a missing
    /// key's 401, a 429), `subscribeddomains` of a key with no domains.
    Nothing,
}

impl SubjectKind {
    pub fn as_str(self) -> &'static str {
        match self {
            SubjectKind::Account => "account",
            SubjectKind::Domain => "domain",
            SubjectKind::WebsiteDomain => "website-domain",
            SubjectKind::Breach => "breach",
            SubjectKind::AuditKey => "audit-key",
            SubjectKind::ApiKey => "api-key",
            SubjectKind::Nothing => "none",
        }
    }

    fn parse(s: &str) -> Option<SubjectKind> {
        Some(match s {
            "account" => SubjectKind::Account,
            "domain" => SubjectKind::Domain,
            "website-domain" => SubjectKind::WebsiteDomain,
            "breach" => SubjectKind::Breach,
            "audit-key" => SubjectKind::AuditKey,
            "api-key" => SubjectKind::ApiKey,
            "none" => SubjectKind::Nothing,
            _ => return None,
        })
    }

    fn tag(self) -> u8 {
        match self {
            SubjectKind::Account => b'a',
            SubjectKind::Domain => b'd',
            SubjectKind::WebsiteDomain => b'w',
            SubjectKind::Breach => b'b',
            SubjectKind::AuditKey => b'k',
            SubjectKind::ApiKey => b'p',
            SubjectKind::Nothing => b'n',
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

impl Drop for AuditHasher {
    fn drop(&mut self) {
        zeroize::Zeroize::zeroize(&mut self.key);
    }
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
        let clear = (!matches!(kind, SubjectKind::Account | SubjectKind::ApiKey | SubjectKind::Nothing))
            .then(|| value.to_owned());
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
    /// Why the log fails, when it does: the row's fault, or the schema's (an
    /// append-only trigger removed or changed).
    pub problem: Option<String>,
    /// How many times the chain switched to another audit key.
    pub key_switches: u64,
}

impl AuditVerification {
    /// Whether the log checks.
    pub fn intact(&self) -> bool {
        self.broken.is_none() && self.problem.is_none()
    }
}

const CHAIN_CONTEXT: &str = "leakwatch 2026-11 audit chain key";
const SUBJECT_CONTEXT: &str = "leakwatch 2026-11 audit subject key";
const KEY_ID_CONTEXT: &str = "leakwatch 2026-12 audit key id";
/// Tags of the chain-format-3 links and of its start.
const V3_TAG: &[u8] = b"leakwatch audit chain 3";
const V3_START_TAG: &[u8] = b"leakwatch audit chain 3 start";
const UNCHAINED_TAG: &[u8] = b"leakwatch audit unchained rows";

/// One audit key: the chain key rows are linked under and the subject key
/// searched values are hashed with, both derived from one random 32-byte root
/// kept in the key ring. (A ring from before audit keys of their own uses its
/// index key as the root, which gives the keys its rows were written with.)
pub struct AuditKey {
    id: String,
    chain: [u8; 32],
    subject: [u8; 32],
}

impl Drop for AuditKey {
    fn drop(&mut self) {
        zeroize::Zeroize::zeroize(&mut self.chain);
        zeroize::Zeroize::zeroize(&mut self.subject);
    }
}

impl std::fmt::Debug for AuditKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AuditKey").field("id", &self.id).finish_non_exhaustive()
    }
}

impl AuditKey {
    pub fn from_root(root: &[u8; 32]) -> AuditKey {
        let id = blake3::derive_key(KEY_ID_CONTEXT, root);
        AuditKey {
            id: leakwatch_types::encode_hex_upper(&id[..16]).to_ascii_lowercase(),
            chain: blake3::derive_key(CHAIN_CONTEXT, root),
            subject: blake3::derive_key(SUBJECT_CONTEXT, root),
        }
    }

    /// The key's public name (it reveals nothing of the key).
    pub fn id(&self) -> &str {
        &self.id
    }

    /// The hasher of searched values under this key.
    pub fn hasher(&self) -> AuditHasher {
        AuditHasher::new(self.subject)
    }
}

/// Which rows may precede the chain-format-3 rows of a log.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChainPrefix {
    /// None: the audit key was random from the start, so the log was chained
    /// (format 3) from its first row.
    None,
    /// Rows written before the chain (or under format 2) may come first, but
    /// only if a format-3 row commits to them: the ring's audit key was rotated
    /// since, and its first rotation linked them.
    Committed,
    /// As `Committed`, but a log with no format-3 row yet is accepted as it is
    /// (a ring from before audit keys, never rotated).
    Open,
}

/// The audit keys of a key ring, oldest first: the chain switches from one to
/// the next at a row of kind [`SubjectKind::AuditKey`]. The last is current.
#[derive(Debug)]
pub struct AuditKeys {
    keys: Vec<AuditKey>,
    prefix: ChainPrefix,
}

impl AuditKeys {
    /// `keys` oldest first; there must be at least one.
    pub fn new(keys: Vec<AuditKey>, prefix: ChainPrefix) -> AuditKeys {
        assert!(!keys.is_empty(), "a ring holds an audit key");
        AuditKeys { keys, prefix }
    }

    /// The key new searches are hashed with.
    pub fn current(&self) -> &AuditKey {
        self.keys.last().expect("at least one key")
    }

    pub fn get(&self, id: &str) -> Option<&AuditKey> {
        self.keys.iter().find(|k| k.id == id)
    }

    /// Every key, oldest first: an address searched under each is hashed by each.
    pub fn all(&self) -> &[AuditKey] {
        &self.keys
    }

    pub fn prefix(&self) -> ChainPrefix {
        self.prefix
    }

    fn first(&self) -> &AuditKey {
        &self.keys[0]
    }
}

/// A row's fields as stored, for checking: the subject kind as text and the
/// result count as the signed integer SQLite holds, so that any stored change
/// changes what is hashed.
struct Row<'a> {
    at: &'a str,
    key_id: i64,
    key_name: &'a str,
    endpoint: &'a str,
    kind: &'a str,
    clear: Option<&'a str>,
    hash: &'a str,
    results: i64,
    status: i64,
}

impl<'a> Row<'a> {
    fn of(e: &'a AuditEntry) -> Row<'a> {
        Row {
            at: &e.at,
            key_id: e.key_id,
            key_name: &e.key_name,
            endpoint: &e.endpoint,
            kind: e.subject.kind.as_str(),
            clear: e.subject.clear.as_deref(),
            hash: &e.subject.hash,
            results: e.results.min(i64::MAX as u64) as i64,
            status: i64::from(e.status),
        }
    }
}

/// One link: keyed BLAKE3 of `tag` (empty for format 2), the previous link, the
/// row id and every field, each length-prefixed so that no two rows encode alike.
fn link(key: &[u8; 32], tag: &[u8], prev: &[u8; 32], id: i64, r: &Row) -> [u8; 32] {
    let mut h = blake3::Hasher::new_keyed(key);
    h.update(tag);
    h.update(prev);
    h.update(&id.to_le_bytes());
    let mut field = |bytes: &[u8]| {
        h.update(&(bytes.len() as u64).to_le_bytes());
        h.update(bytes);
    };
    field(r.at.as_bytes());
    field(&r.key_id.to_le_bytes());
    field(r.key_name.as_bytes());
    field(r.endpoint.as_bytes());
    field(r.kind.as_bytes());
    match r.clear {
        Some(c) => field(&[&[1u8][..], c.as_bytes()].concat()),
        None => field(&[0u8]),
    }
    field(r.hash.as_bytes());
    field(&r.results.to_le_bytes());
    // Format 2 hashed the status as the u16 it was written as.
    match u16::try_from(r.status) {
        Ok(status) => field(&status.to_le_bytes()),
        Err(_) => field(&r.status.to_le_bytes()),
    }
    *h.finalize().as_bytes()
}

/// What the first format-3 row links to: a keyed commitment to everything
/// before it (the last format-2 link, the last id, how many unchained rows
/// there were and their digest). For a log begun with format 3 all are zero.
fn chain_start(
    key: &[u8; 32],
    last_v2: &[u8; 32],
    last_id: i64,
    unchained: u64,
    digest: &[u8; 32],
) -> [u8; 32] {
    let mut h = blake3::Hasher::new_keyed(key);
    h.update(V3_START_TAG);
    h.update(last_v2);
    h.update(&last_id.to_le_bytes());
    h.update(&unchained.to_le_bytes());
    h.update(digest);
    *h.finalize().as_bytes()
}

/// The append-only triggers as the schema creates them; `verify` insists on
/// exactly these.
pub(crate) const TRIGGERS: [(&str, &str); 3] = [
    (
        "audit_log_no_update",
        "CREATE TRIGGER audit_log_no_update BEFORE UPDATE ON audit_log\nBEGIN\n    SELECT RAISE(ABORT, 'the audit log is append-only');\nEND",
    ),
    (
        "audit_log_no_delete",
        "CREATE TRIGGER audit_log_no_delete BEFORE DELETE ON audit_log\nBEGIN\n    SELECT RAISE(ABORT, 'the audit log is append-only');\nEND",
    ),
    (
        "audit_log_chained_insert",
        "CREATE TRIGGER audit_log_chained_insert BEFORE INSERT ON audit_log\nWHEN NEW.id IS NULL OR NEW.id <= 0 OR NEW.chain IS NULL\nBEGIN\n    SELECT RAISE(ABORT, 'audit rows have a positive id and a chain value');\nEND",
    ),
];

/// The append-only triggers as PostgreSQL shows them (`pg_get_triggerdef`,
/// the table's schema left out, then whether it is enabled: `O`), and the
/// bodies of the functions they run; `verify` insists on exactly these.
pub(crate) const PG_TRIGGERS: [(&str, &str); 4] = [
    (
        "audit_log_chained_insert",
        "CREATE TRIGGER audit_log_chained_insert BEFORE INSERT ON audit_log FOR EACH ROW WHEN (((new.id IS NULL) OR (new.id <= 0) OR (new.chain IS NULL))) EXECUTE FUNCTION audit_log_refuse_unchained() O",
    ),
    (
        "audit_log_no_delete",
        "CREATE TRIGGER audit_log_no_delete BEFORE DELETE ON audit_log FOR EACH ROW EXECUTE FUNCTION audit_log_refuse() O",
    ),
    (
        "audit_log_no_truncate",
        "CREATE TRIGGER audit_log_no_truncate BEFORE TRUNCATE ON audit_log FOR EACH STATEMENT EXECUTE FUNCTION audit_log_refuse() O",
    ),
    (
        "audit_log_no_update",
        "CREATE TRIGGER audit_log_no_update BEFORE UPDATE ON audit_log FOR EACH ROW EXECUTE FUNCTION audit_log_refuse() O",
    ),
];

pub(crate) const PG_FUNCTIONS: [(&str, &str); 2] = [
    ("audit_log_refuse", "BEGIN\n    RAISE EXCEPTION 'the audit log is append-only';\nEND"),
    (
        "audit_log_refuse_unchained",
        "BEGIN\n    RAISE EXCEPTION 'audit rows have a positive id and a chain value';\nEND",
    ),
];

/// Which rows `audit-log` shows.
#[derive(Debug, Clone, Default)]
pub struct AuditFilter {
    pub key_name: Option<String>,
    /// Only searches for one of these subject hashes ([`AuditHasher::subject`];
    /// one per audit key the value may have been hashed under).
    pub subject_hashes: Option<Vec<String>>,
    /// Only searches for this subject in clear (a domain).
    pub subject: Option<String>,
    /// Only rows whose endpoint starts with this (e.g. `cli reset --apply`).
    pub endpoint_prefix: Option<String>,
    /// Only the last this many rows.
    pub last: Option<u64>,
}

/// The columns a stored row is checked by, in order.
const ROW_COLUMNS: &str =
    "id, at, key_id, key_name, endpoint, subject_kind, subject, subject_hash, results, status, chain";

/// Rows read at a time when walking the whole log.
const PAGE: i64 = 10_000;

/// A stored row's fields as [`link`] hashes them.
struct Stored {
    id: i64,
    at: String,
    key_id: i64,
    key_name: String,
    endpoint: String,
    kind: String,
    clear: Option<String>,
    hash: String,
    results: i64,
    status: i64,
    chain: Option<Vec<u8>>,
}

impl Stored {
    fn read(r: &DbRow) -> Result<Stored> {
        Ok(Stored {
            id: r.get(0)?,
            at: r.get(1)?,
            key_id: r.get(2)?,
            key_name: r.get(3)?,
            endpoint: r.get(4)?,
            kind: r.get(5)?,
            clear: r.get(6)?,
            hash: r.get(7)?,
            results: r.get(8)?,
            status: r.get(9)?,
            chain: r.get(10)?,
        })
    }

    fn row(&self) -> Row<'_> {
        Row {
            at: &self.at,
            key_id: self.key_id,
            key_name: &self.key_name,
            endpoint: &self.endpoint,
            kind: &self.kind,
            clear: self.clear.as_deref(),
            hash: &self.hash,
            results: self.results,
            status: self.status,
        }
    }
}

/// Calls `each` on every row of the log in id order, a page at a time (the
/// log may hold more rows than fit in memory); stops where `each` says.
fn walk(db: &Db, mut each: impl FnMut(Stored) -> Result<bool>) -> Result<()> {
    let mut after = i64::MIN;
    loop {
        let rows = db.query(
            &format!("SELECT {ROW_COLUMNS} FROM audit_log WHERE id > ?1 ORDER BY id LIMIT ?2"),
            args![after, PAGE],
        )?;
        let full = rows.len() as i64 == PAGE;
        for r in &rows {
            let row = Stored::read(r)?;
            after = row.id;
            if !each(row)? {
                return Ok(());
            }
        }
        if !full {
            return Ok(());
        }
    }
}

impl Catalog {
    /// Appends entries in one transaction: the server batches them, so that an
    /// audited search costs a fraction of a commit. Each row is chained to the
    /// one before under the audit key the chain is under (the catalog notes its
    /// id; a row of kind [`SubjectKind::AuditKey`] switches to the key it names).
    /// Fails with [`CatalogError::UnknownAuditKey`], writing nothing, when the
    /// chain is under a key `keys` does not hold (rotated since they were read).
    pub fn append_audit(&mut self, entries: &[AuditEntry], keys: &AuditKeys) -> Result<()> {
        let path = self.path().to_owned();
        let unknown = |id: &str| CatalogError::UnknownAuditKey { path: path.clone(), id: id.to_owned() };
        let dialect = self.dialect();
        // Under the write lock nobody else appends: the next id and the last
        // chain value are ours to extend, from any number of processes.
        let tx = self.db.write(Lock::Audit)?;
        let last: Option<(i64, Option<Vec<u8>>)> = tx
            .query_opt("SELECT id, chain FROM audit_log ORDER BY id DESC LIMIT 1", &[])?
            .map(|r| Ok::<_, CatalogError>((r.get(0)?, r.get(1)?)))
            .transpose()?;
        // The highest id ever given: SQLite's AUTOINCREMENT keeps it; on
        // PostgreSQL this function keeps it in `meta`.
        let seq: i64 = match dialect {
            Dialect::Sqlite => {
                tx.query_opt("SELECT seq FROM sqlite_sequence WHERE name = 'audit_log'", &[])?
            }
            Dialect::Postgres => {
                tx.query_opt("SELECT CAST(value AS BIGINT) FROM meta WHERE name = 'audit_seq'", &[])?
            }
        }
        .map(|r| r.get(0))
        .transpose()?
        .unwrap_or(0);
        let under: Option<String> = tx
            .query_opt("SELECT value FROM meta WHERE name = 'audit_chain_key'", &[])?
            .map(|r| r.get(0))
            .transpose()?;
        let last_id = last.as_ref().map_or(0, |l| l.0);
        // After a removal at the end, ids go on from where they were: the
        // gap shows in `verify` once anything follows.
        let mut id = seq.max(last_id);
        let (mut key, mut prev) = match &under {
            Some(kid) => {
                let key = keys.get(kid).ok_or_else(|| unknown(kid))?;
                let prev = last.and_then(|l| l.1).and_then(|c| <[u8; 32]>::try_from(c).ok());
                let prev = prev.ok_or_else(|| CatalogError::DataCorruption {
                    path: path.clone(),
                    detail: "the last audit row has no valid chain value".into(),
                })?;
                (key, prev)
            }
            None => {
                // The first format-3 row: commit to what came before.
                let key = keys.first();
                let (unchained, digest, last_v2) = prefix_summary(&tx)?;
                (key, chain_start(&key.chain, &last_v2, last_id, unchained, &digest))
            }
        };
        let mut rows: Vec<Vec<Value>> = Vec::with_capacity(entries.len());
        for e in entries {
            let next = match (e.subject.kind, &e.subject.clear) {
                (SubjectKind::AuditKey, Some(kid)) => Some(keys.get(kid).ok_or_else(|| unknown(kid))?),
                (SubjectKind::AuditKey, None) => {
                    return Err(CatalogError::Invalid("an audit key switch names its key".into()))
                }
                _ => None,
            };
            id += 1;
            prev = link(&key.chain, V3_TAG, &prev, id, &Row::of(e));
            rows.push(
                args![
                    id,
                    &e.at,
                    e.key_id,
                    &e.key_name,
                    &e.endpoint,
                    e.subject.kind.as_str(),
                    e.subject.clear.as_deref(),
                    &e.subject.hash,
                    e.results.min(i64::MAX as u64) as i64,
                    e.status,
                    prev.as_slice(),
                ]
                .to_vec(),
            );
            if let Some(next) = next {
                key = next;
            }
        }
        // SQLite runs one cached statement per row (no round trip to save);
        // PostgreSQL gets many rows to a statement, one round trip each.
        let per_statement = match dialect {
            Dialect::Sqlite => 1,
            Dialect::Postgres => 64,
        };
        for chunk in rows.chunks(per_statement) {
            let width = chunk[0].len();
            let tuples: Vec<String> = (0..chunk.len())
                .map(|r| {
                    let cells: Vec<String> = (1..=width).map(|c| format!("?{}", r * width + c)).collect();
                    format!("({})", cells.join(", "))
                })
                .collect();
            let sql = format!("INSERT INTO audit_log ({ROW_COLUMNS}) VALUES {}", tuples.join(", "));
            tx.execute(&sql, &chunk.concat())?;
        }
        if under.as_deref() != Some(key.id()) && !entries.is_empty() {
            tx.execute(
                "INSERT INTO meta (name, value) VALUES ('audit_chain_key', ?1) \
                 ON CONFLICT (name) DO UPDATE SET value = excluded.value",
                args![key.id()],
            )?;
        }
        if dialect == Dialect::Postgres && !entries.is_empty() {
            tx.execute(
                "INSERT INTO meta (name, value) VALUES ('audit_seq', ?1) \
                 ON CONFLICT (name) DO UPDATE SET value = excluded.value",
                args![id],
            )?;
        }
        tx.commit()
    }

    /// Walks the chain from the first row: where it breaks, the log was changed
    /// (or is checked with other keys). Checks the append-only triggers too.
    pub fn verify_audit(&self, keys: &AuditKeys) -> Result<AuditVerification> {
        let mut out = AuditVerification::default();
        let first = keys.first();
        let mut key = first;
        // Before the first format-3 row: what it must commit to.
        let mut in_prefix = true;
        let (mut unchained_digest, mut last_v2, mut v2_rows) = ([0u8; 32], [0u8; 32], 0u64);
        let mut prev = [0u8; 32];
        let mut last_id = 0i64;
        walk(&self.db, |stored| {
            let id = stored.id;
            let row = stored.row();
            let (kind, clear) = (stored.kind.as_str(), stored.clear.as_deref());
            out.rows += 1;
            if id <= 0 {
                fail(&mut out, id, format!("row {id}: ids are positive; no writer makes this one"));
                return Ok(false);
            }
            let Some(chain) = &stored.chain else {
                if !in_prefix || keys.prefix == ChainPrefix::None {
                    fail(
                        &mut out,
                        id,
                        format!("row {id} has no chain value, in a log chained from its start"),
                    );
                    return Ok(false);
                }
                if v2_rows > 0 {
                    fail(&mut out, id, format!("row {id} has no chain value, after chained rows"));
                    return Ok(false);
                }
                out.unchained += 1;
                unchained_digest = link(&[0; 32], UNCHAINED_TAG, &unchained_digest, id, &row);
                last_id = id;
                return Ok(true);
            };
            if in_prefix {
                let start = chain_start(&first.chain, &last_v2, last_id, out.unchained, &unchained_digest);
                let v3 = link(&first.chain, V3_TAG, &start, id, &row);
                if chain.as_slice() == v3.as_slice() {
                    in_prefix = false;
                    prev = v3;
                } else if keys.prefix != ChainPrefix::None
                    && SubjectKind::parse(kind).is_some()
                    && chain.as_slice() == link(&first.chain, &[], &last_v2, id, &row).as_slice()
                {
                    // A format-2 row.
                    v2_rows += 1;
                    last_v2.copy_from_slice(chain);
                    out.chained += 1;
                    last_id = id;
                    return Ok(true);
                } else {
                    fail(&mut out, id, format!("row {id} does not match the chain (changed, inserted, or a row before it removed)"));
                    return Ok(false);
                }
            } else {
                if id != last_id + 1 {
                    fail(
                        &mut out,
                        id,
                        format!("row {id} follows row {last_id}: the rows between were removed"),
                    );
                    return Ok(false);
                }
                let expected = link(&key.chain, V3_TAG, &prev, id, &row);
                if chain.as_slice() != expected.as_slice() {
                    fail(&mut out, id, format!("row {id} does not match the chain (changed, inserted, or a row before it removed)"));
                    return Ok(false);
                }
                prev = expected;
            }
            out.chained += 1;
            last_id = id;
            if kind == SubjectKind::AuditKey.as_str() {
                let named = clear.unwrap_or_default();
                match keys.get(named) {
                    Some(next) => {
                        key = next;
                        out.key_switches += 1;
                    }
                    None => {
                        fail(&mut out, id, format!(
                            "row {id} switches the chain to audit key {named}, which the key ring does not hold"
                        ));
                        return Ok(false);
                    }
                }
            }
            Ok(true)
        })?;
        if out.intact() && in_prefix && out.rows > 0 && keys.prefix == ChainPrefix::Committed {
            out.problem = Some(format!(
                "no row of the current chain commits to the {} rows of the log: they were put in place of it",
                out.rows
            ));
        }
        if let Some(schema) = self.schema_problem()? {
            out.problem = Some(match out.problem.take() {
                Some(row) => format!("{row}; and {schema}"),
                None => schema,
            });
        }
        Ok(out)
    }

    /// Whether the append-only triggers are there exactly as the schema made
    /// them (and, on PostgreSQL, enabled, with their functions unchanged).
    fn schema_problem(&self) -> Result<Option<String>> {
        type Triggers = Vec<(String, String)>;
        let (expected, found): (&[(&str, &str)], Triggers) = match self.dialect() {
            Dialect::Sqlite => (
                &TRIGGERS,
                self.db
                    .query("SELECT name, sql FROM sqlite_master WHERE type = 'trigger' AND tbl_name = 'audit_log'", &[])?
                    .iter()
                    .map(|r| Ok((r.get(0)?, r.get::<Option<String>>(1)?.unwrap_or_default())))
                    .collect::<Result<_>>()?,
            ),
            Dialect::Postgres => {
                // A disabled trigger is as good as none; a changed function
                // is as good as a changed trigger.
                let mut found: Vec<(String, String)> = self
                    .db
                    .query(
                        "SELECT tgname::text, pg_get_triggerdef(oid) || ' ' || tgenabled::text FROM pg_trigger \
                         WHERE tgrelid = 'audit_log'::regclass AND NOT tgisinternal",
                        &[],
                    )?
                    .iter()
                    .map(|r| Ok((r.get(0)?, r.get(1)?)))
                    .collect::<Result<_>>()?;
                for r in self.db.query(
                    "SELECT p.proname::text, p.prosrc FROM pg_proc p \
                     WHERE p.oid IN (SELECT tgfoid FROM pg_trigger WHERE tgrelid = 'audit_log'::regclass) \
                     OR p.proname IN ('audit_log_refuse', 'audit_log_refuse_unchained')",
                    &[],
                )? {
                    let name: String = r.get(0)?;
                    let body: String = r.get(1)?;
                    let expected = PG_FUNCTIONS.iter().find(|(n, _)| *n == name);
                    if expected.is_none_or(|(_, b)| body.trim() != b.trim()) {
                        return Ok(Some(format!("the append-only trigger function {name} was changed")));
                    }
                }
                let schema: String = self.db.query_one("SELECT current_schema()::text", &[])?.get(0)?;
                for (_, def) in &mut found {
                    *def = def.replace(&format!(" ON {schema}.audit_log "), " ON audit_log ");
                }
                (&PG_TRIGGERS, found)
            }
        };
        for (name, sql) in expected {
            match found.iter().find(|(n, _)| n == name) {
                None => return Ok(Some(format!("the append-only trigger {name} was removed"))),
                Some((_, text)) if text != sql => {
                    return Ok(Some(format!("the append-only trigger {name} was changed")))
                }
                Some(_) => {}
            }
        }
        if let Some((name, _)) = found.iter().find(|(n, _)| !expected.iter().any(|(t, _)| t == n)) {
            return Ok(Some(format!("a trigger {name} was added to the audit log")));
        }
        Ok(None)
    }

    /// Stored rows, oldest first.
    pub fn audit_entries(&self, filter: &AuditFilter) -> Result<Vec<AuditRecord>> {
        let hashes = filter.subject_hashes.as_deref();
        let in_hashes = match hashes {
            None => "TRUE".to_owned(),
            Some([]) => "FALSE".to_owned(),
            Some(h) => format!(
                "subject_hash IN ({})",
                (0..h.len()).map(|i| format!("?{}", 5 + i)).collect::<Vec<_>>().join(", ")
            ),
        };
        let sql = format!(
            "SELECT * FROM (
                 SELECT id, at, key_id, key_name, endpoint, subject_kind, subject, subject_hash, results, status
                 FROM audit_log
                 WHERE (?1 IS NULL OR key_name = ?1) AND ({in_hashes}) AND (?2 IS NULL OR subject = ?2)
                   AND (?4 IS NULL OR substr(endpoint, 1, length(?4)) = ?4)
                 ORDER BY id DESC LIMIT ?3) AS last_rows
             ORDER BY id"
        );
        let limit = filter.last.map_or(i64::MAX, |n| n.min(i64::MAX as u64) as i64);
        let mut values: Vec<Value> = vec![
            filter.key_name.as_deref().into(),
            filter.subject.as_deref().into(),
            limit.into(),
            filter.endpoint_prefix.as_deref().into(),
        ];
        values.extend(hashes.unwrap_or_default().iter().map(|h| Value::from(h.as_str())));
        let mut out = Vec::new();
        for r in self.db.query(&sql, &values)? {
            let id: i64 = r.get(0)?;
            let kind: String = r.get(5)?;
            let kind = SubjectKind::parse(&kind).ok_or_else(|| CatalogError::DataCorruption {
                path: self.path().to_owned(),
                detail: format!("audit row {id} has unknown subject kind {kind:?}"),
            })?;
            let entry = AuditEntry {
                at: r.get(1)?,
                key_id: r.get(2)?,
                key_name: r.get(3)?,
                endpoint: r.get(4)?,
                subject: Subject { kind, clear: r.get(6)?, hash: r.get(7)? },
                results: r.get::<i64>(8)?.max(0) as u64,
                status: r.get(9)?,
            };
            out.push(AuditRecord { id, entry });
        }
        Ok(out)
    }

    /// How many rows the audit log holds.
    pub fn audit_len(&self) -> Result<u64> {
        let n: i64 = self.db.query_one("SELECT count(*) FROM audit_log", &[])?.get(0)?;
        Ok(n.max(0) as u64)
    }
}

fn fail(out: &mut AuditVerification, id: i64, problem: String) {
    out.broken = Some(id);
    out.problem.get_or_insert(problem);
}

/// Before the first format-3 row: how many rows have no chain value, their
/// digest, and the last format-2 link.
fn prefix_summary(db: &Db) -> Result<(u64, [u8; 32], [u8; 32])> {
    let (mut unchained, mut digest, mut last_v2) = (0u64, [0u8; 32], [0u8; 32]);
    walk(db, |stored| {
        match &stored.chain {
            Some(c) => {
                if let Ok(c) = <[u8; 32]>::try_from(c.as_slice()) {
                    last_v2 = c;
                }
            }
            None => {
                unchained += 1;
                digest = link(&[0; 32], UNCHAINED_TAG, &digest, stored.id, &stored.row());
            }
        }
        Ok(true)
    })?;
    Ok((unchained, digest, last_v2))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::CatalogLocation;

    fn keys(root: u8) -> AuditKeys {
        AuditKeys::new(vec![AuditKey::from_root(&[root; 32])], ChainPrefix::None)
    }

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
        crate::testing::each_backend(entries_are_appended_read_back_and_filtered_in);
    }

    fn entries_are_appended_read_back_and_filtered_in(location: &CatalogLocation) {
        let mut catalog = Catalog::open_at(location).unwrap();
        let hasher = keys(5).current().hasher();
        let entries = [
            entry(&hasher, "a", SubjectKind::Account, "bob@example.com", 2),
            entry(&hasher, "b", SubjectKind::Domain, "example.com", 7),
            entry(&hasher, "a", SubjectKind::Account, "eve@example.com", 0),
            entry(&hasher, "b", SubjectKind::Account, "bob@example.com", 2),
        ];
        catalog.append_audit(&entries[..2], &keys(5)).unwrap();
        catalog.append_audit(&entries[2..], &keys(5)).unwrap();
        assert_eq!(catalog.audit_len().unwrap(), 4);

        let all = catalog.audit_entries(&AuditFilter::default()).unwrap();
        assert_eq!(all.iter().map(|r| &r.entry).collect::<Vec<_>>(), entries.iter().collect::<Vec<_>>());
        assert!(all.windows(2).all(|w| w[0].id < w[1].id));

        let by_key = AuditFilter { key_name: Some("a".into()), ..AuditFilter::default() };
        assert_eq!(catalog.audit_entries(&by_key).unwrap().len(), 2);
        let bob = hasher.subject(SubjectKind::Account, "bob@example.com").hash;
        let by_subject = AuditFilter { subject_hashes: Some(vec![bob]), ..AuditFilter::default() };
        let rows = catalog.audit_entries(&by_subject).unwrap();
        assert_eq!(rows.iter().map(|r| r.entry.key_name.as_str()).collect::<Vec<_>>(), ["a", "b"]);
        let domain = AuditFilter { subject: Some("example.com".into()), ..AuditFilter::default() };
        assert_eq!(catalog.audit_entries(&domain).unwrap()[0].entry, entries[1]);
        let last = AuditFilter { last: Some(1), ..AuditFilter::default() };
        assert_eq!(catalog.audit_entries(&last).unwrap()[0].entry, entries[3]);
        // A prefix, not a pattern: `_` and `%` match only themselves.
        let reset = AuditEntry::cli("root", "reset --apply --org a_b", entries[0].subject.clone(), 1);
        catalog.append_audit(std::slice::from_ref(&reset), &keys(5)).unwrap();
        let prefix = |p: &str| AuditFilter { endpoint_prefix: Some(p.into()), ..AuditFilter::default() };
        let by_prefix = catalog.audit_entries(&prefix("cli reset --apply --org a_b")).unwrap();
        assert_eq!(by_prefix.iter().map(|r| &r.entry).collect::<Vec<_>>(), [&reset]);
        assert!(catalog.audit_entries(&prefix("cli reset --apply --org a%")).unwrap().is_empty());
        assert_eq!(catalog.audit_entries(&prefix("breached")).unwrap().len(), 4);
        // With a subject filter too: the placeholders stay in their places.
        let bob = hasher.subject(SubjectKind::Account, "bob@example.com").hash;
        let both = AuditFilter { subject_hashes: Some(vec![bob]), ..prefix("breached") };
        assert_eq!(catalog.audit_entries(&both).unwrap().len(), 2);
        let none = AuditFilter { subject_hashes: Some(vec![]), ..AuditFilter::default() };
        assert!(catalog.audit_entries(&none).unwrap().is_empty());
        assert!(catalog.verify_audit(&keys(5)).unwrap().intact());
    }

    #[test]
    fn addresses_are_hashed_under_the_audit_key_and_domains_stay_readable() {
        let tmp = tempfile::tempdir().unwrap();
        let mut catalog = Catalog::open_in(tmp.path()).unwrap();
        let hasher = keys(5).current().hasher();
        let account = hasher.subject(SubjectKind::Account, "bob@example.com");
        assert_eq!(account.clear, None);
        assert_eq!(account.hash.len(), 32);
        assert_ne!(account.hash, hasher.subject(SubjectKind::Domain, "bob@example.com").hash);
        assert_eq!(hasher.subject(SubjectKind::Domain, "example.com").clear.as_deref(), Some("example.com"));
        catalog
            .append_audit(&[entry(&hasher, "a", SubjectKind::Account, "bob@example.com", 1)], &keys(5))
            .unwrap();
        drop(catalog);

        for file in ["catalog.sqlite", "catalog.sqlite-wal"] {
            let bytes = std::fs::read(tmp.path().join(file)).unwrap_or_default();
            assert!(!bytes.windows(15).any(|w| w == b"bob@example.com"), "address in clear in {file}");
        }
        // The catalog holds no key to hash a guess with: the same address under
        // another audit key is another hash.
        assert_eq!(keys(5).current().hasher().subject(SubjectKind::Account, "bob@example.com"), account);
        assert_ne!(keys(6).current().hasher().subject(SubjectKind::Account, "bob@example.com"), account);
    }

    #[test]
    fn command_line_changes_are_logged_with_their_user_and_chained() {
        crate::testing::each_backend(|location| {
            let mut catalog = Catalog::open_at(location).unwrap();
            command_line_changes_are_logged_in(&mut catalog);
        });
    }

    fn command_line_changes_are_logged_in(catalog: &mut Catalog) {
        let hasher = AuditHasher::new([3; 32]);
        let subject = hasher.subject(SubjectKind::Breach, "Acme");
        assert_eq!(subject.clear.as_deref(), Some("Acme"), "breach names are kept readable");
        let entry = AuditEntry::cli("alice", "breach remove", subject, 12);
        catalog.append_audit(std::slice::from_ref(&entry), &keys(5)).unwrap();
        let rows = catalog.audit_entries(&AuditFilter::default()).unwrap();
        assert_eq!(rows.len(), 1);
        assert_eq!(rows[0].entry, entry);
        assert_eq!(
            (rows[0].entry.key_id, rows[0].entry.key_name.as_str(), rows[0].entry.endpoint.as_str()),
            (0, "alice", "cli breach remove")
        );
        assert_eq!(rows[0].entry.subject.kind, SubjectKind::Breach);
        assert_eq!(catalog.verify_audit(&keys(5)).unwrap().broken, None);
    }

    #[test]
    fn the_log_refuses_updates_and_deletes() {
        crate::testing::each_backend(|location| {
            let mut catalog = Catalog::open_at(location).unwrap();
            let hasher = keys(5).current().hasher();
            catalog
                .append_audit(&[entry(&hasher, "a", SubjectKind::Account, "bob@example.com", 1)], &keys(5))
                .unwrap();
            let mut statements = vec!["UPDATE audit_log SET results = 0", "DELETE FROM audit_log"];
            if catalog.dialect() == Dialect::Postgres {
                statements.push("TRUNCATE audit_log");
            }
            for statement in statements {
                let err = catalog.db.execute(statement, &[]).unwrap_err();
                assert!(format!("{err:?}").contains("append-only"), "{statement}: {err:?}");
            }
            // Rows without a chain value (or with an id a writer never gives).
            let row = "INSERT INTO audit_log (id, at, key_id, key_name, endpoint, subject_kind, subject, \
                       subject_hash, results, status, chain) VALUES (?1, 'x', 1, 'a', 'e', 'account', NULL, 'h', \
                       0, 404, ?2)";
            for (id, chain) in [(2i64, None), (-1, Some(vec![0u8; 32]))] {
                let err = catalog.db.execute(row, args![id, chain]).unwrap_err();
                assert!(format!("{err:?}").contains("positive id"), "{id}: {err:?}");
            }
            assert_eq!(catalog.audit_len().unwrap(), 1);
        });
    }

    /// Drops an append-only trigger as whoever owns the tables could.
    fn drop_trigger(catalog: &Catalog, name: &str) {
        match catalog.dialect() {
            Dialect::Sqlite => catalog.db.batch(&format!("DROP TRIGGER {name}")).unwrap(),
            Dialect::Postgres => catalog.db.batch(&format!("DROP TRIGGER {name} ON audit_log")).unwrap(),
        }
    }

    #[test]
    fn the_chain_checks_and_pins_the_first_changed_row() {
        crate::testing::each_backend(the_chain_checks_in);
    }

    fn the_chain_checks_in(location: &CatalogLocation) {
        let mut catalog = Catalog::open_at(location).unwrap();
        let hasher = AuditHasher::new([3; 32]);
        let key = keys(5);
        for batch in 0..3 {
            let entries: Vec<_> = (0..4)
                .map(|i| entry(&hasher, "a", SubjectKind::Account, &format!("u{batch}{i}@example.com"), i))
                .collect();
            catalog.append_audit(&entries, &key).unwrap();
        }
        let ok = catalog.verify_audit(&key).unwrap();
        assert_eq!((ok.rows, ok.chained, ok.broken), (12, 12, None));
        assert_eq!(catalog.verify_audit(&keys(6)).unwrap().broken, Some(1), "another key");
        // Someone with the tables (not the key) drops the trigger and edits row 7.
        drop_trigger(&catalog, "audit_log_no_update");
        catalog.db.execute("UPDATE audit_log SET results = 99 WHERE id = 7", &[]).unwrap();
        assert_eq!(catalog.verify_audit(&key).unwrap().broken, Some(7));
        catalog.db.execute("UPDATE audit_log SET results = 2 WHERE id = 7", &[]).unwrap();
        let restored = catalog.verify_audit(&key).unwrap();
        assert_eq!(restored.broken, None, "restored");
        assert!(restored.problem.unwrap().contains("audit_log_no_update"), "but the trigger is gone");
        drop_trigger(&catalog, "audit_log_no_delete");
        catalog.db.execute("DELETE FROM audit_log WHERE id = 5", &[]).unwrap();
        assert_eq!(catalog.verify_audit(&key).unwrap().broken, Some(6), "a row removed");
    }

    #[test]
    fn writers_on_many_connections_extend_one_chain() {
        crate::testing::each_backend(|location| {
            drop(Catalog::open_at(location).unwrap());
            let key = keys(5);
            let hasher = key.current().hasher();
            // Each thread has its own connection, as each replica has.
            std::thread::scope(|scope| {
                for writer in 0..4 {
                    let (key, hasher) = (&key, &hasher);
                    scope.spawn(move || {
                        let mut catalog = Catalog::open_at(location).unwrap();
                        for batch in 0..10 {
                            let entries: Vec<_> = (0..3)
                                .map(|i| {
                                    entry(
                                        hasher,
                                        "a",
                                        SubjectKind::Account,
                                        &format!("w{writer}b{batch}i{i}@x.org"),
                                        1,
                                    )
                                })
                                .collect();
                            catalog.append_audit(&entries, key).unwrap();
                        }
                    });
                }
            });
            // And one batch larger than a statement's worth of rows.
            let mut catalog = Catalog::open_at(location).unwrap();
            let big: Vec<_> = (0..150)
                .map(|i| entry(&hasher, "a", SubjectKind::Account, &format!("big{i}@x.org"), 1))
                .collect();
            catalog.append_audit(&big, &key).unwrap();
            let check = catalog.verify_audit(&key).unwrap();
            assert!(check.intact(), "{location}: {check:?}");
            assert_eq!((check.rows, check.chained), (270, 270), "{location}");
        });
    }

    #[test]
    fn postgres_a_dump_restored_into_another_database_verifies() {
        let server = crate::testing::TestPostgres::shared();
        let (source, target) = (server.fresh_database(), server.fresh_database());
        let mut catalog =
            Catalog::open_at(&CatalogLocation::Postgres(server.url("postgres", &source))).unwrap();
        let hasher = keys(5).current().hasher();
        let entries: Vec<_> = (0..5)
            .map(|i| entry(&hasher, "a", SubjectKind::Account, &format!("u{i}@example.com"), i))
            .collect();
        catalog.append_audit(&entries, &keys(5)).unwrap();
        let tmp = tempfile::tempdir().unwrap();
        let dump = tmp.path().join("catalog.dump");
        let ok = |c: &mut std::process::Command| c.status().unwrap().success();
        assert!(ok(server.client("pg_dump").arg("--format=custom").arg("--file").arg(&dump).arg(&source)));
        assert!(ok(server.client("pg_restore").args(["--dbname", &target]).arg(&dump)));
        let mut restored =
            Catalog::open_at(&CatalogLocation::Postgres(server.url("postgres", &target))).unwrap();
        let check = restored.verify_audit(&keys(5)).unwrap();
        assert!(check.intact() && check.rows == 5, "{check:?}");
        // And it goes on from where the dump ended.
        restored.append_audit(&entries[..1], &keys(5)).unwrap();
        assert!(restored.verify_audit(&keys(5)).unwrap().intact());
    }

    #[test]
    fn postgres_attack_a_disabled_trigger_or_a_changed_function_fails_verify() {
        let server = crate::testing::TestPostgres::shared();
        for attack in [
            "ALTER TABLE audit_log DISABLE TRIGGER audit_log_no_update",
            "DROP TRIGGER audit_log_no_truncate ON audit_log",
            "CREATE OR REPLACE FUNCTION audit_log_refuse() RETURNS trigger LANGUAGE plpgsql AS \
             $$BEGIN RETURN NEW; END$$",
            "CREATE TRIGGER audit_log_spy AFTER INSERT ON audit_log FOR EACH ROW \
             EXECUTE FUNCTION audit_log_refuse()",
        ] {
            let location = server.fresh_catalog();
            let mut catalog = Catalog::open_at(&location).unwrap();
            let hasher = keys(5).current().hasher();
            catalog
                .append_audit(&[entry(&hasher, "a", SubjectKind::Account, "bob@example.com", 1)], &keys(5))
                .unwrap();
            assert!(catalog.verify_audit(&keys(5)).unwrap().intact(), "before: {attack}");
            catalog.db.batch(attack).unwrap();
            let check = catalog.verify_audit(&keys(5)).unwrap();
            assert!(check.problem.as_deref().is_some_and(|p| p.contains("trigger")), "{attack}: {check:?}");
        }
    }

    #[test]
    fn postgres_an_application_role_with_the_documented_grants_cannot_rewrite_the_log() {
        let server = crate::testing::TestPostgres::shared();
        let database = server.fresh_database();
        // The owner creates the tables (the first open), then grants as
        // docs/postgresql.md says.
        drop(Catalog::open_at(&CatalogLocation::Postgres(server.url("postgres", &database))).unwrap());
        let role = format!("app_{database}");
        server.psql(&database, &format!("CREATE ROLE {role} LOGIN"));
        server.psql(&database, &crate::POSTGRES_GRANTS.replace("leakwatch_app", &role));
        let app = CatalogLocation::Postgres(server.url(&role, &database));
        let mut catalog = Catalog::open_at(&app).unwrap();
        let hasher = keys(5).current().hasher();
        catalog
            .append_audit(&[entry(&hasher, "a", SubjectKind::Account, "bob@example.com", 1)], &keys(5))
            .unwrap();
        catalog.add_organization("acme", &["acme.example".to_owned()]).unwrap();
        catalog
            .create_key(&crate::NewKey {
                name: "k".into(),
                role: crate::Role::Analyst,
                domains: vec![],
                rate_limit_per_minute: None,
            })
            .unwrap();
        for attack in [
            "DROP TRIGGER audit_log_no_update ON audit_log",
            "ALTER TABLE audit_log DISABLE TRIGGER ALL",
            "UPDATE audit_log SET results = 5",
            "DELETE FROM audit_log",
            "TRUNCATE audit_log",
            "CREATE TABLE x (a int)",
        ] {
            let err = server.psql_err(&database, &role, attack);
            assert!(err.is_some(), "the application role could run {attack:?}");
        }
        assert!(catalog.verify_audit(&keys(5)).unwrap().intact());
    }

    /// Ten searches in a fresh catalog, chained under `keys`; and the same file
    /// opened with plain SQLite, as someone who can write it (and has no key)
    /// would.
    fn attacked(keys: &AuditKeys) -> (tempfile::TempDir, Catalog, rusqlite::Connection) {
        let tmp = tempfile::tempdir().unwrap();
        let mut catalog = Catalog::open_in(tmp.path()).unwrap();
        let hasher = keys.current().hasher();
        for batch in 0..2 {
            let entries: Vec<_> = (0..5)
                .map(|i| entry(&hasher, "a", SubjectKind::Account, &format!("u{batch}{i}@example.com"), i))
                .collect();
            catalog.append_audit(&entries, keys).unwrap();
        }
        let check = catalog.verify_audit(keys).unwrap();
        assert!(check.intact(), "{check:?}");
        assert_eq!((check.rows, check.chained, check.unchained), (10, 10, 0));
        let plain = rusqlite::Connection::open(tmp.path().join(crate::CATALOG_FILE)).unwrap();
        (tmp, catalog, plain)
    }

    const ROW: &str = "INSERT INTO audit_log (id, at, key_id, key_name, endpoint, subject_kind, subject,
         subject_hash, results, status, chain) VALUES (?1, '2026-01-01T00:00:00.000Z', 1, 'a',
         'breachedaccount', 'account', NULL, '00000000000000000000000000000000', 0, 404, ?2)";

    fn broken(catalog: &Catalog, keys: &AuditKeys) -> AuditVerification {
        let check = catalog.verify_audit(keys).unwrap();
        assert!(!check.intact(), "the attack went unnoticed: {check:?}");
        check
    }

    #[test]
    fn attack_rows_without_a_chain_value_are_refused_in_a_chained_log() {
        let keys = keys(5);
        let (_tmp, catalog, plain) = attacked(&keys);
        // The insert trigger refuses them; the attacker drops it first.
        assert!(plain.execute(ROW, rusqlite::params![11, Option::<Vec<u8>>::None]).is_err());
        plain
            .execute_batch("DROP TRIGGER audit_log_chained_insert; DROP TRIGGER audit_log_no_delete")
            .unwrap();
        for (id, what) in [(11, "appended"), (0, "before the first row"), (-5, "with a negative id")] {
            plain.execute(ROW, rusqlite::params![id, Option::<Vec<u8>>::None]).unwrap();
            let check = broken(&catalog, &keys);
            assert!(check.broken.is_some(), "{what}: {check:?}");
            plain.execute("DELETE FROM audit_log WHERE id = ?1", [id]).unwrap();
        }
    }

    #[test]
    fn attack_a_row_with_a_negative_id_and_a_copied_chain_value_is_refused() {
        let keys = keys(5);
        let (_tmp, catalog, plain) = attacked(&keys);
        plain.execute_batch("DROP TRIGGER audit_log_chained_insert").unwrap();
        let first: Vec<u8> =
            plain.query_row("SELECT chain FROM audit_log WHERE id = 1", [], |r| r.get(0)).unwrap();
        plain.execute(ROW, rusqlite::params![-1, first]).unwrap();
        let check = broken(&catalog, &keys);
        assert_eq!(check.broken, Some(-1));
        assert!(check.problem.unwrap().contains("positive"));
    }

    #[test]
    fn attack_dropping_or_changing_the_triggers_fails_verify_even_without_an_edit() {
        for attack in [
            "DROP TRIGGER audit_log_no_update",
            "DROP TRIGGER audit_log_no_delete",
            "DROP TRIGGER audit_log_chained_insert",
            "DROP TRIGGER audit_log_no_delete;
             CREATE TRIGGER audit_log_no_delete BEFORE DELETE ON audit_log WHEN 0
             BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END",
            "CREATE TRIGGER audit_log_spy AFTER INSERT ON audit_log BEGIN SELECT 1; END",
        ] {
            let keys = keys(5);
            let (_tmp, catalog, plain) = attacked(&keys);
            plain.execute_batch(attack).unwrap();
            let check = broken(&catalog, &keys);
            assert!(check.problem.as_deref().unwrap().contains("trigger"), "{attack}: {check:?}");
        }
    }

    #[test]
    fn attack_edited_removed_and_replaced_rows_fail_verify() {
        let keys = keys(5);
        // Edit a row (a result count, even to a value that reads the same).
        for edit in [
            "UPDATE audit_log SET results = 99 WHERE id = 4",
            "UPDATE audit_log SET results = -0 - 3 WHERE id = 1",
            "UPDATE audit_log SET subject_kind = 'domain' WHERE id = 4",
            "UPDATE audit_log SET key_name = 'b' WHERE id = 10",
            "UPDATE audit_log SET chain = NULL WHERE id = 10",
        ] {
            let (_tmp, catalog, plain) = attacked(&keys);
            plain.execute_batch(&format!("DROP TRIGGER audit_log_no_update; {edit}")).unwrap();
            // Put the trigger back exactly: only the chain can tell.
            plain.execute_batch(TRIGGERS[0].1).unwrap();
            let check = broken(&catalog, &keys);
            assert!(check.broken.is_some(), "{edit}: {check:?}");
        }
        // Remove a row in the middle; the last rows, then let the log go on.
        let (_tmp, mut catalog, plain) = attacked(&keys);
        plain.execute_batch("DROP TRIGGER audit_log_no_delete; DELETE FROM audit_log WHERE id = 5").unwrap();
        plain.execute_batch(TRIGGERS[1].1).unwrap();
        assert_eq!(broken(&catalog, &keys).broken, Some(6));
        plain.execute_batch("DROP TRIGGER audit_log_no_delete; DELETE FROM audit_log WHERE id >= 5").unwrap();
        plain.execute_batch(TRIGGERS[1].1).unwrap();
        assert!(catalog.verify_audit(&keys).unwrap().intact(), "a shorter log checks (a known limit)");
        let hasher = keys.current().hasher();
        catalog
            .append_audit(&[entry(&hasher, "a", SubjectKind::Account, "x@example.com", 0)], &keys)
            .unwrap();
        let check = broken(&catalog, &keys);
        assert_eq!(check.broken, Some(11), "the next row shows the gap: {check:?}");
        // Replace the whole log by rows that claim to be older than the chain.
        let (_tmp, catalog, plain) = attacked(&keys);
        plain
            .execute_batch(
                "DROP TRIGGER audit_log_no_delete; DROP TRIGGER audit_log_chained_insert;
                 DELETE FROM audit_log; DELETE FROM meta WHERE name = 'audit_chain_key'",
            )
            .unwrap();
        plain.execute(ROW, rusqlite::params![1, Option::<Vec<u8>>::None]).unwrap();
        plain.execute_batch(&format!("{}; {}", TRIGGERS[1].1, TRIGGERS[2].1)).unwrap();
        assert_eq!(broken(&catalog, &keys).broken, Some(1));
    }

    /// A log as an older build left it: rows from before the chain, then
    /// format-2 links under the index key's audit key.
    fn legacy_log(root: &[u8; 32]) -> (tempfile::TempDir, Catalog, rusqlite::Connection) {
        let tmp = tempfile::tempdir().unwrap();
        let catalog = Catalog::open_in(tmp.path()).unwrap();
        let plain = rusqlite::Connection::open(tmp.path().join(crate::CATALOG_FILE)).unwrap();
        plain.execute_batch("DROP TRIGGER audit_log_chained_insert").unwrap();
        let key = AuditKey::from_root(root);
        let hasher = key.hasher();
        let mut prev = [0u8; 32];
        for id in 1..=6i64 {
            let e = entry(&hasher, "a", SubjectKind::Account, &format!("old{id}@example.com"), 1);
            let chain = (id > 2).then(|| {
                prev = link(&key.chain, &[], &prev, id, &Row::of(&e));
                prev.to_vec()
            });
            plain
                .execute(
                    "INSERT INTO audit_log (id, at, key_id, key_name, endpoint, subject_kind, subject,
                     subject_hash, results, status, chain) VALUES (?1, ?2, 1, 'a', 'breachedaccount',
                     'account', NULL, ?3, 1, 200, ?4)",
                    rusqlite::params![id, e.at, e.subject.hash, chain],
                )
                .unwrap();
        }
        plain.execute_batch(TRIGGERS[2].1).unwrap();
        (tmp, catalog, plain)
    }

    #[test]
    fn an_older_log_still_checks_and_its_first_new_row_commits_to_it() {
        let root = [9u8; 32];
        let open = AuditKeys::new(vec![AuditKey::from_root(&root)], ChainPrefix::Open);
        let (_tmp, mut catalog, plain) = legacy_log(&root);
        let check = catalog.verify_audit(&open).unwrap();
        assert!(check.intact(), "{check:?}");
        assert_eq!((check.rows, check.chained, check.unchained), (6, 4, 2));
        // Rows from before the chain are only accepted where the key ring says
        // they can exist.
        assert!(!catalog
            .verify_audit(&AuditKeys::new(vec![AuditKey::from_root(&root)], ChainPrefix::None))
            .unwrap()
            .intact());
        let hasher = open.current().hasher();
        catalog
            .append_audit(&[entry(&hasher, "a", SubjectKind::Account, "new@example.com", 0)], &open)
            .unwrap();
        let check = catalog.verify_audit(&open).unwrap();
        assert!(check.intact(), "{check:?}");
        assert_eq!((check.rows, check.chained, check.unchained), (7, 5, 2));
        // Now an unchained row slipped in front of the old ones is seen.
        plain.execute_batch("DROP TRIGGER audit_log_chained_insert").unwrap();
        plain.execute(ROW, rusqlite::params![-3, Option::<Vec<u8>>::None]).unwrap();
        assert!(!catalog.verify_audit(&open).unwrap().intact());
        plain.execute_batch("DROP TRIGGER audit_log_no_delete; DELETE FROM audit_log WHERE id = -3").unwrap();
        plain.execute(ROW, rusqlite::params![0, Option::<Vec<u8>>::None]).unwrap();
        assert!(!catalog.verify_audit(&open).unwrap().intact());
    }

    #[test]
    fn rotating_the_audit_key_is_a_row_of_the_chain() {
        let (old_root, new_root) = ([1u8; 32], [2u8; 32]);
        let before = AuditKeys::new(vec![AuditKey::from_root(&old_root)], ChainPrefix::None);
        let (tmp, mut catalog, plain) = attacked(&before);
        let after = AuditKeys::new(
            vec![AuditKey::from_root(&old_root), AuditKey::from_root(&new_root)],
            ChainPrefix::None,
        );
        let new_id = after.current().id().to_owned();
        let switch = AuditEntry::cli(
            "alice",
            "rekey --audit",
            after.current().hasher().subject(SubjectKind::AuditKey, &new_id),
            1,
        );
        // A writer still holding only the old key is told, and writes nothing.
        catalog.append_audit(std::slice::from_ref(&switch), &after).unwrap();
        let hasher = after.current().hasher();
        let late = entry(&before.current().hasher(), "a", SubjectKind::Account, "late@example.com", 0);
        let err = catalog.append_audit(std::slice::from_ref(&late), &before).unwrap_err();
        assert!(matches!(err, CatalogError::UnknownAuditKey { .. }), "{err}");
        catalog
            .append_audit(&[entry(&hasher, "a", SubjectKind::Account, "new@example.com", 1)], &after)
            .unwrap();
        let check = catalog.verify_audit(&after).unwrap();
        assert!(check.intact(), "{check:?}");
        assert_eq!((check.rows, check.key_switches), (12, 1));
        let check = catalog.verify_audit(&before).unwrap();
        assert_eq!(check.broken, Some(11), "the old ring cannot follow the switch: {check:?}");
        assert!(check.problem.unwrap().contains(&new_id));

        // Whoever holds only the old key forges a row after the switch: refused.
        let old = AuditKey::from_root(&old_root);
        let prev: Vec<u8> =
            plain.query_row("SELECT chain FROM audit_log WHERE id = 12", [], |r| r.get(0)).unwrap();
        let forged = entry(&old.hasher(), "a", SubjectKind::Account, "forged@example.com", 0);
        let chain = link(&old.chain, V3_TAG, &prev.try_into().unwrap(), 13, &Row::of(&forged));
        plain
            .execute(
                "INSERT INTO audit_log (id, at, key_id, key_name, endpoint, subject_kind, subject,
                 subject_hash, results, status, chain) VALUES (13, ?1, 1, 'a', 'breachedaccount',
                 'account', NULL, ?2, 0, 404, ?3)",
                rusqlite::params![forged.at, forged.subject.hash, chain.to_vec()],
            )
            .unwrap();
        assert_eq!(broken(&catalog, &after).broken, Some(13));
        drop(tmp);
    }

    #[test]
    fn an_older_catalog_loses_its_own_subject_key_and_gains_the_insert_trigger() {
        let tmp = tempfile::tempdir().unwrap();
        drop(Catalog::open_in(tmp.path()).unwrap());
        let plain = rusqlite::Connection::open(tmp.path().join(crate::CATALOG_FILE)).unwrap();
        plain
            .execute_batch(
                "DROP TRIGGER audit_log_chained_insert;
                 INSERT INTO meta (name, value) VALUES ('audit_key', zeroblob(32));
                 PRAGMA user_version = 2;",
            )
            .unwrap();
        let catalog = Catalog::open_in(tmp.path()).unwrap();
        let left: i64 =
            plain.query_row("SELECT count(*) FROM meta WHERE name = 'audit_key'", [], |r| r.get(0)).unwrap();
        assert_eq!(left, 0);
        assert!(catalog.verify_audit(&keys(5)).unwrap().intact(), "the trigger is back, exactly");
    }

    #[test]
    fn rotating_an_older_rings_key_closes_the_log_to_rows_from_before_the_chain() {
        let root = [9u8; 32];
        let (_tmp, mut catalog, plain) = legacy_log(&root);
        let rotated = AuditKeys::new(
            vec![AuditKey::from_root(&root), AuditKey::from_root(&[10; 32])],
            ChainPrefix::Committed,
        );
        let new_id = rotated.current().id().to_owned();
        let subject = rotated.current().hasher().subject(SubjectKind::AuditKey, &new_id);
        catalog.append_audit(&[AuditEntry::cli("ops", "rekey --audit", subject, 1)], &rotated).unwrap();
        let check = catalog.verify_audit(&rotated).unwrap();
        assert!(check.intact(), "{check:?}");
        assert_eq!((check.rows, check.unchained, check.key_switches), (7, 2, 1));
        // The whole log replaced by rows "from before the chain": refused now.
        plain
            .execute_batch(
                "DROP TRIGGER audit_log_no_delete; DROP TRIGGER audit_log_chained_insert;
                 DELETE FROM audit_log; DELETE FROM meta WHERE name = 'audit_chain_key';",
            )
            .unwrap();
        plain.execute(ROW, rusqlite::params![1, Option::<Vec<u8>>::None]).unwrap();
        plain.execute_batch(&format!("{}; {}", TRIGGERS[1].1, TRIGGERS[2].1)).unwrap();
        let check = broken(&catalog, &rotated);
        assert!(check.problem.unwrap().contains("commits"));
    }
}
