//! Ingest: records from the parsers -> sorted runs within the memory budget ->
//! new segments -> a new manifest generation.
//!
//! Only what is new is written: a triple (breach, account, password) already
//! stored is skipped, so re-ingesting a file changes nothing, and password counts
//! stay "distinct triples". An ingest killed at any point leaves the previous
//! manifest in force; its files are orphans that the next writer removes.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use leakwatch_ingest::{Format, Input, Report};
use leakwatch_segment::Kind;
use leakwatch_types::DataClass;

use crate::dir::DataDir;
use crate::error::{Result, StoreError};
use crate::manifest::{Breach, SegmentRef};
use crate::txn::Txn;

mod batch;
mod counted;
mod write;

pub(crate) use batch::{credential_record, NTLM_REC};
use batch::{to_batch, Batch, BatchBuffers, BatchOf, BatchScratch, Pool, SHA1_REC};
use counted::{write_counted, Stored, StoredCreds};

mod distributed;
mod partition;
mod staged;
pub use distributed::{run_job, DistributedIngest, JobOutput, JobSpec, StagedInput};
pub use partition::Partition;
use write::{write_accounts, write_domains, write_stealer, IndexRuns};

/// Input read before the run buffers are sized for the rest of the file...
const RESERVE_AFTER: u64 = 14 << 20;
/// ...less what may still be in flight in the parser's chunks.
const IN_FLIGHT_BYTES: u64 = 10 << 20;

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
    /// Why merging segments after the publish failed, if it did. The ingest is
    /// published and answered from all the same: the store is whole, only with
    /// more segments than it should have (the next writer removes any file the
    /// failed merge left, and merges again).
    pub compaction_warning: Option<String>,
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
    let mut txn = Txn::begin(dir)?;
    let keys = crate::rekey::writer_keys(&mut txn)?;

    let existing = txn.manifest.breach(&options.breach.name).cloned();
    let breach_id = existing.as_ref().map_or(txn.manifest.next_breach_id, |b| b.id);
    let scratch = tempdir_in(&dir.tmp())?;
    let stored = stored_of(dir, &txn.manifest, existing.is_some())?;
    let stored = stored.as_ref();
    let stored_accounts = stored.map(|s| s.accounts.as_slice());

    let mut runs = IndexRuns::new(&scratch);
    let budget = options.memory_budget.max(1 << 20) as usize;
    let batch = BatchOf { keys: &keys, breach: breach_id, stored_accounts, partition: None };
    let context = ReadContext { batch, format: options.format, budget };
    let files = read_inputs(&context, inputs.into_iter().map(Ok), &mut runs, progress, on_phase)?;
    on_phase(Phase::Writing);
    let written = Written { keys: &keys, breach_id, stored, runs, scratch: &scratch, budget };
    let segments = write_segments(txn.dir(), written)?;
    publish(&mut txn, options, existing, files, segments, &scratch)
}

/// What records are made with: the same in a local ingest and in each job of
/// a distributed one.
struct ReadContext<'a> {
    /// How each batch's index records are made (keys, breach, its stored
    /// accounts, the partition kept).
    batch: BatchOf<'a>,
    format: Option<Format>,
    budget: usize,
}

