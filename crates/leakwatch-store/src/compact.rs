//! Compaction: merges segments of a kind when there are too many, so lookups
//! visit few files, rewriting as few bytes as it can. Like any ingest it writes
//! new files and publishes them with a new manifest; the merged-away files are
//! deleted only after that.
//!
//! Merging is exact: counts of equal keys are summed, (key, value) pairs of
//! accounts and domains and the keys of credentials are deduplicated.
//!
//! Counts and credential triples do not say which breach they came from, so
//! segments of those kinds are merged only with segments of the same breach:
//! removing a breach then drops its segments whole (`crate::breach`).
//!
//! After the merges, [`crate::totals::refresh`] sums each password corpus's
//! counts across breaches where its rule says; a merge of segments the totals
//! cover is passed on to them ([`crate::totals::merged`]), so they stay in force.
//!
//! Compaction is size-tiered. A kind with more than [`MAX_SEGMENTS_PER_KIND`]
//! segments has each of its merge groups ([`merge_groups`]) sorted into tiers
//! by size: the lowest holds segments under [`TIER_FACTOR`] times the tier
//! base (8 MiB), each next one segments up to [`TIER_FACTOR`] times larger.
//! A tier with more than [`MAX_SEGMENTS_PER_TIER`] segments is merged into
//! one (which usually lands in the tier above), and again until no tier is
//! over. A segment is merged about once per tier it climbs, log4 of its
//! final size over the base, instead of once every few ingests: the large
//! segments are left alone by the small ingests that follow them. Segments at
//! least half full (half the entries or, with payloads, half the heap a
//! segment may hold) are never merged: merging them would only roll over
//! into full segments again.
//!
//! **Bound on reads:** after compaction a kind has at most
//! [`MAX_SEGMENTS_PER_KIND`] segments, or per merge group at most
//! [`MAX_SEGMENTS_PER_TIER`] in each tier (with the format's limits, 7 tiers
//! below the half-full segments of a 2^32-entry account kind: 28) plus its
//! half-full segments, each holding at least 2^31 entries or 2 GiB of
//! payloads.

use std::collections::{BTreeMap, BTreeSet};

use leakwatch_segment::Kind;

use crate::dir::SegmentLimits;
use crate::error::{Result, StoreError};
use crate::manifest::SegmentRef;
use crate::txn::{group_breaches, merge_groups, Txn};

/// A kind with at most this many segments is left as it is.
pub const MAX_SEGMENTS_PER_KIND: usize = 8;

/// Above this many segments in one tier of a merge group, the tier is merged.
pub const MAX_SEGMENTS_PER_TIER: usize = 4;

/// How much larger the segments of a tier are than those of the tier below.
pub const TIER_FACTOR: u64 = 4;

/// Merges the tiers over [`MAX_SEGMENTS_PER_TIER`] in every kind with more
/// than `threshold` segments, commits each round of merges, and goes on until
/// none is over; returns how many segments were merged away.
pub(crate) fn compact(txn: &mut Txn, threshold: usize) -> Result<usize> {
    let limits = txn.dir().segment_limits();
    let mut merged_away = 0;
    // Each round leaves at most one segment below half full from each merge
    // (the others are full), so the segments that may merge again decrease.
    loop {
        let merged = compact_once(txn, threshold, limits)?;
        if merged == 0 {
            crate::totals::refresh(txn)?;
            return Ok(merged_away);
        }
        merged_away += merged;
    }
}

/// One round: merges what [`plan`] picks and commits.
fn compact_once(txn: &mut Txn, threshold: usize, limits: SegmentLimits) -> Result<usize> {
    // Indices into the manifest's segments: two segments of equal content
    // share a file name, so a file name does not identify a segment.
    let mut merged_away = BTreeSet::new();
    let mut out = txn.segments();
    // Each merge's kind, input files and how many segments it had written
    // before it: what the totals are told of.
    let mut merges: Vec<(Kind, Vec<String>, usize)> = Vec::new();
    // Totals are rebuilt whole by `totals::refresh`, never merged by tier.
    for kind in Kind::ALL.into_iter().filter(|&k| !crate::totals::is_totals(k)) {
        let (at, refs): (Vec<usize>, Vec<&SegmentRef>) =
            txn.manifest.segments.iter().enumerate().filter(|(_, s)| s.kind == kind.name()).unzip();
        if refs.len() <= threshold.max(1) {
            continue;
        }
        for group in plan(kind, &refs, limits) {
            let indices: Vec<usize> = group.iter().map(|&i| at[i]).collect();
            let group: Vec<&SegmentRef> = group.iter().map(|&i| refs[i]).collect();
            // A damaged segment stays as it is, for `verify` to list and
            // `repair` to set aside: merging it would spread the damage or fail
            // the ingest that has just been published.
            let Ok(segments) = group
                .iter()
                .map(|s| txn.open(s).and_then(|seg| seg.verify().map(|()| seg).map_err(StoreError::from)))
                .collect::<Result<Vec<_>>>()
            else {
                continue;
            };
            merges.push((kind, group.iter().map(|s| s.file.clone()).collect(), out.written_len()));
            crate::merge::merge(&segments, kind, group_breaches(&group), &mut out)?;
            merged_away.extend(indices);
        }
    }
    if merged_away.is_empty() {
        return Ok(0);
    }
    let written = out.done()?;
    let old = std::mem::take(&mut txn.manifest.segments);
    let (gone, kept): (Vec<_>, Vec<_>) =
        old.into_iter().enumerate().partition(|(i, _)| merged_away.contains(i));
    txn.manifest.segments = kept.into_iter().map(|(_, s)| s).collect();
    for (n, (kind, inputs, from)) in merges.iter().enumerate() {
        let to = merges.get(n + 1).map_or(written.len(), |m| m.2);
        let outputs: Vec<String> = written[*from..to].iter().map(|s| s.file.clone()).collect();
        crate::totals::merged(&mut txn.manifest, *kind, inputs, &outputs);
    }
    txn.manifest.segments.extend(written);
    txn.commit_replacing(gone.into_iter().map(|(_, s)| s.file))?;
    Ok(merged_away.len())
}

