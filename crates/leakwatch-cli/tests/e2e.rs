//! End to end: the real `leakwatch` binary, driven only through its command-line
//! contract (DESIGN.md §4), over a generated scenario whose exact answers the
//! generator computed while writing it (`leakwatch-gen`, `docs/ingest-rules.md`).
//!
//! Every breach is ingested (some files through stdin, gzip and zstd among them,
//! one breach with a tiny memory budget so sorted runs spill), then every answer
//! is compared: each address (in one batch on stdin) and a sample of absent ones,
//! each domain, each SHA-1 and NTLM count, each breach's PwnCount and data classes,
//! and each file's accepted and rejected counts. Then the properties: re-ingesting
//! changes no answer; another ingest order gives the same answers; exit codes.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;

use leakwatch_gen::{BreachFiles, Expected, Scenario};
use leakwatch_types::encode_hex_upper;
use serde_json::{json, Value};

mod support;

use support::{run, Run};

const SEED: u64 = 20260501;

fn leakwatch(data: &Path, args: &[&str], stdin: Option<&[u8]>) -> Run {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_leakwatch"));
    cmd.arg("--data").arg(data).args(args);
    // The data key beside the data directory, not in the user's config directory.
    cmd.env("LEAKWATCH_KEY_FILE", data.with_extension("key"));
    run(cmd, stdin)
}

/// How one breach is fed to `leakwatch ingest`.
#[derive(Clone, Copy)]
struct Feed {
    /// Which file (by index) goes through stdin, if any.
    stdin_file: Option<usize>,
    memory_budget: Option<&'static str>,
    reverse_files: bool,
}

impl Feed {
    fn for_breach(name: &str) -> Feed {
        let plain = Feed { stdin_file: None, memory_budget: None, reverse_files: false };
        match name {
            // A plain username combo through stdin.
            "GamerHub2017" => Feed { stdin_file: Some(0), ..plain },
            // A gzip file through stdin: compression is detected by magic bytes, not names.
            "Combolist2023" => Feed { stdin_file: Some(1), ..plain },
            "PhotoVault2015" => Feed { memory_budget: Some("1MiB"), ..plain },
            _ => plain,
        }
    }
}

/// Ingests one breach; returns the per-file part of the report, in argument order.
fn ingest(data: &Path, breach: &BreachFiles, feed: Feed, report: &Path) -> Vec<Value> {
    let mut order: Vec<usize> = (0..breach.files.len()).collect();
    if feed.reverse_files {
        order.reverse();
    }
    let mut args: Vec<String> = vec!["ingest".into(), "--breach".into(), breach.name.clone()];
    args.extend(["--title".into(), breach.title.clone(), "--breach-date".into(), breach.breach_date.clone()]);
    if !breach.domain.is_empty() {
        args.extend(["--domain".into(), breach.domain.clone()]);
    }
    if let Some(budget) = feed.memory_budget {
        args.extend(["--memory-budget".into(), budget.into()]);
    }
    args.extend(["--report-json".into(), report.display().to_string()]);
    let mut stdin = None;
    for &i in &order {
        if feed.stdin_file == Some(i) {
            stdin = Some(std::fs::read(&breach.files[i]).expect("generated file"));
            args.push("-".into());
        } else {
            args.push(breach.files[i].display().to_string());
        }
    }
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    leakwatch(data, &args, stdin.as_deref()).ok(&format!("ingest {}", breach.name));
    let report: Value = serde_json::from_slice(&std::fs::read(report).expect("--report-json was written"))
        .expect("the report is JSON");
    let files = report["files"].as_array().expect("report.files").clone();
    assert_eq!(files.len(), order.len());
    // Back to the breach's own file order, so reports compare with the expected ones.
    let mut by_index: Vec<(usize, Value)> = order.into_iter().zip(files).collect();
    by_index.sort_by_key(|(i, _)| *i);
    by_index.into_iter().map(|(_, v)| v).collect()
}

fn ingest_all(data: &Path, breaches: &[BreachFiles], reverse: bool, report: &Path) -> Vec<Vec<Value>> {
    let mut reports: Vec<(usize, Vec<Value>)> = Vec::new();
    let mut order: Vec<usize> = (0..breaches.len()).collect();
    if reverse {
        order.reverse();
    }
    for i in order {
        let mut feed = Feed::for_breach(&breaches[i].name);
        feed.reverse_files = reverse;
        reports.push((i, ingest(data, &breaches[i], feed, report)));
    }
    reports.sort_by_key(|(i, _)| *i);
    reports.into_iter().map(|(_, r)| r).collect()
}

