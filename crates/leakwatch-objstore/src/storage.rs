//! [`ObjectStorage`]: the [`Storage`] of a store kept in an S3 bucket (see
//! the crate's documentation for the layout and why it is safe without
//! conditional puts).

use std::fmt;
use std::future::Future;
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use futures_util::TryStreamExt;
use leakwatch_segment::{Segment, SegmentError};
use leakwatch_store::storage::{Pending, Storage, Version, WriterLock};
use leakwatch_store::{Result, StoreError};
use object_store::aws::{AmazonS3Builder, AmazonS3ConfigKey};
use object_store::path::Path as Key;
use object_store::{
    ClientOptions, GetOptions, GetRange, ObjectStore, ObjectStoreExt, PutPayload, RetryConfig,
};

use crate::cache::{segment_key, Cache};
use crate::error::{invalid, local, store_error, to_io};
use crate::lease::{self, LeaseSettings};

/// Manifests kept below the one in force, for readers that listed a
/// generation just before a publish and read it just after.
const KEEP_MANIFESTS: u64 = 8;

/// Segments at least this large are uploaded in parts of this size.
const PART: usize = 16 << 20;

/// Parts of one segment uploaded at a time.
const PARTS_IN_FLIGHT: usize = 4;

/// `s3://BUCKET/PREFIX`, as `--data` takes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct S3Url {
    pub bucket: String,
    /// Without leading or trailing `/`; empty for the bucket's root.
    pub prefix: String,
}

impl S3Url {
    /// Parses `s3://BUCKET[/PREFIX]`; `None` for anything else (a local path).
    pub fn parse(text: &str) -> Option<std::result::Result<S3Url, String>> {
        let rest = text.strip_prefix("s3://")?;
        let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
        if bucket.is_empty() {
            return Some(Err(format!("{text}: no bucket (expected s3://BUCKET/PREFIX)")));
        }
        Some(Ok(S3Url { bucket: bucket.to_owned(), prefix: prefix.trim_matches('/').to_owned() }))
    }
}

impl fmt::Display for S3Url {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.prefix.as_str() {
            "" => write!(f, "s3://{}", self.bucket),
            prefix => write!(f, "s3://{}/{prefix}", self.bucket),
        }
    }
}

/// How to reach the object store: the usual `AWS_*` variables, or given.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct S3Config {
    /// `AWS_ENDPOINT_URL`: the S3 endpoint (Garage's `s3_api.api_bind_addr`).
    pub endpoint: Option<String>,
    /// `AWS_REGION`: the region the endpoint expects (Garage's `s3_region`).
    pub region: Option<String>,
    pub access_key_id: Option<String>,
    pub secret_access_key: Option<String>,
    /// `AWS_ALLOW_HTTP`: whether a plain-HTTP endpoint is allowed.
    pub allow_http: bool,
}

impl fmt::Debug for S3Config {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The secret stays out of logs and error messages.
        f.debug_struct("S3Config")
            .field("endpoint", &self.endpoint)
            .field("region", &self.region)
            .field("access_key_id", &self.access_key_id)
            .finish_non_exhaustive()
    }
}

impl S3Config {
    /// From `AWS_ENDPOINT_URL`, `AWS_REGION`, `AWS_ACCESS_KEY_ID`,
    /// `AWS_SECRET_ACCESS_KEY` and `AWS_ALLOW_HTTP`.
    pub fn from_env() -> S3Config {
        let var = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
        S3Config {
            endpoint: var("AWS_ENDPOINT_URL").or_else(|| var("AWS_ENDPOINT")),
            region: var("AWS_REGION").or_else(|| var("AWS_DEFAULT_REGION")),
            access_key_id: var("AWS_ACCESS_KEY_ID"),
            secret_access_key: var("AWS_SECRET_ACCESS_KEY"),
            allow_http: var("AWS_ALLOW_HTTP")
                .is_some_and(|v| matches!(v.as_str(), "1" | "true" | "TRUE" | "yes")),
        }
    }
}

/// The local side of an object-storage store.
#[derive(Debug, Clone)]
pub struct Options {
    /// `--cache-dir`: segment bytes, and the store's local scratch.
    pub cache_dir: PathBuf,
    /// `--cache-size`: the bound of the segment bytes kept.
    pub cache_size: u64,
    pub lease: LeaseSettings,
}

