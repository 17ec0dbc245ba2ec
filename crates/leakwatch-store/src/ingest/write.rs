//! An ingest's serial side: the sorted runs of every kind of index record,
//! their memory accounted in one place, and the chains that write accounts,
//! domains and stealer-log entries as segments.

use std::path::Path;

use leakwatch_segment::{Kind, Segment};

use super::batch::{
    in_breach, stealer_parts, Batch, StealerBatch, NTLM_REC, SHA1_REC, STEALER_EMAIL, STEALER_LONG,
    STEALER_MID, STEALER_SHORT,
};
use crate::dir::DataDir;
use crate::domains::{each_entry, each_group_lens, DomainRuns};
use crate::error::Result;
use crate::runs::{Runs, Sorted};
use crate::txn::{RollingWriter, SegmentSet};

/// Every kind of index record an ingest sorts. Records of all kinds go
/// through here, and so does the accounting of the memory they hold against
/// the budget.
pub(super) struct IndexRuns {
    pub(super) accounts: Runs<16>,
    pub(super) domains: DomainRuns,
    pub(super) sha1_creds: Runs<SHA1_REC>,
    pub(super) ntlm_creds: Runs<NTLM_REC>,
    pub(super) stealer: StealerRuns,
}

impl IndexRuns {
    /// Runs that spill to `scratch`. Keys: the account; domain then account
    /// (the alias follows from the account); a digest then the pair.
    pub(super) fn new(scratch: &Path) -> IndexRuns {
        let scratch = scratch.to_path_buf();
        IndexRuns {
            accounts: Runs::new(scratch.clone(), "accounts", 16, true),
            domains: DomainRuns::new(scratch.clone()),
            sha1_creds: Runs::new(scratch.clone(), "credentials", SHA1_REC, true),
            ntlm_creds: Runs::new(scratch.clone(), "ntlm-credentials", NTLM_REC, true),
            stealer: StealerRuns {
                short: Runs::new(scratch.clone(), "stealer-short", STEALER_SHORT, true),
                mid: Runs::new(scratch.clone(), "stealer-mid", STEALER_MID, true),
                long: Runs::new(scratch.clone(), "stealer", STEALER_LONG, true),
                emails: Runs::new(scratch, "stealer-emails", STEALER_EMAIL, true),
            },
        }
    }

    pub(super) fn push(&mut self, batch: &Batch) {
        self.accounts.push(&batch.accounts);
        self.domains.push(&batch.domains);
        self.sha1_creds.push(&batch.sha1_creds);
        self.ntlm_creds.push(&batch.ntlm_creds);
        self.stealer.push(&batch.stealer);
    }

    /// Bytes held in memory by every kind's runs.
    pub(super) fn mem_bytes(&self) -> usize {
        self.accounts.mem_bytes()
            + self.domains.mem_bytes()
            + self.sha1_creds.mem_bytes()
            + self.ntlm_creds.mem_bytes()
            + self.stealer.mem_bytes()
    }

    /// Grows every kind's buffers `growth` times, for the rest of an input.
    pub(super) fn reserve(&mut self, growth: f64) {
        self.accounts.reserve(growth);
        self.domains.reserve(growth);
        self.sha1_creds.reserve(growth);
        self.ntlm_creds.reserve(growth);
        self.stealer.reserve(growth);
    }

    /// Spills every kind's buffers as sorted runs.
    pub(super) fn spill(&mut self) -> Result<()> {
        self.accounts.spill()?;
        self.domains.spill()?;
        self.sha1_creds.spill()?;
        self.ntlm_creds.spill()?;
        self.stealer.spill()
    }
}

/// The accounts new to this breach.
pub(super) fn write_accounts(
    dir: &DataDir,
    mut accounts: Runs<16>,
    stored: Option<&[Segment]>,
    breach_id: u32,
) -> Result<(SegmentSet, u64)> {
    let mut out = dir.new_segments();
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
pub(super) fn write_domains(
    dir: &DataDir,
    mut domains: DomainRuns,
    breach_id: u32,
    budget: usize,
) -> Result<SegmentSet> {
    let mut out = dir.new_segments();
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
pub(super) struct StealerRuns {
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
    fn write(&mut self, w: &mut RollingWriter, breach_id: u32) -> Result<()> {
        let rec = self.sorted.next().expect("peeked")?;
        let (key, payload) = stealer_parts(&rec);
        Ok(w.push_payload(key, breach_id, payload)?)
    }
}

/// Stealer-log entries: the pairs by email, and the sealed ones, the three
/// widths merged in (key, sealed payload) order. Repeats within an ingest
/// collapse here; across ingests, lookups and compaction deduplicate them.
pub(super) fn write_stealer(dir: &DataDir, stealer: StealerRuns, breach_id: u32) -> Result<SegmentSet> {
    let mut out = dir.new_segments();
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
