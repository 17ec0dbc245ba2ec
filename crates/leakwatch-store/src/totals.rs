//! A corpus's totals: every count segment of the corpus summed into one
//! derived segment, so that a range reads one segment, not one per breach.
//!
//! Counts stay apart by breach (`breach remove` takes a breach's share out by
//! dropping its segments whole, and a count cannot be split again), and a
//! Pwned Passwords import is kept apart from them. A range of the whole corpus
//! sums them all: with a hundred breaches a hundred segments, which over object
//! storage is a hundred GETs for a cold `/range`. The totals
//! ([`Kind::password_totals`]) are the same sums written once more, derived:
//! each names in `covers` the count segments it was built from (own and Pwned
//! Passwords alike), and a range of the whole corpus reads the totals and the
//! count segments they do not cover.
//!
//! **Totals stand for their segments only while the manifest names every
//! one** (as a multiset: segments of equal content share a file name). A
//! writer that takes a covered segment away (`breach remove`, a new Pwned
//! Passwords import, a merge this module is not told of) leaves totals that
//! readers ignore, reading every count segment as before, until [`refresh`]
//! builds them again. So no bookkeeping slip can make an answer wrong; at worst
//! a range reads more segments for a generation.
//!
//! [`refresh`] runs after every writer that changes counts. It folds the count
//! segments not covered into new totals at once when they hold at least
//! 1/[`FOLD_RATIO`] of the totals' entries, else once more than
//! [`MAX_UNCOVERED`] are waiting: a small ingest into a store holding the
//! Pwned Passwords corpus does not rewrite gigabytes of totals each time, and a
//! range reads at most `1 + MAX_UNCOVERED` segments of a corpus (one, right
//! after a fold).

use std::collections::HashMap;

use leakwatch_segment::Kind;

use crate::error::Result;
use crate::manifest::{Manifest, SegmentRef};
use crate::txn::Txn;

/// Count segments a corpus's totals may leave uncovered.
pub const MAX_UNCOVERED: usize = 4;

/// Uncovered count segments holding at least 1/`FOLD_RATIO` of the totals'
/// entries are folded in at once.
pub const FOLD_RATIO: u64 = 8;

/// The count segments of a corpus that its totals sum: own and imported.
fn counted(manifest: &Manifest, ntlm: bool) -> Vec<usize> {
    let kinds = Kind::password_counts(ntlm).map(Kind::name);
    manifest
        .segments
        .iter()
        .enumerate()
        .filter(|(_, s)| kinds.contains(&s.kind.as_str()))
        .map(|(i, _)| i)
        .collect()
}

/// The segments of a corpus's totals (more than one only where a total
/// rolled over at the format's limits).
fn totals(manifest: &Manifest, ntlm: bool) -> Vec<usize> {
    let kind = Kind::password_totals(ntlm).name();
    manifest.segments.iter().enumerate().filter(|(_, s)| s.kind == kind).map(|(i, _)| i).collect()
}

/// A corpus's totals in force: the totals' segments and the count segments
/// they do not cover; `None` when there are none or they no longer stand for
/// what the manifest names.
fn in_force(manifest: &Manifest, ntlm: bool) -> Option<(Vec<usize>, Vec<usize>)> {
    let totals = totals(manifest, ntlm);
    let covers = &manifest.segments[*totals.first()?].covers;
    if covers.is_empty() || totals.iter().any(|&t| manifest.segments[t].covers != *covers) {
        return None;
    }
    let mut wanted: HashMap<&str, usize> = HashMap::new();
    for file in covers {
        *wanted.entry(file.as_str()).or_default() += 1;
    }
    let mut uncovered = Vec::new();
    for i in counted(manifest, ntlm) {
        match wanted.get_mut(manifest.segments[i].file.as_str()) {
            Some(n) if *n > 0 => *n -= 1,
            _ => uncovered.push(i),
        }
    }
    wanted.values().all(|&n| n == 0).then_some((totals, uncovered))
}

/// The segments a range of a corpus over every source reads, as indices into
/// the manifest's: the totals in force and the count segments they do not
/// cover, or every count segment.
pub(crate) fn range_reads(manifest: &Manifest, ntlm: bool) -> Vec<usize> {
    match in_force(manifest, ntlm) {
        Some((mut totals, uncovered)) => {
            totals.extend(uncovered);
            totals
        }
        None => counted(manifest, ntlm),
    }
}

/// Every count segment of a corpus, whatever the totals: what a range reads
/// when the totals cannot be opened.
pub(crate) fn range_reads_without_totals(manifest: &Manifest, ntlm: bool) -> Vec<usize> {
    counted(manifest, ntlm)
}

/// Whether `kind` is a corpus's totals.
pub(crate) fn is_totals(kind: Kind) -> bool {
    matches!(kind, Kind::Sha1Totals | Kind::NtlmTotals)
}

/// Whether a manifest's segment kind `name` is a corpus's totals.
pub(crate) fn is_totals_name(name: &str) -> bool {
    [Kind::Sha1Totals, Kind::NtlmTotals].iter().any(|k| k.name() == name)
}

