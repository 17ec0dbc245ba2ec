//! What the data key does to the index: blinded keys, sealed payloads and keyed
//! password material (see `docs/security.md`).
//!
//! Two layers, so that the data key can be rotated without the clear values:
//! - the **index key** (fixed for the life of a data directory) turns an account,
//!   domain or website into a keyed BLAKE3 hash, the *inner key*, and a password
//!   digest with its (account, breach) pair into a keyed hash of 28 or 24 bytes;
//! - the **data key** (rotated by `leakwatch rekey`) encrypts each inner key with
//!   AES-256 as a block cipher (a keyed permutation, so `rekey` can decrypt with
//!   the old data key and encrypt with the new), and seals the payloads shown back
//!   (aliases, websites, addresses) with AES-256-GCM-SIV.
//!
//! A data directory written before the data key existed (MANIFEST format 1) is
//! read with [`Keys::legacy`]: keys stored as inner keys, payloads and password
//! digests in clear, until its first writer migrates it.

use aes::cipher::{BlockDecrypt, BlockEncrypt, KeyInit};
use aes::Aes256;
use aes_gcm_siv::aead::AeadInPlace;
use aes_gcm_siv::Aes256GcmSiv;
use leakwatch_types::{Account, Blinder, Key16};

/// Bytes a sealed payload adds to its plaintext (the authentication tag).
pub const SEAL_OVERHEAD: usize = 16;
/// The longest payload that can be sealed into a segment (255 bytes stored).
pub const MAX_SEALED_PLAINTEXT: usize = 255 - SEAL_OVERHEAD;

const INDEX_CONTEXT: &str = "leakwatch 2026-11 index key from data key";
const CREDENTIAL_CONTEXT: &str = "leakwatch 2026-11 credential hash key";
const PRP_CONTEXT: &str = "leakwatch 2026-11 index permutation key";
const SEAL_CONTEXT: &str = "leakwatch 2026-11 payload seal key";
const AUDIT_CONTEXT: &str = "leakwatch 2026-11 audit chain key";
const AUDIT_SUBJECT_CONTEXT: &str = "leakwatch 2026-11 audit subject key";
const ID_CONTEXT: &str = "leakwatch 2026-11 key id";

/// The index key a ring derives from its first data key (a ring migrated from
/// an older data directory keeps that directory's `index.key` instead).
pub fn derive_index_key(data_key: &[u8; 32]) -> [u8; 32] {
    blake3::derive_key(INDEX_CONTEXT, data_key)
}

/// The public name of an (index key, data key) pair: what the MANIFEST records
/// so that a wrong key is refused. It reveals nothing of either key.
pub fn key_id(index_key: &[u8; 32], data_key: &[u8; 32]) -> String {
    let mut both = [0u8; 64];
    both[..32].copy_from_slice(index_key);
    both[32..].copy_from_slice(data_key);
    let id = blake3::derive_key(ID_CONTEXT, &both);
    leakwatch_types::encode_hex_upper(&id[..16]).to_ascii_lowercase()
}

/// The keys one generation of a data directory is read and written with.
#[derive(Clone)]
pub struct Keys {
    blinder: Blinder,
    credential: [u8; 32],
    sealed: Option<Sealed>,
    audit: [u8; 32],
    audit_subject: [u8; 32],
    id: Option<String>,
}

#[derive(Clone)]
struct Sealed {
    prp: Aes256,
    seal: Aes256GcmSiv,
}

impl std::fmt::Debug for Keys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Keys").field("id", &self.id).field("sealed", &self.sealed.is_some()).finish()
    }
}

impl Keys {
    /// Keys for a sealed (format 2) directory.
    pub fn new(index_key: &[u8; 32], data_key: &[u8; 32]) -> Keys {
        let prp = blake3::derive_key(PRP_CONTEXT, data_key);
        let seal = blake3::derive_key(SEAL_CONTEXT, data_key);
        Keys {
            blinder: Blinder::new(*index_key),
            credential: blake3::derive_key(CREDENTIAL_CONTEXT, index_key),
            sealed: Some(Sealed { prp: Aes256::new(&prp.into()), seal: Aes256GcmSiv::new(&seal.into()) }),
            audit: blake3::derive_key(AUDIT_CONTEXT, index_key),
            audit_subject: blake3::derive_key(AUDIT_SUBJECT_CONTEXT, index_key),
            id: Some(key_id(index_key, data_key)),
        }
    }

