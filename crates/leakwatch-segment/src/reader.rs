//! Reads a segment straight off an mmap, whatever its layout. Opening checks
//! the header, that every section lies inside the file and the checksum
//! table's own checksum; lookups check table entries before trusting them, and
//! each 64 KiB chunk against its checksum the first time they read it, so a
//! damaged file yields `DataCorruption`, never a panic, a wrong slice or a
//! wrong answer from bytes that changed on disk.
//!
//! Each layout is a type of its own ([`FixedSegment`], [`PackedSegment`]) that
//! implements [`LayoutReader`]; [`Segment`] holds one of them and hands each
//! call to it.

use std::ops::Range;
use std::path::Path;
use std::sync::Arc;

use memmap2::Mmap;

use crate::file::{self, Fetch, SegmentFile};
use crate::fixed::{FixedEntries, FixedSegment};
use crate::format::{Header, HeaderError, Kind, FORMAT_VERSION, MAX_KEY_LEN};
use crate::packed::{PackedEntries, PackedSegment};
use crate::SegmentError;

/// A full key and its entry index, as [`Segment::iter`] yields them.
pub type KeyAt = ([u8; MAX_KEY_LEN], usize);

/// Every entry of a counted segment in key order, as (full key, count).
pub type Counts<'a> = Box<dyn Iterator<Item = Result<([u8; MAX_KEY_LEN], u64), SegmentError>> + 'a>;

/// What a layout answers: the reading interface every layout implements, and
/// all that [`Segment`] asks of one. Keys passed in have the kind's width.
pub(crate) trait LayoutReader {
    /// The entries of one range, walked in key order.
    type Entries<'a>: EntryRun
    where
        Self: 'a;

    fn file(&self) -> &SegmentFile;
    fn kind(&self) -> Kind;
    /// The width of the bucket table's index: the top bits of a key.
    fn prefix_bits(&self) -> u8;
    fn len(&self) -> u64;
    fn file_len(&self) -> u64;
    /// The tables every lookup reads before the entries it wants (bucket and
    /// overflow tables): fetched whole when a fetched segment opens.
    fn index_span(&self) -> Range<u64>;
    /// The entries whose key equals `key` (several for accounts and domains).
    fn find(&self, key: &[u8]) -> Result<Range<usize>, SegmentError>;
    /// The summed count of `key`, 0 when absent.
    fn count_of(&self, key: &[u8]) -> Result<u64, SegmentError>;
    /// The entries whose key starts with the 20-bit `prefix` (one contiguous run).
    fn range20(&self, prefix: u32) -> Result<Range<usize>, SegmentError>;
    /// The run of [`range20`](Self::range20), as (full key, count), without a
    /// search per entry.
    fn range20_entries(&self, prefix: u32) -> Result<Self::Entries<'_>, SegmentError>;
    /// The full key of entry `index`.
    fn key(&self, index: usize) -> [u8; MAX_KEY_LEN];
    /// The count of entry `index` (counted kinds only; 0 otherwise).
    fn count(&self, index: usize) -> Result<u64, SegmentError>;
    /// The fixed value bytes of entry `index` (empty for kinds without).
    fn value(&self, index: usize) -> &[u8];
    /// The breach id and heap payload of entry `index` (payload kinds only).
    fn payload(&self, index: usize) -> Result<(u32, &[u8]), SegmentError>;
    /// Every entry in key order, as (full key, entry index).
    fn iter(&self) -> Box<dyn Iterator<Item = Result<KeyAt, SegmentError>> + '_>;
}

/// A range's entries as a layout walks them.
pub(crate) trait EntryRun: Iterator<Item = Result<([u8; MAX_KEY_LEN], u64), SegmentError>> {
    /// Entries left.
    fn left(&self) -> usize;
}

/// An open, immutable segment.
pub struct Segment {
    body: Body,
}

/// The layouts, one variant each. An enum rather than a `Box<dyn
/// LayoutReader>`: a call costs one match on the variant, the branch a
/// layout flag would cost, and the layout's code inlines into it; and a
/// range's entries ([`RangeEntries`], one per line of a `/range` body) stay a
/// value on the stack, stepped without an indirect call or an allocation per
/// range. A new layout is a new type implementing [`LayoutReader`], a variant
/// here and an arm in [`dispatch!`]; the existing layouts stay as they are.
enum Body {
    Fixed(FixedSegment),
    Packed(PackedSegment),
}

