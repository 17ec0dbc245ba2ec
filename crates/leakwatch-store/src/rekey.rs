//! Rewriting the keyed segments under another data key: `leakwatch rekey`, and
//! the migration of a directory written before key rings.
//!
//! Like an ingest, a rewrite writes new segments and publishes them with one
//! manifest swap; readers of the previous generation keep their mapped files and
//! the old key they opened them with, so nobody waits. The key ring holds both
//! data keys until the new generation is published, then only the new one.

use std::path::PathBuf;

use leakwatch_segment::{Kind, Segment};

use crate::crypt::{Keys, MAX_SEALED_PLAINTEXT};
use crate::dir::{DataDir, WriterLock};
use crate::error::{Result, StoreError};
use crate::ingest::SegmentSet;
use crate::keyring::{self, RingSource};
use crate::manifest::Manifest;
use crate::runs::{Bucketed, Runs};

/// Records gathered before they are handed to the sorter.
const BATCH: usize = 1 << 16;
/// Bytes of records a rewrite holds in memory before spilling a sorted run.
const MEMORY: usize = 256 << 20;

/// What `leakwatch rekey` did.
#[derive(Debug, Clone)]
pub struct RekeySummary {
    pub old_key: String,
    pub new_key: String,
    pub key_file: PathBuf,
    pub segments: usize,
    pub generation: u64,
}

/// Rotates the data key of `dir`: a new key in its key ring, every keyed
/// segment rewritten under it, the manifest published, the old key retired.
pub fn rekey(dir: &DataDir) -> Result<RekeySummary> {
    dir.check_store()?;
    let lock = dir.lock()?;
    let mut manifest = Manifest::load(dir.root())?.unwrap_or_else(Manifest::new);
    dir.remove_orphans(&manifest, &lock)?;
    let old = dir.writer_keys(&mut manifest, &lock)?;
    let old_id = old.id().expect("writer keys are keyed").to_owned();
    let (mut ring, source) = keyring::find(&manifest.dir_id, manifest.key_file.as_deref())?
        .ok_or_else(|| StoreError::Key("the key ring vanished during rekey".into()))?;
    let RingSource::File(path) = source else {
        return Err(StoreError::Key(format!(
            "rekey writes the new key into the key file, but the key comes from {source}; \
             unset it (and point {} at a key file) to rekey",
            keyring::ENV_KEY_FILE
        )));
    };
    ring.keys.retain(|k| k.id == old_id);
    ring.push(keyring::random_key()?);
    let new_id = ring.newest_id().to_owned();
    ring.save(&path)?;
    let new = ring.keys(&new_id).expect("the key just added");
    let segments = reseal(dir, &mut manifest, &old, &new, &lock)?;
    ring.keys.retain(|k| k.id == new_id);
    ring.save(&path)?;
    Ok(RekeySummary {
        old_key: old_id,
        new_key: new_id,
        key_file: path,
        segments,
        generation: manifest.generation,
    })
}

/// What `leakwatch rekey --audit` did to the key ring.
#[derive(Debug)]
pub struct AuditRekey {
    /// The audit keys now in the ring, the new one last.
    pub roots: keyring::AuditRoots,
    pub old_key: String,
    pub new_key: String,
    pub key_file: PathBuf,
}

/// Adds a fresh audit key to the key ring of `dir` (a key file: it must be
/// written), as the key new audit rows are chained and hashed under. The older
/// audit keys stay in the ring, so that the rows written under them still
/// check; the caller records the switch in the audit log. Nothing in the index
/// changes: the audit key protects only the audit log.
pub fn rotate_audit_key(dir: &DataDir) -> Result<AuditRekey> {
    dir.check_store()?;
    let _lock = dir.lock()?;
    let manifest = Manifest::load(dir.root())?.unwrap_or_else(Manifest::new);
    let (mut ring, source) = keyring::find(&manifest.dir_id, manifest.key_file.as_deref())?
        .ok_or_else(|| StoreError::Key(format!("{} has no key ring yet", dir.root().display())))?;
    let RingSource::File(path) = source else {
        return Err(StoreError::Key(format!(
            "rekey --audit writes the new audit key into the key file, but the key comes from {source}; \
             unset it (and point {} at a key file) to rekey",
            keyring::ENV_KEY_FILE
        )));
    };
    let old_key = keyring::audit_key_id(ring.audit_roots().roots.last().expect("at least one"));
    ring.push_audit(keyring::random_key()?);
    ring.save(&path)?;
    let roots = ring.audit_roots();
    let new_key = keyring::audit_key_id(roots.roots.last().expect("the key just added"));
    Ok(AuditRekey { roots, old_key, new_key, key_file: path })
}

