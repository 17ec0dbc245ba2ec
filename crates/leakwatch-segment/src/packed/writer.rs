//! Writes the packed layout: entries are batched and encoded on a thread of
//! their own, which owns the file until `finish`, so that encoding and
//! checksumming overlap the caller's parsing. The encoder buffers a sample of
//! counts to pick its widths from, then writes each bucket once it is complete;
//! `finish` writes the last buckets, the slack and both tables.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::mpsc;

use crate::bits::{key_bits, low_chunks, BitWriter};
use crate::format::{Header, Kind, CHECKSUM_CHUNK, HEADER_LEN};
use crate::packed::{PackedHeader, Params};
use crate::sink::Sink;
use crate::writer::{seal, ChecksummedWriter, Order, Written, TOO_MANY_ENTRIES, WRONG_WIDTH};
use crate::SegmentError;

/// Entries a packed segment buffers before it picks its count width from them.
const SAMPLE: usize = 1 << 16;

/// Entries handed to the encoder thread at once.
const BATCH: usize = 8192;

/// Keys of the packed kinds are 20 bytes at most (zero-padded here).
type Batch = Vec<([u8; 20], u64)>;

/// A segment of the packed layout being written.
pub(crate) struct PackedWriter {
    path: PathBuf,
    kind: Kind,
    order: Order,
    /// The encoder thread; `None` once it has stopped on an error.
    handle: Option<PackedHandle>,
}

impl PackedWriter {
    /// Starts a packed segment of `kind` at `path`, for about
    /// `expected_entries` entries (which pick the prefix width).
    pub fn create(path: &Path, kind: Kind, expected_entries: u64) -> Result<PackedWriter, SegmentError> {
        let io = |e| SegmentError::io(path, e);
        // Through the page cache: the encoder thread writes the body, and a
        // direct sink would add a writing thread of its own beside it.
        let mut out = ChecksummedWriter::new(Sink::create(path, false).map_err(io)?);
        out.write_raw(&[0u8; HEADER_LEN]).map_err(io)?;
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
        let handle = Some(PackedHandle::start(state, out));
        Ok(PackedWriter { path: path.to_owned(), kind, order: Order::new(), handle })
    }

    /// One counted key (`value` must be empty: the packed kinds have none).
    #[inline]
    pub fn push(&mut self, key: &[u8], count: u64, value: &[u8]) -> Result<(), SegmentError> {
        if key.len() != self.kind.key_len() || !value.is_empty() {
            return Err(self.usage(WRONG_WIDTH));
        }
        // Zero-padded to 20 bytes, which orders the 16-byte keys as they are.
        let mut k = [0u8; 20];
        match key.len() {
            20 => k.copy_from_slice(key),
            _ => k[..16].copy_from_slice(&key[..16]),
        }
        self.order.admit(&k, 1, true).map_err(|detail| self.usage(detail))?;
        self.order.set_last(&k);
        let Some(handle) = &mut self.handle else { return Err(self.usage(STOPPED)) };
        if !handle.push(k, count) {
            // The encoder stopped on an error; finishing reports it.
            let handle = self.handle.take().expect("checked");
            return Err(match handle.finish() {
                Err(e) => SegmentError::io(&self.path, e),
                Ok(_) => self.usage(STOPPED),
            });
        }
        self.order.entries += 1;
        Ok(())
    }

    #[cold]
    #[inline(never)]
    pub fn usage(&self, detail: &str) -> SegmentError {
        SegmentError::Usage { path: self.path.clone(), detail: detail.into() }
    }

    /// The last buckets, the slack, both tables, the checksums and the header.
    pub fn finish(mut self) -> Result<Written, SegmentError> {
        let path = self.path.clone();
        let io = |e| SegmentError::io(&path, e);
        let handle = self.handle.take().ok_or_else(|| self.usage(STOPPED))?;
        let (mut packed, mut out) = handle.finish().map_err(io)?;
        if packed.params.is_none() {
            let exact = packed.pending.len() as u64;
            packed.start(packed.key_len, exact, &mut out).map_err(io)?;
        }
        let params = packed.params.expect("widths chosen");
        packed.advance_to(1 << params.prefix_bits, &mut out).map_err(io)?;
        packed.starts.push(u32::try_from(packed.written_entries).map_err(|_| self.usage(TOO_MANY_ENTRIES))?);
        packed.offsets.push(packed.bits.bits);
        packed.bits.align();
        // Slack, so that a field anywhere in the data is one 8-byte load.
        packed.bits.bytes.extend_from_slice(&[0; 8]);
        out.write_all(&packed.bits.bytes).map_err(io)?;
        // Each table in one write, not a write a slot.
        let starts_offset = out.position;
        let starts: Vec<u8> = packed.starts.iter().flat_map(|s| s.to_le_bytes()).collect();
        out.write_all(&starts).map_err(io)?;
        let offsets_offset = out.position;
        let offsets: Vec<u8> = packed.offsets.iter().flat_map(|o| o.to_le_bytes()).collect();
        out.write_all(&offsets).map_err(io)?;
        let (kind, entry_count) = (self.kind, self.order.entries);
        seal(self.path, entry_count, out, |checksums_offset, file_len| {
            Header::Packed(PackedHeader {
                kind,
                params,
                entry_count,
                starts_offset,
                offsets_offset,
                checksums_offset,
                file_len,
            })
        })
    }
}

const STOPPED: &str = "the encoder thread stopped";

/// The writer's side of the encoder thread: entries in batches to it, empty
/// batches back.
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
    #[inline]
    fn push(&mut self, key: [u8; 20], count: u64) -> bool {
        self.batch.push((key, count));
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

/// The encoder's state: entries wait in `pending` until their bucket is
/// complete (and, at first, until the sample picks the widths).
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
