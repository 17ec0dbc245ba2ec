//! Toxic data at rest (issue "a stolen data directory must reveal no address and
//! no password"): after ingesting a generated scenario and a stealer log, no
//! address, user name, alias, account domain or plaintext password can be found
//! in any file under the data directory, in raw bytes or inside any compressed
//! block; every answer is still the expected one, after a `rekey` too; and a
//! wrong or missing key is a clear error, never a garbage answer.
//!
//! What may stay: the breach catalog (names, titles, the breaches' own public
//! domains, data classes), which is public breach metadata, and password digests
//! in the public count corpora (like Pwned Passwords).

use std::collections::BTreeSet;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::Command;

use leakwatch_gen::Scenario;
use serde_json::{json, Value};

mod support;

use support::{run, Run};

const SEED: u64 = 20261123;

fn leakwatch(data: &Path, key_file: &Path, args: &[&str], stdin: Option<&[u8]>) -> Run {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_leakwatch"));
    cmd.arg("--data").arg(data).args(args).env("LEAKWATCH_KEY_FILE", key_file);
    cmd.env_remove("LEAKWATCH_KEY").env_remove("LEAKWATCH_KEY_COMMAND");
    run(cmd, stdin)
}

/// A stealer log in ULP lines: victims, the sites they logged in to, passwords.
const STEALER: &[(&str, &str, &str)] = &[
    ("https://shop.stealer-site.example/login", "victim.one@corpmail.example", "Stealer-Pass-One!"),
    ("https://bank.stealer-site.example:8443/auth", "victim.two@corpmail.example", "Stealer-Pass-Two?"),
    ("forum.stealer-site.example", "victim.three@privmail.example", "Stealer-Pass-Three#"),
];

fn stealer_file(dir: &Path) -> PathBuf {
    let path = dir.join("stealer.txt");
    let text: String = STEALER.iter().map(|(url, login, pass)| format!("{url}:{login}:{pass}\n")).collect();
    std::fs::write(&path, text).expect("stealer log written");
    path
}

/// Every answer the scenario's expected values cover, plus the stealer lookups.
fn answers(data: &Path, key: &Path, scenario: &Scenario) -> Value {
    let exp = scenario.expected();
    let input: String = exp.emails.keys().chain(&exp.absent_emails).map(|e| format!("{e}\n")).collect();
    let emails = leakwatch(data, key, &["search", "email", "--json", "-"], Some(input.as_bytes()));
    assert!(emails.code <= 1, "search email: {}", emails.stderr);
    let mut domains = serde_json::Map::new();
    for domain in exp.domains.keys() {
        let out = leakwatch(data, key, &["search", "domain", "--json", domain], None);
        assert!(out.code <= 1, "search domain: {}", out.stderr);
        domains.insert(domain.clone(), serde_json::from_str(out.stdout.trim()).expect("domain JSON"));
    }
    let input: String = exp.sha1.keys().map(|h| format!("{h}\n")).collect();
    let sha1 = leakwatch(
        data,
        key,
        &["search", "password", "--hash", "sha1", "--json", "-"],
        Some(input.as_bytes()),
    )
    .ok("search sha1");
    let input: String = exp.ntlm.keys().map(|h| format!("{h}\n")).collect();
    let ntlm = leakwatch(
        data,
        key,
        &["search", "password", "--hash", "ntlm", "--json", "-"],
        Some(input.as_bytes()),
    )
    .ok("search ntlm");
    let lines =
        |s: &str| s.lines().map(|l| serde_json::from_str::<Value>(l).expect("JSON line")).collect::<Vec<_>>();
    json!({
        "emails": lines(&emails.stdout),
        "domains": domains,
        "sha1": lines(&sha1.stdout),
        "ntlm": lines(&ntlm.stdout),
    })
}

