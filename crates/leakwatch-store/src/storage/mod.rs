//! Where a store's objects live: the storage trait the transaction layer
//! ([`crate::txn`]) writes through and readers open segments from, in the
//! spirit of tantivy's `Directory`.
//!
//! A store is a set of immutable, named objects (the segments) and one
//! mutable object, the manifest, that names the live ones. The trait offers
//! exactly what a store needs of its medium, and no more, so that a local
//! directory ([`LocalDisk`]), memory ([`MemoryStorage`], for power-loss tests)
//! and an object store can each hold one:
//! - **put**: a finished, locally staged file becomes the object `name`. An
//!   object is never changed afterwards; a name is always put with the same
//!   bytes (segments are named by their content hash).
//! - **persist**: waits until the objects put so far, and their names, are
//!   durable. Until it returns, a power loss may drop them or tear them.
//! - **open** a segment for reading (mmapped, or from its bytes), **read** an
//!   object whole or a byte range of it, **list** the objects, **delete** one.
//! - **publish** the manifest: a conditional, atomic, durable swap. It
//!   succeeds only if the manifest is still the version the writer loaded,
//!   and after it returns every reader that loads the manifest sees the new
//!   one, before it none does.
//! - **lock**: admits one writer at a time.
//!
//! Objects are built in a local staging directory first ([`Storage::staging`]):
//! the segment writer seeks back to write its header and syncs in the
//! background, which no object store offers, and building in place is what a
//! local directory does best.

use std::ops::Range;
use std::path::{Path, PathBuf};

use leakwatch_segment::{Segment, SegmentError};

use crate::error::Result;

pub mod blobs;
pub mod contract;
pub(crate) mod local;
mod memory;

pub(crate) use local::sync_dir;
pub use local::LocalDisk;
pub use memory::{Fault, MemoryStorage};

/// The name the manifest has among a store's files.
pub const MANIFEST: &str = "MANIFEST";

/// The version of a manifest a writer loaded: what its publish is
/// conditional on. `None` when there was no manifest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Version(Option<[u8; 32]>);

impl Version {
    /// The version of a manifest with these bytes (or of none).
    pub fn of(bytes: Option<&[u8]>) -> Version {
        Version(bytes.map(|b| *blake3::hash(b).as_bytes()))
    }
}

/// A put whose bytes may still be on their way to stable storage; handed back
/// to [`Storage::persist`].
#[must_use = "a put is durable only once persisted"]
pub struct Pending {
    /// The object's name, for a storage that tracks what is durable by name.
    pub(crate) name: Option<String>,
    /// A sync under way, for a storage that syncs in the background.
    pub(crate) sync: Option<std::thread::JoinHandle<Result<()>>>,
}

impl Pending {
    /// A put that is durable already when it returns (an object store's).
    pub fn durable() -> Pending {
        Pending { name: None, sync: None }
    }

    /// A put whose object is made durable by `sync`, running on its own.
    pub fn syncing(sync: std::thread::JoinHandle<Result<()>>) -> Pending {
        Pending { name: None, sync: Some(sync) }
    }
}

/// Proof that this process is the store's one writer; released when dropped.
pub struct WriterLock {
    _held: Box<dyn std::any::Any + Send + Sync>,
}

impl WriterLock {
    /// A lock held for as long as `held` lives (a locked file, a lease).
    pub fn new(held: Box<dyn std::any::Any + Send + Sync>) -> WriterLock {
        WriterLock { _held: held }
    }
}

/// The medium of a store. See the module for what each operation promises.
pub trait Storage: Send + Sync + std::fmt::Debug {
    /// The local directory where objects are built before [`Storage::put`].
    fn staging(&self) -> PathBuf;

    /// Makes the finished file `staged` (in [`Storage::staging`]) the
    /// immutable object `name`, taking the file. Durable once persisted.
    fn put(&self, staged: &Path, name: &str) -> Result<Pending>;

    /// Returns once the objects of `pending`, and every name put or deleted
    /// before, are durable.
    fn persist(&self, pending: Vec<Pending>) -> Result<()>;

    /// Opens the segment object `name`.
    fn open_segment(&self, name: &str) -> Result<Segment, SegmentError>;

    /// The bytes of object `name`, whole or the byte `range` of it.
    fn read(&self, name: &str, range: Option<Range<u64>>) -> Result<Vec<u8>>;

    /// The names of every object (a writer's unfinished ones included).
    fn list(&self) -> Result<Vec<String>>;

    /// Deletes object `name`. Readers that opened it keep their view.
    fn delete(&self, name: &str) -> Result<()>;

    /// Where object `name` is, for messages and errors.
    fn object_path(&self, name: &str) -> PathBuf;

    /// Where the manifest is, for messages and errors.
    fn manifest_path(&self) -> PathBuf;

    /// Where the store is, for messages, when that is not its data
    /// directory's root (an object store's `s3://` URL).
    fn location(&self) -> Option<String> {
        None
    }

    /// Whether there is a manifest, that is, a store.
    fn has_manifest(&self) -> bool;

    /// The manifest's bytes and version, or `None` when there is no store.
    fn load_manifest(&self) -> Result<Option<(Vec<u8>, Version)>>;

    /// Replaces the manifest with `bytes` atomically and durably, provided it
    /// is still at version `expected` (`None`: whatever it is). Returns the
    /// new version.
    fn publish_manifest(&self, bytes: &[u8], expected: Option<&Version>) -> Result<Version>;

    /// Takes the writer lock without waiting: a second writer fails fast.
    fn lock(&self) -> Result<WriterLock>;

    /// The area beside the store where a distributed ingest shares its
    /// inputs and runs between machines ([`blobs`]); `None` for a storage
    /// no other machine reaches.
    fn blobs(&self) -> Option<Box<dyn blobs::Blobs>> {
        None
    }
}

#[cfg(test)]
mod tests;
