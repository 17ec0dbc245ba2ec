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

#[cfg(test)]
mod tests {
    use super::*;

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