/// `dispatch!(self, s => expr)`: `expr` with `s` bound to the layout.
macro_rules! dispatch {
    ($seg:expr, $s:ident => $e:expr) => {
        match &$seg.body {
            Body::Fixed($s) => $e,
            Body::Packed($s) => $e,
        }
    };
}

impl std::fmt::Debug for Segment {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let layout = match self.body {
            Body::Fixed(_) => "fixed",
            Body::Packed(_) => "packed",
        };
        f.debug_struct("Segment")
            .field("path", &self.path())
            .field("kind", &self.kind())
            .field("layout", &layout)
            .field("entries", &self.len())
            .finish()
    }
}

impl Segment {
    pub fn open(path: &Path) -> Result<Segment, SegmentError> {
        let map = file::map(path)?;
        Segment::from_map(path, map, None)
    }

    /// Opens a segment kept elsewhere through its local file at `path`: a
    /// file of the segment's full length holding at least its header, the
    /// rest filled by `fetch` as lookups need it (see [`Fetch`]). The
    /// checksum list and the tables every lookup reads are fetched now, so a
    /// lookup afterwards costs at most one fetch per segment; every byte is
    /// checked against its chunk's checksum as in a local segment. `name`
    /// is where the segment really is (an `s3://` URL): what errors name,
    /// and [`Segment::path`]; the local file is a cache the user never made.
    pub fn open_fetching(path: &Path, name: &Path, fetch: Arc<dyn Fetch>) -> Result<Segment, SegmentError> {
        let map = file::map(path).map_err(|e| match e {
            SegmentError::Io { source, .. } => SegmentError::Io { path: name.to_owned(), source },
            other => other,
        })?;
        let seg = Segment::from_map(name, map, Some(fetch))?;
        let span = dispatch!(seg, s => s.index_span());
        dispatch!(seg, s => s.file().prefetch(span))?;
        Ok(seg)
    }

    /// A segment whose bytes are already in memory (a store kept in memory, or
    /// one whose objects are fetched whole), copied into an anonymous mapping
    /// so that every read goes through the same `Mmap` as a file's. `path`
    /// names it in errors.
    pub fn from_bytes(path: &Path, bytes: &[u8]) -> Result<Segment, SegmentError> {
        let mut map =
            memmap2::MmapMut::map_anon(bytes.len().max(1)).map_err(|e| SegmentError::io(path, e))?;
        map[..bytes.len()].copy_from_slice(bytes);
        // An anonymous mapping cannot be empty: an empty object becomes one
        // zero byte, whose header does not decode, as an empty file's does not.
        let map = map.make_read_only().map_err(|e| SegmentError::io(path, e))?;
        Segment::from_map(path, map, None)
    }

    fn from_map(path: &Path, map: Mmap, fetch: Option<Arc<dyn Fetch>>) -> Result<Segment, SegmentError> {
        let header = Header::decode(&map).map_err(|e| match e {
            HeaderError::Corrupt(detail) => SegmentError::corrupt(path, 0, detail),
            HeaderError::Version(found) => {
                SegmentError::UnsupportedVersion { path: path.to_owned(), found, supported: FORMAT_VERSION }
            }
        })?;
        let body = match header {
            Header::Fixed(h) => Body::Fixed(FixedSegment::new(
                SegmentFile::new(path, map, h.checksums_offset, h.file_len, fetch)?,
                h,
            )),
            Header::Packed(h) => Body::Packed(PackedSegment::new(
                SegmentFile::new(path, map, h.checksums_offset, h.file_len, fetch)?,
                h,
            )),
        };
        Ok(Segment { body })
    }

    pub fn path(&self) -> &Path {
        dispatch!(self, s => s.file().path())
    }

    pub fn kind(&self) -> Kind {
        dispatch!(self, s => s.kind())
    }

    /// The width of the bucket table's index: the top bits of a key that
    /// pick its bucket.
    pub fn prefix_bits(&self) -> u8 {
        dispatch!(self, s => s.prefix_bits())
    }

