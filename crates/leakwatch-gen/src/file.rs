//! A dump file under construction: a list of entries, each a line (or, for CSV,
//! a row that may span lines) with the outcome the rules give it. Rendering lays
//! the entries out, numbers the physical lines and produces the expected report
//! from the same pass that produced the bytes.

use std::collections::{BTreeMap, BTreeSet};
use std::io::Write;

use leakwatch_types::DataClass;

use crate::expected::{ExpFile, ExpRecord, ExpRejections, SAMPLE_LINES};
use crate::rules::Format;

/// What the rules make of an entry.
#[derive(Debug, Clone)]
pub(crate) enum Outcome {
    Accepted(ExpRecord),
    Rejected(&'static str),
    /// Neither accepted nor rejected: blank lines and CSV headers.
    Silent,
}

#[derive(Debug, Clone)]
pub(crate) struct Entry {
    /// The bytes of the entry without its line ending. May contain `\n` only inside
    /// a quoted CSV field.
    pub text: Vec<u8>,
    pub outcome: Outcome,
}

impl Entry {
    pub fn new(text: impl Into<Vec<u8>>, outcome: Outcome) -> Entry {
        Entry { text: text.into(), outcome }
    }

    pub fn rejected(text: impl Into<Vec<u8>>, reason: &'static str) -> Entry {
        Entry::new(text, Outcome::Rejected(reason))
    }
}

/// How a file is compressed on disk.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compression {
    None,
    Gzip,
    Zstd,
}

impl Compression {
    pub fn name(self) -> &'static str {
        match self {
            Compression::None => "none",
            Compression::Gzip => "gzip",
            Compression::Zstd => "zstd",
        }
    }

    pub fn extension(self) -> &'static str {
        match self {
            Compression::None => "",
            Compression::Gzip => ".gz",
            Compression::Zstd => ".zst",
        }
    }

    pub fn compress(self, plain: Vec<u8>) -> Vec<u8> {
        match self {
            Compression::None => plain,
            Compression::Gzip => {
                // GzBuilder writes mtime 0 and no file name: the bytes depend on the input only.
                let mut enc = flate2::GzBuilder::new().write(Vec::new(), flate2::Compression::new(6));
                enc.write_all(&plain).expect("writing to memory");
                enc.finish().expect("writing to memory")
            }
            Compression::Zstd => zstd::encode_all(&plain[..], 3).expect("compressing in memory"),
        }
    }
}

/// A rendered file: its bytes (compressed), its expected report and its records.
#[derive(Debug, Clone)]
pub struct RenderedFile {
    pub report: ExpFile,
    pub bytes: Vec<u8>,
    pub(crate) records: Vec<ExpRecord>,
    /// Data classes the file adds by its columns alone (CSV extra columns).
    pub(crate) extra_classes: BTreeSet<DataClass>,
}

/// Lays out `entries`, with a UTF-8 BOM and CRLF line ends when asked.
pub(crate) fn render(
    path: String,
    format: Format,
    compression: Compression,
    entries: Vec<Entry>,
    bom: bool,
    crlf: bool,
) -> RenderedFile {
    let mut out = Vec::with_capacity(entries.iter().map(|e| e.text.len() + 2).sum::<usize>() + 3);
    if bom {
        out.extend_from_slice(b"\xEF\xBB\xBF");
    }
    let mut line = 1u64;
    let mut accepted = 0u64;
    let mut rejected: BTreeMap<String, ExpRejections> = BTreeMap::new();
    let mut records = Vec::new();
    for entry in entries {
        out.extend_from_slice(&entry.text);
        out.extend_from_slice(if crlf { b"\r\n" } else { b"\n" });
        match entry.outcome {
            Outcome::Accepted(record) => {
                accepted += 1;
                records.push(record);
            }
            Outcome::Rejected(reason) => {
                let r = rejected.entry(reason.to_string()).or_default();
                r.count += 1;
                // Entries are laid out in line order, so the first ones are the smallest.
                if r.sample_lines.len() < SAMPLE_LINES {
                    r.sample_lines.push(line);
                }
            }
            Outcome::Silent => {}
        }
        line += 1 + entry.text.iter().filter(|&&b| b == b'\n').count() as u64;
    }
    let report = ExpFile {
        path,
        format,
        compression: compression.name().to_string(),
        lines: line - 1,
        accepted,
        rejected,
    };
    RenderedFile { report, bytes: compression.compress(out), records, extra_classes: BTreeSet::new() }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_are_numbered_physically() {
        let entries = vec![
            Entry::new("header", Outcome::Silent),
            Entry::rejected("bad", "no separator"),
            Entry::new("", Outcome::Silent),
            Entry::rejected("two\nlines", "wrong field count"),
            Entry::rejected("bad again", "no separator"),
        ];
        let f = render("x".into(), Format::Combo, Compression::None, entries, true, true);
        assert_eq!(f.report.lines, 6);
        assert_eq!(f.report.rejected["no separator"].sample_lines, vec![2, 6]);
        assert_eq!(f.report.rejected["wrong field count"].sample_lines, vec![4]);
        assert!(f.bytes.starts_with(b"\xEF\xBB\xBFheader\r\n"));
    }
}
