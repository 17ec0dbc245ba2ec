//! The store's promises, end to end through real files: answers are exact,
//! ingest is idempotent and order-independent, spilling changes nothing,
//! compaction changes nothing, and leftovers of a killed ingest are ignored
//! and then removed. The promises that hold whatever the storage are checked
//! on each storage the store runs on ([`each_storage`]).

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use leakwatch_ingest::Input;
use leakwatch_store::storage::MemoryStorage;
use leakwatch_store::{
    ingest, BreachInfo, DataDir, IngestOptions, Progress, RangeIndex, RangeKind, Store, StoreError,
};
use leakwatch_types::{sha1, Account};

/// A new store named `name` under `root` on each storage: the local
/// directory and memory. Each key file sits beside its store in `root`.
fn each_storage(root: &Path, name: &str) -> Vec<DataDir> {
    let local = DataDir::new(root.join(format!("{name}-local")));
    let memory_root = root.join(format!("{name}-memory"));
    let memory = Arc::new(MemoryStorage::new(memory_root.join("segments")).unwrap());
    let memory = DataDir::with_storage(&memory_root, memory);
    for data in [&local, &memory] {
        let key = data.root().with_extension("key");
        data.init(Some(&key)).unwrap();
    }
    vec![local, memory]
}

/// A deterministic combo list: `n` lines over `people` addresses and a small
/// password vocabulary, so that accounts and passwords repeat.
fn combo(seed: u64, n: usize, people: usize) -> Vec<(String, String)> {
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    let mut next = move || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    let domains = ["example-corp.com", "gmail.com", "mail.ru", "web.de"];
    (0..n)
        .map(|_| {
            let person = next() as usize % people;
            let email = format!("User{person}@{}", domains[person % domains.len()]);
            let password = format!("pass{}", next() % 50);
            (email, password)
        })
        .collect()
}

fn write(dir: &Path, name: &str, lines: &[(String, String)]) -> PathBuf {
    let path = dir.join(name);
    let text: String = lines.iter().map(|(e, p)| format!("{e}:{p}\n")).collect();
    std::fs::write(&path, text).unwrap();
    path
}

fn run(data: &DataDir, breach: &str, files: &[PathBuf], budget: u64) {
    let options = IngestOptions {
        breach: BreachInfo { name: breach.into(), ..BreachInfo::default() },
        format: None,
        memory_budget: budget,
    };
    let inputs = files.iter().map(|f| Input::open(f.to_str().unwrap()).unwrap()).collect();
    ingest(data, &options, inputs, &Progress::default(), &mut |_| {}).unwrap();
}

/// What the store should answer, computed from the lines by the definition.
#[derive(Default)]
struct Model {
    accounts: BTreeMap<String, BTreeSet<String>>,
    triples: BTreeSet<(String, String, String)>,
}

impl Model {
    fn add(&mut self, breach: &str, lines: &[(String, String)]) {
        for (e, p) in lines {
            let e = e.to_lowercase();
            self.accounts.entry(e.clone()).or_default().insert(breach.to_owned());
            self.triples.insert((breach.to_owned(), e, p.clone()));
        }
    }

