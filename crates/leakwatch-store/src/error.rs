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
    /// The manifest changed between a writer's loading it and publishing its
    /// own: nothing was published.
    #[error("{path}: the manifest was replaced by another writer; nothing was published")]
    Conflict { path: PathBuf },
    #[error("{0}")]
    Invalid(String),
    /// The data key is missing, wrong or unreadable.
    #[error("{0}")]
    Key(String),
    /// The directory holds no leakwatch store: no manifest (it may not exist at
    /// all). Reading it would answer "not found" for everything, which is not
    /// what was asked.
    #[error("{path} holds no leakwatch store ({reason})")]
    NoStore { path: PathBuf, reason: &'static str },
    /// A writer was pointed at a directory that holds other files and no store.
    #[error("refusing to create a store in non-empty directory {path} (it holds {found:?} and no MANIFEST)")]
    NotEmpty { path: PathBuf, found: String },
    /// A lookup needs a segment that is damaged (or missing): the answer would
    /// be partial, so there is none. `held` says what the damaged data was.
    #[error(
        "the {kind} data of {held} is damaged ({path}: {detail}); `leakwatch verify` lists the damage, \
         `leakwatch repair` sets it aside"
    )]
    Damaged { kind: String, held: String, path: PathBuf, detail: String },
}

impl StoreError {
    pub(crate) fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        StoreError::Io { path: path.into(), source }
    }
}

pub type Result<T, E = StoreError> = std::result::Result<T, E>;