/// Every answer the store gives about the scenario, as the binary prints it.
#[derive(Debug, PartialEq)]
struct Answers {
    emails: Vec<Value>,
    domains: BTreeMap<String, Value>,
    sha1: Vec<Value>,
    ntlm: Vec<Value>,
    breaches: Vec<Value>,
}

/// Addresses to look up: every exposed one (some shouted, as users type them) and
/// the absent ones; with what the answer must be.
fn email_queries(exp: &Expected) -> (String, Vec<Value>) {
    let mut input = String::new();
    let mut want = Vec::new();
    for (i, (email, breaches)) in exp.emails.iter().enumerate() {
        let shown = if i % 5 == 0 { email.to_uppercase() } else { email.clone() };
        input.push_str(&shown);
        input.push('\n');
        want.push(json!({"account": email, "breaches": breaches}));
    }
    for email in &exp.absent_emails {
        input.push_str(email);
        input.push('\n');
        want.push(json!({"account": email, "breaches": []}));
    }
    (input, want)
}

/// Hashes to look up: every expected one (some in lower case) and absent ones.
fn hash_queries(counts: &BTreeMap<String, u64>, absent: &[String]) -> (String, Vec<Value>) {
    let mut input = String::new();
    let mut want = Vec::new();
    for (i, (hash, count)) in counts.iter().enumerate() {
        input.push_str(&if i % 3 == 0 { hash.to_lowercase() } else { hash.clone() });
        input.push('\n');
        want.push(json!({"hash": hash, "count": count}));
    }
    for hash in absent {
        input.push_str(hash);
        input.push('\n');
        want.push(json!({"hash": hash, "count": 0}));
    }
    (input, want)
}

fn absent_hashes(len: usize) -> Vec<String> {
    (0..20)
        .map(|i| {
            let digest = leakwatch_types::sha1(format!("leakwatch e2e: never a password {i}").as_bytes());
            encode_hex_upper(&digest[..len])
        })
        .collect()
}

/// The fields of a breach object that ingest determines.
fn breach_facts(b: &Value) -> Value {
    json!({
        "Name": b["Name"],
        "Title": b["Title"],
        "Domain": b["Domain"],
        "BreachDate": b["BreachDate"],
        "PwnCount": b["PwnCount"],
        "DataClasses": b["DataClasses"],
    })
}

fn answers(data: &Path, exp: &Expected) -> Answers {
    let (input, _) = email_queries(exp);
    let emails =
        leakwatch(data, &["search", "email", "--json", "-"], Some(input.as_bytes())).ok("search email");
    let mut domains = BTreeMap::new();
    for domain in exp.domains.keys() {
        let out = leakwatch(data, &["search", "domain", "--json", domain], None).ok("search domain");
        domains.insert(domain.clone(), serde_json::from_str(out.stdout.trim()).expect("domain JSON"));
    }
    let (input, _) = hash_queries(&exp.sha1, &absent_hashes(20));
    let sha1 =
        leakwatch(data, &["search", "password", "--hash", "sha1", "--json", "-"], Some(input.as_bytes()))
            .ok("search sha1");
    let (input, _) = hash_queries(&exp.ntlm, &absent_hashes(16));
    let ntlm =
        leakwatch(data, &["search", "password", "--hash", "ntlm", "--json", "-"], Some(input.as_bytes()))
            .ok("search ntlm");
    let catalog = leakwatch(data, &["breaches", "--json"], None).ok("breaches");
    let catalog: Value = serde_json::from_str(&catalog.stdout).expect("breaches JSON");
    let mut breaches: Vec<Value> =
        catalog.as_array().expect("an array of breaches").iter().map(breach_facts).collect();
    breaches.sort_by_key(|b| b["Name"].as_str().unwrap_or_default().to_string());
    Answers {
        emails: emails.json_lines(),
        domains,
        sha1: sha1.json_lines(),
        ntlm: ntlm.json_lines(),
        breaches,
    }
}

#[track_caller]
fn assert_lines_eq(got: &[Value], want: &[Value], what: &str) {
    assert_eq!(got.len(), want.len(), "{what}: one output line per input line");
    let wrong: Vec<String> = got
        .iter()
        .zip(want)
        .filter(|(g, w)| g != w)
        .take(5)
        .map(|(g, w)| format!("got {g}, want {w}"))
        .collect();
    assert!(wrong.is_empty(), "{what}: {} answers differ, e.g.\n{}", wrong.len(), wrong.join("\n"));
}

