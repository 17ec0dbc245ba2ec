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
use leakwatch_store::storage::{Fault, Pending, Storage, Version, WriterLock};
use leakwatch_store::testing::{Cut, Cuts};
use leakwatch_store::{
    ingest, BreachInfo, DataDir, IngestOptions, Progress, RangeIndex, RangeKind, Store, StoreError,
};
use leakwatch_types::{sha1, Account};
use object_store::{ObjectStore, ObjectStoreExt, PutPayload};

const DOMAINS: [&str; 3] = ["example-corp.com", "gmail.com", "web.de"];

/// Settings for tests on loopback: a PUT lands in milliseconds, so a short
/// settle time is still many times longer than the race it closes.
/// How long a listing of the test cluster may go on naming a deleted
/// object: the replica the delete's write quorum left out gets it within
/// milliseconds when all are up; the bound leaves room for a loaded machine.
const LISTING_LAG: Duration = Duration::from_secs(5);

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
    for (corpus, import) in store.pwned_passwords() {
        writeln!(out, "pwned {corpus} {} {} {}", import.source, import.hashes, import.lines).unwrap();
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

    // Garage lists from a read quorum of replicas that each leave out what
    // they know deleted: one a delete has not reached yet names the object
    // for a moment (contract_with says more).
    leakwatch_store::storage::contract::contract_with(&world.storage("contract"), LISTING_LAG);
    a_second_machine_cannot_take_the_lease(&world);
    a_cold_range_costs_one_get_and_a_warm_one_none(&world);
    damaged_or_truncated_objects_give_errors_never_answers(&world);
    the_cache_keeps_to_its_bound_but_never_drops_an_open_segment(&world);
    cuts_leave_the_store_whole(&world);
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
            // A lease is taken for good when it is confirmed, which every
            // change to the bucket waits for.
            let racers: Vec<_> = storages
                .iter()
                .map(|st| s.spawn(move || st.lock().ok().filter(|_| st.confirm_lease().is_ok())))
                .collect();
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
    let local = DataDir::new(world.tmp.path().join("range-local"));
    local.init(Some(&world.tmp.path().join("local.key"))).unwrap();
    // Three breaches sharing passwords: their counts stay apart by breach,
    // and a range reads the totals summed from them.
    for (name, text) in [
        ("Big", text),
        ("Second", (0..30_000).map(|i| format!("second{i}@example.org:secret{}\n", i * 3)).collect()),
        ("Third", (0..30_000).map(|i| format!("third{i}@example.net:secret{}\n", i * 5)).collect()),
    ] {
        ingest_text(&writer, &scratch, name, &text).unwrap();
        ingest_text(&local, &scratch, name, &text).unwrap();
    }
    let manifest = writer.manifest().unwrap().unwrap();
    assert_eq!(manifest.segments.iter().filter(|s| s.kind == "sha1").count(), 3, "one per breach");
    assert_eq!(manifest.segments.iter().filter(|s| s.kind == "sha1-totals").count(), 1);
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
        // Named where the user's data is, never by the cache file read through.
        let url = format!("s3://{BUCKET}/damage/segments/{seg}");
        assert_eq!(damage[0].path, PathBuf::from(&url), "{what}");
        let lookups: Vec<_> =
            (0..40).map(|p| store.sha1_count(&sha1(format!("pass{p}").as_bytes()))).collect();
        assert!(lookups.iter().all(|r| r.is_err()), "{what}: every SHA-1 lookup fails, none answers");
        let message = lookups[0].as_ref().unwrap_err().to_string();
        assert!(message.contains(&url), "{what}: {message}");
        assert!(!message.contains(&*world.tmp.path().to_string_lossy()), "{what}: {message}");
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
    // In Big and in Second (secret{3i}).
    assert_eq!(store.sha1_count(&sha1(b"secret12")).unwrap(), 2);
    drop(store);
    let second = open("damage");
    let store = Store::open(&second).unwrap();
    store.sha1_count(&sha1(b"pass1")).unwrap();
    assert!(files().is_disjoint(&first_files), "closed segments went: {:?}", files());
}

// ---- power-loss tests through a fault-injecting wrapper ----

/// An [`ObjectStorage`] whose every put, persist, delete and publish is a
/// counted step; [`Cut::fail_at`] makes one go wrong and every later one
/// fail, as in a writer that died there. The faults as a bucket sees them:
/// [`Fault::Torn`] leaves half the object under its name (stricter than S3,
/// whose PUT is whole or absent) and no publish; [`Fault::Lost`] never
/// happens; [`Fault::Unsynced`] happens, and the writer dies before hearing so.
#[derive(Debug)]
struct Faulty {
    inner: ObjectStorage,
    state: Mutex<FaultState>,
}

