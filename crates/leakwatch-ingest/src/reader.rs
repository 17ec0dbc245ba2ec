//! Reading one input from start to end: the serial prelude (leading blank
//! lines, format detection, the combo mode sample, the CSV header), then the
//! parallel pipeline over the rest.
//!
//! Everything decided in the prelude is decided once, before any chunk is
//! parsed, so every chunk is parsed under the same rules whatever its size.

use std::io::{self, Read};
use std::sync::atomic::AtomicU64;

use leakwatch_types::Records;
use memchr::memchr;

use crate::chunk::{Chunk, Lines, Scan, Source};
use crate::columns::{ColumnOverrides, ColumnRef};
use crate::combo::{self, Mode, Sample};
use crate::csv::{pick_delimiter, CsvSplitter, Header};
use crate::detect::{detect_format, DETECT_WINDOW};
use crate::input::RawInput;
use crate::pipeline::{self, BoxError, Stop};
use crate::report::{Reason, Tallies};
use crate::sql::{self, SqlReader};
use crate::{ndjson, Format, IngestError, Report};
use encoding_rs::Encoding;

/// Target chunk size: big enough that per-chunk costs vanish, small enough
/// that a few chunks per core stay a few MiB.
pub(crate) const CHUNK_SIZE: usize = 1 << 20;

/// The combo mode sample only looks at lines that end within this many bytes
/// of the decompressed input, so choosing the mode holds a bounded amount.
pub(crate) const SAMPLE_WINDOW: usize = 16 << 20;

/// The legacy encoding is chosen from the lines in this many bytes ahead of
/// the first line with content.
pub(crate) const LEGACY_WINDOW: usize = 1 << 20;

