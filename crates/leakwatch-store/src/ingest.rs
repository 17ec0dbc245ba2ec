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
use leakwatch_types::{DataClass, Key16, Record};

use crate::crypt::{Keys, SealPlace, MAX_SEALED_PLAINTEXT};
use crate::dir::DataDir;
use crate::domains::{each_entry, each_group_lens, DomainBatch, DomainRuns};
use crate::error::{Result, StoreError};
use crate::manifest::Breach;
use crate::runs::{group_by_first_byte, same_key, sort_records, Bucketed, Runs, Scratch, Sorted};
use crate::txn::{SegmentSet, Txn};

use rayon::prelude::*;

/// A credential record in the sort runs: the digest then the masked pair key
/// ([`Keys::mask_pairs`]); the triple's stored key, as wide as the record
/// (the segment kinds' key lengths), is computed when it is written.
const SHA1_REC: usize = 20 + 8;
pub(crate) const NTLM_REC: usize = 16 + 8;

/// One credential record before its pair is masked: the digest (`N - 8`
/// bytes), then the (account, breach) pair key. Ingest builds every triple's
/// record here, and so does the lookup of a known triple
/// ([`crate::Store::own_password_leaked_in`]), so both key it alike.
pub(crate) fn credential_record<const N: usize>(digest: &[u8], pair: &[u8; 8]) -> [u8; N] {
    let mut rec = [0u8; N];
    rec[..N - 8].copy_from_slice(digest);
    rec[N - 8..].copy_from_slice(pair);
    rec
}
/// A stealer-log entry: the key, the sealed payload zero-padded, its length.
/// Sorted as arrays, entries fall in (key, sealed payload) order, the order
/// compaction keeps. Three widths, so that few bytes are padding: up to 31
/// bytes in clear (a website, most addresses)...
const STEALER_SHORT: usize = 16 + 47 + 1;
/// ...up to 63 (a long address)...
const STEALER_MID: usize = 16 + 79 + 1;
/// ...or up to 239, the most a sealed payload holds.
const STEALER_LONG: usize = 16 + 255 + 1;
/// A stealer-log pair by email: the account's stored key, the website reference.
const STEALER_EMAIL: usize = 32;

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

/// The index records of one parsed chunk.
struct Batch {
    records: u64,
    /// Account keys alone: the breach is the same for the whole ingest.
    accounts: Bucketed<16>,
    /// Account key and sealed alias, grouped by domain.
    domains: DomainBatch,
    /// Password SHA-1 and the masked pair key of its (breach, account,
    /// password) triple: the digest counts, the keyed triple is what is stored.
    sha1_creds: Bucketed<SHA1_REC>,
    /// Password NTLM and its masked pair key. A triple may be known by one digest
    /// only (a hash column), so each corpus counts its own set of triples.
    ntlm_creds: Bucketed<NTLM_REC>,
    /// Stealer-log pairs, two entries each: by email and by website; in three
    /// widths, by the length of the sealed payload.
    stealer: StealerBatch,
}