#[derive(Debug, Default)]
struct FaultState {
    steps: u64,
    kinds: Vec<&'static str>,
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

    fn step(&self, kind: &'static str) -> Result<Option<Fault>, StoreError> {
        let mut s = self.state.lock().unwrap();
        if s.dead {
            return Err(injected("after the fault"));
        }
        let at = s.steps;
        s.steps += 1;
        s.kinds.push(kind);
        match s.fault {
            Some((step, fault)) if step == at => {
                s.dead = true;
                Ok(Some(fault))
            }
            _ => Ok(None),
        }
    }
}

impl Cut for Faulty {
    fn fail_at(&self, step: u64, fault: Fault) {
        let mut s = self.state.lock().unwrap();
        s.fault = Some((s.steps + step, fault));
    }

    fn failed(&self) -> bool {
        self.state.lock().unwrap().dead
    }

    fn step_kinds(&self) -> Vec<&'static str> {
        self.state.lock().unwrap().kinds.clone()
    }

    /// The writer's process is gone: the fault is disarmed for the next one.
    fn crash(&self) {
        // Uploads the dead writer had under way land, or fail, first: a
        // dead process's would have stopped with it.
        let _ = self.inner.persist(Vec::new());
        let mut s = self.state.lock().unwrap();
        s.fault = None;
        s.dead = false;
    }
}

impl Storage for Faulty {
    fn staging(&self) -> PathBuf {
        self.inner.staging()
    }

    fn put(&self, staged: &Path, name: &str) -> Result<Pending, StoreError> {
        match self.step("put")? {
            None => self.inner.put(staged, name),
            Some(Fault::Lost) => Err(injected("put lost")),
            // The upload lands before the writer is told it failed.
            Some(Fault::Torn) => {
                let bytes = std::fs::read(staged).unwrap();
                std::fs::write(staged, &bytes[..bytes.len() / 2]).unwrap();
                self.inner.persist(vec![self.inner.put(staged, name)?])?;
                Err(injected("put torn"))
            }
            Some(Fault::Unsynced) => {
                self.inner.persist(vec![self.inner.put(staged, name)?])?;
                Err(injected("put unheard"))
            }
        }
    }

    fn persist(&self, pending: Vec<Pending>) -> Result<(), StoreError> {
        match self.step("persist")? {
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
        match self.step("delete")? {
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
        match self.step("publish")? {
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

/// Cuts `write` at every `every`-th step and the first and last of each kind
/// (`leakwatch_store::testing`, the loop the memory storage's power-loss
/// tests run at every step; what is particular to a bucket is how puts,
/// publishes and deletes fail, and that the listing lags behind deletes).
fn cut(fixture: &Fixture, every: u64, what: &str, write: impl Fn(&DataDir) -> Result<(), StoreError>) {
    let fork = || {
        let (data, faulty) = fixture.fork();
        (data, faulty as Arc<dyn Cut>)
    };
    let key_file = fixture.world.key_file();
    // One fault a step, the three taking turns: the cuts of every step in
    // every way are the memory storage's.
    let cuts = Cuts { fork: &fork, key_file: &key_file, every, every_fault: false, listing_lag: LISTING_LAG };
    cuts.cut(what, answers, write);
}

/// A Pwned Passwords download of the 40 passwords of [`combo`], as HIBP's
/// downloader writes it.
fn download(counts: u64) -> String {
    let mut lines: Vec<String> = (0..40)
        .map(|p| {
            let hex: String =
                sha1(format!("pass{p}").as_bytes()).iter().map(|b| format!("{b:02X}")).collect();
            format!("{hex}:{}\n", p * counts + 1)
        })
        .collect();
    lines.sort();
    lines.concat()
}

fn cuts_leave_the_store_whole(world: &World) {
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
    // Every writer is cut at every step on memory (`leakwatch-store/tests/crash.rs`);
    // here a sample of each one's steps, all of its kinds among them.

    // The ninth breach's ingest merges nine account and domain segments: its
    // cuts fall in puts, publishes and deletes alike.
    let text = combo(30, 60, 120);
    cut(&fixture, 5, "an ingest that compacts", |data| ingest_text(data, &fixture.scratch, "Ninth", &text));
    cut(&fixture, 1, "breach remove", |data| leakwatch_store::remove_breach(data, "B3").map(drop));
    let pwned = fixture.scratch.join("pwned.txt");
    std::fs::write(&pwned, download(3)).unwrap();
    cut(&fixture, 1, "a Pwned Passwords import", |data| {
        leakwatch_store::import_pwned_passwords(
            data,
            pwned.to_str().unwrap(),
            false,
            1 << 30,
            &AtomicU64::new(0),
        )
        .map(drop)
    });
    cut(&fixture, 10, "rekey", |data| leakwatch_store::rekey(data).map(drop));
}
