//! Writes the fixed layout: entries straight into the checksummed chunk buffer,
//! counted in their buckets and, past the inline maximum, in the overflow
//! table; then the prefix and overflow tables and the heap of payloads.
//!
//! Every entry, whatever the push call, is laid out by one function
//! ([`place`]) and counted by one ([`Tally::add`]), generic over the kind's
//! key and value widths, the implied key bytes and whether the kind counts:
//! every copy is then a move of fixed size, not a `memcpy` call of a run-time
//! length (several an entry), and no entry tests what its kind holds. A run
//! of entries (`push_keys`, `push_counts`, a domain's aliases) goes through
//! [`FixedWriter::encode`]; a single push through the instance of
//! [`push_one`] picked for the writer's kind and widths when it is created.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use crate::fixed::{FixedHeader, Layout};
use crate::format::{Header, CHECKSUM_CHUNK, HEADER_LEN, MAX_ENTRIES, MAX_HEAP_BYTES};
use crate::sink::Sink;
use crate::writer::{
    seal, ChecksummedWriter, Order, Written, PUSH_COUNTS, PUSH_KEYS, TOO_MANY_ENTRIES, WRONG_WIDTH,
};
use crate::SegmentError;

/// Bytes a single entry is laid out in and appended by, a move of fixed
/// size cut back to the entry: one entry of any kind (at most 36 bytes),
/// rounded up.
const ENTRY_ROOM: usize = 64;

/// Payload bytes a writer holds in memory unless told otherwise.
const HEAP_MEMORY: usize = 16 << 20;

/// One entry of the writer's kind through the checks and the encoder: an
/// instance of [`push_one`], picked once per writer.
type PushOne = fn(&mut FixedWriter, &[u8], u64, &[u8]) -> Result<(), SegmentError>;

/// A segment of the fixed layout being written.
pub(crate) struct FixedWriter {
    path: PathBuf,
    layout: Layout,
    out: ChecksummedWriter,
    order: Order,
    tally: Tally,
    heap: Option<Heap>,
    /// Where the tables and the heap start, once the tables are written
    /// (entries are over then).
    tables: Option<Tables>,
    /// Deferred payload bytes written so far.
    payloads_written: u64,
    push_one: PushOne,
}

/// What the tables after the entries are made of, counted entry by entry.
struct Tally {
    bucket_counts: Vec<u32>,
    /// (entry index, count) of each count past the inline maximum.
    overflow: Vec<(u32, u64)>,
}

impl Tally {
    /// Counts entry `index` in its bucket, and in the overflow table when the
    /// kind counts (`C`) and its count does not fit inline.
    #[inline(always)]
    fn add<const C: bool>(&mut self, layout: &Layout, key: &[u8], count: u64, index: u64) {
        if C && count >= layout.inline_count_max() {
            self.overflow.push((index as u32, count));
        }
        self.bucket_counts[layout.bucket_of(key)] += 1;
    }
}

/// The offsets of the sections after the entries.
#[derive(Debug, Clone, Copy)]
struct Tables {
    table: u64,
    overflow: u64,
    heap: u64,
}

/// Lays one entry out in the first `entry_len` bytes of `entry`, which are
/// zero: the key without its `S` implied bytes, the count in the implied bits
/// of its first stored byte or in a byte of its own (when the kind counts,
/// `C`), the value.
#[inline(always)]
fn place<const K: usize, const V: usize, const S: usize, const C: bool>(
    entry: &mut [u8],
    layout: &Layout,
    key: &[u8; K],
    count: u64,
    value: &[u8; V],
) {
    entry[..K - S].copy_from_slice(&key[S..]);
    let value_at = if C {
        let inline = count.min(layout.inline_count_max()) as u8;
        let small = layout.small_bits;
        if small > 0 {
            entry[0] = (entry[0] & (0xFF >> small)) | (inline << (8 - small));
        } else {
            entry[K - S] = inline;
        }
        layout.entry_len - V
    } else {
        K - S
    };
    entry[value_at..value_at + V].copy_from_slice(value);
}

