//! Bit fields for the packed layout: a writer and a reader of fields of up to
//! 56 bits, least significant bit first, and the bits of a key, most
//! significant first.

use crate::format::MAX_KEY_LEN;

/// The widest field read or written at once.
pub(crate) const FIELD: usize = 56;

/// Bits of the Elias-gamma code of `x >= 1`.
pub(crate) fn gamma_len(x: u64) -> u64 {
    2 * u64::from(63 - x.leading_zeros()) + 1
}

/// `width` (<= 57) bits of `key` from bit `start` (bit 0 the top of byte 0), as
/// the low bits of the result.
pub(crate) fn key_bits(key: &[u8], start: usize, width: usize) -> u64 {
    if width == 0 {
        return 0;
    }
    let at = start / 8;
    let window = match key.get(at..at + 8) {
        // The usual case: one fixed 8-byte load.
        Some(w) => w.try_into().expect("8 bytes"),
        None => {
            let mut window = [0u8; 8];
            let take = key.len().saturating_sub(at).min(8);
            window[..take].copy_from_slice(&key[at..at + take]);
            window
        }
    };
    let w = u64::from_be_bytes(window) << (start % 8);
    w >> (64 - width)
}

/// Sets `width` (<= 57) bits of `key` from bit `start` to `value` (whose bits
/// there are zero so far).
pub(crate) fn put_key_bits(key: &mut [u8; MAX_KEY_LEN], start: usize, width: usize, value: u64) {
    if width == 0 {
        return;
    }
    let at = start / 8;
    let shifted = (value << (64 - width)) >> (start % 8);
    match key.get_mut(at..at + 8) {
        // The usual case: one fixed 8-byte read-modify-write.
        Some(window) => {
            let w = u64::from_be_bytes((&*window).try_into().expect("8 bytes")) | shifted;
            window.copy_from_slice(&w.to_be_bytes());
        }
        None => {
            let take = MAX_KEY_LEN - at;
            for (k, b) in key[at..].iter_mut().zip(&shifted.to_be_bytes()[..take]) {
                *k |= b;
            }
        }
    }
}

/// The widths of the low part's chunks, most significant first.
pub(crate) fn low_chunks(low_bits: usize) -> impl Iterator<Item = usize> {
    let first = match low_bits % FIELD {
        0 => FIELD.min(low_bits),
        r => r,
    };
    std::iter::once(first).chain(std::iter::repeat_n(FIELD, low_bits.saturating_sub(first) / FIELD))
}

/// Appends bit fields to a byte buffer, least significant bit first.
#[derive(Default)]
pub(crate) struct BitWriter {
    /// Whole 64-bit words written so far (the rest waits in `acc`).
    pub bytes: Vec<u8>,
    acc: u64,
    used: u32,
    /// Bits written so far, in all.
    pub bits: u64,
}

impl BitWriter {
    /// Appends the low `width` (<= 56) bits of `value`.
    #[inline]
    pub fn put(&mut self, value: u64, width: usize) {
        debug_assert!(width <= FIELD);
        if width == 0 {
            return;
        }
        let value = value & (u64::MAX >> (64 - width));
        self.acc |= value << self.used;
        self.bits += width as u64;
        let used = self.used + width as u32;
        if used >= 64 {
            // A whole word: out at once, and the bits that did not fit carried.
            self.bytes.extend_from_slice(&self.acc.to_le_bytes());
            let kept = used - 64;
            self.acc = if kept == 0 { 0 } else { value >> (width as u32 - kept) };
            self.used = kept;
        } else {
            self.used = used;
        }
    }

    /// Appends `n` zero bits.
    pub fn zeros(&mut self, mut n: u64) {
        while n > 0 {
            let w = n.min(FIELD as u64);
            self.put(0, w as usize);
            n -= w;
        }
    }

    /// Appends the Elias-gamma code of `x >= 1`: as many zeros as `x` has bits
    /// after its leading one, a one, then those bits.
    pub fn gamma(&mut self, x: u64) {
        let nb = 63 - x.leading_zeros() as usize;
        self.zeros(nb as u64);
        self.put(1, 1);
        if nb > 32 {
            self.put(x >> 32, nb - 32);
            self.put(x, 32);
        } else {
            self.put(x, nb);
        }
    }

    /// Writes out the last partial byte (zero-padded).
    pub fn align(&mut self) {
        let bytes = (self.used as usize).div_ceil(8);
        self.bytes.extend_from_slice(&self.acc.to_le_bytes()[..bytes]);
        self.bits = self.bits.div_ceil(8) * 8;
        self.acc = 0;
        self.used = 0;
    }
}

