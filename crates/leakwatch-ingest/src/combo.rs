//! Combo lists: one `identity<sep>password` per line, the most traded dump shape
//! and the ingest hot loop.
//!
//! Per line the work is a few byte scans over a slice of the chunk, one
//! normalization of the identity (the account's `String` is the only
//! allocation) and the two password digests; the plaintext never leaves the
//! chunk buffer, but for short passwords' copies in the SHA-1 and NTLM lanes,
//! locals of [`parse_chunk`] that fill in those records' digests sixteen
//! (SHA-1) or eight (NTLM, ASCII only) at a time before it returns.

use leakwatch_types::{
    normalize_email, normalize_phone, normalize_plain_email_into, normalize_username, ntlm, sha1, Account,
    AccountKind, NtlmLanes, PasswordHashes, PasswordMaterial, Record, Records, Sha1Lanes,
};

use encoding_rs::Encoding;

use crate::chunk::{content_len, lines, MAX_LINE};
use crate::encoding::identity_text;
use crate::report::{Reason, Tallies};

/// Whether identities without `@` are user names or mistakes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Mode {
    /// Most identities are addresses: one without `@` is rejected.
    Email,
    /// Identities are user names (or phone numbers).
    Username,
}

/// Lines sampled to choose the mode.
pub(crate) const SAMPLE_SIZE: usize = 1000;

/// Counts the sample that chooses the [`Mode`].
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct Sample {
    /// Lines in the sample so far.
    pub(crate) lines: usize,
    with_separator: usize,
    with_at: usize,
}

impl Sample {
    /// Adds a line (without its LF) if it belongs in the sample: one that is not
    /// blank, not too long and free of control characters.
    pub(crate) fn add(&mut self, line: &[u8]) {
        if self.lines >= SAMPLE_SIZE || content_len(line) > MAX_LINE {
            return;
        }
        let line = line.trim_ascii();
        if line.is_empty() || has_control(line) {
            return;
        }
        self.lines += 1;
        if let Some(sep) = find_separator(line) {
            self.with_separator += 1;
            self.with_at += usize::from(line[..sep].contains(&b'@'));
        }
    }

    pub(crate) fn is_full(&self) -> bool {
        self.lines >= SAMPLE_SIZE
    }

    /// Email when at least half of the sampled lines with a separator have an
    /// `@` in their identity (an empty sample counts as email).
    pub(crate) fn mode(&self) -> Mode {
        if self.with_at * 2 >= self.with_separator {
            Mode::Email
        } else {
            Mode::Username
        }
    }
}

/// What one line became.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Outcome {
    Blank,
    Rejected(Reason),
    Accepted(Record),
}

/// Parses the lines of a chunk.
pub(crate) fn parse_chunk(
    bytes: &[u8],
    mode: Mode,
    legacy: &'static Encoding,
    first_line: u64,
    out: &mut Records,
    tallies: &mut Tallies,
) {
    let mut line_no = first_line;
    let mut scratch = Vec::new();
    // An accepted account's text is copied into `out`; its buffer comes back
    // here for the next line, so plain addresses cost no allocation each.
    let mut account = String::new();
    let mut lanes = Lanes::default();
    for line in lines(bytes) {
        match parse_line(line, mode, legacy, &mut scratch, &mut account, &mut lanes, out.len()) {
            Outcome::Blank => tallies.blank += 1,
            Outcome::Rejected(reason) => tallies.reject(reason, line_no),
            Outcome::Accepted(record) => {
                tallies.accept(&record);
                let Record { account: accepted, password, website } = record;
                out.push_parts(accepted.kind, &accepted.value, password, website.as_deref());
                account = accepted.value;
                lanes.drain_full(out);
            }
        }
        line_no += 1;
    }
    lanes.drain_all(out);
    tallies.lines += line_no - first_line;
}

/// Passwords queued for their digests, each lane group filling and draining
/// on its own: SHA-1 takes any short password, NTLM only short ASCII ones.
/// Hashing sixteen (or eight) short passwords at a time is what keeps the
/// digests from dominating a parser's time.
#[derive(Debug, Default)]
pub(crate) struct Lanes {
    sha1: Sha1Lanes,
    ntlm: NtlmLanes,
}

impl Lanes {
    /// The digests of `password` for the record the caller puts at `slot`:
    /// those a lane takes are left zero, filled in by [`Lanes::drain_full`]
    /// or [`Lanes::drain_all`]. A queued copy leaves `password`'s buffer free.
    pub(crate) fn hashes(&mut self, slot: usize, password: &[u8]) -> PasswordHashes {
        let sha1 = if self.sha1.push(slot, password) { [0; 20] } else { sha1(password) };
        let ntlm = if self.ntlm.push(slot, password) { [0; 16] } else { ntlm(password) };
        PasswordHashes { sha1, ntlm }
    }

