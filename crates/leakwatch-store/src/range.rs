//! Pwned Passwords ranges formatted straight off the mmapped password segments.
//!
//! [`Store::range`](crate::Store::range) collects a range into a map, which is
//! right for the CLI but too slow for an HTTP server answering tens of thousands
//! of ranges a second. [`RangeIndex`] holds the SHA-1 and NTLM segments of one
//! manifest generation and writes a range's body (`SUFFIX:COUNT` lines, upper-case,
//! sorted, CRLF between lines and none after the last, exactly as HIBP answers)
//! into a caller's buffer: no allocation per request, one contiguous read of each
//! segment, and a k-way merge when several segments hold the same prefix.
//!
//! [`RangeIndex::body`] keeps the bodies it formatted in a bounded cache, as
//! HIBP's own ranges are served from a CDN's: real traffic asks for the ranges
//! of common passwords again and again, and a cached body costs the server no
//! formatting at all, and no copy either: it lives in a file the kernel can
//! send from ([`RangeBody::file_span`]; see `range_cache`). A generation's
//! cache goes with it, so no stale body is ever served after an ingest.

use std::collections::HashMap;
use std::path::PathBuf;

use leakwatch_segment::{Kind, RangeEntries, Segment, SegmentError, MAX_KEY_LEN};

use crate::dir::DataDir;
use crate::error::{Result, StoreError};
use crate::range_cache::BodyCache;
pub use crate::range_cache::{FileSpan, RangeBody};

/// Which password corpus a range is read from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RangeKind {
    Sha1,
    Ntlm,
}

impl RangeKind {
    /// Bytes of a full hash.
    pub fn key_len(self) -> usize {
        match self {
            RangeKind::Sha1 => 20,
            RangeKind::Ntlm => 16,
        }
    }

    /// Hex digits of a suffix: the hash less its five-digit prefix.
    pub fn suffix_len(self) -> usize {
        2 * self.key_len() - 5
    }
}

/// Whose counts a range is made of.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RangeSource {
    /// The organization's own dumps and the imported Pwned Passwords, summed.
    All,
    /// The imported Pwned Passwords alone: none of the own dumps' digests.
    PwnedPasswords,
}

impl RangeSource {
    /// Whether a segment of `kind` is read for this source; `whole`: it is
    /// one of the segments the whole corpus is read from (`crate::totals`).
    fn holds(self, kind: Kind, whole: bool) -> bool {
        match self {
            RangeSource::All => whole,
            RangeSource::PwnedPasswords => matches!(kind, Kind::HibpSha1Counts | Kind::HibpNtlmCounts),
        }
    }
}

/// Bytes of range bodies [`RangeIndex::open`] caches: some 8,000 ranges of
/// HIBP's size (about 30 KB each).
pub const DEFAULT_RANGE_CACHE: usize = 256 << 20;

/// The password segments of one generation, open for range reads.
pub struct RangeIndex {
    generation: u64,
    sha1: Vec<Part>,
    ntlm: Vec<Part>,
    /// The damaged segments of each corpus, which make its ranges fail
    /// (those of the sources that read them).
    damaged: Vec<(RangeKind, Kind, bool, Broken)>,
    /// What each open segment holds, for the error of damage found reading it.
    held: HashMap<PathBuf, String>,
    cache: BodyCache,
}

impl RangeIndex {
    /// Opens the password segments of the current generation. A directory
    /// without a manifest holds no store: an error, as for [`crate::Store`]; a
    /// damaged segment makes its corpus's ranges fail, naming what it held.
    pub fn open(dir: &DataDir) -> Result<RangeIndex> {
        RangeIndex::open_with_cache(dir, DEFAULT_RANGE_CACHE)
    }