/// Requests made, for the benchmarks and tests that count them.
#[derive(Debug, Default)]
pub struct Counters {
    pub gets: AtomicU64,
    pub get_bytes: AtomicU64,
    /// Wall time spent in ranged GETs, from the request to the last byte.
    pub get_nanos: AtomicU64,
    pub puts: AtomicU64,
    pub lists: AtomicU64,
    pub deletes: AtomicU64,
}

/// The bucket, the runtime its client runs on, and the request counters:
/// what the storage, its cache files and its lease share.
pub(crate) struct Remote {
    pub store: Arc<dyn ObjectStore>,
    pub url: S3Url,
    /// How the bucket was reached: how other buckets of the same endpoint
    /// are (inputs of an ingest given as `s3://` URLs).
    pub config: S3Config,
    pub counters: Arc<Counters>,
    runtime: Option<tokio::runtime::Runtime>,
}

impl fmt::Debug for Remote {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Remote").field("url", &self.url.to_string()).finish()
    }
}

impl Drop for Remote {
    fn drop(&mut self) {
        // Dropping a runtime blocks, which a caller on another runtime's
        // thread (the server's) may not do.
        if let Some(rt) = self.runtime.take() {
            rt.shutdown_background();
        }
    }
}

impl Remote {
    /// A client of the bucket of `url`, its keys under the url's prefix.
    pub fn connect(url: &S3Url, config: &S3Config) -> Result<Remote> {
        install_tls_provider();
        let mut builder = AmazonS3Builder::new()
            .with_bucket_name(&url.bucket)
            .with_allow_http(config.allow_http)
            .with_region(config.region.as_deref().unwrap_or("us-east-1"))
            .with_client_options(
                ClientOptions::new()
                    .with_allow_http(config.allow_http)
                    .with_timeout(Duration::from_secs(60))
                    .with_connect_timeout(Duration::from_secs(5)),
            )
            .with_retry(RetryConfig {
                max_retries: 4,
                retry_timeout: Duration::from_secs(30),
                ..RetryConfig::default()
            });
        if let Some(endpoint) = &config.endpoint {
            builder = builder.with_endpoint(endpoint);
        }
        if let (Some(id), Some(secret)) = (&config.access_key_id, &config.secret_access_key) {
            builder = builder.with_access_key_id(id).with_secret_access_key(secret);
        }
        if let Ok(token) = std::env::var("AWS_SESSION_TOKEN") {
            builder = builder.with_config(AmazonS3ConfigKey::Token, token);
        }
        let store = builder.build().map_err(|e| store_error(url.to_string(), e))?;
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("leakwatch-s3")
            .enable_all()
            .build()
            .map_err(|e| local(url.to_string(), e))?;
        Ok(Remote {
            store: Arc::new(store),
            url: url.clone(),
            config: config.clone(),
            counters: Arc::default(),
            runtime: Some(runtime),
        })
    }

