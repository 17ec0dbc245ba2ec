//! Errors of segment reading and writing, always naming the file.

use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SegmentError {
    #[error("{path}: {source}")]
    Io { path: PathBuf, source: std::io::Error },
    #[error("{path}: data corruption at offset {offset}: {detail}")]
    DataCorruption { path: PathBuf, offset: u64, detail: String },
    #[error("{path}: unsupported segment format version {found} (this build reads {supported})")]
    UnsupportedVersion { path: PathBuf, found: u16, supported: u16 },
    #[error("{path}: {detail}")]
    Usage { path: PathBuf, detail: String },
}

impl SegmentError {
    pub(crate) fn io(path: &std::path::Path, source: std::io::Error) -> Self {
        SegmentError::Io { path: path.to_owned(), source }
    }

    pub(crate) fn corrupt(path: &std::path::Path, offset: u64, detail: impl Into<String>) -> Self {
        SegmentError::DataCorruption { path: path.to_owned(), offset, detail: detail.into() }
    }
}
