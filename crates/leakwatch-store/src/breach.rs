//! Editing the breach catalog after an ingest: changing what a breach shows
//! (`leakwatch breach set`) and removing a breach with everything it added
//! (`leakwatch breach remove`). Both publish a new generation the way an ingest
//! does: under the writer lock, new segments written and synced first, then the
//! manifest.
//!
//! Removal is exact because the manifest says which breaches each segment holds
//! ([`crate::manifest::SegmentRef::breaches`]). Account, domain and stealer entries name their
//! breach, so a segment that mixes breaches is rewritten without the removed
//! one's entries. Password counts and credential triples do not: a count is a
//! sum over triples, and a triple's key is a keyed hash that cannot be traced
//! back to its digest. So segments of those kinds are never merged across
//! breaches (compaction and rekey merge them within one breach, see
//! [`crate::txn::merge_groups`]), and removal drops the removed breach's segments of these
//! kinds whole, which takes its share of every count and every triple away
//! exactly. A segment of those kinds written before segments were attributed
//! cannot be told apart, and removal refuses to guess.

use std::collections::BTreeSet;

use leakwatch_segment::{Kind, Segment};

use crate::clock::now_rfc3339;
use crate::dir::DataDir;
use crate::error::{Result, StoreError};
use crate::manifest::{Breach, Manifest};
use crate::txn::{names_breach, SegmentSet, Txn};

/// New values for a breach's catalog fields; `None` leaves a field as it is.
#[derive(Debug, Clone, Default)]
pub struct BreachEdit {
    pub title: Option<String>,
    pub domain: Option<String>,
    /// `YYYY-MM-DD`.
    pub breach_date: Option<String>,
    pub description: Option<String>,
    pub is_verified: Option<bool>,
    pub is_fabricated: Option<bool>,
    pub is_sensitive: Option<bool>,
    pub is_retired: Option<bool>,
    pub is_spam_list: Option<bool>,
    pub is_malware: Option<bool>,
    pub is_stealer_log: Option<bool>,
}

impl BreachEdit {
    pub fn is_empty(&self) -> bool {
        self.title.is_none()
            && self.domain.is_none()
            && self.breach_date.is_none()
            && self.description.is_none()
            && self.is_verified.is_none()
            && self.is_fabricated.is_none()
            && self.is_sensitive.is_none()
            && self.is_retired.is_none()
            && self.is_spam_list.is_none()
            && self.is_malware.is_none()
            && self.is_stealer_log.is_none()
    }

    fn apply(&self, b: &mut Breach) {
        let text = [
            (&self.title, &mut b.title),
            (&self.domain, &mut b.domain),
            (&self.breach_date, &mut b.breach_date),
            (&self.description, &mut b.description),
        ];
        for (new, field) in text {
            if let Some(v) = new {
                field.clone_from(v);
            }
        }
        let flags = [
            (self.is_verified, &mut b.is_verified),
            (self.is_fabricated, &mut b.is_fabricated),
            (self.is_sensitive, &mut b.is_sensitive),
            (self.is_retired, &mut b.is_retired),
            (self.is_spam_list, &mut b.is_spam_list),
            (self.is_malware, &mut b.is_malware),
            (self.is_stealer_log, &mut b.is_stealer_log),
        ];
        for (new, field) in flags {
            if let Some(v) = new {
                *field = v;
            }
        }
    }
}

/// What [`remove_breach`] did.
#[derive(Debug, Clone)]
pub struct Removal {
    /// The breach as the catalog held it.
    pub breach: Breach,
    /// Segments that held only this breach's entries, dropped whole.
    pub segments_dropped: usize,
    /// Segments that held other breaches' entries too, rewritten without its own.
    pub segments_rewritten: usize,
    /// Entries taken out of the rewritten segments.
    pub entries_removed: u64,
    /// The generation published.
    pub generation: u64,
    /// What failed after the removal was published (it stands).
    pub warning: Option<String>,
}

/// Refuses a directory that holds no store, before anything (the lock file)
/// is made in it.
fn check_store(dir: &DataDir) -> Result<()> {
    if dir.exists() {
        return Ok(());
    }
    Err(StoreError::Invalid(format!("{} holds no leakwatch store (no MANIFEST)", dir.location())))
}

/// The breach named `name` (matched as ingest matches names, ignoring ASCII
/// case) in the manifest of a directory that holds a store.
fn find(dir: &DataDir, manifest: &Manifest, name: &str) -> Result<Breach> {
    let breach = manifest.breach(name).cloned().ok_or_else(|| {
        StoreError::Invalid(format!(
            "no breach named {name:?} in {} (`leakwatch breaches` lists them)",
            dir.location()
        ))
    })?;
    Ok(breach)
}

/// Changes what the catalog shows of breach `name` and publishes the result as
/// a new generation. Returns the breach as it now reads.
pub fn update_breach(dir: &DataDir, name: &str, edit: &BreachEdit) -> Result<Breach> {
    check_store(dir)?;
    let mut txn = Txn::begin_keeping(dir)?;
    let mut breach = find(dir, &txn.manifest, name)?;
    edit.apply(&mut breach);
    breach.modified_date = now_rfc3339();
    let slot = txn.manifest.breaches.iter_mut().find(|b| b.id == breach.id).expect("found above");
    *slot = breach.clone();
    txn.commit()?;
    Ok(breach)
}

