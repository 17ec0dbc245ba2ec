//! What a new user meets first: error lines, blank input lines, plurals, aligned
//! tables, the hints of a Pwned Passwords import that found nothing, and help
//! texts that say what the README says.

use std::path::Path;
use std::process::Command;

mod support;

use support::{run, Run};

fn leakwatch(data: &Path, args: &[&str], stdin: Option<&[u8]>) -> Run {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_leakwatch"));
    cmd.arg("--data").arg(data).args(args);
    cmd.env("LEAKWATCH_KEY_FILE", data.with_extension("key"));
    run(cmd, stdin)
}

/// A store with one breach: two addresses on one domain, one sharing a password.
fn store(tmp: &Path) -> std::path::PathBuf {
    let data = tmp.join("data");
    let dump = tmp.join("dump.txt");
    std::fs::write(
        &dump,
        "alice@corp.example:hunter2\nbob@other.example:hunter2\ncarol@other.example:once1\n",
    )
    .unwrap();
    leakwatch(&data, &["ingest", "--breach", "Acme", dump.to_str().unwrap()], None).ok("ingest");
    data
}

fn ntlm(password: &str) -> String {
    leakwatch_types::encode_hex_upper(&leakwatch_types::PasswordHashes::of(password.as_bytes()).ntlm)
}

#[test]
fn a_missing_file_is_named_once_with_its_cause_once() {
    let tmp = tempfile::tempdir().unwrap();
    let r = leakwatch(&tmp.path().join("data"), &["ingest", "--breach", "X", "/nonexistent"], None);
    assert_eq!(r.code, 2);
    assert_eq!(r.stderr, "leakwatch: error: /nonexistent: No such file or directory (os error 2)\n");
}

#[test]
fn blank_lines_are_reported_on_their_own_line_in_every_search() {
    let tmp = tempfile::tempdir().unwrap();
    let data = store(tmp.path());
    let hashes = format!("{}\n\n{}\n", ntlm("hunter2"), ntlm("never-used-anywhere"));
    let r = leakwatch(&data, &["search", "password", "--hash", "ntlm", "-"], Some(hashes.as_bytes()));
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(r.stderr, "");
    assert_eq!(
        r.stdout,
        format!(
            "{}  seen 2 times\n  not a password or hash (blank line)\n{}  not found\n",
            ntlm("hunter2"),
            ntlm("never-used-anywhere")
        )
    );
    let r = leakwatch(&data, &["search", "password", "--json", "-"], Some(b"once1\n \n"));
    assert_eq!(r.code, 0, "{}", r.stderr);
    let lines = r.json_lines();
    assert_eq!(lines[0]["count"], 1);
    assert_eq!(lines[1], serde_json::json!({"hash": "", "count": 0, "error": "blank line"}));
    // As `search email` and `search account` report theirs.
    let r = leakwatch(&data, &["search", "email", "-"], Some(b"alice@corp.example\n\n"));
    assert_eq!(
        (r.code, r.stdout.as_str()),
        (0, "alice@corp.example  Acme\n  not an email address (blank line)\n")
    );
    let r = leakwatch(&data, &["search", "email", "--json", "-"], Some(b"\r\n"));
    assert_eq!(
        (r.code, r.stdout.as_str()),
        (1, "{\"account\":\"\",\"breaches\":[],\"error\":\"blank line\"}\n")
    );
    let r = leakwatch(&data, &["search", "account", "--json", "-"], Some(b"\n"));
    assert_eq!(
        (r.code, r.stdout.as_str()),
        (1, "{\"account\":\"\",\"breaches\":[],\"error\":\"blank line\"}\n")
    );
}

