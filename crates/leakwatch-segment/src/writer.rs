//! Writes a segment in one sequential pass: entries as they come (already sorted),
//! then the tables, heap and checksums, then the header.
//!
//! In the fixed layout every push call, one entry or a slice of them, ends in
//! one entry encoder (`SegmentWriter::encode`), which lays out the entries,
//! counts them in their buckets and the overflow table, and fills the chunk
//! buffer. The packed layout's entries go to its encoder thread instead, which
//! writes each bucket once it is complete.

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

/// Bytes of room an entry encoder makes at once by a fixed-size move: one
/// entry of any kind (at most 49 bytes), rounded up.
const SMALL_RUN: usize = 64;

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
    /// (a domain's aliases): `lens` are their payloads' lengths.
    pub fn push_payload_lens(&mut self, key: &[u8], breach: u32, lens: &[u8]) -> Result<(), SegmentError> {
        let Some((&first, rest)) = lens.split_first() else { return Ok(()) };
        // The first entry through the checks: width, order, heap.
        self.push_payload_len(key, breach, usize::from(first))?;
        let key: &[u8; 16] = key.try_into().expect("payload kinds have 16-byte keys");
        let heap = self.heap.as_mut().expect("checked by push_payload_len");
        let start = heap.len;
        let end = start + rest.iter().map(|&l| u64::from(l)).sum::<u64>();
        // Each entry's heap offset is a u32: the last must be one.
        if end - rest.last().map_or(0, |&l| u64::from(l)) > u64::from(u32::MAX) {
            return Err(self.usage("heap larger than 4 GiB"));
        }
        if self.entries + rest.len() as u64 > 1 << 32 {
            return Err(self.usage("more than 2^32 entries"));
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
        written.map_err(|e| SegmentError::io(&self.path, e))
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
    /// slice of keys at once, checked as a whole.
    pub fn push_keys<const K: usize, const V: usize>(
        &mut self,
        keys: &[[u8; K]],
        value: &[u8; V],
    ) -> Result<(), SegmentError> {
        let kind = self.layout.kind;
        if self.packed.is_some() || kind.has_count() || K != kind.key_len() || V != kind.value_len() {
            return Err(self.usage("push_keys takes uncounted keys of the segment's widths"));
        }
        let Some(first) = keys.first() else { return Ok(()) };
        self.admit_run(first, keys.len())?;
        if keys.windows(2).any(|w| key_order(&w[0], &w[1]).is_gt()) {
            return Err(self.usage("keys pushed out of order"));
        }
        let last = keys.last().expect("not empty");
        let entries = keys.iter().map(|key| (key, 0, *value));
        let written = match self.layout.skip {
            0 => self.encode::<K, V, 0, false>(entries),
            1 => self.encode::<K, V, 1, false>(entries),
            _ => self.encode::<K, V, 2, false>(entries),
        };
        written.map_err(|e| SegmentError::io(&self.path, e))?;
        self.last_key[..K].copy_from_slice(last);
        self.last_len = K;
        Ok(())
    }

    /// Adds counted keys of `K` bytes, strictly in order (`Sha1Counts`,
    /// `NtlmCounts`): [`SegmentWriter::push_count`] for a slice at once,
    /// checked as a whole.
    pub fn push_counts<const K: usize>(&mut self, entries: &[([u8; K], u64)]) -> Result<(), SegmentError> {
        let kind = self.layout.kind;
        if self.packed.is_some() || !kind.has_count() || K != kind.key_len() {
            return Err(self.usage("push_counts takes counted keys of the segment's width"));
        }
        let Some((first, _)) = entries.first() else { return Ok(()) };
        self.admit_run(first, entries.len())?;
        if entries.windows(2).any(|w| key_order(&w[0].0, &w[1].0).is_ge()) {
            return Err(self.usage("counted keys pushed out of order or twice"));
        }
        let (last, _) = entries.last().expect("not empty");
        let run = entries.iter().map(|(key, count)| (key, *count, []));
        let written = match self.layout.skip {
            0 => self.encode::<K, 0, 0, true>(run),
            1 => self.encode::<K, 0, 1, true>(run),
            _ => self.encode::<K, 0, 2, true>(run),
        };
        written.map_err(|e| SegmentError::io(&self.path, e))?;
        self.last_key[..K].copy_from_slice(last);
        self.last_len = K;
        Ok(())
    }

    fn usage(&self, detail: &str) -> SegmentError {
        SegmentError::Usage { path: self.path.clone(), detail: detail.into() }
    }

    /// Checks that a run of `n` entries starting with `first` may follow the
    /// entries so far: the entries are not over, `first` is not below the
    /// last key pushed (nor equal to it, in counted kinds), and the count
    /// stays indexable with 32 bits.
    fn admit_run(&self, first: &[u8], n: usize) -> Result<(), SegmentError> {
        if self.tables.is_some() {
            return Err(self.usage("an entry after the payloads"));
        }
        if self.last_len > 0 {
            match key_order(&self.last_key[..self.last_len], first) {
                std::cmp::Ordering::Greater => return Err(self.usage("keys pushed out of order")),
                std::cmp::Ordering::Equal if self.layout.kind.has_count() => {
                    return Err(self.usage("a counted key pushed twice"))
                }
                _ => {}
            }
        }
        if self.entries + n as u64 > 1 << 32 {
            return Err(self.usage("more than 2^32 entries"));
        }
        Ok(())
    }

    fn push(&mut self, key: &[u8], count: u64, value: &[u8]) -> Result<(), SegmentError> {
        let kind = self.layout.kind;
        if key.len() != kind.key_len() || value.len() != kind.value_len() {
            return Err(self.usage("key or value of the wrong width for this segment kind"));
        }
        self.admit_run(key, 1)?;
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
        self.encode_one(key, count, value).map_err(|e| SegmentError::io(&self.path, e))
    }

    /// One entry through [`encode`](Self::encode), with the widths of this
    /// writer's kind and prefix as constants.
    fn encode_one(&mut self, key: &[u8], count: u64, value: &[u8]) -> std::io::Result<()> {
        macro_rules! by_widths {
            ($(($k:literal, $v:literal)),* $(,)?) => {
                match (key.len(), value.len()) {
                    $(($k, $v) => {
                        let key: &[u8; $k] = key.try_into().expect("matched width");
                        let entry = std::iter::once((key, count, <[u8; $v]>::try_from(value).expect("matched width")));
                        match (self.layout.kind.has_count(), self.layout.skip) {
                            (true, 0) => self.encode::<$k, $v, 0, true>(entry),
                            (true, 1) => self.encode::<$k, $v, 1, true>(entry),
                            (true, _) => self.encode::<$k, $v, 2, true>(entry),
                            (false, 0) => self.encode::<$k, $v, 0, false>(entry),
                            (false, 1) => self.encode::<$k, $v, 1, false>(entry),
                            (false, _) => self.encode::<$k, $v, 2, false>(entry),
                        }
                    })*
                    (k, v) => unreachable!("no kind has {k}-byte keys and {v}-byte values"),
                }
            };
        }
        // The (key, value) widths of the fixed kinds (a test checks the list).
        by_widths!((20, 0), (16, 0), (24, 0), (28, 0), (16, 4), (16, 9), (16, 20))
    }

    /// The one entry encoder of the fixed layout, which every push ends in:
    /// lays each entry out (the key without its `S` implied bytes, the count in
    /// the implied bits of its first stored byte or a byte of its own, the
    /// value), appends it to the chunk buffer in place, and counts it in its
    /// bucket and, past the inline maximum, in the overflow table.
    ///
    /// The widths are constants, `K` and `V` the kind's, `S` the layout's
    /// (at most 2, with 20 prefix bits at most), and so is `C`, whether the
    /// kind counts: every copy is then a move of fixed size, not a `memcpy`
    /// call of a run-time length (several an entry), and no entry tests what
    /// its kind holds.
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
        let counted = C;
        let max = layout.inline_count_max();
        let small = layout.small_bits;
        let value_at = len - V;
        let place = |entry: &mut [u8], key: &[u8; K], count: u64, value: &[u8; V]| {
            entry[..K - S].copy_from_slice(&key[S..]);
            if counted {
                let inline = count.min(max) as u8;
                if small > 0 {
                    entry[0] = (entry[0] & (0xFF >> small)) | (inline << (8 - small));
                } else {
                    entry[K - S] = inline;
                }
            }
            entry[value_at..].copy_from_slice(value);
        };
        while entries.len() > 0 {
            let (left, space) = (entries.len(), CHECKSUM_CHUNK - self.out.buf.len());
            // Every entry left, when they fit the chunk, as nearly always.
            let now = if left * len < space { left } else { space / len };
            if now == 0 {
                // Across the chunk's end, through the `Write` loop.
                let (key, count, value) = entries.next().expect("an entry left");
                let mut entry = [0u8; 2 * MAX_KEY_LEN];
                place(&mut entry[..len], key, count, &value);
                if counted && count >= max {
                    self.overflow.push((self.entries as u32, count));
                }
                self.bucket_counts[layout.bucket_of(key)] += 1;
                self.entries += 1;
                self.out.write_all(&entry[..len])?;
                continue;
            }
            let buf = &mut self.out.buf;
            let at = buf.len();
            if at + SMALL_RUN <= CHECKSUM_CHUNK && now * len <= SMALL_RUN {
                // A run as short as most single pushes: room made by a move
                // of fixed size, cut back, rather than a fill of run-time length.
                buf.extend_from_slice(&[0; SMALL_RUN]);
                buf.truncate(at + now * len);
            } else {
                buf.resize(at + now * len, 0);
            }
            let first = self.entries;
            for ((entry, (key, count, value)), index) in
                buf[at..].chunks_exact_mut(len).zip(entries.by_ref()).zip(first..)
            {
                place(entry, key, count, &value);
                if counted && count >= max {
                    self.overflow.push((index as u32, count));
                }
                self.bucket_counts[layout.bucket_of(key)] += 1;
            }
            self.entries = first + now as u64;
            self.out.position += (now * len) as u64;
            if self.out.buf.len() == CHECKSUM_CHUNK {
                self.out.flush_chunk()?;
            }
        }
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

    /// `write_all` for a payload: appended in place when it fits the chunk, as
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

#[cfg(test)]
mod tests {
    use super::*;

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