/// One entry of `K`-byte key and `V`-byte value, `S` implied key bytes, counted
/// or not (`C`): checked (widths, order, room) and encoded.
fn push_one<const K: usize, const V: usize, const S: usize, const C: bool>(
    w: &mut FixedWriter,
    key: &[u8],
    count: u64,
    value: &[u8],
) -> Result<(), SegmentError> {
    let (Ok(key), Ok(value)) = (<&[u8; K]>::try_from(key), <&[u8; V]>::try_from(value)) else {
        return Err(w.usage(WRONG_WIDTH));
    };
    w.admit(key, 1, C)?;
    w.encode_one::<K, V, S, C>(key, count, value).map_err(|e| w.io(e))?;
    w.order.set_last(key);
    Ok(())
}

/// The instance of [`push_one`] for `layout`'s kind and implied key bytes.
fn push_one_for(layout: Layout) -> PushOne {
    macro_rules! by_widths {
        ($(($k:literal, $v:literal, $c:literal)),* $(,)?) => {
            match (layout.kind.key_len(), layout.kind.value_len(), layout.kind.has_count()) {
                $(($k, $v, $c) => match layout.skip {
                    0 => push_one::<$k, $v, 0, $c> as PushOne,
                    1 => push_one::<$k, $v, 1, $c>,
                    _ => push_one::<$k, $v, 2, $c>,
                },)*
                (k, v, c) => unreachable!("no fixed kind has {k}-byte keys, {v}-byte values and counts {c}"),
            }
        };
    }
    // The widths of the fixed kinds (a test writes each kind at each skip).
    by_widths!(
        (20, 0, true),
        (16, 0, true),
        (16, 4, false),
        (16, 9, false),
        (16, 0, false),
        (16, 20, false),
        (24, 0, false),
        (28, 0, false),
    )
}

impl FixedWriter {
    /// Starts a fixed segment at `path` with `layout`'s widths.
    pub fn create(path: &Path, layout: Layout) -> Result<FixedWriter, SegmentError> {
        let io = |e| SegmentError::io(path, e);
        let mut out = ChecksummedWriter::new(Sink::create(path, true).map_err(io)?);
        out.write_raw(&[0u8; HEADER_LEN]).map_err(io)?;
        assert!(layout.entry_len <= ENTRY_ROOM, "{layout:?}: entries wider than ENTRY_ROOM");
        let heap = layout.kind.has_payload().then(|| Heap {
            path: path.with_extension("heap-tmp"),
            memory: Vec::new(),
            limit: HEAP_MEMORY,
            file: None,
            len: 0,
            deferred: false,
        });
        Ok(FixedWriter {
            path: path.to_owned(),
            layout,
            out,
            order: Order::new(),
            tally: Tally { bucket_counts: vec![0; 1usize << layout.prefix_bits], overflow: Vec::new() },
            heap,
            tables: None,
            payloads_written: 0,
            push_one: push_one_for(layout),
        })
    }

    pub fn set_heap_memory(&mut self, bytes: usize) {
        if let Some(heap) = &mut self.heap {
            heap.limit = bytes;
        }
    }

    pub fn reserve_heap(&mut self, bytes: u64) {
        if let Some(heap) = &mut self.heap {
            if heap.file.is_none() {
                let room = (bytes as usize).min(heap.limit).saturating_sub(heap.memory.len());
                heap.memory.reserve_exact(room);
            }
        }
    }

    /// One entry (`count` 0 for kinds without counts, `value` empty for kinds
    /// without values).
    #[inline]
    pub fn push(&mut self, key: &[u8], count: u64, value: &[u8]) -> Result<(), SegmentError> {
        (self.push_one)(self, key, count, value)
    }

