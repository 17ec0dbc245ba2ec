//! A scenario: a population, several breaches drawn from it (overlapping, with
//! password reuse), each written as the files a real leak comes in, and the exact
//! answers a store loaded with them must give.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use leakwatch_types::AccountKind;

use crate::combo::{self, ComboMode, MALFORMED_HEX};
use crate::csv::{self, Col, Layout};
use crate::expected::{AccountKey, BreachTally, ExpBreach, Expected, Totals};
use crate::file::{render, Compression, Entry, Outcome, RenderedFile};
use crate::ndjson;
use crate::noise::Noise;
use crate::passwords::PasswordSampler;
use crate::population::{phone_key, username_key, Address, Population};
use crate::rng::Rng;
use crate::rules::{detect, Format};

/// What to generate.
#[derive(Debug, Clone)]
pub struct ScenarioConfig {
    /// People in the population; breaches draw from them (about a third each).
    pub people: usize,
    /// The organization whose staff appear in some breaches (`CorpPortal2022`).
    pub org_domain: String,
    /// Share of people with an address at the organization domain.
    pub work_share: f64,
    pub noise: Noise,
}

impl Default for ScenarioConfig {
    /// The demo: a few thousand accounts, every kind of noise.
    fn default() -> Self {
        ScenarioConfig {
            people: 3000,
            org_domain: "example-corp.com".into(),
            work_share: 0.08,
            noise: Noise::all(),
        }
    }
}

/// One credential to write: whose, under which account, shown how, with which password.
#[derive(Debug, Clone)]
pub(crate) struct Row {
    pub person: usize,
    pub account: AccountKey,
    /// The identity as the dump shows it.
    pub display: String,
    /// `None` for an account exposed without a password.
    pub password: Option<Vec<u8>>,
}

/// A generated breach, its files held in memory until written.
#[derive(Debug, Clone)]
pub struct Breach {
    pub name: String,
    pub title: String,
    /// Empty for breaches of no single site (combo lists), as HIBP does.
    pub domain: String,
    /// `YYYY-MM-DD`.
    pub breach_date: String,
    pub files: Vec<RenderedFile>,
}

/// Where a breach's files were written, with what `leakwatch ingest` needs to load them.
#[derive(Debug, Clone)]
pub struct BreachFiles {
    pub name: String,
    pub title: String,
    pub domain: String,
    pub breach_date: String,
    pub files: Vec<PathBuf>,
}

#[derive(Debug, Clone)]
pub struct Scenario {
    pub seed: u64,
    pub config: ScenarioConfig,
    pub population: Population,
    pub breaches: Vec<Breach>,
}

/// Whose accounts a breach holds.
#[derive(Clone, Copy)]
enum Accounts {
    /// Private addresses (sometimes plus-tagged).
    Email,
    /// User names, with some addresses and phone numbers among them.
    Username,
    /// Addresses at the organization domain.
    Work,
}

enum Kind {
    Combo(u8, ComboMode),
    Csv(Layout),
    Ndjson,
}

struct FilePlan {
    name: &'static str,
    kind: Kind,
    compression: Compression,
    /// Relative share of the breach's rows.
    weight: u32,
}

struct Template {
    name: &'static str,
    title: &'static str,
    domain: String,
    date: &'static str,
    share: f64,
    accounts: Accounts,
    max_credentials: usize,
    files: Vec<FilePlan>,
}

