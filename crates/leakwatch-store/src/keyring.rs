//! The key ring: the data directory's keys, held outside it.
//!
//! A ring is a small JSON document (`{"format": 1, "index": HEX, "keys": [{"id",
//! "key", "created"}], "audit": [{"id", "key", "created"}]}`, mode 0600 in a 0700
//! directory) with the directory's fixed index key, one data key (two while
//! `leakwatch rekey` runs) and its audit keys, oldest first (the last is the
//! one in use; `leakwatch rekey --audit` adds one). Each is random and
//! independent of the others. A ring written before audit keys of their own
//! has no `audit` list: its audit key is its index key, as it always was (and
//! its index key may derive from its first data key). A key file readable or
//! writable by anyone but its owner is refused. It is found, in this order, in:
//! 1. `LEAKWATCH_KEY`: the ring's JSON, or 64 hex digits of one data key (its
//!    index key then derives from it);
//! 2. `LEAKWATCH_KEY_COMMAND`: a command (run by `sh -c`) printing the same; the
//!    hook for a KMS or a secrets manager;
//! 3. `LEAKWATCH_KEY_FILE`: a key file;
//! 4. the key file the MANIFEST names (`leakwatch init --key-file`);
//! 5. `$XDG_CONFIG_HOME/leakwatch/keys/<data dir id>.key` (or `~/.config/...`),
//!    created on first use.

use std::path::{Path, PathBuf};

use rand::TryRngCore;
use serde::{Deserialize, Serialize};

use crate::crypt::{derive_index_key, key_id, Keys};
use crate::error::{Result, StoreError};

pub const ENV_KEY: &str = "LEAKWATCH_KEY";
pub const ENV_KEY_COMMAND: &str = "LEAKWATCH_KEY_COMMAND";
pub const ENV_KEY_FILE: &str = "LEAKWATCH_KEY_FILE";

#[derive(Clone, Serialize, Deserialize)]
pub struct KeyRing {
    pub format: u32,
    /// The index key, hex.
    pub index: String,
    pub keys: Vec<RingKey>,
    /// The audit keys (roots of the audit log's chain and subject keys), oldest
    /// first; empty in a ring from before they existed.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub audit: Vec<RingKey>,
}

impl Drop for KeyRing {
    fn drop(&mut self) {
        zeroize::Zeroize::zeroize(&mut self.index);
    }
}

#[derive(Clone, Serialize, Deserialize)]
pub struct RingKey {
    pub id: String,
    /// The key, hex.
    pub key: String,
    #[serde(default)]
    pub created: String,
}

impl Drop for RingKey {
    fn drop(&mut self) {
        zeroize::Zeroize::zeroize(&mut self.key);
    }
}

/// The roots of a ring's audit keys, oldest first (see
/// `leakwatch_catalog::AuditKey::from_root`), zeroized when dropped.
pub struct AuditRoots {
    pub roots: Vec<[u8; 32]>,
    /// The first root is the index key: a ring from before audit keys of
    /// their own, whose log may begin with rows from before the chain.
    pub from_index: bool,
}

impl Drop for AuditRoots {
    fn drop(&mut self) {
        for root in &mut self.roots {
            zeroize::Zeroize::zeroize(root);
        }
    }
}

impl std::fmt::Debug for AuditRoots {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AuditRoots")
            .field("keys", &self.roots.len())
            .field("from_index", &self.from_index)
            .finish()
    }
}

const AUDIT_ID_CONTEXT: &str = "leakwatch 2026-12 audit key id";

/// The public name of an audit key (as `leakwatch_catalog::AuditKey::id`).
pub fn audit_key_id(root: &[u8; 32]) -> String {
    hex(&blake3::derive_key(AUDIT_ID_CONTEXT, root)[..16])
}

/// Where a ring came from, for messages and for `rekey`, which can only update
/// a key file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RingSource {
    Env,
    Command,
    File(PathBuf),
}

