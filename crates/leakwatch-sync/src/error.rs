//! Sync errors: each names the range (prefix and URL) or the file it concerns,
//! so that a failed run says where to look.

use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SyncError {
    #[error("{0}: not an http:// or https:// base URL")]
    BadUrl(String),
    #[error(
        "{0}: plain http lets anyone on the network path add or remove hashes; use https://, \
         or --insecure to accept that (loopback addresses need neither)"
    )]
    Insecure(String),
    #[error("{path}: not a usable CA file: {detail}")]
    CaFile { path: PathBuf, detail: String },
    #[error("{url}: range {prefix} failed after {attempts} attempts: {detail}")]
    Range { prefix: String, url: String, attempts: u32, detail: String },
    #[error("{url}: range {prefix}: {detail}")]
    Refused { prefix: String, url: String, detail: String },
    #[error("{path}: {source}")]
    Io { path: PathBuf, source: std::io::Error },
    #[error("{path}: another sync of this corpus is running")]
    Locked { path: PathBuf },
    #[error("publishing the synced ranges: {0}")]
    Publish(#[from] leakwatch_store::StoreError),
    #[error("the HTTP client: {0}")]
    Client(String),
}

impl SyncError {
    pub(crate) fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        SyncError::Io { path: path.into(), source }
    }
}

pub type Result<T, E = SyncError> = std::result::Result<T, E>;
