//! The data directory: where the manifest, segments and scratch space live, the
//! lock that admits one writer at a time, and how its keys are found (they live
//! outside it: [`crate::keyring`]).
//!
//! ```text
//! DATA/
//!   MANIFEST          current generation (JSON), replaced atomically
//!   segments/         immutable segment files, named by kind and content hash
//!   tmp/              ingest scratch (sorted runs); emptied by the next writer
//!   damaged/          segments `leakwatch repair` set aside, each with a note
//!   LOCK              held (flock) by the one writer
//! ```

use std::fs::{self, File};
use std::path::{Path, PathBuf};

use leakwatch_segment::Kind;

use crate::crypt::Keys;
use crate::error::{Result, StoreError};
use crate::keyring;
use crate::manifest::Manifest;

pub const SEGMENTS: &str = "segments";
pub const TMP: &str = "tmp";
/// Where `leakwatch repair` puts damaged segments.
pub const DAMAGED: &str = "damaged";
/// What a data directory may hold before its first manifest: the layout, the
/// writer's scratch and lock, the catalog (with SQLite's `-wal`, `-journal`
/// files), a sync's staging area.
const STORE_ENTRIES: [&str; 9] =
    ["MANIFEST", "MANIFEST.tmp", SEGMENTS, TMP, DAMAGED, "LOCK", "catalog.sqlite", "sync", LEGACY_KEY_FILE];
/// Where directories written before key rings kept their index key.
const LEGACY_KEY_FILE: &str = "index.key";

/// The kinds whose keys (and sealed payloads) the index key blinds: unreadable
/// without it, and rewritten when it changes.
pub(crate) const BLINDED: [Kind; 8] = [
    Kind::Accounts,
    Kind::Domains,
    Kind::Stealer,
    Kind::StealerEmails,
    Kind::Credentials,
    Kind::NtlmCredentials,
    Kind::CredentialKeys,
    Kind::NtlmCredentialKeys,
];

/// Paths of one data directory.
#[derive(Debug, Clone)]
pub struct DataDir {
    root: PathBuf,
}

