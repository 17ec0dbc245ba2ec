//! Password digests and the keyed hashes that turn accounts into index keys.

use crate::account::{Account, AccountKind};
use crate::blake3_lanes::{self, LANES, MAX_LEN};
use crate::md4_lanes;
use crate::sha1_lanes;
use md4::Md4;
use sha1::{Digest, Sha1};

/// A 128-bit index key: a keyed hash of an account or a domain.
pub type Key16 = [u8; 16];

/// SHA-1 of raw password bytes, the Pwned Passwords key.
pub fn sha1(password: &[u8]) -> [u8; 20] {
    // A password of up to 55 bytes fits one block with its padding: one call
    // of the compression function, without the incremental hasher's buffering
    // (a visible cost at one password per record).
    if password.len() <= 55 {
        let mut block = [0u8; 64];
        block[..password.len()].copy_from_slice(password);
        block[password.len()] = 0x80;
        block[56..].copy_from_slice(&(password.len() as u64 * 8).to_be_bytes());
        let mut state = SHA1_INIT;
        sha1::block_api::compress(&mut state, &[block]);
        let mut digest = [0u8; 20];
        for (out, word) in digest.chunks_exact_mut(4).zip(state) {
            out.copy_from_slice(&word.to_be_bytes());
        }
        return digest;
    }
    Sha1::digest(password).into()
}

/// SHA-1's initial state (FIPS 180-4, 5.3.1).
const SHA1_INIT: [u32; 5] = [0x6745_2301, 0xEFCD_AB89, 0x98BA_DCFE, 0x1032_5476, 0xC3D2_E1F0];

/// NTLM (MD4 of the UTF-16LE text) of a password.
///
/// Windows hashes text, not bytes, so bytes that are not UTF-8 are read as
/// Windows-1252, the legacy encoding such passwords most often came from.
pub fn ntlm(password: &[u8]) -> [u8; 16] {
    // ASCII, most passwords, widens byte by byte, without decoding UTF-8.
    if password.len() <= 64 && password.is_ascii() {
        let mut utf16 = [0u8; 128];
        for (unit, &b) in utf16.chunks_exact_mut(2).zip(password) {
            unit[0] = b;
        }
        return Md4::digest(&utf16[..2 * password.len()]).into();
    }
    let mut md4 = Md4::new();
    let mut feed = |text: &str| {
        let mut buf = [0u8; 128];
        let mut n = 0;
        for unit in text.encode_utf16() {
            buf[n..n + 2].copy_from_slice(&unit.to_le_bytes());
            n += 2;
            if n == buf.len() {
                md4.update(buf);
                n = 0;
            }
        }
        md4.update(&buf[..n]);
    };
    match std::str::from_utf8(password) {
        Ok(text) => feed(text),
        Err(_) => feed(&encoding_rs::WINDOWS_1252.decode_without_bom_handling(password).0),
    }
    md4.finalize().into()
}

/// [`ntlm`] of each password, in order: short ASCII ones (nearly all) sixteen
/// at a time ([`NtlmLanes`]), the same digests faster.
pub fn ntlm_many<'a>(passwords: impl IntoIterator<Item = &'a [u8]>) -> Vec<[u8; 16]> {
    NtlmLanes::hash_all(passwords)
}

/// [`sha1`] of each password, in order: those of up to 55 bytes (nearly all)
/// sixteen at a time ([`Sha1Lanes`]), the same digests faster.
pub fn sha1_many<'a>(passwords: impl IntoIterator<Item = &'a [u8]>) -> Vec<[u8; 20]> {
    Sha1Lanes::hash_all(passwords)
}

