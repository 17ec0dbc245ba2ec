//! Catalog errors: each names the catalog file, or says which input was refused.

use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CatalogError {
    #[error("{path}: {source}")]
    Io { path: PathBuf, source: std::io::Error },
    #[error("{path}: {source}")]
    Sql { path: PathBuf, source: rusqlite::Error },
    #[error("{path}: data corruption: {detail}")]
    DataCorruption { path: PathBuf, detail: String },
    #[error("{path}: catalog schema version {found} is newer than this build reads ({supported})")]
    UnsupportedVersion { path: PathBuf, found: i64, supported: i64 },
    /// A request the catalog refuses: a bad name, an unknown key, a duplicate.
    #[error("{0}")]
    Invalid(String),
}

pub type Result<T, E = CatalogError> = std::result::Result<T, E>;
