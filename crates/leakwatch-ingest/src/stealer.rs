//! Infostealer "ULP" lines, `URL:login:password` (`--format stealer`): the
//! website each login was captured for becomes the record's `website`, as
//! HIBP keeps stealer logs (email -> website domains).
//!
//! The URL is consumed first, by its own grammar, because it holds `:` of
//! its own: scheme, authority with an optional numeric port (an IPv6 literal
//! in brackets whole), then the path up to the next separator. The login runs
//! to the next separator (`:`, `|` or a space) and the password is the rest of
//! the line, never split again.
//!
//! A host that is no domain (`192.168.1.1`, `localhost`, `intranet`, `[::1]`:
//! routers, NAS boxes, intranet portals) still captured a login and its
//! password: the record is kept, without a website. A line that does not open
//! with a URL at all (no scheme, and no domain or address before the first
//! separator) is a banner's (`Telegram: @channel`, `Build ID: ...`): skipped.

use leakwatch_types::{
    normalize_domain_bytes, normalize_email, normalize_plain_email, normalize_username, Account, AccountKind,
    Record,
};

use encoding_rs::Encoding;

use crate::chunk::MAX_LINE;
use crate::combo::has_control;
use crate::encoding::identity_text;
use crate::report::Reason;

fn is_sep(b: u8) -> bool {
    matches!(b, b':' | b'|' | b' ')
}

/// The bytes that end a URL's host outside brackets: a path, query or
/// fragment, or a separator.
static ENDS_HOST: [bool; 256] = {
    let mut table = [false; 256];
    let mut i = 0;
    while i < 256 {
        table[i] = matches!(i as u8, b'/' | b'?' | b'#' | b':' | b'|' | b' ');
        i += 1;
    }
    table
};

/// The URL at the start of a ULP line: whether it has a `scheme://`, its
/// host, and where it ends.
struct Url<'a> {
    scheme: bool,
    host: &'a [u8],
    end: usize,
}

/// Reads the URL that opens `line`.
fn split_url(line: &[u8]) -> Url<'_> {
    let mut i = 0;
    // A scheme is letters, digits and `-` right before `://`.
    let n = line.iter().take_while(|b| b.is_ascii_alphanumeric() || **b == b'-').count();
    let scheme = n > 0 && line[n..].starts_with(b"://");
    if scheme {
        i = n + 3;
    }
    let host_start = i;
    // An IPv6 literal holds `:` of its own: it runs to its `]`.
    let close = if line.get(i) == Some(&b'[') { memchr::memchr(b']', &line[i..]) } else { None };
    match close {
        Some(close) => i += close + 1,
        None => i += line[i..].iter().position(|&b| ENDS_HOST[usize::from(b)]).unwrap_or(line.len() - i),
    }
    let mut host = &line[host_start..i];
    // A numeric port belongs to the URL when a path follows it, or when a
    // login and a password still follow it.
    if line.get(i) == Some(&b':') {
        let digits = line[i + 1..].iter().take_while(|b| b.is_ascii_digit()).count();
        let after = i + 1 + digits;
        let port = digits > 0
            && digits <= 5
            && match line.get(after) {
                Some(b'/') => true,
                Some(&b) if is_sep(b) => line[after + 1..].iter().any(|&c| is_sep(c)),
                _ => false,
            };
        if port {
            i = after;
        }
    }
    if matches!(line.get(i), Some(b'/' | b'?' | b'#')) {
        i += memchr::memchr3(b':', b'|', b' ', &line[i..]).unwrap_or(line.len() - i);
    }
    // `android://<hash>==@com.package/`: the package is the site.
    if let Some(at) = host.iter().rposition(|&b| b == b'@') {
        host = &host[at + 1..];
    }
    Url { scheme, host, end: i }
}

/// The parts of a ULP line: website host, login, password.
pub(crate) struct Ulp<'a> {
    pub(crate) host: &'a [u8],
    pub(crate) login: &'a [u8],
    pub(crate) password: &'a [u8],
}

/// Splits a ULP line into its website host, login and password.
pub(crate) fn split_ulp(line: &[u8]) -> Result<Ulp<'_>, Reason> {
    after_url(line, &split_url(line))
}

/// The parts of a ULP line whose URL is `url`.
fn after_url<'a>(line: &'a [u8], url: &Url<'a>) -> Result<Ulp<'a>, Reason> {
    if url.end >= line.len() {
        return Err(Reason::NoSeparator);
    }
    let rest = &line[url.end + 1..];
    let login_end = memchr::memchr3(b':', b'|', b' ', rest).ok_or(Reason::NoSeparator)?;
    Ok(Ulp { host: url.host, login: &rest[..login_end], password: &rest[login_end + 1..] })
}

