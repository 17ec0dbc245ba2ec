//! The bytes of an open segment, whatever its layout: the mmap, and the chunk
//! checksums that guard every read of it.
//!
//! Every layout keeps its body in `[HEADER_LEN, checksums_offset)`, covered by
//! one CRC-32 per [`CHECKSUM_CHUNK`] bytes, and ends with that list and its own
//! CRC; so checking reads against the list is the same code for every layout,
//! and lives here rather than in each of them.
//!
//! A segment kept elsewhere (an object store) is read through a local file of
//! its full length that starts out sparse: a [`Fetch`] fills the chunks a
//! lookup needs the first time their checksum does not match, and the check
//! then runs on the fetched bytes as on any others. A chunk that is missing
//! and a chunk that is damaged look alike (the checksum fails) and are
//! treated alike: fetched, then checked, then an error if still wrong.

use std::fs::File;
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use memmap2::Mmap;

use crate::format::{CHECKSUM_CHUNK, HEADER_LEN};
use crate::SegmentError;

/// An mapped segment file whose checksum list has been checked against its
/// own CRC.
pub(crate) struct SegmentFile {
    path: PathBuf,
    map: Mmap,
    /// The end of the checksummed body, where the checksum list starts.
    checksums_offset: u64,
    /// One bit per checksum chunk, set once the chunk matched its checksum:
    /// each is checked the first time a lookup reads it, and only then (a
    /// chunk's CRC costs microseconds; a bit test costs nothing).
    checked: Box<[AtomicU64]>,
    /// Where bytes come from that are not in the file yet; `None` for a
    /// segment whose file is whole.
    fetch: Option<Arc<dyn Fetch>>,
}

/// Fills byte ranges of a segment's local file from where the segment really
/// is (an object store), for a segment opened by
/// [`Segment::open_fetching`](crate::Segment::open_fetching).
pub trait Fetch: Send + Sync {
    /// Writes bytes `range` of the segment into its local file (the one the
    /// segment maps), so that reads of the mapping see them. Called with
    /// ranges that start and end on checksum-chunk boundaries (or the end of
    /// the file); a range of several chunks is wanted in one request.
    fn fetch(&self, range: Range<u64>) -> std::io::Result<()>;
}

/// Maps the file at `path` for reading.
pub(crate) fn map(path: &Path) -> Result<Mmap, SegmentError> {
    let file = File::open(path).map_err(|e| SegmentError::io(path, e))?;
    // SAFETY: segments are immutable once published (the store never writes to a
    // file a manifest names), so the mapping cannot change under us; truncation
    // by an outside actor is the one risk, as for every mmap reader.
    unsafe { Mmap::map(&file) }.map_err(|e| SegmentError::io(path, e))
}

/// The number of checksum chunks of a body that ends at `checksums_offset`.
pub(crate) fn chunks(checksums_offset: u64) -> u64 {
    checksums_offset.saturating_sub(HEADER_LEN as u64).div_ceil(CHECKSUM_CHUNK as u64)
}

impl SegmentFile {
    /// Takes a mapping whose header placed the checksum list at
    /// `checksums_offset` and the end of the file at `file_len`: checks that
    /// the list fills the rest of the file exactly, and its CRC.
    pub fn new(
        path: &Path,
        map: Mmap,
        checksums_offset: u64,
        file_len: u64,
        fetch: Option<Arc<dyn Fetch>>,
    ) -> Result<SegmentFile, SegmentError> {
        let chunks = chunks(checksums_offset);
        let end = checksums_offset.saturating_add(chunks * 4 + 4);
        for (what, found, want) in
            [("end of file", file_len, end), ("file length", map.len() as u64, file_len)]
        {
            if found != want {
                return Err(SegmentError::corrupt(path, 0, format!("{what} at {found}, expected {want}")));
            }
        }
        let checked = (0..chunks.div_ceil(64)).map(|_| AtomicU64::new(0)).collect();
        let file = SegmentFile { path: path.to_owned(), map, checksums_offset, checked, fetch };
        if !file.tail_ok() {
            if let Some(fetch) = &file.fetch {
                fetch.fetch(checksums_offset..file_len).map_err(|e| SegmentError::io(path, e))?;
            }
        }
        if !file.tail_ok() {
            return Err(file.corrupt(checksums_offset, "checksum table damaged"));
        }
        Ok(file)
    }

