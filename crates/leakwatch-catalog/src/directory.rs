//! An organization's directory of accounts, as read from a file or a server:
//! the model the catalog keeps (address, user name, disabled state, the
//! password's findings), the two file readers, CSV and pwdump/secretsdump, and
//! [`RecordReader`], which applies the same rules to records a server returns.
//!
//! The model is the one an LDAP import fills too (through [`RecordReader`]):
//! `mail` is the address, `uid` or `sAMAccountName` the user name, the entry's
//! DN kept for a later forced reset. A file or a server may also give each account's
//! current NT hash; it lives in memory for the import only ([`DirectoryEntry`]),
//! never in the catalog (see `docs/security.md`).
//!
//! Bad input is data, not failure: every line that does not make an account is
//! counted under a reason, with the first few line numbers, and the rest are
//! read. Decisions worth knowing:
//! - an account without an address is given `USER@DOMAIN`, `DOMAIN` being the
//!   organization's first domain (pwdump files name accounts `DOMAIN\user`,
//!   a NetBIOS domain, never an address);
//! - machine accounts (names ending in `$`) and secretsdump's password-history
//!   lines (`user_history0`) are left out, counted under their reason: they are
//!   not people who reuse passwords;
//! - a blank hash cell means the hash is unknown; the empty password is its
//!   own hash (`31d6cfe0d16ae931b73c59d7e0c089c0`), and pwdump's
//!   `NO PASSWORD***...` NT field means that hash too;
//! - an address seen twice keeps its first line; the second is counted.

use std::collections::{BTreeMap, HashSet};

use leakwatch_types::{decode_hex, normalize_email};

/// The directory file formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DirectoryFormat {
    /// A header row naming `email`, `username`, `nt_hash` (and optionally
    /// `disabled` or `enabled`), in any order; `,`, `;` or TAB separated.
    Csv,
    /// pwdump / impacket secretsdump: `user:rid:lmhash:nthash:::`, optionally
    /// followed by secretsdump's ` (status=Disabled)`.
    Pwdump,
}

impl DirectoryFormat {
    pub fn as_str(self) -> &'static str {
        match self {
            DirectoryFormat::Csv => "csv",
            DirectoryFormat::Pwdump => "pwdump",
        }
    }

    /// Guesses the format from the content: pwdump when the first line that
    /// is neither blank nor a secretsdump banner (`[*] ...`) has a pwdump
    /// line's shape, CSV otherwise.
    pub fn detect(bytes: &[u8]) -> DirectoryFormat {
        let text = decode(bytes);
        let first = text.lines().map(str::trim).find(|l| !l.is_empty() && !l.starts_with('['));
        match first {
            Some(line) if matches!(parse_pwdump_line(line), PwdumpLine::Account { .. }) => {
                DirectoryFormat::Pwdump
            }
            _ => DirectoryFormat::Csv,
        }
    }
}

/// One account read from a directory file.
#[derive(Clone, PartialEq, Eq)]
pub struct DirectoryEntry {
    /// The normalized address (`mail`).
    pub email: String,
    /// The user name (`uid`, `sAMAccountName`), as the directory spells it.
    pub username: Option<String>,
    /// The NetBIOS domain of a `DOMAIN\user` name.
    pub netbios_domain: Option<String>,
    pub disabled: bool,
    /// The current NT hash, when the file gives one. In memory only.
    pub nt_hash: Option<[u8; 16]>,
    /// The entry's distinguished name, for a directory read over LDAP.
    pub dn: Option<String>,
}

impl std::fmt::Debug for DirectoryEntry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The hash is password-equivalent (pass-the-hash): never printed.
        f.debug_struct("DirectoryEntry")
            .field("email", &self.email)
            .field("username", &self.username)
            .field("netbios_domain", &self.netbios_domain)
            .field("disabled", &self.disabled)
            .field("nt_hash", &self.nt_hash.map(|_| ".."))
            .field("dn", &self.dn)
            .finish()
    }
}

