//! Combo lists (`identity SEP password`): email combos and username combos, with
//! hashcat's `$HEX[...]` form for awkward passwords, and their noise lines.

use leakwatch_types::{normalize_email, normalize_username, AccountKind};

use crate::expected::{ExpRecord, Material};
use crate::file::{Entry, Outcome};
use crate::noise::{self, Noise, NoiseKind, BANNERS, HTML, INVALID_EMAILS};
use crate::rng::Rng;
use crate::rules::reason;
use crate::scenario::Row;

/// Which identities a combo holds; decides how the rules read identities without `@`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ComboMode {
    Email,
    Username,
}

/// The record lines of a combo.
pub(crate) fn entries(rng: &mut Rng, rows: &[Row], sep: u8) -> Vec<Entry> {
    rows.iter().map(|row| line(rng, row, sep)).collect()
}

fn line(rng: &mut Rng, row: &Row, sep: u8) -> Entry {
    let mut text = Vec::with_capacity(row.display.len() + 16);
    if row.account.0 == AccountKind::Email && rng.chance(0.02) {
        // Address wrapping that normalization strips.
        let (open, close) = *rng.pick(&[("<", ">"), ("\"", "\"")]);
        text.extend_from_slice(format!("{open}{}{close}", row.display).as_bytes());
    } else {
        text.extend_from_slice(row.display.as_bytes());
    }
    text.push(sep);
    let password = row.password.clone().unwrap_or_default();
    text.extend_from_slice(&written_password(rng, &password));
    if password.is_empty() && sep == b'\t' {
        // The line is trimmed before it is split: a trailing TAB separator goes with
        // the whitespace, and what is left has no separator at all.
        return Entry::rejected(text, reason::NO_SEPARATOR);
    }
    let material = if password.is_empty() { Material::None } else { Material::Plain };
    Entry::new(text, Outcome::Accepted(ExpRecord { account: row.account.clone(), password, material }))
}

/// How a password is written: raw, or as hashcat writes odd plaintexts.
fn written_password(rng: &mut Rng, password: &[u8]) -> Vec<u8> {
    let odd = std::str::from_utf8(password).is_err() || password.iter().any(|b| b":;|\t".contains(b));
    if (odd && rng.chance(0.5)) || (!password.is_empty() && rng.chance(0.005)) {
        hex_form(password)
    } else {
        password.to_vec()
    }
}

/// `$HEX[...]` with lower-case digits, as hashcat writes it.
pub(crate) fn hex_form(password: &[u8]) -> Vec<u8> {
    let hex: String = password.iter().map(|b| format!("{b:02x}")).collect();
    format!("$HEX[{hex}]").into_bytes()
}

/// Literal passwords that look like `$HEX[...]` but are malformed, so they are kept as written.
pub(crate) const MALFORMED_HEX: &[&str] = &["$HEX[6g6h]", "$HEX[123]", "$HEX[abcd", "$HEX(6869)"];

