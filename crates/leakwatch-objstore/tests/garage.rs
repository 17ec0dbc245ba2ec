//! The object-storage [`Storage`] against a real three-node Garage cluster the
//! test starts (replication factor 3) and stops after: the storage contract,
//! the lease across machines, range reads that cost one GET, damage found
//! rather than answered, and the power-loss tests cut at every step through a
//! fault-injecting wrapper. One test function, so that the cluster is started
//! once and always stopped.

use std::collections::BTreeSet;
use std::fmt::Write as _;
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use leakwatch_ingest::Input;
use leakwatch_objstore::garage::{Cluster, BUCKET, REGION};
use leakwatch_objstore::{LeaseSettings, ObjectStorage, Options, S3Url};
use leakwatch_segment::{Segment, SegmentError};
use leakwatch_store::storage::{Pending, Storage, Version, WriterLock};
use leakwatch_store::{
    ingest, BreachInfo, DataDir, IngestOptions, Progress, RangeIndex, RangeKind, Store, StoreError,
};
use leakwatch_types::{sha1, Account};
use object_store::{ObjectStore, ObjectStoreExt, PutPayload};

const DOMAINS: [&str; 3] = ["example-corp.com", "gmail.com", "web.de"];

/// Settings for tests on loopback: a PUT lands in milliseconds, so a short
/// settle time is still many times longer than the race it closes.
fn test_lease() -> LeaseSettings {
    LeaseSettings { ttl: Duration::from_secs(30), settle: Duration::from_millis(30), skew: Duration::ZERO }
}

struct World {
    cluster: Cluster,
    tmp: tempfile::TempDir,
    runs: AtomicU64,
}

impl World {
    /// A storage at `prefix`, with a cache of its own (as on a machine of its own).
    fn storage(&self, prefix: &str) -> ObjectStorage {
        self.storage_with(prefix, &format!("cache-{prefix}"), test_lease())
    }

    fn storage_with(&self, prefix: &str, cache: &str, lease: LeaseSettings) -> ObjectStorage {
        let url = S3Url { bucket: BUCKET.into(), prefix: prefix.into() };
        let options = Options { cache_dir: self.tmp.path().join(cache), cache_size: 1 << 30, lease };
        ObjectStorage::open(&url, &self.cluster.config(0), options).unwrap()
    }

    fn dir(&self, storage: ObjectStorage) -> DataDir {
        DataDir::with_storage(storage.local_root().to_owned(), Arc::new(storage))
    }

    fn key_file(&self) -> PathBuf {
        self.tmp.path().join("data.key")
    }

    /// A raw client of the bucket, to copy, damage and inspect objects.
    fn client(&self) -> object_store::aws::AmazonS3 {
        object_store::aws::AmazonS3Builder::new()
            .with_bucket_name(BUCKET)
            .with_region(REGION)
            .with_endpoint(self.cluster.endpoint(0))
            .with_allow_http(true)
            .with_access_key_id(&self.cluster.key_id)
            .with_secret_access_key(&self.cluster.secret)
            .build()
            .unwrap()
    }

    fn block<T>(&self, f: impl std::future::Future<Output = T>) -> T {
        tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(f)
    }

    /// Copies every object under `from/` to `to/`: a fork of a store.
    fn copy_prefix(&self, from: &str, to: &str) {
        let client = self.client();
        self.block(async {
            use futures_util::TryStreamExt;
            let base = object_store::path::Path::from(from);
            let all: Vec<_> = client.list(Some(&base)).try_collect().await.unwrap();
            for meta in all {
                let rel = meta.location.as_ref().strip_prefix(&format!("{from}/")).unwrap().to_owned();
                if rel == "LOCK" {
                    continue;
                }
                client
                    .copy(&meta.location, &object_store::path::Path::from(format!("{to}/{rel}")))
                    .await
                    .unwrap();
            }
        });
    }
}

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

