//! Writes a segment in one sequential pass: entries as they come (already
//! sorted), then the layout's tables (and heap), then the chunk checksums, then
//! the header over its placeholder.
//!
//! [`SegmentWriter`] checks nothing of a layout's own: it hands each call to
//! its layout's writer once (an enum, like [`Segment`](crate::Segment)'s), the
//! fixed layout's in `fixed/writer.rs`, the packed layout's in
//! `packed/writer.rs`. What every layout writes through is here: the
//! checksummed output ([`ChecksummedWriter`]), the order of the keys
//! ([`Order`]) and the end of the file ([`seal`]). A third layout is a module
//! with a writer of its own and one more [`Body`] variant.

use std::fs::File;
use std::io::{Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use crate::fixed::{FixedWriter, Layout};
use crate::format::{Header, Kind, CHECKSUM_CHUNK, MAX_ENTRIES, MAX_KEY_LEN};
use crate::packed::PackedWriter;
use crate::sink::Sink;
use crate::SegmentError;

/// Builds one segment file. Entries must be pushed in non-decreasing key order;
/// kinds with counts take each key once.
pub struct SegmentWriter {
    /// The fixed layout's widths for this kind and size, whichever layout is
    /// written: callers take the kind from it.
    layout: Layout,
    body: Body,
}

/// The writer of the segment's layout. The fixed one is the larger by far (its
/// chunk buffer's hashers), and stays inline: a box would be one more load in
/// every push, to save bytes of which there is one set a segment.
#[allow(clippy::large_enum_variant)]
enum Body {
    Fixed(FixedWriter),
    Packed(PackedWriter),
}

/// What a finished segment is: enough for a manifest to name it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Written {
    pub path: PathBuf,
    pub entries: u64,
    pub bytes: u64,
    /// BLAKE3 of the header followed by the BLAKE3 of everything after it:
    /// a name for the content, computed as the bytes pass, without a reread.
    pub content_hash: [u8; 32],
}

impl SegmentWriter {
    /// Starts a segment at `path` (created, or truncated). `expected_entries` is an
    /// upper bound on the entries to come; it picks the prefix width.
    pub fn create(path: &Path, kind: Kind, expected_entries: u64) -> Result<Self, SegmentError> {
        let layout = Layout::choose(kind, expected_entries);
        let body = if kind.packed() {
            Body::Packed(PackedWriter::create(path, kind, expected_entries)?)
        } else {
            Body::Fixed(FixedWriter::create(path, layout)?)
        };
        Ok(SegmentWriter { layout, body })
    }

    /// Payload bytes held in memory before they go to a file beside the
    /// segment (and are copied from it at the end): a writer that knows its
    /// memory allowance saves the round trip for larger heaps.
    pub fn set_heap_memory(&mut self, bytes: usize) {
        if let Body::Fixed(w) = &mut self.body {
            w.set_heap_memory(bytes);
        }
    }

    /// Room for `bytes` of payloads, within the memory allowed them: a heap
    /// that doubles as it grows copies itself into fresh memory at each step.
    pub fn reserve_heap(&mut self, bytes: u64) {
        if let Body::Fixed(w) = &mut self.body {
            w.reserve_heap(bytes);
        }
    }

    pub fn layout(&self) -> Layout {
        self.layout
    }

    /// Adds a counted key (`Sha1Counts`, `NtlmCounts`).
    #[inline]
    pub fn push_count(&mut self, key: &[u8], count: u64) -> Result<(), SegmentError> {
        self.push(key, count, &[])
    }

    /// Adds an entry with a fixed value (`Accounts`: the breach id; `Credentials`: none).
    #[inline]
    pub fn push_value(&mut self, key: &[u8], value: &[u8]) -> Result<(), SegmentError> {
        self.push(key, 0, value)
    }

    /// Adds a `Domains` or `Stealer` entry: the breach id and a payload kept in the heap.
    pub fn push_payload(&mut self, key: &[u8], breach: u32, payload: &[u8]) -> Result<(), SegmentError> {
        match &mut self.body {
            Body::Fixed(w) => w.push_payload(key, breach, payload),
            Body::Packed(w) => Err(w.usage(NO_PAYLOADS)),
        }
    }