/// How a chunk is parsed once the prelude has settled everything.
enum Plan {
    /// With the legacy encoding of identities that are not UTF-8.
    Combo(Mode, &'static Encoding),
    Csv(Header, &'static Encoding),
    Ndjson(ndjson::Vocabulary),
    Sql,
    Stealer(&'static Encoding),
}

/// [`crate::read`] with the chunk size as a parameter, so tests can prove that
/// chunk boundaries change nothing.
#[cfg(any(test, feature = "fuzzing"))]
pub(crate) fn read_chunked<T, M, S>(
    raw: RawInput,
    format: Option<Format>,
    progress: &AtomicU64,
    chunk_size: usize,
    map: M,
    sink: S,
) -> Result<Report, IngestError>
where
    T: Send,
    M: Fn(&Records) -> T + Sync,
    S: FnMut(T) -> Result<(), BoxError>,
{
    read_with_columns(raw, format, None, progress, chunk_size, map, sink)
}

/// Why the prelude stopped.
enum Stopped {
    Read(io::Error),
    /// `--columns` does not fit this input.
    Columns(String),
}

impl From<io::Error> for Stopped {
    fn from(e: io::Error) -> Stopped {
        Stopped::Read(e)
    }
}

/// [`read_chunked`] with the roles `--columns` gives columns.
pub(crate) fn read_with_columns<T, M, S>(
    raw: RawInput,
    format: Option<Format>,
    overrides: Option<&ColumnOverrides>,
    progress: &AtomicU64,
    chunk_size: usize,
    map: M,
    sink: S,
) -> Result<Report, IngestError>
where
    T: Send,
    M: Fn(&Records) -> T + Sync,
    S: FnMut(T) -> Result<(), BoxError>,
{
    let name = raw.name.clone();
    let read_error = |line, source| IngestError::Read { path: name.clone(), line, source };
    let columns_error = |detail| IngestError::Columns { path: name.clone(), detail };
    let decoded =
        raw.decoded(progress).and_then(crate::encoding::utf16_to_utf8).map_err(|e| read_error(1, e))?;
    let mut source = Source::new(decoded, chunk_size);
    let mut tallies = Tallies::default();

    let prelude = (|| -> Result<(Format, Plan), Stopped> {
        skip_leading_lines(&mut source, &mut tallies)?;
        // Stealer families name their password lists; the name is the surest sign.
        let by_name = crate::stealer_block::is_password_list_name(&name).then_some(Format::Stealer);
        let format = match format.or(by_name) {
            Some(format) => format,
            None => {
                source.ensure(DETECT_WINDOW)?;
                let bytes = source.buffered();
                detect_format(first_line(bytes), whole_lines(bytes, DETECT_WINDOW, source.at_end()))
            }
        };
        let plan = match format {
            Format::Combo | Format::Stealer if overrides.is_some() => {
                return Err(Stopped::Columns(format!(
                    "--columns applies to CSV, NDJSON and SQL dumps, and this input reads as {} (--format \
                     csv reads a CSV without a header)",
                    if format == Format::Combo { "a combo list" } else { "a stealer log" }
                )));
            }
            Format::Combo => Plan::Combo(sample_mode(&mut source)?, legacy_encoding(&mut source)?),
            Format::Ndjson => {
                let vocabulary = ndjson::Vocabulary::sample(&mut source, overrides)?;
                Plan::Ndjson(vocabulary.map_err(Stopped::Columns)?)
            }
            Format::Sql => {
                if overrides.is_some_and(ColumnOverrides::by_index) {
                    return Err(Stopped::Columns("SQL columns are named, not numbered".into()));
                }
                Plan::Sql
            }
            Format::Stealer => Plan::Stealer(legacy_encoding(&mut source)?),
            Format::Csv => {
                let header = read_header(&mut source, &mut tallies, overrides)?;
                Plan::Csv(header, legacy_encoding(&mut source)?)
            }
        };
        Ok((format, plan))
    })();
    let (format, plan) = prelude.map_err(|e| match e {
        Stopped::Read(e) => read_error(tallies.lines + 1, e),
        Stopped::Columns(detail) => columns_error(detail),
    })?;

    let parse = |chunk: &Chunk, out: &mut Records, t: &mut Tallies| match &plan {
        Plan::Combo(mode, legacy) => combo::parse_chunk(chunk.bytes(), *mode, legacy, 1, out, t),
        Plan::Ndjson(vocabulary) => ndjson::parse_chunk(chunk.bytes(), vocabulary, 1, out, t),
        Plan::Stealer(legacy) => crate::stealer_block::parse_chunk(chunk.bytes(), legacy, 1, out, t),
        Plan::Csv(header, legacy) => {
            crate::csv::parse_chunk(chunk.bytes(), chunk.last, header, legacy, 1, out, t)
        }
        // SQL chunks are another type, parsed by `sql::parse_chunk` below.
        Plan::Sql => {}
    };
    let mut columns = Vec::new();
    let result = match &plan {
        Plan::Sql => {
            let mut reader = SqlReader::new(chunk_size, overrides.cloned());
            let result = pipeline::run(
                |spare| reader.next_chunk(&mut source, spare),
                sql::parse_chunk,
                map,
                sink,
                &mut tallies,
            );
            if result.is_ok() {
                if let Some(missing) = reader.missing_override() {
                    return Err(columns_error(missing));
                }
            }
            columns = reader.column_reports();
            result
        }
        Plan::Csv(header, _) => {
            let splitter = CsvSplitter { delimiter: header.delimiter };
            pipeline::run(|spare| source.next_chunk(&splitter, spare), parse, map, sink, &mut tallies)
        }
        // Stealer blocks span lines: chunks end between blocks.
        Plan::Stealer(_) => {
            let splitter = crate::stealer_block::Blocks;
            pipeline::run(|spare| source.next_chunk(&splitter, spare), parse, map, sink, &mut tallies)
        }
        _ => pipeline::run(|spare| source.next_chunk(&Lines, spare), parse, map, sink, &mut tallies),
    };
    match &plan {
        Plan::Csv(header, _) => columns.push(header.report.clone()),
        Plan::Ndjson(vocabulary) => columns.push(vocabulary.report.clone()),
        _ => {}
    }
    match result {
        Ok(()) => {
            let mut report = tallies.into_report(format);
            report.columns = columns;
            Ok(report)
        }
        Err(Stop::Read(e)) => Err(read_error(tallies.lines + 1, e)),
        Err(Stop::Sink(e)) => Err(IngestError::Sink(e)),
    }
}

/// The legacy encoding of the input's identities that are not UTF-8: decided
/// once from the lines that are not UTF-8 among those ending within the first
/// [`LEGACY_WINDOW`] bytes ahead (see `encoding::detect_legacy`), reading ahead
/// without consuming anything.
fn legacy_encoding<R: Read>(source: &mut Source<R>) -> io::Result<&'static Encoding> {
    source.ensure(LEGACY_WINDOW)?;
    Ok(crate::encoding::detect_legacy(whole_lines(source.buffered(), LEGACY_WINDOW, source.at_end())))
}

/// The whole lines of `bytes` within its first `window` bytes (`at_end`: the
/// input ends with `bytes`, so a last line without LF is whole), from a buffer
/// that holds at least `window` bytes unless the input ended: where the window
/// ends must not depend on how the input was read.
fn whole_lines(bytes: &[u8], window: usize, at_end: bool) -> &[u8] {
    let cut = &bytes[..bytes.len().min(window)];
    if bytes.len() <= window && at_end {
        cut
    } else {
        &cut[..memchr::memrchr(b'\n', cut).map_or(0, |i| i + 1)]
    }
}

/// Consumes the blank and too-long lines before the first line with content:
/// they mean the same in every format, and detection looks past them.
fn skip_leading_lines<R: Read>(source: &mut Source<R>, tallies: &mut Tallies) -> io::Result<()> {
    source.start()?;
    loop {
        match source.scan_first(&Lines)? {
            Scan::Record(0) | Scan::NeedMore => return Ok(()),
            Scan::Record(n) => {
                if !source.buffered()[..n].trim_ascii().is_empty() {
                    return Ok(());
                }
                tallies.lines += 1;
                tallies.blank += 1;
                source.consume(n);
            }
            Scan::TooLong => {
                tallies.lines += 1;
                tallies.reject(Reason::LineTooLong, tallies.lines);
                source.skip_line()?;
            }
        }
    }
}

/// The first line of `bytes`, without its line ending; `None` when empty.
fn first_line(bytes: &[u8]) -> Option<&[u8]> {
    if bytes.is_empty() {
        return None;
    }
    let line = &bytes[..memchr(b'\n', bytes).unwrap_or(bytes.len())];
    Some(line.strip_suffix(b"\r").unwrap_or(line))
}

/// Chooses the combo mode from the first lines, reading ahead without
/// consuming anything.
fn sample_mode<R: Read>(source: &mut Source<R>) -> io::Result<Mode> {
    let mut sample = Sample::default();
    // Offsets are relative to the unconsumed bytes; the window is counted from
    // the start of the input.
    let window = SAMPLE_WINDOW.saturating_sub(source.consumed() as usize);
    let mut scanned = 0;
    loop {
        let bytes = source.buffered();
        while !sample.is_full() {
            let rest = &bytes[scanned..];
            let Some(i) = memchr(b'\n', rest) else { break };
            if scanned + i + 1 > window {
                return Ok(sample.mode());
            }
            sample.add(&rest[..i]);
            scanned += i + 1;
        }
        if sample.is_full() {
            return Ok(sample.mode());
        }
        if source.exhausted() || bytes.len() >= window {
            if source.at_end() && bytes.len() <= window && scanned < bytes.len() {
                sample.add(&bytes[scanned..]);
            }
            return Ok(sample.mode());
        }
        source.fill(CHUNK_SIZE)?;
    }
}

/// Consumes the header record: the first record that is neither blank nor too
/// long. The delimiter is chosen from its first physical line. The rows after
/// it are sampled (read ahead, not consumed) for the roles of the columns
/// their names do not give. With columns numbered by `--columns`, the input
/// has no header: the first record is a row, and is not consumed.
fn read_header<R: Read>(
    source: &mut Source<R>,
    tallies: &mut Tallies,
    overrides: Option<&ColumnOverrides>,
) -> Result<Header, Stopped> {
    let headerless = overrides.is_some_and(ColumnOverrides::by_index);
    loop {
        let delimiter = pick_delimiter(first_line(source.buffered()).unwrap_or_default());
        let splitter = CsvSplitter { delimiter };
        match source.scan_first(&splitter)? {
            Scan::Record(0) | Scan::NeedMore => {
                return finish_header(source, delimiter, Vec::new(), headerless, overrides);
            }
            Scan::Record(n) => {
                let record = &source.buffered()[..n];
                let blank = record.trim_ascii().is_empty();
                if !blank && headerless {
                    let names = (1..=Header::names(record, delimiter).len())
                        .map(|i| format!("column {i}").into_bytes())
                        .collect();
                    return finish_header(source, delimiter, names, headerless, overrides);
                }
                let lines = memchr::memchr_iter(b'\n', record).count() as u64;
                let lines = lines + u64::from(record.last() != Some(&b'\n'));
                let names = (!blank).then(|| Header::names(record, delimiter));
                tallies.lines += lines;
                source.consume(n);
                match names {
                    Some(names) => return finish_header(source, delimiter, names, headerless, overrides),
                    None => tallies.blank += 1,
                }
            }
            Scan::TooLong => {
                tallies.lines += 1;
                tallies.reject(Reason::LineTooLong, tallies.lines);
                source.skip_line()?;
            }
        }
    }
}

/// The header of columns `names`, from the rows read ahead of it.
fn finish_header<R: Read>(
    source: &mut Source<R>,
    delimiter: u8,
    names: Vec<Vec<u8>>,
    headerless: bool,
    overrides: Option<&ColumnOverrides>,
) -> Result<Header, Stopped> {
    if let Some(missing) = overrides.and_then(|o| {
        o.missing(|c| match c {
            ColumnRef::Index(i) => *i <= names.len(),
            ColumnRef::Name(n) => {
                !headerless && names.iter().any(|h| h.trim_ascii().eq_ignore_ascii_case(n.as_bytes()))
            }
        })
    }) {
        return Err(Stopped::Columns(missing));
    }
    let (rows, at_eof) = read_ahead(source)?;
    Ok(Header::new(delimiter, names, rows, at_eof, overrides))
}

/// The bytes ahead, up to [`LEGACY_WINDOW`] of them, without consuming them;
/// and whether they run to the end of the input. Whatever the size of reads,
/// the same bytes.
pub(crate) fn read_ahead<R: Read>(source: &mut Source<R>) -> io::Result<(&[u8], bool)> {
    source.ensure(LEGACY_WINDOW)?;
    let at_eof = source.at_end() && source.buffered().len() <= LEGACY_WINDOW;
    let bytes = source.buffered();
    Ok((&bytes[..bytes.len().min(LEGACY_WINDOW)], at_eof))
}
