//! Import of Have I Been Pwned's Pwned Passwords downloads: the downloader's single
//! file (`HASH:COUNT` lines) or its per-prefix directory (`PREFIX.txt` files holding
//! raw range bodies), plain or compressed.
//!
//! The counts go to their own segment kind, apart from the organization's own
//! dumps, and a new import replaces the previous one instead of adding to it: a
//! newer download supersedes an older one. Queries add both corpora.
//!
//! HIBP's files come sorted, so the import streams each hash straight into the
//! segment writer; input found out of order is read again through the external
//! sort, and stdin, which cannot be read twice, always goes that way.

use std::collections::BTreeMap;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicU64;
use std::sync::{mpsc, Mutex};

use leakwatch_ingest::Input;
use leakwatch_segment::Kind;

use crate::clock::now_rfc3339;
use crate::dir::DataDir;
use crate::error::{Result, StoreError};
use crate::manifest::PwnedImport;
use crate::runs::{Bucketed, Runs};
use crate::txn::{RollingWriter, Txn};

/// A line longer than this is not a Pwned Passwords line.
const MAX_LINE: usize = 256;
/// Rejection samples kept per reason.
const SAMPLES: usize = 5;

/// Rejected lines of one reason: how many, and where the first few are.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LineRejections {
    pub count: u64,
    /// `FILE:LINE` of the first few.
    pub samples: Vec<String>,
}

#[derive(Debug, Clone)]
pub struct ImportSummary {
    pub ntlm: bool,
    pub lines: u64,
    pub hashes: u64,
    /// `SUFFIX:0` lines (HIBP's `Add-Padding`), skipped.
    pub padding: u64,
    pub rejected: BTreeMap<&'static str, LineRejections>,
    /// Whether the input came sorted (streamed) or went through the external sort.
    pub streamed: bool,
    pub segment_bytes: u64,
    /// Hashes of the import this one replaced.
    pub replaced_hashes: Option<u64>,
    /// What failed after the import was published (it stands).
    pub warning: Option<String>,
}

/// The inputs of one source: a range file; stdin; or a file, which may be
/// compressed or an archive (zip, tar, tar.gz, 7z) of downloads.
fn open_source(source: &Source) -> Result<Vec<Input>> {
    if source.prefix.is_some() || source.path == "-" {
        return Ok(vec![Input::open(&source.path)?]);
    }
    Ok(Input::expand(&source.path)?)
}

/// Why an import found no hash, saying what its lines hold and what it expected:
/// most often another download than the one named (range bodies given as one
/// file, a SHA-1 file given with `--ntlm`).
fn nothing_found(path: &str, tally: &Tally, ntlm: bool, ranges: bool) -> String {
    let (corpus, full, suffix) = if ntlm { ("NTLM", 32, 27) } else { ("SHA-1", 40, 35) };
    let expected = if ranges {
        format!("{suffix}-hex {corpus} suffixes with `:COUNT` in PREFIX.txt files")
    } else {
        format!("`HASH:COUNT` lines with {full}-hex {corpus} hashes")
    };
    let head =
        format!("{path}: no Pwned Passwords lines found ({} lines read; expected {expected})", tally.lines);
    let found = tally.wrong_lengths.iter().max_by_key(|(_, n)| **n).map(|(&len, _)| len);
    let hint = match (found, ntlm, ranges) {
        (Some(40), true, false) => "these are 40-hex SHA-1 hashes; drop --ntlm".to_owned(),
        (Some(32), false, false) => "these are 32-hex NTLM hashes; add --ntlm".to_owned(),
        (Some(35), false, false) | (Some(27), true, false) => format!(
            "lines hold {}-hex suffixes: this looks like per-prefix range bodies; name the files \
             PREFIX.txt in a folder and import the folder",
            found.expect("matched")
        ),
        (Some(35), true, true) => "these are 35-hex SHA-1 suffixes; drop --ntlm".to_owned(),
        (Some(27), false, true) => "these are 27-hex NTLM suffixes; add --ntlm".to_owned(),
        (Some(len), _, true) if len == full => format!(
            "lines hold whole {len}-hex hashes: this looks like the downloader's single file; \
             import that file itself, not a folder"
        ),
        (Some(len), _, _) => format!("lines hold {len}-hex hashes"),
        (None, _, _) if tally.rejected.is_empty() => "the input is empty".to_owned(),
        (None, _, _) => {
            let reasons: Vec<String> =
                tally.rejected.iter().map(|(reason, r)| format!("{} {reason}", r.count)).collect();
            format!("lines rejected: {}", reasons.join(", "))
        }
    };
    format!("{head}: {hint}; the current corpus is kept")
}