/// Rewrites every keyed segment of `manifest` from `from`'s keys to `to`'s (one
/// segment per kind), publishes the manifest keyed with `to`, and deletes the
/// files it replaced. Returns how many segments were written.
pub(crate) fn reseal(
    dir: &DataDir,
    manifest: &mut Manifest,
    from: &Keys,
    to: &Keys,
    _lock: &WriterLock,
) -> Result<usize> {
    let scratch = dir.tmp().join(format!("reseal-{}", std::process::id()));
    std::fs::create_dir_all(&scratch).map_err(|e| StoreError::io(&scratch, e))?;
    let mut out = SegmentSet::new(dir.segments());
    let mut replaced = Vec::new();
    for kind in crate::dir::BLINDED {
        let refs: Vec<&crate::manifest::SegmentRef> =
            manifest.segments.iter().filter(|s| s.kind == kind.name()).collect();
        // Credential triples stay apart by breach, as compaction keeps them.
        for group in crate::breach::merge_groups(kind, &refs) {
            let group: Vec<&crate::manifest::SegmentRef> = group.into_iter().map(|i| refs[i]).collect();
            let segments = group
                .iter()
                .map(|s| Segment::open(&dir.segments().join(&s.file)))
                .collect::<Result<Vec<_>, _>>()?;
            out.attribute(crate::breach::group_breaches(&group));
            match kind {
                Kind::Accounts => permuted::<20>(&segments, kind, from, to, &scratch, &mut out)?,
                // The website reference is keyed by the index key: kept as is.
                Kind::StealerEmails => permuted::<36>(&segments, kind, from, to, &scratch, &mut out)?,
                Kind::Domains | Kind::Stealer => payloads(&segments, kind, from, to, &scratch, &mut out)?,
                Kind::Credentials => credentials::<28>(&segments, kind, from, to, &scratch, &mut out)?,
                Kind::NtlmCredentials => credentials::<24>(&segments, kind, from, to, &scratch, &mut out)?,
                _ => permuted::<16>(&segments, kind, from, to, &scratch, &mut out)?,
            }
            replaced.extend(group.iter().map(|s| s.file.clone()));
        }
    }
    let written = out.done(dir)?;
    let count = written.len();
    manifest.segments.retain(|s| !replaced.contains(&s.file));
    manifest.segments.extend(written);
    manifest.format = crate::manifest::MANIFEST_FORMAT;
    manifest.key_id = to.id().map(str::to_owned);
    manifest.generation += 1;
    manifest.store(dir.root())?;
    crate::breach::delete_unnamed(dir, manifest, replaced.iter().map(String::as_str))?;
    let _ = std::fs::remove_dir_all(&scratch);
    Ok(count)
}

/// Feeds records to a sorter in batches, spilling within [`MEMORY`].
struct Feed<const N: usize> {
    runs: Runs<N>,
    batch: Vec<[u8; N]>,
}

impl<const N: usize> Feed<N> {
    fn new(scratch: &std::path::Path, name: &'static str) -> Self {
        Feed { runs: Runs::new(scratch.to_owned(), name, N, true), batch: Vec::with_capacity(BATCH) }
    }

    fn push(&mut self, rec: [u8; N]) -> Result<()> {
        self.batch.push(rec);
        if self.batch.len() == BATCH {
            self.flush()?;
        }
        Ok(())
    }

    fn flush(&mut self) -> Result<()> {
        let batch = std::mem::replace(&mut self.batch, Vec::with_capacity(BATCH));
        self.runs.push(&Bucketed::new(batch));
        if self.runs.mem_bytes() > MEMORY {
            self.runs.spill()?;
        }
        Ok(())
    }

