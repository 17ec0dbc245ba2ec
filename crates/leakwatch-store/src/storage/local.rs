//! A store in a local directory: `MANIFEST` and `LOCK` at the top, the
//! segments in `segments/` (see [`crate::dir`] for the whole layout).
//!
//! A segment is built in `segments/` under a `.building` name, renamed to its
//! own name when finished and synced by a thread of its own while the writer
//! goes on; [`Storage::persist`] waits for those syncs and syncs the directory,
//! which makes the names durable. The manifest is written to `MANIFEST.tmp`,
//! synced, renamed over `MANIFEST`, and the directory synced.

use std::fs::{self, File};
use std::io::{Read, Seek, SeekFrom, Write};
use std::ops::Range;
use std::path::{Path, PathBuf};

use leakwatch_segment::{Segment, SegmentError};

use super::{Pending, Storage, Version, WriterLock, MANIFEST};
use crate::error::{Result, StoreError};

/// The directory of segments, under the store's root.
pub const SEGMENTS: &str = "segments";

/// A store in the local directory `root`.
#[derive(Debug, Clone)]
pub struct LocalDisk {
    root: PathBuf,
    segments: PathBuf,
}

impl LocalDisk {
    pub fn new(root: impl Into<PathBuf>) -> LocalDisk {
        let root = root.into();
        LocalDisk { segments: root.join(SEGMENTS), root }
    }
}

impl Storage for LocalDisk {
    fn blobs(&self) -> Option<Box<dyn super::blobs::Blobs>> {
        Some(Box::new(super::blobs::LocalBlobs::new(self.root.join("ingest"))))
    }

    fn staging(&self) -> PathBuf {
        // Built where it will live: the rename that names it moves nothing.
        self.segments.clone()
    }

    fn put(&self, staged: &Path, name: &str) -> Result<Pending> {
        let target = self.segments.join(name);
        if target.exists() {
            // The same content as a file already there, perhaps a live one:
            // the new copy is made durable before it takes that name, so that
            // a crash never leaves a live name on bytes not yet on disk.
            File::open(staged).and_then(|f| f.sync_all()).map_err(|e| StoreError::io(staged, e))?;
        }
        fs::rename(staged, &target).map_err(|e| StoreError::io(&target, e))?;
        // Synced in the background, awaited by `persist`: the I/O overlaps
        // the writer's work on the next segment instead of following it.
        let sync = std::thread::spawn(move || {
            File::open(&target).and_then(|f| f.sync_all()).map_err(|e| StoreError::io(&target, e))
        });
        Ok(Pending::syncing(sync))
    }

    fn persist(&self, pending: Vec<Pending>) -> Result<()> {
        for sync in pending.into_iter().filter_map(|p| p.sync) {
            sync.join().map_err(|_| StoreError::Invalid("a segment sync thread panicked".into()))??;
        }
        sync_dir(&self.segments)
    }

    fn open_segment(&self, name: &str) -> Result<Segment, SegmentError> {
        Segment::open(&self.segments.join(name))
    }

    fn read(&self, name: &str, range: Option<Range<u64>>) -> Result<Vec<u8>> {
        let path = self.segments.join(name);
        let io = |e| StoreError::io(&path, e);
        let Some(range) = range else { return fs::read(&path).map_err(io) };
        let mut file = File::open(&path).map_err(io)?;
        file.seek(SeekFrom::Start(range.start)).map_err(io)?;
        let mut bytes = Vec::with_capacity(range.end.saturating_sub(range.start) as usize);
        file.take(range.end.saturating_sub(range.start)).read_to_end(&mut bytes).map_err(io)?;
        Ok(bytes)
    }

    fn list(&self) -> Result<Vec<String>> {
        let io = |e| StoreError::io(&self.segments, e);
        let mut names = Vec::new();
        for entry in fs::read_dir(&self.segments).map_err(io)? {
            names.push(entry.map_err(io)?.file_name().to_string_lossy().into_owned());
        }
        Ok(names)
    }

    fn delete(&self, name: &str) -> Result<()> {
        let path = self.segments.join(name);
        fs::remove_file(&path).map_err(|e| StoreError::io(&path, e))
    }

    fn object_path(&self, name: &str) -> PathBuf {
        self.segments.join(name)
    }

    fn manifest_path(&self) -> PathBuf {
        self.root.join(MANIFEST)
    }

    fn has_manifest(&self) -> bool {
        self.root.join(MANIFEST).is_file()
    }

    fn load_manifest(&self) -> Result<Option<(Vec<u8>, Version)>> {
        let path = self.root.join(MANIFEST);
        match fs::read(&path) {
            Ok(bytes) => {
                let version = Version::of(Some(&bytes));
                Ok(Some((bytes, version)))
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(StoreError::io(path, e)),
        }
    }

    fn publish_manifest(&self, bytes: &[u8], expected: Option<&Version>) -> Result<Version> {
        let path = self.root.join(MANIFEST);
        if let Some(expected) = expected {
            // The lock admits one writer; this catches a manifest replaced
            // by anything that did not take it.
            let now = self.load_manifest()?.map(|(_, v)| v).unwrap_or(Version::of(None));
            if &now != expected {
                return Err(StoreError::Conflict { path });
            }
        }
        let tmp = self.root.join("MANIFEST.tmp");
        let mut file = File::create(&tmp).map_err(|e| StoreError::io(&tmp, e))?;
        file.write_all(bytes).map_err(|e| StoreError::io(&tmp, e))?;
        file.sync_all().map_err(|e| StoreError::io(&tmp, e))?;
        fs::rename(&tmp, &path).map_err(|e| StoreError::io(&path, e))?;
        sync_dir(&self.root)?;
        Ok(Version::of(Some(bytes)))
    }

    fn lock(&self) -> Result<WriterLock> {
        let path = self.root.join("LOCK");
        let file = File::create(&path).map_err(|e| StoreError::io(&path, e))?;
        match file.try_lock() {
            Ok(()) => Ok(WriterLock::new(Box::new(file))),
            Err(fs::TryLockError::WouldBlock) => Err(StoreError::Locked { path: self.root.clone() }),
            Err(fs::TryLockError::Error(e)) => Err(StoreError::io(path, e)),
        }
    }
}

/// Makes a rename or a new file in `dir` durable.
pub(crate) fn sync_dir(dir: &Path) -> Result<()> {
    File::open(dir).and_then(|d| d.sync_all()).map_err(|e| StoreError::io(dir, e))
}

/// Creates `dir` (and missing parents) readable by its owner only: a data
/// directory holds the catalog, its audit log and the index. An existing
/// directory keeps its mode.
pub(crate) fn create_private_dir(dir: &Path) -> Result<()> {
    use std::os::unix::fs::DirBuilderExt;
    fs::DirBuilder::new().recursive(true).mode(0o700).create(dir).map_err(|e| StoreError::io(dir, e))
}
