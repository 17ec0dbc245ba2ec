//! Alert errors: each says which organization, destination or batch.

use leakwatch_catalog::CatalogError;
use leakwatch_store::StoreError;

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AlertError {
    #[error(transparent)]
    Catalog(#[from] CatalogError),
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A destination or option `org alert` refuses.
    #[error("{0}")]
    Invalid(String),
    /// A sealed value that does not open with this key ring.
    #[error("{what} does not open with this key ring (was the data key changed?)")]
    Sealed { what: String },
    #[error("{what}: {source}")]
    Json { what: String, source: serde_json::Error },
    #[error("{what}: {source}")]
    Io { what: String, source: std::io::Error },
}

pub type Result<T, E = AlertError> = std::result::Result<T, E>;
