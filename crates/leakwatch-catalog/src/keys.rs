//! API keys: created with 32 random bytes, shown once, stored as a hash.
//!
//! A key is `lw_` followed by 64 lower-case hex digits. The catalog keeps a
//! domain-separated BLAKE3 hash of the whole text; a presented key is hashed the
//! same way and found by its hash, and the final comparison is constant-time.
//! A fast hash is right here (unlike for passwords): the secret has 256 bits of
//! entropy, so there is nothing to guess.

use rand::TryRngCore;
use serde::Serialize;
use subtle::ConstantTimeEq;

use crate::db::{args, Db, Lock};
use crate::error::{CatalogError, Result};
use crate::{now, Catalog};

/// What a key may do (DESIGN.md §5).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Every search and every breach, sensitive ones included.
    Admin,
    /// Every search and every breach, sensitive ones included.
    Analyst,
    /// Only its own verified domains and the addresses on them; never a
    /// sensitive breach.
    Domain,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Admin => "admin",
            Role::Analyst => "analyst",
            Role::Domain => "domain",
        }
    }

    pub fn parse(s: &str) -> Option<Role> {
        Some(match s {
            "admin" => Role::Admin,
            "analyst" => Role::Analyst,
            "domain" => Role::Domain,
            _ => return None,
        })
    }
}

impl std::fmt::Display for Role {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.pad(self.as_str())
    }
}

/// The stored hash of a key.
pub type KeyHash = [u8; 32];

/// The hash under which a presented key is looked up.
pub fn hash_secret(secret: &str) -> KeyHash {
    let mut hasher = blake3::Hasher::new_derive_key("leakwatch 2026 api key v1");
    hasher.update(secret.as_bytes());
    *hasher.finalize().as_bytes()
}

/// A key as the catalog knows it: everything but the secret.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ApiKey {
    pub id: i64,
    pub name: String,
    /// The first characters of the secret, to tell keys apart in listings.
    pub prefix: String,
    pub role: Role,
    /// Verified domains, normalized and sorted. For a `domain` key they are all
    /// it may search; for other roles they are what `subscribeddomains` lists.
    pub domains: Vec<String>,
    /// Requests per minute; `None` for the server's default, `Some(0)` for none.
    pub rate_limit_per_minute: Option<u32>,
    pub created_at: String,
    pub revoked_at: Option<String>,
    #[serde(skip)]
    pub hash: KeyHash,
}

impl ApiKey {
    /// Whether `hash` is this key's hash, in constant time.
    pub fn matches(&self, hash: &KeyHash) -> bool {
        self.hash.ct_eq(hash).into()
    }

    /// Whether this key may search `domain` (normalized) and the addresses on it.
    pub fn allows_domain(&self, domain: &str) -> bool {
        match self.role {
            Role::Admin | Role::Analyst => true,
            Role::Domain => self.domains.iter().any(|d| d == domain),
        }
    }
}

/// What `apikey create` asks for.
#[derive(Debug, Clone)]
pub struct NewKey {
    pub name: String,
    pub role: Role,
    pub domains: Vec<String>,
    pub rate_limit_per_minute: Option<u32>,
}

/// A key just created: its record and the secret, which exists nowhere else.
#[derive(Debug)]
pub struct CreatedKey {
    pub key: ApiKey,
    pub secret: String,
}

const SECRET_PREFIX: &str = "lw_";
/// Characters of the secret kept for display: the `lw_` and 8 hex digits (32 of
/// its 256 bits), enough to tell keys apart and far too few to matter.
const DISPLAY_PREFIX_LEN: usize = SECRET_PREFIX.len() + 8;

