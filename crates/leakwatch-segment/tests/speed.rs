//! Point lookups and range walks of the same keys in the fixed (version 1) and
//! packed (version 2) layouts, side by side. Ignored by default; run in release:
//!
//! `cargo test --release -p leakwatch-segment --test speed -- --ignored --nocapture`
//!
//! `SPEED_KEYS` sets the number of keys (default 20,000,000).

use std::time::Instant;

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
        let start = Instant::now();
        let mut w = SegmentWriter::create(&path, kind, n).unwrap();
        for (k, c) in &keys {
            w.push_count(k, *c).unwrap();
        }
        w.finish_unsynced().unwrap();
        let write = start.elapsed();
        let seg = Segment::open(&path).unwrap();

        let start = Instant::now();
        let mut found = 0u64;
        for p in &probes {
            found += u64::from(seg.count_of(p).unwrap() > 0);
        }
        let lookups = start.elapsed();
        assert_eq!(found, 500_000);

        let start = Instant::now();
        let mut lines = 0usize;
        for &p in &prefixes {
            for e in seg.range20_entries(p).unwrap() {
                e.unwrap();
                lines += 1;
            }
        }
        let ranges = start.elapsed();
        println!(
            "{:>9} ({} keys): {:.2} bytes a key, write {:.2} s, {:.0} ns a lookup ({} lookups), \
             {:.0} ns a range ({} ranges, {:.1} lines each)",
            kind.name(),
            n,
            seg.file_len() as f64 / n as f64,
            write.as_secs_f64(),
            lookups.as_nanos() as f64 / probes.len() as f64,
            probes.len(),
            ranges.as_nanos() as f64 / prefixes.len() as f64,
            prefixes.len(),
            lines as f64 / prefixes.len() as f64,
        );
    }
}
