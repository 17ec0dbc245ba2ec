//! The transaction layer: how every writer (ingest, import, sync, rekey,
//! compaction, `breach set` and `breach remove`, repair) changes a store, over
//! its [`Storage`].
//!
//! A write is a [`Txn`]: it takes the writer lock, loads the manifest in force
//! (and its version), removes what killed writers left, writes new segments
//! through a [`SegmentSet`], and commits by publishing a new manifest, after
//! which it deletes the segments the new manifest no longer names.
//!
//! Invariants, which the power-loss tests (`tests/crash.rs`) check by cutting
//! every client's writes at every step:
//! - **Objects before names.** A segment is put under its content hash and
//!   persisted before any manifest names it: a manifest never names an
//!   object that is missing or torn after a power loss.
//! - **One atomic step.** The only change a reader can see is the manifest's
//!   publish, conditional on the version the writer loaded: a store reopened
//!   after a crash answers as before the write or as after it.
//! - **Names are content.** An object is never changed: a name put again gets
//!   the same bytes, made durable before they take the name.
//! - **Delete after publish.** An object leaves only once a published
//!   manifest no longer names it (two segments of equal content share a
//!   name, so it is the name that counts, not the segment); until the next
//!   writer's orphan removal, objects no manifest names are inert.
//! - **Counts stay with their breach.** Segments of the kinds whose entries do
//!   not name their breach (counts, credential triples) are merged only with
//!   segments of the same breaches ([`merge_groups`]), so `breach remove` can
//!   drop a breach's share whole. Their sums across breaches are derived
//!   segments of their own (`crate::totals`), dropped and summed again.

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::sync::Arc;

use leakwatch_segment::{Kind, Segment};

use crate::dir::{DataDir, SegmentLimits};
use crate::error::{Result, StoreError};
use crate::manifest::{Manifest, SegmentRef};
use crate::storage::{Pending, Storage, Version, WriterLock};

mod rolling;

pub(crate) use rolling::RollingWriter;

/// One writer's change to a store, under its lock.
pub(crate) struct Txn {
    dir: DataDir,
    lock: WriterLock,
    /// The manifest the write builds on, then the one it publishes.
    pub(crate) manifest: Manifest,
    /// The version of the manifest in force: what the next publish is
    /// conditional on.
    version: Version,
}

impl Txn {
    /// Begins a write on a store that may not exist yet (a new manifest
    /// then), removing what killed writers left behind.
    pub(crate) fn begin(dir: &DataDir) -> Result<Txn> {
        let txn = Txn::begin_keeping(dir)?;
        dir.remove_orphans(&txn.manifest, &txn.lock)?;
        Ok(txn)
    }

    /// Begins a write that writes no segment, and so leaves other writers'
    /// leftovers for the next one that does.
    pub(crate) fn begin_keeping(dir: &DataDir) -> Result<Txn> {
        let lock = dir.lock()?;
        let (manifest, version) =
            Manifest::load_from(dir.storage())?.unwrap_or_else(|| (Manifest::new(), Version::of(None)));
        Ok(Txn { dir: dir.clone(), lock, manifest, version })
    }

    pub(crate) fn dir(&self) -> &DataDir {
        &self.dir
    }

    /// A set for new segments, to be persisted before a commit names them.
    pub(crate) fn segments(&self) -> SegmentSet {
        self.dir.new_segments()
    }

    /// Opens a segment the manifest names.
    pub(crate) fn open(&self, s: &SegmentRef) -> Result<Segment> {
        Ok(self.dir.storage().open_segment(&s.file)?)
    }

    /// Publishes the manifest as it is (the caller has set its generation).
    pub(crate) fn publish(&mut self) -> Result<()> {
        self.version = self.dir.storage().publish_manifest(&self.manifest.to_bytes(), Some(&self.version))?;
        Ok(())
    }

    /// Publishes the manifest as the next generation.
    pub(crate) fn commit(&mut self) -> Result<()> {
        self.commit_replacing(std::iter::empty::<&str>())
    }