/// A password digest that SIMD lanes compute sixteen one-block messages at a
/// time: what [`Lanes`] needs to know of it.
pub trait LaneDigest {
    type Digest: Copy + Default;
    /// The longest password a lane takes.
    const MAX_LEN: usize;
    /// Whether a lane computes the digest of `password` (no longer than
    /// `MAX_LEN`, and whatever else the digest asks); others go to `one`.
    fn fits(password: &[u8]) -> bool;
    /// Writes `password`, as the digest's one padded block, into `lane`.
    fn load(block: &mut LaneBlock, lane: usize, password: &[u8]);
    /// The digests of the first `used` lanes (at least).
    fn digests(block: &LaneBlock, used: usize) -> [Self::Digest; LANE_COUNT];
    /// The digest of one password, whatever it is.
    fn one(password: &[u8]) -> Self::Digest;
}

/// Messages hashed together.
pub const LANE_COUNT: usize = 16;
/// Sixteen one-block messages, word by word: `block[w][lane]`.
pub type LaneBlock = [[u32; LANE_COUNT]; 16];

/// NTLM: MD4 of the password's UTF-16LE, for ASCII of up to 27 bytes.
#[derive(Debug)]
pub struct Ntlm;

impl LaneDigest for Ntlm {
    type Digest = [u8; 16];
    /// 27 UTF-16 units and MD4's padding fill one block.
    const MAX_LEN: usize = (md4_lanes::MAX_LEN - 1) / 2;

    #[inline]
    fn fits(password: &[u8]) -> bool {
        // ASCII: its UTF-16 is its bytes widened.
        password.len() <= Self::MAX_LEN && password.is_ascii()
    }

    fn load(block: &mut LaneBlock, lane: usize, password: &[u8]) {
        // Units widened from bytes, MD4's 0x80 landing where the next unit's
        // low byte would, so a word is two units and the padding needs no case
        // of its own.
        let mut units = [0u8; 2 * 14];
        units[..password.len()].copy_from_slice(password);
        units[password.len()] = 0x80;
        for (w, pair) in units.chunks_exact(2).enumerate() {
            block[w][lane] = u32::from(pair[0]) | u32::from(pair[1]) << 16;
        }
        block[14][lane] = password.len() as u32 * 16;
        block[15][lane] = 0;
    }

    fn digests(block: &LaneBlock, used: usize) -> [[u8; 16]; LANE_COUNT] {
        md4_lanes::digests(block, used)
    }

    fn one(password: &[u8]) -> [u8; 16] {
        ntlm(password)
    }
}

/// SHA-1 of the password's bytes, any bytes up to 55 of them.
#[derive(Debug)]
pub struct Sha1Bytes;

impl LaneDigest for Sha1Bytes {
    type Digest = [u8; 20];
    /// 55 bytes and SHA-1's padding fill one block.
    const MAX_LEN: usize = sha1_lanes::MAX_LEN;

    #[inline]
    fn fits(password: &[u8]) -> bool {
        password.len() <= Self::MAX_LEN
    }

    fn load(block: &mut LaneBlock, lane: usize, password: &[u8]) {
        let mut bytes = [0u8; 64];
        bytes[..password.len()].copy_from_slice(password);
        bytes[password.len()] = 0x80;
        bytes[56..].copy_from_slice(&(password.len() as u64 * 8).to_be_bytes());
        for (w, word) in bytes.chunks_exact(4).enumerate() {
            block[w][lane] = u32::from_le_bytes(word.try_into().expect("4 bytes"));
        }
    }

    fn digests(block: &LaneBlock, used: usize) -> [[u8; 20]; LANE_COUNT] {
        sha1_lanes::digests(block, used)
    }

    fn one(password: &[u8]) -> [u8; 20] {
        sha1(password)
    }
}

/// Up to sixteen passwords waiting for their NTLM digests ([`md4_lanes`]).
pub type NtlmLanes = Lanes<Ntlm>;
/// Up to sixteen passwords waiting for their SHA-1 digests ([`sha1_lanes`]).
pub type Sha1Lanes = Lanes<Sha1Bytes>;

/// Up to sixteen passwords waiting for their digests, computed together, each
/// with the caller's slot for where its digest goes.
///
/// A password is copied in, padded, so the caller may reuse its buffer at
/// once; the copy lives as long as this value, which a parser keeps on its
/// stack for one chunk.
pub struct Lanes<D: LaneDigest> {
    block: LaneBlock,
    slots: [usize; LANE_COUNT],
    filled: usize,
    digest: std::marker::PhantomData<D>,
}

