//! Writing the ingest log ([`leakwatch_catalog::IngestRecord`]) around an
//! ingest, for the web interface's ingest status page to read: the ingest's
//! row when it starts, its progress about once a second from a thread of its
//! own while it runs, and its outcome (each input's counts and rejections by
//! reason) or its failure when it ends.
//!
//! The writing side lives beside the page that reads it, so that both agree on
//! what a row means; `leakwatch ingest` is its caller.

use std::sync::atomic::Ordering;
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use leakwatch_catalog::{
    Catalog, CatalogError, IngestInput, IngestOutcome, IngestProgress, NewIngest, Rejection,
};
use leakwatch_store::{DataDir, IngestSummary, Phase, Progress};

/// How often a running ingest reports its progress: often enough for a page
/// to look alive, seldom enough to cost nothing beside the ingest.
pub const PROGRESS_EVERY: Duration = Duration::from_secs(1);

/// The log row of one running ingest, and the thread that keeps its progress.
pub struct IngestLog {
    id: i64,
    catalog: Catalog,
    phase: Arc<Mutex<String>>,
    stop: Option<mpsc::Sender<()>>,
    reporter: Option<JoinHandle<()>>,
}

impl IngestLog {
    /// Logs an ingest into `breach` of `inputs` (names and raw sizes, in the
    /// order they will be read) as running, then reports `progress` every
    /// [`PROGRESS_EVERY`] until it ends.
    pub fn start(
        dir: &DataDir,
        breach: &str,
        started_by: &str,
        inputs: &[(String, Option<u64>)],
        progress: Arc<Progress>,
    ) -> Result<IngestLog, CatalogError> {
        let mut catalog = Catalog::open(&dir.catalog_file())?;
        let names: Vec<String> = inputs.iter().map(|(name, _)| name.clone()).collect();
        let bytes_total = inputs.iter().map(|(_, len)| *len).sum::<Option<u64>>();
        let id = catalog.start_ingest(&NewIngest { breach, started_by, inputs: &names, bytes_total })?;
        let reporting = Catalog::open(&dir.catalog_file())?;
        let phase = Arc::new(Mutex::new("starting".to_owned()));
        let (stop, stopped) = mpsc::channel::<()>();
        let shown = phase.clone();
        let reporter = std::thread::Builder::new()
            .name("ingest-log".into())
            .spawn(move || {
                while let Err(mpsc::RecvTimeoutError::Timeout) = stopped.recv_timeout(PROGRESS_EVERY) {
                    let now = IngestProgress {
                        phase: shown.lock().unwrap_or_else(|e| e.into_inner()).clone(),
                        bytes_read: progress.bytes.load(Ordering::Relaxed),
                        records: progress.records.load(Ordering::Relaxed),
                    };
                    // A busy catalog delays one report; the next one catches up.
                    if let Err(e) = reporting.ingest_progress(id, &now) {
                        tracing::debug!("ingest {id}: progress not logged: {e}");
                    }
                }
            })
            .map_err(|e| CatalogError::Io { path: dir.root().to_owned(), source: e })?;
        Ok(IngestLog { id, catalog, phase, stop: Some(stop), reporter: Some(reporter) })
    }

    /// The ingest's id in the log.
    pub fn id(&self) -> i64 {
        self.id
    }

    /// Notes the phase the ingest entered, for its next progress report.
    pub fn phase(&self, phase: &Phase<'_>) {
        let text = match phase {
            Phase::Reading { name, .. } => format!("reading {name}"),
            Phase::Writing => "writing".to_owned(),
        };
        *self.phase.lock().unwrap_or_else(|e| e.into_inner()) = text;
    }

    /// Logs the published ingest: what each input gave.
    pub fn finish(mut self, summary: &IngestSummary) -> Result<(), CatalogError> {
        self.stop_reporting();
        let outcome = outcome(summary);
        self.catalog.finish_ingest(self.id, &outcome)
    }

    /// Logs an ingest that published nothing, and why.
    pub fn fail(mut self, message: &str) -> Result<(), CatalogError> {
        self.stop_reporting();
        self.catalog.fail_ingest(self.id, message)
    }

    fn stop_reporting(&mut self) {
        drop(self.stop.take());
        if let Some(reporter) = self.reporter.take() {
            let _ = reporter.join();
        }
    }
}

impl Drop for IngestLog {
    fn drop(&mut self) {
        self.stop_reporting();
    }
}

/// The log's view of an ingest's summary.
pub fn outcome(summary: &IngestSummary) -> IngestOutcome {
    let inputs = summary
        .files
        .iter()
        .map(|(name, report)| {
            let mut rejected: Vec<Rejection> = report
                .rejected
                .iter()
                .map(|(reason, r)| Rejection {
                    reason: (*reason).to_owned(),
                    count: r.count,
                    sample_lines: r.sample_lines.clone(),
                })
                .collect();
            rejected.sort_by(|a, b| b.count.cmp(&a.count).then_with(|| a.reason.cmp(&b.reason)));
            IngestInput {
                name: name.clone(),
                format: Some(report.format.name().to_owned()),
                lines: Some(report.lines),
                accepted: Some(report.accepted),
                rejected,
            }
        })
        .collect::<Vec<_>>();
    IngestOutcome {
        records: inputs.iter().filter_map(|i| i.accepted).sum(),
        inputs,
        new_breach: summary.new_breach,
        new_accounts: summary.new_accounts,
        new_credentials: summary.new_credentials,
        warning: summary.compaction_warning.clone(),
    }
}