/// Turns parsed records into index records. Runs on the parallel side of the
/// pipeline, so the keyed hashing, the sealing and the bucketing cost no serial
/// time, and nothing in clear reaches the sorted runs on disk.
/// `stored_accounts`, for an ingest into a breach that exists, are its
/// accounts so far: those already in the breach get no domain entry (the
/// entries do not carry the account to check it later).
fn to_batch(
    records: Vec<Record>,
    keys: &Keys,
    breach: u32,
    stored_accounts: Option<&[Segment]>,
) -> Result<Batch> {
    let blinder = keys.blinder();
    let n = records.len();
    let mut accounts = Vec::with_capacity(n);
    let mut sha1_creds = Vec::with_capacity(n);
    let mut ntlm_creds = Vec::with_capacity(n);
    // Dumps repeat a few domains endlessly (gmail.com, the breached site's own):
    // one keyed hash and one seal place per distinct domain in a batch is enough.
    // (foldhash: SipHash showed at 2% of ingest for these short strings.)
    let mut domain_places: HashMap<&str, usize, foldhash::fast::RandomState> = HashMap::default();
    let mut places: Vec<(Key16, SealPlace)> = Vec::new();
    // Each alias with its domain's place, sealed together after the loop.
    let mut aliases: Vec<(usize, &[u8])> = Vec::with_capacity(n);
    // Stealer-log pairs, made into entries after the loop (`stealer_batch`).
    // A website repeats within a batch as domains do: each is listed once
    // (`sites`), and gets one inner key and one place.
    let mut site_places: HashMap<&str, usize, foldhash::fast::RandomState> = HashMap::default();
    let mut sites: Vec<&str> = Vec::new();
    // Each pair by email: the account's stored and inner keys (for the
    // website reference, made after the loop in batches), and the website (an
    // index into `sites`) with the address, for packing. Flat lists sized
    // for the batch: a list per website, grown push by push, cost a tenth of
    // a stealer log's batching in reallocations.
    let mut pair_accounts: Vec<(Key16, Key16)> = Vec::with_capacity(n);
    let mut pair_sites: Vec<(u32, &str)> = Vec::with_capacity(n);
    let mut sealed = Vec::with_capacity(256);
    let inners: Vec<Key16> = blinder.account_keys(records.iter().map(|r| &r.account));
    accounts.extend_from_slice(&inners);
    keys.outer_many(&mut accounts);
    for ((record, &inner), &account) in records.iter().zip(&inners).zip(&accounts) {
        if let Some((alias, domain)) = record.account.email_parts() {
            let place = *domain_places.entry(domain).or_insert_with(|| {
                let key = keys.domain(domain);
                places.push((key, keys.seal_place(&key, breach)));
                places.len() - 1
            });
            let known = match stored_accounts {
                Some(stored) => in_breach(stored, &account, breach)?,
                None => false,
            };
            if !known {
                aliases.push((place, &alias.as_bytes()[..alias.len().min(64)]));
            }
            // An address and site that long are not real ones: an entry holds
            // the website's name and at least one address.
            let fits = |site: &str| site.len() + 1 + record.account.value.len() <= MAX_SEALED_PLAINTEXT;
            if let Some(site) = record.website.as_deref().filter(|&site| fits(site)) {
                let site_at = *site_places.entry(site).or_insert_with(|| {
                    sites.push(site);
                    sites.len() - 1
                });
                // The email domain's view (`stealerlogsbyemaildomain`) needs no
                // entry of its own: it is read from the domain's aliases (the
                // domain entries above) and each alias's pairs by email.
                pair_accounts.push((account, inner));
                pair_sites.push((site_at as u32, &record.account.value));
            }
        }
        let Some(material) = &record.password else { continue };
        let pair = blinder.pair_key(&inner, breach).to_le_bytes();
        if let Some(sha1) = material.sha1() {
            sha1_creds.push(credential_record::<SHA1_REC>(&sha1, &pair));
        }
        if let Some(ntlm) = material.ntlm() {
            ntlm_creds.push(credential_record::<NTLM_REC>(&ntlm, &pair));
        }
    }
    let items: Vec<(&SealPlace, &[u8])> = aliases.iter().map(|&(p, alias)| (&places[p].1, alias)).collect();
    let mut ends = Vec::with_capacity(items.len() + 1);
    keys.seal_many(&items, &mut sealed, &mut ends);
    ends.insert(0, 0);
    let entries = aliases.iter().zip(ends.windows(2)).map(|(&(place, _), w)| (place, &sealed[w[0]..w[1]]));
    let domains = DomainBatch::new(places.iter().map(|p| p.0).collect(), entries);
    let stealer = stealer_batch(keys, breach, &sites, &pair_accounts, &pair_sites);
    // No pair key reaches the runs in clear; the triples' keys are computed
    // after the sort, from the masked pairs (a narrower record to sort).
    keys.mask_pairs(&mut sha1_creds);
    keys.mask_pairs(&mut ntlm_creds);
    Ok(Batch {
        records: n as u64,
        accounts: Bucketed::new(accounts),
        domains,
        sha1_creds: Bucketed::new(sha1_creds),
        ntlm_creds: Bucketed::new(ntlm_creds),
        stealer,
    })
}

/// The stealer-log entries of a batch's pairs: the websites' entries, sealed,
/// and the pairs by email, each account's stored key and its website's
/// reference. `pairs` are each pair's account (stored and inner keys) and its
/// website (an index into `sites`) and address.
fn stealer_batch(
    keys: &Keys,
    breach: u32,
    sites: &[&str],
    accounts: &[(Key16, Key16)],
    pairs: &[(u32, &str)],
) -> StealerBatch {
    let site_inners = keys.blinder().website_keys(sites.iter().copied());
    let mut site_keys = site_inners.clone();
    keys.outer_many(&mut site_keys);
    let places: Vec<(Key16, SealPlace)> =
        site_keys.iter().map(|k| (*k, keys.seal_place(k, breach))).collect();
    let (items, text) = pack_sites(sites, pairs);
    let mut stealer = stealer_entries(keys, &places, &items, &text);
    let refs = keys.site_refs(
        &accounts
            .iter()
            .zip(pairs)
            .map(|(&(_, inner), &(site, _))| (inner, site_inners[site as usize]))
            .collect::<Vec<_>>(),
    );
    stealer.emails = Bucketed::new(
        accounts
            .iter()
            .zip(&refs)
            .map(|((account, _), reference)| {
                let mut rec = [0u8; STEALER_EMAIL];
                rec[..16].copy_from_slice(account);
                rec[16..].copy_from_slice(reference);
                rec
            })
            .collect(),
    );
    stealer
}

