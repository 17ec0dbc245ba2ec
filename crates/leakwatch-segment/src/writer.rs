//! Writes a segment in one sequential pass: entries as they come (already sorted),
//! then the prefix table, overflow table, heap and checksums, then the header.

use std::fs::File;
use std::io::{BufWriter, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::mpsc;

use crate::bits::{key_bits, low_chunks, BitWriter};
use crate::fixed::{FixedHeader, Layout};
use crate::format::{Header, Kind, CHECKSUM_CHUNK, HEADER_LEN, MAX_KEY_LEN};
use crate::packed::{PackedHeader, Params};
use crate::sink::Sink;
use crate::SegmentError;

/// Entries a packed segment buffers before it picks its count width from them.
const SAMPLE: usize = 1 << 16;

/// Builds one segment file. Entries must be pushed in non-decreasing key order;
/// kinds with counts take each key once.
pub struct SegmentWriter {
    path: PathBuf,
    out: ChecksummedWriter,
    layout: Layout,
    bucket_counts: Vec<u32>,
    /// The last key pushed (its first `last_len` bytes; none yet when 0),
    /// zero-padded so that fixed-size copies out of it stay in bounds.
    last_key: [u8; 2 * MAX_KEY_LEN],
    last_len: usize,
    entries: u64,
    overflow: Vec<(u32, u64)>,
    heap: Option<Heap>,
    entry_buf: Vec<u8>,
    /// The packed layout's encoder thread, for the kinds written that way.
    packed: Option<PackedHandle>,
    /// Where the tables and the heap start, once the tables are written
    /// (entries are over then).
    tables: Option<Tables>,
    /// Deferred payload bytes written so far.
    payloads_written: u64,
}

/// The offsets of the sections after the entries.
#[derive(Debug, Clone, Copy)]
struct Tables {
    table: u64,
    overflow: u64,
    heap: u64,
}

/// Entries handed to the encoder thread at once.
const BATCH: usize = 8192;

/// Keys of the packed kinds are 20 bytes at most (zero-padded here).
type Batch = Vec<([u8; 20], u64)>;

/// The writer's side of a packed segment: entries are batched and encoded on a
/// thread of their own, which owns the file until `finish`, so that encoding
/// and checksumming overlap the caller's parsing.
struct PackedHandle {
    batch: Batch,
    tx: Option<mpsc::SyncSender<Batch>>,
    back: mpsc::Receiver<Batch>,
    thread: Option<std::thread::JoinHandle<std::io::Result<(Packed, ChecksummedWriter)>>>,
}

impl PackedHandle {
    fn start(packed: Packed, mut out: ChecksummedWriter) -> PackedHandle {
        let (tx, rx) = mpsc::sync_channel::<Batch>(4);
        let (back_tx, back) = mpsc::channel::<Batch>();
        let thread = std::thread::spawn(move || {
            let mut packed = packed;
            for mut batch in rx {
                for (key, count) in batch.drain(..) {
                    packed.push(key, count, &mut out)?;
                }
                let _ = back_tx.send(batch);
            }
            Ok((packed, out))
        });
        PackedHandle { batch: Vec::with_capacity(BATCH), tx: Some(tx), back, thread: Some(thread) }
    }

    /// Queues an entry; false when the encoder thread has stopped (`finish`
    /// then reports why).
    fn push(&mut self, key: &[u8], count: u64) -> bool {
        let mut k = [0u8; 20];
        k[..key.len()].copy_from_slice(key);
        self.batch.push((k, count));
        if self.batch.len() < BATCH {
            return true;
        }
        let next = self.back.try_recv().unwrap_or_else(|_| Vec::with_capacity(BATCH));
        let full = std::mem::replace(&mut self.batch, next);
        self.tx.as_ref().is_some_and(|tx| tx.send(full).is_ok())
    }

    /// Sends the last batch and takes the encoder's state back.
    fn finish(mut self) -> std::io::Result<(Packed, ChecksummedWriter)> {
        if let Some(tx) = self.tx.take() {
            let _ = tx.send(std::mem::take(&mut self.batch));
        }
        match self.thread.take().expect("joined once").join() {
            Ok(result) => result,
            Err(panic) => std::panic::resume_unwind(panic),
        }
    }
}

/// A packed segment being written: entries wait in `pending` until their bucket
/// is complete (and, at first, until the sample picks the widths).
struct Packed {
    key_len: usize,
    expected: u64,
    params: Option<Params>,
    /// The bucket being filled; earlier ones are written.
    bucket: usize,
    pending: Vec<([u8; 20], u64)>,
    bits: BitWriter,
    /// First entry index and first bit of each written bucket.
    starts: Vec<u32>,
    offsets: Vec<u64>,
    written_entries: u64,
}

impl Packed {
    /// Adds a key (zero-padded to 20 bytes) and its count.
    fn push(&mut self, k: [u8; 20], count: u64, out: &mut ChecksummedWriter) -> std::io::Result<()> {
        let Some(params) = self.params else {
            self.pending.push((k, count));
            if self.pending.len() == SAMPLE {
                self.start(self.key_len, self.expected, out)?;
            }
            return Ok(());
        };
        let b = bucket_of(&k, params.prefix_bits);
        if b != self.bucket {
            self.advance_to(b, out)?;
        }
        self.pending.push((k, count));
        Ok(())
    }

    /// Picks the widths from the buffered sample and routes it to its buckets.
    fn start(&mut self, key_len: usize, entries: u64, out: &mut ChecksummedWriter) -> std::io::Result<()> {
        let counts: Vec<u64> = self.pending.iter().map(|e| e.1).collect();
        let params = Params::choose(key_len, entries.max(self.pending.len() as u64), &counts);
        self.params = Some(params);
        self.starts.reserve(1 << params.prefix_bits);
        self.offsets.reserve(1 << params.prefix_bits);
        let sample = std::mem::take(&mut self.pending);
        for (k, count) in sample {
            self.push(k, count, out)?;
        }
        Ok(())
    }

    /// Writes every bucket before `b` (the current one and the empty ones after it).
    fn advance_to(&mut self, b: usize, out: &mut ChecksummedWriter) -> std::io::Result<()> {
        let params = self.params.expect("widths chosen");
        while self.bucket < b {
            self.starts.push(self.written_entries as u32);
            self.offsets.push(self.bits.bits);
            encode_bucket(&params, &mut self.bits, &self.pending);
            self.written_entries += self.pending.len() as u64;
            self.pending.clear();
            self.bucket += 1;
            if self.bits.bytes.len() >= CHECKSUM_CHUNK {
                out.write_all(&self.bits.bytes)?;
                self.bits.bytes.clear();
            }
        }
        Ok(())
    }
}

/// The top `p` bits of a key.
fn bucket_of(key: &[u8; 20], p: u8) -> usize {
    key_bits(key, 0, usize::from(p)) as usize
}

/// Appends one bucket's block: high parts in unary, records, escaped counts.
fn encode_bucket(params: &Params, bits: &mut BitWriter, entries: &[([u8; 20], u64)]) {
    let (p, u) = (usize::from(params.prefix_bits), usize::from(params.upper_bits));
    let mut prev = 0;
    for (key, _) in entries {
        let high = key_bits(key, p, u);
        bits.zeros(high - prev);
        bits.put(1, 1);
        prev = high;
    }
    bits.zeros((1u64 << u) - prev);
    let escape = params.escape();
    for (key, count) in entries {
        let mut start = p + u;
        for width in low_chunks(params.low_bits()) {
            bits.put(key_bits(key, start, width), width);
            start += width;
        }
        bits.put((*count).min(escape), usize::from(params.count_bits));
    }
    for &(_, count) in entries {
        if count >= escape {
            bits.gamma(count - escape + 1);
        }
    }
}

/// Copies a key into `to` with a fixed-size move for each kind's width (a
/// run-time length would be a memcpy call per entry).
fn copy_key(to: &mut [u8; 2 * MAX_KEY_LEN], key: &[u8]) {
    match key.len() {
        16 => to[..16].copy_from_slice(&key[..16]),
        20 => to[..20].copy_from_slice(&key[..20]),
        24 => to[..24].copy_from_slice(&key[..24]),
        28 => to[..28].copy_from_slice(&key[..28]),
        n => to[..n].copy_from_slice(key),
    }
}

/// The order of two keys of one width: the first 16 bytes as one integer
/// settle almost every pair.
#[inline]
fn key_order(a: &[u8], b: &[u8]) -> std::cmp::Ordering {
    let head = |k: &[u8]| u128::from_be_bytes(k[..16].try_into().expect("keys are >= 16 bytes"));
    // (A 16-byte key has no tail: no memcmp call for the empty rest.)
    let tail = || if a.len() > 16 { a[16..].cmp(&b[16..]) } else { std::cmp::Ordering::Equal };
    head(a).cmp(&head(b)).then_with(tail)
}

/// Payload bytes a writer holds in memory unless told otherwise.
const HEAP_MEMORY: usize = 16 << 20;

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
    /// ([`SegmentWriter::push_payload_len`]); none are held here.
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
        // The packed layout's encoder thread shares the file: buffered writes.
        let sink = Sink::create(path, !kind.packed()).map_err(|e| SegmentError::io(path, e))?;
        let mut out = ChecksummedWriter::new(sink);
        out.write_raw(&[0u8; HEADER_LEN]).map_err(|e| SegmentError::io(path, e))?;
        let packed = if kind.packed() {
            // The encoder thread writes through its own handle on the file, from
            // just after the header placeholder.
            let file = out.sink.try_clone().map_err(|e| SegmentError::io(path, e))?;
            let mut encoder_out = ChecksummedWriter::new(Sink::buffered(file));
            encoder_out.position = HEADER_LEN as u64;
            let state = Packed {
                key_len: kind.key_len(),
                expected: expected_entries,
                params: None,
                bucket: 0,
                pending: Vec::with_capacity(SAMPLE),
                bits: BitWriter::default(),
                starts: Vec::new(),
                offsets: Vec::new(),
                written_entries: 0,
            };
            Some(PackedHandle::start(state, encoder_out))
        } else {
            None
        };
        let heap = kind.has_payload().then(|| Heap {
            path: path.with_extension("heap-tmp"),
            memory: Vec::new(),
            limit: HEAP_MEMORY,
            file: None,
            len: 0,
            deferred: false,
        });
        Ok(SegmentWriter {
            path: path.to_owned(),
            out,
            layout,
            bucket_counts: vec![0; 1usize << layout.prefix_bits],
            last_key: [0; 2 * MAX_KEY_LEN],
            last_len: 0,
            entries: 0,
            overflow: Vec::new(),
            heap,
            entry_buf: Vec::with_capacity(64),
            packed,
            tables: None,
            payloads_written: 0,
        })
    }

    /// Payload bytes held in memory before they go to a file beside the
    /// segment (and are copied from it at the end): a writer that knows its
    /// memory allowance saves the round trip for larger heaps.
    pub fn set_heap_memory(&mut self, bytes: usize) {
        if let Some(heap) = &mut self.heap {
            heap.limit = bytes;
        }
    }

    /// Room for `bytes` of payloads, within the memory allowed them: a heap
    /// that doubles as it grows copies itself into fresh memory at each step.
    pub fn reserve_heap(&mut self, bytes: u64) {
        if let Some(heap) = &mut self.heap {
            if heap.file.is_none() {
                let room = (bytes as usize).min(heap.limit).saturating_sub(heap.memory.len());
                heap.memory.reserve_exact(room);
            }
        }
    }

    pub fn layout(&self) -> Layout {
        self.layout
    }

    /// Adds a counted key (`Sha1Counts`, `NtlmCounts`).
    pub fn push_count(&mut self, key: &[u8], count: u64) -> Result<(), SegmentError> {
        self.push(key, count, &[])
    }

    /// Adds an entry with a fixed value (`Accounts`: the breach id; `Credentials`: none).
    pub fn push_value(&mut self, key: &[u8], value: &[u8]) -> Result<(), SegmentError> {
        self.push(key, 0, value)
    }

    /// Adds a `Domains` or `Stealer` entry: the breach id and a payload kept in the heap.
    pub fn push_payload(&mut self, key: &[u8], breach: u32, payload: &[u8]) -> Result<(), SegmentError> {
        let value = self.payload_entry(breach, payload.len(), false)?;
        let heap = self.heap.as_mut().expect("checked by payload_entry");
        heap.write(payload).map_err(|e| SegmentError::io(&heap.path, e))?;
        self.push(key, 0, &value)
    }

    /// Adds a `Domains` or `Stealer` entry whose payload, `len` bytes, the
    /// caller writes with [`SegmentWriter::put_payload`] once the entries are
    /// over, in the same order: for payloads the caller holds anyway, which
    /// then cost no copy held here. A writer takes its payloads one way only.
    pub fn push_payload_len(&mut self, key: &[u8], breach: u32, len: usize) -> Result<(), SegmentError> {
        let value = self.payload_entry(breach, len, true)?;
        self.heap.as_mut().expect("checked by payload_entry").len += len as u64;
        self.push(key, 0, &value)
    }

    /// [`SegmentWriter::push_payload_len`] for entries of one key in a row
    /// (a domain's aliases): `lens` are their payloads' lengths. The entries
    /// differ only in their heap offsets and lengths, so each is a copy of
    /// the first with those two written in.
    pub fn push_payload_lens(&mut self, key: &[u8], breach: u32, lens: &[u8]) -> Result<(), SegmentError> {
        let Some((&first, rest)) = lens.split_first() else { return Ok(()) };
        // The first entry through the checks: width, order, heap, room.
        self.push_payload_len(key, breach, usize::from(first))?;
        let layout = self.layout;
        let len = layout.entry_len;
        let value_at = len - 9;
        let mut template = [0u8; 2 * MAX_KEY_LEN];
        template[..value_at].copy_from_slice(&key[layout.skip..]);
        template[value_at..value_at + 4].copy_from_slice(&breach.to_le_bytes());
        let last_offset =
            self.heap.as_ref().map_or(0, |h| h.len) + rest.iter().map(|&l| u64::from(l)).sum::<u64>();
        if last_offset > u64::from(u32::MAX) + 1 || self.entries + rest.len() as u64 > 1 << 32 {
            return Err(self.usage("heap larger than 4 GiB or more than 2^32 entries"));
        }
        for &payload_len in rest {
            if self.out.buf.len() + template.len() >= CHECKSUM_CHUNK {
                // Across the chunk's end: the general way.
                self.push_payload_len(key, breach, usize::from(payload_len))?;
                continue;
            }
            let heap = self.heap.as_mut().expect("checked by push_payload_len");
            let buf = &mut self.out.buf;
            let at = buf.len();
            buf.extend_from_slice(&template);
            buf.truncate(at + len);
            buf[at + value_at + 4..at + value_at + 8].copy_from_slice(&(heap.len as u32).to_le_bytes());
            buf[at + value_at + 8] = payload_len;
            heap.len += u64::from(payload_len);
            self.out.position += len as u64;
            self.bucket_counts[layout.bucket_of(key)] += 1;
            self.entries += 1;
        }
        Ok(())
    }

    /// Writes the next payload of the entries added by
    /// [`SegmentWriter::push_payload_len`]; no entry may follow.
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

    /// Adds entries of `K`-byte keys in order, each with the same `value`
    /// (`Accounts`, `Credentials`): [`SegmentWriter::push_value`] for a
    /// slice of keys at once. Widths known at compile time make every copy a
    /// fixed-size move straight into the chunk buffer.
    pub fn push_keys<const K: usize, const V: usize>(
        &mut self,
        keys: &[[u8; K]],
        value: &[u8; V],
    ) -> Result<(), SegmentError> {
        let kind = self.layout.kind;
        if self.packed.is_some() || kind.has_count() || K != kind.key_len() || V != kind.value_len() {
            return Err(self.usage("push_keys takes uncounted keys of the segment's widths"));
        }
        let Some(last) = keys.last() else { return Ok(()) };
        if self.tables.is_some() {
            return Err(self.usage("an entry after the payloads"));
        }
        let after_last = self.last_len == 0 || key_order(&self.last_key[..K], &keys[0]).is_le();
        if !after_last || keys.windows(2).any(|w| key_order(&w[0], &w[1]).is_gt()) {
            return Err(self.usage("keys pushed out of order"));
        }
        if self.entries + keys.len() as u64 > 1 << 32 {
            return Err(self.usage("more than 2^32 entries"));
        }
        let written = match self.layout.skip {
            0 => self.put_keys::<K, V, 0>(keys, value),
            1 => self.put_keys::<K, V, 1>(keys, value),
            2 => self.put_keys::<K, V, 2>(keys, value),
            _ => keys.iter().try_for_each(|key| {
                self.push(key, 0, value).map_err(|e| std::io::Error::other(e.to_string()))
            }),
        };
        written.map_err(|e| SegmentError::io(&self.path, e))?;
        self.last_key[..K].copy_from_slice(last);
        self.last_len = K;
        Ok(())
    }

    /// [`SegmentWriter::push_keys`] for `S` implied key bytes: whole entries
    /// into the room left in the chunk, an entry across its end on its own.
    fn put_keys<const K: usize, const V: usize, const S: usize>(
        &mut self,
        keys: &[[u8; K]],
        value: &[u8; V],
    ) -> std::io::Result<()> {
        let len = K - S + V;
        let layout = self.layout;
        let mut rest = keys;
        while !rest.is_empty() {
            let room = (CHECKSUM_CHUNK - self.out.buf.len()) / len;
            if room == 0 {
                let mut entry = [0u8; 2 * MAX_KEY_LEN + 16];
                entry[..K - S].copy_from_slice(&rest[0][S..]);
                entry[K - S..len].copy_from_slice(value);
                self.out.write_all(&entry[..len])?;
                self.bucket_counts[layout.bucket_of(&rest[0])] += 1;
                self.entries += 1;
                rest = &rest[1..];
                continue;
            }
            let (now, later) = rest.split_at(room.min(rest.len()));
            let buf = &mut self.out.buf;
            let at = buf.len();
            buf.resize(at + now.len() * len, 0);
            for (entry, key) in buf[at..].chunks_exact_mut(len).zip(now) {
                entry[..K - S].copy_from_slice(&key[S..]);
                entry[K - S..].copy_from_slice(value);
                self.bucket_counts[layout.bucket_of(key)] += 1;
            }
            self.out.position += (now.len() * len) as u64;
            self.entries += now.len() as u64;
            if self.out.buf.len() == CHECKSUM_CHUNK {
                self.out.flush_chunk()?;
            }
            rest = later;
        }
        Ok(())
    }

    /// Adds counted keys of `K` bytes, strictly in order (`Sha1Counts`,
    /// `NtlmCounts`): [`SegmentWriter::push_count`] for a slice at once, by
    /// fixed-size moves straight into the chunk buffer.
    pub fn push_counts<const K: usize>(&mut self, entries: &[([u8; K], u64)]) -> Result<(), SegmentError> {
        let kind = self.layout.kind;
        if self.packed.is_some() || !kind.has_count() || K != kind.key_len() {
            return Err(self.usage("push_counts takes counted keys of the segment's width"));
        }
        let Some((last, _)) = entries.last() else { return Ok(()) };
        if self.tables.is_some() {
            return Err(self.usage("an entry after the payloads"));
        }
        let after_last = self.last_len == 0 || key_order(&self.last_key[..K], &entries[0].0).is_lt();
        if !after_last || entries.windows(2).any(|w| key_order(&w[0].0, &w[1].0).is_ge()) {
            return Err(self.usage("counted keys pushed out of order or twice"));
        }
        if self.entries + entries.len() as u64 > 1 << 32 {
            return Err(self.usage("more than 2^32 entries"));
        }
        let written = match self.layout.skip {
            0 => self.put_counts::<K, 0>(entries),
            1 => self.put_counts::<K, 1>(entries),
            2 => self.put_counts::<K, 2>(entries),
            _ => entries.iter().try_for_each(|(key, count)| {
                self.push(key, *count, &[]).map_err(|e| std::io::Error::other(e.to_string()))
            }),
        };
        written.map_err(|e| SegmentError::io(&self.path, e))?;
        self.last_key[..K].copy_from_slice(last);
        self.last_len = K;
        Ok(())
    }

    /// [`SegmentWriter::push_counts`] for `S` implied key bytes.
    fn put_counts<const K: usize, const S: usize>(
        &mut self,
        entries: &[([u8; K], u64)],
    ) -> std::io::Result<()> {
        let layout = self.layout;
        let len = layout.entry_len;
        let max = layout.inline_count_max();
        let shift = 8 - layout.small_bits;
        // The count in the first stored byte's implied top bits, or in a byte
        // of its own after the key.
        let place = |entry: &mut [u8], inline: u64| {
            if layout.small_bits > 0 {
                entry[0] = (entry[0] & ((1u8 << shift) - 1)) | ((inline as u8) << shift);
            } else {
                entry[K - S] = inline as u8;
            }
        };
        let mut rest = entries;
        while let Some(((key, count), tail)) = rest.split_first() {
            let room = (CHECKSUM_CHUNK - self.out.buf.len()) / len;
            if room == 0 {
                let mut entry = [0u8; 2 * MAX_KEY_LEN];
                entry[..K - S].copy_from_slice(&key[S..]);
                place(&mut entry, (*count).min(max));
                if *count >= max {
                    self.overflow.push((self.entries as u32, *count));
                }
                self.out.write_all(&entry[..len])?;
                self.bucket_counts[layout.bucket_of(key)] += 1;
                self.entries += 1;
                rest = tail;
                continue;
            }
            let (now, later) = rest.split_at(room.min(rest.len()));
            let buf = &mut self.out.buf;
            let at = buf.len();
            buf.resize(at + now.len() * len, 0);
            for ((entry, (key, count)), index) in buf[at..].chunks_exact_mut(len).zip(now).zip(self.entries..)
            {
                entry[..K - S].copy_from_slice(&key[S..]);
                place(entry, (*count).min(max));
                if *count >= max {
                    self.overflow.push((index as u32, *count));
                }
                self.bucket_counts[layout.bucket_of(key)] += 1;
            }
            self.out.position += (now.len() * len) as u64;
            self.entries += now.len() as u64;
            if self.out.buf.len() == CHECKSUM_CHUNK {
                self.out.flush_chunk()?;
            }
            rest = later;
        }
        Ok(())
    }

    fn usage(&self, detail: &str) -> SegmentError {
        SegmentError::Usage { path: self.path.clone(), detail: detail.into() }
    }

    fn push(&mut self, key: &[u8], count: u64, value: &[u8]) -> Result<(), SegmentError> {
        let layout = self.layout;
        let kind = layout.kind;
        if key.len() != kind.key_len() || value.len() != kind.value_len() {
            return Err(self.usage("key or value of the wrong width for this segment kind"));
        }
        if self.tables.is_some() {
            return Err(self.usage("an entry after the payloads"));
        }
        if self.last_len > 0 {
            match key_order(&self.last_key[..self.last_len], key) {
                std::cmp::Ordering::Greater => return Err(self.usage("keys pushed out of order")),
                std::cmp::Ordering::Equal if kind.has_count() => {
                    return Err(self.usage("a counted key pushed twice"))
                }
                _ => {}
            }
        }
        let index = u32::try_from(self.entries).map_err(|_| self.usage("more than 2^32 entries"))?;
        copy_key(&mut self.last_key, key);
        self.last_len = key.len();
        if let Some(packed) = &mut self.packed {
            if !packed.push(key, count) {
                // The encoder stopped on an error; finishing reports it.
                let handle = self.packed.take().expect("checked");
                return Err(match handle.finish() {
                    Err(e) => SegmentError::io(&self.path, e),
                    Ok(_) => self.usage("the encoder thread stopped"),
                });
            }
            self.entries += 1;
            return Ok(());
        }

        let buf = &mut self.out.buf;
        if !kind.has_count() && buf.len() + 2 * MAX_KEY_LEN < CHECKSUM_CHUNK {
            // The entry straight into the chunk buffer, by fixed-size copies
            // cut back to length: copies of a run-time length are a memcpy call
            // each, four per entry on the general path below.
            let at = buf.len();
            let skip = layout.skip;
            buf.extend_from_slice(&self.last_key[skip..skip + MAX_KEY_LEN]);
            buf.truncate(at + key.len() - skip);
            // As wide as the widest value (a stealer-log pair's, 20 bytes).
            let mut padded = [0u8; 24];
            match value.len() {
                0 => {}
                4 => padded[..4].copy_from_slice(&value[..4]),
                9 => padded[..9].copy_from_slice(&value[..9]),
                n => padded[..n].copy_from_slice(value),
            }
            buf.extend_from_slice(&padded);
            buf.truncate(at + layout.entry_len);
            self.out.position += layout.entry_len as u64;
            self.bucket_counts[layout.bucket_of(key)] += 1;
            self.entries += 1;
            return Ok(());
        }
        self.entry_buf.clear();
        self.entry_buf.extend_from_slice(&key[layout.skip..]);
        if kind.has_count() {
            let max = layout.inline_count_max();
            let inline = count.min(max);
            if count >= max {
                self.overflow.push((index, count));
            }
            if layout.small_bits > 0 {
                let shift = 8 - layout.small_bits;
                let low_mask = (1u8 << shift) - 1;
                self.entry_buf[0] = (self.entry_buf[0] & low_mask) | ((inline as u8) << shift);
            } else {
                self.entry_buf.push(inline as u8);
            }
        }
        self.entry_buf.extend_from_slice(value);
        debug_assert_eq!(self.entry_buf.len(), layout.entry_len);
        self.out.put(&self.entry_buf).map_err(|e| SegmentError::io(&self.path, e))?;
        self.bucket_counts[layout.bucket_of(key)] += 1;
        self.entries += 1;
        Ok(())
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
    pub fn finish_unsynced(mut self) -> Result<Written, SegmentError> {
        if self.packed.is_some() || self.layout.kind.packed() {
            return self.finish_packed();
        }
        let path = self.path.clone();
        let io = |e| SegmentError::io(&path, e);
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

        let checksums_offset = self.out.position;
        let (mut file, crcs, mut body_hash) = self.out.finish().map_err(io)?;
        let file_len = write_checksums(&mut file, &crcs, &mut body_hash, checksums_offset).map_err(io)?;

        let header = Header::Fixed(FixedHeader {
            layout: self.layout,
            entry_count: self.entries,
            table_offset,
            overflow_offset,
            overflow_count: self.overflow.len() as u64,
            heap_offset,
            heap_len,
            checksums_offset,
            file_len,
        });
        write_header(self.path, self.entries, header, file, body_hash)
    }

    /// Writes the prefix and overflow tables after the last entry, once.
    fn write_tables(&mut self) -> Result<Tables, SegmentError> {
        if let Some(tables) = self.tables {
            return Ok(tables);
        }
        let path = self.path.clone();
        let io = |e| SegmentError::io(&path, e);
        let table = self.out.position;
        let mut start = 0u32;
        for count in &self.bucket_counts {
            self.out.write_all(&start.to_le_bytes()).map_err(io)?;
            start += count;
        }
        self.out.write_all(&start.to_le_bytes()).map_err(io)?;
        let overflow = self.out.position;
        for (index, count) in &self.overflow {
            self.out.write_all(&index.to_le_bytes()).map_err(io)?;
            self.out.write_all(&count.to_le_bytes()).map_err(io)?;
        }
        let tables = Tables { table, overflow, heap: self.out.position };
        self.tables = Some(tables);
        Ok(tables)
    }

    /// The packed layout's end: the last buckets, the slack, both tables, the
    /// checksums and the header.
    fn finish_packed(mut self) -> Result<Written, SegmentError> {
        let path = self.path.clone();
        let io = |e| SegmentError::io(&path, e);
        let handle = self.packed.take().ok_or_else(|| self.usage("the encoder thread stopped"))?;
        let (mut packed, out) = handle.finish().map_err(io)?;
        // Everything goes through the encoder's handle from here on.
        self.out = out;
        let key_len = self.layout.kind.key_len();
        if packed.params.is_none() {
            let exact = packed.pending.len() as u64;
            packed.start(key_len, exact, &mut self.out).map_err(io)?;
        }
        let params = packed.params.expect("widths chosen");
        packed.advance_to(1 << params.prefix_bits, &mut self.out).map_err(io)?;
        packed
            .starts
            .push(u32::try_from(packed.written_entries).map_err(|_| self.usage("more than 2^32 entries"))?);
        packed.offsets.push(packed.bits.bits);
        packed.bits.align();
        // Slack, so that a field anywhere in the data is one 8-byte load.
        packed.bits.bytes.extend_from_slice(&[0; 8]);
        self.out.write_all(&packed.bits.bytes).map_err(io)?;
        let table_offset = self.out.position;
        for start in &packed.starts {
            self.out.write_all(&start.to_le_bytes()).map_err(io)?;
        }
        let offsets_offset = self.out.position;
        for offset in &packed.offsets {
            self.out.write_all(&offset.to_le_bytes()).map_err(io)?;
        }
        let checksums_offset = self.out.position;
        let (mut file, crcs, mut body_hash) = self.out.finish().map_err(io)?;
        let file_len = write_checksums(&mut file, &crcs, &mut body_hash, checksums_offset).map_err(io)?;
        let header = Header::Packed(PackedHeader {
            kind: self.layout.kind,
            params,
            entry_count: self.entries,
            starts_offset: table_offset,
            offsets_offset,
            checksums_offset,
            file_len,
        });
        write_header(self.path, self.entries, header, file, body_hash)
    }
}