    fn check(&self, data: &DataDir) {
        let store = Store::open(data).unwrap();
        for (email, breaches) in &self.accounts {
            let got: BTreeSet<String> = store
                .account_breaches(&Account::email(email).unwrap())
                .unwrap()
                .into_iter()
                .map(|b| b.name.clone())
                .collect();
            assert_eq!(&got, breaches, "{email}");
        }
        let mut counts: BTreeMap<&str, u64> = BTreeMap::new();
        for (_, _, p) in &self.triples {
            *counts.entry(p).or_default() += 1;
        }
        for (p, n) in counts {
            assert_eq!(store.sha1_count(&sha1(p.as_bytes())).unwrap(), n, "password {p}");
            assert_eq!(store.ntlm_count(&leakwatch_types::ntlm(p.as_bytes())).unwrap(), n, "ntlm {p}");
        }
        assert_eq!(store.sha1_count(&sha1(b"never used")).unwrap(), 0);
        let mut pwn: BTreeMap<&str, u64> = BTreeMap::new();
        for breaches in self.accounts.values() {
            for b in breaches {
                *pwn.entry(b).or_default() += 1;
            }
        }
        for b in store.breaches() {
            assert_eq!(pwn[b.name.as_str()], b.pwn_count, "PwnCount of {}", b.name);
        }
        let corp = store.domain("example-corp.com").unwrap();
        let want: BTreeMap<String, Vec<String>> = self
            .accounts
            .iter()
            .filter_map(|(e, b)| {
                let (alias, domain) = e.split_once('@')?;
                (domain == "example-corp.com").then(|| (alias.to_owned(), b.iter().cloned().collect()))
            })
            .collect();
        assert_eq!(corp, want);
        let (checked, damage) = store.verify();
        assert!(checked > 0 && damage.is_empty(), "{damage:?}");
    }
}

#[test]
fn answers_are_exact_and_reingest_changes_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let a = combo(1, 3000, 700);
    let b = combo(2, 2000, 900);
    let fa = write(tmp.path(), "a.txt", &a);
    let fb = write(tmp.path(), "b.txt", &b);
    let mut model = Model::default();
    model.add("Alpha", &a);
    model.add("Beta", &b);

    for data in each_storage(tmp.path(), "data") {
        run(&data, "Alpha", std::slice::from_ref(&fa), 1 << 30);
        run(&data, "Beta", std::slice::from_ref(&fb), 1 << 30);
        model.check(&data);

        let before = Store::open(&data).unwrap().stats().unwrap();
        run(&data, "Alpha", std::slice::from_ref(&fa), 1 << 30);
        run(&data, "Beta", std::slice::from_ref(&fb), 1 << 30);
        model.check(&data);
        let after = Store::open(&data).unwrap().stats().unwrap();
        assert_eq!(before.credentials, after.credentials);
        assert_eq!(before.records, after.records);
    }
}

#[test]
fn spilling_split_ingests_and_order_give_the_same_answers() {
    let tmp = tempfile::tempdir().unwrap();
    let lines = combo(7, 40_000, 9000);
    let (first, second) = lines.split_at(17_000);
    let whole = write(tmp.path(), "whole.txt", &lines);
    let f1 = write(tmp.path(), "one.txt", first);
    let f2 = write(tmp.path(), "two.txt", second);
    let mut model = Model::default();
    model.add("Gamma", &lines);

    // One ingest, in memory.
    for d1 in each_storage(tmp.path(), "d1") {
        run(&d1, "Gamma", std::slice::from_ref(&whole), 1 << 30);
        model.check(&d1);
    }
    // One ingest with the smallest budget: many spilled runs, merged.
    for d2 in each_storage(tmp.path(), "d2") {
        run(&d2, "Gamma", std::slice::from_ref(&whole), 1);
        model.check(&d2);
    }
    // Two ingests into the same breach, in the other order.
    for d3 in each_storage(tmp.path(), "d3") {
        run(&d3, "Gamma", std::slice::from_ref(&f2), 1 << 30);
        run(&d3, "Gamma", std::slice::from_ref(&f1), 1 << 30);
        model.check(&d3);
    }
}