    /// Publishes the manifest as the next generation, then deletes those of
    /// `replaced` (segment files of the generation before) that it no longer
    /// names. Readers that still map a file keep their view; the name goes now.
    pub(crate) fn commit_replacing<S: AsRef<str>>(
        &mut self,
        replaced: impl IntoIterator<Item = S>,
    ) -> Result<()> {
        self.manifest.generation += 1;
        self.publish()?;
        let live: BTreeSet<&str> = self.manifest.segments.iter().map(|s| s.file.as_str()).collect();
        let gone: BTreeSet<String> = replaced
            .into_iter()
            .map(|f| f.as_ref().to_owned())
            .filter(|f| !live.contains(f.as_str()))
            .collect();
        for file in gone {
            self.dir.storage().delete(&file)?;
        }
        Ok(())
    }
}

impl DataDir {
    /// A set for new segments, to be persisted before a manifest names them:
    /// a writer's under its lock, or a distributed ingest's job's, for the
    /// ingest that holds the lock to publish.
    pub(crate) fn new_segments(&self) -> SegmentSet {
        SegmentSet::new(self)
    }
}

/// Segments written by one writer: built under temporary names in the
/// storage's staging directory, put under their content hash when finished,
/// published only by the manifest.
pub(crate) struct SegmentSet {
    storage: Arc<dyn Storage>,
    staging: PathBuf,
    /// Where its writers roll over to a new segment.
    limits: SegmentLimits,
    written: Vec<SegmentRef>,
    /// Puts not yet known to be durable (a local directory syncs each on a
    /// thread of its own while the CPU goes on with the next segment).
    pending: Vec<Pending>,
    serial: usize,
    /// The breaches [`SegmentSet::finish`] records for a segment.
    attribution: Vec<u32>,
}

impl SegmentSet {
    fn new(dir: &DataDir) -> Self {
        let storage = dir.shared_storage();
        SegmentSet {
            staging: storage.staging(),
            storage,
            limits: dir.segment_limits(),
            written: Vec::new(),
            pending: Vec::new(),
            serial: 0,
            attribution: Vec::new(),
        }
    }

    /// A writer of `kind` for at most about `upper_bound` entries, which
    /// rolls over to new segments where the format's limits say.
    pub(crate) fn writer(&mut self, kind: Kind, upper_bound: u64) -> Result<RollingWriter> {
        self.serial += 1;
        // Kind and serial make the name unique within one writer process.
        let stem = self.staging.join(format!("{}-{}-{}", kind.name(), std::process::id(), self.serial));
        Ok(RollingWriter::create(stem, kind, upper_bound, self.limits)?)
    }

    pub(crate) fn finish(&mut self, writer: RollingWriter) -> Result<()> {
        self.finish_attributed(writer, self.attribution.clone())
    }

    /// Records `breaches` as what the segments finished from now on hold.
    pub(crate) fn attribute(&mut self, breaches: Vec<u32>) {
        self.attribution = breaches;
    }

    /// [`SegmentSet::finish`] for segments holding the entries of `breaches`.
    pub(crate) fn finish_attributed(&mut self, writer: RollingWriter, breaches: Vec<u32>) -> Result<()> {
        let kind = writer.kind();
        // Made durable by `done`: a crash before then leaves objects that no
        // manifest names, which the next writer removes.
        for written in writer.finish()? {
            if written.entries == 0 {
                std::fs::remove_file(&written.path).map_err(|e| StoreError::io(&written.path, e))?;
                continue;
            }
            let hash = blake3::Hash::from(written.content_hash).to_hex();
            let file = format!("{}-{}.seg", kind.name(), &hash[..32]);
            self.pending.push(self.storage.put(&written.path, &file)?);
            self.written.push(SegmentRef {
                kind: kind.name().to_owned(),
                file,
                entries: written.entries,
                bytes: written.bytes,
                breaches: breaches.clone(),
                covers: Vec::new(),
            });
        }
        Ok(())
    }