/// The size tier of a segment of `bytes`: 0 below `base` times
/// [`TIER_FACTOR`], one more for each further factor.
fn tier(bytes: u64, base: u64) -> u32 {
    let mut tier = 0;
    let mut top = base.saturating_mul(TIER_FACTOR);
    while bytes >= top && top < u64::MAX {
        tier += 1;
        top = top.saturating_mul(TIER_FACTOR);
    }
    tier
}

/// Whether a segment is at least half as large as a segment may be: merged,
/// it would only roll over into full segments.
fn half_full(kind: Kind, s: &SegmentRef, limits: SegmentLimits) -> bool {
    s.entries.saturating_mul(2) > limits.entries
        || (kind.has_payload() && s.bytes.saturating_mul(2) > limits.heap_bytes)
}

/// The merges of one kind's segments `refs`, as indices into it: in each
/// merge group, the segments of each tier with more than
/// [`MAX_SEGMENTS_PER_TIER`] of them, half-full segments left out.
fn plan(kind: Kind, refs: &[&SegmentRef], limits: SegmentLimits) -> Vec<Vec<usize>> {
    let mut merges = Vec::new();
    for group in merge_groups(kind, refs) {
        let mut tiers: BTreeMap<u32, Vec<usize>> = BTreeMap::new();
        for i in group {
            if !half_full(kind, refs[i], limits) {
                tiers.entry(tier(refs[i].bytes, limits.tier_base_bytes)).or_default().push(i);
            }
        }
        merges.extend(tiers.into_values().filter(|t| t.len() > MAX_SEGMENTS_PER_TIER));
    }
    merges
}

#[cfg(test)]
mod tests {
    use super::*;

    const MB: u64 = 1 << 20;

    #[test]
    fn tiers_grow_by_the_factor() {
        let base = 8 * MB;
        assert_eq!(tier(0, base), 0);
        assert_eq!(tier(32 * MB - 1, base), 0);
        assert_eq!(tier(32 * MB, base), 1);
        assert_eq!(tier(128 * MB - 1, base), 1);
        assert_eq!(tier(128 * MB, base), 2);
        assert_eq!(tier(u64::MAX, base), 20);
    }

    fn account_segment(bytes: u64, breaches: Vec<u32>) -> SegmentRef {
        SegmentRef {
            kind: "accounts".into(),
            file: String::new(),
            entries: bytes / 20,
            bytes,
            breaches,
            covers: Vec::new(),
        }
    }

    /// Which segments a compaction policy merges (indices into `refs`),
    /// whether it merges again until nothing is left to merge, and where its
    /// segments are full.
    type Policy = (fn(Kind, &[&SegmentRef], SegmentLimits) -> Vec<Vec<usize>>, bool, SegmentLimits);

    /// The policy compaction had before size tiers: a kind over
    /// [`MAX_SEGMENTS_PER_KIND`] segments merged whole, each merge group into
    /// one, with segments as large as it takes (it failed at the format's
    /// limits; with rollover it would merge every ingest once a kind holds
    /// more than 8 full segments, which would flatter the tiers more).
    const WHOLE_KIND: Policy = (
        |kind, refs, _| merge_groups(kind, refs).into_iter().filter(|g| g.len() > 1).collect(),
        false,
        SegmentLimits { entries: u64::MAX / 20, ..SegmentLimits::FORMAT },
    );
    const TIERED: Policy = (plan, true, SegmentLimits::FORMAT);

