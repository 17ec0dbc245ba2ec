//! Account normalization, following the rules HIBP's own extractor applies to
//! addresses, so that the same person found in two dumps gets the same key.

use std::fmt;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum AccountKind {
    Email,
    Username,
    Phone,
}

/// A normalized account: the only form in which accounts are compared or keyed.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Account {
    pub kind: AccountKind,
    pub value: String,
}

impl Account {
    /// Builds an email account from raw text, normalizing it.
    pub fn email(raw: &str) -> Result<Account, EmailError> {
        Ok(Account { kind: AccountKind::Email, value: normalize_email(raw)? })
    }

    /// For an email account: `(alias, domain)`, split at the last `@`.
    pub fn email_parts(&self) -> Option<(&str, &str)> {
        match self.kind {
            AccountKind::Email => split_at_last_at(&self.value),
            _ => None,
        }
    }
}

/// Why a string is not an address HIBP would extract.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EmailError {
    NoAt,
    BadLocalPart,
    BadDomain,
    /// The domain is an IP address (`[10.0.0.1]`, `10.0.0.1`), not a host name.
    IpLiteral,
    TooLong,
}

impl EmailError {
    /// A short description, for messages.
    pub fn reason(self) -> &'static str {
        match self {
            EmailError::NoAt => "no @ in address",
            EmailError::BadLocalPart => "invalid local part",
            EmailError::BadDomain => "invalid domain",
            EmailError::IpLiteral => "IP literal domain",
            EmailError::TooLong => "address too long",
        }
    }

    /// The stable rejection reason of ingest reports (`docs/ingest-rules.md`).
    pub fn rejection(self) -> &'static str {
        match self {
            EmailError::NoAt => "invalid email: no @",
            EmailError::BadLocalPart => "invalid email: local part",
            EmailError::BadDomain => "invalid email: domain",
            EmailError::IpLiteral => "invalid email: IP literal domain",
            EmailError::TooLong => "invalid email: too long",
        }
    }
}

impl fmt::Display for EmailError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.reason())
    }
}

impl std::error::Error for EmailError {}

/// Normalizes an email address: strips wrapping (`<>`, quotes, `mailto:`, escaped
/// `\n`/`\t` prefixes, trailing `.,;`), lower-cases it, converts the domain to its
/// IDNA A-label and checks the shape. Plus-tags and dots are kept as they are.
///
/// Local parts beyond ASCII (RFC 6531, `françois@...`) are kept: lower-cased,
/// then put in Unicode NFC, so that the composed and decomposed spellings of
/// one address are one account. HIBP drops them; an exposure we drop is one
/// the user never hears of.
pub fn normalize_email(raw: &str) -> Result<String, EmailError> {
    match normalize_plain_email(raw.as_bytes()) {
        Some(address) => Ok(address),
        None => normalize_any_email(raw),
    }
}

/// [`normalize_email`] for the common case, in one pass over bytes that need
/// not be checked as UTF-8 first: an address of `[A-Za-z0-9._+-]` around one
/// `@`, with a letter or digit at both ends, has nothing to strip and no IDNA
/// to apply, so it needs only lower-casing and the shape checks, done here
/// without splitting into labels (the general path was a tenth of an
/// ingest's CPU). `None` for anything else, valid or not: [`normalize_email`]
/// decides those, and gives the reason a bad one is rejected.
pub fn normalize_plain_email(raw: &[u8]) -> Option<String> {
    let mut out = String::new();
    normalize_plain_email_into(raw, &mut out).then_some(out)
}

/// [`normalize_plain_email`] into `out` (cleared first), so that a parser can
/// reuse one buffer line after line: false, and `out` left empty, for what is
/// not a plain address.
pub fn normalize_plain_email_into(raw: &[u8], out: &mut String) -> bool {
    out.clear();
    let (Some(&first), Some(&last)) = (raw.first(), raw.last()) else {
        return false;
    };
    if raw.len() > 320 || !first.is_ascii_alphanumeric() || !last.is_ascii_alphanumeric() {
        return false;
    }
    let (mut plain, mut ats, mut at) = (true, 0u32, 0);
    for (i, &b) in raw.iter().enumerate() {
        plain &= PLAIN_BYTES[usize::from(b)];
        let is_at = b == b'@';
        ats += u32::from(is_at);
        at = if is_at { i } else { at };
    }
    if !plain || ats != 1 {
        return false;
    }
    let (local, domain) = (&raw[..at], &raw[at + 1..]);
    // The local part's bytes are all allowed and its first is alphanumeric.
    let local_ok = local.len() <= 64
        && local.last().is_some_and(u8::is_ascii_alphanumeric)
        && !local.windows(2).any(|w| w == b"..");
    if !local_ok || !valid_ascii_domain(domain) {
        return false;
    }
    // Every byte is one of PLAIN_BYTES: ASCII.
    let Ok(text) = std::str::from_utf8(raw) else {
        return false;
    };
    out.push_str(text);
    out.make_ascii_lowercase();
    true
}

