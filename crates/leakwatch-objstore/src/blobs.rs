//! The store's shared area in the bucket (`PREFIX/ingest/`): what a
//! distributed ingest's jobs read and write ([`leakwatch_store::storage::blobs`]).
//! Files stream through in parts, never whole in memory: a staged input can
//! be many gigabytes. Inputs given as `s3://` URLs are read the same way.

use std::path::Path;
use std::sync::atomic::Ordering;
use std::sync::Arc;

use futures_util::StreamExt;
use leakwatch_store::storage::blobs::Blobs;
use leakwatch_store::Result;
use object_store::{GetOptions, ObjectStore};

use crate::error::store_error;
use crate::storage::{Remote, S3Config, S3Url};
use leakwatch_store::StoreError;

/// The shared area under `PREFIX/ingest/`.
#[derive(Debug, Clone)]
pub(crate) struct BucketBlobs {
    pub(crate) remote: Arc<Remote>,
}

fn rel(name: &str) -> String {
    format!("ingest/{name}")
}

impl Blobs for BucketBlobs {
    fn put_stream(&self, from: Box<dyn std::io::Read + Send>, name: &str) -> Result<()> {
        self.remote.put_reader(from, &rel(name))
    }

    fn open(&self, name: &str) -> Result<Box<dyn std::io::Read + Send>> {
        Ok(Box::new(self.remote.get_stream(&rel(name))))
    }

    fn put(&self, name: &str, bytes: Vec<u8>) -> Result<()> {
        let rel = rel(name);
        self.remote.put(&rel, bytes).map_err(|e| store_error(self.remote.url_of(&rel), e))
    }

    fn open_if_exists(&self, name: &str) -> Result<Option<Box<dyn std::io::Read + Send>>> {
        let reader = self.remote.get_stream_if_exists(&rel(name))?;
        Ok(reader.map(|r| Box::new(r) as Box<dyn std::io::Read + Send>))
    }

    fn open_url(&self, url: &str) -> Result<Box<dyn std::io::Read + Send>> {
        open_object(url, &self.remote.config)
    }

    fn list(&self, prefix: &str) -> Result<Vec<String>> {
        let rel = rel(prefix);
        let url = self.remote.url_of(&rel);
        let (store, key) = (Arc::clone(&self.remote.store), self.remote.key(&rel));
        let base = self.remote.key("ingest");
        self.remote.counters.lists.fetch_add(1, Ordering::Relaxed);
        let metas = self
            .remote
            .block(async move {
                use futures_util::TryStreamExt;
                store.list(Some(&key)).try_collect::<Vec<_>>().await
            })
            .map_err(|e| store_error(url, e))?;
        let skip = base.parts().count();
        let mut names: Vec<String> = metas
            .into_iter()
            .map(|m| {
                m.location.parts().skip(skip).map(|p| p.as_ref().to_owned()).collect::<Vec<_>>().join("/")
            })
            .collect();
        names.sort();
        Ok(names)
    }

    fn delete(&self, name: &str) -> Result<()> {
        let rel = rel(name);
        // S3 answers a delete of a missing object with success, but a store
        // that answers 404 must not fail a cleanup whose listing named an
        // object deleted a moment before (listings may lag behind deletes).
        match self.remote.delete(&rel) {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
            Err(e) => Err(store_error(self.remote.url_of(&rel), e)),
        }
    }

    fn delete_all(&self, names: &[String]) -> Result<()> {
        let keys: Vec<object_store::Result<object_store::path::Path>> =
            names.iter().map(|name| Ok(self.remote.key(&rel(name)))).collect();
        let store = Arc::clone(&self.remote.store);
        self.remote.counters.deletes.fetch_add(names.len().div_ceil(1000) as u64, Ordering::Relaxed);
        // One DeleteObjects request a thousand names; a name already gone
        // is deleted as far as the caller is concerned (see `delete`).
        let results: Vec<object_store::Result<object_store::path::Path>> = self.remote.block(async move {
            store.delete_stream(futures_util::stream::iter(keys).boxed()).collect().await
        });
        match results
            .into_iter()
            .find_map(|r| r.err().filter(|e| !matches!(e, object_store::Error::NotFound { .. })))
        {
            None => Ok(()),
            Some(e) => Err(store_error(self.remote.url_of("ingest"), e)),
        }
    }

    fn location(&self, name: &str) -> String {
        self.remote.url_of(&rel(name)).display().to_string()
    }
}

/// The bytes of the object an `s3://BUCKET/KEY` URL names, reached as
/// `config` says, as they are fetched.
pub fn open_object(url: &str, config: &S3Config) -> Result<Box<dyn std::io::Read + Send>> {
    let (remote, key) = object_at(url, config)?;
    Ok(Box::new(remote.get_stream(&key)))
}

/// Uploads the local file `from` as the object an `s3://BUCKET/KEY` URL names.
pub fn put_object(from: &Path, url: &str, config: &S3Config) -> Result<()> {
    let (remote, key) = object_at(url, config)?;
    remote.put_file(from, &key)
}

/// A client of the bucket of `url`, and the object's key in it.
fn object_at(url: &str, config: &S3Config) -> Result<(Arc<Remote>, String)> {
    let parsed = match S3Url::parse(url) {
        Some(Ok(parsed)) if !parsed.prefix.is_empty() => parsed,
        Some(Err(e)) => return Err(StoreError::Invalid(format!("{url}: {e}"))),
        _ => return Err(StoreError::Invalid(format!("{url}: not an s3://BUCKET/KEY URL"))),
    };
    Ok((bucket_client(&parsed.bucket, config)?, parsed.prefix))
}

