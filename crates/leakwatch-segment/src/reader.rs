//! Reads a segment straight off an mmap. Opening checks the header and that every
//! section lies inside the file; lookups check table entries before trusting them,
//! so a damaged file yields `DataCorruption`, never a panic or a wrong slice.

use std::fs::File;
use std::ops::Range;
use std::path::{Path, PathBuf};

use memmap2::Mmap;

use crate::format::{
    Header, HeaderError, Kind, Layout, CHECKSUM_CHUNK, FORMAT_VERSION, HEADER_LEN, MAX_KEY_LEN,
};
use crate::SegmentError;

/// An open, immutable segment.
pub struct Segment {
    path: PathBuf,
    map: Mmap,
    header: Header,
    layout: Layout,
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
        let header = Header::decode(&map).map_err(|e| match e {
            HeaderError::Corrupt(detail) => SegmentError::corrupt(path, 0, detail),
            HeaderError::Version(found) => {
                SegmentError::UnsupportedVersion { path: path.to_owned(), found, supported: FORMAT_VERSION }
            }
        })?;
        let layout = Layout::new(header.kind, header.prefix_bits);
        let segment = Segment { path: path.to_owned(), map, header, layout };
        segment.check_sections()?;
        Ok(segment)
    }

    /// Checks that the sections tile the file in order, as the writer lays them out.
    fn check_sections(&self) -> Result<(), SegmentError> {
        let h = &self.header;
        let n = h.entry_count;
        let table_len = 4 * ((1u64 << h.prefix_bits) + 1);
        let chunks = (h.checksums_offset.saturating_sub(HEADER_LEN as u64)).div_ceil(CHECKSUM_CHUNK as u64);
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
        for (what, found, want) in expected {
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

    /// Checks every chunk checksum; the error names the offset of the first bad chunk.
    pub fn verify(&self) -> Result<(), SegmentError> {
        let body = &self.map[HEADER_LEN..self.header.checksums_offset as usize];
        let tail = &self.map[self.header.checksums_offset as usize..];
        let (crcs, tail_crc) = tail.split_at(tail.len() - 4);
        if crc32fast::hash(crcs).to_le_bytes() != tail_crc {
            return Err(SegmentError::corrupt(
                &self.path,
                self.header.checksums_offset,
                "checksum table damaged",
            ));
        }
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

    /// The entries of one prefix-table bucket.
    fn bucket(&self, bucket: usize) -> Result<Range<usize>, SegmentError> {
        let (start, end) = (self.table(bucket) as usize, self.table(bucket + 1) as usize);
        if start > end || end as u64 > self.header.entry_count {
            let at = self.header.table_offset + 4 * bucket as u64;
            return Err(SegmentError::corrupt(&self.path, at, "prefix table out of order"));
        }
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
    pub fn key(&self, index: usize) -> [u8; MAX_KEY_LEN] {
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
        match self.inline_count(index) {
            Some(count) => Ok(count),
            None => {
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
        let run = self.range20(prefix)?;
        let bucket = ((prefix & 0xF_FFFF) >> (20 - u32::from(self.layout.prefix_bits))) as usize;
        let rows = self.header.overflow_count as usize;
        let overflow = self.partition(0..rows, |k| self.overflow_at(k).0 < run.start);
        Ok(RangeEntries { seg: self, bucket, next: run.start, end: run.end, overflow })
    }

    /// The fixed value bytes of entry `index`.
    pub fn value(&self, index: usize) -> &[u8] {
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
            return Err(SegmentError::corrupt(
                &self.path,
                self.header.heap_offset + offset,
                "payload outside the heap",
            ));
        }
        let start = (self.header.heap_offset + offset) as usize;
        Ok((breach, &self.map[start..start + len as usize]))
    }

    /// Every entry in key order, as (full key, entry index).
    pub fn iter(&self) -> impl Iterator<Item = Result<([u8; MAX_KEY_LEN], usize), SegmentError>> + '_ {
        let slots = 1usize << self.layout.prefix_bits;
        (0..slots).flat_map(move |bucket| {
            let range = self.bucket(bucket);
            let (range, err) = match range {
                Ok(r) => (r, None),
                Err(e) => (0..0, Some(e)),
            };
            err.into_iter().map(Err).chain(range.map(move |i| Ok((self.key_in_bucket(bucket, i), i))))
        })
    }
}

/// The entries of one range of a segment; see [`Segment::range20_entries`].
pub struct RangeEntries<'a> {
    seg: &'a Segment,
    bucket: usize,
    next: usize,
    end: usize,
    /// The overflow row of the next entry whose count is not inline.
    overflow: usize,
}

impl RangeEntries<'_> {
    /// Entries left.
    pub fn len(&self) -> usize {
        self.end - self.next
    }

    pub fn is_empty(&self) -> bool {
        self.next == self.end
    }
}

impl Iterator for RangeEntries<'_> {
    type Item = Result<([u8; MAX_KEY_LEN], u64), SegmentError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.next == self.end {
            return None;
        }
        let index = self.next;
        self.next += 1;
        let key = self.seg.key_in_bucket(self.bucket, index);
        let count = match self.seg.inline_count(index) {
            Some(count) => Ok(count),
            None => {
                self.overflow += 1;
                self.seg.overflow_count(self.overflow - 1, index)
            }
        };
        Some(count.map(|count| (key, count)))
    }
}
