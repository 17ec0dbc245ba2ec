//! `bench/s3.sh`: lookups over a store in Garage against the same store on
//! local disk, side by side on this machine.
//!
//! Starts a three-node Garage cluster, ingests one generated combo into a
//! local data directory and into the bucket, then prints:
//! - warm-cache lookups (range bodies, uncached, and SHA-1 point lookups)
//!   over the bucket against local disk, as a ratio of medians over
//!   interleaved rounds (target: within 1.5x);
//! - the GETs of a cold `/range` body on a reader whose cache is empty, per
//!   password segment (target: 1), and of opening the generation;
//! - the time of a cold `/range` against a raw ranged GET of as many bytes
//!   of the same object, made by `curl` straight to Garage, interleaved: what
//!   leakwatch adds to the object store's own latency;
//! - the time of an ingest into the bucket against one into local disk;
//! - the GETs of a cold `/range` over own dumps: the same number of lines
//!   cut into breaches that share passwords (counts apart by breach, read
//!   from their totals; target: 1).
//!
//! Usage: s3bench [LINES] (default 1,000,000 combo lines, each a distinct password).
//! Needs `curl` (7.75 or later, for `--aws-sigv4`).

use std::process::Command;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use leakwatch_ingest::Input;
use leakwatch_objstore::garage::{Cluster, BUCKET, REGION};
use leakwatch_objstore::{LeaseSettings, ObjectStorage, Options, S3Url, DEFAULT_CACHE_SIZE};
use leakwatch_store::{ingest, BreachInfo, DataDir, IngestOptions, Progress, RangeIndex, RangeKind, Store};

/// Ingests timed into each of local disk and the bucket.
const INGEST_ROUNDS: usize = 3;

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn prefixes(n: u32, seed: u32) -> Vec<u32> {
    (0..n).map(|i| (i.wrapping_add(seed)).wrapping_mul(0x9E37_79B9) >> 12).collect()
}

/// Seconds a ranged GET of `len` bytes at `offset` of object `key` takes,
/// made by `curl` on a connection of its own, as `curl` times it.
fn curl_get(cluster: &Cluster, key: &str, offset: u64, len: u64) -> f64 {
    let out = Command::new("curl")
        .args(["-s", "-f", "-o", "/dev/null", "-w", "%{time_total}"])
        .args(["--aws-sigv4", &format!("aws:amz:{REGION}:s3")])
        .args(["--user", &format!("{}:{}", cluster.key_id, cluster.secret)])
        .args(["-H", "x-amz-content-sha256: UNSIGNED-PAYLOAD"])
        .args(["-H", &format!("Range: bytes={offset}-{}", offset + len - 1)])
        .arg(format!("{}/{BUCKET}/{key}", cluster.endpoint(0)))
        .output()
        .expect("curl runs (the raw GETs are made with curl)");
    assert!(out.status.success(), "curl: a ranged GET of {key} failed: {out:?}");
    String::from_utf8_lossy(&out.stdout).trim().parse().expect("curl prints its time")
}