#[test]
fn many_small_ingests_are_compacted_without_changing_answers() {
    let tmp = tempfile::tempdir().unwrap();
    for data in each_storage(tmp.path(), "data") {
        let mut model = Model::default();
        for i in 0..12u64 {
            let lines = combo(100 + i, 300, 400);
            let breach = format!("Small{}", i % 4);
            model.add(&breach, &lines);
            let f = write(tmp.path(), &format!("s{i}.txt"), &lines);
            run(&data, &breach, &[f], 1 << 30);
        }
        model.check(&data);
        // All in the lowest size tier: at most 8 segments of a kind, or 4
        // of each breach's counts and triples (merged only within a breach).
        let stats = Store::open(&data).unwrap().stats().unwrap();
        let segments = data.manifest().unwrap().expect("a manifest").segments;
        for (kind, k) in &stats.kinds {
            let mut per_breaches: BTreeMap<&[u32], usize> = BTreeMap::new();
            for s in segments.iter().filter(|s| s.kind == *kind) {
                *per_breaches.entry(&s.breaches).or_default() += 1;
            }
            assert!(
                k.segments <= 8 || per_breaches.values().all(|&n| n <= 4),
                "{kind} has {} segments: {per_breaches:?}",
                k.segments
            );
        }
        // Compaction deleted what it merged: the storage holds only live objects.
        let live = data.storage().list().unwrap().len();
        let named: usize = stats.kinds.values().map(|k| k.segments).sum();
        assert_eq!(live, named, "{}", data.root().display());
    }
}

#[test]
fn leftovers_of_a_killed_ingest_are_invisible_then_removed() {
    let tmp = tempfile::tempdir().unwrap();
    let data = DataDir::new(tmp.path().join("data"));
    data.init(Some(&tmp.path().join("data.key"))).unwrap();
    let lines = combo(3, 1000, 300);
    let f = write(tmp.path(), "a.txt", &lines);
    run(&data, "Alpha", std::slice::from_ref(&f), 1 << 30);
    let mut model = Model::default();
    model.add("Alpha", &lines);

    // What a writer killed mid-way leaves: a half-built segment, a finished but
    // unpublished one, scratch runs, and a manifest draft.
    std::fs::write(data.segments().join("sha1-999-1.building"), b"half").unwrap();
    std::fs::write(data.segments().join("accounts-0123456789abcdef0123456789abcdef.seg"), b"junk").unwrap();
    std::fs::create_dir_all(data.tmp().join("ingest-999")).unwrap();
    std::fs::write(data.tmp().join("ingest-999/credentials-0000.run"), b"junk").unwrap();
    std::fs::write(data.root().join("MANIFEST.tmp"), b"{not json").unwrap();
    model.check(&data);

    let other = combo(4, 500, 200);
    model.add("Beta", &other);
    let g = write(tmp.path(), "b.txt", &other);
    run(&data, "Beta", &[g], 1 << 30);
    model.check(&data);
    assert!(!data.segments().join("sha1-999-1.building").exists());
    assert!(!data.segments().join("accounts-0123456789abcdef0123456789abcdef.seg").exists());
    assert!(!data.tmp().join("ingest-999").exists());
}

#[test]
fn a_second_writer_is_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let data = DataDir::new(tmp.path().join("data"));
    data.init(Some(&tmp.path().join("data.key"))).unwrap();
    data.create().unwrap();
    let _held = data.lock().unwrap();
    let err = data.lock().err().expect("second lock must fail");
    assert!(err.to_string().contains("another leakwatch process"), "{err}");
}

#[test]
fn range_is_the_sorted_union_of_segments() {
    let tmp = tempfile::tempdir().unwrap();
    let data = DataDir::new(tmp.path().join("data"));
    data.init(Some(&tmp.path().join("data.key"))).unwrap();
    let a = combo(11, 2000, 500);
    let b = combo(12, 2000, 500);
    run(&data, "Alpha", &[write(tmp.path(), "a.txt", &a)], 1 << 30);
    run(&data, "Beta", &[write(tmp.path(), "b.txt", &b)], 1 << 30);
    let store = Store::open(&data).unwrap();
    let h = sha1(b"pass7");
    let prefix = u32::from_be_bytes([0, h[0], h[1], h[2]]) >> 4;
    let range = store.range(false, prefix).unwrap();
    let hit = range.iter().find(|(k, _)| k[..20] == h).expect("pass7 in its range");
    assert_eq!(hit.1, store.sha1_count(&h).unwrap());
    assert!(range.windows(2).all(|w| w[0].0 < w[1].0));
    assert!(range.iter().all(|(k, _)| (u32::from_be_bytes([0, k[0], k[1], k[2]]) >> 4) == prefix));
}

