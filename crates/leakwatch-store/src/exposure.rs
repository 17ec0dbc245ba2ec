//! What an organization's audit asks of the store about one of its accounts
//! beyond the plain lookups: whether the account's current password is the
//! very one that leaked for that account, and the key the catalog hashes a
//! directory's password hashes with.
//!
//! Ingest keeps each (breach, account, password) triple as a keyed hash of the
//! NTLM digest and the pair key of (account, breach) (`docs/format.md`). Given
//! an account and an NTLM hash, the triple keys of every breach the account is
//! in are computed exactly as ingest computes them (the same record builder,
//! masking and keying) and looked up: a hit means credential stuffing with
//! that breach's data works on the account today.

use leakwatch_segment::Kind;
use leakwatch_types::Account;

use crate::crypt::Keys;
use crate::error::Result;
use crate::ingest::{credential_record, NTLM_REC};
use crate::manifest::Breach;
use crate::reader::Store;

const DIRECTORY_CONTEXT: &str = "leakwatch 2026-12 directory password hash key";

impl Keys {
    /// The key a directory's NT hashes are hashed with before the catalog keeps
    /// them (change detection, shared passwords), never the hashes themselves.
    /// It comes from the index key, as the audit keys do, so a rekey keeps it.
    pub fn directory_key(&self) -> [u8; 32] {
        blake3::derive_key(DIRECTORY_CONTEXT, &self.audit_subject_key())
    }

    /// The keyed hash the catalog keeps of a directory account's NT hash:
    /// equal for equal passwords, and nothing else without the key ring.
    pub fn directory_password_mac(&self, nt_hash: &[u8; 16]) -> [u8; 16] {
        let mut out = [0u8; 16];
        out.copy_from_slice(&blake3::keyed_hash(&self.directory_key(), nt_hash).as_bytes()[..16]);
        out
    }
}

impl Store {
    /// The breaches, sorted by name, in which `account` leaked with exactly
    /// the password whose NTLM hash is `ntlm`.
    pub fn own_password_leaked_in(&self, account: &Account, ntlm: &[u8; 16]) -> Result<Vec<&Breach>> {
        let Some(keys) = self.keys() else { return Ok(Vec::new()) };
        let breaches = self.account_breaches(account)?;
        if breaches.is_empty() {
            return Ok(breaches);
        }
        let blinder = keys.blinder();
        let inner = blinder.account_key(account);
        let mut recs: Vec<[u8; NTLM_REC]> = breaches
            .iter()
            .map(|b| credential_record::<NTLM_REC>(ntlm, &blinder.pair_key(&inner, b.id).to_le_bytes()))
            .collect();
        keys.mask_pairs(&mut recs);
        let mut narrow = Vec::with_capacity(recs.len());
        keys.credential_keys_from_masked(&recs, &mut narrow);
        // Triples counted before the 16-byte kind existed are in the wider one.
        let wide_segments = self.kind(Kind::NtlmCredentials)?;
        let mut wide = Vec::new();
        if !wide_segments.is_empty() {
            keys.credentials_from_masked::<NTLM_REC, NTLM_REC>(&recs, &mut wide);
        }
        let narrow_segments = self.kind(Kind::NtlmCredentialKeys)?;
        let mut found = Vec::new();
        for (i, breach) in breaches.into_iter().enumerate() {
            let hit = self.any_key(narrow_segments, &narrow[i])?
                || (!wide.is_empty() && self.any_key(wide_segments, &wide[i])?);
            if hit {
                found.push(breach);
            }
        }
        Ok(found)
    }

    fn any_key(&self, segments: &[leakwatch_segment::Segment], key: &[u8]) -> Result<bool> {
        for seg in segments {
            if !self.read(seg, seg.find(key))?.is_empty() {
                return Ok(true);
            }
        }
        Ok(false)
    }
}