/// Reads `inputs` into `runs`, spilling them past half the budget; returns
/// each input's report.
fn read_inputs(
    context: &ReadContext<'_>,
    inputs: impl IntoIterator<Item = Result<Input>>,
    runs: &mut IndexRuns,
    progress: &Progress,
    on_phase: &mut dyn FnMut(Phase<'_>),
) -> Result<Vec<(String, Report)>> {
    let ReadContext { batch: made, format, budget } = *context;
    let mut files = Vec::new();
    // The batches' vectors come back from the sink and are made into later
    // batches, and so is the scratch space they are made in: kept, not freed
    // and allocated again, for every input.
    let batch_buffers: Pool<BatchBuffers> = Pool::new();
    let scratch_space: Pool<BatchScratch> = Pool::new();
    for input in inputs {
        let input = input?;
        let name = input.name().to_owned();
        on_phase(Phase::Reading { name: &name, raw_len: input.raw_len() });
        let mut reserve = input.raw_len().map(|len| (len, progress.bytes.load(Ordering::Relaxed)));
        let report = leakwatch_ingest::read(
            input,
            format,
            &progress.bytes,
            |records| {
                let mut scratch = scratch_space.take();
                let batch = to_batch(records, &made, batch_buffers.take(), &mut scratch);
                scratch_space.give(scratch);
                batch
            },
            |batch: Result<Batch>| {
                let batch = batch?;
                progress.records.fetch_add(batch.records, Ordering::Relaxed);
                runs.push(&batch);
                batch_buffers.give(batch.into_buffers());
                // Half the budget for run buffers; the rest covers the parser's
                // chunks in flight (with the arenas and batch buffers kept
                // for them, as many as are in flight) and the merge's read
                // buffers.
                let held = runs.mem_bytes();
                if let Some((len, start)) = reserve {
                    let read = progress.bytes.load(Ordering::Relaxed) - start;
                    if read >= RESERVE_AFTER {
                        reserve = None;
                        // Bytes read run ahead of those delivered by the chunks
                        // still in flight: counting them out overestimates what
                        // is to come, and room reserved but never filled costs
                        // address space, not memory.
                        let delivered = (read - IN_FLIGHT_BYTES) as f64;
                        let to_spill = (budget / 2) as f64 / held.max(1) as f64;
                        let growth = (len as f64 / delivered).min(to_spill) * 1.1;
                        if growth > 1.5 {
                            runs.reserve(growth);
                        }
                    }
                }
                if held > budget / 2 {
                    runs.spill()?;
                }
                Ok(())
            },
        )?;
        files.push((name, report));
    }
    Ok(files)
}

/// The read side of an ingest, handed to its write side.
struct Written<'a> {
    keys: &'a crate::crypt::Keys,
    breach_id: u32,
    stored: Option<&'a Stored>,
    runs: IndexRuns,
    scratch: &'a Path,
    budget: usize,
}

/// The segments an ingest (or one partition of a distributed one) wrote,
/// persisted and not yet named by any manifest, with what they add.
pub(crate) struct NewSegments {
    pub(crate) segments: Vec<SegmentRef>,
    pub(crate) new_accounts: u64,
    pub(crate) new_credentials: u64,
}

/// Writes the new segments of `written`'s runs, checked against what the
/// breach holds, and persists them; a manifest names them later ([`publish`]).
fn write_segments(dir: &DataDir, written: Written<'_>) -> Result<NewSegments> {
    let Written { keys, breach_id, stored, runs, scratch, budget } = written;
    let stored_accounts = stored.map(|s| s.accounts.as_slice());
    let scratch = scratch.to_path_buf();
    // The five chains share nothing but the directory. The domains' has the
    // longest serial stretches (a big domain's sort, the segment's two
    // passes): it starts at once on one thread, the credential chains on the
    // other, and their parallel parts (sorting buckets, keying, gathering)
    // fill whatever time the first thread has left.
    let IndexRuns { accounts, domains, sha1_creds, ntlm_creds, stealer } = runs;
    let sha1_chain = || {
        let stored = stored.map(|s| &s.sha1_creds);
        let kinds = (Kind::CredentialKeys, Kind::Sha1Counts);
        write_counted::<SHA1_REC, 20>(dir, keys, sha1_creds, stored, kinds, &scratch, budget)
    };
    let ntlm_chain = || {
        let stored = stored.map(|s| &s.ntlm_creds);
        let kinds = (Kind::NtlmCredentialKeys, Kind::NtlmCounts);
        write_counted::<NTLM_REC, 16>(dir, keys, ntlm_creds, stored, kinds, &scratch, budget)
    };
    let accounts_chain = || write_accounts(dir, accounts, stored_accounts, breach_id);
    let domains_chain = || write_domains(dir, domains, breach_id, budget);
    // A stealer log's pairs are as many entries again as its accounts: a
    // chain of their own, taken by whichever thread is free first.
    let stealer_chain = || write_stealer(dir, stealer, breach_id);
    let ((domains, accounts), ((sha1, ntlm), stealer)) = rayon::join(
        || rayon::join(domains_chain, accounts_chain),
        || rayon::join(|| rayon::join(sha1_chain, ntlm_chain), stealer_chain),
    );
    let (mut out, new_credentials) = sha1?;
    let (account_out, new_accounts) = accounts?;
    out.absorb(ntlm?.0);
    out.absorb(account_out);
    out.absorb(domains?);
    out.absorb(stealer?);

    let mut segments = out.done()?;
    for s in &mut segments {
        s.breaches = vec![breach_id];
    }
    Ok(NewSegments { segments, new_accounts, new_credentials })
}

