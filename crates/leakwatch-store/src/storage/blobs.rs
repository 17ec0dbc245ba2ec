//! Files a distributed ingest shares between machines beside a store: the
//! inputs staged for its jobs, under the
//! store's `ingest/` area (a bucket's `PREFIX/ingest/`, a directory's
//! `ingest/`), never among its segments.
//!
//! These are not a store's objects: no manifest names them, a reader never
//! opens them, and the writer that holds the store's lock removes them all
//! when it begins ([`crate::DataDir::remove_orphans`]), since they can only
//! be what a dead distributed ingest left (a live one holds the lock).

use std::fs;
use std::io::Read;
use std::path::PathBuf;

use crate::error::{Result, StoreError};

/// The shared area of a store, by names relative to it (`ID/inputs/0`).
pub trait Blobs: Send + Sync + std::fmt::Debug {
    /// Stores what `from` reads as `name` (a file, or a file compressed as
    /// it is read).
    fn put_stream(&self, from: Box<dyn Read + Send>, name: &str) -> Result<()>;

    /// Stores `bytes` as `name`, whole: visible to readers only once all of
    /// it is stored.
    fn put(&self, name: &str, bytes: Vec<u8>) -> Result<()> {
        self.put_stream(Box::new(std::io::Cursor::new(bytes)), name)
    }

    /// `name`'s bytes as they are fetched; `None` when there is no `name`
    /// (yet).
    fn open_if_exists(&self, name: &str) -> Result<Option<Box<dyn Read + Send>>>;

    /// `name`'s bytes as they are fetched.
    fn open(&self, name: &str) -> Result<Box<dyn Read + Send>>;

    /// The bytes of the object an `s3://BUCKET/KEY` URL names (an input
    /// already in object storage, reached as the store is), as they are
    /// fetched.
    fn open_url(&self, url: &str) -> Result<Box<dyn Read + Send>> {
        Err(StoreError::Invalid(format!("{url}: this store reaches no object storage")))
    }

    /// Every name under `prefix` (`""`: every one), at any depth.
    fn list(&self, prefix: &str) -> Result<Vec<String>>;

    /// Removes `name`; one already gone is no error.
    fn delete(&self, name: &str) -> Result<()>;

    /// Removes every one of `names` (in as few requests as the storage
    /// allows: a staged input may be many parts, and an ingest many inputs);
    /// one already gone is no error.
    fn delete_all(&self, names: &[String]) -> Result<()> {
        names.iter().try_for_each(|name| self.delete(name))
    }

    /// Where `name` is, for messages.
    fn location(&self, name: &str) -> String;
}

/// The shared area in a local directory (a store on a file system every
/// machine mounts).
#[derive(Debug, Clone)]
pub struct LocalBlobs {
    root: PathBuf,
}

impl LocalBlobs {
    pub fn new(root: impl Into<PathBuf>) -> LocalBlobs {
        LocalBlobs { root: root.into() }
    }
}

impl Blobs for LocalBlobs {
    fn put_stream(&self, mut from: Box<dyn Read + Send>, name: &str) -> Result<()> {
        let to = self.root.join(name);
        if let Some(parent) = to.parent() {
            fs::create_dir_all(parent).map_err(|e| StoreError::io(parent, e))?;
        }
        let tmp = to.with_extension("part");
        let mut file = fs::File::create(&tmp).map_err(|e| StoreError::io(&tmp, e))?;
        std::io::copy(&mut from, &mut file).map_err(|e| StoreError::io(&tmp, e))?;
        fs::rename(&tmp, &to).map_err(|e| StoreError::io(&to, e))
    }

    fn open(&self, name: &str) -> Result<Box<dyn Read + Send>> {
        let from = self.root.join(name);
        Ok(Box::new(fs::File::open(&from).map_err(|e| StoreError::io(&from, e))?))
    }

    fn open_if_exists(&self, name: &str) -> Result<Option<Box<dyn Read + Send>>> {
        let path = self.root.join(name);
        match fs::File::open(&path) {
            Ok(file) => Ok(Some(Box::new(file))),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(StoreError::io(&path, e)),
        }
    }

    fn list(&self, prefix: &str) -> Result<Vec<String>> {
        let mut names = Vec::new();
        let mut dirs = vec![self.root.join(prefix)];
        while let Some(dir) = dirs.pop() {
            let entries = match fs::read_dir(&dir) {
                Ok(entries) => entries,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
                Err(e) => return Err(StoreError::io(&dir, e)),
            };
            for entry in entries {
                let path = entry.map_err(|e| StoreError::io(&dir, e))?.path();
                if path.is_dir() {
                    dirs.push(path);
                } else if let Ok(rel) = path.strip_prefix(&self.root) {
                    names.push(rel.to_string_lossy().into_owned());
                }
            }
        }
        names.sort();
        Ok(names)
    }

    fn delete(&self, name: &str) -> Result<()> {
        let path = self.root.join(name);
        match fs::remove_file(&path) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(StoreError::io(&path, e)),
        }
        // Directories left empty go too; one still holding files stays.
        let mut dir = path.parent();
        while let Some(d) = dir.filter(|d| d.starts_with(&self.root) && *d != self.root) {
            if fs::remove_dir(d).is_err() {
                break;
            }
            dir = d.parent();
        }
        Ok(())
    }

    fn location(&self, name: &str) -> String {
        self.root.join(name).display().to_string()
    }
}