    /// Runs `f` on the storage's own runtime and waits for it: callable from
    /// any thread, a runtime's worker included.
    pub fn block<T: Send + 'static>(&self, f: impl Future<Output = T> + Send + 'static) -> T {
        let (tx, rx) = std::sync::mpsc::sync_channel(1);
        self.runtime.as_ref().expect("the runtime lives as long as the storage").spawn(async move {
            // The receiver waits until this is sent.
            let _ = tx.send(f.await);
        });
        rx.recv().expect("the storage runtime finished a request it was given")
    }

    /// The key of `rel` under the prefix.
    pub fn key(&self, rel: &str) -> Key {
        match self.url.prefix.as_str() {
            "" => Key::from(rel),
            prefix => Key::from(format!("{prefix}/{rel}")),
        }
    }

    /// Uploads the local file `from` as object `rel`: in one PUT when small,
    /// else in parts of `PART` bytes, `PARTS_IN_FLIGHT` at a time.
    pub fn put_file(&self, from: &Path, rel: &str) -> Result<()> {
        let file = std::fs::File::open(from).map_err(|e| local(from, e))?;
        self.put_reader(Box::new(file), rel)
    }

    /// Uploads what `from` reads as object `rel`: in one PUT when it is
    /// smaller than a part, else in parts of `PART` bytes, `PARTS_IN_FLIGHT`
    /// at a time, the next part read (and made, by a reader that compresses)
    /// while the others are sent.
    pub fn put_reader(&self, mut from: Box<dyn std::io::Read + Send>, rel: &str) -> Result<()> {
        let url = self.url_of(rel);
        let (store, key) = (Arc::clone(&self.store), self.key(rel));
        self.counters.puts.fetch_add(1, Ordering::Relaxed);
        self.block(async move {
            let io = |e: std::io::Error| object_store::Error::Generic { store: "local", source: Box::new(e) };
            // A part's worth, or all there is.
            let fill = |from: &mut Box<dyn std::io::Read + Send>, buf: &mut Vec<u8>| -> std::io::Result<()> {
                buf.clear();
                use std::io::Read;
                from.by_ref().take(PART as u64).read_to_end(buf).map(drop)
            };
            let mut buf = Vec::with_capacity(PART);
            fill(&mut from, &mut buf).map_err(io)?;
            if buf.len() < PART {
                return store.put(&key, PutPayload::from(buf)).await.map(drop);
            }
            let upload = store.put_multipart(&key).await?;
            let mut writer = object_store::WriteMultipart::new_with_chunk_size(upload, PART);
            while !buf.is_empty() {
                writer.wait_for_capacity(PARTS_IN_FLIGHT).await?;
                writer.write(&buf);
                fill(&mut from, &mut buf).map_err(io)?;
            }
            writer.finish().await.map(drop)
        })
        .map_err(|e| store_error(url, e))
    }

    /// `rel` as a URL, for messages.
    pub fn url_of(&self, rel: &str) -> PathBuf {
        PathBuf::from(format!("{}/{rel}", self.url))
    }

    /// Bytes `range` of object `rel` (fewer at its end), and its length.
    pub fn get_range(&self, rel: &str, range: Range<u64>) -> std::io::Result<(Bytes, u64)> {
        let (store, key) = (Arc::clone(&self.store), self.key(rel));
        self.counters.gets.fetch_add(1, Ordering::Relaxed);
        let start = std::time::Instant::now();
        let (bytes, size) = self
            .block(async move {
                let options = GetOptions { range: Some(GetRange::Bounded(range)), ..GetOptions::default() };
                let result = store.get_opts(&key, options).await?;
                let size = result.meta.size;
                Ok::<_, object_store::Error>((result.bytes().await?, size))
            })
            .map_err(to_io)?;
        self.counters.get_nanos.fetch_add(start.elapsed().as_nanos() as u64, Ordering::Relaxed);
        self.counters.get_bytes.fetch_add(bytes.len() as u64, Ordering::Relaxed);
        Ok((bytes, size))
    }

    /// The whole of object `rel`, `None` when there is none.
    pub fn get(&self, rel: &str) -> std::result::Result<Option<Bytes>, object_store::Error> {
        let (store, key) = (Arc::clone(&self.store), self.key(rel));
        self.counters.gets.fetch_add(1, Ordering::Relaxed);
        let got = self.block(async move {
            match store.get(&key).await {
                Ok(result) => result.bytes().await.map(Some),
                Err(object_store::Error::NotFound { .. }) => Ok(None),
                Err(e) => Err(e),
            }
        })?;
        if let Some(bytes) = &got {
            self.counters.get_bytes.fetch_add(bytes.len() as u64, Ordering::Relaxed);
        }
        Ok(got)
    }

    pub fn put(&self, rel: &str, bytes: Vec<u8>) -> std::result::Result<(), object_store::Error> {
        let (store, key) = (Arc::clone(&self.store), self.key(rel));
        self.counters.puts.fetch_add(1, Ordering::Relaxed);
        self.block(async move { store.put(&key, PutPayload::from(bytes)).await.map(drop) })
    }

    pub fn delete(&self, rel: &str) -> std::result::Result<(), object_store::Error> {
        let (store, key) = (Arc::clone(&self.store), self.key(rel));
        self.counters.deletes.fetch_add(1, Ordering::Relaxed);
        self.block(async move { store.delete(&key).await })
    }

    /// The names of the objects under `dir/`, with nothing below them.
    pub fn list(&self, dir: &str) -> std::result::Result<Vec<String>, object_store::Error> {
        let (store, key) = (Arc::clone(&self.store), self.key(dir));
        self.counters.lists.fetch_add(1, Ordering::Relaxed);
        self.block(async move {
            let metas: Vec<_> = store.list(Some(&key)).try_collect().await?;
            let depth = key.parts().count() + 1;
            Ok(metas
                .into_iter()
                .filter(|m| m.location.parts().count() == depth)
                .filter_map(|m| m.location.filename().map(str::to_owned))
                .collect())
        })
    }
}

