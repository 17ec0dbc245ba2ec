//! Archives and folders (`Input::expand`): which members become inputs, how
//! they are named and read, and the limits against archive bombs. Every
//! archive is built here with the `zip`, `tar`, `flate2` and `sevenz-rust2`
//! writers.

use std::io::Cursor;
use std::path::Path;

use super::*;
use crate::{ArchiveLimits, IngestError, Input};

const PASSWORDS: &[u8] = b"URL: https://a.example.com/login\r\nUsername: ann@mail.co\r\nPassword: pw: 1\r\nApplication: Chrome\r\n===============\r\n";
const COMBO: &[u8] = b"bob@mail.co:hunter2\n";
const PNG: &[u8] = b"\x89PNG\r\n\x1a\n....";

fn zip_of(members: &[(&str, &[u8])]) -> Vec<u8> {
    let mut zip = zip::ZipWriter::new(Cursor::new(Vec::new()));
    let options =
        zip::write::SimpleFileOptions::default().compression_method(zip::CompressionMethod::Deflated);
    for (name, data) in members {
        if let Some(dir) = name.strip_suffix('/') {
            zip.add_directory(dir, options).expect("zip dir");
        } else {
            zip.start_file(*name, options).expect("zip entry");
            zip.write_all(data).expect("zip write");
        }
    }
    zip.finish().expect("zip finish").into_inner()
}

fn tar_of(members: &[(&str, &[u8])]) -> Vec<u8> {
    let mut tar = tar::Builder::new(Vec::new());
    for (name, data) in members {
        let mut header = tar::Header::new_gnu();
        header.set_size(data.len() as u64);
        header.set_mode(0o644);
        header.set_cksum();
        tar.append_data(&mut header, name, *data).expect("tar entry");
    }
    tar.into_inner().expect("tar finish")
}

fn gzip(data: &[u8]) -> Vec<u8> {
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gz.write_all(data).expect("gzip");
    gz.finish().expect("gzip")
}

fn write(dir: &Path, name: &str, data: &[u8]) -> String {
    let path = dir.join(name);
    std::fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
    std::fs::write(&path, data).expect("write");
    path.to_string_lossy().into_owned()
}

/// Every input of `path`: its name, format and records.
fn expand(path: &str, limits: ArchiveLimits) -> Result<Vec<(String, Format, Vec<Record>)>, IngestError> {
    let mut out = Vec::new();
    for input in Input::expand_with(path, limits)? {
        let name = input.name().to_owned();
        let progress = std::sync::atomic::AtomicU64::new(0);
        let mut records = Vec::new();
        let report = crate::read(
            input,
            None,
            &progress,
            |b| b.to_vec(),
            |b| {
                records.extend(b);
                Ok(())
            },
        )
        .expect("read member");
        out.push((name, report.format, records));
    }
    Ok(out)
}

fn stealer_record() -> Record {
    Record { website: Some("a.example.com".into()), ..e("ann@mail.co", Some(b"pw: 1")) }
}

#[test]
fn a_zipped_stealer_log_is_read_member_by_member() {
    let dir = tempfile::tempdir().expect("tempdir");
    let zip = zip_of(&[
        ("US[1A2B]/", b""),
        ("US[1A2B]/Passwords.txt", PASSWORDS),
        ("US[1A2B]/UserInformation.txt", b"\xef\xbb\xbfIP: 1.2.3.4\nCountry: US\n"),
        ("US[1A2B]/Cookies/Chrome_Default.txt", b".site.com\tTRUE\t/\tFALSE\t0\tsid\tx\n"),
        ("US[1A2B]/Screenshot.jpg", b"\xff\xd8\xff\xe0"),
        ("US[1A2B]/screen.dat", PNG),
        ("combo.txt", COMBO),
    ]);
    let path = write(dir.path(), "logs.zip", &zip);
    let got = expand(&path, ArchiveLimits::default()).expect("expand");
    assert_eq!(
        got,
        vec![
            (format!("{path}!US[1A2B]/Passwords.txt"), Format::Stealer, vec![stealer_record()]),
            (format!("{path}!combo.txt"), Format::Combo, vec![e("bob@mail.co", Some(b"hunter2"))]),
        ]
    );
}

#[test]
fn tar_tar_gz_7z_nested_archives_and_folders() {
    let dir = tempfile::tempdir().expect("tempdir");
    let inner = zip_of(&[("Passwords.txt", PASSWORDS)]);
    let tgz = gzip(&tar_of(&[("a/combo.txt", COMBO), ("a/inner.zip", &inner)]));
    let path = write(dir.path(), "in/dump.tar.gz", &tgz);
    write(dir.path(), "in/plain.tar", &tar_of(&[("x.txt", COMBO)]));
    write(dir.path(), "in/photo.png", PNG);
    write(dir.path(), "in/cookies/c.txt", COMBO);
    let seven_src = dir.path().join("seven");
    write(&seven_src, "log/Passwords.txt", PASSWORDS);
    sevenz_rust2::compress_to_path(&seven_src, dir.path().join("in/z.7z")).expect("7z");

    let root = dir.path().join("in").to_string_lossy().into_owned();
    let got = expand(&root, ArchiveLimits::default()).expect("expand");
    let names: Vec<(&str, Format, usize)> =
        got.iter().map(|(n, f, r)| (n.strip_prefix(&root).expect("under root"), *f, r.len())).collect();
    assert_eq!(
        names,
        vec![
            ("/dump.tar.gz!a/combo.txt", Format::Combo, 1),
            ("/dump.tar.gz!a/inner.zip!Passwords.txt", Format::Stealer, 1),
            ("/plain.tar!x.txt", Format::Combo, 1),
            ("/z.7z!log/Passwords.txt", Format::Stealer, 1),
        ]
    );
    assert_eq!(got[1].2, vec![stealer_record()]);
    // A plain file stays itself, and `-` stays stdin.
    let plain = write(dir.path(), "c.txt", COMBO);
    assert_eq!(expand(&plain, ArchiveLimits::default()).expect("plain")[0].0, plain);
    assert_eq!(Input::expand("-").expect("stdin")[0].name(), "<stdin>");
    assert!(path.ends_with("dump.tar.gz"));
}

