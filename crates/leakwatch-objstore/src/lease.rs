//! The writer lock of a store in a bucket: a lease object, `LOCK`, that
//! excludes a second writer on any machine.
//!
//! Without a compare-and-swap (Garage has none on PUT), a lease is taken by
//! write-then-confirm: a writer that reads no live lease writes its own
//! (a random token, its host and process, an expiry), waits
//! [`LeaseSettings::settle`], and reads the object back. Two writers that both
//! read "free" both write; the later write wins (last writer wins on each key,
//! and reads see the latest write once it is acknowledged by a quorum), so the
//! earlier one reads a stranger's token after its wait and backs off, provided
//! the wait is longer than it takes the other's write to land after its read.
//!
//! The wait and the read back are deferred to the writer's first delete or
//! publish ([`Claim::confirmed`], called before each): an ingest parses,
//! sorts, writes and uploads its segments meanwhile, so the settle time costs
//! it nothing. Uploading needs no confirmed lease, since a segment is put
//! under its content hash: it adds an object, never changes one. A writer
//! that finds a live lease still fails at once; of two that race for a free
//! one, the loser fails at its first delete or publish, having changed
//! nothing any manifest names.
//!
//! While held, the lease is renewed every third of its time to live; a holder
//! that dies leaves it to expire, after which the next writer takes it over
//! (and removes the dead writer's unpublished segments, which no manifest names).

use std::path::PathBuf;
use std::sync::mpsc::{self, RecvTimeoutError};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use leakwatch_store::storage::WriterLock;
use leakwatch_store::{Result, StoreError};
use serde::{Deserialize, Serialize};

use crate::error::{invalid, store_error};
use crate::storage::Remote;

const LOCK: &str = "LOCK";

/// The timing of the writer's lease.
#[derive(Debug, Clone, Copy)]
pub struct LeaseSettings {
    /// How long a lease lasts unless renewed; the time a dead writer blocks
    /// the next.
    pub ttl: Duration,
    /// The wait between writing a lease and reading it back: longer than a
    /// small PUT can take to land (request time plus retries).
    pub settle: Duration,
    /// How far apart the clocks of the writers' machines may be.
    pub skew: Duration,
}

impl Default for LeaseSettings {
    fn default() -> Self {
        LeaseSettings {
            ttl: Duration::from_secs(30),
            settle: Duration::from_secs(2),
            skew: Duration::from_secs(5),
        }
    }
}

#[derive(Debug, Serialize, Deserialize)]
struct Lease {
    token: String,
    /// `host:pid`, for the operator reading the error of a second writer.
    holder: String,
    /// Unix milliseconds.
    expires_ms: u64,
}

/// A random token: a lease's, or a manifest object's.
pub(crate) fn token() -> String {
    let bytes: [u8; 12] = rand::random();
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn now_ms() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis() as u64)
}

fn holder() -> String {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap_or_default();
    format!("{}:{}", host.trim(), std::process::id())
}

fn read(remote: &Remote) -> Result<Option<Lease>> {
    let url = remote.url_of(LOCK);
    match remote.get(LOCK).map_err(|e| store_error(&url, e))? {
        Some(bytes) => {
            serde_json::from_slice(&bytes).map(Some).map_err(|e| invalid(url, format!("lease: {e}")))
        }
        None => Ok(None),
    }
}

fn write(remote: &Remote, lease: &Lease) -> Result<()> {
    let bytes = serde_json::to_vec(lease).expect("a lease serializes");
    remote.put(LOCK, bytes).map_err(|e| store_error(remote.url_of(LOCK), e))
}

fn locked(remote: &Remote, by: Option<&Lease>) -> StoreError {
    let mut path = remote.url.to_string();
    if let Some(lease) = by {
        path.push_str(&format!(" (lease held by {})", lease.holder));
    }
    StoreError::Locked { path: PathBuf::from(path) }
}

/// The lease a storage holds, if any, and whether it is confirmed yet.
#[derive(Debug, Default)]
pub(crate) struct Claim(Mutex<Option<Claimed>>);

#[derive(Debug)]
struct Claimed {
    token: String,
    /// Until confirmed: when the lease may be read back.
    confirm_at: Option<Instant>,
    /// Set when the read back found another writer's lease.
    lost: bool,
}

