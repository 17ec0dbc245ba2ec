//! Cutting the decompressed stream into chunks of whole records for the parallel
//! parsers, holding a bounded amount of it at any time.
//!
//! A chunk always starts and ends at a record boundary: a line (combo, NDJSON) or
//! a CSV record, whose quoted fields may hold newlines. Where a boundary is
//! depends only on the bytes, never on where reads happened to end, so parsing
//! chunk by chunk gives the same result as parsing the whole input at once.
//!
//! A record longer than [`MAX_LINE`] is rejected by the parsers. The chunker
//! keeps such a record whole only when it already fits in its buffer; a line
//! too long to be held is cut short (see [`Source::emit_truncated`]) and the
//! rest of it is read and thrown away, so a 1 GB line costs no more memory than
//! a 64 KiB one.

use std::io::{self, Read};

use memchr::{memchr, memrchr};

/// Records (lines, CSV records) longer than this many bytes, not counting their
/// line ending, are rejected as `line too long`.
pub(crate) const MAX_LINE: usize = 64 * 1024;

/// How many bytes a scan needs to see to tell a record is too long: the limit,
/// plus a CR and an LF that would not count.
pub(crate) const SCAN_WINDOW: usize = MAX_LINE + 2;

const BOM: &[u8] = b"\xef\xbb\xbf";

/// The size of one read from the decoder when more bytes are needed.
const READ_SIZE: usize = 256 * 1024;

/// What scanning for the end of the record at the start of some bytes found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Scan {
    /// The record takes this many bytes, its terminating LF included (none at
    /// the end of input). Its content is at most [`MAX_LINE`] bytes.
    Record(usize),
    /// The record is longer than [`MAX_LINE`]. Reading resumes after the first
    /// LF following its start.
    TooLong,
    /// The bytes end before the record does.
    NeedMore,
}

/// Finds where records end: at every LF for line formats, at LFs outside
/// quotes for CSV.
pub(crate) trait Splitter {
    /// Scans the record at the start of `bytes`; `at_eof` says no bytes follow.
    fn scan(&self, bytes: &[u8], at_eof: bool) -> Scan;

    /// For formats whose records are plain lines: the end of the last whole line
    /// within `region`, found in one step instead of record by record.
    fn last_line_end(&self, _region: &[u8]) -> Option<usize> {
        None
    }
}

/// Records are physical lines.
pub(crate) struct Lines;

impl Splitter for Lines {
    fn scan(&self, bytes: &[u8], at_eof: bool) -> Scan {
        let window = &bytes[..bytes.len().min(SCAN_WINDOW)];
        match memchr(b'\n', window) {
            Some(i) => finish(bytes, i, i + 1),
            None if window.len() == SCAN_WINDOW => Scan::TooLong,
            None if at_eof => finish(bytes, bytes.len(), bytes.len()),
            None => Scan::NeedMore,
        }
    }

    fn last_line_end(&self, region: &[u8]) -> Option<usize> {
        memrchr(b'\n', region).map(|i| i + 1)
    }
}

/// Classifies a record whose content ends at `end` (exclusive, before the LF)
/// and which takes `taken` bytes in all.
pub(crate) fn finish(bytes: &[u8], end: usize, taken: usize) -> Scan {
    if content_len(&bytes[..end]) > MAX_LINE {
        Scan::TooLong
    } else {
        Scan::Record(taken)
    }
}

/// The length of a record without its LF, not counting one trailing CR.
pub(crate) fn content_len(line: &[u8]) -> usize {
    line.len() - usize::from(line.last() == Some(&b'\r'))
}

/// A run of whole records handed to a parser.
#[derive(Debug, Default)]
pub(crate) struct Chunk {
    /// The buffer; the chunk's bytes are `data[start..]`.
    pub(crate) data: Vec<u8>,
    pub(crate) start: usize,
    /// Whether the chunk runs to the end of the input (only then may its last
    /// record lack an LF).
    pub(crate) last: bool,
}

