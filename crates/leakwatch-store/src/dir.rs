//! The data directory: where the manifest, segments and scratch space live, the
//! lock that admits one writer at a time, and how its keys are found (they live
//! outside it: [`crate::keyring`]). The manifest, the segments and the lock are
//! reached through the directory's [`Storage`] ([`LocalDisk`] unless a caller
//! gives another); the scratch space is always local.
//!
//! ```text
//! DATA/
//!   MANIFEST          current generation (JSON), replaced atomically
//!   segments/         immutable segment files, named by kind and content hash
//!   tmp/              ingest scratch (sorted runs); emptied by the next writer
//!   damaged/          segments `leakwatch repair` set aside, each with a note
//!   LOCK              held (flock) by the one writer
//! ```

use std::fs;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use leakwatch_segment::{Kind, MAX_ENTRIES, MAX_HEAP_BYTES};

use crate::crypt::Keys;
use crate::error::{Result, StoreError};
use crate::keyring;
use crate::manifest::Manifest;
pub(crate) use crate::storage::local::create_private_dir;
pub use crate::storage::WriterLock;
use crate::storage::{LocalDisk, Storage};

pub use crate::storage::local::SEGMENTS;
pub const TMP: &str = "tmp";
/// Where `leakwatch repair` puts damaged segments.
pub const DAMAGED: &str = "damaged";
/// What a data directory may hold before its first manifest: the layout, the
/// writer's scratch and lock, the catalog (with SQLite's `-wal`, `-journal`
/// files), a sync's staging area, a distributed ingest's shared area.
const STORE_ENTRIES: [&str; 10] = [
    "MANIFEST",
    "MANIFEST.tmp",
    SEGMENTS,
    TMP,
    DAMAGED,
    "LOCK",
    CATALOG_FILE,
    "sync",
    LEGACY_KEY_FILE,
    "ingest",
];
/// The SQLite catalog's name in a data directory (`leakwatch_catalog::CATALOG_FILE`).
const CATALOG_FILE: &str = "catalog.sqlite";
/// Where directories written before key rings kept their index key.
pub(crate) const LEGACY_KEY_FILE: &str = "index.key";

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

/// Where a segment is full, and where compaction's lowest size tier ends
/// (`crate::compact`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct SegmentLimits {
    pub entries: u64,
    /// Payload bytes in one segment's heap.
    pub heap_bytes: u64,
    /// Segments smaller than this times the tier factor share compaction's
    /// lowest tier.
    pub tier_base_bytes: u64,
}

impl SegmentLimits {
    /// The format's own limits: what every store writes with, unless a test
    /// asks for smaller ones ([`DataDir::with_segment_limits`]).
    pub(crate) const FORMAT: SegmentLimits =
        SegmentLimits { entries: MAX_ENTRIES, heap_bytes: MAX_HEAP_BYTES, tier_base_bytes: 8 << 20 };
}

/// Paths of one data directory, and the storage its store is kept in.
#[derive(Debug, Clone)]
pub struct DataDir {
    root: PathBuf,
    storage: Arc<dyn Storage>,
    /// Where writers roll over to a new segment: the format's limits, but
    /// for tests.
    segment_limits: SegmentLimits,
}

impl DataDir {
    /// The data directory `root`, its store in the directory itself.
    pub fn new(root: impl Into<PathBuf>) -> DataDir {
        let root = root.into();
        DataDir { storage: Arc::new(LocalDisk::new(&root)), root, segment_limits: SegmentLimits::FORMAT }
    }

    /// A data directory whose store (manifest, segments, lock) is kept in
    /// `storage`; `root` holds what is always local (scratch space, the key
    /// of a directory written before key rings).
    pub fn with_storage(root: impl Into<PathBuf>, storage: Arc<dyn Storage>) -> DataDir {
        DataDir { root: root.into(), storage, segment_limits: SegmentLimits::FORMAT }
    }