    /// Whether the checksum list matches its own CRC.
    fn tail_ok(&self) -> bool {
        let (crcs, tail_crc) =
            self.map[self.checksums_offset as usize..].split_at(chunks(self.checksums_offset) as usize * 4);
        crc32fast::hash(crcs).to_le_bytes() == tail_crc
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Makes bytes `range` local and checked (see the module), in one fetch
    /// for the chunks that are not.
    pub fn prefetch(&self, range: Range<u64>) -> Result<(), SegmentError> {
        self.check_chunks(range.start, range.end)
    }

    /// The whole file.
    #[inline]
    pub fn bytes(&self) -> &[u8] {
        &self.map
    }

    pub fn corrupt(&self, offset: u64, detail: impl Into<String>) -> SegmentError {
        SegmentError::corrupt(&self.path, offset, detail)
    }

    pub fn usage(&self, detail: impl Into<String>) -> SegmentError {
        SegmentError::Usage { path: self.path.clone(), detail: detail.into() }
    }

    /// Checks the chunks holding bytes `start..end` against their checksums,
    /// each once per open segment; bytes outside the checksummed body (the
    /// header, checked on open) are skipped.
    #[inline]
    pub fn check_span(&self, start: u64, end: u64) -> Result<(), SegmentError> {
        // Every lookup checks a few spans, nearly always inside one chunk
        // checked already: that case is one bit test, inlined.
        let c = start.wrapping_sub(HEADER_LEN as u64) / CHECKSUM_CHUNK as u64;
        let same_chunk = start >= HEADER_LEN as u64
            && end > start
            && (end - 1 - HEADER_LEN as u64) / CHECKSUM_CHUNK as u64 == c
            && end <= self.checksums_offset;
        if same_chunk && self.checked[(c / 64) as usize].load(Ordering::Relaxed) & (1 << (c % 64)) != 0 {
            return Ok(());
        }
        self.check_chunks(start, end)
    }

    /// [`check_span`](Self::check_span) beyond its one-checked-chunk case.
    #[inline(never)]
    fn check_chunks(&self, start: u64, end: u64) -> Result<(), SegmentError> {
        let body_end = self.checksums_offset;
        let (start, end) = (start.max(HEADER_LEN as u64), end.min(body_end));
        if start >= end {
            return Ok(());
        }
        let chunk = CHECKSUM_CHUNK as u64;
        let span = (start - HEADER_LEN as u64) / chunk..=(end - 1 - HEADER_LEN as u64) / chunk;
        if let Some(fetch) = &self.fetch {
            self.fetch_missing(&**fetch, span.clone())?;
        }
        for c in span {
            let (word, bit) = (&self.checked[(c / 64) as usize], 1u64 << (c % 64));
            if word.load(Ordering::Relaxed) & bit != 0 {
                continue;
            }
            let lo = HEADER_LEN as u64 + c * chunk;
            let hi = (lo + chunk).min(body_end);
            let at = (body_end + 4 * c) as usize;
            if crc32fast::hash(&self.map[lo as usize..hi as usize]).to_le_bytes() != self.map[at..at + 4] {
                return Err(self.corrupt(lo, "block checksum mismatch"));
            }
            word.fetch_or(bit, Ordering::Relaxed);
        }
        Ok(())
    }

    /// Fetches the chunks of `span` that are neither checked nor match their
    /// checksum, from the first such to the last, in one request; the chunks
    /// that match on the way are marked checked.
    #[cold]
    fn fetch_missing(
        &self,
        fetch: &dyn Fetch,
        span: std::ops::RangeInclusive<u64>,
    ) -> Result<(), SegmentError> {
        let body_end = self.checksums_offset;
        let chunk = CHECKSUM_CHUNK as u64;
        let mut missing: Option<(u64, u64)> = None;
        for c in span {
            let (word, bit) = (&self.checked[(c / 64) as usize], 1u64 << (c % 64));
            if word.load(Ordering::Relaxed) & bit != 0 {
                continue;
            }
            let lo = HEADER_LEN as u64 + c * chunk;
            let hi = (lo + chunk).min(body_end);
            let at = (body_end + 4 * c) as usize;
            if crc32fast::hash(&self.map[lo as usize..hi as usize]).to_le_bytes() == self.map[at..at + 4] {
                word.fetch_or(bit, Ordering::Relaxed);
            } else {
                missing = Some((missing.map_or(lo, |(first, _)| first), hi));
            }
        }
        match missing {
            Some((lo, hi)) => fetch.fetch(lo..hi).map_err(|e| SegmentError::io(&self.path, e)),
            None => Ok(()),
        }
    }

    /// Checks every chunk checksum; the error names the offset of the first bad chunk.
    pub fn verify(&self) -> Result<(), SegmentError> {
        if self.fetch.is_some() {
            // Fetched whole first, in one request, rather than chunk by chunk.
            self.check_chunks(HEADER_LEN as u64, self.checksums_offset)?;
        }
        let body = &self.map[HEADER_LEN..self.checksums_offset as usize];
        let tail = &self.map[self.checksums_offset as usize..];
        let (crcs, tail_crc) = tail.split_at(tail.len() - 4);
        if crc32fast::hash(crcs).to_le_bytes() != tail_crc {
            return Err(self.corrupt(self.checksums_offset, "checksum table damaged"));
        }
        for (i, (chunk, crc)) in body.chunks(CHECKSUM_CHUNK).zip(crcs.chunks_exact(4)).enumerate() {
            if crc32fast::hash(chunk).to_le_bytes() != crc {
                return Err(self.corrupt((HEADER_LEN + i * CHECKSUM_CHUNK) as u64, "block checksum mismatch"));
            }
        }
        Ok(())
    }
}

impl SegmentFile {
    /// The u32 at byte `at`, which the layout has checked lies in the file.
    #[inline]
    pub fn u32_at(&self, at: usize) -> u32 {
        u32::from_le_bytes(self.map[at..at + 4].try_into().expect("4 bytes"))
    }