/// What a URL's host gives a record: `Some(domain)` for a domain (normalized),
/// `None` for a host that is no domain (an IPv4 or bracketed IPv6 address, or
/// a name of host characters that `normalize_domain` refuses: `localhost`,
/// `intranet`), and `invalid website` for an empty host or one of other bytes.
pub(crate) fn website(host: &[u8]) -> Result<Option<String>, Reason> {
    match domain_of(host) {
        Some(domain) => Ok(Some(domain)),
        None => no_domain(host),
    }
}

/// `host` normalized, when it is a domain.
fn domain_of(host: &[u8]) -> Option<String> {
    normalize_domain_bytes(host)
}

/// [`website`] of a host that is no domain.
fn no_domain(host: &[u8]) -> Result<Option<String>, Reason> {
    if is_host_name(host) || is_ipv6_literal(host) {
        Ok(None)
    } else {
        Err(Reason::InvalidWebsite)
    }
}

/// ASCII letters, digits and `-` `.` `_` `~` `%`, at least one: the bytes a
/// URL's host may hold outside brackets.
fn is_host_name(host: &[u8]) -> bool {
    !host.is_empty()
        && host.iter().all(|&b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~' | b'%'))
}

/// `[` hex digits, `:` and `.` (an embedded IPv4), an optional `%zone`, `]`.
fn is_ipv6_literal(host: &[u8]) -> bool {
    let Some(inner) = host.strip_prefix(b"[").and_then(|h| h.strip_suffix(b"]")) else { return false };
    let addr = inner.split(|&b| b == b'%').next().unwrap_or_default();
    addr.contains(&b':') && addr.iter().all(|&b| b.is_ascii_hexdigit() || matches!(b, b':' | b'.'))
}

/// Four dotted decimal numbers of at most 255.
fn is_ipv4(host: &[u8]) -> bool {
    let mut parts = 0;
    for part in host.split(|&b| b == b'.') {
        parts += 1;
        let number = !part.is_empty() && part.len() <= 3 && part.iter().all(u8::is_ascii_digit);
        if !number || part.iter().fold(0u32, |n, &d| n * 10 + u32::from(d - b'0')) > 255 {
            return false;
        }
    }
    parts == 4
}

/// Whether a line opens with a URL: a `scheme://`, or a host that is a domain
/// (`is_domain`), an IP address or `localhost`. Any other line of a stealer
/// log that is not in a block is a banner's.
fn opens_with_url(scheme: bool, host: &[u8], is_domain: bool) -> bool {
    scheme || is_domain || is_ipv4(host) || is_ipv6_literal(host) || host.eq_ignore_ascii_case(b"localhost")
}

/// A line of a stealer log that is not part of a block, parsed.
#[derive(Debug, PartialEq)]
pub(crate) enum Parsed<'a> {
    /// A blank line, a separator or a banner's line: skipped, not counted.
    Skipped,
    /// A record without its password, which the caller hashes (with others
    /// at once, [`crate::combo::Lanes`]) and puts in; and whether its URL's
    /// host was no domain (kept, without a website, and counted as a note).
    Record { record: Record, password: &'a [u8], not_domain: bool },
}

/// The account a stealer log's login names: an address, or a user name.
/// `legacy` decodes a login that is not UTF-8.
pub(crate) fn login_account(login: &[u8], legacy: &'static Encoding) -> Result<Account, Reason> {
    // Most logins are plain addresses: ASCII, so UTF-8 as they stand.
    if let Some(value) = normalize_plain_email(login) {
        return Ok(Account { kind: AccountKind::Email, value });
    }
    let login = &*identity_text(login, legacy);
    Ok(if login.contains('@') {
        Account { kind: AccountKind::Email, value: normalize_email(login).map_err(|_| Reason::InvalidEmail)? }
    } else {
        Account {
            kind: AccountKind::Username,
            value: normalize_username(login).ok_or(Reason::InvalidUsername)?,
        }
    })
}

/// Parses one ULP line (the lines of a stealer log that are not blocks).
/// `legacy` decodes logins that are not UTF-8.
pub(crate) fn parse_line<'a>(line: &'a [u8], legacy: &'static Encoding) -> Result<Parsed<'a>, Reason> {
    if line.len() > MAX_LINE {
        return Err(Reason::LineTooLong);
    }
    let line = line.trim_ascii();
    if line.is_empty() {
        return Ok(Parsed::Skipped);
    }
    if has_control(line) {
        return Err(Reason::ControlCharacters);
    }
    let url = split_url(line);
    // The host is normalized once, for the test and as the website.
    let domain = domain_of(url.host);
    if !opens_with_url(url.scheme, url.host, domain.is_some()) {
        return Ok(Parsed::Skipped);
    }
    let Ulp { host, login, password } = after_url(line, &url)?;
    let website = match domain {
        Some(domain) => Some(domain),
        None => no_domain(host)?,
    };
    let account = login_account(login, legacy)?;
    let not_domain = website.is_none();
    Ok(Parsed::Record { record: Record { account, password: None, website }, password, not_domain })
}

#[cfg(test)]
mod tests {
    use super::*;
    use encoding_rs::WINDOWS_1252 as W1252;
    use leakwatch_types::{PasswordHashes, PasswordMaterial};

    type Parts = Result<(&'static str, &'static str, &'static str), Reason>;

    #[test]
    fn ulp_lines_split_after_the_url() {
        let cases: &[(&str, Parts)] = &[
            ("https://host.com:8443/path:user:pa:ss", Ok(("host.com", "user", "pa:ss"))),
            ("https://host.com/login?x=1:a@b.co:pw", Ok(("host.com", "a@b.co", "pw"))),
            ("android://aGFzaA==@com.whatsapp/:bob:pw", Ok(("com.whatsapp", "bob", "pw"))),
            ("site.com:user:pass", Ok(("site.com", "user", "pass"))),
            ("site.com:12345:pass", Ok(("site.com", "12345", "pass"))),
            ("site.com:8080:user:pass", Ok(("site.com", "user", "pass"))),
            ("https://site.com/login user p w", Ok(("site.com", "user", "p w"))),
            ("https://site.com|user|pw", Ok(("site.com", "user", "pw"))),
            ("https://[::1]:8443/path:user:pass", Ok(("[::1]", "user", "pass"))),
            ("http://[fe80::1%25eth0]/:user:pa:ss", Ok(("[fe80::1%25eth0]", "user", "pa:ss"))),
            ("[2001:db8::7]:u@v.co:pw", Ok(("[2001:db8::7]", "u@v.co", "pw"))),
            ("http://192.168.1.1:8080/login:admin:admin", Ok(("192.168.1.1", "admin", "admin"))),
            ("http://localhost:3000/:dev:pw", Ok(("localhost", "dev", "pw"))),
            ("https://site.com/path", Err(Reason::NoSeparator)),
            ("site.com:user", Err(Reason::NoSeparator)),
        ];
        for (line, want) in cases {
            let text = |b: &'static [u8]| std::str::from_utf8(b).expect("ASCII case");
            let got = split_ulp(line.as_bytes()).map(|u| (text(u.host), text(u.login), text(u.password)));
            assert_eq!(&got, want, "{line}");
        }
    }

    fn record(line: &str) -> (Record, bool) {
        match parse_line(line.as_bytes(), W1252) {
            Ok(Parsed::Record { mut record, password, not_domain }) => {
                record.password =
                    (!password.is_empty()).then(|| PasswordMaterial::Plain(PasswordHashes::of(password)));
                (record, not_domain)
            }
            other => panic!("{line}: {other:?}"),
        }
    }

    #[test]
    fn records_carry_the_website() {
        let (rec, not_domain) = record("https://Login.Example.com:443/x:Ann@Mail.co:pw");
        assert_eq!(rec.website.as_deref(), Some("login.example.com"));
        assert_eq!(rec.account.value, "ann@mail.co");
        assert!(!not_domain);
        assert_eq!(parse_line(b"  ", W1252), Ok(Parsed::Skipped));
    }

    #[test]
    fn hosts_that_are_no_domain_keep_the_account_without_a_website() {
        for line in [
            "https://[::1]/:a@b.co:pw",
            "https://[::1]:8443/x:a@b.co:pw",
            "http://[fe80::1]/:a@b.co:pw",
            "http://192.168.1.1:8080/login:a@b.co:pw",
            "https://10.0.0.1:8080/cgi-bin/luci:a@b.co:pw",
            "http://localhost:3000/:a@b.co:pw",
            "https://intranet/:a@b.co:pw",
            "192.168.0.1:a@b.co:pw",
            "localhost:8080:a@b.co:pw",
        ] {
            let (rec, not_domain) = record(line);
            assert_eq!(
                (rec.account.value.as_str(), rec.website, not_domain),
                ("a@b.co", None, true),
                "{line}"
            );
            assert!(rec.password.is_some(), "{line}");
        }
        // No host at all, or bytes no host has: still no website to speak of.
        for line in ["https://:a@b.co:pw", "https://ex%ample$.com/:a@b.co:pw", "https://[zz]/:a@b.co:pw"] {
            assert_eq!(parse_line(line.as_bytes(), W1252), Err(Reason::InvalidWebsite), "{line}");
        }
    }

    #[test]
    fn lines_that_open_with_no_url_are_banners() {
        for line in [
            "Telegram: @redline_support",
            "Build ID: 7f3a:2",
            "*  |  _ \\ ___  __| |  *",
            "Log date: 12/01/2026 10:00:00",
            "[INFO] grabbed 12 passwords",
            "intranet:bob:pw",
        ] {
            assert_eq!(parse_line(line.as_bytes(), W1252), Ok(Parsed::Skipped), "{line}");
        }
        // A line that opens with a URL and does not split is a ULP line gone wrong.
        assert_eq!(parse_line(b"https://site.com/path", W1252), Err(Reason::NoSeparator));
        assert_eq!(parse_line(b"site.com:user", W1252), Err(Reason::NoSeparator));
    }
}