/// Regression: a triple known once as a plaintext and once as a bare hash column
/// counts once in each corpus, and a hash-only row counts only in its own corpus.
#[test]
fn a_triple_seen_as_plaintext_and_as_a_hash_counts_once_per_corpus() {
    use leakwatch_types::{encode_hex_upper, ntlm};
    let tmp = tempfile::tempdir().unwrap();
    let data = DataDir::new(tmp.path().join("data"));
    data.init(Some(&tmp.path().join("data.key"))).unwrap();
    let sha = encode_hex_upper(&sha1(b"password"));
    let nt = encode_hex_upper(&ntlm(b"password"));
    let csv = tmp.path().join("a.csv");
    std::fs::write(
        &csv,
        format!(
            "email,password,sha1\nb@x.com,,{sha}\na@x.com,password,{sha}\na@x.com,,{sha}\n\
             c@x.com,,{}\n",
            sha.to_lowercase()
        ),
    )
    .unwrap();
    let ntlm_csv = tmp.path().join("b.csv");
    std::fs::write(&ntlm_csv, format!("email,ntlm\na@x.com,{nt}\nd@x.com,{nt}\n")).unwrap();
    run(&data, "Mixed", &[csv, ntlm_csv], 1 << 30);
    let store = Store::open(&data).unwrap();
    // SHA-1: a (plaintext and hash, one triple), b, c.
    assert_eq!(store.sha1_count(&sha1(b"password")).unwrap(), 3);
    // NTLM: a (plaintext and NTLM column, one triple), d.
    assert_eq!(store.ntlm_count(&ntlm(b"password")).unwrap(), 2);
}

/// No plaintext password reaches any file of the data directory, whatever was
/// spilled on the way (the runs hold digests only).
#[test]
fn no_plaintext_password_reaches_the_disk() {
    let tmp = tempfile::tempdir().unwrap();
    let data = DataDir::new(tmp.path().join("data"));
    data.init(Some(&tmp.path().join("data.key"))).unwrap();
    let lines: Vec<(String, String)> = (0..20_000)
        .map(|i| (format!("user{i}@example-corp.com"), format!("Plaintext-Canary-{i:05}")))
        .collect();
    let f = write(tmp.path(), "a.txt", &lines);
    run(&data, "Canary", &[f], 1);
    let mut files = vec![data.root().to_owned()];
    let mut scanned = 0;
    while let Some(path) = files.pop() {
        if path.is_dir() {
            files.extend(std::fs::read_dir(&path).unwrap().map(|e| e.unwrap().path()));
            continue;
        }
        let bytes = std::fs::read(&path).unwrap();
        assert!(
            !bytes.windows(b"Plaintext-Canary".len()).any(|w| w == b"Plaintext-Canary"),
            "a plaintext password is in {}",
            path.display()
        );
        scanned += 1;
    }
    assert!(scanned >= 6, "scanned only {scanned} files");
}

/// The manifest of `data`, as published.
fn manifest(data: &DataDir) -> leakwatch_store::Manifest {
    leakwatch_store::Manifest::load(data.root()).unwrap().expect("a manifest")
}

