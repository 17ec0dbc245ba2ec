//! What every [`Storage`] promises, as a check any implementation runs on
//! itself (the local directory and memory in this crate's tests, the object
//! store in its own): it panics at the first promise broken. Public so that
//! an implementation outside this crate is held to the same contract.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use leakwatch_segment::{Kind, SegmentWriter};

use super::{Storage, Version};
use crate::error::StoreError;

/// A finished segment of `n` entries staged in `storage`, under `name`.
pub fn stage(storage: &dyn Storage, name: &str, n: u8) -> PathBuf {
    let path = storage.staging().join(name);
    let mut w = SegmentWriter::create(&path, Kind::Sha1Counts, u64::from(n)).unwrap();
    for i in 1..=n {
        w.push_count(&[i; 20], u64::from(i)).unwrap();
    }
    w.finish().unwrap();
    path
}

/// Checks `storage`, which must start empty, against the contract.
pub fn contract(storage: &dyn Storage) {
    contract_with(storage, Duration::ZERO);
}

/// [`contract`] for a storage whose listing may go on naming a deleted
/// object for up to `listing_lag`. An S3 bucket on Garage does: it lists
/// from a read quorum of replicas, each leaving out the objects it knows
/// deleted, so a replica the delete has not reached yet (a write returns
/// once two of three have it) names the object until it catches up. A
/// listing never misses an object whose put returned, and a read of a
/// deleted object by name is NotFound at once; only the listing lags.
pub fn contract_with(storage: &dyn Storage, listing_lag: Duration) {
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
    let deadline = Instant::now() + listing_lag;
    loop {
        let listed = storage.list().unwrap();
        if listed.is_empty() {
            break;
        }
        assert!(Instant::now() < deadline, "still listed {listing_lag:?} after the delete: {listed:?}");
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(seg.len(), 3);
    assert!(storage.delete("a.seg").is_err());

    // One writer at a time, until the lock is dropped.
    let held = storage.lock().unwrap();
    assert!(matches!(storage.lock(), Err(StoreError::Locked { .. })));
    drop(held);
    drop(storage.lock().unwrap());
}
