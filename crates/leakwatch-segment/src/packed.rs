//! The packed layout (format version 2) of the counted Pwned Passwords kinds: an
//! Elias-Fano code of the sorted keys, bucket by bucket, with bit-packed counts.
//!
//! Bucket `b` (the top `p` bits of a key) is one run of bits, found through two
//! tables (first entry index, first bit), and holds, for its `n` entries:
//! - the next `u` bits of each key ("high" parts), as `n` ones and `2^u` zeros:
//!   entry `j` sets bit `high_j + j`;
//! - `n` records of the remaining `8 * key_len - p - u` key bits ("low" part, in
//!   chunks of at most 56 bits, most significant first) and a `c`-bit count;
//! - for each record whose count field is all ones (`2^c - 1`), in entry order,
//!   the Elias-gamma code of `count - 2^c + 2` (at least 1).
//!
//! Bits are numbered from the first byte of the data section, least significant
//! bit of each byte first; a field of up to 56 bits is read with one unaligned
//! little-endian u64 load, which 8 zero bytes at the end of the data keep inside
//! the section. `docs/format.md` has the size arithmetic.

use crate::format::MAX_KEY_LEN;

/// The widest field read or written at once.
pub(crate) const FIELD: usize = 56;
/// The widest count field.
pub(crate) const MAX_COUNT_BITS: u8 = 16;
/// The widest high part.
pub(crate) const MAX_UPPER_BITS: u8 = 24;

/// The widths a packed segment uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Params {
    pub key_len: usize,
    pub prefix_bits: u8,
    pub upper_bits: u8,
    pub count_bits: u8,
}

impl Params {
    /// Bits of the low part of a key.
    pub fn low_bits(&self) -> usize {
        8 * self.key_len - usize::from(self.prefix_bits) - usize::from(self.upper_bits)
    }

    /// Bits of one record: the low part and the count field.
    pub fn record_bits(&self) -> usize {
        self.low_bits() + usize::from(self.count_bits)
    }

    /// The count field value that means "an Elias-gamma code follows".
    pub fn escape(&self) -> u64 {
        (1u64 << self.count_bits) - 1
    }

    /// Whether a decoded header's widths make sense.
    pub fn valid(&self) -> bool {
        self.prefix_bits <= crate::format::MAX_PREFIX_BITS
            && self.upper_bits <= MAX_UPPER_BITS
            && (1..=MAX_COUNT_BITS).contains(&self.count_bits)
            && 8 * self.key_len > usize::from(self.prefix_bits) + usize::from(self.upper_bits)
    }

    /// The fewest bits a bucket of `n` entries takes (no escapes).
    pub fn min_block_bits(&self, n: u64) -> u128 {
        u128::from(n) * (1 + self.record_bits() as u128) + (1u128 << self.upper_bits)
    }

    /// Chooses the prefix and high widths for about `entries` keys, and the count
    /// width from a sample of counts: the smallest file whose buckets hold about
    /// 128 entries or fewer, so a lookup decodes little.
    pub fn choose(key_len: usize, entries: u64, sample: &[u64]) -> Params {
        let n = entries.max(1);
        let log2 = 64 - (n - 1).leading_zeros() as i64;
        let prefix_bits = (log2 - 7).clamp(0, i64::from(crate::format::MAX_PREFIX_BITS)) as u8;
        let upper_bits = (0..=MAX_UPPER_BITS)
            .filter(|&u| 8 * key_len > usize::from(prefix_bits) + usize::from(u))
            .min_by_key(|&u| {
                let bits = u32::from(prefix_bits) + u32::from(u);
                u128::from(n) * (8 * key_len as u128 - u128::from(bits)) + (1u128 << bits)
            })
            .unwrap_or(0);
        let count_bits = (1..=MAX_COUNT_BITS)
            .min_by_key(|&c| {
                let escape = (1u64 << c) - 1;
                sample
                    .iter()
                    .map(|&count| {
                        u64::from(c) + if count >= escape { gamma_len(count - escape + 1) } else { 0 }
                    })
                    .sum::<u64>()
            })
            .expect("at least one width");
        Params { key_len, prefix_bits, upper_bits, count_bits }
    }
}

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

    #[test]
    fn params_at_scale() {
        let counts: Vec<u64> = (1..=1000u64).map(|i| 1000 / i).collect();
        let p = Params::choose(20, 100_000_000, &counts);
        assert_eq!(p.prefix_bits, 20);
        assert_eq!(p.upper_bits, 7);
        assert!((2..=6).contains(&p.count_bits), "{p:?}");
        let p = Params::choose(16, 10, &[1]);
        assert_eq!((p.prefix_bits, p.count_bits), (0, 1));
    }
}
