//! The domain index's entries between the parsers and their segment: grouped
//! by domain in memory, each group sorted by sealed alias.
//!
//! A dump names a few domains over and over (a third of a combo list is
//! gmail.com). Sorted as (domain key, entry) records, every record of a
//! domain ties on the first key bytes and costs a second pass; grouped by
//! domain first, what is left to sort is the sealed aliases, uniform bytes.
//! An entry is its sealed alias alone: sealing is deterministic, so an
//! account met twice gives the same entry twice, and within a domain the alias
//! is the account. (Accounts already in the breach are left out before their
//! entries are made.) Over the memory budget the groups are sorted and
//! written out as runs of whole (domain key, entry) records, which [`Runs`]
//! merges like any other kind's. Either way the output is in (domain key,
//! sealed alias) order, each alias once: the order compaction keeps.

use std::cmp::Ordering;
use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};
use std::path::PathBuf;

use rayon::prelude::*;

use leakwatch_types::Key16;

use crate::crypt::SEAL_OVERHEAD;
use crate::error::Result;
use crate::runs::{cmp_key, sort_records, Runs, Scratch};

/// An entry: a sealed alias of up to 16 bytes of alias (most of them),
/// zero-padded, then its length...
pub(crate) const SHORT: usize = 16 + SEAL_OVERHEAD + 1;
/// ...or of up to 64 (HIBP's limit; longer aliases are cut there).
pub(crate) const LONG: usize = 64 + SEAL_OVERHEAD + 1;
/// The spilled runs' records: the domain key, then the entry.
pub(crate) const WIDE_SHORT: usize = 16 + SHORT;
pub(crate) const WIDE_LONG: usize = 16 + LONG;

/// Groups of at least this many entries are sorted one at a time (see
/// [`DomainRuns::take_sorted`]).
const BIG_GROUP: usize = 1 << 16;

/// What a group costs besides its entries (map slot, vector headers), charged
/// to the memory budget so that a dump of a million distinct domains spills.
const GROUP_OVERHEAD: usize = 96;

/// One batch's entries grouped by domain: `keys[d]`'s entries are
/// `short[short_starts[d]..short_starts[d + 1]]`, and the same in `long`.
pub(crate) struct DomainBatch {
    keys: Vec<Key16>,
    short: Vec<[u8; SHORT]>,
    short_starts: Vec<u32>,
    long: Vec<[u8; LONG]>,
    long_starts: Vec<u32>,
    /// Bytes of sealed aliases.
    payload: u64,
}

/// The entry vectors of a [`DomainBatch`], kept for a later batch.
#[derive(Default)]
#[cfg_attr(test, derive(Debug, PartialEq))]
pub(crate) struct DomainBuffers {
    short: Vec<[u8; SHORT]>,
    long: Vec<[u8; LONG]>,
}

impl DomainBatch {
    /// Groups `entries` (the index of their domain in `keys`, the sealed
    /// alias) by domain, in two passes: count, then place; in `buffers`, an
    /// earlier batch's or new ones.
    pub(crate) fn new<'a>(
        keys: Vec<Key16>,
        entries: impl Iterator<Item = (usize, &'a [u8])> + Clone,
        buffers: DomainBuffers,
    ) -> Self {
        let mut short_starts = vec![0u32; keys.len() + 1];
        let mut long_starts = vec![0u32; keys.len() + 1];
        let mut payload = 0;
        for (domain, sealed) in entries.clone() {
            payload += sealed.len() as u64;
            let starts = if is_short(sealed) { &mut short_starts } else { &mut long_starts };
            starts[domain + 1] += 1;
        }
        for d in 1..=keys.len() {
            short_starts[d] += short_starts[d - 1];
            long_starts[d] += long_starts[d - 1];
        }
        let DomainBuffers { mut short, mut long } = buffers;
        zero(&mut short, short_starts[keys.len()] as usize);
        zero(&mut long, long_starts[keys.len()] as usize);
        let (mut next_short, mut next_long) = (short_starts.clone(), long_starts.clone());
        for (domain, sealed) in entries {
            if is_short(sealed) {
                set_entry(&mut short[next_short[domain] as usize], sealed);
                next_short[domain] += 1;
            } else {
                set_entry(&mut long[next_long[domain] as usize], sealed);
                next_long[domain] += 1;
            }
        }
        DomainBatch { keys, short, short_starts, long, long_starts, payload }
    }

