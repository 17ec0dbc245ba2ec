//! Dump readers: open a file as it was traded (plain, gzip, zstd, stdin), detect
//! its format, and stream [`Record`]s out of it, counting what had to be rejected.
//!
//! **Architecture Invariant:** this crate knows nothing about storage. It turns
//! bytes into records and rejection counts, and hands records to a caller-supplied
//! `map` (run in parallel) and `sink` (run in input order on the calling thread).
//! Plaintext passwords are hashed inside the parser and never leave it.
//!
//! The rules are written down in `docs/ingest-rules.md`.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::AtomicU64;

use leakwatch_types::{DataClass, Record};

/// A dump format this crate can parse.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Format {
    Combo,
    Csv,
    Ndjson,
}

impl Format {
    pub fn name(self) -> &'static str {
        match self {
            Format::Combo => "combo",
            Format::Csv => "csv",
            Format::Ndjson => "ndjson",
        }
    }
}

/// Why reading failed as a whole (a bad line is never an error: it is a rejection).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum IngestError {
    #[error("{path}: {source}")]
    Open { path: String, source: std::io::Error },
    #[error("{path}: line {line}: {source}")]
    Read { path: String, line: u64, source: std::io::Error },
    #[error("{0}")]
    Sink(Box<dyn std::error::Error + Send + Sync>),
}

/// Rejections of one reason: how many, and the first few line numbers.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Rejections {
    pub count: u64,
    /// Up to [`SAMPLE_LINES`] line numbers, the smallest ones seen.
    pub sample_lines: Vec<u64>,
}

pub const SAMPLE_LINES: usize = 5;

/// What reading one input produced, besides its records.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Report {
    pub format: Format,
    /// Physical lines read.
    pub lines: u64,
    /// Records handed to the sink.
    pub accepted: u64,
    /// Rejections by reason (the reasons are the stable strings of the rules).
    pub rejected: BTreeMap<&'static str, Rejections>,
    /// Data classes this input exposes: from its records and from its columns.
    pub data_classes: BTreeSet<DataClass>,
}

/// An opened input: a file or stdin, decompressed when it is gzip or zstd.
pub struct Input {
    // Filled in by the implementation.
}

impl Input {
    /// Opens `path` (`-` is stdin), detecting compression by magic bytes.
    pub fn open(_path: &str) -> Result<Input, IngestError> {
        todo!()
    }

    /// The name used in messages: the path, or `<stdin>`.
    pub fn name(&self) -> &str {
        todo!()
    }

    /// The size of the raw (possibly compressed) input, when known: the total
    /// against which progress is reported.
    pub fn raw_len(&self) -> Option<u64> {
        todo!()
    }
}

/// Reads every record of `input`.
///
/// `format` forces a format; `None` detects it. `progress` is advanced by raw
/// (compressed) bytes consumed, for a progress bar. Records are parsed in
/// batches on all cores; each batch goes through `map` (in parallel, so put
/// per-record work such as hashing there) and then, in input order, to `sink`.
pub fn read<T, M, S>(
    _input: Input,
    _format: Option<Format>,
    _progress: &AtomicU64,
    _map: M,
    _sink: S,
) -> Result<Report, IngestError>
where
    T: Send,
    M: Fn(Vec<Record>) -> T + Sync,
    S: FnMut(T) -> Result<(), Box<dyn std::error::Error + Send + Sync>>,
{
    todo!()
}
