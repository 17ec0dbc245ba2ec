//! Reads a segment straight off an mmap. Opening checks the header, that every
//! section lies inside the file and the checksum table's own checksum; lookups
//! check table entries before trusting them, and each 64 KiB chunk against its
//! checksum the first time they read it, so a damaged file yields
//! `DataCorruption`, never a panic, a wrong slice or a wrong answer from bytes
//! that changed on disk.

use std::fs::File;
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use memmap2::Mmap;

use crate::format::{
    Header, HeaderError, Kind, Layout, CHECKSUM_CHUNK, FORMAT_VERSION, HEADER_LEN, MAX_KEY_LEN,
    PACKED_VERSION,
};
use crate::packed::{key_bits, low_chunks, put_key_bits, BitReader, Params};
use crate::SegmentError;

/// A full key and its entry index, as [`Segment::iter`] yields them.
pub type KeyAt = ([u8; MAX_KEY_LEN], usize);

/// An open, immutable segment.
pub struct Segment {
    path: PathBuf,
    map: Mmap,
    header: Header,
    layout: Layout,
    /// The widths of a packed (version 2) segment.
    packed: Option<Params>,
    /// One bit per checksum chunk, set once the chunk matched its checksum:
    /// each is checked the first time a lookup reads it, and only then (a
    /// chunk's CRC costs microseconds; a bit test costs nothing).
    checked: Box<[AtomicU64]>,
    /// Whether the whole overflow table has been checked: a count's binary
    /// search reads it anywhere, so it is checked whole, once.
    overflow_checked: AtomicBool,
}

impl std::fmt::Debug for Segment {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Segment").field("path", &self.path).field("header", &self.header).finish()
    }
}

impl Segment {
    pub fn open(path: &Path) -> Result<Segment, SegmentError> {
        let file = File::open(path).map_err(|e| SegmentError::io(path, e))?;
        // SAFETY: segments are immutable once published (the store never writes to a
        // file a manifest names), so the mapping cannot change under us; truncation
        // by an outside actor is the one risk, as for every mmap reader.
        let map = unsafe { Mmap::map(&file) }.map_err(|e| SegmentError::io(path, e))?;
        Segment::from_map(path, map)
    }

    /// A segment whose bytes are already in memory (a store kept in memory, or
    /// one whose objects are fetched whole), copied into an anonymous mapping
    /// so that every read goes through the same `Mmap` as a file's. `path`
    /// names it in errors.
    pub fn from_bytes(path: &Path, bytes: &[u8]) -> Result<Segment, SegmentError> {
        let mut map =
            memmap2::MmapMut::map_anon(bytes.len().max(1)).map_err(|e| SegmentError::io(path, e))?;
        map[..bytes.len()].copy_from_slice(bytes);
        // An anonymous mapping cannot be empty: an empty object becomes one
        // zero byte, whose header does not decode, as an empty file's does not.
        let map = map.make_read_only().map_err(|e| SegmentError::io(path, e))?;
        Segment::from_map(path, map)
    }

    fn from_map(path: &Path, map: Mmap) -> Result<Segment, SegmentError> {
        let header = Header::decode(&map).map_err(|e| match e {
            HeaderError::Corrupt(detail) => SegmentError::corrupt(path, 0, detail),
            HeaderError::Version(found) => {
                SegmentError::UnsupportedVersion { path: path.to_owned(), found, supported: FORMAT_VERSION }
            }
        })?;
        let layout = Layout::new(header.kind, header.prefix_bits);
        let packed = (header.version == PACKED_VERSION).then_some(Params {
            key_len: header.kind.key_len(),
            prefix_bits: header.prefix_bits,
            upper_bits: header.upper_bits,
            count_bits: header.count_bits,
        });
        let chunks =
            header.checksums_offset.saturating_sub(HEADER_LEN as u64).div_ceil(CHECKSUM_CHUNK as u64);
        let checked = (0..chunks.div_ceil(64)).map(|_| AtomicU64::new(0)).collect();
        let segment = Segment {
            path: path.to_owned(),
            map,
            header,
            layout,
            packed,
            checked,
            overflow_checked: AtomicBool::new(false),
        };
        segment.check_sections()?;
        segment.check_checksums()?;
        Ok(segment)
    }

