//! The store's shared area in the bucket (`PREFIX/ingest/`): what a
//! distributed ingest's jobs read and write ([`leakwatch_store::storage::blobs`]).
//! Files stream through in parts, never whole in memory: a staged input can
//! be many gigabytes.

use std::io::Write;
use std::ops::Range;
use std::path::Path;
use std::sync::atomic::Ordering;
use std::sync::Arc;

use futures_util::StreamExt;
use leakwatch_store::storage::blobs::Blobs;
use leakwatch_store::Result;
use object_store::{GetOptions, GetRange, ObjectStore};

use crate::error::{local, store_error};
use crate::storage::Remote;

/// The shared area under `PREFIX/ingest/`.
#[derive(Debug, Clone)]
pub(crate) struct BucketBlobs {
    pub(crate) remote: Arc<Remote>,
}

fn rel(name: &str) -> String {
    format!("ingest/{name}")
}

impl Blobs for BucketBlobs {
    fn put_file(&self, from: &Path, name: &str) -> Result<()> {
        self.remote.put_file(from, &rel(name))
    }

    fn get_file(&self, name: &str, range: Option<Range<u64>>, to: &Path) -> Result<()> {
        let rel = rel(name);
        let url = self.remote.url_of(&rel);
        let mut file = std::fs::File::create(to).map_err(|e| local(to, e))?;
        let (store, key) = (Arc::clone(&self.remote.store), self.remote.key(&rel));
        self.remote.counters.gets.fetch_add(1, Ordering::Relaxed);
        let (tx, rx) = std::sync::mpsc::sync_channel::<object_store::Result<bytes::Bytes>>(4);
        let fetch = {
            let remote = Arc::clone(&self.remote);
            std::thread::spawn(move || {
                remote.block(async move {
                    let options = GetOptions { range: range.map(GetRange::Bounded), ..GetOptions::default() };
                    let mut stream = match store.get_opts(&key, options).await {
                        Ok(result) => result.into_stream(),
                        Err(e) => return drop(tx.send(Err(e))),
                    };
                    while let Some(chunk) = stream.next().await {
                        if tx.send(chunk).is_err() {
                            return;
                        }
                    }
                })
            })
        };
        // The bytes are written here as they come, on this thread: the
        // storage's runtime only fetches.
        let mut result = Ok(());
        for chunk in rx {
            match chunk {
                Ok(bytes) => {
                    self.remote.counters.get_bytes.fetch_add(bytes.len() as u64, Ordering::Relaxed);
                    if let Err(e) = file.write_all(&bytes) {
                        result = Err(local(to, e));
                        break;
                    }
                }
                Err(e) => {
                    result = Err(store_error(&url, e));
                    break;
                }
            }
        }
        let _ = fetch.join();
        result?;
        file.flush().map_err(|e| local(to, e))
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

    fn location(&self, name: &str) -> String {
        self.remote.url_of(&rel(name)).display().to_string()
    }
}