    /// How many segments the set's writers have finished.
    pub(crate) fn written_len(&self) -> usize {
        self.written.len()
    }

    pub(crate) fn absorb(&mut self, other: SegmentSet) {
        self.written.extend(other.written);
        self.pending.extend(other.pending);
    }

    /// Makes the objects and their names durable before a manifest may name them.
    pub(crate) fn done(self) -> Result<Vec<SegmentRef>> {
        self.storage.persist(self.pending)?;
        Ok(self.written)
    }
}

/// Whether each entry of `kind` names its breach (so a segment holding several
/// breaches can be rewritten without one).
pub(crate) fn names_breach(kind: Kind) -> bool {
    matches!(kind, Kind::Accounts | Kind::Domains | Kind::Stealer | Kind::StealerEmails)
}

/// The groups of segments of one kind that may be merged into one, as indices
/// into `refs`: all of them for kinds whose entries name their breach or that
/// hold no breach's data (Pwned Passwords imports), else each breach's apart.
pub(crate) fn merge_groups(kind: Kind, refs: &[&SegmentRef]) -> Vec<Vec<usize>> {
    if names_breach(kind) || matches!(kind, Kind::HibpSha1Counts | Kind::HibpNtlmCounts) {
        return if refs.is_empty() { Vec::new() } else { vec![(0..refs.len()).collect()] };
    }
    let mut groups: Vec<Vec<usize>> = Vec::new();
    for (i, r) in refs.iter().enumerate() {
        match groups.iter_mut().find(|g| refs[g[0]].breaches == r.breaches) {
            Some(g) => g.push(i),
            None => groups.push(vec![i]),
        }
    }
    groups
}

/// The breaches a segment merged from `group` holds: all of theirs, or none
/// known when one of them is not attributed.
pub(crate) fn group_breaches(group: &[&SegmentRef]) -> Vec<u32> {
    if group.iter().any(|s| s.breaches.is_empty()) {
        return Vec::new();
    }
    let all: BTreeSet<u32> = group.iter().flat_map(|s| s.breaches.iter().copied()).collect();
    all.into_iter().collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn seg(kind: Kind, file: &str, breaches: &[u32]) -> SegmentRef {
        SegmentRef {
            kind: kind.name().into(),
            file: file.into(),
            entries: 1,
            bytes: 1,
            breaches: breaches.to_vec(),
            covers: Vec::new(),
        }
    }

    /// Counts and triples are merged only within a breach (unattributed ones
    /// among themselves); entries that name their breach are merged across.
    #[test]
    fn only_kinds_whose_entries_name_their_breach_merge_across_breaches() {
        let refs = [
            seg(Kind::Sha1Counts, "a", &[1]),
            seg(Kind::Sha1Counts, "b", &[2]),
            seg(Kind::Sha1Counts, "c", &[1]),
            seg(Kind::Sha1Counts, "d", &[]),
            seg(Kind::Sha1Counts, "e", &[]),
        ];
        let refs: Vec<&SegmentRef> = refs.iter().collect();
        for kind in [Kind::Sha1Counts, Kind::NtlmCounts, Kind::CredentialKeys, Kind::NtlmCredentials] {
            assert_eq!(merge_groups(kind, &refs), vec![vec![0, 2], vec![1], vec![3, 4]], "{kind:?}");
        }
        for kind in [Kind::Accounts, Kind::Domains, Kind::Stealer, Kind::StealerEmails, Kind::HibpSha1Counts]
        {
            assert_eq!(merge_groups(kind, &refs), vec![vec![0, 1, 2, 3, 4]], "{kind:?}");
        }
        assert_eq!(group_breaches(&refs[..3]), vec![1, 2]);
        assert_eq!(group_breaches(&refs[2..4]), Vec::<u32>::new(), "one unattributed: none known");
    }
}