fn ingest_text(data: &DataDir, scratch: &Path, breach: &str, text: &str) -> Result<(), StoreError> {
    let path = scratch.join(format!("{breach}-{}.txt", blake3::hash(text.as_bytes()).to_hex()));
    std::fs::write(&path, text).unwrap();
    let options = IngestOptions {
        breach: BreachInfo { name: breach.into(), ..BreachInfo::default() },
        format: None,
        memory_budget: 1 << 30,
    };
    let input = Input::open(path.to_str().unwrap()).map_err(StoreError::from)?;
    ingest(data, &options, vec![input], &Progress::default(), &mut |_| {}).map(drop)
}

/// Everything a reader can ask, as text.
fn answers(data: &DataDir) -> String {
    let store = Store::open(data).unwrap();
    let mut out = String::new();
    for b in store.breaches() {
        writeln!(out, "breach {} {} {:?}", b.name, b.pwn_count, b.data_classes).unwrap();
    }
    for person in 0..120 {
        let email = format!("user{person}@{}", DOMAINS[person % DOMAINS.len()]);
        let breaches = store.account_breaches(&Account::email(&email).unwrap()).unwrap();
        let names: Vec<&str> = breaches.iter().map(|b| b.name.as_str()).collect();
        writeln!(out, "{email} {names:?}").unwrap();
    }
    for p in 0..40 {
        let password = format!("pass{p}");
        writeln!(out, "{password} {}", store.sha1_count(&sha1(password.as_bytes())).unwrap()).unwrap();
    }
    for domain in DOMAINS {
        writeln!(out, "{domain} {:?}", store.domain(domain).unwrap()).unwrap();
    }
    let (_, damage) = store.verify();
    assert!(damage.is_empty(), "{damage:?}");
    out
}

#[test]
fn object_storage_on_a_garage_cluster() {
    let tmp = tempfile::tempdir().unwrap();
    let cluster = Cluster::start(&tmp.path().join("garage")).unwrap_or_else(|e| panic!("{e}"));
    let world = World { cluster, tmp, runs: AtomicU64::new(0) };

    leakwatch_store::storage::contract::contract(&world.storage("contract"));
    a_second_machine_cannot_take_the_lease(&world);
    a_cold_range_costs_one_get_and_a_warm_one_none(&world);
    damaged_or_truncated_objects_give_errors_never_answers(&world);
    the_cache_keeps_to_its_bound_but_never_drops_an_open_segment(&world);
    cuts_at_every_step_leave_the_store_whole(&world);
}

fn a_second_machine_cannot_take_the_lease(world: &World) {
    let a = world.storage("lease");
    let b = world.storage_with("lease", "cache-lease-b", test_lease());
    let held = a.lock().unwrap();
    assert!(matches!(b.lock(), Err(StoreError::Locked { .. })));
    match b.publish_manifest(b"stranger", None) {
        Err(StoreError::Locked { .. }) => {}
        other => panic!("a publish beside another writer's lease must fail: {other:?}"),
    }
    drop(held);
    drop(b.lock().unwrap());

    // Writers racing for a free lease: exactly one gets it, every round. The
    // settle time is the production one: it must outlast a PUT on a busy
    // machine.
    let racing = LeaseSettings { settle: LeaseSettings::default().settle, ..test_lease() };
    for round in 0..4 {
        let storages: Vec<ObjectStorage> =
            (0..3).map(|n| world.storage_with("lease", &format!("cache-race-{n}"), racing)).collect();
        let won: Vec<Option<WriterLock>> = std::thread::scope(|s| {
            let racers: Vec<_> = storages.iter().map(|st| s.spawn(move || st.lock().ok())).collect();
            racers.into_iter().map(|r| r.join().unwrap()).collect()
        });
        assert_eq!(won.iter().filter(|w| w.is_some()).count(), 1, "round {round}: one winner");
    }

    // A writer that died leaves its lease to run out; then the next takes it.
    let dead = br#"{"token":"dead","holder":"elsewhere:1","expires_ms":TIME}"#;
    let expires =
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis() + 1500;
    let body = String::from_utf8_lossy(dead).replace("TIME", &expires.to_string());
    let client = world.client();
    world
        .block(client.put(&object_store::path::Path::from("lease/LOCK"), PutPayload::from(body.into_bytes())))
        .unwrap();
    match b.lock() {
        Err(StoreError::Locked { path }) => {
            assert!(path.display().to_string().contains("elsewhere:1"), "{path:?}")
        }
        other => panic!("a live lease of a dead writer still excludes: {:?}", other.map(drop)),
    }
    std::thread::sleep(Duration::from_millis(1600));
    drop(b.lock().expect("an expired lease is taken over"));
}

