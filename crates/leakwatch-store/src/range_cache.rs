//! The bounded cache of formatted range bodies, held in files.
//!
//! A cached body is written once into an unnamed file and never changed
//! afterwards, so a server can hand the kernel the file's pages (`sendfile`)
//! instead of copying 30 KB into every socket, as a static file server does;
//! readers in the process see the same bytes through a read-only mapping. The
//! file is an `O_TMPFILE` in the data directory's `tmp/` (a regular file, whose
//! pages the kernel splices in batches: measured far cheaper per request than
//! a memory file's page-at-a-time lookups), else a memory file (`memfd`), else
//! nothing: the bodies then live on the heap, under the same policy. Those two
//! calls are Linux's; elsewhere (and on Linux where they fail) the file is one
//! created under a random name in `tmp/` and unlinked at once. A range
//! holds nothing the count segments beside it do not hold in clear (and, unless
//! `serve --range-own-dumps` says otherwise, serve to anyone); the file has no
//! name and goes when its generation does.
//!
//! The budget is split between two arenas that are only ever appended to. When
//! the current one is full, the older one's bodies are dropped from the cache
//! and a fresh arena takes its place: eviction in halves, oldest first, with no
//! bookkeeping on the hit path. An arena's file is released when the last body
//! in it (the cache's, or one a request still holds) goes, so a response being
//! sent is never overwritten.

use std::collections::HashMap;
use std::fs::File;
use std::os::fd::{AsFd, BorrowedFd};
use std::os::unix::fs::{FileExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use memmap2::{MmapOptions, MmapRaw};

/// A formatted range and the digest of its bytes: a strong validator that stays
/// the same across generations as long as the range does, so a mirror
/// revalidating with `If-None-Match` re-downloads only the ranges that changed.
#[derive(Debug, Clone)]
pub struct RangeBody {
    stored: Stored,
    /// The first 128 bits of the BLAKE3 hash of the bytes.
    pub digest: u128,
    /// Lines of the body that are real hashes; the rest (only in an otherwise
    /// empty range) are padding.
    pub hashes: usize,
}

#[derive(Debug, Clone)]
enum Stored {
    Heap(Arc<[u8]>),
    Mapped { arena: Arc<Arena>, offset: usize, len: usize },
}

/// Where a body's bytes can be read by the kernel: a file descriptor and a span.
#[derive(Debug, Clone, Copy)]
pub struct FileSpan<'a> {
    pub fd: BorrowedFd<'a>,
    pub offset: u64,
    pub len: usize,
}

impl RangeBody {
    pub(crate) fn new(bytes: Vec<u8>, hashes: usize) -> RangeBody {
        let hash = blake3::hash(&bytes);
        let digest = u128::from_be_bytes(hash.as_bytes()[..16].try_into().expect("16 bytes"));
        RangeBody { stored: Stored::Heap(bytes.into()), digest, hashes }
    }

    pub fn bytes(&self) -> &[u8] {
        match &self.stored {
            Stored::Heap(bytes) => bytes,
            Stored::Mapped { arena, offset, len } => arena.slice(*offset, *len),
        }
    }

    /// The body's bytes in the cache's file, when it is cached in one: for
    /// `sendfile`. The span is never written again while this body lives.
    pub fn file_span(&self) -> Option<FileSpan<'_>> {
        match &self.stored {
            Stored::Heap(_) => None,
            Stored::Mapped { arena, offset, len } => {
                let file = arena.file.as_ref()?;
                Some(FileSpan { fd: file.0.as_fd(), offset: *offset as u64, len: *len })
            }
        }
    }
}

impl AsRef<[u8]> for RangeBody {
    fn as_ref(&self) -> &[u8] {
        self.bytes()
    }
}

/// Where bodies start in an arena's file: on page boundaries.
const PAGE: usize = 4096;

/// Append-only space for bodies: a file (unnamed, or in memory) and its
/// read-only mapping, or, where neither can be made, nothing (bodies stay on
/// the heap and only the space they take is counted).
#[derive(Debug)]
struct Arena {
    /// Tells the cache's entries in this arena from those in the other.
    serial: u64,
    file: Option<(File, MmapRaw)>,
    capacity: usize,
    /// Bytes handed out so far.
    used: AtomicUsize,
}

impl Arena {
    fn new(serial: u64, capacity: usize, dir: Option<&Path>, files: Files) -> Arena {
        let file = (capacity > 0).then(|| arena_file(capacity, dir, files)).flatten();
        Arena { serial, file, capacity, used: AtomicUsize::new(0) }
    }

    /// Reserves `len` bytes, or `None` when the arena is full.
    /// Reserves `len` bytes starting on a page boundary, or `None` when the
    /// arena is full. Page-aligned, a body spans no more pages than it must, and
    /// `sendfile` looks each page up: a page fewer per answer, as for a file.
    fn reserve(&self, len: usize) -> Option<usize> {
        let start = |used: usize| used.next_multiple_of(PAGE);
        self.used
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |used| {
                (start(used) + len <= self.capacity).then_some(start(used) + len)
            })
            .ok()
            .map(start)
    }

    fn slice(&self, offset: usize, len: usize) -> &[u8] {
        let (_, map) = self.file.as_ref().expect("mapped bodies have a file");
        assert!(offset + len <= map.len());
        // SAFETY: the span is inside the mapping, which lives as long as `self`;
        // it was written (through the file) before the body naming it was
        // published, and no byte of a reserved span is ever written again.
        unsafe { std::slice::from_raw_parts(map.as_ptr().add(offset), len) }
    }
}