fn check_expected(got: &Value, scenario: &Scenario) {
    let exp = scenario.expected();
    let want_emails: Vec<Value> = exp
        .emails
        .iter()
        .map(|(e, b)| json!({"account": e, "breaches": b}))
        .chain(exp.absent_emails.iter().map(|e| json!({"account": e, "breaches": []})))
        .collect();
    assert_eq!(got["emails"].as_array().unwrap(), &want_emails, "search email");
    for (domain, aliases) in &exp.domains {
        assert_eq!(got["domains"][domain], json!(aliases), "search domain {domain}");
    }
    let want: Vec<Value> = exp.sha1.iter().map(|(h, c)| json!({"hash": h, "count": c})).collect();
    assert_eq!(got["sha1"].as_array().unwrap(), &want, "sha1 counts");
    let want: Vec<Value> = exp.ntlm.iter().map(|(h, c)| json!({"hash": h, "count": c})).collect();
    assert_eq!(got["ntlm"].as_array().unwrap(), &want, "ntlm counts");
}

/// What must never be found under the data directory.
fn needles(scenario: &Scenario, public: &str) -> BTreeSet<Vec<u8>> {
    let exp = scenario.expected();
    let mut out: BTreeSet<Vec<u8>> = BTreeSet::new();
    let mut add = |s: &[u8]| {
        // Shorter strings turn up by chance in random bytes; public breach
        // metadata may contain anything.
        if s.len() >= 6 && !public.as_bytes().windows(s.len()).any(|w| w.eq_ignore_ascii_case(s)) {
            out.insert(s.to_vec());
        }
    };
    for email in exp.emails.keys() {
        add(email.as_bytes());
        let (alias, domain) = email.rsplit_once('@').expect("an address");
        add(alias.as_bytes());
        add(domain.as_bytes());
    }
    for (domain, aliases) in &exp.domains {
        add(domain.as_bytes());
        for alias in aliases.keys() {
            add(alias.as_bytes());
        }
    }
    for person in &scenario.population.people {
        add(person.username.as_bytes());
        add(person.username.to_lowercase().as_bytes());
        for password in person.passwords() {
            add(password);
        }
    }
    for (url, login, password) in STEALER {
        add(login.as_bytes());
        add(password.as_bytes());
        add(login.rsplit_once('@').unwrap().0.as_bytes());
        add(login.rsplit_once('@').unwrap().1.as_bytes());
        let host = url.split("://").last().unwrap().split(['/', ':']).next().unwrap();
        add(host.as_bytes());
    }
    out
}

/// Every file's bytes, and the decompressed bytes of anything gzip or zstd.
fn contents(dir: &Path, out: &mut Vec<(PathBuf, Vec<u8>)>) {
    for entry in std::fs::read_dir(dir).expect("readable") {
        let path = entry.expect("entry").path();
        if path.is_dir() {
            contents(&path, out);
            continue;
        }
        let bytes = std::fs::read(&path).expect("readable file");
        let mut inflated = Vec::new();
        if bytes.starts_with(&[0x1f, 0x8b]) {
            let _ = flate2::read::MultiGzDecoder::new(&bytes[..]).read_to_end(&mut inflated);
        } else if bytes.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]) {
            let _ =
                zstd::stream::read::Decoder::new(&bytes[..]).and_then(|mut d| d.read_to_end(&mut inflated));
        }
        if !inflated.is_empty() {
            out.push((path.with_extension("decompressed"), inflated));
        }
        out.push((path, bytes));
    }
}

#[track_caller]
fn assert_nothing_in_clear(data: &Path, needles: &BTreeSet<Vec<u8>>) {
    let finder = aho_corasick::AhoCorasick::builder()
        .ascii_case_insensitive(true)
        .build(needles.iter())
        .expect("patterns build");
    let needles: Vec<&Vec<u8>> = needles.iter().collect();
    let mut files = Vec::new();
    contents(data, &mut files);
    assert!(files.iter().any(|(p, _)| p.to_string_lossy().contains("domains-")), "the scan sees segments");
    let mut found = Vec::new();
    for (path, bytes) in &files {
        for m in finder.find_iter(bytes).take(3) {
            found.push(format!(
                "{}: {:?}",
                path.display(),
                String::from_utf8_lossy(needles[m.pattern().as_usize()])
            ));
        }
    }
    assert!(found.is_empty(), "clear values under the data directory:\n{}", found.join("\n"));
}

