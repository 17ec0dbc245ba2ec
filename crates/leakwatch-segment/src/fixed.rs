//! The fixed-width layout (format version 1): every kind but the Pwned
//! Passwords counts. Entries of `entry_len` bytes sorted by key, a prefix table
//! that maps the top `p` bits of a key to its run of entries, an overflow table
//! for counts too large for an entry, and a heap of payloads.
//!
//! A bucket is one contiguous run of entries, found by two table slots and
//! searched by bisection: a point lookup touches a cache line or two of entries.

use std::ops::Range;
use std::sync::atomic::{AtomicBool, Ordering};

use crate::file::{partition, SegmentFile};
use crate::format::{
    check_tiling, header_field, put_header_fields, HeaderError, Kind, HEADER_LEN, MAX_KEY_LEN,
    MAX_PREFIX_BITS,
};
use crate::reader::{EntryRun, KeyAt, LayoutReader};
use crate::SegmentError;

mod writer;

pub(crate) use writer::FixedWriter;

/// The widths of a fixed segment's entries, which follow from its kind and
/// prefix width.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Layout {
    pub kind: Kind,
    /// Bits of the key implied by the position in the prefix table.
    pub prefix_bits: u8,
    /// Whole key bytes not stored (implied by the prefix).
    pub skip: usize,
    /// Bits at the top of the first stored key byte that the prefix implies, reused
    /// for a small inline count; 0 when the count takes a byte of its own.
    pub small_bits: u8,
    /// Bytes of one entry.
    pub entry_len: usize,
}

impl Layout {
    pub fn new(kind: Kind, prefix_bits: u8) -> Layout {
        assert!(prefix_bits <= MAX_PREFIX_BITS, "prefix width {prefix_bits} out of range");
        let skip = usize::from(prefix_bits / 8);
        let free = prefix_bits % 8;
        let small_bits = if kind.has_count() && free >= 3 { free } else { 0 };
        let count_byte = usize::from(kind.has_count() && small_bits == 0);
        let entry_len = kind.key_len() - skip + count_byte + kind.value_len();
        Layout { kind, prefix_bits, skip, small_bits, entry_len }
    }

    /// Picks the prefix width that makes a segment of about `entries` entries
    /// smallest, among widths that keep buckets short enough (about 64 entries or
    /// fewer) for a point lookup to touch only a cache line or two.
    pub fn choose(kind: Kind, entries: u64) -> Layout {
        let log2 = 63 - entries.max(1).leading_zeros() as i64;
        let min_bits = (log2 - 6).clamp(0, i64::from(MAX_PREFIX_BITS)) as u8;
        (min_bits..=MAX_PREFIX_BITS)
            .map(|p| Layout::new(kind, p))
            .min_by_key(|l| (l.size_estimate(entries), std::cmp::Reverse(l.prefix_bits)))
            .expect("at least one width")
    }

    fn size_estimate(&self, entries: u64) -> u64 {
        entries * self.entry_len as u64 + 4 * ((1u64 << self.prefix_bits) + 1)
    }

    /// The largest count stored inline; this value and above live in the overflow table.
    #[inline]
    pub fn inline_count_max(&self) -> u64 {
        if self.small_bits > 0 {
            (1u64 << self.small_bits) - 1
        } else {
            255
        }
    }

    /// Where the inline count sits within an entry, when it has a byte of its own.
    pub fn count_byte_offset(&self) -> usize {
        self.kind.key_len() - self.skip
    }

    /// Where the fixed value starts within an entry.
    pub fn value_offset(&self) -> usize {
        self.kind.key_len() - self.skip + usize::from(self.kind.has_count() && self.small_bits == 0)
    }

    /// The bucket (prefix table slot) of a key: its top `prefix_bits` bits.
    #[inline]
    pub fn bucket_of(&self, key: &[u8]) -> usize {
        if self.prefix_bits == 0 {
            return 0;
        }
        let top = u32::from_be_bytes([key[0], key[1], key[2], 0]) >> 8;
        (top >> (24 - u32::from(self.prefix_bits))) as usize
    }
}

