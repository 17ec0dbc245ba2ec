//! Organizations: their domains, their directory of accounts and their alert
//! destinations, with the tables' own migrations.
//!
//! These tables version themselves apart from `schema.rs` (the `orgs_version`
//! row of `meta`), so that they and the core tables can grow independently.
//!
//! A directory is kept as the caller hands it: its account counts and one
//! sealed blob (every account's address, user name, disabled state, a keyed
//! hash of its password and what the import found out about it). The catalog
//! holds no key and no address in clear: the CLI seals with keys from the key
//! ring. The NT hash itself is never stored: it is password-equivalent on a
//! Windows network.

use rusqlite::{params, OptionalExtension, TransactionBehavior};
use serde::Serialize;

use crate::error::{CatalogError, Result};
use crate::Catalog;

/// Migration `i` brings the organization tables from version `i` to `i + 1`.
const MIGRATIONS: &[&str] = &[
    r#"
CREATE TABLE organizations (
    id                    INTEGER PRIMARY KEY,
    name                  TEXT NOT NULL UNIQUE,
    created_at            TEXT NOT NULL,
    -- The last directory import: when, from what, and the store generation
    -- and highest breach id its password findings were made against.
    directory_imported_at TEXT,
    directory_source      TEXT,
    checked_generation    INTEGER,
    checked_breach_id     INTEGER
) STRICT;

CREATE TABLE organization_domains (
    org_id   INTEGER NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
    domain   TEXT NOT NULL,
    position INTEGER NOT NULL,
    PRIMARY KEY (org_id, domain)
) STRICT;

CREATE TABLE organization_alerts (
    id         INTEGER PRIMARY KEY,
    org_id     INTEGER NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
    kind       TEXT NOT NULL CHECK (kind IN ('webhook', 'mail', 'ldap-reset')),
    target     TEXT NOT NULL,
    created_at TEXT NOT NULL
) STRICT;

-- An organization's directory: read, replaced and removed whole, so one
-- row: its account counts, and the accounts sealed together by the caller
-- (addresses, user names, keyed password hashes, findings), opaque here.
CREATE TABLE directories (
    org_id   INTEGER PRIMARY KEY REFERENCES organizations (id) ON DELETE CASCADE,
    accounts INTEGER NOT NULL,
    disabled INTEGER NOT NULL,
    sealed   BLOB NOT NULL
) STRICT;
"#,
    r#"
-- Alert destinations' settings (JSON, opaque here: a webhook's URL options, a
-- mail relay's URL without its password) and secrets (the webhook's signing
-- secret, the relay's password), sealed by the caller.
ALTER TABLE organization_alerts ADD COLUMN settings TEXT NOT NULL DEFAULT '{}';
ALTER TABLE organization_alerts ADD COLUMN sealed_secret BLOB;

-- The store generation the monitor last compared the organization with.
ALTER TABLE organizations ADD COLUMN alert_generation INTEGER;

-- What was already recorded for the organization (alerted, or in its baseline):
-- keyed hashes of (account, breach) pairs, never the pairs themselves.
CREATE TABLE alert_seen (
    org_id INTEGER NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
    mac    BLOB NOT NULL,
    PRIMARY KEY (org_id, mac)
) STRICT, WITHOUT ROWID;

-- The outbox: one row per batch (organization, generation) and destination,
-- its delivery id fixed here and its payload sealed by the caller. Attempts
-- and the next attempt's time survive restarts.
CREATE TABLE alert_outbox (
    id              INTEGER PRIMARY KEY,
    alert_id        INTEGER NOT NULL REFERENCES organization_alerts (id) ON DELETE CASCADE,
    delivery_id     TEXT NOT NULL UNIQUE,
    generation      INTEGER NOT NULL,
    exposures       INTEGER NOT NULL,
    sealed          BLOB NOT NULL,
    created_at_ms   INTEGER NOT NULL,
    attempts        INTEGER NOT NULL DEFAULT 0,
    next_attempt_ms INTEGER NOT NULL,
    last_error      TEXT,
    delivered_at    TEXT,
    given_up_at     TEXT
) STRICT;

CREATE INDEX alert_outbox_pending ON alert_outbox (next_attempt_ms)
    WHERE delivered_at IS NULL AND given_up_at IS NULL;
"#,
];