/// One source of range lines: a file, or one `PREFIX.txt` of a directory (whose
/// lines carry only the suffix).
struct Source {
    path: String,
    prefix: Option<String>,
}

/// Imports Pwned Passwords from `path` (a file, `-`, or a directory of
/// `PREFIX.txt` files) into the SHA-1 or, with `ntlm`, the NTLM corpus.
pub fn import_pwned_passwords(
    dir: &DataDir,
    path: &str,
    ntlm: bool,
    memory_budget: u64,
    progress: &AtomicU64,
) -> Result<ImportSummary> {
    let sources = sources(path)?;
    let raw_total: u64 =
        sources.iter().filter_map(|s| std::fs::metadata(&s.path).ok()).map(|m| m.len()).sum();
    dir.create()?;
    let mut txn = Txn::begin(dir)?;
    let kind = if ntlm { Kind::HibpNtlmCounts } else { Kind::HibpSha1Counts };
    let key_len = kind.key_len();

    let mut out = txn.segments();
    // A line holds the hash in hex, ':', a count and an end of line; compressed
    // downloads shrink to about half.
    let line_len = 2 * key_len as u64 + 5;
    let compressed = sources.iter().any(|s| s.path.ends_with(".gz") || s.path.ends_with(".zst"));
    let estimate = raw_total * if compressed { 2 } else { 1 } / line_len + 1;
    let mut tally = Tally::default();
    let streamed = path != "-" && {
        let mut writer = out.writer(kind, estimate)?;
        let mut sink = SortedSink { writer: &mut writer, pending: None, key_len };
        match read_all(&sources, key_len, progress, &mut tally, &mut |key, count| sink.push(key, count))? {
            Order::Sorted => {
                sink.flush()?;
                out.finish(writer)?;
                true
            }
            Order::Unsorted => {
                writer.abandon()?;
                tally = Tally::default();
                false
            }
        }
    };
    if !streamed {
        let scratch = dir.tmp().join(format!("import-{}", std::process::id()));
        std::fs::create_dir_all(&scratch).map_err(|e| StoreError::io(&scratch, e))?;
        let mut runs = Runs::<28>::new(scratch.clone(), "pwned", 20, false);
        let budget = memory_budget.max(1 << 20) as usize / 2;
        let mut batch = Vec::with_capacity(1 << 16);
        let mut fail = None;
        read_all(&sources, key_len, progress, &mut tally, &mut |key, count| {
            let mut rec = [0u8; 28];
            rec[..key_len].copy_from_slice(key);
            rec[20..].copy_from_slice(&count.to_be_bytes());
            batch.push(rec);
            if batch.len() == batch.capacity() {
                runs.push(&Bucketed::new(std::mem::take(&mut batch)));
                batch.reserve(1 << 16);
                if runs.mem_bytes() > budget {
                    if let Err(e) = runs.spill() {
                        fail.get_or_insert(e);
                    }
                }
            }
            Ok(Order::Sorted)
        })?;
        if let Some(e) = fail {
            return Err(e);
        }
        runs.push(&Bucketed::new(batch));
        let distinct = runs.distinct_prefixes(key_len);
        let mut writer = out.writer(kind, distinct)?;
        let mut sink = SortedSink { writer: &mut writer, pending: None, key_len };
        for rec in runs.finish()? {
            let rec = rec?;
            sink.push(&rec[..key_len], u64::from_be_bytes(rec[20..].try_into().expect("8 bytes")))?;
        }
        sink.flush()?;
        out.finish(writer)?;
        let _ = std::fs::remove_dir_all(&scratch);
    }

    if tally.hashes == 0 {
        let ranges = sources.iter().any(|s| s.prefix.is_some());
        return Err(StoreError::Invalid(nothing_found(path, &tally, ntlm, ranges)));
    }
    let written = out.done()?;
    let segment_bytes = written.iter().map(|s| s.bytes).sum();
    let corpus = if ntlm { "ntlm" } else { "sha1" };
    let manifest = &mut txn.manifest;
    let replaced_hashes = manifest.pwned_passwords.get(corpus).map(|p| p.hashes);
    let old: Vec<String> =
        manifest.segments.iter().filter(|s| s.kind == kind.name()).map(|s| s.file.clone()).collect();
    manifest.segments.retain(|s| s.kind != kind.name());
    manifest.segments.extend(written);
    // A new import replaces whatever `repair` set aside of the old one.
    manifest.set_aside.retain(|s| s.segment.kind != kind.name());
    manifest.pwned_passwords.insert(
        corpus.to_owned(),
        PwnedImport {
            imported_at: now_rfc3339(),
            source: path.to_owned(),
            hashes: tally.hashes,
            lines: tally.lines,
        },
    );
    // An import of the same download is put under the same name as the
    // segment it replaces: the commit deletes only what is no longer named.
    txn.commit_replacing(old)?;
    let warning = crate::totals::refresh(&mut txn)
        .err()
        .map(|e| format!("the import is published, but summing the password counts again failed: {e}"));
    Ok(ImportSummary {
        ntlm,
        lines: tally.lines,
        hashes: tally.hashes,
        padding: tally.padding,
        rejected: tally.rejected,
        streamed,
        segment_bytes,
        replaced_hashes,
        warning,
    })
}

