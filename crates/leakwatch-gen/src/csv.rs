//! CSV and TSV account tables: a header with realistic column names, RFC 4180
//! quoting (minimal or everywhere), extra columns that only add data classes,
//! hash columns instead of (or next to) plaintext, and their noise rows.

use std::collections::BTreeSet;

use leakwatch_types::{encode_hex_upper, DataClass};

use crate::expected::{ExpRecord, Material};
use crate::file::{Entry, Outcome};
use crate::noise::{self, Noise, NoiseKind, INVALID_EMAILS};
use crate::population::Population;
use crate::rng::Rng;
use crate::rules::reason;
use crate::scenario::Row;

/// What a column holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Col {
    Id,
    Email,
    Password,
    /// SHA-1 hex (lower-case).
    Sha1,
    /// 32 hex digits in a column not named `ntlm`: typed MD5. The digits are
    /// filler of the right shape, since an MD5 counts in no answer.
    Md5,
    /// NTLM hex (upper-case) in a column named `ntlm`.
    Ntlm,
    /// A bcrypt-shaped string (filler, like [`Col::Md5`]).
    Bcrypt,
    FullName,
    Ip,
    Dob,
    /// A street address, sometimes over two lines (a quoted newline).
    Address,
    Created,
    Country,
}

#[derive(Debug, Clone)]
pub(crate) struct Layout {
    pub delimiter: u8,
    pub columns: Vec<(&'static str, Col)>,
    pub quote_all: bool,
    /// With both a plaintext and a hash column: the share of rows whose plaintext is known.
    pub cracked: f64,
}

impl Layout {
    fn has(&self, col: Col) -> bool {
        self.columns.iter().any(|(_, c)| *c == col)
    }

    /// Data classes the header alone adds (the extra columns).
    pub fn extra_classes(&self) -> BTreeSet<DataClass> {
        self.columns
            .iter()
            .filter_map(|(_, c)| match c {
                Col::FullName => Some(DataClass::Names),
                Col::Ip => Some(DataClass::IpAddresses),
                Col::Dob => Some(DataClass::DatesOfBirth),
                Col::Address => Some(DataClass::PhysicalAddresses),
                _ => None,
            })
            .collect()
    }

