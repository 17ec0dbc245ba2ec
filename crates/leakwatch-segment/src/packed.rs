//! The packed layout (format version 2) of the counted Pwned Passwords kinds: an
//! Elias-Fano code of the sorted keys, bucket by bucket, with bit-packed counts.
//!
//! Bucket `b` (the top `p` bits of a key) is one run of bits, found through two
//! tables (first entry index, first bit), and holds, for its `n` entries:
//! - the next `u` bits of each key ("high" parts), as `n` ones and `2^u` zeros:
//!   entry `j` sets bit `high_j + j`;
//! - `n` records of the remaining `8 * key_len - p - u` key bits ("low" part, in
//!   chunks of at most 56 bits, most significant first) and a `c`-bit count;
//! - for each record whose count field is all ones (`2^c - 1`), in entry order,
//!   the Elias-gamma code of `count - 2^c + 2` (at least 1).
//!
//! Bits are numbered from the first byte of the data section, least significant
//! bit of each byte first; a field of up to 56 bits is read with one unaligned
//! little-endian u64 load, which 8 zero bytes at the end of the data keep inside
//! the section. `docs/format.md` has the size arithmetic.
//!
//! Reading walks one bucket's bits: [`PackedSegment`] finds the bucket through
//! the two tables, checks its bit run against the data, and decodes it.

use std::ops::Range;

use crate::bits::{gamma_len, key_bits, low_chunks, put_key_bits, BitReader};
use crate::file::SegmentFile;
use crate::format::{
    check_tiling, header_field, put_header_fields, HeaderError, Kind, HEADER_LEN, MAX_KEY_LEN,
    MAX_PREFIX_BITS,
};
use crate::reader::{EntryRun, KeyAt, LayoutReader};
use crate::SegmentError;

mod writer;

pub(crate) use writer::PackedWriter;

/// The widest count field.
pub(crate) const MAX_COUNT_BITS: u8 = 16;
/// The widest high part.
pub(crate) const MAX_UPPER_BITS: u8 = 24;

/// The widths a packed segment uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Params {
    pub key_len: usize,
    pub prefix_bits: u8,
    pub upper_bits: u8,
    pub count_bits: u8,
}

impl Params {
    /// Bits of the low part of a key.
    pub fn low_bits(&self) -> usize {
        8 * self.key_len - usize::from(self.prefix_bits) - usize::from(self.upper_bits)
    }

    /// Bits of one record: the low part and the count field.
    pub fn record_bits(&self) -> usize {
        self.low_bits() + usize::from(self.count_bits)
    }

    /// The count field value that means "an Elias-gamma code follows".
    pub fn escape(&self) -> u64 {
        (1u64 << self.count_bits) - 1
    }

    /// Whether a decoded header's widths make sense.
    pub fn valid(&self) -> bool {
        self.prefix_bits <= MAX_PREFIX_BITS
            && self.upper_bits <= MAX_UPPER_BITS
            && (1..=MAX_COUNT_BITS).contains(&self.count_bits)
            && 8 * self.key_len > usize::from(self.prefix_bits) + usize::from(self.upper_bits)
    }

    /// The fewest bits a bucket of `n` entries takes (no escapes).
    pub fn min_block_bits(&self, n: u64) -> u128 {
        u128::from(n) * (1 + self.record_bits() as u128) + (1u128 << self.upper_bits)
    }

    /// Chooses the prefix and high widths for about `entries` keys, and the count
    /// width from a sample of counts: the smallest file whose buckets hold about
    /// 128 entries or fewer, so a lookup decodes little.
    pub fn choose(key_len: usize, entries: u64, sample: &[u64]) -> Params {
        let n = entries.max(1);
        let log2 = 64 - (n - 1).leading_zeros() as i64;
        let prefix_bits = (log2 - 7).clamp(0, i64::from(MAX_PREFIX_BITS)) as u8;
        let upper_bits = (0..=MAX_UPPER_BITS)
            .filter(|&u| 8 * key_len > usize::from(prefix_bits) + usize::from(u))
            .min_by_key(|&u| {
                let bits = u32::from(prefix_bits) + u32::from(u);
                u128::from(n) * (8 * key_len as u128 - u128::from(bits)) + (1u128 << bits)
            })
            .unwrap_or(0);
        let count_bits = (1..=MAX_COUNT_BITS)
            .min_by_key(|&c| {
                let escape = (1u64 << c) - 1;
                sample
                    .iter()
                    .map(|&count| {
                        u64::from(c) + if count >= escape { gamma_len(count - escape + 1) } else { 0 }
                    })
                    .sum::<u64>()
            })
            .expect("at least one width");
        Params { key_len, prefix_bits, upper_bits, count_bits }
    }
}