    /// [`RangeIndex::open`] with a cache of at most `cache_bytes` of bodies (0:
    /// none).
    pub fn open_with_cache(dir: &DataDir, cache_bytes: usize) -> Result<RangeIndex> {
        // As in `Store::open`: a compaction may delete a file between our reading
        // the manifest and opening it; the manifest that replaced ours names its
        // successor, so reading again converges.
        let mut attempts = 0;
        loop {
            match RangeIndex::open_once(dir, cache_bytes, attempts >= 5) {
                Err(StoreError::Segment(SegmentError::Io { source, .. }))
                    if source.kind() == std::io::ErrorKind::NotFound && attempts < 5 =>
                {
                    attempts += 1;
                }
                other => return other,
            }
        }
    }

    fn open_once(dir: &DataDir, cache_bytes: usize, missing_is_damage: bool) -> Result<RangeIndex> {
        dir.check_store()?;
        let manifest = dir.manifest()?.ok_or_else(|| dir.no_store())?;
        let mut index = RangeIndex {
            generation: manifest.generation,
            sha1: Vec::new(),
            ntlm: Vec::new(),
            damaged: Vec::new(),
            held: HashMap::new(),
            cache: BodyCache::new(cache_bytes, cache_dir(dir)),
        };
        for range_kind in [RangeKind::Sha1, RangeKind::Ntlm] {
            let ntlm = range_kind == RangeKind::Ntlm;
            // The whole corpus is read from its totals and what they do not
            // cover; totals that do not open are only a shortcut lost.
            let mut whole = crate::totals::range_reads(&manifest, ntlm);
            let totals: Vec<usize> = whole
                .iter()
                .copied()
                .filter(|&i| manifest.segments[i].kind == Kind::password_totals(ntlm).name())
                .collect();
            let mut opened = Vec::new();
            for &i in &totals {
                match crate::reader::open_segment(dir, &manifest.segments[i], Kind::password_totals(ntlm)) {
                    Ok(seg) => opened.push((i, seg)),
                    Err(_) => {
                        opened.clear();
                        whole = crate::totals::range_reads_without_totals(&manifest, ntlm);
                        break;
                    }
                }
            }
            let pwned = Kind::password_counts(ntlm)[1];
            for (i, s) in manifest.segments.iter().enumerate() {
                let in_whole = whole.contains(&i);
                if !in_whole && s.kind != pwned.name() {
                    continue;
                }
                let kind = crate::reader::segment_kind(dir, s)?;
                let opened_total =
                    opened.iter().position(|(at, _)| *at == i).map(|p| opened.swap_remove(p).1);
                let result = match opened_total {
                    Some(seg) => Ok(seg),
                    None => crate::reader::open_segment(dir, s, kind),
                };
                match result {
                    Ok(seg) => {
                        index
                            .held
                            .insert(seg.path().to_owned(), manifest.describe_held(&s.kind, &s.breaches));
                        index.parts_mut(range_kind).push(Part { seg, whole: in_whole });
                    }
                    Err(SegmentError::Io { source, .. })
                        if source.kind() == std::io::ErrorKind::NotFound && !missing_is_damage =>
                    {
                        return Err(StoreError::Segment(SegmentError::Io {
                            path: dir.storage().object_path(&s.file),
                            source,
                        }));
                    }
                    Err(e) => {
                        let damaged = Broken {
                            kind: s.kind.clone(),
                            held: manifest.describe_held(&s.kind, &s.breaches),
                            path: dir.storage().object_path(&s.file),
                            detail: crate::reader::problem(&e),
                        };
                        index.damaged.push((range_kind, kind, in_whole, damaged));
                    }
                }
            }
        }
        Ok(index)
    }

    /// The error of reading a range of `kind` from `source` when one of its
    /// segments is damaged.
    fn check(&self, kind: RangeKind, source: RangeSource) -> Result<()> {
        match self
            .damaged
            .iter()
            .find(|(k, seg_kind, whole, _)| *k == kind && source.holds(*seg_kind, *whole))
        {
            Some((_, _, _, b)) => Err(StoreError::Damaged {
                kind: b.kind.clone(),
                held: b.held.clone(),
                path: b.path.clone(),
                detail: b.detail.clone(),
            }),
            None => Ok(()),
        }
    }

    pub fn generation(&self) -> u64 {
        self.generation
    }