/// The websites' entries of one batch: each website's addresses (`pairs`,
/// by index into `sites`, in the batch's order) packed into as few entries as
/// hold them. Returns each entry's website (its index) and the end of its
/// payload in the text. An entry is the website's name, then addresses, `\n` between them, at
/// most [`MAX_SEALED_PLAINTEXT`] bytes: the most common sites are most of a
/// stealer log's lines, and an entry per address made the website's view cost
/// as much ingest as all the rest of a record. Readers split an entry on
/// `\n`, which no address or name holds: the line without an `@` is the name
/// (the pairs by email refer to a website by its key alone), and they take
/// each address once (an address may repeat within a batch or across them).
/// Every address fits with the name (`to_batch` checks).
fn pack_sites(sites: &[&str], pairs: &[(u32, &str)]) -> (Vec<(usize, usize)>, Vec<u8>) {
    // The pairs grouped by website, in order (a counting sort).
    let mut starts = vec![0usize; sites.len() + 1];
    for &(site, _) in pairs {
        starts[site as usize + 1] += 1;
    }
    for i in 1..starts.len() {
        starts[i] += starts[i - 1];
    }
    let mut next = starts.clone();
    let mut grouped = vec![""; pairs.len()];
    for &(site, email) in pairs {
        grouped[next[site as usize]] = email;
        next[site as usize] += 1;
    }
    let text_len =
        pairs.iter().map(|(_, e)| e.len() + 1).sum::<usize>() + sites.iter().map(|s| s.len()).sum::<usize>();
    let (mut items, mut text) =
        (Vec::with_capacity(sites.len() * 2), Vec::with_capacity(text_len + text_len / 8));
    for (place, (site, w)) in sites.iter().zip(starts.windows(2)).enumerate() {
        let mut start = text.len();
        text.extend_from_slice(site.as_bytes());
        for email in &grouped[w[0]..w[1]] {
            if text.len() - start + 1 + email.len() > MAX_SEALED_PLAINTEXT {
                items.push((place, text.len()));
                start = text.len();
                text.extend_from_slice(site.as_bytes());
            }
            text.push(b'\n');
            text.extend_from_slice(email.as_bytes());
        }
        items.push((place, text.len()));
    }
    (items, text)
}

/// The stealer-log entries of a batch, sealed in one pass: `items` are each
/// entry's key and place (an index into `places`) and the end of its payload
/// in `text`.
fn stealer_entries(
    keys: &Keys,
    places: &[(Key16, SealPlace)],
    items: &[(usize, usize)],
    text: &[u8],
) -> StealerBatch {
    let mut start = 0;
    let to_seal: Vec<(&SealPlace, &[u8])> = items
        .iter()
        .map(|&(place, end)| {
            let payload = &text[start..end];
            start = end;
            (&places[place].1, payload)
        })
        .collect();
    let (mut sealed, mut ends) = (Vec::new(), Vec::with_capacity(items.len()));
    keys.seal_many(&to_seal, &mut sealed, &mut ends);
    let (mut short, mut mid, mut long) = (Vec::with_capacity(items.len()), Vec::new(), Vec::new());
    let mut start = 0;
    for (&(place, _), &end) in items.iter().zip(&ends) {
        let key = &places[place].0;
        let payload = &sealed[start..end];
        start = end;
        if payload.len() < STEALER_SHORT - 16 {
            short.push(stealer_entry(key, payload));
        } else if payload.len() < STEALER_MID - 16 {
            mid.push(stealer_entry(key, payload));
        } else {
            long.push(stealer_entry(key, payload));
        }
    }
    StealerBatch {
        short: Bucketed::new(short),
        mid: Bucketed::new(mid),
        long: Bucketed::new(long),
        emails: Bucketed::new(Vec::new()),
    }
}

/// A batch's stealer-log entries: sealed ones (websites' names and
/// addresses) in their three widths, and the pairs by email.
struct StealerBatch {
    short: Bucketed<STEALER_SHORT>,
    mid: Bucketed<STEALER_MID>,
    long: Bucketed<STEALER_LONG>,
    /// The account's stored key, then the website reference.
    emails: Bucketed<STEALER_EMAIL>,
}

/// The entry of `key` and a sealed payload that fits in `N`: the key, the
/// payload zero-padded, its length.
fn stealer_entry<const N: usize>(key: &Key16, sealed: &[u8]) -> [u8; N] {
    let mut rec = [0u8; N];
    rec[..16].copy_from_slice(key);
    rec[16..16 + sealed.len()].copy_from_slice(sealed);
    rec[N - 1] = sealed.len() as u8;
    rec
}