    /// Keys for reading a format-1 directory: index keys are inner keys, and
    /// payloads and password digests are stored in clear.
    pub fn legacy(index_key: &[u8; 32]) -> Keys {
        Keys {
            blinder: Blinder::new(*index_key),
            credential: blake3::derive_key(CREDENTIAL_CONTEXT, index_key),
            sealed: None,
            audit: blake3::derive_key(AUDIT_CONTEXT, index_key),
            audit_subject: blake3::derive_key(AUDIT_SUBJECT_CONTEXT, index_key),
            id: None,
        }
    }

    pub fn is_sealed(&self) -> bool {
        self.sealed.is_some()
    }

    /// The key id recorded in the MANIFEST (none for a legacy directory).
    pub fn id(&self) -> Option<&str> {
        self.id.as_deref()
    }

    /// The key of the tamper-evident chain of the audit log. It comes from the
    /// index key, so a rekey does not change it and the whole log stays checkable.
    pub fn audit_key(&self) -> [u8; 32] {
        self.audit
    }

    /// The key the audit log hashes searched values with.
    pub fn audit_subject_key(&self) -> [u8; 32] {
        self.audit_subject
    }

    pub fn blinder(&self) -> &Blinder {
        &self.blinder
    }

    /// The stored key of an account: the data key's permutation of its inner key.
    pub fn account(&self, account: &Account) -> Key16 {
        self.outer(self.blinder.account_key(account))
    }

    pub fn domain(&self, domain: &str) -> Key16 {
        self.outer(self.blinder.domain_key(domain))
    }

    pub fn website(&self, domain: &str) -> Key16 {
        self.outer(self.blinder.website_key(domain))
    }

    /// Inner key -> stored key.
    pub fn outer(&self, inner: Key16) -> Key16 {
        match &self.sealed {
            Some(s) => {
                let mut block = inner.into();
                s.prp.encrypt_block(&mut block);
                block.into()
            }
            None => inner,
        }
    }

    /// Stored key -> inner key.
    pub fn inner(&self, outer: &[u8]) -> Key16 {
        let mut block: Key16 = outer[..16].try_into().expect("16-byte key");
        if let Some(s) = &self.sealed {
            let mut b = block.into();
            s.prp.decrypt_block(&mut b);
            block = b.into();
        }
        block
    }

    /// The stored key of one (password digest, account, breach) triple: a keyed
    /// hash of the digest and the pair key, as wide as the credentials kind's key
    /// (28 bytes for SHA-1, 24 for NTLM), permuted by the data key. Nothing in it
    /// can be tested against a password list without the keys.
    pub fn credential<const W: usize>(&self, digest: &[u8], pair: &[u8; 8]) -> [u8; W] {
        if self.sealed.is_none() {
            // A legacy directory stores the digest and the pair key as they are.
            let mut out = [0u8; W];
            out[..W - 8].copy_from_slice(digest);
            out[W - 8..].copy_from_slice(pair);
            return out;
        }
        let mut hasher = blake3::Hasher::new_keyed(&self.credential);
        hasher.update(&[W as u8]);
        hasher.update(digest);
        hasher.update(pair);
        let mut inner = [0u8; W];
        hasher.finalize_xof().fill(&mut inner);
        self.permute_wide(&inner)
    }

    /// The inner value of a stored credential key; from a legacy one (digest and
    /// pair in clear), the keyed hash the sealed form is made of.
    pub fn credential_inner<const W: usize>(&self, stored: &[u8; W]) -> [u8; W] {
        match &self.sealed {
            Some(s) => unpermute_wide(&s.prp, stored),
            None => {
                let mut hasher = blake3::Hasher::new_keyed(&self.credential);
                hasher.update(&[W as u8]);
                hasher.update(&stored[..W - 8]);
                hasher.update(&stored[W - 8..]);
                let mut inner = [0u8; W];
                hasher.finalize_xof().fill(&mut inner);
                inner
            }
        }
    }

    /// Inner credential value -> stored key (the identity for legacy keys, which
    /// are never written).
    pub fn permute_wide<const W: usize>(&self, inner: &[u8; W]) -> [u8; W] {
        match &self.sealed {
            Some(s) => permute_wide(&s.prp, inner),
            None => *inner,
        }
    }

