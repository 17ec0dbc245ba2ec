//! Writes a segment in one sequential pass: entries as they come (already sorted),
//! then the prefix table, overflow table, heap and checksums, then the header.

use std::fs::File;
use std::io::{BufWriter, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use crate::format::{Header, Kind, Layout, CHECKSUM_CHUNK, FORMAT_VERSION, HEADER_LEN, MAX_KEY_LEN};
use crate::SegmentError;

/// Builds one segment file. Entries must be pushed in non-decreasing key order;
/// kinds with counts take each key once.
pub struct SegmentWriter {
    path: PathBuf,
    out: ChecksummedWriter,
    layout: Layout,
    bucket_counts: Vec<u32>,
    last_key: Option<([u8; MAX_KEY_LEN], usize)>,
    entries: u64,
    overflow: Vec<(u32, u64)>,
    heap: Option<(PathBuf, BufWriter<File>, u64)>,
    entry_buf: Vec<u8>,
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
        let file = File::create(path).map_err(|e| SegmentError::io(path, e))?;
        let mut out = ChecksummedWriter::new(file);
        out.write_raw(&[0u8; HEADER_LEN]).map_err(|e| SegmentError::io(path, e))?;
        let heap = if kind.has_payload() {
            let heap_path = path.with_extension("heap-tmp");
            let file = File::create(&heap_path).map_err(|e| SegmentError::io(&heap_path, e))?;
            Some((heap_path, BufWriter::with_capacity(1 << 16, file), 0))
        } else {
            None
        };
        Ok(SegmentWriter {
            path: path.to_owned(),
            out,
            layout,
            bucket_counts: vec![0; 1usize << layout.prefix_bits],
            last_key: None,
            entries: 0,
            overflow: Vec::new(),
            heap,
            entry_buf: Vec::with_capacity(64),
        })
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
        let path = self.path.clone();
        let Some((heap_path, heap, heap_len)) = self.heap.as_mut() else {
            return Err(self.usage("payloads belong to domain and stealer segments"));
        };
        let offset = u32::try_from(*heap_len).map_err(|_| SegmentError::Usage {
            path: path.clone(),
            detail: "heap larger than 4 GiB".into(),
        })?;
        let len = u8::try_from(payload.len()).map_err(|_| SegmentError::Usage {
            path: path.clone(),
            detail: "payload longer than 255 bytes".into(),
        })?;
        heap.write_all(payload).map_err(|e| SegmentError::io(heap_path, e))?;
        *heap_len += payload.len() as u64;
        let mut value = [0u8; 9];
        value[..4].copy_from_slice(&breach.to_le_bytes());
        value[4..8].copy_from_slice(&offset.to_le_bytes());
        value[8] = len;
        self.push(key, 0, &value)
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
        if let Some((last, len)) = &self.last_key {
            // Integer compare of the first 16 bytes settles almost every pair.
            let head = |k: &[u8]| u128::from_be_bytes(k[..16].try_into().expect("keys are >= 16 bytes"));
            match head(&last[..*len]).cmp(&head(key)).then_with(|| last[16..*len].cmp(&key[16..])) {
                std::cmp::Ordering::Greater => return Err(self.usage("keys pushed out of order")),
                std::cmp::Ordering::Equal if kind.has_count() => {
                    return Err(self.usage("a counted key pushed twice"))
                }
                _ => {}
            }
        }
        let index = u32::try_from(self.entries).map_err(|_| self.usage("more than 2^32 entries"))?;
        let mut last = [0u8; MAX_KEY_LEN];
        last[..key.len()].copy_from_slice(key);
        self.last_key = Some((last, key.len()));

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
        self.out.write_all(&self.entry_buf).map_err(|e| SegmentError::io(&self.path, e))?;
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
        let path = self.path.clone();
        let io = |e| SegmentError::io(&path, e);
        let table_offset = self.out.position;
        let mut start = 0u32;
        for count in &self.bucket_counts {
            self.out.write_all(&start.to_le_bytes()).map_err(io)?;
            start += count;
        }
        self.out.write_all(&start.to_le_bytes()).map_err(io)?;

        let overflow_offset = self.out.position;
        for (index, count) in &self.overflow {
            self.out.write_all(&index.to_le_bytes()).map_err(io)?;
            self.out.write_all(&count.to_le_bytes()).map_err(io)?;
        }

        let heap_offset = self.out.position;
        let mut heap_len = 0;
        if let Some((heap_path, heap, len)) = self.heap.take() {
            let file = heap.into_inner().map_err(|e| SegmentError::io(&heap_path, e.into_error()))?;
            drop(file);
            let mut reader = File::open(&heap_path).map_err(|e| SegmentError::io(&heap_path, e))?;
            std::io::copy(&mut reader, &mut self.out).map_err(|e| SegmentError::io(&heap_path, e))?;
            std::fs::remove_file(&heap_path).map_err(|e| SegmentError::io(&heap_path, e))?;
            heap_len = len;
        }

        let checksums_offset = self.out.position;
        let (mut file, crcs, mut body_hash) = self.out.finish().map_err(io)?;
        let mut tail = Vec::with_capacity(crcs.len() * 4 + 4);
        for crc in &crcs {
            tail.extend_from_slice(&crc.to_le_bytes());
        }
        let tail_crc = crc32fast::hash(&tail);
        tail.extend_from_slice(&tail_crc.to_le_bytes());
        file.write_all(&tail).map_err(io)?;
        body_hash.update(&tail);
        let file_len = checksums_offset + tail.len() as u64;

        let header = Header {
            version: FORMAT_VERSION,
            kind: self.layout.kind,
            prefix_bits: self.layout.prefix_bits,
            entry_count: self.entries,
            entries_offset: HEADER_LEN as u64,
            table_offset,
            overflow_offset,
            overflow_count: self.overflow.len() as u64,
            heap_offset,
            heap_len,
            checksums_offset,
            file_len,
        };
        let header = header.encode();
        file.seek(SeekFrom::Start(0)).map_err(io)?;
        file.write_all(&header).map_err(io)?;
        let mut content = blake3::Hasher::new();
        content.update(&header);
        content.update(body_hash.finalize().as_bytes());
        Ok(Written {
            path: self.path,
            entries: self.entries,
            bytes: file_len,
            content_hash: content.finalize().into(),
        })
    }
}

