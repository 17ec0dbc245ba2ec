//! `leakwatch ingest --distributed`: stages the inputs in the store's shared
//! area, queues a job per input (or per part of a large combo list) in the
//! catalog, waits for `leakwatch worker` processes to run them, and commits
//! their runs as one generation (`leakwatch_store::DistributedIngest`).
//!
//! It holds the store's writer lock throughout, as a local ingest does, and a
//! lease of its own in the catalog (`ingest:ID`) that the workers check
//! before they start one of its jobs. Whatever stops it (an error, a failed
//! job, a kill) publishes nothing: the store answers as before.

use std::io::{BufRead, Read, Seek, SeekFrom};
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use leakwatch_catalog::{ingest_lease_name, lease_holder_name, Catalog};
use leakwatch_ingest::{Format, Input, DECISION_WINDOW};
use leakwatch_store::{
    DataDir, DistributedIngest, IngestOptions, IngestSummary, JobOutput, JobSpec, Progress,
};

use super::worker::Renewer;
use crate::cli::IngestArgs;

/// How often the waiting ingest looks at its jobs.
const POLL: Duration = Duration::from_millis(250);

pub(super) fn ingest(dir: &DataDir, args: &IngestArgs, options: &IngestOptions) -> Result<IngestSummary> {
    let mut listed = Vec::new();
    for file in &args.files {
        let meta = std::fs::metadata(file).with_context(|| format!("{file}: cannot read it"))?;
        if !meta.is_file() {
            anyhow::bail!("{file}: --distributed takes files (archives included), not a folder");
        }
        listed.push((file.clone(), Some(meta.len())));
    }
    let location = super::catalog_location(dir);
    let mut catalog = super::open_catalog(dir)?;
    let progress = Arc::new(Progress::default());
    super::ingest::logged(dir, &args.breach, &listed, progress.clone(), |log| {
        let ingest = DistributedIngest::begin(dir, &args.breach)
            .with_context(|| format!("ingest into breach {:?}", args.breach))?;
        let id = ingest.id().to_owned();
        let holder = lease_holder_name();
        let lease = ingest_lease_name(&id);
        if !catalog.take_lease(&lease, &holder, args.ingest_lease)?.held {
            anyhow::bail!("the lease {lease} is held by another process");
        }
        let renewer = {
            let (lease, holder, ttl) = (lease.clone(), holder.clone(), args.ingest_lease);
            Renewer::start(location.clone(), ttl / 3, move |c| Ok(c.take_lease(&lease, &holder, ttl)?.held))
        };
        let result = run(&ingest, &mut catalog, &renewer, args, options, &progress, log);
        let summary = match result {
            Ok(outputs) => ingest
                .commit(options, &outputs, &mut |phase| log.phase(&phase))
                .with_context(|| format!("ingest into breach {:?}", args.breach)),
            Err(e) => {
                if let Err(cleanup) = ingest.remove_shared() {
                    tracing::warn!("removing the ingest's shared files: {cleanup:#}");
                }
                Err(e)
            }
        };
        drop(renewer);
        // The rows go either way; a dead ingest's are removed by the next
        // one's enqueue.
        let _ = catalog.remove_jobs(&id);
        let _ = catalog.release_lease(&lease, &holder);
        summary
    })
}

