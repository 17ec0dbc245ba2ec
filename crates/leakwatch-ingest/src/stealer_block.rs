//! Infostealer `Passwords.txt` blocks: one credential spread over labelled
//! lines, as the stealer families write them.
//!
//! ```text
//! URL: https://accounts.example.com/login      (RedLine / META)
//! Username: ann@mail.co
//! Password: pa: ss
//! Application: Google_[Chrome]_Default
//! ===============
//! Soft: Chrome                                  (older families)
//! Host: https://site.com
//! Login: bob
//! Password: x
//! ```
//!
//! Layouts differ by family and even by build, so labels are matched by
//! vocabulary (case-insensitively) rather than by position, and a block ends at
//! a separator line, at a line that is not a label line, or at a label whose role
//! the block already has (files whose blocks have no separator at all). The
//! value is everything after the label's `:` and one space: never split again,
//! because passwords hold `: ` too. Lines that are not label lines are read as
//! ULP lines, so one file may mix both.
//!
//! A block is one record of the chunker ([`Blocks`]), so chunk boundaries never
//! fall inside one and parsing stays independent of the chunk size. Lines
//! outside blocks that open with no URL are banners' (ASCII art, `Telegram:`
//! lines), skipped.

use encoding_rs::Encoding;
use leakwatch_types::{AccountKind, DataClass, PasswordMaterial, Record, Records};
use memchr::memchr;

use crate::chunk::{content_len, lines, Scan, Splitter, MAX_LINE, SCAN_WINDOW};
use crate::combo::{has_control, Lanes};
use crate::report::{Reason, Tallies};
use crate::stealer::Parsed;

/// What a labelled line holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Role {
    Url,
    Login,
    Password,
    /// Known labels whose value is not kept: the browser, the profile.
    Other,
}

impl Role {
    fn bit(self) -> u8 {
        1 << self as u8
    }
}

/// The label vocabulary, lower-case: the families' own spellings, including the
/// leetspeak ones some builds write to dodge naive scanners.
const LABELS: &[(&str, Role)] = &[
    ("url", Role::Url),
    ("host", Role::Url),
    ("hostname", Role::Url),
    ("site", Role::Url),
    ("website", Role::Url),
    ("username", Role::Login),
    ("user", Role::Login),
    ("user name", Role::Login),
    ("login", Role::Login),
    ("email", Role::Login),
    ("u53rn4m3", Role::Login),
    ("password", Role::Password),
    ("pass", Role::Password),
    ("passwd", Role::Password),
    ("p455w0rd", Role::Password),
    ("application", Role::Other),
    ("soft", Role::Other),
    ("software", Role::Other),
    ("browser", Role::Other),
    ("profile", Role::Other),
    ("storage", Role::Other),
    ("filename", Role::Other),
];

/// The role and value of a label line, `None` for any other line.
pub(crate) fn label_line(line: &[u8]) -> Option<(Role, &[u8])> {
    let line = line.trim_ascii_start();
    let colon = memchr(b':', &line[..line.len().min(16)])?;
    // A URL's scheme (`https://`, a ULP line's start) is no label.
    if line[colon + 1..].starts_with(b"//") {
        return None;
    }
    let label = line[..colon].trim_ascii();
    let role = LABELS.iter().find(|(name, _)| label.eq_ignore_ascii_case(name.as_bytes()))?.1;
    let value = &line[colon + 1..];
    Some((role, value.strip_prefix(b" ").unwrap_or(value)))
}

/// A line that closes a block: three or more of one of `=` `-` `*` `_` and
/// nothing else (RedLine writes 15 `=`).
pub(crate) fn is_separator(line: &[u8]) -> bool {
    let line = line.trim_ascii();
    line.len() >= 3 && matches!(line[0], b'=' | b'-' | b'*' | b'_') && line.iter().all(|&b| b == line[0])
}

/// Records are blocks of label lines (with their closing separator), or single
/// lines when a line is not a label line.
pub(crate) struct Blocks;