/// After a merge of the count segments `inputs` into `outputs` (file names),
/// keeps the totals that covered every input standing for the outputs
/// instead, which hold the same sums.
pub(crate) fn merged(manifest: &mut Manifest, kind: Kind, inputs: &[String], outputs: &[String]) {
    let Some(ntlm) = [false, true].into_iter().find(|&n| Kind::password_counts(n).contains(&kind)) else {
        return;
    };
    for t in totals(manifest, ntlm) {
        let covers = &mut manifest.segments[t].covers;
        let mut left = covers.clone();
        let all_covered = inputs.iter().all(|f| match left.iter().position(|c| c == f) {
            Some(at) => {
                left.swap_remove(at);
                true
            }
            None => false,
        });
        if all_covered {
            left.extend(outputs.iter().cloned());
            left.sort();
            *covers = left;
        }
    }
}

/// Whether the totals of `total_entries` take in `uncovered` now: a fold
/// costs a pass over every entry, so it waits while what it adds is small.
fn fold_now(total_entries: u64, uncovered: &[&SegmentRef]) -> bool {
    let entries: u64 = uncovered.iter().map(|s| s.entries).sum();
    uncovered.len() > MAX_UNCOVERED || entries.saturating_mul(FOLD_RATIO) >= total_entries
}

/// What [`refresh`] does to one corpus's totals.
struct Plan {
    ntlm: bool,
    /// The totals' segments in force now, which the new ones replace.
    old: Vec<usize>,
    /// What the new totals sum (none: the old ones are only dropped).
    inputs: Vec<usize>,
    covers: Vec<String>,
}

/// What the module's rule says of a corpus's totals; `None`: leave them.
fn plan(manifest: &Manifest, ntlm: bool) -> Option<Plan> {
    let old = totals(manifest, ntlm);
    let counted = counted(manifest, ntlm);
    let files =
        |at: &[usize]| -> Vec<String> { at.iter().map(|&i| manifest.segments[i].file.clone()).collect() };
    let (inputs, mut covers) = match in_force(manifest, ntlm) {
        Some((_, uncovered)) if uncovered.is_empty() => return None,
        Some((totals, uncovered)) => {
            let total_entries = totals.iter().map(|&t| manifest.segments[t].entries).sum();
            let waiting: Vec<&SegmentRef> = uncovered.iter().map(|&i| &manifest.segments[i]).collect();
            if !fold_now(total_entries, &waiting) {
                return None;
            }
            let mut covers = manifest.segments[totals[0]].covers.clone();
            covers.extend(files(&uncovered));
            (totals.into_iter().chain(uncovered).collect(), covers)
        }
        // One count segment is its own total: stale totals only go.
        None if counted.len() <= 1 => {
            return (!old.is_empty()).then_some(Plan { ntlm, old, inputs: Vec::new(), covers: Vec::new() })
        }
        None => (counted.clone(), files(&counted)),
    };
    covers.sort();
    Some(Plan { ntlm, old, inputs, covers })
}

/// Builds or folds each corpus's totals where the module's rule says, and
/// drops totals that stand for nothing any more; the two corpora are summed
/// side by side and published in one commit. Returns the number of totals
/// segments written.
pub(crate) fn refresh(txn: &mut Txn) -> Result<usize> {
    let plans: Vec<Plan> = [false, true].into_iter().filter_map(|ntlm| plan(&txn.manifest, ntlm)).collect();
    if plans.is_empty() {
        return Ok(0);
    }
    let mut work = Vec::new();
    for p in plans.iter().filter(|p| !p.inputs.is_empty()) {
        let segments =
            p.inputs.iter().map(|&i| txn.open(&txn.manifest.segments[i])).collect::<Result<Vec<_>>>()?;
        let mut breaches: Vec<u32> =
            p.inputs.iter().flat_map(|&i| txn.manifest.segments[i].breaches.iter().copied()).collect();
        breaches.sort_unstable();
        breaches.dedup();
        work.push((p, segments, breaches, txn.segments()));
    }
    let built: Vec<Result<Vec<SegmentRef>>> = std::thread::scope(|scope| {
        let running: Vec<_> = work
            .into_iter()
            .map(|(p, segments, breaches, mut out)| {
                scope.spawn(move || {
                    crate::merge::merge(&segments, Kind::password_totals(p.ntlm), breaches, &mut out)?;
                    drop(segments);
                    let mut new = out.done()?;
                    for s in &mut new {
                        s.covers = p.covers.clone();
                    }
                    Ok(new)
                })
            })
            .collect();
        running.into_iter().map(|r| r.join().expect("a totals merge does not panic")).collect()
    });
    let mut new = Vec::new();
    for b in built {
        new.extend(b?);
    }
    let written = new.len();
    let old: Vec<usize> = plans.iter().flat_map(|p| p.old.iter().copied()).collect();
    replace(txn, &old, new)?;
    Ok(written)
}

/// Publishes the manifest with the segments at `old` replaced by `new`.
fn replace(txn: &mut Txn, old: &[usize], new: Vec<SegmentRef>) -> Result<()> {
    let segments = std::mem::take(&mut txn.manifest.segments);
    let (gone, kept): (Vec<_>, Vec<_>) = segments.into_iter().enumerate().partition(|(i, _)| old.contains(i));
    txn.manifest.segments = kept.into_iter().map(|(_, s)| s).collect();
    txn.manifest.segments.extend(new);
    txn.commit_replacing(gone.into_iter().map(|(_, s)| s.file))
}
