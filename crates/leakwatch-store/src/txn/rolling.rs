//! A segment writer that rolls over: when the segment being written would
//! pass a limit of the format (`leakwatch_segment::MAX_ENTRIES` entries,
//! `MAX_HEAP_BYTES` of payloads), it is finished and the entries go on into a
//! new segment of the same kind. Every writer of the store gets one from
//! [`SegmentSet::writer`](super::SegmentSet::writer), so no chain has a limit
//! of its own to check.
//!
//! Keys arrive sorted, so the segments of one writer hold consecutive key
//! ranges; a run of equal keys may be cut between two of them. Every reader
//! takes a key's entries from all the segments of its kind (counts summed,
//! values and payloads gathered, compaction merging equal keys), so where a
//! run is cut changes no answer.
//!
//! A writer whose payloads follow its entries ([`RollingWriter::put_payload`])
//! keeps the segments its entries have filled open until their payloads are
//! in: payloads come in the order of their entries, so the oldest open
//! segment takes the next one.

use std::collections::VecDeque;
use std::path::{Path, PathBuf};

use leakwatch_segment::{Kind, SegmentError, SegmentWriter, Written};

use crate::dir::SegmentLimits;

/// Writes the entries of one kind into as many segments as its limits need.
/// Its methods are [`SegmentWriter`]'s, with the same errors.
pub(crate) struct RollingWriter {
    kind: Kind,
    limits: SegmentLimits,
    /// The segments' paths are this with the segment's number added.
    stem: PathBuf,
    /// The caller's bound on the entries to come, less those of the segments
    /// before the current one: it picks each segment's prefix width.
    expected: u64,
    current: Part,
    /// How many segments were started.
    started: usize,
    /// Segments with all their entries whose payloads are still to come,
    /// oldest first.
    waiting: VecDeque<Part>,
    finished: Vec<Written>,
    /// What the caller allowed the heap ([`SegmentWriter::set_heap_memory`]),
    /// for each new segment.
    heap_memory: Option<usize>,
    /// Payload bytes the caller expects still to come ([`SegmentWriter::reserve_heap`]).
    heap_reserve: u64,
}

/// One segment being written, and what it holds so far.
struct Part {
    writer: SegmentWriter,
    entries: u64,
    heap: u64,
    /// Payloads of its entries not yet put.
    owed: u64,
}

impl Part {
    fn create(path: &Path, kind: Kind, expected: u64) -> Result<Part, SegmentError> {
        Ok(Part { writer: SegmentWriter::create(path, kind, expected)?, entries: 0, heap: 0, owed: 0 })
    }
}

/// The `n`th segment's path: `KIND-PID-SERIAL.n.building`, with no dash
/// added, since storages read the writer's pid as the second field from the
/// right to tell whose staged files they are.
fn part_path(stem: &Path, n: usize) -> PathBuf {
    let mut path = stem.as_os_str().to_owned();
    path.push(format!(".{n}.building"));
    path.into()
}

impl RollingWriter {
    /// Starts writing entries of `kind` (at most about `expected`) into
    /// segments at `stem` with a number added.
    pub(crate) fn create(
        stem: PathBuf,
        kind: Kind,
        expected: u64,
        limits: SegmentLimits,
    ) -> Result<Self, SegmentError> {
        let current = Part::create(&part_path(&stem, 0), kind, expected.min(limits.entries))?;
        Ok(RollingWriter {
            kind,
            limits,
            stem,
            expected,
            current,
            started: 1,
            waiting: VecDeque::new(),
            finished: Vec::new(),
            heap_memory: None,
            heap_reserve: 0,
        })
    }

    pub(crate) fn kind(&self) -> Kind {
        self.kind
    }

