//! What the digest lanes ([`crate::md4_lanes`], [`crate::sha1_lanes`],
//! [`crate::blake3_lanes`]) have in common: sixteen messages side by side, one
//! per 32-bit lane, and the vector operations their rounds are written in.
//!
//! [`avx2`] and [`avx512`] spell the same operations under the same names, so
//! an algorithm's round macros, expanded once in each ISA's module, pick up
//! that ISA's spelling. Each operation is `#[inline]` with its ISA's target
//! features: inlined into the callers (which enable the same features), it is
//! the one or two instructions it wraps, as when the algorithms had their own.

/// Messages hashed together.
pub const LANES: usize = 16;

/// One 32-bit word of each of the [`LANES`] messages.
pub type Lanes = [u32; LANES];

/// Word `w` of every lane's padded one-block message.
pub type Block = [Lanes; 16];

/// Each lane's digest from the final state words, each word's four bytes as
/// `bytes` gives them (the algorithm's endianness). `N` is `4 * W`.
pub(crate) fn digests_of<const W: usize, const N: usize>(
    words: [Lanes; W],
    bytes: fn(u32) -> [u8; 4],
) -> [[u8; N]; LANES] {
    const { assert!(N == 4 * W, "four bytes per word") };
    std::array::from_fn(|lane| {
        let mut digest = [0u8; N];
        for (i, word) in words.iter().enumerate() {
            digest[4 * i..4 * i + 4].copy_from_slice(&bytes(word[lane]));
        }
        digest
    })
}

/// The final state words of (at least) the first `used` lanes from an AVX2
/// `words(half, &mut words)`, which computes eight lanes: run on each eight
/// that some used lane is in, so a partial group skips the second.
#[cfg(target_arch = "x86_64")]
#[inline]
pub(crate) fn by_halves<const W: usize>(
    used: usize,
    mut words: impl FnMut(usize, &mut [Lanes; W]),
) -> [Lanes; W] {
    let mut out = [[0u32; LANES]; W];
    for half in 0..used.div_ceil(8) {
        words(half, &mut out);
    }
    out
}

/// Eight lanes per register: one 32-bit word of half the lanes each.
#[cfg(target_arch = "x86_64")]
pub(crate) mod avx2 {
    use std::arch::x86_64::*;

    use super::Lanes;

    /// Lanes `8 * half..8 * half + 8` of `lanes` (`half` is 0 or 1).
    #[target_feature(enable = "avx2")]
    #[inline]
    pub(crate) fn load_lanes(lanes: &Lanes, half: usize) -> __m256i {
        let eight = &lanes[8 * half..8 * half + 8];
        // SAFETY: `eight` is eight `u32`s, the 32 bytes read (unaligned).
        unsafe { _mm256_loadu_si256(eight.as_ptr().cast()) }
    }

    /// `x` into lanes `8 * half..8 * half + 8` of `lanes` (`half` is 0 or 1).
    #[target_feature(enable = "avx2")]
    #[inline]
    pub(crate) fn store_lanes(lanes: &mut Lanes, half: usize, x: __m256i) {
        let eight = &mut lanes[8 * half..8 * half + 8];
        // SAFETY: `eight` is eight `u32`s, the 32 bytes written (unaligned).
        unsafe { _mm256_storeu_si256(eight.as_mut_ptr().cast(), x) }
    }

    #[target_feature(enable = "avx2")]
    #[inline]
    pub(crate) fn splat(x: u32) -> __m256i {
        _mm256_set1_epi32(x as i32)
    }

    /// Each 32-bit word's bytes reversed (a big-endian read).
    #[target_feature(enable = "avx2")]
    #[inline]
    pub(crate) fn bswap(x: __m256i) -> __m256i {
        let swap = _mm256_setr_epi8(
            3, 2, 1, 0, 7, 6, 5, 4, 11, 10, 9, 8, 15, 14, 13, 12, 3, 2, 1, 0, 7, 6, 5, 4, 11, 10, 9, 8, 15,
            14, 13, 12,
        );
        _mm256_shuffle_epi8(x, swap)
    }

    #[target_feature(enable = "avx2")]
    #[inline]
    pub(crate) fn add(x: __m256i, y: __m256i) -> __m256i {
        _mm256_add_epi32(x, y)
    }

    #[target_feature(enable = "avx2")]
    #[inline]
    pub(crate) fn xor(x: __m256i, y: __m256i) -> __m256i {
        _mm256_xor_si256(x, y)
    }

    /// `x ^ y ^ z` (SHA-1's and MD4's parity).
    #[target_feature(enable = "avx2")]
    #[inline]
    pub(crate) fn parity(x: __m256i, y: __m256i, z: __m256i) -> __m256i {
        _mm256_xor_si256(_mm256_xor_si256(x, y), z)
    }

    /// `a ^ b ^ c ^ d`, paired so the two halves are independent.
    #[target_feature(enable = "avx2")]
    #[inline]
    pub(crate) fn xor4(a: __m256i, b: __m256i, c: __m256i, d: __m256i) -> __m256i {
        _mm256_xor_si256(_mm256_xor_si256(a, b), _mm256_xor_si256(c, d))
    }