impl Splitter for Blocks {
    fn scan(&self, bytes: &[u8], at_eof: bool) -> Scan {
        let mut at = 0;
        let mut roles = 0u8;
        loop {
            let rest = &bytes[at..];
            if at > 0 && rest.is_empty() {
                return if at_eof { Scan::Record(at) } else { Scan::NeedMore };
            }
            let window = &rest[..rest.len().min(SCAN_WINDOW)];
            let (line, taken) = match memchr(b'\n', window) {
                Some(i) => (&rest[..i], i + 1),
                // A line too long for a block ends the block before it.
                None if window.len() == SCAN_WINDOW => {
                    return if at > 0 { Scan::Record(at) } else { Scan::TooLong }
                }
                None if at_eof => (rest, rest.len()),
                None => return Scan::NeedMore,
            };
            let label = label_line(line);
            if at > 0 {
                // The block goes on only with a label of a role it lacks, or
                // with the separator that closes it, and only within the limit.
                let goes_on = match label {
                    Some((role, _)) => roles & role.bit() == 0,
                    None => is_separator(line),
                };
                if !goes_on || at + content_len(line) > MAX_LINE {
                    return Scan::Record(at);
                }
            } else if content_len(line) > MAX_LINE {
                return Scan::TooLong;
            }
            at += taken;
            match label {
                Some((role, _)) if taken > 0 => roles |= role.bit(),
                // Not a label line: a record by itself (a ULP line, a blank or a
                // separator); or the separator that closes the block.
                _ => return Scan::Record(at),
            }
        }
    }

    /// A record ends after every line that is not a label line: such a line
    /// is a record by itself, or the separator that closes a block, and no
    /// block goes on past it. So the last of them in `region` is a cut found
    /// in one backward step, and the serial reader need not scan the records.
    fn last_line_end(&self, region: &[u8]) -> Option<usize> {
        let mut end = memchr::memrchr(b'\n', region)?;
        loop {
            let start = memchr::memrchr(b'\n', &region[..end]).map_or(0, |i| i + 1);
            if label_line(&region[start..end]).is_none() {
                return Some(end + 1);
            }
            end = start.checked_sub(1)?;
        }
    }
}

/// Parses the blocks and ULP lines of a chunk (whose records were cut by
/// [`Blocks`]).
pub(crate) fn parse_chunk(
    bytes: &[u8],
    legacy: &'static Encoding,
    first_line: u64,
    out: &mut Records,
    t: &mut Tallies,
) {
    let mut line_no = first_line;
    let mut rest = bytes;
    let mut lanes = Lanes::default();
    while !rest.is_empty() {
        let line_end = memchr(b'\n', rest).map_or(rest.len(), |i| i + 1);
        let first = lines(&rest[..line_end]).next().unwrap_or_default();
        let (count, outcome) = if label_line(first).is_none() {
            // A line that is no label line is a record by itself (a ULP line,
            // a banner's, a separator, a blank), as `Blocks` cuts them: the
            // common case needs no block scan.
            rest = &rest[line_end..];
            let outcome = if content_len(first) > MAX_LINE {
                Err(Reason::LineTooLong)
            } else if is_separator(first) {
                Ok(Parsed::Skipped)
            } else {
                crate::stealer::parse_line(first, legacy)
            };
            (1, outcome)
        } else {
            let (n, too_long) = match Blocks.scan(rest, true) {
                Scan::Record(n) => (n, false),
                // A chunk holds whole records, except a too-long line cut
                // short: take its first line alone.
                _ => (line_end, true),
            };
            let record = &rest[..n];
            rest = &rest[n..];
            let count = lines(record).count() as u64;
            (count, if too_long { Err(Reason::LineTooLong) } else { parse_block(record, legacy) })
        };
        match outcome {
            Ok(Parsed::Record { mut record, password, not_domain }) => {
                if !password.is_empty() {
                    record.password = Some(PasswordMaterial::Plain(lanes.hashes(out.len(), password)));
                }
                t.accept(&record);
                if record.website.is_some() {
                    t.classes.add(DataClass::Urls);
                }
                t.website_not_domain += u64::from(not_domain);
                out.push(record);
                lanes.drain_full(out);
            }
            Ok(Parsed::Skipped) => t.blank += 1,
            Err(reason) => t.reject(reason, line_no),
        }
        line_no += count;
    }
    lanes.drain_all(out);
    t.lines += line_no - first_line;
}

