//! Compaction: merges the segments of a kind into one when there are too many,
//! so lookups visit few files. Like any ingest it writes new files and publishes
//! them with a new manifest; the merged-away files are deleted only after that.
//!
//! Merging is exact: counts of equal keys are summed, (key, value) pairs of
//! accounts and domains and the keys of credentials are deduplicated.
//!
//! Counts and credential triples do not say which breach they came from, so
//! segments of those kinds are merged only with segments of the same breach:
//! removing a breach then drops its segments whole (`crate::breach`).

use std::cmp::Reverse;
use std::collections::{BTreeSet, BinaryHeap};

use leakwatch_segment::{Kind, Segment, MAX_KEY_LEN};

use crate::error::{Result, StoreError};
use crate::manifest::SegmentRef;
use crate::txn::{group_breaches, merge_groups, names_breach, RollingWriter, SegmentSet, Txn};

/// Above this many segments of one kind, they are merged.
pub const MAX_SEGMENTS_PER_KIND: usize = 8;

/// Merges every kind with more than `threshold` segments and commits the
/// result; returns how many segments were merged away.
pub(crate) fn compact(txn: &mut Txn, threshold: usize) -> Result<usize> {
    // Indices into the manifest's segments: two segments of equal content
    // share a file name, so a file name does not identify a segment.
    let mut merged_away = BTreeSet::new();
    let mut out = txn.segments();
    for kind in Kind::ALL {
        let (at, refs): (Vec<usize>, Vec<&SegmentRef>) =
            txn.manifest.segments.iter().enumerate().filter(|(_, s)| s.kind == kind.name()).unzip();
        if refs.len() <= threshold.max(1) {
            continue;
        }
        for group in merge_groups(kind, &refs) {
            if group.len() < 2 {
                continue;
            }
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
            merge(&segments, kind, group_breaches(&group), &mut out)?;
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
    txn.manifest.segments.extend(written);
    txn.commit_replacing(gone.into_iter().map(|(_, s)| s.file))?;
    Ok(merged_away.len())
}

/// Merges `segments` into one segment of `kind`, holding `group_breaches` (the
/// breaches of the segments merged, which kinds whose entries name their breach
/// read from the entries instead).
fn merge(segments: &[Segment], kind: Kind, group_breaches: Vec<u32>, out: &mut SegmentSet) -> Result<()> {
    let upper = segments.iter().map(Segment::len).sum();
    let mut writer = out.writer(kind, upper)?;
    let key_len = kind.key_len();
    let mut iters: Vec<_> = segments.iter().map(Segment::iter).collect();
    let mut heap = BinaryHeap::new();
    for (s, it) in iters.iter_mut().enumerate() {
        if let Some(head) = it.next() {
            let (key, i) = head?;
            heap.push(Reverse((key, s, i)));
        }
    }
    // Values seen for the current key: (segment, entry) pairs.
    let mut group: Vec<(usize, usize)> = Vec::new();
    let mut current: Option<[u8; MAX_KEY_LEN]> = None;
    let mut breaches = BTreeSet::new();
    while let Some(Reverse((key, s, i))) = heap.pop() {
        if current.is_some_and(|c| c != key) {
            flush(
                segments,
                kind,
                &current.expect("checked")[..key_len],
                &mut group,
                &mut writer,
                &mut breaches,
            )?;
        }
        current = Some(key);
        group.push((s, i));
        if let Some(next) = iters[s].next() {
            let (key, i) = next?;
            heap.push(Reverse((key, s, i)));
        }
    }
    if let Some(key) = current {
        flush(segments, kind, &key[..key_len], &mut group, &mut writer, &mut breaches)?;
    }
    // Entries that name their breach say which the merged segment holds, also
    // when a segment merged was written before segments were attributed.
    let breaches = if names_breach(kind) { breaches.into_iter().collect() } else { group_breaches };
    out.finish_attributed(writer, breaches)
}

fn flush(
    segments: &[Segment],
    kind: Kind,
    key: &[u8],
    group: &mut Vec<(usize, usize)>,
    writer: &mut RollingWriter,
    breaches: &mut BTreeSet<u32>,
) -> Result<()> {
    match kind {
        Kind::Sha1Counts | Kind::NtlmCounts | Kind::HibpSha1Counts | Kind::HibpNtlmCounts => {
            let mut total = 0u64;
            for &(s, i) in group.iter() {
                total += segments[s].count(i)?;
            }
            writer.push_count(key, total)?;
        }
        Kind::Credentials | Kind::NtlmCredentials | Kind::CredentialKeys | Kind::NtlmCredentialKeys => {
            writer.push_value(key, &[])?
        }
        // Values that open with the breach id.
        Kind::Accounts | Kind::StealerEmails => {
            let mut values: Vec<&[u8]> = group.iter().map(|&(s, i)| segments[s].value(i)).collect();
            values.sort_unstable();
            values.dedup();
            for v in values {
                let breach = v.get(..4).and_then(|b| b.try_into().ok()).map(u32::from_le_bytes);
                breaches.insert(breach.ok_or_else(|| StoreError::DataCorruption {
                    path: segments[0].path().to_owned(),
                    detail: format!("{} entry's value does not open with a breach id", kind.name()),
                })?);
                writer.push_value(key, v)?;
            }
        }
        Kind::Domains | Kind::Stealer => {
            let mut values =
                group.iter().map(|&(s, i)| segments[s].payload(i)).collect::<Result<Vec<_>, _>>()?;
            values.sort_unstable();
            values.dedup();
            for (breach, payload) in values {
                breaches.insert(breach);
                writer.push_payload(key, breach, payload)?;
            }
        }
    }
    group.clear();
    Ok(())
}
