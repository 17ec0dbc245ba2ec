//! Keyed BLAKE3 of sixteen short inputs at once.
//!
//! Ingest computes one keyed hash per record (its account's index key), and an
//! account is short: with its kind tag, almost always one 64-byte block, which
//! BLAKE3 hashes with a single call of its compression function. The `blake3`
//! crate runs that one call with SIMD across the rows of a single state (its
//! multi-input `hash_many` wants whole blocks of one length); here the same
//! function runs on sixteen states side by side, one per 32-bit lane, each
//! with its own block length: one AVX-512 register holds a state word of all
//! sixteen, or two AVX2 registers where there is no AVX-512 (the portable
//! path, one lane after the other, is the fallback and the reference). The
//! output is BLAKE3's, bit for bit: the tests compare it with
//! `blake3::keyed_hash` at every length.

/// BLAKE3's IV (the SHA-256 IV).
const IV: [u32; 8] =
    [0x6A09_E667, 0xBB67_AE85, 0x3C6E_F372, 0xA54F_F53A, 0x510E_527F, 0x9B05_688C, 0x1F83_D9AB, 0x5BE0_CD19];
/// The message word order of each of the seven rounds.
const SCHEDULE: [[usize; 16]; 7] = [
    [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15],
    [2, 6, 3, 10, 7, 0, 4, 13, 1, 11, 12, 5, 9, 14, 15, 8],
    [3, 4, 10, 12, 13, 2, 7, 14, 6, 5, 9, 0, 11, 15, 8, 1],
    [10, 7, 12, 9, 14, 3, 13, 15, 4, 0, 11, 2, 5, 8, 1, 6],
    [12, 13, 9, 11, 15, 10, 14, 8, 7, 2, 5, 3, 0, 1, 6, 4],
    [9, 14, 11, 5, 8, 12, 15, 1, 13, 3, 0, 10, 2, 6, 4, 7],
    [11, 15, 5, 0, 1, 9, 8, 6, 14, 10, 2, 12, 3, 4, 7, 13],
];
const CHUNK_START: u32 = 1;
const CHUNK_END: u32 = 2;
const ROOT: u32 = 8;
const KEYED_HASH: u32 = 16;

pub use crate::lanes::LANES;
use crate::lanes::{digests_of, Lanes};

/// The longest input one block holds.
pub const MAX_LEN: usize = 64;

/// The first 16 bytes of `blake3::keyed_hash(key, input)` for each of the
/// first `used` of [`LANES`] inputs of at most [`MAX_LEN`] bytes (the rest
/// are hashed or not, their outputs meaningless; empty slices will do).
pub fn keyed16(key: &[u8; 32], inputs: &[&[u8]; LANES], used: usize) -> [[u8; 16]; LANES] {
    let (key, msg, block_len) = load(key, inputs);
    #[cfg(target_arch = "x86_64")]
    {
        if std::arch::is_x86_feature_detected!("avx512f") {
            // SAFETY: the CPU has AVX-512F, checked just above.
            return store(unsafe { avx512::words(&key, &msg, &block_len) });
        }
        if std::arch::is_x86_feature_detected!("avx2") {
            return store(words_avx2(&key, &msg, &block_len, used));
        }
    }
    let _ = used;
    store(words_portable(&key, &msg, &block_len))
}

/// Words 0..4 of `v[i] ^ v[i + 8]` of (at least) the first `used` lanes,
/// eight at a time, skipping a second eight that no lane of uses.
#[cfg(target_arch = "x86_64")]
fn words_avx2(key: &[u32; 8], msg: &[Lanes; 16], block_len: &Lanes, used: usize) -> [Lanes; 4] {
    assert!(std::arch::is_x86_feature_detected!("avx2"));
    // SAFETY: the CPU has AVX2, asserted just above.
    crate::lanes::by_halves(used, |half, words| unsafe { avx2::words(key, msg, block_len, half, words) })
}

/// The key as words, the transposed message (word `w` of every lane's
/// zero-padded block) and each lane's block length.
fn load(key: &[u8; 32], inputs: &[&[u8]; LANES]) -> ([u32; 8], [Lanes; 16], Lanes) {
    let key = std::array::from_fn(|i| u32::from_le_bytes(key[4 * i..4 * i + 4].try_into().expect("4 bytes")));
    let mut msg = [[0u32; LANES]; 16];
    let mut block_len = [0u32; LANES];
    for (lane, input) in inputs.iter().enumerate() {
        assert!(input.len() <= MAX_LEN, "one block at most");
        let mut block = [0u8; MAX_LEN];
        block[..input.len()].copy_from_slice(input);
        for (w, word) in block.chunks_exact(4).enumerate() {
            msg[w][lane] = u32::from_le_bytes(word.try_into().expect("4 bytes"));
        }
        block_len[lane] = input.len() as u32;
    }
    (key, msg, block_len)
}

