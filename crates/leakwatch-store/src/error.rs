//! Store errors: each names the file it concerns.

use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    #[error("{path}: {source}")]
    Io { path: PathBuf, source: std::io::Error },
    #[error(transparent)]
    Segment(#[from] leakwatch_segment::SegmentError),
    #[error(transparent)]
    Ingest(#[from] leakwatch_ingest::IngestError),
    #[error("{path}: data corruption: {detail}")]
    DataCorruption { path: PathBuf, detail: String },
    #[error("{path}: another leakwatch process is writing to this data directory")]
    Locked { path: PathBuf },
    #[error("{0}")]
    Invalid(String),
    /// The data key is missing, wrong or unreadable.
    #[error("{0}")]
    Key(String),
}

impl StoreError {
    pub(crate) fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        StoreError::Io { path: path.into(), source }
    }
}

pub type Result<T, E = StoreError> = std::result::Result<T, E>;
