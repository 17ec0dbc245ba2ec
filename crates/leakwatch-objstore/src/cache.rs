//! The local cache of segment bytes: one sparse file per segment, of the
//! segment's full length, that a lookup fills by range reads of the object
//! (see `leakwatch_segment::Fetch`).
//!
//! Which bytes of a file are there is not recorded anywhere: a chunk whose
//! checksum matches is there, one that does not is fetched (a hole reads as
//! zeros, which fail the checksum unless the chunk really is zeros). So a
//! cache that outlives its process, was cut short by a crash or was damaged
//! on disk still gives right answers, or an error after a fetch that did not
//! help, never a wrong one.
//!
//! The cache is bounded by `--cache-size`: when its files hold more than
//! that, the least recently opened ones are deleted, but never one that a
//! segment of this process has open (its mapping stays valid, and its fetched
//! chunks are not fetched twice). A working set larger than the bound keeps
//! its files until they close.

use std::collections::HashMap;
use std::fs::{self, File, OpenOptions};
use std::ops::Range;
use std::os::unix::fs::{FileExt, MetadataExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::SystemTime;

use leakwatch_segment::{Fetch, Segment, SegmentError};
use leakwatch_store::StoreError;

use crate::error::local;
use crate::storage::Remote;

/// The default of `--cache-size`: 8 GiB, enough for the tables and the hot
/// ranges of a corpus of several billion hashes.
pub const DEFAULT_CACHE_SIZE: u64 = 8 << 30;

/// Bytes of the first read of a segment not in the cache: its header (128
/// bytes) and the start of its body, in one request that also tells the
/// object's length.
const HEAD_READ: u64 = 64 << 10;

/// The segment files of one cache directory.
pub(crate) struct Cache {
    dir: PathBuf,
    limit: u64,
    /// Bytes the files hold, as last counted plus what was added since.
    used: AtomicU64,
    /// The files open segments read through, by name: never evicted.
    open: Mutex<HashMap<String, Weak<CacheFile>>>,
}

impl std::fmt::Debug for Cache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Cache").field("dir", &self.dir).field("limit", &self.limit).finish()
    }
}

/// One segment's cache file, and how to fill it.
pub(crate) struct CacheFile {
    name: String,
    file: File,
    remote: Arc<Remote>,
    cache: Weak<Cache>,
    /// The object's length.
    len: u64,
    /// Serializes fetches of one file, and remembers what they brought.
    fetched: Mutex<Fetched>,
}

/// What the fetches of one file brought, and where the next would go on.
#[derive(Default)]
struct Fetched {
    /// So that lookups racing for the same chunk fetch it once.
    ranges: Vec<Range<u64>>,
    /// Where the last fetch ended, and how far ahead the next one reads if
    /// it starts there: a scan (a merge, `verify`) reads a growing window
    /// ahead instead of one GET per chunk, a lookup reads what it needs.
    last_end: u64,
    window: u64,
}

/// The most a scan reads ahead in one GET.
const MAX_READ_AHEAD: u64 = 32 << 20;

impl Cache {
    /// The cache in `dir` (created if missing), bounded to `limit` bytes.
    pub fn new(dir: &Path, limit: u64) -> Result<Cache, StoreError> {
        fs::create_dir_all(dir).map_err(|e| local(dir, e))?;
        let cache = Cache { dir: dir.to_owned(), limit, used: AtomicU64::new(0), open: Mutex::default() };
        cache.used.store(cache.scan()?.iter().map(|f| f.bytes).sum(), Ordering::Relaxed);
        Ok(cache)
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }

    /// Opens segment `name` through its cache file, creating the file (one
    /// ranged GET) when it is not there.
    pub fn open(self: &Arc<Self>, remote: &Arc<Remote>, name: &str) -> Result<Segment, SegmentError> {
        let path = self.path(name);
        let live = self.open.lock().unwrap_or_else(|e| e.into_inner()).get(name).and_then(Weak::upgrade);
        let url = remote.url_of(&segment_key(name));
        if let Some(file) = live {
            return Segment::open_fetching(&path, &url, file);
        }
        let io = |e| SegmentError::Io { path: url.clone(), source: e };
        // A file left by an earlier process is used as it is: its chunks are
        // checked like fetched ones. One whose header or length is wrong (a
        // crash while it was made) is made again.
        for fresh in [false, true] {
            if fresh || !path.exists() {
                self.create(remote, name, &path).map_err(io)?;
            }
            let file = OpenOptions::new().read(true).write(true).open(&path).map_err(io)?;
            // The opening time orders eviction.
            file.set_modified(SystemTime::now()).map_err(io)?;
            let len = file.metadata().map_err(io)?.len();
            let cached = Arc::new(CacheFile {
                name: name.to_owned(),
                file,
                len,
                remote: Arc::clone(remote),
                cache: Arc::downgrade(self),
                fetched: Mutex::default(),
            });
            {
                // Registered before it is filled: the fetches of its opening
                // may evict, and must not evict it.
                let mut open = self.open.lock().unwrap_or_else(|e| e.into_inner());
                open.retain(|_, f| f.strong_count() > 0);
                open.insert(name.to_owned(), Arc::downgrade(&cached));
            }
            match Segment::open_fetching(&path, &url, cached.clone()) {
                Ok(seg) => {
                    // Now that it is held open, the cache may shrink to its bound.
                    self.added(0);
                    return Ok(seg);
                }
                Err(e @ SegmentError::Io { .. }) => return Err(e),
                Err(e) if fresh => return Err(e),
                Err(_) => continue,
            }
        }
        unreachable!("the second attempt returns")
    }