/// The key and sealed payload of an entry made by [`stealer_entry`].
fn stealer_parts<const N: usize>(rec: &[u8; N]) -> (&[u8], &[u8]) {
    (&rec[..16], &rec[16..16 + usize::from(rec[N - 1]).min(N - 17)])
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
    let stored = match existing {
        Some(_) => Some(Stored {
            accounts: txn.open_kind(Kind::Accounts)?,
            sha1_creds: StoredCreds {
                keys: txn.open_kind(Kind::CredentialKeys)?,
                wide: txn.open_kind(Kind::Credentials)?,
            },
            ntlm_creds: StoredCreds {
                keys: txn.open_kind(Kind::NtlmCredentialKeys)?,
                wide: txn.open_kind(Kind::NtlmCredentials)?,
            },
        }),
        None => None,
    };
    let stored = stored.as_ref();
    let stored_accounts = stored.map(|s| s.accounts.as_slice());

    // Keys: the account; domain then account (the alias follows from the
    // account); a digest then the pair.
    let mut accounts = Runs::<16>::new(scratch.clone(), "accounts", 16, true);
    let mut domains = DomainRuns::new(scratch.clone());
    let mut sha1_creds = Runs::<SHA1_REC>::new(scratch.clone(), "credentials", SHA1_REC, true);
    let mut ntlm_creds = Runs::<NTLM_REC>::new(scratch.clone(), "ntlm-credentials", NTLM_REC, true);
    let mut stealer = StealerRuns {
        short: Runs::new(scratch.clone(), "stealer-short", STEALER_SHORT, true),
        mid: Runs::new(scratch.clone(), "stealer-mid", STEALER_MID, true),
        long: Runs::new(scratch.clone(), "stealer", STEALER_LONG, true),
        emails: Runs::new(scratch.clone(), "stealer-emails", STEALER_EMAIL, true),
    };
    let budget = options.memory_budget.max(1 << 20) as usize;
    let mut files = Vec::new();
    let mut classes = BTreeSet::new();
    for input in inputs {
        let name = input.name().to_owned();
        on_phase(Phase::Reading { name: &name, raw_len: input.raw_len() });
        let mut reserve = input.raw_len().map(|len| (len, progress.bytes.load(Ordering::Relaxed)));
        let report = leakwatch_ingest::read(
            input,
            options.format,
            &progress.bytes,
            |records| to_batch(records, &keys, breach_id, stored_accounts),
            |batch: Result<Batch>| {
                let batch = batch?;
                progress.records.fetch_add(batch.records, Ordering::Relaxed);
                accounts.push(&batch.accounts);
                domains.push(&batch.domains);
                sha1_creds.push(&batch.sha1_creds);
                ntlm_creds.push(&batch.ntlm_creds);
                stealer.push(&batch.stealer);
                // Half the budget for run buffers; the rest covers the parser's
                // chunks in flight and the merge's read buffers.
                let held = accounts.mem_bytes()
                    + domains.mem_bytes()
                    + sha1_creds.mem_bytes()
                    + ntlm_creds.mem_bytes()
                    + stealer.mem_bytes();
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
                            accounts.reserve(growth);
                            domains.reserve(growth);
                            sha1_creds.reserve(growth);
                            ntlm_creds.reserve(growth);
                            stealer.reserve(growth);
                        }
                    }
                }
                if held > budget / 2 {
                    accounts.spill()?;
                    domains.spill()?;
                    sha1_creds.spill()?;
                    ntlm_creds.spill()?;
                    stealer.spill()?;
                }
                Ok(())
            },
        )?;
        classes.extend(report.data_classes.iter().copied());
        files.push((name, report));
    }

    on_phase(Phase::Writing);
    // The five chains share nothing but the directory. The domains' has the
    // longest serial stretches (a big domain's sort, the segment's two
    // passes): it starts at once on one thread, the credential chains on the
    // other, and their parallel parts (sorting buckets, keying, gathering)
    // fill whatever time the first thread has left.
    let writing = &txn;
    let sha1_chain = || {
        let stored = stored.map(|s| &s.sha1_creds);
        let kinds = (Kind::CredentialKeys, Kind::Sha1Counts);
        write_counted::<SHA1_REC, 20>(writing, &keys, sha1_creds, stored, kinds, &scratch, budget)
    };
    let ntlm_chain = || {
        let stored = stored.map(|s| &s.ntlm_creds);
        let kinds = (Kind::NtlmCredentialKeys, Kind::NtlmCounts);
        write_counted::<NTLM_REC, 16>(writing, &keys, ntlm_creds, stored, kinds, &scratch, budget)
    };
    let accounts_chain = || write_accounts(writing, accounts, stored_accounts, breach_id);
    let domains_chain = || write_domains(writing, domains, breach_id, budget);
    // A stealer log's pairs are as many entries again as its accounts: a
    // chain of their own, taken by whichever thread is free first.
    let stealer_chain = || write_stealer(writing, stealer, breach_id);
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

    let mut new_segments = out.done()?;
    for s in &mut new_segments {
        s.breaches = vec![breach_id];
    }
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
        txn.commit(std::iter::empty::<&str>())?;
        let _ = std::fs::remove_dir_all(&scratch);
        // The generation is published: from here on a failure takes nothing
        // back, so it is a warning in the summary, not the ingest's error.
        crate::compact::compact(&mut txn, crate::compact::MAX_SEGMENTS_PER_KIND)
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

