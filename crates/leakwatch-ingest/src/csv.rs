//! CSV and TSV dumps: RFC 4180 records (quoted fields, doubled quotes, newlines
//! inside quotes) with a header row naming the columns.
//!
//! The reader is our own small state machine rather than the `csv` crate so that
//! the chunker and the parser agree byte for byte on where a record ends (the
//! chunker cuts the stream only between records) and so that a record that never
//! ends (a stray quote) is bounded like a line. It is lenient the way the `csv`
//! crate is: a quote inside an unquoted field is a literal character, and bytes
//! after a closing quote are kept as part of the field.

use encoding_rs::Encoding;
use memchr::{memchr, memchr2, memrchr};

use crate::chunk::{finish, Scan, Splitter, SCAN_WINDOW};
use crate::columns::{self, ColumnOverrides, ColumnReport, Role, Row, SAMPLE_ROWS};
use crate::report::{Reason, Tallies};
use leakwatch_types::Records;

/// The delimiters considered, in the order that breaks ties.
pub(crate) const DELIMITERS: [u8; 4] = [b',', b';', b'\t', b'|'];

/// The most frequent delimiter in a header line (ties go to the earlier one in
/// [`DELIMITERS`]; a line with none of them is one column, split on `,`).
pub(crate) fn pick_delimiter(header: &[u8]) -> u8 {
    let mut best = (0usize, DELIMITERS[0]);
    for d in DELIMITERS {
        let n = header.iter().filter(|&&b| b == d).count();
        if n > best.0 {
            best = (n, d);
        }
    }
    best.1
}

/// Finds the ends of CSV records for the chunker.
pub(crate) struct CsvSplitter {
    pub(crate) delimiter: u8,
}

impl Splitter for CsvSplitter {
    fn scan(&self, bytes: &[u8], at_eof: bool) -> Scan {
        scan_record(bytes, self.delimiter, at_eof, &mut NoFields)
    }

    /// Where there is no quote, every LF ends a record: the region up to the
    /// line holding its first quote is cut in one step, record by record only
    /// from there (most dumps quote nothing, so most chunks are cut this way).
    fn last_line_end(&self, region: &[u8]) -> Option<usize> {
        let plain = memchr(b'"', region).map_or(region, |q| &region[..q]);
        memrchr(b'\n', plain).map(|i| i + 1)
    }
}

/// Where the fields of a record go while it is scanned.
trait FieldSink {
    fn byte_run(&mut self, run: &[u8]);
    fn end_field(&mut self);
}

/// Scanning only for the end of a record.
struct NoFields;

impl FieldSink for NoFields {
    fn byte_run(&mut self, _: &[u8]) {}
    fn end_field(&mut self) {}
}

/// The fields of one record, unescaped, stored back to back.
#[derive(Debug, Default)]
pub(crate) struct Fields {
    bytes: Vec<u8>,
    ends: Vec<usize>,
    start: usize,
}

impl Fields {
    fn clear(&mut self) {
        self.bytes.clear();
        self.ends.clear();
        self.start = 0;
    }

    pub(crate) fn len(&self) -> usize {
        self.ends.len()
    }

    pub(crate) fn get(&self, i: usize) -> &[u8] {
        let start = if i == 0 { 0 } else { self.ends[i - 1] };
        &self.bytes[start..self.ends[i]]
    }
}

impl FieldSink for Fields {
    fn byte_run(&mut self, run: &[u8]) {
        self.bytes.extend_from_slice(run);
    }

    fn end_field(&mut self) {
        self.ends.push(self.bytes.len());
        self.start = self.bytes.len();
    }
}

/// Scans the record at the start of `bytes`, feeding its fields to `fields`.
///
/// Looks at no more than [`SCAN_WINDOW`] bytes, so a record that never ends costs
/// a bounded amount of work. The record's last field loses one trailing CR (the
/// CR of a CRLF line end), as a line does.
fn scan_record(bytes: &[u8], delim: u8, at_eof: bool, fields: &mut impl FieldSink) -> Scan {
    let window = &bytes[..bytes.len().min(SCAN_WINDOW)];
    // Where the window stops before the record does: too long, the end of the
    // input, or the end of what was read so far.
    let ran_out = |fields: &mut dyn FnMut()| {
        if window.len() == SCAN_WINDOW {
            Scan::TooLong
        } else if at_eof {
            fields();
            finish(bytes, bytes.len(), bytes.len())
        } else {
            Scan::NeedMore
        }
    };
    let mut i = 0;
    loop {
        // At the start of a field.
        if window.get(i) == Some(&b'"') {
            i += 1;
            loop {
                let Some(q) = memchr(b'"', &window[i..]).map(|q| i + q) else {
                    let run = &window[i..];
                    fields.byte_run(if at_eof { run.strip_suffix(b"\r").unwrap_or(run) } else { run });
                    return ran_out(&mut || fields.end_field());
                };
                fields.byte_run(&window[i..q]);
                match window.get(q + 1) {
                    Some(b'"') => {
                        fields.byte_run(b"\"");
                        i = q + 2;
                    }
                    Some(_) => {
                        i = q + 1;
                        break;
                    }
                    None => return ran_out(&mut || fields.end_field()),
                }
            }
        }
        // In the unquoted part of a field (all of it, or what follows a closing
        // quote): runs to the next delimiter or LF.
        match memchr2(delim, b'\n', &window[i..]).map(|j| i + j) {
            Some(j) if window[j] == b'\n' => {
                let run = &window[i..j];
                // The CR of a CRLF ending is not part of the last field.
                fields.byte_run(run.strip_suffix(b"\r").unwrap_or(run));
                fields.end_field();
                return finish(bytes, j, j + 1);
            }
            Some(j) => {
                fields.byte_run(&window[i..j]);
                fields.end_field();
                i = j + 1;
            }
            None => {
                let run = &window[i..];
                let run = if at_eof { run.strip_suffix(b"\r").unwrap_or(run) } else { run };
                fields.byte_run(run);
                return ran_out(&mut || fields.end_field());
            }
        }
    }
}