/// Lines that made no account, by reason.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct LeftOut {
    pub count: u64,
    /// The first few line numbers (from 1).
    pub lines: Vec<u64>,
}

/// What a directory file held.
#[derive(Debug, Default)]
pub struct ParsedDirectory {
    pub entries: Vec<DirectoryEntry>,
    /// Reason -> the lines left out for it.
    pub left_out: BTreeMap<&'static str, LeftOut>,
}

const SAMPLE_LINES: usize = 5;

impl ParsedDirectory {
    fn leave_out(&mut self, reason: &'static str, line: u64) {
        let e = self.left_out.entry(reason).or_default();
        e.count += 1;
        if e.lines.len() < SAMPLE_LINES {
            e.lines.push(line);
        }
    }

    /// Adds an account unless its address is already there.
    fn push(&mut self, seen: &mut HashSet<String>, entry: DirectoryEntry, line: u64) {
        if seen.insert(entry.email.clone()) {
            self.entries.push(entry);
        } else {
            self.leave_out("duplicate account", line);
        }
    }
}

/// The NT hash of the empty password.
pub const EMPTY_NT_HASH: [u8; 16] =
    [0x31, 0xd6, 0xcf, 0xe0, 0xd1, 0x6a, 0xe9, 0x31, 0xb7, 0x3c, 0x59, 0xd7, 0xe0, 0xc0, 0x89, 0xc0];

/// Reads a directory file. `default_domain` (the organization's first domain)
/// gives an account without an address one: `user@default_domain`.
pub fn parse_directory(bytes: &[u8], format: DirectoryFormat, default_domain: &str) -> ParsedDirectory {
    let text = decode(bytes);
    match format {
        DirectoryFormat::Csv => parse_csv(&text, default_domain),
        DirectoryFormat::Pwdump => parse_pwdump(&text, default_domain),
    }
}

/// UTF-8 (a BOM dropped, bad bytes replaced), or UTF-16 with its BOM (what
/// Windows PowerShell 5 writes with `-Encoding Unicode`).
fn decode(bytes: &[u8]) -> std::borrow::Cow<'_, str> {
    let utf16 = |le: bool| {
        let units = bytes[2..].chunks_exact(2).map(|c| {
            if le {
                u16::from_le_bytes([c[0], c[1]])
            } else {
                u16::from_be_bytes([c[0], c[1]])
            }
        });
        std::borrow::Cow::Owned(char::decode_utf16(units).map(|c| c.unwrap_or('\u{FFFD}')).collect())
    };
    match bytes {
        [0xFF, 0xFE, ..] => utf16(true),
        [0xFE, 0xFF, ..] => utf16(false),
        [0xEF, 0xBB, 0xBF, rest @ ..] => String::from_utf8_lossy(rest),
        _ => String::from_utf8_lossy(bytes),
    }
}

/// The account's address: the given one normalized, else `user@default_domain`.
fn address(email: Option<&str>, user: Option<&str>, default_domain: &str) -> Result<String, &'static str> {
    match (email.map(str::trim).filter(|e| !e.is_empty()), user) {
        (Some(e), _) => normalize_email(e).map_err(|_| "malformed email address"),
        (None, Some(u)) => {
            normalize_email(&format!("{u}@{default_domain}")).map_err(|_| "user name makes no address")
        }
        (None, None) => Err("no email address or user name"),
    }
}

/// An NT hash of 32 hex digits in either case; empty is unknown.
fn nt_hash(cell: &str) -> Result<Option<[u8; 16]>, &'static str> {
    let cell = cell.trim();
    if cell.is_empty() {
        return Ok(None);
    }
    if cell.starts_with("NO PASSWORD") {
        return Ok(Some(EMPTY_NT_HASH));
    }
    decode_hex::<16>(cell.as_bytes()).map(Some).ok_or("malformed NT hash")
}