impl Chunk {
    pub(crate) fn bytes(&self) -> &[u8] {
        &self.data[self.start..]
    }

    /// The buffer, for reuse by a later chunk.
    pub(crate) fn into_buffer(self) -> Vec<u8> {
        self.data
    }
}

/// The decompressed input with a read-ahead buffer.
pub(crate) struct Source<R> {
    reader: R,
    /// Unconsumed bytes are `buf[pos..]`.
    buf: Vec<u8>,
    pos: usize,
    eof: bool,
    /// Target chunk size; chunks end at the first record boundary past it,
    /// or before it when a whole record would not fit.
    chunk_size: usize,
    /// Whether the start of the input was looked at for a BOM yet.
    bom_checked: bool,
    /// Decompressed bytes consumed so far, the BOM included.
    consumed: u64,
    /// A read error, held back until the whole records read before it are
    /// handed over (`eof` is set with it, so no loop waits for more bytes).
    error: Option<io::Error>,
}

impl<R: Read> Source<R> {
    pub(crate) fn new(reader: R, chunk_size: usize) -> Source<R> {
        Source {
            reader,
            buf: Vec::new(),
            pos: 0,
            eof: false,
            chunk_size: chunk_size.max(1),
            bom_checked: false,
            consumed: 0,
            error: None,
        }
    }

    /// The unconsumed bytes read so far.
    pub(crate) fn buffered(&self) -> &[u8] {
        &self.buf[self.pos..]
    }

    /// Whether the input really ended (not merely failed): only then is a last
    /// record without LF complete.
    pub(crate) fn at_end(&self) -> bool {
        self.eof && self.error.is_none()
    }

    /// Whether no more bytes will come, because the input ended or failed.
    pub(crate) fn exhausted(&self) -> bool {
        self.eof
    }

    /// The held-back read error, if reading failed.
    pub(crate) fn take_error(&mut self) -> io::Result<()> {
        self.error.take().map_or(Ok(()), Err)
    }

    /// Reads at least `want` more bytes unless the input ends first. Returns
    /// whether any byte was added. A read error is held back (see `error`).
    pub(crate) fn fill(&mut self, want: usize) -> io::Result<bool> {
        if self.eof {
            return Ok(false);
        }
        if self.pos > 0 && self.pos * 2 >= self.buf.len() {
            // Consumed bytes are dropped before the buffer grows, so it holds
            // only what is still ahead of the parsers.
            self.buf.drain(..self.pos);
            self.pos = 0;
        }
        let before = self.buf.len();
        let goal = before + want.max(1);
        while self.buf.len() < goal {
            let len = self.buf.len();
            let step = (goal - len).max(READ_SIZE);
            self.buf.resize(len + step, 0);
            match self.reader.read(&mut self.buf[len..]) {
                Ok(0) => {
                    self.buf.truncate(len);
                    self.eof = true;
                    break;
                }
                Ok(n) => self.buf.truncate(len + n),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => self.buf.truncate(len),
                Err(e) => {
                    self.buf.truncate(len);
                    self.error = Some(e);
                    self.eof = true;
                    break;
                }
            }
        }
        if !self.bom_checked && (self.buf.len() - self.pos >= BOM.len() || self.eof) {
            self.bom_checked = true;
            if self.buf[self.pos..].starts_with(BOM) {
                self.consume(BOM.len());
            }
        }
        Ok(self.buf.len() > before)
    }

    /// Makes sure the BOM question is settled before anything looks at the bytes.
    pub(crate) fn start(&mut self) -> io::Result<()> {
        while !self.bom_checked {
            self.fill(BOM.len())?;
        }
        Ok(())
    }

    /// Consumes `n` buffered bytes.
    pub(crate) fn consume(&mut self, n: usize) {
        self.pos += n;
        self.consumed += n as u64;
    }

    /// Decompressed bytes consumed so far.
    pub(crate) fn consumed(&self) -> u64 {
        self.consumed
    }