/// Each lane's hash from its words 0..4 of `v[i] ^ v[i + 8]`, little-endian.
fn store(words: [Lanes; 4]) -> [[u8; 16]; LANES] {
    digests_of(words, u32::to_le_bytes)
}

/// The reference: BLAKE3's compression, one lane at a time.
fn words_portable(key: &[u32; 8], msg: &[Lanes; 16], block_len: &Lanes) -> [Lanes; 4] {
    let mut words = [[0u32; LANES]; 4];
    for lane in 0..LANES {
        let mut v = [0u32; 16];
        v[..8].copy_from_slice(key);
        v[8..12].copy_from_slice(&IV[..4]);
        // Counter 0 (words 12 and 13 stay zero), then the block length and flags.
        v[14] = block_len[lane];
        v[15] = CHUNK_START | CHUNK_END | ROOT | KEYED_HASH;
        let m: [u32; 16] = std::array::from_fn(|w| msg[w][lane]);
        for round in &SCHEDULE {
            for (i, [a, b, c, d]) in QUARTERS.into_iter().enumerate() {
                let (x, y) = (m[round[2 * i]], m[round[2 * i + 1]]);
                v[a] = v[a].wrapping_add(v[b]).wrapping_add(x);
                v[d] = (v[d] ^ v[a]).rotate_right(16);
                v[c] = v[c].wrapping_add(v[d]);
                v[b] = (v[b] ^ v[c]).rotate_right(12);
                v[a] = v[a].wrapping_add(v[b]).wrapping_add(y);
                v[d] = (v[d] ^ v[a]).rotate_right(8);
                v[c] = v[c].wrapping_add(v[d]);
                v[b] = (v[b] ^ v[c]).rotate_right(7);
            }
        }
        for (i, word) in words.iter_mut().enumerate() {
            word[lane] = v[i] ^ v[i + 8];
        }
    }
    words
}

/// The state words each quarter-round of a round mixes: columns, then diagonals.
const QUARTERS: [[usize; 4]; 8] = [
    [0, 4, 8, 12],
    [1, 5, 9, 13],
    [2, 6, 10, 14],
    [3, 7, 11, 15],
    [0, 5, 10, 15],
    [1, 6, 11, 12],
    [2, 7, 8, 13],
    [3, 4, 9, 14],
];

/// All seven rounds in the calling module's vector operations ([`crate::lanes`]'
/// `add`, `xor`, `rotr`), written out so every state and message index is a constant and
/// both stay in registers (a function per quarter-round taking the state by
/// reference was not inlined, the state then living in memory).
macro_rules! rounds {
    ($v:ident, $m:ident) => {
        round!($v, $m, 0);
        round!($v, $m, 1);
        round!($v, $m, 2);
        round!($v, $m, 3);
        round!($v, $m, 4);
        round!($v, $m, 5);
        round!($v, $m, 6);
    };
}

/// Round `$r`: the columns, then the diagonals.
macro_rules! round {
    ($v:ident, $m:ident, $r:literal) => {
        g!($v, $m, $r, 0, [0, 4, 8, 12]);
        g!($v, $m, $r, 1, [1, 5, 9, 13]);
        g!($v, $m, $r, 2, [2, 6, 10, 14]);
        g!($v, $m, $r, 3, [3, 7, 11, 15]);
        g!($v, $m, $r, 4, [0, 5, 10, 15]);
        g!($v, $m, $r, 5, [1, 6, 11, 12]);
        g!($v, $m, $r, 6, [2, 7, 8, 13]);
        g!($v, $m, $r, 7, [3, 4, 9, 14]);
    };
}

/// Quarter-round `$i` of round `$r` on state words `$a`-`$d`.
macro_rules! g {
    ($v:ident, $m:ident, $r:literal, $i:literal, [$a:literal, $b:literal, $c:literal, $d:literal]) => {
        $v[$a] = add(add($v[$a], $v[$b]), $m[SCHEDULE[$r][2 * $i]]);
        $v[$d] = rotr::<16, 16>(xor($v[$d], $v[$a]));
        $v[$c] = add($v[$c], $v[$d]);
        $v[$b] = rotr::<12, 20>(xor($v[$b], $v[$c]));
        $v[$a] = add(add($v[$a], $v[$b]), $m[SCHEDULE[$r][2 * $i + 1]]);
        $v[$d] = rotr::<8, 24>(xor($v[$d], $v[$a]));
        $v[$c] = add($v[$c], $v[$d]);
        $v[$b] = rotr::<7, 25>(xor($v[$b], $v[$c]));
    };
}

/// The initial state in the calling module's `splat`: the key, IV[..4],
/// counter 0 (words 12 and 13), then the block length and flags.
macro_rules! state {
    ($key:ident, $block_len:expr) => {{
        let mut v = [splat(0); 16];
        for i in 0..8 {
            v[i] = splat($key[i]);
        }
        for i in 0..4 {
            v[8 + i] = splat(IV[i]);
        }
        v[14] = $block_len;
        v[15] = splat(CHUNK_START | CHUNK_END | ROOT | KEYED_HASH);
        v
    }};
}