#[test]
fn a_stolen_data_directory_reveals_no_address_and_no_password() {
    let tmp = tempfile::tempdir().expect("tmp");
    let root = tmp.path();
    let data = root.join("data");
    let key = root.join("keys").join("ring.key");
    let scenario = Scenario::small(SEED);
    let breaches = scenario.write_all(&root.join("dumps")).expect("dumps written");

    leakwatch(&data, &key, &["init"], None).ok("init");
    assert!(!key.starts_with(&data));
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&key).expect("the key file exists").permissions().mode();
        assert_eq!(mode & 0o777, 0o600, "the key file is private");
    }
    for breach in &breaches {
        let mut args = vec!["ingest".to_string(), "--breach".into(), breach.name.clone()];
        if !breach.domain.is_empty() {
            args.extend(["--domain".into(), breach.domain.clone()]);
        }
        if breach.name == "PhotoVault2015" {
            // Small runs spill to tmp/: they must hold nothing in clear either.
            args.extend(["--memory-budget".into(), "1MiB".into()]);
        }
        args.extend(breach.files.iter().map(|f| f.display().to_string()));
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        leakwatch(&data, &key, &args, None).ok(&format!("ingest {}", breach.name));
    }
    let stealer = stealer_file(root);
    leakwatch(
        &data,
        &key,
        &["ingest", "--breach", "StealerLogs", "--format", "stealer", stealer.to_str().unwrap()],
        None,
    )
    .ok("ingest stealer log");

    let before = answers(&data, &key, &scenario);
    check_expected(&before, &scenario);
    let sites = leakwatch(&data, &key, &["search", "email", "--json", "victim.one@corpmail.example"], None)
        .ok("stealer account");
    assert!(sites.stdout.contains("StealerLogs"), "{}", sites.stdout);

    let manifest = std::fs::read_to_string(data.join("MANIFEST")).expect("a manifest");
    let public: String = {
        let m: Value = serde_json::from_str(&manifest).expect("JSON");
        // The catalog's schema is this program's text (its comments speak of
        // secrets), not anything it stored.
        let catalog =
            rusqlite::Connection::open(data.join("catalog.sqlite")).expect("the ingest log's catalog");
        let schema: String = catalog
            .query_row("SELECT group_concat(sql, ' ') FROM sqlite_master", [], |r| r.get(0))
            .expect("the catalog's schema");
        format!("{} {schema}", m["breaches"])
    };
    let needles = needles(&scenario, &public);
    assert!(needles.len() > 1000, "a real check: {} values", needles.len());
    assert_nothing_in_clear(&data, &needles);

    // Rotation: same answers, nothing in clear, the old key is gone from the ring.
    let old_ring = std::fs::read_to_string(&key).expect("ring");
    leakwatch(&data, &key, &["rekey"], None).ok("rekey");
    let new_ring = std::fs::read_to_string(&key).expect("ring");
    assert_ne!(old_ring, new_ring);
    assert_eq!(answers(&data, &key, &scenario), before, "answers after rekey");
    assert_nothing_in_clear(&data, &needles);

    // The old ring (a stolen backup of the key) no longer opens the directory,
    // and neither does a missing one: clear errors, exit 2.
    let stale = root.join("stale.key");
    std::fs::write(&stale, old_ring).expect("written");
    // As written (mode 0644 under the usual umask), others could read it: refused.
    let open = leakwatch(&data, &stale, &["search", "email", "victim.one@corpmail.example"], None);
    assert_eq!(open.code, 2, "{}", open.stderr);
    assert!(open.stderr.contains("open to others") && open.stderr.contains("chmod 600"), "{}", open.stderr);
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&stale, std::fs::Permissions::from_mode(0o600)).expect("chmod");
    let wrong = leakwatch(&data, &stale, &["search", "email", "victim.one@corpmail.example"], None);
    assert_eq!(wrong.code, 2, "{}", wrong.stderr);
    assert!(wrong.stderr.contains("wrong data key") && wrong.stderr.lines().count() == 1, "{}", wrong.stderr);
    assert!(wrong.stdout.is_empty());
    let missing =
        leakwatch(&data, &root.join("nowhere.key"), &["search", "domain", "corpmail.example"], None);
    assert_eq!(missing.code, 2, "{}", missing.stderr);
    assert!(missing.stderr.contains("is missing"), "{}", missing.stderr);
    let ingest = leakwatch(&data, &stale, &["ingest", "--breach", "More", stealer.to_str().unwrap()], None);
    assert_eq!(ingest.code, 2, "a writer refuses another key too: {}", ingest.stderr);
}