impl<D: LaneDigest> Default for Lanes<D> {
    fn default() -> Self {
        Self::new()
    }
}

impl<D: LaneDigest> std::fmt::Debug for Lanes<D> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Lanes<{}>({} queued)", std::any::type_name::<D>(), self.filled)
    }
}

impl<D: LaneDigest> Lanes<D> {
    /// The longest password a lane takes.
    pub const MAX_LEN: usize = D::MAX_LEN;
    /// Passwords hashed together.
    pub const LANES: usize = LANE_COUNT;

    pub const fn new() -> Self {
        Lanes {
            block: [[0; LANE_COUNT]; 16],
            slots: [0; LANE_COUNT],
            filled: 0,
            digest: std::marker::PhantomData,
        }
    }

    /// Whether a lane takes `password`; others are the caller's to hash.
    #[inline]
    pub fn fits(password: &[u8]) -> bool {
        D::fits(password)
    }

    /// Whether every lane is taken: [`Lanes::drain`] must come before the
    /// next push.
    pub fn is_full(&self) -> bool {
        self.filled == LANE_COUNT
    }

    /// Queues `password` for `slot` if it [fits](Lanes::fits); false (nothing
    /// queued) if it does not, its digest then the caller's to compute.
    pub fn push(&mut self, slot: usize, password: &[u8]) -> bool {
        if !D::fits(password) {
            return false;
        }
        assert!(!self.is_full(), "drain a full group first");
        D::load(&mut self.block, self.filled, password);
        self.slots[self.filled] = slot;
        self.filled += 1;
        true
    }

    /// Hashes the queued passwords, hands each digest to `deliver` with its
    /// slot, in the order queued, and empties the lanes.
    pub fn drain(&mut self, mut deliver: impl FnMut(usize, D::Digest)) {
        if self.filled == 0 {
            return;
        }
        let digests = D::digests(&self.block, self.filled);
        for (&slot, digest) in self.slots[..self.filled].iter().zip(digests) {
            deliver(slot, digest);
        }
        self.filled = 0;
    }

    /// The digest of each password, in order: those that fit sixteen at a
    /// time, the others one by one.
    pub fn hash_all<'a>(passwords: impl IntoIterator<Item = &'a [u8]>) -> Vec<D::Digest> {
        let mut out = Vec::new();
        let mut lanes = Self::new();
        for password in passwords {
            if !lanes.push(out.len(), password) {
                out.push(D::one(password));
                continue;
            }
            out.push(D::Digest::default());
            if lanes.is_full() {
                lanes.drain(|slot, digest| out[slot] = digest);
            }
        }
        lanes.drain(|slot, digest| out[slot] = digest);
        out
    }
}

/// Both digests of one plaintext password: all the store ever keeps of it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct PasswordHashes {
    pub sha1: [u8; 20],
    pub ntlm: [u8; 16],
}

impl PasswordHashes {
    pub fn of(password: &[u8]) -> Self {
        PasswordHashes { sha1: sha1(password), ntlm: ntlm(password) }
    }
}

/// What a dump revealed of an account's password.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PasswordMaterial {
    /// A plaintext, hashed on the spot; the plaintext itself is gone.
    Plain(PasswordHashes),
    /// A hash as found in the dump, with its detected type.
    Hash { kind: HashKind, value: Box<str> },
}

impl PasswordMaterial {
    /// The unsalted SHA-1 this material contributes to the Pwned Passwords corpus.
    pub fn sha1(&self) -> Option<[u8; 20]> {
        match self {
            PasswordMaterial::Plain(h) => Some(h.sha1),
            PasswordMaterial::Hash { kind: HashKind::Sha1, value } => {
                crate::decode_hex::<20>(value.as_bytes())
            }
            PasswordMaterial::Hash { .. } => None,
        }
    }