/// Eight lanes per AVX2 register: one state word of half the lanes each.
#[cfg(target_arch = "x86_64")]
mod avx2 {
    use crate::lanes::avx2::*;

    use super::*;

    /// Words 0..4 of `v[i] ^ v[i + 8]` of lanes `8 * half..8 * half + 8`,
    /// into `words`.
    #[target_feature(enable = "avx2")]
    pub(super) fn words(
        key: &[u32; 8],
        msg: &[Lanes; 16],
        block_len: &Lanes,
        half: usize,
        words: &mut [Lanes; 4],
    ) {
        let m: [_; 16] = std::array::from_fn(|w| load_lanes(&msg[w], half));
        let mut v = state!(key, load_lanes(block_len, half));
        rounds!(v, m);
        for (i, word) in words.iter_mut().enumerate() {
            store_lanes(word, half, xor(v[i], v[i + 8]));
        }
    }
}

/// All sixteen lanes per AVX-512 register, where a rotation is one instruction.
#[cfg(target_arch = "x86_64")]
mod avx512 {
    use crate::lanes::avx512::*;

    use super::*;

    #[target_feature(enable = "avx512f")]
    pub(super) fn words(key: &[u32; 8], msg: &[Lanes; 16], block_len: &Lanes) -> [Lanes; 4] {
        let m: [_; 16] = std::array::from_fn(|w| load_lanes(&msg[w]));
        let mut v = state!(key, load_lanes(block_len));
        rounds!(v, m);
        let mut words = [[0u32; LANES]; 4];
        for (i, word) in words.iter_mut().enumerate() {
            store_lanes(word, xor(v[i], v[i + 8]));
        }
        words
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lanes::tests::{check_every_length, time_against_one_by_one, Path};

    fn path(path: Path, key: &[u8; 32], inputs: &[&[u8]; LANES], used: usize) -> Option<[[u8; 16]; LANES]> {
        if path == Path::Dispatch {
            return Some(keyed16(key, inputs, used));
        }
        let (k, msg, block_len) = load(key, inputs);
        match path {
            Path::Portable => Some(store(words_portable(&k, &msg, &block_len))),
            #[cfg(target_arch = "x86_64")]
            Path::Avx512 if std::arch::is_x86_feature_detected!("avx512f") => {
                // SAFETY: the CPU has AVX-512F, checked just above.
                Some(store(unsafe { avx512::words(&k, &msg, &block_len) }))
            }
            #[cfg(target_arch = "x86_64")]
            Path::Avx2 if std::arch::is_x86_feature_detected!("avx2") => {
                Some(store(words_avx2(&k, &msg, &block_len, used)))
            }
            _ => None,
        }
    }

    #[test]
    fn equals_blake3_at_every_length() {
        let key: [u8; 32] = std::array::from_fn(|i| (i * 7 + 3) as u8);
        let reference = |input: &[u8]| blake3::keyed_hash(&key, input).as_bytes()[..16].try_into().unwrap();
        check_every_length(MAX_LEN, 31, reference, |p, inputs, used| path(p, &key, inputs, used));
    }

    /// Per-input cost of the lanes against one-by-one `blake3::keyed_hash`:
    /// `cargo test --release -p leakwatch-types -- --ignored --nocapture
    /// blake3_lanes_against_one_by_one`.
    #[test]
    #[ignore = "timing"]
    fn blake3_lanes_against_one_by_one() {
        use std::hint::black_box;
        let key = [7u8; 32];
        let accounts: Vec<Vec<u8>> =
            (0..LANES * 1024).map(|i| format!("euser{}@example.com", i * 7919).into_bytes()).collect();
        let inputs: [&[u8]; LANES] = std::array::from_fn(|l| accounts[l].as_slice());
        time_against_one_by_one(
            "input",
            accounts.len(),
            |i| blake3::keyed_hash(&key, black_box(&accounts[i])).as_bytes()[0],
            &(key, inputs),
            &[
                ("portable", |(k, i)| {
                    let (k, msg, block_len) = load(k, i);
                    store(words_portable(&k, &msg, &block_len))[0][0]
                }),
                ("dispatch", |(k, i)| keyed16(k, i, LANES)[0][0]),
                #[cfg(target_arch = "x86_64")]
                ("avx2", |(k, i)| {
                    let (k, msg, block_len) = load(k, i);
                    store(words_avx2(&k, &msg, &block_len, LANES))[0][0]
                }),
                ("load+store only", |(k, i)| {
                    let (_, msg, _) = load(k, i);
                    store([msg[0], msg[1], msg[2], msg[3]])[0][0]
                }),
            ],
        );
    }
}
