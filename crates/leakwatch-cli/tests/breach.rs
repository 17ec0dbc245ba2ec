//! `leakwatch breach remove|set` and `search account`: a removed breach leaves
//! every answer as a store that never ingested it gives (byte for byte), also
//! when compaction had merged it with another breach; edits show in `breaches`;
//! both are audited.

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

mod support;

use support::{run, Run};

fn leakwatch_with_key(data: &Path, key: &Path, args: &[&str], stdin: Option<&[u8]>) -> Run {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_leakwatch"));
    cmd.arg("--data").arg(data).args(args);
    cmd.env("LEAKWATCH_KEY_FILE", key);
    run(cmd, stdin)
}

/// Two breaches that share addresses, user names, passwords, domains and a
/// stealer pair's website, so that nothing of one is told apart by luck.
const ALPHA: &str = "alice@corp.example:hunter2\nbob@corp.example:pass1\ncarol@gmail.com:hunter2\n";
const ALPHA_USERS: &str = "darkuser99:secret7\n+61412345678:pin1234\n";
const BETA: &str = "alice@corp.example:hunter2\nbob@corp.example:other9\nerin@corp.example:pass1\n";
const BETA_USERS: &str = "darkuser99:secret7\nnewbie42:hunter2\n";
const ALPHA_ULP: &str = "https://shop.example.net/login:alice@corp.example:shoppw1\n";
const BETA_ULP: &str = "https://shop.example.net/login:erin@corp.example:shoppw2\n\
                        https://mail.example.org/:alice@corp.example:hunter2\n";

struct Dirs {
    _tmp: tempfile::TempDir,
    root: PathBuf,
}

impl Dirs {
    fn new() -> Dirs {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path().to_owned();
        Dirs { _tmp: tmp, root }
    }

    fn file(&self, name: &str, text: &str) -> String {
        let path = self.root.join(name);
        std::fs::write(&path, text).unwrap();
        path.display().to_string()
    }
}

/// Every answer the CLI gives about the store, as printed.
fn answers(data: &Path, key: &Path, stats: bool) -> Vec<(String, i32, String)> {
    let emails = ["alice@corp.example", "bob@corp.example", "carol@gmail.com", "erin@corp.example"];
    let accounts = ["darkuser99", "newbie42", "+61412345678", "61412345678"];
    let passwords = ["hunter2", "pass1", "other9", "secret7", "pin1234", "shoppw1", "shoppw2"];
    let mut queries: Vec<Vec<&str>> = Vec::new();
    for json in [false, true] {
        let j = if json { vec!["--json"] } else { vec![] };
        queries.push([&["search", "email"][..], &j, &emails].concat());
        queries.push([&["search", "account"][..], &j, &accounts].concat());
        queries.push([&["search", "password"][..], &j, &["--sources"], &passwords].concat());
        queries.push([&["search", "domain"][..], &j, &["corp.example"]].concat());
        queries.push([&["search", "domain"][..], &j, &["gmail.com"]].concat());
        queries.push([&["breaches"][..], &j].concat());
    }
    let hashes = |ntlm: bool| -> Vec<String> {
        passwords
            .iter()
            .map(|p| {
                let h = leakwatch_types::PasswordHashes::of(p.as_bytes());
                if ntlm {
                    leakwatch_types::encode_hex_upper(&h.ntlm)
                } else {
                    leakwatch_types::encode_hex_upper(&h.sha1)
                }
            })
            .collect()
    };
    let (sha1, ntlm) = (hashes(false), hashes(true));
    let sha1: Vec<&str> = sha1.iter().map(String::as_str).collect();
    let ntlm: Vec<&str> = ntlm.iter().map(String::as_str).collect();
    queries.push([&["search", "password", "--json", "--hash", "sha1"][..], &sha1].concat());
    queries.push([&["search", "password", "--json", "--hash", "ntlm"][..], &ntlm].concat());
    if stats {
        queries.push(vec!["stats"]);
    }
    let mut out: Vec<(String, i32, String)> = queries
        .iter()
        .map(|q| {
            let r = leakwatch_with_key(data, key, q, None);
            assert!(r.code <= 1, "{q:?}: exit {}: {}", r.code, r.stderr);
            (q.join(" "), r.code, r.stdout)
        })
        .collect();
    // `stats --json` less the generation, which counts publications.
    let r = leakwatch_with_key(data, key, &["stats", "--json"], None).ok("stats");
    let mut v: Value = serde_json::from_str(&r.stdout).unwrap();
    v.as_object_mut().unwrap().remove("generation");
    if !stats {
        // Segment counts and sizes depend on how the segments were merged, and
        // so do the entries of the count kinds (a hash in two segments is two).
        // The totals are sums derived from the count segments, made or not
        // depending on the store's history as well.
        v["kinds"].as_object_mut().unwrap().retain(|kind, _| !kind.ends_with("-totals"));
        for k in v["kinds"].as_object_mut().unwrap().values_mut() {
            k.as_object_mut().unwrap().retain(|f, _| f == "distinct_keys");
        }
        v.as_object_mut().unwrap().retain(|f, _| f != "corpus_bytes" && f != "bytes_per_sha1");
    }
    out.push(("stats --json".into(), 0, v.to_string()));
    out
}

