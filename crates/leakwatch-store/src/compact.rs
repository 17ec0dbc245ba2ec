//! Compaction: merges the segments of a kind into one when there are too many,
//! so lookups visit few files. Like any ingest it writes new files and publishes
//! them with a new manifest; the merged-away files are deleted only after that.
//!
//! Merging is exact: counts of equal keys are summed, (key, value) pairs of
//! accounts and domains and the keys of credentials are deduplicated.

use std::cmp::Reverse;
use std::collections::BinaryHeap;

use leakwatch_segment::{Kind, Segment, MAX_KEY_LEN};

use crate::dir::{DataDir, WriterLock};
use crate::error::{Result, StoreError};
use crate::ingest::SegmentSet;
use crate::manifest::Manifest;

/// Above this many segments of one kind, they are merged.
pub const MAX_SEGMENTS_PER_KIND: usize = 8;

/// Merges every kind with more than `threshold` segments; returns how many
/// segments were merged away. The caller holds the writer lock.
pub fn compact(
    dir: &DataDir,
    manifest: &mut Manifest,
    threshold: usize,
    _lock: &WriterLock,
) -> Result<usize> {
    let mut merged_away = Vec::new();
    let mut held: std::collections::HashMap<String, Vec<u32>> = std::collections::HashMap::new();
    let mut out = SegmentSet::new(dir.segments());
    for kind in Kind::ALL {
        let files: Vec<String> =
            manifest.segments.iter().filter(|s| s.kind == kind.name()).map(|s| s.file.clone()).collect();
        if files.len() <= threshold.max(1) {
            continue;
        }
        // A damaged segment stays as it is, for `verify` to list and `repair`
        // to set aside: merging it would spread the damage or fail the ingest
        // that has just been published.
        let Ok(segments) = files
            .iter()
            .map(|f| Segment::open(&dir.segments().join(f)).and_then(|s| s.verify().map(|()| s)))
            .collect::<Result<Vec<_>, _>>()
        else {
            continue;
        };
        merge(&segments, kind, &mut out)?;
        held.insert(kind.name().to_owned(), union_of_breaches(manifest, kind));
        merged_away.extend(files);
    }
    if merged_away.is_empty() {
        return Ok(0);
    }
    let mut written = out.done(dir)?;
    for s in &mut written {
        s.breaches = held.get(&s.kind).cloned().unwrap_or_default();
    }
    manifest.segments.retain(|s| !merged_away.contains(&s.file));
    manifest.segments.extend(written);
    manifest.generation += 1;
    manifest.store(dir.root())?;
    for file in &merged_away {
        let path = dir.segments().join(file);
        // Readers that still map the file keep their view; the name goes now.
        std::fs::remove_file(&path).map_err(|e| StoreError::io(&path, e))?;
    }
    Ok(merged_away.len())
}

/// The breaches the segments of `kind` hold together, sorted: what a segment
/// merged from them holds.
pub(crate) fn union_of_breaches(manifest: &Manifest, kind: Kind) -> Vec<u32> {
    let mut all: Vec<u32> = manifest
        .segments
        .iter()
        .filter(|s| s.kind == kind.name())
        .flat_map(|s| s.breaches.iter().copied())
        .collect();
    all.sort_unstable();
    all.dedup();
    all
}

fn merge(segments: &[Segment], kind: Kind, out: &mut SegmentSet) -> Result<()> {
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
    while let Some(Reverse((key, s, i))) = heap.pop() {
        if current.is_some_and(|c| c != key) {
            flush(segments, kind, &current.expect("checked")[..key_len], &mut group, &mut writer)?;
        }
        current = Some(key);
        group.push((s, i));
        if let Some(next) = iters[s].next() {
            let (key, i) = next?;
            heap.push(Reverse((key, s, i)));
        }
    }
    if let Some(key) = current {
        flush(segments, kind, &key[..key_len], &mut group, &mut writer)?;
    }
    out.finish(writer)
}

fn flush(
    segments: &[Segment],
    kind: Kind,
    key: &[u8],
    group: &mut Vec<(usize, usize)>,
    writer: &mut leakwatch_segment::SegmentWriter,
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
        Kind::Accounts => {
            let mut values: Vec<&[u8]> = group.iter().map(|&(s, i)| segments[s].value(i)).collect();
            values.sort_unstable();
            values.dedup();
            for v in values {
                writer.push_value(key, v)?;
            }
        }
        Kind::Domains | Kind::Stealer => {
            let mut values =
                group.iter().map(|&(s, i)| segments[s].payload(i)).collect::<Result<Vec<_>, _>>()?;
            values.sort_unstable();
            values.dedup();
            for (breach, payload) in values {
                writer.push_payload(key, breach, payload)?;
            }
        }
    }
    group.clear();
    Ok(())
}