    /// The NTLM hash this material contributes to the NTLM corpus.
    pub fn ntlm(&self) -> Option<[u8; 16]> {
        match self {
            PasswordMaterial::Plain(h) => Some(h.ntlm),
            PasswordMaterial::Hash { kind: HashKind::Ntlm, value } => {
                crate::decode_hex::<16>(value.as_bytes())
            }
            PasswordMaterial::Hash { .. } => None,
        }
    }
}

/// Password-hash schemes, named by what they are (hashcat mode in the comment).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[non_exhaustive]
pub enum HashKind {
    /// MD5, 0.
    Md5,
    /// SHA-1, 100.
    Sha1,
    /// NTLM, 1000.
    Ntlm,
    /// SHA-256, 1400.
    Sha256,
    /// SHA-512, 1700.
    Sha512,
    /// bcrypt, 3200.
    Bcrypt,
    /// phpass (`$P$`, `$H$`), 400.
    Phpass,
    /// md5crypt (`$1$`), 500.
    Md5Crypt,
    /// sha256crypt (`$5$`), 7400.
    Sha256Crypt,
    /// sha512crypt (`$6$`), 1800.
    Sha512Crypt,
    /// Argon2 (`$argon2id$`...), 34000.
    Argon2,
    /// Django PBKDF2-SHA256, 10000.
    DjangoPbkdf2,
    /// MySQL 4.1 (`*` + 40 hex), 300.
    MySql41,
    /// A salted MD5 (`hex32:salt`) of unknown construction, one of 10/20/2611/2711/2811.
    SaltedMd5,
    /// vBulletin 3-5 `md5(md5(p).salt)`, 2611/2711; kept as `hex32:salt`.
    VBulletin,
    /// MyBB and IPB 3 `md5(md5(salt).md5(p))`, 2811; kept as `hex32:salt`.
    MyBb,
    /// SMF `sha1(lower(username).p)`, 121; kept as `hex40:lower(username)`.
    SmfSha1,
    /// XenForo 1 `XF:Core` `sha256(sha256(p).salt)`, 20710; kept as `hex64:salt`.
    XenForoSha256,
    /// Discourse PBKDF2-HMAC-SHA256, 10900; kept as `hex64 hash:hex salt` as stored.
    DiscoursePbkdf2,
    /// Drupal 7 (`$S$`), 7900.
    Drupal7,
    /// LDAP `{SSHA}`, 111.
    LdapSsha,
    /// PostgreSQL `SCRAM-SHA-256$`, 28600.
    ScramSha256,
    /// WordPress 6.8+ `$wp$2y$`: bcrypt of an HMAC-SHA384 of the password.
    WordPressBcrypt,
    /// Recognizably a hash, of no known scheme.
    Unknown,
}

/// Turns accounts and domains into keyed 128-bit index keys, so that the index
/// can be looked up without storing the clear value next to it.
#[derive(Clone)]
pub struct Blinder {
    key: [u8; 32],
}

impl Drop for Blinder {
    fn drop(&mut self) {
        zeroize::Zeroize::zeroize(&mut self.key);
    }
}

impl std::fmt::Debug for Blinder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Blinder(..)")
    }
}

impl Blinder {
    pub fn new(key: [u8; 32]) -> Self {
        Blinder { key }
    }

    /// The index key of a normalized account. The kind is part of the input so
    /// the user name `bob` and a phone number never share a key.
    pub fn account_key(&self, account: &Account) -> Key16 {
        self.keyed(account.kind.tag(), account.value.as_bytes())
    }

