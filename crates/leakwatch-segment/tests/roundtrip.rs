//! A segment written from any sorted input reads back exactly, whatever prefix
//! width its size picks; damage is reported as corruption with an offset.

use std::collections::BTreeMap;

use leakwatch_segment::{Kind, Layout, Segment, SegmentError, SegmentWriter};
use proptest::prelude::*;

/// A fast deterministic generator of uniform 64-bit words (xorshift64).
fn xorshift(mut state: u64) -> impl FnMut() -> u64 {
    move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    }
}

fn write_counts(dir: &std::path::Path, kind: Kind, entries: &BTreeMap<Vec<u8>, u64>) -> Segment {
    let path = dir.join(format!("{}.seg", kind.name()));
    let mut w = SegmentWriter::create(&path, kind, entries.len() as u64).unwrap();
    for (k, c) in entries {
        w.push_count(k, *c).unwrap();
    }
    w.finish().unwrap();
    Segment::open(&path).unwrap()
}

fn check_counts(seg: &Segment, entries: &BTreeMap<Vec<u8>, u64>) {
    let key_len = seg.kind().key_len();
    for (k, c) in entries {
        assert_eq!(seg.count_of(k).unwrap(), *c);
        let r = seg.find(k).unwrap();
        assert_eq!(r.len(), 1, "key {k:02x?}");
        assert_eq!(seg.count(r.start).unwrap(), *c);
        assert_eq!(&seg.key(r.start)[..key_len], &k[..]);
    }
    let all: Vec<_> = seg.iter().map(|r| r.unwrap()).collect();
    assert_eq!(all.len(), entries.len());
    for ((key, i), (k, c)) in all.iter().zip(entries) {
        assert_eq!(&key[..key_len], &k[..]);
        assert_eq!(seg.count(*i).unwrap(), *c);
    }
    // The walk with counts a merge makes gives the same, in the same order.
    let counted: Vec<(Vec<u8>, u64)> =
        seg.counts().map(|r| r.map(|(key, c)| (key[..key_len].to_vec(), c)).unwrap()).collect();
    assert_eq!(counted, entries.iter().map(|(k, c)| (k.clone(), *c)).collect::<Vec<_>>());
    // Every range holds exactly the keys with that 20-bit prefix, in order.
    let mut by_prefix: BTreeMap<u32, Vec<&Vec<u8>>> = BTreeMap::new();
    for k in entries.keys() {
        let p = u32::from_be_bytes([0, k[0], k[1], k[2]]) >> 4;
        by_prefix.entry(p).or_default().push(k);
    }
    for (p, keys) in &by_prefix {
        let r = seg.range20(*p).unwrap();
        let got: Vec<_> = r.map(|i| seg.key(i)[..key_len].to_vec()).collect();
        let want: Vec<_> = keys.iter().map(|k| k.to_vec()).collect();
        assert_eq!(got, want, "prefix {p:05X}");
        // The range walk gives the same keys with their counts.
        let walked: Vec<_> = seg
            .range20_entries(*p)
            .unwrap()
            .map(|e| e.map(|(key, count)| (key[..key_len].to_vec(), count)))
            .collect::<Result<_, _>>()
            .unwrap();
        let want: Vec<_> = keys.iter().map(|k| (k.to_vec(), entries[*k])).collect();
        assert_eq!(walked, want, "range walk of {p:05X}");
        if *p > 0 && !by_prefix.contains_key(&(p - 1)) {
            assert!(seg.range20(p - 1).unwrap().is_empty());
        }
    }
    let mut absent = entries.keys().next().cloned().unwrap_or(vec![0; key_len]);
    absent[key_len - 1] ^= 0x55;
    if !entries.contains_key(&absent) {
        assert!(seg.find(&absent).unwrap().is_empty());
        assert_eq!(seg.count_of(&absent).unwrap(), 0);
    }
    // Neighbours of present keys are absent unless present themselves.
    for k in entries.keys().take(200) {
        for bit in [0usize, 7, 19, 20, 27, 8 * key_len - 1] {
            let mut near = k.clone();
            near[bit / 8] ^= 0x80 >> (bit % 8);
            let want = entries.get(&near).copied().unwrap_or(0);
            assert_eq!(seg.count_of(&near).unwrap(), want, "{near:02x?}");
            assert_eq!(seg.find(&near).unwrap().len(), usize::from(want > 0));
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(24))]
    #[test]
    fn counts_round_trip(
        keys in prop::collection::btree_map(prop::collection::vec(any::<u8>(), 20), 1u64..100_000, 0..3000),
        clustered in any::<bool>(),
    ) {
        // Clustered keys share their first bytes, so ranges and buckets hold many.
        let keys: BTreeMap<Vec<u8>, u64> = keys.into_iter().map(|(mut k, c)| {
            if clustered { k[0] = 0xAB; k[1] &= 0x0F; }
            let c = if c % 3 == 0 { c } else { c % 20 + 1 };
            (k, c)
        }).collect();
        let dir = tempfile::tempdir().unwrap();
        let seg = write_counts(dir.path(), Kind::Sha1Counts, &keys);
        check_counts(&seg, &keys);
        seg.verify().unwrap();
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(24))]
    /// The packed layout (Pwned Passwords kinds) answers exactly as a map does.
    #[test]
    fn packed_counts_round_trip(
        keys in prop::collection::btree_map(prop::collection::vec(any::<u8>(), 20), 1u64..u64::MAX, 0..1500),
        clustered in any::<bool>(),
        ntlm in any::<bool>(),
        small in 0u64..4,
    ) {
        let key_len = if ntlm { 16 } else { 20 };
        let keys: BTreeMap<Vec<u8>, u64> = keys.into_iter().map(|(mut k, c)| {
            k.truncate(key_len);
            if clustered { k[0] = 0xAB; k[1] &= 0x0F; }
            // Mostly small counts, some huge, as in Pwned Passwords.
            let c = match c % 10 { 0 => c, 1 | 2 => c % 1000 + 1, _ => c % (small + 1) + 1 };
            (k, c)
        }).collect();
        let kind = if ntlm { Kind::HibpNtlmCounts } else { Kind::HibpSha1Counts };
        let dir = tempfile::tempdir().unwrap();
        let seg = write_counts(dir.path(), kind, &keys);
        check_counts(&seg, &keys);
        seg.verify().unwrap();
    }

    /// Damage anywhere in a packed segment gives an error or a wrong answer,
    /// never a panic; and `verify` reports it.
    #[test]
    fn damaged_packed_segments_never_panic(
        flips in prop::collection::vec((any::<prop::sample::Index>(), 1u8..=255), 1..8),
    ) {
        let keys: BTreeMap<Vec<u8>, u64> = (0..3000u32)
            .map(|i| {
                let mut k = vec![0u8; 20];
                k[..4].copy_from_slice(&i.wrapping_mul(2_654_435_761).to_be_bytes());
                k[4] = i as u8;
                (k, u64::from(i % 7 + 1) * if i % 50 == 0 { 1_000_003 } else { 1 })
            })
            .collect();
        let dir = tempfile::tempdir().unwrap();
        let seg = write_counts(dir.path(), Kind::HibpSha1Counts, &keys);
        let path = seg.path().to_owned();
        drop(seg);
        let mut bytes = std::fs::read(&path).unwrap();
        // Damage after the header, whose own CRC would refuse the file.
        for (at, x) in flips {
            let i = 128 + at.index(bytes.len() - 128);
            bytes[i] ^= x;
        }
        std::fs::write(&path, &bytes).unwrap();
        if let Ok(seg) = Segment::open(&path) {
            prop_assert!(seg.verify().is_err());
            for k in keys.keys().take(300) {
                let _ = seg.count_of(k);
                let _ = seg.find(k);
            }
            for p in (0..0x10_0000u32).step_by(997) {
                if let Ok(run) = seg.range20_entries(p) {
                    for e in run {
                        let _ = e;
                    }
                }
                let _ = seg.range20(p);
            }
            for (_, i) in seg.iter().take(5000).flatten() {
                let _ = seg.count(i);
                let _ = seg.key(i);
            }
        }
    }
}

