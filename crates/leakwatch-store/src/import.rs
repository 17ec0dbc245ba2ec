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
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicU64;

use leakwatch_ingest::Input;
use leakwatch_segment::{Kind, SegmentWriter};
use leakwatch_types::decode_hex;
use serde::{Deserialize, Serialize};

use crate::dir::DataDir;
use crate::error::{Result, StoreError};
use crate::ingest::{now_rfc3339, SegmentSet};
use crate::manifest::Manifest;
use crate::runs::{Bucketed, Runs};

/// A line longer than this is not a Pwned Passwords line.
const MAX_LINE: usize = 256;
/// Rejection samples kept per reason.
const SAMPLES: usize = 5;

/// What the manifest records of the current Pwned Passwords import of a corpus.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct PwnedImport {
    pub imported_at: String,
    pub source: String,
    pub hashes: u64,
    pub lines: u64,
}

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
    let lock = dir.lock()?;
    let mut manifest = Manifest::load(dir.root())?.unwrap_or_else(Manifest::new);
    dir.remove_orphans(&manifest, &lock)?;
    let kind = if ntlm { Kind::HibpNtlmCounts } else { Kind::HibpSha1Counts };
    let key_len = kind.key_len();

    let mut out = SegmentSet::new(dir.segments());
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
                let abandoned = writer.finish_unsynced()?;
                let _ = std::fs::remove_file(&abandoned.path);
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
        return Err(StoreError::Invalid(format!(
            "{path}: no Pwned Passwords lines found ({} lines read); the current corpus is kept",
            tally.lines
        )));
    }
    let written = out.done(dir)?;
    let segment_bytes = written.iter().map(|s| s.bytes).sum();
    let corpus = if ntlm { "ntlm" } else { "sha1" };
    let replaced_hashes = manifest.pwned_passwords.get(corpus).map(|p| p.hashes);
    let old: Vec<String> =
        manifest.segments.iter().filter(|s| s.kind == kind.name()).map(|s| s.file.clone()).collect();
    manifest.segments.retain(|s| s.kind != kind.name());
    manifest.segments.extend(written);
    manifest.pwned_passwords.insert(
        corpus.to_owned(),
        PwnedImport {
            imported_at: now_rfc3339(),
            source: path.to_owned(),
            hashes: tally.hashes,
            lines: tally.lines,
        },
    );
    manifest.generation += 1;
    manifest.store(dir.root())?;
    for file in old {
        let path = dir.segments().join(file);
        // Readers that still map the file keep their view; the name goes now.
        std::fs::remove_file(&path).map_err(|e| StoreError::io(&path, e))?;
    }
    Ok(ImportSummary {
        ntlm,
        lines: tally.lines,
        hashes: tally.hashes,
        padding: tally.padding,
        rejected: tally.rejected,
        streamed,
        segment_bytes,
        replaced_hashes,
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
}

impl Tally {
    fn reject(&mut self, reason: &'static str, file: &str, line: u64) {
        let r = self.rejected.entry(reason).or_default();
        r.count += 1;
        if r.samples.len() < SAMPLES {
            r.samples.push(format!("{file}:{line}"));
        }
    }
}

/// Reads every source, handing each valid (hash, count) to `each` in file order.
/// Stops early, saying so, when `each` finds the input out of order.
fn read_all(
    sources: &[Source],
    key_len: usize,
    progress: &AtomicU64,
    tally: &mut Tally,
    each: &mut dyn FnMut(&[u8], u64) -> Result<Order>,
) -> Result<Order> {
    let mut hex = [0u8; 40];
    let mut line = Vec::with_capacity(MAX_LINE);
    for source in sources {
        let input = Input::open(&source.path)?;
        let name = input.name().to_owned();
        let reader = input.into_reader(progress).map_err(|e| StoreError::io(&source.path, e))?;
        let mut reader = BufReader::with_capacity(1 << 20, reader);
        let prefix = source.prefix.as_deref().unwrap_or("").as_bytes();
        hex[..prefix.len()].copy_from_slice(prefix);
        let mut number = 0u64;
        loop {
            line.clear();
            let n = std::io::Read::take(&mut reader, MAX_LINE as u64 + 1)
                .read_until(b'\n', &mut line)
                .map_err(|e| StoreError::io(&source.path, e))?;
            if n == 0 {
                break;
            }
            number += 1;
            tally.lines += 1;
            if line.len() > MAX_LINE && line.last() != Some(&b'\n') {
                tally.reject("line too long", &name, number);
                skip_line(&mut reader).map_err(|e| StoreError::io(&source.path, e))?;
                continue;
            }
            let mut text = line.as_slice();
            text = text.strip_suffix(b"\n").unwrap_or(text);
            text = text.strip_suffix(b"\r").unwrap_or(text);
            // The downloader writes a BOM at the start of each block it appends.
            text = text.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(text);
            if text.is_empty() {
                continue;
            }
            let Some(colon) = text.iter().position(|&b| b == b':') else {
                tally.reject("no ':' separator", &name, number);
                continue;
            };
            let (digits, count) = (&text[..colon], &text[colon + 1..]);
            if digits.len() + prefix.len() != 2 * key_len {
                tally.reject("hash of the wrong length", &name, number);
                continue;
            }
            hex[prefix.len()..2 * key_len].copy_from_slice(digits);
            let mut key = [0u8; 20];
            let decoded = match key_len {
                20 => decode_hex::<20>(&hex[..40]).map(|k| key = k).is_some(),
                _ => decode_hex::<16>(&hex[..32]).map(|k| key[..16].copy_from_slice(&k)).is_some(),
            };
            if !decoded {
                tally.reject("not hexadecimal", &name, number);
                continue;
            }
            let Some(count) = parse_count(count) else {
                tally.reject("bad count", &name, number);
                continue;
            };
            if count == 0 {
                tally.padding += 1;
                continue;
            }
            tally.hashes += 1;
            if each(&key[..key_len], count)? == Order::Unsorted {
                return Ok(Order::Unsorted);
            }
        }
    }
    Ok(Order::Sorted)
}

fn skip_line(reader: &mut impl BufRead) -> std::io::Result<()> {
    loop {
        let buf = reader.fill_buf()?;
        if buf.is_empty() {
            return Ok(());
        }
        if let Some(i) = buf.iter().position(|&b| b == b'\n') {
            reader.consume(i + 1);
            return Ok(());
        }
        let n = buf.len();
        reader.consume(n);
    }
}

/// A decimal count: digits only (surrounding spaces allowed), no overflow.
fn parse_count(text: &[u8]) -> Option<u64> {
    let text = text.trim_ascii();
    if text.is_empty() || text.len() > 20 {
        return None;
    }
    text.iter().try_fold(0u64, |n, &b| {
        if b.is_ascii_digit() {
            n.checked_mul(10)?.checked_add(u64::from(b - b'0'))
        } else {
            None
        }
    })
}

/// Feeds sorted (hash, count) pairs to a writer, summing repeats of a hash.
struct SortedSink<'a> {
    writer: &'a mut SegmentWriter,
    pending: Option<([u8; 20], u64)>,
    key_len: usize,
}

impl SortedSink<'_> {
    fn push(&mut self, key: &[u8], count: u64) -> Result<Order> {
        if let Some((last, total)) = &mut self.pending {
            match last[..self.key_len].cmp(key) {
                std::cmp::Ordering::Equal => {
                    *total = total.saturating_add(count);
                    return Ok(Order::Sorted);
                }
                std::cmp::Ordering::Greater => return Ok(Order::Unsorted),
                std::cmp::Ordering::Less => {}
            }
        }
        let mut next = [0u8; 20];
        next[..self.key_len].copy_from_slice(key);
        if let Some((last, total)) = self.pending.replace((next, count)) {
            self.writer.push_count(&last[..self.key_len], total)?;
        }
        Ok(Order::Sorted)
    }

    fn flush(&mut self) -> Result<()> {
        if let Some((last, total)) = self.pending.take() {
            self.writer.push_count(&last[..self.key_len], total)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::parse_count;

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