    /// Checks that the sections tile the file in order, as the writer lays them out.
    fn check_sections(&self) -> Result<(), SegmentError> {
        let h = &self.header;
        let n = h.entry_count;
        let table_len = 4 * ((1u64 << h.prefix_bits) + 1);
        let chunks = (h.checksums_offset.saturating_sub(HEADER_LEN as u64)).div_ceil(CHECKSUM_CHUNK as u64);
        if self.packed.is_some() {
            // Data (at least its 8 slack bytes), entry table, bit table, checksums.
            let offsets_len = 8 * ((1u64 << h.prefix_bits) + 1);
            let expected = [
                ("data", h.entries_offset, HEADER_LEN as u64),
                ("entry table", h.table_offset, h.table_offset.max(HEADER_LEN as u64 + 8)),
                ("bit table", h.overflow_offset, h.table_offset.saturating_add(table_len)),
                ("checksums", h.checksums_offset, h.overflow_offset.saturating_add(offsets_len)),
                (
                    "heap",
                    h.heap_offset.saturating_add(h.heap_len).saturating_add(h.overflow_count),
                    h.checksums_offset,
                ),
                ("end of file", h.file_len, h.checksums_offset.saturating_add(chunks * 4 + 4)),
                ("file length", self.map.len() as u64, h.file_len),
            ];
            return self.check_tiling(&expected, n);
        }
        let expected = [
            ("entries", h.entries_offset, HEADER_LEN as u64),
            (
                "prefix table",
                h.table_offset,
                h.entries_offset.saturating_add(n.saturating_mul(self.layout.entry_len as u64)),
            ),
            ("overflow table", h.overflow_offset, h.table_offset.saturating_add(table_len)),
            ("heap", h.heap_offset, h.overflow_offset.saturating_add(h.overflow_count.saturating_mul(12))),
            ("checksums", h.checksums_offset, h.heap_offset.saturating_add(h.heap_len)),
            ("end of file", h.file_len, h.checksums_offset.saturating_add(chunks * 4 + 4)),
            ("file length", self.map.len() as u64, h.file_len),
        ];
        self.check_tiling(&expected, n)
    }

