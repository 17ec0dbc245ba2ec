//! Entry points for the fuzz targets in `fuzz/` (behind the `fuzzing` feature)
//! and for this crate's own tests: read bytes with a chosen chunk size, and
//! check that chunking changes nothing.

use std::sync::atomic::AtomicU64;

use leakwatch_types::Record;

use crate::input::RawInput;
use crate::reader::{read_chunked, CHUNK_SIZE};
use crate::{Format, IngestError, Report};

/// Reads `data` as a whole input, cutting chunks of about `chunk_size` bytes.
/// Fails only where the bytes are gzip or zstd that does not decompress.
pub fn read_bytes(
    data: &[u8],
    format: Option<Format>,
    chunk_size: usize,
) -> Result<(Report, Vec<Record>), IngestError> {
    let raw = RawInput::from_reader("fuzz".into(), None, Box::new(std::io::Cursor::new(data.to_vec())))
        .map_err(|source| IngestError::Open { path: "fuzz".into(), source })?;
    let mut records = Vec::new();
    let progress = AtomicU64::new(0);
    let report = read_chunked(
        raw,
        format,
        &progress,
        chunk_size,
        |batch| batch.to_vec(),
        |batch| {
            records.extend(batch);
            Ok(())
        },
    )?;
    Ok((report, records))
}

/// Panics unless reading `data` gives the same report and records with the
/// real chunk size and with tiny ones, and the report counts add up.
pub fn check(data: &[u8], format: Option<Format>) {
    let whole = read_bytes(data, format, CHUNK_SIZE);
    for size in [1, 7, 64] {
        match (read_bytes(data, format, size), &whole) {
            (Ok(chunked), Ok(whole)) => assert!(&chunked == whole, "chunk size {size} changes the result"),
            // Broken compressed input fails at every chunk size; how much a
            // decoder yields before its error depends on the sizes asked for.
            (Err(_), Err(_)) => {}
            (chunked, whole) => {
                panic!("chunk size {size}: {:?} vs {:?}", chunked.err(), whole.as_ref().err())
            }
        }
    }
    let Ok(whole) = whole else { return };
    let rejected: u64 = whole.0.rejected.values().map(|r| r.count).sum();
    // One SQL line (an extended INSERT) holds many rows, each an outcome; every
    // other format has at most one outcome a line.
    if whole.0.format != Format::Sql {
        assert!(whole.0.accepted + rejected <= whole.0.lines, "more outcomes than lines");
    }
    assert_eq!(whole.0.accepted, whole.1.len() as u64);
}

/// Panics if expanding `data` as an archive file (with small limits) panics, or
/// if reading any member it yields does; errors are fine.
pub fn expand_bytes(data: &[u8]) {
    let Ok(dir) = tempfile::tempdir() else { return };
    let path = dir.path().join("fuzz.bin");
    if std::fs::write(&path, data).is_err() {
        return;
    }
    let limits = crate::ArchiveLimits {
        max_total: 16 << 20,
        ratio_floor: 1 << 20,
        max_entries: 1_000,
        ..crate::ArchiveLimits::default()
    };
    let Ok(inputs) = crate::Input::expand_with(&path.to_string_lossy(), limits) else { return };
    for input in inputs {
        let progress = AtomicU64::new(0);
        let _ = crate::read(input, None, &progress, |batch| batch.len(), |_| Ok(()));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The `sql` fuzz target stopped on any real dump: an extended INSERT is
    /// one line of many rows, each an outcome.
    #[test]
    fn one_line_of_many_rows_passes_the_check() {
        let dump = b"CREATE TABLE users (id int, email varchar(99), password varchar(99));\n\
            INSERT INTO users VALUES (1,'a@b.co','x'),(2,'c@d.co','y'),(3,'bad','z');\n";
        let (report, records) = read_bytes(dump, Some(Format::Sql), CHUNK_SIZE).unwrap();
        assert_eq!(report.accepted, 2, "{report:?}");
        assert!(report.accepted + report.rejected.values().map(|r| r.count).sum::<u64>() > report.lines);
        assert_eq!(records.len(), 2);
        check(dump, Some(Format::Sql));
        check(dump, None);
    }
}