/// Checks an ASCII host name: at least two labels of `[A-Za-z0-9-]` (callers
/// lower-case first, or after), 1 to 63 bytes each, none starting or ending
/// with `-`, and not an IPv4 literal (all-numeric last label). The byte check
/// is a pass without branches (vectorized), the labels' checks one step per
/// label: twice as fast as one pass tracking both.
fn valid_ascii_domain(domain: &[u8]) -> bool {
    let bytes_ok =
        domain.iter().fold(true, |ok, &c| ok & (c.is_ascii_alphanumeric() | (c == b'-') | (c == b'.')));
    if !bytes_ok || domain.len() > 253 {
        return false;
    }
    let mut labels = 0;
    let mut last: &[u8] = &[];
    for label in domain.split(|&c| c == b'.') {
        if label.is_empty() || label.len() > 63 || label[0] == b'-' || label[label.len() - 1] == b'-' {
            return false;
        }
        labels += 1;
        last = label;
    }
    labels >= 2 && !last.iter().all(u8::is_ascii_digit)
}

/// The bytes of a plain address ([`normalize_plain_email`]).
static PLAIN_BYTES: [bool; 256] = {
    let mut table = LOCAL_BYTES;
    table[b'@' as usize] = true;
    table
};

/// [`normalize_email`] for any input: strips wrapping, lower-cases local
/// parts beyond ASCII, applies IDNA to the domain.
fn normalize_any_email(raw: &str) -> Result<String, EmailError> {
    let mut s = raw.trim();
    // Most addresses come bare: an alphanumeric first and last byte leave nothing
    // for the loop below to strip, except a `mailto:` prefix.
    let bare = |s: &str| {
        let b = s.as_bytes();
        b.first().is_some_and(u8::is_ascii_alphanumeric)
            && b.last().is_some_and(u8::is_ascii_alphanumeric)
            && !s.starts_with("mailto:")
            && !s.starts_with("MAILTO:")
    };
    while !bare(s) {
        let before = s.len();
        s = s.trim_matches(|c: char| c.is_whitespace() || matches!(c, '<' | '>' | '"' | '\'' | '`'));
        for prefix in ["mailto:", "MAILTO:", "\\n", "\\t", "\\r"] {
            if let Some(rest) = s.strip_prefix(prefix) {
                s = rest;
            }
        }
        s = s.trim_end_matches(['.', ',', ';']);
        if s.len() == before {
            break;
        }
    }
    if s.len() > 320 {
        return Err(EmailError::TooLong);
    }
    let (local, domain) = split_at_last_at(s).ok_or(EmailError::NoAt)?;
    // The common case, all ASCII, builds the result in one allocation.
    let mut out = String::with_capacity(s.len());
    if local.is_ascii() {
        out.push_str(local);
        out.make_ascii_lowercase();
        if !valid_local(&out) {
            return Err(EmailError::BadLocalPart);
        }
    } else {
        let lower = local.to_lowercase();
        let nfc = icu_normalizer::ComposingNormalizerBorrowed::new_nfc().normalize(&lower);
        if !valid_intl_local(&nfc) {
            return Err(EmailError::BadLocalPart);
        }
        out.push_str(&nfc);
    }
    out.push('@');
    let domain = domain.trim().trim_end_matches('.');
    if domain.starts_with('[') {
        return Err(EmailError::IpLiteral);
    }
    let start = out.len();
    if domain.is_ascii() {
        out.push_str(domain);
        out[start..].make_ascii_lowercase();
    } else {
        // UTS-46 maps (full-width digits and dots included) before the checks.
        out.push_str(&idna::domain_to_ascii(domain).map_err(|_| EmailError::BadDomain)?);
    }
    let host = &out[start..];
    if host.parse::<std::net::Ipv4Addr>().is_ok() {
        return Err(EmailError::IpLiteral);
    }
    if host.len() > 253 || !valid_ascii_domain(host.as_bytes()) {
        return Err(EmailError::BadDomain);
    }
    Ok(out)
}

