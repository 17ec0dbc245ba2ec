//! What an organization's audit asks of the store about one of its accounts
//! beyond the plain lookups: whether the account's current password is the
//! very one that leaked for that account; and the keys the catalog keeps a
//! directory under (a keyed hash of each NT hash, the directory sealed).
//!
//! Ingest keeps each (breach, account, password) triple as a keyed hash of the
//! NTLM digest and the pair key of (account, breach) (`docs/format.md`). Given
//! an account and an NTLM hash, the triple keys of every breach the account is
//! in are computed exactly as ingest computes them (the same record builder,
//! masking and keying) and looked up: a hit means credential stuffing with
//! that breach's data works on the account today.

use aes_gcm_siv::aead::{Aead, KeyInit};
use leakwatch_segment::Kind;
use leakwatch_types::Account;

use crate::crypt::Keys;
use crate::error::Result;
use crate::ingest::{credential_record, NTLM_REC};
use crate::manifest::Breach;
use crate::reader::Store;

/// What the directory keys' root is derived with from the index key.
const DIRECTORY_ROOT_CONTEXT: &str = "leakwatch 2026-12 directory root key";
const DIRECTORY_CONTEXT: &str = "leakwatch 2026-12 directory password hash key";
const DIRECTORY_SEAL_CONTEXT: &str = "leakwatch 2026-12 directory seal key";
/// A sealed directory: a random nonce, then the ciphertext and its tag.
const NONCE_LEN: usize = 12;

impl Keys {
    /// The keys an organization's directory is kept under in the catalog. They
    /// come from the index key, so a rekey keeps them and the catalog need not
    /// be rewritten.
    pub fn directory_keys(&self) -> DirectoryKeys {
        let root = zeroize::Zeroizing::new(self.blinder().derive_key(DIRECTORY_ROOT_CONTEXT));
        let derive = |context| blake3::derive_key(context, root.as_slice());
        DirectoryKeys {
            password: derive(DIRECTORY_CONTEXT),
            seal: aes_gcm_siv::Aes256GcmSiv::new(&derive(DIRECTORY_SEAL_CONTEXT).into()),
        }
    }
}

/// [`Keys::directory_keys`]: derived once for a whole directory.
pub struct DirectoryKeys {
    password: [u8; 32],
    seal: aes_gcm_siv::Aes256GcmSiv,
}

impl std::fmt::Debug for DirectoryKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("DirectoryKeys(..)")
    }
}

impl DirectoryKeys {
    /// The keyed hash the catalog keeps of a directory account's NT hash:
    /// equal for equal passwords, and nothing else without the key ring.
    pub fn password_mac(&self, nt_hash: &[u8; 16]) -> [u8; 16] {
        keyed16(&self.password, nt_hash)
    }

    /// Seals what the catalog keeps of a directory (AES-256-GCM-SIV, a random
    /// nonce in front).
    pub fn seal(&self, plaintext: &[u8]) -> Vec<u8> {
        let nonce: [u8; NONCE_LEN] = rand::random();
        let mut out = nonce.to_vec();
        out.extend(
            self.seal.encrypt(&nonce.into(), plaintext).expect("a directory is far below GCM-SIV's 64 GiB"),
        );
        out
    }

    /// Opens [`DirectoryKeys::seal`]'s output; `None` when it does not
    /// authenticate (another key ring, or a changed blob).
    pub fn open(&self, sealed: &[u8]) -> Option<Vec<u8>> {
        if sealed.len() < NONCE_LEN {
            return None;
        }
        let (nonce, ciphertext) = sealed.split_at(NONCE_LEN);
        let nonce: [u8; NONCE_LEN] = nonce.try_into().expect("split at the nonce's length");
        self.seal.decrypt(&nonce.into(), ciphertext).ok()
    }
}

fn keyed16(key: &[u8; 32], value: &[u8]) -> [u8; 16] {
    let mut out = [0u8; 16];
    out.copy_from_slice(&blake3::keyed_hash(key, value).as_bytes()[..16]);
    out
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
