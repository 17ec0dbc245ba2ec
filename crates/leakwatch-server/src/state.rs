//! What every handler shares: the current snapshot of the index, the key table,
//! the rate limiter and the audit sink, and how the first two follow changes on
//! disk while the server runs.
//!
//! A snapshot is one manifest generation, opened once and swapped in whole
//! (`ArcSwap`): a request loads the pointer once and answers from that
//! generation to the end, even if an ingest publishes the next one meanwhile, so
//! no request ever mixes two generations or fails while they switch. Segments a
//! compaction deletes stay readable through the old snapshot's mmaps until its
//! last request drops it.

use std::collections::HashMap;
use std::os::unix::fs::MetadataExt;
use std::sync::{Arc, Mutex};
use std::time::{SystemTime, UNIX_EPOCH};

use arc_swap::ArcSwap;
use axum::http::HeaderValue;
use leakwatch_catalog::{ApiKey, Catalog, CatalogError, CatalogLocation, KeyHash, SubjectKind};
use leakwatch_store::{DataDir, RangeIndex, RangeSource, Store, StoreError, DEFAULT_RANGE_CACHE};

use crate::audit::{AuditSink, AuditWriter};
use crate::limiter::{ClusterSync, Limiter};
use crate::pool::{CatalogPool, Pooled};

/// Who sees the organization's own dumps on `/range` (`serve
/// --range-own-dumps`). The imported Pwned Passwords are everyone's.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum RangeOwnDumps {
    /// Everyone: every own-dump password's digest and count is served to
    /// anyone who can reach the port (k-anonymous, as HIBP's corpus is).
    #[default]
    Anonymous,
    /// Callers with a valid API key (`hibp-api-key`); others get the Pwned
    /// Passwords alone, and a present but wrong key is refused (401).
    Key,
    /// Nobody: `/range` serves the Pwned Passwords alone.
    Off,
}

impl RangeOwnDumps {
    /// Whose counts a caller gets: `keyed` is whether it presented a valid key.
    pub fn source(self, keyed: bool) -> RangeSource {
        match self {
            RangeOwnDumps::Anonymous => RangeSource::All,
            RangeOwnDumps::Key if keyed => RangeSource::All,
            RangeOwnDumps::Key | RangeOwnDumps::Off => RangeSource::PwnedPasswords,
        }
    }
}

/// Rate limits, in requests per minute (0 means no limit), the memory the
/// range cache may hold, who sees the own dumps on `/range`, and the
/// catalog connections the dashboard may hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// For keys created without a limit of their own.
    pub key_per_minute: u32,
    /// For anonymous callers, per client address (the Pwned Passwords range is
    /// not limited, as at HIBP).
    pub anonymous_per_minute: u32,
    /// Bytes of formatted `/range` bodies kept per generation (0: none).
    pub range_cache_bytes: usize,
    /// Whether `/range` adds the own dumps' counts to the Pwned Passwords', and
    /// for whom.
    pub range_own_dumps: RangeOwnDumps,
    /// Wrong API keys a client address group may present a minute before its
    /// requests with a key are refused (429) without the key being looked at.
    pub failed_keys_per_minute: u32,
    /// Catalog connections the dashboard's views share ([`CatalogPool`]).
    pub catalog_pool: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            key_per_minute: 600,
            anonymous_per_minute: 600,
            range_cache_bytes: DEFAULT_RANGE_CACHE,
            range_own_dumps: RangeOwnDumps::Anonymous,
            failed_keys_per_minute: 10,
            catalog_pool: crate::pool::default_size(),
        }
    }
}

/// One generation of the index, open for every kind of lookup.
pub struct Snapshot {
    pub store: Store,
    pub ranges: RangeIndex,
    /// `Last-Modified` of every range: when this generation was published.
    pub last_modified: HeaderValue,
}