impl DataDir {
    pub fn new(root: impl Into<PathBuf>) -> DataDir {
        DataDir { root: root.into() }
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    pub fn segments(&self) -> PathBuf {
        self.root.join(SEGMENTS)
    }

    pub fn tmp(&self) -> PathBuf {
        self.root.join(TMP)
    }

    pub fn damaged(&self) -> PathBuf {
        self.root.join(DAMAGED)
    }

    /// Creates the directory layout if it is missing. A directory that holds
    /// other files and no store is refused ([`DataDir::check_creatable`]).
    pub fn create(&self) -> Result<()> {
        self.check_creatable()?;
        for dir in [self.root.clone(), self.segments(), self.tmp()] {
            create_private_dir(&dir)?;
        }
        Ok(())
    }

    /// Whether a writer may make a store here: the directory holds one, or is
    /// missing, or holds only what a writer leaves before its first manifest
    /// (a killed first ingest, a sync's staging). A mistyped `--data` pointing
    /// at a home or project directory gets an error, not a store among its files.
    pub fn check_creatable(&self) -> Result<()> {
        if self.exists() {
            return Ok(());
        }
        let entries = match fs::read_dir(&self.root) {
            Ok(entries) => entries,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotADirectory => {
                return Err(StoreError::NoStore { path: self.root.clone(), reason: "not a directory" })
            }
            Err(e) => return Err(StoreError::io(&self.root, e)),
        };
        for entry in entries {
            let entry = entry.map_err(|e| StoreError::io(&self.root, e))?;
            let name = entry.file_name();
            let name = name.to_string_lossy();
            if !STORE_ENTRIES.iter().any(|e| name == *e || name.starts_with(&format!("{e}-"))) {
                return Err(StoreError::NotEmpty { path: self.root.clone(), found: name.into_owned() });
            }
        }
        Ok(())
    }

    /// Whether this looks like a leakwatch data directory at all.
    pub fn exists(&self) -> bool {
        self.root.join(crate::manifest::MANIFEST).is_file()
    }

    /// `Ok` when the directory holds a store (a manifest), else the error
    /// saying why it does not.
    pub fn check_store(&self) -> Result<()> {
        if self.exists() {
            Ok(())
        } else {
            Err(self.no_store())
        }
    }

    /// The error of reading a directory that holds no store.
    pub(crate) fn no_store(&self) -> StoreError {
        let reason = match fs::metadata(&self.root) {
            Err(_) => "no such directory",
            Ok(m) if !m.is_dir() => "not a directory",
            Ok(_) => "no MANIFEST",
        };
        StoreError::NoStore { path: self.root.clone(), reason }
    }

    /// The keys to read `manifest`'s generation with: from the key ring (see
    /// [`crate::keyring`]) for a keyed directory, from `index.key` for one written
    /// before key rings. `None` when the directory has no key at all yet.
    pub fn keys(&self, manifest: &Manifest) -> Result<Option<Keys>> {
        let Some(id) = &manifest.key_id else { return self.legacy_keys() };
        match keyring::find(&manifest.dir_id, manifest.key_file.as_deref())? {
            Some((ring, source)) => ring.keys(id).map(Some).ok_or_else(|| {
                StoreError::Key(format!(
                    "wrong data key: {} was written with key {id}, but {source} holds {}",
                    self.root.display(),
                    ring.ids().join(", ")
                ))
            }),
            None => Err(StoreError::Key(format!(
                "the data key of {} (key {id}) is missing: looked for {}; set {} or {} to where it is",
                self.root.display(),
                keyring::key_file(&manifest.dir_id, manifest.key_file.as_deref())?.display(),
                keyring::ENV_KEY_FILE,
                keyring::ENV_KEY,
            ))),
        }
    }

    /// The keys a writer writes with. A directory that has none yet gets a data
    /// key (in the key ring found, or a new key file, named on stderr); one
    /// written before key rings has its `index.key` moved into the ring and its
    /// keyed segments rewritten sealed. The manifest is published keyed.
    pub fn writer_keys(&self, manifest: &mut Manifest, lock: &WriterLock) -> Result<Keys> {
        if manifest.key_id.is_some() {
            return Ok(self.keys(manifest)?.expect("a keyed manifest has keys"));
        }
        if manifest.dir_id.is_empty() {
            manifest.dir_id = keyring::new_dir_id()?;
        }
        let legacy_path = self.root.join(LEGACY_KEY_FILE);
        let legacy = self.legacy_keys()?;
        let blinded = BLINDED.map(Kind::name);
        let has_keyed = manifest.segments.iter().any(|s| blinded.contains(&s.kind.as_str()));
        if has_keyed && legacy.is_none() {
            return Err(StoreError::Key(format!(
                "{}: the index key is missing; without it the index cannot be read",
                legacy_path.display()
            )));
        }
        let legacy_index = match &legacy {
            Some(_) => Some(read_legacy_key(&legacy_path)?),
            None => None,
        };
        let ring = match keyring::find(&manifest.dir_id, manifest.key_file.as_deref())? {
            Some((ring, source)) => {
                if legacy_index.is_some() && ring.index_key() != legacy_index {
                    return Err(StoreError::Key(format!(
                        "{source}: this key ring was not made for {}, whose index key is {}",
                        self.root.display(),
                        legacy_path.display()
                    )));
                }
                ring
            }
            None => {
                let ring = keyring::KeyRing::generate(legacy_index)?;
                let path = keyring::key_file(&manifest.dir_id, manifest.key_file.as_deref())?;
                ring.save(&path)?;
                eprintln!(
                    "leakwatch: created the data key of {} in {} (keep it safe and out of backups of the \
                     data directory: without it the index cannot be read)",
                    self.root.display(),
                    path.display()
                );
                ring
            }
        };
        let keys = ring.keys(ring.newest_id()).expect("the ring's own key");
        match legacy {
            Some(old) if has_keyed => {
                crate::rekey::reseal(self, manifest, &old, &keys, lock)?;
            }
            _ => {
                manifest.format = crate::manifest::MANIFEST_FORMAT;
                manifest.key_id = keys.id().map(str::to_owned);
                manifest.store(&self.root)?;
            }
        }
        if legacy_index.is_some() {
            std::fs::remove_file(&legacy_path).map_err(|e| StoreError::io(&legacy_path, e))?;
            crate::manifest::sync_dir(&self.root)?;
            eprintln!(
                "leakwatch: moved the index key of {} out of it, into its key ring",
                self.root.display()
            );
        }
        Ok(keys)
    }

    /// The directory's keys, made (as a writer would) if it has none yet: for
    /// the audit log, which needs its keys before anything is ingested.
    pub fn ensure_keys(&self) -> Result<Keys> {
        let manifest = Manifest::load(&self.root)?;
        if let Some(m) = &manifest {
            if m.key_id.is_some() {
                return Ok(self.keys(m)?.expect("a keyed manifest has keys"));
            }
        }
        self.create()?;
        let lock = self.lock()?;
        let mut manifest = Manifest::load(&self.root)?.unwrap_or_else(Manifest::new);
        self.writer_keys(&mut manifest, &lock)
    }

    /// The audit keys of the directory's key ring (made, as a writer would, if
    /// it has none yet), oldest first.
    pub fn audit_roots(&self) -> Result<keyring::AuditRoots> {
        self.ensure_keys()?;
        let manifest = Manifest::load(&self.root)?.ok_or_else(|| self.no_store())?;
        let (ring, _) = keyring::find(&manifest.dir_id, manifest.key_file.as_deref())?
            .ok_or_else(|| StoreError::Key(format!("the key ring of {} vanished", self.root.display())))?;
        Ok(ring.audit_roots())
    }

    /// `leakwatch init`: creates the directory and its data key (in `key_file`,
    /// recorded in the manifest, or else where [`crate::keyring`] says), or
    /// checks the key of a directory that has one. Returns the key id, where the
    /// key is, and whether it was created now.
    pub fn init(&self, key_file: Option<&Path>) -> Result<(String, String, bool)> {
        self.create()?;
        let lock = self.lock()?;
        let mut manifest = Manifest::load(&self.root)?.unwrap_or_else(Manifest::new);
        let created = manifest.key_id.is_none();
        if created {
            if let Some(path) = key_file {
                let path = std::path::absolute(path).map_err(|e| StoreError::io(path, e))?;
                manifest.key_file = Some(path);
            }
        } else if let Some(path) = key_file {
            if manifest.key_file.as_deref() != Some(path) {
                return Err(StoreError::Key(format!(
                    "{} already has its data key (key {}); `leakwatch rekey` rotates it",
                    self.root.display(),
                    manifest.key_id.as_deref().unwrap_or("-")
                )));
            }
        }
        let keys = self.writer_keys(&mut manifest, &lock)?;
        let source = match keyring::find(&manifest.dir_id, manifest.key_file.as_deref())? {
            Some((_, source)) => source.to_string(),
            None => "-".into(),
        };
        Ok((keys.id().unwrap_or("-").to_owned(), source, created))
    }

    fn legacy_keys(&self) -> Result<Option<Keys>> {
        let path = self.root.join(LEGACY_KEY_FILE);
        if !path.exists() {
            return Ok(None);
        }
        Ok(Some(Keys::legacy(&read_legacy_key(&path)?)))
    }

    /// Takes the writer lock, without waiting: a second ingest fails fast with a
    /// clear message instead of queueing silently.
    pub fn lock(&self) -> Result<WriterLock> {
        let path = self.root.join("LOCK");
        let file = File::create(&path).map_err(|e| StoreError::io(&path, e))?;
        match file.try_lock() {
            Ok(()) => Ok(WriterLock { _file: file }),
            Err(fs::TryLockError::WouldBlock) => Err(StoreError::Locked { path: self.root.clone() }),
            Err(fs::TryLockError::Error(e)) => Err(StoreError::io(path, e)),
        }
    }

    /// Removes what a killed writer left behind: segment files no manifest names,
    /// and scratch files. Only a lock holder may call this.
    pub fn remove_orphans(&self, manifest: &Manifest, _lock: &WriterLock) -> Result<usize> {
        let mut removed = 0;
        let live: std::collections::HashSet<&str> =
            manifest.segments.iter().map(|s| s.file.as_str()).collect();
        let segments = self.segments();
        for entry in fs::read_dir(&segments).map_err(|e| StoreError::io(&segments, e))? {
            let entry = entry.map_err(|e| StoreError::io(&segments, e))?;
            let name = entry.file_name();
            if !live.contains(name.to_string_lossy().as_ref()) {
                fs::remove_file(entry.path()).map_err(|e| StoreError::io(entry.path(), e))?;
                removed += 1;
            }
        }
        let tmp = self.tmp();
        if tmp.exists() {
            fs::remove_dir_all(&tmp).map_err(|e| StoreError::io(&tmp, e))?;
        }
        create_private_dir(&tmp)?;
        Ok(removed)
    }
}

/// Proof that this process is the directory's one writer.
pub struct WriterLock {
    _file: File,
}

/// Creates `dir` (and missing parents) readable by its owner only: a data
/// directory holds the catalog, its audit log and the index. An existing
/// directory keeps its mode.
pub(crate) fn create_private_dir(dir: &Path) -> Result<()> {
    use std::os::unix::fs::DirBuilderExt;
    fs::DirBuilder::new().recursive(true).mode(0o700).create(dir).map_err(|e| StoreError::io(dir, e))
}

/// Reads the index key a directory written before key rings kept inside it.
fn read_legacy_key(path: &Path) -> Result<[u8; 32]> {
    let bytes = fs::read(path).map_err(|e| StoreError::io(path, e))?;
    bytes.as_slice().try_into().map_err(|_| StoreError::DataCorruption {
        path: path.to_owned(),
        detail: format!("index key is {} bytes, expected 32", bytes.len()),
    })
}