    /// Each section at the offset the one before it ends (`expected` holds
    /// (section, offset found, offset the layout implies)), and `n` entries
    /// indexable with 32 bits.
    fn check_tiling(&self, expected: &[(&str, u64, u64)], n: u64) -> Result<(), SegmentError> {
        for &(what, found, want) in expected {
            if found != want {
                return Err(SegmentError::corrupt(
                    &self.path,
                    0,
                    format!("{what} at {found}, expected {want}"),
                ));
            }
        }
        if n > u64::from(u32::MAX) {
            return Err(SegmentError::corrupt(&self.path, 0, "entry count beyond 2^32"));
        }
        Ok(())
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn kind(&self) -> Kind {
        self.header.kind
    }

    pub fn layout(&self) -> Layout {
        self.layout
    }

    pub fn len(&self) -> u64 {
        self.header.entry_count
    }

    pub fn is_empty(&self) -> bool {
        self.header.entry_count == 0
    }

    /// Bytes on disk.
    pub fn file_len(&self) -> u64 {
        self.header.file_len
    }

    /// Checks the checksum table against its own checksum: every chunk's
    /// check trusts it.
    fn check_checksums(&self) -> Result<(), SegmentError> {
        let tail = &self.map[self.header.checksums_offset as usize..];
        let (crcs, tail_crc) = tail.split_at(tail.len() - 4);
        if crc32fast::hash(crcs).to_le_bytes() != tail_crc {
            return Err(SegmentError::corrupt(
                &self.path,
                self.header.checksums_offset,
                "checksum table damaged",
            ));
        }
        Ok(())
    }

    /// Checks the chunks holding bytes `start..end` against their checksums,
    /// each once per open segment; bytes outside the checksummed body (the
    /// header, checked on open) are skipped.
    fn check_span(&self, start: u64, end: u64) -> Result<(), SegmentError> {
        let body_end = self.header.checksums_offset;
        let (start, end) = (start.max(HEADER_LEN as u64), end.min(body_end));
        if start >= end {
            return Ok(());
        }
        let chunk = CHECKSUM_CHUNK as u64;
        for c in (start - HEADER_LEN as u64) / chunk..=(end - 1 - HEADER_LEN as u64) / chunk {
            let (word, bit) = (&self.checked[(c / 64) as usize], 1u64 << (c % 64));
            if word.load(Ordering::Relaxed) & bit != 0 {
                continue;
            }
            let lo = HEADER_LEN as u64 + c * chunk;
            let hi = (lo + chunk).min(body_end);
            let at = (body_end + 4 * c) as usize;
            if crc32fast::hash(&self.map[lo as usize..hi as usize]).to_le_bytes() != self.map[at..at + 4] {
                return Err(SegmentError::corrupt(&self.path, lo, "block checksum mismatch"));
            }
            word.fetch_or(bit, Ordering::Relaxed);
        }
        Ok(())
    }

    /// Checks the overflow table, which a count's binary search may read anywhere.
    fn check_overflow(&self) -> Result<(), SegmentError> {
        if self.overflow_checked.load(Ordering::Relaxed) {
            return Ok(());
        }
        let start = self.header.overflow_offset;
        self.check_span(start, start + 12 * self.header.overflow_count)?;
        self.overflow_checked.store(true, Ordering::Relaxed);
        Ok(())
    }

    /// Checks every chunk checksum; the error names the offset of the first bad chunk.
    pub fn verify(&self) -> Result<(), SegmentError> {
        let body = &self.map[HEADER_LEN..self.header.checksums_offset as usize];
        let tail = &self.map[self.header.checksums_offset as usize..];
        let crcs = &tail[..tail.len() - 4];
        self.check_checksums()?;
        for (i, (chunk, crc)) in body.chunks(CHECKSUM_CHUNK).zip(crcs.chunks_exact(4)).enumerate() {
            if crc32fast::hash(chunk).to_le_bytes() != crc {
                let offset = (HEADER_LEN + i * CHECKSUM_CHUNK) as u64;
                return Err(SegmentError::corrupt(&self.path, offset, "block checksum mismatch"));
            }
        }
        Ok(())
    }

    fn table(&self, slot: usize) -> u32 {
        let at = self.header.table_offset as usize + 4 * slot;
        u32::from_le_bytes(self.map[at..at + 4].try_into().expect("4 bytes"))
    }

    /// The entries of one prefix-table bucket, their bytes checked.
    fn bucket(&self, bucket: usize) -> Result<Range<usize>, SegmentError> {
        let at = self.header.table_offset + 4 * bucket as u64;
        self.check_span(at, at + 8)?;
        let (start, end) = (self.table(bucket) as usize, self.table(bucket + 1) as usize);
        if start > end || end as u64 > self.header.entry_count {
            return Err(SegmentError::corrupt(&self.path, at, "prefix table out of order"));
        }
        let len = self.layout.entry_len as u64;
        self.check_span(HEADER_LEN as u64 + start as u64 * len, HEADER_LEN as u64 + end as u64 * len)?;
        Ok(start..end)
    }

    fn entry(&self, index: usize) -> &[u8] {
        let len = self.layout.entry_len;
        let at = HEADER_LEN + index * len;
        &self.map[at..at + len]
    }

    /// Compares the stored part of entry `index` with the same part of `key`
    /// (both share the bucket's prefix, so the rest decides).
    fn cmp_stored(&self, index: usize, key: &[u8]) -> std::cmp::Ordering {
        let l = &self.layout;
        let entry = self.entry(index);
        let stored = &entry[..l.kind.key_len() - l.skip];
        let target = &key[l.skip..];
        let mask = 0xFFu8 >> (l.prefix_bits % 8);
        (stored[0] & mask).cmp(&(target[0] & mask)).then_with(|| stored[1..].cmp(&target[1..]))
    }

    /// The entries whose key equals `key` (several for accounts and domains).
    pub fn find(&self, key: &[u8]) -> Result<Range<usize>, SegmentError> {
        if key.len() != self.header.kind.key_len() {
            return Ok(0..0);
        }
        if let Some(params) = self.packed {
            return Ok(match self.packed_find(&params, key)? {
                Some((index, _)) => index..index + 1,
                None => 0..0,
            });
        }
        let bucket = self.bucket(self.layout.bucket_of(key))?;
        let lo = bucket.start + self.partition(bucket.clone(), |i| self.cmp_stored(i, key).is_lt());
        let hi = bucket.start + self.partition(bucket, |i| self.cmp_stored(i, key).is_le());
        Ok(lo..hi.max(lo))
    }

    /// The number of entries in `range` for which `pred` holds (a prefix of it).
    fn partition(&self, range: Range<usize>, pred: impl Fn(usize) -> bool) -> usize {
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

    /// The entries whose key starts with the 20-bit `prefix` (one k-anonymity range):
    /// one contiguous run of the entry section.
    pub fn range20(&self, prefix: u32) -> Result<Range<usize>, SegmentError> {
        let prefix = prefix & 0xF_FFFF;
        if let Some(params) = self.packed {
            let (block, skip, len) = self.packed_range(&params, prefix)?;
            let start = block.start as usize + skip;
            return Ok(start..start + len);
        }
        let p = u32::from(self.layout.prefix_bits);
        let bucket = self.bucket((prefix >> (20 - p)) as usize)?;
        if p == 20 {
            return Ok(bucket);
        }
        let mut lo_key = [0u8; MAX_KEY_LEN];
        lo_key[..3].copy_from_slice(&(prefix << 4).to_be_bytes()[1..]);
        let next = prefix + 1;
        let mut hi_key = [0u8; MAX_KEY_LEN];
        hi_key[..3].copy_from_slice(&(next << 4).to_be_bytes()[1..]);
        let key_len = self.header.kind.key_len();
        let lo =
            bucket.start + self.partition(bucket.clone(), |i| self.cmp_stored(i, &lo_key[..key_len]).is_lt());
        let hi = if next >> (20 - p) != prefix >> (20 - p) {
            bucket.end
        } else {
            bucket.start + self.partition(bucket, |i| self.cmp_stored(i, &hi_key[..key_len]).is_lt())
        };
        Ok(lo..hi.max(lo))
    }

    /// The bucket holding entry `index` (a binary search of the prefix table).
    fn bucket_of_index(&self, index: usize) -> usize {
        let slots = 1usize << self.layout.prefix_bits;
        let (mut lo, mut hi) = (0, slots);
        // Last slot whose start <= index.
        while hi - lo > 1 {
            let mid = lo + (hi - lo) / 2;
            if self.table(mid) as usize <= index {
                lo = mid;
            } else {
                hi = mid;
            }
        }
        lo
    }

    /// The full key of entry `index`, with the implied prefix bits restored.
    ///
    /// In a packed segment this decodes the entry's bucket up to it; a damaged
    /// bucket gives an all-zero key (the range and iteration calls report it).
    pub fn key(&self, index: usize) -> [u8; MAX_KEY_LEN] {
        if let Some(params) = self.packed {
            return self.packed_entry(&params, index).map_or([0; MAX_KEY_LEN], |e| e.0);
        }
        self.key_in_bucket(self.bucket_of_index(index), index)
    }

    fn key_in_bucket(&self, bucket: usize, index: usize) -> [u8; MAX_KEY_LEN] {
        let l = &self.layout;
        let key_len = l.kind.key_len();
        let mut key = [0u8; MAX_KEY_LEN];
        let p = u32::from(l.prefix_bits);
        let top = if p == 0 { [0; 4] } else { ((bucket as u32) << (32 - p)).to_be_bytes() };
        key[..l.skip].copy_from_slice(&top[..l.skip]);
        key[l.skip..key_len].copy_from_slice(&self.entry(index)[..key_len - l.skip]);
        let free = l.prefix_bits % 8;
        if free > 0 {
            let low = 0xFFu8 >> free;
            key[l.skip] = (key[l.skip] & low) | (top[l.skip] & !low);
        }
        key
    }

    /// The count of entry `index` (counted kinds only; 0 otherwise).
    pub fn count(&self, index: usize) -> Result<u64, SegmentError> {
        if let Some(params) = self.packed {
            return self.packed_entry(&params, index).map(|e| e.1);
        }
        match self.inline_count(index) {
            Some(count) => Ok(count),
            None => {
                self.check_overflow()?;
                let n = self.header.overflow_count as usize;
                let k = self.partition(0..n, |k| self.overflow_at(k).0 < index);
                self.overflow_count(k, index)
            }
        }
    }

    /// The count stored in entry `index` itself, `None` when it is in the
    /// overflow table (0 for kinds without counts).
    fn inline_count(&self, index: usize) -> Option<u64> {
        let l = &self.layout;
        if !l.kind.has_count() {
            return Some(0);
        }
        let entry = self.entry(index);
        let inline = if l.small_bits > 0 {
            u64::from(entry[0] >> (8 - l.small_bits))
        } else {
            u64::from(entry[l.count_byte_offset()])
        };
        (inline < l.inline_count_max()).then_some(inline)
    }

    /// Overflow table row `k`: (entry index, count). `k` < overflow_count, whose
    /// rows lie inside the file (checked on open).
    fn overflow_at(&self, k: usize) -> (usize, u64) {
        let o = self.header.overflow_offset as usize + 12 * k;
        let idx = u32::from_le_bytes(self.map[o..o + 4].try_into().expect("4 bytes"));
        let count = u64::from_le_bytes(self.map[o + 4..o + 12].try_into().expect("8 bytes"));
        (idx as usize, count)
    }

    /// The count of entry `index` from overflow row `k`, which must be its row.
    fn overflow_count(&self, k: usize, index: usize) -> Result<u64, SegmentError> {
        match (k < self.header.overflow_count as usize).then(|| self.overflow_at(k)) {
            Some((idx, count)) if idx == index => Ok(count),
            _ => Err(SegmentError::corrupt(
                &self.path,
                self.header.overflow_offset,
                format!("no overflow count for entry {index}"),
            )),
        }
    }

    /// The entries of the range `prefix` (the top 20 bits of a key) in key
    /// order, as (full key, count): the run [`Segment::range20`] finds, walked
    /// without the per-entry searches of [`Segment::key`] and [`Segment::count`]
    /// (the bucket is known, and the run's overflow rows are consecutive).
    pub fn range20_entries(&self, prefix: u32) -> Result<RangeEntries<'_>, SegmentError> {
        if let Some(params) = self.packed {
            let (block, skip, len) = self.packed_range(&params, prefix & 0xF_FFFF)?;
            let mut decoder = self.decoder(params, block);
            decoder.pass(skip)?;
            return Ok(RangeEntries { inner: Inner::Packed { decoder, left: len } });
        }
        let run = self.range20(prefix)?;
        self.check_overflow()?;
        let bucket = ((prefix & 0xF_FFFF) >> (20 - u32::from(self.layout.prefix_bits))) as usize;
        let rows = self.header.overflow_count as usize;
        let overflow = self.partition(0..rows, |k| self.overflow_at(k).0 < run.start);
        Ok(RangeEntries {
            inner: Inner::Fixed { seg: self, bucket, next: run.start, end: run.end, overflow },
        })
    }

    /// The fixed value bytes of entry `index`.
    pub fn value(&self, index: usize) -> &[u8] {
        if self.packed.is_some() {
            // The packed kinds have counts only.
            return &[];
        }
        &self.entry(index)[self.layout.value_offset()..]
    }

    /// For domain segments: the breach id and heap payload of entry `index`.
    pub fn payload(&self, index: usize) -> Result<(u32, &[u8]), SegmentError> {
        let v = self.value(index);
        if v.len() != 9 {
            return Err(SegmentError::Usage {
                path: self.path.clone(),
                detail: "not a domain segment".into(),
            });
        }
        let breach = u32::from_le_bytes(v[..4].try_into().expect("4 bytes"));
        let offset = u32::from_le_bytes(v[4..8].try_into().expect("4 bytes")) as u64;
        let len = u64::from(v[8]);
        if offset + len > self.header.heap_len {
            // The offset of the entry that points outside, which is in the file.
            let at = (HEADER_LEN + index * self.layout.entry_len + self.layout.value_offset()) as u64;
            return Err(SegmentError::corrupt(&self.path, at, "payload outside the heap"));
        }
        let start = self.header.heap_offset + offset;
        self.check_span(start, start + len)?;
        let start = start as usize;
        Ok((breach, &self.map[start..start + len as usize]))
    }

    /// Every entry in key order, as (full key, entry index).
    pub fn iter(&self) -> Box<dyn Iterator<Item = Result<KeyAt, SegmentError>> + '_> {
        let slots = 1usize << self.layout.prefix_bits;
        if let Some(params) = self.packed {
            return Box::new((0..slots).flat_map(move |bucket| {
                let block = self.block(&params, bucket);
                let (block, err) = match block {
                    Ok(b) => (Some(b), None),
                    Err(e) => (None, Some(e)),
                };
                let entries = block.into_iter().flat_map(move |block| {
                    let start = block.start as usize;
                    self.decoder(params, block)
                        .enumerate()
                        .map(move |(j, e)| e.map(|(key, _)| (key, start + j)))
                });
                err.into_iter().map(Err).chain(entries)
            }));
        }
        Box::new((0..slots).flat_map(move |bucket| {
            let range = self.bucket(bucket);
            let (range, err) = match range {
                Ok(r) => (r, None),
                Err(e) => (0..0, Some(e)),
            };
            err.into_iter().map(Err).chain(range.map(move |i| Ok((self.key_in_bucket(bucket, i), i))))
        }))
    }

