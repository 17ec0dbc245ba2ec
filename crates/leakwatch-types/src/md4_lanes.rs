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

use crate::lanes::digests_of;
pub use crate::lanes::{Block, Lanes, LANES};

/// The longest message one block holds with its padding.
pub const MAX_LEN: usize = 55;

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
    // SAFETY: the CPU has AVX2, asserted just above.
    crate::lanes::by_halves(used, |half, words| unsafe { avx2::words(block, half, words) })
}

/// Each lane's digest from its final state words, MD4's little-endian.
fn store(words: [Lanes; 4]) -> [[u8; 16]; LANES] {
    digests_of(words, u32::to_le_bytes)
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

/// All 48 steps in the calling module's vector operations ([`crate::lanes`]'
/// `add`, `rotl`, `ch`, `maj`, `parity`), written out with the state words
/// renamed rather than moved, so every rotation count is a constant
/// (rotations take immediates). `$k2` and `$k3` are rounds 2 and 3's constants
/// splatted; round 1 adds none.
macro_rules! rounds {
    ($m:ident, $k2:ident, $k3:ident, $a:ident, $b:ident, $c:ident, $d:ident) => {
        round!($m, ch, ORDER[0], 3, 7, 11, 19, $a, $b, $c, $d);
        round!($m, maj, ORDER[1], 3, 5, 9, 13, $a, $b, $c, $d, $k2);
        round!($m, parity, ORDER[2], 3, 9, 11, 15, $a, $b, $c, $d, $k3);
    };
}

/// One round of 16 steps with function `$f` (plus the round's constant `$k`,
/// if any), message order `$order` and the rotations `$s0`-`$s3` (each also
/// given as `32 - s` for AVX2's shifts).
macro_rules! round {
    ($m:ident, $f:ident, $order:expr, $s0:literal, $s1:literal, $s2:literal, $s3:literal,
     $a:ident, $b:ident, $c:ident, $d:ident $(, $k:ident)?) => {
        let o = $order;
        for i in 0..4 {
            $a = step!($a, $f($b, $c, $d) $(, $k)?, $m[o[4 * i]], $s0);
            $d = step!($d, $f($a, $b, $c) $(, $k)?, $m[o[4 * i + 1]], $s1);
            $c = step!($c, $f($d, $a, $b) $(, $k)?, $m[o[4 * i + 2]], $s2);
            $b = step!($b, $f($c, $d, $a) $(, $k)?, $m[o[4 * i + 3]], $s3);
        }
    };
}

/// `rotl(a + f (+ k) + x, s)`, the sums in the order MD4 writes them.
macro_rules! step {
    ($a:expr, $f:expr, $x:expr, $s:literal) => {
        rotl::<$s, { 32 - $s }>(add(add($a, $f), $x))
    };
    ($a:expr, $f:expr, $k:ident, $x:expr, $s:literal) => {
        rotl::<$s, { 32 - $s }>(add(add($a, add($f, $k)), $x))
    };
}

/// Eight lanes per AVX2 register: one state word of half the lanes each.
#[cfg(target_arch = "x86_64")]
mod avx2 {
    use crate::lanes::avx2::*;

    use super::*;

    /// The final state words of lanes `8 * half..8 * half + 8`, into `words`.
    #[target_feature(enable = "avx2")]
    pub(super) fn words(block: &Block, half: usize, words: &mut [Lanes; 4]) {
        let m: [_; 16] = std::array::from_fn(|w| load_lanes(&block[w], half));
        let init = INIT.map(|x| splat(x));
        let (k2, k3) = (splat(K2), splat(K3));
        let [mut a, mut b, mut c, mut d] = init;
        rounds!(m, k2, k3, a, b, c, d);
        for (word, (v, init)) in words.iter_mut().zip([a, b, c, d].into_iter().zip(init)) {
            store_lanes(word, half, add(v, init));
        }
    }
}

/// All sixteen lanes per AVX-512 register, where rotations and three-input
/// functions are one instruction each.
#[cfg(target_arch = "x86_64")]
mod avx512 {
    use crate::lanes::avx512::*;

    use super::*;

    #[target_feature(enable = "avx512f")]
    pub(super) fn words(block: &Block) -> [Lanes; 4] {
        let m: [_; 16] = std::array::from_fn(|w| load_lanes(&block[w]));
        let init = INIT.map(|x| splat(x));
        let (k2, k3) = (splat(K2), splat(K3));
        let [mut a, mut b, mut c, mut d] = init;
        rounds!(m, k2, k3, a, b, c, d);
        let mut words = [[0u32; LANES]; 4];
        for (word, (v, init)) in words.iter_mut().zip([a, b, c, d].into_iter().zip(init)) {
            store_lanes(word, add(v, init));
        }
        words
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lanes::tests::{check_every_length, padded, time_against_one_by_one, Path};
    use md4::{Digest, Md4};

    fn path(path: Path, block: &Block, used: usize) -> Option<[[u8; 16]; LANES]> {
        match path {
            Path::Dispatch => Some(digests(block, used)),
            Path::Portable => Some(store(words_portable(block))),
            #[cfg(target_arch = "x86_64")]
            Path::Avx512 if std::arch::is_x86_feature_detected!("avx512f") => {
                // SAFETY: the CPU has AVX-512F, checked just above.
                Some(store(unsafe { avx512::words(block) }))
            }
            #[cfg(target_arch = "x86_64")]
            Path::Avx2 if std::arch::is_x86_feature_detected!("avx2") => Some(store(words_avx2(block, used))),
            _ => None,
        }
    }

    #[test]
    fn equals_md4_at_every_length() {
        let reference = |message: &[u8]| Md4::digest(message).into();
        check_every_length(MAX_LEN, 31, reference, |p, inputs, used| {
            path(p, &padded(inputs, u64::to_le_bytes), used)
        });
    }

    /// Per-password cost of the lanes against one-by-one NTLM: `cargo test
    /// --release -p leakwatch-types -- --ignored --nocapture
    /// md4_lanes_against_one_by_one`.
    #[test]
    #[ignore = "timing"]
    fn md4_lanes_against_one_by_one() {
        use std::hint::black_box;
        let passwords: Vec<Vec<u8>> =
            (0..LANES * 1024).map(|i| format!("password{}", i * 7919).into_bytes()).collect();
        let utf16: Vec<Vec<u8>> =
            passwords[..LANES].iter().map(|p| p.iter().flat_map(|&b| [b, 0]).collect()).collect();
        let block = padded(&utf16, u64::to_le_bytes);
        time_against_one_by_one(
            "password",
            passwords.len(),
            |i| crate::hash::ntlm(black_box(&passwords[i]))[0],
            &block,
            &[
                ("portable", |b| store(words_portable(b))[0][0]),
                ("dispatch", |b| digests(b, LANES)[0][0]),
                #[cfg(target_arch = "x86_64")]
                ("avx2", |b| store(words_avx2(b, LANES))[0][0]),
            ],
        );
    }
}