impl Snapshot {
    /// Opens the current generation. The store and the range index each read
    /// the manifest; if an ingest published between the two reads, read again.
    /// `range_cache_bytes` bounds the cache of formatted ranges.
    pub fn open(dir: &DataDir, range_cache_bytes: usize) -> Result<Snapshot, StoreError> {
        for _ in 0..10 {
            // An object store's generation is dated when this server first
            // opens it.
            let published = manifest_stamp(dir)
                .map(|s| s.modified)
                .filter(|m| *m != UNIX_EPOCH)
                .unwrap_or_else(std::time::SystemTime::now);
            let ranges = RangeIndex::open_with_cache(dir, range_cache_bytes)?;
            let store = Store::open(dir)?;
            if store.generation() == ranges.generation() {
                let last_modified = HeaderValue::try_from(httpdate::fmt_http_date(published))
                    .expect("an HTTP date is a valid header value");
                return Ok(Snapshot { store, ranges, last_modified });
            }
        }
        Err(StoreError::Invalid(format!(
            "{}: the index changed ten times while being opened; try again",
            dir.root().display()
        )))
    }

    pub fn generation(&self) -> u64 {
        self.store.generation()
    }
}

/// What identifies one version of the manifest file: it is replaced by rename,
/// so a new version has a new inode, and usually a new time and length too.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct FileStamp {
    inode: u64,
    len: u64,
    modified: SystemTime,
}

fn manifest_stamp(dir: &DataDir) -> Option<FileStamp> {
    if dir.storage().location().is_some() {
        // A manifest in an object store has no inode or time of its own here:
        // the hash of its bytes stands for both (each publish is new bytes).
        use std::hash::{Hash, Hasher};
        let (bytes, _) = dir.storage().load_manifest().ok().flatten()?;
        let mut hasher = std::collections::hash_map::DefaultHasher::new();
        bytes.hash(&mut hasher);
        return Some(FileStamp { inode: hasher.finish(), len: bytes.len() as u64, modified: UNIX_EPOCH });
    }
    let meta = std::fs::metadata(dir.root().join("MANIFEST")).ok()?;
    Some(FileStamp { inode: meta.ino(), len: meta.len(), modified: meta.modified().ok()? })
}

/// The active API keys by hash.
#[derive(Debug, Default)]
pub struct KeyTable {
    version: i64,
    by_hash: HashMap<KeyHash, Arc<ApiKey>>,
}

impl KeyTable {
    /// The key whose hash is `hash`; the final comparison is constant-time.
    pub fn find(&self, hash: &KeyHash) -> Option<&Arc<ApiKey>> {
        self.by_hash.get(hash).filter(|k| k.matches(hash))
    }
}

/// The state handlers share. Cheap to clone.
#[derive(Clone)]
pub struct AppState {
    inner: Arc<Shared>,
}

pub(crate) struct Shared {
    data: DataDir,
    catalog_location: CatalogLocation,
    snapshot: ArcSwap<Snapshot>,
    /// The generation served, for whoever follows it (the alert service).
    generation: tokio::sync::watch::Sender<u64>,
    stamp: Mutex<Option<FileStamp>>,
    keys: ArcSwap<KeyTable>,
    catalog: Mutex<Catalog>,
    /// Connections for the views that read the catalog at length.
    pool: CatalogPool,
    pub(crate) limiter: Limiter,
    /// With a shared catalog: the connection and the state that share the
    /// keys' rate limits with the other replicas.
    rate_sync: Option<Mutex<RateSync>>,
    pub(crate) audit: AuditSink,
    pub(crate) limits: Limits,
    /// Signed-in browsers of the web interface.
    pub(crate) sessions: crate::web::session::Sessions,
    /// The dashboard's reset previews, waiting to be applied.
    pub(crate) previews: crate::web::dashboard::Previews,
}

/// The rate-limit exchange's own connection and state.
struct RateSync {
    catalog: Catalog,
    sync: ClusterSync,
    /// When stopped replicas' counters were last pruned.
    pruned: std::time::Instant,
}

/// Why the server could not start.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StartError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Catalog(#[from] CatalogError),
    #[error("{what}: {source}")]
    Io { what: String, source: std::io::Error },
}

impl AppState {
    /// Opens the index and the catalog of `data` and starts the audit writer.
    /// `data` must hold a store (`leakwatch init` makes an empty one).
    pub fn open(data: DataDir, limits: Limits) -> Result<(AppState, AuditWriter), StartError> {
        let catalog = CatalogLocation::in_data_dir(data.root());
        AppState::open_with_catalog(data, catalog, limits)
    }

