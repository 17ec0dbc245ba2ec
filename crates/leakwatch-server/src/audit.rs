//! The server side of the audit log: handlers hand entries to a channel, one
//! writer thread appends them to the catalog, and a handler answers only once
//! its entry is committed.
//!
//! One SQLite commit per search would cap audited searches at a few thousand a
//! second, so the writer commits whatever is queued when it wakes (a group
//! commit): under load many handlers share one commit, and an idle server adds
//! one commit's latency to a search. If the catalog cannot be written, the
//! entry's handler answers 503: a search that cannot be recorded is not
//! answered.
//!
//! The writer never checkpoints on its own: SQLite's automatic checkpoint runs in
//! the committing connection and fsyncs twice, which stalled every search
//! waiting on that commit (p99 32 ms against 8 ms in `bench/http-account.sh`).
//! A checkpointer thread on its own connection copies the write-ahead log into
//! the database beside the writer (`PASSIVE`, a few times a second); only if the
//! log still grows past [`WAL_CAP`] frames does the writer checkpoint itself.
//!
//! The audit keys come from the key ring ([`audit_keys`]). When `leakwatch
//! rekey --audit` switches the chain to a new key while the server runs, the
//! writer's next append is refused (the chain is under a key it does not hold);
//! it reads the ring again and goes on under the new key, hashing searched
//! values with the new subject key from then on.

use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use arc_swap::ArcSwap;
use leakwatch_catalog::{
    AuditEntry, AuditHasher, AuditKey, AuditKeys, Catalog, CatalogError, ChainPrefix, Subject, SubjectKind,
};
use leakwatch_store::{DataDir, StoreError};
use tokio::sync::{mpsc, oneshot};

use crate::error::AppError;

/// Entries queued before handlers wait for the writer.
const QUEUE: usize = 16 * 1024;
/// Entries written in one transaction at most.
const BATCH: usize = 4096;
/// How often the checkpointer copies the log into the database.
const CHECKPOINT_EVERY: Duration = Duration::from_millis(250);
/// Frames (pages) of write-ahead log past which the writer checkpoints itself:
/// under a load that never pauses, the checkpointer's copies never let the log
/// restart from its beginning.
const WAL_CAP: i64 = 16_384;

/// The audit keys of `dir`'s key ring, as the catalog uses them. A ring from
/// before audit keys of their own uses its index key (and may have rows from
/// before the chain); one rotated since has them committed to by the chain.
pub fn audit_keys(dir: &DataDir) -> Result<AuditKeys, StoreError> {
    let roots = dir.audit_roots()?;
    let keys: Vec<AuditKey> = roots.roots.iter().map(AuditKey::from_root).collect();
    let prefix = match (roots.from_index, keys.len()) {
        (false, _) => ChainPrefix::None,
        (true, 1) => ChainPrefix::Open,
        (true, _) => ChainPrefix::Committed,
    };
    Ok(AuditKeys::new(keys, prefix))
}

/// Reads the audit keys again (after a rotation).
pub type Reload = Box<dyn Fn() -> Option<AuditKeys> + Send>;

struct Message {
    entries: Vec<AuditEntry>,
    /// Answered once the entries are committed, or could not be.
    done: oneshot::Sender<Written>,
}

/// What became of a batch of entries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Written {
    Committed,
    /// The catalog's database could not be reached: it may take them later.
    DatabaseDown,
    Failed,
}

/// Where handlers send audit entries. Cheap to clone.
#[derive(Clone)]
pub struct AuditSink {
    tx: mpsc::Sender<Message>,
    hasher: Arc<ArcSwap<AuditHasher>>,
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
    /// Starts the writer on its own catalog connection, and its checkpointer on
    /// another (`checkpoints`). Rows are chained under `keys`; `reload` reads
    /// them again when the chain has moved on to a key they lack.
    pub fn start(
        catalog: Catalog,
        checkpoints: Catalog,
        keys: AuditKeys,
        reload: Reload,
    ) -> std::io::Result<(AuditSink, AuditWriter)> {
        let (tx, rx) = mpsc::channel(QUEUE);
        catalog.manual_checkpoints().map_err(std::io::Error::other)?;
        let hasher = Arc::new(ArcSwap::from_pointee(keys.current().hasher()));
        let shared = hasher.clone();
        let (stop, stopped) = std::sync::mpsc::channel::<()>();
        let frames = Arc::new(AtomicI64::new(0));
        let seen = frames.clone();
        let checkpointer = std::thread::Builder::new()
            .name("audit-checkpoint".into())
            .spawn(move || checkpoint_loop(&checkpoints, &stopped, &seen))?;
        let thread = std::thread::Builder::new().name("audit-writer".into()).spawn(move || {
            write_loop(catalog, keys, reload, &shared, &frames, rx);
            drop(stop);
            if checkpointer.join().is_err() {
                tracing::error!("the audit checkpointer panicked");
            }
        })?;
        Ok((AuditSink { tx, hasher }, AuditWriter { thread }))
    }

    /// The subject of a search for `value`, hashed under the current audit key.
    pub fn subject(&self, kind: SubjectKind, value: &str) -> Subject {
        self.hasher.load().subject(kind, value)
    }

