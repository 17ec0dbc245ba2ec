//! What every [`Storage`] promises, checked on each implementation alike.

use super::contract::{contract, contract_with, stage};
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

/// Memory storage whose listing names a deleted object for `lag` more, as
/// an S3 bucket on Garage may.
#[derive(Debug)]
struct LaggingList {
    inner: MemoryStorage,
    lag: std::time::Duration,
    deleted: std::sync::Mutex<Vec<(String, std::time::Instant)>>,
}

impl Storage for LaggingList {
    fn staging(&self) -> PathBuf {
        self.inner.staging()
    }
    fn put(&self, staged: &Path, name: &str) -> Result<Pending> {
        self.deleted.lock().unwrap().retain(|(n, _)| n != name);
        self.inner.put(staged, name)
    }
    fn persist(&self, pending: Vec<Pending>) -> Result<()> {
        self.inner.persist(pending)
    }
    fn open_segment(&self, name: &str) -> Result<Segment, SegmentError> {
        self.inner.open_segment(name)
    }
    fn read(&self, name: &str, range: Option<Range<u64>>) -> Result<Vec<u8>> {
        self.inner.read(name, range)
    }
    fn list(&self) -> Result<Vec<String>> {
        let mut names = self.inner.list()?;
        let deleted = self.deleted.lock().unwrap();
        names.extend(deleted.iter().filter(|(_, at)| at.elapsed() < self.lag).map(|(n, _)| n.clone()));
        Ok(names)
    }
    fn delete(&self, name: &str) -> Result<()> {
        self.inner.delete(name)?;
        self.deleted.lock().unwrap().push((name.to_owned(), std::time::Instant::now()));
        Ok(())
    }
    fn object_path(&self, name: &str) -> PathBuf {
        self.inner.object_path(name)
    }
    fn manifest_path(&self) -> PathBuf {
        self.inner.manifest_path()
    }
    fn has_manifest(&self) -> bool {
        self.inner.has_manifest()
    }
    fn load_manifest(&self) -> Result<Option<(Vec<u8>, Version)>> {
        self.inner.load_manifest()
    }
    fn publish_manifest(&self, bytes: &[u8], expected: Option<&Version>) -> Result<Version> {
        self.inner.publish_manifest(bytes, expected)
    }
    fn lock(&self) -> Result<WriterLock> {
        self.inner.lock()
    }
}

#[test]
fn a_listing_that_lags_behind_deletes_keeps_the_contract_within_its_bound() {
    let lagging = |lag_ms: u64| {
        let tmp = tempfile::tempdir().unwrap();
        let inner = MemoryStorage::new(tmp.path().join("staging")).unwrap();
        let lag = std::time::Duration::from_millis(lag_ms);
        (tmp, LaggingList { inner, lag, deleted: Default::default() })
    };
    let (_tmp, storage) = lagging(300);
    contract_with(&storage, std::time::Duration::from_secs(5));
    // A lag past the bound breaks it.
    let (_tmp, storage) = lagging(60_000);
    let broken = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        contract_with(&storage, std::time::Duration::from_millis(200))
    }));
    assert!(broken.is_err(), "a listing that lags past the bound must fail the contract");
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