    fn parts(&self, kind: RangeKind) -> &[Part] {
        match kind {
            RangeKind::Sha1 => &self.sha1,
            RangeKind::Ntlm => &self.ntlm,
        }
    }

    fn parts_mut(&mut self, kind: RangeKind) -> &mut Vec<Part> {
        match kind {
            RangeKind::Sha1 => &mut self.sha1,
            RangeKind::Ntlm => &mut self.ntlm,
        }
    }

    /// The body of the range `prefix` (20 bits), with its digest: from the
    /// cache, or formatted and then cached.
    ///
    /// A range that holds no hash is never answered empty: HIBP's ranges never
    /// are, and clients in the wild split the body on CRLF and parse every
    /// piece without checking. Its body is [`empty_range_padding`] instead.
    pub fn body(&self, kind: RangeKind, prefix: u32) -> Result<RangeBody> {
        self.body_from(kind, RangeSource::All, prefix)
    }

    /// [`RangeIndex::body`] of the counts of `source` alone.
    pub fn body_from(&self, kind: RangeKind, source: RangeSource, prefix: u32) -> Result<RangeBody> {
        let key = (prefix & 0xF_FFFF)
            | if kind == RangeKind::Ntlm { 1 << 20 } else { 0 }
            | if source == RangeSource::PwnedPasswords { 1 << 21 } else { 0 };
        if let Some(body) = self.cache.get(key) {
            return Ok(body);
        }
        let mut out = Vec::new();
        let hashes = self.write_range_from(kind, source, prefix, &mut [], &mut out)?;
        if hashes == 0 {
            self.write_range_from(kind, source, prefix, &mut empty_range_padding(kind, prefix), &mut out)?;
        }
        Ok(self.cache.insert(key, RangeBody::new(out, hashes)))
    }

    /// Appends the body of the range `prefix` (20 bits) to `out` and returns how
    /// many lines it wrote.
    ///
    /// `padding` holds random keys for HIBP's `Add-Padding`: their top 20 bits are
    /// replaced by `prefix`, and each is written as `SUFFIX:0` in sorted position
    /// among the real lines, so neither the order nor the shape of the body tells
    /// padding from data. A padding key equal to a real hash adds nothing.
    pub fn write_range(
        &self,
        kind: RangeKind,
        prefix: u32,
        padding: &mut [[u8; MAX_KEY_LEN]],
        out: &mut Vec<u8>,
    ) -> Result<usize> {
        self.write_range_from(kind, RangeSource::All, prefix, padding, out)
    }

    /// [`RangeIndex::write_range`] of the counts of `source` alone.
    pub fn write_range_from(
        &self,
        kind: RangeKind,
        source: RangeSource,
        prefix: u32,
        padding: &mut [[u8; MAX_KEY_LEN]],
        out: &mut Vec<u8>,
    ) -> Result<usize> {
        let prefix = prefix & 0xF_FFFF;
        let key_len = kind.key_len();
        for key in padding.iter_mut() {
            key[0] = (prefix >> 12) as u8;
            key[1] = (prefix >> 4) as u8;
            key[2] = ((prefix as u8 & 0x0F) << 4) | (key[2] & 0x0F);
            key[key_len..].fill(0);
        }
        padding.sort_unstable();

        self.check(kind, source)?;
        let damaged = |seg: &Segment, e: SegmentError| match e {
            SegmentError::DataCorruption { .. } => StoreError::Damaged {
                kind: seg.kind().name().to_owned(),
                held: self.held.get(seg.path()).cloned().unwrap_or_default(),
                path: seg.path().to_owned(),
                detail: crate::reader::problem(&e),
            },
            other => StoreError::Segment(other),
        };
        let mut cursors = Vec::with_capacity(2);
        let mut entries = 0;
        for seg in self.parts(kind).iter().filter(|p| source.holds(p.seg.kind(), p.whole)).map(|p| &p.seg) {
            let mut run = seg.range20_entries(prefix).map_err(|e| damaged(seg, e))?;
            entries += run.len();
            if let Some(head) = run.next() {
                cursors.push(Cursor { seg, head: head.map_err(|e| damaged(seg, e))?, run });
            }
        }
        out.reserve((entries + padding.len()) * (2 * key_len - 5 + 2 + 10));
        let mut pad = 0;
        let mut lines = 0;
        loop {
            // The smallest head among the segments and the padding; segments are
            // few (compaction keeps them so), so a linear scan beats a heap.
            let mut min: Option<[u8; MAX_KEY_LEN]> = padding.get(pad).copied();
            for c in &cursors {
                if min.is_none_or(|m| c.head.0 < m) {
                    min = Some(c.head.0);
                }
            }
            let Some(key) = min else { break };
            let mut count = 0u64;
            let mut i = 0;
            while i < cursors.len() {
                let c = &mut cursors[i];
                if c.head.0 == key {
                    count += c.head.1;
                    match c.run.next() {
                        Some(head) => c.head = head.map_err(|e| damaged(c.seg, e))?,
                        None => {
                            cursors.swap_remove(i);
                            continue;
                        }
                    }
                }
                i += 1;
            }
            while padding.get(pad) == Some(&key) {
                pad += 1;
            }
            if lines > 0 {
                out.extend_from_slice(b"\r\n");
            }
            write_line(out, &key[..key_len], count);
            lines += 1;
        }
        Ok(lines)
    }
}