    /// The summed count of `key` (0 when absent): one bucket decoded in a packed
    /// segment, a binary search in a fixed one.
    pub fn count_of(&self, key: &[u8]) -> Result<u64, SegmentError> {
        if key.len() != self.header.kind.key_len() {
            return Ok(0);
        }
        if let Some(params) = self.packed {
            return Ok(self.packed_find(&params, key)?.map_or(0, |(_, count)| count));
        }
        let mut total = 0u64;
        for i in self.find(key)? {
            total = total.saturating_add(self.count(i)?);
        }
        Ok(total)
    }

    /// Bucket `b` of a packed segment, checked: its entries lie within the
    /// segment and its bits within the data, enough of them for its entries.
    fn block(&self, params: &Params, b: usize) -> Result<Block, SegmentError> {
        let starts = self.header.table_offset as usize + 4 * b;
        let offsets = self.header.overflow_offset as usize + 8 * b;
        self.check_span(starts as u64, starts as u64 + 8)?;
        self.check_span(offsets as u64, offsets as u64 + 16)?;
        let u32_at = |at: usize| u32::from_le_bytes(self.map[at..at + 4].try_into().expect("4 bytes"));
        let u64_at = |at: usize| u64::from_le_bytes(self.map[at..at + 8].try_into().expect("8 bytes"));
        let (start, end) = (u32_at(starts), u32_at(starts + 4));
        let (lo, hi) = (u64_at(offsets), u64_at(offsets + 8));
        let data = self.data();
        let n = u64::from(end.wrapping_sub(start));
        if start > end || u64::from(end) > self.header.entry_count {
            return Err(SegmentError::corrupt(&self.path, starts as u64, "entry table out of order"));
        }
        if lo > hi || hi > data.limit() || u128::from(hi - lo) < params.min_block_bits(n) {
            return Err(SegmentError::corrupt(&self.path, offsets as u64, "bit table out of order"));
        }
        // The bits, and the 8 bytes an unaligned load past the last may touch.
        self.check_span(HEADER_LEN as u64 + lo / 8, HEADER_LEN as u64 + hi.div_ceil(8) + 8)?;
        let upper_end = lo + n + (1u64 << params.upper_bits);
        let escapes = upper_end + n * params.record_bits() as u64;
        Ok(Block { bucket: b as u32, start, n, upper: lo, upper_end, records: upper_end, escapes, end: hi })
    }