    /// Finishes the current segment (or sets it aside for its payloads) and
    /// starts the next.
    fn roll(&mut self) -> Result<(), SegmentError> {
        self.expected = self.expected.saturating_sub(self.current.entries);
        self.heap_reserve = self.heap_reserve.saturating_sub(self.current.heap);
        let path = part_path(&self.stem, self.started);
        let mut next = Part::create(&path, self.kind, self.expected.clamp(1, self.limits.entries))?;
        self.started += 1;
        if let Some(bytes) = self.heap_memory {
            next.writer.set_heap_memory(bytes);
        }
        if self.heap_reserve > 0 {
            next.writer.reserve_heap(self.heap_reserve.min(self.limits.heap_bytes));
        }
        let full = std::mem::replace(&mut self.current, next);
        if full.owed > 0 {
            self.waiting.push_back(full);
        } else {
            self.finished.push(full.writer.finish_unsynced()?);
        }
        Ok(())
    }

    /// Room in the current segment for one entry of `payload` heap bytes.
    fn room_for_one(&mut self, payload: u64) -> Result<(), SegmentError> {
        let c = &self.current;
        if c.entries > 0 && (c.entries >= self.limits.entries || c.heap + payload > self.limits.heap_bytes) {
            self.roll()?;
        }
        Ok(())
    }

    /// How many of `n` entries without payloads the current segment takes
    /// (at least one: a new segment is started if need be).
    fn room_for(&mut self, n: usize) -> Result<usize, SegmentError> {
        if self.current.entries >= self.limits.entries {
            self.roll()?;
        }
        let room = self.limits.entries.saturating_sub(self.current.entries).max(1);
        Ok(n.min(usize::try_from(room).unwrap_or(usize::MAX)))
    }

    pub(crate) fn set_heap_memory(&mut self, bytes: usize) {
        self.heap_memory = Some(bytes);
        self.current.writer.set_heap_memory(bytes);
    }

    pub(crate) fn reserve_heap(&mut self, bytes: u64) {
        self.heap_reserve = bytes;
        self.current.writer.reserve_heap(bytes.min(self.limits.heap_bytes));
    }

    #[inline]
    pub(crate) fn push_count(&mut self, key: &[u8], count: u64) -> Result<(), SegmentError> {
        self.room_for_one(0)?;
        self.current.writer.push_count(key, count)?;
        self.current.entries += 1;
        Ok(())
    }

    #[inline]
    pub(crate) fn push_value(&mut self, key: &[u8], value: &[u8]) -> Result<(), SegmentError> {
        self.room_for_one(0)?;
        self.current.writer.push_value(key, value)?;
        self.current.entries += 1;
        Ok(())
    }

    pub(crate) fn push_payload(
        &mut self,
        key: &[u8],
        breach: u32,
        payload: &[u8],
    ) -> Result<(), SegmentError> {
        let len = payload.len() as u64;
        self.room_for_one(len)?;
        self.current.writer.push_payload(key, breach, payload)?;
        self.current.entries += 1;
        self.current.heap += len;
        Ok(())
    }

    /// [`SegmentWriter::push_payload_lens`]: the entries go into as many
    /// segments as they fill, each owed its payloads.
    pub(crate) fn push_payload_lens(
        &mut self,
        key: &[u8],
        breach: u32,
        lens: &[u8],
    ) -> Result<(), SegmentError> {
        let mut rest = lens;
        while !rest.is_empty() {
            let c = &self.current;
            let room = self.limits.entries.saturating_sub(c.entries);
            let (mut n, mut bytes) = (0usize, 0u64);
            for &len in rest {
                if n as u64 >= room || c.heap + bytes + u64::from(len) > self.limits.heap_bytes {
                    break;
                }
                n += 1;
                bytes += u64::from(len);
            }
            if n == 0 {
                if c.entries > 0 {
                    self.roll()?;
                    continue;
                }
                // Not even one entry fits an empty segment: the writer says why.
                n = 1;
                bytes = u64::from(rest[0]);
            }
            self.current.writer.push_payload_lens(key, breach, &rest[..n])?;
            self.current.entries += n as u64;
            self.current.heap += bytes;
            self.current.owed += n as u64;
            rest = &rest[n..];
        }
        Ok(())
    }

