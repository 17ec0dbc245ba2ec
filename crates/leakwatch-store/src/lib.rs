//! The leakwatch store: a data directory of immutable segments published by an
//! atomically replaced manifest, the ingest pipeline that writes them within a
//! memory budget, and the read-side lookups the surfaces call.
//!
//! **Architecture Invariant:** nothing outside this crate opens a segment file or
//! the manifest; the CLI and the server go through [`Store`] and [`ingest()`].

mod breach;
mod clock;
mod compact;
mod crypt;
mod dir;
mod domains;
mod error;
mod exposure;
mod health;
mod hibp;
mod import;
mod ingest;
pub mod keyring;
mod manifest;
mod polyval_clmul;
mod range;
mod range_cache;
mod reader;
mod rekey;
mod runs;
mod stealer;
pub mod storage;
mod txn;

pub use breach::{remove_breach, update_breach, BreachEdit, Removal};
pub use crypt::Keys;
pub use dir::DataDir;
pub use error::{Result, StoreError};
pub use exposure::DirectoryKeys;
pub use health::{repair, RepairSummary};
pub use hibp::HibpBreach;
pub use import::{import_pwned_passwords, ImportSummary, LineRejections};
pub use ingest::{ingest, BreachInfo, IngestOptions, IngestSummary, Phase, Progress};
pub use manifest::{Breach, Manifest, PwnedImport, SegmentRef, SetAside};
pub use range::{FileSpan, RangeBody, RangeIndex, RangeKind, RangeSource, DEFAULT_RANGE_CACHE};
pub use reader::{Damage, KindStats, PasswordCounts, Stats, Store};
pub use rekey::{rekey, rotate_audit_key, AuditRekey, RekeySummary};
