//! `breaches`, `stats` and `verify`: what the index holds.

use std::io::Write;

use anyhow::Result;
use leakwatch_store::{DataDir, HibpBreach, Store};

use crate::output::{stdout, table, thousands};
use crate::Outcome;

pub fn breaches(dir: &DataDir, json: bool) -> Result<Outcome> {
    let store = Store::open(dir)?;
    let mut out = stdout();
    let breaches = store.breaches();
    if json {
        let all: Vec<HibpBreach> = breaches.iter().map(|b| HibpBreach::from(*b)).collect();
        writeln!(out, "{}", serde_json::to_string_pretty(&all)?)?;
    } else if breaches.is_empty() {
        writeln!(out, "no breaches yet: `leakwatch ingest --breach NAME FILE` adds one")?;
    } else {
        let rows: Vec<Vec<String>> = breaches
            .iter()
            .map(|b| {
                vec![b.name.clone(), b.breach_date.clone(), thousands(b.pwn_count), b.data_classes.join(", ")]
            })
            .collect();
        table(&mut out, &["NAME", "DATE", "ACCOUNTS", "DATA CLASSES"], &rows, &[2])?;
    }
    let reingest = store.manifest().needing_reingest();
    if !json && !reingest.is_empty() {
        writeln!(out, "damaged data set aside by `leakwatch repair`: ingest again {}", reingest.join(", "))?;
    }
    out.flush()?;
    Ok(Outcome::Found)
}

pub fn stats(dir: &DataDir, json: bool) -> Result<Outcome> {
    let store = Store::open(dir)?;
    let stats = store.stats()?;
    let mut out = stdout();
    if json {
        let corpus = &stats.kinds["sha1"];
        let mut value = serde_json::to_value(&stats)?;
        value["corpus_bytes"] = corpus.bytes.into();
        value["bytes_per_sha1"] = per_entry(corpus.bytes, corpus.entries).into();
        writeln!(out, "{value}")?;
    } else {
        writeln!(out, "breaches              {}", thousands(stats.breaches as u64))?;
        writeln!(out, "records               {}  (breach, account) pairs", thousands(stats.records))?;
        writeln!(
            out,
            "credentials           {}  (breach, account, password) triples",
            thousands(stats.credentials)
        )?;
        writeln!(out, "unique accounts       {}", thousands(stats.unique_accounts))?;
        writeln!(out, "unique password SHA-1 {}", thousands(stats.unique_sha1))?;
        writeln!(out, "unique password NTLM  {}", thousands(stats.unique_ntlm))?;
        writeln!(out)?;
        let rows: Vec<Vec<String>> = stats
            .kinds
            .iter()
            .map(|(name, k)| {
                vec![
                    name.to_string(),
                    thousands(k.segments as u64),
                    thousands(k.entries),
                    thousands(k.bytes),
                    format!("{:.2}", per_entry(k.bytes, k.entries)),
                ]
            })
            .collect();
        table(&mut out, &["INDEX", "SEGMENTS", "ENTRIES", "BYTES", "B/ENTRY"], &rows, &[1, 2, 3, 4])?;
    }
    out.flush()?;
    Ok(Outcome::Found)
}

fn per_entry(bytes: u64, entries: u64) -> f64 {
    if entries == 0 {
        0.0
    } else {
        bytes as f64 / entries as f64
    }
}

/// Checks the manifest and every segment (header, layout, length and entry count
/// as the manifest records, every block checksum). Each damaged segment is a
/// line on stdout with what it held; any damage is an error (exit 2).
pub fn verify(dir: &DataDir) -> Result<Outcome> {
    let store = Store::open(dir)?;
    let (checked, damage) = store.verify();
    let manifest = store.manifest();
    let mut out = stdout();
    for d in &damage {
        writeln!(
            out,
            "damaged: {} ({}, {} entries, {}): {}",
            d.path.display(),
            d.segment.kind,
            thousands(d.segment.entries),
            manifest.describe_held(&d.segment.kind, &d.segment.breaches),
            d.problem
        )?;
    }
    if damage.is_empty() {
        writeln!(out, "ok: {checked} segments, every checksum matches (generation {})", store.generation())?;
    }
    let reingest = manifest.needing_reingest();
    if !reingest.is_empty() {
        writeln!(
            out,
            "repair set aside {} damaged segments earlier; ingest again: {}",
            manifest.set_aside.len(),
            reingest.join(", ")
        )?;
    }
    out.flush()?;
    if !damage.is_empty() {
        let mut ids: Vec<u32> = damage.iter().flat_map(|d| d.segment.breaches.iter().copied()).collect();
        ids.sort_unstable();
        let mut held = manifest.breach_names(&ids);
        if damage.iter().any(|d| d.segment.kind.starts_with("hibp-")) {
            held.push("the Pwned Passwords import".into());
        }
        anyhow::bail!(
            "{} of {checked} segments are damaged (generation {}), holding data of {}: `leakwatch repair` \
             sets them aside, then ingest those again",
            damage.len(),
            store.generation(),
            if held.is_empty() { "unknown breaches".to_owned() } else { held.join(", ") }
        );
    }
    Ok(Outcome::Found)
}
