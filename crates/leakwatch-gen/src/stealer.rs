//! Infostealer logs as they are traded (`docs/ingest-rules.md`, "Stealer
//! logs"): one folder per infected machine holding its family's
//! `Passwords.txt`, and the ULP files (`URL:login:password`) that sellers cut
//! from thousands of such folders, with the records each file must give.
//!
//! Families differ in labels, separators, banners and line endings: RedLine
//! and META write `URL:`/`Username:`/`Password:`/`Application:` blocks closed
//! by 15 `=` with CRLF, under ASCII art and a Telegram line; Raccoon writes
//! upper-case `USER:`/`PASS:` blocks split by blank lines; older families
//! (Vidar, Azorult) put `Soft:` and `Host:` before the login; obfuscated builds
//! spell `U53RN4M3:`/`P455W0RD:`. Each family's file opens with its banner,
//! with CRLF or LF line ends; some files are renamed, or several machines'
//! lists concatenated, so that only their content tells what they are.
//! Every file also carries what the parsers must keep or count: routers', NAS
//! boxes' and intranet portals' logins at hosts that are no domain (kept
//! without a website, noted), pages with no host at all, entries whose login
//! the browser never saw, and control bytes in a password.

use std::collections::BTreeMap;

use leakwatch_types::{normalize_domain, normalize_email, normalize_username, AccountKind};

use crate::expected::AccountKey;
use crate::names::{FIRST_NAMES, FREEMAIL, LAST_NAMES, NICK_PARTS};
use crate::passwords::PasswordSampler;
use crate::rng::Rng;

/// The `Passwords.txt` layouts written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Family {
    RedLine,
    Raccoon,
    Legacy,
    /// Leetspeak labels, as some builds write them to dodge naive scanners.
    Obfuscated,
}

impl Family {
    pub const ALL: [Family; 4] = [Family::RedLine, Family::Raccoon, Family::Legacy, Family::Obfuscated];

    /// The lines a file of this family opens with: none of them a label line
    /// or a URL, so every one is a banner's (skipped, not counted).
    fn banner(self, build: u64) -> String {
        match self {
            Family::RedLine => format!(
                "*******************************************************\n\
                 *  ____          _ _     _                            *\n\
                 * |  _ \\ ___  __| | |   (_)_ __   ___                 *\n\
                 * | |_) / _ \\/ _` | |   | | '_ \\ / _ \\                *\n\
                 * |  _ <  __/ (_| | |___| | | | |  __/                *\n\
                 * |_| \\_\\___|\\__,_|_____|_|_| |_|\\___|                *\n\
                 *******************************************************\n\
                 Telegram: https://t.me/redline_market\n\
                 Build ID: {build:08x}\n\n"
            ),
            Family::Raccoon => format!("Raccoon Stealer v2 - build {build:x}\nTelegram: @raccoon_support\n\n"),
            Family::Legacy => "=========================\n  Vidar 54.7\n  Telegram: @vidar_logs\n=========================\n\n".into(),
            Family::Obfuscated => format!("#### M3T4 ####\nBuild ID: {build:x}\n\n"),
        }
    }
}

/// What a URL's host is to the rules.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Website {
    /// A domain, normalized: the record carries it.
    Domain(String),
    /// An address, `localhost`, an intranet name: the record is kept without
    /// a website, and noted.
    NotDomain,
    /// No host at all (`file:///...`): `invalid website`.
    Invalid,
}

/// A record a log file must give, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StealerRecord {
    pub account: AccountKey,
    /// The plaintext; `None` for an entry saved without a password.
    pub password: Option<Vec<u8>>,
    /// The normalized host the credential was captured for (`None` for a
    /// user name from a block: HIBP keeps website pairs for addresses only).
    pub website: Option<String>,
}

/// One written log file and its expected answers.
#[derive(Debug, Clone)]
pub struct StealerFile {
    /// Where it sits in the log folder, e.g. `US[3F2A...] 2026-03-01/Passwords.txt`.
    pub path: String,
    pub text: Vec<u8>,
    pub records: Vec<StealerRecord>,
    /// Rejection reason -> every line it happens on, ascending.
    pub rejected: BTreeMap<&'static str, Vec<u64>>,
    /// Physical lines.
    pub lines: u64,
    /// Records kept without a website because their URL's host is no domain
    /// (the report's `website not a domain` note).
    pub not_domain: u64,
}