fn a_cold_range_costs_one_get_and_a_warm_one_none(world: &World) {
    let scratch = world.tmp.path().join("range-inputs");
    std::fs::create_dir_all(&scratch).unwrap();
    let text: String =
        (0..80_000).map(|i| format!("user{}@example-corp.com:secret{i}\n", i % 5_000)).collect();
    let writer = world.dir(world.storage("range"));
    writer.init(Some(&world.key_file())).unwrap();
    ingest_text(&writer, &scratch, "Big", &text).unwrap();
    let local = DataDir::new(world.tmp.path().join("range-local"));
    local.init(Some(&world.tmp.path().join("local.key"))).unwrap();
    ingest_text(&local, &scratch, "Big", &text).unwrap();
    let local_ranges = RangeIndex::open_with_cache(&local, 0).unwrap();

    // Another machine, its cache empty.
    let reader = world.storage_with("range", "cache-range-cold", test_lease());
    let counters = reader.counters();
    let data = world.dir(reader);
    let ranges = RangeIndex::open_with_cache(&data, 0).unwrap();
    let mut cold = 0;
    for prefix in [0x0_0000, 0x7_A3C1, 0xF_FFFF, 0x1_2345, 0x5_5555, 0xC_0FFE] {
        let before = counters.gets.load(Ordering::Relaxed);
        let body = ranges.body(RangeKind::Sha1, prefix).unwrap();
        // None when the range's bucket holds no hash (its padding is made
        // up), else one.
        let gets = counters.gets.load(Ordering::Relaxed) - before;
        assert!(gets <= 1, "a cold range of {prefix:05X} is one GET at most: {gets}");
        cold += gets;
        assert_eq!(body.bytes(), local_ranges.body(RangeKind::Sha1, prefix).unwrap().bytes());
        let before = counters.gets.load(Ordering::Relaxed);
        ranges.body(RangeKind::Sha1, prefix).unwrap();
        assert_eq!(counters.gets.load(Ordering::Relaxed), before, "a warm range is no GET");
    }
    assert!(cold >= 4, "most cold ranges read their bucket: {cold}");
    drop(ranges);
    // A new process on the same cache: the bytes fetched before are still there.
    let again = world.storage_with("range", "cache-range-cold", test_lease());
    let counters = again.counters();
    let ranges = RangeIndex::open_with_cache(&world.dir(again), 0).unwrap();
    let before = counters.gets.load(Ordering::Relaxed);
    ranges.body(RangeKind::Sha1, 0x7_A3C1).unwrap();
    assert_eq!(counters.gets.load(Ordering::Relaxed), before, "a cache that outlived its process serves");
}

