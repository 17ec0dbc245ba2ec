//! What every [`Storage`] promises, checked on each implementation alike.

use super::contract::{contract, stage};
use super::*;

#[test]
fn a_local_directory_keeps_the_contract() {
    let tmp = tempfile::tempdir().unwrap();
    std::fs::create_dir(tmp.path().join(local::SEGMENTS)).unwrap();
    contract(&LocalDisk::new(tmp.path()));
}

#[test]
fn memory_keeps_the_contract() {
    let tmp = tempfile::tempdir().unwrap();
    contract(&MemoryStorage::new(tmp.path().join("staging")).unwrap());
}

#[test]
fn a_power_loss_keeps_what_was_persisted_and_tears_what_was_not() {
    let tmp = tempfile::tempdir().unwrap();
    let storage = MemoryStorage::new(tmp.path().join("staging")).unwrap();
    let kept = storage.put(&stage(&storage, "k.building", 4), "kept.seg").unwrap();
    storage.persist(vec![kept]).unwrap();
    let whole = storage.read("kept.seg", None).unwrap();
    let _torn = storage.put(&stage(&storage, "t.building", 5), "torn.seg").unwrap();
    storage.publish_manifest(b"m", None).unwrap();
    storage.delete("kept.seg").unwrap();
    storage.crash();
    // The delete was never persisted; the unpersisted put survives torn, and
    // does not open.
    assert_eq!(storage.read("kept.seg", None).unwrap(), whole);
    assert!(storage.open_segment("torn.seg").is_err());
    assert_eq!(storage.load_manifest().unwrap().unwrap().0, b"m");

    // A fault: the step fails, every later one too, and a crash takes back
    // what was not durable.
    storage.fail_at(1, Fault::Unsynced);
    let staged = stage(&storage, "n.building", 2);
    let pending = storage.put(&staged, "new.seg").unwrap();
    assert!(storage.persist(vec![pending]).is_err());
    assert!(storage.failed());
    assert!(storage.publish_manifest(b"n", None).is_err());
    storage.crash();
    assert!(storage.open_segment("new.seg").is_err(), "a torn survivor, never whole bytes");
    assert_eq!(storage.load_manifest().unwrap().unwrap().0, b"m");
}
