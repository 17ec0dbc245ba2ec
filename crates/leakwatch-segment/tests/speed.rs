//! Micro benchmarks of the segment crate's hot paths. Ignored by default; run
//! in release:
//!
//! `cargo test --release -p leakwatch-segment --test speed -- --ignored --nocapture --test-threads 1`
//!
//! - point lookups and range walks of the same keys in the fixed (version 1)
//!   and packed (version 2) layouts, side by side, and account lookups (find
//!   and value) in a fixed segment; `SPEED_KEYS` sets the number of keys
//!   (default 20,000,000);
//! - every push path of the writer; `SPEED_WRITES` sets the entries written by
//!   each (default 5,000,000), `SPEED_ROUNDS` the rounds whose fastest counts
//!   (default 3).
//!
//! Times are CPU times of the process. `bench/segment.sh` runs this file
//! against the library of two commits alternately and prints the ratios.

use std::time::Duration;

use leakwatch_segment::{Kind, Segment, SegmentWriter};

fn xorshift(state: &mut u64) -> u64 {
    *state ^= *state << 13;
    *state ^= *state >> 7;
    *state ^= *state << 17;
    *state
}

#[test]
#[ignore]
fn fixed_and_packed_layouts_side_by_side() {
    let n: u64 = std::env::var("SPEED_KEYS").ok().and_then(|v| v.parse().ok()).unwrap_or(20_000_000);
    let dir = tempfile::tempdir().unwrap();
    // Sorted random keys: the top 64 bits by a running sum of random gaps.
    let mut state = 0x9E37_79B9_7F4A_7C15u64;
    // Gaps average 99% of an even share, so the sum stays below 2^64.
    let gap = u64::MAX / n / 100 * 99;
    let mut keys = Vec::with_capacity(n as usize);
    let mut top = 0u64;
    for _ in 0..n {
        top += 1 + xorshift(&mut state) % (2 * gap - 2);
        let mut k = [0u8; 20];
        k[..8].copy_from_slice(&top.to_be_bytes());
        k[8..16].copy_from_slice(&xorshift(&mut state).to_be_bytes());
        k[16..].copy_from_slice(&xorshift(&mut state).to_be_bytes()[..4]);
        let count = (u64::MAX / (xorshift(&mut state) | 1)).clamp(1, 50_000_000);
        keys.push((k, count));
    }
    let mut probes: Vec<[u8; 20]> = Vec::with_capacity(1_000_000);
    for i in 0..1_000_000u64 {
        if i % 2 == 0 {
            probes.push(keys[(xorshift(&mut state) % n) as usize].0);
        } else {
            let mut k = [0u8; 20];
            k[..8].copy_from_slice(&xorshift(&mut state).to_be_bytes());
            k[8..16].copy_from_slice(&xorshift(&mut state).to_be_bytes());
            probes.push(k);
        }
    }
    let mut prefixes: Vec<u32> = (0..200_000).map(|_| (xorshift(&mut state) % (1 << 20)) as u32).collect();
    prefixes.sort_unstable();
    prefixes.dedup();

    for kind in [Kind::Sha1Counts, Kind::HibpSha1Counts] {
        let path = dir.path().join(format!("{}.seg", kind.name()));
        let start = CpuClock::now();
        let mut w = SegmentWriter::create(&path, kind, n).unwrap();
        for (k, c) in &keys {
            w.push_count(k, *c).unwrap();
        }
        w.finish_unsynced().unwrap();
        let write = start.elapsed();
        let seg = Segment::open(&path).unwrap();

        let start = CpuClock::now();
        let mut found = 0u64;
        for p in &probes {
            found += u64::from(seg.count_of(p).unwrap() > 0);
        }
        let lookups = start.elapsed();
        assert_eq!(found, 500_000);

        let start = CpuClock::now();
        let mut lines = 0usize;
        for &p in &prefixes {
            for e in seg.range20_entries(p).unwrap() {
                e.unwrap();
                lines += 1;
            }
        }
        let ranges = start.elapsed();
        let name = kind.name();
        println!("size {name}: {:.2} bytes a key ({n} keys)", seg.file_len() as f64 / n as f64);
        report(&format!("write {name} ({n} keys, push_count)"), write.as_secs_f64() * 1e9 / n as f64);
        report(&format!("lookup {name}"), lookups.as_nanos() as f64 / probes.len() as f64);
        report(
            &format!("range {name} ({:.1} lines each)", lines as f64 / prefixes.len() as f64),
            ranges.as_nanos() as f64 / prefixes.len() as f64,
        );
    }

    // Account search: every entry of a key, and its value (the breach id).
    let kind = Kind::Accounts;
    let path = dir.path().join("accounts.seg");
    let mut w = SegmentWriter::create(&path, kind, n).unwrap();
    for (i, (k, _)) in keys.iter().enumerate() {
        w.push_value(&k[..16], &(i as u32 % 5).to_le_bytes()).unwrap();
    }
    w.finish_unsynced().unwrap();
    let seg = Segment::open(&path).unwrap();
    let start = CpuClock::now();
    let mut breaches = 0u64;
    for p in &probes {
        for i in seg.find(&p[..16]).unwrap() {
            breaches += u64::from(seg.value(i)[0]) + 1;
        }
    }
    let lookups = start.elapsed();
    assert!(breaches >= 500_000);
    report("lookup accounts (find and values)", lookups.as_nanos() as f64 / probes.len() as f64);
}

/// The CPU time of this process, all its threads (the packed layout's
/// writer encodes on a thread of its own): on a machine shared with other
/// work, wall time would measure the neighbours too.
struct CpuClock(Duration);

