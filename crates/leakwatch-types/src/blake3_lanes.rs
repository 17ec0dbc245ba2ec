//! Keyed BLAKE3 of eight short inputs at once.
//!
//! Ingest computes one keyed hash per record (its account's index key), and an
//! account is short: with its kind tag, almost always one 64-byte block, which
//! BLAKE3 hashes with a single call of its compression function. The `blake3`
//! crate runs that one call with SIMD across the rows of a single state (its
//! multi-input `hash_many` wants whole blocks of one length); here the same
//! function runs on eight states side by side, one per lane, each with its own
//! block length: one AVX2 register holds a state word of all eight (the
//! portable path, one lane after the other, is the fallback and the reference). The output is BLAKE3's, bit for bit: the tests compare it with
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

/// Inputs hashed together.
pub const LANES: usize = 8;
/// The longest input one block holds.
pub const MAX_LEN: usize = 64;

type Lanes = [u32; LANES];

/// The first 16 bytes of `blake3::keyed_hash(key, input)` for each of up to
/// [`LANES`] inputs of at most [`MAX_LEN`] bytes (unused lanes: empty slices,
/// their outputs meaningless).
pub fn keyed16(key: &[u8; 32], inputs: &[&[u8]; LANES]) -> [[u8; 16]; LANES] {
    #[cfg(target_arch = "x86_64")]
    {
        if std::arch::is_x86_feature_detected!("avx2") {
            // SAFETY: the CPU has AVX2, checked just above.
            return unsafe { avx2::keyed16(key, inputs) };
        }
    }
    keyed16_portable(key, inputs)
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

/// Each lane's hash from its words 0..4 of `v[i] ^ v[i + 8]`.
fn store(words: [Lanes; 4]) -> [[u8; 16]; LANES] {
    std::array::from_fn(|lane| {
        let mut hash = [0u8; 16];
        for (i, word) in words.iter().enumerate() {
            hash[4 * i..4 * i + 4].copy_from_slice(&word[lane].to_le_bytes());
        }
        hash
    })
}

/// The reference: BLAKE3's compression, one lane at a time.
fn keyed16_portable(key: &[u8; 32], inputs: &[&[u8]; LANES]) -> [[u8; 16]; LANES] {
    let (key, msg, block_len) = load(key, inputs);
    let mut words = [[0u32; LANES]; 4];
    for lane in 0..LANES {
        let mut v = [0u32; 16];
        v[..8].copy_from_slice(&key);
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
    store(words)
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

/// The eight lanes in AVX2 registers: one state word of every lane per register.
#[cfg(target_arch = "x86_64")]
mod avx2 {
    use std::arch::x86_64::*;

    use super::*;

    #[target_feature(enable = "avx2")]
    pub(super) fn keyed16(key: &[u8; 32], inputs: &[&[u8]; LANES]) -> [[u8; 16]; LANES] {
        let (key, msg, block_len) = load(key, inputs);
        // SAFETY (loads and stores): each is of one `[u32; 8]`, 32 bytes.
        let m: [__m256i; 16] = std::array::from_fn(|w| unsafe { _mm256_loadu_si256(msg[w].as_ptr().cast()) });
        let mut v = [_mm256_setzero_si256(); 16];
        for i in 0..8 {
            v[i] = _mm256_set1_epi32(key[i] as i32);
        }
        for i in 0..4 {
            v[8 + i] = _mm256_set1_epi32(IV[i] as i32);
        }
        v[14] = unsafe { _mm256_loadu_si256(block_len.as_ptr().cast()) };
        v[15] = _mm256_set1_epi32((CHUNK_START | CHUNK_END | ROOT | KEYED_HASH) as i32);
        for round in &SCHEDULE {
            for (i, q) in QUARTERS.into_iter().enumerate() {
                g(&mut v, q, m[round[2 * i]], m[round[2 * i + 1]]);
            }
        }
        let mut words = [[0u32; LANES]; 4];
        for (i, word) in words.iter_mut().enumerate() {
            unsafe { _mm256_storeu_si256(word.as_mut_ptr().cast(), _mm256_xor_si256(v[i], v[i + 8])) };
        }
        store(words)
    }

    #[target_feature(enable = "avx2")]
    fn g(v: &mut [__m256i; 16], [a, b, c, d]: [usize; 4], x: __m256i, y: __m256i) {
        v[a] = _mm256_add_epi32(_mm256_add_epi32(v[a], v[b]), x);
        v[d] = rotr::<16, 16>(_mm256_xor_si256(v[d], v[a]));
        v[c] = _mm256_add_epi32(v[c], v[d]);
        v[b] = rotr::<12, 20>(_mm256_xor_si256(v[b], v[c]));
        v[a] = _mm256_add_epi32(_mm256_add_epi32(v[a], v[b]), y);
        v[d] = rotr::<8, 24>(_mm256_xor_si256(v[d], v[a]));
        v[c] = _mm256_add_epi32(v[c], v[d]);
        v[b] = rotr::<7, 25>(_mm256_xor_si256(v[b], v[c]));
    }

    /// Rotates every 32-bit lane right by `R` (`L` is `32 - R`).
    #[target_feature(enable = "avx2")]
    fn rotr<const R: i32, const L: i32>(x: __m256i) -> __m256i {
        _mm256_or_si256(_mm256_srli_epi32::<R>(x), _mm256_slli_epi32::<L>(x))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reference(key: &[u8; 32], input: &[u8]) -> [u8; 16] {
        blake3::keyed_hash(key, input).as_bytes()[..16].try_into().unwrap()
    }

    #[test]
    fn equals_blake3_at_every_length() {
        let key: [u8; 32] = std::array::from_fn(|i| (i * 7 + 3) as u8);
        let data: Vec<u8> = (0..MAX_LEN * LANES).map(|i| (i * 31 % 251) as u8).collect();
        for len in 0..=MAX_LEN {
            // Each lane a different input, and lanes of different lengths.
            let inputs: [&[u8]; LANES] = std::array::from_fn(|l| {
                let len = if l % 2 == 0 { len } else { (len + l) % (MAX_LEN + 1) };
                &data[l * MAX_LEN..l * MAX_LEN + len]
            });
            let out = keyed16(&key, &inputs);
            for (lane, input) in inputs.iter().enumerate() {
                assert_eq!(out[lane], reference(&key, input), "length {} lane {lane}", input.len());
            }
            assert_eq!(keyed16_portable(&key, &inputs), out, "the vector path agrees");
        }
    }
}
