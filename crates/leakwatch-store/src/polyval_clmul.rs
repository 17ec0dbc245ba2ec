//! POLYVAL (RFC 8452) of a few blocks with one reduction, for sealing short
//! payloads: the `polyval` crate reduces after every block, a chain of
//! dependent multiplies that dominates a 1-3 block payload's tag. Here
//! `Y' = (Y ^ X_1)·H^n ^ X_2·H^(n-1) ^ ... ^ X_n·H`, each product left
//! unreduced (the reduction is linear), so a payload costs one reduction and
//! its multiplies are independent. Blocks and field elements are 16 bytes
//! little-endian, as POLYVAL defines them.

/// Blocks one reduction covers: a sealed payload of at most 239 bytes plus
/// its lengths block is 16 blocks.
pub const MAX_BLOCKS: usize = 16;

/// H^1..=H^MAX_BLOCKS under POLYVAL's product (`a·b = a*b*x^-128`).
#[derive(Clone)]
pub struct Powers {
    h: [u128; MAX_BLOCKS],
}

impl Drop for Powers {
    fn drop(&mut self) {
        zeroize::Zeroize::zeroize(&mut self.h);
    }
}

impl Powers {
    /// The powers of `h`, or `None` on a CPU without PCLMULQDQ (the caller
    /// then keeps to the `polyval` crate).
    pub fn new(h: u128) -> Option<Powers> {
        #[cfg(target_arch = "x86_64")]
        if std::is_x86_feature_detected!("pclmulqdq") {
            let mut powers = Powers { h: [h; MAX_BLOCKS] };
            for i in 1..MAX_BLOCKS {
                // SAFETY: PCLMULQDQ (and SSE2, x86_64's baseline) was detected just above.
                powers.h[i] = unsafe { x86::dot(powers.h[i - 1], h) };
            }
            return Some(powers);
        }
        let _ = h;
        None
    }

    /// POLYVAL from the accumulator `acc` over `blocks` (each a 16-byte
    /// block as a little-endian integer): the accumulator after them.
    pub fn update(&self, mut acc: u128, blocks: &[u128]) -> u128 {
        for group in blocks.chunks(MAX_BLOCKS) {
            #[cfg(target_arch = "x86_64")]
            {
                // SAFETY: a `Powers` exists only where `new` detected PCLMULQDQ.
                acc = unsafe { x86::update(&self.h, acc, group) };
            }
            #[cfg(not(target_arch = "x86_64"))]
            unreachable!("no Powers without PCLMULQDQ {group:?}");
        }
        acc
    }
}

#[cfg(target_arch = "x86_64")]
mod x86 {
    use core::arch::x86_64::*;

    /// The x^-128 Montgomery reduction's constant: POLYVAL's polynomial
    /// x^128 + x^127 + x^126 + x^121 + 1, high word (RFC 8452, Gueron's GFMUL).
    const POLY_HI: i64 = 0xc200_0000_0000_0000u64 as i64;

    /// `a·b` of two field elements (for the powers).
    ///
    /// # Safety
    /// The CPU must have PCLMULQDQ.
    #[target_feature(enable = "pclmulqdq")]
    pub unsafe fn dot(a: u128, b: u128) -> u128 {
        // SAFETY: the caller guarantees PCLMULQDQ; SSE2 is x86_64's baseline.
        unsafe {
            let (a, b) = (load(a), load(b));
            let lo = _mm_clmulepi64_si128(a, b, 0x00);
            let hi = _mm_clmulepi64_si128(a, b, 0x11);
            let mid = _mm_xor_si128(_mm_clmulepi64_si128(a, b, 0x10), _mm_clmulepi64_si128(a, b, 0x01));
            store(reduce(lo, mid, hi))
        }
    }

    /// `acc` then `blocks` (at most `powers.len()` of them) through POLYVAL,
    /// with one reduction.
    ///
    /// # Safety
    /// The CPU must have PCLMULQDQ.
    #[target_feature(enable = "pclmulqdq")]
    pub unsafe fn update(powers: &[u128; super::MAX_BLOCKS], acc: u128, blocks: &[u128]) -> u128 {
        let n = blocks.len();
        let Some(first) = blocks.first() else { return acc };
        let powers = &powers[..n];
        // SAFETY: the caller guarantees PCLMULQDQ; SSE2 is x86_64's baseline.
        unsafe {
            let mut lo = _mm_setzero_si128();
            let mut mid = _mm_setzero_si128();
            let mut hi = _mm_setzero_si128();
            for (i, (&block, &h)) in blocks.iter().zip(powers.iter().rev()).enumerate() {
                let x = load(if i == 0 { acc ^ first } else { block });
                let h = load(h);
                lo = _mm_xor_si128(lo, _mm_clmulepi64_si128(x, h, 0x00));
                hi = _mm_xor_si128(hi, _mm_clmulepi64_si128(x, h, 0x11));
                mid = _mm_xor_si128(mid, _mm_clmulepi64_si128(x, h, 0x10));
                mid = _mm_xor_si128(mid, _mm_clmulepi64_si128(x, h, 0x01));
            }
            store(reduce(lo, mid, hi))
        }
    }

