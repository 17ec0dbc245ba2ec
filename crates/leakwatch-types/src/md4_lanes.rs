//! MD4 of eight one-block messages at once.
//!
//! Ingest computes one NTLM digest per plaintext password, MD4 of its UTF-16LE
//! text, and a password is short: an ASCII one of up to 27 characters widens to
//! at most 54 bytes, one 64-byte block with MD4's padding, so a single call of
//! the compression function. MD4 is a chain of 48 dependent 32-bit steps, too
//! serial for SIMD within one message; here the same steps run on eight
//! messages side by side, one per lane: one AVX2 register holds a state word
//! (or message word) of all eight (the portable path, one lane after the
//! other, is the fallback and the reference). The output is MD4's, bit for
//! bit: the tests compare it with `md4::Md4::digest` at every length.

/// MD4's initial state (RFC 1320, 3.3).
const INIT: [u32; 4] = [0x6745_2301, 0xEFCD_AB89, 0x98BA_DCFE, 0x1032_5476];
/// The additive constants of rounds 2 and 3 (round 1 has none).
const K2: u32 = 0x5A82_7999;
const K3: u32 = 0x6ED9_EBA1;
/// The message word order of each round.
const ORDER: [[usize; 16]; 3] = [
    [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15],
    [0, 4, 8, 12, 1, 5, 9, 13, 2, 6, 10, 14, 3, 7, 11, 15],
    [0, 8, 4, 12, 2, 10, 6, 14, 1, 9, 5, 13, 3, 11, 7, 15],
];
/// Each round's left rotations, cycling with the step.
const SHIFTS: [[u32; 4]; 3] = [[3, 7, 11, 19], [3, 5, 9, 13], [3, 9, 11, 15]];

/// Messages hashed together.
pub const LANES: usize = 8;
/// The longest message one block holds with its padding.
pub const MAX_LEN: usize = 55;

pub type Lanes = [u32; LANES];

/// Word `w` of every lane's padded block.
pub type Block = [Lanes; 16];

/// MD4 of each lane's padded block (a lane never written hashes all zeros,
/// its output meaningless).
pub fn digests(block: &Block) -> [[u8; 16]; LANES] {
    #[cfg(target_arch = "x86_64")]
    {
        if std::arch::is_x86_feature_detected!("avx2") {
            // SAFETY: the CPU has AVX2, checked just above.
            return unsafe { avx2::digests(block) };
        }
    }
    digests_portable(block)
}

/// Each lane's digest from its final state words.
fn store(words: [Lanes; 4]) -> [[u8; 16]; LANES] {
    std::array::from_fn(|lane| {
        let mut digest = [0u8; 16];
        for (i, word) in words.iter().enumerate() {
            digest[4 * i..4 * i + 4].copy_from_slice(&word[lane].to_le_bytes());
        }
        digest
    })
}

/// The reference: MD4's compression, one lane at a time.
fn digests_portable(block: &Block) -> [[u8; 16]; LANES] {
    let mut words = [[0u32; LANES]; 4];
    for lane in 0..LANES {
        let m: [u32; 16] = std::array::from_fn(|w| block[w][lane]);
        let mut v = INIT;
        for (round, (order, shifts)) in ORDER.iter().zip(&SHIFTS).enumerate() {
            for (step, &w) in order.iter().enumerate() {
                // The state rotates one word per step: a, d, c, b, a, ...
                let [a, b, c, d] = [0, 1, 2, 3].map(|i| (i + 4 - step % 4) % 4);
                let (x, y, z) = (v[b], v[c], v[d]);
                let f = match round {
                    0 => (x & y) | (!x & z),
                    1 => ((x & y) | (x & z) | (y & z)).wrapping_add(K2),
                    _ => (x ^ y ^ z).wrapping_add(K3),
                };
                v[a] = v[a].wrapping_add(f).wrapping_add(m[w]).rotate_left(shifts[step % 4]);
            }
        }
        for (i, word) in words.iter_mut().enumerate() {
            word[lane] = v[i].wrapping_add(INIT[i]);
        }
    }
    store(words)
}

/// The eight lanes in AVX2 registers: one state word of every lane per register.
#[cfg(target_arch = "x86_64")]
mod avx2 {
    use std::arch::x86_64::*;

    use super::*;