const VERSION_ROW: &str = "orgs_version";

pub(crate) fn migrate(catalog: &mut Catalog) -> Result<()> {
    crate::migrate_set(catalog, VERSION_ROW, MIGRATIONS)
}

/// An organization as `org list` and `org show` print it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Organization {
    pub name: String,
    /// In the order given; the first gives addresses to accounts without one.
    pub domains: Vec<String>,
    pub created_at: String,
    pub accounts: u64,
    pub disabled_accounts: u64,
    pub directory: Option<DirectoryImport>,
    pub alerts: Vec<AlertDestination>,
}

/// What the last directory import recorded.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DirectoryImport {
    pub imported_at: String,
    /// `csv`, `pwdump`, or the kind of LDAP server read (`ldap/openldap`,
    /// `ldap/active-directory`), which `reset` acts on.
    pub source: String,
    /// The store generation the password findings were made against.
    pub checked_generation: u64,
    /// The highest breach id then: later breaches were not checked.
    pub checked_breach_id: u32,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AlertDestination {
    /// What `org alert NAME --remove ID` names it by.
    pub id: i64,
    /// `webhook` or `mail`.
    pub kind: String,
    /// The webhook's URL, or the mail's recipient.
    pub target: String,
    pub created_at: String,
    /// Batches in the outbox: waiting (or being retried), delivered, and given
    /// up on after the retry window.
    pub pending: u64,
    pub delivered: u64,
    pub given_up: u64,
}

/// A directory as the catalog keeps it: counts, and the accounts sealed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SealedDirectory {
    pub accounts: u64,
    pub disabled: u64,
    pub sealed: Vec<u8>,
}

/// What replacing a directory changed (worked out by the caller, which can
/// open the previous one).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct DirectoryChange {
    pub accounts: u64,
    pub added: u64,
    pub removed: u64,
    /// Accounts whose password hash differs from the previous import's.
    pub password_changed: u64,
}

/// Organization names: what `org` commands and reports show.
fn validate_name(name: &str) -> Result<()> {
    let ok = !name.is_empty()
        && name.len() <= 64
        && name.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'));
    if ok {
        Ok(())
    } else {
        Err(CatalogError::Invalid(format!(
            "{name:?} is not an organization name: 1 to 64 ASCII letters, digits, '-', '_' or '.'"
        )))
    }
}

impl Catalog {
    /// Adds an organization with its domains (normalized by the caller).
    pub fn add_organization(&mut self, name: &str, domains: &[String]) -> Result<Organization> {
        validate_name(name)?;
        if domains.is_empty() {
            return Err(CatalogError::Invalid("an organization needs at least one --domain".into()));
        }
        let now = crate::now();
        let path = self.path.clone();
        let sql = |e| CatalogError::Sql { path: path.clone(), source: e };
        let tx = self.conn.transaction_with_behavior(TransactionBehavior::Immediate).map_err(sql)?;
        let exists: Option<i64> = tx
            .query_row("SELECT id FROM organizations WHERE name = ?1", [name], |r| r.get(0))
            .optional()
            .map_err(sql)?;
        if exists.is_some() {
            return Err(CatalogError::Invalid(format!("organization {name:?} exists already")));
        }
        let result = (|| {
            tx.execute("INSERT INTO organizations (name, created_at) VALUES (?1, ?2)", params![name, now])?;
            let id = tx.last_insert_rowid();
            let mut position = 0i64;
            for domain in domains {
                position += 1;
                tx.execute(
                    "INSERT OR IGNORE INTO organization_domains (org_id, domain, position) VALUES (?1, ?2, ?3)",
                    params![id, domain, position],
                )?;
            }
            tx.commit()
        })();
        result.map_err(sql)?;
        Ok(self.organization(name)?.expect("just added"))
    }