    #[inline]
    pub fn push_payload(&mut self, key: &[u8], breach: u32, payload: &[u8]) -> Result<(), SegmentError> {
        let value = self.payload_entry(breach, payload.len(), false)?;
        let heap = self.heap.as_mut().expect("checked by payload_entry");
        heap.write(payload).map_err(|e| SegmentError::io(&heap.path, e))?;
        self.push(key, 0, &value)
    }

    #[inline]
    pub fn push_payload_len(&mut self, key: &[u8], breach: u32, len: usize) -> Result<(), SegmentError> {
        let value = self.payload_entry(breach, len, true)?;
        self.heap.as_mut().expect("checked by payload_entry").len += len as u64;
        self.push(key, 0, &value)
    }

    pub fn push_payload_lens(&mut self, key: &[u8], breach: u32, lens: &[u8]) -> Result<(), SegmentError> {
        let Some((&first, rest)) = lens.split_first() else { return Ok(()) };
        // The first entry through the checks: width, order, heap.
        self.push_payload_len(key, breach, usize::from(first))?;
        let key: &[u8; 16] = key.try_into().expect("payload kinds have 16-byte keys");
        let heap = self.heap.as_mut().expect("checked by push_payload_len");
        let start = heap.len;
        let end = start + rest.iter().map(|&l| u64::from(l)).sum::<u64>();
        // Each entry's heap offset is a u32: the last must be one.
        if end - rest.last().map_or(0, |&l| u64::from(l)) > MAX_HEAP_BYTES {
            return Err(self.usage("heap larger than 4 GiB"));
        }
        if self.order.entries + rest.len() as u64 > MAX_ENTRIES {
            return Err(self.usage(TOO_MANY_ENTRIES));
        }
        heap.len = end;
        let mut offset = start as u32;
        let entries = rest.iter().map(|&len| {
            let mut value = [0u8; 9];
            value[..4].copy_from_slice(&breach.to_le_bytes());
            value[4..8].copy_from_slice(&offset.to_le_bytes());
            value[8] = len;
            offset = offset.wrapping_add(u32::from(len));
            (key, 0, value)
        });
        let written = match self.layout.skip {
            0 => self.encode::<16, 9, 0, false>(entries),
            1 => self.encode::<16, 9, 1, false>(entries),
            _ => self.encode::<16, 9, 2, false>(entries),
        };
        written.map_err(|e| self.io(e))
    }

    #[inline]
    pub fn put_payload(&mut self, payload: &[u8]) -> Result<(), SegmentError> {
        if !self.heap.as_ref().is_some_and(|h| h.deferred) {
            return Err(self.usage("put_payload follows push_payload_len"));
        }
        if self.tables.is_none() {
            self.write_tables()?;
        }
        self.out.put(payload).map_err(|e| SegmentError::io(&self.path, e))?;
        self.payloads_written += payload.len() as u64;
        Ok(())
    }

    /// The value of a payload entry (breach, heap offset, length), with the
    /// heap checked: it exists, it is taken one way, and the entry fits.
    fn payload_entry(&mut self, breach: u32, len: usize, deferred: bool) -> Result<[u8; 9], SegmentError> {
        let Some(heap) = self.heap.as_mut() else {
            return Err(self.usage("payloads belong to domain and stealer segments"));
        };
        if heap.len > 0 && heap.deferred != deferred {
            return Err(self.usage("payloads pushed both with and without their bytes"));
        }
        heap.deferred = deferred;
        let offset = u32::try_from(heap.len).map_err(|_| self.usage("heap larger than 4 GiB"))?;
        let len = u8::try_from(len).map_err(|_| self.usage("payload longer than 255 bytes"))?;
        let mut value = [0u8; 9];
        value[..4].copy_from_slice(&breach.to_le_bytes());
        value[4..8].copy_from_slice(&offset.to_le_bytes());
        value[8] = len;
        Ok(value)
    }

