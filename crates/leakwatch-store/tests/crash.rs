//! Power-loss tests: every writer's sequence of storage steps cut at every
//! step, in every way a step can go wrong (a write that stops halfway, an
//! operation that never happens, one that happens but is never synced), then
//! a power loss ([`MemoryStorage::crash`]). The store must reopen whole and
//! answer exactly as before the write or as after it, never anything else;
//! the next writer must find nothing of the cut write but orphans it removes,
//! and running the write again must end where the uncut one did. The loop is
//! `leakwatch_store::testing`'s, which the object store's tests run too.
//!
//! The timed SIGKILL test of the CLI (`crates/leakwatch-cli/tests/crash.rs`) is the second
//! line: real files, a real process killed at a random moment.

use std::fmt::Write as _;
use std::path::PathBuf;
use std::sync::atomic::AtomicU64;
use std::sync::Arc;
use std::time::Duration;

use leakwatch_ingest::Input;
use leakwatch_store::storage::MemoryStorage;
use leakwatch_store::testing::{Cut, Cuts};
use leakwatch_store::{
    ingest, remove_breach, update_breach, BreachEdit, BreachInfo, DataDir, IngestOptions, Progress, Store,
    StoreError,
};

use leakwatch_types::{ntlm, sha1, Account};

const DOMAINS: [&str; 3] = ["example-corp.com", "gmail.com", "web.de"];

/// A combo list of `n` lines over `people` addresses and 40 passwords.
fn combo(seed: u64, n: usize, people: usize) -> String {
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    let mut next = move || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    (0..n)
        .map(|_| {
            let person = next() as usize % people;
            format!("user{person}@{}:pass{}\n", DOMAINS[person % DOMAINS.len()], next() % 40)
        })
        .collect()
}

/// A store in memory with its key file and inputs on disk, from which each
/// run forks its own copy.
struct Fixture {
    tmp: tempfile::TempDir,
    base: Arc<MemoryStorage>,
    key_file: PathBuf,
    runs: AtomicU64,
    /// Segment limits for [`DataDir::with_segment_limits`], when small.
    limits: Option<(u64, u64, u64)>,
}

impl Fixture {
    fn new() -> Fixture {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path().join("base");
        let base = Arc::new(MemoryStorage::new(root.join("segments")).unwrap());
        let key_file = tmp.path().join("data.key");
        DataDir::with_storage(&root, base.clone()).init(Some(&key_file)).unwrap();
        Fixture { base, key_file, runs: AtomicU64::new(0), tmp, limits: None }
    }

    fn input(&self, name: &str, text: &str) -> PathBuf {
        let path = self.tmp.path().join(name);
        std::fs::write(&path, text).unwrap();
        path
    }

    /// Writes to the fixture's own store, fault-free.
    fn setup(&mut self, write: impl FnOnce(&DataDir, &Fixture)) {
        let (data, mem) = self.fork();
        write(&data, self);
        self.base = mem;
    }

    /// A fresh copy of the store: its data directory and its storage.
    fn fork(&self) -> (DataDir, Arc<MemoryStorage>) {
        let n = self.runs.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let root = self.tmp.path().join(format!("run-{n}"));
        let mem = Arc::new(self.base.fork(root.join("segments")).unwrap());
        let data = DataDir::with_storage(&root, mem.clone());
        match self.limits {
            Some((entries, heap, tier_base)) => (data.with_segment_limits(entries, heap, tier_base), mem),
            None => (data, mem),
        }
    }
}

fn ingest_text(data: &DataDir, fixture: &Fixture, breach: &str, text: &str) -> Result<(), StoreError> {
    let path = fixture.input(&format!("{breach}.txt"), text);
    let options = IngestOptions {
        breach: BreachInfo { name: breach.into(), ..BreachInfo::default() },
        format: None,
        memory_budget: 1 << 30,
    };
    let input = Input::open(path.to_str().unwrap()).map_err(StoreError::from)?;
    ingest(data, &options, vec![input], &Progress::default(), &mut |_| {}).map(drop)
}

/// Everything a reader can ask, as text; no dates or key ids (which a write
/// run again sets anew).
fn answers(data: &DataDir) -> String {
    let store = Store::open(data).unwrap();
    let mut out = String::new();
    for b in store.breaches() {
        writeln!(out, "breach {} {} {:?} {}", b.name, b.pwn_count, b.data_classes, b.title).unwrap();
    }
    for person in 0..120 {
        let email = format!("user{person}@{}", DOMAINS[person % DOMAINS.len()]);
        let breaches = store.account_breaches(&Account::email(&email).unwrap()).unwrap();
        let names: Vec<&str> = breaches.iter().map(|b| b.name.as_str()).collect();
        writeln!(out, "{email} {names:?}").unwrap();
    }
    for p in 0..40 {
        let password = format!("pass{p}");
        let sha1 = store.sha1_count(&sha1(password.as_bytes())).unwrap();
        let ntlm = store.ntlm_count(&ntlm(password.as_bytes())).unwrap();
        writeln!(out, "{password} {sha1} {ntlm}").unwrap();
    }
    for domain in DOMAINS {
        writeln!(out, "{domain} {:?}", store.domain(domain).unwrap()).unwrap();
    }
    for (corpus, import) in store.pwned_passwords() {
        writeln!(out, "pwned {corpus} {} {} {}", import.source, import.hashes, import.lines).unwrap();
    }
    let (_, damage) = store.verify();
    assert!(damage.is_empty(), "{damage:?}");
    out
}