impl std::fmt::Display for RingSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            RingSource::Env => write!(f, "${ENV_KEY}"),
            RingSource::Command => write!(f, "${ENV_KEY_COMMAND}"),
            RingSource::File(p) => write!(f, "{}", p.display()),
        }
    }
}

impl KeyRing {
    /// A new ring with a fresh data key, a fresh index key and a fresh audit
    /// key, each random. `index` is kept from an older data directory when
    /// migrating one; its audit log was chained under that index key, which
    /// then stays its audit key (no `audit` list) until `rekey --audit`.
    pub fn generate(index: Option<[u8; 32]>) -> Result<KeyRing> {
        let mut data = random_key()?;
        let (mut index, migrated) = match index {
            Some(index) => (index, true),
            None => (random_key()?, false),
        };
        let mut ring = KeyRing { format: 1, index: hex(&index), keys: Vec::new(), audit: Vec::new() };
        if !migrated {
            ring.push_audit(random_key()?);
        }
        ring.push(data);
        zeroize::Zeroize::zeroize(&mut data);
        zeroize::Zeroize::zeroize(&mut index);
        Ok(ring)
    }

    /// Adds `root` as the audit key in use from now on. A ring without audit
    /// keys first records its index key as the one used so far.
    pub fn push_audit(&mut self, mut root: [u8; 32]) {
        if self.audit.is_empty() && !self.keys.is_empty() {
            // A ring whose audit key was its index key: keep that one first, so
            // the rows chained under it still check.
            let mut index = self.index_key().expect("checked when parsed");
            if index != root {
                self.audit.push(RingKey {
                    id: audit_key_id(&index),
                    key: hex(&index),
                    created: String::new(),
                });
            }
            zeroize::Zeroize::zeroize(&mut index);
        }
        self.audit.push(RingKey {
            id: audit_key_id(&root),
            key: hex(&root),
            created: crate::clock::now_rfc3339(),
        });
        zeroize::Zeroize::zeroize(&mut root);
    }

    /// The audit keys' roots, oldest first: the index key for a ring without
    /// audit keys of its own.
    pub fn audit_roots(&self) -> AuditRoots {
        let index = self.index_key().expect("checked when parsed");
        if self.audit.is_empty() {
            return AuditRoots { roots: vec![index], from_index: true };
        }
        let roots: Vec<[u8; 32]> =
            self.audit.iter().map(|k| unhex(&k.key).expect("checked when parsed")).collect();
        let from_index = roots[0] == index;
        AuditRoots { roots, from_index }
    }

    pub fn push(&mut self, data: [u8; 32]) {
        let index = self.index_key().expect("checked when parsed");
        self.keys.push(RingKey {
            id: key_id(&index, &data),
            key: hex(&data),
            created: crate::clock::now_rfc3339(),
        });
    }

    pub fn index_key(&self) -> Option<[u8; 32]> {
        unhex(&self.index)
    }

    pub fn newest_id(&self) -> &str {
        &self.keys.last().expect("a ring holds a key").id
    }

    /// The keys with this id, if the ring holds it.
    pub fn keys(&self, id: &str) -> Option<Keys> {
        let index = self.index_key()?;
        let k = self.keys.iter().find(|k| k.id == id)?;
        Some(Keys::new(&index, &unhex(&k.key)?))
    }

    pub fn ids(&self) -> Vec<&str> {
        self.keys.iter().map(|k| k.id.as_str()).collect()
    }