impl Claim {
    /// The token of the lease held, confirmed or not.
    pub(crate) fn token(&self) -> Option<String> {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).as_ref().map(|c| c.token.clone())
    }

    /// Returns once the lease written by [`acquire`] is confirmed ours (at
    /// once after the first time), or fails when another writer's write
    /// landed after it. Without a lease, there is nothing to confirm.
    pub(crate) fn confirmed(&self, remote: &Remote) -> Result<()> {
        // Held across the wait and the read: racing callers confirm once.
        let mut claim = self.0.lock().unwrap_or_else(|e| e.into_inner());
        let Some(claimed) = claim.as_mut() else { return Ok(()) };
        if claimed.lost {
            return Err(locked(remote, None));
        }
        let Some(at) = claimed.confirm_at else { return Ok(()) };
        std::thread::sleep(at.saturating_duration_since(Instant::now()));
        match read(remote)? {
            Some(lease) if lease.token == claimed.token => {
                claimed.confirm_at = None;
                Ok(())
            }
            other => {
                claimed.lost = true;
                Err(locked(remote, other.as_ref()))
            }
        }
    }
}

/// Takes the lease, or fails at once when another writer holds it. The
/// lease is confirmed by the first [`Claim::confirmed`].
pub(crate) fn acquire(
    remote: &Arc<Remote>,
    settings: &LeaseSettings,
    held: &Arc<Claim>,
) -> Result<WriterLock> {
    if held.token().is_some() {
        return Err(locked(remote, None));
    }
    let skew = settings.skew.as_millis() as u64;
    if let Some(lease) = read(remote)? {
        if lease.expires_ms + skew > now_ms() {
            return Err(locked(remote, Some(&lease)));
        }
    }
    let mine =
        Lease { token: token(), holder: holder(), expires_ms: now_ms() + settings.ttl.as_millis() as u64 };
    write(remote, &mine)?;
    *held.0.lock().unwrap_or_else(|e| e.into_inner()) = Some(Claimed {
        token: mine.token.clone(),
        confirm_at: Some(Instant::now() + settings.settle),
        lost: false,
    });
    let (stop, stopped) = mpsc::channel::<()>();
    let renewer = {
        let (remote, settings) = (Arc::clone(remote), *settings);
        let mut lease = mine;
        std::thread::Builder::new()
            .name("leakwatch-lease".into())
            .spawn(move || loop {
                match stopped.recv_timeout(settings.ttl / 3) {
                    Err(RecvTimeoutError::Timeout) => {}
                    _ => return,
                }
                match read(&remote) {
                    Ok(Some(now)) if now.token == lease.token => {
                        lease.expires_ms = now_ms() + settings.ttl.as_millis() as u64;
                        // A failed renewal is tried again in a third of the
                        // time to live; the publish check catches a lease
                        // that ran out meanwhile.
                        let _ = write(&remote, &lease);
                    }
                    // Taken over after it ran out: the publish check refuses.
                    Ok(_) => return,
                    Err(_) => {}
                }
            })
            .map_err(|e| crate::error::local("leakwatch-lease thread", e))?
    };
    Ok(WriterLock::new(Box::new(Held {
        remote: Arc::clone(remote),
        held: Arc::clone(held),
        stop: Some(stop),
        renewer: Some(renewer),
    })))
}

/// A held lease: renewed until dropped, then released.
struct Held {
    remote: Arc<Remote>,
    held: Arc<Claim>,
    stop: Option<mpsc::Sender<()>>,
    renewer: Option<std::thread::JoinHandle<()>>,
}

impl Drop for Held {
    fn drop(&mut self) {
        drop(self.stop.take());
        if let Some(renewer) = self.renewer.take() {
            let _ = renewer.join();
        }
        let token = self.held.0.lock().unwrap_or_else(|e| e.into_inner()).take().map(|c| c.token);
        // Released only if still ours; a release that fails leaves the lease
        // to expire.
        if let (Some(token), Ok(Some(lease))) = (token, read(&self.remote)) {
            if lease.token == token {
                let _ = self.remote.delete(LOCK);
            }
        }
    }
}

/// Whether a publish may go ahead: the lease `held` (this storage's token)
/// is still ours with a third of its time to live left, or, for a caller
/// that holds none, no other writer holds one.
pub(crate) fn check_for_publish(remote: &Remote, settings: &LeaseSettings, held: Option<&str>) -> Result<()> {
    let lease = read(remote)?;
    let now = now_ms();
    match (held, lease) {
        (Some(token), Some(lease)) if lease.token == token => {
            if lease.expires_ms < now + settings.ttl.as_millis() as u64 / 3 {
                return Err(StoreError::Invalid(format!(
                    "{}: the writer's lease runs out before the publish could be confirmed; nothing was published",
                    remote.url
                )));
            }
            Ok(())
        }
        (Some(_), other) => Err(StoreError::Invalid(format!(
            "{}: the writer's lease was lost ({}); nothing was published",
            remote.url,
            other.map_or("released".to_owned(), |l| format!("taken over by {}", l.holder))
        ))),
        (None, Some(lease)) if lease.expires_ms + settings.skew.as_millis() as u64 > now => {
            Err(locked(remote, Some(&lease)))
        }
        (None, _) => Ok(()),
    }
}