fn templates(org_domain: &str) -> Vec<Template> {
    let file = |name, kind, compression, weight| FilePlan { name, kind, compression, weight };
    let layout = |delimiter, columns: &[(&'static str, Col)], quote_all, cracked| Layout {
        delimiter,
        columns: columns.to_vec(),
        quote_all,
        cracked,
    };
    vec![
        Template {
            name: "ShopNova2019",
            title: "ShopNova",
            domain: "shopnova.example".into(),
            date: "2019-03-14",
            share: 0.3,
            accounts: Accounts::Email,
            max_credentials: 1,
            files: vec![file(
                "shopnova_users.csv",
                Kind::Csv(layout(
                    b',',
                    &[
                        ("id", Col::Id),
                        ("Email", Col::Email),
                        ("password", Col::Password),
                        ("full_name", Col::FullName),
                        ("ip_address", Col::Ip),
                        ("dob", Col::Dob),
                        ("address", Col::Address),
                    ],
                    false,
                    1.0,
                )),
                Compression::Gzip,
                1,
            )],
        },
        Template {
            name: "FitTrackr",
            title: "FitTrackr",
            domain: "fittrackr.example".into(),
            date: "2021-07-02",
            share: 0.25,
            accounts: Accounts::Email,
            max_credentials: 1,
            files: vec![file("fittrackr_export.ndjson", Kind::Ndjson, Compression::Zstd, 1)],
        },
        Template {
            name: "GamerHub2017",
            title: "GamerHub",
            domain: "gamerhub.example".into(),
            date: "2017-11-20",
            share: 0.22,
            accounts: Accounts::Username,
            max_credentials: 1,
            files: vec![file(
                "gamerhub_accounts.txt",
                Kind::Combo(b':', ComboMode::Username),
                Compression::None,
                1,
            )],
        },
        Template {
            name: "Combolist2023",
            title: "Combolist 2023",
            domain: String::new(),
            date: "2023-05-01",
            share: 0.4,
            accounts: Accounts::Email,
            max_credentials: 3,
            files: vec![
                file("combo_part1.txt", Kind::Combo(b':', ComboMode::Email), Compression::None, 4),
                file("combo_part2.txt", Kind::Combo(b';', ComboMode::Email), Compression::Gzip, 2),
                file("combo_part3.txt", Kind::Combo(b'|', ComboMode::Email), Compression::None, 1),
                file("combo_part4.txt", Kind::Combo(b'\t', ComboMode::Email), Compression::Zstd, 1),
            ],
        },
        Template {
            name: "PhotoVault2015",
            title: "PhotoVault",
            domain: "photovault.example".into(),
            date: "2015-09-09",
            share: 0.18,
            accounts: Accounts::Email,
            max_credentials: 1,
            files: vec![
                file(
                    "photovault_users.csv",
                    Kind::Csv(layout(
                        b';',
                        &[
                            ("user_id", Col::Id),
                            ("email", Col::Email),
                            ("password", Col::Password),
                            ("sha1", Col::Sha1),
                            ("created", Col::Created),
                        ],
                        true,
                        0.4,
                    )),
                    Compression::None,
                    3,
                ),
                file(
                    "photovault_legacy.tsv",
                    Kind::Csv(layout(
                        b'\t',
                        // Names as real dumps write them: found by their words.
                        &[
                            ("member_no", Col::Id),
                            ("mail_address", Col::Email),
                            ("passwd_md5", Col::Md5),
                            ("signupIP", Col::Ip),
                            ("pw_changed_at", Col::Created),
                        ],
                        false,
                        0.0,
                    )),
                    Compression::None,
                    1,
                ),
                file(
                    "photovault_admins.csv",
                    Kind::Csv(layout(
                        b',',
                        &[
                            ("email_addr", Col::Email),
                            ("user_pass_hash", Col::Bcrypt),
                            ("regip", Col::Ip),
                            ("password_changed_at", Col::Created),
                        ],
                        true,
                        0.0,
                    )),
                    Compression::None,
                    1,
                ),
            ],
        },
        Template {
            name: "CorpPortal2022",
            title: "Example Corp portal",
            domain: org_domain.to_string(),
            date: "2022-02-11",
            share: 0.75,
            accounts: Accounts::Work,
            max_credentials: 2,
            files: vec![
                file(
                    "ad_export.csv",
                    Kind::Csv(layout(
                        b',',
                        &[
                            ("email", Col::Email),
                            ("ntlm", Col::Ntlm),
                            ("full_name", Col::FullName),
                            ("country", Col::Country),
                        ],
                        false,
                        0.0,
                    )),
                    Compression::None,
                    2,
                ),
                file("portal_logins.txt", Kind::Combo(b':', ComboMode::Email), Compression::Gzip, 1),
            ],
        },
    ]
}

const PLUS_TAGS: &[&str] = &["news", "shop", "spam", "games", "2019", "amazon"];

impl Scenario {
    /// The demo scenario (`leakwatch demo`): [`ScenarioConfig::default`].
    pub fn demo(seed: u64) -> Scenario {
        Scenario::new(ScenarioConfig::default(), seed)
    }

    /// A smaller scenario with every kind of noise, quick enough for debug-build tests.
    pub fn small(seed: u64) -> Scenario {
        Scenario::new(ScenarioConfig { people: 800, ..ScenarioConfig::default() }, seed)
    }

    pub fn new(config: ScenarioConfig, seed: u64) -> Scenario {
        let root = Rng::new(seed);
        let mut rng = root.fork(0);
        let mut population = Population::new(&mut rng, config.people, &config.org_domain, config.work_share);
        let sampler = PasswordSampler::new();
        let breaches = templates(&config.org_domain)
            .into_iter()
            .enumerate()
            .map(|(i, t)| {
                build_breach(&mut root.fork(1 + i as u64), &mut population, &sampler, &t, config.noise)
            })
            .collect();
        Scenario { seed, config, population, breaches }
    }

    /// Writes every breach's files under `dir/<breach name>/`.
    pub fn write_all(&self, dir: &Path) -> std::io::Result<Vec<BreachFiles>> {
        let mut out = Vec::new();
        for breach in &self.breaches {
            let mut files = Vec::new();
            for file in &breach.files {
                let path = dir.join(&file.report.path);
                if let Some(parent) = path.parent() {
                    std::fs::create_dir_all(parent)?;
                }
                std::fs::write(&path, &file.bytes)?;
                files.push(path);
            }
            out.push(BreachFiles {
                name: breach.name.clone(),
                title: breach.title.clone(),
                domain: breach.domain.clone(),
                breach_date: breach.breach_date.clone(),
                files,
            });
        }
        Ok(out)
    }

    /// Every answer a store loaded with all breaches (in any order, any number of
    /// times) must give.
    pub fn expected(&self) -> Expected {
        let mut totals = Totals::default();
        let mut breaches = Vec::new();
        for breach in &self.breaches {
            let mut tally = BreachTally::default();
            for file in &breach.files {
                for record in &file.records {
                    tally.add(record);
                }
            }
            for file in &breach.files {
                tally.classes.extend(file.extra_classes.iter().copied());
            }
            totals.add_breach(&breach.name, &tally);
            let mut data_classes: Vec<String> =
                tally.classes.iter().map(|c| c.hibp_name().to_string()).collect();
            data_classes.sort();
            breaches.push(ExpBreach {
                name: breach.name.clone(),
                title: breach.title.clone(),
                domain: breach.domain.clone(),
                breach_date: breach.breach_date.clone(),
                pwn_count: tally.pwn_count(),
                data_classes,
                files: breach.files.iter().map(|f| f.report.clone()).collect(),
            });
        }
        let absent = self.absent_emails(&totals);
        totals.finish(self.seed, breaches, absent)
    }

    /// Addresses in no breach: those of people never exposed, and unseen plus-tags
    /// of exposed ones (a plus-tag is part of the address).
    fn absent_emails(&self, totals: &Totals) -> Vec<String> {
        let mut out = BTreeSet::new();
        for person in &self.population.people {
            for address in person.addresses.iter().chain(&person.work) {
                let canonical = self.population.canonical(address);
                if !totals.has_email(&canonical) {
                    out.insert(canonical);
                } else {
                    let tagged =
                        Address { local: format!("{}+nothere", address.local), domain: address.domain };
                    out.insert(self.population.canonical(&tagged));
                }
            }
            if out.len() >= 400 {
                break;
            }
        }
        out.into_iter().collect()
    }
}

fn build_breach(
    rng: &mut Rng,
    pop: &mut Population,
    sampler: &PasswordSampler,
    t: &Template,
    noise: Noise,
) -> Breach {
    let combo_only = t.files.iter().all(|f| matches!(f.kind, Kind::Combo(..)));
    let mut rows = Vec::new();
    for person in 0..pop.people.len() {
        let member = match t.accounts {
            Accounts::Work => pop.people[person].work.is_some() && rng.chance(t.share),
            _ => rng.chance(t.share),
        };
        if !member {
            continue;
        }
        let credentials = 1 + (0..t.max_credentials - 1).filter(|_| rng.chance(0.3)).count();
        for _ in 0..credentials {
            let (account, display) = pick_account(rng, pop, person, t.accounts);
            let password = pick_password(rng, pop, sampler, person, combo_only);
            rows.push(Row { person, account, display, password });
        }
    }
    rng.shuffle(&mut rows);

    // Deal the rows to the files by weight; a few also land in a second file
    // (shown with another case), as leaks re-shared in parts overlap.
    let total: u32 = t.files.iter().map(|f| f.weight).sum();
    let mut dealt: Vec<Vec<Row>> = t.files.iter().map(|_| Vec::new()).collect();
    for row in rows {
        let target = deal(rng, &t.files, total);
        if t.files.len() > 1 && rng.chance(0.04) {
            let other = (target + 1 + rng.below(t.files.len() - 1)) % t.files.len();
            let mut copy = row.clone();
            copy.display = redisplay(rng, pop, &row);
            dealt[other].push(copy);
        }
        dealt[target].push(row);
    }

    let files = t
        .files
        .iter()
        .zip(dealt)
        .map(|(plan, rows)| build_file(rng, pop, t.name, plan, &rows, noise))
        .collect();
    Breach {
        name: t.name.to_string(),
        title: t.title.to_string(),
        domain: t.domain.clone(),
        breach_date: t.date.to_string(),
        files,
    }
}

fn deal(rng: &mut Rng, files: &[FilePlan], total: u32) -> usize {
    let mut w = rng.below(total as usize) as u32;
    for (i, f) in files.iter().enumerate() {
        if w < f.weight {
            return i;
        }
        w -= f.weight;
    }
    files.len() - 1
}

fn pick_account(rng: &mut Rng, pop: &Population, person: usize, accounts: Accounts) -> (AccountKey, String) {
    let p = &pop.people[person];
    let email = |rng: &mut Rng, address: &Address| {
        ((AccountKind::Email, pop.canonical(address)), pop.display(rng, address))
    };
    match accounts {
        Accounts::Work => email(rng, p.work.as_ref().expect("work breaches hold staff only")),
        Accounts::Email => {
            let roll = rng.below(100);
            if roll < 15 && p.addresses.len() > 1 {
                email(rng, &p.addresses[1])
            } else if roll >= 95 {
                let main = &p.addresses[0];
                let tagged =
                    Address { local: format!("{}+{}", main.local, rng.pick(PLUS_TAGS)), domain: main.domain };
                email(rng, &tagged)
            } else {
                email(rng, &p.addresses[0])
            }
        }
        Accounts::Username => match rng.below(100) {
            0..=87 => ((AccountKind::Username, username_key(&p.username)), p.username.clone()),
            88..=95 => email(rng, &p.addresses[0]),
            _ => ((AccountKind::Phone, phone_key(&p.phone)), p.phone.clone()),
        },
    }
}

/// The same account shown again, possibly in another case.
fn redisplay(rng: &mut Rng, pop: &Population, row: &Row) -> String {
    match row.account.0 {
        AccountKind::Email => {
            let (local, domain) = row.account.1.rsplit_once('@').expect("an address");
            let index = pop.domains.iter().position(|d| d.ascii == domain).expect("a known domain");
            pop.display(rng, &Address { local: local.to_string(), domain: index })
        }
        _ => row.display.clone(),
    }
}

/// A password for this person in a new breach: often one used before (reuse is
/// what makes breaches dangerous), sometimes a variation, sometimes new.
fn pick_password(
    rng: &mut Rng,
    pop: &mut Population,
    sampler: &PasswordSampler,
    person: usize,
    combo_only: bool,
) -> Option<Vec<u8>> {
    if rng.chance(0.02) {
        return None;
    }
    if combo_only && rng.chance(0.005) {
        return Some(rng.pick(MALFORMED_HEX).as_bytes().to_vec());
    }
    let p = &mut pop.people[person];
    let usable = |pw: &Vec<u8>| combo_only || std::str::from_utf8(pw).is_ok();
    let old: Vec<Vec<u8>> = p.passwords.iter().filter(|pw| usable(pw)).cloned().collect();
    let password = if !old.is_empty() && rng.chance(0.5) {
        rng.pick(&old).clone()
    } else if !old.is_empty() && rng.chance(0.3) {
        let base = rng.pick(&old).clone();
        sampler.vary(rng, &base)
    } else {
        loop {
            let candidate = sampler.sample(rng, p.first, p.birth_year);
            if usable(&candidate) {
                break candidate;
            }
        }
    };
    if !p.passwords.contains(&password) {
        p.passwords.push(password.clone());
    }
    Some(password)
}

fn build_file(
    rng: &mut Rng,
    pop: &Population,
    breach: &str,
    plan: &FilePlan,
    rows: &[Row],
    noise: Noise,
) -> RenderedFile {
    use crate::noise::NoiseKind::{Bom, Crlf};
    let (format, mut entries, extra_classes) = match &plan.kind {
        Kind::Combo(sep, mode) => {
            (Format::Combo, combo::build(rng, rows, *sep, *mode, noise), BTreeSet::new())
        }
        Kind::Csv(layout) => (Format::Csv, csv::build(rng, pop, layout, rows, noise), layout.extra_classes()),
        Kind::Ndjson => (Format::Ndjson, ndjson::build(rng, rows, noise), BTreeSet::new()),
    };
    if let Kind::Combo(_, mode) = &plan.kind {
        guard_detection(&mut entries);
        assert_eq!(
            combo_mode(&entries),
            *mode,
            "generator bug: {breach}/{} would be read in another mode",
            plan.name
        );
    }
    let first = entries
        .iter()
        .find(|e| !e.text.trim_ascii().is_empty() && e.text.len() <= 64 * 1024)
        .expect("files are not empty");
    assert_eq!(
        detect(first_line(first)),
        format,
        "generator bug: {breach}/{} would be detected wrongly",
        plan.name
    );
    let path = format!("{breach}/{}{}", plan.name, plan.compression.extension());
    // CRLF and BOM go to some files only, so that plain files stay plain too.
    let bom = noise.has(Bom) && rng.chance(0.5);
    let crlf = noise.has(Crlf) && rng.chance(0.5);
    let mut file = render(path, format, plan.compression, entries, bom, crlf);
    file.extra_classes = extra_classes;
    file
}

/// The first line of an entry, as format detection sees it.
fn first_line(entry: &Entry) -> &[u8] {
    entry.text.split(|&b| b == b'\n').next().unwrap_or_default()
}

/// Makes sure `--format auto` reads a combo as a combo: a line like
/// `bob@example.com;password` would otherwise make it a CSV with a header.
fn guard_detection(entries: &mut [Entry]) {
    let Some(first) =
        entries.iter().position(|e| !e.text.trim_ascii().is_empty() && e.text.len() <= 64 * 1024)
    else {
        return;
    };
    if detect(first_line(&entries[first])) == Format::Combo {
        return;
    }
    let swap = (first + 1..entries.len())
        .find(|&j| {
            matches!(entries[j].outcome, Outcome::Accepted(_))
                && detect(first_line(&entries[j])) == Format::Combo
        })
        .expect("some line of a combo is detected as a combo");
    entries.swap(first, swap);
}

/// The mode the rules give a combo: from the first 1,000 lines that are not
/// blank, not too long and free of control characters.
fn combo_mode(entries: &[Entry]) -> ComboMode {
    let (mut with_sep, mut with_at) = (0usize, 0usize);
    let sampled = entries.iter().filter(|e| {
        let line = e.text.trim_ascii();
        !line.is_empty() && e.text.len() <= 64 * 1024 && !line.iter().any(|&b| b < 0x20 && b != b'\t')
    });
    for entry in sampled.take(1000) {
        let line = entry.text.trim_ascii();
        if let Some(end) = line.iter().position(|b| b":;|\t".contains(b)) {
            with_sep += 1;
            with_at += usize::from(line[..end].contains(&b'@'));
        }
    }
    if with_at * 2 >= with_sep {
        ComboMode::Email
    } else {
        ComboMode::Username
    }
}
