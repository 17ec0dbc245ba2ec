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
//!   (aliases, websites, addresses) with AES-256-GCM-SIV (RFC 8452) under a fixed
//!   nonce, the entry's key and breach being the associated data: deterministic
//!   authenticated encryption. With one nonce the per-message keys of GCM-SIV are
//!   the same for every message, so they are derived once per key, not per
//!   payload (checked against the `aes-gcm-siv` crate in the tests).
//!
//! A data directory written before the data key existed (MANIFEST format 1) is
//! read with [`Keys::legacy`]: keys stored as inner keys, payloads and password
//! digests in clear, until its first writer migrates it.

use aes::cipher::{BlockDecrypt, BlockEncrypt, KeyInit};
use aes::Aes256;
use leakwatch_types::{Account, Blinder, Key16};
use polyval::universal_hash::UniversalHash;
use polyval::Polyval;

use crate::polyval_clmul::{self, Powers};

/// Bytes a sealed payload adds to its plaintext (the authentication tag).
pub const SEAL_OVERHEAD: usize = 16;
/// The longest payload that can be sealed into a segment (255 bytes stored).
pub const MAX_SEALED_PLAINTEXT: usize = 255 - SEAL_OVERHEAD;

const INDEX_CONTEXT: &str = "leakwatch 2026-11 index key from data key";
const CREDENTIAL_CONTEXT: &str = "leakwatch 2026-11 credential hash key";
const PRP_CONTEXT: &str = "leakwatch 2026-11 index permutation key";
const SEAL_CONTEXT: &str = "leakwatch 2026-11 payload seal key";
const ID_CONTEXT: &str = "leakwatch 2026-11 key id";
const SITE_REF_CONTEXT: &str = "leakwatch 2026-12 stealer website reference key";

/// The index key of a ring given as one data key (`LEAKWATCH_KEY=HEX`), and of
/// rings made before the index key was random: derived from the first data key.
/// New rings have a random index key; one migrated from an older data
/// directory keeps that directory's `index.key`.
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
    /// The credential hash: a CBC-MAC of fixed-length input under an AES key
    /// from the index key (AES-NI makes it ten times cheaper than a BLAKE3 call).
    credential: Aes256,
    /// Encrypts a stealer-log pair's website reference (see
    /// [`Keys::site_refs`]). From the index key, as the inner keys are, so a
    /// data-key rotation leaves the references as they are.
    site_refs: Aes256,
    sealed: Option<Sealed>,
    id: Option<String>,
}

#[derive(Clone)]
struct Sealed {
    prp: Aes256,
    /// GCM-SIV's message keys for the fixed nonce.
    seal_auth: Polyval,
    /// The powers of `seal_auth`'s key for [`Keys::seal_many`]'s one-reduction
    /// POLYVAL (`None` without PCLMULQDQ: the crate does it all then).
    seal_powers: Option<Powers>,
    seal_enc: Aes256,
}

impl std::fmt::Debug for Keys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Keys").field("id", &self.id).field("sealed", &self.sealed.is_some()).finish()
    }
}

impl Keys {
    /// Keys for a sealed (format 2) directory.
    pub fn new(index_key: &[u8; 32], data_key: &[u8; 32]) -> Keys {
        use zeroize::Zeroize;
        let mut prp = blake3::derive_key(PRP_CONTEXT, data_key);
        let seal = Aes256::new(&blake3::derive_key(SEAL_CONTEXT, data_key).into());
        // RFC 8452 section 4, for the nonce of twelve zero bytes.
        let derived = |i: u32| {
            let mut block = aes::Block::default();
            block[..4].copy_from_slice(&i.to_le_bytes());
            seal.encrypt_block(&mut block);
            let mut half = [0u8; 8];
            half.copy_from_slice(&block[..8]);
            half
        };
        let mut auth = [0u8; 16];
        auth[..8].copy_from_slice(&derived(0));
        auth[8..].copy_from_slice(&derived(1));
        let mut enc = [0u8; 32];
        for i in 0..4 {
            enc[i * 8..i * 8 + 8].copy_from_slice(&derived(2 + i as u32));
        }
        let keys = Keys {
            blinder: Blinder::new(*index_key),
            credential: credential_cipher(index_key),
            site_refs: site_ref_cipher(index_key),
            sealed: Some(Sealed {
                prp: Aes256::new(&prp.into()),
                seal_auth: Polyval::new(&auth.into()),
                seal_powers: Powers::new(u128::from_le_bytes(auth)),
                seal_enc: Aes256::new(&enc.into()),
            }),
            id: Some(key_id(index_key, data_key)),
        };
        // The key schedules zeroize themselves when dropped (the `zeroize`
        // features of `aes` and `polyval`); these copies are ours to clear.
        prp.zeroize();
        auth.zeroize();
        enc.zeroize();
        keys
    }

