//! Benchmark inputs: a streaming writer of realistic `email:password` combo
//! lines (about 37 bytes a line, over ten million lines a second in a release build), the
//! same accounts and passwords as a stealer log's ULP lines (`URL:email:password`), and
//! lists of addresses to look up of which exactly the even-numbered ones are in the combo.
//!
//! Line `i` depends only on `(seed, i)`, so the address of any line can be
//! recomputed without writing the file. Absent addresses have two dots in the
//! local part (`first.last.12345`), a shape no combo line ever has.

use std::io::{self, Write};

use crate::names::{FIRST_NAMES, FREEMAIL, LAST_NAMES, NICK_PARTS};
use crate::passwords::{KEYBOARD_WALKS, TOP_PASSWORDS, WORDS};
use crate::rng::splitmix64;

/// Precomputed tables: a weighted domain table and a Zipf table over the common
/// passwords, each indexed by a few random bits so a draw is one load.
struct Tables {
    domains: Vec<u8>,
    zipf: Vec<u8>,
}

impl Tables {
    fn new() -> Tables {
        let total: u32 = FREEMAIL.iter().map(|(_, w)| w).sum();
        let mut domains = Vec::with_capacity(1024);
        for (i, (_, w)) in FREEMAIL.iter().enumerate() {
            let n = (*w as usize * 1024).div_ceil(total as usize);
            domains.extend(std::iter::repeat_n(i as u8, n));
        }
        domains.truncate(1024);
        while domains.len() < 1024 {
            domains.push(0);
        }
        let weights: Vec<f64> = (1..=TOP_PASSWORDS.len()).map(|r| 1.0 / r as f64).collect();
        let sum: f64 = weights.iter().sum();
        let mut zipf = Vec::with_capacity(4096);
        let mut acc = 0.0;
        for (i, w) in weights.iter().enumerate() {
            acc += w / sum;
            while (zipf.len() as f64) < acc * 4096.0 && zipf.len() < 4096 {
                zipf.push(i as u8);
            }
        }
        while zipf.len() < 4096 {
            zipf.push((TOP_PASSWORDS.len() - 1) as u8);
        }
        Tables { domains, zipf }
    }
}

/// A per-line stream of random words.
struct LineRng(u64);

impl LineRng {
    fn new(seed: u64, index: u64) -> LineRng {
        LineRng(seed ^ index.wrapping_mul(0xA076_1D64_78BD_642F))
    }

    #[inline]
    fn next(&mut self) -> u64 {
        splitmix64(&mut self.0)
    }
}

#[inline]
fn push_num(buf: &mut Vec<u8>, n: u64, width: usize) {
    let mut digits = [0u8; 20];
    let mut i = digits.len();
    let mut n = n;
    loop {
        i -= 1;
        digits[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 && digits.len() - i >= width {
            break;
        }
    }
    buf.extend_from_slice(&digits[i..]);
}

fn pick<'a>(list: &[&'a str], bits: u64) -> &'a str {
    list[(((bits & 0xFFFF_FFFF) * list.len() as u64) >> 32) as usize]
}

/// Appends the address of a line (as written, possibly capitalized) to `buf`.
fn address(t: &Tables, r: &mut LineRng, buf: &mut Vec<u8>) {
    let a = r.next();
    let b = r.next();
    let first = pick(FIRST_NAMES, a);
    let last = pick(LAST_NAMES, a >> 32);
    let start = buf.len();
    let year = 1950 + (b % 57);
    match (b >> 8) % 8 {
        0 => {
            buf.extend_from_slice(first.as_bytes());
            buf.push(b'.');
            buf.extend_from_slice(last.as_bytes());
            if b & (3 << 20) != 0 {
                push_num(buf, year, 4);
            }
        }
        1 => {
            buf.push(first.as_bytes()[0]);
            buf.extend_from_slice(last.as_bytes());
            push_num(buf, (b >> 16) % 1000, 2);
        }
        2 => {
            buf.extend_from_slice(first.as_bytes());
            buf.push(b'_');
            buf.extend_from_slice(last.as_bytes());
            push_num(buf, year, 4);
        }
        3 => {
            buf.extend_from_slice(first.as_bytes());
            buf.extend_from_slice(last.as_bytes());
            push_num(buf, year, 4);
        }
        4 => {
            buf.extend_from_slice(pick(NICK_PARTS, b >> 16).as_bytes());
            buf.extend_from_slice(pick(NICK_PARTS, b >> 32).as_bytes());
            push_num(buf, (b >> 48) % 10_000, 2);
        }
        5 => {
            buf.extend_from_slice(first.as_bytes());
            buf.push(b'.');
            buf.extend_from_slice(last.as_bytes());
            push_num(buf, (b >> 16) % 100, 2);
        }
        6 => {
            buf.extend_from_slice(last.as_bytes());
            buf.push(b'_');
            buf.extend_from_slice(first.as_bytes());
            push_num(buf, (b >> 16) % 1000, 2);
        }
        _ => {
            buf.extend_from_slice(first.as_bytes());
            buf.extend_from_slice(pick(NICK_PARTS, b >> 16).as_bytes());
            push_num(buf, year, 4);
        }
    }
    // Most addresses are written in lower case; some capitalized or shouted.
    match (b >> 58) % 32 {
        0..=2 => buf[start] = buf[start].to_ascii_uppercase(),
        3 => buf[start..].make_ascii_uppercase(),
        _ => {}
    }
    buf.push(b'@');
    let domain = FREEMAIL[t.domains[((b >> 40) & 1023) as usize] as usize].0;
    buf.extend_from_slice(domain.as_bytes());
}