    /// [`SegmentWriter::put_payload`]: into the oldest segment still owed
    /// payloads, which is finished once it has them all.
    pub(crate) fn put_payload(&mut self, payload: &[u8]) -> Result<(), SegmentError> {
        let Some(oldest) = self.waiting.front_mut() else {
            self.current.owed = self.current.owed.saturating_sub(1);
            return self.current.writer.put_payload(payload);
        };
        oldest.writer.put_payload(payload)?;
        oldest.owed -= 1;
        if oldest.owed == 0 {
            let full = self.waiting.pop_front().expect("the oldest is there");
            self.finished.push(full.writer.finish_unsynced()?);
        }
        Ok(())
    }

    pub(crate) fn push_keys<const K: usize, const V: usize>(
        &mut self,
        keys: &[[u8; K]],
        value: &[u8; V],
    ) -> Result<(), SegmentError> {
        let mut rest = keys;
        while !rest.is_empty() {
            let (now, later) = rest.split_at(self.room_for(rest.len())?);
            self.current.writer.push_keys(now, value)?;
            self.current.entries += now.len() as u64;
            rest = later;
        }
        Ok(())
    }

    pub(crate) fn push_counts<const K: usize>(
        &mut self,
        entries: &[([u8; K], u64)],
    ) -> Result<(), SegmentError> {
        let mut rest = entries;
        while !rest.is_empty() {
            let (now, later) = rest.split_at(self.room_for(rest.len())?);
            self.current.writer.push_counts(now)?;
            self.current.entries += now.len() as u64;
            rest = later;
        }
        Ok(())
    }

    /// Finishes every segment, unsynced (the caller syncs them together), in
    /// key order.
    pub(crate) fn finish(mut self) -> Result<Vec<Written>, SegmentError> {
        for part in self.waiting.into_iter().chain([self.current]) {
            self.finished.push(part.writer.finish_unsynced()?);
        }
        Ok(self.finished)
    }