/// The header of a CSV input: the role of each column, found once and shared by
/// every chunk.
#[derive(Debug, Clone)]
pub(crate) struct Header {
    pub(crate) delimiter: u8,
    /// Number of fields every row must have.
    width: usize,
    /// For each column that plays a role: its index, role and name.
    columns: Vec<(usize, Role, Vec<u8>)>,
    /// Which column became what.
    pub(crate) report: ColumnReport,
}

impl Header {
    /// The names in a header record.
    pub(crate) fn names(record: &[u8], delimiter: u8) -> Vec<Vec<u8>> {
        let mut fields = Fields::default();
        scan_record(record, delimiter, true, &mut fields);
        (0..fields.len()).map(|i| fields.get(i).to_vec()).collect()
    }

    /// The header of columns named `names`, their roles decided from the names,
    /// `overrides`, and the rows at the start of `rows` (the bytes after the
    /// header; `at_eof` when they run to the end of the input).
    pub(crate) fn new(
        delimiter: u8,
        names: Vec<Vec<u8>>,
        rows: &[u8],
        at_eof: bool,
        overrides: Option<&ColumnOverrides>,
    ) -> Header {
        let sample = sample_rows(rows, delimiter, at_eof, names.len());
        let columns: Vec<(Vec<u8>, Vec<&[u8]>)> = names
            .into_iter()
            .enumerate()
            .map(|(i, name)| (name, sample.iter().map(|f| f.get(i)).collect()))
            .collect();
        let (roles, report) = columns::plan(&columns, overrides, true);
        let width = columns.len();
        let columns = columns
            .into_iter()
            .zip(roles)
            .enumerate()
            .filter_map(|(i, ((name, _), role))| role.map(|role| (i, role, name.trim_ascii().to_vec())))
            .collect();
        Header { delimiter, width, columns, report }
    }
}

/// The fields of up to [`SAMPLE_ROWS`] whole records at the start of `bytes`
/// that have `width` fields (blank and too-long records are passed over).
fn sample_rows(bytes: &[u8], delimiter: u8, at_eof: bool, width: usize) -> Vec<Fields> {
    let mut rows = Vec::new();
    let mut at = 0;
    while rows.len() < SAMPLE_ROWS && at < bytes.len() {
        let mut fields = Fields::default();
        match scan_record(&bytes[at..], delimiter, at_eof, &mut fields) {
            Scan::Record(n) => {
                if fields.len() == width && !bytes[at..at + n].trim_ascii().is_empty() {
                    rows.push(fields);
                }
                at += n;
            }
            _ => break,
        }
    }
    rows
}

/// Parses a chunk of whole CSV records (after the header) into records.
pub(crate) fn parse_chunk(
    bytes: &[u8],
    last: bool,
    header: &Header,
    legacy: &'static Encoding,
    first_line: u64,
    out: &mut Records,
    tallies: &mut Tallies,
) {
    let mut fields = Fields::default();
    let mut line = first_line;
    let mut at = 0;
    while at < bytes.len() {
        let rest = &bytes[at..];
        fields.clear();
        let scan = match scan_record(rest, header.delimiter, last, &mut fields) {
            // The chunker cuts only between records, so a record running past
            // the end of a chunk that is not the last was one it found too long.
            Scan::NeedMore => Scan::TooLong,
            scan => scan,
        };
        match scan {
            Scan::Record(n) => {
                let record = &rest[..n];
                let lines = count_lines(record);
                if record.trim_ascii().is_empty() {
                    tallies.blank += 1;
                } else {
                    row(&fields, header, legacy, line, out, tallies);
                }
                line += lines;
                at += n;
            }
            _ => {
                tallies.reject(Reason::LineTooLong, line);
                line += 1;
                at += memchr(b'\n', rest).map_or(rest.len(), |i| i + 1);
            }
        }
    }
    tallies.lines += line - first_line;
}

