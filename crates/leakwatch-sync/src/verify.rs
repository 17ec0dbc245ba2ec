//! Verification of a range body before it is committed to staging: exactly the
//! Pwned Passwords format (upper-case hex suffixes of the corpus's length, `:`,
//! a decimal count, strictly increasing, CRLF between lines) and, when the
//! upstream sends one, the `Content-MD5` digest of the body.
//!
//! A body that fails is never written: a truncated or garbled answer would
//! otherwise be published as if the upstream had dropped those passwords.

use base64::Engine;
use leakwatch_types::decode_decimal;
use md5::{Digest, Md5};

/// Why a body was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Invalid(pub String);

/// Checks `body` as a range of suffixes `suffix_len` hex digits long. Returns
/// the number of lines with a non-zero count (padding lines count zero).
pub fn verify_body(body: &[u8], suffix_len: usize, content_md5: Option<&[u8]>) -> Result<u64, Invalid> {
    if let Some(header) = content_md5 {
        let expected = base64::engine::general_purpose::STANDARD
            .decode(header.trim_ascii())
            .map_err(|_| Invalid("Content-MD5 is not base64".into()))?;
        if Md5::digest(body).as_slice() != expected.as_slice() {
            return Err(Invalid("body does not match its Content-MD5".into()));
        }
    }
    if body.is_empty() {
        return Ok(0);
    }
    // HIBP sends no CRLF after the last line; one is tolerated, nothing else is.
    let body = body.strip_suffix(b"\r\n").unwrap_or(body);
    let mut hashes = 0;
    let mut last: Option<&[u8]> = None;
    let lines: Vec<&[u8]> = body.split(|&b| b == b'\n').collect();
    let last_line = lines.len();
    for (i, line) in lines.into_iter().enumerate() {
        let number = i + 1;
        // Every line but the last ends in CR before the LF we split on.
        let line = match line.strip_suffix(b"\r") {
            Some(line) if number < last_line => line,
            _ if number < last_line => return Err(Invalid(format!("line {number}: not CRLF-terminated"))),
            _ => line,
        };
        let (suffix, count) = line
            .split_at_checked(suffix_len)
            .ok_or_else(|| Invalid(format!("line {number}: shorter than a {suffix_len}-digit suffix")))?;
        if !suffix.iter().all(|b| b.is_ascii_digit() || (b'A'..=b'F').contains(b)) {
            return Err(Invalid(format!("line {number}: suffix is not upper-case hex")));
        }
        let digits = count
            .strip_prefix(b":")
            .ok_or_else(|| Invalid(format!("line {number}: no ':' after the suffix")))?;
        let count = decode_decimal(digits).ok_or_else(|| Invalid(format!("line {number}: bad count")))?;
        if last.is_some_and(|prev| prev >= suffix) {
            return Err(Invalid(format!("line {number}: suffixes out of order or repeated")));
        }
        last = Some(suffix);
        if count > 0 {
            hashes += 1;
        }
    }
    Ok(hashes)
}

#[cfg(test)]
mod tests {
    use super::*;

    const A: &str = "0018A45C4D1DEF81644B54AB7F969B88D65";
    const B: &str = "00D4F6E8FA6EECAD2A3AA415EEC418D38EC";

    fn md5_b64(body: &[u8]) -> Vec<u8> {
        base64::engine::general_purpose::STANDARD.encode(Md5::digest(body)).into_bytes()
    }

    #[test]
    fn well_formed_bodies_pass() {
        assert_eq!(verify_body(b"", 35, None), Ok(0));
        assert_eq!(verify_body(format!("{A}:1").as_bytes(), 35, None), Ok(1));
        let body = format!("{A}:10\r\n{B}:0");
        assert_eq!(verify_body(body.as_bytes(), 35, None), Ok(1));
        assert_eq!(verify_body(format!("{body}\r\n").as_bytes(), 35, None), Ok(1));
        let md5 = md5_b64(body.as_bytes());
        assert_eq!(verify_body(body.as_bytes(), 35, Some(&md5)), Ok(1));
        assert_eq!(verify_body(format!("{}:3", &A[..27]).as_bytes(), 27, None), Ok(1));
    }

    #[test]
    fn malformed_bodies_are_refused() {
        let bad = [
            format!("{A}:1\n{B}:2"),
            format!("{B}:1\r\n{A}:2"),
            format!("{A}:1\r\n{A}:2"),
            format!("{}:1", A.to_lowercase()),
            format!("{}:1", &A[..34]),
            format!("{A}1"),
            format!("{A}:"),
            format!("{A}:1x"),
            format!("{A}:99999999999999999999"),
            format!("{A}:1\r\n\r\n{B}:2"),
            "<html>oops</html>".to_string(),
        ];
        for body in bad {
            assert!(verify_body(body.as_bytes(), 35, None).is_err(), "{body:?}");
        }
        let body = format!("{A}:1");
        assert!(verify_body(body.as_bytes(), 35, Some(&md5_b64(b"other"))).is_err());
        assert!(verify_body(body.as_bytes(), 35, Some(b"not base64!")).is_err());
        assert!(verify_body(body.as_bytes(), 27, None).is_err());
    }
}