fn assert_same(got: &[(String, i32, String)], want: &[(String, i32, String)]) {
    assert_eq!(got.len(), want.len());
    for (g, w) in got.iter().zip(want) {
        assert_eq!(g, w, "`{}` answers differently", w.0);
    }
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).unwrap();
        }
    }
}

#[test]
fn a_removed_breach_leaves_the_answers_of_a_store_that_never_had_it() {
    let d = Dirs::new();
    let key = d.root.join("ring.key");
    let a = [d.file("a.txt", ALPHA), d.file("a-users.txt", ALPHA_USERS), d.file("a-ulp.txt", ALPHA_ULP)];
    let b = [d.file("b.txt", BETA), d.file("b-users.txt", BETA_USERS), d.file("b-ulp.txt", BETA_ULP)];
    let ingest_a: Vec<&str> =
        ["ingest", "--breach", "Alpha"].into_iter().chain(a.iter().map(String::as_str)).collect();
    let ingest_b: Vec<&str> =
        ["ingest", "--breach", "Beta"].into_iter().chain(b.iter().map(String::as_str)).collect();
    let only_a = d.root.join("only-a");
    leakwatch_with_key(&only_a, &key, &ingest_a, None).ok("ingest A");
    // The same store goes on to take B, then to lose it again.
    let both = d.root.join("both");
    copy_dir(&only_a, &both);
    let before = answers(&only_a, &key, true);
    leakwatch_with_key(&both, &key, &ingest_b, None).ok("ingest B");
    let with_b = answers(&both, &key, true);
    assert_ne!(with_b, before, "B changes answers");

    let removed = leakwatch_with_key(&both, &key, &["breach", "remove", "beta"], None).ok("remove B");
    assert!(
        removed.stdout.starts_with("removed Beta: 5 accounts, 8 segments dropped; now generation "),
        "{}",
        removed.stdout
    );
    assert_same(&answers(&both, &key, true), &before);
    // Nothing of B is left on disk: only A's segments, the very same files.
    let files = |dir: &Path| {
        let mut f: Vec<_> =
            std::fs::read_dir(dir.join("segments")).unwrap().map(|e| e.unwrap().file_name()).collect();
        f.sort();
        f
    };
    assert_eq!(files(&both), files(&only_a));

    // B ingested again is B again.
    leakwatch_with_key(&both, &key, &ingest_b, None).ok("ingest B again");
    let mut again = answers(&both, &key, true);
    let mut first = with_b.clone();
    // Only B's added and modified dates may differ.
    for answers in [&mut again, &mut first] {
        for (q, _, out) in answers.iter_mut() {
            if q.starts_with("breaches --json") {
                let mut v: Value = serde_json::from_str(out).unwrap();
                for b in v.as_array_mut().unwrap() {
                    b.as_object_mut().unwrap().retain(|f, _| f != "AddedDate" && f != "ModifiedDate");
                }
                *out = v.to_string();
            }
        }
    }
    assert_same(&again, &first);
}