    pub fn push_keys<const K: usize, const V: usize>(
        &mut self,
        keys: &[[u8; K]],
        value: &[u8; V],
    ) -> Result<(), SegmentError> {
        let kind = self.layout.kind;
        if kind.has_count() || K != kind.key_len() || V != kind.value_len() {
            return Err(self.usage(PUSH_KEYS));
        }
        let (Some(first), Some(last)) = (keys.first(), keys.last()) else { return Ok(()) };
        self.admit(first, keys.len(), false)?;
        if keys.windows(2).any(|w| crate::writer::key_order(&w[0], &w[1]).is_gt()) {
            return Err(self.usage("keys pushed out of order"));
        }
        let entries = keys.iter().map(|key| (key, 0, *value));
        let written = match self.layout.skip {
            0 => self.encode::<K, V, 0, false>(entries),
            1 => self.encode::<K, V, 1, false>(entries),
            _ => self.encode::<K, V, 2, false>(entries),
        };
        written.map_err(|e| self.io(e))?;
        self.order.set_last(last);
        Ok(())
    }

    pub fn push_counts<const K: usize>(&mut self, entries: &[([u8; K], u64)]) -> Result<(), SegmentError> {
        let kind = self.layout.kind;
        if !kind.has_count() || K != kind.key_len() {
            return Err(self.usage(PUSH_COUNTS));
        }
        let (Some((first, _)), Some((last, _))) = (entries.first(), entries.last()) else { return Ok(()) };
        self.admit(first, entries.len(), true)?;
        if entries.windows(2).any(|w| crate::writer::key_order(&w[0].0, &w[1].0).is_ge()) {
            return Err(self.usage("counted keys pushed out of order or twice"));
        }
        let run = entries.iter().map(|(key, count)| (key, *count, []));
        let written = match self.layout.skip {
            0 => self.encode::<K, 0, 0, true>(run),
            1 => self.encode::<K, 0, 1, true>(run),
            _ => self.encode::<K, 0, 2, true>(run),
        };
        written.map_err(|e| self.io(e))?;
        self.order.set_last(last);
        Ok(())
    }

    #[cold]
    #[inline(never)]
    fn usage(&self, detail: &str) -> SegmentError {
        SegmentError::Usage { path: self.path.clone(), detail: detail.into() }
    }

    #[cold]
    #[inline(never)]
    fn io(&self, e: std::io::Error) -> SegmentError {
        SegmentError::io(&self.path, e)
    }

    /// Checks that a run of `n` entries starting with `first` may follow the
    /// entries so far: the entries are not over, and [`Order::admit`].
    #[inline(always)]
    fn admit<const K: usize>(&self, first: &[u8; K], n: usize, strict: bool) -> Result<(), SegmentError> {
        if self.tables.is_some() {
            return Err(self.usage("an entry after the payloads"));
        }
        self.order.admit(first, n, strict).map_err(|detail| self.usage(detail))
    }

    /// A single entry, appended in place by one fixed-size move when the chunk
    /// has room for any entry, as nearly always.
    #[inline(always)]
    fn encode_one<const K: usize, const V: usize, const S: usize, const C: bool>(
        &mut self,
        key: &[u8; K],
        count: u64,
        value: &[u8; V],
    ) -> std::io::Result<()> {
        let layout = self.layout;
        // A constant unless a count byte may follow the key.
        let len = if C { layout.entry_len } else { K - S + V };
        debug_assert_eq!(len, layout.entry_len);
        let mut entry = [0u8; ENTRY_ROOM];
        place::<K, V, S, C>(&mut entry, &layout, key, count, value);
        let index = self.order.entries;
        let buf = &mut self.out.buf;
        let at = buf.len();
        if at + ENTRY_ROOM <= CHECKSUM_CHUNK {
            // Short of the chunk's end: the chunk is not full after it.
            buf.extend_from_slice(&entry);
            buf.truncate(at + len);
            self.out.position += len as u64;
        } else {
            // Near the chunk's end, through the `Write` loop.
            self.out.write_all(&entry[..len])?;
        }
        self.tally.add::<C>(&layout, key, count, index);
        self.order.entries = index + 1;
        Ok(())
    }

