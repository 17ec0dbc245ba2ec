//! `leakwatch worker`: runs the jobs of distributed ingests queued in the
//! catalog, one at a time, each under a lease renewed while it runs (see
//! `leakwatch_catalog::jobs` and `leakwatch_store::run_job`).

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use leakwatch_catalog::{lease_holder_name, Catalog, CatalogLocation};
use leakwatch_store::{DataDir, JobSpec, Progress};

use crate::cli::WorkerArgs;
use crate::Outcome;

pub fn run(dir: &DataDir, args: WorkerArgs) -> Result<Outcome> {
    let location = super::catalog_location(dir);
    let mut catalog = super::open_catalog(dir)?;
    let holder = format!("{}-{}", host_name(), lease_holder_name());
    let scratch = args.scratch.clone().unwrap_or_else(|| default_scratch(dir));
    let mut idle_since = Instant::now();
    eprintln!("leakwatch: worker {holder} takes jobs from {location} for {}", dir.location());
    loop {
        let claimed = match catalog.claim_job(&holder, args.lease) {
            Ok(claimed) => claimed,
            // The database is out of reach for a while: a worker outlives that.
            Err(e) => {
                eprintln!("leakwatch: taking a job from {location}: {e:#}; trying again");
                std::thread::sleep(args.poll.max(Duration::from_secs(1)));
                if let Ok(reopened) = Catalog::open_at(&location) {
                    catalog = reopened;
                }
                continue;
            }
        };
        let Some(job) = claimed else {
            if args.exit_when_idle.is_some_and(|limit| idle_since.elapsed() >= limit) {
                return Ok(Outcome::Found);
            }
            std::thread::sleep(args.poll);
            continue;
        };
        let started = Instant::now();
        eprintln!("leakwatch: job {} of ingest {} taken (attempt {})", job.job, job.ingest, job.attempt);
        let renewer = {
            let (id, holder, ttl) = (job.id, holder.clone(), args.lease);
            Renewer::start(location.clone(), ttl / 3, move |c| Ok(c.renew_job(id, &holder, ttl)?))
        };
        let lost = renewer.lost_flag();
        let result =
            serde_json::from_str::<JobSpec>(&job.spec).context("the job's description").and_then(|spec| {
                let attempt = u32::try_from(job.attempt).unwrap_or(u32::MAX);
                leakwatch_store::run_job(dir, &spec, attempt, &scratch, &Progress::default(), &lost)
                    .with_context(|| {
                        format!("job {} of {} of ingest {}", spec.job, spec.partition.count, spec.ingest)
                    })
            });
        if renewer.stop() {
            // Another worker has the job now; what this one made is not reported.
            eprintln!(
                "leakwatch: job {} of ingest {}: lease lost, left to its new holder",
                job.job, job.ingest
            );
            continue;
        }
        match result {
            Ok(output) => {
                let text = serde_json::to_string(&output).expect("serializes");
                catalog.finish_job(job.id, &holder, &text).context("reporting a job done")?;
                let [fetched, read, wrote] = output.seconds;
                eprintln!(
                    "leakwatch: job {} of ingest {} done in {:.1}s (inputs fetched {fetched:.2}s, read \
                     {read:.2}s, segments written and put {wrote:.2}s): {} records",
                    job.job,
                    job.ingest,
                    started.elapsed().as_secs_f64(),
                    output.records
                );
            }
            Err(e) => {
                eprintln!("leakwatch: job {} of ingest {} failed: {e:#}", job.job, job.ingest);
                catalog.fail_job(job.id, &holder, &format!("{e:#}")).context("reporting a job failed")?;
            }
        }
        idle_since = Instant::now();
    }
}

/// The machine's name, for telling workers apart in the job rows.
fn host_name() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_owned())
        .ok()
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "host".into())
}

/// Renews a lease from a thread of its own, on a connection of its own (a
/// long job or a long wait must not starve it), until stopped; remembers
/// whether a renewal found the lease lost.
pub(super) struct Renewer {
    stop: Arc<AtomicBool>,
    lost: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Renewer {
    /// Renews with `renew` every `every`; `renew` says whether the lease is
    /// still held.
    pub(super) fn start(
        location: CatalogLocation,
        every: Duration,
        mut renew: impl FnMut(&mut Catalog) -> Result<bool> + Send + 'static,
    ) -> Renewer {
        let stop = Arc::new(AtomicBool::new(false));
        let lost = Arc::new(AtomicBool::new(false));
        let thread = {
            let (stop, lost) = (stop.clone(), lost.clone());
            std::thread::spawn(move || {
                let mut catalog = None;
                let mut last_held = Instant::now();
                while !stop.load(Ordering::Relaxed) {
                    std::thread::park_timeout(every);
                    if stop.load(Ordering::Relaxed) {
                        break;
                    }
                    if catalog.is_none() {
                        catalog = Catalog::open_at(&location).ok();
                    }
                    let held = match catalog.as_mut().map(&mut renew) {
                        Some(Ok(held)) => held,
                        // The database is out of reach: try again, and count the
                        // lease lost once it may have run out.
                        Some(Err(e)) => {
                            tracing::warn!("renewing a lease: {e:#}");
                            catalog = None;
                            last_held.elapsed() < every * 2
                        }
                        None => last_held.elapsed() < every * 2,
                    };
                    if !held {
                        lost.store(true, Ordering::Relaxed);
                        break;
                    }
                    last_held = Instant::now();
                }
            })
        };
        Renewer { stop, lost, thread: Some(thread) }
    }

    /// Whether the lease was lost so far.
    pub(super) fn lost(&self) -> bool {
        self.lost.load(Ordering::Relaxed)
    }

    /// A flag set when the lease is found lost, for work that must stop then.
    pub(super) fn lost_flag(&self) -> Arc<AtomicBool> {
        self.lost.clone()
    }

    /// Stops renewing; returns whether the lease was lost.
    pub(super) fn stop(mut self) -> bool {
        self.halt();
        self.lost()
    }

    fn halt(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            t.thread().unpark();
            let _ = t.join();
        }
    }
}

impl Drop for Renewer {
    fn drop(&mut self) {
        self.halt();
    }
}

/// Where a worker keeps a job's input and runs by default.
fn default_scratch(dir: &DataDir) -> PathBuf {
    dir.root().join("worker")
}