    /// The data section of a packed segment, with its slack.
    fn data(&self) -> BitReader<'_> {
        BitReader::new(&self.map[HEADER_LEN..self.header.table_offset as usize])
    }

    fn decoder(&self, params: Params, block: Block) -> Decoder<'_> {
        let mut base = [0u8; MAX_KEY_LEN];
        put_key_bits(&mut base, 0, usize::from(params.prefix_bits), u64::from(block.bucket));
        let mut chunks = [0; 3];
        let mut chunk_count = 0;
        // A low part is at most 160 bits: three chunks of 56 bits or fewer.
        for (slot, width) in chunks.iter_mut().zip(low_chunks(params.low_bits())) {
            *slot = width;
            chunk_count += 1;
        }
        Decoder {
            seg: self,
            r: self.data(),
            params,
            pos: block.upper,
            j: 0,
            block,
            base,
            chunks,
            chunk_count,
        }
    }

    /// The entry equal to `key` in a packed segment: (index, count).
    fn packed_find(&self, params: &Params, key: &[u8]) -> Result<Option<(usize, u64)>, SegmentError> {
        let mut k = [0u8; MAX_KEY_LEN];
        k[..key.len()].copy_from_slice(key);
        let (p, u) = (usize::from(params.prefix_bits), usize::from(params.upper_bits));
        let block = self.block(params, key_bits(&k, 0, p) as usize)?;
        let r = self.data();
        let high = key_bits(&k, p, u);
        // Walk the ones of the high parts up to the first entry whose high part
        // is not below the key's; then compare the low parts of those equal to it.
        let mut pos = block.upper;
        let mut j = 0u64;
        while j < block.n {
            let Some(one) = r.next_one(pos, block.upper_end) else {
                return Err(self.damaged(&block));
            };
            let h = one - block.upper - j;
            if h > high {
                break;
            }
            if h == high && self.packed_low_eq(params, &block, j, &k) {
                let count = self.packed_count(params, &block, j)?;
                return Ok(Some((block.start as usize + j as usize, count)));
            }
            pos = one + 1;
            j += 1;
        }
        Ok(None)
    }

    fn damaged(&self, block: &Block) -> SegmentError {
        SegmentError::corrupt(
            &self.path,
            HEADER_LEN as u64 + block.upper / 8,
            format!("bucket {} does not decode", block.bucket),
        )
    }

    /// Whether record `j` of a block holds the low part of `key`.
    fn packed_low_eq(&self, params: &Params, block: &Block, j: u64, key: &[u8; MAX_KEY_LEN]) -> bool {
        let r = self.data();
        let mut at = block.records + j * params.record_bits() as u64;
        let mut start = usize::from(params.prefix_bits) + usize::from(params.upper_bits);
        for width in low_chunks(params.low_bits()) {
            if r.get(at, width) != key_bits(key, start, width) {
                return false;
            }
            at += width as u64;
            start += width;
        }
        true
    }

    /// The count of record `j` of a block: its field, or its escape's code.
    fn packed_count(&self, params: &Params, block: &Block, j: u64) -> Result<u64, SegmentError> {
        let r = self.data();
        let width = usize::from(params.count_bits);
        let field_at = |i: u64| block.records + (i + 1) * params.record_bits() as u64 - width as u64;
        let field = r.get(field_at(j), width);
        if field < params.escape() {
            return Ok(field);
        }
        let before = (0..j).filter(|&i| r.get(field_at(i), width) == params.escape()).count();
        let mut pos = block.escapes;
        for _ in 0..before {
            pos = r.gamma(pos, block.end).ok_or_else(|| self.damaged(block))?.1;
        }
        let (x, _) = r.gamma(pos, block.end).ok_or_else(|| self.damaged(block))?;
        Ok((params.escape() - 1).saturating_add(x))
    }

    /// Entry `index` of a packed segment: its bucket by a search of the entry
    /// table, then that bucket decoded up to it.
    fn packed_entry(&self, params: &Params, index: usize) -> Result<([u8; MAX_KEY_LEN], u64), SegmentError> {
        if index as u64 >= self.header.entry_count {
            return Err(SegmentError::Usage { path: self.path.clone(), detail: format!("no entry {index}") });
        }
        let block = self.block(params, self.bucket_of_index(index))?;
        let skip = index.checked_sub(block.start as usize).ok_or_else(|| self.damaged(&block))?;
        self.decoder(*params, block).nth(skip).unwrap_or_else(|| Err(self.damaged(&block)))
    }

    /// The block holding the 20-bit `prefix`, the entries before the range in it,
    /// and the range's length.
    fn packed_range(&self, params: &Params, prefix: u32) -> Result<(Block, usize, usize), SegmentError> {
        let p = u32::from(params.prefix_bits);
        let block = self.block(params, (prefix >> (20 - p)) as usize)?;
        if p == 20 {
            return Ok((block, 0, block.n as usize));
        }
        let (rest, u) = (20 - p, u32::from(params.upper_bits));
        if u >= rest {
            // The range's bits below the bucket are the top of the high part:
            // its run is found from the unary part alone.
            let want = u64::from(prefix & ((1 << rest) - 1));
            let r = self.data();
            let (mut before, mut inside, mut pos) = (0, 0, block.upper);
            for j in 0..block.n {
                let one = r.next_one(pos, block.upper_end).ok_or_else(|| self.damaged(&block))?;
                let top = (one - block.upper - j) >> (u - rest);
                match top.cmp(&want) {
                    std::cmp::Ordering::Less => before += 1,
                    std::cmp::Ordering::Equal => inside += 1,
                    std::cmp::Ordering::Greater => break,
                }
                pos = one + 1;
            }
            return Ok((block, before, inside));
        }
        let (mut before, mut inside) = (0, 0);
        for entry in self.decoder(*params, block) {
            let (key, _) = entry?;
            let top = u32::from_be_bytes([0, key[0], key[1], key[2]]) >> 4;
            match top.cmp(&prefix) {
                std::cmp::Ordering::Less => before += 1,
                std::cmp::Ordering::Equal => inside += 1,
                std::cmp::Ordering::Greater => break,
            }
        }
        Ok((block, before, inside))
    }
}

