//! `leakwatch sync pwned-passwords`: mirrors every range of a Pwned Passwords
//! range API (HIBP itself, or another `leakwatch serve`) into a data directory.
//!
//! A run fetches the ranges in parallel into a staging directory inside the
//! data directory ([`staging`]), verifying each body first ([`verify`]); it is
//! resumable (an interrupted run skips the ranges it already has) and
//! incremental (a later run revalidates each range with its ETag, and an
//! unchanged one costs a 304). Only when every range is staged is the corpus
//! published, through [`leakwatch_store::import_pwned_passwords`], which
//! replaces the previous Pwned Passwords import in one manifest swap.
//!
//! **Architecture Invariant:** a failed range, an unreachable upstream or a
//! killed run never touches the published corpus; the store only ever sees a
//! complete, verified set of ranges.

mod error;
mod fetch;
mod staging;
mod transport;
pub mod verify;

use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use leakwatch_store::{DataDir, ImportSummary};

pub use error::{Result, SyncError};
use fetch::{Fetched, Fetcher};
use staging::Staging;
pub use transport::TlsOptions;

/// Prefixes of the full Pwned Passwords space: five hex digits.
pub const PREFIX_BITS: u32 = 20;

/// How a sync runs.
#[derive(Debug, Clone)]
pub struct SyncOptions {
    /// Requests in flight at once.
    pub parallel: usize,
    /// Attempts per range before the run fails.
    pub attempts: u32,
    /// The first retry's wait; each further one doubles it.
    pub backoff: Duration,
    /// Time limit of one request.
    pub timeout: Duration,
    /// For tests: sync only the first `2^prefix_bits` prefixes instead of all
    /// 2^20. The staging state records it, so runs of different spaces never mix.
    pub prefix_bits: u32,
    /// Memory budget of the publishing import (its external sort, which sorted
    /// ranges never need).
    pub memory_budget: u64,
    pub user_agent: String,
    /// Which CAs vouch for an https upstream; whether plain http is allowed.
    pub tls: TlsOptions,
}

impl Default for SyncOptions {
    fn default() -> Self {
        SyncOptions {
            parallel: 32,
            attempts: 6,
            backoff: Duration::from_millis(250),
            timeout: Duration::from_secs(60),
            prefix_bits: PREFIX_BITS,
            memory_budget: 256 << 20,
            user_agent: format!("leakwatch-sync/{}", env!("CARGO_PKG_VERSION")),
            tls: TlsOptions::default(),
        }
    }
}

/// Live counters, for a progress bar.
#[derive(Debug, Default)]
pub struct Progress {
    /// Prefixes in this run's space.
    pub total: AtomicU64,
    /// Prefixes done, including those done by an interrupted run resumed.
    pub done: AtomicU64,
    /// Body bytes received.
    pub bytes: AtomicU64,
    /// Bytes read by the publishing import.
    pub import_bytes: AtomicU64,
    /// Set once every range is staged and the import has started.
    pub publishing: AtomicBool,
}

/// What a run did.
#[derive(Debug, Clone, Default)]
pub struct SyncSummary {
    pub ntlm: bool,
    pub source: String,
    /// Prefixes in the run's space.
    pub ranges: u64,
    /// Answered 200 with a body that differs from the staged one.
    pub fetched: u64,
    /// Answered 200 with exactly the staged body (an upstream whose ETags
    /// changed though the range did not).
    pub same: u64,
    /// Answered 304.
    pub not_modified: u64,
    /// Done by an interrupted run and skipped by this one.
    pub resumed: u64,
    /// Body bytes received.
    pub bytes: u64,
    /// Requests retried after a failure.
    pub retries: u64,
    /// The import that published the corpus; `None` when nothing had changed
    /// since the last published run.
    pub import: Option<ImportSummary>,
}

