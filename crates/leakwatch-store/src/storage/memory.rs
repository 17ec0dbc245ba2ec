//! A store kept in memory, for tests: it models what a power loss keeps and
//! what it drops, and can be made to fail any step of a writer.
//!
//! Two states are kept: what readers see now, and what is durable. A put
//! is seen at once and durable only once persisted; a delete likewise; a
//! publish of the manifest is durable when it returns (as `LocalDisk`'s, which
//! syncs the directory after the rename). [`MemoryStorage::crash`] is a power
//! loss: what readers see becomes what was durable, except that an object put
//! but never persisted survives torn (its first half), as a file renamed but
//! never synced may after a real power loss.
//!
//! Every put, persist, delete and publish is a step, counted from 0.
//! [`MemoryStorage::fail_at`] arms a [`Fault`] for one step; from that step
//! on, every operation fails, as in a process that died there.

use std::collections::BTreeMap;
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};

use leakwatch_segment::{Segment, SegmentError};

use super::{Pending, Storage, Version, WriterLock};
use crate::error::{Result, StoreError};

/// How the step [`MemoryStorage::fail_at`] names goes wrong.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// The write stops halfway: a put leaves the first half of the object's
    /// bytes under its name; a publish leaves only a half-written draft,
    /// which no reader sees.
    Torn,
    /// The operation never happens: no put, no sync, no delete, no swap.
    Lost,
    /// The operation happens but is never synced: a put or a delete is seen
    /// and not durable, a persist makes nothing durable, a publish is seen by
    /// readers until the crash, which takes it back.
    Unsynced,
}

/// A store's objects and manifest in memory. Cheap to fork.
#[derive(Debug)]
pub struct MemoryStorage {
    staging: PathBuf,
    state: Arc<Mutex<State>>,
}

#[derive(Debug, Default, Clone)]
struct State {
    /// Objects as readers see them now.
    objects: BTreeMap<String, Arc<[u8]>>,
    /// Objects as a power loss leaves them.
    durable: BTreeMap<String, Arc<[u8]>>,
    manifest: Option<Arc<[u8]>>,
    durable_manifest: Option<Arc<[u8]>>,
    locked: bool,
    /// Steps taken so far.
    steps: u64,
    /// The kind of each step taken.
    kinds: Vec<&'static str>,
    fault: Option<(u64, Fault)>,
    /// Set by the armed fault: the writer is dead, everything fails.
    dead: bool,
}

impl MemoryStorage {
    /// An empty store, building its objects in the local directory `staging`
    /// (created if missing).
    pub fn new(staging: impl Into<PathBuf>) -> Result<MemoryStorage> {
        let staging = staging.into();
        super::local::create_private_dir(&staging)?;
        Ok(MemoryStorage { staging, state: Arc::default() })
    }

    /// A store holding what this one holds durably, building in `staging`
    /// (created if missing): the same starting point for many runs.
    pub fn fork(&self, staging: impl Into<PathBuf>) -> Result<MemoryStorage> {
        let staging = staging.into();
        super::local::create_private_dir(&staging)?;
        let now = self.state();
        let state = State {
            objects: now.durable.clone(),
            durable: now.durable.clone(),
            manifest: now.durable_manifest.clone(),
            durable_manifest: now.durable_manifest.clone(),
            ..State::default()
        };
        Ok(MemoryStorage { staging, state: Arc::new(Mutex::new(state)) })
    }

    /// Makes step `step` (counted from the next one taken, 0) go wrong as
    /// `fault` says, and every operation after it fail.
    pub fn fail_at(&self, step: u64, fault: Fault) {
        let mut state = self.state();
        state.fault = Some((state.steps + step, fault));
    }

    /// Whether the armed fault struck.
    pub fn failed(&self) -> bool {
        self.state().dead
    }

    /// Steps taken so far.
    pub fn steps(&self) -> u64 {
        self.state().steps
    }

    /// The kinds of the steps taken so far (`"put"`, `"persist"`,
    /// `"delete"`, `"publish"`), in order.
    pub fn step_kinds(&self) -> Vec<&'static str> {
        self.state().kinds.clone()
    }

    /// A power loss: readers see what was durable, objects put and never
    /// persisted survive torn, the lock is free, the fault is disarmed.
    pub fn crash(&self) {
        let mut state = self.state();
        let mut objects = state.durable.clone();
        for (name, bytes) in &state.objects {
            if !state.durable.contains_key(name) {
                objects.insert(name.clone(), bytes[..bytes.len() / 2].into());
            }
        }
        state.objects = objects;
        state.manifest = state.durable_manifest.clone();
        state.locked = false;
        state.fault = None;
        state.dead = false;
    }

    /// Flips the byte at `offset` of object `name`, durably, as a failing
    /// disk might: for tests of what reads and repairs damaged objects.
    pub fn damage(&self, name: &str, offset: usize) {
        let mut state = self.state();
        let mut bytes = state.objects[name].to_vec();
        bytes[offset] ^= 0x55;
        let bytes: Arc<[u8]> = bytes.into();
        state.objects.insert(name.to_owned(), bytes.clone());
        state.durable.insert(name.to_owned(), bytes);
    }

    /// The names of the objects readers see now.
    pub fn names(&self) -> Vec<String> {
        self.state().objects.keys().cloned().collect()
    }

    fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Counts a step: `Ok(None)` to take it as usual, `Ok(Some(fault))` to
    /// take it as the fault says and then fail, `Err` when the writer died
    /// before it.
    fn step(state: &mut State, kind: &'static str) -> Result<Option<Fault>> {
        if state.dead {
            return Err(injected("after the fault"));
        }
        let at = state.steps;
        state.steps += 1;
        state.kinds.push(kind);
        match state.fault {
            Some((step, fault)) if step == at => {
                state.dead = true;
                Ok(Some(fault))
            }
            _ => Ok(None),
        }
    }
}