fn damaged_or_truncated_objects_give_errors_never_answers(world: &World) {
    let scratch = world.tmp.path().join("damage-inputs");
    std::fs::create_dir_all(&scratch).unwrap();
    let data = world.dir(world.storage("damage"));
    data.init(Some(&world.key_file())).unwrap();
    ingest_text(&data, &scratch, "Alpha", &combo(7, 3_000, 120)).unwrap();
    let manifest = data.manifest().unwrap().unwrap();
    let seg = manifest.segments.iter().find(|s| s.kind == "sha1").unwrap().file.clone();
    let client = world.client();
    let key = object_store::path::Path::from(format!("damage/segments/{seg}"));
    let whole = world.block(async { client.get(&key).await.unwrap().bytes().await.unwrap() }).to_vec();

    for (what, bytes) in [
        ("a flipped byte", {
            let mut b = whole.clone();
            let at = b.len() / 3;
            b[at] ^= 0x40;
            b
        }),
        ("a truncated object", whole[..whole.len() / 2].to_vec()),
    ] {
        world.block(client.put(&key, PutPayload::from(bytes))).unwrap();
        // A reader with an empty cache reads what the bucket holds now.
        let n = world.runs.fetch_add(1, Ordering::Relaxed);
        let reader = world.dir(world.storage_with("damage", &format!("cache-damage-{n}"), test_lease()));
        let store = Store::open(&reader).unwrap();
        let (_, damage) = store.verify();
        assert_eq!(damage.len(), 1, "{what}: {damage:?}");
        let lookups: Vec<_> =
            (0..40).map(|p| store.sha1_count(&sha1(format!("pass{p}").as_bytes()))).collect();
        assert!(lookups.iter().all(|r| r.is_err()), "{what}: every SHA-1 lookup fails, none answers");
    }
    world.block(client.put(&key, PutPayload::from(whole))).unwrap();
}

fn the_cache_keeps_to_its_bound_but_never_drops_an_open_segment(world: &World) {
    let cache = world.tmp.path().join("cache-bounded");
    let open = |prefix: &str| {
        let url = S3Url { bucket: BUCKET.into(), prefix: prefix.into() };
        let options = Options { cache_dir: cache.clone(), cache_size: 1, lease: test_lease() };
        world.dir(ObjectStorage::open(&url, &world.cluster.config(0), options).unwrap())
    };
    let files = || -> BTreeSet<String> {
        std::fs::read_dir(cache.join("segments"))
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect()
    };
    let first = open("range");
    let store = Store::open(&first).unwrap();
    let first_files: BTreeSet<String> =
        first.manifest().unwrap().unwrap().segments.into_iter().map(|s| s.file).collect();
    assert!(first_files.is_subset(&files()), "open segments stay, whatever the bound");
    assert_eq!(store.sha1_count(&sha1(b"secret12")).unwrap(), 1);
    drop(store);
    let second = open("damage");
    let store = Store::open(&second).unwrap();
    store.sha1_count(&sha1(b"pass1")).unwrap();
    assert!(files().is_disjoint(&first_files), "closed segments went: {:?}", files());
}

// ---- power-loss tests through a fault-injecting wrapper ----

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Fault {
    /// A put leaves half the object under its name (stricter than S3, whose
    /// PUT is whole or absent); a publish leaves nothing.
    Torn,
    /// The operation never happens.
    Lost,
    /// The operation happens, and the writer dies before hearing so.
    Unsynced,
}

const FAULTS: [Fault; 3] = [Fault::Torn, Fault::Lost, Fault::Unsynced];

/// An [`ObjectStorage`] whose every put, persist, delete and publish is a
/// counted step; [`Faulty::fail_at`] makes one go wrong and every later one
/// fail, as in a writer that died there.
#[derive(Debug)]
struct Faulty {
    inner: ObjectStorage,
    state: Mutex<FaultState>,
}

#[derive(Debug, Default)]
struct FaultState {
    steps: u64,
    fault: Option<(u64, Fault)>,
    dead: bool,
}

fn injected(what: &str) -> StoreError {
    StoreError::Io {
        path: "faulty".into(),
        source: std::io::Error::other(format!("injected fault ({what})")),
    }
}

impl Faulty {
    fn new(inner: ObjectStorage) -> Faulty {
        Faulty { inner, state: Mutex::default() }
    }

    fn fail_at(&self, step: u64, fault: Fault) {
        let mut s = self.state.lock().unwrap();
        s.fault = Some((s.steps + step, fault));
    }

    fn failed(&self) -> bool {
        self.state.lock().unwrap().dead
    }

    fn steps(&self) -> u64 {
        self.state.lock().unwrap().steps
    }

    /// The writer's process is gone: the fault is disarmed for the next one.
    fn restart(&self) {
        let mut s = self.state.lock().unwrap();
        s.fault = None;
        s.dead = false;
    }