fn check_answers(got: &Answers, exp: &Expected) {
    assert_lines_eq(&got.emails, &email_queries(exp).1, "search email");
    for (domain, aliases) in &exp.domains {
        assert_eq!(got.domains[domain], json!(aliases), "search domain {domain}");
    }
    assert_lines_eq(&got.sha1, &hash_queries(&exp.sha1, &absent_hashes(20)).1, "search password --hash sha1");
    assert_lines_eq(&got.ntlm, &hash_queries(&exp.ntlm, &absent_hashes(16)).1, "search password --hash ntlm");
    let mut want: Vec<Value> = exp
        .breaches
        .iter()
        .map(|b| {
            json!({
                "Name": b.name,
                "Title": b.title,
                "Domain": b.domain,
                "BreachDate": b.breach_date,
                "PwnCount": b.pwn_count,
                "DataClasses": b.data_classes,
            })
        })
        .collect();
    want.sort_by_key(|b| b["Name"].as_str().unwrap_or_default().to_string());
    assert_eq!(got.breaches, want, "breaches --json");
}

fn check_reports(reports: &[Vec<Value>], exp: &Expected) {
    for (files, breach) in reports.iter().zip(&exp.breaches) {
        for (got, want) in files.iter().zip(&breach.files) {
            let rejected: BTreeMap<&String, Value> = want
                .rejected
                .iter()
                .map(|(reason, r)| (reason, json!({"count": r.count, "sample_lines": r.sample_lines})))
                .collect();
            let want = json!({
                "format": want.format,
                "lines": want.lines,
                "accepted": want.accepted,
                "rejected": rejected,
            });
            let got = json!({
                "format": got["format"],
                "lines": got["lines"],
                "accepted": got["accepted"],
                "rejected": got["rejected"],
            });
            assert_eq!(got, want, "ingest report of {}", breach.name);
        }
    }
}

struct Setup {
    _tmp: tempfile::TempDir,
    root: PathBuf,
    breaches: Vec<BreachFiles>,
    exp: Expected,
}

fn setup() -> Setup {
    let tmp = tempfile::tempdir().expect("a temporary directory");
    let root = tmp.path().to_path_buf();
    let scenario = Scenario::small(SEED);
    let breaches = scenario.write_all(&root.join("dumps")).expect("dumps written");
    Setup { _tmp: tmp, root, breaches, exp: scenario.expected() }
}

#[test]
fn scenario_answers_are_exact_idempotent_and_order_independent() {
    let s = setup();
    let report = s.root.join("report.json");

    let data = s.root.join("data");
    let reports = ingest_all(&data, &s.breaches, false, &report);
    check_reports(&reports, &s.exp);
    let first = answers(&data, &s.exp);
    check_answers(&first, &s.exp);

    // Plaintext lookups hash like the corpus does.
    for password in ["123456", "password"] {
        let digest = encode_hex_upper(&leakwatch_types::sha1(password.as_bytes()));
        let out = leakwatch(&data, &["search", "password", "--json", password], None).ok("search password");
        let want = json!({"hash": digest, "count": s.exp.sha1.get(&digest).copied().unwrap_or(0)});
        assert_eq!(out.json_lines(), vec![want]);
    }
    let stats = leakwatch(&data, &["stats", "--json"], None).ok("stats");
    serde_json::from_str::<Value>(&stats.stdout).expect("stats --json is JSON");

    // Re-ingesting the same files into the same breaches changes no answer, and
    // the files read the same way again.
    let again = ingest_all(&data, &s.breaches, false, &report);
    check_reports(&again, &s.exp);
    assert_eq!(answers(&data, &s.exp), first, "answers after re-ingest");

    // Breaches in the opposite order, and files in the opposite order within each.
    let other = s.root.join("data-reversed");
    let reports = ingest_all(&other, &s.breaches, true, &report);
    check_reports(&reports, &s.exp);
    assert_eq!(answers(&other, &s.exp), first, "answers after ingest in another order");
}