/// The record of one block; `legacy` decodes a login that is not UTF-8.
pub(crate) fn parse_block<'a>(block: &'a [u8], legacy: &'static Encoding) -> Result<Parsed<'a>, Reason> {
    let (mut url, mut login, mut password) = (None, None, None);
    for line in lines(block) {
        if has_control(line.trim_ascii()) {
            return Err(Reason::ControlCharacters);
        }
        match label_line(line) {
            Some((Role::Url, v)) => url = Some(v),
            Some((Role::Login, v)) => login = Some(v),
            Some((Role::Password, v)) => password = Some(v),
            Some((Role::Other, _)) | None => {}
        }
    }
    let website = crate::stealer::website(url.map(url_host).unwrap_or_default())?;
    let not_domain = website.is_none();
    let login = login.map(<[u8]>::trim_ascii).unwrap_or_default();
    if login.is_empty() {
        return Err(Reason::NoAccount);
    }
    let account = crate::stealer::login_account(login, legacy)?;
    // A user name says nothing searchable about a person: HIBP keeps website
    // pairs for addresses only.
    let website = if account.kind == AccountKind::Email { website } else { None };
    let password = password.unwrap_or_default();
    Ok(Parsed::Record { record: Record { account, password: None, website }, password, not_domain })
}

/// The host of a URL value: after an optional `scheme://`, up to the first `/`
/// `?` `#`, after the last `@` (user info, `android://<hash>@package`), without
/// a numeric `:port`; an IPv6 literal keeps its brackets.
pub(crate) fn url_host(url: &[u8]) -> &[u8] {
    let url = url.trim_ascii();
    let mut rest = url;
    if let Some(i) = url.windows(3).position(|w| w == b"://") {
        if url[..i].iter().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'+' | b'-' | b'.')) {
            rest = &url[i + 3..];
        }
    }
    let end = rest.iter().position(|b| matches!(b, b'/' | b'?' | b'#')).unwrap_or(rest.len());
    let mut host = &rest[..end];
    if let Some(at) = host.iter().rposition(|&b| b == b'@') {
        host = &host[at + 1..];
    }
    if host.first() == Some(&b'[') {
        if let Some(close) = memchr(b']', host) {
            return &host[..close + 1];
        }
    }
    if let Some(colon) = host.iter().rposition(|&b| b == b':') {
        let port = &host[colon + 1..];
        if !port.is_empty() && port.len() <= 5 && port.iter().all(u8::is_ascii_digit) {
            host = &host[..colon];
        }
    }
    host
}

/// Whether `window` (whole lines) holds a block with a URL, a login and a
/// password: the structure that tells a stealer log whatever precedes it,
/// where a combo list holds at most a stray line that looks like a label.
pub(crate) fn has_block(window: &[u8]) -> bool {
    const FULL: u8 = 1 << Role::Url as u8 | 1 << Role::Login as u8 | 1 << Role::Password as u8;
    let mut roles = 0u8;
    for line in lines(window) {
        roles = match label_line(line) {
            Some((role, _)) if roles & role.bit() == 0 => roles | role.bit(),
            // A role the block has already starts the next block.
            Some((role, _)) => role.bit(),
            None => 0,
        };
        if roles & FULL == FULL {
            return true;
        }
    }
    false
}

/// Whether a file's name is one the stealer families give their password
/// lists (`Passwords.txt`, `Password List.txt`, `_AllPasswords_list.txt`),
/// looking at the last component of a path or of an archive member name.
pub(crate) fn is_password_list_name(name: &str) -> bool {
    let base = name.rsplit(['/', '\\', '!']).next().unwrap_or(name).to_ascii_lowercase();
    matches!(
        base.as_str(),
        "passwords.txt" | "password list.txt" | "_allpasswords_list.txt" | "all passwords.txt"
    )
}

/// Whether a first line shows a stealer log: a label line whose label opens a
/// block in some family (`URL:`, `Host:`, `Soft:`), or a ULP line that starts
/// with a URL scheme (`https://host/path:login:password`; read as a combo, its
/// "identity" would be the scheme).
pub(crate) fn looks_like_stealer_log(line: &[u8]) -> bool {
    let Some((role, _)) = label_line(line) else { return looks_like_ulp(line) };
    let label = line.trim_ascii_start();
    role == Role::Url || (role == Role::Other && label[..4.min(label.len())].eq_ignore_ascii_case(b"soft"))
}