/// The header of a packed segment: its widths and where its sections start.
/// The data starts right after the header and ends at the entry table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct PackedHeader {
    pub kind: Kind,
    pub params: Params,
    pub entry_count: u64,
    /// The entry table: `2^p + 1` u32 indices of each bucket's first entry.
    pub starts_offset: u64,
    /// The bit table: `2^p + 1` u64 positions of each bucket's first bit.
    pub offsets_offset: u64,
    pub checksums_offset: u64,
    pub file_len: u64,
}

impl PackedHeader {
    pub const VERSION: u16 = 2;

    /// Writes this layout's fields (the frame is the caller's). The u64 fields
    /// sit where version 1 keeps its own, those this layout has not set to
    /// empty sections (no overflow table, an empty heap at the checksums).
    pub fn encode(&self, b: &mut [u8; HEADER_LEN]) {
        b[13] = 0;
        b[14] = self.params.prefix_bits;
        b[15] = self.params.count_bits;
        b[88] = self.params.upper_bits;
        put_header_fields(
            b,
            &[
                self.entry_count,
                HEADER_LEN as u64,
                self.starts_offset,
                self.offsets_offset,
                0,
                self.checksums_offset,
                0,
                self.checksums_offset,
                self.file_len,
            ],
        );
    }

    /// Reads this layout's fields of a header whose frame is checked, and
    /// checks that its sections tile the body in order.
    pub fn decode(kind: Kind, b: &[u8; HEADER_LEN]) -> Result<PackedHeader, HeaderError> {
        let params =
            Params { key_len: kind.key_len(), prefix_bits: b[14], upper_bits: b[88], count_bits: b[15] };
        if !kind.has_count() || b[13] != 0 || !params.valid() {
            return Err(HeaderError::Corrupt("packed layout does not match the segment kind".into()));
        }
        let field = |i| header_field(b, i);
        let h = PackedHeader {
            kind,
            params,
            entry_count: field(0),
            starts_offset: field(2),
            offsets_offset: field(3),
            checksums_offset: field(7),
            file_len: field(8),
        };
        let slots = (1u64 << params.prefix_bits) + 1;
        let (heap_offset, heap_len, overflow_count) = (field(5), field(6), field(4));
        check_tiling(&[
            // Data, at least its 8 slack bytes.
            ("data", field(1), HEADER_LEN as u64),
            ("entry table", h.starts_offset, h.starts_offset.max(HEADER_LEN as u64 + 8)),
            ("bit table", h.offsets_offset, h.starts_offset.saturating_add(4 * slots)),
            ("checksums", h.checksums_offset, h.offsets_offset.saturating_add(8 * slots)),
            ("heap", heap_offset.saturating_add(heap_len).saturating_add(overflow_count), h.checksums_offset),
        ])?;
        Ok(h)
    }
}

/// An open segment in the packed layout.
pub(crate) struct PackedSegment {
    file: SegmentFile,
    h: PackedHeader,
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

impl PackedSegment {
    pub fn new(file: SegmentFile, h: PackedHeader) -> PackedSegment {
        PackedSegment { file, h }
    }

