//! MD4 of sixteen one-block messages at once.
//!
//! Ingest computes one NTLM digest per plaintext password, MD4 of its UTF-16LE
//! text, and a password is short: an ASCII one of up to 27 characters widens to
//! at most 54 bytes, one 64-byte block with MD4's padding, so a single call of
//! the compression function. MD4 is a chain of 48 dependent 32-bit steps, too
//! serial for SIMD within one message; here the same steps run on sixteen
//! messages side by side, one per 32-bit lane, in one AVX-512 register per
//! state (or message) word, or two AVX2 registers where there is no AVX-512
//! (the portable path, one lane after the other, is the fallback and the
//! reference). The output is MD4's, bit for bit: the tests compare it with
//! `md4::Md4::digest` at every length.

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
pub const LANES: usize = 16;
/// The longest message one block holds with its padding.
pub const MAX_LEN: usize = 55;

pub type Lanes = [u32; LANES];

/// Word `w` of every lane's padded block.
pub type Block = [Lanes; 16];

/// MD4 of the padded block of each of the first `used` lanes (the rest are
/// hashed or not, their output meaningless).
pub fn digests(block: &Block, used: usize) -> [[u8; 16]; LANES] {
    #[cfg(target_arch = "x86_64")]
    {
        if std::arch::is_x86_feature_detected!("avx512f") {
            // SAFETY: the CPU has AVX-512F, checked just above.
            return store(unsafe { avx512::words(block) });
        }
        if std::arch::is_x86_feature_detected!("avx2") {
            return store(words_avx2(block, used));
        }
    }
    let _ = used;
    store(words_portable(block))
}