    fn parse(text: &str, source: &RingSource) -> Result<KeyRing> {
        let text = text.trim();
        let bad = |detail: String| StoreError::Key(format!("{source}: {detail}"));
        if let Some(data) = unhex(text) {
            let mut ring = KeyRing {
                format: 1,
                index: hex(&derive_index_key(&data)),
                keys: Vec::new(),
                audit: Vec::new(),
            };
            ring.push(data);
            return Ok(ring);
        }
        let ring: KeyRing = serde_json::from_str(text)
            .map_err(|e| bad(format!("not a key ring (JSON) nor 64 hex digits: {e}")))?;
        if ring.format != 1 {
            return Err(bad(format!("key ring format {} is not 1", ring.format)));
        }
        if ring.index_key().is_none() || ring.keys.is_empty() {
            return Err(bad("a key ring needs an index key and at least one data key".into()));
        }
        for k in &ring.keys {
            let data = unhex(&k.key).ok_or_else(|| bad(format!("key {} is not 64 hex digits", k.id)))?;
            if key_id(&ring.index_key().expect("checked"), &data) != k.id {
                return Err(bad(format!("key {} does not match its id", k.id)));
            }
        }
        for k in &ring.audit {
            let root =
                unhex(&k.key).ok_or_else(|| bad(format!("audit key {} is not 64 hex digits", k.id)))?;
            if audit_key_id(&root) != k.id {
                return Err(bad(format!("audit key {} does not match its id", k.id)));
            }
        }
        Ok(ring)
    }

    /// Writes the ring to `path` atomically, readable by its owner only, in a
    /// directory only its owner can enter.
    pub fn save(&self, path: &Path) -> Result<()> {
        use std::io::Write;
        use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
        if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
            if !parent.exists() {
                std::fs::create_dir_all(parent).map_err(|e| StoreError::io(parent, e))?;
                std::fs::set_permissions(parent, std::fs::Permissions::from_mode(0o700))
                    .map_err(|e| StoreError::io(parent, e))?;
            }
        }
        let tmp = path.with_extension("key.tmp");
        let _ = std::fs::remove_file(&tmp);
        let mut file = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&tmp)
            .map_err(|e| StoreError::io(&tmp, e))?;
        let mut text =
            zeroize::Zeroizing::new(serde_json::to_string_pretty(self).expect("a ring serializes"));
        text.push('\n');
        file.write_all(text.as_bytes()).and_then(|_| file.sync_all()).map_err(|e| StoreError::io(&tmp, e))?;
        std::fs::rename(&tmp, path).map_err(|e| StoreError::io(path, e))?;
        if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
            crate::storage::sync_dir(parent)?;
        }
        Ok(())
    }
}

/// The default key file of a data directory with this id.
pub fn default_key_file(dir_id: &str) -> Result<PathBuf> {
    let base = std::env::var_os("XDG_CONFIG_HOME")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .or_else(|| {
            std::env::var_os("HOME").filter(|v| !v.is_empty()).map(|h| PathBuf::from(h).join(".config"))
        })
        .ok_or_else(|| {
            StoreError::Key(format!(
                "no place for the data key: set {ENV_KEY_FILE} (or HOME or XDG_CONFIG_HOME)"
            ))
        })?;
    Ok(base.join("leakwatch").join("keys").join(format!("{dir_id}.key")))
}