/// Seconds it takes `curl` to upload `files` to Garage, all at once, each
/// on a connection of its own: the object store's own cost of taking a
/// generation's segments.
fn curl_put_all(cluster: &Cluster, files: &[std::path::PathBuf]) -> f64 {
    let start = Instant::now();
    let uploads: Vec<_> = files
        .iter()
        .map(|file| {
            let name = file.file_name().expect("a file name").to_string_lossy();
            Command::new("curl")
                .args(["-s", "-f", "-o", "/dev/null"])
                .args(["--aws-sigv4", &format!("aws:amz:{REGION}:s3")])
                .args(["--user", &format!("{}:{}", cluster.key_id, cluster.secret)])
                .args(["-H", "x-amz-content-sha256: UNSIGNED-PAYLOAD"])
                .arg("-T")
                .arg(file)
                .arg(format!("{}/{BUCKET}/raw-upload/{name}", cluster.endpoint(0)))
                .spawn()
                .expect("curl runs")
        })
        .collect();
    for mut upload in uploads {
        assert!(upload.wait().expect("curl ends").success(), "curl: an upload failed");
    }
    start.elapsed().as_secs_f64()
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

    let open_at = |prefix: &str, cache: &str| {
        let url = S3Url { bucket: BUCKET.into(), prefix: prefix.into() };
        let options = Options {
            cache_dir: root.join(cache),
            cache_size: DEFAULT_CACHE_SIZE,
            lease: LeaseSettings::default(),
        };
        let storage = ObjectStorage::open(&url, &cluster.config(0), options).expect("the bucket opens");
        let counters = storage.counters();
        (DataDir::with_storage(storage.local_root().to_owned(), Arc::new(storage)), counters)
    };
    let open = |cache: &str| open_at("bench", cache);
    let key = root.join("bench.key");
    let options = IngestOptions {
        breach: BreachInfo { name: "Bench".into(), ..BreachInfo::default() },
        format: None,
        memory_budget: 1 << 30,
    };
    // Ingests into a new store each, local and bucket in turn; the first
    // pair is the store the lookups below read.
    let (mut local_secs, mut remote_secs, mut raw_secs) = (Vec::new(), Vec::new(), Vec::new());
    let mut uploaded = 0;
    for round in 0..INGEST_ROUNDS {
        let local = DataDir::new(root.join(format!("local-{round}")));
        local.init(Some(&key)).expect("local store");
        let prefix = if round == 0 { "bench".to_owned() } else { format!("bench-{round}") };
        let (remote, _) = open_at(&prefix, &format!("cache-writer-{round}"));
        remote.init(Some(&key)).expect("bucket store");
        for (dir, secs) in [(&local, &mut local_secs), (&remote, &mut remote_secs)] {
            let start = Instant::now();
            let input = Input::open(combo.to_str().expect("UTF-8 path")).expect("combo opens");
            ingest(dir, &options, vec![input], &Progress::default(), &mut |_| {}).expect("ingest");
            secs.push(start.elapsed().as_secs_f64());
        }
        // The writer's cache holds the segments it uploaded, whole.
        let files: Vec<_> = std::fs::read_dir(root.join(format!("cache-writer-{round}/segments")))
            .expect("the writer's cache")
            .map(|e| e.expect("a cache entry").path())
            .collect();
        uploaded = files.iter().map(|f| f.metadata().expect("a cached segment").len()).sum::<u64>();
        raw_secs.push(curl_put_all(&cluster, &files));
    }
    let local = DataDir::new(root.join("local-0"));
    let (remote, _) = open("cache-writer-0");
    let manifest = remote.manifest().expect("manifest").expect("a store");
    let sha1_segments = manifest.segments.iter().filter(|s| s.kind == "sha1").count();
    let sha1_object = manifest.segments.iter().find(|s| s.kind == "sha1").expect("a SHA-1 segment");
    let sha1_key = format!("bench/segments/{}", sha1_object.file);

    // Cold: another machine, its cache empty.
    let (cold, counters) = open("cache-cold");
    let start = Instant::now();
    let ranges = RangeIndex::open_with_cache(&cold, 0).expect("range index");
    let open_gets = counters.gets.load(Ordering::Relaxed);
    let open_time = start.elapsed();
    let mut per_range = Vec::new();
    let (mut cold_times, mut get_times, mut raw_times) = (Vec::new(), Vec::new(), Vec::new());
    for (n, prefix) in prefixes(200, 1).into_iter().enumerate() {
        let gets = counters.gets.load(Ordering::Relaxed);
        let (bytes, nanos) =
            (counters.get_bytes.load(Ordering::Relaxed), counters.get_nanos.load(Ordering::Relaxed));
        let t = Instant::now();
        ranges.body(RangeKind::Sha1, prefix).expect("range");
        let took = t.elapsed().as_secs_f64();
        let gets = counters.gets.load(Ordering::Relaxed) - gets;
        per_range.push(gets as f64);
        if gets == 0 {
            // A range with no hash in its bucket: padding, nothing fetched.
            continue;
        }
        cold_times.push(took);
        get_times.push((counters.get_nanos.load(Ordering::Relaxed) - nanos) as f64 / 1e9);
        // As many bytes, from a chunk of the same object elsewhere.
        let len = (counters.get_bytes.load(Ordering::Relaxed) - bytes).max(1);
        let offset =
            (prefixes(1, n as u32 + 7)[0] as u64 * 65_536) % sha1_object.bytes.saturating_sub(len).max(1);
        raw_times.push(curl_get(&cluster, &sha1_key, offset / 65_536 * 65_536, len));
    }
    drop(ranges);
    let own_dumps = cold_over_breaches(lines, &key, &open_at);

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
        "cold /range: GETs per range: median {} max {} (target 1 per segment holding the range)",
        median(per_range.clone()),
        per_range.iter().cloned().fold(0.0, f64::max),
    );
    println!(
        "cold /range time (ms, median of the {} that fetched): leakwatch {:.2} (its GET {:.2}), raw ranged GET of as many bytes \
         with curl {:.2}: leakwatch adds {:.2} ms to Garage's own latency",
        get_times.len(),
        median(cold_times.clone()) * 1e3,
        median(get_times.clone()) * 1e3,
        median(raw_times.clone()) * 1e3,
        (median(cold_times) - median(raw_times)) * 1e3,
    );
    println!(
        "ingest of {lines} lines (s, median of {INGEST_ROUNDS} interleaved): local disk {:.2}, garage {:.2}, ratio {:.2}x; \
         uploading its {:.1} MB of segments with curl, all at once: {:.2} s",
        median(local_secs.clone()),
        median(remote_secs.clone()),
        median(remote_secs) / median(local_secs),
        uploaded as f64 / 1e6,
        median(raw_secs),
    );
    println!("warm /range body (us, median of 7 interleaved rounds): local {:.2}, garage {:.2}, ratio {:.2}x (target <= 1.5x)", median(lr.clone()), median(sr.clone()), median(sr) / median(lr));
    println!(
        "warm SHA-1 lookup (us): local {:.3}, garage {:.3}, ratio {:.2}x (target <= 1.5x)",
        median(lp.clone()),
        median(sp.clone()),
        median(sp) / median(lp)
    );
    println!("{own_dumps}");
    drop(cluster);
}

