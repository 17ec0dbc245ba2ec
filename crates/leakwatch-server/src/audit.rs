//! The server side of the audit log: handlers hand entries to a channel, and one
//! writer thread appends them to the catalog in batches.
//!
//! One SQLite commit per search would cap audited searches at a few thousand a
//! second; a batch per wake-up costs a fraction of that and keeps the order in
//! which searches were answered. The channel is bounded, so a writer that falls
//! behind slows searches down instead of losing entries. If the catalog cannot
//! be written, audited endpoints answer 503 until it can again: a search that
//! cannot be recorded is not answered.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use leakwatch_catalog::{AuditEntry, Catalog};
use tokio::sync::{mpsc, oneshot};

use crate::error::AppError;

/// Entries queued before handlers wait for the writer.
const QUEUE: usize = 16 * 1024;
/// Entries written in one transaction at most.
const BATCH: usize = 4096;
/// How long the writer gathers entries before a commit.
const COLLECT: Duration = Duration::from_millis(20);

enum Message {
    Entry(AuditEntry),
    /// Answered once everything queued before it is written (or failed).
    Flush(oneshot::Sender<bool>),
}

/// Where handlers send audit entries. Cheap to clone.
#[derive(Clone)]
pub struct AuditSink {
    tx: mpsc::Sender<Message>,
    failed: Arc<AtomicBool>,
}

/// The writer thread; it ends when every [`AuditSink`] is dropped.
pub struct AuditWriter {
    thread: std::thread::JoinHandle<()>,
}

impl AuditWriter {
    /// Waits for the writer to finish what is queued and end.
    pub fn join(self) {
        if self.thread.join().is_err() {
            tracing::error!("the audit writer panicked");
        }
    }
}

impl AuditSink {
    /// Starts the writer on its own catalog connection.
    /// Rows are chained under `chain_key` (the data key's audit key).
    pub fn start(catalog: Catalog, chain_key: [u8; 32]) -> std::io::Result<(AuditSink, AuditWriter)> {
        let (tx, rx) = mpsc::channel(QUEUE);
        let failed = Arc::new(AtomicBool::new(false));
        let flag = failed.clone();
        let thread = std::thread::Builder::new()
            .name("audit-writer".into())
            .spawn(move || write_loop(catalog, &chain_key, rx, &flag))?;
        Ok((AuditSink { tx, failed }, AuditWriter { thread }))
    }

    /// Queues one entry. Fails when the log cannot be written, so that the
    /// search is not answered unrecorded.
    pub async fn record(&self, entry: AuditEntry) -> Result<(), AppError> {
        if self.tx.send(Message::Entry(entry)).await.is_err() {
            tracing::error!("the audit writer has stopped");
            return Err(AppError::Unavailable("The audit log cannot be written."));
        }
        if self.failed.load(Ordering::Relaxed) {
            return Err(AppError::Unavailable("The audit log cannot be written."));
        }
        Ok(())
    }

    /// Waits until every entry queued so far is written; false if writing failed.
    pub async fn flush(&self) -> bool {
        let (tx, rx) = oneshot::channel();
        if self.tx.send(Message::Flush(tx)).await.is_err() {
            return false;
        }
        rx.await.unwrap_or(false)
    }
}

fn write_loop(
    mut catalog: Catalog,
    chain_key: &[u8; 32],
    mut rx: mpsc::Receiver<Message>,
    failed: &AtomicBool,
) {
    let mut batch = Vec::with_capacity(BATCH);
    let mut flushes = Vec::new();
    while let Some(first) = rx.blocking_recv() {
        // Collect for a moment before committing: under load a commit per
        // wake-up would be a commit per handful of entries, and the commit, not
        // the row, is what costs. A flush cuts the wait short.
        let deadline = Instant::now() + COLLECT;
        let mut next = Some(first);
        loop {
            while let Some(message) = next.take() {
                match message {
                    Message::Entry(entry) => batch.push(entry),
                    Message::Flush(reply) => flushes.push(reply),
                }
                if batch.len() < BATCH {
                    next = rx.try_recv().ok();
                }
            }
            if batch.len() >= BATCH || !flushes.is_empty() || Instant::now() >= deadline {
                break;
            }
            std::thread::sleep(COLLECT / 10);
            next = rx.try_recv().ok();
        }
        if !batch.is_empty() {
            let ok = append_with_retries(&mut catalog, chain_key, &batch);
            failed.store(!ok, Ordering::Relaxed);
            if !ok {
                tracing::error!(lost = batch.len(), "audit entries could not be written");
            }
            batch.clear();
        }
        let ok = !failed.load(Ordering::Relaxed);
        for reply in flushes.drain(..) {
            let _ = reply.send(ok);
        }
    }
}

/// A busy or briefly failing catalog gets a few chances before entries are lost.
fn append_with_retries(catalog: &mut Catalog, chain_key: &[u8; 32], batch: &[AuditEntry]) -> bool {
    for attempt in 0..5 {
        match catalog.append_audit(batch, chain_key) {
            Ok(()) => return true,
            Err(e) => {
                tracing::warn!(error = %e, attempt, "writing the audit log failed");
                std::thread::sleep(Duration::from_millis(50 << attempt));
            }
        }
    }
    false
}
