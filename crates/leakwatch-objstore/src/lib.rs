//! A leakwatch store in S3-compatible object storage (`--data s3://BUCKET/PREFIX`):
//! the third [`Storage`](leakwatch_store::storage::Storage) beside the local
//! directory and memory, over the `object_store` crate, with a bounded local
//! cache of segment bytes.
//!
//! What lives where, under `PREFIX/` in the bucket:
//! ```text
//! segments/NAME                 immutable segment objects, named by kind and content hash
//! manifest/SEQ-TOKEN            the manifest, one object per publish; the highest SEQ is in force
//! LOCK                          the writer's lease (JSON: token, holder, expiry)
//! ```
//! and in the local cache directory (`--cache-dir`):
//! ```text
//! segments/NAME                 a segment's bytes, sparse: filled by range reads as lookups need them
//! stores/ID/                    a store's local scratch (staging of new segments, sorted runs)
//! ```
//!
//! **Why no conditional put.** Garage (2.5) ignores `If-Match` and
//! `If-None-Match` on PutObject (it honours them on GET and as
//! `x-amz-copy-source-if-*` on copies only), so neither the manifest switch
//! nor the lock can be a compare-and-swap. Instead (see [`lease`] and
//! [`storage`]):
//! - the writer lock is a **lease object** taken by write-then-confirm: a
//!   writer that finds no live lease writes its own, waits a settle time
//!   longer than any competing write can take to land, and reads it back: of
//!   two writers racing, the one whose write landed last finds its own token,
//!   the other finds a stranger's and fails (Fischer's mutual exclusion, on
//!   Garage's quorum reads and writes). The lease is renewed while held and
//!   expires when its holder dies;
//! - each manifest is a **new object** named by a generation number one above
//!   the one the writer loaded, written once and never overwritten; a PUT is
//!   atomic (whole or absent), so a reader that lists the generations and
//!   reads the highest sees a whole manifest, the previous one or the new one;
//! - a publish first checks that the writer still holds its lease with time
//!   to spare and that the generation in force is the one it loaded, and
//!   afterwards that no other object took the same generation.
//!
//! The timing assumptions are the ones of every lease: clocks of the
//! machines within [`LeaseSettings::skew`] of each other, and no writer
//! stalled longer than the lease's remaining margin between its check and its
//! publish.

mod blobs;
mod cache;
mod error;
pub mod garage;
pub mod lease;
pub mod storage;

pub use blobs::{open_object, put_object};
pub use cache::DEFAULT_CACHE_SIZE;
pub use lease::LeaseSettings;
pub use storage::{Counters, ObjectStorage, Options, S3Config, S3Url};