#[test]
fn packed_segment_at_scale_is_near_the_entropy_bound() {
    let mut next = xorshift(0x9E37_79B9_7F4A_7C15);
    let mut keys = BTreeMap::new();
    while keys.len() < 400_000 {
        let mut k = vec![0u8; 20];
        for chunk in k.chunks_mut(8) {
            chunk.copy_from_slice(&next().to_be_bytes()[..chunk.len()]);
        }
        // P(count >= c) about 1/c: half are 1.
        let c = (u64::MAX / (next() | 1)).clamp(1, 50_000_000);
        keys.insert(k, c);
    }
    let dir = tempfile::tempdir().unwrap();
    let seg = write_counts(dir.path(), Kind::HibpSha1Counts, &keys);
    for (k, c) in keys.iter().step_by(97) {
        assert_eq!(seg.count_of(k).unwrap(), *c);
    }
    assert_eq!(seg.iter().count(), keys.len());
    // 400,000 random 160-bit keys need about 160 - log2(400,000) + 1.44 = 142.8
    // bits each; the counts here take about 5 bits more.
    let per_key = seg.file_len() as f64 / keys.len() as f64;
    assert!(per_key < 19.0, "{per_key} bytes a key");
}

#[test]
fn large_segment_uses_wide_prefix_and_reads_back() {
    let mut next = xorshift(0x9E37_79B9_7F4A_7C15);
    let mut keys = BTreeMap::new();
    for i in 0..300_000u64 {
        let mut k = vec![0u8; 16];
        k[..8].copy_from_slice(&next().to_be_bytes());
        k[8..].copy_from_slice(&next().to_be_bytes());
        keys.insert(k, if i % 1000 == 0 { 10_000_000 } else { i % 5 + 1 });
    }
    let dir = tempfile::tempdir().unwrap();
    let seg = write_counts(dir.path(), Kind::NtlmCounts, &keys);
    assert!(seg.prefix_bits() >= 12, "{seg:?}");
    check_counts(&seg, &keys);
}

#[test]
fn accounts_keep_one_entry_per_breach_and_domains_their_payload() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("a.seg");
    let mut w = SegmentWriter::create(&path, Kind::Accounts, 3).unwrap();
    w.push_value(&[1; 16], &7u32.to_le_bytes()).unwrap();
    w.push_value(&[1; 16], &9u32.to_le_bytes()).unwrap();
    w.push_value(&[2; 16], &7u32.to_le_bytes()).unwrap();
    w.finish().unwrap();
    let seg = Segment::open(&path).unwrap();
    let r = seg.find(&[1; 16]).unwrap();
    let breaches: Vec<_> = r.map(|i| seg.value(i).to_vec()).collect();
    assert_eq!(breaches, vec![7u32.to_le_bytes().to_vec(), 9u32.to_le_bytes().to_vec()]);

    let path = dir.path().join("d.seg");
    let mut w = SegmentWriter::create(&path, Kind::Domains, 2).unwrap();
    w.push_payload(&[3; 16], 1, b"alice").unwrap();
    w.push_payload(&[3; 16], 2, b"bob.smith").unwrap();
    w.finish().unwrap();
    let seg = Segment::open(&path).unwrap();
    let got: Vec<_> =
        seg.find(&[3; 16]).unwrap().map(|i| seg.payload(i).unwrap()).map(|(b, p)| (b, p.to_vec())).collect();
    assert_eq!(got, vec![(1, b"alice".to_vec()), (2, b"bob.smith".to_vec())]);
}

