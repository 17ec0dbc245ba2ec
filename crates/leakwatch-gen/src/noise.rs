//! The garbage real dumps carry, each kind switchable, each with the outcome the
//! rules give it. Format writers build the format-specific noise lines; this
//! module holds the switch set, the shared texts, and the structural noise
//! (blank lines, duplicates, surrounding whitespace) applied to any entry list.

use crate::file::{Entry, Outcome};
use crate::rng::Rng;
use crate::rules::reason;

/// One kind of noise.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum NoiseKind {
    /// A UTF-8 BOM at the start of the file (skipped).
    Bom,
    /// CRLF line ends (the CR is dropped).
    Crlf,
    /// Spaces and tabs around combo lines (trimmed).
    Whitespace,
    /// Repeated lines (accepted again, counted once by the store).
    Duplicates,
    /// Empty and whitespace-only lines (skipped silently).
    BlankLines,
    /// Banner and Telegram-ad lines.
    Banners,
    /// HTML lines, as when a download page got appended.
    Html,
    /// NUL and other C0 control bytes inside a line.
    ControlChars,
    /// Lines over 64 KiB (rejected), one of 100 KB among them, and one just under (kept).
    LongLines,
    /// Identities with an `@` that are not valid addresses.
    InvalidEmails,
    /// Combo lines without any of `:` `;` `|` TAB.
    NoSeparator,
    /// User names in an email combo.
    NotAnEmail,
    /// User names with whitespace or over 64 bytes in a username combo.
    InvalidUsernames,
    /// Legacy-encoded identities.
    IdentityNotUtf8,
    /// NDJSON lines that are not JSON objects.
    BrokenJson,
    /// CSV rows with too many or too few fields.
    WrongFieldCount,
    /// CSV rows / JSON objects without any account.
    NoAccount,
}

impl NoiseKind {
    pub const ALL: [NoiseKind; 17] = [
        NoiseKind::Bom,
        NoiseKind::Crlf,
        NoiseKind::Whitespace,
        NoiseKind::Duplicates,
        NoiseKind::BlankLines,
        NoiseKind::Banners,
        NoiseKind::Html,
        NoiseKind::ControlChars,
        NoiseKind::LongLines,
        NoiseKind::InvalidEmails,
        NoiseKind::NoSeparator,
        NoiseKind::NotAnEmail,
        NoiseKind::InvalidUsernames,
        NoiseKind::IdentityNotUtf8,
        NoiseKind::BrokenJson,
        NoiseKind::WrongFieldCount,
        NoiseKind::NoAccount,
    ];

    fn bit(self) -> u32 {
        1 << (self as u32)
    }
}

/// A set of noise kinds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Noise(u32);

impl Noise {
    pub fn none() -> Noise {
        Noise(0)
    }

    pub fn all() -> Noise {
        NoiseKind::ALL.iter().fold(Noise(0), |n, k| n.with(*k))
    }

    pub fn with(self, kind: NoiseKind) -> Noise {
        Noise(self.0 | kind.bit())
    }

    pub fn without(self, kind: NoiseKind) -> Noise {
        Noise(self.0 & !kind.bit())
    }

    pub fn has(self, kind: NoiseKind) -> bool {
        self.0 & kind.bit() != 0
    }
}

/// Banner lines and what an email combo makes of them. The identity ends at the
/// first of `:` `;` `|` TAB, whatever separator the file uses.
pub(crate) const BANNERS: &[(&str, &str)] = &[
    ("==============================================", reason::NO_SEPARATOR),
    ("★ FRESH PRIVATE COMBO ★ HQ ★ MIXED ★", reason::NO_SEPARATOR),
    ("Join @freshcombos for daily private leaks", reason::NO_SEPARATOR),
    ("Telegram: t.me/privcombos", reason::NOT_AN_EMAIL),
    ("[+] Checked by @hqchecker_bot | valid 87%", reason::EMAIL_LOCAL_PART),
    ("Combo: mail-pass | 12k lines | private", reason::NOT_AN_EMAIL),
    ("--- uploaded by cr4ckz --- enjoy ---", reason::NO_SEPARATOR),
];