#[test]
fn a_directory_without_a_manifest_holds_no_store() {
    let tmp = tempfile::tempdir().unwrap();
    let no_store = |dir: &DataDir| match Store::open(dir) {
        Err(StoreError::NoStore { reason, path }) => {
            assert_eq!(path, dir.root());
            reason
        }
        Err(e) => panic!("{e}"),
        Ok(_) => panic!("{} opened as a store", dir.root().display()),
    };
    assert_eq!(no_store(&DataDir::new(tmp.path().join("missing"))), "no such directory");
    let empty = DataDir::new(tmp.path().join("empty"));
    std::fs::create_dir(empty.root()).unwrap();
    assert_eq!(no_store(&empty), "no MANIFEST");
    let file = write(tmp.path(), "file.txt", &[]);
    assert_eq!(no_store(&DataDir::new(&file)), "not a directory");
    let foreign = DataDir::new(tmp.path().join("foreign"));
    std::fs::create_dir(foreign.root()).unwrap();
    std::fs::write(foreign.root().join("notes.md"), "mine").unwrap();
    assert_eq!(no_store(&foreign), "no MANIFEST");
    // Nobody opening a directory without a store made one.
    assert!(!tmp.path().join("missing").exists() && !empty.exists() && !foreign.exists());

    // A writer makes a store in a missing or empty directory, not among other files.
    let lines = combo(5, 50, 20);
    let f = write(tmp.path(), "a.txt", &lines);
    let options = IngestOptions {
        breach: BreachInfo { name: "Alpha".into(), ..BreachInfo::default() },
        format: None,
        memory_budget: 1 << 30,
    };
    let refused = ingest(
        &foreign,
        &options,
        vec![Input::open(f.to_str().unwrap()).unwrap()],
        &Progress::default(),
        &mut |_| {},
    );
    match refused {
        Err(e @ StoreError::NotEmpty { .. }) => {
            assert!(e.to_string().contains("refusing to create a store in non-empty directory"), "{e}");
        }
        Err(e) => panic!("{e}"),
        Ok(_) => panic!("a store was made among other files"),
    }
    assert!(!foreign.exists() && !foreign.segments().exists());
    empty.init(Some(&tmp.path().join("empty.key"))).unwrap();
    run(&empty, "Alpha", &[f], 1 << 30);
    let mut model = Model::default();
    model.add("Alpha", &lines);
    model.check(&empty);

    // A store with a key and nothing in it yet is a store: it answers "none".
    let fresh = DataDir::new(tmp.path().join("fresh"));
    fresh.init(Some(&tmp.path().join("fresh.key"))).unwrap();
    let store = Store::open(&fresh).unwrap();
    assert!(store.breaches().is_empty());
    assert!(store.account_breaches(&Account::email("a@example.com").unwrap()).unwrap().is_empty());
    assert_eq!(store.sha1_count(&sha1(b"password")).unwrap(), 0);
}

/// Flips the bits of the byte at `at` of `path`.
fn flip(path: &Path, at: u64) {
    let mut bytes = std::fs::read(path).unwrap();
    bytes[at as usize] ^= 0xFF;
    std::fs::write(path, bytes).unwrap();
}

/// The file of `breach`'s segment of `kind` (one ingest each, not compacted).
fn segment_of(data: &DataDir, kind: &str, breach: &str) -> PathBuf {
    let m = manifest(data);
    let id = m.breach(breach).unwrap().id;
    let s = m.segments.iter().find(|s| s.kind == kind && s.breaches == [id]).expect("its segment");
    data.segments().join(&s.file)
}

