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

    the_keys_are_independent_and_private(&data, &ring, &want);
    an_old_ring_still_opens_and_its_audit_key_rotates(tmp.path(), &file);
}

fn ring_json(path: &Path) -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

/// A new ring's index and audit keys are random, not derived from its data
/// key; the audit key rotates alone; the ring and the directory are private.
fn the_keys_are_independent_and_private(data: &DataDir, ring: &Path, want: &(Vec<String>, Aliases, u64)) {
    use std::os::unix::fs::PermissionsExt;
    let json = ring_json(ring);
    let index = json["index"].as_str().unwrap().to_owned();
    let audit = json["audit"].as_array().expect("a new ring has audit keys");
    assert_eq!(audit.len(), 1);
    let audit_root = audit[0]["key"].as_str().unwrap().to_owned();
    assert_ne!(audit_root, index);
    // (The data key was rotated above; the first one is gone. A fresh ring shows
    // the index is not derived from its data key.)
    let fresh = leakwatch_store::keyring::KeyRing::generate(None).unwrap();
    let first_data: [u8; 32] = leakwatch_types::decode_hex::<32>(fresh.keys[0].key.as_bytes()).unwrap();
    let derived = blake3::derive_key("leakwatch 2026-11 index key from data key", &first_data);
    assert_ne!(fresh.index, leakwatch_types::encode_hex_upper(&derived).to_ascii_lowercase());
    assert_eq!(fresh.audit.len(), 1);

    let data_keys = json["keys"].clone();
    let rotated = leakwatch_store::rotate_audit_key(data).unwrap();
    assert_ne!(rotated.old_key, rotated.new_key);
    assert_eq!(rotated.roots.roots.len(), 2);
    assert!(!rotated.roots.from_index);
    let json = ring_json(ring);
    assert_eq!(json["keys"], data_keys, "the data key is not touched");
    assert_eq!(json["index"].as_str().unwrap(), index, "nor the index key");
    assert_eq!(
        json["audit"][0]["key"].as_str().unwrap(),
        audit_root,
        "the old audit key is kept to check old rows"
    );
    assert_eq!(data.audit_roots().unwrap().roots.len(), 2);
    assert_eq!(&answers(&Store::open(data).unwrap()), want);

    // A ring others can read is refused, with the fix in the message.
    std::fs::set_permissions(ring, std::fs::Permissions::from_mode(0o640)).unwrap();
    match Store::open(data) {
        Err(StoreError::Key(message)) => {
            assert!(message.contains("open to others") && message.contains("chmod 600"), "{message}")
        }
        Err(other) => panic!("not a key error: {other}"),
        Ok(_) => panic!("a group-readable key ring was used"),
    }
    std::fs::set_permissions(ring, std::fs::Permissions::from_mode(0o600)).unwrap();
    // One another user owns (and so could swap) is refused too; root can show it.
    // SAFETY: geteuid cannot fail.
    if unsafe { libc::geteuid() } == 0 {
        std::os::unix::fs::chown(ring, Some(4321), None).unwrap();
        match Store::open(data) {
            Err(StoreError::Key(message)) => assert!(message.contains("another user"), "{message}"),
            Err(other) => panic!("not a key error: {other}"),
            Ok(_) => panic!("another user's key ring was used"),
        }
        std::os::unix::fs::chown(ring, Some(0), None).unwrap();
    }
    Store::open(data).unwrap();
    let mode = std::fs::metadata(data.root()).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o700, "the data directory is its owner's only");
}

/// A ring as older builds wrote it (the index key derived from the first data
/// key, no audit keys) opens its store; `rekey --audit` gives it an audit key
/// of its own and keeps the index key as the old one.
fn an_old_ring_still_opens_and_its_audit_key_rotates(tmp: &Path, file: &Path) {
    let data = DataDir::new(tmp.join("old-data"));
    let hex = "22".repeat(32);
    std::env::set_var("LEAKWATCH_KEY", &hex);
    run(&data, "First", file);
    let manifest = leakwatch_store::Manifest::load(data.root()).unwrap().unwrap();
    let (ring, _) = leakwatch_store::keyring::find(&manifest.dir_id, None).unwrap().unwrap();
    assert!(ring.audit.is_empty());
    let old_ring = tmp.join("old.key");
    ring.save(&old_ring).unwrap();
    assert!(ring_json(&old_ring).get("audit").is_none(), "written as older builds wrote it");
    std::env::remove_var("LEAKWATCH_KEY");
    std::env::set_var("LEAKWATCH_KEY_FILE", &old_ring);
    let alice = Account::email("alice@corp.example").unwrap();
    let store = Store::open(&data).unwrap();
    assert_eq!(store.account_breaches(&alice).unwrap().len(), 1, "its index still answers");
    let roots = data.audit_roots().unwrap();
    assert!(roots.from_index && roots.roots.len() == 1);
    let rotated = leakwatch_store::rotate_audit_key(&data).unwrap();
    assert!(rotated.roots.from_index && rotated.roots.roots.len() == 2);
    let json = ring_json(&old_ring);
    assert_eq!(json["audit"][0]["key"], json["index"], "the index key is recorded as the old audit key");
    assert_eq!(Store::open(&data).unwrap().account_breaches(&alice).unwrap().len(), 1);
}
