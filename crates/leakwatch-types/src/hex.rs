//! Hex encoding for digests: upper-case out (HIBP's convention), either case in.

/// Upper-case hex, the form HIBP and Pwned Passwords print.
pub fn encode_hex_upper(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789ABCDEF";
    let mut out = String::with_capacity(bytes.len() * 2);
    for &b in bytes {
        out.push(DIGITS[(b >> 4) as usize] as char);
        out.push(DIGITS[(b & 15) as usize] as char);
    }
    out
}

/// Decodes hex of either case into exactly `N` bytes; `None` on any other length or digit.
pub fn decode_hex<const N: usize>(text: &[u8]) -> Option<[u8; N]> {
    if text.len() != N * 2 {
        return None;
    }
    let mut out = [0u8; N];
    for (i, pair) in text.chunks_exact(2).enumerate() {
        out[i] = (nibble(pair[0])? << 4) | nibble(pair[1])?;
    }
    Some(out)
}

/// Decodes hex of either case and any even length into `out` (cleared first);
/// false, with `out` unspecified, on an odd length or a non-hex digit.
pub fn decode_hex_into(text: &[u8], out: &mut Vec<u8>) -> bool {
    out.clear();
    if !text.len().is_multiple_of(2) {
        return false;
    }
    for pair in text.chunks_exact(2) {
        match (nibble(pair[0]), nibble(pair[1])) {
            (Some(hi), Some(lo)) => out.push((hi << 4) | lo),
            _ => return false,
        }
    }
    true
}

fn nibble(c: u8) -> Option<u8> {
    match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        b'A'..=b'F' => Some(c - b'A' + 10),
        _ => None,
    }
}

/// A count in decimal: ASCII digits only (no sign, no spaces), at most 20 of
/// them, no overflow; `None` otherwise. Pwned Passwords counts are this.
pub fn decode_decimal(digits: &[u8]) -> Option<u64> {
    if digits.is_empty() || digits.len() > 20 {
        return None;
    }
    digits.iter().try_fold(0u64, |n, &b| {
        if b.is_ascii_digit() {
            n.checked_mul(10)?.checked_add(u64::from(b - b'0'))
        } else {
            None
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decimal_counts_are_digits_only_and_never_overflow() {
        assert_eq!(decode_decimal(b"10434004"), Some(10_434_004));
        assert_eq!(decode_decimal(b"18446744073709551615"), Some(u64::MAX));
        for bad in [&b"18446744073709551616"[..], b"000000000000000000001", b"", b"12a", b"-1", b" 7", b"+7"]
        {
            assert_eq!(decode_decimal(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn round_trips_and_accepts_lower_case() {
        let bytes = [0x00, 0xab, 0xff, 0x10];
        assert_eq!(encode_hex_upper(&bytes), "00ABFF10");
        assert_eq!(decode_hex::<4>(b"00abFF10"), Some(bytes));
        assert_eq!(decode_hex::<4>(b"00abFF1"), None);
        assert_eq!(decode_hex::<4>(b"00abFF1g"), None);
        let mut out = Vec::new();
        assert!(decode_hex_into(b"6869", &mut out));
        assert_eq!(out, b"hi");
        assert!(!decode_hex_into(b"686", &mut out));
        assert!(!decode_hex_into(b"68zz", &mut out));
    }
}