/// Whether staged file `name` (`KIND-PID-SERIAL.N.building`, as the
/// transaction layer names them) is being built by another process that
/// still runs.
fn built_elsewhere(name: &str) -> bool {
    let pid = name.rsplit('-').nth(1).and_then(|pid| pid.parse::<u32>().ok());
    pid.is_some_and(|pid| pid != std::process::id() && Path::new("/proc").join(pid.to_string()).exists())
}

/// Makes ring the process's TLS provider, which reqwest's rustls takes (as
/// everywhere in leakwatch; its classic key exchanges suit an S3 endpoint).
/// Installed already is as good.
pub fn install_tls_provider() {
    #[allow(deprecated)]
    let _ = rustls::crypto::ring::default_provider().install_default();
}

/// A store in an S3 bucket, under a prefix.
#[derive(Debug, Clone)]
pub struct ObjectStorage {
    remote: Arc<Remote>,
    cache: Arc<Cache>,
    /// The store's local scratch: staging of new segments, sorted runs.
    local: PathBuf,
    lease: LeaseSettings,
    /// The lease this storage holds, while it holds one.
    held: Arc<lease::Claim>,
    /// The manifest this storage published last: (generation, object name,
    /// bytes). A bucket's listing may lag a moment behind its writes (Garage's
    /// does behind deletes), and a writer must never build on an older
    /// generation than its own.
    published: Arc<Mutex<Option<Published>>>,
    /// Segments being uploaded, by name.
    uploads: Arc<Mutex<Vec<(String, Upload)>>>,
}

/// A segment's upload, running on a thread of its own.
type Upload = std::thread::JoinHandle<Result<()>>;

/// A manifest this storage published: generation, object name, bytes.
type Published = (u64, String, Vec<u8>);

impl ObjectStorage {
    /// The store at `url`, reached as `config` says, cached as `options` say.
    pub fn open(url: &S3Url, config: &S3Config, options: Options) -> Result<ObjectStorage> {
        let remote = Arc::new(Remote::connect(url, config)?);
        let cache = Arc::new(Cache::new(&options.cache_dir.join("segments"), options.cache_size)?);
        let id = blake3::hash(url.to_string().as_bytes()).to_hex();
        let local_root = options.cache_dir.join("stores").join(&id[..16]);
        let staging = local_root.join("staging");
        std::fs::create_dir_all(&staging).map_err(|e| local(&staging, e))?;
        Ok(ObjectStorage {
            remote,
            cache,
            local: local_root,
            lease: options.lease,
            held: Arc::default(),
            published: Arc::default(),
            uploads: Arc::default(),
        })
    }

    /// Where the store keeps its local scratch: the root of its `DataDir`.
    pub fn local_root(&self) -> &Path {
        &self.local
    }

    /// The requests made so far.
    pub fn counters(&self) -> Arc<Counters> {
        Arc::clone(&self.remote.counters)
    }

    pub fn url(&self) -> &S3Url {
        &self.remote.url
    }

    /// Uploads the finished file `staged` as segment `name`, then makes it
    /// the segment's cache file: a writer reads its new segments from local
    /// bytes, never downloading what it has just uploaded.
    fn upload(&self, staged: &Path, name: &str) -> Result<()> {
        self.remote.put_file(staged, &segment_key(name))?;
        self.cache.adopt(staged, name)
    }

    /// Waits for the uploads under way whose names `which` picks, and
    /// returns the first error of any of them.
    fn wait_for_uploads(&self, which: impl Fn(&str) -> bool) -> Result<()> {
        let picked: Vec<(String, Upload)> = {
            let mut uploads = self.uploads.lock().unwrap_or_else(|e| e.into_inner());
            let (picked, rest) = std::mem::take(&mut *uploads).into_iter().partition(|(n, _)| which(n));
            *uploads = rest;
            picked
        };
        let mut first = Ok(());
        for (name, upload) in picked {
            let done = upload.join().unwrap_or_else(|_| {
                Err(StoreError::Invalid(format!(
                    "{}: the upload's thread panicked",
                    self.object_path(&name).display()
                )))
            });
            if first.is_ok() {
                first = done;
            }
        }
        first
    }

    /// Waits until the lease this storage took, if any, is confirmed ours,
    /// or fails when another writer's is in force: done before every delete
    /// and publish (see [`lease`]).
    pub fn confirm_lease(&self) -> Result<()> {
        self.held.confirmed(&self.remote)
    }

