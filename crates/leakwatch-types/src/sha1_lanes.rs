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

use crate::lanes::digests_of;
pub use crate::lanes::{Lanes, LANES};

/// The longest message one block holds with its padding.
pub const MAX_LEN: usize = 55;

/// Word `w` of every lane's padded block, its four bytes in message order
/// read as a little-endian `u32`: a plain copy of the bytes, which SHA-1
/// reads big-endian (the hashing swaps them, sixteen lanes per instruction).
pub type Block = crate::lanes::Block;

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
    // SAFETY: the CPU has AVX2, asserted just above.
    crate::lanes::by_halves(used, |half, words| unsafe { avx2::words(block, half, words) })
}

/// Each lane's digest from its final state words, SHA-1's big-endian.
fn store(words: [Lanes; 5]) -> [[u8; 20]; LANES] {
    digests_of(words, u32::to_be_bytes)
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
    use crate::lanes::avx2::*;

    use super::*;

    /// The final state words of lanes `8 * half..8 * half + 8`, into `words`.
    #[target_feature(enable = "avx2")]
    pub(super) fn words(block: &Block, half: usize, words: &mut [Lanes; 5]) {
        let mut w: [_; 16] = std::array::from_fn(|i| bswap(load_lanes(&block[i], half)));
        let init = INIT.map(|x| splat(x));
        let k = K.map(|x| splat(x));
        let [mut a, mut b, mut c, mut d, mut e] = init;
        rounds!(w, k, a, b, c, d, e);
        for (word, (v, init)) in words.iter_mut().zip([a, b, c, d, e].into_iter().zip(init)) {
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

    #[target_feature(enable = "avx512f,avx512bw")]
    pub(super) fn words(block: &Block) -> [Lanes; 5] {
        let mut w: [_; 16] = std::array::from_fn(|i| bswap(load_lanes(&block[i])));
        let init = INIT.map(|x| splat(x));
        let k = K.map(|x| splat(x));
        let [mut a, mut b, mut c, mut d, mut e] = init;
        rounds!(w, k, a, b, c, d, e);
        let mut words = [[0u32; LANES]; 5];
        for (word, (v, init)) in words.iter_mut().zip([a, b, c, d, e].into_iter().zip(init)) {
            store_lanes(word, add(v, init));
        }
        words
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lanes::tests::{check_every_length, padded, time_against_one_by_one, Path};
    use sha1::{Digest, Sha1};

    fn path(path: Path, block: &Block, used: usize) -> Option<[[u8; 20]; LANES]> {
        match path {
            Path::Dispatch => Some(digests(block, used)),
            Path::Portable => Some(store(words_portable(block))),
            #[cfg(target_arch = "x86_64")]
            Path::Avx512
                if std::arch::is_x86_feature_detected!("avx512f")
                    && std::arch::is_x86_feature_detected!("avx512bw") =>
            {
                // SAFETY: the CPU has AVX-512F and BW, checked just above.
                Some(store(unsafe { avx512::words(block) }))
            }
            #[cfg(target_arch = "x86_64")]
            Path::Avx2 if std::arch::is_x86_feature_detected!("avx2") => Some(store(words_avx2(block, used))),
            _ => None,
        }
    }

    #[test]
    fn equals_sha1_at_every_length() {
        let reference = |message: &[u8]| Sha1::digest(message).into();
        check_every_length(MAX_LEN, 131, reference, |p, inputs, used| {
            path(p, &padded(inputs, u64::to_be_bytes), used)
        });
    }

    /// Per-password cost of the lanes against one-by-one SHA-1 (SHA-NI where
    /// the CPU has it): `cargo test --release -p leakwatch-types -- --ignored
    /// --nocapture lanes_against_one_by_one`.
    #[test]
    #[ignore = "timing"]
    fn lanes_against_one_by_one() {
        use std::hint::black_box;
        let passwords: Vec<Vec<u8>> =
            (0..LANES * 1024).map(|i| format!("password{}", i * 7919).into_bytes()).collect();
        let block = padded(&passwords[..LANES], u64::to_be_bytes);
        time_against_one_by_one(
            "password",
            passwords.len(),
            |i| crate::hash::sha1(black_box(&passwords[i]))[0],
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