    /// [`Blinder::account_key`] of each account, in order: short ones (nearly
    /// all) sixteen at a time ([`crate::blake3_lanes`]), the same keys faster.
    /// Accounts come as (kind, normalized value), as [`crate::Records`] holds them.
    pub fn account_keys<'a>(&self, accounts: impl Iterator<Item = (AccountKind, &'a str)>) -> Vec<Key16> {
        let mut out = Vec::new();
        self.account_keys_into(accounts, &mut out);
        out
    }

    /// [`Blinder::account_keys`] into `out`, cleared first: a caller that keys
    /// batch after batch keeps one vector's memory instead of a new one each
    /// time.
    pub fn account_keys_into<'a>(
        &self,
        accounts: impl Iterator<Item = (AccountKind, &'a str)>,
        out: &mut Vec<Key16>,
    ) {
        self.keyed_many(accounts.map(|(kind, value)| (kind.tag(), value.as_bytes())), out)
    }

    /// [`Blinder::website_key`] of each website, in order, as
    /// [`Blinder::account_keys`] computes its keys.
    pub fn website_keys<'a>(&self, domains: impl Iterator<Item = &'a str>) -> Vec<Key16> {
        let mut out = Vec::new();
        self.keyed_many(domains.map(|d| (b'w', d.as_bytes())), &mut out);
        out
    }

    /// The keyed hash of each (tag, value), in order, into `out` (cleared
    /// first): short ones sixteen at a time in SIMD lanes.
    fn keyed_many<'a>(&self, items: impl Iterator<Item = (u8, &'a [u8])>, out: &mut Vec<Key16>) {
        out.clear();
        out.reserve(items.size_hint().0);
        let mut group =
            Group { blocks: [[0u8; MAX_LEN]; LANES], lens: [0; LANES], slots: [0; LANES], filled: 0 };
        for (tag, value) in items {
            if value.len() >= MAX_LEN {
                out.push(self.keyed(tag, value));
                continue;
            }
            let lane = group.filled;
            group.blocks[lane][0] = tag;
            group.blocks[lane][1..=value.len()].copy_from_slice(value);
            group.lens[lane] = value.len() + 1;
            group.slots[lane] = out.len();
            out.push([0; 16]);
            group.filled += 1;
            if group.filled == LANES {
                group.hash_into(&self.key, out);
            }
        }
        group.hash_into(&self.key, out);
    }

    /// The index key of a normalized (A-label, lower-case) domain.
    pub fn domain_key(&self, domain: &str) -> Key16 {
        self.keyed(b'd', domain.as_bytes())
    }

    /// The index key of a normalized website domain, in a key space of its own
    /// (a site may also be an email domain).
    pub fn website_key(&self, domain: &str) -> Key16 {
        self.keyed(b'w', domain.as_bytes())
    }

    /// A key derived from the index key for `context` (BLAKE3's key
    /// derivation): for what is keyed by the index key outside the index.
    pub fn derive_key(&self, context: &str) -> [u8; 32] {
        blake3::derive_key(context, &self.key)
    }

    /// A 64-bit key for an (account, breach) pair: enough to tell apart the few
    /// accounts that share one password hash, which is all it is used for. It
    /// mixes bits of the account key, already keyed, so it needs no hash of its
    /// own (a third of the hashing cost of ingest when it had one).
    pub fn pair_key(&self, account: &Key16, breach: u32) -> u64 {
        let bits = u64::from_le_bytes(account[..8].try_into().expect("8 bytes"));
        bits ^ (u64::from(breach) + 1).wrapping_mul(0x9E37_79B9_7F4A_7C15)
    }

    fn keyed(&self, tag: u8, value: &[u8]) -> Key16 {
        // One-shot hashing of a stack buffer is cheaper than the incremental
        // hasher for the short values accounts are; both give the same key.
        let mut buf = [0u8; 256];
        let digest = if value.len() < buf.len() {
            buf[0] = tag;
            buf[1..=value.len()].copy_from_slice(value);
            blake3::keyed_hash(&self.key, &buf[..=value.len()])
        } else {
            let mut hasher = blake3::Hasher::new_keyed(&self.key);
            hasher.update(&[tag]);
            hasher.update(value);
            hasher.finalize()
        };
        digest.as_bytes()[..16].try_into().expect("16 bytes")
    }
}