    /// Records one entry and waits until it is committed. Fails when the log
    /// cannot be written, so that the search is not answered unrecorded.
    pub async fn record(&self, entry: AuditEntry) -> Result<(), AppError> {
        self.record_all(vec![entry]).await
    }

    /// Records entries together (one commit) and waits until they are committed.
    pub async fn record_all(&self, entries: Vec<AuditEntry>) -> Result<(), AppError> {
        let (done, committed) = oneshot::channel();
        if self.tx.send(Message { entries, done }).await.is_err() {
            tracing::error!("the audit writer has stopped");
            return Err(AppError::Unavailable("The audit log cannot be written."));
        }
        match committed.await {
            Ok(Written::Committed) => Ok(()),
            Ok(Written::DatabaseDown) => Err(AppError::CatalogDown),
            _ => Err(AppError::Unavailable("The audit log cannot be written.")),
        }
    }

    /// Waits until every entry queued so far is written; false if writing failed.
    pub async fn flush(&self) -> bool {
        self.record_all(Vec::new()).await.is_ok()
    }
}

/// Copies the log into the database every [`CHECKPOINT_EVERY`], and once more
/// when the writer ends; notes how many frames the log holds.
fn checkpoint_loop(catalog: &Catalog, stop: &std::sync::mpsc::Receiver<()>, frames: &AtomicI64) {
    loop {
        let last = matches!(
            stop.recv_timeout(CHECKPOINT_EVERY),
            Err(std::sync::mpsc::RecvTimeoutError::Disconnected)
        );
        match catalog.checkpoint() {
            Ok((log, _)) => frames.store(log, Ordering::Relaxed),
            Err(e) => tracing::warn!(error = %e, "checkpointing the catalog failed"),
        }
        if last {
            return;
        }
    }
}

fn write_loop(
    mut catalog: Catalog,
    mut keys: AuditKeys,
    reload: Reload,
    hasher: &ArcSwap<AuditHasher>,
    frames: &AtomicI64,
    mut rx: mpsc::Receiver<Message>,
) {
    let mut batch = Vec::with_capacity(BATCH);
    let mut waiting = Vec::new();
    while let Some(first) = rx.blocking_recv() {
        // Everything queued while the last commit ran goes into this one.
        let mut next = Some(first);
        while let Some(message) = next.take() {
            batch.extend(message.entries);
            waiting.push(message.done);
            if batch.len() < BATCH {
                next = rx.try_recv().ok();
            }
        }
        let written = if batch.is_empty() {
            Written::Committed
        } else {
            append_with_retries(&mut catalog, &mut keys, &reload, hasher, &batch)
        };
        if written != Written::Committed {
            tracing::error!(
                lost = batch.len(),
                "audit entries could not be written; their requests answer 503"
            );
        }
        batch.clear();
        for done in waiting.drain(..) {
            let _ = done.send(written);
        }
        if frames.load(Ordering::Relaxed) > WAL_CAP {
            // Alone, with every waiting search answered: the log restarts at
            // the next commit.
            if let Err(e) = catalog.checkpoint() {
                tracing::warn!(error = %e, "checkpointing the catalog failed");
            }
            frames.store(0, Ordering::Relaxed);
        }
    }
}

/// A busy or briefly failing catalog gets a few chances before entries are
/// refused; a chain moved on to a new audit key gets the key ring read again.
/// A database that is down gets one: the catalog has tried to connect again
/// for seconds before it says so, and the searches waiting on the batch are
/// better answered 503 now than after several such rounds.
fn append_with_retries(
    catalog: &mut Catalog,
    keys: &mut AuditKeys,
    reload: &Reload,
    hasher: &ArcSwap<AuditHasher>,
    batch: &[AuditEntry],
) -> Written {
    let mut down = false;
    for attempt in 0..5 {
        match catalog.append_audit(batch, keys) {
            Ok(()) => return Written::Committed,
            Err(CatalogError::UnknownAuditKey { id, .. }) => match reload() {
                Some(fresh) if fresh.get(&id).is_some() => {
                    tracing::info!(key = %id, "the audit key was rotated: going on under the new one");
                    hasher.store(Arc::new(fresh.current().hasher()));
                    *keys = fresh;
                }
                _ => {
                    tracing::error!(key = %id, "the audit log is chained under an audit key the key ring lacks");
                    return Written::Failed;
                }
            },
            // A connection lost under the statement is opened again by the
            // next attempt; a connection that could not be opened is the
            // database being down.
            Err(e @ CatalogError::Postgres { .. }) if e.is_unavailable() => {
                tracing::warn!(error = %e, "the catalog's database is unreachable");
                return Written::DatabaseDown;
            }
            Err(e) => {
                down = e.is_unavailable();
                tracing::warn!(error = %e, attempt, "writing the audit log failed");
                std::thread::sleep(Duration::from_millis(50 << attempt));
            }
        }
    }
    if down {
        Written::DatabaseDown
    } else {
        Written::Failed
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_store_and_the_catalog_name_audit_keys_alike() {
        let root = [7u8; 32];
        assert_eq!(
            leakwatch_store::keyring::audit_key_id(&root),
            leakwatch_catalog::AuditKey::from_root(&root).id()
        );
    }
}