    /// The manifests in the bucket: (generation, object name), in order.
    fn manifests(&self) -> Result<Vec<(u64, String)>> {
        let names = self.remote.list("manifest").map_err(|e| store_error(self.manifest_path(), e))?;
        let mut all = Vec::with_capacity(names.len());
        for name in names {
            let seq = name.split_once('-').and_then(|(seq, _)| seq.parse::<u64>().ok());
            match seq {
                Some(seq) => all.push((seq, name)),
                None => {
                    return Err(invalid(
                        self.manifest_path(),
                        format!("manifest object {name:?} has no generation"),
                    ))
                }
            }
        }
        all.sort();
        Ok(all)
    }

    /// The manifest in force: the highest generation; of two objects of one
    /// generation (two writers whose leases overlapped), the first by name,
    /// the same for every reader.
    fn current(&self) -> Result<Option<(u64, String)>> {
        let all = self.manifests()?;
        let Some(top) = all.last().map(|(seq, _)| *seq) else { return Ok(None) };
        Ok(all.into_iter().find(|(seq, _)| *seq == top))
    }

    /// The manifest in force and its generation.
    fn load(&self) -> Result<Option<(u64, Vec<u8>)>> {
        let own = self.published.lock().unwrap_or_else(|e| e.into_inner()).clone();
        // A publish deletes manifests some generations old; a reader that
        // listed just before reads again.
        for _ in 0..5 {
            let listed = self.current()?;
            if let Some((seq, name, bytes)) = &own {
                // The listing may lag behind this storage's publish; when it
                // has caught up, the bytes are these, without a GET.
                if listed.as_ref().is_none_or(|(s, n)| (s, n) <= (seq, name)) {
                    return Ok(Some((*seq, bytes.clone())));
                }
            }
            let Some((seq, name)) = listed else { return Ok(None) };
            let rel = format!("manifest/{name}");
            match self.remote.get(&rel).map_err(|e| store_error(self.remote.url_of(&rel), e))? {
                Some(bytes) => return Ok(Some((seq, bytes.to_vec()))),
                None => continue,
            }
        }
        Err(StoreError::Invalid(format!(
            "{}: the manifest keeps changing under the reader",
            self.manifest_path().display()
        )))
    }
}

impl Storage for ObjectStorage {
    fn blobs(&self) -> Option<Box<dyn leakwatch_store::storage::blobs::Blobs>> {
        Some(Box::new(crate::blobs::BucketBlobs { remote: Arc::clone(&self.remote) }))
    }

    fn staging(&self) -> PathBuf {
        // In the cache directory, so that a finished segment becomes its own
        // cache file by a rename.
        self.local.join("staging")
    }

    fn put(&self, staged: &Path, name: &str) -> Result<Pending> {
        // Uploaded on a thread of its own while the writer goes on with its
        // next segment; `persist` waits for it, as for a local disk's sync.
        // No confirmed lease is needed: an object is put under its content
        // hash, so a writer that turns out to have lost the lease adds an
        // object no manifest names (an orphan the next writer removes), and
        // never changes one.
        let this = self.clone();
        let (staged, owned) = (staged.to_owned(), name.to_owned());
        let upload = std::thread::Builder::new()
            .name("leakwatch-upload".into())
            .spawn(move || this.upload(&staged, &owned))
            .map_err(|e| local("leakwatch-upload thread", e))?;
        self.uploads.lock().unwrap_or_else(|e| e.into_inner()).push((name.to_owned(), upload));
        // The storage keeps its uploads: `persist` waits for every one.
        Ok(Pending::durable())
    }

    fn persist(&self, _pending: Vec<Pending>) -> Result<()> {
        self.wait_for_uploads(|_| true)
    }

    fn open_segment(&self, name: &str) -> Result<Segment, SegmentError> {
        self.wait_for_uploads(|n| n == name).map_err(|e| SegmentError::Io {
            path: self.object_path(name),
            source: std::io::Error::other(e.to_string()),
        })?;
        self.cache.open(&self.remote, name)
    }

    fn read(&self, name: &str, range: Option<Range<u64>>) -> Result<Vec<u8>> {
        self.wait_for_uploads(|n| n == name)?;
        let rel = segment_key(name);
        let url = self.remote.url_of(&rel);
        match range {
            Some(range) if range.is_empty() => Ok(Vec::new()),
            Some(range) => {
                let (bytes, _) = self.remote.get_range(&rel, range).map_err(|e| local(url, e))?;
                Ok(bytes.to_vec())
            }
            None => match self.remote.get(&rel).map_err(|e| store_error(&url, e))? {
                Some(bytes) => Ok(bytes.to_vec()),
                None => Err(local(&url, std::io::Error::new(std::io::ErrorKind::NotFound, "no such object"))),
            },
        }
    }