/// Stages the inputs, queues the jobs and waits for them; returns each job
/// with its output, in job order.
fn run(
    ingest: &DistributedIngest,
    catalog: &mut Catalog,
    renewer: &Renewer,
    args: &IngestArgs,
    options: &IngestOptions,
    progress: &Progress,
    log: &leakwatch_server::IngestLog,
) -> Result<Vec<(JobSpec, JobOutput)>> {
    let mut specs = Vec::new();
    let mut sizes = Vec::new();
    for (n, file) in args.files.iter().enumerate() {
        let parts = plan(Path::new(file), file, options.format, args.job_size)?;
        let staged = ingest.stage_input(n, Path::new(file))?;
        for part in parts {
            let job = u32::try_from(specs.len()).context("too many jobs")?;
            let size = part
                .range
                .as_ref()
                .map_or_else(|| std::fs::metadata(file).map_or(0, |m| m.len()), |r| r.end - r.start);
            sizes.push(size);
            specs.push(ingest.job(
                job,
                staged.clone(),
                file.clone(),
                part.range,
                part.head,
                part.format,
                options.memory_budget,
            ));
        }
    }
    let queued: Vec<(i64, String)> =
        specs.iter().map(|s| (i64::from(s.job), serde_json::to_string(s).expect("serializes"))).collect();
    catalog.enqueue_jobs(ingest.id(), &queued)?;
    eprintln!(
        "leakwatch: ingest {}: {} queued in the catalog; waiting for `leakwatch worker` processes to run them",
        ingest.id(),
        if specs.len() == 1 { "1 job".to_owned() } else { format!("{} jobs", specs.len()) }
    );
    log.phase(&leakwatch_store::Phase::Reading {
        name: "distributed jobs",
        raw_len: Some(sizes.iter().sum()),
    });

    let bar = jobs_bar(specs.len() as u64);
    let outputs = loop {
        if renewer.lost() {
            anyhow::bail!("the ingest lost its lease in the catalog: its jobs may have been given up");
        }
        let rows = catalog.jobs(ingest.id())?;
        if let Some(failed) = rows.iter().find(|r| r.state == "failed") {
            let spec = &specs[failed.job as usize];
            anyhow::bail!(
                "{}: job {} failed after {} attempts: {}",
                spec.name,
                failed.job,
                failed.attempts,
                failed.error.as_deref().unwrap_or("no error recorded")
            );
        }
        let mut outputs = Vec::new();
        let (mut bytes, mut records) = (0, 0);
        for row in rows.iter().filter(|r| r.state == "done") {
            let output: JobOutput = serde_json::from_str(row.output.as_deref().unwrap_or_default())
                .with_context(|| format!("the output of job {}", row.job))?;
            bytes += sizes[row.job as usize];
            records += output.records;
            outputs.push((specs[row.job as usize].clone(), output));
        }
        progress.bytes.store(bytes, Ordering::Relaxed);
        progress.records.store(records, Ordering::Relaxed);
        let running = rows.iter().filter(|r| r.state == "running").count();
        bar.set_position(outputs.len() as u64);
        bar.set_message(format!(
            "{running} running, {} queued, {} records",
            rows.len() - outputs.len() - running,
            crate::output::thousands(records)
        ));
        if outputs.len() == specs.len() {
            break outputs;
        }
        std::thread::sleep(POLL);
    };
    bar.finish_and_clear();
    Ok(outputs)
}

/// The jobs' progress on a terminal (nothing otherwise, as for the local
/// ingest's bar).
fn jobs_bar(jobs: u64) -> ProgressBar {
    use std::io::IsTerminal;
    let target = if std::io::stderr().is_terminal() {
        ProgressDrawTarget::stderr_with_hz(4)
    } else {
        ProgressDrawTarget::hidden()
    };
    let bar = ProgressBar::with_draw_target(Some(jobs), target);
    bar.set_style(
        ProgressStyle::with_template("jobs [{bar:30}] {pos}/{len} {elapsed}  {msg}")
            .expect("valid template")
            .progress_chars("=> "),
    );
    bar
}

/// One job's share of an input.
#[derive(Debug, PartialEq, Eq)]
struct Part {
    /// The bytes it reads; all when `None`.
    range: Option<std::ops::Range<u64>>,
    /// The end of the head it reads first (every part but the first).
    head: Option<u64>,
    format: Option<Format>,
}

/// How `path` is shared among jobs: a plain (uncompressed, not an archive)
/// combo list larger than two heads and `job_size` is cut at line ends into
/// parts of about `job_size`; anything else is one job.
fn plan(path: &Path, name: &str, format: Option<Format>, job_size: u64) -> Result<Vec<Part>> {
    // Tests and benchmarks cut files smaller than two windows with a smaller
    // head: their answers stay those of a local ingest only while the
    // reader's decisions are settled within it (plain ASCII lines of one kind).
    let head = std::env::var("LEAKWATCH_DISTRIBUTED_HEAD")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(DECISION_WINDOW as u64);
    plan_with_head(path, name, format, job_size, head)
}