/// A line that starts with a URL scheme and `://` (`[A-Za-z][A-Za-z0-9+.-]*`,
/// at most 32 bytes) and splits into URL, login and password: a ULP line, since
/// no combo identity looks like that (a lone link, as in a banner, does not split).
fn looks_like_ulp(line: &[u8]) -> bool {
    let line = line.trim_ascii_start();
    let Some(end) = memchr::memmem::find(&line[..line.len().min(35)], b"://") else { return false };
    let scheme = &line[..end];
    scheme.first().is_some_and(u8::is_ascii_alphabetic)
        && scheme.iter().all(|&b| b.is_ascii_alphanumeric() || matches!(b, b'+' | b'.' | b'-'))
        && crate::stealer::split_ulp(line).is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_are_matched_by_vocabulary_and_values_are_never_split() {
        let cases: &[(&str, Option<(Role, &str)>)] = &[
            ("URL: https://a.com", Some((Role::Url, "https://a.com"))),
            ("host:https://a.com", Some((Role::Url, "https://a.com"))),
            ("  USER: bob", Some((Role::Login, "bob"))),
            ("U53RN4M3: bob", Some((Role::Login, "bob"))),
            ("P455W0RD: a: b:c", Some((Role::Password, "a: b:c"))),
            ("Password:  lead", Some((Role::Password, " lead"))),
            ("Password:", Some((Role::Password, ""))),
            ("Application: Google_[Chrome]_Default", Some((Role::Other, "Google_[Chrome]_Default"))),
            ("https://a.com:bob:pw", None),
            ("android://aGFzaA==@com.app/:bob:pw", None),
            ("Cookie: x", None),
            ("", None),
        ];
        for (line, want) in cases {
            let got = label_line(line.as_bytes()).map(|(r, v)| (r, std::str::from_utf8(v).expect("ASCII")));
            assert_eq!(got, *want, "{line}");
        }
    }

    #[test]
    fn url_hosts() {
        let cases: &[(&str, &str)] = &[
            ("https://Login.Example.com:8443/path?x=1", "Login.Example.com"),
            ("android://aGFzaA==@com.whatsapp/", "com.whatsapp"),
            ("site.com/login", "site.com"),
            ("http://user:pw@site.com:80", "site.com"),
            (" chrome-extension://abc/popup.html ", "abc"),
            ("", ""),
        ];
        for (url, want) in cases {
            assert_eq!(url_host(url.as_bytes()), want.as_bytes(), "{url}");
        }
    }

    #[test]
    fn blocks_end_at_separators_foreign_lines_and_repeated_roles() {
        let cases: &[(&str, Scan)] = &[
            ("URL: a\nUser: b\nPass: c\n=====\nURL: d\n", Scan::Record(29)),
            ("URL: a\nUser: b\n\nURL: d\n", Scan::Record(15)),
            ("URL: a\nUser: b\nURL: d\n", Scan::Record(15)),
            ("URL: a\nUser: b", Scan::Record(14)),
            ("URL: a\nUser: b\n", Scan::Record(15)),
            ("a.com:b:c\nURL: d\n", Scan::Record(10)),
        ];
        for (input, want) in cases {
            assert_eq!(Blocks.scan(input.as_bytes(), true), *want, "{input:?}");
        }
        assert_eq!(Blocks.scan(b"URL: a\nUser: b\n", false), Scan::NeedMore);
        // A cut in one step: after the last line that is not a label line.
        let region = b"URL: a\nUser: b\n=====\nURL: c\nUser: d\n";
        assert_eq!(Blocks.last_line_end(region), Some(21));
        assert_eq!(Blocks.last_line_end(b"a.com:b:c\nURL: d\nUser: e"), Some(10));
        assert_eq!(Blocks.last_line_end(b"URL: a\nUser: b\n"), None);
        assert_eq!(Blocks.last_line_end(b"\nURL: a\n"), Some(1));
        assert_eq!(Blocks.scan(b"URL: a\nUser: b\nPass: c\n==", false), Scan::NeedMore);
    }

    #[test]
    fn password_list_names() {
        for name in [
            "Passwords.txt",
            "log/passwords.txt",
            "a.zip!US[ABC]/Password List.txt",
            "_AllPasswords_list.txt",
        ] {
            assert!(is_password_list_name(name), "{name}");
        }
        for name in ["combo.txt", "Passwords.txt.bak", "Cookies/Passwords.txt2"] {
            assert!(!is_password_list_name(name), "{name}");
        }
    }
}