impl Catalog {
    /// Creates a key. The name must be new (revoked keys keep theirs, so the
    /// audit log stays unambiguous); a `domain` key needs at least one domain.
    pub fn create_key(&mut self, new: &NewKey) -> Result<CreatedKey> {
        validate_name(&new.name)?;
        let mut domains = Vec::with_capacity(new.domains.len());
        for raw in &new.domains {
            let domain = leakwatch_types::normalize_domain(raw)
                .ok_or_else(|| CatalogError::Invalid(format!("{raw:?} is not a domain name")))?;
            domains.push(domain);
        }
        domains.sort();
        domains.dedup();
        if new.role == Role::Domain && domains.is_empty() {
            return Err(CatalogError::Invalid("a domain key needs at least one --domain".into()));
        }

        let mut bytes = [0u8; 32];
        rand::rngs::OsRng.try_fill_bytes(&mut bytes).map_err(|e| CatalogError::Io {
            path: self.path().to_owned(),
            source: std::io::Error::other(e),
        })?;
        let mut secret = String::with_capacity(SECRET_PREFIX.len() + 64);
        secret.push_str(SECRET_PREFIX);
        for b in bytes {
            secret.push_str(&format!("{b:02x}"));
        }
        let hash = hash_secret(&secret);
        let created_at = now();

        let tx = self.db.write(Lock::Catalog)?;
        let exists: bool = tx
            .query_one("SELECT EXISTS (SELECT 1 FROM api_keys WHERE name = ?1)", args![&new.name])?
            .get(0)?;
        if exists {
            return Err(CatalogError::Invalid(format!("a key named {:?} already exists", new.name)));
        }
        let id: i64 = tx
            .query_one(
                "INSERT INTO api_keys (name, key_hash, key_prefix, role, rate_limit_per_minute, created_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6) RETURNING id",
                args![
                    &new.name,
                    hash.as_slice(),
                    &secret[..DISPLAY_PREFIX_LEN],
                    new.role.as_str(),
                    new.rate_limit_per_minute,
                    &created_at
                ],
            )?
            .get(0)?;
        for domain in &domains {
            tx.execute("INSERT INTO api_key_domains (key_id, domain) VALUES (?1, ?2)", args![id, domain])?;
        }
        bump_keys_version(&tx)?;
        tx.commit()?;

        let key = ApiKey {
            id,
            name: new.name.clone(),
            prefix: secret[..DISPLAY_PREFIX_LEN].to_owned(),
            role: new.role,
            domains,
            rate_limit_per_minute: new.rate_limit_per_minute,
            created_at,
            revoked_at: None,
            hash,
        };
        Ok(CreatedKey { key, secret })
    }

    /// Every key, revoked ones included, in creation order.
    pub fn list_keys(&self) -> Result<Vec<ApiKey>> {
        self.keys(false)
    }

    /// The keys that may be used now: what a server loads.
    pub fn active_keys(&self) -> Result<Vec<ApiKey>> {
        self.keys(true)
    }

    fn keys(&self, active_only: bool) -> Result<Vec<ApiKey>> {
        let rows = self.db.query(
            "SELECT id, name, key_prefix, role, rate_limit_per_minute, created_at, revoked_at, key_hash
             FROM api_keys WHERE NOT ?1 OR revoked_at IS NULL ORDER BY id",
            args![active_only],
        )?;
        let mut keys = Vec::with_capacity(rows.len());
        for row in rows {
            let name: String = row.get(1)?;
            let role: String = row.get(3)?;
            let hash: Vec<u8> = row.get(7)?;
            let corrupt =
                |detail: String| CatalogError::DataCorruption { path: self.path().to_owned(), detail };
            let role = Role::parse(&role)
                .ok_or_else(|| corrupt(format!("key {name:?} has unknown role {role:?}")))?;
            let hash: KeyHash = hash
                .try_into()
                .map_err(|_| corrupt(format!("key {name:?} has a hash of the wrong length")))?;
            keys.push(ApiKey {
                id: row.get(0)?,
                name,
                prefix: row.get(2)?,
                role,
                domains: Vec::new(),
                rate_limit_per_minute: row.get(4)?,
                created_at: row.get(5)?,
                revoked_at: row.get(6)?,
                hash,
            });
        }
        for row in self.db.query("SELECT key_id, domain FROM api_key_domains ORDER BY key_id, domain", &[])? {
            let id: i64 = row.get(0)?;
            if let Some(key) = keys.iter_mut().find(|k| k.id == id) {
                key.domains.push(row.get(1)?);
            }
        }
        Ok(keys)
    }

    /// Revokes the key `name`; it stops working at once for new processes and
    /// within a poll interval for a running server.
    pub fn revoke_key(&mut self, name: &str) -> Result<ApiKey> {
        let tx = self.db.write(Lock::Catalog)?;
        let revoked: Option<Option<String>> = tx
            .query_opt("SELECT revoked_at FROM api_keys WHERE name = ?1", args![name])?
            .map(|r| r.get(0))
            .transpose()?;
        match revoked {
            None => return Err(CatalogError::Invalid(format!("no key named {name:?}"))),
            Some(Some(at)) => {
                return Err(CatalogError::Invalid(format!("key {name:?} was already revoked at {at}")))
            }
            Some(None) => {}
        }
        tx.execute("UPDATE api_keys SET revoked_at = ?1 WHERE name = ?2", args![now(), name])?;
        bump_keys_version(&tx)?;
        tx.commit()?;
        self.list_keys()?
            .into_iter()
            .find(|k| k.name == name)
            .ok_or_else(|| CatalogError::Invalid(format!("no key named {name:?}")))
    }