/// A combo big enough that a 1 MiB budget spills sorted runs to disk several
/// times must give the same answers as an ingest that never spills.
#[test]
fn spilling_changes_no_answer() {
    let tmp = tempfile::tempdir().expect("a temporary directory");
    let combo = tmp.path().join("combo.txt");
    let lines = 30_000;
    let mut bytes = Vec::new();
    leakwatch_gen::bench::write_combo(&mut bytes, lines, 7).expect("in memory");
    std::fs::write(&combo, &bytes).expect("combo written");

    // The truth, from the clean combo: distinct addresses, and per SHA-1 the
    // number of distinct (address, password) pairs carrying it.
    let mut accounts = BTreeSet::new();
    let mut pairs = BTreeSet::new();
    for line in std::str::from_utf8(&bytes).expect("ASCII").lines() {
        let (email, password) = line.split_once(':').expect("email:password");
        accounts.insert(email.to_ascii_lowercase());
        pairs.insert((email.to_ascii_lowercase(), password.to_string()));
    }
    let mut sha1: BTreeMap<String, u64> = BTreeMap::new();
    for (_, password) in &pairs {
        *sha1.entry(encode_hex_upper(&leakwatch_types::sha1(password.as_bytes()))).or_default() += 1;
    }

    let lookups: Vec<(String, bool)> = leakwatch_gen::bench::lookup_addresses(7, lines, 2_000).collect();
    let email_input: String = lookups.iter().map(|(a, _)| format!("{a}\n")).collect();
    let sha1_input: String = sha1.keys().map(|h| format!("{h}\n")).collect();
    let mut results = Vec::new();
    for budget in ["1MiB", "1GiB"] {
        let data = tmp.path().join(format!("data-{budget}"));
        let path = combo.display().to_string();
        leakwatch(&data, &["ingest", "--breach", "Spill", "--memory-budget", budget, &path], None)
            .ok("ingest");
        let found =
            leakwatch(&data, &["search", "email", "--json", "-"], Some(email_input.as_bytes())).ok("email");
        let counts = leakwatch(
            &data,
            &["search", "password", "--hash", "sha1", "--json", "-"],
            Some(sha1_input.as_bytes()),
        )
        .ok("password");
        let catalog: Value =
            serde_json::from_str(&leakwatch(&data, &["breaches", "--json"], None).ok("breaches").stdout)
                .expect("JSON");
        assert_eq!(catalog[0]["PwnCount"], json!(accounts.len()), "PwnCount with budget {budget}");
        for ((address, present), answer) in lookups.iter().zip(found.json_lines()) {
            let want: Vec<&str> = if *present { vec!["Spill"] } else { vec![] };
            assert_eq!(answer["breaches"], json!(want), "{address} with budget {budget}");
        }
        for ((hash, count), answer) in sha1.iter().zip(counts.json_lines()) {
            assert_eq!(answer, json!({"hash": hash, "count": count}), "budget {budget}");
        }
        results.push((found.stdout, counts.stdout));
    }
    assert_eq!(results[0], results[1]);
}

#[test]
fn exit_codes_follow_the_contract() {
    let s = setup();
    let data = s.root.join("data");
    let shop = s.breaches.iter().find(|b| b.name == "ShopNova2019").expect("a CSV breach");
    ingest(&data, shop, Feed::for_breach(&shop.name), &s.root.join("report.json"));
    let present = s.exp.emails.iter().find(|(_, b)| b.contains(&shop.name)).expect("someone").0.clone();
    let absent = "nobody.at.all@example.org";

    // Found: 0. Searched and found nothing: 1.
    assert_eq!(leakwatch(&data, &["search", "email", &present], None).code, 0);
    assert_eq!(leakwatch(&data, &["search", "email", &present, absent], None).code, 0);
    assert_eq!(leakwatch(&data, &["search", "email", absent], None).code, 1);
    let out = leakwatch(&data, &["search", "email", "--json", absent], None);
    assert_eq!((out.code, out.json_lines()), (1, vec![json!({"account": absent, "breaches": []})]));
    let out = leakwatch(&data, &["search", "domain", "--json", "no-such-domain.example"], None);
    assert_eq!((out.code, out.stdout.trim()), (1, "{}"));
    let unknown = &absent_hashes(20)[0];
    assert_eq!(leakwatch(&data, &["search", "password", "--hash", "sha1", unknown], None).code, 1);

    // The data directory also comes from LEAKWATCH_DATA.
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_leakwatch"));
    cmd.env("LEAKWATCH_DATA", &data).args(["search", "email", "--json", &present]);
    cmd.env("LEAKWATCH_KEY_FILE", data.with_extension("key"));
    let out = run(cmd, None);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_eq!(out.json_lines()[0]["account"], json!(present));

    // Errors: 2, with one line on stderr.
    let one_line = |run: &Run, mentions: &str| {
        assert_eq!(run.code, 2, "stderr: {}", run.stderr);
        assert_eq!(run.stderr.trim_end().lines().count(), 1, "one stderr line: {:?}", run.stderr);
        assert!(run.stderr.contains(mentions), "{:?} should name {mentions}", run.stderr);
    };
    let missing = s.root.join("no-such-dump.txt");
    let missing = missing.display().to_string();
    one_line(&leakwatch(&data, &["ingest", "--breach", "Missing", &missing], None), &missing);
    let not_a_dir = s.root.join("report.json");
    let run_bad_data = leakwatch(&not_a_dir, &["search", "email", &present], None);
    one_line(&run_bad_data, "");
    one_line(&leakwatch(&data, &["ingest", "--breach", "Not Valid", &missing], None), "");
    one_line(&leakwatch(&data, &["search", "password", "--hash", "sha1", "not-hex"], None), "");
    // A failed ingest leaves the answers as they were.
    assert_eq!(leakwatch(&data, &["search", "email", &present], None).code, 0);
}