    fn step(&self) -> Result<Option<Fault>, StoreError> {
        let mut s = self.state.lock().unwrap();
        if s.dead {
            return Err(injected("after the fault"));
        }
        let at = s.steps;
        s.steps += 1;
        match s.fault {
            Some((step, fault)) if step == at => {
                s.dead = true;
                Ok(Some(fault))
            }
            _ => Ok(None),
        }
    }
}

impl Storage for Faulty {
    fn staging(&self) -> PathBuf {
        self.inner.staging()
    }

    fn put(&self, staged: &Path, name: &str) -> Result<Pending, StoreError> {
        match self.step()? {
            None => self.inner.put(staged, name),
            Some(Fault::Lost) => Err(injected("put lost")),
            Some(Fault::Torn) => {
                let bytes = std::fs::read(staged).unwrap();
                std::fs::write(staged, &bytes[..bytes.len() / 2]).unwrap();
                drop(self.inner.put(staged, name)?);
                Err(injected("put torn"))
            }
            Some(Fault::Unsynced) => {
                drop(self.inner.put(staged, name)?);
                Err(injected("put unheard"))
            }
        }
    }

    fn persist(&self, pending: Vec<Pending>) -> Result<(), StoreError> {
        match self.step()? {
            None => self.inner.persist(pending),
            Some(_) => Err(injected("persist")),
        }
    }

    fn open_segment(&self, name: &str) -> Result<Segment, SegmentError> {
        self.inner.open_segment(name)
    }

    fn read(&self, name: &str, range: Option<Range<u64>>) -> Result<Vec<u8>, StoreError> {
        self.inner.read(name, range)
    }

    fn list(&self) -> Result<Vec<String>, StoreError> {
        if self.failed() {
            return Err(injected("after the fault"));
        }
        self.inner.list()
    }

    fn delete(&self, name: &str) -> Result<(), StoreError> {
        match self.step()? {
            None => self.inner.delete(name),
            Some(Fault::Lost | Fault::Torn) => Err(injected("delete lost")),
            Some(Fault::Unsynced) => {
                self.inner.delete(name)?;
                Err(injected("delete unheard"))
            }
        }
    }

    fn object_path(&self, name: &str) -> PathBuf {
        self.inner.object_path(name)
    }

    fn manifest_path(&self) -> PathBuf {
        self.inner.manifest_path()
    }

    fn location(&self) -> Option<String> {
        self.inner.location()
    }

    fn has_manifest(&self) -> bool {
        self.inner.has_manifest()
    }

    fn load_manifest(&self) -> Result<Option<(Vec<u8>, Version)>, StoreError> {
        self.inner.load_manifest()
    }

    fn publish_manifest(&self, bytes: &[u8], expected: Option<&Version>) -> Result<Version, StoreError> {
        match self.step()? {
            None => self.inner.publish_manifest(bytes, expected),
            Some(Fault::Lost | Fault::Torn) => Err(injected("publish lost")),
            Some(Fault::Unsynced) => {
                self.inner.publish_manifest(bytes, expected)?;
                Err(injected("publish unheard"))
            }
        }
    }

    fn lock(&self) -> Result<WriterLock, StoreError> {
        self.inner.lock()
    }
}

/// A store in the bucket under `base`, forked for each run by copying.
struct Fixture<'w> {
    world: &'w World,
    base: String,
    scratch: PathBuf,
}

impl Fixture<'_> {
    fn fork(&self) -> (DataDir, Arc<Faulty>) {
        let n = self.world.runs.fetch_add(1, Ordering::Relaxed);
        let prefix = format!("{}-run{n}", self.base);
        self.world.copy_prefix(&self.base, &prefix);
        // One cache for all runs, as on one machine: objects of one name are
        // one content, and a torn one's cache file is made again.
        let storage = Arc::new(Faulty::new(self.world.storage_with(&prefix, "cache-crash", test_lease())));
        (DataDir::with_storage(storage.inner.local_root().to_owned(), storage.clone()), storage)
    }

    /// Writes to the base store, fault-free.
    fn setup(&mut self, write: impl FnOnce(&DataDir)) {
        let (data, _) = self.fork();
        write(&data);
        self.base =
            data.storage().location().unwrap().trim_start_matches(&format!("s3://{BUCKET}/")).to_owned();
    }
}