/// A buffered writer that keeps a CRC-32 of every [`CHECKSUM_CHUNK`] bytes after
/// the header, and a BLAKE3 of all of them, as they pass: no second read. It
/// buffers whole chunks so both checksums run over large blocks, not over each
/// small entry.
struct ChecksummedWriter {
    file: File,
    buf: Vec<u8>,
    position: u64,
    body: blake3::Hasher,
    crcs: Vec<u32>,
}

impl ChecksummedWriter {
    fn new(file: File) -> Self {
        ChecksummedWriter {
            file,
            buf: Vec::with_capacity(CHECKSUM_CHUNK),
            position: 0,
            body: blake3::Hasher::new(),
            crcs: Vec::new(),
        }
    }

    /// Writes bytes that the chunk checksums do not cover (the header placeholder).
    fn write_raw(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        self.file.write_all(bytes)?;
        self.position += bytes.len() as u64;
        Ok(())
    }

    fn flush_chunk(&mut self) -> std::io::Result<()> {
        if self.buf.is_empty() {
            return Ok(());
        }
        self.crcs.push(crc32fast::hash(&self.buf));
        self.body.update(&self.buf);
        self.file.write_all(&self.buf)?;
        self.buf.clear();
        Ok(())
    }

    fn finish(mut self) -> std::io::Result<(File, Vec<u32>, blake3::Hasher)> {
        self.flush_chunk()?;
        Ok((self.file, self.crcs, self.body))
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