    /// Adds a `Domains` or `Stealer` entry whose payload, `len` bytes, the
    /// caller writes with [`SegmentWriter::put_payload`] once the entries are
    /// over, in the same order: for payloads the caller holds anyway, which
    /// then cost no copy held here. A writer takes its payloads one way only.
    pub fn push_payload_len(&mut self, key: &[u8], breach: u32, len: usize) -> Result<(), SegmentError> {
        match &mut self.body {
            Body::Fixed(w) => w.push_payload_len(key, breach, len),
            Body::Packed(w) => Err(w.usage(NO_PAYLOADS)),
        }
    }

    /// [`SegmentWriter::push_payload_len`] for entries of one key in a row
    /// (a domain's aliases): `lens` are their payloads' lengths.
    pub fn push_payload_lens(&mut self, key: &[u8], breach: u32, lens: &[u8]) -> Result<(), SegmentError> {
        match &mut self.body {
            Body::Fixed(w) => w.push_payload_lens(key, breach, lens),
            Body::Packed(_) if lens.is_empty() => Ok(()),
            Body::Packed(w) => Err(w.usage(NO_PAYLOADS)),
        }
    }

    /// Writes the next payload of the entries added by
    /// [`SegmentWriter::push_payload_len`]; no entry may follow.
    pub fn put_payload(&mut self, payload: &[u8]) -> Result<(), SegmentError> {
        match &mut self.body {
            Body::Fixed(w) => w.put_payload(payload),
            Body::Packed(w) => Err(w.usage(PUT_PAYLOAD)),
        }
    }

    /// Adds entries of `K`-byte keys in order, each with the same `value`
    /// (`Accounts`, `Credentials`): [`SegmentWriter::push_value`] for a
    /// slice of keys at once, checked as a whole.
    pub fn push_keys<const K: usize, const V: usize>(
        &mut self,
        keys: &[[u8; K]],
        value: &[u8; V],
    ) -> Result<(), SegmentError> {
        match &mut self.body {
            Body::Fixed(w) => w.push_keys(keys, value),
            Body::Packed(w) => Err(w.usage(PUSH_KEYS)),
        }
    }

    /// Adds counted keys of `K` bytes, strictly in order (`Sha1Counts`,
    /// `NtlmCounts`): [`SegmentWriter::push_count`] for a slice at once,
    /// checked as a whole.
    pub fn push_counts<const K: usize>(&mut self, entries: &[([u8; K], u64)]) -> Result<(), SegmentError> {
        match &mut self.body {
            Body::Fixed(w) => w.push_counts(entries),
            Body::Packed(w) => Err(w.usage(PUSH_COUNTS)),
        }
    }

    /// Writes the tables, checksums and header, and syncs the file to disk.
    pub fn finish(self) -> Result<Written, SegmentError> {
        let written = self.finish_unsynced()?;
        File::open(&written.path)
            .and_then(|f| f.sync_all())
            .map_err(|e| SegmentError::io(&written.path, e))?;
        Ok(written)
    }

    /// Like [`finish`](Self::finish) without the sync, for a caller that syncs
    /// many segments together before publishing any of them.
    pub fn finish_unsynced(self) -> Result<Written, SegmentError> {
        match self.body {
            Body::Fixed(w) => w.finish(),
            Body::Packed(w) => w.finish(),
        }
    }

    #[inline]
    fn push(&mut self, key: &[u8], count: u64, value: &[u8]) -> Result<(), SegmentError> {
        match &mut self.body {
            Body::Fixed(w) => w.push(key, count, value),
            Body::Packed(w) => w.push(key, count, value),
        }
    }
}

/// Usage errors that SegmentWriter and the layouts' writers share.
const NO_PAYLOADS: &str = "payloads belong to domain and stealer segments";
const PUT_PAYLOAD: &str = "put_payload follows push_payload_len";
pub(crate) const PUSH_KEYS: &str = "push_keys takes uncounted keys of the segment's widths";
pub(crate) const PUSH_COUNTS: &str = "push_counts takes counted keys of the segment's width";
/// More entries than a segment's u32 indices reach, in any layout.
pub(crate) const TOO_MANY_ENTRIES: &str = "more than 2^32 - 1 entries";
/// A single entry's key or value not of its kind's width, in any layout.
pub(crate) const WRONG_WIDTH: &str = "key or value of the wrong width for this segment kind";