/// Copies a directory tree.
fn copy_tree(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).expect("created");
    for entry in std::fs::read_dir(from).expect("fixture") {
        let path = entry.expect("entry").path();
        let target = to.join(path.file_name().expect("a name"));
        if path.is_dir() {
            copy_tree(&path, &target);
        } else {
            std::fs::copy(&path, &target).expect("copied");
        }
    }
}

/// A frozen data directory written by the build before key rings (MANIFEST
/// format 1: `index.key` inside, aliases, websites and digests in clear) is read
/// as it is, then migrated by its next writer: the key moves out, every keyed
/// segment is rewritten sealed, and every answer stays the same.
#[test]
fn a_directory_written_before_key_rings_is_read_then_migrated() {
    let fixture = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/format1");
    let tmp = tempfile::tempdir().expect("tmp");
    let data = tmp.path().join("data");
    copy_tree(&fixture, &data);
    let key = tmp.path().join("keys").join("ring.key");
    let ask = |data: &Path| {
        let emails = leakwatch(
            data,
            &key,
            &["search", "email", "--json", "alice@corp.example", "victim@stealmail.example"],
            None,
        )
        .ok("search email");
        let domain =
            leakwatch(data, &key, &["search", "domain", "--json", "corp.example"], None).ok("domain");
        let password =
            leakwatch(data, &key, &["search", "password", "--json", "hunter2secret"], None).ok("pw");
        (emails.stdout, domain.stdout, password.stdout)
    };
    let before = ask(&data);
    assert!(before.0.contains(r#""breaches":["Legacy"]"#), "{}", before.0);
    assert!(before.1.contains(r#""alice":["Legacy"]"#), "{}", before.1);
    assert!(before.2.contains(r#""count":1"#), "{}", before.2);
    assert!(data.join("index.key").exists(), "reading does not migrate");

    let more = tmp.path().join("more.txt");
    std::fs::write(&more, "dave@corp.example:another-secret-99\n").expect("written");
    let ingest =
        leakwatch(&data, &key, &["ingest", "--breach", "Later", more.to_str().unwrap()], None).ok("ingest");
    assert!(ingest.stderr.contains("moved the index key"), "{}", ingest.stderr);
    assert!(!data.join("index.key").exists(), "the key left the data directory");
    assert!(key.exists());
    let manifest: Value = serde_json::from_slice(&std::fs::read(data.join("MANIFEST")).unwrap()).unwrap();
    assert_eq!(manifest["format"], 2);

    let after = ask(&data);
    assert_eq!((&after.0, &after.2), (&before.0, &before.2), "answers after migration");
    assert!(
        after.1.contains(r#""alice":["Legacy"]"#) && after.1.contains(r#""dave":["Later"]"#),
        "{}",
        after.1
    );
    let needles: BTreeSet<Vec<u8>> = [
        "alice@corp.example",
        "corp.example",
        "victim@stealmail.example",
        "stealmail.example",
        "portal.stealer-site.example",
        "hunter2secret",
        "password123",
        "stealer-secret-1",
        "another-secret-99",
    ]
    .iter()
    .map(|s| s.as_bytes().to_vec())
    .collect();
    assert_nothing_in_clear(&data, &needles);
}