    /// The entry vectors, for a later batch.
    pub(crate) fn into_buffers(self) -> DomainBuffers {
        DomainBuffers { short: self.short, long: self.long }
    }
}

/// Makes `buf` `n` zeroed entries, in the memory it has.
fn zero<const N: usize>(buf: &mut Vec<[u8; N]>, n: usize) {
    buf.clear();
    buf.resize(n, [0u8; N]);
}

fn is_short(sealed: &[u8]) -> bool {
    sealed.len() < SHORT
}

/// Makes a zeroed `slot` the entry of `sealed`: the sealed bytes, zero-padded,
/// then their length. Sorted as arrays, entries fall in the order of their
/// sealed bytes as slices (a shorter one that the zero padding makes equal to
/// a longer one goes first, as a prefix does). Written in place: an entry
/// built on the stack and copied over stalled on store forwarding (the
/// variable-length copy, then 16-byte loads); `DomainBatch::new` took 2.5%
/// of an ingest's CPU that way, 1.3% this way.
fn set_entry<const N: usize>(slot: &mut [u8; N], sealed: &[u8]) {
    slot[..sealed.len()].copy_from_slice(sealed);
    slot[N - 1] = sealed.len() as u8;
}

/// The sealed alias of an entry.
fn sealed<const N: usize>(entry: &[u8; N]) -> &[u8] {
    &entry[..usize::from(entry[N - 1]).min(N - 1)]
}

/// The entries of one domain.
#[derive(Default)]
pub(crate) struct Group {
    short: Vec<[u8; SHORT]>,
    long: Vec<[u8; LONG]>,
}

impl Group {
    /// Sorts both lists, each without repeats, through the given scratch buffers.
    fn sort(&mut self, (short, long): &mut (Scratch<SHORT>, Scratch<LONG>)) {
        sort_entries(&mut self.short, short);
        sort_entries(&mut self.long, long);
    }
}

/// Domain keys are keyed hashes: their low bits are already uniform, and
/// nobody without the key can choose them to collide.
#[derive(Default)]
struct KeyHasher(u64);

impl Hasher for KeyHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = self.0.rotate_left(8) ^ u64::from(b);
        }
    }

    fn write_u128(&mut self, key: u128) {
        self.0 = key as u64;
    }
}

/// The domain entries of one ingest.
pub(crate) struct DomainRuns {
    groups: HashMap<u128, Group, BuildHasherDefault<KeyHasher>>,
    held: usize,
    pushed: u64,
    payload: u64,
    short: Runs<WIDE_SHORT>,
    long: Runs<WIDE_LONG>,
}

impl DomainRuns {
    pub(crate) fn new(scratch: PathBuf) -> Self {
        DomainRuns {
            groups: HashMap::default(),
            held: 0,
            pushed: 0,
            payload: 0,
            short: Runs::new(scratch.clone(), "domains-short", WIDE_SHORT, true),
            long: Runs::new(scratch, "domains", WIDE_LONG, true),
        }
    }

    pub(crate) fn push(&mut self, batch: &DomainBatch) {
        self.payload += batch.payload;
        for (d, key) in batch.keys.iter().enumerate() {
            let short = &batch.short[batch.short_starts[d] as usize..batch.short_starts[d + 1] as usize];
            let long = &batch.long[batch.long_starts[d] as usize..batch.long_starts[d + 1] as usize];
            if short.is_empty() && long.is_empty() {
                continue;
            }
            let group = self.groups.entry(u128::from_be_bytes(*key)).or_insert_with(|| {
                self.held += GROUP_OVERHEAD;
                Group::default()
            });
            group.short.extend_from_slice(short);
            group.long.extend_from_slice(long);
            self.held += short.len() * SHORT + long.len() * LONG;
            self.pushed += (short.len() + long.len()) as u64;
        }
    }