/// `DOMAIN\user` -> (Some(DOMAIN), user).
fn split_netbios(name: &str) -> (Option<&str>, &str) {
    match name.split_once('\\') {
        Some((d, u)) if !d.is_empty() => (Some(d), u),
        Some((_, u)) => (None, u),
        None => (None, name),
    }
}

fn parse_csv(text: &str, default_domain: &str) -> ParsedDirectory {
    let mut out = ParsedDirectory::default();
    // The csv crate numbers CRLF-terminated records off by one; as LF lines
    // they are numbered as an editor shows them.
    let text = text.replace("\r\n", "\n");
    let header_line = text.lines().next().unwrap_or("");
    let delimiter = [b',', b';', b'\t']
        .into_iter()
        .max_by_key(|d| header_line.bytes().filter(|b| b == d).count())
        .unwrap_or(b',');
    let mut reader = csv::ReaderBuilder::new()
        .delimiter(delimiter)
        .flexible(true)
        .has_headers(false)
        .from_reader(text.as_bytes());
    let mut records = reader.records();
    let Some(Ok(header)) = records.next() else {
        out.leave_out("no header row", 1);
        return out;
    };
    let find = |names: &[&str]| {
        header.iter().position(|h| {
            let h: String =
                h.trim().chars().filter(|c| !matches!(c, '_' | '-' | ' ')).collect::<String>().to_lowercase();
            names.contains(&h.as_str())
        })
    };
    let email_col = find(&["email", "mail", "emailaddress", "address"]);
    let user_col = find(&["username", "user", "uid", "samaccountname", "login", "account"]);
    let hash_col = find(&["nthash", "nt", "ntlm", "ntlmhash", "hash"]);
    let disabled_col = find(&["disabled"]);
    let enabled_col = find(&["enabled"]);
    if email_col.is_none() && user_col.is_none() {
        out.leave_out("no email or username column in the header", 1);
        return out;
    }
    let mut seen = HashSet::new();
    for record in records {
        let (line, record) = match record {
            Ok(r) => (r.position().map_or(0, |p| p.line()), r),
            Err(e) => {
                out.leave_out("unreadable CSV row", e.position().map_or(0, |p| p.line()));
                continue;
            }
        };
        if record.iter().all(|c| c.trim().is_empty()) {
            continue;
        }
        let cell =
            |col: Option<usize>| col.and_then(|i| record.get(i)).map(str::trim).filter(|c| !c.is_empty());
        let raw_user = cell(user_col);
        let (domain, user) = match raw_user.map(split_netbios) {
            Some((d, u)) => (d, Some(u.trim()).filter(|u| !u.is_empty())),
            None => (None, None),
        };
        if user.is_some_and(|u| u.ends_with('$')) {
            out.leave_out("machine account", line);
            continue;
        }
        let email = match address(cell(email_col), user, default_domain) {
            Ok(e) => e,
            Err(reason) => {
                out.leave_out(reason, line);
                continue;
            }
        };
        let hash = match nt_hash(cell(hash_col).unwrap_or("")) {
            Ok(h) => h,
            Err(reason) => {
                out.leave_out(reason, line);
                continue;
            }
        };
        let disabled = match (cell(disabled_col), cell(enabled_col)) {
            (Some(v), _) => flag(v),
            (None, Some(v)) => flag(v).map(|enabled| !enabled),
            (None, None) => Some(false),
        };
        let Some(disabled) = disabled else {
            out.leave_out("malformed disabled/enabled flag", line);
            continue;
        };
        let entry = DirectoryEntry {
            email,
            username: user.map(str::to_owned),
            netbios_domain: domain.map(str::to_owned),
            disabled,
            nt_hash: hash,
            dn: None,
        };
        out.push(&mut seen, entry, line);
    }
    out
}