fn password(t: &Tables, r: &mut LineRng, buf: &mut Vec<u8>) {
    let c = r.next();
    match c % 100 {
        0..=17 => {
            buf.extend_from_slice(TOP_PASSWORDS[t.zipf[((c >> 8) & 4095) as usize] as usize].as_bytes())
        }
        18..=39 => {
            buf.extend_from_slice(pick(FIRST_NAMES, c >> 8).as_bytes());
            push_num(buf, 1950 + (c >> 40) % 60, 4);
        }
        40..=61 => {
            buf.extend_from_slice(pick(WORDS, c >> 8).as_bytes());
            push_num(buf, (c >> 40) % 10_000, 2);
        }
        62..=70 => buf.extend_from_slice(pick(KEYBOARD_WALKS, c >> 8).as_bytes()),
        _ => {
            const ALNUM: &[u8; 62] = b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
            // Six characters per 64-bit draw (10 bits each).
            let len = 10 + (c >> 8) % 8;
            let mut d = 0;
            for k in 0..len {
                if k % 6 == 0 {
                    d = r.next();
                }
                buf.push(ALNUM[((d >> ((k % 6) * 10)) % 62) as usize]);
            }
        }
    }
}

/// Writes `lines` combo lines (`email:password\n`) for `seed`.
pub fn write_combo<W: Write>(mut out: W, lines: u64, seed: u64) -> io::Result<()> {
    let t = Tables::new();
    let mut buf = Vec::with_capacity(1 << 20);
    for i in 0..lines {
        let mut r = LineRng::new(seed, i);
        address(&t, &mut r, &mut buf);
        buf.push(b':');
        password(&t, &mut r, &mut buf);
        buf.push(b'\n');
        if buf.len() >= (1 << 20) - 256 {
            out.write_all(&buf)?;
            buf.clear();
        }
    }
    out.write_all(&buf)?;
    out.flush()
}

/// Sites of the ULP benchmark with their login paths: the popular ones a
/// stealer log is full of, and the hosts that are no domain (a router, a NAS,
/// an intranet portal) that real logs carry too.
const ULP_SITES: &[(&str, &str)] = &[
    ("https://accounts.google.com", "/signin/v2/identifier"),
    ("https://www.facebook.com", "/login.php"),
    ("https://login.live.com", "/login.srf"),
    ("https://discord.com", "/login"),
    ("https://steamcommunity.com", "/login/home/"),
    ("https://www.netflix.com", "/login"),
    ("https://github.com", "/session"),
    ("https://passport.yandex.ru", "/auth"),
    ("https://vk.com", "/login"),
    ("https://www.paypal.com", "/signin"),
    ("https://www.instagram.com", "/accounts/login/"),
    ("https://www.amazon.de", "/ap/signin"),
    ("https://www.roblox.com", "/login"),
    ("https://secure.booking.com", "/login.html"),
    ("https://www.twitch.tv", "/login"),
    ("https://store.epicgames.com", "/login"),
];

/// Hosts that are not domains, about one line in fifty.
const ULP_NON_DOMAIN: &[&str] =
    &["http://192.168.1.1:8080/login", "http://localhost:3000/", "https://intranet/", "https://[::1]:8443/x"];

/// Appends the URL of a ULP line: a popular site, a shop among thousands, or
/// now and then a host that is no domain.
fn ulp_url(r: &mut LineRng, buf: &mut Vec<u8>) {
    let u = r.next();
    match u % 100 {
        0..=1 => buf.extend_from_slice(pick(ULP_NON_DOMAIN, u >> 8).as_bytes()),
        2..=31 => {
            buf.extend_from_slice(b"https://www.");
            buf.extend_from_slice(pick(WORDS, u >> 8).as_bytes());
            push_num(buf, (u >> 40) % 5000, 1);
            buf.extend_from_slice(b".com/account/login");
        }
        _ => {
            let (site, path) = ULP_SITES[((u >> 8) % ULP_SITES.len() as u64) as usize];
            buf.extend_from_slice(site.as_bytes());
            buf.extend_from_slice(path.as_bytes());
        }
    }
}