/// The accounts new to this breach.
fn write_accounts(
    txn: &Txn,
    mut accounts: Runs<16>,
    stored: Option<&[Segment]>,
    breach_id: u32,
) -> Result<(SegmentSet, u64)> {
    let mut out = txn.segments();
    let breach_bytes = breach_id.to_le_bytes();
    let mut acc_w = out.writer(Kind::Accounts, accounts.pushed())?;
    let mut new_accounts = 0u64;
    if stored.is_none() {
        if let Some(buckets) = accounts.take_memory() {
            // A new breach: every account is new to it.
            for bucket in buckets {
                acc_w.push_keys(&bucket, &breach_bytes)?;
                new_accounts += bucket.len() as u64;
            }
            out.finish(acc_w)?;
            return Ok((out, new_accounts));
        }
    }
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
    Ok((out, new_accounts))
}

/// The aliases, under each domain, of the email accounts new to this breach
/// (`to_batch` made entries for those alone).
fn write_domains(txn: &Txn, mut domains: DomainRuns, breach_id: u32, budget: usize) -> Result<SegmentSet> {
    let mut out = txn.segments();
    let mut dom_w = out.writer(Kind::Domains, domains.pushed())?;
    if let Some(groups) = domains.take_memory() {
        // The sealed aliases are in memory already: the entries go first, and
        // the aliases after them straight from the groups, with no copy of
        // them all gathered for the heap.
        each_group_lens(&groups, |domain, lens| Ok(dom_w.push_payload_lens(domain, breach_id, lens)?))?;
        each_entry(&groups, |_, alias| Ok(dom_w.put_payload(alias)?))?;
    } else {
        // The sealed aliases follow the entries in the file: held in memory,
        // they are written once instead of through a scratch file and back.
        dom_w.set_heap_memory(budget / 8);
        dom_w.reserve_heap(domains.payload_bytes());
        domains.for_each(|domain, alias| Ok(dom_w.push_payload(domain, breach_id, alias)?))?;
    }
    out.finish(dom_w)?;
    Ok(out)
}

/// The stealer-log entries of an ingest: the sealed ones in their three
/// widths, and the pairs by email.
struct StealerRuns {
    short: Runs<STEALER_SHORT>,
    mid: Runs<STEALER_MID>,
    long: Runs<STEALER_LONG>,
    emails: Runs<STEALER_EMAIL>,
}

impl StealerRuns {
    fn push(&mut self, batch: &StealerBatch) {
        self.short.push(&batch.short);
        self.mid.push(&batch.mid);
        self.long.push(&batch.long);
        self.emails.push(&batch.emails);
    }

    fn mem_bytes(&self) -> usize {
        self.short.mem_bytes() + self.mid.mem_bytes() + self.long.mem_bytes() + self.emails.mem_bytes()
    }

    fn reserve(&mut self, growth: f64) {
        self.short.reserve(growth);
        self.mid.reserve(growth);
        self.long.reserve(growth);
        self.emails.reserve(growth);
    }

    fn spill(&mut self) -> Result<()> {
        self.short.spill()?;
        self.mid.spill()?;
        self.long.spill()?;
        self.emails.spill()
    }
}

/// Sorted stealer runs of one width, looked at one entry at a time.
struct StealerHead<const N: usize> {
    sorted: std::iter::Peekable<Sorted<N>>,
}

impl<const N: usize> StealerHead<N> {
    /// The head's key and payload; `Some(None)` for a read error waiting to
    /// be taken (and returned), which sorts first.
    fn peek(&mut self) -> Option<Option<(&[u8], &[u8])>> {
        self.sorted.peek().map(|r| r.as_ref().ok().map(stealer_parts))
    }

    /// Takes the head into the writer.
    fn write(&mut self, w: &mut SegmentWriter, breach_id: u32) -> Result<()> {
        let rec = self.sorted.next().expect("peeked")?;
        let (key, payload) = stealer_parts(&rec);
        Ok(w.push_payload(key, breach_id, payload)?)
    }
}

/// Stealer-log entries: the pairs by email, and the sealed ones, the three
/// widths merged in (key, sealed payload) order. Repeats within an ingest
/// collapse here; across ingests, lookups and compaction deduplicate them.
fn write_stealer(txn: &Txn, stealer: StealerRuns, breach_id: u32) -> Result<SegmentSet> {
    let mut out = txn.segments();
    if stealer.emails.pushed() > 0 {
        let mut w = out.writer(Kind::StealerEmails, stealer.emails.pushed())?;
        let mut value = [0u8; 20];
        value[..4].copy_from_slice(&breach_id.to_le_bytes());
        for rec in stealer.emails.finish()? {
            let rec = rec?;
            value[4..].copy_from_slice(&rec[16..]);
            w.push_value(&rec[..16], &value)?;
        }
        out.finish(w)?;
    }
    let total = stealer.short.pushed() + stealer.mid.pushed() + stealer.long.pushed();
    let mut w = out.writer(Kind::Stealer, total)?;
    let mut short = StealerHead { sorted: stealer.short.finish()?.peekable() };
    let mut mid = StealerHead { sorted: stealer.mid.finish()?.peekable() };
    let mut long = StealerHead { sorted: stealer.long.finish()?.peekable() };
    loop {
        // The smallest head (a read error first, to be returned); payloads of
        // different widths are never equal.
        let heads = [short.peek(), mid.peek(), long.peek()];
        let Some(least) = (0..3).filter(|&i| heads[i].is_some()).min_by_key(|&i| heads[i]) else {
            break;
        };
        match least {
            0 => short.write(&mut w, breach_id)?,
            1 => mid.write(&mut w, breach_id)?,
            _ => long.write(&mut w, breach_id)?,
        }
    }
    out.finish(w)?;
    Ok(out)
}