/// The clients of buckets that objects are read from or put in, while any
/// is in use: an ingest of a hundred `s3://` objects shares one client (its
/// connections and its runtime) instead of making a hundred, each with a
/// runtime of its own and a new connection (tens of milliseconds each on
/// Garage).
type Clients = Vec<(String, S3Config, std::sync::Weak<Remote>)>;
static CLIENTS: std::sync::Mutex<Clients> = std::sync::Mutex::new(Vec::new());

/// A client of `bucket` reached as `config` says: one already in use, or a
/// new one.
fn bucket_client(bucket: &str, config: &S3Config) -> Result<Arc<Remote>> {
    let mut clients = CLIENTS.lock().unwrap_or_else(|e| e.into_inner());
    clients.retain(|(_, _, client)| client.strong_count() > 0);
    let found = clients.iter().find(|(b, c, _)| b == bucket && c == config).and_then(|(_, _, w)| w.upgrade());
    if let Some(client) = found {
        return Ok(client);
    }
    let url = S3Url { bucket: bucket.to_owned(), prefix: String::new() };
    let client = Arc::new(Remote::connect(&url, config)?);
    clients.push((bucket.to_owned(), config.clone(), Arc::downgrade(&client)));
    Ok(client)
}

impl Remote {
    /// Object `rel` as a reader of its bytes as they come: fetched on the
    /// storage's runtime, read on the caller's thread, a few parts buffered
    /// between them. Never whole in memory: an input can be many gigabytes.
    /// An error (a missing object too) comes at the first read.
    pub(crate) fn get_stream(self: &Arc<Self>, rel: &str) -> ObjectReader {
        self.fetch_stream(rel, None)
    }

    /// As [`Remote::get_stream`], but `None` when there is no object `rel`:
    /// waits for the response's head, not for its bytes.
    pub(crate) fn get_stream_if_exists(self: &Arc<Self>, rel: &str) -> Result<Option<ObjectReader>> {
        let (head_tx, head_rx) = std::sync::mpsc::sync_channel(1);
        let reader = self.fetch_stream(rel, Some(head_tx));
        match head_rx.recv() {
            Ok(Ok(())) => Ok(Some(reader)),
            Ok(Err(object_store::Error::NotFound { .. })) => Ok(None),
            Ok(Err(e)) => Err(store_error(self.url_of(rel), e)),
            Err(_) => Err(StoreError::Io {
                path: self.url_of(rel),
                source: std::io::Error::other("the fetch stopped"),
            }),
        }
    }

    /// [`Remote::get_stream`]; the response's head (or its error) is also
    /// told to `head`, when given.
    fn fetch_stream(
        self: &Arc<Self>,
        rel: &str,
        head: Option<std::sync::mpsc::SyncSender<object_store::Result<()>>>,
    ) -> ObjectReader {
        let url = self.url_of(rel);
        let (store, key) = (Arc::clone(&self.store), self.key(rel));
        self.counters.gets.fetch_add(1, Ordering::Relaxed);
        let (tx, rx) = std::sync::mpsc::sync_channel::<object_store::Result<bytes::Bytes>>(4);
        let remote = Arc::clone(self);
        let fetch = std::thread::spawn(move || {
            let inner = Arc::clone(&remote);
            inner.block(async move {
                let got = store.get_opts(&key, GetOptions::default()).await;
                let mut stream = match (got, head) {
                    (Ok(result), head) => {
                        if let Some(head) = head {
                            let _ = head.send(Ok(()));
                        }
                        result.into_stream()
                    }
                    (Err(e), Some(head)) => return drop(head.send(Err(e))),
                    (Err(e), None) => return drop(tx.send(Err(e))),
                };
                while let Some(chunk) = stream.next().await {
                    if let Ok(bytes) = &chunk {
                        remote.counters.get_bytes.fetch_add(bytes.len() as u64, Ordering::Relaxed);
                    }
                    if tx.send(chunk).is_err() {
                        return;
                    }
                }
            })
        });
        ObjectReader { url, rx, chunk: bytes::Bytes::new(), fetch: Some(fetch) }
    }
}

/// The bytes of an object as they are fetched ([`Remote::get_stream`]).
pub(crate) struct ObjectReader {
    url: std::path::PathBuf,
    rx: std::sync::mpsc::Receiver<object_store::Result<bytes::Bytes>>,
    chunk: bytes::Bytes,
    fetch: Option<std::thread::JoinHandle<()>>,
}

impl std::io::Read for ObjectReader {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        while self.chunk.is_empty() {
            match self.rx.recv() {
                Ok(Ok(bytes)) => self.chunk = bytes,
                Ok(Err(e)) => return Err(std::io::Error::other(format!("{}: {e}", self.url.display()))),
                // The fetch is over: the whole object was read.
                Err(_) => return Ok(0),
            }
        }
        let n = buf.len().min(self.chunk.len());
        buf[..n].copy_from_slice(&self.chunk[..n]);
        bytes::Buf::advance(&mut self.chunk, n);
        Ok(n)
    }
}

impl Drop for ObjectReader {
    fn drop(&mut self) {
        // Unblocks a fetch still sending, then waits for it.
        let (_, dead) = std::sync::mpsc::sync_channel(1);
        drop(std::mem::replace(&mut self.rx, dead));
        if let Some(fetch) = self.fetch.take() {
            let _ = fetch.join();
        }
    }
}