/// `leakwatch` with no `--data`: the data directory comes from the environment
/// (`HOME`, `XDG_DATA_HOME`, `LEAKWATCH_DATA`) as a user's shell gives it.
fn leakwatch_env(home: &Path, env: &[(&str, &Path)], args: &[&str], stdin: Option<&[u8]>) -> Run {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_leakwatch"));
    cmd.env_remove("LEAKWATCH_DATA").env_remove("XDG_DATA_HOME").env("HOME", home);
    cmd.env("LEAKWATCH_KEY_FILE", home.join("data.key"));
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.args(args);
    run(cmd, stdin)
}

#[test]
fn a_directory_without_a_store_is_an_error_never_an_empty_answer() {
    let s = setup();
    let shop = s.breaches.iter().find(|b| b.name == "ShopNova2019").expect("a CSV breach");
    let dump = shop.files[0].display().to_string();
    let missing = s.root.join("no-such-dir");
    let empty = s.root.join("empty");
    std::fs::create_dir(&empty).unwrap();
    let foreign = s.root.join("foreign");
    std::fs::create_dir(&foreign).unwrap();
    std::fs::write(foreign.join("notes.txt"), "not a store").unwrap();
    let reads: [&[&str]; 10] = [
        &["search", "email", "alice@example.com"],
        &["search", "domain", "example.com"],
        &["search", "password", "password"],
        &["breaches"],
        &["stats"],
        &["verify"],
        &["repair"],
        &["audit-log"],
        &["apikey", "list"],
        &["serve", "--listen", "127.0.0.1:0"],
    ];
    for (dir, reason) in [(&missing, "no such directory"), (&empty, "no MANIFEST"), (&foreign, "no MANIFEST")]
    {
        let shown = dir.display().to_string();
        for args in reads {
            let out = leakwatch(dir, args, None);
            assert_eq!(out.code, 2, "{args:?} on {shown}: {}{}", out.stdout, out.stderr);
            assert_eq!(out.stderr.trim_end().lines().count(), 1, "{:?}", out.stderr);
            assert!(
                out.stderr.contains(&format!("{shown} holds no leakwatch store ({reason})"))
                    && out.stderr.contains(&format!("leakwatch --data {shown} ingest --breach NAME FILE"))
                    && out.stderr.contains("--data DIR / LEAKWATCH_DATA"),
                "{args:?}: {}",
                out.stderr
            );
            assert!(out.stdout.is_empty(), "{args:?}: {}", out.stdout);
        }
    }
    assert!(!missing.exists(), "reading made the directory");
    assert_eq!(std::fs::read_dir(&empty).unwrap().count(), 0, "reading wrote into the directory");

    // Writers make a store in a missing or empty directory, never among other files.
    for args in [&["ingest", "--breach", "ShopNova2019", &dump][..], &["init"]] {
        let out = leakwatch(&foreign, args, None);
        assert_eq!(out.code, 2, "{args:?}: {}", out.stderr);
        let want = format!("refusing to create a store in non-empty directory {}", foreign.display());
        assert!(out.stderr.contains(&want), "{}", out.stderr);
    }
    assert_eq!(std::fs::read_dir(&foreign).unwrap().count(), 1, "a writer left files among others");
    leakwatch(&empty, &["init"], None).ok("init in an empty directory");
    // A store with nothing in it yet answers: nothing found.
    assert_eq!(leakwatch(&empty, &["search", "email", "alice@example.com"], None).code, 1);
    assert!(leakwatch(&empty, &["verify"], None).ok("verify").stdout.starts_with("ok: 0 segments"));
    leakwatch(&missing, &["ingest", "--breach", "ShopNova2019", &dump], None)
        .ok("ingest into a new directory");
    let present = s.exp.emails.iter().find(|(_, b)| b.contains(&shop.name)).expect("someone").0.clone();
    assert_eq!(leakwatch(&missing, &["search", "email", &present], None).code, 0);

    // A forgotten --data: the default location is named on stderr, and holds no
    // store until something is ingested there.
    let home = s.root.join("home");
    let default = home.join(".local/share/leakwatch");
    let notice = format!(
        "leakwatch: using the default data directory {} (set --data or LEAKWATCH_DATA to choose another)",
        default.display()
    );
    let out = leakwatch_env(&home, &[], &["search", "email", &present], None);
    assert_eq!(out.code, 2, "{}", out.stderr);
    let lines: Vec<&str> = out.stderr.lines().collect();
    assert_eq!(lines[0], notice);
    assert!(lines[1].contains(&format!("{} holds no leakwatch store", default.display())), "{lines:?}");
    let out = leakwatch_env(&home, &[], &["ingest", "--breach", "ShopNova2019", &dump], None).ok("ingest");
    assert!(out.stderr.starts_with(&notice), "{}", out.stderr);
    let out = leakwatch_env(&home, &[], &["search", "email", &present], None);
    assert_eq!((out.code, out.stderr.trim_end()), (0, notice.as_str()));
    // XDG_DATA_HOME moves the default; LEAKWATCH_DATA chooses, silently.
    let xdg = s.root.join("xdg");
    let out = leakwatch_env(&home, &[("XDG_DATA_HOME", &xdg)], &["breaches"], None);
    assert_eq!(out.code, 2);
    assert!(out.stderr.contains(&format!("default data directory {}", xdg.join("leakwatch").display())));
    let key = missing.with_extension("key");
    let env = [("LEAKWATCH_DATA", missing.as_path()), ("LEAKWATCH_KEY_FILE", key.as_path())];
    let out = leakwatch_env(&home, &env, &["search", "email", &present], None);
    assert_eq!((out.code, out.stderr.as_str()), (0, ""));
}