/// An internationalized local part (RFC 6531), already lower-cased and in NFC:
/// letters and digits of any script, combining marks after them, and `_+.-`;
/// it starts with a letter or digit and ends with one (or its mark); no `..`;
/// at most 64 bytes of UTF-8, RFC 5321's limit, which RFC 6531 keeps in octets.
fn valid_intl_local(local: &str) -> bool {
    use icu_properties::props::{GeneralCategory, GeneralCategoryGroup};
    let categories = icu_properties::CodePointMapData::<GeneralCategory>::new();
    let is_mark = |c: char| GeneralCategoryGroup::Mark.contains(categories.get(c));
    let mut chars = local.chars();
    let (Some(first), Some(last)) = (chars.next(), local.chars().next_back()) else { return false };
    if local.len() > 64 || !first.is_alphanumeric() || !(last.is_alphanumeric() || is_mark(last)) {
        return false;
    }
    !local.contains("..")
        && local.chars().all(|c| c.is_alphanumeric() || matches!(c, '_' | '+' | '.' | '-') || is_mark(c))
}

/// `s.rsplit_once('@')` by a plain backward scan: addresses are too short for
/// the vectorized search's setup to pay off (it showed in ingest profiles).
fn split_at_last_at(s: &str) -> Option<(&str, &str)> {
    let at = s.bytes().rposition(|b| b == b'@')?;
    Some((&s[..at], &s[at + 1..]))
}

fn valid_local(local: &str) -> bool {
    let bytes = local.as_bytes();
    if bytes.is_empty()
        || bytes.len() > 64
        || !bytes[0].is_ascii_alphanumeric()
        || !bytes[bytes.len() - 1].is_ascii_alphanumeric()
    {
        return false;
    }
    // One table lookup per byte and no early exit (a branch per byte was a
    // visible cost at ingest rates): every byte allowed, no two dots in a row.
    let (mut ok, mut dot) = (true, false);
    for &b in bytes {
        let is_dot = b == b'.';
        ok &= LOCAL_BYTES[usize::from(b)] & !(dot & is_dot);
        dot = is_dot;
    }
    ok
}

/// The bytes of a local part: `[A-Za-z0-9_+.-]` (lower-cased before the check).
static LOCAL_BYTES: [bool; 256] = {
    let mut table = [false; 256];
    let mut b = 0;
    while b < 256 {
        let c = b as u8;
        table[b] = c.is_ascii_alphanumeric() || matches!(c, b'_' | b'+' | b'.' | b'-');
        b += 1;
    }
    table
};

/// Normalizes a domain to lower-case ASCII (IDNA UTS-46 A-labels); `None` when it
/// is not a plausible public host name (no dot, an IP literal, bad labels).
pub fn normalize_domain(raw: &str) -> Option<String> {
    let raw = raw.trim().trim_end_matches('.');
    if raw.is_empty() || raw.len() > 253 || raw.starts_with('[') {
        return None;
    }
    let ascii = if raw.is_ascii() { raw.to_ascii_lowercase() } else { idna::domain_to_ascii(raw).ok()? };
    valid_ascii_domain(ascii.as_bytes()).then_some(ascii)
}

/// [`normalize_domain`] of bytes, in one pass over a host of ASCII letters,
/// digits, `-` and `.` (nearly every website in a stealer log, where it costs
/// a line's parse a fifth); anything else goes the general way.
pub fn normalize_domain_bytes(raw: &[u8]) -> Option<String> {
    let mut end = raw.len();
    while end > 0 && raw[end - 1] == b'.' {
        end -= 1;
    }
    let host = &raw[..end];
    if host.is_empty()
        || host.len() > 253
        || !host.iter().all(|&c| c.is_ascii_alphanumeric() | (c == b'-') | (c == b'.'))
    {
        return normalize_domain(std::str::from_utf8(raw).ok()?);
    }
    let lower = host.to_ascii_lowercase();
    // Only ASCII letters, digits, `-` and `.`: UTF-8 as it stands.
    (valid_ascii_domain(&lower)).then(|| String::from_utf8(lower).ok()).flatten()
}

/// Normalizes a user name: trimmed, case-folded (forums compare names without case),
/// at most 255 bytes and free of control characters.
pub fn normalize_username(raw: &str) -> Option<String> {
    let s = raw.trim();
    if s.is_empty() || s.len() > 255 || s.chars().any(char::is_control) {
        return None;
    }
    Some(s.to_lowercase())
}