/// Which calls make an arena's file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Files {
    /// The platform's best: Linux's unnamed and memory files, then the portable
    /// way.
    Best,
    /// Only what every Unix has: the path taken off Linux, chosen by tests on
    /// Linux so that it is exercised.
    #[cfg_attr(not(test), allow(dead_code))]
    Portable,
}

/// A file of `len` bytes (sparse: space is taken as bodies are written),
/// mapped read-only: unnamed in `dir`, or in memory.
fn arena_file(len: usize, dir: Option<&Path>, files: Files) -> Option<(File, MmapRaw)> {
    let best = files == Files::Best;
    let file = dir
        .and_then(|d| best.then(|| unnamed_file(d).ok()).flatten().or_else(|| unlinked_file(d).ok()))
        .or_else(|| best.then(|| memory_file().ok()).flatten())?;
    file.set_len(len as u64).ok()?;
    let map = MmapOptions::new().len(len).map_raw_read_only(&file).ok()?;
    Some((file, map))
}

#[cfg(target_os = "linux")]
fn unnamed_file(dir: &Path) -> std::io::Result<File> {
    std::fs::OpenOptions::new().read(true).write(true).custom_flags(libc::O_TMPFILE).mode(0o600).open(dir)
}

#[cfg(not(target_os = "linux"))]
fn unnamed_file(_dir: &Path) -> std::io::Result<File> {
    Err(std::io::ErrorKind::Unsupported.into())
}

/// A file only this process can reach: created under a random name (never an
/// existing file's), open to its owner alone, and unlinked before it is used.
fn unlinked_file(dir: &Path) -> std::io::Result<File> {
    let path = dir.join(format!(".range-cache-{:032x}", rand::random::<u128>()));
    let file = std::fs::OpenOptions::new().read(true).write(true).create_new(true).mode(0o600).open(&path)?;
    std::fs::remove_file(&path)?;
    Ok(file)
}

#[cfg(target_os = "linux")]
fn memory_file() -> std::io::Result<File> {
    use std::os::fd::{FromRawFd, OwnedFd};
    // SAFETY: a valid C string and flags; the result is checked before use.
    let fd = unsafe { libc::memfd_create(c"leakwatch-ranges".as_ptr(), libc::MFD_CLOEXEC) };
    if fd < 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: `fd` was just created and is owned by nothing else.
    Ok(File::from(unsafe { OwnedFd::from_raw_fd(fd) }))
}

#[cfg(not(target_os = "linux"))]
fn memory_file() -> std::io::Result<File> {
    Err(std::io::ErrorKind::Unsupported.into())
}

/// Range bodies by (corpus bit << 20 | prefix), in at most `budget` bytes.
/// Sharded so that server threads rarely wait on each other.
pub(crate) struct BodyCache {
    budget: usize,
    /// Where arena files go (`None`: memory).
    dir: Option<PathBuf>,
    files: Files,
    /// The arena bodies go to, and the older one whose bodies are still served.
    arenas: Mutex<(Arc<Arena>, Option<Arc<Arena>>)>,
    /// Each body with the serial of the arena it counts against.
    shards: [Mutex<HashMap<u32, (RangeBody, u64)>>; 16],
}

impl BodyCache {
    pub(crate) fn new(budget: usize, dir: Option<PathBuf>) -> BodyCache {
        BodyCache::with_files(budget, dir, Files::Best)
    }

    fn with_files(budget: usize, dir: Option<PathBuf>, files: Files) -> BodyCache {
        BodyCache {
            arenas: Mutex::new((Arc::new(Arena::new(0, budget / 2, dir.as_deref(), files)), None)),
            budget,
            dir,
            files,
            shards: Default::default(),
        }
    }

    fn shard(&self, key: u32) -> &Mutex<HashMap<u32, (RangeBody, u64)>> {
        // Prefixes are uniform in their low bits; the corpus bit spreads too.
        &self.shards[((key ^ (key >> 20)) % 16) as usize]
    }

    pub(crate) fn get(&self, key: u32) -> Option<RangeBody> {
        if self.budget == 0 {
            return None;
        }
        self.shard(key).lock().unwrap_or_else(|e| e.into_inner()).get(&key).map(|(body, _)| body.clone())
    }