    /// Bucket `b`, checked: its entries lie within the segment and its bits
    /// within the data, enough of them for its entries.
    fn block(&self, b: usize) -> Result<Block, SegmentError> {
        let params = &self.h.params;
        let starts = self.h.starts_offset as usize + 4 * b;
        let offsets = self.h.offsets_offset as usize + 8 * b;
        self.file.check_span(starts as u64, starts as u64 + 8)?;
        self.file.check_span(offsets as u64, offsets as u64 + 16)?;
        let (start, end) = (self.file.u32_at(starts), self.file.u32_at(starts + 4));
        let (lo, hi) = (self.file.u64_at(offsets), self.file.u64_at(offsets + 8));
        let data = self.data();
        let n = u64::from(end.wrapping_sub(start));
        if start > end || u64::from(end) > self.h.entry_count {
            return Err(self.file.corrupt(starts as u64, "entry table out of order"));
        }
        if lo > hi || hi > data.limit() || u128::from(hi - lo) < params.min_block_bits(n) {
            return Err(self.file.corrupt(offsets as u64, "bit table out of order"));
        }
        // The bits, and the 8 bytes an unaligned load past the last may touch.
        self.file.check_span(HEADER_LEN as u64 + lo / 8, HEADER_LEN as u64 + hi.div_ceil(8) + 8)?;
        let upper_end = lo + n + (1u64 << params.upper_bits);
        let escapes = upper_end + n * params.record_bits() as u64;
        Ok(Block { bucket: b as u32, start, n, upper: lo, upper_end, records: upper_end, escapes, end: hi })
    }

    /// The data section, with its slack.
    #[inline]
    fn data(&self) -> BitReader<'_> {
        BitReader::new(&self.file.bytes()[HEADER_LEN..self.h.starts_offset as usize])
    }

    #[inline]
    fn decoder(&self, block: Block) -> Decoder<'_> {
        let params = self.h.params;
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