#[test]
fn payloads_held_in_memory_or_in_a_file_make_the_same_segment() {
    // Enough entries and payload bytes to cross checksum chunks, with the heap
    // kept in memory, moved to a file part-way, and in a file almost at once.
    let dir = tempfile::tempdir().unwrap();
    let mut next = xorshift(5);
    let mut entries: Vec<([u8; 16], u32, Vec<u8>)> = (0..40_000)
        .map(|i| {
            let mut key = [0u8; 16];
            key[..8].copy_from_slice(&next().to_be_bytes());
            let payload = vec![(i % 251) as u8; 1 + (next() % 60) as usize];
            (key, (i % 3) as u32, payload)
        })
        .collect();
    entries.sort();
    let mut files = Vec::new();
    // The last way: the entries with their payloads' lengths, then the payloads.
    for (n, limit) in [usize::MAX, 600_000, 10, 0].into_iter().enumerate() {
        let path = dir.path().join(format!("d{n}.seg"));
        let mut w = SegmentWriter::create(&path, Kind::Domains, entries.len() as u64).unwrap();
        w.set_heap_memory(limit);
        if limit == 0 {
            for (key, breach, payload) in &entries {
                w.push_payload_len(key, *breach, payload.len()).unwrap();
            }
            for (_, _, payload) in &entries {
                w.put_payload(payload).unwrap();
            }
        } else {
            for (key, breach, payload) in &entries {
                w.push_payload(key, *breach, payload).unwrap();
            }
        }
        let written = w.finish().unwrap();
        let seg = Segment::open(&path).unwrap();
        for (key, breach, payload) in entries.iter().step_by(97) {
            let found: Vec<_> = seg.find(key).unwrap().map(|i| seg.payload(i).unwrap()).collect();
            assert!(found.contains(&(*breach, &payload[..])), "limit {limit}");
        }
        files.push((written.content_hash, std::fs::read(&path).unwrap()));
    }
    assert!(files.windows(2).all(|w| w[0] == w[1]));
    // No scratch file is left beside the segments.
    let names: Vec<_> = std::fs::read_dir(dir.path()).unwrap().map(|e| e.unwrap().file_name()).collect();
    assert_eq!(names.len(), 4, "{names:?}");
}

#[test]
fn payload_lengths_pushed_by_key_or_one_by_one_make_the_same_segment() {
    // A few keys with many entries each, across checksum chunks.
    let dir = tempfile::tempdir().unwrap();
    let mut next = xorshift(3);
    let mut groups: Vec<([u8; 16], Vec<Vec<u8>>)> = (0..40u8)
        .map(|k| {
            let count = (next() % 3000) as usize;
            ([k; 16], (0..count).map(|_| vec![k; 1 + (next() % 80) as usize]).collect())
        })
        .collect();
    groups.sort();
    let mut hashes = Vec::new();
    for by_key in [false, true] {
        let path = dir.path().join(format!("g{by_key}"));
        let total = groups.iter().map(|g| g.1.len() as u64).sum();
        let mut w = SegmentWriter::create(&path, Kind::Domains, total).unwrap();
        for (key, payloads) in &groups {
            if by_key {
                let lens: Vec<u8> = payloads.iter().map(|p| p.len() as u8).collect();
                w.push_payload_lens(key, 7, &lens).unwrap();
            } else {
                for p in payloads {
                    w.push_payload_len(key, 7, p.len()).unwrap();
                }
            }
        }
        for p in groups.iter().flat_map(|g| &g.1) {
            w.put_payload(p).unwrap();
        }
        hashes.push(w.finish().unwrap().content_hash);
        let seg = Segment::open(&path).unwrap();
        for (key, payloads) in groups.iter().step_by(5) {
            let found: Vec<_> = seg.find(key).unwrap().map(|i| seg.payload(i).unwrap().1.to_vec()).collect();
            assert_eq!(&found, payloads);
        }
    }
    assert_eq!(hashes[0], hashes[1]);
}

#[test]
fn counts_pushed_as_slices_or_one_by_one_make_the_same_segment() {
    // Both digest widths, sizes whose layouts put the count in implied bits or
    // in a byte of its own, counts past the inline maximum, chunk crossings.
    let dir = tempfile::tempdir().unwrap();
    let mut next = xorshift(17);
    fn check<const K: usize>(
        dir: &std::path::Path,
        kind: Kind,
        count: usize,
        next: &mut impl FnMut() -> u64,
    ) {
        let mut entries: Vec<([u8; K], u64)> = (0..count)
            .map(|_| {
                let mut key = [0u8; K];
                for c in key.chunks_mut(8) {
                    let n = c.len();
                    c.copy_from_slice(&next().to_be_bytes()[..n]);
                }
                let n = next();
                (key, if n.is_multiple_of(50) { 1 + n % 100_000 } else { 1 + n % 3 })
            })
            .collect();
        entries.sort();
        entries.dedup_by(|a, b| a.0 == b.0);
        let one_by_one = {
            let path = dir.join(format!("{}-{count}-one", kind.name()));
            let mut w = SegmentWriter::create(&path, kind, count as u64).unwrap();
            for (key, n) in &entries {
                w.push_count(key, *n).unwrap();
            }
            w.finish().unwrap().content_hash
        };
        for step in [1, 7, 1000, usize::MAX] {
            let path = dir.join(format!("{}-{count}-{step}", kind.name()));
            let mut w = SegmentWriter::create(&path, kind, count as u64).unwrap();
            for part in entries.chunks(step.min(entries.len()).max(1)) {
                w.push_counts(part).unwrap();
            }
            assert_eq!(
                w.finish().unwrap().content_hash,
                one_by_one,
                "{} {count} in slices of {step}",
                kind.name()
            );
            let seg = Segment::open(&path).unwrap();
            for (key, n) in entries.iter().step_by(101) {
                let found: Vec<u64> = seg.find(key).unwrap().map(|i| seg.count(i).unwrap()).collect();
                assert_eq!(found, vec![*n]);
            }
        }
    }
    // (One SHA-1 digest: the count in a byte of its own; 30,000: in implied bits.)
    assert_eq!(Layout::choose(Kind::Sha1Counts, 1).small_bits, 0);
    assert!(Layout::choose(Kind::Sha1Counts, 30_000).small_bits > 0);
    for count in [1, 30, 5_000, 30_000, 300_000] {
        check::<20>(dir.path(), Kind::Sha1Counts, count, &mut next);
        check::<16>(dir.path(), Kind::NtlmCounts, count, &mut next);
    }
    let mut w = SegmentWriter::create(&dir.path().join("bad"), Kind::Sha1Counts, 4).unwrap();
    assert!(w.push_counts(&[([2u8; 20], 1), ([2; 20], 1)]).is_err(), "a key twice");
    w.push_counts(&[([2u8; 20], 1)]).unwrap();
    assert!(w.push_counts(&[([2u8; 20], 1)]).is_err(), "the last key again");
    assert!(w.push_counts(&[([3u8; 16], 1)]).is_err(), "the wrong width");
}