/// Syncs the SHA-1 (or, with `ntlm`, the NTLM) corpus of `dir` from the range
/// API at `from` (a base URL: `/range/PREFIX` is appended).
pub fn sync(
    dir: &DataDir,
    from: &str,
    ntlm: bool,
    options: &SyncOptions,
    progress: &Arc<Progress>,
) -> Result<SyncSummary> {
    let base = from.trim_end_matches('/');
    transport::check_url(base, options.tls.insecure)?;
    let tls = transport::client_config(&options.tls)?;
    let bits = options.prefix_bits.min(PREFIX_BITS);
    let space = 1u32 << bits;
    let staging = Staging::open(dir, ntlm, format!("{base} {bits}"))?;
    let start = staging.start(space)?;
    let resumed = start.done.iter().filter(|&&d| d).count() as u64;
    progress.total.store(u64::from(space), Ordering::Relaxed);
    progress.done.store(resumed, Ordering::Relaxed);

    let client = reqwest::Client::builder()
        .user_agent(options.user_agent.clone())
        .timeout(options.timeout)
        .tls_backend_preconfigured(tls)
        .build()
        .map_err(|e| SyncError::Client(e.to_string()))?;
    let fetcher = Fetcher {
        client,
        base: base.to_owned(),
        ntlm,
        attempts: options.attempts.max(1),
        backoff: options.backoff,
        retries: AtomicU64::new(0),
    };
    let journal = staging.journal(resumed > 0)?;
    let run = Run {
        staging,
        fetcher,
        etags: Mutex::new(start.etags),
        done: start.done,
        journal: Mutex::new(journal),
        next: AtomicU32::new(0),
        space,
        failed: Mutex::new(None),
        stop: AtomicBool::new(false),
        counts: Counts::default(),
    };
    let run = Arc::new(run);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|e| SyncError::Client(format!("starting the runtime: {e}")))?;
    runtime.block_on(async {
        let mut workers = tokio::task::JoinSet::new();
        for _ in 0..options.parallel.max(1) {
            let (run, progress) = (run.clone(), progress.clone());
            workers.spawn(async move { run.worker(&progress).await });
        }
        while workers.join_next().await.is_some() {}
    });
    drop(runtime);
    let run = Arc::into_inner(run).expect("workers are done");
    run.journal.into_inner().expect("journal lock").flush()?;
    if let Some(e) = run.failed.into_inner().expect("failure lock") {
        return Err(e);
    }
    let counts = &run.counts;
    let mut summary = SyncSummary {
        ntlm,
        source: base.to_owned(),
        ranges: u64::from(space),
        fetched: counts.fetched.load(Ordering::Relaxed),
        same: counts.same.load(Ordering::Relaxed),
        not_modified: counts.not_modified.load(Ordering::Relaxed),
        resumed,
        bytes: counts.bytes.load(Ordering::Relaxed),
        retries: run.fetcher.retries.load(Ordering::Relaxed),
        import: None,
    };
    // Nothing to publish when a fresh run found every range as the last
    // published run left it.
    let unchanged = start.published_before && resumed == 0 && summary.fetched == 0;
    if !unchanged {
        progress.publishing.store(true, Ordering::Relaxed);
        let ranges = run.staging.ranges().to_string_lossy().into_owned();
        summary.import = Some(leakwatch_store::import_pwned_passwords(
            dir,
            &ranges,
            ntlm,
            options.memory_budget,
            &progress.import_bytes,
        )?);
    }
    run.staging.finish(&run.etags.into_inner().expect("etags lock"))?;
    Ok(summary)
}

/// Counters of one run.
#[derive(Default)]
struct Counts {
    fetched: AtomicU64,
    same: AtomicU64,
    not_modified: AtomicU64,
    bytes: AtomicU64,
}

/// The state the workers share.
struct Run {
    staging: Staging,
    fetcher: Fetcher,
    /// The ETag of each staged body; updated as ranges come in.
    etags: Mutex<Vec<Option<Box<str>>>>,
    /// Prefixes done by an interrupted run of the same source.
    done: Vec<bool>,
    journal: Mutex<staging::Journal>,
    /// The next prefix to take.
    next: AtomicU32,
    space: u32,
    /// The first error; the run stops taking prefixes once there is one.
    failed: Mutex<Option<SyncError>>,
    stop: AtomicBool,
    counts: Counts,
}

impl Run {
    /// Takes prefixes in order until they run out or the run fails.
    async fn worker(&self, progress: &Progress) {
        while !self.stop.load(Ordering::Relaxed) {
            let prefix = self.next.fetch_add(1, Ordering::Relaxed);
            if prefix >= self.space {
                return;
            }
            if self.done[prefix as usize] {
                continue;
            }
            if let Err(e) = self.range(prefix, progress).await {
                self.stop.store(true, Ordering::Relaxed);
                self.failed.lock().expect("failure lock").get_or_insert(e);
                return;
            }
            progress.done.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Fetches, verifies and stages one range, then journals it.
    async fn range(&self, prefix: u32, progress: &Progress) -> Result<()> {
        let etag = self.etags.lock().expect("etags lock")[prefix as usize].clone();
        let etag = match self.fetcher.fetch(prefix, etag.as_deref()).await? {
            Fetched::NotModified => {
                self.counts.not_modified.fetch_add(1, Ordering::Relaxed);
                etag
            }
            Fetched::Body { body, etag } => {
                self.counts.bytes.fetch_add(body.len() as u64, Ordering::Relaxed);
                progress.bytes.fetch_add(body.len() as u64, Ordering::Relaxed);
                if self.staging.same_body(prefix, &body) {
                    self.counts.same.fetch_add(1, Ordering::Relaxed);
                } else {
                    self.staging.commit(prefix, &body)?;
                    self.counts.fetched.fetch_add(1, Ordering::Relaxed);
                }
                etag.map(Into::into)
            }
        };
        self.journal.lock().expect("journal lock").record(prefix, etag.as_deref())?;
        self.etags.lock().expect("etags lock")[prefix as usize] = etag;
        Ok(())
    }
}
