//! The keys alerts are kept under in the catalog, derived from the index key
//! (as the directory's are): a rekey keeps them, the catalog alone opens
//! nothing.

use aes_gcm_siv::aead::{Aead, KeyInit};
use leakwatch_catalog::SeenMac;
use leakwatch_store::Keys;
use zeroize::Zeroizing;

const SEAL_CONTEXT: &str = "leakwatch 2026-12 alert seal key";
const SEEN_CONTEXT: &str = "leakwatch 2026-12 alert seen key";
const NONCE_LEN: usize = 12;

/// Seals destinations' secrets and batches' payloads; hashes exposures.
pub struct AlertKeys {
    seal: aes_gcm_siv::Aes256GcmSiv,
    seen: Zeroizing<[u8; 32]>,
}

impl std::fmt::Debug for AlertKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("AlertKeys(..)")
    }
}

impl AlertKeys {
    pub fn new(keys: &Keys) -> AlertKeys {
        let seal = Zeroizing::new(keys.blinder().derive_key(SEAL_CONTEXT));
        AlertKeys {
            seal: aes_gcm_siv::Aes256GcmSiv::new(&(*seal).into()),
            seen: Zeroizing::new(keys.blinder().derive_key(SEEN_CONTEXT)),
        }
    }

    /// AES-256-GCM-SIV with a random nonce in front.
    pub fn seal(&self, plaintext: &[u8]) -> Vec<u8> {
        let nonce: [u8; NONCE_LEN] = rand::random();
        let mut out = nonce.to_vec();
        out.extend(
            self.seal.encrypt(&nonce.into(), plaintext).expect("an alert is far below GCM-SIV's 64 GiB"),
        );
        out
    }

    /// Opens [`AlertKeys::seal`]'s output; `None` when it does not
    /// authenticate.
    pub fn open(&self, sealed: &[u8]) -> Option<Zeroizing<Vec<u8>>> {
        if sealed.len() < NONCE_LEN {
            return None;
        }
        let (nonce, ciphertext) = sealed.split_at(NONCE_LEN);
        let nonce: [u8; NONCE_LEN] = nonce.try_into().expect("split at the nonce's length");
        self.seal.decrypt(&nonce.into(), ciphertext).ok().map(Zeroizing::new)
    }

    /// The keyed hash recorded for an exposure of `account` in `breach`.
    pub fn seen(&self, account: &str, breach: &str) -> SeenMac {
        let mut h = blake3::Hasher::new_keyed(&self.seen);
        h.update(account.as_bytes());
        h.update(&[0]);
        h.update(breach.as_bytes());
        let mut out = [0u8; 16];
        out.copy_from_slice(&h.finalize().as_bytes()[..16]);
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sealing_round_trips_and_hashes_separate_fields() {
        let keys = AlertKeys::new(&Keys::legacy(&[7; 32]));
        let sealed = keys.seal(b"secret");
        assert!(!sealed.windows(6).any(|w| w == b"secret"));
        assert_eq!(keys.open(&sealed).unwrap().as_slice(), b"secret");
        let mut bad = sealed.clone();
        bad[20] ^= 1;
        assert!(keys.open(&bad).is_none());
        assert_ne!(keys.seen("a@b.example", "X"), keys.seen("a@b.example", "Y"));
        assert_ne!(keys.seen("a", "bc"), keys.seen("ab", "c"));
        let other = AlertKeys::new(&Keys::legacy(&[8; 32]));
        assert_ne!(keys.seen("a", "b"), other.seen("a", "b"));
        assert!(other.open(&sealed).is_none());
    }
}