/// The files to read: one, or every `PREFIX.txt` of a directory in prefix order.
fn sources(path: &str) -> Result<Vec<Source>> {
    let p = Path::new(path);
    if path == "-" || !p.is_dir() {
        return Ok(vec![Source { path: path.to_owned(), prefix: None }]);
    }
    let mut files: Vec<(String, PathBuf)> = Vec::new();
    for entry in std::fs::read_dir(p).map_err(|e| StoreError::io(p, e))? {
        let entry = entry.map_err(|e| StoreError::io(p, e))?;
        let name = entry.file_name().to_string_lossy().into_owned();
        if let Some(prefix) =
            name.strip_suffix(".txt").filter(|s| s.len() == 5 && s.bytes().all(|b| b.is_ascii_hexdigit()))
        {
            files.push((prefix.to_ascii_uppercase(), entry.path()));
        }
    }
    if files.is_empty() {
        return Err(StoreError::Invalid(format!("{path}: a directory with no PREFIX.txt range files")));
    }
    files.sort();
    Ok(files
        .into_iter()
        .map(|(prefix, path)| Source { path: path.to_string_lossy().into_owned(), prefix: Some(prefix) })
        .collect())
}

#[derive(Debug, PartialEq, Eq)]
enum Order {
    Sorted,
    Unsorted,
}

#[derive(Default)]
struct Tally {
    lines: u64,
    hashes: u64,
    padding: u64,
    rejected: BTreeMap<&'static str, LineRejections>,
    /// Lines rejected for their hash's length, by that length in hex digits:
    /// what tells a user which download they gave instead.
    wrong_lengths: BTreeMap<usize, u64>,
}

/// Bytes read per chunk: large enough that handing a chunk to a thread costs
/// nothing next to parsing it, small enough that a few in flight stay cheap.
const CHUNK: usize = 1 << 20;
/// Threads parsing chunks while the calling thread reads and writes the segment.
const PARSERS: usize = 2;
/// Chunks read but not yet delivered, at most.
const IN_FLIGHT: usize = 2 * PARSERS + 2;