#[test]
fn payloads_put_after_their_entries_must_add_up() {
    let dir = tempfile::tempdir().unwrap();
    let open = |name: &str| SegmentWriter::create(&dir.path().join(name), Kind::Domains, 4).unwrap();
    let mut w = open("short");
    w.push_payload_len(&[1; 16], 1, 5).unwrap();
    w.put_payload(b"abc").unwrap();
    assert!(w.finish().is_err(), "two payload bytes missing");
    let mut w = open("mixed");
    w.push_payload_len(&[1; 16], 1, 3).unwrap();
    assert!(w.push_payload(&[2; 16], 1, b"abc").is_err());
    let mut w = open("late");
    w.push_payload_len(&[1; 16], 1, 3).unwrap();
    w.put_payload(b"abc").unwrap();
    assert!(w.push_payload_len(&[2; 16], 1, 3).is_err(), "an entry after the payloads");
    let mut w = open("unasked");
    w.push_payload(&[1; 16], 1, b"abc").unwrap();
    assert!(w.put_payload(b"abc").is_err());
}

#[test]
fn keys_pushed_as_slices_or_one_by_one_make_the_same_segment() {
    // Sizes whose prefix widths imply 0, 1 and 2 key bytes, entries that
    // straddle checksum chunks, slices of every length, repeated keys.
    let dir = tempfile::tempdir().unwrap();
    let mut next = xorshift(9);
    for count in [40, 3_000, 200_000] {
        let mut keys: Vec<[u8; 16]> = (0..count)
            .map(|_| {
                let mut key = [0u8; 16];
                key[..8].copy_from_slice(&next().to_be_bytes());
                key[8..].copy_from_slice(&next().to_be_bytes());
                key
            })
            .collect();
        keys.sort();
        keys[count / 2] = keys[count / 2 - 1];
        let mut creds: Vec<[u8; 28]> = keys
            .iter()
            .map(|k| {
                let mut c = [7u8; 28];
                c[..16].copy_from_slice(k);
                c
            })
            .collect();
        creds.sort();
        let one_by_one = |n: usize| {
            let path = dir.path().join(format!("one-{count}-{n}"));
            let mut a = SegmentWriter::create(&path, Kind::Accounts, count as u64).unwrap();
            let mut c =
                SegmentWriter::create(&path.with_extension("c"), Kind::Credentials, count as u64).unwrap();
            for (key, cred) in keys.iter().zip(&creds) {
                a.push_value(key, &9u32.to_le_bytes()).unwrap();
                c.push_value(cred, &[]).unwrap();
            }
            (a.finish().unwrap().content_hash, c.finish().unwrap().content_hash)
        };
        let want = one_by_one(0);
        let mut step = 1;
        while step <= count {
            let path = dir.path().join(format!("slices-{count}-{step}"));
            let mut a = SegmentWriter::create(&path, Kind::Accounts, count as u64).unwrap();
            let mut c =
                SegmentWriter::create(&path.with_extension("c"), Kind::Credentials, count as u64).unwrap();
            for (ks, cs) in keys.chunks(step).zip(creds.chunks(step)) {
                a.push_keys(ks, &9u32.to_le_bytes()).unwrap();
                c.push_keys(cs, &[]).unwrap();
            }
            let got = (a.finish().unwrap().content_hash, c.finish().unwrap().content_hash);
            assert_eq!(got, want, "{count} keys in slices of {step}");
            step = step * 7 + 1;
        }
    }
    // Out of order, within a slice or after the last key pushed; wrong widths.
    let mut w = SegmentWriter::create(&dir.path().join("bad"), Kind::Accounts, 4).unwrap();
    assert!(w.push_keys(&[[2u8; 16], [1; 16]], &[0; 4]).is_err());
    w.push_keys(&[[2u8; 16]], &[0; 4]).unwrap();
    assert!(w.push_keys(&[[1u8; 16]], &[0; 4]).is_err());
    assert!(w.push_keys(&[[3u8; 16]], &[0; 3]).is_err());
    assert!(w.push_keys(&[[3u8; 20]], &[0; 4]).is_err());
}

#[test]
fn writer_refuses_unsorted_and_repeated_counted_keys() {
    let dir = tempfile::tempdir().unwrap();
    let mut w = SegmentWriter::create(&dir.path().join("x"), Kind::Sha1Counts, 2).unwrap();
    w.push_count(&[5; 20], 1).unwrap();
    assert!(w.push_count(&[5; 20], 1).is_err());
    assert!(w.push_count(&[4; 20], 1).is_err());
}

#[test]
fn damage_is_reported_with_an_offset() {
    let dir = tempfile::tempdir().unwrap();
    let keys: BTreeMap<Vec<u8>, u64> = (0..5000u32)
        .map(|i| {
            let mut k = vec![0u8; 20];
            k[..4].copy_from_slice(&i.wrapping_mul(2_654_435_761).to_be_bytes());
            (k, 1)
        })
        .collect();
    let seg = write_counts(dir.path(), Kind::Sha1Counts, &keys);
    let path = seg.path().to_owned();
    drop(seg);

    let mut bytes = std::fs::read(&path).unwrap();
    bytes[70_000] ^= 0x40;
    std::fs::write(&path, &bytes).unwrap();
    let seg = Segment::open(&path).unwrap();
    match seg.verify() {
        Err(SegmentError::DataCorruption { offset, .. }) => assert_eq!(offset, 128 + 65_536),
        other => panic!("expected corruption, got {other:?}"),
    }

    bytes[3] = b'X';
    std::fs::write(&path, &bytes).unwrap();
    assert!(matches!(Segment::open(&path), Err(SegmentError::DataCorruption { .. })));

    std::fs::write(&path, &bytes[..100]).unwrap();
    assert!(matches!(Segment::open(&path), Err(SegmentError::DataCorruption { .. })));
}

