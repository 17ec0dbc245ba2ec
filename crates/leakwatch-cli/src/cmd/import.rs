//! `leakwatch import pwned-passwords`: load Have I Been Pwned's Pwned Passwords
//! download for an offline mirror, beside the organization's own dumps.

use std::io::Write;
use std::sync::Arc;

use anyhow::{Context, Result};
use leakwatch_store::{DataDir, ImportSummary, Progress};
use serde_json::json;

use crate::output::{plural, stdout, thousands};
use crate::progress::Bar;
use crate::Outcome;

pub fn pwned_passwords(
    dir: &DataDir,
    path: &str,
    ntlm: bool,
    memory_budget: u64,
    json: bool,
) -> Result<Outcome> {
    let progress = Arc::new(Progress::default());
    let summary = {
        let bar = Bar::start(progress.clone());
        let raw_len = std::fs::metadata(path).ok().filter(|m| m.is_file()).map(|m| m.len());
        bar.reading(path, raw_len);
        leakwatch_store::import_pwned_passwords(dir, path, ntlm, memory_budget, &progress.bytes)
            .context("import of Pwned Passwords")?
    };
    let mut out = stdout();
    if json {
        writeln!(out, "{}", report(&summary))?;
    } else {
        print(&mut out, path, &summary)?;
    }
    out.flush()?;
    Ok(Outcome::Found)
}

fn report(s: &ImportSummary) -> serde_json::Value {
    let rejected: serde_json::Map<_, _> = s
        .rejected
        .iter()
        .map(|(reason, r)| (reason.to_string(), json!({"count": r.count, "samples": r.samples})))
        .collect();
    json!({
        "corpus": if s.ntlm { "ntlm" } else { "sha1" },
        "lines": s.lines,
        "hashes": s.hashes,
        "padding": s.padding,
        "rejected": rejected,
        "streamed": s.streamed,
        "segment_bytes": s.segment_bytes,
        "bytes_per_hash": s.segment_bytes as f64 / s.hashes.max(1) as f64,
        "replaced_hashes": s.replaced_hashes,
        "warning": s.warning,
    })
}

fn print(out: &mut impl Write, path: &str, s: &ImportSummary) -> std::io::Result<()> {
    let corpus = if s.ntlm { "NTLM" } else { "SHA-1" };
    writeln!(
        out,
        "{path}: {}, {} imported ({:.2} bytes each on disk){}",
        plural(s.lines, "line", "lines"),
        plural(s.hashes, &format!("{corpus} hash"), &format!("{corpus} hashes")),
        s.segment_bytes as f64 / s.hashes.max(1) as f64,
        if s.padding > 0 {
            format!(", {} skipped", plural(s.padding, "padding line", "padding lines"))
        } else {
            String::new()
        }
    )?;
    for (reason, r) in &s.rejected {
        writeln!(out, "  {:>10}  {reason} (e.g. {})", thousands(r.count), r.samples.join(", "))?;
    }
    match s.replaced_hashes {
        Some(old) => writeln!(out, "replaced the previous import ({})", plural(old, "hash", "hashes"))?,
        None => writeln!(out, "first Pwned Passwords import of the {corpus} corpus")?,
    }
    if let Some(warning) = &s.warning {
        writeln!(out, "warning: {warning}")?;
    }
    Ok(())
}