/// Reads bit fields of a data section, every position checked against a limit.
#[derive(Clone, Copy)]
pub(crate) struct BitReader<'a> {
    /// The data section, followed by at least 8 bytes of slack.
    data: &'a [u8],
}

impl<'a> BitReader<'a> {
    /// `data` ends with the 8 slack bytes; positions are valid below
    /// `8 * (data.len() - 8)`.
    pub fn new(data: &'a [u8]) -> BitReader<'a> {
        BitReader { data }
    }

    pub fn limit(&self) -> u64 {
        8 * (self.data.len().saturating_sub(8)) as u64
    }

    /// `width` (<= 56) bits at `pos`. The caller has checked `pos + width` against
    /// [`limit`](Self::limit); a position beyond it reads zeros instead of panicking.
    #[inline]
    pub fn get(&self, pos: u64, width: usize) -> u64 {
        if width == 0 {
            return 0;
        }
        let at = (pos / 8) as usize;
        let Some(window) = self.data.get(at..at + 8) else { return 0 };
        let w = u64::from_le_bytes(window.try_into().expect("8 bytes"));
        (w >> (pos % 8)) & (u64::MAX >> (64 - width))
    }

    /// The position of the first one bit in `pos..end`, if any.
    #[inline]
    pub fn next_one(&self, mut pos: u64, end: u64) -> Option<u64> {
        while pos < end {
            let w = (end - pos).min(FIELD as u64) as usize;
            let bits = self.get(pos, w);
            if bits != 0 {
                return Some(pos + u64::from(bits.trailing_zeros()));
            }
            pos += w as u64;
        }
        None
    }

    /// Decodes an Elias-gamma code at `pos` that must end by `end`; returns the
    /// value and the position after it, or `None` when it does not fit.
    pub fn gamma(&self, pos: u64, end: u64) -> Option<(u64, u64)> {
        let one = self.next_one(pos, end.min(pos + 64))?;
        let nb = (one - pos) as usize;
        let after = one + 1 + nb as u64;
        if nb > 63 || after > end {
            return None;
        }
        let low = if nb > 32 {
            (self.get(one + 1, nb - 32) << 32) | self.get(one + 1 + (nb - 32) as u64, 32)
        } else {
            self.get(one + 1, nb)
        };
        let x = if nb == 64 { low } else { (1u64 << nb) | low };
        Some((x, after))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bits_round_trip() {
        let mut w = BitWriter::default();
        let fields: Vec<(u64, usize)> =
            (0..200u64).map(|i| (i.wrapping_mul(0x9E37_79B9_7F4A_7C15), (i % 56 + 1) as usize)).collect();
        for &(v, width) in &fields {
            w.put(v, width);
        }
        for x in [1u64, 2, 3, 17, 1 << 40, u64::MAX - 5, u64::MAX] {
            w.gamma(x);
        }
        let end = w.bits;
        w.align();
        w.bytes.extend_from_slice(&[0; 8]);
        let r = BitReader::new(&w.bytes);
        let mut pos = 0;
        for &(v, width) in &fields {
            assert_eq!(r.get(pos, width), v & (u64::MAX >> (64 - width)));
            pos += width as u64;
        }
        for x in [1u64, 2, 3, 17, 1 << 40, u64::MAX - 5, u64::MAX] {
            let (got, next) = r.gamma(pos, end).unwrap();
            assert_eq!(got, x);
            assert_eq!(next - pos, gamma_len(x));
            pos = next;
        }
        assert_eq!(pos, end);
        assert!(r.gamma(pos, end).is_none());
    }

    #[test]
    fn key_bits_round_trip() {
        let mut key = [0u8; MAX_KEY_LEN];
        for (i, b) in key.iter_mut().take(20).enumerate() {
            *b = (i as u8).wrapping_mul(37) ^ 0xA5;
        }
        let mut rebuilt = [0u8; MAX_KEY_LEN];
        let mut start = 0;
        for width in [20, 7, 21, 56, 56] {
            put_key_bits(&mut rebuilt, start, width, key_bits(&key, start, width));
            start += width;
        }
        assert_eq!(start, 160);
        assert_eq!(rebuilt, key);
        assert_eq!(low_chunks(133).collect::<Vec<_>>(), vec![21, 56, 56]);
        assert_eq!(low_chunks(112).collect::<Vec<_>>(), vec![56, 56]);
        assert_eq!(low_chunks(5).collect::<Vec<_>>(), vec![5]);
    }
}