/// The final state words of (at least) the first `used` lanes, eight at a
/// time, skipping a second eight that no lane of uses.
#[cfg(target_arch = "x86_64")]
fn words_avx2(block: &Block, used: usize) -> [Lanes; 4] {
    assert!(std::arch::is_x86_feature_detected!("avx2"));
    let mut words = [[0u32; LANES]; 4];
    for half in 0..used.div_ceil(8) {
        // SAFETY: the CPU has AVX2, asserted just above.
        unsafe { avx2::words(block, half, &mut words) };
    }
    words
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
fn words_portable(block: &Block) -> [Lanes; 4] {
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
    words
}

/// All 48 steps in the calling module's vector operations (`step`, `f`, `g`,
/// `h`), written out with the state words renamed rather than moved, so every
/// rotation count is a constant (rotations take immediates).
macro_rules! rounds {
    ($m:ident, $a:ident, $b:ident, $c:ident, $d:ident) => {
        round!($m, f, ORDER[0], 3, 7, 11, 19, $a, $b, $c, $d);
        round!($m, g, ORDER[1], 3, 5, 9, 13, $a, $b, $c, $d);
        round!($m, h, ORDER[2], 3, 9, 11, 15, $a, $b, $c, $d);
    };
}

/// One round of 16 steps with function `$f`, message order `$order` and the
/// rotations `$s0`-`$s3` (each `step` also given `32 - s` for AVX2's shifts).
macro_rules! round {
    ($m:ident, $f:ident, $order:expr, $s0:literal, $s1:literal, $s2:literal, $s3:literal,
     $a:ident, $b:ident, $c:ident, $d:ident) => {
        let o = $order;
        for i in 0..4 {
            $a = step::<$s0, { 32 - $s0 }>($a, $f($b, $c, $d), $m[o[4 * i]]);
            $d = step::<$s1, { 32 - $s1 }>($d, $f($a, $b, $c), $m[o[4 * i + 1]]);
            $c = step::<$s2, { 32 - $s2 }>($c, $f($d, $a, $b), $m[o[4 * i + 2]]);
            $b = step::<$s3, { 32 - $s3 }>($b, $f($c, $d, $a), $m[o[4 * i + 3]]);
        }
    };
}

/// Eight lanes per AVX2 register: one state word of half the lanes each.
#[cfg(target_arch = "x86_64")]
mod avx2 {
    use std::arch::x86_64::*;

    use super::*;

    /// The final state words of lanes `8 * half..8 * half + 8`, into `words`.
    #[target_feature(enable = "avx2")]
    pub(super) fn words(block: &Block, half: usize, words: &mut [Lanes; 4]) {
        let lanes = 8 * half..8 * half + 8;
        // SAFETY (loads and stores): each is of eight `u32`s, 32 bytes, within
        // one `Lanes` (`half` is 0 or 1).
        let m: [__m256i; 16] =
            std::array::from_fn(|w| unsafe { _mm256_loadu_si256(block[w][lanes.clone()].as_ptr().cast()) });
        let init = INIT.map(|x| _mm256_set1_epi32(x as i32));
        let [mut a, mut b, mut c, mut d] = init;
        rounds!(m, a, b, c, d);
        for (word, (v, init)) in words.iter_mut().zip([a, b, c, d].into_iter().zip(init)) {
            unsafe {
                _mm256_storeu_si256(word[lanes.clone()].as_mut_ptr().cast(), _mm256_add_epi32(v, init))
            };
        }
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

/// All sixteen lanes per AVX-512 register, where rotations and three-input
/// functions are one instruction each.
#[cfg(target_arch = "x86_64")]
mod avx512 {
    use std::arch::x86_64::*;

    use super::*;

    #[target_feature(enable = "avx512f")]
    pub(super) fn words(block: &Block) -> [Lanes; 4] {
        // SAFETY (loads and stores): each is of one `Lanes`, 64 bytes.
        let m: [__m512i; 16] =
            std::array::from_fn(|w| unsafe { _mm512_loadu_si512(block[w].as_ptr().cast()) });
        let init = INIT.map(|x| _mm512_set1_epi32(x as i32));
        let [mut a, mut b, mut c, mut d] = init;
        rounds!(m, a, b, c, d);
        let mut words = [[0u32; LANES]; 4];
        for (word, (v, init)) in words.iter_mut().zip([a, b, c, d].into_iter().zip(init)) {
            unsafe { _mm512_storeu_si512(word.as_mut_ptr().cast(), _mm512_add_epi32(v, init)) };
        }
        words
    }

    /// `rotl(a + f + x, L)` (`R`, `32 - L`, is for the AVX2 spelling only).
    #[target_feature(enable = "avx512f")]
    #[inline]
    fn step<const L: i32, const R: i32>(a: __m512i, f: __m512i, x: __m512i) -> __m512i {
        _mm512_rol_epi32::<L>(_mm512_add_epi32(_mm512_add_epi32(a, f), x))
    }

    /// `x ? y : z` bit by bit (truth table 0xCA).
    #[target_feature(enable = "avx512f")]
    #[inline]
    fn f(x: __m512i, y: __m512i, z: __m512i) -> __m512i {
        _mm512_ternarylogic_epi32::<0xCA>(x, y, z)
    }

    /// Round 2's majority (truth table 0xE8) plus its constant.
    #[target_feature(enable = "avx512f")]
    #[inline]
    fn g(x: __m512i, y: __m512i, z: __m512i) -> __m512i {
        _mm512_add_epi32(_mm512_ternarylogic_epi32::<0xE8>(x, y, z), _mm512_set1_epi32(K2 as i32))
    }

    /// Round 3's parity (truth table 0x96) plus its constant.
    #[target_feature(enable = "avx512f")]
    #[inline]
    fn h(x: __m512i, y: __m512i, z: __m512i) -> __m512i {
        _mm512_add_epi32(_mm512_ternarylogic_epi32::<0x96>(x, y, z), _mm512_set1_epi32(K3 as i32))
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
        // All 256 byte values, not UTF-8 as often as not.
        let data: Vec<u8> = (0..MAX_LEN * LANES).map(|i| (i * 31 % 256) as u8).collect();
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
            let out = digests(&block, LANES);
            for (lane, input) in inputs.iter().enumerate() {
                assert_eq!(out[lane], reference(input), "length {} lane {lane}", input.len());
            }
            assert_eq!(store(words_portable(&block)), out, "the vector path agrees");
            for used in 1..=LANES {
                assert_eq!(digests(&block, used)[..used], out[..used], "{used} lanes");
            }
            // Whichever path `digests` took, the AVX-512 and AVX2 ones too, the
            // latter for every count of lanes used (a partial group skips a half).
            #[cfg(target_arch = "x86_64")]
            {
                if std::arch::is_x86_feature_detected!("avx512f") {
                    // SAFETY: the CPU has AVX-512F, checked just above.
                    assert_eq!(store(unsafe { avx512::words(&block) }), out, "the AVX-512 path agrees");
                }
                if std::arch::is_x86_feature_detected!("avx2") {
                    for used in 1..=LANES {
                        let got = store(words_avx2(&block, used));
                        assert_eq!(got[..used], out[..used], "the AVX2 path agrees, {used} lanes");
                    }
                }
            }
        }
    }

    /// Per-password cost of the lanes against one-by-one NTLM: `cargo test
    /// --release -p leakwatch-types -- --ignored --nocapture
    /// md4_lanes_against_one_by_one`.
    #[test]
    #[ignore = "timing"]
    fn md4_lanes_against_one_by_one() {
        use std::hint::black_box;
        use std::time::Instant;
        let passwords: Vec<Vec<u8>> =
            (0..LANES * 1024).map(|i| format!("password{}", i * 7919).into_bytes()).collect();
        let mut block = [[0u32; LANES]; 16];
        for (lane, p) in passwords[..LANES].iter().enumerate() {
            let utf16: Vec<u8> = p.iter().flat_map(|&b| [b, 0]).collect();
            pad_into(&mut block, lane, &utf16);
        }
        for round in 0..3 {
            let start = Instant::now();
            let mut x = 0u8;
            for p in &passwords {
                x ^= crate::hash::ntlm(black_box(p))[0];
            }
            let one = start.elapsed().as_nanos() as f64 / passwords.len() as f64;
            let groups = passwords.len() / LANES;
            let mut per = Vec::new();
            #[allow(clippy::type_complexity)]
            let paths: Vec<(&str, fn(&Block) -> [[u8; 16]; LANES])> = vec![
                ("portable", |b| store(words_portable(b))),
                ("dispatch", |b| digests(b, LANES)),
                #[cfg(target_arch = "x86_64")]
                ("avx2", |b| store(words_avx2(b, LANES))),
            ];
            for (name, f) in paths {
                let start = Instant::now();
                for _ in 0..groups {
                    x ^= f(black_box(&block))[0][0];
                }
                per.push(format!(
                    "{name} {:.1} ns",
                    start.elapsed().as_nanos() as f64 / passwords.len() as f64
                ));
            }
            println!("round {round}: one by one {one:.1} ns/password; lanes {} ({x})", per.join(", "));
        }
    }
}
