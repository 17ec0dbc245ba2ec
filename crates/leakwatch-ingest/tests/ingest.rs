//! The public API as the CLI uses it: files on disk (plain, gzip, zstd, with
//! misleading names), progress, errors that name the file and line, sink errors
//! and panics in `map`.

use std::io::Write;
use std::sync::atomic::{AtomicU64, Ordering};

use leakwatch_ingest::{read, Format, IngestError, Input, Report};
use leakwatch_types::{AccountKind, Record, Records};

fn write_file(dir: &tempfile::TempDir, name: &str, bytes: &[u8]) -> String {
    let path = dir.path().join(name);
    std::fs::write(&path, bytes).expect("write test file");
    path.to_str().expect("utf-8 temp path").to_owned()
}

fn read_path(path: &str) -> Result<(Report, Vec<Record>, u64), IngestError> {
    let input = Input::open(path)?;
    let raw_len = input.raw_len();
    let progress = AtomicU64::new(0);
    let mut records = Vec::new();
    let report = read(
        input,
        None,
        &progress,
        |batch| batch.to_vec(),
        |batch| {
            records.extend(batch);
            Ok(())
        },
    )?;
    assert_eq!(Some(progress.load(Ordering::Relaxed)), raw_len, "progress ends at the raw size");
    Ok((report, records, progress.load(Ordering::Relaxed)))
}

fn combo(lines: usize) -> Vec<u8> {
    let mut out = Vec::new();
    for i in 0..lines {
        writeln!(out, "user{i}@example.com:password{i}").expect("vec");
        if i % 100 == 0 {
            writeln!(out, "junk line {i}").expect("vec");
        }
    }
    out
}

#[test]
fn plain_gzip_and_zstd_files_give_the_same_records() {
    let dir = tempfile::tempdir().expect("temp dir");
    // Several chunks' worth, so the parallel path and reordering are exercised.
    let plain = combo(120_000);
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gz.write_all(&plain).expect("gzip");
    let gz = gz.finish().expect("gzip");
    let zst = zstd::encode_all(&plain[..], 1).expect("zstd");

    let (want, want_records, _) = read_path(&write_file(&dir, "combo.txt", &plain)).expect("plain");
    assert_eq!(want.format, Format::Combo);
    assert_eq!(want.accepted, 120_000);
    assert_eq!(want.rejected["no separator"].count, 1200);
    assert_eq!(want.rejected["no separator"].sample_lines, vec![2, 103, 204, 305, 406]);
    assert_eq!(want_records[119_999].account.value, "user119999@example.com");
    assert!(want_records.iter().all(|r| r.account.kind == AccountKind::Email));

    // Names lie; magic bytes don't.
    for (name, bytes) in [("combo.gz.txt", gz), ("combo.txt.bak", zst)] {
        let (report, records, _) = read_path(&write_file(&dir, name, &bytes)).expect(name);
        assert_eq!(report, want, "{name}");
        assert!(records == want_records, "{name}: same records in the same order");
    }
}

#[test]
fn errors_name_the_file_and_line() {
    let dir = tempfile::tempdir().expect("temp dir");
    let missing = dir.path().join("missing.txt");
    let err = Input::open(missing.to_str().expect("utf-8")).err().expect("missing file");
    assert!(matches!(err, IngestError::Open { .. }));
    assert!(err.to_string().contains("missing.txt"), "{err}");

    // A gzip file cut in the middle: the records before the cut are delivered,
    // then the error says where reading stopped.
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gz.write_all(&combo(200_000)).expect("gzip");
    let gz = gz.finish().expect("gzip");
    let path = write_file(&dir, "cut.gz", &gz[..gz.len() / 2]);
    let input = Input::open(&path).expect("open");
    let mut delivered = 0u64;
    let err = read(
        input,
        None,
        &AtomicU64::new(0),
        |b| b.len() as u64,
        |n| {
            delivered += n;
            Ok(())
        },
    )
    .expect_err("truncated gzip fails");
    let IngestError::Read { path: p, line, .. } = &err else { panic!("{err:?}") };
    assert_eq!(p, &path);
    assert!(*line > 1, "{err}");
    assert!(delivered > 0, "records before the cut are delivered");
    assert!(err.to_string().starts_with(&format!("{path}: line {line}: ")), "{err}");
}

#[test]
fn a_sink_error_stops_reading() {
    let input = Input::from_reader("mem", std::io::Cursor::new(combo(100_000))).expect("open");
    let mut calls = 0;
    let err = read(
        input,
        Some(Format::Combo),
        &AtomicU64::new(0),
        |b| b.len(),
        |_| {
            calls += 1;
            Err("disk full".into())
        },
    )
    .expect_err("sink error");
    assert_eq!(calls, 1);
    assert_eq!(err.to_string(), "disk full");
}

#[test]
#[should_panic(expected = "map exploded")]
fn a_panic_in_map_reaches_the_caller() {
    let input = Input::from_reader("mem", std::io::Cursor::new(combo(100_000))).expect("open");
    let _ = read(input, None, &AtomicU64::new(0), |_: &Records| -> () { panic!("map exploded") }, |_| Ok(()));
}

#[test]
fn reading_from_inside_the_pool_does_not_deadlock() {
    let pool = rayon::ThreadPoolBuilder::new().num_threads(1).build().expect("pool");
    let report = pool.install(|| {
        let input = Input::from_reader("mem", std::io::Cursor::new(combo(50_000))).expect("open");
        read(input, None, &AtomicU64::new(0), |b| b.len(), |_| Ok(())).expect("read")
    });
    assert_eq!(report.accepted, 50_000);
}
