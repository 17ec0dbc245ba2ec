//! Immutable, sorted segment files: the on-disk unit of the leakwatch index.
//!
//! A segment is written once by [`SegmentWriter`] and read straight off an mmap
//! by [`Segment`], in one of two layouts, each a module and a type of its own
//! behind one reading interface (`reader.rs`): the fixed layout (`fixed.rs`,
//! format version 1) holds fixed-width entries sorted by key, a prefix table
//! that maps the top `p` bits of a key to its run of entries, an overflow table
//! for values too large for an entry, a heap for variable-length payloads; the
//! packed layout (`packed.rs`, version 2) of the Pwned Passwords kinds holds an
//! Elias-Fano code of the keys per bucket with bit-packed counts. Both end in
//! chunk checksums (`file.rs`). Each layout writes itself too (`fixed/writer.rs`,
//! `packed/writer.rs`), behind `SegmentWriter` (`writer.rs`). The byte layout
//! is specified in `docs/format.md`.
//!
//! **Architecture Invariant:** a segment never changes after `finish` returns; the
//! store publishes it by naming it in a manifest, never by editing it.

mod bits;
mod error;
mod file;
mod fixed;
mod format;
mod packed;
mod reader;
mod sink;
mod writer;

pub use error::SegmentError;
pub use file::Fetch;
pub use fixed::Layout;
pub use format::{Kind, CHECKSUM_CHUNK, FORMAT_VERSION, MAX_ENTRIES, MAX_HEAP_BYTES, MAX_KEY_LEN};
pub use reader::{Counts, RangeEntries, Segment};
pub use writer::{SegmentWriter, Written};