    /// A run of entries, laid out in place in the chunk buffer as many at a
    /// time as the chunk has room for.
    ///
    /// The widths are constants, `K` and `V` the kind's, `S` the layout's
    /// (at most 2, with 20 prefix bits at most), and so is `C`, whether the
    /// kind counts.
    #[inline(always)]
    fn encode<'k, const K: usize, const V: usize, const S: usize, const C: bool>(
        &mut self,
        mut entries: impl ExactSizeIterator<Item = (&'k [u8; K], u64, [u8; V])>,
    ) -> std::io::Result<()> {
        let layout = self.layout;
        debug_assert_eq!((layout.skip, layout.kind.has_count()), (S, C));
        // A constant unless a count byte may follow the key.
        let len = if C { layout.entry_len } else { K - S + V };
        debug_assert_eq!(len, layout.entry_len);
        while entries.len() > 0 {
            let (left, space) = (entries.len(), CHECKSUM_CHUNK - self.out.buf.len());
            // Every entry left, when they fit the chunk, as nearly always.
            let now = if left * len < space { left } else { space / len };
            if now == 0 {
                // Across the chunk's end, through the `Write` loop.
                let (key, count, value) = entries.next().expect("an entry left");
                let mut entry = [0u8; ENTRY_ROOM];
                place::<K, V, S, C>(&mut entry, &layout, key, count, &value);
                self.tally.add::<C>(&layout, key, count, self.order.entries);
                self.order.entries += 1;
                self.out.write_all(&entry[..len])?;
                continue;
            }
            let buf = &mut self.out.buf;
            let at = buf.len();
            buf.resize(at + now * len, 0);
            let first = self.order.entries;
            for ((entry, (key, count, value)), index) in
                buf[at..].chunks_exact_mut(len).zip(entries.by_ref()).zip(first..)
            {
                place::<K, V, S, C>(entry, &layout, key, count, &value);
                self.tally.add::<C>(&layout, key, count, index);
            }
            self.order.entries = first + now as u64;
            self.out.position += (now * len) as u64;
            if self.out.buf.len() == CHECKSUM_CHUNK {
                self.out.flush_chunk()?;
            }
        }
        Ok(())
    }

    /// Writes the tables, the heap, the checksums and the header.
    pub fn finish(mut self) -> Result<Written, SegmentError> {
        let Tables { table: table_offset, overflow: overflow_offset, heap: heap_offset } =
            self.write_tables()?;
        let mut heap_len = 0;
        if let Some(heap) = self.heap.take() {
            if heap.deferred {
                if self.payloads_written != heap.len {
                    return Err(self.usage("payload bytes put do not add up to the entries' lengths"));
                }
                heap_len = heap.len;
            } else {
                let path = heap.path.clone();
                heap_len = heap.copy_into(&mut self.out).map_err(|e| SegmentError::io(&path, e))?;
            }
        }
        let (layout, entry_count) = (self.layout, self.order.entries);
        let overflow_count = self.tally.overflow.len() as u64;
        seal(self.path, entry_count, self.out, |checksums_offset, file_len| {
            Header::Fixed(FixedHeader {
                layout,
                entry_count,
                table_offset,
                overflow_offset,
                overflow_count,
                heap_offset,
                heap_len,
                checksums_offset,
                file_len,
            })
        })
    }

