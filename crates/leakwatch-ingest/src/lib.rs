//! Dump readers: open a file as it was traded (plain, gzip, zstd, stdin), detect
//! its format, and stream [`Record`]s out of it, counting what had to be rejected.
//!
//! **Architecture Invariant:** this crate knows nothing about storage. It turns
//! bytes into records and rejection counts, and hands records to a caller-supplied
//! `map` (run in parallel) and `sink` (run in input order on the calling thread).
//! Plaintext passwords are hashed inside the parser and never leave it.
//!
//! The rules are written down in `docs/ingest-rules.md`.

mod archive;
mod chunk;
mod columns;
mod combo;
mod csv;
mod detect;
mod encoding;
#[cfg(any(test, feature = "fuzzing"))]
#[doc(hidden)]
pub mod fuzzing;
mod hash_shape;
mod input;
mod ndjson;
mod pipeline;
mod reader;
mod report;
mod report_json;
mod schema;
mod sql;
mod sql_lex;
mod sql_value;
mod stealer;
mod stealer_block;
#[cfg(test)]
mod tests;

use std::collections::{BTreeMap, BTreeSet};
use std::io::Read;
use std::sync::atomic::AtomicU64;

use leakwatch_types::{DataClass, Records};

pub use archive::Limits as ArchiveLimits;
pub use columns::{ChosenBy, ColumnOverrides, ColumnRef, ColumnReport, ColumnUse, OverrideRole};
pub use hash_shape::{detect_hash, normalize_hash_value};
pub use input::{is_plain, sniff_plain};
pub use report::WEBSITE_NOT_DOMAIN;
pub use report_json::ReportJsonError;

/// A dump format this crate can parse.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Format {
    Combo,
    Csv,
    Ndjson,
    /// A SQL dump: mysqldump / MariaDB `INSERT`s or pg_dump `COPY` blocks.
    Sql,
    /// An infostealer log: `URL:login:password` lines or `Passwords.txt`
    /// blocks; records carry the website, and the store flags the breach
    /// `IsStealerLog`.
    Stealer,
}

impl Format {
    pub fn name(self) -> &'static str {
        match self {
            Format::Combo => "combo",
            Format::Csv => "csv",
            Format::Ndjson => "ndjson",
            Format::Sql => "sql",
            Format::Stealer => "stealer",
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
    /// An archive could not be read, or crossed a limit against archive bombs.
    #[error("{archive}{}: {detail}", if member.is_empty() { String::new() } else { format!("!{member}") })]
    Archive { archive: String, member: String, detail: String },
    /// `--columns` does not fit the input (a column it names is not there).
    #[error("{path}: {detail}")]
    Columns { path: String, detail: String },
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

/// How far into an input the reader looks before it settles how to read the
/// rest (format, a combo list's sampled mode, the legacy encoding): a part of
/// a line-oriented input read after this many bytes of its start (then to a
/// line's end) is read as it is within the whole.
pub const DECISION_WINDOW: usize = {
    let a = reader::SAMPLE_WINDOW;
    let b = if reader::LEGACY_WINDOW > detect::DETECT_WINDOW {
        reader::LEGACY_WINDOW
    } else {
        detect::DETECT_WINDOW
    };
    if a > b {
        a
    } else {
        b
    }
};

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
    /// Facts about accepted records worth a count, by their stable strings
    /// ([`WEBSITE_NOT_DOMAIN`]); absent when zero.
    pub notes: BTreeMap<&'static str, u64>,
    /// Data classes this input exposes: from its records and from its columns.
    pub data_classes: BTreeSet<DataClass>,
    /// Which column became what (CSV and NDJSON: one; SQL: one per table that
    /// holds accounts; none for other formats).
    pub columns: Vec<ColumnReport>,
}

/// An opened input: a file or stdin, decompressed when it is gzip or zstd.
pub struct Input {
    raw: input::RawInput,
    columns: Option<std::sync::Arc<ColumnOverrides>>,
}

impl Input {
    /// Opens `path` (`-` is stdin), detecting compression by magic bytes.
    pub fn open(path: &str) -> Result<Input, IngestError> {
        Ok(Input { raw: input::RawInput::open(path)?, columns: None })
    }

    /// The dumps `path` holds: a plain file is itself; a directory gives its
    /// files (in name order, recursively); a zip, tar, tar.gz or 7z archive gives
    /// its members, named `archive.zip!path/in/archive.txt`, archives inside it
    /// included. Members that are not dumps (images, browser databases, a
    /// stealer log's cookies and system information) are left out. `-` is stdin.
    pub fn expand(path: &str) -> Result<Vec<Input>, IngestError> {
        archive::expand(path, ArchiveLimits::default())
    }

    /// [`Input::expand`] with chosen bounds against archive bombs.
    pub fn expand_with(path: &str, limits: ArchiveLimits) -> Result<Vec<Input>, IngestError> {
        archive::expand(path, limits)
    }

    /// Wraps a stream that is already open (an upload, a test's bytes), named
    /// `name` in messages. Compression is detected as for files.
    pub fn from_reader(
        name: impl Into<String>,
        reader: impl Read + Send + 'static,
    ) -> Result<Input, IngestError> {
        let name = name.into();
        let raw = input::RawInput::from_reader(name.clone(), None, Box::new(reader))
            .map_err(|source| IngestError::Open { path: name, source })?;
        Ok(Input { raw, columns: None })
    }

    /// Gives columns roles over what their names and contents say (`--columns`).
    pub fn with_columns(mut self, overrides: std::sync::Arc<ColumnOverrides>) -> Input {
        self.columns = Some(overrides);
        self
    }

    /// The name used in messages: the path, or `<stdin>`.
    pub fn name(&self) -> &str {
        &self.raw.name
    }

    /// This input named as read from `shown` rather than from the local copy
    /// `local` it was opened from (a file fetched from object storage): the
    /// prefix `local` of its name, an archive member's included, becomes
    /// `shown`.
    pub fn shown_as(mut self, local: &str, shown: &str) -> Input {
        if let Some(rest) = self.raw.name.strip_prefix(local) {
            self.raw.name = format!("{shown}{rest}");
        }
        self
    }

    /// The size of the raw (possibly compressed) input, when known: the total
    /// against which progress is reported.
    pub fn raw_len(&self) -> Option<u64> {
        self.raw.len
    }

    /// The decompressed bytes, for readers of formats that are not dumps (such as
    /// Pwned Passwords downloads). `progress` advances by raw bytes consumed.
    pub fn into_reader(self, progress: &AtomicU64) -> std::io::Result<Box<dyn std::io::Read + '_>> {
        self.raw.decoded(progress)
    }
}

/// Reads every record of `input`.
///
/// `format` forces a format; `None` detects it. `progress` is advanced by raw
/// (compressed) bytes consumed, for a progress bar. Records are parsed in
/// batches on all cores; each batch goes through `map` (in parallel, so put
/// per-record work such as hashing there) and then, in input order, to `sink`.
/// `map` borrows the batch: its memory is reused for a later one.
///
/// When the rayon pool has a single thread, or `read` is itself called from a
/// pool thread, batches are parsed on the calling thread instead.
pub fn read<T, M, S>(
    input: Input,
    format: Option<Format>,
    progress: &AtomicU64,
    map: M,
    sink: S,
) -> Result<Report, IngestError>
where
    T: Send,
    M: Fn(&Records) -> T + Sync,
    S: FnMut(T) -> Result<(), Box<dyn std::error::Error + Send + Sync>>,
{
    let overrides = input.columns.as_deref();
    reader::read_with_columns(input.raw, format, overrides, progress, reader::CHUNK_SIZE, map, sink)
}
