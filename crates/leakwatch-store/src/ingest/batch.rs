//! An ingest's parallel side: a chunk of parsed records made into index
//! records (keyed, sealed, bucketed), so that nothing in clear reaches the
//! sorted runs and no serial time goes to hashing.

use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};

use leakwatch_segment::Segment;
use leakwatch_types::{Key16, Records};

use super::partition::Partition;
use crate::crypt::{Keys, SealPlace, MAX_SEALED_PLAINTEXT};
use crate::domains::{DomainBatch, DomainBuffers};
use crate::error::Result;
use crate::runs::Bucketed;

/// A credential record in the sort runs: the digest then the masked pair key
/// ([`Keys::mask_pairs`]); the triple's stored key, as wide as the record
/// (the segment kinds' key lengths), is computed when it is written.
pub(super) const SHA1_REC: usize = 20 + 8;
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
pub(super) const STEALER_SHORT: usize = 16 + 47 + 1;
/// ...up to 63 (a long address)...
pub(super) const STEALER_MID: usize = 16 + 79 + 1;
/// ...or up to 239, the most a sealed payload holds.
pub(super) const STEALER_LONG: usize = 16 + 255 + 1;
/// A stealer-log pair by email: the account's stored key, the website reference.
pub(super) const STEALER_EMAIL: usize = 32;

/// The index records of one parsed chunk.
pub(super) struct Batch {
    pub(super) records: u64,
    /// Account keys alone: the breach is the same for the whole ingest.
    pub(super) accounts: Bucketed<16>,
    /// Account key and sealed alias, grouped by domain.
    pub(super) domains: DomainBatch,
    /// Password SHA-1 and the masked pair key of its (breach, account,
    /// password) triple: the digest counts, the keyed triple is what is stored.
    pub(super) sha1_creds: Bucketed<SHA1_REC>,
    /// Password NTLM and its masked pair key. A triple may be known by one digest
    /// only (a hash column), so each corpus counts its own set of triples.
    pub(super) ntlm_creds: Bucketed<NTLM_REC>,
    /// Stealer-log pairs, two entries each: by email and by website; in three
    /// widths, by the length of the sealed payload.
    pub(super) stealer: StealerBatch,
}

impl Batch {
    /// The vectors the batch's records are in, once the runs have copied
    /// them, for a later batch to be made in.
    pub(super) fn into_buffers(self) -> BatchBuffers {
        BatchBuffers {
            accounts: self.accounts.into_records(),
            domains: self.domains.into_buffers(),
            sha1_creds: self.sha1_creds.into_records(),
            ntlm_creds: self.ntlm_creds.into_records(),
        }
    }
}

/// The vectors a [`Batch`] holds its records in, from one batch to a later
/// one: each is a megabyte or so, and one freed is memory that malloc may
/// hand back to the kernel and the next batch fault in again, page by page.
/// (A stealer log's entries, a minority of its records, are not kept.)
#[derive(Default)]
#[cfg_attr(test, derive(Debug, PartialEq))]
pub(super) struct BatchBuffers {
    accounts: Vec<[u8; 16]>,
    domains: DomainBuffers,
    sha1_creds: Vec<[u8; SHA1_REC]>,
    ntlm_creds: Vec<[u8; NTLM_REC]>,
}

/// What [`to_batch`] works in and leaves nothing in that a batch keeps: kept
/// for the next call, for the reason [`BatchBuffers`] are. Vectors of
/// borrowed items are kept empty, as `'static`, and lent out for the
/// lifetime of one call by [`reuse`].
#[derive(Default)]
pub(super) struct BatchScratch {
    inners: Vec<Key16>,
    aliases: Vec<(usize, &'static [u8])>,
    to_seal: Vec<(&'static SealPlace, &'static [u8])>,
    sealed: Vec<u8>,
    ends: Vec<usize>,
    /// The other half of each grouping into buckets ([`Bucketed::with_spare`]).
    spare_accounts: Vec<[u8; 16]>,
    spare_sha1: Vec<[u8; SHA1_REC]>,
    spare_ntlm: Vec<[u8; NTLM_REC]>,
}

/// Buffers kept for reuse, shared by the parallel side (which takes them) and
/// the sink (which gives a batch's back). Only what was taken comes back, so
/// a pool never holds more than were in use at once: a few per core, as the
/// pipeline bounds the batches in flight.
pub(super) struct Pool<T>(Mutex<Vec<T>>);

impl<T: Default> Pool<T> {
    pub(super) fn new() -> Self {
        Pool(Mutex::new(Vec::new()))
    }