impl CpuClock {
    fn now() -> CpuClock {
        let mut t = libc::timespec { tv_sec: 0, tv_nsec: 0 };
        // SAFETY: `t` is a valid timespec for the call to fill.
        let rc = unsafe { libc::clock_gettime(libc::CLOCK_PROCESS_CPUTIME_ID, &mut t) };
        assert_eq!(rc, 0, "clock_gettime");
        CpuClock(Duration::new(t.tv_sec as u64, t.tv_nsec as u32))
    }

    fn elapsed(&self) -> Duration {
        CpuClock::now().0 - self.0
    }
}

/// One figure a line, the label first, for `bench/segment.sh` to compare.
fn report(label: &str, ns: f64) {
    println!("{label:<52} {ns:>10.2} ns");
}

/// Sorted distinct keys of `K` bytes, `n` of them.
fn sorted_keys<const K: usize>(n: usize, state: &mut u64) -> Vec<[u8; K]> {
    let mut keys: Vec<[u8; K]> = (0..n)
        .map(|_| {
            let mut k = [0u8; K];
            for c in k.chunks_mut(8) {
                let len = c.len();
                c.copy_from_slice(&xorshift(state).to_be_bytes()[..len]);
            }
            k
        })
        .collect();
    keys.sort_unstable();
    keys.dedup();
    keys
}

#[test]
#[ignore]
fn writer_push_paths() {
    let env =
        |name: &str, default: usize| std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default);
    let n = env("SPEED_WRITES", 5_000_000);
    let rounds = env("SPEED_ROUNDS", 3);
    let dir = tempfile::tempdir().unwrap();
    let mut state = 0x2545_F491_4F6C_DD1Du64;
    let k20 = sorted_keys::<20>(n, &mut state);
    let counts: Vec<([u8; 20], u64)> =
        k20.iter().map(|k| (*k, (u64::MAX / (xorshift(&mut state) | 1)).clamp(1, 50_000_000))).collect();
    let k16 = sorted_keys::<16>(n, &mut state);
    let k28 = sorted_keys::<28>(n, &mut state);
    let lens: Vec<u8> = (0..n).map(|_| (xorshift(&mut state) % 60 + 20) as u8).collect();
    let payload = [0x5Au8; 255];

    type Case<'a> = (&'a str, Kind, Box<dyn Fn(&mut SegmentWriter) + 'a>);
    let cases: Vec<Case> = vec![
        (
            "push_count sha1",
            Kind::Sha1Counts,
            Box::new(|w| counts.iter().for_each(|(k, c)| w.push_count(k, *c).unwrap())),
        ),
        (
            "push_counts sha1",
            Kind::Sha1Counts,
            Box::new(|w| counts.chunks(4096).for_each(|part| w.push_counts(part).unwrap())),
        ),
        (
            "push_count hibp-sha1",
            Kind::HibpSha1Counts,
            Box::new(|w| counts.iter().for_each(|(k, c)| w.push_count(k, *c).unwrap())),
        ),
        (
            "push_value accounts",
            Kind::Accounts,
            Box::new(|w| k16.iter().for_each(|k| w.push_value(k, &7u32.to_le_bytes()).unwrap())),
        ),
        (
            "push_keys accounts",
            Kind::Accounts,
            Box::new(|w| k16.chunks(4096).for_each(|part| w.push_keys(part, &7u32.to_le_bytes()).unwrap())),
        ),
        (
            "push_keys credential-keys",
            Kind::CredentialKeys,
            Box::new(|w| k16.chunks(4096).for_each(|part| w.push_keys(part, &[]).unwrap())),
        ),
        (
            "push_value credentials",
            Kind::Credentials,
            Box::new(|w| k28.iter().for_each(|k| w.push_value(k, &[]).unwrap())),
        ),
        (
            "push_payload domains",
            Kind::Domains,
            Box::new(|w| {
                for (k, &len) in k16.iter().zip(&lens) {
                    w.push_payload(k, 3, &payload[..usize::from(len)]).unwrap();
                }
            }),
        ),
        (
            "push_payload_len stealer",
            Kind::Stealer,
            Box::new(|w| {
                for (k, &len) in k16.iter().zip(&lens) {
                    w.push_payload_len(k, 3, usize::from(len)).unwrap();
                }
                for &len in &lens {
                    w.put_payload(&payload[..usize::from(len)]).unwrap();
                }
            }),
        ),
        (
            "push_payload_lens domains",
            Kind::Domains,
            Box::new(|w| {
                for (k, group) in k16.iter().zip(lens.chunks(64)) {
                    w.push_payload_lens(k, 3, group).unwrap();
                }
                for &len in &lens {
                    w.put_payload(&payload[..usize::from(len)]).unwrap();
                }
            }),
        ),
    ];
    for (name, kind, push) in &cases {
        let mut best = f64::MAX;
        for round in 0..rounds {
            let path = dir.path().join(format!("w{round}.seg"));
            let start = CpuClock::now();
            write_case(&path, *kind, n as u64, push);
            best = best.min(start.elapsed().as_secs_f64());
            std::fs::remove_file(&path).unwrap();
        }
        report(&format!("write {name} (best of {rounds})"), best * 1e9 / n as f64);
    }
}

/// One timed write: a segment created, filled by `push` and finished. A
/// function of its own, never inlined, so that a profiler can cut a run at its
/// calls: `valgrind --tool=callgrind --dump-before=write_case
/// --dump-after=write_case` writes each case's instructions to a file of
/// their own.
#[inline(never)]
fn write_case(path: &std::path::Path, kind: Kind, n: u64, push: &dyn Fn(&mut SegmentWriter)) {
    let mut w = SegmentWriter::create(path, kind, n).unwrap();
    push(&mut w);
    w.finish_unsynced().unwrap();
}