    fn join(&self, rng: &mut Rng, fields: &[String]) -> Vec<u8> {
        let mut out = Vec::new();
        for (i, field) in fields.iter().enumerate() {
            if i > 0 {
                out.push(self.delimiter);
            }
            let needs = field.bytes().any(|b| b == self.delimiter || b == b'"' || b == b'\n' || b == b'\r');
            if needs || (self.quote_all && rng.chance(0.97)) {
                out.push(b'"');
                out.extend_from_slice(field.replace('"', "\"\"").as_bytes());
                out.push(b'"');
            } else {
                out.extend_from_slice(field.as_bytes());
            }
        }
        out
    }
}

const STREETS: &[&str] = &["Main St", "Oak Ave", "Hauptstraße", "Rue de la Paix", "Via Roma", "Calle Mayor"];
const CITIES: &[&str] = &["Springfield", "Berlin", "Lyon", "Milano", "Sevilla", "Kazan", "Osaka"];
const COUNTRIES: &[&str] = &["US", "DE", "FR", "IT", "ES", "RU", "JP", "BR", "IN", "CN"];

/// The cells of a row, and the material the rules will find in it.
fn cells(rng: &mut Rng, pop: &Population, layout: &Layout, row: &Row, id: usize) -> (Vec<String>, Material) {
    let person = &pop.people[row.person];
    let password = row.password.clone().unwrap_or_default();
    let has_hash =
        layout.columns.iter().any(|(_, c)| matches!(c, Col::Sha1 | Col::Md5 | Col::Ntlm | Col::Bcrypt));
    let plain_known =
        !password.is_empty() && (!has_hash || !layout.has(Col::Password) || rng.chance(layout.cracked));
    let write_plain = plain_known && layout.has(Col::Password);
    let mut material = Material::None;
    if write_plain {
        material = Material::Plain;
    } else if !password.is_empty() {
        for (_, c) in &layout.columns {
            material = match c {
                Col::Sha1 => Material::Sha1,
                Col::Ntlm => Material::Ntlm,
                Col::Md5 | Col::Bcrypt => Material::Other,
                _ => continue,
            };
        }
    }
    let text = |b: &[u8]| String::from_utf8(b.to_vec()).expect("CSV passwords are UTF-8");
    let fields = layout
        .columns
        .iter()
        .map(|(_, col)| match col {
            Col::Id => (1000 + id).to_string(),
            Col::Email => row.display.clone(),
            Col::Password if write_plain => text(&password),
            Col::Password => String::new(),
            _ if password.is_empty() && matches!(col, Col::Sha1 | Col::Md5 | Col::Ntlm | Col::Bcrypt) => {
                String::new()
            }
            Col::Sha1 => encode_hex_upper(&leakwatch_types::sha1(&password)).to_ascii_lowercase(),
            Col::Ntlm => encode_hex_upper(&leakwatch_types::ntlm(&password)),
            Col::Md5 => (0..16).map(|_| format!("{:02x}", rng.below(256))).collect(),
            Col::Bcrypt => {
                const B64: &[u8] = b"./ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
                let tail: String = (0..53).map(|_| *rng.pick(B64) as char).collect();
                format!("$2y$10${tail}")
            }
            Col::FullName => {
                let (f, l) =
                    (crate::passwords::capitalize(person.first), crate::passwords::capitalize(person.last));
                if rng.chance(0.1) {
                    format!("{l}, {f}")
                } else {
                    format!("{f} {l}")
                }
            }
            Col::Ip => {
                if rng.chance(0.05) {
                    format!("2001:db8::{:x}", rng.below(65536))
                } else {
                    format!(
                        "{}.{}.{}.{}",
                        rng.range(1, 223),
                        rng.below(256),
                        rng.below(256),
                        rng.range(1, 254)
                    )
                }
            }
            Col::Dob => format!("{}-{:02}-{:02}", person.birth_year, rng.range(1, 12), rng.range(1, 28)),
            Col::Address => {
                let street = format!("{} {}", rng.range(1, 250), rng.pick(STREETS));
                if rng.chance(0.3) {
                    format!("{street}\n{}", rng.pick(CITIES))
                } else {
                    format!("{street}, {}", rng.pick(CITIES))
                }
            }
            Col::Created => {
                format!(
                    "{}-{:02}-{:02} {:02}:{:02}:{:02}",
                    rng.range(2008, 2020),
                    rng.range(1, 12),
                    rng.range(1, 28),
                    rng.below(24),
                    rng.below(60),
                    rng.below(60)
                )
            }
            Col::Country => rng.pick(COUNTRIES).to_string(),
        })
        .collect();
    (fields, material)
}

/// Builds a whole CSV file's entries: header, rows, noise rows.
pub(crate) fn build(
    rng: &mut Rng,
    pop: &Population,
    layout: &Layout,
    rows: &[Row],
    noise: Noise,
) -> Vec<Entry> {
    let header: Vec<String> = layout.columns.iter().map(|(name, _)| name.to_string()).collect();
    let mut entries = vec![Entry::new(layout.join(rng, &header), Outcome::Silent)];
    for (id, row) in rows.iter().enumerate() {
        let (fields, material) = cells(rng, pop, layout, row, id);
        let password = row.password.clone().unwrap_or_default();
        let record = ExpRecord { account: row.account.clone(), password, material };
        entries.push(Entry::new(layout.join(rng, &fields), Outcome::Accepted(record)));
    }
    let n = noise::amount(rows.len());
    let email_at =
        layout.columns.iter().position(|(_, c)| *c == Col::Email).expect("CSV layouts have an email column");
    let mut extra = Vec::new();
    let row_cells = |rng: &mut Rng| {
        let i = rng.below(rows.len());
        cells(rng, pop, layout, &rows[i], i).0
    };
    if noise.has(NoiseKind::InvalidEmails) {
        for i in 0..n {
            let mut fields = row_cells(rng);
            // Starting further down the list than the other formats, so that
            // a small scenario still shows every reason.
            let (address, why) = INVALID_EMAILS[(i + 2) % INVALID_EMAILS.len()];
            fields[email_at] = address.to_string();
            extra.push(Entry::rejected(layout.join(rng, &fields), why));
        }
    }
    if noise.has(NoiseKind::NoAccount) {
        for _ in 0..n {
            let mut fields = row_cells(rng);
            fields[email_at] = String::new();
            extra.push(Entry::rejected(layout.join(rng, &fields), reason::NO_ACCOUNT));
        }
    }
    if noise.has(NoiseKind::WrongFieldCount) {
        for i in 0..n {
            let mut fields = row_cells(rng);
            if i % 2 == 0 {
                fields.push("unexpected".to_string());
            } else {
                fields.pop();
            }
            extra.push(Entry::rejected(layout.join(rng, &fields), reason::WRONG_FIELD_COUNT));
        }
    }
    if noise.has(NoiseKind::LongLines) {
        for len in [100 * 1000, 70_000] {
            // The over-long part must be one physical line: no quoted newline before it.
            let mut fields: Vec<String> = row_cells(rng).into_iter().map(|f| f.replace('\n', " ")).collect();
            let last = fields.len() - 1;
            fields[last] = "A".repeat(len);
            extra.push(Entry::rejected(layout.join(rng, &fields), reason::LINE_TOO_LONG));
        }
    }
    noise::scatter(rng, &mut entries, extra);
    noise::structural(rng, noise, &mut entries, false);
    entries
}