/// Appends the chunk checksums and their own CRC; returns the file length.
fn write_checksums(
    file: &mut File,
    crcs: &[u32],
    body_hash: &mut blake3::Hasher,
    checksums_offset: u64,
) -> std::io::Result<u64> {
    let mut tail = Vec::with_capacity(crcs.len() * 4 + 4);
    for crc in crcs {
        tail.extend_from_slice(&crc.to_le_bytes());
    }
    let tail_crc = crc32fast::hash(&tail);
    tail.extend_from_slice(&tail_crc.to_le_bytes());
    file.write_all(&tail)?;
    body_hash.update(&tail);
    Ok(checksums_offset + tail.len() as u64)
}

/// Writes the header over its placeholder and names the content.
fn write_header(
    path: PathBuf,
    entries: u64,
    header: Header,
    mut file: File,
    body_hash: blake3::Hasher,
) -> Result<Written, SegmentError> {
    let file_len = header.file_len();
    let header = header.encode();
    file.seek(SeekFrom::Start(0)).map_err(|e| SegmentError::io(&path, e))?;
    file.write_all(&header).map_err(|e| SegmentError::io(&path, e))?;
    let mut content = blake3::Hasher::new();
    content.update(&header);
    content.update(body_hash.finalize().as_bytes());
    Ok(Written { path, entries, bytes: file_len, content_hash: content.finalize().into() })
}