fn flag(v: &str) -> Option<bool> {
    match v.to_ascii_lowercase().as_str() {
        "1" | "true" | "yes" | "y" | "disabled" => Some(true),
        "0" | "false" | "no" | "n" | "enabled" => Some(false),
        _ => None,
    }
}

enum PwdumpLine<'a> {
    Blank,
    Account { name: &'a str, nt: Result<Option<[u8; 16]>, &'static str>, disabled: bool },
    Bad(&'static str),
}

/// One pwdump / secretsdump line: `user:rid:lm:nt:::` and what follows.
fn parse_pwdump_line(line: &str) -> PwdumpLine<'_> {
    let line = line.trim();
    if line.is_empty() {
        return PwdumpLine::Blank;
    }
    if line.starts_with('[') {
        return PwdumpLine::Bad("secretsdump banner line");
    }
    let fields: Vec<&str> = line.splitn(7, ':').collect();
    if fields.len() < 7 {
        return PwdumpLine::Bad("not a user:rid:lmhash:nthash::: line");
    }
    let rid_ok = !fields[1].is_empty() && fields[1].bytes().all(|b| b.is_ascii_digit());
    let lm_ok = fields[2].len() == 32 || fields[2].starts_with("NO PASSWORD");
    if fields[0].is_empty() || !rid_ok || !lm_ok || !fields[4].is_empty() || !fields[5].is_empty() {
        return PwdumpLine::Bad("not a user:rid:lmhash:nthash::: line");
    }
    let disabled = fields[6].to_ascii_lowercase().contains("status=disabled");
    PwdumpLine::Account { name: fields[0], nt: nt_hash(fields[3]), disabled }
}

fn parse_pwdump(text: &str, default_domain: &str) -> ParsedDirectory {
    let mut out = ParsedDirectory::default();
    let mut seen = HashSet::new();
    for (i, raw) in text.lines().enumerate() {
        let line = i as u64 + 1;
        let (name, nt, disabled) = match parse_pwdump_line(raw) {
            PwdumpLine::Blank => continue,
            PwdumpLine::Bad(reason) => {
                out.leave_out(reason, line);
                continue;
            }
            PwdumpLine::Account { name, nt, disabled } => (name, nt, disabled),
        };
        let (domain, user) = split_netbios(name);
        if user.ends_with('$') {
            out.leave_out("machine account", line);
            continue;
        }
        if is_history(user) {
            out.leave_out("password history", line);
            continue;
        }
        let nt = match nt {
            Ok(nt) => nt,
            Err(reason) => {
                out.leave_out(reason, line);
                continue;
            }
        };
        // secretsdump may print a user principal name instead of DOMAIN\user.
        let given = user.contains('@').then_some(user);
        let local = user.split('@').next().unwrap_or(user);
        let email = match address(given, Some(local), default_domain) {
            Ok(e) => e,
            Err(reason) => {
                out.leave_out(reason, line);
                continue;
            }
        };
        let entry = DirectoryEntry {
            email,
            username: Some(local.to_owned()),
            netbios_domain: domain.map(str::to_owned),
            disabled,
            nt_hash: nt,
            dn: None,
        };
        out.push(&mut seen, entry, line);
    }
    out
}

/// One account as a directory server returns it: raw attribute values,
/// checked by [`RecordReader::push`] under the file readers' rules.
#[derive(Clone, Default)]
pub struct DirectoryRecord<'a> {
    /// `mail`.
    pub email: Option<&'a str>,
    /// `uid` or `sAMAccountName`.
    pub username: Option<&'a str>,
    /// An NT hash in hex (`sambaNTPassword`), in memory only.
    pub nt_hash: Option<&'a str>,
    pub disabled: bool,
    pub dn: Option<String>,
}

/// Builds a [`ParsedDirectory`] from server records, numbered from 1 in the
/// order they came (the `lines` of [`LeftOut`]): machine accounts, records
/// with neither address nor user name, malformed hashes and repeated
/// addresses are left out under the same reasons as a file's lines.
pub struct RecordReader {
    out: ParsedDirectory,
    seen: HashSet<String>,
    default_domain: String,
    number: u64,
}