    /// The u64 at byte `at`, which the layout has checked lies in the file.
    #[inline]
    pub fn u64_at(&self, at: usize) -> u64 {
        u64::from_le_bytes(self.map[at..at + 8].try_into().expect("8 bytes"))
    }

    /// The slot of a table of `slots + 1` ascending u32 entry indices at
    /// `table` (every layout's first-entry-of-each-bucket table) that holds
    /// entry `index`: the last slot whose start is at most `index`.
    pub fn slot_of_index(&self, table: u64, slots: usize, index: usize) -> usize {
        let table = table as usize;
        let (mut lo, mut hi) = (0, slots);
        while hi - lo > 1 {
            let mid = lo + (hi - lo) / 2;
            if self.u32_at(table + 4 * mid) as usize <= index {
                lo = mid;
            } else {
                hi = mid;
            }
        }
        lo
    }
}

/// The number of entries in `range` for which `pred` holds (a prefix of it).
#[inline]
pub(crate) fn partition(range: std::ops::Range<usize>, pred: impl Fn(usize) -> bool) -> usize {
    let (mut lo, mut hi) = (range.start, range.end);
    while lo < hi {
        let mid = lo + (hi - lo) / 2;
        if pred(mid) {
            lo = mid + 1;
        } else {
            hi = mid;
        }
    }
    lo - range.start
}