/// The header of a fixed segment: its widths and where its sections start.
/// Entries start right after the header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct FixedHeader {
    pub layout: Layout,
    pub entry_count: u64,
    /// The prefix table: `2^p + 1` u32 entry indices.
    pub table_offset: u64,
    /// The overflow table: `overflow_count` rows of (u32 entry index, u64 count).
    pub overflow_offset: u64,
    pub overflow_count: u64,
    /// The heap: `heap_len` bytes of payloads.
    pub heap_offset: u64,
    pub heap_len: u64,
    pub checksums_offset: u64,
    pub file_len: u64,
}

impl FixedHeader {
    pub const VERSION: u16 = 1;

    /// Writes this layout's fields (the frame is the caller's).
    pub fn encode(&self, b: &mut [u8; HEADER_LEN]) {
        let l = &self.layout;
        b[13] = l.entry_len as u8;
        b[14] = l.prefix_bits;
        b[15] = l.small_bits;
        put_header_fields(
            b,
            &[
                self.entry_count,
                HEADER_LEN as u64,
                self.table_offset,
                self.overflow_offset,
                self.overflow_count,
                self.heap_offset,
                self.heap_len,
                self.checksums_offset,
                self.file_len,
            ],
        );
    }

    /// Reads this layout's fields of a header whose frame is checked, and
    /// checks that its sections tile the body in order.
    pub fn decode(kind: Kind, b: &[u8; HEADER_LEN]) -> Result<FixedHeader, HeaderError> {
        let layout = Layout::new(kind, b[14]);
        if usize::from(b[13]) != layout.entry_len || b[15] != layout.small_bits {
            return Err(HeaderError::Corrupt("entry layout does not match the segment kind".into()));
        }
        let field = |i| header_field(b, i);
        let h = FixedHeader {
            layout,
            entry_count: field(0),
            table_offset: field(2),
            overflow_offset: field(3),
            overflow_count: field(4),
            heap_offset: field(5),
            heap_len: field(6),
            checksums_offset: field(7),
            file_len: field(8),
        };
        let entries_end = HEADER_LEN as u64 + h.entry_count.saturating_mul(layout.entry_len as u64);
        let table_len = 4 * ((1u64 << layout.prefix_bits) + 1);
        check_tiling(&[
            ("entries", field(1), HEADER_LEN as u64),
            ("prefix table", h.table_offset, entries_end),
            ("overflow table", h.overflow_offset, h.table_offset.saturating_add(table_len)),
            ("heap", h.heap_offset, h.overflow_offset.saturating_add(h.overflow_count.saturating_mul(12))),
            ("checksums", h.checksums_offset, h.heap_offset.saturating_add(h.heap_len)),
        ])?;
        Ok(h)
    }
}

/// An open segment in the fixed layout.
pub(crate) struct FixedSegment {
    file: SegmentFile,
    h: FixedHeader,
    /// Whether the whole overflow table has been checked: a count's binary
    /// search reads it anywhere, so it is checked whole, once.
    overflow_checked: AtomicBool,
}

impl FixedSegment {
    pub fn new(file: SegmentFile, h: FixedHeader) -> FixedSegment {
        FixedSegment { file, h, overflow_checked: AtomicBool::new(false) }
    }

    /// Prefix table slot `slot`, which lies in the file (checked on open).
    #[inline]
    fn table(&self, slot: usize) -> u32 {
        self.file.u32_at(self.h.table_offset as usize + 4 * slot)
    }

