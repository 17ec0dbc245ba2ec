//! Format detection (`--format auto`): one look at the first line that is
//! neither blank nor too long, then, for a file that would otherwise be a
//! combo list, a look for stealer-log blocks in the lines after it: a
//! `Passwords.txt` opens with banners (ASCII art, `Telegram: @...`) that
//! say nothing, and renamed or concatenated, it has only its blocks to show.

use crate::columns::role_of;
use crate::csv::pick_delimiter;
use crate::Format;

/// How far detection looks for stealer-log blocks: whole lines within this
/// many bytes from the first line with content.
pub(crate) const DETECT_WINDOW: usize = 64 << 10;

/// The format of an input whose first non-blank line is `line` (without its
/// line ending), and whose whole lines within [`DETECT_WINDOW`] bytes from
/// that line are `window`. `None` (no such line) is a combo list, which has
/// no header.
pub(crate) fn detect_format(line: Option<&[u8]>, window: &[u8]) -> Format {
    let Some(line) = line.map(<[u8]>::trim_ascii) else {
        return Format::Combo;
    };
    if line.starts_with(b"{") {
        return Format::Ndjson;
    }
    if crate::sql::looks_like_sql(line) {
        return Format::Sql;
    }
    if crate::stealer_block::looks_like_stealer_log(line) {
        return Format::Stealer;
    }
    // A plain split, not a CSV parse: column names are never quoted with the
    // delimiter inside them, and a header is what we are looking for.
    let delimiter = pick_delimiter(line);
    let fields = line.split(|&b| b == delimiter);
    let mut count = 0;
    let mut known = false;
    for field in fields {
        count += 1;
        let field = field.trim_ascii();
        let unquoted = field.strip_prefix(b"\"").and_then(|f| f.strip_suffix(b"\"")).unwrap_or(field);
        known |= role_of(unquoted).is_some();
    }
    if count >= 2 && known {
        Format::Csv
    } else if crate::stealer_block::has_block(window) {
        Format::Stealer
    } else {
        Format::Combo
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn first_line_decides() {
        let cases: &[(&[u8], Format)] = &[
            (b"{\"email\": \"a@b.co\"}", Format::Ndjson),
            (b"  {broken", Format::Ndjson),
            (b"email,password", Format::Csv),
            (b"\"Email\";\"Pass\";\"Other\"", Format::Csv),
            (b"id\tlogin\tx", Format::Csv),
            (b"id|name", Format::Csv),
            (b"email", Format::Combo),
            (b"alice@example.com:hunter2", Format::Combo),
            (b"alice@example.com;hunter2", Format::Combo),
            (b"email:password", Format::Combo),
            (b"a,b,c", Format::Combo),
            (b"", Format::Combo),
            (b"-- MySQL dump 10.13  Distrib 8.0.36", Format::Sql),
            (b"/*M!999999\\- enable the sandbox mode */ ", Format::Sql),
            (b"--", Format::Sql),
            (b"\\restrict abc", Format::Sql),
            (b"insert into t values (1,'a@b.co')", Format::Sql),
            (b"COPY public.users (id) FROM stdin;", Format::Sql),
            (b"--user@example.com:pw", Format::Combo),
            (b"URL: https://site.com/login", Format::Stealer),
            (b"soft: Chrome", Format::Stealer),
            (b"Host: https://site.com", Format::Stealer),
            // A ULP line: read as a combo, its identity would be the scheme.
            (b"https://site.com:user:pw", Format::Stealer),
            (b"android://aGFzaA==@com.app/:user:pw", Format::Stealer),
            (b"site.com/login:user:pw", Format::Combo),
            (b"https://t.me/freshcombos", Format::Combo),
            (b"Username: bob", Format::Combo),
        ];
        for (line, want) in cases {
            assert_eq!(detect_format(Some(line), line), *want, "{}", String::from_utf8_lossy(line));
        }
        assert_eq!(detect_format(None, b""), Format::Combo);
    }

    /// The window's whole lines, as the reader gives them, after the first.
    fn detect(text: &[u8]) -> Format {
        let first = text.split(|&b| b == b'\n').next().map(|l| l.strip_suffix(b"\r").unwrap_or(l));
        detect_format(first, text)
    }

    #[test]
    fn blocks_behind_banners_are_a_stealer_log() {
        let cases: &[(&[u8], Format)] = &[
            // RedLine / META, with its banner and Telegram line first.
            (
                b"*****************************\r\n*  RedLine  |  __ \\  *\r\nTelegram: @redline_support\r\n\r\nURL: https://a.example.com\r\nUsername: ann@mail.co\r\nPassword: pw\r\n===============\r\n",
                Format::Stealer,
            ),
            // Older families: Soft and Host open the block.
            (b"Build ID: 7f3a\nSoft: Chrome\nHost: https://b.example.com\nLogin: bob\nPassword: x\n", Format::Stealer),
            // Obfuscated labels.
            (b"=====\nurl: http://192.168.1.1/\nU53RN4M3: admin\nP455W0RD: admin\n", Format::Stealer),
            // A combo list with label-like lines but no block: a URL line, then
            // a login and a password line, is needed.
            (b"bob@mail.co:pw\nUsername: carol\nPassword: x\nann@mail.co:pw2\n", Format::Combo),
            (b"bob@mail.co:pw\nURL: https://a.example.com\nann@mail.co:pw2\nPassword: x\n", Format::Combo),
            (b"user:pass\nurl:https://x.com\nuser:bob\n", Format::Combo),
            // The first line still wins: a CSV header, a SQL dump.
            (b"email,password\nURL: https://a.example.com\nUsername: a@b.co\nPassword: x\n", Format::Csv),
            (b"-- MySQL dump\nURL: https://a.example.com\nUsername: a@b.co\nPassword: x\n", Format::Sql),
        ];
        for (text, want) in cases {
            assert_eq!(detect(text), *want, "{}", String::from_utf8_lossy(text));
        }
        // Only whole lines in the window count: a block cut by its end does not.
        assert_eq!(
            detect_format(Some(b"banner"), b"banner\nURL: https://a.example.com\nUsername: a@b.co\n"),
            Format::Combo
        );
    }
}
