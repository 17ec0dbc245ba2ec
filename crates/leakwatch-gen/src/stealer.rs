//! Infostealer logs as they are traded (`docs/ingest-rules.md`, "Stealer
//! logs"): one folder per infected machine holding its family's
//! `Passwords.txt`, and the ULP files (`URL:login:password`) that sellers cut
//! from thousands of such folders, with the records each file must give.
//!
//! Families differ in labels, separators and line endings: RedLine and META
//! write `URL:`/`Username:`/`Password:`/`Application:` blocks closed by 15 `=`
//! with CRLF; Raccoon writes upper-case `USER:`/`PASS:` blocks split by blank
//! lines; older families (Vidar, Azorult) put `Soft:` and `Host:` before the
//! login. Every file also carries the noise the parsers must count: browser
//! pages that are no website, entries whose login the browser never saw, and
//! control bytes in a password.

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
}

impl Family {
    pub const ALL: [Family; 3] = [Family::RedLine, Family::Raccoon, Family::Legacy];
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
}

impl Out {
    /// Appends `text` and returns the number of the line it starts on.
    fn put(&mut self, text: &str) -> u64 {
        let start = self.line + 1;
        self.line += text.bytes().filter(|&b| b == b'\n').count() as u64;
        self.text.extend_from_slice(text.as_bytes());
        start
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
        }
    }
}

/// A saved credential of one machine, before a family writes it.
struct Entry {
    url: String,
    /// The host as the rules normalize it; `None`: a page that is no website.
    website: Option<String>,
    login: String,
    password: String,
}

impl Entry {
    /// What the rules make of this entry in a block (`in_block`) or a ULP line.
    fn outcome(&self, in_block: bool) -> Result<StealerRecord, &'static str> {
        if self.password.bytes().any(|b| b < 0x20 && b != b'\t') {
            return Err("control characters");
        }
        let website = self.website.clone().ok_or("invalid website")?;
        if self.login.is_empty() {
            // A ULP line's empty login is an empty user name.
            return Err(if in_block { "no account" } else { "invalid username" });
        }
        let password = (!self.password.is_empty()).then(|| self.password.clone().into_bytes());
        if self.login.contains('@') {
            let value = normalize_email(&self.login).map_err(|_| "invalid email")?;
            Ok(StealerRecord { account: (AccountKind::Email, value), password, website: Some(website) })
        } else {
            let value = normalize_username(&self.login).ok_or("invalid username")?;
            let website = (!in_block).then_some(website);
            Ok(StealerRecord { account: (AccountKind::Username, value), password, website })
        }
    }
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
        entries.push(Entry { url, website: normalize_domain(host), login, password });
    }
    if rng.chance(0.4) {
        let app = *rng.pick(APPS);
        let url = format!("android://{}==@{app}/", "aGFzaF9vZl90aGVfYXBrX3NpZ25pbmdfa2V5");
        entries.push(Entry {
            url,
            website: normalize_domain(app),
            login: email.clone(),
            password: base.clone(),
        });
    }
    // Noise: a browser page, a login field left empty, a pasted control byte.
    if rng.chance(0.3) {
        entries.push(Entry {
            url: "chrome://settings/passwords".into(),
            website: None,
            login: email.clone(),
            password: base.clone(),
        });
    }
    if rng.chance(0.3) {
        let (host, path) = *rng.pick(SITES);
        let url = format!("https://{host}{path}");
        entries.push(Entry {
            url,
            website: normalize_domain(host),
            login: String::new(),
            password: base.clone(),
        });
    }
    if rng.chance(0.2) {
        let (host, path) = *rng.pick(SITES);
        let url = format!("https://{host}{path}");
        let password = format!("{base}\u{1b}[A");
        entries.push(Entry { url, website: normalize_domain(host), login: email, password });
    }
    rng.shuffle(&mut entries);
    entries
}

/// One machine's `Passwords.txt` in `family`'s layout.
fn passwords_txt(rng: &mut Rng, family: Family, entries: &[Entry]) -> Out {
    let mut out = Out::default();
    if family == Family::RedLine && rng.chance(0.5) {
        // RedLine's banner: a line that is neither a label nor a ULP line.
        out.put("*****************************************\r\n");
    }
    for entry in entries {
        let block = match family {
            Family::RedLine => format!(
                "URL: {}\r\nUsername: {}\r\nPassword: {}\r\nApplication: {}\r\n===============\r\n",
                entry.url,
                entry.login,
                entry.password,
                rng.pick(BROWSERS)
            ),
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
        match entry.outcome(true) {
            Ok(record) => out.records.push(record),
            Err(reason) => out.reject(reason, start),
        }
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
        match entry.outcome(false) {
            Ok(record) => out.records.push(record),
            Err(reason) => out.reject(reason, start),
        }
    }
    out
}

/// A log folder of `machines` infected machines (a `Passwords.txt` each, the
/// families in turn) and one ULP file of all their entries, from `seed`.
pub fn stealer_logs(seed: u64, machines: usize) -> Vec<StealerFile> {
    let mut rng = Rng::new(seed);
    let sampler = PasswordSampler::new();
    let per_machine: Vec<Vec<Entry>> = (0..machines).map(|_| machine_entries(&mut rng, &sampler)).collect();
    let mut files = Vec::with_capacity(machines + 1);
    for (i, entries) in per_machine.iter().enumerate() {
        let family = Family::ALL[i % Family::ALL.len()];
        let folder =
            format!("{}[{:016X}] 2026-0{}-1{}", rng.pick(COUNTRIES), rng.next_u64(), 1 + i % 9, i % 10);
        files.push(passwords_txt(&mut rng, family, entries).file(format!("{folder}/Passwords.txt")));
    }
    files.push(ulp_file(&mut rng, &per_machine).file("ULP_private_cloud.txt".into()));
    files
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn logs_hold_every_family_records_and_noise() {
        let files = stealer_logs(7, 30);
        assert_eq!(files.len(), 31);
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
        let again = stealer_logs(7, 30);
        assert!(files.iter().zip(&again).all(|(a, b)| a.text == b.text), "same seed, same bytes");
    }
}
