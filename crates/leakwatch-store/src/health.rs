//! `leakwatch repair`: damaged segments out of the index, so that the rest of
//! it answers again. Each is moved to `DATA/damaged/` with a note of what it
//! held, and a new generation without it is published atomically; the manifest
//! keeps the list ([`SetAside`]) so `verify` and `breaches` can say which
//! breaches need their dumps ingested again.

use std::collections::BTreeSet;
use std::fs;
use std::io::Write as _;
use std::path::Path;

use crate::clock::now_rfc3339;
use crate::dir::DataDir;
use crate::error::{Result, StoreError};
use crate::manifest::SetAside;
use crate::reader::Store;
use crate::storage::local::create_private_dir;
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
    create_private_dir(&damaged_dir)?;
    let there: BTreeSet<String> = dir.storage().list()?.into_iter().collect();
    let at = now_rfc3339();
    let mut set_aside = Vec::new();
    for d in damage {
        let file = &d.segment.file;
        let held = manifest.describe_held(&d.segment.kind, &d.segment.breaches);
        // Copied out before the manifest stops naming it, and deleted from the
        // store only after: a crash in between leaves the object named (the
        // next repair copies it again) or an orphan (the next writer deletes
        // it), and its bytes are in `damaged/` either way.
        let moved_to = if there.contains(file) {
            let target = damaged_dir.join(file);
            copy_out(dir, file, &target)?;
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
    // Totals are derived: nothing is to be ingested again for them, they are
    // summed again below.
    let is_totals = |s: &SetAside| crate::totals::is_totals_name(&s.segment.kind);
    manifest.set_aside.extend(set_aside.iter().filter(|s| !is_totals(s)).cloned());
    let copied: Vec<String> =
        set_aside.iter().filter(|s| s.moved_to.is_some()).map(|s| s.segment.file.clone()).collect();
    txn.commit_replacing(copied)?;
    // Totals that covered what was set aside no longer stand for the
    // store; they are summed again from what is left.
    crate::totals::refresh(&mut txn)?;
    Ok(RepairSummary {
        checked,
        set_aside,
        reingest: txn.manifest.needing_reingest(),
        generation: txn.manifest.generation,
    })
}

/// Copies the object `name` to the local file `target`, a bounded piece at a
/// time (a damaged segment may be gigabytes), and syncs it.
fn copy_out(dir: &DataDir, name: &str, target: &Path) -> Result<()> {
    const PIECE: u64 = 16 << 20;
    let io = |e| StoreError::io(target, e);
    let mut out = fs::File::create(target).map_err(io)?;
    let mut at = 0;
    loop {
        let bytes = dir.storage().read(name, Some(at..at + PIECE))?;
        out.write_all(&bytes).map_err(io)?;
        if (bytes.len() as u64) < PIECE {
            break;
        }
        at += PIECE;
    }
    out.sync_all().map_err(io)
}