    pub fn len(&self) -> u64 {
        dispatch!(self, s => s.len())
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Bytes on disk.
    pub fn file_len(&self) -> u64 {
        dispatch!(self, s => s.file_len())
    }

    /// Checks every chunk checksum; the error names the offset of the first bad chunk.
    pub fn verify(&self) -> Result<(), SegmentError> {
        dispatch!(self, s => s.file().verify())
    }

    /// The entries whose key equals `key` (several for accounts and domains).
    #[inline]
    pub fn find(&self, key: &[u8]) -> Result<Range<usize>, SegmentError> {
        if key.len() != self.kind().key_len() {
            return Ok(0..0);
        }
        dispatch!(self, s => s.find(key))
    }

    /// The entries whose key starts with the 20-bit `prefix` (one k-anonymity range):
    /// one contiguous run of the entry section.
    pub fn range20(&self, prefix: u32) -> Result<Range<usize>, SegmentError> {
        dispatch!(self, s => s.range20(prefix & 0xF_FFFF))
    }

    /// The full key of entry `index`, with the implied prefix bits restored.
    ///
    /// In a packed segment this decodes the entry's bucket up to it; a damaged
    /// bucket gives an all-zero key (the range and iteration calls report it).
    pub fn key(&self, index: usize) -> [u8; MAX_KEY_LEN] {
        dispatch!(self, s => s.key(index))
    }

    /// The count of entry `index` (counted kinds only; 0 otherwise).
    pub fn count(&self, index: usize) -> Result<u64, SegmentError> {
        dispatch!(self, s => s.count(index))
    }

    /// The entries of the range `prefix` (the top 20 bits of a key) in key
    /// order, as (full key, count): the run [`Segment::range20`] finds, walked
    /// without the per-entry searches of [`Segment::key`] and [`Segment::count`].
    #[inline]
    pub fn range20_entries(&self, prefix: u32) -> Result<RangeEntries<'_>, SegmentError> {
        let prefix = prefix & 0xF_FFFF;
        Ok(RangeEntries {
            inner: match &self.body {
                Body::Fixed(s) => Inner::Fixed(s.range20_entries(prefix)?),
                Body::Packed(s) => Inner::Packed(s.range20_entries(prefix)?),
            },
        })
    }

    /// The fixed value bytes of entry `index`.
    #[inline]
    pub fn value(&self, index: usize) -> &[u8] {
        dispatch!(self, s => s.value(index))
    }

    /// For domain segments: the breach id and heap payload of entry `index`.
    pub fn payload(&self, index: usize) -> Result<(u32, &[u8]), SegmentError> {
        dispatch!(self, s => s.payload(index))
    }

    /// Every entry in key order, as (full key, entry index).
    pub fn iter(&self) -> Box<dyn Iterator<Item = Result<KeyAt, SegmentError>> + '_> {
        dispatch!(self, s => s.iter())
    }

    /// Every entry of a counted kind in key order, as (full key, count): the
    /// walk a merge of counts makes, without the per-entry search of
    /// [`Segment::count`] (in a packed segment, a decode of the entry's
    /// bucket up to it).
    pub fn counts(&self) -> Counts<'_> {
        match &self.body {
            Body::Fixed(s) => Box::new(s.iter().map(move |r| r.and_then(|(key, i)| Ok((key, s.count(i)?))))),
            Body::Packed(s) => s.counts(),
        }
    }

    /// The summed count of `key` (0 when absent): one bucket decoded in a packed
    /// segment, a binary search in a fixed one.
    #[inline]
    pub fn count_of(&self, key: &[u8]) -> Result<u64, SegmentError> {
        if key.len() != self.kind().key_len() {
            return Ok(0);
        }
        dispatch!(self, s => s.count_of(key))
    }
}

/// The entries of one range of a segment; see [`Segment::range20_entries`].
pub struct RangeEntries<'a> {
    inner: Inner<'a>,
}

/// One variant per layout, as in [`Body`].
enum Inner<'a> {
    Fixed(FixedEntries<'a>),
    Packed(PackedEntries<'a>),
}

impl RangeEntries<'_> {
    /// Entries left.
    pub fn len(&self) -> usize {
        match &self.inner {
            Inner::Fixed(e) => e.left(),
            Inner::Packed(e) => e.left(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl Iterator for RangeEntries<'_> {
    type Item = Result<([u8; MAX_KEY_LEN], u64), SegmentError>;

    #[inline]
    fn next(&mut self) -> Option<Self::Item> {
        match &mut self.inner {
            Inner::Fixed(e) => e.next(),
            Inner::Packed(e) => e.next(),
        }
    }
}
