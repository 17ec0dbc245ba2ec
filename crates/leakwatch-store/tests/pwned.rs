//! Pwned Passwords imports: every download shape reads to the same corpus, counts
//! stay exact and apart from the organization's own, a newer import replaces the
//! older, and bad lines are counted with their place, never fatal.

use std::io::Write;
use std::path::Path;
use std::sync::atomic::AtomicU64;

use leakwatch_store::{import_pwned_passwords, DataDir, Store};
use leakwatch_types::{encode_hex_upper, ntlm, sha1};

/// `(password, count)` pairs, sorted by SHA-1 as HIBP sorts its files.
fn corpus(n: usize, salt: &str) -> Vec<(String, u64)> {
    let mut v: Vec<(String, u64)> = (0..n)
        .map(|i| (format!("pw-{salt}-{i}"), if i == 7 { 10_434_004 } else { (i as u64 % 40) + 1 }))
        .collect();
    v.sort_by_key(|(p, _)| sha1(p.as_bytes()));
    v
}

fn single_file(path: &Path, rows: &[(String, u64)], crlf: bool) {
    let mut text = Vec::new();
    for (i, (p, c)) in rows.iter().enumerate() {
        if i % 1000 == 0 {
            text.extend_from_slice(b"\xEF\xBB\xBF"); // the downloader's BOM per block
        }
        write!(text, "{}:{}{}", encode_hex_upper(&sha1(p.as_bytes())), c, if crlf { "\r\n" } else { "\n" })
            .unwrap();
    }
    std::fs::write(path, text).unwrap();
}

fn import(data: &DataDir, path: &Path, ntlm: bool) -> leakwatch_store::ImportSummary {
    import_pwned_passwords(data, path.to_str().unwrap(), ntlm, 1 << 30, &AtomicU64::new(0)).unwrap()
}

fn check(data: &DataDir, rows: &[(String, u64)]) {
    let store = Store::open(data).unwrap();
    for (p, c) in rows {
        let counts = store.password_counts(false, &sha1(p.as_bytes())).unwrap();
        assert_eq!(counts.hibp, *c, "{p}");
        assert_eq!(counts.own, 0);
    }
    assert_eq!(store.password_counts(false, &sha1(b"not in it")).unwrap().total(), 0);
    let (_, damage) = store.verify();
    assert!(damage.is_empty(), "{damage:?}");
}

#[test]
fn single_file_plain_crlf_and_gzip_give_the_same_corpus() {
    let tmp = tempfile::tempdir().unwrap();
    let rows = corpus(5000, "a");
    let plain = tmp.path().join("pwned-passwords-sha1-ordered-by-hash.txt");
    single_file(&plain, &rows, true);
    let data = DataDir::new(tmp.path().join("d1"));
    // Its key beside it, in the temporary directory, not in ~/.config.
    data.init(Some(&tmp.path().join("d1.key"))).unwrap();
    let s = import(&data, &plain, false);
    assert_eq!((s.lines, s.hashes, s.streamed), (5000, 5000, true));
    assert!(s.rejected.is_empty(), "{:?}", s.rejected);
    check(&data, &rows);

    let gz = tmp.path().join("pwned.txt.gz");
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    enc.write_all(&std::fs::read(&plain).unwrap()).unwrap();
    std::fs::write(&gz, enc.finish().unwrap()).unwrap();
    let data = DataDir::new(tmp.path().join("d2"));
    data.init(Some(&tmp.path().join("d2.key"))).unwrap();
    import(&data, &gz, false);
    check(&data, &rows);
}

#[test]
fn a_directory_of_range_files_with_padding_reads_the_same() {
    let tmp = tempfile::tempdir().unwrap();
    let rows = corpus(3000, "b");
    let ranges = tmp.path().join("ranges");
    std::fs::create_dir(&ranges).unwrap();
    let mut by_prefix: std::collections::BTreeMap<String, Vec<String>> = Default::default();
    for (p, c) in &rows {
        let hex = encode_hex_upper(&sha1(p.as_bytes()));
        by_prefix.entry(hex[..5].to_owned()).or_default().push(format!("{}:{c}", &hex[5..]));
    }
    for (prefix, mut lines) in by_prefix {
        lines.push(format!("{}:0", "0".repeat(35))); // Add-Padding
        lines.sort();
        // Raw API bodies: CRLF between lines, none after the last.
        std::fs::write(ranges.join(format!("{}.txt", prefix.to_lowercase())), lines.join("\r\n")).unwrap();
    }
    std::fs::write(ranges.join("README.md"), "not a range").unwrap();
    let data = DataDir::new(tmp.path().join("data"));
    data.init(Some(&tmp.path().join("data.key"))).unwrap();
    let s = import(&data, &ranges, false);
    assert_eq!(s.hashes, 3000);
    assert!(s.padding > 0);
    assert!(s.streamed);
    check(&data, &rows);
}

