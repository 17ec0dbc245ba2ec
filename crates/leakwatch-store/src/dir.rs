//! The data directory: where the manifest, segments, index key and scratch space
//! live, and the lock that admits one writer at a time.
//!
//! ```text
//! DATA/
//!   MANIFEST          current generation (JSON), replaced atomically
//!   segments/         immutable segment files, named by kind and content hash
//!   tmp/              ingest scratch (sorted runs); emptied by the next writer
//!   index.key         32 random bytes keying the account and domain index
//!   LOCK              held (flock) by the one writer
//! ```

use std::fs::{self, File};
use std::path::{Path, PathBuf};

use leakwatch_types::Blinder;
use rand::TryRngCore;

use crate::error::{Result, StoreError};
use crate::manifest::Manifest;

pub const SEGMENTS: &str = "segments";
pub const TMP: &str = "tmp";
const KEY_FILE: &str = "index.key";

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

    /// Creates the directory layout if it is missing.
    pub fn create(&self) -> Result<()> {
        for dir in [self.root.clone(), self.segments(), self.tmp()] {
            fs::create_dir_all(&dir).map_err(|e| StoreError::io(&dir, e))?;
        }
        Ok(())
    }

    /// Whether this looks like a leakwatch data directory at all.
    pub fn exists(&self) -> bool {
        self.root.join(crate::manifest::MANIFEST).is_file()
    }

    /// The key of the blinded index, created on first use. A later step moves it
    /// outside the data directory; callers only ever see the [`Blinder`].
    pub fn blinder(&self, create: bool) -> Result<Option<Blinder>> {
        let path = self.root.join(KEY_FILE);
        match fs::read(&path) {
            Ok(bytes) => {
                let key: [u8; 32] = bytes.as_slice().try_into().map_err(|_| StoreError::DataCorruption {
                    path: path.clone(),
                    detail: format!("index key is {} bytes, expected 32", bytes.len()),
                })?;
                Ok(Some(Blinder::new(key)))
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound && create => {
                let mut key = [0u8; 32];
                rand::rngs::OsRng
                    .try_fill_bytes(&mut key)
                    .map_err(|e| StoreError::io(&path, std::io::Error::other(e)))?;
                write_private(&path, &key)?;
                Ok(Some(Blinder::new(key)))
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(StoreError::io(path, e)),
        }
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
        fs::create_dir_all(&tmp).map_err(|e| StoreError::io(&tmp, e))?;
        Ok(removed)
    }
}

/// Proof that this process is the directory's one writer.
pub struct WriterLock {
    _file: File,
}

/// Writes a file readable by its owner only.
fn write_private(path: &Path, bytes: &[u8]) -> Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut file = fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .map_err(|e| StoreError::io(path, e))?;
    file.write_all(bytes).and_then(|_| file.sync_all()).map_err(|e| StoreError::io(path, e))
}