    /// Every organization, sorted by name.
    pub fn organizations(&self) -> Result<Vec<Organization>> {
        let read = || -> rusqlite::Result<Vec<String>> {
            let mut stmt = self.conn.prepare("SELECT name FROM organizations ORDER BY name")?;
            let rows = stmt.query_map([], |r| r.get(0))?;
            rows.collect()
        };
        let names = read().map_err(|e| self.sql(e))?;
        let mut out = Vec::with_capacity(names.len());
        for name in names {
            out.extend(self.organization(&name)?);
        }
        Ok(out)
    }

    /// One organization, or `None`.
    pub fn organization(&self, name: &str) -> Result<Option<Organization>> {
        let read = || -> rusqlite::Result<Option<Organization>> {
            type Row = (i64, String, Option<String>, Option<String>, Option<i64>, Option<i64>);
            let row: Option<Row> = self
                .conn
                .query_row(
                    "SELECT id, created_at, directory_imported_at, directory_source, checked_generation, \
                     checked_breach_id FROM organizations WHERE name = ?1",
                    [name],
                    |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?, r.get(5)?)),
                )
                .optional()?;
            let Some((id, created_at, imported_at, source, generation, breach_id)) = row else {
                return Ok(None);
            };
            let mut stmt = self
                .conn
                .prepare("SELECT domain FROM organization_domains WHERE org_id = ?1 ORDER BY position")?;
            let domains = stmt.query_map([id], |r| r.get(0))?.collect::<rusqlite::Result<Vec<String>>>()?;
            let mut stmt = self.conn.prepare(
                "SELECT a.id, a.kind, a.target, a.created_at, \
                 (SELECT count(*) FROM alert_outbox b WHERE b.alert_id = a.id \
                  AND b.delivered_at IS NULL AND b.given_up_at IS NULL), \
                 (SELECT count(*) FROM alert_outbox b WHERE b.alert_id = a.id AND b.delivered_at IS NOT NULL), \
                 (SELECT count(*) FROM alert_outbox b WHERE b.alert_id = a.id AND b.given_up_at IS NOT NULL) \
                 FROM organization_alerts a WHERE a.org_id = ?1 ORDER BY a.id",
            )?;
            let alerts = stmt
                .query_map([id], |r| {
                    Ok(AlertDestination {
                        id: r.get(0)?,
                        kind: r.get(1)?,
                        target: r.get(2)?,
                        created_at: r.get(3)?,
                        pending: r.get::<_, i64>(4)? as u64,
                        delivered: r.get::<_, i64>(5)? as u64,
                        given_up: r.get::<_, i64>(6)? as u64,
                    })
                })?
                .collect::<rusqlite::Result<Vec<_>>>()?;
            let (accounts, disabled): (i64, i64) = self.conn.query_row(
                "SELECT coalesce(sum(accounts), 0), coalesce(sum(disabled), 0) FROM directories WHERE org_id = ?1",
                [id],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )?;
            let directory = match (imported_at, source) {
                (Some(imported_at), Some(source)) => Some(DirectoryImport {
                    imported_at,
                    source,
                    checked_generation: generation.unwrap_or(0) as u64,
                    checked_breach_id: breach_id.unwrap_or(0) as u32,
                }),
                _ => None,
            };
            Ok(Some(Organization {
                name: name.to_owned(),
                domains,
                created_at,
                accounts: accounts as u64,
                disabled_accounts: disabled as u64,
                directory,
                alerts,
            }))
        };
        read().map_err(|e| self.sql(e))
    }

    /// Removes an organization with its domains, directory and alerts; false
    /// when there is none of that name.
    pub fn remove_organization(&mut self, name: &str) -> Result<bool> {
        let n = self
            .conn
            .execute("DELETE FROM organizations WHERE name = ?1", [name])
            .map_err(|e| self.sql(e))?;
        Ok(n > 0)
    }

    /// Replaces an organization's directory, recording the import (`source`,
    /// and the store generation and highest breach id the findings were made
    /// against).
    pub fn replace_directory(
        &mut self,
        org: &str,
        directory: &SealedDirectory,
        source: &str,
        checked_generation: u64,
        checked_breach_id: u32,
    ) -> Result<()> {
        let now = crate::now();
        let path = self.path.clone();
        let sql = |e| CatalogError::Sql { path: path.clone(), source: e };
        let tx = self.conn.transaction_with_behavior(TransactionBehavior::Immediate).map_err(sql)?;
        let result = (|| -> rusqlite::Result<bool> {
            let Some(id): Option<i64> = tx
                .query_row("SELECT id FROM organizations WHERE name = ?1", [org], |r| r.get(0))
                .optional()?
            else {
                return Ok(false);
            };
            tx.execute(
                "INSERT INTO directories (org_id, accounts, disabled, sealed) VALUES (?1, ?2, ?3, ?4) \
                 ON CONFLICT (org_id) DO UPDATE SET accounts = excluded.accounts, \
                 disabled = excluded.disabled, sealed = excluded.sealed",
                params![id, directory.accounts as i64, directory.disabled as i64, directory.sealed],
            )?;
            tx.execute(
                "UPDATE organizations SET directory_imported_at = ?2, directory_source = ?3, \
                 checked_generation = ?4, checked_breach_id = ?5 WHERE id = ?1",
                params![id, now, source, checked_generation as i64, i64::from(checked_breach_id)],
            )?;
            tx.commit()?;
            Ok(true)
        })();
        match result {
            Ok(true) => Ok(()),
            Ok(false) => {
                Err(CatalogError::Invalid(format!("no organization {org:?} (see `leakwatch org list`)")))
            }
            Err(e) => Err(sql(e)),
        }
    }

    /// An organization's directory, if one was imported.
    pub fn directory(&self, org: &str) -> Result<Option<SealedDirectory>> {
        self.conn
            .query_row(
                "SELECT d.accounts, d.disabled, d.sealed FROM directories d \
                 JOIN organizations o ON o.id = d.org_id WHERE o.name = ?1",
                [org],
                |r| {
                    Ok(SealedDirectory {
                        accounts: r.get::<_, i64>(0)? as u64,
                        disabled: r.get::<_, i64>(1)? as u64,
                        sealed: r.get(2)?,
                    })
                },
            )
            .optional()
            .map_err(|e| self.sql(e))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn organizations_round_trip_and_directories_are_replaced() {
        let tmp = tempfile::tempdir().unwrap();
        let mut c = Catalog::open_in(tmp.path()).unwrap();
        let domains = vec!["corp.example".to_owned(), "corp.example.net".to_owned()];
        let org = c.add_organization("acme", &domains).unwrap();
        assert_eq!(org.domains, domains);
        assert!(org.directory.is_none());
        assert!(c.add_organization("acme", &domains).is_err());
        assert!(c.add_organization("bad name", &domains).is_err());
        assert!(c.add_organization("nodomain", &[]).is_err());

        assert_eq!(c.directory("acme").unwrap(), None);
        let first = SealedDirectory { accounts: 2, disabled: 1, sealed: vec![1, 2, 3] };
        c.replace_directory("acme", &first, "csv", 7, 3).unwrap();
        assert_eq!(c.directory("acme").unwrap().as_ref(), Some(&first));
        let second = SealedDirectory { accounts: 3, disabled: 0, sealed: vec![4; 100] };
        c.replace_directory("acme", &second, "pwdump", 8, 4).unwrap();
        assert_eq!(c.directory("acme").unwrap().as_ref(), Some(&second));
        let org = c.organization("acme").unwrap().unwrap();
        assert_eq!((org.accounts, org.disabled_accounts), (3, 0));
        let import = org.directory.unwrap();
        assert_eq!(
            (import.source.as_str(), import.checked_generation, import.checked_breach_id),
            ("pwdump", 8, 4)
        );
        assert!(c.replace_directory("nobody", &second, "csv", 1, 1).is_err());

        drop(c);
        let mut c = Catalog::open_in(tmp.path()).unwrap();
        assert_eq!(c.organizations().unwrap().len(), 1);
        assert!(c.remove_organization("acme").unwrap());
        assert!(!c.remove_organization("acme").unwrap());
        assert_eq!(c.directory("acme").unwrap(), None);
    }
}
