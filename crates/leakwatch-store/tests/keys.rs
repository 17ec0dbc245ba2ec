//! The data key (docs/security.md): a rekey under readers that keep answering,
//! and wrong or missing keys refused with a clear error, never garbage answers.
//!
//! One test function: the key ring is found through environment variables,
//! which every thread of a test binary shares.

use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use leakwatch_ingest::Input;
use leakwatch_store::{ingest, rekey, BreachInfo, DataDir, IngestOptions, Progress, Store, StoreError};
use leakwatch_types::{sha1, Account};

fn run(data: &DataDir, breach: &str, file: &Path) {
    let options = IngestOptions {
        breach: BreachInfo { name: breach.into(), ..BreachInfo::default() },
        format: None,
        memory_budget: 64 << 20,
    };
    let inputs = vec![Input::open(file.to_str().unwrap()).unwrap()];
    ingest(data, &options, inputs, &Progress::default(), &mut |_| {}).unwrap();
}

/// A domain's aliases with their breaches.
type Aliases = Vec<(String, Vec<String>)>;

/// Every answer this test checks, as one comparable value.
fn answers(store: &Store) -> (Vec<String>, Aliases, u64) {
    let alice = Account::email("alice@corp.example").unwrap();
    let breaches = store.account_breaches(&alice).unwrap().into_iter().map(|b| b.name.clone()).collect();
    let domain = store.domain("corp.example").unwrap().into_iter().collect();
    (breaches, domain, store.sha1_count(&sha1(b"correct horse")).unwrap())
}

#[test]
fn rekey_keeps_readers_answering_and_other_keys_are_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let ring = tmp.path().join("ring.key");
    // SAFETY of the process-wide change: this binary's only test sets it first.
    std::env::set_var("LEAKWATCH_KEY_FILE", &ring);
    std::env::remove_var("LEAKWATCH_KEY");
    std::env::remove_var("LEAKWATCH_KEY_COMMAND");
    let data = DataDir::new(tmp.path().join("data"));
    let mut lines = String::new();
    for i in 0..5000 {
        lines.push_str(&format!("user{i}@corp.example:password{}\n", i % 300));
    }
    lines.push_str("alice@corp.example:correct horse\nbob@corp.example:correct horse\n");
    let file = tmp.path().join("dump.txt");
    std::fs::write(&file, lines).unwrap();
    run(&data, "First", &file);
    run(&data, "Second", &file);
    let want = answers(&Store::open(&data).unwrap());
    assert_eq!(want.0, ["First", "Second"]);
    assert_eq!(want.1.len(), 5002);
    assert_eq!(want.2, 4, "two accounts in two breaches");

    // Readers open the current generation over and over while keys rotate.
    let stop = AtomicBool::new(false);
    let reads = AtomicU64::new(0);
    std::thread::scope(|s| {
        for _ in 0..2 {
            s.spawn(|| {
                while !stop.load(Ordering::Relaxed) {
                    let store = Store::open(&data).expect("a reader always opens");
                    assert_eq!(answers(&store), want, "a reader's answers during rekey");
                    reads.fetch_add(1, Ordering::Relaxed);
                }
            });
        }
        for _ in 0..3 {
            let before = std::fs::read_to_string(&ring).unwrap();
            let summary = rekey(&data).unwrap();
            assert_ne!(summary.old_key, summary.new_key);
            let after = std::fs::read_to_string(&ring).unwrap();
            assert!(
                !after.contains(&summary.old_key) && before.contains(&summary.old_key),
                "old key retired"
            );
        }
        stop.store(true, Ordering::Relaxed);
    });
    assert!(reads.load(Ordering::Relaxed) > 0);
    assert_eq!(answers(&Store::open(&data).unwrap()), want, "after rekey");

    // Another ring (here a random data key in the environment) is refused.
    std::env::set_var("LEAKWATCH_KEY", "11".repeat(32));
    match Store::open(&data) {
        Err(StoreError::Key(message)) => assert!(message.contains("wrong data key"), "{message}"),
        Err(other) => panic!("not a key error: {other}"),
        Ok(_) => panic!("a wrong key opened the store"),
    }
    std::env::remove_var("LEAKWATCH_KEY");
    // A missing key file too.
    std::env::set_var("LEAKWATCH_KEY_FILE", tmp.path().join("nowhere.key"));
    match Store::open(&data) {
        Err(StoreError::Key(message)) => assert!(message.contains("is missing"), "{message}"),
        Err(other) => panic!("not a key error: {other}"),
        Ok(_) => panic!("a missing key opened the store"),
    }
    std::env::set_var("LEAKWATCH_KEY_FILE", &ring);
    assert_eq!(answers(&Store::open(&data).unwrap()), want);
}
