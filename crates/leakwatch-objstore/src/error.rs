//! Object-store failures as the store's errors: each names the object (as an
//! `s3://` URL) and keeps "not found" recognizable, which readers rely on to
//! tell a segment a compaction just replaced from a damaged store.

use std::path::PathBuf;

use leakwatch_store::StoreError;

/// `e` as an I/O error: `NotFound` for a missing object, `Other` otherwise.
pub(crate) fn to_io(e: object_store::Error) -> std::io::Error {
    match e {
        object_store::Error::NotFound { .. } => std::io::Error::new(std::io::ErrorKind::NotFound, e),
        other => std::io::Error::other(other),
    }
}

/// `e` as a store error about the object at `url`.
pub(crate) fn store_error(url: impl Into<PathBuf>, e: object_store::Error) -> StoreError {
    StoreError::Io { path: url.into(), source: to_io(e) }
}

/// A local I/O error about `path` as a store error.
pub(crate) fn local(path: impl Into<PathBuf>, e: std::io::Error) -> StoreError {
    StoreError::Io { path: path.into(), source: e }
}

/// An error of the store's format kept in the bucket (a lease or a manifest
/// name that does not parse).
pub(crate) fn invalid(url: impl Into<PathBuf>, detail: impl std::fmt::Display) -> StoreError {
    StoreError::DataCorruption { path: url.into(), detail: detail.to_string() }
}
