//! Infostealer "ULP" lines, `URL:login:password` (`--format stealer`): the
//! website each login was captured for becomes the record's `website`, as
//! HIBP keeps stealer logs (email -> website domains).
//!
//! The URL is consumed first, by its own grammar, because it holds `:` of
//! its own: scheme, authority with an optional numeric port, then the path up
//! to the next separator. The login runs to the next separator (`:`, `|` or a
//! space) and the password is the rest of the line, never split again.

use leakwatch_types::{
    normalize_domain, normalize_email, normalize_username, Account, AccountKind, PasswordHashes,
    PasswordMaterial, Record,
};

use encoding_rs::Encoding;

use crate::chunk::MAX_LINE;
use crate::combo::has_control;
use crate::encoding::identity_text;
use crate::report::Reason;

fn is_sep(b: u8) -> bool {
    matches!(b, b':' | b'|' | b' ')
}

/// The parts of a ULP line: website host, login, password.
pub(crate) struct Ulp<'a> {
    pub(crate) host: &'a [u8],
    pub(crate) login: &'a [u8],
    pub(crate) password: &'a [u8],
}

/// Splits a ULP line into its website host, login and password.
pub(crate) fn split_ulp(line: &[u8]) -> Result<Ulp<'_>, Reason> {
    let mut i = 0;
    let scheme_end = line.windows(3).position(|w| w == b"://");
    if let Some(n) = scheme_end.filter(|&n| line[..n].iter().all(|b| b.is_ascii_alphanumeric() || *b == b'-'))
    {
        i = n + 3;
    }
    let host_start = i;
    while i < line.len() && !matches!(line[i], b'/' | b'?' | b'#') && !is_sep(line[i]) {
        i += 1;
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
        while i < line.len() && !is_sep(line[i]) {
            i += 1;
        }
    }
    // `android://<hash>==@com.package/`: the package is the site.
    if let Some(at) = host.iter().rposition(|&b| b == b'@') {
        host = &host[at + 1..];
    }
    if i >= line.len() {
        return Err(Reason::NoSeparator);
    }
    let rest = &line[i + 1..];
    let login_end = rest.iter().position(|&b| is_sep(b)).ok_or(Reason::NoSeparator)?;
    Ok(Ulp { host, login: &rest[..login_end], password: &rest[login_end + 1..] })
}

/// Parses one ULP line (the lines of a stealer log that are not blocks).
/// `legacy` decodes logins that are not UTF-8.
pub(crate) fn parse_line(line: &[u8], legacy: &'static Encoding) -> Result<Option<Record>, Reason> {
    if line.len() > MAX_LINE {
        return Err(Reason::LineTooLong);
    }
    let line = line.trim_ascii();
    if line.is_empty() {
        return Ok(None);
    }
    if has_control(line) {
        return Err(Reason::ControlCharacters);
    }
    let Ulp { host, login, password } = split_ulp(line)?;
    let website = std::str::from_utf8(host).ok().and_then(normalize_domain).ok_or(Reason::InvalidWebsite)?;
    let login = &*identity_text(login, legacy);
    let account = if login.contains('@') {
        Account { kind: AccountKind::Email, value: normalize_email(login).map_err(|_| Reason::InvalidEmail)? }
    } else {
        Account {
            kind: AccountKind::Username,
            value: normalize_username(login).ok_or(Reason::InvalidUsername)?,
        }
    };
    let password = (!password.is_empty()).then(|| PasswordMaterial::Plain(PasswordHashes::of(password)));
    Ok(Some(Record { account, password, website: Some(website) }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use encoding_rs::WINDOWS_1252 as W1252;

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
            ("https://site.com/path", Err(Reason::NoSeparator)),
            ("site.com:user", Err(Reason::NoSeparator)),
        ];
        for (line, want) in cases {
            let text = |b: &'static [u8]| std::str::from_utf8(b).expect("ASCII case");
            let got = split_ulp(line.as_bytes()).map(|u| (text(u.host), text(u.login), text(u.password)));
            assert_eq!(&got, want, "{line}");
        }
    }

    #[test]
    fn records_carry_the_website() {
        let rec = parse_line(b"https://Login.Example.com:443/x:Ann@Mail.co:pw", W1252)
            .expect("ok")
            .expect("record");
        assert_eq!(rec.website.as_deref(), Some("login.example.com"));
        assert_eq!(rec.account.value, "ann@mail.co");
        assert_eq!(parse_line(b"https://[::1]/:a@b.co:pw", W1252), Err(Reason::InvalidWebsite));
        assert_eq!(parse_line(b"  ", W1252), Ok(None));
    }
}