/// Writes `lines` ULP lines (`URL:email:password\n`) for `seed`: line `i`
/// holds the address and password of line `i` of [`write_combo`]'s combo of
/// the same seed, so both files expose the same accounts and passwords.
pub fn write_ulp<W: Write>(mut out: W, lines: u64, seed: u64) -> io::Result<()> {
    let t = Tables::new();
    let mut buf = Vec::with_capacity(1 << 20);
    for i in 0..lines {
        ulp_url(&mut LineRng::new(seed ^ 0x0055_4C50, i), &mut buf);
        buf.push(b':');
        let mut r = LineRng::new(seed, i);
        address(&t, &mut r, &mut buf);
        buf.push(b':');
        password(&t, &mut r, &mut buf);
        buf.push(b'\n');
        if buf.len() >= (1 << 20) - 512 {
            out.write_all(&buf)?;
            buf.clear();
        }
    }
    out.write_all(&buf)?;
    out.flush()
}

/// Addresses for a lookup benchmark against the combo `(seed, lines)`: entry `k`
/// is `(address, present)`, present exactly when `k` is even.
pub fn lookup_addresses(seed: u64, lines: u64, count: u64) -> impl Iterator<Item = (String, bool)> {
    assert!(lines > 0, "a lookup list needs a non-empty combo");
    let t = Tables::new();
    (0..count).map(move |k| {
        let mut pick_state = seed ^ 0x5EED_0F10_0C0D ^ k.wrapping_mul(0x9E37_79B9_7F4A_7C15);
        let mut buf = Vec::with_capacity(48);
        if k % 2 == 0 {
            let line = splitmix64(&mut pick_state) % lines;
            address(&t, &mut LineRng::new(seed, line), &mut buf);
        } else {
            let mut r = LineRng(pick_state);
            let a = r.next();
            buf.extend_from_slice(pick(FIRST_NAMES, a).as_bytes());
            buf.push(b'.');
            buf.extend_from_slice(pick(LAST_NAMES, a >> 32).as_bytes());
            buf.push(b'.');
            let b = r.next();
            push_num(&mut buf, b % 100_000, 5);
            buf.push(b'@');
            buf.extend_from_slice(FREEMAIL[t.domains[((b >> 40) & 1023) as usize] as usize].0.as_bytes());
        }
        (String::from_utf8(buf).expect("ASCII"), k % 2 == 0)
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    fn combo(lines: u64, seed: u64) -> Vec<u8> {
        let mut out = Vec::new();
        write_combo(&mut out, lines, seed).unwrap();
        out
    }

    #[test]
    fn combo_is_deterministic_and_realistic() {
        let a = combo(20_000, 9);
        assert_eq!(a, combo(20_000, 9));
        assert_ne!(a, combo(20_000, 10));
        let text = std::str::from_utf8(&a).unwrap();
        let per_line = a.len() as f64 / 20_000.0;
        assert!((34.0..42.0).contains(&per_line), "{per_line} bytes a line");
        let mut distinct = HashSet::new();
        for line in text.lines() {
            let (email, password) = line.split_once(':').unwrap();
            assert!(!password.is_empty() && !password.contains(':'));
            assert!(leakwatch_types::normalize_email(email).is_ok(), "{email}");
            distinct.insert(email.to_ascii_lowercase());
        }
        // A combo has repeats, but mostly distinct addresses.
        assert!(distinct.len() > 18_000, "{}", distinct.len());
    }

    #[test]
    fn ulp_lines_carry_the_combo_s_accounts_and_passwords() {
        let lines = 20_000;
        let mut ulp = Vec::new();
        write_ulp(&mut ulp, lines, 4).unwrap();
        let combo = combo(lines, 4);
        let ulp = std::str::from_utf8(&ulp).unwrap();
        let mut non_domain = 0;
        for (u, c) in ulp.lines().zip(std::str::from_utf8(&combo).unwrap().lines()) {
            let (email, _) = c.split_once(':').unwrap();
            // The URL ends where the address starts: the address holds no `:`.
            let at = u.find(&format!(":{email}:")).unwrap_or_else(|| panic!("{u} / {c}"));
            assert_eq!(&u[at + 1..], c);
            non_domain += usize::from(ULP_NON_DOMAIN.contains(&&u[..at]));
        }
        assert_eq!(ulp.lines().count(), lines as usize);
        assert!((200..600).contains(&non_domain), "{non_domain} hosts that are no domain");
        let per_line = ulp.len() as f64 / lines as f64;
        assert!((65.0..80.0).contains(&per_line), "{per_line} bytes a line");
    }

    #[test]
    fn lookup_lists_know_what_is_present() {
        let lines = 5_000;
        let data = combo(lines, 3);
        let present: HashSet<String> = std::str::from_utf8(&data)
            .unwrap()
            .lines()
            .map(|l| l.split_once(':').unwrap().0.to_ascii_lowercase())
            .collect();
        let list: Vec<(String, bool)> = lookup_addresses(3, lines, 2_000).collect();
        for (address, expect) in &list {
            assert_eq!(present.contains(&address.to_ascii_lowercase()), *expect, "{address}");
            assert!(leakwatch_types::normalize_email(address).is_ok());
        }
        assert_eq!(list.iter().filter(|(_, p)| *p).count(), 1_000);
    }
}
