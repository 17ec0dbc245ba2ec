//! The password chains of an ingest: each digest's count of new triples and
//! the new triples' stored keys, checked against the triples already stored.

use std::path::Path;

use leakwatch_segment::{Kind, Segment};

use super::batch::SHA1_REC;
use crate::crypt::Keys;
use crate::dir::DataDir;
use crate::error::Result;
use crate::runs::{group_by_first_byte, same_key, sort_records, Runs, Scratch};
use crate::txn::SegmentSet;

use rayon::prelude::*;

/// The stored segments an ingest into an existing breach checks against.
pub(super) struct Stored {
    pub(super) accounts: Vec<Segment>,
    pub(super) sha1_creds: StoredCreds,
    pub(super) ntlm_creds: StoredCreds,
}

/// The triples one corpus has counted: in 16-byte keys, and in the wider keys
/// of the kinds written before them.
pub(super) struct StoredCreds {
    pub(super) keys: Vec<Segment>,
    pub(super) wide: Vec<Segment>,
}

/// Writes the new triples of one digest and, grouped by digest (they come
/// sorted by it), that digest's counts: records are the digest then the
/// triple's masked pair key, so the counts need no second sort. The stored keys
/// of the triples are computed here, in batches of pipelined AES blocks; they
/// are keyed hashes in no digest order, so the new ones are sorted on their own.
pub(super) fn write_counted<const N: usize, const D: usize>(
    dir: &DataDir,
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
    let mut out = dir.new_segments();
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
        let mut creds_out = dir.new_segments();
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

/// Whether `key` is stored in any of `segments`.
fn any_found(segments: &[Segment], key: &[u8]) -> Result<bool> {
    for seg in segments {
        if !seg.find(key)?.is_empty() {
            return Ok(true);
        }
    }
    Ok(false)
}

#[cfg(test)]
mod tests {
    use super::*;
    use leakwatch_segment::SegmentWriter;

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