    /// Keys for reading a format-1 directory: index keys are inner keys, and
    /// payloads and password digests are stored in clear.
    pub fn legacy(index_key: &[u8; 32]) -> Keys {
        Keys {
            blinder: Blinder::new(*index_key),
            credential: credential_cipher(index_key),
            site_refs: site_ref_cipher(index_key),
            sealed: None,
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

    /// [`Keys::outer`] of many inner keys at once: independent AES blocks
    /// pipeline, so a batch costs a fraction of one call per key.
    pub fn outer_many(&self, keys: &mut [Key16]) {
        if let Some(s) = &self.sealed {
            let mut blocks: Vec<aes::Block> = keys.iter().map(|k| (*k).into()).collect();
            s.prp.encrypt_blocks(&mut blocks);
            for (k, b) in keys.iter_mut().zip(&blocks) {
                k.copy_from_slice(b);
            }
        }
    }

    /// [`Keys::credential`] for records laid out as digest (`N - W` bytes), pair
    /// key (8 bytes), zeros, computed in place in stages of independent AES
    /// blocks (five dependent AES calls per record otherwise bound ingest by
    /// their latency).
    pub fn credentials_in_place<const N: usize, const W: usize>(&self, recs: &mut [[u8; N]]) {
        let d = N - W;
        let Some(s) = &self.sealed else {
            for r in recs.iter_mut() {
                let pair: [u8; 8] = r[d..d + 8].try_into().expect("8 bytes");
                let cred: [u8; W] = self.credential(&r[..d], &pair);
                r[d..].copy_from_slice(&cred);
            }
            return;
        };
        // b1 = E(digest[0..16]); b2 = E(b1 ^ (digest[16..] ‖ pair ‖ 0), last ^ W).
        let mut b2: Vec<aes::Block> = recs.iter().map(|r| block(&r[..16])).collect();
        self.credential.encrypt_blocks(&mut b2);
        for (x, r) in b2.iter_mut().zip(recs.iter()) {
            for (b, t) in x.iter_mut().zip(&r[16..d + 8]) {
                *b ^= t;
            }
            x[15] ^= W as u8;
        }
        self.credential_tail::<W>(s, &mut b2, |i, cred| recs[i][d..].copy_from_slice(cred));
    }

    /// [`Keys::credentials_in_place`] for records of digest (`N - 8` bytes) and
    /// masked pair key ([`Keys::mask_pairs`]), the stored keys pushed to `out`
    /// in record order. The mask is the first CBC-MAC block's own bytes, so the
    /// second block's input is that block with the masked pair in place.
    pub fn credentials_from_masked<const N: usize, const W: usize>(
        &self,
        recs: &[[u8; N]],
        out: &mut Vec<[u8; W]>,
    ) {
        let d = N - 8;
        out.clear();
        let mut b2: Vec<aes::Block> = recs.iter().map(|r| block(&r[..16])).collect();
        self.credential.encrypt_blocks(&mut b2);
        let Some(s) = &self.sealed else {
            for (r, b1) in recs.iter().zip(&b2) {
                let mut pair = [0u8; 8];
                for ((p, m), k) in pair.iter_mut().zip(&r[d..]).zip(&b1[d - 16..d - 8]) {
                    *p = m ^ k;
                }
                out.push(self.credential(&r[..d], &pair));
            }
            return;
        };
        second_block_inputs(&mut b2, recs, W);
        out.resize(recs.len(), [0u8; W]);
        self.credential_tail::<W>(s, &mut b2, |i, cred| out[i] = *cred);
    }

    /// The stored keys of credential records (digest and masked pair, as for
    /// [`Keys::credentials_from_masked`]) in the 16-byte kinds
    /// (`credential-keys`): the CBC-MAC's second block, permuted by the data
    /// key. That block is the first of the `N`-byte key's inner value, so a key
    /// of the older kinds converts: unpermute it, keep 16 bytes, permute.
    pub fn credential_keys_from_masked<const N: usize>(&self, recs: &[[u8; N]], out: &mut Vec<[u8; 16]>) {
        let mut b2: Vec<aes::Block> = recs.iter().map(|r| block(&r[..16])).collect();
        self.credential.encrypt_blocks(&mut b2);
        second_block_inputs(&mut b2, recs, N);
        self.credential.encrypt_blocks(&mut b2);
        if let Some(s) = &self.sealed {
            s.prp.encrypt_blocks(&mut b2);
        }
        out.clear();
        out.extend(b2.iter().map(|b| <[u8; 16]>::from(*b)));
    }

    /// The rest of the credential hash and its permutation, from the second
    /// blocks' inputs: `put(i, stored key)` for each.
    fn credential_tail<const W: usize>(
        &self,
        s: &Sealed,
        b2: &mut [aes::Block],
        mut put: impl FnMut(usize, &[u8; W]),
    ) {
        self.credential.encrypt_blocks(b2);
        // b3 = E(b2 ^ 1); the inner value is b2 ‖ b3[..W - 16].
        let mut b3 = b2.to_vec();
        for x in b3.iter_mut() {
            x[0] ^= 1;
        }
        self.credential.encrypt_blocks(&mut b3);
        // W: encrypt bytes 0..16, then bytes W-16..W of the result.
        s.prp.encrypt_blocks(b2);
        let mut tail: Vec<aes::Block> = Vec::with_capacity(b2.len());
        for (first, rest) in b2.iter().zip(&b3) {
            let mut out = [0u8; W];
            out[..16].copy_from_slice(first);
            out[16..].copy_from_slice(&rest[..W - 16]);
            tail.push(block(&out[W - 16..]));
        }
        s.prp.encrypt_blocks(&mut tail);
        for (i, (first, last)) in b2.iter().zip(&tail).enumerate() {
            let mut cred = [0u8; W];
            cred[..W - 16].copy_from_slice(&first[..W - 16]);
            cred[W - 16..].copy_from_slice(last);
            put(i, &cred);
        }
    }

    /// Masks (or, applied again, unmasks) the pair keys of credential records
    /// laid out as digest (`N - 8` bytes) then pair key: the pair is xored with
    /// the bytes of `E(digest[0..16])` (the CBC-MAC's first block) it meets in
    /// the second block. What the sort runs hold is then the digest next to a
    /// keyed value unlinkable to the account, 20 bytes narrower than the stored
    /// triple key, and records stay equal exactly when their triples are.
    pub fn mask_pairs<const N: usize>(&self, recs: &mut [[u8; N]]) {
        let d = N - 8;
        let mut b1: Vec<aes::Block> = recs.iter().map(|r| block(&r[..16])).collect();
        self.credential.encrypt_blocks(&mut b1);
        for (r, b) in recs.iter_mut().zip(&b1) {
            for (x, m) in r[d..].iter_mut().zip(&b[d - 16..d - 8]) {
                *x ^= m;
            }
        }
    }

    /// The website references of stealer-log pairs, given as (inner account
    /// key, inner website key): `E(site ^ E(account))` under an index-derived
    /// AES key. An address's entry thus names its website's key without
    /// showing, to whoever holds the files, which entries share a website; the
    /// account's key, known to a lookup, recovers it ([`Keys::site_of_ref`]).
    /// Two AES blocks a pair, in independent batches: a sealed name per pair
    /// cost a stealer log's ingest a third more than a combo list's.
    pub fn site_refs(&self, pairs: &[(Key16, Key16)]) -> Vec<Key16> {
        let mut blocks: Vec<aes::Block> = pairs.iter().map(|(account, _)| (*account).into()).collect();
        self.site_refs.encrypt_blocks(&mut blocks);
        for (b, (_, site)) in blocks.iter_mut().zip(pairs) {
            for (x, s) in b.iter_mut().zip(site) {
                *x ^= s;
            }
        }
        self.site_refs.encrypt_blocks(&mut blocks);
        blocks.into_iter().map(Into::into).collect()
    }

    /// The inner website key a reference of [`Keys::site_refs`] was made from.
    pub fn site_of_ref(&self, account_inner: &Key16, reference: &[u8]) -> Key16 {
        let mut pad: aes::Block = (*account_inner).into();
        self.site_refs.encrypt_block(&mut pad);
        let mut site: aes::Block = aes::Block::clone_from_slice(&reference[..16]);
        self.site_refs.decrypt_block(&mut site);
        let mut out = [0u8; 16];
        for ((o, s), p) in out.iter_mut().zip(site.iter()).zip(pad.iter()) {
            *o = s ^ p;
        }
        out
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
        self.permute_wide(&self.credential_hash::<W>(digest, pair))
    }

    /// The keyed hash of a (digest, pair): a CBC-MAC over two blocks (the
    /// digest's first 16 bytes; its rest, the pair, zeros and the width), a
    /// secure PRF for inputs of one fixed length, stretched to `W` bytes by one
    /// more block.
    fn credential_hash<const W: usize>(&self, digest: &[u8], pair: &[u8; 8]) -> [u8; W] {
        let mut first = block(&digest[..16]);
        self.credential.encrypt_block(&mut first);
        let rest = &digest[16..];
        let mut second = first;
        for (b, x) in second.iter_mut().zip(rest.iter().chain(pair)) {
            *b ^= x;
        }
        second[15] ^= W as u8;
        self.credential.encrypt_block(&mut second);
        let mut third = second;
        third[0] ^= 1;
        self.credential.encrypt_block(&mut third);
        let mut out = [0u8; W];
        out[..16].copy_from_slice(&second);
        out[16..].copy_from_slice(&third[..W - 16]);
        out
    }

    /// The inner value of a stored credential key; from a legacy one (digest and
    /// pair in clear), the keyed hash the sealed form is made of.
    pub fn credential_inner<const W: usize>(&self, stored: &[u8; W]) -> [u8; W] {
        match &self.sealed {
            Some(s) => unpermute_wide(&s.prp, stored),
            None => {
                let pair: [u8; 8] = stored[W - 8..].try_into().expect("8 bytes");
                self.credential_hash::<W>(&stored[..W - 8], &pair)
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
    /// the stored key and breach it belongs to: ciphertext then the 16-byte tag.
    /// Deterministic (GCM-SIV is safe with a repeated nonce): equal entries stay
    /// equal, so merges still deduplicate them, and nothing links entries of
    /// different keys.
    pub fn seal(&self, key: &[u8], breach: u32, payload: &[u8], out: &mut Vec<u8>) {
        out.clear();
        out.extend_from_slice(payload);
        if let Some(s) = &self.sealed {
            let tag = s.tag(&aad(key, breach), payload);
            s.ctr(&tag, out);
            out.extend_from_slice(&tag);
        }
    }

    /// The place `key` and `breach` name for [`Keys::seal_many`]: the POLYVAL
    /// pass over that associated data, done once for every payload sealed there
    /// (an ingest seals a domain's aliases under the same place).
    pub fn seal_place(&self, key: &[u8], breach: u32) -> SealPlace {
        let auth = self.sealed.as_ref().map(|s| {
            let mut polyval = s.seal_auth.clone();
            polyval.update_padded(&aad(key, breach));
            polyval
        });
        let acc = auth.as_ref().map_or(0, |p| u128::from_le_bytes(p.clone().finalize().into()));
        SealPlace { auth, acc }
    }

    /// [`Keys::seal`] of many payloads, each at its place (from this `Keys`'s
    /// [`Keys::seal_place`]): the sealed payloads one after another in `out`,
    /// each ending where `ends` says. The tags' and the key streams' AES blocks
    /// are each encrypted as one pipelined batch, not one call at a time.
    pub fn seal_many(&self, items: &[(&SealPlace, &[u8])], out: &mut Vec<u8>, ends: &mut Vec<usize>) {
        out.clear();
        ends.clear();
        // Sized once: grown push by push, the output was copied a dozen times.
        out.reserve(items.iter().map(|(_, p)| p.len() + SEAL_OVERHEAD).sum());
        ends.reserve(items.len());
        let Some(s) = &self.sealed else {
            for (_, payload) in items {
                out.extend_from_slice(payload);
                ends.push(out.len());
            }
            return;
        };
        let mut tags: Vec<aes::Block> = match &s.seal_powers {
            Some(powers) => {
                // The padded payload and the lengths block, hashed from the
                // place's accumulator with one reduction (no POLYVAL state
                // cloned per item, no multiply waiting on the previous one).
                let mut blocks = [0u128; polyval_clmul::MAX_BLOCKS];
                items
                    .iter()
                    .map(|(place, payload)| {
                        let len = payload.len();
                        assert!(len <= MAX_SEALED_PLAINTEXT, "a payload of {len} bytes to seal");
                        let n = len.div_ceil(16);
                        for (b, chunk) in blocks.iter_mut().zip(payload.chunks(16)) {
                            *b = load_le(chunk);
                        }
                        blocks[n] = u128::from_le_bytes(lengths(AAD_LEN, len));
                        let tag = powers.update(place.acc, &blocks[..=n]) & !(1 << 127);
                        tag.to_le_bytes().into()
                    })
                    .collect()
            }
            None => items
                .iter()
                .map(|(place, payload)| {
                    let polyval = place.auth.clone().expect("a place from sealing keys");
                    tag_input(polyval, AAD_LEN, payload)
                })
                .collect(),
        };
        s.seal_enc.encrypt_blocks(&mut tags);
        let blocks: usize = items.iter().map(|(_, p)| p.len().div_ceil(16)).sum();
        let mut stream: Vec<aes::Block> = Vec::with_capacity(blocks);
        for ((_, payload), tag) in items.iter().zip(&tags) {
            // RFC 8452's counter block (see `counter_start`) as one integer:
            // the tag with its top bit set, the low 32 bits counting.
            let counter = u128::from_le_bytes((*tag).into()) | 1 << 127;
            let n = counter as u32;
            for i in 0..payload.len().div_ceil(16) as u32 {
                let block = counter & !0xffff_ffff | u128::from(n.wrapping_add(i));
                stream.push(block.to_le_bytes().into());
            }
        }
        s.seal_enc.encrypt_blocks(&mut stream);
        // Every block is stored whole (a fixed 16-byte store, not a copy of a
        // variable length), its padding overwritten by what follows; hence
        // the 16 bytes of slack, cut at the end.
        let total = blocks * 16 + items.len() * SEAL_OVERHEAD;
        out.resize(total + 16, 0);
        let mut at = 0;
        let mut stream = stream.iter();
        for ((_, payload), tag) in items.iter().zip(&tags) {
            for chunk in payload.chunks(16) {
                let key = stream.next().expect("a key stream block per chunk");
                let sealed = load_le(chunk) ^ u128::from_le_bytes((*key).into());
                out[at..at + 16].copy_from_slice(&sealed.to_le_bytes());
                at += chunk.len();
            }
            out[at..at + 16].copy_from_slice(tag);
            at += 16;
            ends.push(at);
        }
        out.truncate(at);
    }

    /// Opens a sealed payload; false if it does not authenticate (a wrong key or
    /// damaged data: never a garbage answer).
    pub fn open(&self, key: &[u8], breach: u32, stored: &[u8], out: &mut Vec<u8>) -> bool {
        out.clear();
        match &self.sealed {
            Some(s) => {
                let Some(split) = stored.len().checked_sub(SEAL_OVERHEAD) else { return false };
                let tag = block(&stored[split..]);
                out.extend_from_slice(&stored[..split]);
                s.ctr(&tag, out);
                let want = s.tag(&aad(key, breach), out);
                // Constant time: a timing oracle on tags is cheap to avoid.
                let diff = want.iter().zip(tag.iter()).fold(0u8, |d, (a, b)| d | (a ^ b));
                diff == 0
            }
            None => {
                out.extend_from_slice(stored);
                true
            }
        }
    }
}

impl Sealed {
    /// RFC 8452's tag: POLYVAL of the padded AAD, the padded plaintext and their
    /// bit lengths, xored with the (zero) nonce, top bit cleared, encrypted.
    fn tag(&self, aad: &[u8], plaintext: &[u8]) -> aes::Block {
        let mut polyval = self.seal_auth.clone();
        polyval.update_padded(aad);
        let mut tag = tag_input(polyval, aad.len(), plaintext);
        self.seal_enc.encrypt_block(&mut tag);
        tag
    }

    /// RFC 8452's CTR mode: the counter block is the tag with its top bit set,
    /// its first four bytes a little-endian counter.
    fn ctr(&self, tag: &aes::Block, data: &mut [u8]) {
        let (counter, mut n) = counter_start(tag);
        for chunk in data.chunks_mut(16) {
            let mut block = counter;
            block[..4].copy_from_slice(&n.to_le_bytes());
            self.seal_enc.encrypt_block(&mut block);
            for (d, k) in chunk.iter_mut().zip(block.iter()) {
                *d ^= k;
            }
            n = n.wrapping_add(1);
        }
    }
}

/// Where a payload is sealed, for [`Keys::seal_many`].
#[derive(Clone)]
pub struct SealPlace {
    /// POLYVAL after the associated data; `None` for a format-1 directory.
    auth: Option<Polyval>,
    /// `auth`'s accumulator: all the fast path needs of it.
    acc: u128,
}

/// The associated data's length: an entry's key and a breach id.
const AAD_LEN: usize = 20;

/// The tag before its encryption, from POLYVAL after the `aad_len` bytes of
/// associated data: the padded plaintext and the bit lengths added, xored with
/// the (zero) nonce, top bit cleared.
fn tag_input(mut polyval: Polyval, aad_len: usize, plaintext: &[u8]) -> aes::Block {
    polyval.update_padded(plaintext);
    polyval.update(&[lengths(aad_len, plaintext.len()).into()]);
    let mut tag = polyval.finalize();
    tag[15] &= 0x7f;
    tag
}

/// RFC 8452's lengths block: the associated data's and the plaintext's bit lengths.
fn lengths(aad_len: usize, plaintext_len: usize) -> [u8; 16] {
    let mut lengths = [0u8; 16];
    lengths[..8].copy_from_slice(&(aad_len as u64 * 8).to_le_bytes());
    lengths[8..].copy_from_slice(&(plaintext_len as u64 * 8).to_le_bytes());
    lengths
}

/// Up to 16 bytes as a little-endian integer, zero-padded, by at most two
/// fixed-size loads (a copy into a zeroed block is a `memcpy` call per chunk).
fn load_le(bytes: &[u8]) -> u128 {
    let n = bytes.len();
    let u64_at = |i: usize| u64::from_le_bytes(bytes[i..i + 8].try_into().expect("8 bytes"));
    let u32_at = |i: usize| u64::from(u32::from_le_bytes(bytes[i..i + 4].try_into().expect("4 bytes")));
    match n {
        16 => u128::from_le_bytes(bytes.try_into().expect("16 bytes")),
        // The second load overlaps the first; the overlap is shifted out.
        8..=15 => {
            u128::from(u64_at(0))
                | u128::from(u64_at(n - 8).checked_shr(8 * (16 - n as u32)).unwrap_or(0)) << 64
        }
        4..=7 => u128::from(u32_at(0) | (u32_at(n - 4) >> (8 * (8 - n))) << 32),
        1..=3 => {
            u128::from(bytes[0])
                | u128::from(bytes[n / 2]) << (8 * (n / 2))
                | u128::from(bytes[n - 1]) << (8 * (n - 1))
        }
        0 => 0,
        _ => panic!("more than a block"),
    }
}

/// CTR's first counter block for a tag, and its counter.
fn counter_start(tag: &aes::Block) -> (aes::Block, u32) {
    let mut counter = *tag;
    counter[15] |= 0x80;
    let n = u32::from_le_bytes(counter[..4].try_into().expect("4 bytes"));
    (counter, n)
}

/// An AES block from 16 bytes: a plain copy (`clone_from_slice` goes through
/// an element iterator, a visible cost per key at ingest rates).
fn block(bytes: &[u8]) -> aes::Block {
    let arr: [u8; 16] = bytes.try_into().expect("16 bytes");
    arr.into()
}

fn site_ref_cipher(index_key: &[u8; 32]) -> Aes256 {
    Aes256::new(&blake3::derive_key(SITE_REF_CONTEXT, index_key).into())
}

fn credential_cipher(index_key: &[u8; 32]) -> Aes256 {
    Aes256::new(&blake3::derive_key(CREDENTIAL_CONTEXT, index_key).into())
}

fn aad(key: &[u8], breach: u32) -> [u8; AAD_LEN] {
    let mut aad = [0u8; AAD_LEN];
    aad[..16].copy_from_slice(&key[..16]);
    aad[16..].copy_from_slice(&breach.to_le_bytes());
    aad
}

/// A keyed permutation of 16 < W <= 32 bytes from two overlapping AES blocks:
/// encrypt the first 16 bytes, then the last 16 of the result's tail and the rest.
fn permute_wide<const W: usize>(prp: &Aes256, inner: &[u8; W]) -> [u8; W] {
    let mut out = *inner;
    let mut first = block(&out[..16]);
    prp.encrypt_block(&mut first);
    out[..16].copy_from_slice(&first);
    let mut second = block(&out[W - 16..]);
    prp.encrypt_block(&mut second);
    out[W - 16..].copy_from_slice(&second);
    out
}

fn unpermute_wide<const W: usize>(prp: &Aes256, stored: &[u8; W]) -> [u8; W] {
    let mut out = *stored;
    let mut second = block(&out[W - 16..]);
    prp.decrypt_block(&mut second);
    out[W - 16..].copy_from_slice(&second);
    let mut first = block(&out[..16]);
    prp.decrypt_block(&mut first);
    out[..16].copy_from_slice(&first);
    out
}

/// Turns the CBC-MAC's first blocks, `E(digest[0..16])` of masked credential
/// records (digest, then pair key masked by [`Keys::mask_pairs`]), into the
/// second block's inputs: the rest of the digest and the pair xored in (the
/// mask is the first block's own bytes, so the masked pair takes its place
/// as it stands) and the key width in the last byte.
fn second_block_inputs<const N: usize>(first: &mut [aes::Block], recs: &[[u8; N]], width: usize) {
    let d = N - 8;
    for (x, r) in first.iter_mut().zip(recs) {
        for (b, t) in x[..d - 16].iter_mut().zip(&r[16..d]) {
            *b ^= t;
        }
        x[d - 16..d - 8].copy_from_slice(&r[d..]);
        x[15] ^= width as u8;
    }
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
    fn sealing_is_aes_256_gcm_siv_with_a_zero_nonce() {
        use aes_gcm_siv::aead::{Aead, KeyInit as _, Payload};
        let data_key = [2u8; 32];
        let keys = Keys::new(&[1; 32], &data_key);
        let reference = aes_gcm_siv::Aes256GcmSiv::new(&blake3::derive_key(SEAL_CONTEXT, &data_key).into());
        let key = keys.domain("example.com");
        let (mut sealed, mut opened) = (Vec::new(), Vec::new());
        for len in [0usize, 1, 5, 15, 16, 17, 31, 32, 33, 64, 200, 239] {
            let payload: Vec<u8> = (0..len).map(|i| (i * 7 + len) as u8).collect();
            keys.seal(&key, 42, &payload, &mut sealed);
            let want = reference
                .encrypt(&Default::default(), Payload { msg: &payload, aad: &aad(&key, 42) })
                .unwrap();
            assert_eq!(sealed, want, "length {len}");
            assert!(keys.open(&key, 42, &sealed, &mut opened));
            assert_eq!(opened, payload);
            if len > 0 {
                let mut bad = sealed.clone();
                bad[0] ^= 1;
                assert!(!keys.open(&key, 42, &bad, &mut opened), "a flipped bit");
            }
        }
        assert!(!keys.open(&key, 42, &[1, 2, 3], &mut opened), "shorter than a tag");
    }

    #[test]
    fn sealing_many_equals_one_at_a_time() {
        for keys in [Keys::new(&[1; 32], &[2; 32]), Keys::legacy(&[1; 32])] {
            let places: Vec<_> = (0..13u32)
                .map(|i| {
                    let key = keys.domain(&format!("example{i}.com"));
                    (key, i * 7919, keys.seal_place(&key, i * 7919))
                })
                .collect();
            // Every length, twice (the second with other bytes), at places in turn.
            let payloads: Vec<Vec<u8>> = (0..=2 * MAX_SEALED_PLAINTEXT + 1)
                .map(|j| {
                    let len = j % (MAX_SEALED_PLAINTEXT + 1);
                    (0..len).map(|i| (i * 3 + j * 101) as u8).collect()
                })
                .collect();
            let at = |i: usize| &places[i % places.len()];
            let items: Vec<(&SealPlace, &[u8])> =
                payloads.iter().enumerate().map(|(i, p)| (&at(i).2, &p[..])).collect();
            let (mut out, mut ends, mut one) = (Vec::new(), Vec::new(), Vec::new());
            keys.seal_many(&items, &mut out, &mut ends);
            assert_eq!(ends.len(), payloads.len());
            let mut start = 0;
            for (i, (p, &end)) in payloads.iter().zip(&ends).enumerate() {
                keys.seal(&at(i).0, at(i).1, p, &mut one);
                assert_eq!(&out[start..end], &one[..], "payload {i}");
                start = end;
            }
        }
    }

    /// Payloads sealed by the code before `seal_many`'s one-reduction POLYVAL:
    /// stored data directories hold such bytes, and re-ingest must reproduce
    /// them (segments are named by their content).
    #[test]
    fn payloads_sealed_before_still_open_and_seal_the_same() {
        let keys = Keys::new(&[1; 32], &[2; 32]);
        let key = keys.domain("example.com");
        let pinned: [(&[u8], &str); 3] = [
            (b"j.smith1960", "371e8f2376ca22dd70c615b088606e650961379af02c29c3396f4e"),
            (b"", "190df4d7a3fb3357731d8d10dc75f5c9"),
            (
                b"a-rather-long-alias.with.dots+tag2024xyz",
                "410fcaba639fc911d56f0ad96e651893a99be48be0bd9e33c183bd60ed26173b18d801f581c82de4abc9b25139b38f293df3bc24c7108d46",
            ),
        ];
        let place = keys.seal_place(&key, 42);
        let items: Vec<(&SealPlace, &[u8])> = pinned.iter().map(|&(alias, _)| (&place, alias)).collect();
        let (mut out, mut ends, mut opened) = (Vec::new(), Vec::new(), Vec::new());
        keys.seal_many(&items, &mut out, &mut ends);
        let mut start = 0;
        for (&(alias, hex), &end) in pinned.iter().zip(&ends) {
            let stored: Vec<u8> =
                (0..hex.len()).step_by(2).map(|i| u8::from_str_radix(&hex[i..i + 2], 16).unwrap()).collect();
            assert!(keys.open(&key, 42, &stored, &mut opened));
            assert_eq!(opened, alias);
            assert_eq!(&out[start..end], &stored[..], "sealed as before");
            start = end;
        }
    }

    /// ns per alias of `seal_many` on a batch shaped like a combo's aliases.
    #[test]
    #[ignore = "a micro-benchmark: cargo test --release -- --ignored --nocapture"]
    fn bench_seal_many() {
        let keys = Keys::new(&[1; 32], &[2; 32]);
        let places: Vec<SealPlace> =
            (0..200u32).map(|i| keys.seal_place(&keys.domain(&format!("d{i}.com")), 3)).collect();
        let mut x = 0x9e37_79b9_7f4a_7c15u64;
        let payloads: Vec<Vec<u8>> = (0..30_000)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                let len = 5 + (x % 21) as usize;
                (0..len).map(|i| b'a' + ((x >> (i % 48)) % 26) as u8).collect()
            })
            .collect();
        let items: Vec<(&SealPlace, &[u8])> =
            payloads.iter().enumerate().map(|(i, p)| (&places[(i * 7919) % places.len()], &p[..])).collect();
        let (mut out, mut ends) = (Vec::new(), Vec::new());
        let mut best = f64::MAX;
        for _ in 0..50 {
            let t = std::time::Instant::now();
            keys.seal_many(std::hint::black_box(&items), &mut out, &mut ends);
            best = best.min(t.elapsed().as_nanos() as f64 / items.len() as f64);
        }
        println!("seal_many: {best:.1} ns/item (best of 50 batches of {})", items.len());
    }

    #[test]
    fn batched_keys_equal_one_at_a_time() {
        for keys in [Keys::new(&[1; 32], &[2; 32]), Keys::legacy(&[1; 32])] {
            let mut recs: Vec<[u8; 48]> = Vec::new();
            let mut ntlm: Vec<[u8; 40]> = Vec::new();
            for i in 0..50u8 {
                let mut r = [0u8; 48];
                r[..20].copy_from_slice(&[i; 20]);
                r[20..28].copy_from_slice(&[i ^ 0x55; 8]);
                recs.push(r);
                let mut n = [0u8; 40];
                n[..16].copy_from_slice(&[i; 16]);
                n[16..24].copy_from_slice(&[i ^ 0x55; 8]);
                ntlm.push(n);
            }
            keys.credentials_in_place::<48, 28>(&mut recs);
            keys.credentials_in_place::<40, 24>(&mut ntlm);
            for i in 0..50u8 {
                let want: [u8; 28] = keys.credential(&[i; 20], &[i ^ 0x55; 8]);
                assert_eq!(recs[i as usize][20..], want);
                let want: [u8; 24] = keys.credential(&[i; 16], &[i ^ 0x55; 8]);
                assert_eq!(ntlm[i as usize][16..], want);
            }
            let mut many: Vec<Key16> = (0..20u8).map(|i| [i; 16]).collect();
            keys.outer_many(&mut many);
            for i in 0..20u8 {
                assert_eq!(many[i as usize], keys.outer([i; 16]));
            }
        }
    }

    #[test]
    fn credential_keys_are_the_wide_keys_first_block_permuted() {
        // A 16-byte stored key is P of the first 16 bytes of the wide key's
        // inner value, for both digests: older keys convert, and `rekey`
        // permutes the new ones as it does account keys.
        let keys = Keys::new(&[3; 32], &[4; 32]);
        fn check<const N: usize>(keys: &Keys) {
            let recs: Vec<[u8; N]> =
                (0..40u8).map(|i| std::array::from_fn(|j| i ^ (j as u8).wrapping_mul(29))).collect();
            let mut masked = recs.clone();
            keys.mask_pairs(&mut masked);
            let mut got = Vec::new();
            keys.credential_keys_from_masked(&masked, &mut got);
            assert_eq!(got.len(), recs.len());
            for (r, key) in recs.iter().zip(&got) {
                let wide: [u8; N] = keys.credential(&r[..N - 8], &r[N - 8..].try_into().unwrap());
                let inner = keys.credential_inner(&wide);
                assert_eq!(*key, keys.outer(inner[..16].try_into().unwrap()));
                assert_eq!(keys.inner(key)[..], inner[..16]);
            }
            let distinct: std::collections::BTreeSet<_> = got.iter().collect();
            assert_eq!(distinct.len(), got.len());
        }
        check::<28>(&keys);
        check::<24>(&keys);
    }

    #[test]
    fn masked_pairs_unmask_and_hide_the_pair() {
        let keys = Keys::new(&[1; 32], &[2; 32]);
        let recs: Vec<[u8; 28]> = (0..50u8)
            .map(|i| {
                let mut r = [i; 28];
                r[20..].copy_from_slice(&[7; 8]);
                r
            })
            .collect();
        let mut masked = recs.clone();
        keys.mask_pairs(&mut masked);
        for (m, r) in masked.iter().zip(&recs) {
            assert_eq!(m[..20], r[..20]);
            assert_ne!(m[20..], r[20..], "one pair, a different mask per digest");
        }
        assert_ne!(masked[0][20..], masked[1][20..]);
        keys.mask_pairs(&mut masked);
        assert_eq!(masked, recs);
        for keys in [keys, Keys::legacy(&[1; 32])] {
            let mut masked = recs.clone();
            keys.mask_pairs(&mut masked);
            let mut out: Vec<[u8; 28]> = Vec::new();
            keys.credentials_from_masked::<28, 28>(&masked, &mut out);
            for (r, got) in recs.iter().zip(&out) {
                let want: [u8; 28] = keys.credential(&r[..20], &r[20..].try_into().unwrap());
                assert_eq!(*got, want);
            }
            let ntlm: Vec<[u8; 24]> = recs.iter().map(|r| r[4..].try_into().unwrap()).collect();
            let mut masked = ntlm.clone();
            keys.mask_pairs(&mut masked);
            let mut out: Vec<[u8; 24]> = Vec::new();
            keys.credentials_from_masked::<24, 24>(&masked, &mut out);
            for (r, got) in ntlm.iter().zip(&out) {
                let want: [u8; 24] = keys.credential(&r[..16], &r[16..].try_into().unwrap());
                assert_eq!(*got, want);
            }
        }
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