/// Cuts `write` at every step in every way (`leakwatch_store::testing`).
fn cut_everywhere(fixture: &Fixture, what: &str, write: impl Fn(&DataDir) -> Result<(), StoreError>) {
    cut_everywhere_seen_by(fixture, what, answers, write)
}

/// [`cut_everywhere`], comparing what `answers` sees.
fn cut_everywhere_seen_by(
    fixture: &Fixture,
    what: &str,
    answers: impl Fn(&DataDir) -> String,
    write: impl Fn(&DataDir) -> Result<(), StoreError>,
) {
    let fork = || {
        let (data, mem) = fixture.fork();
        (data, mem as Arc<dyn Cut>)
    };
    let cuts = Cuts {
        fork: &fork,
        key_file: &fixture.key_file,
        every: 1,
        every_fault: true,
        listing_lag: Duration::ZERO,
    };
    cuts.cut(what, answers, write);
}

#[test]
fn an_ingest_cut_anywhere_is_whole_or_absent() {
    let mut fixture = Fixture::new();
    let first = combo(1, 300, 60);
    fixture.setup(|data, fixture| ingest_text(data, fixture, "Alpha", &first).unwrap());
    let text = combo(2, 300, 120);
    cut_everywhere(&fixture, "a new breach's ingest", |data| ingest_text(data, &fixture, "Beta", &text));
    let more = combo(3, 200, 120);
    cut_everywhere(&fixture, "an ingest into a breach", |data| ingest_text(data, &fixture, "Alpha", &more));
}

/// Nine breaches: the ninth ingest finds nine account and domain segments
/// and merges them, so its cuts fall in the compaction too.
#[test]
fn an_ingest_and_its_compaction_cut_anywhere_are_whole_or_absent() {
    let mut fixture = Fixture::new();
    for b in 0..8u64 {
        let text = combo(10 + b, 60, 120);
        fixture.setup(|data, fixture| ingest_text(data, fixture, &format!("B{b}"), &text).unwrap());
    }
    let text = combo(30, 60, 120);
    cut_everywhere(&fixture, "an ingest that compacts", |data| ingest_text(data, &fixture, "Ninth", &text));
}

/// The same with segments rolled over at 40 entries and 4 kB of payloads and
/// the lowest size tier under 4 kB: the ingest writes several segments of a
/// kind, and its compaction merges the small ones into segments that roll
/// over.
#[test]
fn an_ingest_that_rolls_over_and_compacts_cut_anywhere_is_whole_or_absent() {
    let mut fixture = Fixture::new();
    fixture.limits = Some((40, 4 << 10, 1 << 10));
    for b in 0..8u64 {
        let text = combo(10 + b, 12, 120);
        fixture.setup(|data, fixture| ingest_text(data, fixture, &format!("B{b}"), &text).unwrap());
    }
    let text = combo(30, 90, 120);
    cut_everywhere(&fixture, "an ingest that rolls over and compacts", |data| {
        ingest_text(data, &fixture, "Ninth", &text)
    });
    let (data, _) = fixture.fork();
    ingest_text(&data, &fixture, "Ninth", &text).unwrap();
    let m = data.manifest().unwrap().expect("a manifest");
    assert!(m.segments.iter().all(|s| s.entries <= 40), "{:?}", m.segments);
    let accounts: Vec<_> = m.segments.iter().filter(|s| s.kind == "accounts").collect();
    // The ninth's accounts filled a segment (the rest merged with the small
    // ones), and the merge rolled over.
    assert!(accounts.iter().any(|s| s.breaches == [9] && s.entries == 40), "{accounts:?}");
    assert!(accounts.iter().filter(|s| s.breaches.len() > 1).count() > 1, "{accounts:?}");
}

/// Removal from compacted segments: the shared ones are rewritten, the
/// breach's own dropped.
#[test]
fn a_breach_removal_cut_anywhere_is_whole_or_absent() {
    let mut fixture = Fixture::new();
    for b in 0..9u64 {
        let text = combo(40 + b, 60, 120);
        fixture.setup(|data, fixture| ingest_text(data, fixture, &format!("B{b}"), &text).unwrap());
    }
    cut_everywhere(&fixture, "breach remove", |data| remove_breach(data, "B3").map(drop));
    let edit = BreachEdit { title: Some("Renamed".into()), ..BreachEdit::default() };
    cut_everywhere(&fixture, "breach set", |data| update_breach(data, "B4", &edit).map(drop));
}