/// Noise lines of `kind` for a combo. `ids` are (displayed identity, account) pairs
/// of the file's records, used where a noise line needs a real-looking identity.
pub(crate) fn noise_lines(
    rng: &mut Rng,
    kind: NoiseKind,
    mode: ComboMode,
    sep: u8,
    rows: &[Row],
    n: usize,
) -> Vec<Entry> {
    let sep_s = sep as char;
    let pick_row = |rng: &mut Rng| rows[rng.below(rows.len())].clone();
    let user_mode = mode == ComboMode::Username;
    let out: Vec<Entry> = match kind {
        NoiseKind::Banners => (0..n)
            .map(|i| BANNERS[(i + rng.below(BANNERS.len())) % BANNERS.len()])
            .filter(|(_, why)| !user_mode || *why == reason::NO_SEPARATOR)
            .map(|(text, why)| Entry::rejected(text, why))
            .collect(),
        NoiseKind::Html => (0..n)
            .map(|i| HTML[(i + rng.below(HTML.len())) % HTML.len()])
            .filter(|(_, why)| !user_mode || *why == reason::NO_SEPARATOR)
            .map(|(text, why)| Entry::rejected(text, why))
            .collect(),
        NoiseKind::ControlChars => (0..n)
            .map(|i| {
                let row = pick_row(rng);
                let junk: [&[u8]; 5] =
                    [b"pass\x00word", b"pa\x1bss", b"x\x07y123", b"ab\rcd", b"\x01\x02hello"];
                let mut text = format!("{}{sep_s}", row.display).into_bytes();
                text.extend_from_slice(junk[i % junk.len()]);
                Entry::rejected(text, reason::CONTROL_CHARACTERS)
            })
            .collect(),
        NoiseKind::LongLines => {
            let mut long = |len: usize, fill: u8| {
                let row = pick_row(rng);
                let mut text = format!("{}{sep_s}", row.display).into_bytes();
                text.resize(text.len() + len, fill);
                (row, text)
            };
            // One of 100 KB, one just over the limit, and one well under it that is kept.
            let (_, huge) = long(100 * 1000, b'A');
            let (_, over) = long(70_000, b'B');
            let (row, under) = long(60_000, b'x');
            let record =
                ExpRecord { account: row.account, password: vec![b'x'; 60_000], material: Material::Plain };
            vec![
                Entry::rejected(huge, reason::LINE_TOO_LONG),
                Entry::rejected(over, reason::LINE_TOO_LONG),
                Entry::new(under, Outcome::Accepted(record)),
            ]
        }
        NoiseKind::InvalidEmails => (0..n)
            .map(|i| {
                let (address, why) = INVALID_EMAILS[i % INVALID_EMAILS.len()];
                let text = format!("{address}{sep_s}secret1");
                Entry::rejected(text, why)
            })
            .collect(),
        NoiseKind::NoSeparator => (0..n)
            .map(|i| {
                let row = pick_row(rng);
                let text = match i % 3 {
                    0 => row.display.clone(),
                    1 => format!("{} password123", row.display),
                    _ => "just some words without any field separator".to_string(),
                };
                Entry::rejected(text, reason::NO_SEPARATOR)
            })
            .collect(),
        NoiseKind::NotAnEmail if !user_mode => (0..n)
            .map(|i| {
                let text = match i % 3 {
                    0 => format!("DarkLord{}{sep_s}qwerty", rng.range(1, 99)),
                    1 => format!("+79123456789{sep_s}123456"),
                    _ => format!("{sep_s}orphan-password"),
                };
                Entry::rejected(text, reason::NOT_AN_EMAIL)
            })
            .collect(),
        NoiseKind::InvalidUsernames if user_mode => (0..n)
            .map(|i| {
                let text = match i % 3 {
                    0 => format!("dark lord{sep_s}qwerty"),
                    1 => format!("{}{sep_s}123456", "x".repeat(65)),
                    _ => format!("{sep_s}orphan-password"),
                };
                Entry::rejected(text, reason::INVALID_USERNAME)
            })
            .collect(),
        NoiseKind::IdentityNotUtf8 => (0..n)
            .map(|i| {
                // Latin-1 identities, as old Windows tools wrote them: read back
                // as Windows-1252, the input's legacy encoding.
                let (identity, text): (&[u8], &str) = match (user_mode, i % 2) {
                    // Local parts are ASCII; internationalized domains are not.
                    (false, 0) => (b"info@b\xfccherwelt.de", "info@b\u{fc}cherwelt.de"),
                    (false, _) => (b"Reservas@Caf\xe9-Madrid.es", "Reservas@Caf\u{e9}-Madrid.es"),
                    (true, 0) => (b"Se\xf1orLobo", "Se\u{f1}orLobo"),
                    (true, _) => (b"J\xfcrgen77", "J\u{fc}rgen77"),
                };
                let account = if user_mode {
                    (AccountKind::Username, normalize_username(text).expect("a valid user name"))
                } else {
                    (AccountKind::Email, normalize_email(text).expect("a valid address"))
                };
                let mut line = identity.to_vec();
                line.push(sep);
                line.extend_from_slice(b"passwort1");
                let record =
                    ExpRecord { account, password: b"passwort1".to_vec(), material: Material::Plain };
                Entry::new(line, Outcome::Accepted(record))
            })
            .collect(),
        _ => Vec::new(),
    };
    out
}

/// Builds a whole combo file's entries, noise included.
pub(crate) fn build(rng: &mut Rng, rows: &[Row], sep: u8, mode: ComboMode, noise: Noise) -> Vec<Entry> {
    let mut entries = entries(rng, rows, sep);
    let n = noise::amount(rows.len());
    let mut extra = Vec::new();
    for kind in NoiseKind::ALL {
        if noise.has(kind) {
            extra.extend(noise_lines(rng, kind, mode, sep, rows, n));
        }
    }
    noise::scatter(rng, &mut entries, extra);
    noise::structural(rng, noise, &mut entries, true);
    if noise.has(NoiseKind::Banners) {
        // Dumps often open with a banner; format detection must still see a combo.
        let (text, why) = BANNERS[rng.below(3)];
        entries.insert(0, Entry::rejected(text, why));
    }
    entries
}
