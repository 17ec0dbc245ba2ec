//! The data key's life in a data directory: the first key a writer makes,
//! rewriting the keyed segments under another key (`leakwatch rekey`), and
//! the migration of a directory written before key rings.
//!
//! Like an ingest, a rewrite writes new segments and publishes them with one
//! manifest swap; readers of the previous generation keep their mapped files and
//! the old key they opened them with, so nobody waits. The key ring holds both
//! data keys until the new generation is published, then only the new one.

use std::path::{Path, PathBuf};

use leakwatch_segment::{Kind, Segment};

use crate::crypt::{Keys, MAX_SEALED_PLAINTEXT};
use crate::dir::{read_legacy_key, DataDir, BLINDED, LEGACY_KEY_FILE};
use crate::error::{Result, StoreError};
use crate::keyring::{self, RingSource};
use crate::manifest::SegmentRef;
use crate::runs::{Bucketed, Runs};
use crate::txn::{group_breaches, merge_groups, SegmentSet, Txn};

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
    let mut txn = Txn::begin(dir)?;
    let old = writer_keys(&mut txn)?;
    let old_id = old.id().expect("writer keys are keyed").to_owned();
    let (mut ring, source) = keyring::find(&txn.manifest.dir_id, txn.manifest.key_file.as_deref())?
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
    let segments = reseal(&mut txn, &old, &new)?;
    ring.keys.retain(|k| k.id == new_id);
    ring.save(&path)?;
    Ok(RekeySummary {
        old_key: old_id,
        new_key: new_id,
        key_file: path,
        segments,
        generation: txn.manifest.generation,
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
    let txn = Txn::begin_keeping(dir)?;
    let manifest = &txn.manifest;
    let (mut ring, source) = keyring::find(&manifest.dir_id, manifest.key_file.as_deref())?
        .ok_or_else(|| StoreError::Key(format!("{} has no key ring yet", dir.location())))?;
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
fn reseal(txn: &mut Txn, from: &Keys, to: &Keys) -> Result<usize> {
    let scratch = txn.dir().tmp().join(format!("reseal-{}", std::process::id()));
    std::fs::create_dir_all(&scratch).map_err(|e| StoreError::io(&scratch, e))?;
    let mut out = txn.segments();
    let mut replaced = Vec::new();
    for kind in BLINDED {
        let refs: Vec<&SegmentRef> = txn.manifest.segments.iter().filter(|s| s.kind == kind.name()).collect();
        // Credential triples stay apart by breach, as compaction keeps them.
        for group in merge_groups(kind, &refs) {
            let group: Vec<&SegmentRef> = group.into_iter().map(|i| refs[i]).collect();
            let segments = group.iter().map(|s| txn.open(s)).collect::<Result<Vec<_>>>()?;
            out.attribute(group_breaches(&group));
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
    let written = out.done()?;
    let count = written.len();
    txn.manifest.segments.retain(|s| !replaced.contains(&s.file));
    txn.manifest.segments.extend(written);
    txn.manifest.format = crate::manifest::MANIFEST_FORMAT;
    txn.manifest.key_id = to.id().map(str::to_owned);
    txn.commit_replacing(replaced)?;
    let _ = std::fs::remove_dir_all(&scratch);
    Ok(count)
}

/// A data directory's keys as writers make them: the first data key, and
/// the migration of a directory written before key rings.
impl DataDir {
    /// The directory's keys, made (as a writer would) if it has none yet: for
    /// the audit log, which needs its keys before anything is ingested.
    pub fn ensure_keys(&self) -> Result<Keys> {
        let manifest = self.manifest()?;
        if let Some(m) = &manifest {
            if m.key_id.is_some() {
                return Ok(self.keys(m)?.expect("a keyed manifest has keys"));
            }
        }
        self.create()?;
        writer_keys(&mut Txn::begin_keeping(self)?)
    }

    /// The audit keys of the directory's key ring (made, as a writer would, if
    /// it has none yet), oldest first.
    pub fn audit_roots(&self) -> Result<keyring::AuditRoots> {
        self.ensure_keys()?;
        let manifest = self.manifest()?.ok_or_else(|| self.no_store())?;
        let (ring, _) = keyring::find(&manifest.dir_id, manifest.key_file.as_deref())?
            .ok_or_else(|| StoreError::Key(format!("the key ring of {} vanished", self.location())))?;
        Ok(ring.audit_roots())
    }

    /// `leakwatch init`: creates the directory and its data key (in `key_file`,
    /// recorded in the manifest, or else where [`crate::keyring`] says), or
    /// checks the key of a directory that has one. Returns the key id, where the
    /// key is, and whether it was created now.
    pub fn init(&self, key_file: Option<&Path>) -> Result<(String, String, bool)> {
        self.create()?;
        let mut txn = Txn::begin_keeping(self)?;
        let created = txn.manifest.key_id.is_none();
        if created {
            if let Some(path) = key_file {
                let path = std::path::absolute(path).map_err(|e| StoreError::io(path, e))?;
                txn.manifest.key_file = Some(path);
            }
        } else if let Some(path) = key_file {
            if txn.manifest.key_file.as_deref() != Some(path) {
                return Err(StoreError::Key(format!(
                    "{} already has its data key (key {}); `leakwatch rekey` rotates it",
                    self.location(),
                    txn.manifest.key_id.as_deref().unwrap_or("-")
                )));
            }
        }
        let keys = writer_keys(&mut txn)?;
        let source = match keyring::find(&txn.manifest.dir_id, txn.manifest.key_file.as_deref())? {
            Some((_, source)) => source.to_string(),
            None => "-".into(),
        };
        Ok((keys.id().unwrap_or("-").to_owned(), source, created))
    }
}

/// The keys a writer writes with. A directory that has none yet gets a data
/// key (in the key ring found, or a new key file, named on stderr); one
/// written before key rings has its `index.key` moved into the ring and its
/// keyed segments rewritten sealed. The manifest is published keyed.
pub(crate) fn writer_keys(txn: &mut Txn) -> Result<Keys> {
    let dir = txn.dir().clone();
    let root = dir.root();
    if txn.manifest.key_id.is_some() {
        return Ok(dir.keys(&txn.manifest)?.expect("a keyed manifest has keys"));
    }
    if txn.manifest.dir_id.is_empty() {
        txn.manifest.dir_id = keyring::new_dir_id()?;
    }
    let legacy_path = root.join(LEGACY_KEY_FILE);
    let legacy = dir.legacy_keys()?;
    let blinded = BLINDED.map(Kind::name);
    let has_keyed = txn.manifest.segments.iter().any(|s| blinded.contains(&s.kind.as_str()));
    if has_keyed && legacy.is_none() {
        return Err(StoreError::Key(format!(
            "{}: the index key is missing; without it the index cannot be read",
            legacy_path.display()
        )));
    }
    let legacy_index = match &legacy {
        Some(_) => Some(read_legacy_key(&legacy_path)?),
        None => None,
    };
    let ring = match keyring::find(&txn.manifest.dir_id, txn.manifest.key_file.as_deref())? {
        Some((ring, source)) => {
            if legacy_index.is_some() && ring.index_key() != legacy_index {
                return Err(StoreError::Key(format!(
                    "{source}: this key ring was not made for {}, whose index key is {}",
                    dir.location(),
                    legacy_path.display()
                )));
            }
            ring
        }
        None => {
            let ring = keyring::KeyRing::generate(legacy_index)?;
            let path = keyring::key_file(&txn.manifest.dir_id, txn.manifest.key_file.as_deref())?;
            ring.save(&path)?;
            eprintln!(
                "leakwatch: created the data key of {} in {} (keep it safe and out of backups of the \
                 data directory: without it the index cannot be read)",
                dir.location(),
                path.display()
            );
            ring
        }
    };
    let keys = ring.keys(ring.newest_id()).expect("the ring's own key");
    match legacy {
        Some(old) if has_keyed => {
            reseal(txn, &old, &keys)?;
        }
        _ => {
            txn.manifest.format = crate::manifest::MANIFEST_FORMAT;
            txn.manifest.key_id = keys.id().map(str::to_owned);
            txn.publish()?;
        }
    }
    if legacy_index.is_some() {
        std::fs::remove_file(&legacy_path).map_err(|e| StoreError::io(&legacy_path, e))?;
        crate::storage::sync_dir(root)?;
        eprintln!("leakwatch: moved the index key of {} out of it, into its key ring", root.display());
    }
    Ok(keys)
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
