//! The alert monitor at the end of every command that publishes a generation
//! (ingest, import, sync, breach remove/set): what is new for each
//! organization with an alert destination goes to the outbox now, for a
//! running `serve` to deliver.
//!
//! A failure here does not fail the command, whose generation is published:
//! `serve` runs the same monitor when it sees the generation and at its start,
//! and finds what this run did not record. `LEAKWATCH_NO_MONITOR=1` leaves it
//! to `serve` on purpose (many dumps loaded in a row: one scan at the end).

use anyhow::{Context, Result};
use leakwatch_store::{DataDir, Store};

use super::org::open_catalog;

/// Runs the monitor after `published` succeeded; the command's own result is
/// returned unchanged.
pub fn after<T>(dir: &DataDir, published: Result<T>) -> Result<T> {
    if published.is_ok() && std::env::var_os("LEAKWATCH_NO_MONITOR").is_none_or(|v| v.is_empty() || v == "0")
    {
        if let Err(e) = scan(dir) {
            eprintln!(
                "leakwatch: warning: the alert monitor did not run ({e:#}); `leakwatch serve` runs it when it \
                 starts or sees this generation"
            );
        }
    }
    published
}

fn scan(dir: &DataDir) -> Result<()> {
    if !dir.catalog_file().exists() {
        return Ok(());
    }
    let mut catalog = open_catalog(dir)?;
    if catalog.alert_routes()?.is_empty() {
        return Ok(());
    }
    let store = Store::open(dir)?;
    let keys = dir.ensure_keys()?;
    let report = leakwatch_alert::scan(&mut catalog, &store, &keys).context("the alert monitor")?;
    for e in &report.errors {
        eprintln!("leakwatch: warning: alert monitor: {e}");
    }
    if report.exposures > 0 {
        eprintln!(
            "leakwatch: {} new exposure{} queued for alerting ({} batch{}); a running `leakwatch serve` delivers them",
            report.exposures,
            if report.exposures == 1 { "" } else { "s" },
            report.batches,
            if report.batches == 1 { "" } else { "es" },
        );
    }
    Ok(())
}