/// A key's count, or its (breach, payload) pairs.
type Lookup = (u64, Vec<(u32, Vec<u8>)>);
/// A range's (key, count) entries.
type RangeRun = Vec<(Vec<u8>, u64)>;

/// What a segment answers: every key's lookup, ranges, iteration; an error
/// as the offset it reports.
#[derive(Debug, PartialEq)]
struct Answers {
    lookups: Vec<Result<Lookup, u64>>,
    ranges: Vec<Result<RangeRun, u64>>,
    keys: Result<Vec<Vec<u8>>, u64>,
}

/// Every answer of `seg` for `keys`; an error becomes the offset it reports,
/// after checking it is an offset inside the file of `len` bytes.
fn answers(seg: &Segment, keys: &[Vec<u8>], len: u64) -> Answers {
    let offset = |e: SegmentError| match e {
        SegmentError::DataCorruption { offset, .. } => {
            assert!(offset < len, "offset {offset} beyond the file's {len} bytes: {e}");
            offset
        }
        other => panic!("damage reported as {other:?}"),
    };
    let key_len = seg.kind().key_len();
    let lookup = |k: &Vec<u8>| -> Result<Lookup, SegmentError> {
        if seg.kind() != Kind::Domains {
            return Ok((seg.count_of(k)?, Vec::new()));
        }
        let mut payloads = Vec::new();
        for i in seg.find(k)? {
            let (breach, p) = seg.payload(i)?;
            payloads.push((breach, p.to_vec()));
        }
        Ok((0, payloads))
    };
    let range = |p: u32| -> Result<RangeRun, SegmentError> {
        seg.range20_entries(p)?.map(|e| e.map(|(k, c)| (k[..key_len].to_vec(), c))).collect()
    };
    Answers {
        lookups: keys.iter().map(|k| lookup(k).map_err(offset)).collect(),
        ranges: keys
            .iter()
            .take(40)
            .map(|k| {
                let p = u32::from_be_bytes([0, k[0], k[1], k[2]]) >> 4;
                range(p).map_err(offset)
            })
            .collect(),
        keys: seg
            .iter()
            .map(|e| e.map(|(k, _)| k[..key_len].to_vec()))
            .collect::<Result<_, _>>()
            .map_err(offset),
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(96))]
    /// Damage anywhere in a segment of any layout (fixed counts with overflow
    /// rows, packed counts, payloads) is reported at an offset inside the file;
    /// and every lookup either answers as the undamaged segment did or fails:
    /// never a wrong answer from bytes that changed.
    #[test]
    fn damage_anywhere_is_reported_inside_the_file_or_changes_no_answer(
        layout in 0usize..3,
        flips in prop::collection::vec((any::<prop::sample::Index>(), 1u8..=255), 1..6),
    ) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.seg");
        let kind = [Kind::Sha1Counts, Kind::HibpSha1Counts, Kind::Domains][layout];
        let n = 4000u32;
        let keys: Vec<Vec<u8>> = {
            let mut keys: Vec<Vec<u8>> = (0..n)
                .map(|i| {
                    let mut k = vec![0u8; kind.key_len()];
                    k[..4].copy_from_slice(&i.wrapping_mul(2_654_435_761).to_be_bytes());
                    k[4] = i as u8;
                    k
                })
                .collect();
            keys.sort();
            keys
        };
        let mut w = SegmentWriter::create(&path, kind, u64::from(n)).unwrap();
        for (i, k) in keys.iter().enumerate() {
            if kind == Kind::Domains {
                w.push_payload(k, i as u32 % 5, format!("alias{i}").as_bytes()).unwrap();
            } else {
                // Some counts too large for an entry: the overflow table.
                w.push_count(k, if i % 40 == 0 { 1 << 40 } else { i as u64 % 5 + 1 }).unwrap();
            }
        }
        w.finish().unwrap();
        let len = std::fs::metadata(&path).unwrap().len();
        let want = answers(&Segment::open(&path).unwrap(), &keys, len);

        let mut bytes = std::fs::read(&path).unwrap();
        let size = bytes.len();
        for (at, x) in flips {
            bytes[at.index(size)] ^= x;
        }
        std::fs::write(&path, &bytes).unwrap();
        match Segment::open(&path) {
            Err(SegmentError::DataCorruption { offset, .. }) => prop_assert!(offset < len),
            Err(SegmentError::UnsupportedVersion { .. }) => {}
            Err(other) => prop_assert!(false, "{other}"),
            Ok(seg) => {
                if let Err(SegmentError::DataCorruption { offset, .. }) = seg.verify() {
                    prop_assert!(offset < len);
                }
                let got = answers(&seg, &keys, len);
                for (g, w) in got.lookups.iter().zip(&want.lookups) {
                    prop_assert!(g.is_err() || g == w, "{g:?} where the segment said {w:?}");
                }
                for (g, w) in got.ranges.iter().zip(&want.ranges) {
                    prop_assert!(g.is_err() || g == w);
                }
                prop_assert!(got.keys.is_err() || got.keys == want.keys);
            }
        }
    }
}

