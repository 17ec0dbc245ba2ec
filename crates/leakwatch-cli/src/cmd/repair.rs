//! `leakwatch repair`: sets damaged segments aside so the rest of the index
//! answers again, and says which breaches to ingest again (`leakwatch-store`'s
//! `repair` does the work under the writer lock).

use std::io::Write;

use anyhow::Result;
use leakwatch_store::DataDir;
use serde_json::json;

use crate::output::{stdout, thousands};
use crate::Outcome;

pub fn run(dir: &DataDir, json: bool) -> Result<Outcome> {
    let summary = leakwatch_store::repair(dir)?;
    let manifest = dir.manifest()?.unwrap_or_default();
    let mut out = stdout();
    if json {
        let set_aside: Vec<_> = summary
            .set_aside
            .iter()
            .map(|s| {
                json!({
                    "file": s.segment.file,
                    "kind": s.segment.kind,
                    "entries": s.segment.entries,
                    "breaches": manifest.breach_names(&s.segment.breaches),
                    "held": manifest.describe_held(&s.segment.kind, &s.segment.breaches),
                    "moved_to": s.moved_to,
                    "problem": s.problem,
                })
            })
            .collect();
        let value = json!({
            "checked": summary.checked,
            "set_aside": set_aside,
            "reingest": summary.reingest,
            "generation": summary.generation,
        });
        writeln!(out, "{value}")?;
    } else if summary.set_aside.is_empty() {
        writeln!(out, "nothing to repair: {} segments, none damaged", summary.checked)?;
    } else {
        for s in &summary.set_aside {
            writeln!(
                out,
                "set aside {} ({}, {} entries, {}): {}; {}",
                s.segment.file,
                s.segment.kind,
                thousands(s.segment.entries),
                manifest.describe_held(&s.segment.kind, &s.segment.breaches),
                s.problem,
                match &s.moved_to {
                    Some(m) => format!("moved to {}", dir.root().join(m).display()),
                    None => "nothing to move".into(),
                }
            )?;
        }
        writeln!(
            out,
            "published generation {} without them; the rest of the index answers again",
            summary.generation
        )?;
    }
    if !json && !summary.reingest.is_empty() {
        writeln!(out, "ingest again: {}", summary.reingest.join(", "))?;
    }
    out.flush()?;
    Ok(Outcome::Found)
}