/// The entries of one range of a segment; see [`Segment::range20_entries`].
pub struct RangeEntries<'a> {
    inner: Inner<'a>,
}

enum Inner<'a> {
    Fixed {
        seg: &'a Segment,
        bucket: usize,
        next: usize,
        end: usize,
        /// The overflow row of the next entry whose count is not inline.
        overflow: usize,
    },
    Packed {
        decoder: Decoder<'a>,
        left: usize,
    },
}

impl RangeEntries<'_> {
    /// Entries left.
    pub fn len(&self) -> usize {
        match &self.inner {
            Inner::Fixed { next, end, .. } => end - next,
            Inner::Packed { left, .. } => *left,
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl Iterator for RangeEntries<'_> {
    type Item = Result<([u8; MAX_KEY_LEN], u64), SegmentError>;

    fn next(&mut self) -> Option<Self::Item> {
        match &mut self.inner {
            Inner::Fixed { seg, bucket, next, end, overflow } => {
                if next == end {
                    return None;
                }
                let index = *next;
                *next += 1;
                let key = seg.key_in_bucket(*bucket, index);
                let count = match seg.inline_count(index) {
                    Some(count) => Ok(count),
                    None => {
                        *overflow += 1;
                        seg.overflow_count(*overflow - 1, index)
                    }
                };
                Some(count.map(|count| (key, count)))
            }
            Inner::Packed { decoder, left } => {
                if *left == 0 {
                    return None;
                }
                *left -= 1;
                decoder.next()
            }
        }
    }
}

/// One bucket of a packed segment, its bit positions checked against the data.
#[derive(Debug, Clone, Copy)]
struct Block {
    bucket: u32,
    /// Index of its first entry, and how many it holds.
    start: u32,
    n: u64,
    /// The high parts' bits, the records, the escaped counts, the end.
    upper: u64,
    upper_end: u64,
    records: u64,
    escapes: u64,
    end: u64,
}

/// Decodes a packed bucket's entries in order, as (full key, count).
struct Decoder<'a> {
    seg: &'a Segment,
    r: BitReader<'a>,
    params: Params,
    block: Block,
    /// Where the search for the next high part's one bit resumes.
    pos: u64,
    /// Entries decoded so far.
    j: u64,
    /// A key with the bucket's bits set, and the widths of the low part's chunks.
    base: [u8; MAX_KEY_LEN],
    chunks: [usize; 3],
    chunk_count: usize,
}