/// Segments are named by their content, so the writer must keep producing the
/// same bytes for the same input: a store written by one build and extended by
/// the next keeps its names, and a change of layout code cannot slip in a
/// change of format. Each case writes a deterministic input through one push
/// path and compares BLAKE3 of the whole file, and the content name, with the
/// values pinned here (computed from the format as documented; a deliberate
/// format change updates them together with `docs/format.md`).
#[test]
fn segments_are_byte_identical_for_the_same_input() {
    let dir = tempfile::tempdir().unwrap();
    let cases = golden_segments(dir.path());
    let got: Vec<String> = cases
        .iter()
        .map(|(name, file, content)| format!("{name} {} {}", hex(file), hex(&content[..16])))
        .collect();
    let want: Vec<String> = GOLDEN.iter().map(|s| s.to_string()).collect();
    assert_eq!(got, want, "\nnow:\n{}", got.join("\n"));
}

const GOLDEN: &[&str] = &[
    "sha1-40-40 093391e3adc8ea5f13923835295cbd838d5c7f9cf037c35247a40211e3ecdf5e e8aeed352d3cf86a7171eab02688607c",
    "ntlm-40-40 0a3cbef28912e014d19b1ed81a004250357a615c829cbeed4706addfbb64c81f 59a330be58460a1e96a394776b34028a",
    "sha1-6000-6000 101452bf707256a45bca2ae7671677e74dda00df0fd7d3e697fb0e19baddbae8 72a43a1968f3754d9b66e6f47c5b3fe2",
    "ntlm-6000-6000 ac38cf3568a7dc52b221012194ecb02709bba9bb8ae16aaa038b07929b373b6a e8f7456ef68e46bb26bd3b4dc89da362",
    "sha1-6000-65536 fd0e633b10ba4ede5f93b99b4530dc25910e82a99351c2efc0983e4756b8d7c6 8a2dad840097a5715e49978ed25642d7",
    "ntlm-6000-65536 a6e4a173d25cf129d134c194a8ba92faa1b7a4ebd8f82c8d6c92c60cf61e30bc 4435ca17cb3708e2498061e035b1903b",
    "sha1-90000-90000 7a218d7c275af589061b0e42d0d725f43810335973a49f7c0088480067a39696 da4932da188e3a5406586aac7a4cd3b5",
    "ntlm-90000-90000 59250a11b8f9955ba51c9079f672e1a75016a44ea0b9d5e6b195e97399d563ae 1579c8681eb4206786ae1d2725c6bd7e",
    "sha1-5000-268435456 d305679e661961991d88de2a9c2020fc3b6c72966ed8aba2f47dae66f3a41548 5997b538df7f695b7b9e4bc636c78e44",
    "ntlm-5000-268435456 b2c98cc2b0ddfc18362c7f37456d65c0224ceb57b122aa9dbd7548b8a4e3d23a ee7e3bc43c80e1740e342cc47a6414b3",
    "accounts-50 bc8a23f474ac321a5aded0b60d2dc7765547a1cce4b22700bbca932566005477 de08cc775fce981e58c02d0345023642",
    "credential-keys-50 7e647d4557411c7c17697804bd360cc6d76d09d42914409e0dace5441fba5eae b1b928f111455b2b744c97c44c330a72",
    "accounts-slices-50 038e5f9fe002ca11af17c63e71caca9b2dbfc353d5a61c874d415d899077033a d8656b9d59e09cffdfaffd1b684814fa",
    "stealer-emails-50 1721dfc35a10e129f48adb21675cc61befcca87890aa228598c895f5421b4dc6 663de6cbd67df0233c93a1ec328e4f94",
    "credentials-50 31b7486b5a633b53f44ccfd64a9cdffa27eed409428c8f415226a9b46da8e549 21e0bf7bf1c2169afa13a7fd213d6712",
    "ntlm-credentials-50 19f423490ff8eb7b196269c62ba99783593dda0a40f804f81ec1b498b93e5120 0a72431b5c3f37adec948f42d1417185",
    "accounts-70000 10ea21d3e50ee925485200172fd493664039f0cba19b277b7db8165a8616465e b55fc7937b0acac06c243b9b6df3af46",
    "credential-keys-70000 95627600516262fdf29bdb8895376f0a2e957e7eb6622526aa59d3dd67e58dfd 3655ca7cd8c4b43038cf55cd60ac10f4",
    "accounts-slices-70000 18a011b8dc67f6947fab990b162e6db7388f471624c2c6019bf32d415317bb81 7bd1e2003be54b1d7280611d00b049b7",
    "stealer-emails-70000 e92b614af387909fd2546e10e81090daed9bccb69604d442d59391a66ec07805 1fb609eda3264a6db49c9d5001c47d21",
    "credentials-70000 c410c72144bfe6e9d3bd52a07dfb829bfc42df804cf56d47a52dc812ad72342a 7c26cfefa3cfec7a8d0f71dc0a6fead2",
    "ntlm-credentials-70000 cdc0fedd1fd984142baa7e6bd65633df5cf125adf5ed71f488b427b989ba52f4 b8733455672f2fd55abc878ae6b066fd",
    "domains-bytes bb8b45f473bc17005410175221f55548f496fc135034c98a5b1aa9db9640e343 3281b5c937dd0ab2c2652964b04f7c60",
    "stealer-lens f03a083773f45124953be38a06361951c08ca912d803b0694a987fc21c666b1d 57bfe5262030258620c18cab8c6681bc",
    "domains-by-key 564040649fb19a866a028fcc84f0e23e9cb1da43ae1a79f245bc1dc462f86f4a 0d1732bc497471f384850e7d2eee3cc8",
    "hibp-sha1-3000 cc7532cebfa7f3c8ee4532a6998bc8c04e8999e9bc91055da1b472fd741770e8 30b1704dd7b1e391e8da6b4d1c85d050",
    "hibp-ntlm-3000 24014e91f79e4abe2214e40a6e40fee266b7d35f6d36fdcb6dfdb29d9f28b93f b821a1fe9b0b82be383e9aae5a77cc09",
    "hibp-sha1-100000 ccc19008e5b712b808300964ff658fe3011adbc01641d67b906a95fb045670e7 d0b95be611b5f19740ed99c41a57bb65",
    "hibp-ntlm-100000 384c388f4cbc12aabb931085dcaea181f1b753664762242cd1d6a7177e61cbcb 68cc967e21a6d662a755eb8253748c16",
];

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Sorted distinct keys of `K` bytes from a seed, with the top `top` bits of
/// every key cleared, so that small sets still fill few buckets of wide tables.
fn golden_keys<const K: usize>(seed: u64, n: usize, top: u32) -> Vec<[u8; K]> {
    let mut next = xorshift(seed);
    let mut keys: Vec<[u8; K]> = (0..n)
        .map(|_| {
            let mut key = [0u8; K];
            for c in key.chunks_mut(8) {
                let len = c.len();
                c.copy_from_slice(&next().to_be_bytes()[..len]);
            }
            let head = u32::from_be_bytes(key[..4].try_into().unwrap()) & (u32::MAX >> top);
            key[..4].copy_from_slice(&head.to_be_bytes());
            key
        })
        .collect();
    keys.sort();
    keys.dedup();
    keys
}