/// A chunk of whole lines of one source, for a parser thread.
struct Job {
    seq: u64,
    prefix: Vec<u8>,
    bytes: Vec<u8>,
}

/// What a parser thread made of a chunk. Line numbers count from 1 within it.
struct Parsed {
    seq: u64,
    keys: Vec<[u8; 20]>,
    counts: Vec<u64>,
    lines: u64,
    padding: u64,
    /// Per reason: how many, and the chunk line numbers of the first few.
    rejected: Vec<(&'static str, u64, Vec<u64>)>,
    /// Hash lengths (hex digits) of the lines rejected for theirs.
    wrong_lengths: Vec<usize>,
    bytes: Vec<u8>,
}

/// Reads every source, handing each valid (hash, count) to `each` in file order.
/// Stops early, saying so, when `each` finds the input out of order.
///
/// The calling thread reads chunks of whole lines and hands them to
/// [`PARSERS`] threads; parsed chunks come back and are delivered strictly in
/// input order, so `each` sees the file's order and rejections keep their exact
/// line numbers (a chunk's first line number is known once the chunks before it
/// are delivered).
fn read_all(
    sources: &[Source],
    key_len: usize,
    progress: &AtomicU64,
    tally: &mut Tally,
    each: &mut dyn FnMut(&[u8], u64) -> Result<Order>,
) -> Result<Order> {
    let (job_tx, job_rx) = mpsc::channel::<Job>();
    let job_rx = Mutex::new(job_rx);
    let (done_tx, done_rx) = mpsc::channel::<Parsed>();
    std::thread::scope(|scope| {
        for _ in 0..PARSERS {
            let done_tx = done_tx.clone();
            let job_rx = &job_rx;
            scope.spawn(move || loop {
                let job = match job_rx.lock().map(|rx| rx.recv()) {
                    Ok(Ok(job)) => job,
                    _ => return,
                };
                if done_tx.send(parse_chunk(job, key_len)).is_err() {
                    return;
                }
            });
        }
        drop(done_tx);
        let mut feeder = Feeder {
            job_tx: Some(job_tx),
            done_rx: &done_rx,
            next_seq: 0,
            deliver_seq: 0,
            waiting: BTreeMap::new(),
            spare: Vec::new(),
            tally,
            each,
            file: String::new(),
            file_line: 0,
            sorted: true,
            key_len,
        };
        let result = feeder.run(sources, progress);
        // Closing the job channel lets the parsers finish; results still on
        // their way are dropped with the receiver.
        feeder.job_tx = None;
        result
    })
}

/// The calling thread's side of [`read_all`]: reads, sends, and delivers in order.
struct Feeder<'a> {
    job_tx: Option<mpsc::Sender<Job>>,
    done_rx: &'a mpsc::Receiver<Parsed>,
    next_seq: u64,
    deliver_seq: u64,
    waiting: BTreeMap<u64, Parsed>,
    spare: Vec<Vec<u8>>,
    tally: &'a mut Tally,
    each: &'a mut dyn FnMut(&[u8], u64) -> Result<Order>,
    /// The source whose chunks are being delivered, and its lines delivered so far.
    file: String,
    file_line: u64,
    sorted: bool,
    key_len: usize,
}