fn plan_with_head(
    path: &Path,
    name: &str,
    format: Option<Format>,
    job_size: u64,
    head: u64,
) -> Result<Vec<Part>> {
    let whole = vec![Part { range: None, head: None, format }];
    let len = std::fs::metadata(path).with_context(|| format!("{name}: cannot read it"))?.len();
    let job_size = job_size.max(1);
    if len <= head.saturating_mul(2).max(job_size) {
        return Ok(whole);
    }
    let mut file = std::fs::File::open(path).with_context(|| format!("{name}: cannot read it"))?;
    let mut start = vec![0u8; head.min(len) as usize];
    file.read_exact(&mut start).with_context(|| format!("{name}: cannot read it"))?;
    if !is_plain_text(&start) {
        return Ok(whole);
    }
    // The head runs to the end of the line the window ends in.
    let mut reader = std::io::BufReader::new(file);
    let mut rest = Vec::new();
    reader.read_until(b'\n', &mut rest).with_context(|| format!("{name}: cannot read it"))?;
    let head_end = head + rest.len() as u64;
    start.extend_from_slice(&rest);
    let input = Input::from_reader(name.to_owned(), std::io::Cursor::new(start))?;
    let detected = leakwatch_ingest::read(input, format, &AtomicU64::new(0), |_| (), |()| Ok(()))?.format;
    if detected != Format::Combo {
        return Ok(whole);
    }
    let mut cuts = vec![0];
    let mut at = head_end.max(job_size);
    while at < len {
        reader.seek(SeekFrom::Start(at)).with_context(|| format!("{name}: cannot read it"))?;
        let mut line = Vec::new();
        reader.read_until(b'\n', &mut line).with_context(|| format!("{name}: cannot read it"))?;
        let cut = at + line.len() as u64;
        if cut >= len {
            break;
        }
        cuts.push(cut);
        at = cut + job_size;
    }
    cuts.push(len);
    Ok(cuts
        .windows(2)
        .map(|w| Part {
            range: Some(w[0]..w[1]),
            head: (w[0] > 0).then_some(head_end),
            format: Some(Format::Combo),
        })
        .collect())
}

/// Whether `bytes` (an input's start) are text a cut at a line end keeps
/// whole: not compressed, not an archive, not UTF-16.
fn is_plain_text(bytes: &[u8]) -> bool {
    const MAGIC: [&[u8]; 6] =
        [b"\x1f\x8b", b"\x28\xb5\x2f\xfd", b"PK\x03\x04", b"7z\xbc\xaf", b"\xff\xfe", b"\xfe\xff"];
    let tar = bytes.get(257..262) == Some(b"ustar");
    !tar && !MAGIC.iter().any(|m| bytes.starts_with(m)) && !bytes.contains(&0)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Parts cover the file, each from a line's start to a line's start,
    /// every one after the first with the head; a small, compressed or non-combo
    /// file is one job.
    #[test]
    fn large_combo_lists_are_cut_at_line_ends() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("combo.txt");
        let text: String = (0..2000).map(|i| format!("user{i}@example.com:password{i}\n")).collect();
        std::fs::write(&path, &text).unwrap();
        let parts = plan_with_head(&path, "combo.txt", None, 10_000, 1_000).unwrap();
        assert!(parts.len() > 3, "{parts:?}");
        let mut at = 0;
        for (i, p) in parts.iter().enumerate() {
            let r = p.range.clone().unwrap();
            assert_eq!(r.start, at);
            assert!(r.start == 0 || text.as_bytes()[r.start as usize - 1] == b'\n');
            assert_eq!(p.head.is_some(), i > 0);
            assert_eq!(p.format, Some(Format::Combo));
            at = r.end;
        }
        assert_eq!(at, text.len() as u64);
        let head_end = parts[1].head.unwrap() as usize;
        assert!(head_end >= 1_000 && text.as_bytes()[head_end - 1] == b'\n');

        let whole = vec![Part { range: None, head: None, format: None }];
        assert_eq!(plan_with_head(&path, "combo.txt", None, 1 << 30, 1_000).unwrap(), whole, "small");
        let csv = dir.path().join("users.csv");
        let rows: String = (0..2000).map(|i| format!("{i},user{i}@example.com,password{i}\n")).collect();
        std::fs::write(&csv, format!("id,email,password\n{rows}")).unwrap();
        assert_eq!(plan_with_head(&csv, "users.csv", None, 10_000, 1_000).unwrap(), whole, "csv");
        let gz = dir.path().join("combo.txt.gz");
        let mut bytes = b"\x1f\x8b".to_vec();
        bytes.extend_from_slice(text.as_bytes());
        std::fs::write(&gz, bytes).unwrap();
        assert_eq!(plan_with_head(&gz, "combo.txt.gz", None, 10_000, 1_000).unwrap(), whole, "gzip");
    }
}