    #[target_feature(enable = "avx2")]
    pub(super) fn digests(block: &Block) -> [[u8; 16]; LANES] {
        // SAFETY (loads and stores): each is of one `[u32; 8]`, 32 bytes.
        let m: [__m256i; 16] =
            std::array::from_fn(|w| unsafe { _mm256_loadu_si256(block[w].as_ptr().cast()) });
        let init = INIT.map(|x| _mm256_set1_epi32(x as i32));
        let [mut a, mut b, mut c, mut d] = init;
        // Written out step by step, with the state words renamed rather than
        // moved, so every rotation count is a constant (shifts take immediates).
        macro_rules! round {
            ($f:ident, $order:expr, $s0:literal, $s1:literal, $s2:literal, $s3:literal) => {
                let o = $order;
                for i in 0..4 {
                    a = step::<$s0, { 32 - $s0 }>(a, $f(b, c, d), m[o[4 * i]]);
                    d = step::<$s1, { 32 - $s1 }>(d, $f(a, b, c), m[o[4 * i + 1]]);
                    c = step::<$s2, { 32 - $s2 }>(c, $f(d, a, b), m[o[4 * i + 2]]);
                    b = step::<$s3, { 32 - $s3 }>(b, $f(c, d, a), m[o[4 * i + 3]]);
                }
            };
        }
        round!(f, ORDER[0], 3, 7, 11, 19);
        round!(g, ORDER[1], 3, 5, 9, 13);
        round!(h, ORDER[2], 3, 9, 11, 15);
        let mut words = [[0u32; LANES]; 4];
        for (word, (v, init)) in words.iter_mut().zip([a, b, c, d].into_iter().zip(init)) {
            unsafe { _mm256_storeu_si256(word.as_mut_ptr().cast(), _mm256_add_epi32(v, init)) };
        }
        store(words)
    }

    /// `rotl(a + f + x, L)` (`R` is `32 - L`).
    #[target_feature(enable = "avx2")]
    #[inline]
    fn step<const L: i32, const R: i32>(a: __m256i, f: __m256i, x: __m256i) -> __m256i {
        let sum = _mm256_add_epi32(_mm256_add_epi32(a, f), x);
        _mm256_or_si256(_mm256_slli_epi32::<L>(sum), _mm256_srli_epi32::<R>(sum))
    }

    /// Round 1's choice, as `z ^ (x & (y ^ z))`: one operation fewer than
    /// `(x & y) | (!x & z)`, the same bits.
    #[target_feature(enable = "avx2")]
    #[inline]
    fn f(x: __m256i, y: __m256i, z: __m256i) -> __m256i {
        _mm256_xor_si256(z, _mm256_and_si256(x, _mm256_xor_si256(y, z)))
    }

    /// Round 2's majority plus its constant, the majority as `(x & y) | (z & (x | y))`.
    #[target_feature(enable = "avx2")]
    #[inline]
    fn g(x: __m256i, y: __m256i, z: __m256i) -> __m256i {
        let maj = _mm256_or_si256(_mm256_and_si256(x, y), _mm256_and_si256(z, _mm256_or_si256(x, y)));
        _mm256_add_epi32(maj, _mm256_set1_epi32(K2 as i32))
    }

    /// Round 3's parity plus its constant.
    #[target_feature(enable = "avx2")]
    #[inline]
    fn h(x: __m256i, y: __m256i, z: __m256i) -> __m256i {
        _mm256_add_epi32(_mm256_xor_si256(_mm256_xor_si256(x, y), z), _mm256_set1_epi32(K3 as i32))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use md4::{Digest, Md4};

    /// Writes `message` (at most [`MAX_LEN`] bytes), padded as MD4 pads a whole
    /// message, into `lane` of `block`.
    fn pad_into(block: &mut Block, lane: usize, message: &[u8]) {
        assert!(message.len() <= MAX_LEN, "one block at most");
        let mut bytes = [0u8; 64];
        bytes[..message.len()].copy_from_slice(message);
        bytes[message.len()] = 0x80;
        bytes[56..].copy_from_slice(&(message.len() as u64 * 8).to_le_bytes());
        for (w, word) in bytes.chunks_exact(4).enumerate() {
            block[w][lane] = u32::from_le_bytes(word.try_into().expect("4 bytes"));
        }
    }

    fn reference(message: &[u8]) -> [u8; 16] {
        Md4::digest(message).into()
    }

    #[test]
    fn equals_md4_at_every_length() {
        let data: Vec<u8> = (0..MAX_LEN * LANES).map(|i| (i * 31 % 251) as u8).collect();
        for len in 0..=MAX_LEN {
            // Each lane a different message, and lanes of different lengths.
            let inputs: [&[u8]; LANES] = std::array::from_fn(|l| {
                let len = if l % 2 == 0 { len } else { (len + l) % (MAX_LEN + 1) };
                &data[l * MAX_LEN..l * MAX_LEN + len]
            });
            let mut block = [[0u32; LANES]; 16];
            for (lane, input) in inputs.iter().enumerate() {
                pad_into(&mut block, lane, input);
            }
            let out = digests(&block);
            for (lane, input) in inputs.iter().enumerate() {
                assert_eq!(out[lane], reference(input), "length {} lane {lane}", input.len());
            }
            assert_eq!(digests_portable(&block), out, "the vector path agrees");
        }
    }
}
