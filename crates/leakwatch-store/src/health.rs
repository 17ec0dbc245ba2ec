//! `leakwatch repair`: damaged segments out of the index, so that the rest of
//! it answers again. Each is moved to `DATA/damaged/` with a note of what it
//! held, and a new generation without it is published atomically; the manifest
//! keeps the list ([`SetAside`]) so `verify` and `breaches` can say which
//! breaches need their dumps ingested again.

use std::fs;

use crate::clock::now_rfc3339;
use crate::dir::DataDir;
use crate::error::{Result, StoreError};
use crate::manifest::SetAside;
use crate::reader::Store;
use crate::storage::sync_dir;
use crate::txn::Txn;

/// What `repair` did.
#[derive(Debug, Clone)]
pub struct RepairSummary {
    /// Segments checked (every one of the generation repaired).
    pub checked: usize,
    /// The segments set aside now.
    pub set_aside: Vec<SetAside>,
    /// What to ingest (or import) again: the breaches whose data is set aside,
    /// now and by earlier repairs, by name.
    pub reingest: Vec<String>,
    /// The generation published (the one checked when nothing was damaged).
    pub generation: u64,
}

/// Checks every segment of the current generation as `verify` does and sets
/// the damaged ones aside. Takes the writer lock.
pub fn repair(dir: &DataDir) -> Result<RepairSummary> {
    dir.check_store()?;
    let mut txn = Txn::begin_keeping(dir)?;
    let store = Store::open(dir)?;
    let (checked, damage) = store.verify();
    txn.manifest = store.manifest().clone();
    drop(store);
    let manifest = &mut txn.manifest;
    if damage.is_empty() {
        return Ok(RepairSummary {
            checked,
            set_aside: Vec::new(),
            reingest: manifest.needing_reingest(),
            generation: manifest.generation,
        });
    }
    let damaged_dir = dir.damaged();
    fs::create_dir_all(&damaged_dir).map_err(|e| StoreError::io(&damaged_dir, e))?;
    let at = now_rfc3339();
    let mut set_aside = Vec::new();
    for d in damage {
        let file = &d.segment.file;
        let held = manifest.describe_held(&d.segment.kind, &d.segment.breaches);
        // Moved before the manifest stops naming it: a crash in between
        // leaves a manifest naming a missing file, which is damage the next
        // repair sets aside, and never a file a writer would delete as orphan.
        let moved_to = if d.path.exists() {
            let target = damaged_dir.join(file);
            fs::rename(&d.path, &target).map_err(|e| StoreError::io(&target, e))?;
            let note = damaged_dir.join(format!("{file}.txt"));
            let text = format!(
                "set aside by leakwatch repair at {at}, from generation {}\nkind: {}\nheld: {held}\n\
                 entries: {}\nbytes: {}\nproblem: {}\n",
                manifest.generation, d.segment.kind, d.segment.entries, d.segment.bytes, d.problem
            );
            fs::write(&note, text).map_err(|e| StoreError::io(&note, e))?;
            Some(format!("{}/{file}", crate::dir::DAMAGED))
        } else {
            None
        };
        manifest.segments.retain(|s| &s.file != file);
        if let Some(corpus) = d.segment.kind.strip_prefix("hibp-") {
            manifest.pwned_passwords.remove(corpus);
        }
        set_aside.push(SetAside { segment: d.segment, moved_to, problem: d.problem, at: at.clone() });
    }
    sync_dir(&damaged_dir)?;
    sync_dir(&dir.segments())?;
    manifest.set_aside.extend(set_aside.iter().cloned());
    txn.commit()?;
    Ok(RepairSummary {
        checked,
        set_aside,
        reingest: txn.manifest.needing_reingest(),
        generation: txn.manifest.generation,
    })
}