    /// [`Runs::reserve`] for the groups.
    pub(crate) fn reserve(&mut self, growth: f64) {
        for group in self.groups.values_mut() {
            group.short.reserve((group.short.len() as f64 * (growth - 1.0)) as usize);
            group.long.reserve((group.long.len() as f64 * (growth - 1.0)) as usize);
        }
    }

    /// Bytes held in memory (what the budget is charged).
    pub(crate) fn mem_bytes(&self) -> usize {
        self.held
    }

    /// Entries pushed, repeats included: an upper bound on the output.
    pub(crate) fn pushed(&self) -> u64 {
        self.pushed
    }

    /// Bytes of sealed aliases pushed, repeats included: an upper bound on the
    /// segment's heap.
    pub(crate) fn payload_bytes(&self) -> u64 {
        self.payload
    }

    /// Takes the groups, in domain key order, each sorted without repeats.
    fn take_sorted(&mut self) -> Vec<(u128, Group)> {
        let mut groups: Vec<(u128, Group)> = std::mem::take(&mut self.groups).into_iter().collect();
        self.held = 0;
        groups.sort_unstable_by_key(|&(key, _)| key);
        // The big groups one after another, largest first, through one set of
        // scratch buffers: each sort leaves the group's old buffer as the next
        // one's scratch, so only the largest group's is new memory (sorted
        // side by side, each big group had a fresh buffer of its size: 60 MB
        // of page faults on a 3-million-line combo). The small ones meanwhile
        // on the other cores.
        let (mut big, mut small): (Vec<&mut Group>, Vec<&mut Group>) =
            groups.iter_mut().map(|(_, g)| g).partition(|g| g.short.len() + g.long.len() >= BIG_GROUP);
        big.sort_unstable_by_key(|g| std::cmp::Reverse(g.short.len() * SHORT + g.long.len() * LONG));
        rayon::join(
            || {
                let mut scratch = (Scratch::default(), Scratch::default());
                big.into_iter().for_each(|group| group.sort(&mut scratch));
            },
            || {
                small
                    .par_iter_mut()
                    .for_each_init(|| (Scratch::default(), Scratch::default()), |s, g| g.sort(s))
            },
        );
        groups
    }

    /// The groups, in domain key order, each sorted without repeats, when
    /// nothing was spilled: a caller may then go over them more than once
    /// ([`each_entry`]). `None`, and the runs left for
    /// [`DomainRuns::for_each`], otherwise.
    pub(crate) fn take_memory(&mut self) -> Option<Vec<(u128, Group)>> {
        if self.short.has_runs() || self.long.has_runs() {
            return None;
        }
        Some(self.take_sorted())
    }

    /// Sorts what is held and writes it out as runs, freeing its memory.
    pub(crate) fn spill(&mut self) -> Result<()> {
        if self.groups.is_empty() {
            return Ok(());
        }
        let groups = self.take_sorted();
        self.short.spill_sorted(groups.iter().flat_map(|(key, g)| g.short.iter().map(|e| widen(*key, e))))?;
        self.long.spill_sorted(groups.iter().flat_map(|(key, g)| g.long.iter().map(|e| widen(*key, e))))?;
        Ok(())
    }

    /// Calls `f(domain key, sealed alias)` for every entry, once, in (domain
    /// key, sealed alias) order.
    pub(crate) fn for_each(mut self, mut f: impl FnMut(&[u8], &[u8]) -> Result<()>) -> Result<()> {
        if let Some(groups) = self.take_memory() {
            return each_entry(&groups, f);
        }
        self.spill()?;
        let mut short = self.short.finish()?.peekable();
        let mut long = self.long.finish()?.peekable();
        loop {
            let take_short = match (short.peek(), long.peek()) {
                (None, None) => return Ok(()),
                (Some(Ok(a)), Some(Ok(b))) => (&a[..16], wide_sealed(a)) <= (&b[..16], wide_sealed(b)),
                (Some(_), _) => true,
                (None, Some(_)) => false,
            };
            if take_short {
                let r = short.next().expect("peeked")?;
                f(&r[..16], wide_sealed(&r))?;
            } else {
                let r = long.next().expect("peeked")?;
                f(&r[..16], wide_sealed(&r))?;
            }
        }
    }
}