    /// For tests only: this directory with writers that roll over to a new
    /// segment at `entries` entries or `heap_bytes` of payloads instead of
    /// the format's limits (2^32 - 1 entries, 4 GiB), and with compaction's
    /// lowest size tier ending at `tier_base_bytes` times the tier factor
    /// instead of 8 MiB times it, sizes no test reaches. Answers must not
    /// change; only the number of segments does.
    #[doc(hidden)]
    pub fn with_segment_limits(mut self, entries: u64, heap_bytes: u64, tier_base_bytes: u64) -> DataDir {
        self.segment_limits = SegmentLimits {
            entries: entries.max(1),
            heap_bytes: heap_bytes.max(255),
            tier_base_bytes: tier_base_bytes.max(1),
        };
        self
    }

    pub(crate) fn segment_limits(&self) -> SegmentLimits {
        self.segment_limits
    }

    /// Where the store is, for messages: its `s3://` URL, or the directory.
    pub fn location(&self) -> String {
        self.storage.location().unwrap_or_else(|| self.root.display().to_string())
    }

    /// Where the store's objects are.
    pub fn storage(&self) -> &dyn Storage {
        &*self.storage
    }

    /// The manifest in force, or `None` when the directory holds no store.
    pub fn manifest(&self) -> Result<Option<Manifest>> {
        Ok(Manifest::load_from(self.storage())?.map(|(m, _)| m))
    }

    pub(crate) fn shared_storage(&self) -> Arc<dyn Storage> {
        Arc::clone(&self.storage)
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
        // A bucket's prefix holds only what the store puts there; its local
        // root is scratch space of the cache.
        if self.exists() || self.storage.location().is_some() {
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
        self.storage.has_manifest()
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
        if let Some(location) = self.storage.location() {
            return StoreError::NoStore { path: location.into(), reason: "no manifest" };
        }
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
                    self.location(),
                    ring.ids().join(", ")
                ))
            }),
            None => Err(StoreError::Key(format!(
                "the data key of {} (key {id}) is missing: looked for {}; set {} or {} to where it is",
                self.location(),
                keyring::key_file(&manifest.dir_id, manifest.key_file.as_deref())?.display(),
                keyring::ENV_KEY_FILE,
                keyring::ENV_KEY,
            ))),
        }
    }

    pub(crate) fn legacy_keys(&self) -> Result<Option<Keys>> {
        let path = self.root.join(LEGACY_KEY_FILE);
        if !path.exists() {
            return Ok(None);
        }
        Ok(Some(Keys::legacy(&read_legacy_key(&path)?)))
    }

    /// Takes the writer lock, without waiting: a second ingest fails fast with a
    /// clear message instead of queueing silently.
    pub fn lock(&self) -> Result<WriterLock> {
        self.storage.lock()
    }

    /// Removes what a killed writer left behind: objects no manifest names
    /// (finished or not), and scratch files. Only a lock holder may call this.
    pub fn remove_orphans(&self, manifest: &Manifest, _lock: &WriterLock) -> Result<usize> {
        let live: std::collections::HashSet<&str> =
            manifest.segments.iter().map(|s| s.file.as_str()).collect();
        let mut removed = 0;
        for name in self.storage.list()? {
            if !live.contains(name.as_str()) {
                match self.storage.delete(&name) {
                    Ok(()) => removed += 1,
                    // Gone already: an object store's listing may lag a
                    // moment behind its deletes.
                    Err(StoreError::Io { source, .. }) if source.kind() == std::io::ErrorKind::NotFound => {}
                    Err(e) => return Err(e),
                }
            }
        }
        // A distributed ingest holds the lock while it runs: what is left in
        // the shared area now is a dead one's.
        if let Some(blobs) = self.storage.blobs() {
            let names = blobs.list("")?;
            blobs.delete_all(&names)?;
            removed += names.len();
        }
        let tmp = self.tmp();
        if tmp.exists() {
            fs::remove_dir_all(&tmp).map_err(|e| StoreError::io(&tmp, e))?;
        }
        create_private_dir(&tmp)?;
        Ok(removed)
    }
}

/// Reads the index key a directory written before key rings kept inside it.
pub(crate) fn read_legacy_key(path: &Path) -> Result<[u8; 32]> {
    let bytes = fs::read(path).map_err(|e| StoreError::io(path, e))?;
    bytes.as_slice().try_into().map_err(|_| StoreError::DataCorruption {
        path: path.to_owned(),
        detail: format!("index key is {} bytes, expected 32", bytes.len()),
    })
}