fn check_clean(data: &DataDir, when: &str) {
    let lock = data.lock().unwrap();
    let manifest = data.manifest().unwrap().expect("a store");
    let listed = data.storage().list().unwrap();
    data.remove_orphans(&manifest, &lock).unwrap();
    let named: BTreeSet<String> = manifest.segments.iter().map(|s| s.file.clone()).collect();
    // Garage's listing catches up with deletes within moments.
    let mut there = BTreeSet::new();
    for _ in 0..50 {
        there = data.storage().list().unwrap().into_iter().collect();
        if named == there {
            return;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    panic!(
        "{when}: the manifest names {} objects, the bucket holds {}: extra {:?}, missing {:?}; listed before \
         removal: {listed:?}",
        named.len(),
        there.len(),
        there.difference(&named).collect::<Vec<_>>(),
        named.difference(&there).collect::<Vec<_>>(),
    );
}

fn cut_everywhere(fixture: &Fixture, what: &str, write: impl Fn(&DataDir) -> Result<(), StoreError>) {
    let key_file = fixture.world.key_file();
    let key = std::fs::read(&key_file).unwrap();
    let restore = || std::fs::write(&key_file, &key).unwrap();
    let (data, _) = fixture.fork();
    let before = answers(&data);
    let (data, faulty) = fixture.fork();
    write(&data).unwrap();
    let after = answers(&data);
    let steps = faulty.steps();
    assert!(steps > 0, "{what} takes no step");
    let mut as_before = 0;
    for step in 0..steps {
        for fault in FAULTS {
            restore();
            let (data, faulty) = fixture.fork();
            faulty.fail_at(step, fault);
            let result = write(&data);
            assert!(faulty.failed(), "{what}: step {step} of {steps} was not taken ({result:?})");
            faulty.restart();
            let got = answers(&data);
            let is_before = got == before;
            assert!(
                is_before || got == after,
                "{what}, cut at step {step} ({fault:?}): answers neither as before nor as after\n\
                 before:\n{before}\nafter:\n{after}\ngot:\n{got}"
            );
            as_before += usize::from(is_before);
            check_clean(&data, &format!("{what}, cut at step {step} ({fault:?})"));
            if is_before {
                write(&data).unwrap_or_else(|e| panic!("{what} again after a cut at step {step}: {e}"));
                assert_eq!(answers(&data), after, "{what} again after a cut at step {step} ({fault:?})");
                check_clean(&data, &format!("{what} again after a cut at step {step} ({fault:?})"));
            }
        }
    }
    if before != after {
        assert!(as_before > 0, "{what}: no cut answers as before");
    }
    restore();
}

fn cuts_at_every_step_leave_the_store_whole(world: &World) {
    let scratch = world.tmp.path().join("crash-inputs");
    std::fs::create_dir_all(&scratch).unwrap();
    let base = world.dir(world.storage("crash-base"));
    base.init(Some(&world.key_file())).unwrap();
    let mut fixture = Fixture { world, base: "crash-base".into(), scratch };
    for b in 0..8u64 {
        let text = combo(10 + b, 60, 120);
        let scratch = fixture.scratch.clone();
        fixture.setup(|data| ingest_text(data, &scratch, &format!("B{b}"), &text).unwrap());
    }
    // The ninth breach's ingest merges nine account and domain segments: its
    // cuts fall in puts, publishes and deletes alike. (Every other writer is
    // cut at every step on memory, `leakwatch-store/tests/crash.rs`; what
    // is particular to a bucket is how those three steps fail.)
    let text = combo(30, 60, 120);
    cut_everywhere(&fixture, "an ingest that compacts", |data| {
        ingest_text(data, &fixture.scratch, "Ninth", &text)
    });
}