    /// What compaction costs over `sizes.len()` ingests of an account
    /// segment of each size: (bytes rewritten, the most segments the kind
    /// had after a compaction, how often each segment of `watched`'s
    /// ingests was rewritten).
    fn simulate((policy, again, limits): Policy, sizes: &[u64], watched: usize) -> (u64, usize, usize) {
        let mut segments: Vec<SegmentRef> = Vec::new();
        let (mut rewritten, mut most, mut watched_rewrites) = (0u64, 0usize, 0usize);
        for (i, &bytes) in sizes.iter().enumerate() {
            segments.push(account_segment(bytes, vec![i as u32]));
            // As `compact` does: rounds until nothing merges.
            while segments.len() > MAX_SEGMENTS_PER_KIND {
                let refs: Vec<&SegmentRef> = segments.iter().collect();
                let merges = policy(Kind::Accounts, &refs, limits);
                if merges.is_empty() {
                    break;
                }
                let mut gone = BTreeSet::new();
                let mut new = Vec::new();
                for merge in merges {
                    let group: Vec<&SegmentRef> = merge.iter().map(|&i| refs[i]).collect();
                    let total: u64 = group.iter().map(|s| s.bytes).sum();
                    rewritten += total;
                    watched_rewrites +=
                        group.iter().filter(|s| s.breaches.contains(&(watched as u32))).count();
                    // Rolled over into full segments and the rest.
                    let full = limits.entries * 20;
                    let breaches = group_breaches(&group);
                    for _ in 0..total / full {
                        new.push(account_segment(full, breaches.clone()));
                    }
                    if !total.is_multiple_of(full) {
                        new.push(account_segment(total % full, breaches));
                    }
                    gone.extend(merge);
                }
                segments = segments
                    .into_iter()
                    .enumerate()
                    .filter(|(i, _)| !gone.contains(i))
                    .map(|(_, s)| s)
                    .collect();
                segments.extend(new);
                if !again {
                    break;
                }
            }
            most = most.max(segments.len());
        }
        (rewritten, most, watched_rewrites)
    }

    /// Breach sizes spread evenly in log scale from 100 kB to 50 GB of
    /// account entries, in a fixed pseudo-random order.
    fn breach_sizes(n: usize) -> Vec<u64> {
        let mut x = 0x9E37_79B9_7F4A_7C15u64;
        (0..n)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                let f = (x >> 11) as f64 / (1u64 << 53) as f64;
                (1e5 * (5e10f64 / 1e5).powf(f)) as u64
            })
            .collect()
    }

    /// Size tiers rewrite a fraction of what whole-kind merges do, keep the
    /// segments of a kind logarithmic in the ingests, and leave a large
    /// segment alone while small ingests follow it. Prints the figures
    /// (`cargo test -p leakwatch-store --lib compact::tests -- --nocapture`).
    #[test]
    fn size_tiers_rewrite_a_fraction_of_whole_kind_merges() {
        for n in [100, 500, 2000] {
            let sizes = breach_sizes(n);
            let ingested: u64 = sizes.iter().sum();
            let (old, old_most, _) = simulate(WHOLE_KIND, &sizes, 0);
            let (new, new_most, _) = simulate(TIERED, &sizes, 0);
            eprintln!(
                "{n} ingests, {:.2} TB of account segments: whole-kind merges rewrite {:.1} TB \
                 ({:.1} per byte ingested), size tiers {:.2} TB ({:.2} per byte): {:.1}x less; \
                 at most {old_most} / {new_most} segments",
                ingested as f64 / 1e12,
                old as f64 / 1e12,
                old as f64 / ingested as f64,
                new as f64 / 1e12,
                new as f64 / ingested as f64,
                old as f64 / new as f64,
            );
            assert!(old > 3 * new, "{n} ingests: {old} against {new}");
            // 7 tiers below half full, 4 segments each, plus the half-full
            // ones, of 43 GB at least.
            assert!(
                new_most <= MAX_SEGMENTS_PER_TIER * 7 + (ingested / (43 << 30)) as usize + 1,
                "{new_most}"
            );
        }
        // A 20 GB breach, then 1,000 of 1 MB: the large segment never merges,
        // alone in a tier the small ones never reach.
        let mut sizes = vec![20 << 30];
        sizes.extend(std::iter::repeat_n(MB, 1000));
        let (rewritten, most, large) = simulate(TIERED, &sizes, 0);
        assert_eq!(large, 0, "the large segment was rewritten");
        // Merges within the lowest tier (under 32 MiB) rewrite small
        // segments several times over: a few GB at most.
        assert!(rewritten < 1000 * MB * 8, "{rewritten}");
        assert!(most <= 1 + MAX_SEGMENTS_PER_TIER * 4, "{most}");
        let (_, _, large) = simulate(WHOLE_KIND, &sizes, 0);
        assert!(large > 100, "whole-kind merges rewrite it every 8 ingests: {large}");
    }
}