/// Sites whose logins stealers capture most, with the paths of their login pages.
const SITES: &[(&str, &str)] = &[
    ("accounts.google.com", "/signin/v2/identifier"),
    ("www.facebook.com", "/login.php"),
    ("login.live.com", "/login.srf"),
    ("discord.com", "/login"),
    ("steamcommunity.com", "/login/home/"),
    ("www.netflix.com", "/login"),
    ("github.com", "/session"),
    ("passport.yandex.ru", "/auth"),
    ("vk.com", "/login"),
    ("www.paypal.com", "/signin"),
    ("www.instagram.com", "/accounts/login/"),
    ("www.amazon.de", "/ap/signin"),
    ("portal.office.com", "/"),
    ("e.mail.ru", "/login"),
    ("www.roblox.com", "/login"),
    ("secure.booking.com", "/login.html"),
    ("vpn.acme-logistics.com", "/remote/login"),
    ("Intranet.Acme-Logistics.com", "/"),
];

/// Android apps as Chromium-based stores name them.
const APPS: &[&str] =
    &["com.instagram.android", "com.whatsapp", "com.facebook.katana", "org.telegram.messenger"];

const COUNTRIES: &[&str] = &["US", "BR", "IN", "VN", "TR", "DE", "PH", "ID", "RU", "FR"];
const BROWSERS: &[&str] =
    &["Google_[Chrome]_Default", "Microsoft_[Edge]_Profile 1", "Opera", "Mozilla_[Firefox]_default-release"];

/// Writes text while counting lines, so entries know where they start.
#[derive(Default)]
struct Out {
    text: Vec<u8>,
    line: u64,
    records: Vec<StealerRecord>,
    rejected: BTreeMap<&'static str, Vec<u64>>,
    not_domain: u64,
    /// Whether lines end in CRLF.
    crlf: bool,
}

impl Out {
    /// Appends `text` and returns the number of the line it starts on.
    fn put(&mut self, text: &str) -> u64 {
        let start = self.line + 1;
        self.line += text.bytes().filter(|&b| b == b'\n').count() as u64;
        if self.crlf {
            self.text.extend_from_slice(text.replace('\n', "\r\n").as_bytes());
        } else {
            self.text.extend_from_slice(text.as_bytes());
        }
        start
    }

    /// Counts what an entry written at `start` gives.
    fn outcome(&mut self, outcome: Result<(StealerRecord, bool), &'static str>, start: u64) {
        match outcome {
            Ok((record, not_domain)) => {
                self.not_domain += u64::from(not_domain);
                self.records.push(record);
            }
            Err(reason) => self.reject(reason, start),
        }
    }

    /// Appends another file's text and answers after this one's.
    fn append(&mut self, other: Out) {
        for (reason, lines) in other.rejected {
            self.rejected.entry(reason).or_default().extend(lines.iter().map(|l| l + self.line));
        }
        self.line += other.line;
        self.text.extend(other.text);
        self.records.extend(other.records);
        self.not_domain += other.not_domain;
    }

    fn reject(&mut self, reason: &'static str, line: u64) {
        self.rejected.entry(reason).or_default().push(line);
    }

    fn file(self, path: String) -> StealerFile {
        StealerFile {
            path,
            text: self.text,
            records: self.records,
            rejected: self.rejected,
            lines: self.line,
            not_domain: self.not_domain,
        }
    }
}

/// A saved credential of one machine, before a family writes it.
struct Entry {
    url: String,
    website: Website,
    login: String,
    password: String,
}

impl Entry {
    /// What the rules make of this entry in a block (`in_block`) or a ULP
    /// line: the record, and whether its host was no domain.
    fn outcome(&self, in_block: bool) -> Result<(StealerRecord, bool), &'static str> {
        if self.password.bytes().any(|b| b < 0x20 && b != b'\t') {
            return Err("control characters");
        }
        let website = match &self.website {
            Website::Domain(domain) => Some(domain.clone()),
            Website::NotDomain => None,
            Website::Invalid => return Err("invalid website"),
        };
        let not_domain = website.is_none();
        if self.login.is_empty() {
            // A ULP line's empty login is an empty user name.
            return Err(if in_block { "no account" } else { "invalid username" });
        }
        let password = (!self.password.is_empty()).then(|| self.password.clone().into_bytes());
        let record = if self.login.contains('@') {
            let value = normalize_email(&self.login).map_err(|_| "invalid email")?;
            StealerRecord { account: (AccountKind::Email, value), password, website }
        } else {
            let value = normalize_username(&self.login).ok_or("invalid username")?;
            let website = website.filter(|_| !in_block);
            StealerRecord { account: (AccountKind::Username, value), password, website }
        };
        Ok((record, not_domain))
    }
}