    /// Makes the cache file of `name`: the object's length, its first bytes.
    fn create(&self, remote: &Remote, name: &str, path: &Path) -> std::io::Result<()> {
        let (head, size) = remote.get_range(&segment_key(name), 0..HEAD_READ)?;
        let tmp = self.dir.join(format!(".{name}.{}.new", std::process::id()));
        let file = File::create(&tmp)?;
        file.set_len(size)?;
        file.write_all_at(&head, 0)?;
        fs::rename(&tmp, path)?;
        // Counted by the next eviction's scan, not here: an eviction now
        // could take the file before its segment holds it open.
        self.used.fetch_add(head.len() as u64, Ordering::Relaxed);
        Ok(())
    }

    /// Takes `staged`, the whole of segment `name` just written, as its cache
    /// file: a writer's new segments are read from local bytes at once.
    pub fn adopt(&self, staged: &Path, name: &str) -> Result<(), StoreError> {
        let path = self.path(name);
        let is_open = self
            .open
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(name)
            .is_some_and(|f| f.strong_count() > 0);
        if is_open {
            // Its file is mapped: the same bytes are on their way into it.
            return fs::remove_file(staged).map_err(|e| local(staged, e));
        }
        let bytes = fs::metadata(staged).map_err(|e| local(staged, e))?.len();
        fs::rename(staged, &path).map_err(|e| local(&path, e))?;
        self.added(bytes);
        Ok(())
    }

    /// Drops the cache file of a deleted object, unless a segment has it open.
    pub fn forget(&self, name: &str) {
        let open = self.open.lock().unwrap_or_else(|e| e.into_inner());
        if open.get(name).is_none_or(|f| f.strong_count() == 0) {
            // Missing already is as good as removed; anything else is only
            // space, which eviction reclaims.
            let _ = fs::remove_file(self.path(name));
        }
    }

    fn added(&self, bytes: u64) {
        if self.used.fetch_add(bytes, Ordering::Relaxed) + bytes > self.limit {
            // Failing to evict leaves the cache over its bound until the next
            // try; it never fails a lookup.
            let _ = self.evict();
        }
    }

    /// The files in the cache, with the bytes each holds on disk.
    fn scan(&self) -> Result<Vec<Entry>, StoreError> {
        let mut files = Vec::new();
        for entry in fs::read_dir(&self.dir).map_err(|e| local(&self.dir, e))? {
            let entry = entry.map_err(|e| local(&self.dir, e))?;
            let Ok(meta) = entry.metadata() else { continue };
            if !meta.is_file() {
                continue;
            }
            files.push(Entry {
                name: entry.file_name().to_string_lossy().into_owned(),
                // Allocated bytes, not the length: a sparse file holds only
                // what was fetched.
                bytes: meta.blocks() * 512,
                opened: meta.modified().unwrap_or(SystemTime::UNIX_EPOCH),
            });
        }
        Ok(files)
    }

    /// Deletes the least recently opened files that no segment has open until
    /// the cache holds at most nine tenths of its bound.
    fn evict(&self) -> Result<(), StoreError> {
        let mut files = self.scan()?;
        let mut used: u64 = files.iter().map(|f| f.bytes).sum();
        files.sort_by_key(|f| f.opened);
        let open = self.open.lock().unwrap_or_else(|e| e.into_inner());
        let target = self.limit / 10 * 9;
        for f in files {
            if used <= target {
                break;
            }
            if open.get(&f.name).is_some_and(|w| w.strong_count() > 0) {
                continue;
            }
            if fs::remove_file(self.dir.join(&f.name)).is_ok() {
                used -= f.bytes;
            }
        }
        self.used.store(used, Ordering::Relaxed);
        Ok(())
    }
}

struct Entry {
    name: String,
    bytes: u64,
    opened: SystemTime,
}

/// The key of segment `name` under the store's prefix.
pub(crate) fn segment_key(name: &str) -> String {
    format!("segments/{name}")
}

impl Fetch for CacheFile {
    fn fetch(&self, range: Range<u64>) -> std::io::Result<()> {
        let mut fetched = self.fetched.lock().unwrap_or_else(|e| e.into_inner());
        if fetched.ranges.iter().any(|r| r.start <= range.start && range.end <= r.end) {
            // Another lookup brought these bytes while this one waited; if
            // they are wrong, the checksum says so.
            return Ok(());
        }
        let mut range = range;
        if range.start == fetched.last_end && range.start > 0 {
            fetched.window = (fetched.window * 2).clamp(1 << 20, MAX_READ_AHEAD);
            range.end = range.end.max((range.start + fetched.window).min(self.len));
        } else {
            fetched.window = 0;
        }
        let (bytes, size) = self.remote.get_range(&segment_key(&self.name), range.clone())?;
        let want = range.end.min(size).saturating_sub(range.start);
        if bytes.len() as u64 != want {
            // A short read of an object shorter than its cache file: what
            // was read is kept out, and the checksum check fails.
            return Err(std::io::Error::other(format!(
                "read {} bytes at {}, expected {want} (the object is {size} bytes)",
                bytes.len(),
                range.start
            )));
        }
        self.file.write_all_at(&bytes, range.start)?;
        fetched.last_end = range.end;
        fetched.ranges.push(range);
        if let Some(cache) = self.cache.upgrade() {
            cache.added(want);
        }
        Ok(())
    }
}