#[test]
fn removal_rewrites_segments_compaction_merged_across_breaches() {
    let d = Dirs::new();
    let key = d.root.join("ring.key");
    let only_a = d.root.join("only-a");
    // Five ingests each: ten segments of a kind are more than compaction allows.
    let parts = |text: &str| -> Vec<String> { text.lines().map(|l| format!("{l}\n")).collect() };
    for (i, part) in parts(&format!("{ALPHA}{ALPHA_USERS}{ALPHA_ULP}")).iter().enumerate() {
        let f = d.file(&format!("a{i}.txt"), part);
        leakwatch_with_key(&only_a, &key, &["ingest", "--breach", "Alpha", &f], None).ok("ingest A");
    }
    let both = d.root.join("both");
    copy_dir(&only_a, &both);
    let before = answers(&only_a, &key, false);
    for (i, part) in parts(&format!("{BETA}{BETA_USERS}{BETA_ULP}")).iter().enumerate() {
        let f = d.file(&format!("b{i}.txt"), part);
        leakwatch_with_key(&both, &key, &["ingest", "--breach", "Beta", &f], None).ok("ingest B");
    }
    let manifest: Value = serde_json::from_slice(&std::fs::read(both.join("MANIFEST")).unwrap()).unwrap();
    let accounts: Vec<&Value> =
        manifest["segments"].as_array().unwrap().iter().filter(|s| s["kind"] == "accounts").collect();
    assert!(
        accounts.iter().any(|s| s["breaches"] == serde_json::json!([1, 2])),
        "compaction merged the accounts of both breaches: {accounts:?}"
    );
    // Counts were merged within each breach only.
    for s in manifest["segments"].as_array().unwrap().iter().filter(|s| s["kind"] == "sha1") {
        assert_eq!(s["breaches"].as_array().unwrap().len(), 1, "{s}");
    }

    let removed = leakwatch_with_key(&both, &key, &["breach", "remove", "Beta"], None).ok("remove B");
    assert!(removed.stdout.contains(" rewritten without its "), "{}", removed.stdout);
    assert_same(&answers(&both, &key, false), &before);
}

#[test]
fn removing_an_unknown_breach_is_an_error_that_names_it() {
    let d = Dirs::new();
    let key = d.root.join("ring.key");
    let data = d.root.join("data");
    let a = d.file("a.txt", ALPHA);
    leakwatch_with_key(&data, &key, &["ingest", "--breach", "Alpha", &a], None).ok("ingest");
    let r = leakwatch_with_key(&data, &key, &["breach", "remove", "Nope"], None);
    assert_eq!(r.code, 2);
    assert_eq!(
        r.stderr,
        format!(
            "leakwatch: error: no breach named \"Nope\" in {} (`leakwatch breaches` lists them)\n",
            data.display()
        )
    );
    let r = leakwatch_with_key(&data, &key, &["breach", "set", "Nope", "--title", "X"], None);
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert!(r.stderr.contains("no breach named \"Nope\""), "{}", r.stderr);
    // Nothing changed.
    assert_eq!(leakwatch_with_key(&data, &key, &["search", "email", "alice@corp.example"], None).code, 0);

    // A directory that holds no store is said to be one, and left as it was.
    for dir in [d.root.join("missing"), d.root.join("empty")] {
        if dir.ends_with("empty") {
            std::fs::create_dir(&dir).unwrap();
        }
        for args in [&["breach", "remove", "Alpha"][..], &["breach", "set", "Alpha", "--retired"]] {
            let r = leakwatch_with_key(&dir, &key, args, None);
            let why = if dir.exists() { "no MANIFEST" } else { "no such directory" };
            let want = format!("leakwatch: error: {} holds no leakwatch store ({why}): ", dir.display());
            assert_eq!(r.code, 2, "{}", r.stderr);
            assert!(r.stderr.starts_with(&want) && r.stderr.lines().count() == 1, "{}", r.stderr);
        }
        let left: Vec<_> = std::fs::read_dir(&dir).map(|e| e.collect()).unwrap_or_default();
        assert!(left.is_empty(), "{} was written to", dir.display());
    }
}