/// The entries pushed so far: how many, and the last key, which the next
/// must not be below (nor equal to, in counted kinds).
pub(crate) struct Order {
    last: [u8; MAX_KEY_LEN],
    pub entries: u64,
}

impl Order {
    pub fn new() -> Order {
        Order { last: [0; MAX_KEY_LEN], entries: 0 }
    }

    /// Checks that a run of `n` entries of `K`-byte keys starting with
    /// `first` may follow the entries so far: `first` is not below the last
    /// key (nor equal to it when `strict`), and the count stays within
    /// [`MAX_ENTRIES`].
    #[inline(always)]
    pub fn admit<const K: usize>(&self, first: &[u8; K], n: usize, strict: bool) -> Result<(), &'static str> {
        if self.entries > 0 {
            let last: &[u8; K] = self.last[..K].try_into().expect("keys fit MAX_KEY_LEN");
            match key_order(last, first) {
                std::cmp::Ordering::Greater => return Err("keys pushed out of order"),
                std::cmp::Ordering::Equal if strict => return Err("a counted key pushed twice"),
                _ => {}
            }
        }
        if self.entries + n as u64 > MAX_ENTRIES {
            return Err(TOO_MANY_ENTRIES);
        }
        Ok(())
    }

    /// Records the key of the last entry pushed (the encoders count them).
    #[inline(always)]
    pub fn set_last<const K: usize>(&mut self, last: &[u8; K]) {
        self.last[..K].copy_from_slice(last);
    }
}

/// The order of two keys of one width, compared as big-endian integers: the
/// first 16 bytes as one, which settle almost every pair, then the rest (at
/// most 16 more) as another; no comparison is a `memcmp` call.
#[inline(always)]
pub(crate) fn key_order<const K: usize>(a: &[u8; K], b: &[u8; K]) -> std::cmp::Ordering {
    let split = K.min(16);
    let head = |k: &[u8; K]| {
        let mut head = [0u8; 16];
        head[..split].copy_from_slice(&k[..split]);
        u128::from_be_bytes(head)
    };
    let tail = |k: &[u8; K]| {
        let mut tail = [0u8; 16];
        tail[..K - split].copy_from_slice(&k[split..]);
        u128::from_be_bytes(tail)
    };
    match head(a).cmp(&head(b)) {
        std::cmp::Ordering::Equal if K > 16 => tail(a).cmp(&tail(b)),
        order => order,
    }
}

/// Writes the checksums and the header after a layout's last section, and
/// names the content. `header` makes the header from where the checksums
/// start and the file's length.
pub(crate) fn seal(
    path: PathBuf,
    entries: u64,
    out: ChecksummedWriter,
    header: impl FnOnce(u64, u64) -> Header,
) -> Result<Written, SegmentError> {
    let io = |e| SegmentError::io(&path, e);
    let checksums_offset = out.position;
    let (mut file, crcs, mut body_hash) = out.finish().map_err(io)?;
    let mut tail = Vec::with_capacity(crcs.len() * 4 + 4);
    for crc in &crcs {
        tail.extend_from_slice(&crc.to_le_bytes());
    }
    let tail_crc = crc32fast::hash(&tail);
    tail.extend_from_slice(&tail_crc.to_le_bytes());
    file.write_all(&tail).map_err(io)?;
    body_hash.update(&tail);
    let file_len = checksums_offset + tail.len() as u64;

    let header = header(checksums_offset, file_len).encode();
    file.seek(SeekFrom::Start(0)).map_err(io)?;
    file.write_all(&header).map_err(io)?;
    let mut content = blake3::Hasher::new();
    content.update(&header);
    content.update(body_hash.finalize().as_bytes());
    Ok(Written { path, entries, bytes: file_len, content_hash: content.finalize().into() })
}

