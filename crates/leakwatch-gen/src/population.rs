//! The people behind a scenario: names, birth years, mail addresses on free-mail,
//! internationalized and organization domains, user names, phone numbers, and
//! the history of passwords each one has used (so breaches can show reuse).

use std::collections::HashSet;

use crate::names::{FIRST_NAMES, FREEMAIL, IDN_DOMAINS, LAST_NAMES, NICK_PARTS};
use crate::passwords::capitalize;
use crate::rng::Rng;

/// A mail domain: as people write it, and as the store keys it (IDNA A-label).
#[derive(Debug, Clone)]
pub struct Domain {
    pub display: String,
    pub ascii: String,
}

/// An address, by its canonical (lower-case, NFC) local part and a domain index.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Address {
    pub local: String,
    pub domain: usize,
}

#[derive(Debug, Clone)]
pub struct Person {
    pub first: &'static str,
    pub last: &'static str,
    pub birth_year: u16,
    /// As the person typed it (mixed case); the account is its lower-case form.
    pub username: String,
    /// As written in a dump; normalizes to `+` and digits.
    pub phone: String,
    /// Private addresses, the first being the main one.
    pub addresses: Vec<Address>,
    /// An address at the organization domain, for the people who work there.
    pub work: Option<Address>,
    /// Every password this person has used so far, oldest first.
    pub(crate) passwords: Vec<Vec<u8>>,
}

impl Person {
    /// Every plaintext password this person has used: what a test checks never
    /// reaches the data directory.
    pub fn passwords(&self) -> &[Vec<u8>] {
        &self.passwords
    }
}

#[derive(Debug, Clone)]
pub struct Population {
    pub domains: Vec<Domain>,
    pub people: Vec<Person>,
    /// Index of the organization domain in `domains`.
    pub org_domain: usize,
}

/// Cyrillic and accented user names: usernames are case-folded with full Unicode
/// rules, so these check more than ASCII lower-casing.
const UNICODE_NICKS: &[&str] = &["Серёга", "Волк", "Наташа", "Ölçer", "Ñandú", "Zoë"];

impl Population {
    pub fn new(rng: &mut Rng, people: usize, org_domain: &str, work_share: f64) -> Population {
        let mut domains: Vec<Domain> =
            FREEMAIL.iter().map(|(d, _)| Domain { display: d.to_string(), ascii: d.to_string() }).collect();
        let idn_start = domains.len();
        domains
            .extend(IDN_DOMAINS.iter().map(|(u, a)| Domain { display: u.to_string(), ascii: a.to_string() }));
        let org_ascii = leakwatch_types::normalize_domain(org_domain)
            .unwrap_or_else(|| panic!("organization domain {org_domain:?} is not a valid domain"));
        let org = domains.len();
        domains.push(Domain { display: org_domain.to_string(), ascii: org_ascii });

        let total_weight: u32 = FREEMAIL.iter().map(|(_, w)| w).sum();
        let mut taken: HashSet<(String, usize)> = HashSet::new();
        let mut usernames: HashSet<String> = HashSet::new();
        let mut out = Vec::with_capacity(people);
        for _ in 0..people {
            let first = *rng.pick(FIRST_NAMES);
            let last = *rng.pick(LAST_NAMES);
            let birth_year = rng.range(1950, 2006) as u16;
            let pick_domain = |rng: &mut Rng| {
                if rng.chance(0.03) {
                    return idn_start + rng.below(IDN_DOMAINS.len());
                }
                let mut w = rng.below(total_weight as usize) as u32;
                for (i, (_, weight)) in FREEMAIL.iter().enumerate() {
                    if w < *weight {
                        return i;
                    }
                    w -= weight;
                }
                0
            };
            let mut addresses = Vec::new();
            let count = if rng.chance(0.25) { 2 } else { 1 };
            while addresses.len() < count {
                let domain = pick_domain(rng);
                let mut local = local_part(rng, first, last, birth_year);
                if rng.chance(0.04) {
                    local = accented(&local);
                }
                addresses.push(unique(rng, &mut taken, local, domain));
            }
            let work = rng.chance(work_share).then(|| {
                let local = match rng.below(3) {
                    0 => format!("{first}.{last}"),
                    1 => format!("{}{last}", &first[..1]),
                    _ => format!("{first}_{last}"),
                };
                unique(rng, &mut taken, local, org)
            });
            let mut username = nickname(rng, first, birth_year);
            while !usernames.insert(username.to_lowercase()) {
                username.push_str(&rng.range(0, 9).to_string());
            }
            out.push(Person {
                first,
                last,
                birth_year,
                username,
                phone: phone(rng),
                addresses,
                work,
                passwords: Vec::new(),
            });
        }
        Population { domains, people: out, org_domain: org }
    }

    /// The normalized form of an address: what the store and the answers use.
    pub fn canonical(&self, address: &Address) -> String {
        format!("{}@{}", address.local, self.domains[address.domain].ascii)
    }

