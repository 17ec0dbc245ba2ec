//! Ingest: records from the parsers -> sorted runs within the memory budget ->
//! new segments -> a new manifest generation.
//!
//! Only what is new is written: a triple (breach, account, password) already
//! stored is skipped, so re-ingesting a file changes nothing, and password counts
//! stay "distinct triples". An ingest killed at any point leaves the previous
//! manifest in force; its files are orphans that the next writer removes.

use std::collections::{BTreeSet, HashMap};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use leakwatch_ingest::{Format, Input, Report};
use leakwatch_segment::{Kind, Segment, SegmentWriter};
use leakwatch_types::{Blinder, DataClass, Key16, Record};

use crate::dir::DataDir;
use crate::error::{Result, StoreError};
use crate::manifest::{sync_dir, Breach, Manifest, SegmentRef};
use crate::runs::{Bucketed, Runs};

/// Password id (SHA-1, or `FFFFFFFF` + NTLM when only NTLM is known), pair key
/// of (account, breach), NTLM, and flags (bit 0: has SHA-1, bit 1: has NTLM).
type CredRec = [u8; 45];
/// NTLM and a big-endian count.
type NtlmRec = [u8; 24];

const HAS_SHA1: u8 = 1;
const HAS_NTLM: u8 = 2;

/// The breach an ingest adds to, as the user described it.
#[derive(Debug, Clone, Default)]
pub struct BreachInfo {
    pub name: String,
    pub title: Option<String>,
    pub domain: Option<String>,
    pub breach_date: Option<String>,
    pub description: Option<String>,
}

#[derive(Debug, Clone)]
pub struct IngestOptions {
    pub breach: BreachInfo,
    pub format: Option<Format>,
    /// Bytes of sorted-run buffers held in memory before spilling to disk.
    pub memory_budget: u64,
}

/// What ingest reports back, per file and overall.
#[derive(Debug, Clone)]
pub struct IngestSummary {
    pub files: Vec<(String, Report)>,
    pub breach: Breach,
    pub new_breach: bool,
    pub new_accounts: u64,
    pub new_credentials: u64,
    pub segments_written: usize,
}

/// Counters a progress display polls while ingest runs.
#[derive(Debug, Default)]
pub struct Progress {
    /// Raw (possibly compressed) input bytes consumed.
    pub bytes: AtomicU64,
    /// Records accepted so far.
    pub records: AtomicU64,
}

/// Where a long ingest is, for a progress display.
#[derive(Debug)]
pub enum Phase<'a> {
    Reading { name: &'a str, raw_len: Option<u64> },
    Writing,
}

/// The index records of one parsed chunk.
struct Batch {
    records: u64,
    /// Account keys alone: the breach is the same for the whole ingest.
    accounts: Bucketed<16>,
    /// Domain key, account key, alias length, alias (at most 64 bytes, HIBP's limit).
    domains: Bucketed<97>,
    creds: Bucketed<45>,
}

/// Turns parsed records into index records. Runs on the parallel side of the
/// pipeline, so the keyed hashing and the bucketing cost no serial time.
fn to_batch(records: Vec<Record>, blinder: &Blinder, breach: u32) -> Batch {
    let n = records.len();
    let mut accounts = Vec::with_capacity(n);
    let mut domains = Vec::with_capacity(n);
    let mut creds = Vec::with_capacity(n);
    // Dumps repeat a few domains endlessly (gmail.com, the breached site's own):
    // one keyed hash per distinct domain in a batch is enough.
    let mut domain_keys: HashMap<String, Key16> = HashMap::new();
    for record in &records {
        let account = blinder.account_key(&record.account);
        accounts.push(account);
        if let Some((alias, domain)) = record.account.email_parts() {
            let key = match domain_keys.get(domain) {
                Some(k) => *k,
                None => *domain_keys.entry(domain.to_owned()).or_insert_with(|| blinder.domain_key(domain)),
            };
            let mut rec = [0u8; 97];
            rec[..16].copy_from_slice(&key);
            rec[16..32].copy_from_slice(&account);
            let alias = &alias.as_bytes()[..alias.len().min(64)];
            rec[32] = alias.len() as u8;
            rec[33..33 + alias.len()].copy_from_slice(alias);
            domains.push(rec);
        }
        let Some(material) = &record.password else { continue };
        let (sha1, ntlm) = (material.sha1(), material.ntlm());
        let mut rec = [0u8; 45];
        match (sha1, ntlm) {
            (Some(s), _) => rec[..20].copy_from_slice(&s),
            (None, Some(n)) => {
                rec[..4].copy_from_slice(&[0xFF; 4]);
                rec[4..20].copy_from_slice(&n);
            }
            (None, None) => continue,
        }
        rec[20..28].copy_from_slice(&blinder.pair_key(&account, breach).to_le_bytes());
        if let Some(n) = ntlm {
            rec[28..44].copy_from_slice(&n);
        }
        rec[44] = (u8::from(sha1.is_some()) * HAS_SHA1) | (u8::from(ntlm.is_some()) * HAS_NTLM);
        creds.push(rec);
    }
    Batch {
        records: n as u64,
        accounts: Bucketed::new(accounts),
        domains: Bucketed::new(domains),
        creds: Bucketed::new(creds),
    }
}