    /// Scans the record at the current position, reading more as needed, so the
    /// answer is never [`Scan::NeedMore`] unless the input is empty.
    pub(crate) fn scan_first(&mut self, splitter: &impl Splitter) -> io::Result<Scan> {
        loop {
            let scan = splitter.scan(self.buffered(), self.at_end());
            if scan != Scan::NeedMore {
                return Ok(scan);
            }
            if self.eof {
                self.take_error()?;
                return Ok(scan);
            }
            self.fill(READ_SIZE)?;
        }
    }

    /// Consumes the record found too long at the current position: up to and
    /// including the first LF, reading through a line of any length.
    pub(crate) fn skip_line(&mut self) -> io::Result<()> {
        loop {
            if let Some(i) = memchr(b'\n', self.buffered()) {
                self.consume(i + 1);
                return Ok(());
            }
            // Nothing buffered is needed any more: drop it before reading on.
            self.consumed += self.buffered().len() as u64;
            self.buf.clear();
            self.pos = 0;
            if !self.fill(READ_SIZE)? {
                return Ok(());
            }
        }
    }

    /// Makes sure the buffer holds at least `n` unconsumed bytes, unless the
    /// input ends first.
    pub(crate) fn ensure(&mut self, n: usize) -> io::Result<()> {
        while self.buffered().len() < n && !self.eof {
            self.fill(n - self.buffered().len())?;
        }
        Ok(())
    }

    /// Cuts the next chunk: whole records from the current position, about
    /// `chunk_size` bytes of them. `spare` is a buffer to reuse.
    pub(crate) fn next_chunk(
        &mut self,
        splitter: &impl Splitter,
        spare: Vec<u8>,
    ) -> io::Result<Option<Chunk>> {
        self.start()?;
        self.ensure(self.chunk_size)?;
        let avail = self.buffered().len();
        if avail == 0 {
            self.take_error()?;
            return Ok(None);
        }
        let region_len = avail.min(self.chunk_size);
        if self.at_end() && avail <= self.chunk_size {
            return Ok(Some(self.cut(avail, spare, true)));
        }

        // Line formats: every LF is a boundary, so the last one in the target
        // region is the cut.
        if let Some(end) = splitter.last_line_end(&self.buffered()[..region_len]) {
            return Ok(Some(self.cut(end, spare, false)));
        }

        // Record by record (CSV, or a first line longer than the chunk size).
        let mut at = 0;
        loop {
            let rest = &self.buf[self.pos + at..];
            match splitter.scan(rest, self.at_end()) {
                Scan::Record(n) => {
                    at += n;
                    if at >= self.chunk_size || at == self.buffered().len() {
                        break;
                    }
                }
                Scan::TooLong => match memchr(b'\n', rest) {
                    // The record's first line is in the buffer: resume after it.
                    Some(i) => {
                        at += i + 1;
                        if at >= self.chunk_size {
                            break;
                        }
                    }
                    None if self.eof => {
                        at = self.buffered().len();
                        break;
                    }
                    // A line too long to hold: first hand over the records before
                    // it, then the line itself, cut short.
                    None if at > 0 => break,
                    None => return Ok(Some(self.emit_truncated(spare)?)),
                },
                Scan::NeedMore if at > 0 => break,
                // Reading failed inside this record: it is not handed over.
                Scan::NeedMore if self.eof => {
                    self.take_error()?;
                    return Ok(None);
                }
                Scan::NeedMore => {
                    // The first record is longer than the chunk size: read on.
                    self.fill(READ_SIZE)?;
                }
            }
        }
        let last = self.at_end() && at == self.buffered().len();
        Ok(Some(self.cut(at, spare, last)))
    }

    /// Hands over the next `n` buffered bytes as a chunk without copying them:
    /// the buffer itself becomes the chunk and the bytes after the cut move to
    /// `spare`, which becomes the buffer.
    fn cut(&mut self, n: usize, mut spare: Vec<u8>, last: bool) -> Chunk {
        let end = self.pos + n;
        spare.clear();
        spare.extend_from_slice(&self.buf[end..]);
        let mut data = std::mem::replace(&mut self.buf, spare);
        data.truncate(end);
        let chunk = Chunk { data, start: self.pos, last };
        self.pos = 0;
        self.consumed += n as u64;
        chunk
    }