/// A buffered writer that keeps a CRC-32 of every [`CHECKSUM_CHUNK`] bytes after
/// the header, and a BLAKE3 of all of them, as they pass: no second read. It
/// buffers whole chunks so both checksums run over large blocks, not over each
/// small entry. A layout's entry encoder may append to `buf` in place, within
/// the chunk, keeping `position` up to date.
pub(crate) struct ChecksummedWriter {
    pub sink: Sink,
    pub buf: Vec<u8>,
    /// The file offset of the next byte.
    pub position: u64,
    body: blake3::Hasher,
    crcs: Vec<u32>,
}

impl ChecksummedWriter {
    pub fn new(sink: Sink) -> Self {
        ChecksummedWriter {
            sink,
            buf: Vec::with_capacity(CHECKSUM_CHUNK),
            position: 0,
            body: blake3::Hasher::new(),
            crcs: Vec::new(),
        }
    }

    /// Writes bytes that the chunk checksums do not cover (the header placeholder).
    pub fn write_raw(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        self.sink.write_all(bytes)?;
        self.position += bytes.len() as u64;
        Ok(())
    }

    pub fn flush_chunk(&mut self) -> std::io::Result<()> {
        if self.buf.is_empty() {
            return Ok(());
        }
        self.crcs.push(crc32fast::hash(&self.buf));
        self.body.update(&self.buf);
        self.sink.write_all(&self.buf)?;
        self.buf.clear();
        Ok(())
    }

    /// `write_all` for a payload: appended in place when it fits the chunk, as
    /// nearly every one does, without the `Write` loop around each.
    #[inline]
    pub fn put(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        if self.buf.len() + bytes.len() < CHECKSUM_CHUNK {
            self.buf.extend_from_slice(bytes);
            self.position += bytes.len() as u64;
            return Ok(());
        }
        self.write_all(bytes)
    }

    fn finish(mut self) -> std::io::Result<(File, Vec<u32>, blake3::Hasher)> {
        self.flush_chunk()?;
        Ok((self.sink.finish()?, self.crcs, self.body))
    }
}

impl Write for ChecksummedWriter {
    fn write(&mut self, mut buf: &[u8]) -> std::io::Result<usize> {
        let total = buf.len();
        while !buf.is_empty() {
            let take = buf.len().min(CHECKSUM_CHUNK - self.buf.len());
            self.buf.extend_from_slice(&buf[..take]);
            if self.buf.len() == CHECKSUM_CHUNK {
                self.flush_chunk()?;
            }
            buf = &buf[take..];
        }
        self.position += total as u64;
        Ok(total)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Keys compare as big-endian byte strings, at every width, whichever
    /// byte they first differ in.
    #[test]
    fn key_order_is_byte_order() {
        fn check<const K: usize>() {
            let mut state = 0x9E37_79B9_7F4A_7C15u64;
            let mut next = move || {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                state
            };
            for _ in 0..5000 {
                let mut a = [0u8; K];
                a.iter_mut().for_each(|x| *x = next() as u8);
                // The same key changed in one byte, or not at all.
                let mut b = a;
                let at = next() as usize % K;
                b[at] = if next() % 4 == 0 { a[at] } else { next() as u8 };
                assert_eq!(key_order(&a, &b), a.cmp(&b), "{a:?} {b:?}");
                assert_eq!(key_order(&b, &a), b.cmp(&a), "{b:?} {a:?}");
            }
        }
        check::<16>();
        check::<20>();
        check::<24>();
        check::<28>();
        check::<32>();
    }

    /// The last entry a segment takes is its 2^32 - 1st: one more would not
    /// fit the u32 entry count of the prefix table's last slot.
    #[test]
    fn order_admits_up_to_max_entries() {
        let mut order = Order::new();
        order.entries = MAX_ENTRIES - 2;
        assert_eq!(order.admit(&[1u8; 16], 2, false), Ok(()));
        assert_eq!(order.admit(&[1u8; 16], 3, false), Err(TOO_MANY_ENTRIES));
        order.entries = MAX_ENTRIES;
        assert_eq!(order.admit(&[1u8; 16], 1, false), Err(TOO_MANY_ENTRIES));
    }
}