impl Feeder<'_> {
    fn run(&mut self, sources: &[Source], progress: &AtomicU64) -> Result<Order> {
        for source in sources {
            // A file may be an archive (HIBP's download came as a 7z): its
            // members are read in turn, as if given one after another.
            for input in open_source(source)? {
                let name = input.name().to_owned();
                let mut reader = input.into_reader(progress).map_err(|e| StoreError::io(&source.path, e))?;
                // Every chunk of this source is delivered before the next source's
                // first, so line numbers restart here.
                self.drain_all()?;
                if !self.sorted {
                    return Ok(Order::Unsorted);
                }
                self.file = name;
                self.file_line = 0;
                let prefix = source.prefix.as_deref().unwrap_or("").as_bytes().to_vec();
                let mut carry: Vec<u8> = Vec::new();
                let mut skipping = false;
                loop {
                    let mut buf = self.spare.pop().unwrap_or_default();
                    buf.clear();
                    buf.reserve(CHUNK + MAX_LINE + 2);
                    buf.extend_from_slice(&carry);
                    carry.clear();
                    let start = buf.len();
                    let n = read_full(&mut reader, &mut buf).map_err(|e| StoreError::io(&source.path, e))?;
                    let eof = n == 0;
                    if skipping {
                        // The rest of an over-long line: drop it up to its end, which
                        // then ends the truncated copy kept in the previous chunk.
                        match buf[start..].iter().position(|&b| b == b'\n') {
                            Some(i) => {
                                buf.drain(start..start + i + 1);
                                skipping = false;
                            }
                            None if eof => skipping = false,
                            None => {
                                carry.extend_from_slice(&buf[..start]);
                                self.spare.push(buf);
                                continue;
                            }
                        }
                    }
                    if !eof {
                        // Keep the last partial line for the next chunk; one longer
                        // than any valid line is cut to MAX_LINE + 1 bytes, so the
                        // parser still counts it (as too long), and the rest skipped.
                        let cut = buf.iter().rposition(|&b| b == b'\n').map_or(0, |i| i + 1);
                        let tail = &buf[cut..];
                        if tail.len() > MAX_LINE {
                            carry.extend_from_slice(&tail[..MAX_LINE + 1]);
                            skipping = true;
                        } else {
                            carry.extend_from_slice(tail);
                        }
                        buf.truncate(cut);
                        if skipping {
                            carry.push(b'\n');
                        }
                    }
                    if !buf.is_empty() {
                        self.send(Job { seq: self.next_seq, prefix: prefix.clone(), bytes: buf })?;
                        if !self.sorted {
                            return Ok(Order::Unsorted);
                        }
                    } else {
                        self.spare.push(buf);
                    }
                    if eof && carry.is_empty() {
                        break;
                    }
                }
            }
        }
        self.drain_all()?;
        Ok(if self.sorted { Order::Sorted } else { Order::Unsorted })
    }

    fn send(&mut self, job: Job) -> Result<()> {
        self.next_seq += 1;
        let tx = self.job_tx.as_ref().expect("open until the end");
        if tx.send(job).is_err() {
            return Err(StoreError::Invalid("a parser thread stopped".into()));
        }
        while self.next_seq - self.deliver_seq >= IN_FLIGHT as u64 && self.sorted {
            self.receive()?;
        }
        Ok(())
    }

    fn drain_all(&mut self) -> Result<()> {
        while self.deliver_seq < self.next_seq && self.sorted {
            self.receive()?;
        }
        Ok(())
    }

    /// Waits for one parsed chunk and delivers every chunk now next in order.
    fn receive(&mut self) -> Result<()> {
        let parsed =
            self.done_rx.recv().map_err(|_| StoreError::Invalid("a parser thread stopped".into()))?;
        self.waiting.insert(parsed.seq, parsed);
        while let Some(parsed) = self.waiting.remove(&self.deliver_seq) {
            self.deliver_seq += 1;
            self.deliver(parsed)?;
        }
        Ok(())
    }

    fn deliver(&mut self, p: Parsed) -> Result<()> {
        let tally = &mut *self.tally;
        tally.lines += p.lines;
        tally.padding += p.padding;
        for (reason, count, samples) in p.rejected {
            let r = tally.rejected.entry(reason).or_default();
            r.count += count;
            for line in samples {
                if r.samples.len() < SAMPLES {
                    r.samples.push(format!("{}:{}", self.file, self.file_line + line));
                }
            }
        }
        for len in p.wrong_lengths {
            *tally.wrong_lengths.entry(len).or_default() += 1;
        }
        self.file_line += p.lines;
        tally.hashes += p.keys.len() as u64;
        if self.sorted {
            let key_len = self.key_len;
            for (key, &count) in p.keys.iter().zip(&p.counts) {
                if (self.each)(&key[..key_len], count)? == Order::Unsorted {
                    self.sorted = false;
                    break;
                }
            }
        }
        self.spare.push(p.bytes);
        Ok(())
    }
}