#[test]
fn archive_bombs_are_clear_errors() {
    let dir = tempfile::tempdir().expect("tempdir");
    let zeros = vec![b'0'; 4 << 20];
    let bomb = write(dir.path(), "bomb.zip", &zip_of(&[("big.txt", &zeros)]));
    let small = ArchiveLimits { ratio_floor: 1 << 20, ..ArchiveLimits::default() };
    let cases: Vec<(String, ArchiveLimits, &str)> = vec![
        (bomb.clone(), small, "!big.txt: expands more than 1000x"),
        (
            bomb.clone(),
            ArchiveLimits { max_total: 1 << 20, ..ArchiveLimits::default() },
            "!big.txt: archives expand to more than 1048576 bytes",
        ),
        (
            write(dir.path(), "many.zip", &zip_of(&[("a.txt", COMBO), ("b.txt", COMBO), ("c.txt", COMBO)])),
            ArchiveLimits { max_entries: 2, ..ArchiveLimits::default() },
            "!c.txt: more than 2 entries",
        ),
        (
            write(
                dir.path(),
                "deep.zip",
                &zip_of(&[("l2.zip", &zip_of(&[("l3.zip", &zip_of(&[("x.txt", COMBO)]))]))]),
            ),
            ArchiveLimits { max_depth: 2, ..ArchiveLimits::default() },
            "deep.zip!l2.zip!l3.zip: archives nested more than 2 deep",
        ),
        (write(dir.path(), "broken.zip", b"PK\x03\x04garbage"), ArchiveLimits::default(), "broken.zip: "),
    ];
    for (path, limits, want) in cases {
        let err = expand(&path, limits).expect_err("must fail").to_string();
        assert!(err.contains(want), "{path}: {err}");
    }
    // The gzip stream of a tar.gz bomb is bounded as a whole.
    let tgz = write(dir.path(), "bomb.tar.gz", &gzip(&tar_of(&[("big.txt", &zeros)])));
    let err = expand(&tgz, ArchiveLimits { max_ratio: 100, ..small }).expect_err("must fail").to_string();
    assert!(err.contains("!big.txt: expands more than 100x"), "{err}");
}

/// A member that is not a dump is still decompressed to be skipped in a tar
/// stream: its bytes count against the limits like any other.
#[test]
fn skipped_members_count_toward_the_limits() {
    let dir = tempfile::tempdir().expect("tempdir");
    let zeros = vec![b'0'; 4 << 20];
    let members: &[(&str, &[u8])] = &[("Cookies/Chrome.txt", &zeros), ("combo.txt", COMBO)];
    let tgz = write(dir.path(), "skipped.tar.gz", &gzip(&tar_of(members)));
    let small = ArchiveLimits { ratio_floor: 1 << 20, max_ratio: 100, ..ArchiveLimits::default() };
    let err = expand(&tgz, small).expect_err("must fail").to_string();
    assert!(err.contains("!Cookies/Chrome.txt: expands more than 100x"), "{err}");
    let tar = write(dir.path(), "skipped.tar", &tar_of(members));
    let err = expand(&tar, ArchiveLimits { max_total: 1 << 20, ..ArchiveLimits::default() })
        .expect_err("must fail")
        .to_string();
    assert!(err.contains("!Cookies/Chrome.txt: archives expand to more than"), "{err}");
    // Within the limits, the skipped member is skipped and the rest is read.
    let found = expand(&tgz, ArchiveLimits::default()).expect("expands");
    assert_eq!(found.len(), 1);
    assert!(found[0].0.ends_with("!combo.txt"), "{found:?}");
}

/// A folder walk follows no symbolic link out of the folder (a link to the
/// key ring must not be ingested); links inside it are followed once.
#[test]
fn folder_walks_stay_inside_the_folder() {
    let dir = tempfile::tempdir().expect("tempdir");
    let secret = write(dir.path(), "outside/keys.txt", b"carol@mail.co:ring-secret\n");
    let root = dir.path().join("dump");
    write(&root, "a/combo.txt", COMBO);
    std::os::unix::fs::symlink(&secret, root.join("keys.txt")).expect("link");
    std::os::unix::fs::symlink(dir.path().join("outside"), root.join("outside")).expect("link");
    std::os::unix::fs::symlink(root.join("a/combo.txt"), root.join("b.txt")).expect("link");
    std::os::unix::fs::symlink(&root, root.join("a/loop")).expect("link");
    let found = expand(&root.to_string_lossy(), ArchiveLimits::default()).expect("expands");
    let names: Vec<&str> = found.iter().map(|(n, _, _)| n.rsplit('/').next().unwrap_or(n)).collect();
    assert_eq!(names, ["combo.txt", "b.txt"], "{found:?}");
    assert!(found.iter().all(|(_, _, records)| records.iter().all(|r| r.account.value != "carol@mail.co")));
}
