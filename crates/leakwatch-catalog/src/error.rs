//! Catalog errors: each names the catalog (its file, or its URL without the
//! password), or says which input was refused.

use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CatalogError {
    #[error("{path}: {source}")]
    Io { path: PathBuf, source: std::io::Error },
    #[error("{path}: {source}")]
    Sql { path: PathBuf, source: rusqlite::Error },
    #[error("{location}: {source}")]
    Postgres { location: PathBuf, source: postgres::Error },
    #[error("{path}: data corruption: {detail}")]
    DataCorruption { path: PathBuf, detail: String },
    #[error("{path}: catalog schema version {found} is newer than this build reads ({supported})")]
    UnsupportedVersion { path: PathBuf, found: i64, supported: i64 },
    /// The audit log is chained under a key the caller does not hold: rotated
    /// since its keys were read, or a ring that is not this log's.
    #[error("{path}: the audit log is chained under audit key {id}, which the key ring in use does not hold (was the audit key rotated since this process started?)")]
    UnknownAuditKey { path: PathBuf, id: String },
    /// A request the catalog refuses: a bad name, an unknown key, a duplicate.
    #[error("{0}")]
    Invalid(String),
}

pub type Result<T, E = CatalogError> = std::result::Result<T, E>;