/// Physical lines a record spans: its LFs, or one for a last line without LF.
fn count_lines(record: &[u8]) -> u64 {
    let lfs = memchr::memchr_iter(b'\n', record).count() as u64;
    lfs + u64::from(record.last() != Some(&b'\n'))
}

fn row(
    fields: &Fields,
    header: &Header,
    legacy: &'static Encoding,
    line: u64,
    out: &mut Records,
    tallies: &mut Tallies,
) {
    if fields.len() != header.width {
        tallies.reject(Reason::WrongFieldCount, line);
        return;
    }
    let mut row = Row::default();
    for (i, role, name) in &header.columns {
        row.offer(*role, name, fields.get(*i));
    }
    let classes = row.classes;
    match row.into_record(legacy) {
        Ok(record) => {
            tallies.accept(&record);
            tallies.classes.union(classes);
            out.push(record);
        }
        Err(reason) => tallies.reject(reason, line),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn split(bytes: &[u8], at_eof: bool) -> (Scan, Vec<String>) {
        let mut fields = Fields::default();
        let scan = scan_record(bytes, b',', at_eof, &mut fields);
        let got = (0..fields.len()).map(|i| String::from_utf8_lossy(fields.get(i)).into_owned()).collect();
        (scan, got)
    }

    #[test]
    fn records_and_fields_follow_rfc_4180() {
        let cases: &[(&[u8], bool, Scan, &[&str])] = &[
            (b"a,b,c\nnext", false, Scan::Record(6), &["a", "b", "c"]),
            (b"a,b,c\r\n", false, Scan::Record(7), &["a", "b", "c"]),
            (b"\"a,1\",\"say \"\"hi\"\"\",c\n", false, Scan::Record(21), &["a,1", "say \"hi\"", "c"]),
            (b"\"multi\nline\",x\n", false, Scan::Record(15), &["multi\nline", "x"]),
            (b"\"multi\r\nline\",x\r\n", false, Scan::Record(17), &["multi\r\nline", "x"]),
            (b"ab\"c,d\n", false, Scan::Record(7), &["ab\"c", "d"]),
            (b"\"ab\"cd,e\n", false, Scan::Record(9), &["abcd", "e"]),
            (b",,\n", false, Scan::Record(3), &["", "", ""]),
            (b"\n", false, Scan::Record(1), &[""]),
            (b"a,b", true, Scan::Record(3), &["a", "b"]),
            (b"a,b\r", true, Scan::Record(4), &["a", "b"]),
            (b"\"open\nquote", true, Scan::Record(11), &["open\nquote"]),
            (b"a,b", false, Scan::NeedMore, &[]),
            (b"\"open\nquote", false, Scan::NeedMore, &[]),
            (b"\"x\"", false, Scan::NeedMore, &[]),
        ];
        for (input, at_eof, scan, want) in cases {
            let (got_scan, got) = split(input, *at_eof);
            assert_eq!(got_scan, *scan, "input {:?}", String::from_utf8_lossy(input));
            if matches!(scan, Scan::Record(_)) {
                assert_eq!(got, *want, "input {:?}", String::from_utf8_lossy(input));
            }
        }
    }

    #[test]
    fn a_record_that_never_ends_is_too_long() {
        let mut input = b"\"".to_vec();
        input.extend(std::iter::repeat_n(b'a', SCAN_WINDOW));
        assert_eq!(split(&input, false).0, Scan::TooLong);
        assert_eq!(split(&input, true).0, Scan::TooLong);
        let mut exact = vec![b'a'; crate::chunk::MAX_LINE];
        exact.extend(b"\r\n");
        assert_eq!(split(&exact, false).0, Scan::Record(exact.len()));
        exact.insert(0, b'a');
        assert_eq!(split(&exact, false).0, Scan::TooLong);
    }

    #[test]
    fn agrees_with_the_csv_crate_on_well_formed_input() {
        let input = b"email,password,name\n\"a@b.co\",\"p,w\",\"Ann\"\nc@d.co,\"x\"\"y\",\"multi\nline\"\n";
        let mut reader = ::csv::ReaderBuilder::new().has_headers(false).from_reader(&input[..]);
        let theirs: Vec<Vec<String>> =
            reader.records().map(|r| r.expect("valid").iter().map(str::to_owned).collect()).collect();
        let mut ours = Vec::new();
        let mut at = 0;
        while at < input.len() {
            let (scan, fields) = split(&input[at..], true);
            let Scan::Record(n) = scan else { panic!("{scan:?}") };
            ours.push(fields);
            at += n;
        }
        assert_eq!(ours, theirs);
    }

    #[test]
    fn delimiter_is_the_most_frequent_with_ties_in_order() {
        assert_eq!(pick_delimiter(b"email;password;name"), b';');
        assert_eq!(pick_delimiter(b"email\tpassword"), b'\t');
        assert_eq!(pick_delimiter(b"a,b;c|d\te"), b',');
        assert_eq!(pick_delimiter(b"a|b|c,d"), b'|');
        assert_eq!(pick_delimiter(b"email"), b',');
    }
}