    /// Seals a payload shown back to searchers (alias, website, address) under
    /// the stored key and breach it belongs to. Deterministic (AES-GCM-SIV is
    /// safe with a repeated nonce): equal entries stay equal, so merges still
    /// deduplicate them, and nothing links entries of different keys.
    pub fn seal(&self, key: &[u8], breach: u32, payload: &[u8], out: &mut Vec<u8>) {
        out.clear();
        out.extend_from_slice(payload);
        if let Some(s) = &self.sealed {
            let aad = aad(key, breach);
            s.seal.encrypt_in_place(&nonce(key), &aad, out).expect("a payload of at most 239 bytes seals");
        }
    }

    /// Opens a sealed payload; `None` if it does not authenticate (a wrong key or
    /// damaged data: never a garbage answer).
    pub fn open(&self, key: &[u8], breach: u32, stored: &[u8], out: &mut Vec<u8>) -> bool {
        out.clear();
        out.extend_from_slice(stored);
        match &self.sealed {
            Some(s) => s.seal.decrypt_in_place(&nonce(key), &aad(key, breach), out).is_ok(),
            None => true,
        }
    }
}

fn nonce(key: &[u8]) -> aes_gcm_siv::Nonce {
    *aes_gcm_siv::Nonce::from_slice(&key[..12])
}

fn aad(key: &[u8], breach: u32) -> [u8; 20] {
    let mut aad = [0u8; 20];
    aad[..16].copy_from_slice(&key[..16]);
    aad[16..].copy_from_slice(&breach.to_le_bytes());
    aad
}

/// A keyed permutation of 16 < W <= 32 bytes from two overlapping AES blocks:
/// encrypt the first 16 bytes, then the last 16 of the result's tail and the rest.
fn permute_wide<const W: usize>(prp: &Aes256, inner: &[u8; W]) -> [u8; W] {
    let mut out = *inner;
    let mut first = aes::Block::clone_from_slice(&out[..16]);
    prp.encrypt_block(&mut first);
    out[..16].copy_from_slice(&first);
    let mut second = aes::Block::clone_from_slice(&out[W - 16..]);
    prp.encrypt_block(&mut second);
    out[W - 16..].copy_from_slice(&second);
    out
}

fn unpermute_wide<const W: usize>(prp: &Aes256, stored: &[u8; W]) -> [u8; W] {
    let mut out = *stored;
    let mut second = aes::Block::clone_from_slice(&out[W - 16..]);
    prp.decrypt_block(&mut second);
    out[W - 16..].copy_from_slice(&second);
    let mut first = aes::Block::clone_from_slice(&out[..16]);
    prp.decrypt_block(&mut first);
    out[..16].copy_from_slice(&first);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn permutations_invert_and_depend_on_the_data_key() {
        let a = Keys::new(&[1; 32], &[2; 32]);
        let b = Keys::new(&[1; 32], &[3; 32]);
        let inner: [u8; 28] = std::array::from_fn(|i| i as u8);
        let stored = a.permute_wide(&inner);
        assert_ne!(stored, inner);
        assert_ne!(stored, b.permute_wide(&inner));
        assert_eq!(a.credential_inner(&stored), inner);
        let account = Account::email("bob@example.com").unwrap();
        assert_eq!(a.inner(&a.account(&account)), a.blinder().account_key(&account));
        assert_ne!(a.account(&account), b.account(&account));
        assert_ne!(a.id(), b.id());
    }

    #[test]
    fn sealed_payloads_open_only_with_their_key_and_place() {
        let a = Keys::new(&[1; 32], &[2; 32]);
        let b = Keys::new(&[1; 32], &[3; 32]);
        let key = a.domain("example.com");
        let (mut sealed, mut opened) = (Vec::new(), Vec::new());
        a.seal(&key, 7, b"alice", &mut sealed);
        assert_eq!(sealed.len(), 5 + SEAL_OVERHEAD);
        assert!(!sealed.windows(5).any(|w| w == b"alice"));
        assert!(a.open(&key, 7, &sealed, &mut opened));
        assert_eq!(opened, b"alice");
        assert!(!a.open(&key, 8, &sealed, &mut opened), "another breach");
        assert!(!b.open(&key, 7, &sealed, &mut opened), "another data key");
    }

    #[test]
    fn legacy_credentials_convert_to_the_sealed_inner_value() {
        let legacy = Keys::legacy(&[1; 32]);
        let sealed = Keys::new(&[1; 32], &[2; 32]);
        let digest = [9u8; 20];
        let pair = [4u8; 8];
        let old: [u8; 28] = legacy.credential(&digest, &pair);
        assert_eq!(&old[..20], &digest);
        let new: [u8; 28] = sealed.credential(&digest, &pair);
        assert_eq!(sealed.permute_wide(&legacy.credential_inner(&old)), new);
    }
}