    /// Left rotation by `L`; `R` must be `32 - L` (two shifts, and stable
    /// Rust cannot compute one const parameter from the other).
    #[target_feature(enable = "avx2")]
    #[inline]
    pub(crate) fn rotl<const L: i32, const R: i32>(x: __m256i) -> __m256i {
        _mm256_or_si256(_mm256_slli_epi32::<L>(x), _mm256_srli_epi32::<R>(x))
    }

    /// Right rotation by `R`; `L` must be `32 - R`.
    #[target_feature(enable = "avx2")]
    #[inline]
    pub(crate) fn rotr<const R: i32, const L: i32>(x: __m256i) -> __m256i {
        _mm256_or_si256(_mm256_srli_epi32::<R>(x), _mm256_slli_epi32::<L>(x))
    }

    /// `x ? y : z` bit by bit, as `z ^ (x & (y ^ z))`: one operation fewer
    /// than `(x & y) | (!x & z)`, the same bits.
    #[target_feature(enable = "avx2")]
    #[inline]
    pub(crate) fn ch(x: __m256i, y: __m256i, z: __m256i) -> __m256i {
        _mm256_xor_si256(z, _mm256_and_si256(x, _mm256_xor_si256(y, z)))
    }

    /// The bitwise majority, as `(x & y) | (z & (x | y))`.
    #[target_feature(enable = "avx2")]
    #[inline]
    pub(crate) fn maj(x: __m256i, y: __m256i, z: __m256i) -> __m256i {
        _mm256_or_si256(_mm256_and_si256(x, y), _mm256_and_si256(z, _mm256_or_si256(x, y)))
    }
}

/// All sixteen lanes per register, where rotations and three-input functions
/// are one instruction each.
#[cfg(target_arch = "x86_64")]
pub(crate) mod avx512 {
    use std::arch::x86_64::*;

    use super::Lanes;

    #[target_feature(enable = "avx512f")]
    #[inline]
    pub(crate) fn load_lanes(lanes: &Lanes) -> __m512i {
        // SAFETY: `lanes` is sixteen `u32`s, the 64 bytes read (unaligned).
        unsafe { _mm512_loadu_si512(lanes.as_ptr().cast()) }
    }

    #[target_feature(enable = "avx512f")]
    #[inline]
    pub(crate) fn store_lanes(lanes: &mut Lanes, x: __m512i) {
        // SAFETY: `lanes` is sixteen `u32`s, the 64 bytes written (unaligned).
        unsafe { _mm512_storeu_si512(lanes.as_mut_ptr().cast(), x) }
    }

    #[target_feature(enable = "avx512f")]
    #[inline]
    pub(crate) fn splat(x: u32) -> __m512i {
        _mm512_set1_epi32(x as i32)
    }

    /// Each 32-bit word's bytes reversed (a big-endian read); the byte
    /// shuffle is AVX-512BW's.
    #[target_feature(enable = "avx512f,avx512bw")]
    #[inline]
    pub(crate) fn bswap(x: __m512i) -> __m512i {
        let swap =
            _mm512_broadcast_i32x4(_mm_setr_epi8(3, 2, 1, 0, 7, 6, 5, 4, 11, 10, 9, 8, 15, 14, 13, 12));
        _mm512_shuffle_epi8(x, swap)
    }

    #[target_feature(enable = "avx512f")]
    #[inline]
    pub(crate) fn add(x: __m512i, y: __m512i) -> __m512i {
        _mm512_add_epi32(x, y)
    }

    #[target_feature(enable = "avx512f")]
    #[inline]
    pub(crate) fn xor(x: __m512i, y: __m512i) -> __m512i {
        _mm512_xor_si512(x, y)
    }

    /// `x ^ y ^ z` (truth table 0x96).
    #[target_feature(enable = "avx512f")]
    #[inline]
    pub(crate) fn parity(x: __m512i, y: __m512i, z: __m512i) -> __m512i {
        _mm512_ternarylogic_epi32::<0x96>(x, y, z)
    }

    #[target_feature(enable = "avx512f")]
    #[inline]
    pub(crate) fn xor4(a: __m512i, b: __m512i, c: __m512i, d: __m512i) -> __m512i {
        _mm512_xor_si512(_mm512_ternarylogic_epi32::<0x96>(a, b, c), d)
    }

    /// Left rotation by `L` (`R`, `32 - L`, is for the AVX2 spelling only).
    #[target_feature(enable = "avx512f")]
    #[inline]
    pub(crate) fn rotl<const L: i32, const R: i32>(x: __m512i) -> __m512i {
        _mm512_rol_epi32::<L>(x)
    }

    /// Right rotation by `R` (`L`, `32 - R`, is for the AVX2 spelling only).
    #[target_feature(enable = "avx512f")]
    #[inline]
    pub(crate) fn rotr<const R: i32, const L: i32>(x: __m512i) -> __m512i {
        _mm512_ror_epi32::<R>(x)
    }

    /// `x ? y : z` bit by bit (truth table 0xCA).
    #[target_feature(enable = "avx512f")]
    #[inline]
    pub(crate) fn ch(x: __m512i, y: __m512i, z: __m512i) -> __m512i {
        _mm512_ternarylogic_epi32::<0xCA>(x, y, z)
    }