    /// One kept earlier, or a new (empty) one.
    pub(super) fn take(&self) -> T {
        self.0.lock().unwrap_or_else(PoisonError::into_inner).pop().unwrap_or_default()
    }

    pub(super) fn give(&self, item: T) {
        self.0.lock().unwrap_or_else(PoisonError::into_inner).push(item);
    }
}

/// `v`'s memory as an empty vector of `U`, where `T` and `U` differ in
/// lifetimes alone: a vector of borrowed items outlives what they borrowed.
/// The collect works in place and keeps the allocation (std's in-place
/// iteration, for items of one size; `reused_vectors_keep_their_memory`
/// checks that it does).
fn reuse<T, U>(mut v: Vec<T>) -> Vec<U> {
    v.clear();
    v.into_iter().map(|_| unreachable!("the vector is empty")).collect()
}

/// What a batch's index records are made with.
#[derive(Clone, Copy)]
pub(super) struct BatchOf<'a> {
    pub(super) keys: &'a Keys,
    pub(super) breach: u32,
    /// For an ingest into a breach that exists, its accounts so far: those
    /// already in the breach get no domain entry (the entries do not carry
    /// the account to check it later).
    pub(super) stored_accounts: Option<&'a [Segment]>,
    /// The share a distributed ingest's job keeps ([`Partition`]); all when
    /// `None`.
    pub(super) partition: Option<Partition>,
}