/// Removes breach `name` and every entry it added (its accounts, domain
/// entries, stealer pairs, credential triples and its share of each password's
/// count), publishing the result as a new generation. Afterwards every answer
/// is what it would be had the breach never been ingested; ingesting it again
/// makes a new breach.
pub fn remove_breach(dir: &DataDir, name: &str) -> Result<Removal> {
    check_store(dir)?;
    let mut txn = Txn::begin(dir)?;
    let breach = find(dir, &txn.manifest, name)?;
    let id = breach.id;

    // Decide for every segment before writing anything: a segment that cannot
    // be attributed stops the removal while nothing has changed.
    let mut drop = BTreeSet::new();
    let mut totals = BTreeSet::new();
    let mut rewrite = Vec::new();
    for (at, s) in txn.manifest.segments.iter().enumerate() {
        let kind =
            Kind::ALL.into_iter().find(|k| k.name() == s.kind).ok_or_else(|| StoreError::DataCorruption {
                path: dir.storage().manifest_path(),
                detail: format!("unknown segment kind {:?}", s.kind),
            })?;
        if matches!(kind, Kind::HibpSha1Counts | Kind::HibpNtlmCounts) {
            continue;
        }
        // Totals holding the breach's counts go; `totals::refresh` builds
        // them again from what is left.
        if crate::totals::is_totals(kind) {
            if s.breaches.is_empty() || s.breaches.contains(&id) {
                totals.insert(at);
            }
            continue;
        }
        if s.breaches == [id] {
            drop.insert(at);
        } else if !s.breaches.is_empty() && !s.breaches.contains(&id) {
            continue;
        } else if names_breach(kind) {
            rewrite.push((at, kind));
        } else {
            return Err(StoreError::Invalid(format!(
                "cannot remove {}: segment {} holds {} entries {}, and they do not say which breach \
                 they came from, so its share of the password counts cannot be taken out",
                breach.name,
                s.file,
                s.kind,
                if s.breaches.is_empty() {
                    "written before leakwatch recorded which breach a segment holds".to_owned()
                } else {
                    format!("of breaches {:?}", s.breaches)
                }
            )));
        }
    }

    let mut out = txn.segments();
    let mut rewritten = BTreeSet::new();
    let mut entries_removed = 0;
    for &(at, kind) in &rewrite {
        let seg = txn.open(&txn.manifest.segments[at])?;
        if !holds_breach(&seg, kind, id)? {
            // An unattributed segment without the breach: it stays as it is.
            continue;
        }
        entries_removed += without_breach(&seg, kind, id, &mut out)?;
        rewritten.insert(at);
    }
    let written = out.done()?;
    let segments_dropped = drop.len();
    let segments_rewritten = rewritten.len();
    let old = std::mem::take(&mut txn.manifest.segments);
    let (gone, kept): (Vec<_>, Vec<_>) = old
        .into_iter()
        .enumerate()
        .partition(|(i, _)| drop.contains(i) || rewritten.contains(i) || totals.contains(i));
    txn.manifest.segments = kept.into_iter().map(|(_, s)| s).collect();
    txn.manifest.segments.extend(written);
    txn.manifest.breaches.retain(|b| b.id != id);
    // A file of equal content may still be another breach's segment: the
    // commit deletes only what the new manifest no longer names.
    txn.commit_replacing(gone.into_iter().map(|(_, s)| s.file))?;
    let warning = crate::totals::refresh(&mut txn)
        .err()
        .map(|e| format!("the breach is removed, but summing the password counts again failed: {e}"));
    Ok(Removal {
        breach,
        segments_dropped,
        segments_rewritten,
        entries_removed,
        generation: txn.manifest.generation,
        warning,
    })
}

/// The breach of `seg`'s entry `i` (a kind whose entries name it).
fn entry_breach(seg: &Segment, kind: Kind, i: usize) -> Result<u32> {
    if !kind.has_payload() {
        // Accounts and stealer-log pairs by email: the value opens with it.
        let value = seg.value(i);
        let breach = value.get(..4).and_then(|b| b.try_into().ok()).map(u32::from_le_bytes);
        return breach.ok_or_else(|| StoreError::DataCorruption {
            path: seg.path().to_owned(),
            detail: format!("entry {i}: the value does not open with a breach id"),
        });
    }
    Ok(seg.payload(i)?.0)
}

fn holds_breach(seg: &Segment, kind: Kind, id: u32) -> Result<bool> {
    for i in 0..seg.len() as usize {
        if entry_breach(seg, kind, i)? == id {
            return Ok(true);
        }
    }
    Ok(false)
}

/// Writes `seg`'s entries that are not breach `id`'s, in their order, to a new
/// segment of `out` attributed to the breaches left. Returns how many entries
/// were left out.
fn without_breach(seg: &Segment, kind: Kind, id: u32, out: &mut SegmentSet) -> Result<u64> {
    let key_len = kind.key_len();
    let mut kept = BTreeSet::new();
    let mut removed = 0u64;
    let mut w = out.writer(kind, seg.len())?;
    for entry in seg.iter() {
        let (key, i) = entry?;
        let breach = entry_breach(seg, kind, i)?;
        if breach == id {
            removed += 1;
            continue;
        }
        kept.insert(breach);
        if kind.has_payload() {
            w.push_payload(&key[..key_len], breach, seg.payload(i)?.1)?
        } else {
            w.push_value(&key[..key_len], seg.value(i))?
        }
    }
    out.finish_attributed(w, kept.into_iter().collect())?;
    Ok(removed)
}