    /// Fills in the queued digests of a full lane group; after each record
    /// pushed to `out`.
    pub(crate) fn drain_full(&mut self, out: &mut Records) {
        if self.ntlm.is_full() {
            self.ntlm.drain(|slot, digest| out.plain_mut(slot).ntlm = digest);
        }
        if self.sha1.is_full() {
            self.sha1.drain(|slot, digest| out.plain_mut(slot).sha1 = digest);
        }
    }

    /// Fills in every queued digest: before `out` leaves the parser.
    pub(crate) fn drain_all(&mut self, out: &mut Records) {
        self.ntlm.drain(|slot, digest| out.plain_mut(slot).ntlm = digest);
        self.sha1.drain(|slot, digest| out.plain_mut(slot).sha1 = digest);
    }
}

/// Applies the combo rules to one line, without its LF or CRLF ending.
/// `scratch` holds decoded `$HEX[...]`; `legacy` decodes identities that are
/// not UTF-8; `account` is a buffer a plain address is normalized into (and
/// moved out of). A short password's SHA-1, and a short ASCII one's NTLM, are
/// left zero and its copies queued in `lanes` for `slot`, where the caller
/// puts an accepted record.
pub(crate) fn parse_line(
    line: &[u8],
    mode: Mode,
    legacy: &'static Encoding,
    scratch: &mut Vec<u8>,
    account: &mut String,
    lanes: &mut Lanes,
    slot: usize,
) -> Outcome {
    // `line` has lost its line ending already (see `chunk::lines`).
    if line.len() > MAX_LINE {
        return Outcome::Rejected(Reason::LineTooLong);
    }
    let line = line.trim_ascii();
    if line.is_empty() {
        return Outcome::Blank;
    }
    if has_control(line) {
        return Outcome::Rejected(Reason::ControlCharacters);
    }
    let Some(sep) = find_separator(line) else {
        return Outcome::Rejected(Reason::NoSeparator);
    };
    let password = &line[sep + 1..];
    let account = match identity(line[..sep].trim_ascii(), mode, legacy, account) {
        Ok(account) => account,
        Err(reason) => return Outcome::Rejected(reason),
    };
    let password = if password.is_empty() {
        None
    } else {
        let bytes = match decode_hex_form(password, scratch) {
            true => &scratch[..],
            false => password,
        };
        Some(PasswordMaterial::Plain(lanes.hashes(slot, bytes)))
    };
    Outcome::Accepted(Record { account, password, website: None })
}

fn identity(
    identity: &[u8],
    mode: Mode,
    legacy: &'static Encoding,
    buffer: &mut String,
) -> Result<Account, Reason> {
    // Most identities are plain addresses: ASCII, so UTF-8 as they stand.
    if normalize_plain_email_into(identity, buffer) {
        return Ok(Account { kind: AccountKind::Email, value: std::mem::take(buffer) });
    }
    let identity = &*identity_text(identity, legacy);
    if identity.contains('@') {
        let value = normalize_email(identity).map_err(Reason::email)?;
        return Ok(Account { kind: AccountKind::Email, value });
    }
    if mode == Mode::Email {
        return Err(Reason::NotAnEmailAddress);
    }
    if identity.starts_with('+') {
        if let Some(value) = normalize_phone(identity) {
            return Ok(Account { kind: AccountKind::Phone, value });
        }
    }
    if identity.len() > 64 || identity.chars().any(char::is_whitespace) {
        return Err(Reason::InvalidUsername);
    }
    let value = normalize_username(identity).ok_or(Reason::InvalidUsername)?;
    Ok(Account { kind: AccountKind::Username, value })
}

/// The first separator that ends the identity.
///
/// Eight bytes at a time (a byte loop over the identity was a tenth of the
/// parse): a word's bytes equal to `c` are the zero bytes of `word ^ c…c`, and
/// the zero-byte test's lowest flag is always exact (its false flags only
/// follow a true one), so the lowest flag of the four tests is the first
/// separator.
fn find_separator(line: &[u8]) -> Option<usize> {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGHS: u64 = 0x8080_8080_8080_8080;
    let zero_bytes = |x: u64| x.wrapping_sub(ONES) & !x & HIGHS;
    let mut words = line.chunks_exact(8);
    for (i, word) in words.by_ref().enumerate() {
        let w = u64::from_le_bytes(word.try_into().expect("8 bytes"));
        let flags =
            [b':', b';', b'|', b'\t'].iter().fold(0, |f, &c| f | zero_bytes(w ^ (ONES * u64::from(c))));
        if flags != 0 {
            return Some(i * 8 + flags.trailing_zeros() as usize / 8);
        }
    }
    let rest = words.remainder();
    let at = line.len() - rest.len();
    rest.iter().position(|&b| matches!(b, b':' | b';' | b'|' | b'\t')).map(|i| at + i)
}