/// Logins at hosts that are no domain: routers, NAS boxes, intranet portals,
/// services on the victim's own machine.
const NOT_DOMAIN_URLS: &[&str] = &[
    "http://192.168.1.1:8080/login",
    "https://10.0.0.1:8080/cgi-bin/luci",
    "http://localhost:3000/",
    "https://intranet/",
    "https://[::1]:8443/x",
    "http://[fe80::1]/",
    "chrome://settings/passwords",
];

fn domain(host: &str) -> Website {
    Website::Domain(normalize_domain(host).expect("a listed site is a domain"))
}

/// The credentials one victim's browsers held: mostly their own addresses and
/// nicknames on popular sites, a few app logins, and the noise of real logs.
fn machine_entries(rng: &mut Rng, sampler: &PasswordSampler) -> Vec<Entry> {
    let first = *rng.pick(FIRST_NAMES);
    let last = *rng.pick(LAST_NAMES);
    let mail = FREEMAIL[rng.below(FREEMAIL.len())].0;
    let email = match rng.below(3) {
        0 => format!("{first}.{last}@{mail}"),
        1 => format!("{}{}@{mail}", first.to_ascii_lowercase(), rng.range(1, 99)),
        _ => format!(
            "{}_{}{}@{mail}",
            first.to_ascii_lowercase(),
            last.to_ascii_lowercase(),
            rng.range(70, 99)
        ),
    };
    let nick = format!("{}{}{}", rng.pick(NICK_PARTS), rng.pick(NICK_PARTS), rng.range(1, 999));
    let base = sampler.sample(rng, first, 1990);
    let base = String::from_utf8(base).unwrap_or_else(|_| "Summer2024!".into());
    let mut entries = Vec::new();
    for _ in 0..rng.range(3, 10) {
        let (host, path) = *rng.pick(SITES);
        let url = match rng.below(10) {
            0 => format!("https://{host}:443{path}"),
            1 => format!("http://{host}{path}?next=%2Fhome"),
            _ => format!("https://{host}{path}"),
        };
        let login = if rng.chance(0.7) { email.clone() } else { nick.clone() };
        // People reuse and vary one password; some sites keep the login only.
        let password = match rng.below(10) {
            0 => String::new(),
            1 => format!("{base}{}", rng.range(1, 9)),
            2 => "pa:ss word|1".into(),
            _ => base.clone(),
        };
        entries.push(Entry { url, website: domain(host), login, password });
    }
    if rng.chance(0.4) {
        let app = *rng.pick(APPS);
        let url = format!("android://{}==@{app}/", "aGFzaF9vZl90aGVfYXBrX3NpZ25pbmdfa2V5");
        entries.push(Entry { url, website: domain(app), login: email.clone(), password: base.clone() });
    }
    // The home router, the office NAS, the intranet: their logins are exposed
    // all the same.
    for _ in 0..rng.below(3) {
        let login = if rng.chance(0.5) { email.clone() } else { "admin".into() };
        let url = (*rng.pick(NOT_DOMAIN_URLS)).to_owned();
        entries.push(Entry { url, website: Website::NotDomain, login, password: base.clone() });
    }
    // Noise: a saved page with no host, a login field left empty, a pasted
    // control byte.
    if rng.chance(0.3) {
        entries.push(Entry {
            url: "file:///C:/Users/victim/Desktop/login.html".into(),
            website: Website::Invalid,
            login: email.clone(),
            password: base.clone(),
        });
    }
    if rng.chance(0.3) {
        let (host, path) = *rng.pick(SITES);
        let url = format!("https://{host}{path}");
        entries.push(Entry { url, website: domain(host), login: String::new(), password: base.clone() });
    }
    if rng.chance(0.2) {
        let (host, path) = *rng.pick(SITES);
        let url = format!("https://{host}{path}");
        let password = format!("{base}\u{1b}[A");
        entries.push(Entry { url, website: domain(host), login: email, password });
    }
    rng.shuffle(&mut entries);
    entries
}