    /// The segment objects. A listing may still name an object deleted a
    /// moment before (Garage lists from a read quorum of replicas, and one
    /// the delete has not reached yet still names it); it never misses one
    /// whose put returned. Callers that delete what they list treat a
    /// missing object as deleted already (`DataDir::remove_orphans`).
    fn list(&self) -> Result<Vec<String>> {
        self.remote.list("segments").map_err(|e| store_error(self.remote.url_of("segments"), e))
    }

    fn delete(&self, name: &str) -> Result<()> {
        self.confirm_lease()?;
        let rel = segment_key(name);
        let url = self.remote.url_of(&rel);
        // S3 deletes a missing object without complaint; the contract wants
        // the error a missing file gives.
        let (store, key) = (Arc::clone(&self.remote.store), self.remote.key(&rel));
        self.remote
            .block(async move { store.head(&key).await.map(drop) })
            .map_err(|e| store_error(&url, e))?;
        self.remote.delete(&rel).map_err(|e| store_error(&url, e))?;
        self.cache.forget(name);
        Ok(())
    }

    fn object_path(&self, name: &str) -> PathBuf {
        self.remote.url_of(&segment_key(name))
    }

    fn manifest_path(&self) -> PathBuf {
        self.remote.url_of("manifest")
    }

    fn location(&self) -> Option<String> {
        Some(self.remote.url.to_string())
    }

    fn has_manifest(&self) -> bool {
        // Unknown (the bucket did not answer) counts as a store, so that the
        // read that follows reports why, rather than "no store here".
        self.manifests().map_or(true, |all| !all.is_empty())
    }

    fn load_manifest(&self) -> Result<Option<(Vec<u8>, Version)>> {
        Ok(self.load()?.map(|(_, bytes)| {
            let version = Version::of(Some(&bytes));
            (bytes, version)
        }))
    }

    fn publish_manifest(&self, bytes: &[u8], expected: Option<&Version>) -> Result<Version> {
        self.confirm_lease()?;
        lease::check_for_publish(&self.remote, &self.lease, self.held.token().as_deref())?;
        let current = self.load()?;
        if let Some(expected) = expected {
            if Version::of(current.as_ref().map(|(_, b)| b.as_slice())) != *expected {
                return Err(StoreError::Conflict { path: self.manifest_path() });
            }
        }
        let seq = current.map_or(1, |(seq, _)| seq + 1);
        let name = format!("{seq:020}-{}", lease::token());
        let rel = format!("manifest/{name}");
        self.remote.put(&rel, bytes.to_vec()).map_err(|e| store_error(self.remote.url_of(&rel), e))?;
        // Two writers publishing one generation means their leases overlapped
        // (a clock or a stall beyond the assumptions): the first by name is in
        // force for every reader, and the other writer is told it lost.
        // Until the listing shows it (a moment at most), this storage reads
        // its own publish from memory.
        *self.published.lock().unwrap_or_else(|e| e.into_inner()) = Some((seq, name.clone(), bytes.to_vec()));
        let all = self.manifests()?;
        if all.iter().find(|(s, _)| *s == seq).is_some_and(|(_, first)| *first != name) {
            return Err(StoreError::Conflict { path: self.manifest_path() });
        }
        for (old, old_name) in all {
            if old + KEEP_MANIFESTS <= seq {
                // Left for the next publish when it fails: old manifests are
                // only space.
                let _ = self.remote.delete(&format!("manifest/{old_name}"));
            }
        }
        Ok(Version::of(Some(bytes)))
    }

    fn lock(&self) -> Result<WriterLock> {
        // Uploads an earlier write of this storage that failed left under
        // way end first; their errors were that write's.
        let _ = self.wait_for_uploads(|_| true);
        let lock = lease::acquire(&self.remote, &self.lease, &self.held)?;
        // What a killed or failed writer of this store left half built here.
        // The lease is not confirmed yet, so a writer racing for it may be
        // building here too: its files stay.
        if let Ok(entries) = std::fs::read_dir(self.staging()) {
            for entry in entries.flatten() {
                if !built_elsewhere(&entry.file_name().to_string_lossy()) {
                    let _ = std::fs::remove_file(entry.path());
                }
            }
        }
        Ok(lock)
    }
}