/// Up to [`LANES`] tagged accounts waiting for their keys, and where those go.
struct Group {
    blocks: [[u8; MAX_LEN]; LANES],
    lens: [usize; LANES],
    slots: [usize; LANES],
    filled: usize,
}

impl Group {
    fn hash_into(&mut self, key: &[u8; 32], out: &mut [Key16]) {
        if self.filled == 0 {
            return;
        }
        let inputs: [&[u8]; LANES] = std::array::from_fn(|i| &self.blocks[i][..self.lens[i]]);
        let keys = blake3_lanes::keyed16(key, &inputs, self.filled);
        for (&slot, key) in self.slots[..self.filled].iter().zip(keys) {
            out[slot] = key;
        }
        self.filled = 0;
    }
}

impl AccountKind {
    fn tag(self) -> u8 {
        match self {
            AccountKind::Email => b'e',
            AccountKind::Username => b'u',
            AccountKind::Phone => b't',
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::encode_hex_upper;

    #[test]
    fn digests_match_published_values() {
        // Pwned Passwords' own example: "password" -> 5BAA6...
        assert_eq!(encode_hex_upper(&sha1(b"password")), "5BAA61E4C9B93F3F0682250B6CF8331B7EE68FD8");
        assert_eq!(encode_hex_upper(&ntlm(b"password")), "8846F7EAEE8FB117AD06BDD830B7586C");
        assert_eq!(encode_hex_upper(&ntlm(b"")), "31D6CFE0D16AE931B73C59D7E0C089C0");
    }

    #[test]
    fn one_block_and_ascii_paths_equal_the_general_ones() {
        for len in 0..200 {
            let ascii: Vec<u8> = (0..len).map(|i| b'!' + (i * 7 % 90) as u8).collect();
            assert_eq!(sha1(&ascii), <[u8; 20]>::from(Sha1::digest(&ascii)), "sha1, length {len}");
            let text = std::str::from_utf8(&ascii).unwrap();
            let utf16: Vec<u8> = text.encode_utf16().flat_map(u16::to_le_bytes).collect();
            assert_eq!(ntlm(&ascii), <[u8; 16]>::from(Md4::digest(&utf16)), "ntlm, length {len}");
        }
    }

    #[test]
    fn ntlm_lanes_equal_ntlm_at_every_length() {
        for len in 0..=NtlmLanes::MAX_LEN {
            // A group of passwords of this length (and neighbours), all
            // different, over the whole ASCII range, NUL and DEL included.
            let passwords: Vec<Vec<u8>> = (0..NtlmLanes::LANES)
                .map(|l| {
                    let len = if l % 2 == 0 { len } else { (len + l) % (NtlmLanes::MAX_LEN + 1) };
                    (0..len).map(|i| ((i * 37 + l * 11 + len) % 128) as u8).collect()
                })
                .collect();
            let want: Vec<[u8; 16]> = passwords.iter().map(|p| ntlm(p)).collect();
            assert_eq!(ntlm_many(passwords.iter().map(Vec::as_slice)), want, "length {len}");
            for p in &passwords {
                let utf16: Vec<u8> = p.iter().flat_map(|&b| [b, 0]).collect();
                assert_eq!(ntlm(p), <[u8; 16]>::from(Md4::digest(&utf16)), "MD4 itself, length {len}");
            }
        }
    }

    #[test]
    fn ntlm_many_equals_ntlm_for_random_and_mixed_passwords() {
        // A fixed xorshift stream: printable and non-printable ASCII, UTF-8,
        // bytes that are not UTF-8, lengths either side of the lane limit, in
        // counts that leave every size of last group.
        let mut next = xorshift(0x9E37_79B9_7F4A_7C15);
        let mut passwords: Vec<Vec<u8>> = Vec::new();
        for _ in 0..2000 {
            let len = (next() % 40) as usize;
            let mut p: Vec<u8> = (0..len).map(|_| (next() % 128) as u8).collect();
            match next() % 8 {
                0 => p.extend("pässwörd".as_bytes()),
                1 => p.push(0xE9),
                _ => {}
            }
            passwords.push(p);
        }
        many_equals_one::<Ntlm>(&passwords, ntlm);
    }

    #[test]
    fn ntlm_lanes_take_short_ascii_only_and_deliver_in_order() {
        assert!(NtlmLanes::fits(b""));
        assert!(NtlmLanes::fits(&[b'a'; 27]));
        assert!(!NtlmLanes::fits(&[b'a'; 28]));
        assert!(!NtlmLanes::fits("café".as_bytes()));
        assert!(!NtlmLanes::fits(b"caf\xe9"));
        assert!(!NtlmLanes::new().push(0, &[b'a'; 28]), "nothing queued");
        partial_groups_deliver_in_order::<Ntlm>(|i| format!("pw{i}").into_bytes());
    }

    #[test]
    fn sha1_lanes_equal_sha1_at_every_length() {
        for len in 0..=Sha1Lanes::MAX_LEN {
            // A group of passwords of this length (and neighbours), all
            // different, over all 256 byte values.
            let passwords: Vec<Vec<u8>> = (0..Sha1Lanes::LANES)
                .map(|l| {
                    let len = if l % 2 == 0 { len } else { (len + l) % (Sha1Lanes::MAX_LEN + 1) };
                    (0..len).map(|i| ((i * 151 + l * 29 + len * 7) % 256) as u8).collect()
                })
                .collect();
            let want: Vec<[u8; 20]> = passwords.iter().map(|p| <[u8; 20]>::from(Sha1::digest(p))).collect();
            assert_eq!(sha1_many(passwords.iter().map(Vec::as_slice)), want, "length {len}");
            assert_eq!(
                passwords.iter().map(|p| sha1(p)).collect::<Vec<_>>(),
                want,
                "one by one, length {len}"
            );
        }
    }

    #[test]
    fn sha1_many_equals_sha1_for_random_and_mixed_passwords() {
        // A fixed xorshift stream: any bytes (ASCII, UTF-8, not UTF-8),
        // lengths either side of the one-block limit, in counts that leave
        // every size of last group.
        let mut next = xorshift(0x2545_F491_4F6C_DD1D);
        let mut passwords: Vec<Vec<u8>> = Vec::new();
        for _ in 0..2000 {
            let len = (next() % 80) as usize;
            let mut p: Vec<u8> = (0..len).map(|_| next() as u8).collect();
            if next().is_multiple_of(4) {
                p.extend("pässwörd".as_bytes());
            }
            passwords.push(p);
        }
        many_equals_one::<Sha1Bytes>(&passwords, |p| Sha1::digest(p).into());
    }

    #[test]
    fn sha1_lanes_take_up_to_55_bytes_and_deliver_in_order() {
        assert!(Sha1Lanes::fits(b""));
        assert!(Sha1Lanes::fits(&[0xff; 55]));
        assert!(!Sha1Lanes::fits(&[b'a'; 56]));
        assert!(Sha1Lanes::fits("café".as_bytes()));
        assert!(Sha1Lanes::fits(b"caf\xe9"));
        assert!(!Sha1Lanes::new().push(0, &[b'a'; 56]), "nothing queued");
        partial_groups_deliver_in_order::<Sha1Bytes>(|i| [b"pw\xe9".as_slice(), &[i as u8]].concat());
    }

    /// A fixed xorshift stream, for test inputs without a random number crate.
    fn xorshift(seed: u64) -> impl FnMut() -> u64 {
        let mut x = seed;
        move || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        }
    }

    /// `D`'s lanes against `reference` for every count of passwords up to two
    /// groups and then all of them, with both the lanes and the one-by-one
    /// fallback exercised.
    fn many_equals_one<D: LaneDigest>(passwords: &[Vec<u8>], reference: impl Fn(&[u8]) -> D::Digest)
    where
        D::Digest: PartialEq + std::fmt::Debug,
    {
        for n in (0..=33).chain([passwords.len()]) {
            let want: Vec<D::Digest> = passwords[..n].iter().map(|p| reference(p)).collect();
            let got = Lanes::<D>::hash_all(passwords[..n].iter().map(Vec::as_slice));
            assert_eq!(got, want, "{n} passwords");
        }
        assert!(passwords.iter().filter(|p| D::fits(p)).count() > 500, "lanes exercised");
        assert!(passwords.iter().filter(|p| !D::fits(p)).count() > 500, "fallback exercised");
    }

    /// Partial groups of 1 to 15 lanes, slots not in lane order: each digest
    /// comes back with its slot, in the order queued, and only once.
    fn partial_groups_deliver_in_order<D: LaneDigest>(password: impl Fn(usize) -> Vec<u8>)
    where
        D::Digest: PartialEq + std::fmt::Debug,
    {
        for filled in 1..LANE_COUNT {
            let passwords: Vec<Vec<u8>> = (0..filled).map(&password).collect();
            let mut lanes = Lanes::<D>::new();
            for (i, p) in passwords.iter().enumerate() {
                assert!(lanes.push(100 - i, p));
                assert!(!lanes.is_full());
            }
            let mut got = Vec::new();
            lanes.drain(|slot, digest| got.push((slot, digest)));
            let want: Vec<(usize, D::Digest)> =
                passwords.iter().enumerate().map(|(i, p)| (100 - i, D::one(p))).collect();
            assert_eq!(got, want, "{filled} lanes");
            lanes.drain(|_, _| panic!("drained twice"));
        }
    }

    #[test]
    fn ntlm_reads_non_utf8_as_windows_1252() {
        // 0xE9 is 'é' in Windows-1252.
        assert_eq!(ntlm(b"caf\xe9"), ntlm("café".as_bytes()));
    }

    #[test]
    fn short_and_long_values_hash_the_same_way() {
        // Keys are stable across the one-shot and incremental paths: a key
        // written by one build must be found by the next.
        let b = Blinder::new([7; 32]);
        for len in [0, 1, 254, 255, 256, 1000] {
            let value = vec![b'x'; len];
            let mut hasher = blake3::Hasher::new_keyed(&[7; 32]);
            hasher.update(b"d");
            hasher.update(&value);
            let mut want = [0u8; 16];
            hasher.finalize_xof().fill(&mut want);
            assert_eq!(b.keyed(b'd', &value), want, "length {len}");
        }
    }

    #[test]
    fn account_keys_in_bulk_equal_one_at_a_time() {
        let b = Blinder::new([9; 32]);
        // Every length around the one-block limit, all three kinds, and counts
        // that leave the last group part-filled by every count.
        let accounts: Vec<Account> = (0..70)
            .flat_map(|len| {
                [AccountKind::Email, AccountKind::Username, AccountKind::Phone]
                    .map(|kind| Account { kind, value: "x".repeat(len) + &len.to_string() })
            })
            .collect();
        for n in (0..=2 * LANES + 1).chain([accounts.len()]) {
            let want: Vec<Key16> = accounts[..n].iter().map(|a| b.account_key(a)).collect();
            let each = accounts[..n].iter().map(|a| (a.kind, a.value.as_str()));
            assert_eq!(b.account_keys(each.clone()), want, "{n} accounts");
            // Into a vector that held other keys: only the new ones are left.
            let mut out = vec![[7; 16]; 3];
            b.account_keys_into(each, &mut out);
            assert_eq!(out, want, "{n} accounts, into a used vector");
        }
    }

    #[test]
    fn keys_depend_on_kind_and_key() {
        let a = Blinder::new([1; 32]);
        let b = Blinder::new([2; 32]);
        let email = Account { kind: AccountKind::Email, value: "bob@example.com".into() };
        let user = Account { kind: AccountKind::Username, value: "bob@example.com".into() };
        assert_ne!(a.account_key(&email), a.account_key(&user));
        assert_ne!(a.account_key(&email), b.account_key(&email));
        assert_eq!(a.account_key(&email), a.account_key(&email.clone()));
    }
}
