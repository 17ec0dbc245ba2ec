//! `leakwatch ingest --distributed`: queues a job per partition of the
//! records in the catalog, stages the inputs in the store's shared area
//! (compressed, as one bundle the jobs read while it is staged), waits for
//! `leakwatch worker` processes to run them, and publishes the segments they
//! wrote as one generation (`leakwatch_store::DistributedIngest`).
//!
//! It holds the store's writer lock throughout, as a local ingest does, and a
//! lease of its own in the catalog (`ingest:ID`) that the workers check
//! before they start one of its jobs. Whatever stops it (an error, a failed
//! job, a kill) publishes nothing: the store answers as before.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use leakwatch_catalog::{ingest_lease_name, lease_holder_name, Catalog};
use leakwatch_store::{
    DataDir, DistributedIngest, IngestOptions, IngestSummary, JobOutput, JobSpec, Partition, Progress,
};

use super::worker::Renewer;
use crate::cli::IngestArgs;

/// How often the waiting ingest looks at its jobs (one small query).
const POLL: Duration = Duration::from_millis(100);

pub(super) fn ingest(dir: &DataDir, args: &IngestArgs, options: &IngestOptions) -> Result<IngestSummary> {
    let mut listed = Vec::new();
    for file in &args.files {
        if super::ingest::is_object_url(file) {
            listed.push((file.clone(), None));
            continue;
        }
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
    let mut inputs = Vec::new();
    let mut total = 0u64;
    for file in &args.files {
        if super::ingest::is_object_url(file) {
            // Read where it is by each job: nothing to stage.
            inputs.push(ingest.input_at(file));
            continue;
        }
        total += std::fs::metadata(file).with_context(|| format!("{file}: cannot read it"))?.len();
        let (plain, _) = open_sniffed(file).with_context(|| format!("{file}: cannot read it"))?;
        inputs.push(ingest.input_staged(file, plain));
    }
    let count = args.partitions.unwrap_or_else(|| default_partitions(total, args.job_size));
    let specs: Vec<JobSpec> = (0..count)
        .map(|index| {
            let partition = Partition::new(index, count).expect("index < count");
            ingest.job(partition, &inputs, options.format, options.memory_budget)
        })
        .collect();
    let sizes = vec![total / u64::from(count); specs.len()];
    let queued: Vec<(i64, String)> =
        specs.iter().map(|s| (i64::from(s.job), serde_json::to_string(s).expect("serializes"))).collect();
    catalog.enqueue_jobs(ingest.id(), &queued)?;
    eprintln!(
        "leakwatch: ingest {}: {} queued in the catalog for `leakwatch worker` processes, which read the \
         inputs as they are staged",
        ingest.id(),
        if specs.len() == 1 { "1 job".to_owned() } else { format!("{} jobs", specs.len()) }
    );
    // The jobs are queued first: workers start on the parts staged while
    // the rest is staged.
    let started = std::time::Instant::now();
    let staged = ingest
        .stage(&inputs, |input| {
            if renewer.lost() {
                return Err(std::io::Error::other("the ingest lost its lease in the catalog"));
            }
            staged_stream(input)
        })
        .context("staging the inputs in the store's shared area")?;
    eprintln!(
        "leakwatch: ingest {}: inputs staged in {:.1}s ({} bytes); waiting for the jobs",
        ingest.id(),
        started.elapsed().as_secs_f64(),
        crate::output::thousands(staged)
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
            anyhow::bail!(
                "job {} of {} failed after {} attempts: {}",
                failed.job,
                specs.len(),
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

/// Jobs when --partitions is not given: one per `job_size` of input, at most
/// 8 (each job reads every input; and a store keeps few segments of a kind
/// before it merges them).
fn default_partitions(total: u64, job_size: u64) -> u32 {
    total.div_ceil(job_size.max(1)).clamp(1, 8) as u32
}

/// `file`, opened; whether it is plain (neither compressed nor an archive),
/// and its bytes.
fn open_sniffed(file: &str) -> std::io::Result<(bool, Box<dyn std::io::Read + Send>)> {
    leakwatch_ingest::sniff_plain(Box::new(std::fs::File::open(file)?))
}

/// What is staged of `input` for the workers: a plain file compressed (zstd
/// at its fastest level: a combo list shrinks to under half, and so do the
/// bytes each worker fetches), as it is read, a part at a time, while the
/// parts before it are sent; a compressed file or an archive as it is.
fn staged_stream(input: &leakwatch_store::StagedInput) -> std::io::Result<Box<dyn std::io::Read + Send>> {
    let (plain, stream) = open_sniffed(&input.name)?;
    if plain != input.plain {
        return Err(std::io::Error::other("it changed while it was being ingested"));
    }
    Ok(if plain { Box::new(zstd::stream::read::Encoder::new(stream, 1)?) } else { stream })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn partitions_follow_the_input_size_up_to_eight() {
        let mib = 1 << 20;
        assert_eq!(default_partitions(0, 256 * mib), 1);
        assert_eq!(default_partitions(100 * mib, 256 * mib), 1);
        assert_eq!(default_partitions(600 * mib, 256 * mib), 3);
        assert_eq!(default_partitions(100 << 30, 256 * mib), 8);
    }
}