    /// A number that changes whenever a key is created or revoked: a server polls
    /// it and reloads its key table when it moves.
    pub fn keys_version(&self) -> Result<i64> {
        self.db.query_one("SELECT CAST(value AS BIGINT) FROM meta WHERE name = 'keys_version'", &[])?.get(0)
    }
}

fn bump_keys_version(db: &Db) -> Result<()> {
    db.execute("UPDATE meta SET value = CAST(value AS BIGINT) + 1 WHERE name = 'keys_version'", &[]).map(drop)
}
/// Key names appear in listings and the audit log: keep them short and plain.
fn validate_name(name: &str) -> Result<()> {
    let ok = !name.is_empty()
        && name.len() <= 64
        && name.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'@'));
    if ok {
        Ok(())
    } else {
        Err(CatalogError::Invalid(format!(
            "{name:?} is not a key name: use 1 to 64 letters, digits, '-', '_', '.' or '@'"
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn catalog() -> (tempfile::TempDir, Catalog) {
        let tmp = tempfile::tempdir().unwrap();
        let catalog = Catalog::open_in(tmp.path()).unwrap();
        (tmp, catalog)
    }

    fn new(name: &str, role: Role, domains: &[&str]) -> NewKey {
        NewKey {
            name: name.into(),
            role,
            domains: domains.iter().map(|d| d.to_string()).collect(),
            rate_limit_per_minute: None,
        }
    }

    #[test]
    fn a_created_key_is_stored_only_as_its_hash() {
        let (tmp, mut catalog) = catalog();
        let created = catalog.create_key(&new("ci", Role::Analyst, &[])).unwrap();
        assert!(created.secret.starts_with("lw_") && created.secret.len() == 67, "{}", created.secret);
        assert!(created.secret[3..].bytes().all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase()));
        let file = std::fs::read(tmp.path().join(crate::CATALOG_FILE)).unwrap();
        let wal = std::fs::read(tmp.path().join("catalog.sqlite-wal")).unwrap_or_default();
        for bytes in [&file, &wal] {
            assert!(!bytes.windows(64).any(|w| w == &created.secret.as_bytes()[3..]), "secret found on disk");
        }
        let keys = catalog.active_keys().unwrap();
        assert_eq!(keys.len(), 1);
        assert!(keys[0].matches(&hash_secret(&created.secret)));
        assert!(!keys[0].matches(&hash_secret("lw_00")));
        assert_eq!(keys[0], created.key);
    }

    #[test]
    fn domain_keys_need_valid_domains_and_names_are_unique() {
        crate::testing::each_backend(|location| {
            let mut catalog = Catalog::open_at(location).unwrap();
            let err = catalog.create_key(&new("d", Role::Domain, &[])).unwrap_err();
            assert!(err.to_string().contains("at least one --domain"), "{err}");
            let err = catalog.create_key(&new("d", Role::Domain, &["not a domain"])).unwrap_err();
            assert!(err.to_string().contains("not a domain name"), "{err}");
            let key = catalog
                .create_key(&new("d", Role::Domain, &["Example.COM", "b.org", "example.com"]))
                .unwrap();
            assert_eq!(key.key.domains, ["b.org", "example.com"]);
            assert!(key.key.allows_domain("example.com"));
            assert!(!key.key.allows_domain("other.com"));
            let err = catalog.create_key(&new("d", Role::Admin, &[])).unwrap_err();
            assert!(err.to_string().contains("already exists"), "{err}");
            assert!(catalog.create_key(&new("bad name", Role::Admin, &[])).is_err());
            assert_eq!(catalog.list_keys().unwrap()[0].domains, ["b.org", "example.com"]);
        });
    }

    #[test]
    fn revoking_removes_a_key_from_the_active_set_and_bumps_the_version() {
        crate::testing::each_backend(|location| {
            let mut catalog = Catalog::open_at(location).unwrap();
            let v0 = catalog.keys_version().unwrap();
            catalog.create_key(&new("a", Role::Admin, &[])).unwrap();
            catalog.create_key(&new("b", Role::Analyst, &[])).unwrap();
            let v1 = catalog.keys_version().unwrap();
            assert!(v1 > v0);
            let revoked = catalog.revoke_key("a").unwrap();
            assert!(revoked.revoked_at.is_some());
            assert!(catalog.keys_version().unwrap() > v1);
            let active: Vec<String> = catalog.active_keys().unwrap().into_iter().map(|k| k.name).collect();
            assert_eq!(active, ["b"]);
            assert_eq!(catalog.list_keys().unwrap().len(), 2);
            assert!(catalog.revoke_key("a").unwrap_err().to_string().contains("already revoked"));
            assert!(catalog.revoke_key("zzz").unwrap_err().to_string().contains("no key named"));
        });
    }
}