/// HTML lines and what an email combo makes of them.
pub(crate) const HTML: &[(&str, &str)] = &[
    ("<!DOCTYPE html>", reason::NO_SEPARATOR),
    ("<html><head><title>404 Not Found</title></head>", reason::NO_SEPARATOR),
    ("<a href=\"https://t.me/combos\">Download more</a>", reason::NOT_AN_EMAIL),
    ("<div style=\"color:red\">leaked by anon</div>", reason::NOT_AN_EMAIL),
    ("</body></html>", reason::NO_SEPARATOR),
];

/// Identities with an `@` that normalization refuses.
pub(crate) const INVALID_EMAILS: &[(&str, &str)] = &[
    ("john..smith@gmail.com", reason::EMAIL_LOCAL_PART),
    ("anna@gmail", reason::EMAIL_DOMAIN),
    ("admin@[10.0.0.1]", reason::EMAIL_IP_LITERAL),
    (".maria@yahoo.com", reason::EMAIL_LOCAL_PART),
    ("peter.@hotmail.com", reason::EMAIL_LOCAL_PART),
    ("root@localhost", reason::EMAIL_DOMAIN),
    ("ivan@-mail.ru", reason::EMAIL_DOMAIN),
    ("jo hn@gmail.com", reason::EMAIL_LOCAL_PART),
    ("@gmail.com", reason::EMAIL_LOCAL_PART),
    ("li@@qq.com", reason::EMAIL_LOCAL_PART),
    ("jöhn..x@web.de", reason::EMAIL_LOCAL_PART),
    ("kate@gmail..com", reason::EMAIL_DOMAIN),
    ("sam@192.168.0.7", reason::EMAIL_IP_LITERAL),
    (
        "this.local.part.is.far.too.long.to.be.an.address.anyone.would.use.x@outlook.com",
        reason::EMAIL_LOCAL_PART,
    ),
];

/// How many noise lines of one kind a file of `rows` rows gets.
pub(crate) fn amount(rows: usize) -> usize {
    1 + rows / 250
}

/// Inserts `noise` at random places after the first entry (the header, or the
/// first record that format detection looks at).
pub(crate) fn scatter(rng: &mut Rng, entries: &mut Vec<Entry>, noise: Vec<Entry>) {
    for entry in noise {
        let at = 1 + rng.below(entries.len());
        entries.insert(at.min(entries.len()), entry);
    }
}

/// Applies the structural noise kinds.
pub(crate) fn structural(rng: &mut Rng, noise: Noise, entries: &mut Vec<Entry>, whitespace: bool) {
    let rows = entries.len();
    if noise.has(NoiseKind::Duplicates) && rows > 1 {
        let dups: Vec<Entry> = (0..amount(rows) * 3)
            .map(|_| entries[1 + rng.below(rows - 1)].clone())
            .filter(|e| matches!(e.outcome, Outcome::Accepted(_)))
            .collect();
        scatter(rng, entries, dups);
    }
    if whitespace && noise.has(NoiseKind::Whitespace) {
        for entry in entries.iter_mut() {
            if matches!(entry.outcome, Outcome::Accepted(_)) && rng.chance(0.02) {
                let pads: [&[u8]; 4] = [b" ", b"  ", b"\t", b" \t "];
                let (before, after) = (*rng.pick(&pads), *rng.pick(&pads));
                let mut text = before.to_vec();
                text.extend_from_slice(&entry.text);
                text.extend_from_slice(after);
                entry.text = text;
            }
        }
    }
    if noise.has(NoiseKind::BlankLines) {
        let blanks = (0..amount(rows) * 2)
            .map(|i| Entry::new(["", " ", "\t", "   "][i % 4], Outcome::Silent))
            .collect();
        scatter(rng, entries, blanks);
    }
}