/// Appends up to [`CHUNK`] bytes of `reader` to `buf` (fewer only at the end of
/// the input); returns how many. `read_to_end` fills the spare capacity without
/// zeroing it first.
fn read_full(reader: &mut impl Read, buf: &mut Vec<u8>) -> std::io::Result<usize> {
    reader.take(CHUNK as u64).read_to_end(buf)
}

/// The value of each hex digit of either case; 0xFF for every other byte.
static HEX_VALUE: [u8; 256] = {
    let mut t = [0xFFu8; 256];
    let mut i = 0;
    while i < 10 {
        t[b'0' as usize + i] = i as u8;
        i += 1;
    }
    let mut i = 0;
    while i < 6 {
        t[b'a' as usize + i] = 10 + i as u8;
        t[b'A' as usize + i] = 10 + i as u8;
        i += 1;
    }
    t
};

/// Decodes `2 * out.len()` hex digits; false if any is not one.
#[inline]
fn decode_hex_fast(text: &[u8], out: &mut [u8]) -> bool {
    let mut bad = 0u8;
    for (o, pair) in out.iter_mut().zip(text.chunks_exact(2)) {
        let (hi, lo) = (HEX_VALUE[usize::from(pair[0])], HEX_VALUE[usize::from(pair[1])]);
        bad |= hi | lo;
        *o = (hi << 4) | (lo & 0x0F);
    }
    bad & 0xF0 == 0
}

/// Parses one chunk of whole lines (the last may lack its end of line).
fn parse_chunk(job: Job, key_len: usize) -> Parsed {
    let Job { seq, prefix, bytes } = job;
    let mut p = Parsed {
        seq,
        keys: Vec::with_capacity(bytes.len() / (2 * key_len + 4) + 1),
        counts: Vec::with_capacity(bytes.len() / (2 * key_len + 4) + 1),
        lines: 0,
        padding: 0,
        rejected: Vec::new(),
        wrong_lengths: Vec::new(),
        bytes: Vec::new(),
    };
    let data = bytes.as_slice();
    // Hex digits on a line: the whole hash, or in a range file the suffix.
    let digits = (2 * key_len).saturating_sub(prefix.len());
    let mut hex = [0u8; 40];
    hex[..prefix.len()].copy_from_slice(&prefix);
    let mut at = 0;
    while at < data.len() {
        let rest = &data[at..];
        // The fast path: `HASH:COUNT` then CRLF or LF, as HIBP writes them.
        if prefix.is_empty() && rest.len() > digits && rest[digits] == b':' {
            let mut key = [0u8; 20];
            let mut i = digits + 1;
            let mut count = 0u64;
            // Up to 19 digits cannot overflow; longer counts take the slow path.
            while i < rest.len() && i < digits + 20 && rest[i].is_ascii_digit() {
                count = count * 10 + u64::from(rest[i] - b'0');
                i += 1;
            }
            let line_end = match rest.get(i..i + 2) {
                _ if i == digits + 1 => None,
                Some(b"\r\n") => Some(i + 2),
                _ if rest.get(i) == Some(&b'\n') => Some(i + 1),
                _ if i == rest.len() => Some(i),
                _ => None,
            };
            if let Some(end) = line_end {
                if decode_hex_fast(&rest[..digits], &mut key[..key_len]) {
                    p.lines += 1;
                    at += end;
                    if count == 0 {
                        p.padding += 1;
                    } else {
                        p.keys.push(key);
                        p.counts.push(count);
                    }
                    continue;
                }
            }
        }
        let end = rest.iter().position(|&b| b == b'\n').map_or(rest.len(), |i| i + 1);
        at += end;
        p.lines += 1;
        let line = p.lines;
        let mut text = &rest[..end];
        text = text.strip_suffix(b"\n").unwrap_or(text);
        if text.len() > MAX_LINE {
            reject(&mut p.rejected, "line too long", line);
            continue;
        }
        text = text.strip_suffix(b"\r").unwrap_or(text);
        // The downloader writes a BOM at the start of each block it appends.
        text = text.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(text);
        if text.is_empty() {
            continue;
        }
        let Some(colon) = text.iter().position(|&b| b == b':') else {
            reject(&mut p.rejected, "no ':' separator", line);
            continue;
        };
        let (hash, count) = (&text[..colon], &text[colon + 1..]);
        if hash.len() != digits {
            reject(&mut p.rejected, "hash of the wrong length", line);
            p.wrong_lengths.push(hash.len());
            continue;
        }
        hex[prefix.len()..2 * key_len].copy_from_slice(hash);
        let mut key = [0u8; 20];
        if !decode_hex_fast(&hex[..2 * key_len], &mut key[..key_len]) {
            reject(&mut p.rejected, "not hexadecimal", line);
            continue;
        }
        let Some(count) = parse_count(count) else {
            reject(&mut p.rejected, "bad count", line);
            continue;
        };
        if count == 0 {
            p.padding += 1;
            continue;
        }
        p.keys.push(key);
        p.counts.push(count);
    }
    p.bytes = bytes;
    p
}