/// Counts shaped like Pwned Passwords': mostly small, some past every inline
/// maximum and escape.
fn golden_count(i: usize) -> u64 {
    match i % 17 {
        0 => 1 + (i as u64).wrapping_mul(0x9E37_79B9) % 10_000_000,
        1 | 2 => 200 + i as u64 % 300,
        _ => 1 + i as u64 % 5,
    }
}

/// (case, BLAKE3 of the file, content hash) for one segment per push path and
/// layout, at sizes that pick different prefix widths and cross checksum chunks.
fn golden_segments(dir: &std::path::Path) -> Vec<(String, [u8; 32], [u8; 32])> {
    let mut out = Vec::new();
    let mut done = |name: String, written: leakwatch_segment::Written| {
        let file = blake3::hash(&std::fs::read(&written.path).unwrap());
        out.push((name, *file.as_bytes(), written.content_hash));
    };
    let create = |name: &str, kind: Kind, expected: u64| {
        SegmentWriter::create(&dir.join(format!("{name}.seg")), kind, expected).unwrap()
    };
    // Counts one by one and in slices: prefix widths implying 0, 1 and 2 key
    // bytes, the count in implied bits or a byte of its own.
    for (n, expected) in
        [(40usize, 40u64), (6_000, 6_000), (6_000, 1 << 16), (90_000, 90_000), (5_000, 1 << 28)]
    {
        let keys = golden_keys::<20>(n as u64, n, 0);
        let name = format!("sha1-{n}-{expected}");
        let mut w = create(&name, Kind::Sha1Counts, expected);
        for (i, k) in keys.iter().enumerate() {
            w.push_count(k, golden_count(i)).unwrap();
        }
        done(name, w.finish().unwrap());
        let keys = golden_keys::<16>(n as u64 + 1, n, 0);
        let entries: Vec<([u8; 16], u64)> =
            keys.iter().enumerate().map(|(i, k)| (*k, golden_count(i))).collect();
        let name = format!("ntlm-{n}-{expected}");
        let mut w = create(&name, Kind::NtlmCounts, expected);
        for part in entries.chunks(333) {
            w.push_counts(part).unwrap();
        }
        done(name, w.finish().unwrap());
    }
    // Fixed values one by one and in slices, with repeated keys.
    for n in [50usize, 70_000] {
        let mut keys = golden_keys::<16>(n as u64 + 2, n, 0);
        let dup = keys[n / 3];
        keys.insert(n / 3, dup);
        let name = format!("accounts-{n}");
        let mut w = create(&name, Kind::Accounts, n as u64);
        for (i, k) in keys.iter().enumerate() {
            w.push_value(k, &(i as u32 % 3).to_le_bytes()).unwrap();
        }
        done(name, w.finish().unwrap());
        let name = format!("credential-keys-{n}");
        let mut w = create(&name, Kind::CredentialKeys, n as u64);
        for part in keys.chunks(1000) {
            w.push_keys(part, &[]).unwrap();
        }
        done(name, w.finish().unwrap());
        let name = format!("accounts-slices-{n}");
        let mut w = create(&name, Kind::Accounts, n as u64);
        for part in keys.chunks(777) {
            w.push_keys(part, &5u32.to_le_bytes()).unwrap();
        }
        done(name, w.finish().unwrap());
        let name = format!("stealer-emails-{n}");
        let mut w = create(&name, Kind::StealerEmails, n as u64);
        for (i, k) in keys.iter().enumerate() {
            let mut value = [0u8; 20];
            value[..8].copy_from_slice(&(i as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15).to_le_bytes());
            w.push_value(k, &value).unwrap();
        }
        done(name, w.finish().unwrap());
        let creds = golden_keys::<28>(n as u64 + 3, n, 8);
        let name = format!("credentials-{n}");
        let mut w = create(&name, Kind::Credentials, n as u64);
        for k in &creds {
            w.push_value(k, &[]).unwrap();
        }
        done(name, w.finish().unwrap());
        let creds = golden_keys::<24>(n as u64 + 4, n, 0);
        let name = format!("ntlm-credentials-{n}");
        let mut w = create(&name, Kind::NtlmCredentials, n as u64);
        for k in &creds {
            w.push_value(k, &[]).unwrap();
        }
        done(name, w.finish().unwrap());
    }
    // Payloads three ways: with their bytes, by length then put, by key in a row.
    let keys = golden_keys::<16>(7, 20_000, 0);
    let payload = |i: usize| vec![(i % 251) as u8; 1 + i % 70];
    let name = "domains-bytes".to_string();
    let mut w = create(&name, Kind::Domains, keys.len() as u64);
    for (i, k) in keys.iter().enumerate() {
        w.push_payload(k, i as u32 % 4, &payload(i)).unwrap();
    }
    done(name, w.finish().unwrap());
    let name = "stealer-lens".to_string();
    let mut w = create(&name, Kind::Stealer, keys.len() as u64);
    for (i, k) in keys.iter().enumerate() {
        w.push_payload_len(k, 2, payload(i).len()).unwrap();
    }
    for i in 0..keys.len() {
        w.put_payload(&payload(i)).unwrap();
    }
    done(name, w.finish().unwrap());
    let name = "domains-by-key".to_string();
    let mut w = create(&name, Kind::Domains, 30_000);
    let mut lens = Vec::new();
    for (g, k) in keys.iter().take(300).enumerate() {
        let group: Vec<u8> = (0..g % 200).map(|j| payload(g + j).len() as u8).collect();
        w.push_payload_lens(k, g as u32, &group).unwrap();
        lens.extend(group);
    }
    for len in lens {
        w.put_payload(&vec![len; usize::from(len)]).unwrap();
    }
    done(name, w.finish().unwrap());
    // The packed layout: under and over the sample that picks its widths.
    for n in [3_000usize, 100_000] {
        let keys = golden_keys::<20>(n as u64 + 5, n, 0);
        let name = format!("hibp-sha1-{n}");
        let mut w = create(&name, Kind::HibpSha1Counts, n as u64);
        for (i, k) in keys.iter().enumerate() {
            w.push_count(k, golden_count(i)).unwrap();
        }
        done(name, w.finish().unwrap());
        let keys = golden_keys::<16>(n as u64 + 6, n, 0);
        let name = format!("hibp-ntlm-{n}");
        let mut w = create(&name, Kind::HibpNtlmCounts, 2 * n as u64);
        for (i, k) in keys.iter().enumerate() {
            w.push_count(k, golden_count(i)).unwrap();
        }
        done(name, w.finish().unwrap());
    }
    out
}