/// The ring from the environment, or else the key file `hint` (the MANIFEST's)
/// or the default one. `Ok(None)` when the key file does not exist yet.
pub fn find(dir_id: &str, hint: Option<&Path>) -> Result<Option<(KeyRing, RingSource)>> {
    if let Some(text) = std::env::var_os(ENV_KEY).filter(|v| !v.is_empty()) {
        let text = zeroize::Zeroizing::new(
            text.into_string().map_err(|_| StoreError::Key(format!("${ENV_KEY} is not UTF-8")))?,
        );
        return Ok(Some((KeyRing::parse(&text, &RingSource::Env)?, RingSource::Env)));
    }
    if let Some(command) = std::env::var_os(ENV_KEY_COMMAND).filter(|v| !v.is_empty()) {
        let output = std::process::Command::new("sh")
            .arg("-c")
            .arg(&command)
            .stdin(std::process::Stdio::null())
            .stderr(std::process::Stdio::inherit())
            .output()
            .map_err(|e| StoreError::Key(format!("${ENV_KEY_COMMAND}: cannot run: {e}")))?;
        if !output.status.success() {
            return Err(StoreError::Key(format!("${ENV_KEY_COMMAND} failed ({})", output.status)));
        }
        let text = zeroize::Zeroizing::new(
            String::from_utf8(output.stdout)
                .map_err(|_| StoreError::Key(format!("${ENV_KEY_COMMAND} printed no UTF-8")))?,
        );
        return Ok(Some((KeyRing::parse(&text, &RingSource::Command)?, RingSource::Command)));
    }
    let path = key_file(dir_id, hint)?;
    match read_private(&path) {
        Ok(text) => {
            let source = RingSource::File(path);
            Ok(Some((KeyRing::parse(&text, &source)?, source)))
        }
        Err(ReadError::Io(e)) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(ReadError::Io(e)) => Err(StoreError::io(path, e)),
        Err(ReadError::Owner(uid)) => Err(StoreError::Key(format!(
            "{}: the key ring belongs to another user (uid {uid}); only a ring of the user running \
             leakwatch (or root's) is used",
            path.display()
        ))),
        Err(ReadError::Open(mode)) => Err(StoreError::Key(format!(
            "{}: the key ring is open to others (mode {mode:03o}); only its owner may read it: \
             `chmod 600 {}` (and consider the keys in it exposed: `leakwatch rekey`, `leakwatch rekey --audit`)",
            path.display(),
            path.display()
        ))),
    }
}

enum ReadError {
    Io(std::io::Error),
    /// The file's permission bits grant group or others anything.
    Open(u32),
    /// Another (unprivileged) user owns the file: it could be theirs to swap.
    Owner(u32),
}

/// Reads a key file, refusing one that anyone but its owner may read or write.
/// The mode is checked on the open file, so it is the file read that is checked.
fn read_private(path: &Path) -> std::result::Result<zeroize::Zeroizing<String>, ReadError> {
    use std::io::Read;
    use std::os::unix::fs::MetadataExt;
    use std::os::unix::fs::PermissionsExt;
    let mut file = std::fs::File::open(path).map_err(ReadError::Io)?;
    let meta = file.metadata().map_err(ReadError::Io)?;
    let mode = meta.permissions().mode() & 0o777;
    if mode & 0o077 != 0 {
        return Err(ReadError::Open(mode));
    }
    // SAFETY: geteuid cannot fail and touches no memory.
    let me = unsafe { libc::geteuid() };
    if meta.uid() != me && meta.uid() != 0 {
        return Err(ReadError::Owner(meta.uid()));
    }
    let mut text = zeroize::Zeroizing::new(String::new());
    file.read_to_string(&mut text).map_err(ReadError::Io)?;
    Ok(text)
}

/// The key file a writer creates or updates: `LEAKWATCH_KEY_FILE`, the hint or
/// the default.
pub fn key_file(dir_id: &str, hint: Option<&Path>) -> Result<PathBuf> {
    if let Some(path) = std::env::var_os(ENV_KEY_FILE).filter(|v| !v.is_empty()) {
        return Ok(PathBuf::from(path));
    }
    match hint {
        Some(p) => Ok(p.to_owned()),
        None => default_key_file(dir_id),
    }
}

pub fn random_key() -> Result<[u8; 32]> {
    let mut key = [0u8; 32];
    rand::rngs::OsRng
        .try_fill_bytes(&mut key)
        .map_err(|e| StoreError::Key(format!("the system's random source failed: {e}")))?;
    Ok(key)
}

/// A fresh data directory id: 16 random bytes, hex.
pub fn new_dir_id() -> Result<String> {
    Ok(hex(&random_key()?[..16]))
}

fn hex(bytes: &[u8]) -> String {
    leakwatch_types::encode_hex_upper(bytes).to_ascii_lowercase()
}

fn unhex(text: &str) -> Option<[u8; 32]> {
    leakwatch_types::decode_hex::<32>(text.as_bytes())
}