#[test]
fn counts_of_one_are_singular() {
    let tmp = tempfile::tempdir().unwrap();
    let data = store(tmp.path());
    let r = leakwatch(&data, &["search", "password", "once1", "hunter2"], None).ok("search");
    let seen: Vec<&str> = r.stdout.lines().map(|l| l.split("  ").nth(1).unwrap()).collect();
    assert_eq!(seen, ["seen 1 time", "seen 2 times"]);
    let r = leakwatch(&data, &["search", "password", "--sources", "once1"], None).ok("search");
    assert!(r.stdout.ends_with("  seen 1 time (1 in your dumps, 0 in Pwned Passwords)\n"), "{}", r.stdout);
    let r = leakwatch(&data, &["search", "domain", "corp.example"], None).ok("domain");
    assert!(r.stdout.ends_with("\n1 exposed address on corp.example\n"), "{}", r.stdout);
    let r = leakwatch(&data, &["search", "domain", "other.example"], None).ok("domain");
    assert!(r.stdout.ends_with("\n2 exposed addresses on other.example\n"), "{}", r.stdout);
}

#[test]
fn an_ingest_of_one_line_speaks_in_the_singular() {
    let tmp = tempfile::tempdir().unwrap();
    let dump = tmp.path().join("one.txt");
    std::fs::write(&dump, "dave@corp.example:secret1\nnot an address:x\n").unwrap();
    let d = dump.to_str().unwrap();
    let r = leakwatch(&tmp.path().join("data"), &["ingest", "--breach", "One", d], None).ok("ingest");
    assert_eq!(
        r.stdout,
        format!(
            "{d}: combo (2 lines): 1 accepted, 1 rejected\n\
             {:>12}  not an email address (e.g. line 2)\n\
             breach One (new): 1 new account, 1 new credential; now 1 account [Email addresses, Passwords]\n",
            1
        )
    );
}

/// Where each column of `header` starts (columns named in `names`).
fn starts(header: &str, names: &[&str]) -> Vec<usize> {
    names.iter().map(|n| header.find(n).unwrap_or_else(|| panic!("{n} in {header:?}"))).collect()
}

#[test]
fn stats_and_apikey_list_columns_line_up() {
    let tmp = tempfile::tempdir().unwrap();
    let data = store(tmp.path());
    let r = leakwatch(&data, &["stats"], None).ok("stats");
    let table: Vec<&str> = r.stdout.lines().skip_while(|l| !l.starts_with("INDEX")).collect();
    assert!(table.len() > 10, "{}", r.stdout);
    // Numbers are right-aligned: every value ends where its heading does.
    let ends: Vec<usize> = ["SEGMENTS", "ENTRIES", "BYTES", "B/ENTRY"]
        .iter()
        .map(|h| table[0].find(h).unwrap() + h.len())
        .collect();
    for row in &table[1..] {
        let mut at = 0;
        let mut row_ends = Vec::new();
        for word in row.split_whitespace() {
            let start = at + row[at..].find(word).unwrap();
            at = start + word.len();
            row_ends.push(at);
        }
        assert_eq!(row_ends[1..], ends[..], "{row:?} under {:?}", table[0]);
    }

    for (name, role, domains) in [
        ("a-rather-long-key-name-for-the-siem", "analyst", vec![]),
        ("acme", "domain", vec!["--domain", "corp.example"]),
    ] {
        let mut args = vec!["apikey", "create", "--name", name, "--role", role];
        args.extend(domains);
        leakwatch(&data, &args, None).ok("create");
    }
    let r = leakwatch(&data, &["apikey", "list"], None).ok("list");
    let lines: Vec<&str> = r.stdout.lines().collect();
    let columns = starts(lines[0], &["ROLE", "KEY", "RATE LIMIT", "CREATED", "REVOKED", "DOMAINS"]);
    for row in &lines[1..] {
        // The last cell may be empty (a key without domains).
        for &c in columns.iter().filter(|&&c| c < row.len()) {
            let (before, at) = (row.as_bytes()[c - 1], row.as_bytes()[c]);
            assert!(before == b' ' && at != b' ', "column at {c} of {row:?} under {:?}", lines[0]);
        }
    }
}