    /// The entry equal to `key`: (index, count).
    fn find_entry(&self, key: &[u8]) -> Result<Option<(usize, u64)>, SegmentError> {
        let params = &self.h.params;
        let mut k = [0u8; MAX_KEY_LEN];
        k[..key.len()].copy_from_slice(key);
        let (p, u) = (usize::from(params.prefix_bits), usize::from(params.upper_bits));
        let block = self.block(key_bits(&k, 0, p) as usize)?;
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
            if h == high && self.low_eq(&block, j, &k) {
                let count = self.count_in(&block, j)?;
                return Ok(Some((block.start as usize + j as usize, count)));
            }
            pos = one + 1;
            j += 1;
        }
        Ok(None)
    }

    fn damaged(&self, block: &Block) -> SegmentError {
        self.file
            .corrupt(HEADER_LEN as u64 + block.upper / 8, format!("bucket {} does not decode", block.bucket))
    }

    /// Whether record `j` of a block holds the low part of `key`.
    fn low_eq(&self, block: &Block, j: u64, key: &[u8; MAX_KEY_LEN]) -> bool {
        let params = &self.h.params;
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
    fn count_in(&self, block: &Block, j: u64) -> Result<u64, SegmentError> {
        let params = &self.h.params;
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

    /// Every entry in key order, as (full key, count), each bucket decoded
    /// once: the walk a merge makes, which [`LayoutReader::count`] by index
    /// would make quadratic in a bucket's length.
    pub(crate) fn counts(&self) -> crate::reader::Counts<'_> {
        Box::new((0..1usize << self.h.params.prefix_bits).flat_map(move |bucket| {
            let (block, err) = match self.block(bucket) {
                Ok(b) => (Some(b), None),
                Err(e) => (None, Some(e)),
            };
            let entries = block.into_iter().flat_map(move |block| self.decoder(block));
            err.into_iter().map(Err).chain(entries)
        }))
    }

    /// Entry `index`: its bucket by a search of the entry table, then that
    /// bucket decoded up to it.
    fn entry(&self, index: usize) -> Result<([u8; MAX_KEY_LEN], u64), SegmentError> {
        if index as u64 >= self.h.entry_count {
            return Err(self.file.usage(format!("no entry {index}")));
        }
        let bucket = self.file.slot_of_index(self.h.starts_offset, 1 << self.h.params.prefix_bits, index);
        let block = self.block(bucket)?;
        let skip = index.checked_sub(block.start as usize).ok_or_else(|| self.damaged(&block))?;
        self.decoder(block).nth(skip).unwrap_or_else(|| Err(self.damaged(&block)))
    }

    /// The block holding the 20-bit `prefix`, the entries before the range in it,
    /// and the range's length.
    fn range(&self, prefix: u32) -> Result<(Block, usize, usize), SegmentError> {
        let params = &self.h.params;
        let p = u32::from(params.prefix_bits);
        let block = self.block((prefix >> (20 - p)) as usize)?;
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
        for entry in self.decoder(block) {
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

impl LayoutReader for PackedSegment {
    type Entries<'a> = PackedEntries<'a>;

    fn file(&self) -> &SegmentFile {
        &self.file
    }

    fn kind(&self) -> Kind {
        self.h.kind
    }

    fn prefix_bits(&self) -> u8 {
        self.h.params.prefix_bits
    }

    fn len(&self) -> u64 {
        self.h.entry_count
    }

    fn file_len(&self) -> u64 {
        self.h.file_len
    }

    fn index_span(&self) -> Range<u64> {
        self.h.starts_offset..self.h.checksums_offset
    }

    #[inline]
    fn find(&self, key: &[u8]) -> Result<Range<usize>, SegmentError> {
        Ok(match self.find_entry(key)? {
            Some((index, _)) => index..index + 1,
            None => 0..0,
        })
    }

    /// One bucket decoded up to the key.
    #[inline]
    fn count_of(&self, key: &[u8]) -> Result<u64, SegmentError> {
        Ok(self.find_entry(key)?.map_or(0, |(_, count)| count))
    }

    fn range20(&self, prefix: u32) -> Result<Range<usize>, SegmentError> {
        let (block, skip, len) = self.range(prefix)?;
        let start = block.start as usize + skip;
        Ok(start..start + len)
    }

    #[inline]
    fn range20_entries(&self, prefix: u32) -> Result<PackedEntries<'_>, SegmentError> {
        let (block, skip, len) = self.range(prefix)?;
        let mut decoder = self.decoder(block);
        decoder.pass(skip)?;
        Ok(PackedEntries { decoder, left: len })
    }

    /// Decodes the entry's bucket up to it; a damaged bucket gives an all-zero
    /// key (the range and iteration calls report it).
    fn key(&self, index: usize) -> [u8; MAX_KEY_LEN] {
        self.entry(index).map_or([0; MAX_KEY_LEN], |e| e.0)
    }

    fn count(&self, index: usize) -> Result<u64, SegmentError> {
        self.entry(index).map(|e| e.1)
    }

    /// The packed kinds have counts only.
    fn value(&self, _index: usize) -> &[u8] {
        &[]
    }

    fn payload(&self, _index: usize) -> Result<(u32, &[u8]), SegmentError> {
        Err(self.file.usage("not a domain segment"))
    }

    fn iter(&self) -> Box<dyn Iterator<Item = Result<KeyAt, SegmentError>> + '_> {
        Box::new((0..1usize << self.h.params.prefix_bits).flat_map(move |bucket| {
            let (block, err) = match self.block(bucket) {
                Ok(b) => (Some(b), None),
                Err(e) => (None, Some(e)),
            };
            let entries = block.into_iter().flat_map(move |block| {
                let start = block.start as usize;
                self.decoder(block).enumerate().map(move |(j, e)| e.map(|(key, _)| (key, start + j)))
            });
            err.into_iter().map(Err).chain(entries)
        }))
    }
}

/// The entries of one range of a packed segment, as (full key, count).
pub(crate) struct PackedEntries<'a> {
    decoder: Decoder<'a>,
    left: usize,
}

impl EntryRun for PackedEntries<'_> {
    fn left(&self) -> usize {
        self.left
    }
}

impl Iterator for PackedEntries<'_> {
    type Item = Result<([u8; MAX_KEY_LEN], u64), SegmentError>;

    #[inline]
    fn next(&mut self) -> Option<Self::Item> {
        if self.left == 0 {
            return None;
        }
        self.left -= 1;
        self.decoder.next()
    }
}

/// Decodes a packed bucket's entries in order, as (full key, count).
struct Decoder<'a> {
    seg: &'a PackedSegment,
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn params_at_scale() {
        let counts: Vec<u64> = (1..=1000u64).map(|i| 1000 / i).collect();
        let p = Params::choose(20, 100_000_000, &counts);
        assert_eq!(p.prefix_bits, 20);
        assert_eq!(p.upper_bits, 7);
        assert!((2..=6).contains(&p.count_bits), "{p:?}");
        let p = Params::choose(16, 10, &[1]);
        assert_eq!((p.prefix_bits, p.count_bits), (0, 1));
    }
}