    /// The 256-bit product `hi:mid:lo` (mid straddling the halves) times
    /// x^-128, reduced: two folds of the low word by the polynomial.
    ///
    /// # Safety
    /// The CPU must have PCLMULQDQ (callers run only after detecting it).
    #[inline]
    #[target_feature(enable = "pclmulqdq")]
    unsafe fn reduce(lo: __m128i, mid: __m128i, hi: __m128i) -> __m128i {
        let lo = _mm_xor_si128(lo, _mm_slli_si128(mid, 8));
        let hi = _mm_xor_si128(hi, _mm_srli_si128(mid, 8));
        let poly = _mm_set_epi64x(POLY_HI, 1);
        let t = _mm_clmulepi64_si128(lo, poly, 0x10);
        let lo = _mm_xor_si128(_mm_shuffle_epi32(lo, 0x4e), t);
        let t = _mm_clmulepi64_si128(lo, poly, 0x10);
        let lo = _mm_xor_si128(_mm_shuffle_epi32(lo, 0x4e), t);
        _mm_xor_si128(lo, hi)
    }

    #[inline(always)]
    fn load(x: u128) -> __m128i {
        // SAFETY: a plain bit cast between two 16-byte values (x86_64 is little-endian).
        unsafe { core::mem::transmute::<u128, __m128i>(x) }
    }

    #[inline(always)]
    fn store(x: __m128i) -> u128 {
        // SAFETY: as in `load`.
        unsafe { core::mem::transmute::<__m128i, u128>(x) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use polyval::universal_hash::{KeyInit, UniversalHash};
    use polyval::Polyval;

    fn reference(h: u128, acc_blocks: &[u8], blocks: &[u8]) -> u128 {
        let mut p = Polyval::new(&h.to_le_bytes().into());
        p.update_padded(acc_blocks);
        p.update_padded(blocks);
        u128::from_le_bytes(p.finalize().into())
    }

    #[test]
    fn equals_the_polyval_crate() {
        let mut x = 0x0123_4567_89ab_cdefu64;
        let mut next = move || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        };
        for round in 0..200 {
            let h = (next() as u128) << 64 | next() as u128;
            let Some(powers) = Powers::new(h) else { return };
            // The state after a first block (what a seal place holds), then
            // 0..=20 more: over `MAX_BLOCKS` takes more than one reduction.
            let first: Vec<u8> = (0..16).map(|_| next() as u8).collect();
            let acc = reference(h, &first, &[]);
            for n in 0..=20 {
                let bytes: Vec<u8> = (0..16 * n).map(|_| next() as u8).collect();
                let blocks: Vec<u128> =
                    bytes.chunks(16).map(|b| u128::from_le_bytes(b.try_into().unwrap())).collect();
                let want = reference(h, &first, &bytes);
                assert_eq!(powers.update(acc, &blocks), want, "round {round}, {n} blocks");
                assert_eq!(powers.update(0, &blocks), reference(h, &[], &bytes), "from zero");
            }
        }
    }

    #[test]
    fn rfc_8452_polyval_vector() {
        // RFC 8452, Appendix A.
        let hex = |s: &str| -> Vec<u8> {
            (0..s.len()).step_by(2).map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap()).collect()
        };
        let h = u128::from_le_bytes(hex("25629347589242761d31f826ba4b757b").try_into().unwrap());
        let blocks = hex("4f4f95668c83dfb6401762bb2d01a262d1a24ddd2721d006bbe45f20d3c9f362");
        let blocks: Vec<u128> =
            blocks.chunks(16).map(|b| u128::from_le_bytes(b.try_into().unwrap())).collect();
        let Some(powers) = Powers::new(h) else { return };
        let want = u128::from_le_bytes(hex("f7a3b47b846119fae5b7866cf5e5b77e").try_into().unwrap());
        assert_eq!(powers.update(0, &blocks), want);
    }
}
