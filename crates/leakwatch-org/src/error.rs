//! Errors of an organization's directory: each says which directory.

use leakwatch_catalog::CatalogError;
use leakwatch_store::StoreError;

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum OrgError {
    #[error(transparent)]
    Catalog(#[from] CatalogError),
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The sealed directory does not open with this key ring.
    #[error("the directory of {org} does not open with this key ring (import it again)")]
    Sealed { org: String },
    #[error("the directory of {org}: {source}")]
    Json { org: String, source: serde_json::Error },
}

pub type Result<T, E = OrgError> = std::result::Result<T, E>;