    /// The bitwise majority (truth table 0xE8).
    #[target_feature(enable = "avx512f")]
    #[inline]
    pub(crate) fn maj(x: __m512i, y: __m512i, z: __m512i) -> __m512i {
        _mm512_ternarylogic_epi32::<0xE8>(x, y, z)
    }
}

/// The test harness the three algorithms share: every length, every count of
/// lanes, each vector path against the portable one and against a reference
/// implementation; and the timing against one-by-one hashing.
#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A way `digests` can compute the lanes.
    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    pub(crate) enum Path {
        /// Whichever the runtime dispatch picks.
        Dispatch,
        Portable,
        Avx512,
        Avx2,
    }

    /// A block of `messages` (at most [`LANES`], each at most 55 bytes), one
    /// a lane, each padded as MD4 and SHA-1 pad a whole message (0x80, zeros,
    /// the bit length in the last eight bytes as `length` gives them), each
    /// word's four bytes read little-endian.
    pub(crate) fn padded(messages: &[impl AsRef<[u8]>], length: fn(u64) -> [u8; 8]) -> Block {
        assert!(messages.len() <= LANES);
        let mut block = [[0u32; LANES]; 16];
        for (lane, message) in messages.iter().enumerate() {
            let message = message.as_ref();
            assert!(message.len() <= 55, "one block at most");
            let mut bytes = [0u8; 64];
            bytes[..message.len()].copy_from_slice(message);
            bytes[message.len()] = 0x80;
            bytes[56..].copy_from_slice(&length(message.len() as u64 * 8));
            for (w, word) in bytes.chunks_exact(4).enumerate() {
                block[w][lane] = u32::from_le_bytes(word.try_into().expect("4 bytes"));
            }
        }
        block
    }

    /// For every length up to `max_len`, sixteen different inputs (odd lanes
    /// of other lengths, all 256 byte values, `mul` varying the data): the
    /// dispatched path equals `reference` in every lane, the portable and
    /// AVX-512 paths equal it, and the dispatched and AVX2 paths agree for
    /// every count of lanes used (a partial group skips a half). `hash`
    /// returns `None` for a path the CPU lacks.
    pub(crate) fn check_every_length<const N: usize>(
        max_len: usize,
        mul: usize,
        reference: impl Fn(&[u8]) -> [u8; N],
        hash: impl Fn(Path, &[&[u8]; LANES], usize) -> Option<[[u8; N]; LANES]>,
    ) {
        let data: Vec<u8> = (0..max_len * LANES).map(|i| (i * mul % 256) as u8).collect();
        for len in 0..=max_len {
            let inputs: [&[u8]; LANES] = std::array::from_fn(|l| {
                let len = if l % 2 == 0 { len } else { (len + l) % (max_len + 1) };
                &data[l * max_len..l * max_len + len]
            });
            let out = hash(Path::Dispatch, &inputs, LANES).expect("dispatch always runs");
            for (lane, input) in inputs.iter().enumerate() {
                assert_eq!(out[lane], reference(input), "length {} lane {lane}", input.len());
            }
            for path in [Path::Portable, Path::Avx512] {
                if let Some(got) = hash(path, &inputs, LANES) {
                    assert_eq!(got, out, "the {path:?} path agrees, length {len}");
                }
            }
            for path in [Path::Dispatch, Path::Avx2] {
                for used in 1..=LANES {
                    if let Some(got) = hash(path, &inputs, used) {
                        assert_eq!(got[..used], out[..used], "the {path:?} path agrees, {used} lanes");
                    }
                }
            }
        }
    }

    /// A path for [`time_against_one_by_one`]: its name, and a byte of its
    /// output on the input.
    pub(crate) type Timed<I> = (&'static str, fn(&I) -> u8);

    /// Prints, three times, the per-item cost of `one(i)` for each of `count`
    /// items and of each path on `input` (one group of [`LANES`]), run
    /// `count / LANES` times. Each returns a byte of its output, folded into
    /// the printed checksum so nothing is optimized away; the paths are plain
    /// `fn`s (no closure to inline into one and not the other), so the times
    /// compare.
    pub(crate) fn time_against_one_by_one<I>(
        unit: &str,
        count: usize,
        one: impl Fn(usize) -> u8,
        input: &I,
        paths: &[Timed<I>],
    ) {
        use std::hint::black_box;
        use std::time::Instant;
        for round in 0..3 {
            let start = Instant::now();
            let mut x = 0u8;
            for i in 0..count {
                x ^= one(i);
            }
            let one = start.elapsed().as_nanos() as f64 / count as f64;
            let mut per = Vec::new();
            for (name, f) in paths {
                let start = Instant::now();
                for _ in 0..count / LANES {
                    x ^= f(black_box(input));
                }
                per.push(format!("{name} {:.1} ns", start.elapsed().as_nanos() as f64 / count as f64));
            }
            println!("round {round}: one by one {one:.1} ns/{unit}; lanes {} ({x})", per.join(", "));
        }
    }
}