    /// The entries of one prefix-table bucket, their bytes checked.
    fn bucket(&self, bucket: usize) -> Result<Range<usize>, SegmentError> {
        let at = self.h.table_offset + 4 * bucket as u64;
        self.file.check_span(at, at + 8)?;
        let (start, end) = (self.table(bucket) as usize, self.table(bucket + 1) as usize);
        if start > end || end as u64 > self.h.entry_count {
            return Err(self.file.corrupt(at, "prefix table out of order"));
        }
        let len = self.h.layout.entry_len as u64;
        self.file.check_span(HEADER_LEN as u64 + start as u64 * len, HEADER_LEN as u64 + end as u64 * len)?;
        Ok(start..end)
    }

    #[inline]
    fn entry(&self, index: usize) -> &[u8] {
        let len = self.h.layout.entry_len;
        let at = HEADER_LEN + index * len;
        &self.file.bytes()[at..at + len]
    }

    /// Compares the stored part of entry `index` with the same part of `key`
    /// (both share the bucket's prefix, so the rest decides).
    #[inline]
    fn cmp_stored(&self, index: usize, key: &[u8]) -> std::cmp::Ordering {
        let l = &self.h.layout;
        let entry = self.entry(index);
        let stored = &entry[..l.kind.key_len() - l.skip];
        let target = &key[l.skip..];
        let mask = 0xFFu8 >> (l.prefix_bits % 8);
        (stored[0] & mask).cmp(&(target[0] & mask)).then_with(|| stored[1..].cmp(&target[1..]))
    }

    /// The bucket holding entry `index`.
    fn bucket_of_index(&self, index: usize) -> usize {
        self.file.slot_of_index(self.h.table_offset, 1 << self.h.layout.prefix_bits, index)
    }

