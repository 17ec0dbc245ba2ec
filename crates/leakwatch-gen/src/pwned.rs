//! Pwned Passwords-shaped benchmark input: sorted, upper-case, uniformly random
//! hashes with heavy-tailed counts, `HASH:COUNT` and CRLF, as HIBP's downloader
//! writes them; and lists of hashes to look up, half of them in the file.
//!
//! The hashes are a sorted random set drawn by exponential gaps over the top 64
//! bits (the rest uniform), so the gaps between neighbours are those of a real
//! set of SHA-1 digests, not a regular grid. Counts follow a discrete power law,
//! `P(count >= c) = c^-1.1`: about half the hashes are seen once, one in twenty
//! 15 times or more and the largest tens of millions of times, which is the shape
//! of Pwned Passwords' prevalence counts (a Zipf law over passwords).

use std::io::{self, Write};

use crate::rng::Rng;

/// The tail exponent of the count distribution.
const TAIL: f64 = 1.1;

/// A sorted stream of `lines` random hashes of `key_len` bytes with their counts.
pub struct PwnedStream {
    rng: Rng,
    left: u64,
    top: u64,
    mean_gap: f64,
    key_len: usize,
}

impl PwnedStream {
    pub fn new(lines: u64, seed: u64, key_len: usize) -> PwnedStream {
        // Aim the gaps a little short so that the sum of `lines` of them stays
        // below 2^64 (the sum's spread is about sqrt(lines) gaps).
        let n = lines as f64;
        let mean_gap = 2f64.powi(64) / (n + 8.0 * n.sqrt() + 16.0);
        PwnedStream { rng: Rng::new(seed), left: lines, top: 0, mean_gap, key_len }
    }

    fn unit(&mut self) -> f64 {
        // 53 random bits in (0, 1].
        ((self.rng.next_u64() >> 11) as f64 + 1.0) / (1u64 << 53) as f64
    }
}

impl Iterator for PwnedStream {
    /// The hash (its first `key_len` bytes) and its count.
    type Item = ([u8; 20], u64);

    fn next(&mut self) -> Option<([u8; 20], u64)> {
        if self.left == 0 {
            return None;
        }
        self.left -= 1;
        let gap = (-self.unit().ln() * self.mean_gap).max(1.0) as u64;
        self.top = self.top.checked_add(gap).unwrap_or(self.top.saturating_add(1));
        let mut key = [0u8; 20];
        key[..8].copy_from_slice(&self.top.to_be_bytes());
        key[8..16].copy_from_slice(&self.rng.next_u64().to_be_bytes());
        key[16..].copy_from_slice(&self.rng.next_u64().to_be_bytes()[..4]);
        key[self.key_len..].fill(0);
        let count = self.unit().powf(-1.0 / TAIL).min(1e9) as u64;
        Some((key, count.max(1)))
    }
}

const HEX: &[u8; 16] = b"0123456789ABCDEF";

/// Writes `lines` lines of SHA-1 (or, with `ntlm`, NTLM) Pwned Passwords.
pub fn write_pwned(mut out: impl Write, lines: u64, seed: u64, ntlm: bool) -> io::Result<()> {
    let key_len = if ntlm { 16 } else { 20 };
    let mut buf = Vec::with_capacity(1 << 20);
    for (key, count) in PwnedStream::new(lines, seed, key_len) {
        for &b in &key[..key_len] {
            buf.push(HEX[usize::from(b >> 4)]);
            buf.push(HEX[usize::from(b & 15)]);
        }
        buf.push(b':');
        buf.extend_from_slice(count.to_string().as_bytes());
        buf.extend_from_slice(b"\r\n");
        if buf.len() > (1 << 20) - 64 {
            out.write_all(&buf)?;
            buf.clear();
        }
    }
    out.write_all(&buf)?;
    out.flush()
}

/// `count` hashes in upper-case hex for a lookup benchmark against the file that
/// `write_pwned` writes with the same `lines` and `seed`: the even-numbered ones
/// are in it (with their counts), the odd ones are random and absent (with 0).
pub fn lookup_hashes(lines: u64, seed: u64, ntlm: bool, count: u64) -> Vec<(String, u64)> {
    let key_len = if ntlm { 16 } else { 20 };
    let present = count.div_ceil(2).max(1);
    let step = (lines / present).max(1);
    let mut picked: Vec<(String, u64)> = PwnedStream::new(lines, seed, key_len)
        .step_by(step as usize)
        .take(present as usize)
        .map(|(k, c)| (hex(&k[..key_len]), c))
        .collect();
    // Shuffle so that lookups do not walk the file in order.
    let mut rng = Rng::new(seed ^ 0x5EED);
    for i in (1..picked.len()).rev() {
        let j = (rng.next_u64() % (i as u64 + 1)) as usize;
        picked.swap(i, j);
    }
    let mut out = Vec::with_capacity(count as usize);
    for i in 0..count {
        if i % 2 == 0 {
            match picked.get((i / 2) as usize) {
                Some(p) => out.push(p.clone()),
                None => break,
            }
        } else {
            let mut k = [0u8; 20];
            for chunk in k.chunks_mut(8) {
                let w = rng.next_u64().to_be_bytes();
                chunk.copy_from_slice(&w[..chunk.len()]);
            }
            out.push((hex(&k[..key_len]), 0));
        }
    }
    out
}

fn hex(key: &[u8]) -> String {
    key.iter().flat_map(|&b| [HEX[usize::from(b >> 4)] as char, HEX[usize::from(b & 15)] as char]).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hashes_are_sorted_distinct_and_counts_heavy_tailed() {
        let all: Vec<_> = PwnedStream::new(100_000, 7, 20).collect();
        assert_eq!(all.len(), 100_000);
        assert!(all.windows(2).all(|w| w[0].0 < w[1].0));
        let ones = all.iter().filter(|(_, c)| *c == 1).count();
        assert!((45_000..60_000).contains(&ones), "{ones}");
        assert!(all.iter().any(|(_, c)| *c > 1000));
        // The top byte spreads over the whole range.
        assert!(all.last().unwrap().0[0] >= 0xF0 && all[0].0[0] == 0);
    }

    #[test]
    fn lookups_alternate_present_and_absent() {
        let mut file = Vec::new();
        write_pwned(&mut file, 1000, 3, false).unwrap();
        let text = String::from_utf8(file).unwrap();
        for (i, (hash, count)) in lookup_hashes(1000, 3, false, 10).iter().enumerate() {
            let line = format!("{hash}:{count}\r\n");
            assert_eq!(text.contains(&line), i % 2 == 0, "{line}");
        }
    }
}
