//! The webhook signature: `X-Leakwatch-Signature: t=UNIX_TIME,v1=HEX`, where
//! HEX is the lower-case hex HMAC-SHA256, under the destination's secret, of
//! `UNIX_TIME.` followed by the body's bytes (Stripe's scheme: the time inside
//! the MAC lets a receiver refuse replays of old deliveries).

use hmac::{Hmac, Mac};
use sha2::Sha256;

/// The header carrying the signature.
pub const SIGNATURE_HEADER: &str = "X-Leakwatch-Signature";
/// The header carrying the batch's delivery id, the same on every attempt.
pub const DELIVERY_HEADER: &str = "X-Leakwatch-Delivery";

/// The signature header's value for `body` sent at `unix_time`.
pub fn signature(secret: &[u8], unix_time: u64, body: &[u8]) -> String {
    format!("t={unix_time},v1={}", hex(&mac(secret, unix_time, body)))
}

fn mac(secret: &[u8], unix_time: u64, body: &[u8]) -> [u8; 32] {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret).expect("HMAC takes a key of any length");
    mac.update(unix_time.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    mac.finalize().into_bytes().into()
}

/// Whether `header` is a valid signature of `body` under `secret`, made no
/// more than `tolerance` seconds from `now` (compared in constant time).
pub fn verify(secret: &[u8], header: &str, body: &[u8], now: u64, tolerance: u64) -> bool {
    let mut time = None;
    let mut signatures = Vec::new();
    for part in header.split(',') {
        match part.trim().split_once('=') {
            Some(("t", t)) => time = t.parse::<u64>().ok(),
            Some(("v1", v)) => signatures.push(v),
            _ => {}
        }
    }
    let Some(time) = time else { return false };
    if time.abs_diff(now) > tolerance {
        return false;
    }
    let mut verifier = Hmac::<Sha256>::new_from_slice(secret).expect("HMAC takes a key of any length");
    verifier.update(time.to_string().as_bytes());
    verifier.update(b".");
    verifier.update(body);
    signatures.iter().any(|s| unhex(s).is_some_and(|bytes| verifier.clone().verify_slice(&bytes).is_ok()))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn unhex(text: &str) -> Option<Vec<u8>> {
    if !text.len().is_multiple_of(2) {
        return None;
    }
    (0..text.len()).step_by(2).map(|i| u8::from_str_radix(text.get(i..i + 2)?, 16).ok()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_signature_is_hmac_sha256_of_time_dot_body() {
        // Computed apart with
        // `printf '1700000000.{"a":1}' | openssl dgst -sha256 -hmac whsec`.
        let header = signature(b"whsec", 1_700_000_000, br#"{"a":1}"#);
        assert_eq!(
            header,
            "t=1700000000,v1=8ad37ba156048ae0e0a5533c75cdf26fee88b07f93cb57ee4c80adb053012032"
        );
        assert!(verify(b"whsec", &header, br#"{"a":1}"#, 1_700_000_100, 300));
        assert!(!verify(b"whsec", &header, br#"{"a":2}"#, 1_700_000_100, 300));
        assert!(!verify(b"other", &header, br#"{"a":1}"#, 1_700_000_100, 300));
        assert!(!verify(b"whsec", &header, br#"{"a":1}"#, 1_700_001_000, 300));
        assert!(!verify(b"whsec", "v1=00", b"", 0, 300));
    }
}