#[test]
fn a_damaged_segment_fails_only_the_searches_that_need_it_until_repair() {
    let s = setup();
    let data = s.root.join("data");
    ingest_all(&data, &s.breaches, false, &s.root.join("report.json"));
    let manifest: Value = serde_json::from_slice(&std::fs::read(data.join("MANIFEST")).unwrap()).unwrap();
    let names: BTreeMap<u64, String> = manifest["breaches"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| (b["id"].as_u64().unwrap(), b["name"].as_str().unwrap().to_owned()))
        .collect();
    let segment = manifest["segments"].as_array().unwrap().iter().find(|s| s["kind"] == "sha1").unwrap();
    let file = segment["file"].as_str().unwrap().to_owned();
    let held: Vec<&str> = segment["breaches"]
        .as_array()
        .unwrap()
        .iter()
        .map(|id| names[&id.as_u64().unwrap()].as_str())
        .collect();
    assert!(!held.is_empty(), "{segment}");
    let path = data.join("segments").join(&file);
    let mut bytes = std::fs::read(&path).unwrap();
    bytes[200] ^= 0x5A;
    std::fs::write(&path, bytes).unwrap();

    // Searches that never read the damaged segment answer exactly.
    let (input, want) = email_queries(&s.exp);
    let out =
        leakwatch(&data, &["search", "email", "--json", "-"], Some(input.as_bytes())).ok("search email");
    assert_lines_eq(&out.json_lines(), &want, "search email beside a damaged segment");
    let (input, want) = hash_queries(&s.exp.ntlm, &absent_hashes(16));
    let out =
        leakwatch(&data, &["search", "password", "--hash", "ntlm", "--json", "-"], Some(input.as_bytes()))
            .ok("search ntlm");
    assert_lines_eq(&out.json_lines(), &want, "search ntlm beside a damaged SHA-1 segment");
    // Those that do fail, naming the breaches whose data is damaged.
    let damaged_answer = |out: &Run| {
        assert_eq!(out.code, 2, "{}{}", out.stdout, out.stderr);
        assert_eq!(out.stderr.trim_end().lines().count(), 1, "{:?}", out.stderr);
        assert!(
            out.stderr.contains("the sha1 data of breach") && out.stderr.contains(&file),
            "{}",
            out.stderr
        );
        for name in &held {
            assert!(out.stderr.contains(name), "{} should name {name}", out.stderr);
        }
    };
    let absent = &absent_hashes(20)[0];
    damaged_answer(&leakwatch(&data, &["search", "password", "--hash", "sha1", absent], None));
    damaged_answer(&leakwatch(&data, &["search", "password", "letmein"], None));
    damaged_answer(&leakwatch(&data, &["stats"], None));

    let out = leakwatch(&data, &["verify"], None);
    assert_eq!(out.code, 2, "{}", out.stderr);
    let line = out.stdout.lines().find(|l| l.starts_with("damaged: ")).expect("the damaged segment listed");
    assert!(
        line.contains(&file) && line.contains("(sha1, ") && line.contains("data corruption at offset"),
        "{line}"
    );
    for name in &held {
        assert!(line.contains(name) && out.stderr.contains(name), "{line}\n{}", out.stderr);
    }

    let out = leakwatch(&data, &["repair", "--json"], None).ok("repair");
    let report: Value = serde_json::from_str(out.stdout.trim()).unwrap();
    assert_eq!(report["set_aside"].as_array().unwrap().len(), 1, "{report}");
    assert_eq!(report["set_aside"][0]["file"], json!(file));
    assert_eq!(report["set_aside"][0]["kind"], "sha1");
    assert_eq!(report["reingest"], json!(held));
    assert!(data.join("damaged").join(&file).exists() && !path.exists());

    // The rest answers again; the set-aside breaches are named wherever it matters.
    let out = leakwatch(&data, &["search", "password", "--hash", "sha1", absent], None);
    assert_eq!(out.code, 1, "{}", out.stderr);
    let note = format!("leakwatch: note: `leakwatch repair` set damaged data of {} aside", held.join(", "));
    assert!(out.stderr.starts_with(&note), "{}", out.stderr);
    let out = leakwatch(&data, &["verify"], None).ok("verify after repair");
    assert!(
        out.stdout.starts_with("ok: ") && out.stdout.contains(&format!("ingest again: {}", held.join(", ")))
    );
    let out = leakwatch(&data, &["breaches"], None).ok("breaches");
    assert!(out.stdout.contains("set aside by `leakwatch repair`"), "{}", out.stdout);
    let (input, want) = email_queries(&s.exp);
    let out =
        leakwatch(&data, &["search", "email", "--json", "-"], Some(input.as_bytes())).ok("search email");
    assert_lines_eq(&out.json_lines(), &want, "search email after repair");
}

