//! `bench/s3.sh`: lookups over a store in Garage against the same store on
//! local disk, side by side on this machine.
//!
//! Starts a three-node Garage cluster, ingests one generated combo into a
//! local data directory and into the bucket, then prints:
//! - warm-cache lookups (range bodies, uncached, and SHA-1 point lookups)
//!   over the bucket against local disk, as a ratio of medians over
//!   interleaved rounds (target: within 1.5x);
//! - the GETs of a cold `/range` body on a reader whose cache is empty, per
//!   password segment (target: 1), and of opening the generation.
//!
//! Usage: s3bench [LINES] (default 1,000,000 combo lines, each a distinct password).

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use leakwatch_ingest::Input;
use leakwatch_objstore::garage::{Cluster, BUCKET};
use leakwatch_objstore::{LeaseSettings, ObjectStorage, Options, S3Url, DEFAULT_CACHE_SIZE};
use leakwatch_store::{ingest, BreachInfo, DataDir, IngestOptions, Progress, RangeIndex, RangeKind, Store};

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn prefixes(n: u32, seed: u32) -> Vec<u32> {
    (0..n).map(|i| (i.wrapping_add(seed)).wrapping_mul(0x9E37_79B9) >> 12).collect()
}

fn main() {
    let lines: u64 = std::env::args().nth(1).map_or(1_000_000, |a| a.parse().expect("LINES is a number"));
    let tmp = tempfile::tempdir().expect("a temporary directory");
    let root = tmp.path();
    let cluster = Cluster::start(&root.join("garage")).unwrap_or_else(|e| panic!("{e}"));
    // A distinct password a line: a SHA-1 segment of LINES hashes, as large
    // as the corpus, so that a range's bytes are not among those opening it
    // fetches.
    let combo = root.join("combo.txt");
    let text: String =
        (0..lines).map(|i| format!("user{}@example-corp.com:bench-{i}\n", i % 100_000)).collect();
    std::fs::write(&combo, text).expect("combo written");

    let open = |cache: &str| {
        let url = S3Url { bucket: BUCKET.into(), prefix: "bench".into() };
        let options = Options {
            cache_dir: root.join(cache),
            cache_size: DEFAULT_CACHE_SIZE,
            lease: LeaseSettings::default(),
        };
        let storage = ObjectStorage::open(&url, &cluster.config(0), options).expect("the bucket opens");
        let counters = storage.counters();
        (DataDir::with_storage(storage.local_root().to_owned(), Arc::new(storage)), counters)
    };
    let key = root.join("bench.key");
    let local = DataDir::new(root.join("local"));
    local.init(Some(&key)).expect("local store");
    let (remote, _) = open("cache-writer");
    remote.init(Some(&key)).expect("bucket store");
    let options = IngestOptions {
        breach: BreachInfo { name: "Bench".into(), ..BreachInfo::default() },
        format: None,
        memory_budget: 1 << 30,
    };
    for (what, dir) in [("local disk", &local), ("garage", &remote)] {
        let start = Instant::now();
        let input = Input::open(combo.to_str().expect("UTF-8 path")).expect("combo opens");
        ingest(dir, &options, vec![input], &Progress::default(), &mut |_| {}).expect("ingest");
        eprintln!("ingest of {lines} lines into {what}: {:.2} s", start.elapsed().as_secs_f64());
    }
    let manifest = remote.manifest().expect("manifest").expect("a store");
    let sha1_segments = manifest.segments.iter().filter(|s| s.kind == "sha1").count();

    // Cold: another machine, its cache empty.
    let (cold, counters) = open("cache-cold");
    let start = Instant::now();
    let ranges = RangeIndex::open_with_cache(&cold, 0).expect("range index");
    let open_gets = counters.gets.load(Ordering::Relaxed);
    let open_time = start.elapsed();
    let mut per_range = Vec::new();
    let mut cold_times = Vec::new();
    for prefix in prefixes(200, 1) {
        let before = counters.gets.load(Ordering::Relaxed);
        let t = Instant::now();
        ranges.body(RangeKind::Sha1, prefix).expect("range");
        cold_times.push(t.elapsed().as_secs_f64());
        per_range.push((counters.gets.load(Ordering::Relaxed) - before) as f64);
    }
    drop(ranges);

    // Warm: every chunk of the password segments fetched once, then timed
    // against local disk in interleaved rounds.
    let local_ranges = RangeIndex::open_with_cache(&local, 0).expect("local range index");
    let local_store = Store::open(&local).expect("local store");
    let (warm, _) = open("cache-cold");
    let warm_ranges = RangeIndex::open_with_cache(&warm, 0).expect("range index");
    let warm_store = Store::open(&warm).expect("store");
    let hashes: Vec<[u8; 20]> =
        (0..20_000u64).map(|i| leakwatch_types::sha1(format!("bench-{}", i * 7).as_bytes())).collect();
    let time_ranges = |r: &RangeIndex, seed: u32| {
        let t = Instant::now();
        for prefix in prefixes(5_000, seed) {
            std::hint::black_box(r.body(RangeKind::Sha1, prefix).expect("range").bytes().len());
        }
        t.elapsed()
    };
    let time_points = |s: &Store| {
        let t = Instant::now();
        for h in &hashes {
            std::hint::black_box(s.sha1_count(h).expect("lookup"));
        }
        t.elapsed()
    };
    // Every prefix the rounds time, warmed.
    for seed in 0..7 {
        time_ranges(&warm_ranges, seed);
    }
    time_points(&warm_store);
    let (mut lr, mut sr, mut lp, mut sp) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    let per = |d: Duration, n: usize| d.as_secs_f64() * 1e6 / n as f64;
    for round in 0..7 {
        lr.push(per(time_ranges(&local_ranges, round), 5_000));
        sr.push(per(time_ranges(&warm_ranges, round), 5_000));
        lp.push(per(time_points(&local_store), hashes.len()));
        sp.push(per(time_points(&warm_store), hashes.len()));
    }

    println!("store: {lines} combo lines, {sha1_segments} SHA-1 segment(s), garage: 3 nodes, replication 3");
    println!(
        "cold reader: opening the generation: {open_gets} GETs, {:.1} ms",
        open_time.as_secs_f64() * 1e3
    );
    println!(
        "cold /range: GETs per range: median {} max {} (target 1 per segment holding the range), median {:.2} ms",
        median(per_range.clone()),
        per_range.iter().cloned().fold(0.0, f64::max),
        median(cold_times) * 1e3
    );
    println!("warm /range body (us, median of 7 interleaved rounds): local {:.2}, garage {:.2}, ratio {:.2}x (target <= 1.5x)", median(lr.clone()), median(sr.clone()), median(sr) / median(lr));
    println!(
        "warm SHA-1 lookup (us): local {:.3}, garage {:.3}, ratio {:.2}x (target <= 1.5x)",
        median(lp.clone()),
        median(sp.clone()),
        median(sp) / median(lp)
    );
    drop(cluster);
}
