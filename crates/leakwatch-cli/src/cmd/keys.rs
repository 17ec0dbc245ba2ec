//! `leakwatch init` and `leakwatch rekey`: the data key, held outside the data
//! directory (`docs/security.md`).

use std::io::Write;
use std::path::Path;

use anyhow::{bail, Context, Result};
use leakwatch_catalog::{AuditEntry, SubjectKind};
use leakwatch_store::DataDir;

use crate::output::{plural, stdout};
use crate::Outcome;

pub fn init(dir: &DataDir, key_file: Option<&Path>) -> Result<Outcome> {
    let (id, source, created) = dir.init(key_file)?;
    let mut out = stdout();
    if created {
        writeln!(out, "initialized {} with data key {id} from {source}", dir.location())?;
    } else {
        writeln!(out, "{} already has its data key {id}, from {source}", dir.location())?;
    }
    out.flush()?;
    Ok(Outcome::Found)
}

pub fn rekey(dir: &DataDir, json: bool, audit: bool) -> Result<Outcome> {
    if audit {
        return rekey_audit(dir, json);
    }
    let summary = leakwatch_store::rekey(dir)?;
    let mut out = stdout();
    if json {
        let value = serde_json::json!({
            "old_key": summary.old_key,
            "new_key": summary.new_key,
            "key_file": summary.key_file,
            "segments": summary.segments,
            "generation": summary.generation,
        });
        writeln!(out, "{value}")?;
    } else {
        writeln!(
            out,
            "rekeyed {}: key {} -> {} ({} rewritten, generation {}); the key ring {} holds the new key only",
            dir.location(),
            summary.old_key,
            summary.new_key,
            plural(summary.segments as u64, "segment", "segments"),
            summary.generation,
            summary.key_file.display()
        )?;
    }
    out.flush()?;
    Ok(Outcome::Found)
}

/// `rekey --audit`: a new audit key in the ring, then the row that switches
/// the chain to it, linked under the old one. (In that order: a crash between
/// the two leaves the chain under the old key, which the ring still holds.)
fn rekey_audit(dir: &DataDir, json: bool) -> Result<Outcome> {
    // The chain's current key first, while the ring is as it was: a ring from
    // before audit keys of its own is checked as such.
    let before = leakwatch_server::audit_keys(dir)?;
    let mut catalog = super::open_catalog(dir)?;
    let check = catalog.verify_audit(&before)?;
    if !check.intact() {
        bail!(
            "the audit log does not check (`leakwatch audit-log verify`); rotating its key now would \
             vouch for it: {}",
            check.problem.as_deref().unwrap_or("a row does not match the chain")
        );
    }
    drop(before);
    let rotated = leakwatch_store::rotate_audit_key(dir)?;
    let keys = leakwatch_server::audit_keys(dir)?;
    let subject = keys.current().hasher().subject(SubjectKind::AuditKey, &rotated.new_key);
    let entry = AuditEntry::cli(&crate::cmd::breach::os_user(), "rekey --audit", subject, 1);
    catalog.append_audit(&[entry], &keys).with_context(|| {
        format!(
            "the key ring {} holds the new audit key {}, but the audit log could not record the switch; \
             run `leakwatch rekey --audit` again",
            rotated.key_file.display(),
            rotated.new_key
        )
    })?;
    let mut out = stdout();
    if json {
        let value = serde_json::json!({
            "old_audit_key": rotated.old_key,
            "new_audit_key": rotated.new_key,
            "key_file": rotated.key_file,
        });
        writeln!(out, "{value}")?;
    } else {
        writeln!(
            out,
            "rotated the audit key of {}: {} -> {}; the key ring {} keeps the old one to check older rows",
            dir.location(),
            rotated.old_key,
            rotated.new_key,
            rotated.key_file.display()
        )?;
    }
    out.flush()?;
    Ok(Outcome::Found)
}