impl RecordReader {
    /// `default_domain` gives an account without an address `user@default_domain`.
    pub fn new(default_domain: &str) -> RecordReader {
        RecordReader {
            out: ParsedDirectory::default(),
            seen: HashSet::new(),
            default_domain: default_domain.to_owned(),
            number: 0,
        }
    }

    pub fn push(&mut self, record: DirectoryRecord<'_>) {
        self.number += 1;
        let n = self.number;
        let user = record.username.map(str::trim).filter(|u| !u.is_empty());
        if user.is_some_and(|u| u.ends_with('$')) {
            return self.out.leave_out("machine account", n);
        }
        let email = match address(record.email, user, &self.default_domain) {
            Ok(e) => e,
            Err(reason) => return self.out.leave_out(reason, n),
        };
        let nt = match nt_hash(record.nt_hash.unwrap_or("")) {
            Ok(h) => h,
            Err(reason) => return self.out.leave_out(reason, n),
        };
        let entry = DirectoryEntry {
            email,
            username: user.map(str::to_owned),
            netbios_domain: None,
            disabled: record.disabled,
            nt_hash: nt,
            dn: record.dn,
        };
        self.out.push(&mut self.seen, entry, n);
    }

    /// A record that could not be read at all (e.g. a malformed entry).
    pub fn leave_out(&mut self, reason: &'static str) {
        self.number += 1;
        self.out.leave_out(reason, self.number);
    }

    pub fn finish(self) -> ParsedDirectory {
        self.out
    }
}