    /// As [`AppState::open`], with the catalog at `catalog` (a file, or a
    /// PostgreSQL database shared with other servers).
    pub fn open_with_catalog(
        data: DataDir,
        catalog_location: CatalogLocation,
        limits: Limits,
    ) -> Result<(AppState, AuditWriter), StartError> {
        // The audit log's keys come from the key ring, outside the directory:
        // its catalog file alone neither reveals searched addresses nor lets
        // anyone rewrite the chain. (A directory without keys gets them now,
        // one written before key rings is migrated, before the first snapshot.)
        // A directory that holds no store is a mistake to report, not an empty
        // index to serve (nor one to create here).
        data.check_store()?;
        if let Ok(meta) = std::fs::metadata(data.root()) {
            use std::os::unix::fs::PermissionsExt;
            let mode = meta.permissions().mode() & 0o777;
            if mode & 0o077 != 0 {
                tracing::warn!(
                    data = %data.root().display(),
                    mode = format!("{mode:03o}"),
                    "the data directory is open to other users (its catalog holds the audit log): chmod 700 it"
                );
            }
        }
        let audit_keys = crate::audit::audit_keys(&data)?;
        if audit_keys.prefix() == leakwatch_catalog::ChainPrefix::Open {
            tracing::warn!(
                "the audit log's key is this key ring's index key (a ring from an older build): run \
                 `leakwatch rekey --audit` once to give it a key of its own"
            );
        }
        // Every replica holds the audit key: the ids of anonymous address
        // groups' rate-limit buckets in the catalog are alike across them,
        // and no one without the key ring can tell which addresses they are.
        let group_key = blake3::derive_key(
            "leakwatch rate-limit address groups",
            audit_keys.current().hasher().subject(SubjectKind::Nothing, "rate-limit groups").hash.as_bytes(),
        );
        let stamp = manifest_stamp(&data);
        let snapshot = Snapshot::open(&data, limits.range_cache_bytes)?;
        let catalog = Catalog::open_at(&catalog_location)?;
        let ring = data.clone();
        let reload: crate::audit::Reload = Box::new(move || match crate::audit::audit_keys(&ring) {
            Ok(keys) => Some(keys),
            Err(e) => {
                tracing::error!(error = %e, "reading the audit keys again failed");
                None
            }
        });
        let (audit, writer) = AuditSink::start(
            Catalog::open_at(&catalog_location)?,
            Catalog::open_at(&catalog_location)?,
            audit_keys,
            reload,
        )
        .map_err(|source| StartError::Io { what: "starting the audit writer".into(), source })?;
        // Servers sharing a catalog share the web sessions in it; a server
        // with a catalog of its own keeps them in memory, off the disk.
        let sessions = if catalog_location.is_shared() {
            use crate::web::session::{Sessions, IDLE, LIFETIME};
            Sessions::shared(Catalog::open_at(&catalog_location)?, IDLE, LIFETIME)
        } else {
            crate::web::session::Sessions::default()
        };
        let rate_sync = if catalog_location.is_shared() {
            Some(Mutex::new(RateSync {
                catalog: Catalog::open_at(&catalog_location)?,
                sync: ClusterSync::new(leakwatch_catalog::lease_holder_name()),
                pruned: std::time::Instant::now(),
            }))
        } else {
            None
        };
        let limiter = if rate_sync.is_some() { Limiter::clustered(group_key) } else { Limiter::default() };
        let (generation, _) = tokio::sync::watch::channel(snapshot.generation());
        let shared = Shared {
            pool: CatalogPool::new(catalog_location.clone(), limits.catalog_pool),
            data,
            catalog_location,
            generation,
            snapshot: ArcSwap::from_pointee(snapshot),
            stamp: Mutex::new(stamp),
            keys: ArcSwap::from_pointee(KeyTable { version: -1, by_hash: HashMap::new() }),
            catalog: Mutex::new(catalog),
            limiter,
            rate_sync,
            audit,
            limits,
            sessions,
            previews: crate::web::dashboard::Previews::default(),
        };
        let state = AppState { inner: Arc::new(shared) };
        state.reload_keys()?;
        Ok((state, writer))
    }

    pub(crate) fn shared(&self) -> &Shared {
        &self.inner
    }

    /// The data directory served: for what reads the key ring.
    pub(crate) fn data(&self) -> &DataDir {
        &self.inner.data
    }

    /// Where the catalog is: for what opens a connection of its own.
    pub fn catalog_location(&self) -> &CatalogLocation {
        &self.inner.catalog_location
    }