/// Publishes `new` segments, read from `files`, with the breach's new record
/// as the next generation; then merges segments if a kind has too many.
fn publish(
    txn: &mut Txn,
    options: &IngestOptions,
    existing: Option<Breach>,
    files: Vec<(String, Report)>,
    new: NewSegments,
    scratch: &Path,
) -> Result<IngestSummary> {
    let NewSegments { segments: new_segments, new_accounts, new_credentials } = new;
    let mut classes = BTreeSet::new();
    for (_, report) in &files {
        classes.extend(report.data_classes.iter().copied());
    }
    let breach_id = existing.as_ref().map_or(txn.manifest.next_breach_id, |b| b.id);
    let segments_written = new_segments.len();
    let has_accounts = files.iter().any(|(_, r)| r.accepted > 0);
    let stealer_log = files.iter().any(|(_, r)| r.format == Format::Stealer);
    let now = crate::clock::now_rfc3339();
    let breach = match existing {
        Some(mut b) => {
            b.pwn_count += new_accounts;
            b.data_classes = merge_classes(&b.data_classes, &classes);
            b.modified_date = now;
            b.is_stealer_log |= stealer_log;
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
                is_stealer_log: stealer_log,
            };
            apply_info(&mut b, &options.breach);
            b
        }
    };
    let manifest = &mut txn.manifest;
    let new_breach = breach.id == manifest.next_breach_id;
    // Nothing accepted into a new breach: record no empty breach, publish nothing.
    let publish = !(new_segments.is_empty() && !has_accounts && new_breach);
    let compaction_warning = if publish {
        if new_breach {
            manifest.next_breach_id += 1;
            manifest.breaches.push(breach.clone());
        } else if let Some(slot) = manifest.breaches.iter_mut().find(|b| b.id == breach.id) {
            *slot = breach.clone();
        }
        manifest.segments.extend(new_segments);
        // Re-ingesting a breach whose data `repair` set aside restores it.
        for s in &mut manifest.set_aside {
            s.segment.breaches.retain(|&id| id != breach_id);
        }
        manifest.set_aside.retain(|s| !s.segment.breaches.is_empty() || s.segment.kind.starts_with("hibp-"));
        txn.commit()?;
        let _ = std::fs::remove_dir_all(scratch);
        // The generation is published: from here on a failure takes nothing
        // back, so it is a warning in the summary, not the ingest's error.
        crate::compact::compact(txn, crate::compact::MAX_SEGMENTS_PER_KIND)
            .err()
            .map(|e| format!("the ingest is published, but merging segments afterwards failed: {e}"))
    } else {
        None
    };
    Ok(IngestSummary {
        files,
        breach,
        new_breach,
        new_accounts,
        new_credentials,
        segments_written,
        compaction_warning,
    })
}

/// The segments an ingest into a breach already stored checks its records
/// against: every stored account, triple and wide triple of `manifest`.
fn stored_of(dir: &DataDir, manifest: &crate::manifest::Manifest, existing: bool) -> Result<Option<Stored>> {
    if !existing {
        return Ok(None);
    }
    let open_kind = |kind: Kind| -> Result<Vec<leakwatch_segment::Segment>> {
        manifest
            .segments
            .iter()
            .filter(|s| s.kind == kind.name())
            .map(|s| Ok(dir.storage().open_segment(&s.file)?))
            .collect()
    };
    Ok(Some(Stored {
        accounts: open_kind(Kind::Accounts)?,
        sha1_creds: StoredCreds {
            keys: open_kind(Kind::CredentialKeys)?,
            wide: open_kind(Kind::Credentials)?,
        },
        ntlm_creds: StoredCreds {
            keys: open_kind(Kind::NtlmCredentialKeys)?,
            wide: open_kind(Kind::NtlmCredentials)?,
        },
    }))
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

fn tempdir_in(tmp: &Path) -> Result<PathBuf> {
    let path = tmp.join(format!("ingest-{}", std::process::id()));
    std::fs::create_dir_all(&path).map_err(|e| StoreError::io(&path, e))?;
    Ok(path)
}
