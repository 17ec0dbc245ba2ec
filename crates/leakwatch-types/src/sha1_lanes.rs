//! SHA-1 of sixteen one-block messages at once.
//!
//! Ingest computes one SHA-1 per plaintext password, and a password is short:
//! up to 55 bytes and SHA-1's padding fill one 64-byte block, so a single call
//! of the compression function. SHA-NI runs that call in dedicated hardware,
//! but one message at a time, each of its 80 steps waiting on the last; here
//! the same steps run on sixteen messages side by side, one per 32-bit lane,
//! in one AVX-512 register per state (or message) word, or two AVX2 registers
//! where there is no AVX-512 (the portable path, one lane after the other, is
//! the fallback and the reference). The output is SHA-1's, bit for bit: the
//! tests compare it with `sha1::Sha1::digest` at every length.

/// SHA-1's initial state (FIPS 180-4, 5.3.1).
const INIT: [u32; 5] = [0x6745_2301, 0xEFCD_AB89, 0x98BA_DCFE, 0x1032_5476, 0xC3D2_E1F0];
/// The additive constant of each group of 20 steps.
const K: [u32; 4] = [0x5A82_7999, 0x6ED9_EBA1, 0x8F1B_BCDC, 0xCA62_C1D6];

/// Messages hashed together.
pub const LANES: usize = 16;
/// The longest message one block holds with its padding.
pub const MAX_LEN: usize = 55;

pub type Lanes = [u32; LANES];

/// Word `w` of every lane's padded block, its four bytes in message order
/// read as a little-endian `u32`: a plain copy of the bytes, which SHA-1
/// reads big-endian (the hashing swaps them, sixteen lanes per instruction).
pub type Block = [Lanes; 16];