/// Normalizes a phone number to `+` and digits when it has 7 to 15 digits
/// (E.164's bounds) and nothing but digits and the usual punctuation.
pub fn normalize_phone(raw: &str) -> Option<String> {
    let s = raw.trim();
    if !s.bytes().all(|b| b.is_ascii_digit() || matches!(b, b'+' | b'-' | b' ' | b'(' | b')' | b'.')) {
        return None;
    }
    if s.bytes().skip(1).any(|b| b == b'+') {
        return None;
    }
    let digits: String = s.chars().filter(char::is_ascii_digit).collect();
    (7..=15).contains(&digits.len()).then(|| format!("+{digits}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[track_caller]
    fn ok(raw: &str, want: &str) {
        assert_eq!(normalize_email(raw).as_deref(), Ok(want), "input {raw:?}");
    }

    #[track_caller]
    fn bad(raw: &str, want: EmailError) {
        assert_eq!(normalize_email(raw), Err(want), "input {raw:?}");
    }

    /// The one-pass domain normalization answers as the general one, on
    /// hosts of every shape a line may hold.
    #[test]
    fn domain_bytes_normalize_as_domains_do() {
        let alphabet = b"aZ09-.._ \xc3\xa9[";
        let mut state = 0x9e37_79b9_7f4a_7c15u64;
        let mut next = move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        let fixed: &[&[u8]] = &[
            b"Example.COM",
            b"example.com.",
            b"a..com",
            b"-a.com",
            b"a-.com",
            b"a.b-",
            b"1.2.3.4",
            b"a.123",
            b"localhost",
            b"",
            b".",
            b"xn--bcher-kva.de",
            b"b\xc3\xbccher.de",
            b" a.com",
            b"a.com ",
            b"[::1]",
        ];
        let long = [b"a".repeat(63), b"a".repeat(64), b"ab.".repeat(84)];
        let mut cases: Vec<Vec<u8>> = fixed.iter().map(|c| c.to_vec()).chain(long.iter().cloned()).collect();
        for _ in 0..20_000 {
            let n = (next() % 12) as usize;
            cases.push((0..n).map(|_| alphabet[(next() % alphabet.len() as u64) as usize]).collect());
        }
        for case in cases {
            let general = std::str::from_utf8(&case).ok().and_then(normalize_domain);
            assert_eq!(normalize_domain_bytes(&case), general, "{:?}", String::from_utf8_lossy(&case));
        }
    }

    #[test]
    fn email_normalization_follows_hibp_rules() {
        ok("  Alice.Smith@Example.COM ", "alice.smith@example.com");
        ok("<bob+news@example.org>", "bob+news@example.org");
        ok("mailto:carol@example.net;", "carol@example.net");
        ok("\"dave@example.co.uk\",", "dave@example.co.uk");
        ok("\\nerin@example.com", "erin@example.com");
        ok("josé@bücher.de".replace('é', "e").as_str(), "jose@xn--bcher-kva.de");
        ok("user@EXAMPLE.com.", "user@example.com");
        // Bare-looking (alphanumeric at both ends) yet still wrapped.
        ok("mailto:Carol@Example.net", "carol@example.net");
        ok("MAILTO:carol@example.net", "carol@example.net");
        ok("Frank_O-Neil+x@Sub.Example.COM", "frank_o-neil+x@sub.example.com");
        bad("no-at-sign", EmailError::NoAt);
        bad("a@b@example.com", EmailError::BadLocalPart);
        let parts = Account::email("Carol@Example.net").unwrap();
        assert_eq!(parts.email_parts(), Some(("carol", "example.net")));
        bad(".dot@example.com", EmailError::BadLocalPart);
        bad("a..b@example.com", EmailError::BadLocalPart);
        bad("a@localhost", EmailError::BadDomain);
        bad("a@[127.0.0.1]", EmailError::IpLiteral);
        bad("a@10.0.0.1", EmailError::IpLiteral);
        bad("a@[IPv6:2001:db8::1]", EmailError::IpLiteral);
        bad("a@１０.０.０.１", EmailError::IpLiteral);
        bad("a@-bad.com", EmailError::BadDomain);
        for domain in ["bad-.com", "a..com", "a.-b.com", "a.b-", ".com", "com", "1.2", "a_b.com", "a+b.com"] {
            bad(&format!("a@{domain}"), EmailError::BadDomain);
        }
        ok("a@x.1a", "a@x.1a");
        ok("a@1.x-y.COM", "a@1.x-y.com");
        bad(&format!("{}@example.com", "a".repeat(65)), EmailError::BadLocalPart);
    }

    #[test]
    fn internationalized_local_parts_are_kept_in_nfc_lower_case() {
        ok("françois@acme-corp.com", "françois@acme-corp.com");
        ok("Jörg@Example.DE", "jörg@example.de");
        // Decomposed (e + U+0301) and composed spellings are one address.
        ok("jose\u{301}@example.com", "jos\u{e9}@example.com");
        ok("JOSÉ@bücher.de", "josé@xn--bcher-kva.de");
        ok("用户@Example.COM", "用户@example.com");
        ok("ΔΟΚΙΜΉ@example.gr", "δοκιμή@example.gr");
        ok("नमस्ते@example.in", "नमस्ते@example.in");
        ok("ça.va_bien+x-y@example.fr", "ça.va_bien+x-y@example.fr");
        bad("é..a@example.com", EmailError::BadLocalPart);
        bad(".é@example.com", EmailError::BadLocalPart);
        bad("é.@example.com", EmailError::BadLocalPart);
        bad("jö hn@example.com", EmailError::BadLocalPart);
        bad("\u{301}a@example.com", EmailError::BadLocalPart);
        bad("jö€@example.com", EmailError::BadLocalPart);
        // 64 bytes of UTF-8 fit, 65 do not (32 two-byte letters are 64 bytes).
        ok(&format!("{}@example.com", "é".repeat(32)), &format!("{}@example.com", "é".repeat(32)));
        bad(&format!("{}a@example.com", "é".repeat(32)), EmailError::BadLocalPart);
        bad("jörg@exa mple.de", EmailError::BadDomain);
        bad("jörg", EmailError::NoAt);
    }

    #[test]
    fn rejection_reasons_are_specific_and_stable() {
        let reasons = [
            (EmailError::NoAt, "invalid email: no @"),
            (EmailError::BadLocalPart, "invalid email: local part"),
            (EmailError::BadDomain, "invalid email: domain"),
            (EmailError::IpLiteral, "invalid email: IP literal domain"),
            (EmailError::TooLong, "invalid email: too long"),
        ];
        for (error, want) in reasons {
            assert_eq!(error.rejection(), want);
        }
    }

    /// Every string of up to six bytes over an alphabet of the plain bytes
    /// and a few others: the one-pass path accepts exactly what the general
    /// path accepts, with the same result, or leaves the input to it.
    #[test]
    fn plain_addresses_take_the_fast_path_to_the_same_answer() {
        const ALPHABET: &[u8] = b"aZ1.-_+@ ";
        let mut fast = 0;
        for len in 1..=6u32 {
            for mut n in 0..ALPHABET.len().pow(len) {
                let mut raw = String::new();
                for _ in 0..len {
                    raw.push(char::from(ALPHABET[n % ALPHABET.len()]));
                    n /= ALPHABET.len();
                }
                let general = normalize_any_email(&raw);
                if let Some(address) = normalize_plain_email(raw.as_bytes()) {
                    assert_eq!(general.as_deref(), Ok(address.as_str()), "input {raw:?}");
                    fast += 1;
                } else if raw.starts_with(|c: char| c.is_ascii_alphanumeric())
                    && raw.ends_with(|c: char| c.is_ascii_alphanumeric())
                    && !raw.contains(' ')
                {
                    // Nothing to strip and no IDNA: only a bad address may
                    // leave the fast path.
                    assert!(general.is_err(), "input {raw:?} left the fast path");
                }
            }
        }
        assert!(fast > 150, "{fast} addresses took the fast path");
        // Lengths at the limits, either side.
        let label = |n: usize| "b".repeat(n);
        for (raw, fits) in [
            (format!("{}@x.com", label(64)), true),
            (format!("{}@x.com", label(65)), false),
            (format!("a@{}.com", label(63)), true),
            (format!("a@{}.com", label(64)), false),
            (format!("a@{}.{}.{}.{}", label(63), label(63), label(63), label(61)), true),
            (format!("a@{}.{}.{}.{}", label(63), label(63), label(63), label(62)), false),
            (format!("{}@{}.{}.{}.{}x", label(64), label(63), label(63), label(63), label(60)), true),
            ("A@B.C0".to_owned(), true),
            ("a@b.12".to_owned(), false),
        ] {
            assert_eq!(normalize_plain_email(raw.as_bytes()).is_some(), fits, "{raw:?}");
            assert_eq!(normalize_any_email(&raw).ok(), normalize_plain_email(raw.as_bytes()), "{raw:?}");
            assert_eq!(
                normalize_email(&raw).is_ok(),
                fits || raw.len() <= 320 && normalize_any_email(&raw).is_ok()
            );
        }
    }

    #[test]
    fn usernames_and_phones() {
        assert_eq!(normalize_username("  DarkLord99 ").as_deref(), Some("darklord99"));
        assert_eq!(normalize_username("bad\u{0}name"), None);
        assert_eq!(normalize_phone("+1 (555) 010-4477").as_deref(), Some("+15550104477"));
        assert_eq!(normalize_phone("12"), None);
        assert_eq!(normalize_phone("5+5"), None);
    }
}