#[test]
fn breach_set_changes_what_the_catalog_shows_and_both_commands_are_audited() {
    let d = Dirs::new();
    let key = d.root.join("ring.key");
    let data = d.root.join("data");
    let (a, b) = (d.file("a.txt", ALPHA), d.file("b.txt", BETA));
    leakwatch_with_key(&data, &key, &["ingest", "--breach", "Alpha", &a], None).ok("ingest");
    leakwatch_with_key(&data, &key, &["ingest", "--breach", "Beta", &b], None).ok("ingest");
    let args = [
        "breach",
        "set",
        "alpha",
        "--title",
        "Alpha Corp",
        "--domain",
        "alpha.example",
        "--breach-date",
        "2024-02-03",
        "--description",
        "<p>A test</p>",
        "--sensitive",
        "--verified=false",
        "--spam-list=true",
        "--retired",
        "--fabricated",
    ];
    let set = leakwatch_with_key(&data, &key, &args, None).ok("set");
    assert!(set.stdout.starts_with("updated Alpha (modified "), "{}", set.stdout);
    let list = leakwatch_with_key(&data, &key, &["breaches", "--json"], None).ok("breaches");
    let all: Value = serde_json::from_str(&list.stdout).unwrap();
    let alpha = all.as_array().unwrap().iter().find(|b| b["Name"] == "Alpha").unwrap();
    for (field, want) in [
        ("Title", Value::from("Alpha Corp")),
        ("Domain", "alpha.example".into()),
        ("BreachDate", "2024-02-03".into()),
        ("Description", "<p>A test</p>".into()),
        ("IsSensitive", true.into()),
        ("IsVerified", false.into()),
        ("IsSpamList", true.into()),
        ("IsRetired", true.into()),
        ("IsFabricated", true.into()),
        ("IsMalware", false.into()),
        ("PwnCount", 3.into()),
    ] {
        assert_eq!(alpha[field], want, "{field}");
    }
    leakwatch_with_key(&data, &key, &["breach", "set", "Alpha", "--sensitive=false"], None).ok("unset");
    let list = leakwatch_with_key(&data, &key, &["breaches", "--json"], None).ok("breaches");
    let all: Value = serde_json::from_str(&list.stdout).unwrap();
    assert_eq!(all[0]["IsSensitive"], false);
    assert_eq!(all[0]["IsRetired"], true, "fields not given stay");
    let r = leakwatch_with_key(&data, &key, &["breach", "set", "Alpha"], None);
    assert_eq!(r.code, 2);
    assert!(r.stderr.contains("nothing to change"), "{}", r.stderr);

    leakwatch_with_key(&data, &key, &["breach", "remove", "Beta"], None).ok("remove");
    let log = leakwatch_with_key(&data, &key, &["audit-log", "--json"], None).ok("audit-log");
    let rows = log.json_lines();
    let user = std::env::var("USER").ok();
    let shown: Vec<(String, String, String)> = rows
        .iter()
        .map(|r| {
            (
                r["endpoint"].as_str().unwrap().to_owned(),
                r["subject"]["clear"].as_str().unwrap().to_owned(),
                r["subject"]["kind"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    assert_eq!(
        shown,
        [
            ("cli breach set".into(), "Alpha".into(), "breach".into()),
            ("cli breach set".into(), "Alpha".into(), "breach".into()),
            ("cli breach remove".into(), "Beta".into(), "breach".into()),
        ]
    );
    for r in &rows {
        assert_eq!(r["key_id"], 0);
        let name = r["key_name"].as_str().unwrap();
        assert!(!name.is_empty());
        if let Some(user) = &user {
            assert_eq!(name, user);
        }
    }
    leakwatch_with_key(&data, &key, &["audit-log", "verify"], None).ok("the chain holds");
}

#[test]
fn search_account_finds_user_names_and_phone_numbers() {
    let d = Dirs::new();
    let key = d.root.join("ring.key");
    let data = d.root.join("data");
    let (a, b) = (d.file("a.txt", ALPHA_USERS), d.file("b.txt", BETA_USERS));
    leakwatch_with_key(&data, &key, &["ingest", "--breach", "Alpha", &a], None).ok("ingest");
    leakwatch_with_key(&data, &key, &["ingest", "--breach", "Beta", &b], None).ok("ingest");
    let stdin = b"DarkUser99\n+61 412 345 678\n\nnobody-here\n";
    let r = leakwatch_with_key(&data, &key, &["search", "account", "--json", "-"], Some(stdin));
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(
        r.stdout,
        "{\"account\":\"darkuser99\",\"breaches\":[\"Alpha\",\"Beta\"]}\n\
         {\"account\":\"+61412345678\",\"breaches\":[\"Alpha\"]}\n\
         {\"account\":\"\",\"breaches\":[],\"error\":\"blank line\"}\n\
         {\"account\":\"nobody-here\",\"breaches\":[]}\n"
    );
    let r = leakwatch_with_key(&data, &key, &["search", "account", "newbie42", "61412345678"], None);
    assert_eq!((r.code, r.stdout.as_str()), (0, "newbie42  Beta\n61412345678  Alpha\n"));
    let r = leakwatch_with_key(&data, &key, &["search", "account", "nobody-here"], None);
    assert_eq!((r.code, r.stdout.as_str()), (1, "nobody-here  not found\n"));
}

/// Rekey rewrites every keyed segment; credential triples stay apart by breach,
/// so a breach can still be removed exactly afterwards.
#[test]
fn a_breach_is_removed_exactly_after_a_rekey() {
    let d = Dirs::new();
    let key = d.root.join("ring.key");
    let only_a = d.root.join("only-a");
    let a = [d.file("a.txt", ALPHA), d.file("a-users.txt", ALPHA_USERS), d.file("a-ulp.txt", ALPHA_ULP)];
    for f in &a {
        leakwatch_with_key(&only_a, &key, &["ingest", "--breach", "Alpha", f], None).ok("ingest A");
    }
    let both = d.root.join("both");
    copy_dir(&only_a, &both);
    // The copy gets a key ring of its own, which its rekey rotates.
    let both_key = d.root.join("both.key");
    std::fs::copy(&key, &both_key).unwrap();
    let before = answers(&only_a, &key, false);
    for text in [BETA, BETA_USERS, BETA_ULP] {
        let f = d.file("b.txt", text);
        leakwatch_with_key(&both, &both_key, &["ingest", "--breach", "Beta", &f], None).ok("ingest B");
    }
    leakwatch_with_key(&both, &both_key, &["rekey"], None).ok("rekey");
    let manifest: Value = serde_json::from_slice(&std::fs::read(both.join("MANIFEST")).unwrap()).unwrap();
    for s in manifest["segments"].as_array().unwrap() {
        if s["kind"].as_str().unwrap().contains("credential") {
            assert_eq!(s["breaches"].as_array().unwrap().len(), 1, "{s}");
        }
    }
    leakwatch_with_key(&both, &both_key, &["breach", "remove", "Beta"], None).ok("remove B");
    assert_same(&answers(&both, &both_key, false), &before);
}

/// A directory written before segments named their breaches: counts cannot be
/// split by breach, so removal refuses, says why, and changes nothing.
#[test]
fn removal_refuses_counts_it_cannot_attribute_and_changes_nothing() {
    let d = Dirs::new();
    let key = d.root.join("ring.key");
    let data = d.root.join("data");
    let (a, b) = (d.file("a.txt", ALPHA), d.file("b.txt", BETA));
    leakwatch_with_key(&data, &key, &["ingest", "--breach", "Alpha", &a], None).ok("ingest");
    leakwatch_with_key(&data, &key, &["ingest", "--breach", "Beta", &b], None).ok("ingest");
    let path = data.join("MANIFEST");
    let mut manifest: Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
    for s in manifest["segments"].as_array_mut().unwrap() {
        s.as_object_mut().unwrap().remove("breaches");
    }
    std::fs::write(&path, serde_json::to_vec_pretty(&manifest).unwrap()).unwrap();
    let before = answers(&data, &key, true);
    let r = leakwatch_with_key(&data, &key, &["breach", "remove", "Beta"], None);
    assert_eq!(r.code, 2);
    assert!(
        r.stderr.starts_with("leakwatch: error: cannot remove Beta: segment sha1-")
            && r.stderr.contains(
                "holds sha1 entries written before leakwatch recorded which breach a segment holds, and they \
                 do not say which breach they came from"
            ),
        "{}",
        r.stderr
    );
    assert_eq!(std::fs::read(&path).unwrap(), serde_json::to_vec_pretty(&manifest).unwrap());
    assert_same(&answers(&data, &key, true), &before);
}