/// SHA-1 of the padded block of each of the first `used` lanes (the rest are
/// hashed or not, their output meaningless).
pub fn digests(block: &Block, used: usize) -> [[u8; 20]; LANES] {
    #[cfg(target_arch = "x86_64")]
    {
        if std::arch::is_x86_feature_detected!("avx512f") && std::arch::is_x86_feature_detected!("avx512bw") {
            // SAFETY: the CPU has AVX-512F and BW, checked just above.
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
fn words_avx2(block: &Block, used: usize) -> [Lanes; 5] {
    assert!(std::arch::is_x86_feature_detected!("avx2"));
    let mut words = [[0u32; LANES]; 5];
    for half in 0..used.div_ceil(8) {
        // SAFETY: the CPU has AVX2, asserted just above.
        unsafe { avx2::words(block, half, &mut words) };
    }
    words
}

/// Each lane's digest from its final state words.
fn store(words: [Lanes; 5]) -> [[u8; 20]; LANES] {
    std::array::from_fn(|lane| {
        let mut digest = [0u8; 20];
        for (i, word) in words.iter().enumerate() {
            digest[4 * i..4 * i + 4].copy_from_slice(&word[lane].to_be_bytes());
        }
        digest
    })
}

/// The reference: SHA-1's compression, one lane at a time.
fn words_portable(block: &Block) -> [Lanes; 5] {
    let mut words = [[0u32; LANES]; 5];
    for lane in 0..LANES {
        let mut w: [u32; 80] = [0; 80];
        for t in 0..80 {
            w[t] = match t {
                0..16 => block[t][lane].swap_bytes(),
                _ => (w[t - 3] ^ w[t - 8] ^ w[t - 14] ^ w[t - 16]).rotate_left(1),
            };
        }
        let [mut a, mut b, mut c, mut d, mut e] = INIT;
        for (t, &x) in w.iter().enumerate() {
            let f = match t / 20 {
                0 => (b & c) | (!b & d),
                1 | 3 => b ^ c ^ d,
                _ => (b & c) | (b & d) | (c & d),
            };
            let t = a.rotate_left(5).wrapping_add(f).wrapping_add(e).wrapping_add(K[t / 20]).wrapping_add(x);
            (a, b, c, d, e) = (t, a, b.rotate_left(30), c, d);
        }
        for (word, (v, init)) in words.iter_mut().zip([a, b, c, d, e].into_iter().zip(INIT)) {
            word[lane] = v.wrapping_add(init);
        }
    }
    words
}

/// One step of SHA-1 at `$t` (a literal), in the calling module's vector
/// operations; the state words are renamed by the caller rather than moved.
macro_rules! step {
    ($w:ident, $t:expr, $f:ident, $k:ident, $a:ident, $b:ident, $c:ident, $d:ident, $e:ident) => {
        // Steps 77-79's words are read by no later step: their writes are
        // dead, the compiler drops them.
        #[allow(unused_assignments)]
        let x = if $t < 16 {
            $w[$t]
        } else {
            // W[t-3], W[t-8], W[t-14], W[t-16] of a sixteen-word ring.
            let x =
                rotl::<1, 31>(xor4($w[($t + 13) % 16], $w[($t + 8) % 16], $w[($t + 2) % 16], $w[$t % 16]));
            $w[$t % 16] = x;
            x
        };
        $e = add(add($e, rotl::<5, 27>($a)), add($f($b, $c, $d), add(x, $k)));
        $b = rotl::<30, 2>($b);
    };
}

/// Five steps from `$t`, after which the names are back in place.
macro_rules! five {
    ($w:ident, $t:expr, $f:ident, $k:ident, $a:ident, $b:ident, $c:ident, $d:ident, $e:ident) => {
        step!($w, $t, $f, $k, $a, $b, $c, $d, $e);
        step!($w, $t + 1, $f, $k, $e, $a, $b, $c, $d);
        step!($w, $t + 2, $f, $k, $d, $e, $a, $b, $c);
        step!($w, $t + 3, $f, $k, $c, $d, $e, $a, $b);
        step!($w, $t + 4, $f, $k, $b, $c, $d, $e, $a);
    };
}

/// All 80 steps, written out so every message index is a constant and the
/// ring stays in registers.
macro_rules! rounds {
    ($w:ident, $k:ident, $a:ident, $b:ident, $c:ident, $d:ident, $e:ident) => {
        let k0 = $k[0];
        five!($w, 0, ch, k0, $a, $b, $c, $d, $e);
        five!($w, 5, ch, k0, $a, $b, $c, $d, $e);
        five!($w, 10, ch, k0, $a, $b, $c, $d, $e);
        five!($w, 15, ch, k0, $a, $b, $c, $d, $e);
        let k1 = $k[1];
        five!($w, 20, parity, k1, $a, $b, $c, $d, $e);
        five!($w, 25, parity, k1, $a, $b, $c, $d, $e);
        five!($w, 30, parity, k1, $a, $b, $c, $d, $e);
        five!($w, 35, parity, k1, $a, $b, $c, $d, $e);
        let k2 = $k[2];
        five!($w, 40, maj, k2, $a, $b, $c, $d, $e);
        five!($w, 45, maj, k2, $a, $b, $c, $d, $e);
        five!($w, 50, maj, k2, $a, $b, $c, $d, $e);
        five!($w, 55, maj, k2, $a, $b, $c, $d, $e);
        let k3 = $k[3];
        five!($w, 60, parity, k3, $a, $b, $c, $d, $e);
        five!($w, 65, parity, k3, $a, $b, $c, $d, $e);
        five!($w, 70, parity, k3, $a, $b, $c, $d, $e);
        five!($w, 75, parity, k3, $a, $b, $c, $d, $e);
    };
}

/// Eight lanes per AVX2 register: one state word of half the lanes each.
#[cfg(target_arch = "x86_64")]
mod avx2 {
    use std::arch::x86_64::*;

    use super::*;

    /// The final state words of lanes `8 * half..8 * half + 8`, into `words`.
    #[target_feature(enable = "avx2")]
    pub(super) fn words(block: &Block, half: usize, words: &mut [Lanes; 5]) {
        let swap = _mm256_setr_epi8(
            3, 2, 1, 0, 7, 6, 5, 4, 11, 10, 9, 8, 15, 14, 13, 12, 3, 2, 1, 0, 7, 6, 5, 4, 11, 10, 9, 8, 15,
            14, 13, 12,
        );
        let lanes = 8 * half..8 * half + 8;
        // SAFETY (loads and stores): each is of eight `u32`s, 32 bytes, within
        // one `Lanes` (`half` is 0 or 1).
        let mut w: [__m256i; 16] = std::array::from_fn(|i| {
            _mm256_shuffle_epi8(unsafe { _mm256_loadu_si256(block[i][lanes.clone()].as_ptr().cast()) }, swap)
        });
        let init = INIT.map(|x| _mm256_set1_epi32(x as i32));
        let k = K.map(|x| _mm256_set1_epi32(x as i32));
        let [mut a, mut b, mut c, mut d, mut e] = init;
        rounds!(w, k, a, b, c, d, e);
        for (word, (v, init)) in words.iter_mut().zip([a, b, c, d, e].into_iter().zip(init)) {
            unsafe {
                _mm256_storeu_si256(word[lanes.clone()].as_mut_ptr().cast(), _mm256_add_epi32(v, init))
            };
        }
    }

    #[target_feature(enable = "avx2")]
    #[inline]
    fn add(x: __m256i, y: __m256i) -> __m256i {
        _mm256_add_epi32(x, y)
    }

    #[target_feature(enable = "avx2")]
    #[inline]
    fn xor4(a: __m256i, b: __m256i, c: __m256i, d: __m256i) -> __m256i {
        _mm256_xor_si256(_mm256_xor_si256(a, b), _mm256_xor_si256(c, d))
    }

    /// Left rotation by `L` (`R` is `32 - L`).
    #[target_feature(enable = "avx2")]
    #[inline]
    fn rotl<const L: i32, const R: i32>(x: __m256i) -> __m256i {
        _mm256_or_si256(_mm256_slli_epi32::<L>(x), _mm256_srli_epi32::<R>(x))
    }

    /// Steps 0-19's choice, as `z ^ (x & (y ^ z))`: one operation fewer than
    /// `(x & y) | (!x & z)`, the same bits.
    #[target_feature(enable = "avx2")]
    #[inline]
    fn ch(x: __m256i, y: __m256i, z: __m256i) -> __m256i {
        _mm256_xor_si256(z, _mm256_and_si256(x, _mm256_xor_si256(y, z)))
    }

    #[target_feature(enable = "avx2")]
    #[inline]
    fn parity(x: __m256i, y: __m256i, z: __m256i) -> __m256i {
        _mm256_xor_si256(_mm256_xor_si256(x, y), z)
    }

    /// Steps 40-59's majority, as `(x & y) | (z & (x | y))`.
    #[target_feature(enable = "avx2")]
    #[inline]
    fn maj(x: __m256i, y: __m256i, z: __m256i) -> __m256i {
        _mm256_or_si256(_mm256_and_si256(x, y), _mm256_and_si256(z, _mm256_or_si256(x, y)))
    }
}

/// All sixteen lanes per AVX-512 register, where rotations and three-input
/// functions are one instruction each.
#[cfg(target_arch = "x86_64")]
mod avx512 {
    use std::arch::x86_64::*;

    use super::*;

    #[target_feature(enable = "avx512f,avx512bw")]
    pub(super) fn words(block: &Block) -> [Lanes; 5] {
        let swap =
            _mm512_broadcast_i32x4(_mm_setr_epi8(3, 2, 1, 0, 7, 6, 5, 4, 11, 10, 9, 8, 15, 14, 13, 12));
        // SAFETY (loads and stores): each is of one `Lanes`, 64 bytes.
        let mut w: [__m512i; 16] = std::array::from_fn(|i| {
            _mm512_shuffle_epi8(unsafe { _mm512_loadu_si512(block[i].as_ptr().cast()) }, swap)
        });
        let init = INIT.map(|x| _mm512_set1_epi32(x as i32));
        let k = K.map(|x| _mm512_set1_epi32(x as i32));
        let [mut a, mut b, mut c, mut d, mut e] = init;
        rounds!(w, k, a, b, c, d, e);
        let mut words = [[0u32; LANES]; 5];
        for (word, (v, init)) in words.iter_mut().zip([a, b, c, d, e].into_iter().zip(init)) {
            unsafe { _mm512_storeu_si512(word.as_mut_ptr().cast(), _mm512_add_epi32(v, init)) };
        }
        words
    }

    #[target_feature(enable = "avx512f")]
    #[inline]
    fn add(x: __m512i, y: __m512i) -> __m512i {
        _mm512_add_epi32(x, y)
    }

    #[target_feature(enable = "avx512f")]
    #[inline]
    fn xor4(a: __m512i, b: __m512i, c: __m512i, d: __m512i) -> __m512i {
        _mm512_xor_si512(_mm512_ternarylogic_epi32::<0x96>(a, b, c), d)
    }

    /// Left rotation by `L` (`R`, `32 - L`, is for the AVX2 spelling only).
    #[target_feature(enable = "avx512f")]
    #[inline]
    fn rotl<const L: i32, const R: i32>(x: __m512i) -> __m512i {
        _mm512_rol_epi32::<L>(x)
    }

    /// `x ? y : z` bit by bit (truth table 0xCA).
    #[target_feature(enable = "avx512f")]
    #[inline]
    fn ch(x: __m512i, y: __m512i, z: __m512i) -> __m512i {
        _mm512_ternarylogic_epi32::<0xCA>(x, y, z)
    }

    #[target_feature(enable = "avx512f")]
    #[inline]
    fn parity(x: __m512i, y: __m512i, z: __m512i) -> __m512i {
        _mm512_ternarylogic_epi32::<0x96>(x, y, z)
    }

    #[target_feature(enable = "avx512f")]
    #[inline]
    fn maj(x: __m512i, y: __m512i, z: __m512i) -> __m512i {
        _mm512_ternarylogic_epi32::<0xE8>(x, y, z)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sha1::{Digest, Sha1};

    /// Writes `message` (at most [`MAX_LEN`] bytes), padded as SHA-1 pads a
    /// whole message, into `lane` of `block`.
    fn pad_into(block: &mut Block, lane: usize, message: &[u8]) {
        assert!(message.len() <= MAX_LEN, "one block at most");
        let mut bytes = [0u8; 64];
        bytes[..message.len()].copy_from_slice(message);
        bytes[message.len()] = 0x80;
        bytes[56..].copy_from_slice(&(message.len() as u64 * 8).to_be_bytes());
        for (w, word) in bytes.chunks_exact(4).enumerate() {
            block[w][lane] = u32::from_le_bytes(word.try_into().expect("4 bytes"));
        }
    }

    fn reference(message: &[u8]) -> [u8; 20] {
        Sha1::digest(message).into()
    }

    #[test]
    fn equals_sha1_at_every_length() {
        // All 256 byte values, not UTF-8 as often as not.
        let data: Vec<u8> = (0..MAX_LEN * LANES).map(|i| (i * 131 % 256) as u8).collect();
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
            // Whichever path `digests` took, the AVX2 one too, for every
            // count of lanes used (a partial group skips a half).
            #[cfg(target_arch = "x86_64")]
            if std::arch::is_x86_feature_detected!("avx2") {
                for used in 1..=LANES {
                    let got = store(words_avx2(&block, used));
                    assert_eq!(got[..used], out[..used], "the AVX2 path agrees, {used} lanes");
                }
            }
        }
    }

    /// Per-password cost of the lanes against one-by-one SHA-1 (SHA-NI where
    /// the CPU has it): `cargo test --release -p leakwatch-types -- --ignored
    /// --nocapture lanes_against_one_by_one`.
    #[test]
    #[ignore = "timing"]
    fn lanes_against_one_by_one() {
        use std::hint::black_box;
        use std::time::Instant;
        let passwords: Vec<Vec<u8>> =
            (0..LANES * 1024).map(|i| format!("password{}", i * 7919).into_bytes()).collect();
        let mut block = [[0u32; LANES]; 16];
        for (lane, p) in passwords[..LANES].iter().enumerate() {
            pad_into(&mut block, lane, p);
        }
        for round in 0..3 {
            let start = Instant::now();
            let mut x = 0u8;
            for p in &passwords {
                x ^= crate::hash::sha1(black_box(p))[0];
            }
            let one = start.elapsed().as_nanos() as f64 / passwords.len() as f64;
            let groups = passwords.len() / LANES;
            let mut per = Vec::new();
            for (name, f) in [
                ("portable", (|b: &Block| store(words_portable(b))) as fn(&Block) -> [[u8; 20]; LANES]),
                ("dispatch", |b: &Block| digests(b, LANES)),
                ("avx2", |b: &Block| store(words_avx2(b, LANES))),
            ] {
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