#[test]
fn a_damaged_segment_fails_only_the_lookups_that_need_it_until_repair_sets_it_aside() {
    let tmp = tempfile::tempdir().unwrap();
    let data = DataDir::new(tmp.path().join("data"));
    data.init(Some(&tmp.path().join("data.key"))).unwrap();
    let (a, b) = (combo(11, 400, 100), combo(12, 300, 80));
    run(&data, "Alpha", &[write(tmp.path(), "a.txt", &a)], 1 << 30);
    run(&data, "Beta", &[write(tmp.path(), "b.txt", &b)], 1 << 30);
    let m = manifest(&data);
    let (alpha, beta) = (m.breach("Alpha").unwrap().id, m.breach("Beta").unwrap().id);
    for s in m.segments.iter().filter(|s| !s.kind.ends_with("-totals")) {
        assert!(s.breaches == [alpha] || s.breaches == [beta], "{s:?}");
    }

    // Alpha's SHA-1 counts damaged in their entries (found on reading), Beta's
    // domain index in its header (found on opening).
    let sha1_alpha = segment_of(&data, "sha1", "Alpha");
    flip(&sha1_alpha, 140);
    let domains_beta = segment_of(&data, "domains", "Beta");
    flip(&domains_beta, 20);

    let store = Store::open(&data).expect("damage does not stop the open");
    let mut model = Model::default();
    model.add("Alpha", &a);
    model.add("Beta", &b);
    for (email, breaches) in &model.accounts {
        let got: BTreeSet<String> = store
            .account_breaches(&Account::email(email).unwrap())
            .unwrap()
            .into_iter()
            .map(|b| b.name.clone())
            .collect();
        assert_eq!(&got, breaches, "{email}: the accounts are whole");
    }
    assert!(store.ntlm_count(&leakwatch_types::ntlm(b"pass1")).unwrap() > 0);
    let damaged = |r: Result<_, StoreError>, kind: &str, breach: &str, path: &Path| match r {
        Err(e @ StoreError::Damaged { .. }) => {
            let text = e.to_string();
            assert!(text.contains(&format!("the {kind} data of breach {breach} is damaged")), "{text}");
            assert!(text.contains(&path.display().to_string()), "{text}");
        }
        Err(e) => panic!("{e}"),
        Ok(_) => panic!("a partial answer"),
    };
    damaged(store.sha1_count(&sha1(b"pass1")).map(|_| ()), "sha1", "Alpha", &sha1_alpha);
    damaged(store.sha1_count(&sha1(b"never used")).map(|_| ()), "sha1", "Alpha", &sha1_alpha);
    damaged(store.domain("example-corp.com").map(|_| ()), "domains", "Beta", &domains_beta);
    assert!(matches!(store.stats(), Err(StoreError::Damaged { .. })), "stats reads every kind");
    let (checked, damage) = store.verify();
    assert_eq!(checked, m.segments.len());
    let mut listed: Vec<(&str, &Path, &[u32])> = damage
        .iter()
        .map(|d| (d.segment.kind.as_str(), d.path.as_path(), d.segment.breaches.as_slice()))
        .collect();
    listed.sort();
    assert_eq!(
        listed,
        [("domains", domains_beta.as_path(), &[beta][..]), ("sha1", sha1_alpha.as_path(), &[alpha][..])]
    );
    assert!(damage.iter().all(|d| d.problem.contains("data corruption at offset")), "{damage:?}");
    drop(store);
    // The server's ranges read the totals summed from both breaches, which
    // hold Alpha's counts whole; without them, SHA-1 ranges fail naming Alpha.
    let ranges = RangeIndex::open(&data).expect("damage does not stop the open");
    let prefix = 0x5BAA6;
    assert!(ranges.body(RangeKind::Sha1, prefix).is_ok());
    assert!(ranges.body(RangeKind::Ntlm, prefix).is_ok());
    drop(ranges);
    let totals = m.segments.iter().find(|s| s.kind == "sha1-totals").expect("two breaches are summed");
    let totals_path = data.segments().join(&totals.file);
    let kept = std::fs::read(&totals_path).unwrap();
    std::fs::write(&totals_path, b"not a segment").unwrap();
    let ranges = RangeIndex::open(&data).expect("damage does not stop the open");
    damaged(ranges.body(RangeKind::Sha1, prefix).map(|_| ()), "sha1", "Alpha", &sha1_alpha);
    assert!(ranges.body(RangeKind::Ntlm, prefix).is_ok());
    drop(ranges);
    std::fs::write(&totals_path, kept).unwrap();

    let summary = leakwatch_store::repair(&data).unwrap();
    assert_eq!(summary.set_aside.len(), 2);
    assert_eq!(summary.reingest, ["Alpha", "Beta"]);
    for path in [&sha1_alpha, &domains_beta] {
        let name = path.file_name().unwrap();
        assert!(!path.exists());
        assert!(data.root().join("damaged").join(name).exists());
        let note = data.root().join("damaged").join(format!("{}.txt", name.to_str().unwrap()));
        assert!(std::fs::read_to_string(note).unwrap().contains("problem: data corruption"));
    }
    let store = Store::open(&data).unwrap();
    assert!(store.damaged().is_empty() && store.verify().1.is_empty());
    // What is left answers: Beta's SHA-1 counts, Alpha's domain entries.
    let beta_only: BTreeSet<&str> = b.iter().map(|(_, p)| p.as_str()).collect();
    let p = beta_only.iter().next().unwrap();
    assert!(store.sha1_count(&sha1(p.as_bytes())).is_ok());
    assert!(store.domain("example-corp.com").is_ok());
    assert!(RangeIndex::open(&data).unwrap().body(RangeKind::Sha1, prefix).is_ok());
    assert_eq!(manifest(&data).needing_reingest(), ["Alpha", "Beta"]);
    // A second repair finds nothing more; ingesting a breach again clears its mark.
    assert!(leakwatch_store::repair(&data).unwrap().set_aside.is_empty());
    run(&data, "Beta", &[write(tmp.path(), "b.txt", &b)], 1 << 30);
    assert_eq!(manifest(&data).needing_reingest(), ["Alpha"]);
}