/// Ingests `inputs` into one breach and publishes the result as a new generation.
pub fn ingest(
    dir: &DataDir,
    options: &IngestOptions,
    inputs: Vec<Input>,
    progress: &Progress,
    on_phase: &mut dyn FnMut(Phase<'_>),
) -> Result<IngestSummary> {
    leakwatch_types::validate_breach_name(&options.breach.name).map_err(StoreError::Invalid)?;
    dir.create()?;
    let lock = dir.lock()?;
    let mut manifest = Manifest::load(dir.root())?.unwrap_or_else(Manifest::new);
    dir.remove_orphans(&manifest, &lock)?;
    let blinder = dir.blinder(true)?.expect("created on demand");

    let existing = manifest.breach(&options.breach.name).cloned();
    let breach_id = existing.as_ref().map_or(manifest.next_breach_id, |b| b.id);
    let scratch = tempdir_in(&dir.tmp())?;

    // Keys: the account; domain then account (the alias follows from the
    // account); password id then pair (NTLM and flags follow from the id).
    let mut accounts = Runs::<16>::new(scratch.clone(), "accounts", 16, true);
    let mut domains = Runs::<97>::new(scratch.clone(), "domains", 32, true);
    let mut creds = Runs::<45>::new(scratch.clone(), "credentials", 28, true);
    let budget = options.memory_budget.max(1 << 20) as usize;
    let mut files = Vec::new();
    let mut classes = BTreeSet::new();
    for input in inputs {
        let name = input.name().to_owned();
        on_phase(Phase::Reading { name: &name, raw_len: input.raw_len() });
        let report = leakwatch_ingest::read(
            input,
            options.format,
            &progress.bytes,
            |records| to_batch(records, &blinder, breach_id),
            |batch: Batch| {
                progress.records.fetch_add(batch.records, Ordering::Relaxed);
                accounts.push(&batch.accounts);
                domains.push(&batch.domains);
                creds.push(&batch.creds);
                // Half the budget for run buffers; the rest covers the parser's
                // chunks in flight and the merge's read buffers.
                if accounts.mem_bytes() + domains.mem_bytes() + creds.mem_bytes() > budget / 2 {
                    accounts.spill()?;
                    domains.spill()?;
                    creds.spill()?;
                }
                Ok(())
            },
        )?;
        classes.extend(report.data_classes.iter().copied());
        files.push((name, report));
    }

    on_phase(Phase::Writing);
    let snapshot = match existing {
        Some(_) => Some(open_kinds(dir, &manifest, &[Kind::Accounts, Kind::Credentials])?),
        None => None,
    };
    let (stored_accounts, stored_creds) = match &snapshot {
        Some((a, c)) => (Some(a.as_slice()), Some(c.as_slice())),
        None => (None, None),
    };
    // The password chain and the account chain share nothing: write them on
    // two threads.
    let (passwords, accounts) = rayon::join(
        || write_passwords(dir, creds, stored_creds, &scratch, budget),
        || write_accounts(dir, accounts, domains, stored_accounts, breach_id),
    );
    let (mut out, new_credentials) = passwords?;
    let (account_out, new_accounts) = accounts?;
    out.absorb(account_out);
    drop(snapshot);

    let new_segments = out.done(dir)?;
    let segments_written = new_segments.len();
    let has_accounts = files.iter().any(|(_, r)| r.accepted > 0);
    let now = now_rfc3339();
    let breach = match existing {
        Some(mut b) => {
            b.pwn_count += new_accounts;
            b.data_classes = merge_classes(&b.data_classes, &classes);
            b.modified_date = now;
            apply_info(&mut b, &options.breach);
            b
        }
        None => {
            let mut b = Breach {
                id: breach_id,
                name: options.breach.name.clone(),
                title: options.breach.name.clone(),
                domain: String::new(),
                breach_date: now[..10].to_owned(),
                added_date: now.clone(),
                modified_date: now,
                pwn_count: new_accounts,
                description: String::new(),
                data_classes: merge_classes(&[], &classes),
                is_verified: true,
                is_fabricated: false,
                is_sensitive: false,
                is_retired: false,
                is_spam_list: false,
                is_malware: false,
                is_stealer_log: false,
            };
            apply_info(&mut b, &options.breach);
            b
        }
    };
    let new_breach = breach.id == manifest.next_breach_id;
    if new_segments.is_empty() && !has_accounts && new_breach {
        // Nothing was accepted: record no empty breach, publish nothing.
        return Ok(IngestSummary {
            files,
            breach,
            new_breach,
            new_accounts,
            new_credentials,
            segments_written,
        });
    }
    if new_breach {
        manifest.next_breach_id += 1;
        manifest.breaches.push(breach.clone());
    } else if let Some(slot) = manifest.breaches.iter_mut().find(|b| b.id == breach.id) {
        *slot = breach.clone();
    }
    manifest.segments.extend(new_segments);
    manifest.generation += 1;
    manifest.store(dir.root())?;
    let _ = std::fs::remove_dir_all(&scratch);
    crate::compact::compact(dir, &mut manifest, crate::compact::MAX_SEGMENTS_PER_KIND, &lock)?;
    Ok(IngestSummary { files, breach, new_breach, new_accounts, new_credentials, segments_written })
}

/// Credentials and, from the new ones, the SHA-1 and NTLM counts. Sorted by
/// password id, the SHA-1 counts come out in key order with no second sort.
fn write_passwords(
    dir: &DataDir,
    creds: Runs<45>,
    stored: Option<&[Segment]>,
    scratch: &Path,
    budget: usize,
) -> Result<(SegmentSet, u64)> {
    let mut out = SegmentSet::new(dir.segments());
    let upper = creds.pushed();
    let mut cred_w = out.writer(Kind::Credentials, upper)?;
    let mut sha1_w = out.writer(Kind::Sha1Counts, upper)?;
    let mut ntlm_runs = Runs::<24>::new(scratch.to_owned(), "ntlm", 16, false);
    let mut group: Option<(CredRec, u64)> = None;
    let mut new_credentials = 0u64;
    for rec in creds.finish()? {
        let rec = rec?;
        let key = &rec[..28];
        if let Some(stored) = stored {
            if any_found(stored, key)? {
                continue;
            }
        }
        new_credentials += 1;
        cred_w.push_value(key, &[])?;
        match &mut group {
            Some((first, n)) if first[..20] == rec[..20] => *n += 1,
            _ => {
                if let Some((first, n)) = group.replace((rec, 1)) {
                    emit_counts(&first, n, &mut sha1_w, &mut ntlm_runs, budget)?;
                }
            }
        }
    }
    if let Some((first, n)) = group.take() {
        emit_counts(&first, n, &mut sha1_w, &mut ntlm_runs, budget)?;
    }
    out.finish(cred_w)?;
    out.finish(sha1_w)?;

    let mut ntlm_w = out.writer(Kind::NtlmCounts, ntlm_runs.pushed())?;
    let mut pending: Option<([u8; 16], u64)> = None;
    for rec in ntlm_runs.finish()? {
        let rec = rec?;
        let key: [u8; 16] = rec[..16].try_into().expect("16 bytes");
        let n = u64::from_be_bytes(rec[16..].try_into().expect("8 bytes"));
        match &mut pending {
            Some((k, total)) if *k == key => *total += n,
            _ => {
                if let Some((k, total)) = pending.replace((key, n)) {
                    ntlm_w.push_count(&k, total)?;
                }
            }
        }
    }
    if let Some((k, total)) = pending {
        ntlm_w.push_count(&k, total)?;
    }
    out.finish(ntlm_w)?;
    Ok((out, new_credentials))
}

/// The accounts new to this breach, and their aliases under each domain.
fn write_accounts(
    dir: &DataDir,
    accounts: Runs<16>,
    domains: Runs<97>,
    stored: Option<&[Segment]>,
    breach_id: u32,
) -> Result<(SegmentSet, u64)> {
    let mut out = SegmentSet::new(dir.segments());
    let breach_bytes = breach_id.to_le_bytes();
    let mut acc_w = out.writer(Kind::Accounts, accounts.pushed())?;
    let mut new_accounts = 0u64;
    for key in accounts.finish()? {
        let key = key?;
        if let Some(stored) = stored {
            if in_breach(stored, &key, breach_id)? {
                continue;
            }
        }
        acc_w.push_value(&key, &breach_bytes)?;
        new_accounts += 1;
    }
    out.finish(acc_w)?;

    let mut dom_w = out.writer(Kind::Domains, domains.pushed())?;
    for rec in domains.finish()? {
        let rec = rec?;
        if let Some(stored) = stored {
            if in_breach(stored, &rec[16..32], breach_id)? {
                continue;
            }
        }
        let len = usize::from(rec[32]);
        dom_w.push_payload(&rec[..16], breach_id, &rec[33..33 + len])?;
    }
    out.finish(dom_w)?;
    Ok((out, new_accounts))
}

fn emit_counts(
    first: &CredRec,
    n: u64,
    sha1_w: &mut SegmentWriter,
    ntlm_runs: &mut Runs<24>,
    budget: usize,
) -> Result<()> {
    if first[44] & HAS_SHA1 != 0 {
        sha1_w.push_count(&first[..20], n)?;
    }
    if first[44] & HAS_NTLM != 0 {
        let mut rec: NtlmRec = [0u8; 24];
        rec[..16].copy_from_slice(&first[28..44]);
        rec[16..].copy_from_slice(&n.to_be_bytes());
        ntlm_runs.push_one(rec);
        if ntlm_runs.mem_bytes() > budget / 4 {
            ntlm_runs.spill()?;
        }
    }
    Ok(())
}

fn apply_info(b: &mut Breach, info: &BreachInfo) {
    if let Some(t) = &info.title {
        b.title = t.clone();
    }
    if let Some(d) = &info.domain {
        b.domain = d.clone();
    }
    if let Some(d) = &info.breach_date {
        b.breach_date = d.clone();
    }
    if let Some(d) = &info.description {
        b.description = d.clone();
    }
}

fn merge_classes(old: &[String], new: &BTreeSet<DataClass>) -> Vec<String> {
    let mut all: BTreeSet<String> = old.iter().cloned().collect();
    all.extend(new.iter().map(|c| c.hibp_name().to_owned()));
    all.into_iter().collect()
}

fn any_found(segments: &[Segment], key: &[u8]) -> Result<bool> {
    for seg in segments {
        if !seg.find(key)?.is_empty() {
            return Ok(true);
        }
    }
    Ok(false)
}

fn in_breach(segments: &[Segment], key: &[u8], breach: u32) -> Result<bool> {
    let want = breach.to_le_bytes();
    for seg in segments {
        if seg.find(key)?.any(|i| seg.value(i) == want) {
            return Ok(true);
        }
    }
    Ok(false)
}

/// The live segments of the given kinds, in `kinds` order.
fn open_kinds(dir: &DataDir, manifest: &Manifest, kinds: &[Kind; 2]) -> Result<(Vec<Segment>, Vec<Segment>)> {
    let open = |kind: Kind| -> Result<Vec<Segment>> {
        manifest
            .segments
            .iter()
            .filter(|s| s.kind == kind.name())
            .map(|s| Segment::open(&dir.segments().join(&s.file)).map_err(StoreError::from))
            .collect()
    };
    Ok((open(kinds[0])?, open(kinds[1])?))
}

/// Segments written by one ingest: built under temporary names, renamed to their
/// content hash when finished, published only by the manifest.
pub(crate) struct SegmentSet {
    dir: PathBuf,
    written: Vec<SegmentRef>,
    serial: usize,
}

impl SegmentSet {
    pub(crate) fn new(dir: PathBuf) -> Self {
        SegmentSet { dir, written: Vec::new(), serial: 0 }
    }

    pub(crate) fn writer(&mut self, kind: Kind, upper_bound: u64) -> Result<SegmentWriter> {
        self.serial += 1;
        // Kind and serial make the name unique within one writer process.
        let path = self.dir.join(format!("{}-{}-{}.building", kind.name(), std::process::id(), self.serial));
        Ok(SegmentWriter::create(&path, kind, upper_bound)?)
    }

    pub(crate) fn finish(&mut self, writer: SegmentWriter) -> Result<()> {
        let kind = writer.layout().kind;
        let written = writer.finish()?;
        if written.entries == 0 {
            std::fs::remove_file(&written.path).map_err(|e| StoreError::io(&written.path, e))?;
            return Ok(());
        }
        let hash = blake3::Hash::from(written.content_hash).to_hex();
        let file = format!("{}-{}.seg", kind.name(), &hash[..32]);
        let target = self.dir.join(&file);
        std::fs::rename(&written.path, &target).map_err(|e| StoreError::io(&target, e))?;
        self.written.push(SegmentRef {
            kind: kind.name().to_owned(),
            file,
            entries: written.entries,
            bytes: written.bytes,
        });
        Ok(())
    }

    pub(crate) fn absorb(&mut self, other: SegmentSet) {
        self.written.extend(other.written);
    }

    /// Makes the renames durable before a manifest may name the files.
    pub(crate) fn done(self, dir: &DataDir) -> Result<Vec<SegmentRef>> {
        sync_dir(&dir.segments())?;
        Ok(self.written)
    }
}

fn tempdir_in(tmp: &Path) -> Result<PathBuf> {
    let path = tmp.join(format!("ingest-{}", std::process::id()));
    std::fs::create_dir_all(&path).map_err(|e| StoreError::io(&path, e))?;
    Ok(path)
}

pub(crate) fn now_rfc3339() -> String {
    let now = time::OffsetDateTime::now_utc();
    let fmt = time::macros::format_description!("[year]-[month]-[day]T[hour]:[minute]:[second]Z");
    now.format(&fmt).expect("formats")
}