    /// Writes the prefix and overflow tables after the last entry, once.
    fn write_tables(&mut self) -> Result<Tables, SegmentError> {
        if let Some(tables) = self.tables {
            return Ok(tables);
        }
        let path = self.path.clone();
        let io = |e| SegmentError::io(&path, e);
        // Each table in one write, not a write a slot: with a few entries a
        // bucket, the slots' writes would cost about as much as the entries'.
        let table = self.out.position;
        let mut bytes = Vec::with_capacity(4 * (self.tally.bucket_counts.len() + 1));
        let mut start = 0u32;
        for count in &self.tally.bucket_counts {
            bytes.extend_from_slice(&start.to_le_bytes());
            start += count;
        }
        bytes.extend_from_slice(&start.to_le_bytes());
        self.out.write_all(&bytes).map_err(io)?;
        let overflow = self.out.position;
        bytes.clear();
        for (index, count) in &self.tally.overflow {
            bytes.extend_from_slice(&index.to_le_bytes());
            bytes.extend_from_slice(&count.to_le_bytes());
        }
        self.out.write_all(&bytes).map_err(io)?;
        let tables = Tables { table, overflow, heap: self.out.position };
        self.tables = Some(tables);
        Ok(tables)
    }
}

/// The payloads of a domain or stealer segment, which the format puts after
/// the entries: held in memory up to `limit`, beyond it in a file beside the
/// segment, and copied in at the end.
struct Heap {
    path: PathBuf,
    memory: Vec<u8>,
    limit: usize,
    file: Option<BufWriter<File>>,
    len: u64,
    /// The payloads are the caller's to write after the entries
    /// ([`SegmentWriter::push_payload_len`](crate::SegmentWriter::push_payload_len));
    /// none are held here.
    deferred: bool,
}

impl Heap {
    fn write(&mut self, payload: &[u8]) -> std::io::Result<()> {
        self.len += payload.len() as u64;
        if self.file.is_none() {
            if self.memory.len() + payload.len() <= self.limit {
                self.memory.extend_from_slice(payload);
                return Ok(());
            }
            let mut file = BufWriter::with_capacity(1 << 16, File::create(&self.path)?);
            file.write_all(&std::mem::take(&mut self.memory))?;
            self.file = Some(file);
        }
        self.file.as_mut().expect("just made").write_all(payload)
    }

    /// Appends the payloads to `out`; returns their length.
    fn copy_into(self, out: &mut ChecksummedWriter) -> std::io::Result<u64> {
        match self.file {
            None => out.write_all(&self.memory)?,
            Some(file) => {
                drop(file.into_inner().map_err(|e| e.into_error())?);
                std::io::copy(&mut File::open(&self.path)?, out)?;
                std::fs::remove_file(&self.path)?;
            }
        }
        Ok(self.len)
    }
}

#[cfg(test)]
mod tests {
    use crate::{Kind, SegmentWriter};

    /// Every fixed kind's widths, at every number of implied key bytes, have
    /// an instance of the entry encoder.
    #[test]
    fn every_fixed_kind_and_prefix_width_encodes() {
        let dir = tempfile::tempdir().unwrap();
        for kind in Kind::ALL.into_iter().filter(|k| !k.packed()) {
            let mut skips = Vec::new();
            for expected in [1u64, 1 << 12, 1 << 20, 1 << 30] {
                let path = dir.path().join(format!("{}-{expected}.seg", kind.name()));
                let mut w = SegmentWriter::create(&path, kind, expected).unwrap();
                skips.push(w.layout().skip);
                let key = vec![0xA5; kind.key_len()];
                if kind.has_count() {
                    w.push_count(&key, 300).unwrap();
                } else {
                    w.push_value(&key, &vec![7; kind.value_len()]).unwrap();
                }
                w.finish_unsynced().unwrap();
                let seg = crate::Segment::open(&path).unwrap();
                let found = seg.find(&key).unwrap();
                assert_eq!(found.len(), 1, "{kind:?} {expected}");
                if kind.has_count() {
                    assert_eq!(seg.count(found.start).unwrap(), 300);
                } else {
                    assert_eq!(seg.value(found.start), &vec![7; kind.value_len()][..]);
                }
            }
            skips.dedup();
            assert_eq!(skips, [0, 1, 2], "{kind:?}");
        }
    }
}
