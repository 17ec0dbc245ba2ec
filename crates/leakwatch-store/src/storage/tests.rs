//! What every [`Storage`] promises, checked on each implementation alike.

use leakwatch_segment::{Kind, SegmentWriter};

use super::*;
use crate::error::StoreError;

/// A finished segment of `n` entries staged in `storage`, under `name`.
fn stage(storage: &dyn Storage, name: &str, n: u8) -> PathBuf {
    let path = storage.staging().join(name);
    let mut w = SegmentWriter::create(&path, Kind::Sha1Counts, u64::from(n)).unwrap();
    for i in 1..=n {
        w.push_count(&[i; 20], u64::from(i)).unwrap();
    }
    w.finish().unwrap();
    path
}

fn contract(storage: &dyn Storage) {
    assert!(!storage.has_manifest());
    assert!(storage.load_manifest().unwrap().is_none());
    assert!(storage.list().unwrap().is_empty());

    // Put, persist, open, read.
    let staged = stage(storage, "a.building", 3);
    let bytes = std::fs::read(&staged).unwrap();
    let pending = storage.put(&staged, "a.seg").unwrap();
    storage.persist(vec![pending]).unwrap();
    assert!(!staged.exists(), "the staged file is taken");
    let seg = storage.open_segment("a.seg").unwrap();
    assert_eq!(seg.len(), 3);
    assert_eq!(seg.count(seg.find(&[2; 20]).unwrap().next().unwrap()).unwrap(), 2);
    assert_eq!(storage.read("a.seg", None).unwrap(), bytes);
    assert_eq!(storage.read("a.seg", Some(8..12)).unwrap(), bytes[8..12]);
    assert_eq!(storage.list().unwrap(), vec!["a.seg".to_owned()]);
    // The same name put again, with the same bytes, stays whole.
    let again = stage(storage, "a2.building", 3);
    let pending = storage.put(&again, "a.seg").unwrap();
    storage.persist(vec![pending]).unwrap();
    assert_eq!(storage.read("a.seg", None).unwrap(), bytes);

    // A missing object is NotFound, as a missing file is.
    match storage.open_segment("missing.seg") {
        Err(leakwatch_segment::SegmentError::Io { source, .. }) => {
            assert_eq!(source.kind(), std::io::ErrorKind::NotFound)
        }
        other => panic!("{other:?}"),
    }

    // The manifest: a conditional swap.
    let none = Version::of(None);
    let v1 = storage.publish_manifest(b"one", Some(&none)).unwrap();
    assert!(storage.has_manifest());
    assert_eq!(storage.load_manifest().unwrap(), Some((b"one".to_vec(), v1.clone())));
    let v2 = storage.publish_manifest(b"two", Some(&v1)).unwrap();
    match storage.publish_manifest(b"three", Some(&v1)) {
        Err(StoreError::Conflict { .. }) => {}
        other => panic!("a publish on a stale version must fail: {other:?}"),
    }
    assert_eq!(storage.load_manifest().unwrap(), Some((b"two".to_vec(), v2)));
    storage.publish_manifest(b"four", None).unwrap();
    assert_eq!(storage.load_manifest().unwrap().unwrap().0, b"four");

    // Delete: readers that opened the object keep it.
    storage.delete("a.seg").unwrap();
    assert!(storage.list().unwrap().is_empty());
    assert_eq!(seg.len(), 3);
    assert!(storage.delete("a.seg").is_err());

    // One writer at a time, until the lock is dropped.
    let held = storage.lock().unwrap();
    assert!(matches!(storage.lock(), Err(StoreError::Locked { .. })));
    drop(held);
    drop(storage.lock().unwrap());
}

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