/// Opens the store at a prefix of the bucket with a cache of its own: the
/// store and its request counters.
type OpenAt<'a> = dyn Fn(&str, &str) -> (DataDir, Arc<leakwatch_objstore::Counters>) + 'a;

/// Breaches [`cold_over_breaches`] cuts the lines into.
const BREACHES: u64 = 8;

/// Own dumps: `lines` combo lines cut into [`BREACHES`] breaches that share
/// passwords, in a store of their own; the GETs and time of a cold `/range`
/// over them, whose counts stay apart by breach and are read from their
/// totals (`crate::totals` of leakwatch-store). Returns the line to print.
fn cold_over_breaches(lines: u64, key: &std::path::Path, open_at: &OpenAt<'_>) -> String {
    let (writer, _) = open_at("bench-multi", "cache-writer-multi");
    writer.init(Some(key)).expect("bucket store");
    let dir = tempfile::tempdir().expect("a temporary directory");
    let per = lines / BREACHES;
    for b in 0..BREACHES {
        let part = dir.path().join(format!("part-{b}.txt"));
        let text: String = (0..per)
            .map(|i| {
                format!(
                    "user{i}.{b}@example-corp.com:bench-{}\n",
                    (i * 2_654_435_761 + b * 40_503) % (lines / 2)
                )
            })
            .collect();
        std::fs::write(&part, text).expect("part written");
        let options = IngestOptions {
            breach: BreachInfo { name: format!("Part{b}"), ..BreachInfo::default() },
            format: None,
            memory_budget: 1 << 30,
        };
        let input = Input::open(part.to_str().expect("UTF-8 path")).expect("part opens");
        ingest(&writer, &options, vec![input], &Progress::default(), &mut |_| {}).expect("ingest");
    }
    let manifest = writer.manifest().expect("manifest").expect("a store");
    let count = |kind: &str| manifest.segments.iter().filter(|s| s.kind == kind).count();
    let (per_breach, totals) = (count("sha1"), count("sha1-totals"));
    let (cold, counters) = open_at("bench-multi", "cache-cold-multi");
    let ranges = RangeIndex::open_with_cache(&cold, 0).expect("range index");
    let (mut gets, mut times) = (Vec::new(), Vec::new());
    for prefix in prefixes(200, 3) {
        let before = counters.gets.load(Ordering::Relaxed);
        let t = Instant::now();
        ranges.body(RangeKind::Sha1, prefix).expect("range");
        let took = t.elapsed().as_secs_f64();
        let n = counters.gets.load(Ordering::Relaxed) - before;
        gets.push(n as f64);
        if n > 0 {
            times.push(took);
        }
    }
    format!(
        "cold /range over {BREACHES} breaches of {per} lines sharing passwords ({per_breach} SHA-1 segments, \
         {totals} totals segment): GETs per range: median {} max {} (target 1); time (ms, median) {:.2}",
        median(gets.clone()),
        gets.iter().cloned().fold(0.0, f64::max),
        median(times) * 1e3,
    )
}