/// Lines of padding an empty range is answered with: as many as HIBP's
/// `Add-Padding` adds on top of a range (10 to 209), so that an empty range is
/// no smaller than a padded answer's random part.
pub const EMPTY_RANGE_PADDING: std::ops::RangeInclusive<usize> = 10..=209;

/// The padding keys of an empty range (before [`RangeIndex::write_range`] puts
/// the prefix in their top 20 bits). They are derived from the corpus and the
/// prefix alone, not drawn at random: the body, and so its ETag, stays the same
/// from request to request, replica to replica and generation to generation for
/// as long as the range stays empty, so caches and mirrors' revalidations work
/// as for any other range. They are `SUFFIX:0` lines, which clients and
/// importers read as "not seen", exactly like `Add-Padding`'s.
fn empty_range_padding(kind: RangeKind, prefix: u32) -> Vec<[u8; MAX_KEY_LEN]> {
    let mut hasher = blake3::Hasher::new_derive_key("leakwatch 2026 empty range padding");
    hasher.update(&[u8::from(kind == RangeKind::Ntlm)]);
    hasher.update(&(prefix & 0xF_FFFF).to_le_bytes());
    let mut xof = hasher.finalize_xof();
    let mut first = [0u8; 8];
    xof.fill(&mut first);
    let span = EMPTY_RANGE_PADDING.end() - EMPTY_RANGE_PADDING.start() + 1;
    let lines = EMPTY_RANGE_PADDING.start() + (u64::from_le_bytes(first) % span as u64) as usize;
    let mut keys = vec![[0u8; MAX_KEY_LEN]; lines];
    for key in &mut keys {
        xof.fill(&mut key[..kind.key_len()]);
    }
    keys
}

/// Where the range cache's files go: the data directory's `tmp/`, when it can
/// be written (a server may have read access only; the cache then uses memory).
fn cache_dir(dir: &DataDir) -> Option<std::path::PathBuf> {
    let tmp = dir.tmp();
    (dir.root().is_dir() && std::fs::create_dir_all(&tmp).is_ok()).then_some(tmp)
}

/// An open segment of a corpus.
struct Part {
    seg: Segment,
    /// Whether a range of the whole corpus reads it: the totals and the
    /// count segments they do not cover, or every count segment (Pwned
    /// Passwords' are opened for their own source besides).
    whole: bool,
}

/// A damaged segment of a corpus: what [`StoreError::Damaged`] says of it.
struct Broken {
    kind: String,
    held: String,
    path: PathBuf,
    detail: String,
}

/// The unread part of one segment's run of a range, and its smallest entry.
struct Cursor<'a> {
    seg: &'a Segment,
    head: ([u8; MAX_KEY_LEN], u64),
    run: RangeEntries<'a>,
}