    /// Stops writing and removes what was written.
    pub(crate) fn abandon(self) -> Result<(), SegmentError> {
        for written in self.finish()? {
            let _ = std::fs::remove_file(&written.path);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use leakwatch_segment::Segment;

    use super::*;

    /// Domain entries as a chain writes them: runs of one key, payloads of
    /// 1 to 40 bytes.
    fn entries() -> Vec<([u8; 16], Vec<u8>)> {
        let mut out = Vec::new();
        for k in 0..40u8 {
            // Runs from 1 entry to longer than a segment holds.
            for i in 0..(1 + usize::from(k) * 3) {
                out.push(([k; 16], vec![b'a' + (i % 26) as u8; 1 + (i * 7 + usize::from(k)) % 40]));
            }
        }
        out
    }

    /// What the segments written hold, in order: (key, breach, payload).
    fn read_back(parts: &[Written], limits: SegmentLimits) -> Vec<([u8; 16], u32, Vec<u8>)> {
        let mut out = Vec::new();
        for w in parts {
            let seg = Segment::open(&w.path).unwrap();
            seg.verify().unwrap();
            assert!(seg.len() <= limits.entries, "{} entries", seg.len());
            let mut heap = 0;
            for i in 0..seg.len() as usize {
                let (breach, payload) = seg.payload(i).unwrap();
                heap += payload.len() as u64;
                out.push((seg.key(i)[..16].try_into().unwrap(), breach, payload.to_vec()));
            }
            assert!(heap <= limits.heap_bytes, "{heap} bytes of payloads");
        }
        out
    }

    /// Payloads pushed with their entries and after them roll over at
    /// whichever limit comes first, and the segments hold every entry once,
    /// in order.
    #[test]
    fn payload_entries_roll_over_at_either_limit() {
        let tmp = tempfile::tempdir().unwrap();
        let entries = entries();
        let want: Vec<_> = entries.iter().map(|(k, p)| (*k, 7, p.clone())).collect();
        for (n, limits) in [
            SegmentLimits { entries: 50, ..SegmentLimits::FORMAT },
            SegmentLimits { heap_bytes: 600, ..SegmentLimits::FORMAT },
            SegmentLimits { entries: 23, heap_bytes: 300, ..SegmentLimits::FORMAT },
            SegmentLimits::FORMAT,
        ]
        .into_iter()
        .enumerate()
        {
            let mut now =
                RollingWriter::create(tmp.path().join(format!("now{n}")), Kind::Domains, 10, limits).unwrap();
            for (key, payload) in &entries {
                now.push_payload(key, 7, payload).unwrap();
            }
            let now = now.finish().unwrap();
            assert_eq!(read_back(&now, limits), want, "{limits:?}");

            let mut later =
                RollingWriter::create(tmp.path().join(format!("later{n}")), Kind::Domains, 10, limits)
                    .unwrap();
            for run in entries.chunk_by(|a, b| a.0 == b.0) {
                let lens: Vec<u8> = run.iter().map(|(_, p)| p.len() as u8).collect();
                later.push_payload_lens(&run[0].0, 7, &lens).unwrap();
            }
            for (_, payload) in &entries {
                later.put_payload(payload).unwrap();
            }
            let later = later.finish().unwrap();
            assert_eq!(read_back(&later, limits), want, "{limits:?}");
            assert_eq!(now.len(), later.len(), "both ways roll over at the same entries");
            if limits != SegmentLimits::FORMAT {
                assert!(now.len() > 2, "{limits:?} rolled over");
            } else {
                assert_eq!(now.len(), 1);
            }
        }
    }

    /// Batches of keys and of counts are cut where a segment is full.
    /// The pid stays the second field from the right of a staged name.
    #[test]
    fn staged_names_end_in_pid_and_serial() {
        let path = part_path(Path::new("/s/credential-keys-4242-7"), 3);
        assert_eq!(path, Path::new("/s/credential-keys-4242-7.3.building"));
        let name = path.file_name().unwrap().to_str().unwrap();
        assert_eq!(name.rsplit('-').nth(1), Some("4242"));
    }

    #[test]
    fn batches_are_cut_at_the_entry_limit() {
        let tmp = tempfile::tempdir().unwrap();
        let limits = SegmentLimits { entries: 7, ..SegmentLimits::FORMAT };
        let keys: Vec<[u8; 16]> = (0..60u32).map(|i| [(i / 3) as u8; 16]).collect();
        let mut w = RollingWriter::create(tmp.path().join("keys"), Kind::CredentialKeys, 60, limits).unwrap();
        for batch in keys.chunks(11) {
            w.push_keys(batch, &[]).unwrap();
        }
        let parts = w.finish().unwrap();
        assert_eq!(parts.iter().map(|p| p.entries).collect::<Vec<_>>(), [7, 7, 7, 7, 7, 7, 7, 7, 4]);
        let got: Vec<[u8; 16]> = parts
            .iter()
            .flat_map(|p| {
                let seg = Segment::open(&p.path).unwrap();
                (0..seg.len() as usize).map(move |i| seg.key(i)[..16].try_into().unwrap()).collect::<Vec<_>>()
            })
            .collect();
        assert_eq!(got, keys);

        let counts: Vec<([u8; 20], u64)> = (0..30u8).map(|i| ([i; 20], u64::from(i) + 1)).collect();
        let mut w = RollingWriter::create(tmp.path().join("counts"), Kind::Sha1Counts, 30, limits).unwrap();
        for batch in counts.chunks(4) {
            w.push_counts(batch).unwrap();
        }
        let parts = w.finish().unwrap();
        assert_eq!(parts.iter().map(|p| p.entries).collect::<Vec<_>>(), [7, 7, 7, 7, 2]);
        let mut got = Vec::new();
        for p in &parts {
            let seg = Segment::open(&p.path).unwrap();
            for i in 0..seg.len() as usize {
                got.push((seg.key(i)[..20].try_into().unwrap(), seg.count(i).unwrap()));
            }
        }
        assert_eq!(got, counts);
    }
}
