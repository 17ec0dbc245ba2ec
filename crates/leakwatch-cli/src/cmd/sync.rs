//! `leakwatch sync pwned-passwords`: mirror Pwned Passwords from a range API
//! (Have I Been Pwned, or another `leakwatch serve`), with a progress bar of
//! ranges/s and ETA on a terminal and a summary at the end.

use std::io::{IsTerminal, Write};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use leakwatch_store::DataDir;
use leakwatch_sync::{Progress, SyncOptions, SyncSummary, TlsOptions};
use serde_json::json;

use crate::cli::SyncPwnedArgs;
use crate::output::{plural, stdout, thousands};
use crate::Outcome;

pub fn pwned_passwords(dir: &DataDir, args: SyncPwnedArgs) -> Result<Outcome> {
    let options = SyncOptions {
        parallel: args.parallel.max(1),
        prefix_bits: args.prefix_bits,
        tls: TlsOptions { ca_file: args.ca_file.clone(), insecure: args.insecure },
        ..SyncOptions::default()
    };
    let progress = Arc::new(Progress::default());
    let summary = {
        let _bar = Bar::start(progress.clone());
        leakwatch_sync::sync(dir, &args.from, args.ntlm, &options, &progress)
            .with_context(|| format!("sync of Pwned Passwords from {}", args.from))?
    };
    let mut out = stdout();
    if args.json {
        writeln!(out, "{}", report(&summary))?;
    } else {
        print(&mut out, &summary)?;
    }
    out.flush()?;
    Ok(Outcome::Found)
}

fn report(s: &SyncSummary) -> serde_json::Value {
    json!({
        "corpus": if s.ntlm { "ntlm" } else { "sha1" },
        "from": s.source,
        "ranges": s.ranges,
        "fetched": s.fetched,
        "unchanged": s.same,
        "not_modified": s.not_modified,
        "resumed": s.resumed,
        "retries": s.retries,
        "bytes": s.bytes,
        "published": s.import.is_some(),
        "hashes": s.import.as_ref().map(|i| i.hashes),
        "replaced_hashes": s.import.as_ref().and_then(|i| i.replaced_hashes),
    })
}

fn print(out: &mut impl Write, s: &SyncSummary) -> std::io::Result<()> {
    let corpus = if s.ntlm { "NTLM" } else { "SHA-1" };
    writeln!(
        out,
        "{}: {}: {} fetched, {} unchanged (304), {} unchanged (same body), {} done by the interrupted run; {} received, {}",
        s.source,
        plural(s.ranges, "range", "ranges"),
        thousands(s.fetched),
        thousands(s.not_modified),
        thousands(s.same),
        thousands(s.resumed),
        bytesize::ByteSize(s.bytes),
        plural(s.retries, "retry", "retries"),
    )?;
    match &s.import {
        Some(import) => writeln!(
            out,
            "published {}{}",
            plural(import.hashes, &format!("{corpus} hash"), &format!("{corpus} hashes")),
            import
                .replaced_hashes
                .map(|old| format!(", replacing the previous import ({})", plural(old, "hash", "hashes")))
                .unwrap_or_default()
        ),
        None => {
            writeln!(out, "nothing changed since the last sync; the published {corpus} corpus is current")
        }
    }
}

/// Ranges done of all, ranges/s and ETA, redrawn from the sync's counters on a
/// terminal; hidden otherwise, so scripts and CI logs stay clean.
struct Bar {
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Bar {
    fn start(progress: Arc<Progress>) -> Bar {
        let target = if std::io::stderr().is_terminal() {
            ProgressDrawTarget::stderr_with_hz(8)
        } else {
            ProgressDrawTarget::hidden()
        };
        let bar = ProgressBar::with_draw_target(None, target);
        bar.set_style(
            ProgressStyle::with_template(
                "ranges [{bar:30}] {human_pos}/{human_len} {per_sec} ETA {eta}  {msg}",
            )
            .expect("valid template")
            .progress_chars("=> "),
        );
        let stop = Arc::new(AtomicBool::new(false));
        let thread = {
            let stop = stop.clone();
            std::thread::spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    bar.set_length(progress.total.load(Ordering::Relaxed));
                    bar.set_position(progress.done.load(Ordering::Relaxed));
                    if progress.publishing.load(Ordering::Relaxed) {
                        let read = bytesize::ByteSize(progress.import_bytes.load(Ordering::Relaxed));
                        bar.set_message(format!("publishing: {read} read"));
                    } else {
                        let received = bytesize::ByteSize(progress.bytes.load(Ordering::Relaxed));
                        bar.set_message(format!("{received} received"));
                    }
                    std::thread::sleep(Duration::from_millis(100));
                }
                bar.finish_and_clear();
            })
        };
        Bar { stop, thread: Some(thread) }
    }
}

impl Drop for Bar {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}