const HEX: &[u8; 16] = b"0123456789ABCDEF";

/// Writes `SUFFIX:COUNT` for a full key: the hex digits after the fifth, then the
/// count in decimal. Built in a stack buffer and appended once: a range is
/// hundreds of these, and this is the server's hottest loop.
fn write_line(out: &mut Vec<u8>, key: &[u8], count: u64) {
    let mut line = [0u8; 2 * MAX_KEY_LEN + 1 + 20];
    line[0] = HEX[usize::from(key[2] & 0x0F)];
    let mut at = 1;
    for &b in &key[3..] {
        line[at] = HEX[usize::from(b >> 4)];
        line[at + 1] = HEX[usize::from(b & 0x0F)];
        at += 2;
    }
    line[at] = b':';
    at += 1;
    let mut digits = [0u8; 20];
    let mut n = count;
    let mut d = digits.len();
    loop {
        d -= 1;
        digits[d] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    let len = digits.len() - d;
    line[at..at + len].copy_from_slice(&digits[d..]);
    out.extend_from_slice(&line[..at + len]);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::manifest::Manifest;

    #[test]
    fn lines_are_upper_case_suffixes_and_decimal_counts() {
        let key = leakwatch_types::sha1(b"password");
        let mut out = Vec::new();
        write_line(&mut out, &key, 10_434_004);
        assert_eq!(out, b"1E4C9B93F3F0682250B6CF8331B7EE68FD8:10434004");
        out.clear();
        write_line(&mut out, &[0xAB, 0xCD, 0xE0, 0x01], 0);
        assert_eq!(out, b"001:0");
        out.clear();
        write_line(&mut out, &[0, 0, 0x0F, 0xFF], u64::MAX);
        assert_eq!(out, format!("FFF:{}", u64::MAX).as_bytes());
    }

    #[test]
    fn an_empty_store_has_empty_ranges_and_padding_only() {
        let tmp = tempfile::tempdir().unwrap();
        // A directory that holds no store is no index at all.
        match RangeIndex::open(&DataDir::new(tmp.path())) {
            Err(StoreError::NoStore { reason: "no MANIFEST", .. }) => {}
            other => panic!("{:?}", other.err()),
        }
        Manifest::new().store(tmp.path()).unwrap();
        let index = RangeIndex::open(&DataDir::new(tmp.path())).unwrap();
        assert_eq!(index.generation(), 0);
        let mut out = Vec::new();
        assert_eq!(index.write_range(RangeKind::Sha1, 0x5BAA6, &mut [], &mut out).unwrap(), 0);
        assert!(out.is_empty());

        let mut padding = [[0xFFu8; MAX_KEY_LEN], [0x11u8; MAX_KEY_LEN]];
        assert_eq!(index.write_range(RangeKind::Ntlm, 0x5BAA6, &mut padding, &mut out).unwrap(), 2);
        let text = String::from_utf8(out).unwrap();
        let lines: Vec<&str> = text.split("\r\n").collect();
        assert_eq!(lines, [format!("{}:0", "1".repeat(27)), format!("{}:0", "F".repeat(27))]);
    }

    /// Ingests `lines` of `email:password` into breach `name`.
    fn ingest_lines(data: &DataDir, name: &str, lines: &str) {
        let tmp = tempfile::NamedTempFile::new().unwrap();
        std::fs::write(tmp.path(), lines).unwrap();
        let options = crate::IngestOptions {
            breach: crate::BreachInfo { name: name.into(), ..crate::BreachInfo::default() },
            format: None,
            memory_budget: 1 << 30,
        };
        let input = leakwatch_ingest::Input::open(tmp.path().to_str().unwrap()).unwrap();
        crate::ingest(data, &options, vec![input], &crate::Progress::default(), &mut |_| {}).unwrap();
    }

    #[test]
    fn ranges_equal_the_store_union_across_segments() {
        let tmp = tempfile::tempdir().unwrap();
        let data = DataDir::new(tmp.path().join("data"));
        // Its key beside it, in the temporary directory, not in ~/.config.
        data.init(Some(&tmp.path().join("data.key"))).unwrap();
        let combo = |breach: u32| -> String {
            (0..3000).map(|i| format!("user{i}@example.com:pw{}\n", (i * breach) % 700)).collect()
        };
        ingest_lines(&data, "Alpha", &combo(3));
        ingest_lines(&data, "Beta", &combo(7));
        let store = crate::Store::open(&data).unwrap();
        let index = RangeIndex::open(&data).unwrap();
        assert_eq!(index.generation(), store.generation());
        assert_eq!(index.whole_reads(RangeKind::Sha1), 1, "two breaches' counts are read from their totals");

        let mut out = Vec::new();
        for kind in [RangeKind::Sha1, RangeKind::Ntlm] {
            for pw in 0..700 {
                let password = format!("pw{pw}");
                let hash = match kind {
                    RangeKind::Sha1 => leakwatch_types::sha1(password.as_bytes()).to_vec(),
                    RangeKind::Ntlm => leakwatch_types::ntlm(password.as_bytes()).to_vec(),
                };
                let prefix = u32::from_be_bytes([0, hash[0], hash[1], hash[2]]) >> 4;
                let want = store_range_lines(&store, kind, prefix);
                out.clear();
                let lines = index.write_range(kind, prefix, &mut [], &mut out).unwrap();
                assert_eq!(lines, want.len());
                assert_eq!(String::from_utf8(out.clone()).unwrap(), want.join("\r\n"));

                // Padding lands in sorted position and never changes a real line.
                let mut padding = vec![[0u8; MAX_KEY_LEN]; 12];
                for (i, p) in padding.iter_mut().enumerate() {
                    p.fill(i as u8 * 21);
                }
                out.clear();
                let padded = index.write_range(kind, prefix, &mut padding, &mut out).unwrap();
                let text = String::from_utf8(out.clone()).unwrap();
                let got: Vec<&str> = text.split("\r\n").collect();
                assert_eq!(got.len(), padded);
                assert!(got.windows(2).all(|w| w[0] < w[1]), "sorted, no duplicates");
                assert!(want.iter().all(|line| got.contains(&line.as_str())));
                assert!(got.iter().filter(|l| !want.iter().any(|w| w == *l)).all(|l| l.ends_with(":0")));
                assert!(got
                    .iter()
                    .all(|l| l.len() > kind.suffix_len() && l.as_bytes()[kind.suffix_len()] == b':'));
            }
        }
    }

    /// The lines of a range as the store's own lookup sums them, from every
    /// breach's segments and never from the totals.
    fn store_range_lines(store: &crate::Store, kind: RangeKind, prefix: u32) -> Vec<String> {
        store
            .range(kind == RangeKind::Ntlm, prefix)
            .unwrap()
            .iter()
            .map(|(k, c)| {
                let mut line = Vec::new();
                write_line(&mut line, &k[..kind.key_len()], *c);
                String::from_utf8(line).unwrap()
            })
            .collect()
    }

    impl RangeIndex {
        /// How many segments a range of the whole corpus reads.
        fn whole_reads(&self, kind: RangeKind) -> usize {
            self.parts(kind).iter().filter(|p| p.whole).count()
        }
    }

    /// Every range of both corpora, as the index writes them.
    fn all_ranges(index: &RangeIndex, prefixes: &[u32]) -> Vec<String> {
        let mut bodies = Vec::new();
        for kind in [RangeKind::Sha1, RangeKind::Ntlm] {
            for &prefix in prefixes {
                let mut out = Vec::new();
                index.write_range(kind, prefix, &mut [], &mut out).unwrap();
                bodies.push(String::from_utf8(out).unwrap());
            }
        }
        bodies
    }

    /// Ranges read from the totals equal those summed from every breach's
    /// segments, through ingests that fold into them or wait, a removal that
    /// drops them and a refresh that builds them again.
    #[test]
    fn totals_answer_as_every_breach_summed() {
        let tmp = tempfile::tempdir().unwrap();
        let data = DataDir::new(tmp.path().join("data"));
        data.init(Some(&tmp.path().join("data.key"))).unwrap();
        let combo = |breach: u32, n: u32| -> String {
            (0..n).map(|i| format!("user{i}.{breach}@example.com:pw{}\n", (i * breach) % 3000)).collect()
        };
        let prefixes: Vec<u32> = (0..3000)
            .step_by(7)
            .flat_map(|pw| {
                let pw = format!("pw{pw}");
                let [s, n] = [
                    leakwatch_types::sha1(pw.as_bytes()).to_vec(),
                    leakwatch_types::ntlm(pw.as_bytes()).to_vec(),
                ];
                [s, n].map(|h| u32::from_be_bytes([0, h[0], h[1], h[2]]) >> 4)
            })
            .collect();
        // What the ranges are when every breach's segments are summed: the
        // store's own lookup, which never reads the totals.
        let summed = |data: &DataDir| -> Vec<String> {
            let store = crate::Store::open(data).unwrap();
            let mut bodies = Vec::new();
            for kind in [RangeKind::Sha1, RangeKind::Ntlm] {
                for &prefix in &prefixes {
                    bodies.push(store_range_lines(&store, kind, prefix).join("\r\n"));
                }
            }
            bodies
        };
        let check = |data: &DataDir, whole: usize, what: &str| {
            let index = RangeIndex::open_with_cache(data, 0).unwrap();
            for kind in [RangeKind::Sha1, RangeKind::Ntlm] {
                assert_eq!(index.whole_reads(kind), whole, "{what}: {kind:?}");
            }
            assert_eq!(all_ranges(&index, &prefixes), summed(data), "{what}");
        };

        ingest_lines(&data, "Alpha", &combo(3, 2000));
        check(&data, 1, "one breach: its own segment");
        ingest_lines(&data, "Beta", &combo(7, 2000));
        check(&data, 1, "two breaches: their totals");
        // Small ingests wait beside the totals, up to MAX_UNCOVERED of them.
        for (n, name) in ["C1", "C2", "C3", "C4"].into_iter().enumerate() {
            ingest_lines(&data, name, &combo(11 + n as u32, 20));
            check(&data, 2 + n, "small ingests wait");
        }
        ingest_lines(&data, "C5", &combo(19, 20));
        check(&data, 1, "the fifth is folded in with the others");
        // Removing a breach drops the totals holding it, and they are built
        // again from what is left.
        crate::remove_breach(&data, "Beta").unwrap();
        check(&data, 1, "after a removal");
        let manifest = data.manifest().unwrap().unwrap();
        let totals: Vec<_> = manifest.segments.iter().filter(|s| s.kind == "sha1-totals").collect();
        assert_eq!(totals.len(), 1);
        assert_eq!(totals[0].covers.len(), 6, "Alpha and the five small breaches");
        assert!(!totals[0].breaches.contains(&2), "Beta is out of the totals");
    }

    #[test]
    fn the_pwned_passwords_source_leaves_the_own_dumps_out() {
        let tmp = tempfile::tempdir().unwrap();
        let data = DataDir::new(tmp.path().join("data"));
        data.init(Some(&tmp.path().join("data.key"))).unwrap();
        ingest_lines(&data, "Alpha", "a@example.com:password\nb@example.com:own-only\n");
        let download = tmp.path().join("pwned.txt");
        let hex = |pw: &str| leakwatch_types::encode_hex_upper(&leakwatch_types::sha1(pw.as_bytes()));
        std::fs::write(&download, format!("{}:10\n", hex("password"))).unwrap();
        crate::import_pwned_passwords(&data, download.to_str().unwrap(), false, 1 << 30, &Default::default())
            .unwrap();
        let index = RangeIndex::open(&data).unwrap();
        let line = |pw: &str, count: u64| format!("{}:{count}", &hex(pw)[5..]);
        let prefix = |pw: &str| u32::from_str_radix(&hex(pw)[..5], 16).unwrap();
        let text = |body: RangeBody| String::from_utf8(body.bytes().to_vec()).unwrap();

        let all = text(index.body(RangeKind::Sha1, prefix("password")).unwrap());
        assert!(all.split("\r\n").any(|l| l == line("password", 11)), "{all}");
        let pwned =
            text(index.body_from(RangeKind::Sha1, RangeSource::PwnedPasswords, prefix("password")).unwrap());
        assert_eq!(pwned, line("password", 10));

        // A range only the own dumps fill is, from the Pwned Passwords alone,
        // an empty range: padding, as for any other.
        let own = text(index.body(RangeKind::Sha1, prefix("own-only")).unwrap());
        assert_eq!(own, line("own-only", 1));
        let empty =
            index.body_from(RangeKind::Sha1, RangeSource::PwnedPasswords, prefix("own-only")).unwrap();
        assert_eq!(empty.hashes, 0);
        let padding = text(empty);
        assert!(padding.split("\r\n").all(|l| l.ends_with(":0") && l != line("own-only", 0)), "{padding}");
        assert!(EMPTY_RANGE_PADDING.contains(&padding.split("\r\n").count()));
    }

    #[test]
    fn cached_bodies_equal_formatted_ones_and_stay_within_budget() {
        let tmp = tempfile::tempdir().unwrap();
        let data = DataDir::new(tmp.path().join("data"));
        data.init(Some(&tmp.path().join("data.key"))).unwrap();
        let combo: String = (0..5000).map(|i| format!("u{i}@example.com:pw{i}\n")).collect();
        ingest_lines(&data, "Alpha", &combo);
        // Room for a handful of bodies only, so inserts must evict.
        for budget in [0, 16 * 400, DEFAULT_RANGE_CACHE] {
            let index = RangeIndex::open_with_cache(&data, budget).unwrap();
            for round in 0..2 {
                for prefix in (0..1 << 20).step_by(997) {
                    for kind in [RangeKind::Sha1, RangeKind::Ntlm] {
                        let mut want = Vec::new();
                        index.write_range(kind, prefix, &mut [], &mut want).unwrap();
                        let body = index.body(kind, prefix).unwrap();
                        if want.is_empty() {
                            index
                                .write_range(kind, prefix, &mut empty_range_padding(kind, prefix), &mut want)
                                .unwrap();
                        }
                        assert_eq!(body.bytes(), &want[..], "{prefix:05X} round {round}");
                        assert_eq!(body.digest, RangeBody::new(want, 0).digest);
                        assert!(index.cache.used() <= budget);
                    }
                }
            }
        }
    }

    #[test]
    fn an_empty_range_is_answered_with_stable_padding_only() {
        let tmp = tempfile::tempdir().unwrap();
        Manifest::new().store(tmp.path()).unwrap();
        let dir = DataDir::new(tmp.path());
        for kind in [RangeKind::Sha1, RangeKind::Ntlm] {
            for prefix in [0x00000, 0x5BAA6, 0xFFFFF] {
                let body = RangeIndex::open(&dir).unwrap().body(kind, prefix).unwrap();
                let again = RangeIndex::open_with_cache(&dir, 0).unwrap().body(kind, prefix).unwrap();
                assert_eq!((body.bytes(), body.digest), (again.bytes(), again.digest));
                assert_eq!(body.hashes, 0);
                let text = std::str::from_utf8(body.bytes()).unwrap();
                assert!(!text.ends_with("\r\n"));
                let lines: Vec<&str> = text.split("\r\n").collect();
                assert!(EMPTY_RANGE_PADDING.contains(&lines.len()), "{} lines", lines.len());
                assert!(lines.is_sorted());
                for line in lines {
                    let (suffix, count) = line.split_once(':').unwrap();
                    assert_eq!(count, "0");
                    assert_eq!(suffix.len(), kind.suffix_len());
                    assert!(suffix.bytes().all(|b| b.is_ascii_digit() || (b'A'..=b'F').contains(&b)));
                }
            }
        }
        let a = RangeIndex::open(&dir).unwrap();
        assert_ne!(a.body(RangeKind::Sha1, 1).unwrap().bytes(), a.body(RangeKind::Sha1, 2).unwrap().bytes());
    }
}