impl Decoder<'_> {
    /// Passes over `k` entries without building their keys: their one bits and,
    /// for escaped counts, their codes.
    fn pass(&mut self, k: usize) -> Result<(), SegmentError> {
        let params = self.params;
        let width = usize::from(params.count_bits);
        for _ in 0..k {
            let b = self.block;
            if self.j == b.n {
                break;
            }
            let one = self.r.next_one(self.pos, b.upper_end).ok_or_else(|| self.seg.damaged(&b))?;
            let field_at = b.records + (self.j + 1) * params.record_bits() as u64 - width as u64;
            if self.r.get(field_at, width) == params.escape() {
                let (_, next) = self.r.gamma(b.escapes, b.end).ok_or_else(|| self.seg.damaged(&b))?;
                self.block.escapes = next;
            }
            self.pos = one + 1;
            self.j += 1;
        }
        Ok(())
    }
}

impl Iterator for Decoder<'_> {
    type Item = Result<([u8; MAX_KEY_LEN], u64), SegmentError>;

    fn next(&mut self) -> Option<Self::Item> {
        let b = self.block;
        if self.j == b.n {
            return None;
        }
        let seg = self.seg;
        let damaged = move || Some(Err(seg.damaged(&b)));
        let Some(one) = self.r.next_one(self.pos, b.upper_end) else {
            // Stop here: the rest of the bucket cannot be trusted.
            self.j = b.n;
            return damaged();
        };
        let high = one - b.upper - self.j;
        let params = &self.params;
        let (p, u) = (usize::from(params.prefix_bits), usize::from(params.upper_bits));
        let mut key = self.base;
        put_key_bits(&mut key, p, u, high);
        let mut at = b.records + self.j * params.record_bits() as u64;
        let mut start = p + u;
        for &width in &self.chunks[..self.chunk_count] {
            put_key_bits(&mut key, start, width, self.r.get(at, width));
            at += width as u64;
            start += width;
        }
        let field = self.r.get(at, usize::from(params.count_bits));
        let count = if field < params.escape() {
            field
        } else {
            let Some((x, next)) = self.r.gamma(b.escapes, b.end) else {
                // Stop here: the rest of the bucket cannot be trusted.
                self.j = b.n;
                return damaged();
            };
            self.block.escapes = next;
            (params.escape() - 1).saturating_add(x)
        };
        self.pos = one + 1;
        self.j += 1;
        Some(Ok((key, count)))
    }
}