    /// A chunk holding only the line at the current position, which is too long
    /// to hold: its first `MAX_LINE + 1` bytes, a NUL so that the line stays
    /// over the limit even when the kept bytes end in CR, and an LF. The parsers
    /// only ever look at the length of such a line (and, in CSV, at where its
    /// first LF is), so the cut loses nothing they use. The rest of the line is
    /// read and dropped.
    fn emit_truncated(&mut self, mut spare: Vec<u8>) -> io::Result<Chunk> {
        spare.clear();
        let rest = self.buffered();
        spare.extend_from_slice(&rest[..rest.len().min(MAX_LINE + 1)]);
        spare.extend_from_slice(b"\0\n");
        self.skip_line()?;
        Ok(Chunk { data: spare, start: 0, last: false })
    }
}

/// Iterates the lines of a chunk: each without its LF, with one trailing CR
/// removed.
pub(crate) fn lines(bytes: &[u8]) -> impl Iterator<Item = &[u8]> {
    let mut rest = bytes;
    std::iter::from_fn(move || {
        if rest.is_empty() {
            return None;
        }
        let (line, next) = match memchr(b'\n', rest) {
            Some(i) => (&rest[..i], &rest[i + 1..]),
            None => (rest, &rest[rest.len()..]),
        };
        rest = next;
        Some(line.strip_suffix(b"\r").unwrap_or(line))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chunks_of(input: &[u8], chunk_size: usize) -> Vec<Vec<u8>> {
        let mut source = Source::new(input, chunk_size);
        let mut out = Vec::new();
        while let Some(chunk) = source.next_chunk(&Lines, Vec::new()).expect("in-memory read") {
            out.push(chunk.bytes().to_vec());
        }
        out
    }

    #[test]
    fn chunks_end_at_line_ends_and_cover_everything() {
        let input = b"a:1\nbb:22\nccc:333\nlast";
        for size in [1, 2, 3, 5, 7, 100] {
            let chunks = chunks_of(input, size);
            assert_eq!(chunks.concat(), input, "size {size}");
            for c in &chunks[..chunks.len() - 1] {
                assert_eq!(c.last(), Some(&b'\n'), "size {size}: {chunks:?}");
            }
        }
    }

    #[test]
    fn a_bom_at_the_start_is_dropped() {
        assert_eq!(chunks_of(b"\xef\xbb\xbfa:1\n", 100).concat(), b"a:1\n");
        assert_eq!(chunks_of(b"\xef\xbb\xbfa:1\n", 1).concat(), b"a:1\n");
        assert_eq!(chunks_of(b"a:1\n\xef\xbb\xbfb:2\n", 100).concat(), b"a:1\n\xef\xbb\xbfb:2\n");
    }

    #[test]
    fn a_line_too_long_to_hold_is_cut_short() {
        let mut input = b"a:1\n".to_vec();
        // Longer than anything a read brings in at once, so it cannot be held.
        input.extend(std::iter::repeat_n(b'x', 4 * READ_SIZE));
        input.extend(b"\nb:2\n");
        let chunks = chunks_of(&input, 1024);
        let joined = chunks.concat();
        let lines: Vec<&[u8]> = lines(&joined).collect();
        assert_eq!(lines.len(), 3);
        assert_eq!(lines[0], b"a:1");
        assert_eq!(content_len(lines[1]), MAX_LINE + 2);
        assert_eq!(lines[2], b"b:2");
        assert!(chunks.iter().all(|c| c.len() <= READ_SIZE + 1024), "bounded chunks");
    }

    #[test]
    fn line_iteration_drops_one_cr() {
        let got: Vec<&[u8]> = lines(b"a\r\n\r\nb\r\r\nc").collect();
        assert_eq!(got, [&b"a"[..], b"", b"b\r", b"c"]);
    }
}