/// Calls `f(domain key, sealed alias)` for every entry of
/// [`DomainRuns::take_memory`]'s groups, in (domain key, sealed alias) order.
pub(crate) fn each_entry(
    groups: &[(u128, Group)],
    mut f: impl FnMut(&[u8], &[u8]) -> Result<()>,
) -> Result<()> {
    for (key, group) in groups {
        let key = key.to_be_bytes();
        merge_by_sealed(&group.short, &group.long, |alias| f(&key, alias))?;
    }
    Ok(())
}

/// Calls `f(domain key, lengths of its sealed aliases)` for every group of
/// [`DomainRuns::take_memory`], in [`each_entry`]'s order.
pub(crate) fn each_group_lens(
    groups: &[(u128, Group)],
    mut f: impl FnMut(&[u8], &[u8]) -> Result<()>,
) -> Result<()> {
    let mut lens = Vec::new();
    for (key, group) in groups {
        lens.clear();
        merge_by_sealed(&group.short, &group.long, |alias| {
            lens.push(alias.len() as u8);
            Ok(())
        })?;
        f(&key.to_be_bytes(), &lens)?;
    }
    Ok(())
}

fn widen<const N: usize, const W: usize>(key: u128, entry: &[u8; N]) -> [u8; W] {
    let mut rec = [0u8; W];
    rec[..16].copy_from_slice(&key.to_be_bytes());
    rec[16..].copy_from_slice(entry);
    rec
}

/// The sealed alias of a spilled record (the domain key, then the entry).
fn wide_sealed<const W: usize>(rec: &[u8; W]) -> &[u8] {
    &rec[16..16 + usize::from(rec[W - 1]).min(W - 17)]
}

fn sort_entries<const N: usize>(entries: &mut Vec<[u8; N]>, scratch: &mut Scratch<N>) {
    sort_records(entries, 0, N, scratch);
    // Integer compares, not a memcmp call per entry.
    entries.dedup_by(|a, b| cmp_key(a, b, N) == Ordering::Equal);
}