#[test]
fn compaction_records_the_breaches_it_merged() {
    let tmp = tempfile::tempdir().unwrap();
    let data = DataDir::new(tmp.path().join("data"));
    data.init(Some(&tmp.path().join("data.key"))).unwrap();
    for i in 0..10u64 {
        let f = write(tmp.path(), &format!("s{i}.txt"), &combo(200 + i, 30, 20));
        run(&data, &format!("Small{i}"), &[f], 1 << 30);
    }
    let m = manifest(&data);
    let all: Vec<u32> = (1..=10).collect();
    let merged: Vec<_> = m.segments.iter().filter(|s| s.breaches.len() > 1).collect();
    assert!(!merged.is_empty(), "compaction ran");
    for s in merged {
        assert_eq!(s.breaches, all[..s.breaches.len()], "{s:?}");
    }
}

impl Model {
    /// The answers once `breach` is removed.
    fn remove(&mut self, breach: &str) {
        for breaches in self.accounts.values_mut() {
            breaches.remove(breach);
        }
        self.accounts.retain(|_, b| !b.is_empty());
        self.triples.retain(|(b, _, _)| b != breach);
    }
}

/// A hash and its count in a Pwned Passwords range.
type RangeEntry = ([u8; 32], u64);

/// Every Pwned Passwords range the model's passwords fall in, both corpora,
/// as the store and as `/range`'s index answer it.
fn ranges(data: &DataDir) -> (Vec<Vec<RangeEntry>>, Vec<Vec<u8>>) {
    let store = Store::open(data).unwrap();
    let index = RangeIndex::open(data).unwrap();
    let mut bodies = Vec::new();
    let mut out = Vec::new();
    for p in 0..50 {
        let password = format!("pass{p}");
        for (ntlm, h) in [
            (false, sha1(password.as_bytes()).to_vec()),
            (true, leakwatch_types::ntlm(password.as_bytes()).to_vec()),
        ] {
            let prefix = u32::from_be_bytes([0, h[0], h[1], h[2]]) >> 4;
            out.push(store.range(ntlm, prefix).unwrap());
            let kind = if ntlm { RangeKind::Ntlm } else { RangeKind::Sha1 };
            let mut body = Vec::new();
            index.write_range(kind, prefix, &mut [], &mut body).unwrap();
            bodies.push(body);
        }
    }
    (out, bodies)
}