/// The stored segments an ingest into an existing breach checks against.
struct Stored {
    accounts: Vec<Segment>,
    sha1_creds: StoredCreds,
    ntlm_creds: StoredCreds,
}

/// The triples one corpus has counted: in 16-byte keys, and in the wider keys
/// of the kinds written before them.
struct StoredCreds {
    keys: Vec<Segment>,
    wide: Vec<Segment>,
}

/// Writes the new triples of one digest and, grouped by digest (they come
/// sorted by it), that digest's counts: records are the digest then the
/// triple's masked pair key, so the counts need no second sort. The stored keys
/// of the triples are computed here, in batches of pipelined AES blocks; they
/// are keyed hashes in no digest order, so the new ones are sorted on their own.
fn write_counted<const N: usize, const D: usize>(
    txn: &Txn,
    keys: &Keys,
    mut creds: Runs<N>,
    stored: Option<&StoredCreds>,
    (creds_kind, counts_kind): (Kind, Kind),
    scratch: &Path,
    budget: usize,
) -> Result<(SegmentSet, u64)> {
    const CHECK_EVERY: u64 = 1 << 16;
    const { assert!(D + 8 == N, "a credential record is its digest and a pair key") };
    let digest_len = D;
    let mut out = txn.segments();
    let digests = creds.distinct_prefixes(digest_len);
    let mut counts_w = out.writer(counts_kind, digests)?;
    if let Some(buckets) = creds.take_memory() {
        // Buckets share no digest: each is counted and keyed on its own, on
        // all cores, and the writers take the results in bucket order.
        let counted = buckets
            .into_par_iter()
            .map_init(Vec::new, |spare, bucket| count_bucket::<N, D>(keys, stored, bucket, spare))
            .collect::<Result<Vec<_>>>()?;
        let new_triples = counted.iter().map(|c| c.keys as u64).sum();
        // The counts and the triples' keys go to files of their own: written
        // side by side.
        let mut creds_out = txn.segments();
        let (counted_ok, keyed_ok) = rayon::join(
            || {
                for c in &counted {
                    counts_w.push_counts(&c.counts)?;
                }
                out.finish(counts_w)
            },
            || write_counted_creds(&mut creds_out, &counted, new_triples, creds_kind),
        );
        counted_ok?;
        keyed_ok?;
        out.absorb(creds_out);
        return Ok((out, new_triples));
    }
    let name = if N == SHA1_REC { "new-credentials" } else { "new-ntlm-credentials" };
    let mut new_creds = Runs::<CRED_KEY>::new(scratch.to_owned(), name, CRED_KEY, false);
    new_creds.reserve_spread((creds.pushed() as usize).min(budget / 8 / CRED_KEY));
    let mut new_triples = 0u64;
    let mut tally = Tally::<N>::new(digest_len);
    let mut sorted = creds.finish()?;
    let mut stage: Vec<[u8; N]> = Vec::with_capacity(STAGE);
    let mut count = |rec: &[u8; N], n| Ok(counts_w.push_count(&rec[..digest_len], n)?);
    let mut new = |cred| {
        new_triples += 1;
        new_creds.push_record(cred);
        if new_triples.is_multiple_of(CHECK_EVERY) && new_creds.mem_bytes() > budget / 8 {
            new_creds.spill()?;
        }
        Ok(())
    };
    loop {
        stage.clear();
        for rec in sorted.by_ref().take(STAGE) {
            stage.push(rec?);
        }
        if stage.is_empty() {
            break;
        }
        tally.add(keys, stored, &stage, &mut count, &mut new)?;
    }
    tally.finish(&mut count)?;
    write_creds(&mut out, new_creds, creds_kind)?;
    out.finish(counts_w)?;
    Ok((out, new_triples))
}

/// Records keyed a stage at a time: enough AES blocks in flight to pipeline,
/// few enough to stay in L1/L2.
const STAGE: usize = 1 << 12;

/// The new triples' stored keys, sorted, as a segment of `kind`.
fn write_creds(out: &mut SegmentSet, new_creds: Runs<CRED_KEY>, kind: Kind) -> Result<()> {
    let mut creds_w = out.writer(kind, new_creds.pushed())?;
    for cred in new_creds.finish()? {
        creds_w.push_value(&cred?, &[])?;
    }
    out.finish(creds_w)
}

/// A stored triple key's width ([`Kind::CredentialKeys`]).
const CRED_KEY: usize = 16;

