//! `leakwatch init` and `leakwatch rekey`: the data key, held outside the data
//! directory (`docs/security.md`).

use std::io::Write;
use std::path::Path;

use anyhow::Result;
use leakwatch_store::DataDir;

use crate::output::{plural, stdout};
use crate::Outcome;

pub fn init(dir: &DataDir, key_file: Option<&Path>) -> Result<Outcome> {
    let (id, source, created) = dir.init(key_file)?;
    let mut out = stdout();
    if created {
        writeln!(out, "initialized {} with data key {id} from {source}", dir.root().display())?;
    } else {
        writeln!(out, "{} already has its data key {id}, from {source}", dir.root().display())?;
    }
    out.flush()?;
    Ok(Outcome::Found)
}

pub fn rekey(dir: &DataDir, json: bool) -> Result<Outcome> {
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
            dir.root().display(),
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