/// Columns named every way are read and reported; `--columns` overrides them;
/// a column it names that is not there, or a role it does not know, is an error.
#[test]
fn columns_are_reported_and_overridden() {
    let tmp = tempfile::tempdir().expect("temp dir");
    let data = tmp.path().join("data");
    let csv = tmp.path().join("users.csv");
    std::fs::write(
        &csv,
        "id,user_email,pass_hash,signup_ip\n\
         1,fran\u{e7}ois@acme-corp.com,5f4dcc3b5aa765d61d8327deb882cf99,10.1.2.3\n\
         2,J\u{f6}rg@Example.DE,5f4dcc3b5aa765d61d8327deb882cf98,\n",
    )
    .expect("write");
    let csv = csv.display().to_string();
    let report = tmp.path().join("report.json");
    let report_arg = report.display().to_string();
    let out =
        leakwatch(&data, &["ingest", "--breach", "Cols", "--json", "--report-json", &report_arg, &csv], None);
    let json = &out.ok("ingest").json_lines()[0];
    let file = &json["files"][0];
    assert_eq!(file["accepted"], json!(2));
    assert_eq!(
        file["columns"][0]["text"],
        json!("user_email -> email, pass_hash -> hash (md5), signup_ip -> IP addresses; left out: id")
    );
    assert_eq!(
        file["columns"][0]["used"][1],
        json!({"column": "pass_hash", "role": "hash", "detail": "md5", "by": "name"})
    );
    let classes = &json["breach"]["DataClasses"];
    assert_eq!(classes, &json!(["Email addresses", "IP addresses", "Passwords"]));
    let written: Value =
        serde_json::from_str(&std::fs::read_to_string(&report).expect("report")).expect("json");
    assert_eq!(written["files"][0]["columns"], file["columns"]);
    let found = leakwatch(&data, &["search", "email", "--json", "J\u{f6}rg@example.de"], None);
    assert_eq!(found.ok("search").json_lines()[0]["breaches"], json!(["Cols"]));

    // The text report names every column.
    let out = leakwatch(&data, &["ingest", "--breach", "Cols", &csv], None).ok("ingest");
    assert!(out.stdout.contains("  columns: user_email -> email, pass_hash -> hash (md5)"), "{}", out.stdout);
    let out = leakwatch(
        &data,
        &["ingest", "--breach", "Cols", "--columns", "account=user_email,skip=signup_ip", &csv],
        None,
    )
    .ok("ingest");
    assert!(out.stdout.contains("user_email -> account (by --columns)"), "{}", out.stdout);

    let one_line = |run: &Run, mentions: &str| {
        assert_eq!(run.code, 2, "stderr: {}", run.stderr);
        assert_eq!(run.stderr.trim_end().lines().count(), 1, "one stderr line: {:?}", run.stderr);
        assert!(run.stderr.contains(mentions), "{:?} should name {mentions}", run.stderr);
    };
    let missing = leakwatch(&data, &["ingest", "--breach", "Cols", "--columns", "hash=pwd", &csv], None);
    one_line(&missing, &format!("{csv}: --columns hash=pwd: no such column"));
    let unknown = leakwatch(&data, &["ingest", "--breach", "Cols", "--columns", "secret=pwd", &csv], None);
    assert_eq!(unknown.code, 2, "{}", unknown.stderr);
    assert!(unknown.stderr.contains("unknown column role \"secret\""), "{}", unknown.stderr);
    let help = leakwatch(&data, &["ingest", "--help"], None).ok("help");
    assert!(help.stdout.contains("--columns <ROLE=COL,...>"), "{}", help.stdout);
}