/// One digest bucket, counted: the stored keys of its new triples, grouped by
/// their first byte, and each digest (`D` bytes) with its count.
struct Counted<const N: usize, const D: usize> {
    /// The bucket's records, whose bytes now begin with the keys.
    storage: Vec<[u8; N]>,
    keys: usize,
    starts: Box<[u32; 257]>,
    counts: Vec<([u8; D], u64)>,
}

impl<const N: usize, const D: usize> Counted<N, D> {
    /// The keys whose first byte is `b`.
    fn bucket(&self, b: usize) -> &[[u8; CRED_KEY]] {
        let keys = self.storage.as_flattened()[..self.keys * CRED_KEY].as_chunks().0;
        &keys[self.starts[b] as usize..self.starts[b + 1] as usize]
    }
}

/// Counts and keys one bucket of digest-sorted records. No more keys come
/// out of a stage than records went in, and a key is narrower than a record:
/// the keys take the records' place, and the bucket's memory is all they need.
fn count_bucket<const N: usize, const D: usize>(
    keys: &Keys,
    stored: Option<&StoredCreds>,
    mut bucket: Vec<[u8; N]>,
    spare: &mut Vec<[u8; CRED_KEY]>,
) -> Result<Counted<N, D>> {
    let mut tally = Tally::<N>::new(D);
    // Room for a digest per record: what is never filled is never faulted in.
    let mut counts = Vec::with_capacity(bucket.len());
    let mut count = |rec: &[u8; N], n| {
        counts.push((rec[..D].try_into().expect("a digest"), n));
        Ok(())
    };
    let mut stage = Vec::with_capacity(STAGE.min(bucket.len()));
    let mut kept = 0;
    for at in (0..bucket.len()).step_by(STAGE) {
        stage.clear();
        stage.extend_from_slice(&bucket[at..bucket.len().min(at + STAGE)]);
        let bytes = bucket.as_flattened_mut();
        let mut new = |cred: [u8; CRED_KEY]| {
            bytes[kept * CRED_KEY..(kept + 1) * CRED_KEY].copy_from_slice(&cred);
            kept += 1;
            Ok(())
        };
        tally.add(keys, stored, &stage, &mut count, &mut new)?;
    }
    tally.finish(&mut count)?;
    let (keys_in_place, _) = bucket.as_flattened_mut()[..kept * CRED_KEY].as_chunks_mut::<CRED_KEY>();
    let starts = group_by_first_byte(keys_in_place, spare);
    Ok(Counted { storage: bucket, keys: kept, starts, counts })
}

/// The new triples' keys as a segment of `kind`, one first byte at a time:
/// each digest bucket holds its part of every key bucket, gathered and sorted
/// here (no second copy of all the keys, and no memory beyond a few key
/// buckets). A group of key buckets is gathered and sorted on all cores while
/// the group before it is written.
fn write_counted_creds<const N: usize, const D: usize>(
    out: &mut SegmentSet,
    counted: &[Counted<N, D>],
    total: u64,
    kind: Kind,
) -> Result<()> {
    /// Key buckets gathered and sorted at once.
    const GROUP: usize = 4;
    let mut creds_w = out.writer(kind, total)?;
    let new_slots = || (0..GROUP).map(|_| (Vec::new(), Scratch::default())).collect::<Vec<_>>();
    let (mut ready, mut next) = (new_slots(), new_slots());
    let gather = |slots: &mut Vec<(Vec<[u8; CRED_KEY]>, Scratch<CRED_KEY>)>, group: usize| {
        slots.par_iter_mut().enumerate().for_each(|(i, (gathered, scratch))| {
            gathered.clear();
            for c in counted {
                gathered.extend_from_slice(c.bucket(group * GROUP + i));
            }
            // Keys of distinct triples are distinct: nothing to deduplicate.
            sort_records(gathered, 1, CRED_KEY, scratch);
        });
    };
    gather(&mut ready, 0);
    for group in 0..256 / GROUP {
        let (written, ()) = rayon::join(
            || ready.iter().try_for_each(|(keys, _)| creds_w.push_keys(keys, &[])),
            || {
                if group + 1 < 256 / GROUP {
                    gather(&mut next, group + 1);
                }
            },
        );
        written?;
        std::mem::swap(&mut ready, &mut next);
    }
    out.finish(creds_w)
}

/// Counts the new triples of each digest and keys them for storage, a stage
/// of digest-sorted records at a time (a digest's records may span stages).
struct Tally<const N: usize> {
    digest_len: usize,
    /// The digest being counted: its first record and its new triples so far.
    group: Option<([u8; N], u64)>,
    creds: Vec<[u8; CRED_KEY]>,
    /// The stage's keys in the older, wider kinds, when some are stored.
    wide: Vec<[u8; N]>,
}

impl<const N: usize> Tally<N> {
    fn new(digest_len: usize) -> Self {
        Tally { digest_len, group: None, creds: Vec::new(), wide: Vec::new() }
    }