/// Whether a line holds a C0 control character other than TAB. Written without
/// an early exit so the compiler can check many bytes per instruction.
pub(crate) fn has_control(line: &[u8]) -> bool {
    line.iter().fold(false, |acc, &b| acc | ((b < 0x20) & (b != b'\t')))
}

/// Decodes hashcat's `$HEX[...]` form (one or more pairs of hex digits, either
/// case) into `scratch`; false when `password` is not in that form.
fn decode_hex_form(password: &[u8], scratch: &mut Vec<u8>) -> bool {
    let Some(hex) = password.strip_prefix(b"$HEX[").and_then(|p| p.strip_suffix(b"]")) else {
        return false;
    };
    !hex.is_empty() && leakwatch_types::decode_hex_into(hex, scratch)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex_form_needs_whole_pairs_of_hex_digits() {
        let mut s = Vec::new();
        assert!(decode_hex_form(b"$HEX[6869]", &mut s));
        assert_eq!(s, b"hi");
        assert!(decode_hex_form(b"$HEX[C3a9]", &mut s));
        assert_eq!(s, "é".as_bytes());
        for bad in [&b"$HEX[]"[..], b"$HEX[686]", b"$HEX[zz]", b"$HEX[6869", b"$hex[6869]", b"x$HEX[68]"] {
            assert!(!decode_hex_form(bad, &mut s), "{}", String::from_utf8_lossy(bad));
        }
    }

    #[test]
    fn separator_is_the_first_of_the_four() {
        let naive = |l: &[u8]| l.iter().position(|&b| matches!(b, b':' | b';' | b'|' | b'\t'));
        // Every position in lines of every length up to three words, next to
        // bytes one off a separator (the zero-byte test's borrow cases).
        let filler = [b'a', b'9', b'<', b'{', b'}', 0x08, 0x0a, 0x80, 0xff, 0];
        for len in 0..25 {
            for at in 0..=len {
                for (k, &sep) in [b':', b';', b'|', b'\t'].iter().enumerate() {
                    let mut line: Vec<u8> = (0..len).map(|i| filler[(i + k + at) % filler.len()]).collect();
                    if at < len {
                        line[at] = sep;
                        // A later separator must not win.
                        if at + 3 < len {
                            line[at + 3] = b':';
                        }
                    }
                    assert_eq!(find_separator(&line), naive(&line), "{line:?}");
                }
            }
        }
        assert_eq!(find_separator(b"alice@example.com:pw;x"), Some(17));
    }

    #[test]
    fn queued_digests_land_in_their_records_after_earlier_ones() {
        // Records already in `out` shift every slot.
        let mut out: Records = [Record {
            account: Account { kind: AccountKind::Email, value: "first@example.com".into() },
            password: None,
            website: None,
        }]
        .into_iter()
        .collect();
        let passwords: Vec<String> = (0..19).map(|i| "p".repeat(i + 1)).collect();
        let chunk: String = passwords.iter().map(|p| format!("a@b.co:{p}\nbad line\n")).collect();
        let mut tallies = Tallies::default();
        parse_chunk(chunk.as_bytes(), Mode::Email, encoding_rs::WINDOWS_1252, 1, &mut out, &mut tallies);
        assert_eq!(out.len(), 1 + passwords.len());
        for (record, p) in out.to_vec()[1..].iter().zip(&passwords) {
            assert_eq!(
                record.password,
                Some(PasswordMaterial::Plain(PasswordHashes::of(p.as_bytes()))),
                "{p}"
            );
        }
    }

    #[test]
    fn control_characters_other_than_tab() {
        assert!(!has_control(b"a\tb"));
        assert!(has_control(b"a\0b"));
        assert!(has_control(b"a\x1fb"));
        assert!(!has_control("caf\u{e9}\x7f".as_bytes()));
    }

    #[test]
    fn sample_votes_by_half() {
        let mut s = Sample::default();
        assert_eq!(s.mode(), Mode::Email, "empty sample");
        for line in [&b"a@b.co:1"[..], b"bob:2", b"", b"x\0:3", b"noseparator"] {
            s.add(line);
        }
        assert_eq!(s.lines, 3);
        assert_eq!(s.mode(), Mode::Email, "one of two");
        s.add(b"carol:3");
        assert_eq!(s.mode(), Mode::Username, "one of three");
    }
}