    fn finish(mut self) -> Result<(u64, crate::runs::Sorted<N>)> {
        self.flush()?;
        Ok((self.runs.pushed(), self.runs.finish()?))
    }
}

/// The kinds keyed by a permuted 16-byte key with a fixed-width value
/// (accounts: the breach; credential keys: none): each key permuted again,
/// its value kept.
fn permuted<const N: usize>(
    segments: &[Segment],
    kind: Kind,
    from: &Keys,
    to: &Keys,
    scratch: &std::path::Path,
    out: &mut SegmentSet,
) -> Result<()> {
    let mut feed = Feed::<N>::new(scratch, kind.name());
    for seg in segments {
        for entry in seg.iter() {
            let (key, i) = entry?;
            let mut rec = [0u8; N];
            rec[..16].copy_from_slice(&to.outer(from.inner(&key[..16])));
            rec[16..].copy_from_slice(seg.value(i));
            feed.push(rec)?;
        }
    }
    let (upper, sorted) = feed.finish()?;
    let mut w = out.writer(kind, upper)?;
    for rec in sorted {
        let rec = rec?;
        w.push_value(&rec[..16], &rec[16..])?;
    }
    out.finish(w)
}

/// Key, breach, length, payload.
const PAYLOAD_REC: usize = 16 + 4 + 1 + 255;

fn payloads(
    segments: &[Segment],
    kind: Kind,
    from: &Keys,
    to: &Keys,
    scratch: &std::path::Path,
    out: &mut SegmentSet,
) -> Result<()> {
    let mut feed = Feed::<PAYLOAD_REC>::new(scratch, "reseal-payloads");
    let (mut clear, mut sealed) = (Vec::new(), Vec::new());
    for seg in segments {
        for entry in seg.iter() {
            let (key, i) = entry?;
            let (breach, payload) = seg.payload(i)?;
            if !from.open(&key[..16], breach, payload, &mut clear) {
                return Err(StoreError::DataCorruption {
                    path: seg.path().to_owned(),
                    detail: format!("entry {i} does not open with data key {}", from.id().unwrap_or("-")),
                });
            }
            if clear.len() > MAX_SEALED_PLAINTEXT {
                // Only a clear (legacy) stealer payload can be this long: no
                // real address or site is, and it cannot be sealed.
                continue;
            }
            let new_key = to.outer(from.inner(&key[..16]));
            to.seal(&new_key, breach, &clear, &mut sealed);
            let mut rec = [0u8; PAYLOAD_REC];
            rec[..16].copy_from_slice(&new_key);
            rec[16..20].copy_from_slice(&breach.to_le_bytes());
            rec[20] = sealed.len() as u8;
            rec[21..21 + sealed.len()].copy_from_slice(&sealed);
            feed.push(rec)?;
        }
    }
    let (upper, sorted) = feed.finish()?;
    let mut w = out.writer(kind, upper)?;
    for rec in sorted {
        let rec = rec?;
        let breach = u32::from_le_bytes(rec[16..20].try_into().expect("4 bytes"));
        w.push_payload(&rec[..16], breach, &rec[21..21 + usize::from(rec[20])])?;
    }
    out.finish(w)
}

fn credentials<const W: usize>(
    segments: &[Segment],
    kind: Kind,
    from: &Keys,
    to: &Keys,
    scratch: &std::path::Path,
    out: &mut SegmentSet,
) -> Result<()> {
    let mut feed = Feed::<W>::new(scratch, "reseal-credentials");
    for seg in segments {
        for entry in seg.iter() {
            let (key, _) = entry?;
            let stored: [u8; W] = key[..W].try_into().expect("kind's key width");
            feed.push(to.permute_wide(&from.credential_inner(&stored)))?;
        }
    }
    let (upper, sorted) = feed.finish()?;
    let mut w = out.writer(kind, upper)?;
    for rec in sorted {
        w.push_value(&rec?, &[])?;
    }
    out.finish(w)
}