#[test]
fn an_import_that_finds_no_hash_says_what_it_found_and_expected() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let sha1 = |i: u32| leakwatch_types::encode_hex_upper(&leakwatch_types::sha1(&i.to_le_bytes()));
    let suffixes: String = (0..20).map(|i| format!("{}:{}\r\n", &sha1(i)[5..], i + 1)).collect();
    let path = tmp.path().join("00000.body");
    std::fs::write(&path, suffixes).unwrap();
    let p = path.to_str().unwrap();
    let r = leakwatch(&data, &["import", "pwned-passwords", p], None);
    assert_eq!(r.code, 2);
    assert_eq!(
        r.stderr,
        format!(
            "leakwatch: error: import of Pwned Passwords: {p}: no Pwned Passwords lines found (20 lines read; \
             expected `HASH:COUNT` lines with 40-hex SHA-1 hashes): lines hold 35-hex suffixes: this looks like per-prefix range bodies; \
             name the files PREFIX.txt in a folder and import the folder; the current corpus is kept\n"
        )
    );

    let full: String = (0..20).map(|i| format!("{}:{}\n", sha1(i), i + 1)).collect();
    let path = tmp.path().join("pwned.txt");
    std::fs::write(&path, &full).unwrap();
    let p = path.to_str().unwrap();
    let r = leakwatch(&data, &["import", "pwned-passwords", "--ntlm", p], None);
    assert_eq!(r.code, 2);
    assert_eq!(
        r.stderr,
        format!(
            "leakwatch: error: import of Pwned Passwords: {p}: no Pwned Passwords lines found (20 lines read; \
             expected `HASH:COUNT` lines with 32-hex NTLM hashes): these are 40-hex SHA-1 hashes; drop --ntlm; the current corpus is kept\n"
        )
    );

    // The same file inside a 7z, as HIBP published its downloads.
    let src = tmp.path().join("7z-src");
    std::fs::create_dir_all(&src).unwrap();
    std::fs::write(src.join("pwned-passwords-sha1.txt"), &full).unwrap();
    let archive = tmp.path().join("pwned.7z");
    sevenz_rust2::compress_to_path(&src, &archive).unwrap();
    leakwatch(&data, &["import", "pwned-passwords", archive.to_str().unwrap()], None).ok("import 7z");
    let r =
        leakwatch(&data, &["search", "password", "--hash", "sha1", "--json", &sha1(7)], None).ok("search");
    assert_eq!(r.json_lines()[0]["count"], 8);

    // One line, one hash: said in the singular.
    let one = tmp.path().join("one.txt");
    std::fs::write(&one, format!("{}:3\n", sha1(99))).unwrap();
    let r = leakwatch(&data, &["import", "pwned-passwords", one.to_str().unwrap()], None).ok("import one");
    assert!(
        r.stdout.starts_with(&format!("{}: 1 line, 1 SHA-1 hash imported (", one.display())),
        "{}",
        r.stdout
    );
    assert!(r.stdout.ends_with("\nreplaced the previous import (20 hashes)\n"), "{}", r.stdout);
}

#[test]
fn help_lists_what_the_readme_says() {
    let help = |args: &[&str]| {
        let out = Command::new(env!("CARGO_BIN_EXE_leakwatch")).args(args).arg("--help").output().unwrap();
        assert!(out.status.success());
        String::from_utf8(out.stdout).unwrap()
    };
    let ingest = help(&["ingest"]);
    for word in [
        "combo",
        "CSV/TSV",
        "NDJSON",
        "mysqldump/MariaDB",
        "pg_dump",
        "Passwords.txt",
        "ULP",
        "zip",
        "tar.gz",
        "7z",
        "folder",
        "archive",
        "gzip",
        "zstd",
        "`-`",
    ] {
        assert!(ingest.contains(word), "ingest --help lacks {word:?}:\n{ingest}");
    }
    let import = help(&["import", "pwned-passwords"]);
    for word in ["7z", "PREFIX.txt", "gzip/zstd", "--ntlm"] {
        assert!(import.contains(word), "import pwned-passwords --help lacks {word:?}:\n{import}");
    }
    let search = help(&["search"]);
    assert!(search.contains("account"), "{search}");
    let breach = help(&["breach"]);
    assert!(breach.contains("remove") && breach.contains("set"), "{breach}");
}