#[test]
fn a_pwned_passwords_import_cut_anywhere_is_whole_or_absent() {
    let mut fixture = Fixture::new();
    let first = combo(50, 200, 60);
    fixture.setup(|data, fixture| ingest_text(data, fixture, "Alpha", &first).unwrap());
    let download = |counts: u64| {
        let mut lines: Vec<String> = (0..40)
            .map(|p| {
                let hex: String =
                    sha1(format!("pass{p}").as_bytes()).iter().map(|b| format!("{b:02X}")).collect();
                format!("{hex}:{}\n", p * counts + 1)
            })
            .collect();
        lines.sort();
        lines.concat()
    };
    let path = fixture.input("pwned.txt", &download(3));
    let import = |data: &DataDir| {
        leakwatch_store::import_pwned_passwords(
            data,
            path.to_str().unwrap(),
            false,
            1 << 30,
            &AtomicU64::new(0),
        )
        .map(drop)
    };
    cut_everywhere(&fixture, "a first import", import);
    fixture.setup(|data, _| import(data).unwrap());
    // A second import replaces the first; the same download again is put
    // under the name of the segment it replaces.
    cut_everywhere(&fixture, "the same import again", import);
    let newer = fixture.input("pwned-2.txt", &download(5));
    cut_everywhere(&fixture, "a newer import", |data| {
        leakwatch_store::import_pwned_passwords(
            data,
            newer.to_str().unwrap(),
            false,
            1 << 30,
            &AtomicU64::new(0),
        )
        .map(drop)
    });
}

/// Rekey rewrites every keyed segment under a new key: the answers stay, and
/// after a cut the store still opens with the key ring as the cut left it.
#[test]
fn a_rekey_cut_anywhere_leaves_a_readable_store() {
    let mut fixture = Fixture::new();
    for b in 0..2u64 {
        let text = combo(60 + b, 150, 120);
        fixture.setup(|data, fixture| ingest_text(data, fixture, &format!("B{b}"), &text).unwrap());
    }
    cut_everywhere(&fixture, "rekey", |data| leakwatch_store::rekey(data).map(drop));
}

/// What a store with damage answers: which segments `verify` finds damaged,
/// what it set aside, and each address's breaches or that its answer needs
/// damaged data (no paths: each run has its own).
fn answers_beside_damage(data: &DataDir) -> String {
    let store = Store::open(data).unwrap();
    let mut out = String::new();
    let (checked, damage) = store.verify();
    let damaged: Vec<&str> = damage.iter().map(|d| d.segment.file.as_str()).collect();
    writeln!(out, "checked {checked}, damaged {damaged:?}").unwrap();
    let set_aside: Vec<&str> = store.manifest().set_aside.iter().map(|s| s.segment.file.as_str()).collect();
    writeln!(out, "set aside {set_aside:?}").unwrap();
    for person in 0..120 {
        let email = format!("user{person}@{}", DOMAINS[person % DOMAINS.len()]);
        match store.account_breaches(&Account::email(&email).unwrap()) {
            Ok(breaches) => {
                let names: Vec<&str> = breaches.iter().map(|b| b.name.as_str()).collect();
                writeln!(out, "{email} {names:?}").unwrap();
            }
            Err(e) => {
                writeln!(out, "{email} needs damaged data: {}", e.to_string().contains("damaged")).unwrap()
            }
        }
    }
    out
}

/// Repair copies a damaged segment out, publishes a generation without it and
/// deletes it: cut anywhere, the store answers as before (the damage there,
/// found again) or as after (set aside), and the copy is never the only trace
/// lost.
#[test]
fn a_repair_cut_anywhere_is_whole_or_absent() {
    let mut fixture = Fixture::new();
    for b in 0..2u64 {
        let text = combo(70 + b, 150, 120);
        fixture.setup(|data, fixture| ingest_text(data, fixture, &format!("B{b}"), &text).unwrap());
    }
    let (data, _) = fixture.fork();
    let manifest = data.manifest().unwrap().unwrap();
    let b1 = manifest.breaches.iter().find(|b| b.name == "B1").unwrap().id;
    let accounts = manifest
        .segments
        .iter()
        .find(|s| s.kind == "accounts" && s.breaches == [b1])
        .expect("B1's account segment")
        .clone();
    fixture.base.damage(&accounts.file, accounts.bytes as usize / 2);
    let (data, _) = fixture.fork();
    let before = answers_beside_damage(&data);
    assert!(before.contains(&format!("damaged [\"{}\"]", accounts.file)), "{before}");
    cut_everywhere_seen_by(&fixture, "repair", answers_beside_damage, |data| {
        let summary = leakwatch_store::repair(data)?;
        assert_eq!(summary.reingest, ["B1"]);
        let copy = data.damaged().join(&accounts.file);
        assert_eq!(std::fs::metadata(&copy).map(|m| m.len()).ok(), Some(accounts.bytes), "the copy is whole");
        Ok(())
    });
}