    /// Caches `body` under `key` and returns the cached copy (the same bytes,
    /// now in an arena), or `body` itself when it does not fit at all.
    pub(crate) fn insert(&self, key: u32, body: RangeBody) -> RangeBody {
        let len = body.bytes().len();
        if self.budget == 0 || len > self.budget / 2 {
            return body;
        }
        let (arena, offset) = {
            let mut arenas = self.arenas.lock().unwrap_or_else(|e| e.into_inner());
            match arenas.0.reserve(len) {
                Some(offset) => (arenas.0.clone(), offset),
                None => {
                    let current = Arc::clone(&arenas.0);
                    let retired = arenas.1.replace(current);
                    arenas.0 = Arc::new(Arena::new(
                        arenas.0.serial + 1,
                        self.budget / 2,
                        self.dir.as_deref(),
                        self.files,
                    ));
                    if let Some(retired) = retired {
                        self.forget(retired.serial);
                    }
                    let offset = arenas.0.reserve(len).expect("a body fits an empty arena");
                    (arenas.0.clone(), offset)
                }
            }
        };
        let stored = match &arena.file {
            Some((file, _)) => match file.write_all_at(body.bytes(), offset as u64) {
                Ok(()) => Stored::Mapped { arena: Arc::clone(&arena), offset, len },
                // Out of memory for the file: serve from the heap, uncached.
                Err(_) => return body,
            },
            None => body.stored.clone(),
        };
        let cached = RangeBody { stored, digest: body.digest, hashes: body.hashes };
        // Under the arenas' lock: an arena retired while the body was written
        // must not get an entry that no later rotation would drop.
        let arenas = self.arenas.lock().unwrap_or_else(|e| e.into_inner());
        if arenas.0.serial == arena.serial || arenas.1.as_ref().is_some_and(|a| a.serial == arena.serial) {
            self.shard(key)
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .insert(key, (cached.clone(), arena.serial));
        }
        cached
    }

    /// Drops every cached body that lives in `arena`.
    fn forget(&self, serial: u64) {
        for shard in &self.shards {
            shard.lock().unwrap_or_else(|e| e.into_inner()).retain(|_, (_, s)| *s != serial);
        }
    }

    /// Bytes the arenas have handed out: what the cache holds, at most `budget`.
    #[cfg(test)]
    pub(crate) fn used(&self) -> usize {
        let arenas = self.arenas.lock().unwrap_or_else(|e| e.into_inner());
        arenas.0.used.load(Ordering::Acquire)
            + arenas.1.as_ref().map_or(0, |a| a.used.load(Ordering::Acquire))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn body(i: u32, len: usize) -> RangeBody {
        RangeBody::new((0..len).map(|j| (i as usize * 31 + j) as u8).collect(), 0)
    }

    /// What the kernel would send for a body: its span read back from the file.
    fn from_file(body: &RangeBody) -> Vec<u8> {
        let span = body.file_span().expect("cached in a file");
        let file = File::from(span.fd.try_clone_to_owned().unwrap());
        let mut out = vec![0u8; span.len];
        file.read_exact_at(&mut out, span.offset).unwrap();
        out
    }

    #[test]
    fn cached_bodies_are_in_files_and_outlive_their_eviction() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = Some(tmp.path().to_owned());
        for (dir, files) in [(dir.clone(), Files::Best), (None, Files::Best), (dir, Files::Portable)] {
            // Two arenas of four pages: two bodies of a page and a half each
            // (each starting on a page).
            let (budget, len) = (8 * PAGE, PAGE * 3 / 2);
            let cache = BodyCache::with_files(budget, dir, files);
            let first = cache.insert(0, body(0, len));
            assert_eq!(first.bytes(), body(0, len).bytes());
            assert_eq!(from_file(&first), first.bytes());
            for i in 1..20 {
                let cached = cache.insert(i, body(i, len));
                assert_eq!(cached.file_span().unwrap().offset % PAGE as u64, 0);
                assert_eq!(from_file(&cached), body(i, len).bytes());
                assert!(cache.used() <= budget);
                // The newest bodies are cached, the oldest are not.
                assert_eq!(cache.get(i).unwrap().bytes(), body(i, len).bytes());
                if i >= 4 {
                    assert!(cache.get(i - 4).is_none(), "{i}");
                }
            }
            // Evicted long ago, a body a request still holds is intact.
            assert!(cache.get(0).is_none());
            assert_eq!(first.bytes(), body(0, len).bytes());
            assert_eq!(from_file(&first), body(0, len).bytes());
            // Too large for an arena: served, not cached.
            let big = cache.insert(99, body(99, budget / 2 + 1));
            assert!(big.file_span().is_none() && cache.get(99).is_none());
            // No file is left with a name: the bodies go with the process.
            assert_eq!(std::fs::read_dir(tmp.path()).unwrap().count(), 0);
        }
    }

    #[test]
    fn without_a_directory_the_portable_cache_keeps_bodies_on_the_heap() {
        let cache = BodyCache::with_files(8 * PAGE, None, Files::Portable);
        let cached = cache.insert(1, body(1, 100));
        assert!(cached.file_span().is_none());
        assert_eq!(cache.get(1).unwrap().bytes(), body(1, 100).bytes());
    }

    #[test]
    fn no_budget_caches_nothing() {
        let cache = BodyCache::new(0, None);
        let b = cache.insert(1, body(1, 10));
        assert_eq!(b.bytes(), body(1, 10).bytes());
        assert!(b.file_span().is_none() && cache.get(1).is_none());
    }
}