/// Bytes of a segment file served by range, counted, as an object store would.
struct Ranges {
    whole: Vec<u8>,
    file: std::fs::File,
    fetches: std::sync::Mutex<Vec<std::ops::Range<u64>>>,
    /// Flip a byte of everything served (a corrupt object).
    corrupt: bool,
}

impl leakwatch_segment::Fetch for Ranges {
    fn fetch(&self, range: std::ops::Range<u64>) -> std::io::Result<()> {
        use std::os::unix::fs::FileExt;
        self.fetches.lock().unwrap().push(range.clone());
        let mut bytes = self.whole[range.start as usize..range.end as usize].to_vec();
        if self.corrupt {
            let mid = bytes.len() / 2;
            bytes[mid] ^= 1;
        }
        self.file.write_all_at(&bytes, range.start)
    }
}

/// A sparse local file holding `whole`'s length and its first `head` bytes,
/// with a counting source of the rest.
fn sparse(
    dir: &std::path::Path,
    whole: &[u8],
    head: usize,
    corrupt: bool,
) -> (std::path::PathBuf, std::sync::Arc<Ranges>) {
    use std::os::unix::fs::FileExt;
    let path = dir.join(format!("sparse-{corrupt}.seg"));
    let file =
        std::fs::OpenOptions::new().create(true).truncate(true).read(true).write(true).open(&path).unwrap();
    file.set_len(whole.len() as u64).unwrap();
    file.write_all_at(&whole[..head], 0).unwrap();
    let source = Ranges { whole: whole.to_vec(), file, fetches: Default::default(), corrupt };
    (path, std::sync::Arc::new(source))
}

#[test]
fn a_fetched_segment_reads_what_it_needs_in_one_fetch_per_lookup_and_checks_it() {
    let mut next = xorshift(0x5EED);
    let mut keys = BTreeMap::new();
    for _ in 0..200_000u64 {
        let mut k = vec![0u8; 20];
        for part in k.chunks_mut(8) {
            part.copy_from_slice(&next().to_be_bytes()[..part.len()]);
        }
        keys.insert(k, next() % 7 + 1);
    }
    let dir = tempfile::tempdir().unwrap();
    let local = write_counts(dir.path(), Kind::Sha1Counts, &keys);
    let whole = std::fs::read(local.path()).unwrap();
    assert!(whole.len() > 1 << 20, "several chunks: {}", whole.len());

    let (path, source) = sparse(dir.path(), &whole, 128, false);
    let seg = Segment::open_fetching(&path, std::path::Path::new("s3://bucket/seg"), source.clone()).unwrap();
    assert_eq!(seg.path(), std::path::Path::new("s3://bucket/seg"), "named as where it is");
    let at_open = source.fetches.lock().unwrap().len();
    assert!(at_open <= 2, "the checksum list and the tables: {:?}", source.fetches.lock().unwrap());
    for prefix in [0u32, 0x1_2345, 0xA_BCDE, 0xF_FFFF] {
        let before = source.fetches.lock().unwrap().len();
        let got: Vec<_> = seg.range20_entries(prefix).unwrap().collect::<Result<_, _>>().unwrap();
        let want: Vec<_> = local.range20_entries(prefix).unwrap().collect::<Result<_, _>>().unwrap();
        assert_eq!(got, want, "prefix {prefix:05X}");
        let fetched = source.fetches.lock().unwrap().len() - before;
        assert!(fetched <= 1, "at most one fetch for range {prefix:05X}: {fetched}");
        seg.range20_entries(prefix).unwrap().for_each(drop);
        assert_eq!(source.fetches.lock().unwrap().len() - before, fetched, "none for it again");
    }
    check_counts(&seg, &keys);
    seg.verify().unwrap();

    // A source that serves wrong bytes: errors, never answers.
    let (path, source) = sparse(dir.path(), &whole, 128, true);
    match Segment::open_fetching(&path, std::path::Path::new("s3://bucket/seg"), source) {
        Err(SegmentError::DataCorruption { .. }) => {}
        Ok(seg) => {
            let all: Vec<_> = (0..64u32).map(|p| seg.range20(p << 14).map(drop)).collect();
            assert!(all.iter().any(Result::is_err), "some read of corrupt bytes fails");
            assert!(matches!(seg.verify(), Err(SegmentError::DataCorruption { .. })));
        }
        Err(e) => panic!("{e}"),
    }
}