/// A buffered writer that keeps a CRC-32 of every [`CHECKSUM_CHUNK`] bytes after
/// the header, and a BLAKE3 of all of them, as they pass: no second read. It
/// buffers whole chunks so both checksums run over large blocks, not over each
/// small entry.
struct ChecksummedWriter {
    sink: Sink,
    buf: Vec<u8>,
    position: u64,
    body: blake3::Hasher,
    crcs: Vec<u32>,
}

impl ChecksummedWriter {
    fn new(sink: Sink) -> Self {
        ChecksummedWriter {
            sink,
            buf: Vec::with_capacity(CHECKSUM_CHUNK),
            position: 0,
            body: blake3::Hasher::new(),
            crcs: Vec::new(),
        }
    }

    /// Writes bytes that the chunk checksums do not cover (the header placeholder).
    fn write_raw(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        self.sink.write_all(bytes)?;
        self.position += bytes.len() as u64;
        Ok(())
    }

    fn flush_chunk(&mut self) -> std::io::Result<()> {
        if self.buf.is_empty() {
            return Ok(());
        }
        self.crcs.push(crc32fast::hash(&self.buf));
        self.body.update(&self.buf);
        self.sink.write_all(&self.buf)?;
        self.buf.clear();
        Ok(())
    }

    /// `write_all` for an entry: appended in place when it fits the chunk, as
    /// nearly every one does, without the `Write` loop around each.
    #[inline]
    fn put(&mut self, bytes: &[u8]) -> std::io::Result<()> {
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