fn reject(rejected: &mut Vec<(&'static str, u64, Vec<u64>)>, reason: &'static str, line: u64) {
    match rejected.iter_mut().find(|r| r.0 == reason) {
        Some(r) => {
            r.1 += 1;
            if r.2.len() < SAMPLES {
                r.2.push(line);
            }
        }
        None => rejected.push((reason, 1, vec![line])),
    }
}
/// A decimal count: digits only (surrounding spaces allowed), no overflow.
fn parse_count(text: &[u8]) -> Option<u64> {
    leakwatch_types::decode_decimal(text.trim_ascii())
}

/// Feeds sorted (hash, count) pairs to a writer, summing repeats of a hash.
///
/// Keys are compared as integers (the first 16 bytes, then the last 4 of a
/// SHA-1): this runs once per line on the thread that also feeds the writer.
struct SortedSink<'a> {
    writer: &'a mut RollingWriter,
    pending: Option<((u128, u32), u64)>,
    key_len: usize,
}

impl SortedSink<'_> {
    fn push(&mut self, key: &[u8], count: u64) -> Result<Order> {
        let head = u128::from_be_bytes(key[..16].try_into().expect("keys are >= 16 bytes"));
        let tail = key.get(16..20).map_or(0, |t| u32::from_be_bytes(t.try_into().expect("4 bytes")));
        let next = (head, tail);
        if let Some((last, total)) = &mut self.pending {
            match (*last).cmp(&next) {
                std::cmp::Ordering::Equal => {
                    *total = total.saturating_add(count);
                    return Ok(Order::Sorted);
                }
                std::cmp::Ordering::Greater => return Ok(Order::Unsorted),
                std::cmp::Ordering::Less => {}
            }
        }
        if let Some((last, total)) = self.pending.replace((next, count)) {
            self.write(last, total)?;
        }
        Ok(Order::Sorted)
    }

    fn write(&mut self, (head, tail): (u128, u32), count: u64) -> Result<()> {
        let mut key = [0u8; 20];
        key[..16].copy_from_slice(&head.to_be_bytes());
        key[16..].copy_from_slice(&tail.to_be_bytes());
        self.writer.push_count(&key[..self.key_len], count)?;
        Ok(())
    }

    fn flush(&mut self) -> Result<()> {
        if let Some((last, total)) = self.pending.take() {
            self.write(last, total)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Reads `text` as one file through the chunked parser.
    fn read_text(text: &[u8]) -> (Tally, Vec<([u8; 20], u64)>, String) {
        let tmp = tempfile::NamedTempFile::new().unwrap();
        std::fs::write(tmp.path(), text).unwrap();
        let name = tmp.path().to_str().unwrap().to_owned();
        let sources = [Source { path: name.clone(), prefix: None }];
        let mut tally = Tally::default();
        let mut got = Vec::new();
        let order = read_all(&sources, 20, &AtomicU64::new(0), &mut tally, &mut |k, c| {
            got.push((k.try_into().unwrap(), c));
            Ok(Order::Sorted)
        })
        .unwrap();
        assert_eq!(order, Order::Sorted);
        (tally, got, name)
    }

    #[test]
    fn lines_across_chunks_keep_their_numbers_and_long_lines_are_cut() {
        let mut text = Vec::new();
        let mut want = Vec::new();
        let line = |i: u64| -> ([u8; 20], u64) {
            let mut k = [0u8; 20];
            k[..8].copy_from_slice(&(i * 7919).to_be_bytes());
            (k, i % 13 + 1)
        };
        let mut number = 0u64;
        let mut push = |text: &mut Vec<u8>, s: &[u8]| {
            text.extend_from_slice(s);
            number += 1;
            number
        };
        let mut bad = Vec::new();
        for i in 0..120_000u64 {
            let (k, c) = line(i);
            let hex: String = k.iter().map(|b| format!("{b:02x}")).collect();
            let eol = if i % 2 == 0 { "\r\n" } else { "\n" };
            push(&mut text, format!("{hex}:{c}{eol}").as_bytes());
            want.push((k, c));
            if i == 30_000 {
                // Longer than a chunk: cut, counted once, and the next line intact.
                let n = push(&mut text, &vec![b'F'; 3 * CHUNK]);
                text.push(b'\n');
                bad.push(("line too long", n));
            }
            if i == 50_000 {
                let n = push(&mut text, &[b'G'; 300]);
                text.extend_from_slice(b"\r\n");
                bad.push(("line too long", n));
            }
            if i % 40_000 == 1 {
                bad.push(("no ':' separator", push(&mut text, b"junk\n")));
            }
        }
        // The last line has no end of line.
        text.truncate(text.len() - 1);
        let (tally, got, name) = read_text(&text);
        assert_eq!(got, want);
        assert_eq!(tally.lines, number);
        assert_eq!(tally.hashes, 120_000);
        for (reason, n) in bad {
            assert!(tally.rejected[reason].samples.contains(&format!("{name}:{n}")), "{reason} {n}");
        }
        assert_eq!(tally.rejected["line too long"].count, 2);
        assert_eq!(tally.rejected["no ':' separator"].count, 3);
    }

    #[test]
    fn padding_spaces_and_a_bom_take_the_slow_path_to_the_same_answer() {
        let (tally, got, _) = read_text(
            b"\xEF\xBB\xBF0000000000000000000000000000000000000001:5\r\n\
              0000000000000000000000000000000000000002: 6 \n\
              0000000000000000000000000000000000000003:0\r\n\
              0000000000000000000000000000000000000004:123456789012345678901\n\
              0000000000000000000000000000000000000005:18446744073709551615",
        );
        let keys: Vec<(u8, u64)> = got.iter().map(|(k, c)| (k[19], *c)).collect();
        assert_eq!(keys, vec![(1, 5), (2, 6), (5, u64::MAX)]);
        assert_eq!(tally.padding, 1);
        assert_eq!(tally.rejected["bad count"].count, 1);
    }

    #[test]
    fn counts_are_plain_decimal_without_overflow() {
        assert_eq!(parse_count(b"10434004"), Some(10_434_004));
        assert_eq!(parse_count(b" 7 "), Some(7));
        assert_eq!(parse_count(b"18446744073709551615"), Some(u64::MAX));
        assert_eq!(parse_count(b"18446744073709551616"), None);
        assert_eq!(parse_count(b"12a"), None);
        assert_eq!(parse_count(b""), None);
        assert_eq!(parse_count(b"-1"), None);
    }
}
