//! Merging segments of one kind into one (more where it rolls over), for
//! compaction and the totals: counts of equal keys are summed, (key, value)
//! pairs of accounts and domains and the keys of credentials deduplicated.

use std::cmp::Reverse;
use std::collections::{BTreeSet, BinaryHeap};

use leakwatch_segment::{Kind, Segment, SegmentError, MAX_KEY_LEN};

use crate::error::{Result, StoreError};
use crate::txn::{names_breach, RollingWriter, SegmentSet};

/// Merges `segments` into one segment of `kind` (more where it rolls over), holding `group_breaches` (the
/// breaches of the segments merged, which kinds whose entries name their breach
/// read from the entries instead).
pub(crate) fn merge(
    segments: &[Segment],
    kind: Kind,
    group_breaches: Vec<u32>,
    out: &mut SegmentSet,
) -> Result<()> {
    if kind.has_count() {
        return merge_counts(segments, kind, group_breaches, out);
    }
    let upper = segments.iter().map(Segment::len).sum();
    let mut writer = out.writer(kind, upper)?;
    let key_len = kind.key_len();
    let mut entries = KWay::new(segments.iter().map(Segment::iter).collect())?;
    // Values seen for the current key: (segment, entry) pairs.
    let mut group: Vec<(usize, usize)> = Vec::new();
    let mut current: Option<[u8; MAX_KEY_LEN]> = None;
    let mut breaches = BTreeSet::new();
    while let Some((key, s, i)) = entries.next()? {
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
    }
    if let Some(key) = current {
        flush(segments, kind, &key[..key_len], &mut group, &mut writer, &mut breaches)?;
    }
    // Entries that name their breach say which the merged segment holds, also
    // when a segment merged was written before segments were attributed.
    let breaches = if names_breach(kind) { breaches.into_iter().collect() } else { group_breaches };
    out.finish_attributed(writer, breaches)
}

/// [`merge`] of counted kinds: the counts of equal keys summed, each input
/// walked once with its counts ([`Segment::counts`]).
fn merge_counts(segments: &[Segment], kind: Kind, breaches: Vec<u32>, out: &mut SegmentSet) -> Result<()> {
    let upper = segments.iter().map(Segment::len).sum();
    let mut writer = out.writer(kind, upper)?;
    let key_len = kind.key_len();
    let mut entries = KWay::new(segments.iter().map(Segment::counts).collect())?;
    let mut current: Option<([u8; MAX_KEY_LEN], u64)> = None;
    while let Some((key, _, count)) = entries.next()? {
        match &mut current {
            Some((k, total)) if *k == key => *total += count,
            _ => {
                if let Some((k, total)) = current.replace((key, count)) {
                    writer.push_count(&k[..key_len], total)?;
                }
            }
        }
    }
    if let Some((k, total)) = current {
        writer.push_count(&k[..key_len], total)?;
    }
    out.finish_attributed(writer, breaches)
}

/// The entries of several sorted inputs in key order, as (key, input, the
/// input's value): a k-way merge over a heap of each input's next entry.
struct KWay<V, I> {
    inputs: Vec<I>,
    heap: BinaryHeap<Reverse<([u8; MAX_KEY_LEN], usize, V)>>,
}

impl<V: Ord, I: Iterator<Item = Result<([u8; MAX_KEY_LEN], V), SegmentError>>> KWay<V, I> {
    fn new(mut inputs: Vec<I>) -> Result<Self> {
        let mut heap = BinaryHeap::new();
        for (s, input) in inputs.iter_mut().enumerate() {
            if let Some(head) = input.next() {
                let (key, v) = head?;
                heap.push(Reverse((key, s, v)));
            }
        }
        Ok(KWay { inputs, heap })
    }

    fn next(&mut self) -> Result<Option<([u8; MAX_KEY_LEN], usize, V)>> {
        let Some(Reverse((key, s, v))) = self.heap.pop() else { return Ok(None) };
        if let Some(next) = self.inputs[s].next() {
            let (key, v) = next?;
            self.heap.push(Reverse((key, s, v)));
        }
        Ok(Some((key, s, v)))
    }
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
        // Counted kinds go through `merge_counts`.
        Kind::Sha1Counts
        | Kind::NtlmCounts
        | Kind::HibpSha1Counts
        | Kind::HibpNtlmCounts
        | Kind::Sha1Totals
        | Kind::NtlmTotals => unreachable!("counted kinds are merged by merge_counts"),
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