/// secretsdump's `-history` lines: `user_history0`, `user_history1`, ...
fn is_history(user: &str) -> bool {
    user.rsplit_once("_history")
        .is_some_and(|(u, n)| !u.is_empty() && !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use leakwatch_types::ntlm;

    /// An entry as the tests compare it: address, user name, disabled, hash.
    type Row<'a> = (&'a str, Option<&'a str>, bool, Option<[u8; 16]>);

    fn hex(h: [u8; 16]) -> String {
        leakwatch_types::encode_hex_upper(&h)
    }

    #[test]
    fn empty_nt_hash_is_the_hash_of_nothing() {
        assert_eq!(ntlm(b""), EMPTY_NT_HASH);
    }

    #[test]
    fn csv_columns_are_found_by_name_with_bom_crlf_and_either_case() {
        let h = ntlm(b"Winter2025!");
        let text = format!(
            "\u{FEFF}NT_Hash;Disabled;E-Mail;UserName\r\n{};false;Alice@Corp.Example;alice\r\n\
             {};1;bob@corp.example;bob\r\n;no;carol@corp.example;\r\n",
            hex(h).to_lowercase(),
            hex(h)
        );
        let d = parse_directory(text.as_bytes(), DirectoryFormat::Csv, "corp.example");
        assert!(d.left_out.is_empty(), "{:?}", d.left_out);
        let got: Vec<Row<'_>> = d
            .entries
            .iter()
            .map(|e| (e.email.as_str(), e.username.as_deref(), e.disabled, e.nt_hash))
            .collect();
        assert_eq!(
            got,
            vec![
                ("alice@corp.example", Some("alice"), false, Some(h)),
                ("bob@corp.example", Some("bob"), true, Some(h)),
                ("carol@corp.example", None, false, None),
            ]
        );
    }

    #[test]
    fn csv_without_a_hash_column_and_dirty_rows() {
        let text = "username,email\n\
                    CORP\\dave,\n\
                    WKS01$,\n\
                    ,not an address\n\
                    ,\n\
                    erin,erin@corp.example\n\
                    erin2,erin@corp.example\n\
                    \"frank, jr\",frank@corp.example\n";
        let d = parse_directory(text.as_bytes(), DirectoryFormat::Csv, "corp.example");
        let emails: Vec<&str> = d.entries.iter().map(|e| e.email.as_str()).collect();
        assert_eq!(emails, ["dave@corp.example", "erin@corp.example", "frank@corp.example"]);
        assert_eq!(d.entries[0].netbios_domain.as_deref(), Some("CORP"));
        assert!(d.entries.iter().all(|e| e.nt_hash.is_none() && !e.disabled));
        let reasons: Vec<(&str, u64, Vec<u64>)> =
            d.left_out.iter().map(|(r, l)| (*r, l.count, l.lines.clone())).collect();
        assert_eq!(
            reasons,
            vec![
                ("duplicate account", 1, vec![7]),
                ("machine account", 1, vec![3]),
                ("malformed email address", 1, vec![4]),
            ]
        );
    }

    #[test]
    fn csv_line_numbers_count_crlf_lines_once() {
        let d = parse_directory(
            b"email,nt_hash\r\na@corp.example,\r\nb@corp.example,xyz\r\n",
            DirectoryFormat::Csv,
            "corp.example",
        );
        assert_eq!(d.left_out["malformed NT hash"].lines, [3]);
    }

    #[test]
    fn csv_bad_hash_and_missing_columns_are_counted_not_fatal() {
        let text =
            "email,nt_hash,enabled\na@corp.example,xyz,true\nb@corp.example,,maybe\nc@corp.example,,false\n";
        let d = parse_directory(text.as_bytes(), DirectoryFormat::Csv, "corp.example");
        assert_eq!(d.entries.len(), 1);
        assert!(d.entries[0].disabled);
        assert_eq!(d.left_out["malformed NT hash"].lines, [2]);
        assert_eq!(d.left_out["malformed disabled/enabled flag"].lines, [3]);
        let d = parse_directory(b"name,phone\nx,1\n", DirectoryFormat::Csv, "corp.example");
        assert!(d.entries.is_empty());
        assert_eq!(d.left_out["no email or username column in the header"].count, 1);
        let d = parse_directory(b"", DirectoryFormat::Csv, "corp.example");
        assert!(d.entries.is_empty());
    }

    #[test]
    fn pwdump_lines_with_domains_machines_history_status_and_junk() {
        let h = ntlm(b"Passw0rd");
        let text = format!(
            "[*] Dumping Domain Credentials (domain\\uid:rid:lmhash:nthash)\r\n\
             CORP\\alice:1104:aad3b435b51404eeaad3b435b51404ee:{}:::\r\n\
             CORP\\bob:1105:aad3b435b51404eeaad3b435b51404ee:{}::: (status=Disabled)\r\n\
             CORP\\alice_history0:1104:aad3b435b51404eeaad3b435b51404ee:{}:::\r\n\
             CORP\\WKS01$:1106:aad3b435b51404eeaad3b435b51404ee:{}:::\r\n\
             carol:1107:NO PASSWORD*********************:NO PASSWORD*********************:::\r\n\
             dave:1108:aad3b435b51404eeaad3b435b51404ee:zz:::\r\n\
             garbage line\r\n\
             \r\n\
             erin@corp.example:1109:aad3b435b51404eeaad3b435b51404ee:{}::: (status=Enabled)\n",
            hex(h).to_lowercase(),
            hex(h),
            hex(h),
            hex(h),
            hex(h)
        );
        assert_eq!(DirectoryFormat::detect(text.as_bytes()), DirectoryFormat::Pwdump);
        let d = parse_directory(text.as_bytes(), DirectoryFormat::Pwdump, "corp.example");
        let got: Vec<Row<'_>> = d
            .entries
            .iter()
            .map(|e| (e.email.as_str(), e.username.as_deref(), e.disabled, e.nt_hash))
            .collect();
        assert_eq!(
            got,
            vec![
                ("alice@corp.example", Some("alice"), false, Some(h)),
                ("bob@corp.example", Some("bob"), true, Some(h)),
                ("carol@corp.example", Some("carol"), false, Some(EMPTY_NT_HASH)),
                ("erin@corp.example", Some("erin"), false, Some(h)),
            ]
        );
        assert_eq!(d.entries[0].netbios_domain.as_deref(), Some("CORP"));
        let reasons: Vec<(&str, Vec<u64>)> = d.left_out.iter().map(|(r, l)| (*r, l.lines.clone())).collect();
        assert_eq!(
            reasons,
            vec![
                ("machine account", vec![5]),
                ("malformed NT hash", vec![7]),
                ("not a user:rid:lmhash:nthash::: line", vec![8]),
                ("password history", vec![4]),
                ("secretsdump banner line", vec![1]),
            ]
        );
    }

    #[test]
    fn format_detection_and_utf16() {
        assert_eq!(DirectoryFormat::detect(b"email,nt_hash\na@b.example,\n"), DirectoryFormat::Csv);
        let mut utf16 = vec![0xFF, 0xFE];
        for u in "email\r\nzoe@corp.example\r\n".encode_utf16() {
            utf16.extend_from_slice(&u.to_le_bytes());
        }
        let d = parse_directory(&utf16, DirectoryFormat::Csv, "corp.example");
        assert_eq!(d.entries.len(), 1);
        assert_eq!(d.entries[0].email, "zoe@corp.example");
    }

    #[test]
    fn server_records_follow_the_file_rules() {
        let h = hex(ntlm(b"pw"));
        let mut r = RecordReader::new("corp.example");
        let rec = |email, user, nt, disabled, dn: &str| DirectoryRecord {
            email,
            username: user,
            nt_hash: nt,
            disabled,
            dn: Some(dn.to_owned()),
        };
        r.push(rec(Some("Alice@Corp.Example"), Some("alice"), Some(&h), false, "uid=alice"));
        r.push(rec(None, Some("bob"), None, true, "uid=bob"));
        r.push(rec(None, Some("WKS01$"), None, false, "cn=WKS01"));
        r.push(rec(None, None, None, false, "cn=nobody"));
        r.push(rec(Some("carol@corp.example"), None, Some("zz"), false, "uid=carol"));
        r.push(rec(Some("alice@corp.example"), None, None, false, "uid=alice2"));
        r.leave_out("malformed entry");
        let d = r.finish();
        // Address, user name, disabled, whether a hash was read, DN.
        type ServerRow<'a> = (&'a str, Option<&'a str>, bool, bool, Option<&'a str>);
        let got: Vec<ServerRow<'_>> = d
            .entries
            .iter()
            .map(|e| {
                (e.email.as_str(), e.username.as_deref(), e.disabled, e.nt_hash.is_some(), e.dn.as_deref())
            })
            .collect();
        assert_eq!(
            got,
            vec![
                ("alice@corp.example", Some("alice"), false, true, Some("uid=alice")),
                ("bob@corp.example", Some("bob"), true, false, Some("uid=bob")),
            ]
        );
        let reasons: Vec<(&str, Vec<u64>)> = d.left_out.iter().map(|(r, l)| (*r, l.lines.clone())).collect();
        assert_eq!(
            reasons,
            vec![
                ("duplicate account", vec![6]),
                ("machine account", vec![3]),
                ("malformed NT hash", vec![5]),
                ("malformed entry", vec![7]),
                ("no email address or user name", vec![4]),
            ]
        );
    }

    #[test]
    fn the_hash_is_never_printed() {
        let e = DirectoryEntry {
            email: "a@b.example".into(),
            username: None,
            netbios_domain: None,
            disabled: false,
            nt_hash: Some(ntlm(b"x")),
            dn: None,
        };
        assert!(!format!("{e:?}").to_lowercase().contains(&hex(ntlm(b"x")).to_lowercase()));
    }
}