/// `ingest` logs itself in the catalog, for the web interface's ingest status
/// page: its inputs with the counts and rejections by reason its report gives,
/// and why a failed one published nothing.
#[test]
fn ingests_are_logged_in_the_catalog_with_their_rejections() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let dump = tmp.path().join("dump.txt");
    std::fs::write(
        &dump,
        "alice@example.com:pw1\nno separator here\nbob@example.com:pw2\n@bad:pw\ncarol@example.com:pw3\nanother line without one\n",
    )
    .unwrap();
    let dump = dump.to_str().unwrap();
    let run = leakwatch(&data, &["ingest", "--json", "--breach", "Logged", dump], None).ok("ingest");
    let report: Value = serde_json::from_str(run.stdout.trim()).unwrap();
    let failed = leakwatch(
        &data,
        &["ingest", "--breach", "Logged", tmp.path().join("missing").to_str().unwrap()],
        None,
    );
    assert_ne!(failed.code, 0);
    let invalid = leakwatch(&data, &["ingest", "--breach", "not a name!", dump], None);
    assert_ne!(invalid.code, 0);

    let db = rusqlite::Connection::open(data.join("catalog.sqlite")).unwrap();
    /// id, breach, status, message, records, new accounts
    type Row = (i64, String, String, Option<String>, i64, Option<i64>);
    let rows: Vec<Row> = db
        .prepare("SELECT id, breach, status, message, records, new_accounts FROM ingests ORDER BY id")
        .unwrap()
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?, r.get(5)?)))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    // A missing input is refused before anything starts: no row for it.
    assert_eq!(rows.len(), 2, "{rows:?}");
    let (id, breach, status, message, records, new_accounts) = &rows[0];
    assert_eq!((breach.as_str(), status.as_str(), message), ("Logged", "done", &None));
    assert_eq!(*records as u64, report["files"][0]["accepted"].as_u64().unwrap());
    assert_eq!(*new_accounts, Some(3));
    let (name, lines, accepted): (String, i64, i64) = db
        .query_row("SELECT name, lines, accepted FROM ingest_inputs WHERE ingest_id = ?1", [id], |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?))
        })
        .unwrap();
    assert_eq!((name.as_str(), lines, accepted), (dump, 6, 3));
    let rejected: BTreeMap<String, (u64, String)> = db
        .prepare("SELECT reason, count, sample_lines FROM ingest_rejections WHERE ingest_id = ?1")
        .unwrap()
        .query_map([id], |r| Ok((r.get::<_, String>(0)?, (r.get::<_, i64>(1)? as u64, r.get(2)?))))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    let reported: BTreeMap<String, (u64, String)> = report["files"][0]["rejected"]
        .as_object()
        .unwrap()
        .iter()
        .map(|(reason, r)| {
            let lines: Vec<String> =
                r["sample_lines"].as_array().unwrap().iter().map(|n| n.to_string()).collect();
            (reason.clone(), (r["count"].as_u64().unwrap(), lines.join(",")))
        })
        .collect();
    assert_eq!(rejected, reported);
    assert_eq!(rejected["no separator"], (2, "2,6".to_owned()), "{rejected:?}");
    let (status, message) = (&rows[1].2, rows[1].3.as_deref().unwrap());
    assert_eq!(status, "failed");
    assert!(message.contains("not a name!"), "{message}");
}