    /// The full key of entry `index` of `bucket`, with the implied prefix bits restored.
    fn key_in_bucket(&self, bucket: usize, index: usize) -> [u8; MAX_KEY_LEN] {
        let l = &self.h.layout;
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

    /// The count stored in entry `index` itself, `None` when it is in the
    /// overflow table (0 for kinds without counts).
    #[inline]
    fn inline_count(&self, index: usize) -> Option<u64> {
        let l = &self.h.layout;
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

    /// Checks the overflow table, which a count's binary search may read anywhere.
    fn check_overflow(&self) -> Result<(), SegmentError> {
        if self.overflow_checked.load(Ordering::Relaxed) {
            return Ok(());
        }
        let start = self.h.overflow_offset;
        self.file.check_span(start, start + 12 * self.h.overflow_count)?;
        self.overflow_checked.store(true, Ordering::Relaxed);
        Ok(())
    }

    /// Overflow table row `k`: (entry index, count). `k` < overflow_count, whose
    /// rows lie inside the file (checked on open).
    fn overflow_at(&self, k: usize) -> (usize, u64) {
        let o = self.h.overflow_offset as usize + 12 * k;
        (self.file.u32_at(o) as usize, self.file.u64_at(o + 4))
    }

    /// The count of entry `index` from overflow row `k`, which must be its row.
    fn overflow_count(&self, k: usize, index: usize) -> Result<u64, SegmentError> {
        match (k < self.h.overflow_count as usize).then(|| self.overflow_at(k)) {
            Some((idx, count)) if idx == index => Ok(count),
            _ => {
                Err(self.file.corrupt(self.h.overflow_offset, format!("no overflow count for entry {index}")))
            }
        }
    }
}

impl LayoutReader for FixedSegment {
    type Entries<'a> = FixedEntries<'a>;

    fn file(&self) -> &SegmentFile {
        &self.file
    }

    fn kind(&self) -> Kind {
        self.h.layout.kind
    }

    fn prefix_bits(&self) -> u8 {
        self.h.layout.prefix_bits
    }

    fn len(&self) -> u64 {
        self.h.entry_count
    }

    fn file_len(&self) -> u64 {
        self.h.file_len
    }

    fn index_span(&self) -> Range<u64> {
        self.h.table_offset..self.h.heap_offset
    }

    #[inline]
    fn find(&self, key: &[u8]) -> Result<Range<usize>, SegmentError> {
        let bucket = self.bucket(self.h.layout.bucket_of(key))?;
        let lo = bucket.start + partition(bucket.clone(), |i| self.cmp_stored(i, key).is_lt());
        let hi = bucket.start + partition(bucket, |i| self.cmp_stored(i, key).is_le());
        Ok(lo..hi.max(lo))
    }

    #[inline]
    fn count_of(&self, key: &[u8]) -> Result<u64, SegmentError> {
        let mut total = 0u64;
        for i in self.find(key)? {
            total = total.saturating_add(self.count(i)?);
        }
        Ok(total)
    }

    fn range20(&self, prefix: u32) -> Result<Range<usize>, SegmentError> {
        let p = u32::from(self.h.layout.prefix_bits);
        let bucket = self.bucket((prefix >> (20 - p)) as usize)?;
        if p == 20 {
            return Ok(bucket);
        }
        let mut lo_key = [0u8; MAX_KEY_LEN];
        lo_key[..3].copy_from_slice(&(prefix << 4).to_be_bytes()[1..]);
        let next = prefix + 1;
        let mut hi_key = [0u8; MAX_KEY_LEN];
        hi_key[..3].copy_from_slice(&(next << 4).to_be_bytes()[1..]);
        let key_len = self.h.layout.kind.key_len();
        let lo = bucket.start + partition(bucket.clone(), |i| self.cmp_stored(i, &lo_key[..key_len]).is_lt());
        let hi = if next >> (20 - p) != prefix >> (20 - p) {
            bucket.end
        } else {
            bucket.start + partition(bucket, |i| self.cmp_stored(i, &hi_key[..key_len]).is_lt())
        };
        Ok(lo..hi.max(lo))
    }

    /// The run [`range20`](LayoutReader::range20) finds, walked without a
    /// search per entry: the bucket is known, and the run's overflow rows are
    /// consecutive.
    #[inline]
    fn range20_entries(&self, prefix: u32) -> Result<FixedEntries<'_>, SegmentError> {
        let run = self.range20(prefix)?;
        self.check_overflow()?;
        let bucket = (prefix >> (20 - u32::from(self.h.layout.prefix_bits))) as usize;
        let rows = self.h.overflow_count as usize;
        let overflow = partition(0..rows, |k| self.overflow_at(k).0 < run.start);
        Ok(FixedEntries { seg: self, bucket, next: run.start, end: run.end, overflow })
    }

    fn key(&self, index: usize) -> [u8; MAX_KEY_LEN] {
        self.key_in_bucket(self.bucket_of_index(index), index)
    }

    fn count(&self, index: usize) -> Result<u64, SegmentError> {
        match self.inline_count(index) {
            Some(count) => Ok(count),
            None => {
                self.check_overflow()?;
                let n = self.h.overflow_count as usize;
                let k = partition(0..n, |k| self.overflow_at(k).0 < index);
                self.overflow_count(k, index)
            }
        }
    }

    fn value(&self, index: usize) -> &[u8] {
        &self.entry(index)[self.h.layout.value_offset()..]
    }

    fn payload(&self, index: usize) -> Result<(u32, &[u8]), SegmentError> {
        let v = self.value(index);
        if v.len() != 9 {
            return Err(self.file.usage("not a domain segment"));
        }
        let breach = u32::from_le_bytes(v[..4].try_into().expect("4 bytes"));
        let offset = u32::from_le_bytes(v[4..8].try_into().expect("4 bytes")) as u64;
        let len = u64::from(v[8]);
        if offset + len > self.h.heap_len {
            // The offset of the entry that points outside, which is in the file.
            let l = &self.h.layout;
            let at = (HEADER_LEN + index * l.entry_len + l.value_offset()) as u64;
            return Err(self.file.corrupt(at, "payload outside the heap"));
        }
        let start = self.h.heap_offset + offset;
        self.file.check_span(start, start + len)?;
        let start = start as usize;
        Ok((breach, &self.file.bytes()[start..start + len as usize]))
    }

    fn iter(&self) -> Box<dyn Iterator<Item = Result<KeyAt, SegmentError>> + '_> {
        Box::new((0..1usize << self.h.layout.prefix_bits).flat_map(move |bucket| {
            let (range, err) = match self.bucket(bucket) {
                Ok(r) => (r, None),
                Err(e) => (0..0, Some(e)),
            };
            err.into_iter().map(Err).chain(range.map(move |i| Ok((self.key_in_bucket(bucket, i), i))))
        }))
    }
}