#[test]
fn unsorted_input_and_repeats_go_through_the_sort() {
    let tmp = tempfile::tempdir().unwrap();
    let mut rows = corpus(2000, "c");
    rows.reverse();
    let f = tmp.path().join("unsorted.txt");
    single_file(&f, &rows, false);
    // The same hash twice: counts add.
    let extra = format!("{}:5\n", encode_hex_upper(&sha1(rows[0].0.as_bytes())));
    let mut bytes = std::fs::read(&f).unwrap();
    bytes.extend_from_slice(extra.as_bytes());
    std::fs::write(&f, bytes).unwrap();
    let data = DataDir::new(tmp.path().join("data"));
    data.init(Some(&tmp.path().join("data.key"))).unwrap();
    let s = import(&data, &f, false);
    assert!(!s.streamed);
    assert_eq!(s.hashes, 2001);
    rows[0].1 += 5;
    check(&data, &rows);
}

#[test]
fn a_newer_import_replaces_the_older_and_own_counts_stay_apart() {
    let tmp = tempfile::tempdir().unwrap();
    let data = DataDir::new(tmp.path().join("data"));
    data.init(Some(&tmp.path().join("data.key"))).unwrap();
    // The organization's own dump carries "pw-x-1" once.
    let combo = tmp.path().join("own.txt");
    std::fs::write(&combo, "alice@example-corp.com:pw-x-1\n").unwrap();
    let options = leakwatch_store::IngestOptions {
        breach: leakwatch_store::BreachInfo { name: "Own".into(), ..Default::default() },
        format: None,
        memory_budget: 1 << 30,
    };
    let input = leakwatch_ingest::Input::open(combo.to_str().unwrap()).unwrap();
    leakwatch_store::ingest(&data, &options, vec![input], &Default::default(), &mut |_| {}).unwrap();

    let old = tmp.path().join("old.txt");
    single_file(&old, &corpus(1000, "x"), false);
    import(&data, &old, false);
    let new_rows = corpus(800, "x");
    let new = tmp.path().join("new.txt");
    single_file(&new, &new_rows, false);
    let s = import(&data, &new, false);
    assert_eq!(s.replaced_hashes, Some(1000));

    let store = Store::open(&data).unwrap();
    let c = store.password_counts(false, &sha1(b"pw-x-1")).unwrap();
    assert_eq!((c.own, c.hibp, c.total()), (1, 2, 3));
    // Hashes only the old download had are gone.
    assert_eq!(store.password_counts(false, &sha1(b"pw-x-900")).unwrap().hibp, 0);
    let hibp_files = std::fs::read_dir(data.segments())
        .unwrap()
        .filter(|e| e.as_ref().unwrap().file_name().to_string_lossy().starts_with("hibp-"))
        .count();
    assert_eq!(hibp_files, 1);
}

#[test]
fn bad_lines_are_counted_with_their_place_and_ntlm_has_its_own_corpus() {
    let tmp = tempfile::tempdir().unwrap();
    let f = tmp.path().join("ntlm.txt");
    let good = encode_hex_upper(&ntlm(b"password"));
    let text = format!(
        "{good}:3\nnot a line\n{}:4\n{}:x\nZZ{}:1\n{}\n",
        &good[..31],
        encode_hex_upper(&ntlm(b"other")),
        &good[2..],
        "F".repeat(300)
    );
    std::fs::write(&f, text).unwrap();
    let data = DataDir::new(tmp.path().join("data"));
    data.init(Some(&tmp.path().join("data.key"))).unwrap();
    let s = import(&data, &f, true);
    assert_eq!(s.hashes, 1);
    let reasons: Vec<(&str, u64)> = s.rejected.iter().map(|(r, x)| (*r, x.count)).collect();
    assert_eq!(
        reasons,
        vec![
            ("bad count", 1),
            ("hash of the wrong length", 1),
            ("line too long", 1),
            ("no ':' separator", 1),
            ("not hexadecimal", 1)
        ]
    );
    assert_eq!(s.rejected["no ':' separator"].samples, vec![format!("{}:2", f.display())]);
    let store = Store::open(&data).unwrap();
    assert_eq!(store.password_counts(true, &ntlm(b"password")).unwrap().hibp, 3);
    assert_eq!(store.password_counts(false, &sha1(b"password")).unwrap().hibp, 0);

    // A file with nothing usable keeps the corpus that was there.
    let junk = tmp.path().join("junk.txt");
    std::fs::write(&junk, "hello\nworld\n").unwrap();
    assert!(import_pwned_passwords(&data, junk.to_str().unwrap(), true, 1 << 30, &AtomicU64::new(0)).is_err());
    assert_eq!(Store::open(&data).unwrap().password_counts(true, &ntlm(b"password")).unwrap().hibp, 3);
}