/// Visits the sealed aliases of two sorted lists in order.
fn merge_by_sealed(
    short: &[[u8; SHORT]],
    long: &[[u8; LONG]],
    mut f: impl FnMut(&[u8]) -> Result<()>,
) -> Result<()> {
    if long.is_empty() {
        // Most domains: no alias longer than 16 bytes, nothing to merge.
        return short.iter().try_for_each(|e| f(sealed(e)));
    }
    let (mut i, mut j) = (0, 0);
    while i < short.len() || j < long.len() {
        if j == long.len()
            || (i < short.len() && sealed(&short[i]).cmp(sealed(&long[j])) != Ordering::Greater)
        {
            f(sealed(&short[i]))?;
            i += 1;
        } else {
            f(sealed(&long[j]))?;
            j += 1;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `(domain index, sealed alias)` entries as (domain key, sealed alias)
    /// records, in the order the runs must give them, each once.
    fn sorted_without_repeats(domains: &[Key16], entries: &[(usize, Vec<u8>)]) -> Vec<Vec<u8>> {
        let mut want: Vec<Vec<u8>> =
            entries.iter().map(|(d, s)| [&domains[*d][..], &s[..]].concat()).collect();
        want.sort_by(|a, b| (&a[..16], &a[16..]).cmp(&(&b[..16], &b[16..])));
        want.dedup();
        want
    }

    /// What [`DomainRuns::for_each`] gives, as (domain key, sealed alias) records.
    fn entries_in_order(runs: DomainRuns) -> Vec<Vec<u8>> {
        let mut got = Vec::new();
        runs.for_each(|d, s| {
            got.push([d, s].concat());
            Ok(())
        })
        .unwrap();
        got
    }

    /// Entries of a few domains, repeated, some sealed aliases long, some a
    /// prefix of another; pushed in batches, with and without spilling: the
    /// same (domain, sealed alias) order, each once, as a plain sort.
    #[test]
    fn grouped_spilled_and_sorted_agree() {
        let mut next = crate::runs::tests::xorshift(0x2545_F491_4F6C_DD1D);
        let domains: Vec<Key16> = (0..7u8).map(|d| [d.wrapping_mul(37); 16]).collect();
        let mut entries: Vec<(usize, Vec<u8>)> = (0..5_000u32)
            .map(|i| {
                // Skewed: most entries under the first domain.
                let domain = (next() % 7).min(next() % 7) as usize;
                let len = if i % 13 == 0 { 70 } else { 17 + i as usize % 16 };
                let mut sealed: Vec<u8> = (0..len).map(|_| next() as u8).collect();
                sealed[..4].copy_from_slice(&i.to_be_bytes());
                (domain, sealed)
            })
            .collect();
        // Prefixes of others, zero-padded ones among them, across the short
        // and long lists.
        for i in (0..200).step_by(7) {
            let (domain, sealed) = entries[i].clone();
            let mut longer = sealed.clone();
            longer.push(0);
            entries.push((domain, longer));
            if sealed.len() <= 60 {
                entries.push((domain, [&sealed[..], &[0; 20]].concat()));
            }
            entries.push((domain, sealed[..sealed.len() - 1].to_vec()));
        }
        let mut input: Vec<&(usize, Vec<u8>)> = entries.iter().chain(&entries[..1_000]).collect();
        input.sort_by_key(|e| e.1[5] ^ e.1[9]);
        let want = sorted_without_repeats(&domains, &entries);

        for spill_every in [None, Some(3), Some(1)] {
            let dir = tempfile::tempdir().unwrap();
            let mut runs = DomainRuns::new(dir.path().to_owned());
            for (n, batch) in input.chunks(600).enumerate() {
                let entries = batch.iter().map(|(d, s)| (*d, &s[..]));
                runs.push(&DomainBatch::new(domains.clone(), entries, DomainBuffers::default()));
                if spill_every.is_some_and(|k| n % k == 0) {
                    runs.spill().unwrap();
                }
            }
            assert_eq!(runs.pushed(), input.len() as u64);
            assert_eq!(entries_in_order(runs), want, "spill every {spill_every:?}");
        }
    }

    /// A domain over [`BIG_GROUP`] entries beside small ones: the big groups'
    /// one-at-a-time sort gives the same order as a plain sort.
    #[test]
    fn big_groups_sort_like_small_ones() {
        let mut next = crate::runs::tests::xorshift(0x9E37_79B9_7F4A_7C15);
        let domains: Vec<Key16> = (0..4u8).map(|d| [d.wrapping_mul(61); 16]).collect();
        let sizes = [BIG_GROUP + 3_000, BIG_GROUP + 10, 500, 7];
        let entries: Vec<(usize, Vec<u8>)> = sizes
            .iter()
            .enumerate()
            .flat_map(|(d, &n)| (0..n).map(move |i| (d, i)))
            .map(|(d, i)| {
                let len = if i % 9 == 0 { 40 } else { 17 + i % 16 };
                (d, (0..len).map(|_| next() as u8).collect())
            })
            .collect();
        let want = sorted_without_repeats(&domains, &entries);
        let dir = tempfile::tempdir().unwrap();
        let mut runs = DomainRuns::new(dir.path().to_owned());
        for batch in entries.chunks(10_000) {
            runs.push(&DomainBatch::new(
                domains.clone(),
                batch.iter().map(|(d, s)| (*d, &s[..])),
                DomainBuffers::default(),
            ));
        }
        assert_eq!(entries_in_order(runs), want);
    }
}