/// Turns parsed records into index records. Runs on the parallel side of the
/// pipeline, so the keyed hashing, the sealing and the bucketing cost no serial
/// time, and nothing in clear reaches the sorted runs on disk. The batch is
/// made in `buffers` (an earlier batch's, or new ones), with `scratch` to work in.
pub(super) fn to_batch(
    records: &Records,
    made: &BatchOf<'_>,
    buffers: BatchBuffers,
    scratch: &mut BatchScratch,
) -> Result<Batch> {
    let BatchOf { keys, breach, stored_accounts, partition } = *made;
    let blinder = keys.blinder();
    let n = records.len();
    let BatchBuffers { mut accounts, domains: domain_buffers, mut sha1_creds, mut ntlm_creds } = buffers;
    accounts.clear();
    accounts.reserve(n);
    sha1_creds.clear();
    sha1_creds.reserve(n);
    ntlm_creds.clear();
    ntlm_creds.reserve(n);
    // Dumps repeat a few domains endlessly (gmail.com, the breached site's own):
    // one keyed hash and one seal place per distinct domain in a batch is enough.
    // (foldhash: SipHash showed at 2% of ingest for these short strings.)
    let mut domain_places: HashMap<&str, usize, foldhash::fast::RandomState> = HashMap::default();
    let mut places: Vec<(Key16, SealPlace)> = Vec::new();
    // Each alias with its domain's place, sealed together after the loop.
    let mut aliases: Vec<(usize, &[u8])> = reuse(std::mem::take(&mut scratch.aliases));
    aliases.reserve(n);
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
    let inners = &mut scratch.inners;
    blinder.account_keys_into(records.iter().map(|r| (r.kind, r.account)), inners);
    accounts.extend_from_slice(inners);
    keys.outer_many(&mut accounts);
    let owns = |key: &[u8]| partition.is_none_or(|p| p.owns(key));
    let mut owned = 0u64;
    for ((record, &inner), &account) in records.iter().zip(inners.iter()).zip(&accounts) {
        let account_owned = owns(&account);
        owned += u64::from(account_owned);
        if let Some((alias, domain)) = record.email_parts().filter(|_| account_owned) {
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
            let fits = |site: &str| site.len() + 1 + record.account.len() <= MAX_SEALED_PLAINTEXT;
            if let Some(site) = record.website.filter(|&site| fits(site)) {
                let site_at = *site_places.entry(site).or_insert_with(|| {
                    sites.push(site);
                    sites.len() - 1
                });
                // The email domain's view (`stealerlogsbyemaildomain`) needs no
                // entry of its own: it is read from the domain's aliases (the
                // domain entries above) and each alias's pairs by email.
                pair_accounts.push((account, inner));
                pair_sites.push((site_at as u32, record.account));
            }
        }
        let Some(material) = record.password else { continue };
        let (sha1, ntlm) = (material.sha1().filter(|d| owns(d)), material.ntlm().filter(|d| owns(d)));
        if sha1.is_none() && ntlm.is_none() {
            continue;
        }
        let pair = blinder.pair_key(&inner, breach).to_le_bytes();
        if let Some(sha1) = sha1 {
            sha1_creds.push(credential_record::<SHA1_REC>(&sha1, &pair));
        }
        if let Some(ntlm) = ntlm {
            ntlm_creds.push(credential_record::<NTLM_REC>(&ntlm, &pair));
        }
    }
    if partition.is_some() {
        accounts.retain(|a| owns(a));
    }
    let mut items: Vec<(&SealPlace, &[u8])> = reuse(std::mem::take(&mut scratch.to_seal));
    items.extend(aliases.iter().map(|&(p, alias)| (&places[p].1, alias)));
    let (sealed, ends) = (&mut scratch.sealed, &mut scratch.ends);
    keys.seal_many(&items, sealed, ends);
    scratch.to_seal = reuse(items);
    ends.insert(0, 0);
    let entries = aliases.iter().zip(ends.windows(2)).map(|(&(place, _), w)| (place, &sealed[w[0]..w[1]]));
    let domains = DomainBatch::new(places.iter().map(|p| p.0).collect(), entries, domain_buffers);
    scratch.aliases = reuse(aliases);
    let stealer = stealer_batch(keys, breach, &sites, &pair_accounts, &pair_sites);
    // No pair key reaches the runs in clear; the triples' keys are computed
    // after the sort, from the masked pairs (a narrower record to sort).
    keys.mask_pairs(&mut sha1_creds);
    keys.mask_pairs(&mut ntlm_creds);
    Ok(Batch {
        records: owned,
        accounts: Bucketed::with_spare(accounts, &mut scratch.spare_accounts),
        domains,
        sha1_creds: Bucketed::with_spare(sha1_creds, &mut scratch.spare_sha1),
        ntlm_creds: Bucketed::with_spare(ntlm_creds, &mut scratch.spare_ntlm),
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
pub(super) struct StealerBatch {
    pub(super) short: Bucketed<STEALER_SHORT>,
    pub(super) mid: Bucketed<STEALER_MID>,
    pub(super) long: Bucketed<STEALER_LONG>,
    /// The account's stored key, then the website reference.
    pub(super) emails: Bucketed<STEALER_EMAIL>,
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
pub(super) fn stealer_parts<const N: usize>(rec: &[u8; N]) -> (&[u8], &[u8]) {
    (&rec[..16], &rec[16..16 + usize::from(rec[N - 1]).min(N - 17)])
}

/// Whether `key` is stored in `segments` with breach `breach`.
pub(super) fn in_breach(segments: &[Segment], key: &[u8], breach: u32) -> Result<bool> {
    let want = breach.to_le_bytes();
    for seg in segments {
        if seg.find(key)?.any(|i| seg.value(i) == want) {
            return Ok(true);
        }
    }
    Ok(false)
}

#[cfg(test)]
mod tests {
    use super::*;
    use leakwatch_types::{Account, AccountKind, PasswordHashes, PasswordMaterial, Record};

    /// `n` email records over a few domains, different for each `seed`.
    fn records(seed: usize, n: usize) -> Records {
        (0..n)
            .map(|i| Record {
                account: Account {
                    kind: AccountKind::Email,
                    value: format!("user{}.{i}@d{}.example", seed, i % 5),
                },
                password: Some(PasswordMaterial::Plain(PasswordHashes::of(
                    format!("pw{seed}.{i}").as_bytes(),
                ))),
                website: None,
            })
            .collect()
    }

    #[test]
    fn batches_made_in_recycled_buffers_equal_fresh_ones() {
        let keys = Keys::new(&[1; 32], &[2; 32]);
        let made = BatchOf { keys: &keys, breach: 9, stored_accounts: None, partition: None };
        let mut scratch = BatchScratch::default();
        let mut buffers = BatchBuffers::default();
        // A large batch, then smaller ones and an empty one: nothing an
        // earlier batch left in the buffers may show in a later one.
        for (seed, n) in [(1, 3000), (2, 10), (3, 1000), (4, 0), (5, 20)] {
            let records = records(seed, n);
            let fresh =
                to_batch(&records, &made, BatchBuffers::default(), &mut BatchScratch::default()).unwrap();
            let reused = to_batch(&records, &made, buffers, &mut scratch).unwrap();
            assert_eq!(reused.records, fresh.records);
            buffers = reused.into_buffers();
            assert_eq!(buffers, fresh.into_buffers(), "batch {seed}");
        }
        assert!(buffers.sha1_creds.capacity() >= 3000, "the largest batch's memory is kept");
    }

    /// The partitions of a batch split its accounts and triples between them,
    /// each record in exactly one, by the key it is sorted under.
    #[test]
    fn partitions_split_a_batch_exactly() {
        let keys = Keys::new(&[1; 32], &[2; 32]);
        let records = records(7, 4000);
        let whole = BatchOf { keys: &keys, breach: 9, stored_accounts: None, partition: None };
        let batch = |made: &BatchOf<'_>| {
            to_batch(&records, made, BatchBuffers::default(), &mut BatchScratch::default()).unwrap()
        };
        let all = batch(&whole);
        let n = all.records;
        let all = all.into_buffers();
        let (mut accounts, mut sha1, mut ntlm) = (Vec::new(), Vec::new(), Vec::new());
        let mut owned = 0;
        for index in 0..3 {
            let partition = Partition::new(index, 3);
            let part = batch(&BatchOf { partition, ..whole });
            owned += part.records;
            let part = part.into_buffers();
            assert!(part.accounts.iter().all(|a| partition.unwrap().owns(a)));
            assert!(!part.sha1_creds.is_empty(), "partition {index} has its share");
            accounts.extend(part.accounts);
            sha1.extend(part.sha1_creds);
            ntlm.extend(part.ntlm_creds);
        }
        fn sorted<T: Ord>(mut v: Vec<T>) -> Vec<T> {
            v.sort_unstable();
            v
        }
        assert_eq!(owned, n);
        assert_eq!(sorted(accounts), sorted(all.accounts));
        assert_eq!(sorted(sha1), sorted(all.sha1_creds));
        assert_eq!(sorted(ntlm), sorted(all.ntlm_creds));
    }

    #[test]
    fn reused_vectors_keep_their_memory() {
        let kept: Vec<(usize, &'static [u8])> = Vec::with_capacity(1000);
        let at = kept.as_ptr() as usize;
        let alias = String::from("alice");
        let mut lent: Vec<(usize, &[u8])> = reuse(kept);
        assert_eq!((lent.as_ptr() as usize, lent.capacity()), (at, 1000));
        lent.push((1, alias.as_bytes()));
        let back: Vec<(usize, &'static [u8])> = reuse(lent);
        assert!(back.is_empty());
        assert_eq!((back.as_ptr() as usize, back.capacity()), (at, 1000));
    }
}
