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
    /// The client's own text says little ("db error"): the message shows
    /// the server's (or the connection's) below it, so the error is whole on
    /// one line and ends its chain here.
    #[error("{location}: {}", postgres_detail(error))]
    Postgres { location: PathBuf, error: postgres::Error },
    /// The connection to PostgreSQL broke: the message says what became of
    /// the statement or transaction that was running. The next call
    /// connects again.
    #[error("{location}: the connection to the database was lost: {detail}")]
    PostgresLost { location: PathBuf, detail: String },
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

impl CatalogError {
    /// Whether the database could not be reached: the connection was lost,
    /// a new one was refused (the server is down, restarting or unreachable),
    /// or the server is shutting down or starting up. Such a failure passes
    /// when the database is back, and the call may be made again then; any
    /// other failure (a constraint, a timeout on a lock, corruption) would
    /// fail again the same way.
    pub fn is_unavailable(&self) -> bool {
        match self {
            CatalogError::PostgresLost { .. } => true,
            CatalogError::Postgres { error, .. } => match error.as_db_error() {
                // Class 08 is a connection exception; 57P01 to 57P03 are
                // the administrator's or a crash's shutdown, and "the
                // database system is starting up".
                Some(db) => {
                    let code = db.code().code();
                    code.starts_with("08") || matches!(code, "57P01" | "57P02" | "57P03")
                }
                // Not the server's answer: the client could not connect or
                // its socket failed.
                None => {
                    error.is_closed()
                        || std::iter::successors(std::error::Error::source(error), |e| e.source())
                            .any(|e| e.is::<std::io::Error>())
                }
            },
            _ => false,
        }
    }
}

/// A PostgreSQL client error with its causes: `db error: ERROR: relation "x"
/// does not exist`.
fn postgres_detail(error: &postgres::Error) -> String {
    let mut text = error.to_string();
    let mut cause = std::error::Error::source(error);
    while let Some(c) = cause {
        let more = c.to_string();
        if !text.ends_with(&more) {
            text.push_str(": ");
            text.push_str(&more);
        }
        cause = c.source();
    }
    text
}

pub type Result<T, E = CatalogError> = std::result::Result<T, E>;