    /// The address as a dump might write it: mixed case, Unicode domains as such.
    pub fn display(&self, rng: &mut Rng, address: &Address) -> String {
        let domain = &self.domains[address.domain].display;
        match rng.below(100) {
            0..=69 => format!("{}@{domain}", address.local),
            70..=84 => {
                let local: String = address.local.split('.').map(capitalize).collect::<Vec<_>>().join(".");
                format!("{local}@{}", capitalize(domain))
            }
            85..=94 => format!("{}@{domain}", address.local.to_uppercase()),
            // Upper-casing `ß` gives `SS`, another domain: only ASCII domains are shouted.
            _ if domain.is_ascii() => format!("{}@{domain}", address.local).to_uppercase(),
            _ => format!("{}@{domain}", address.local.to_uppercase()),
        }
    }
}

/// The canonical user name of a person.
pub fn username_key(display: &str) -> String {
    display.to_lowercase()
}

/// The canonical phone number: `+` and its digits.
pub fn phone_key(display: &str) -> String {
    let digits: String = display.chars().filter(char::is_ascii_digit).collect();
    format!("+{digits}")
}

fn unique(rng: &mut Rng, taken: &mut HashSet<(String, usize)>, mut local: String, domain: usize) -> Address {
    while !taken.insert((local.clone(), domain)) {
        local.push_str(&rng.range(0, 9).to_string());
    }
    Address { local, domain }
}

/// An address local part following the common patterns people pick.
pub(crate) fn local_part(rng: &mut Rng, first: &str, last: &str, year: u16) -> String {
    let yy = year % 100;
    match rng.below(10) {
        0 | 1 => format!("{first}.{last}"),
        2 => format!("{}{last}", &first[..1]),
        3 => format!("{first}_{last}{year}"),
        4 => format!("{first}{last}{yy:02}"),
        5 => format!("{}{}", rng.pick(NICK_PARTS), rng.range(1, 999)),
        6 => format!("{first}.{last}{}", rng.range(1, 99)),
        7 => format!("{last}.{first}"),
        8 => format!("{first}{year}"),
        _ => format!("{}.{last}", &first[..1]),
    }
}

/// An internationalized local part (RFC 6531), lower-case and in NFC as the
/// store keys it: the first `e`, `o`, `u` or `c` gets its accent (`françois`).
/// Latin-1 letters only, so the address can also be written in Latin-1.
fn accented(local: &str) -> String {
    let Some(at) = local.find(['e', 'o', 'u', 'c']) else { return local.to_owned() };
    let accent = match &local[at..at + 1] {
        "e" => "é",
        "o" => "ö",
        "u" => "ü",
        _ => "ç",
    };
    format!("{}{accent}{}", &local[..at], &local[at + 1..])
}

fn nickname(rng: &mut Rng, first: &str, year: u16) -> String {
    let (a, b) = (*rng.pick(NICK_PARTS), *rng.pick(NICK_PARTS));
    let part = capitalize(a);
    match rng.below(20) {
        0..=5 => format!("{part}{}{}", capitalize(b), rng.range(1, 99)),
        6..=9 => format!("{first}_{}", year % 100),
        10..=12 => format!("xX{part}Xx"),
        13..=15 => format!("{}{part}", capitalize(first)),
        16..=18 => format!("{part}{year}"),
        _ => format!("{}{}", rng.pick(UNICODE_NICKS), rng.range(1, 99)),
    }
}

fn phone(rng: &mut Rng) -> String {
    match rng.below(4) {
        0 => format!("+1 ({}) {}-{:04}", rng.range(201, 989), rng.range(200, 999), rng.range(0, 9999)),
        1 => format!("+49 15{} {}", rng.range(1, 9), rng.range(1_000_000, 9_999_999)),
        2 => format!(
            "+7 9{:02} {:03}-{:02}-{:02}",
            rng.range(0, 99),
            rng.range(0, 999),
            rng.range(0, 99),
            rng.range(0, 99)
        ),
        _ => format!("+447{}", rng.range(100_000_000, 999_999_999)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn canonical_forms_are_what_normalization_produces() {
        let mut rng = Rng::new(3);
        let pop = Population::new(&mut rng, 400, "Example-Corp.com", 0.2);
        for person in &pop.people {
            for address in person.addresses.iter().chain(&person.work) {
                let canonical = pop.canonical(address);
                for _ in 0..3 {
                    let shown = pop.display(&mut rng, address);
                    assert_eq!(leakwatch_types::normalize_email(&shown).as_deref(), Ok(canonical.as_str()));
                }
            }
            assert_eq!(leakwatch_types::normalize_phone(&person.phone), Some(phone_key(&person.phone)));
            assert_eq!(
                leakwatch_types::normalize_username(&person.username),
                Some(username_key(&person.username))
            );
            assert!(person.username.len() <= 64 && !person.username.contains(char::is_whitespace));
        }
    }
}