    /// The snapshot a request answers from, to the end.
    pub fn snapshot(&self) -> Arc<Snapshot> {
        self.inner.snapshot.load_full()
    }

    /// Follows the generation served: changes as soon as a new one is
    /// swapped in.
    pub fn generations(&self) -> tokio::sync::watch::Receiver<u64> {
        self.inner.generation.subscribe()
    }

    /// The server's own catalog connection, for a short read. Blocking: hold
    /// it off the async threads.
    pub(crate) fn catalog(&self) -> std::sync::MutexGuard<'_, Catalog> {
        self.inner.catalog.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// A connection of the server's pool, for a view that reads the catalog
    /// at length. Blocking: use it off the async threads.
    pub(crate) fn pooled_catalog(&self) -> Result<Pooled<'_>, CatalogError> {
        self.inner.pool.get()
    }

    pub(crate) fn keys(&self) -> arc_swap::Guard<Arc<KeyTable>> {
        self.inner.keys.load()
    }

    /// Opens the newest generation if the manifest changed since the last look,
    /// and swaps it in. Blocking: call it off the request path. Returns whether
    /// the generation changed.
    pub fn reload_store(&self) -> Result<bool, StoreError> {
        let stamp = manifest_stamp(&self.inner.data);
        let mut last = self.inner.stamp.lock().unwrap_or_else(|e| e.into_inner());
        if *last == stamp {
            return Ok(false);
        }
        let snapshot = Snapshot::open(&self.inner.data, self.inner.limits.range_cache_bytes)?;
        *last = stamp;
        if snapshot.generation() == self.snapshot().generation() {
            return Ok(false);
        }
        tracing::info!(generation = snapshot.generation(), "serving a new generation");
        let generation = snapshot.generation();
        self.inner.snapshot.store(Arc::new(snapshot));
        self.inner.generation.send_replace(generation);
        Ok(true)
    }

    /// Reloads the key table if a key was created or revoked since the last
    /// look. Blocking. Returns whether it changed.
    pub fn reload_keys(&self) -> Result<bool, CatalogError> {
        let catalog = self.inner.catalog.lock().unwrap_or_else(|e| e.into_inner());
        let version = catalog.keys_version()?;
        if version == self.keys().version {
            return Ok(false);
        }
        let by_hash = catalog.active_keys()?.into_iter().map(|k| (k.hash, Arc::new(k))).collect();
        self.inner.keys.store(Arc::new(KeyTable { version, by_hash }));
        Ok(true)
    }

    /// Whether the keys' rate limits are shared with other replicas (a
    /// shared catalog): then [`AppState::share_rate_limits`] must run every
    /// sync interval.
    pub fn shares_rate_limits(&self) -> bool {
        self.inner.rate_sync.is_some()
    }

    /// Reports what the keys spent here since the last call and takes what
    /// they spent at the other replicas from the buckets (one catalog
    /// statement). `interval` is how often it runs: other replicas' rows are
    /// read back over a few of them. Blocking. Usage that could not be
    /// reported goes with the next call.
    pub fn share_rate_limits(&self, interval: std::time::Duration) -> Result<(), CatalogError> {
        let Some(rate_sync) = &self.inner.rate_sync else { return Ok(()) };
        let mut rate_sync = rate_sync.lock().unwrap_or_else(|e| e.into_inner());
        let RateSync { catalog, sync, pruned } = &mut *rate_sync;
        let limiter = &self.inner.limiter;
        let usage = limiter.take_usage();
        // A replica counts as alive while its heartbeat is this recent.
        let recent = (interval * 4).max(std::time::Duration::from_secs(2));
        let rows = match catalog.exchange_rate_usage(&sync.replica, &usage, recent) {
            Ok(rows) => rows,
            Err(e) => {
                limiter.return_usage(&usage);
                return Err(e);
            }
        };
        sync.apply(limiter, &rows, std::time::Instant::now());
        if pruned.elapsed() >= std::time::Duration::from_secs(60) {
            *pruned = std::time::Instant::now();
            catalog.prune_rate_usage()?;
        }
        Ok(())
    }

    /// Waits until every audit entry recorded so far is written.
    pub async fn flush_audit(&self) -> bool {
        self.inner.audit.flush().await
    }
}