/// The entries of one range of a fixed segment, as (full key, count).
pub(crate) struct FixedEntries<'a> {
    seg: &'a FixedSegment,
    bucket: usize,
    next: usize,
    end: usize,
    /// The overflow row of the next entry whose count is not inline.
    overflow: usize,
}

impl EntryRun for FixedEntries<'_> {
    fn left(&self) -> usize {
        self.end - self.next
    }
}

impl Iterator for FixedEntries<'_> {
    type Item = Result<([u8; MAX_KEY_LEN], u64), SegmentError>;

    #[inline]
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::format::Header;

    #[test]
    fn sha1_layout_is_compact_at_scale() {
        // At 3 million hashes the chosen layout stores 18 bytes an entry with the
        // count folded into implied prefix bits.
        let l = Layout::choose(Kind::Sha1Counts, 3_000_000);
        assert_eq!(l.entry_len, 18, "{l:?}");
        assert!(l.small_bits >= 3);
        let l = Layout::choose(Kind::Sha1Counts, 100_000_000);
        assert!(l.prefix_bits >= 19, "{l:?}");
        assert_eq!(l.entry_len, 18);
    }

    #[test]
    fn tiny_segments_have_tiny_tables() {
        let l = Layout::choose(Kind::Accounts, 10);
        assert!(l.prefix_bits <= 4, "{l:?}");
    }

    #[test]
    fn bucket_is_top_bits() {
        let l = Layout::new(Kind::Sha1Counts, 20);
        assert_eq!(l.bucket_of(&[0xAB, 0xCD, 0xEF, 0x12]), 0xABCDE);
        let l = Layout::new(Kind::Sha1Counts, 12);
        assert_eq!(l.bucket_of(&[0xAB, 0xCD, 0xEF, 0x12]), 0xABC);
        let l = Layout::new(Kind::Sha1Counts, 0);
        assert_eq!(l.bucket_of(&[0xAB, 0xCD, 0xEF, 0x12]), 0);
    }

    #[test]
    fn header_round_trips_and_detects_damage() {
        // 7 domain entries of 24 bytes, a 2^9-slot table, 5 heap bytes, one chunk.
        let h = Header::Fixed(FixedHeader {
            layout: Layout::new(Kind::Domains, 9),
            entry_count: 7,
            table_offset: 128 + 7 * 24,
            overflow_offset: 296 + 4 * 513,
            overflow_count: 0,
            heap_offset: 2348,
            heap_len: 5,
            checksums_offset: 2353,
            file_len: 2361,
        });
        let mut file = vec![0u8; 2361];
        file[..HEADER_LEN].copy_from_slice(&h.encode());
        assert_eq!(Header::decode(&file).unwrap(), h);
        file[20] ^= 1;
        assert!(matches!(Header::decode(&file), Err(HeaderError::Corrupt(_))));
        // Sections that do not tile the file, under a valid CRC.
        let Header::Fixed(mut bad) = h else { unreachable!() };
        bad.heap_len = 6;
        file[..HEADER_LEN].copy_from_slice(&Header::Fixed(bad).encode());
        assert!(
            matches!(Header::decode(&file), Err(HeaderError::Corrupt(d)) if d.starts_with("checksums at"))
        );
    }
}