/// One machine's `Passwords.txt` in `family`'s layout, under its banner.
fn passwords_txt(rng: &mut Rng, family: Family, entries: &[Entry]) -> Out {
    // RedLine and META write CRLF; the others either, by build.
    let crlf = matches!(family, Family::RedLine | Family::Obfuscated) || rng.chance(0.3);
    let mut out = Out { crlf, ..Out::default() };
    if rng.chance(0.8) {
        let build = rng.next_u64() >> 32;
        out.put(&family.banner(build));
    }
    for entry in entries {
        let block = match family {
            Family::RedLine => format!(
                "URL: {}\nUsername: {}\nPassword: {}\nApplication: {}\n===============\n",
                entry.url,
                entry.login,
                entry.password,
                rng.pick(BROWSERS)
            ),
            Family::Obfuscated => {
                format!("URL: {}\nU53RN4M3: {}\nP455W0RD: {}\n\n", entry.url, entry.login, entry.password)
            }
            Family::Raccoon => {
                format!("URL: {}\nUSER: {}\nPASS: {}\n\n", entry.url, entry.login, entry.password)
            }
            Family::Legacy => format!(
                "Soft: {}\nHost: {}\nLogin: {}\nPassword: {}\n\n",
                rng.pick(BROWSERS),
                entry.url,
                entry.login,
                entry.password
            ),
        };
        let start = out.put(&block);
        out.outcome(entry.outcome(true), start);
    }
    out
}

/// A ULP file cut from many machines' entries, one `URL:login:password` a line.
fn ulp_file(rng: &mut Rng, machines: &[Vec<Entry>]) -> Out {
    let mut out = Out::default();
    for entry in machines.iter().flatten() {
        // A login with the separator in it cannot be written as a ULP line.
        if entry.login.contains([':', '|', ' ']) {
            continue;
        }
        let sep = if rng.chance(0.9) { ':' } else { '|' };
        let line = format!("{}{sep}{}{sep}{}\n", entry.url, entry.login, entry.password);
        let start = out.put(&line);
        out.outcome(entry.outcome(false), start);
    }
    out
}

/// Names that password lists get once renamed or exported: no stealer
/// family's, so only their blocks tell what they are.
const RENAMED: &[&str] = &["pass.txt", "logins_export.txt", "creds (1).txt", "data.log"];

/// A log folder of `machines` infected machines (a `Passwords.txt` each, the
/// families in turn; every fifth renamed), one file of four machines' lists
/// concatenated, and one ULP file of all their entries, from `seed`.
pub fn stealer_logs(seed: u64, machines: usize) -> Vec<StealerFile> {
    let mut rng = Rng::new(seed);
    let sampler = PasswordSampler::new();
    let per_machine: Vec<Vec<Entry>> = (0..machines).map(|_| machine_entries(&mut rng, &sampler)).collect();
    let mut files = Vec::with_capacity(machines + 2);
    for (i, entries) in per_machine.iter().enumerate() {
        let family = Family::ALL[i % Family::ALL.len()];
        let folder =
            format!("{}[{:016X}] 2026-0{}-1{}", rng.pick(COUNTRIES), rng.next_u64(), 1 + i % 9, i % 10);
        let name = if i % 5 == 4 { *rng.pick(RENAMED) } else { "Passwords.txt" };
        files.push(passwords_txt(&mut rng, family, entries).file(format!("{folder}/{name}")));
    }
    let mut merged = Out::default();
    for (i, entries) in per_machine.iter().enumerate().take(4) {
        merged.append(passwords_txt(&mut rng, Family::ALL[i % Family::ALL.len()], entries));
    }
    files.push(merged.file("merged_logs.txt".into()));
    files.push(ulp_file(&mut rng, &per_machine).file("ULP_private_cloud.txt".into()));
    files
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn logs_hold_every_family_records_and_noise() {
        let files = stealer_logs(7, 30);
        assert_eq!(files.len(), 32);
        let records: usize = files.iter().map(|f| f.records.len()).sum();
        assert!(records > 150, "{records}");
        let reasons: Vec<&str> = files.iter().flat_map(|f| f.rejected.keys().copied()).collect();
        for reason in ["invalid website", "no account", "control characters", "invalid username"] {
            assert!(reasons.contains(&reason), "{reason} never happens");
        }
        let apps = files.iter().flat_map(|f| &f.records).filter(|r| {
            r.website
                .as_deref()
                .is_some_and(|w| APPS.iter().any(|app| normalize_domain(app).as_deref() == Some(w)))
        });
        assert!(apps.count() > 0, "android app logins");
        assert!(files.iter().filter(|f| f.not_domain > 0).count() > 10, "logins at hosts that are no domain");
        let renamed =
            files.iter().filter(|f| !f.path.ends_with("Passwords.txt") && !f.path.starts_with("ULP"));
        assert!(renamed.count() >= 6, "renamed and concatenated lists");
        let crlf = files.iter().filter(|f| f.text.windows(2).any(|w| w == b"\r\n")).count();
        assert!(crlf > 0 && crlf < files.len(), "both line ends");
        let again = stealer_logs(7, 30);
        assert!(files.iter().zip(&again).all(|(a, b)| a.text == b.text), "same seed, same bytes");
    }
}