    /// Hands each new triple's stored key to `new`, and each digest's count,
    /// once its records are over, to `count` (with its first record).
    fn add(
        &mut self,
        keys: &Keys,
        stored: Option<&StoredCreds>,
        stage: &[[u8; N]],
        count: &mut impl FnMut(&[u8; N], u64) -> Result<()>,
        new: &mut impl FnMut([u8; CRED_KEY]) -> Result<()>,
    ) -> Result<()> {
        // Digest and masked pair -> the triple's stored key, a stage at a time.
        keys.credential_keys_from_masked(stage, &mut self.creds);
        let wide = stored.filter(|s| !s.wide.is_empty());
        if wide.is_some() {
            // A triple counted before the 16-byte kinds is stored in the wider one.
            keys.credentials_from_masked::<N, N>(stage, &mut self.wide);
        }
        for (i, (rec, &cred)) in stage.iter().zip(&self.creds).enumerate() {
            if let Some(stored) = stored {
                if any_found(&stored.keys, &cred)? {
                    continue;
                }
                if let Some(wide) = wide {
                    if any_found(&wide.wide, &self.wide[i])? {
                        continue;
                    }
                }
            }
            new(cred)?;
            match &mut self.group {
                Some((first, n)) if same_key(first, rec, self.digest_len) => *n += 1,
                _ => {
                    if let Some((first, n)) = self.group.replace((*rec, 1)) {
                        count(&first, n)?;
                    }
                }
            }
        }
        Ok(())
    }

    fn finish(self, count: &mut impl FnMut(&[u8; N], u64) -> Result<()>) -> Result<()> {
        match self.group {
            Some((first, n)) => count(&first, n),
            None => Ok(()),
        }
    }
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

fn tempdir_in(tmp: &Path) -> Result<PathBuf> {
    let path = tmp.join(format!("ingest-{}", std::process::id()));
    std::fs::create_dir_all(&path).map_err(|e| StoreError::io(&path, e))?;
    Ok(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A triple counted before the 16-byte kinds sits in a wide-key segment:
    /// counting it again must find it there, as it finds the new keys.
    #[test]
    fn triples_stored_in_either_kind_are_not_counted_again() {
        let dir = tempfile::tempdir().unwrap();
        let keys = Keys::new(&[5; 32], &[6; 32]);
        // Digest-sorted records of four digests, 30 pairs each.
        let mut recs: Vec<[u8; SHA1_REC]> = (0..120u32)
            .map(|i| {
                let mut r = [0u8; SHA1_REC];
                r[..20].fill((i / 30) as u8 + 1);
                r[20..24].copy_from_slice(&i.to_be_bytes());
                r
            })
            .collect();
        keys.mask_pairs(&mut recs);
        recs.sort();
        // The first 40 were counted into a wide segment, the next 20 into a
        // 16-byte one.
        let write = |kind: Kind, keys_of: &[Vec<u8>]| {
            let path = dir.path().join(kind.name());
            let mut sorted = keys_of.to_vec();
            sorted.sort();
            let mut w = SegmentWriter::create(&path, kind, sorted.len() as u64).unwrap();
            for k in &sorted {
                w.push_value(k, &[]).unwrap();
            }
            w.finish().unwrap();
            Segment::open(&path).unwrap()
        };
        let mut wide: Vec<[u8; SHA1_REC]> = Vec::new();
        keys.credentials_from_masked::<SHA1_REC, SHA1_REC>(&recs[..40], &mut wide);
        let mut narrow = Vec::new();
        keys.credential_keys_from_masked(&recs[40..60], &mut narrow);
        let stored = StoredCreds {
            wide: vec![write(Kind::Credentials, &wide.iter().map(|k| k.to_vec()).collect::<Vec<_>>())],
            keys: vec![write(Kind::CredentialKeys, &narrow.iter().map(|k| k.to_vec()).collect::<Vec<_>>())],
        };
        let counted =
            count_bucket::<SHA1_REC, 20>(&keys, Some(&stored), recs.clone(), &mut Vec::new()).unwrap();
        assert_eq!(counted.keys, 60);
        let counts: Vec<u64> = counted.counts.iter().map(|c| c.1).collect();
        // Digest 1 was counted before (wide), digest 2 too (10 wide, 20 narrow).
        assert_eq!(counts, vec![30, 30], "{:?}", counted.counts);
        assert_eq!(counted.counts[0].0, [3; 20]);
        let mut all_new = Vec::new();
        keys.credential_keys_from_masked(&recs[60..], &mut all_new);
        let mut got: Vec<[u8; CRED_KEY]> = (0..256).flat_map(|b| counted.bucket(b).to_vec()).collect();
        got.sort();
        all_new.sort();
        assert_eq!(got, all_new);
        // And with nothing stored, every triple is new.
        let counted = count_bucket::<SHA1_REC, 20>(&keys, None, recs, &mut Vec::new()).unwrap();
        assert_eq!(counted.keys, 120);
        assert_eq!(counted.counts.iter().map(|c| c.1).collect::<Vec<_>>(), vec![30; 4]);
    }
}