fn injected(what: &str) -> StoreError {
    StoreError::io("memory", std::io::Error::other(format!("injected fault ({what})")))
}

fn not_found(path: &Path) -> std::io::Error {
    std::io::Error::new(std::io::ErrorKind::NotFound, format!("{}: no such object", path.display()))
}

/// Releases the lock when the writer is done with it.
struct Held(Arc<Mutex<State>>);

impl Drop for Held {
    fn drop(&mut self) {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).locked = false;
    }
}

impl Storage for MemoryStorage {
    fn staging(&self) -> PathBuf {
        self.staging.clone()
    }

    fn put(&self, staged: &Path, name: &str) -> Result<Pending> {
        let mut state = self.state();
        let fault = Self::step(&mut state, "put")?;
        if fault == Some(Fault::Lost) {
            return Err(injected("put lost"));
        }
        let bytes = std::fs::read(staged).map_err(|e| StoreError::io(staged, e))?;
        std::fs::remove_file(staged).map_err(|e| StoreError::io(staged, e))?;
        if fault == Some(Fault::Torn) {
            // A name already durable is taken only by bytes made durable
            // first (see `LocalDisk::put`): it is never torn.
            if !state.durable.contains_key(name) {
                state.objects.insert(name.to_owned(), bytes[..bytes.len() / 2].into());
            }
            return Err(injected("put torn"));
        }
        if state.durable.get(name).is_some_and(|d| **d != *bytes) {
            return Err(StoreError::Invalid(format!("object {name} put again with other bytes")));
        }
        state.objects.insert(name.to_owned(), bytes.into());
        if fault == Some(Fault::Unsynced) {
            return Err(injected("put unsynced"));
        }
        Ok(Pending { name: Some(name.to_owned()), sync: None })
    }

    fn persist(&self, pending: Vec<Pending>) -> Result<()> {
        let mut state = self.state();
        if Self::step(&mut state, "persist")?.is_some() {
            return Err(injected("persist"));
        }
        for name in pending.into_iter().filter_map(|p| p.name) {
            if let Some(bytes) = state.objects.get(&name).cloned() {
                state.durable.insert(name, bytes);
            }
        }
        // The directory's sync makes every delete before it durable too.
        let State { objects, durable, .. } = &mut *state;
        durable.retain(|name, _| objects.contains_key(name));
        Ok(())
    }

    fn open_segment(&self, name: &str) -> Result<Segment, SegmentError> {
        let path = self.object_path(name);
        let bytes = self.state().objects.get(name).cloned();
        match bytes {
            Some(bytes) => Segment::from_bytes(&path, &bytes),
            None => Err(SegmentError::Io { source: not_found(&path), path }),
        }
    }

    fn read(&self, name: &str, range: Option<Range<u64>>) -> Result<Vec<u8>> {
        let path = self.object_path(name);
        let bytes =
            self.state().objects.get(name).cloned().ok_or_else(|| StoreError::io(&path, not_found(&path)))?;
        let range = range.unwrap_or(0..bytes.len() as u64);
        let end = (range.end as usize).min(bytes.len());
        Ok(bytes[(range.start as usize).min(end)..end].to_vec())
    }

    fn list(&self) -> Result<Vec<String>> {
        let state = self.state();
        if state.dead {
            return Err(injected("after the fault"));
        }
        Ok(state.objects.keys().cloned().collect())
    }

    fn delete(&self, name: &str) -> Result<()> {
        let mut state = self.state();
        let fault = Self::step(&mut state, "delete")?;
        if matches!(fault, Some(Fault::Lost | Fault::Torn)) {
            return Err(injected("delete lost"));
        }
        let path = self.object_path(name);
        state.objects.remove(name).ok_or_else(|| StoreError::io(&path, not_found(&path)))?;
        match fault {
            Some(_) => Err(injected("delete unsynced")),
            None => Ok(()),
        }
    }

    fn object_path(&self, name: &str) -> PathBuf {
        Path::new("memory").join(name)
    }

    fn manifest_path(&self) -> PathBuf {
        Path::new("memory").join(super::MANIFEST)
    }

    fn has_manifest(&self) -> bool {
        self.state().manifest.is_some()
    }

    fn load_manifest(&self) -> Result<Option<(Vec<u8>, Version)>> {
        Ok(self.state().manifest.as_ref().map(|m| (m.to_vec(), Version::of(Some(m)))))
    }

    fn publish_manifest(&self, bytes: &[u8], expected: Option<&Version>) -> Result<Version> {
        let mut state = self.state();
        let fault = Self::step(&mut state, "publish")?;
        if expected.is_some_and(|v| *v != Version::of(state.manifest.as_deref())) {
            return Err(StoreError::Conflict { path: self.manifest_path() });
        }
        match fault {
            Some(Fault::Lost | Fault::Torn) => Err(injected("publish lost")),
            Some(Fault::Unsynced) => {
                state.manifest = Some(bytes.into());
                Err(injected("publish unsynced"))
            }
            None => {
                state.manifest = Some(bytes.into());
                state.durable_manifest = state.manifest.clone();
                Ok(Version::of(Some(bytes)))
            }
        }
    }

    fn lock(&self) -> Result<WriterLock> {
        let mut state = self.state();
        if state.locked {
            return Err(StoreError::Locked { path: self.manifest_path() });
        }
        state.locked = true;
        Ok(WriterLock::new(Box::new(Held(Arc::clone(&self.state)))))
    }
}