/// Segments rolled over at 1,000 entries and 8 KiB of payloads (the format's
/// limits are 2^32 - 1 and 4 GiB): every answer is the same as with one
/// segment a kind, through ingest in memory and spilled, re-ingest,
/// compaction and breach removal; no segment passes a limit.
#[test]
fn segments_rolled_over_at_their_limits_answer_as_one() {
    const ENTRIES: u64 = 1000;
    const HEAP: u64 = 8 << 10;
    let tmp = tempfile::tempdir().unwrap();
    let plain = each_storage(tmp.path(), "plain");
    let rolled: Vec<DataDir> = each_storage(tmp.path(), "rolled")
        .into_iter()
        .map(|d| d.with_segment_limits(ENTRIES, HEAP, 8 << 20))
        .collect();
    let mut model = Model::default();
    let mut files = Vec::new();
    for i in 0..12u64 {
        let lines = combo(300 + i, if i < 2 { 6000 } else { 700 }, 4000);
        let breach = format!("Roll{}", i % 5);
        model.add(&breach, &lines);
        files.push((breach, write(tmp.path(), &format!("r{i}.txt"), &lines)));
    }
    for data in plain.iter().chain(&rolled) {
        for (i, (breach, f)) in files.iter().enumerate() {
            // Both ways the domain index is written: from memory and spilled.
            let budget = if i % 2 == 0 { 1 << 30 } else { 1 };
            run(data, breach, std::slice::from_ref(f), budget);
        }
        run(data, &files[0].0, std::slice::from_ref(&files[0].1), 1 << 30);
        model.check(data);
    }
    let within_limits = |data: &DataDir| {
        for s in &data.manifest().unwrap().expect("a manifest").segments {
            assert!(s.entries <= ENTRIES, "{s:?}");
        }
        let stats = Store::open(data).unwrap().stats().unwrap();
        for kind in ["accounts", "domains", "credential-keys"] {
            assert!(stats.kinds[kind].segments > 1, "{kind} rolled over: {:?}", stats.kinds[kind]);
        }
    };
    let totals = |data: &DataDir| {
        let s = Store::open(data).unwrap().stats().unwrap();
        (s.records, s.credentials, s.unique_accounts, s.unique_sha1, s.unique_ntlm)
    };
    for data in &rolled {
        within_limits(data);
        assert_eq!(ranges(data), ranges(&plain[0]));
        assert_eq!(totals(data), totals(&plain[0]));
    }
    let mut after = model;
    after.remove("Roll0");
    for data in plain.iter().chain(&rolled) {
        leakwatch_store::remove_breach(data, "Roll0").unwrap();
        after.check(data);
    }
    for data in &rolled {
        assert_eq!(ranges(data), ranges(&plain[0]));
        for s in &data.manifest().unwrap().expect("a manifest").segments {
            assert!(s.entries <= ENTRIES, "{s:?}");
        }
    }
}

/// Size-tiered compaction, its lowest tier ending at 32 kB: a large breach's
/// segments are never rewritten by the many small ingests after it, each
/// kind keeps a few segments a tier, and every answer stays exact.
#[test]
fn small_ingests_never_rewrite_a_large_segment() {
    let tmp = tempfile::tempdir().unwrap();
    for data in each_storage(tmp.path(), "tiers") {
        let data = data.with_segment_limits(u64::MAX, u64::MAX, 8 << 10);
        let mut model = Model::default();
        let large = combo(500, 20_000, 15_000);
        model.add("Large", &large);
        run(&data, "Large", &[write(tmp.path(), "large.txt", &large)], 1 << 30);
        let kept: Vec<String> = data
            .manifest()
            .unwrap()
            .expect("a manifest")
            .segments
            .iter()
            .filter(|s| ["accounts", "domains"].contains(&s.kind.as_str()))
            .map(|s| s.file.clone())
            .collect();
        assert_eq!(kept.len(), 2);
        let mut most = 0;
        for i in 0..40u64 {
            let lines = combo(600 + i, 20, 400);
            let breach = format!("Small{i}");
            model.add(&breach, &lines);
            run(&data, &breach, &[write(tmp.path(), &format!("t{i}.txt"), &lines)], 1 << 30);
            let segments = data.manifest().unwrap().expect("a manifest").segments;
            for file in &kept {
                assert!(segments.iter().any(|s| &s.file == file), "ingest {i} rewrote {file}");
            }
            let accounts = segments.iter().filter(|s| s.kind == "accounts").count();
            most = most.max(accounts);
        }
        // The large segment, and at most 4 in each of the tiers the small
        // ones fill (the largest 40 small ones make is under 32 kB x 4^2).
        assert!(most <= 1 + 4 * 3, "{most} account segments");
        assert!(most > 1, "the small ingests were merged");
        model.check(&data);
    }
}
