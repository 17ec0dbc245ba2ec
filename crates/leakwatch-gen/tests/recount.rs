//! Checks the generator against an independent, deliberately plain reading of
//! `docs/ingest-rules.md`: every written file is decompressed and re-read here
//! line by line, and the per-file reports and every cross-breach answer must
//! equal what the generator claimed while writing. (The generator itself never
//! parses its output; this test is the only place that does.)

use std::collections::{BTreeMap, BTreeSet};
use std::io::Read;

use leakwatch_gen::{
    ExpBreach, ExpFile, ExpRejections, Expected, Format, Noise, NoiseKind, Scenario, ScenarioConfig,
    SAMPLE_LINES,
};
use leakwatch_types::{encode_hex_upper, normalize_email, normalize_phone, normalize_username, AccountKind};

const MAX_LINE: usize = 64 * 1024;

#[derive(Debug, Clone, PartialEq)]
enum Pw {
    None,
    Plain(Vec<u8>),
    Sha1([u8; 20]),
    Ntlm([u8; 16]),
    Other,
}

type Account = (AccountKind, String);

#[derive(Default)]
struct FileResult {
    lines: u64,
    accepted: u64,
    rejected: BTreeMap<String, ExpRejections>,
    records: Vec<(Account, Pw)>,
    extra_classes: BTreeSet<&'static str>,
    format: Option<Format>,
}

impl FileResult {
    fn reject(&mut self, line: u64, reason: &str) {
        let r = self.rejected.entry(reason.to_string()).or_default();
        r.count += 1;
        if r.sample_lines.len() < SAMPLE_LINES {
            r.sample_lines.push(line);
        }
    }

    fn accept(&mut self, account: Account, pw: Pw) {
        self.accepted += 1;
        self.records.push((account, pw));
    }
}

fn decompress(bytes: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    if bytes.starts_with(&[0x1f, 0x8b]) {
        flate2::read::MultiGzDecoder::new(bytes).read_to_end(&mut out).unwrap();
    } else if bytes.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]) {
        out = zstd::decode_all(bytes).unwrap();
    } else {
        out = bytes.to_vec();
    }
    out
}

/// Physical lines, numbered from 1, without LF and one trailing CR; `None` when too long.
fn lines(data: &[u8]) -> Vec<(u64, Option<&[u8]>)> {
    let data = data.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(data);
    let mut parts: Vec<&[u8]> = data.split(|&b| b == b'\n').collect();
    if parts.last().is_some_and(|l| l.is_empty()) {
        parts.pop();
    }
    parts
        .into_iter()
        .enumerate()
        .map(|(i, l)| {
            let l = l.strip_suffix(b"\r").unwrap_or(l);
            (i as u64 + 1, (l.len() <= MAX_LINE).then_some(l))
        })
        .collect()
}

fn blank(line: &[u8]) -> bool {
    line.trim_ascii().is_empty()
}

fn detect(first: &[u8]) -> Format {
    let first = first.trim_ascii();
    if first.starts_with(b"{") {
        return Format::Ndjson;
    }
    let (d, n) = [b',', b';', b'\t', b'|']
        .into_iter()
        .map(|d| (d, first.iter().filter(|&&b| b == d).count()))
        .fold((b',', 0), |best, c| if c.1 > best.1 { c } else { best });
    let unquote = |f: &[u8]| {
        let f = f.trim_ascii();
        f.strip_prefix(b"\"").and_then(|f| f.strip_suffix(b"\"")).unwrap_or(f).to_vec()
    };
    let known = n > 0
        && first.split(|&b| b == d).any(|f| {
            // A lone word that is not a listed name (`password123`) is no header.
            leakwatch_types::column_role(&unquote(f))
                .is_some_and(|(_, how)| how != leakwatch_types::NameMatch::OneWord)
        });
    if known {
        Format::Csv
    } else {
        Format::Combo
    }
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Cat {
    Email,
    User,
    Pass,
    Hash,
    Phone,
    Extra(&'static str),
}

fn column(name: &str) -> Option<Cat> {
    use leakwatch_types::{column_role, ColumnRole};
    Some(match column_role(name.as_bytes())?.0 {
        ColumnRole::Email => Cat::Email,
        ColumnRole::Username => Cat::User,
        ColumnRole::Password => Cat::Pass,
        ColumnRole::Hash => Cat::Hash,
        ColumnRole::Phone => Cat::Phone,
        ColumnRole::Class(class) => Cat::Extra(class.hibp_name()),
    })
}

fn unhex(password: &[u8]) -> Vec<u8> {
    let inner = password.strip_prefix(b"$HEX[").and_then(|p| p.strip_suffix(b"]"));
    match inner {
        Some(h) if h.len() % 2 == 0 && h.iter().all(u8::is_ascii_hexdigit) => {
            h.chunks(2).map(|c| u8::from_str_radix(std::str::from_utf8(c).unwrap(), 16).unwrap()).collect()
        }
        _ => password.to_vec(),
    }
}

fn combo(out: &mut FileResult, lines: &[(u64, Option<&[u8]>)]) {
    let sample: Vec<&[u8]> = lines
        .iter()
        .filter_map(|(_, l)| *l)
        .filter(|l| !blank(l) && !l.trim_ascii().iter().any(|&b| b < 0x20 && b != b'\t'))
        .take(1000)
        .collect();
    let with_sep: Vec<&[u8]> = sample
        .iter()
        .filter_map(|l| {
            let l = l.trim_ascii();
            l.iter().position(|b| b":;|\t".contains(b)).map(|p| &l[..p])
        })
        .collect();
    let email_mode = with_sep.iter().filter(|id| id.contains(&b'@')).count() * 2 >= with_sep.len();
    for &(no, line) in lines {
        let Some(line) = line else {
            out.reject(no, "line too long");
            continue;
        };
        if blank(line) {
            continue;
        }
        let line = line.trim_ascii();
        if line.iter().any(|&b| b < 0x20 && b != b'\t') {
            out.reject(no, "control characters");
            continue;
        }
        let Some(at) = line.iter().position(|b| b":;|\t".contains(b)) else {
            out.reject(no, "no separator");
            continue;
        };
        let password = unhex(&line[at + 1..]);
        let pw = if password.is_empty() { Pw::None } else { Pw::Plain(password) };
        // The generator writes legacy identities in Latin-1 only, which the
        // input's legacy encoding (Windows-1252 then) reads back.
        let identity = match std::str::from_utf8(&line[..at]) {
            Ok(text) => std::borrow::Cow::Borrowed(text),
            Err(_) => encoding_rs::WINDOWS_1252.decode_without_bom_handling(&line[..at]).0,
        };
        let identity = &*identity;
        let account = if identity.contains('@') {
            match normalize_email(identity) {
                Ok(e) => (AccountKind::Email, e),
                Err(e) => {
                    out.reject(no, e.rejection());
                    continue;
                }
            }
        } else if email_mode {
            out.reject(no, "not an email address");
            continue;
        } else if let Some(p) = normalize_phone(identity).filter(|_| identity.starts_with('+')) {
            (AccountKind::Phone, p)
        } else {
            match normalize_username(identity)
                .filter(|_| identity.len() <= 64 && !identity.contains(char::is_whitespace))
            {
                Some(u) => (AccountKind::Username, u),
                None => {
                    out.reject(no, "invalid username");
                    continue;
                }
            }
        };
        out.accept(account, pw);
    }
}

/// Account and password by the CSV rules, from (category, column name, value) cells.
fn account_and_password(cells: &[(Cat, String, String)]) -> Result<(Account, Pw), &'static str> {
    let find = |cat: Cat| cells.iter().find(|(c, _, v)| *c == cat && !v.is_empty());
    let account = if let Some((_, _, e)) = find(Cat::Email) {
        (AccountKind::Email, normalize_email(e).map_err(|e| e.rejection())?)
    } else if let Some((_, _, u)) = find(Cat::User) {
        (AccountKind::Username, normalize_username(u).ok_or("invalid username")?)
    } else if let Some((_, _, p)) = find(Cat::Phone) {
        (AccountKind::Phone, normalize_phone(p).ok_or("invalid phone")?)
    } else {
        return Err("no account");
    };
    let pw = if let Some((_, _, p)) = find(Cat::Pass) {
        Pw::Plain(p.as_bytes().to_vec())
    } else if let Some((_, name, h)) = find(Cat::Hash) {
        let hex = h.bytes().all(|b| b.is_ascii_hexdigit());
        match h.len() {
            40 if hex => Pw::Sha1(leakwatch_types::decode_hex::<20>(h.as_bytes()).unwrap()),
            32 if hex && name.trim().eq_ignore_ascii_case("ntlm") => {
                Pw::Ntlm(leakwatch_types::decode_hex::<16>(h.as_bytes()).unwrap())
            }
            _ => Pw::Other,
        }
    } else {
        Pw::None
    };
    Ok((account, pw))
}

/// Splits one CSV record; `None` while a quoted field is still open.
fn csv_fields(text: &[u8], delim: u8) -> Option<Vec<String>> {
    let mut fields = Vec::new();
    let mut field = Vec::new();
    let mut quoted = false;
    let mut i = 0;
    while i < text.len() {
        let b = text[i];
        if quoted {
            if b == b'"' && text.get(i + 1) == Some(&b'"') {
                field.push(b'"');
                i += 1;
            } else if b == b'"' {
                quoted = false;
            } else {
                field.push(b);
            }
        } else if b == b'"' && field.is_empty() {
            quoted = true;
        } else if b == delim {
            fields.push(String::from_utf8(std::mem::take(&mut field)).unwrap());
        } else {
            field.push(b);
        }
        i += 1;
    }
    if quoted {
        return None;
    }
    fields.push(String::from_utf8(field).unwrap());
    Some(fields)
}

fn csv(out: &mut FileResult, lines: &[(u64, Option<&[u8]>)]) {
    // The delimiter and the columns (category, name), once the header is read.
    type Header = (u8, Vec<(Option<Cat>, String)>);
    let mut header: Option<Header> = None;
    let mut pending: Option<(u64, Vec<u8>)> = None;
    for &(no, line) in lines {
        let Some(line) = line else {
            out.reject(no, "line too long");
            continue;
        };
        let (start, text) = match pending.take() {
            Some((start, mut text)) => {
                text.push(b'\n');
                text.extend_from_slice(line);
                (start, text)
            }
            None if blank(line) => continue,
            None => (no, line.to_vec()),
        };
        let delim = match &header {
            Some((d, _)) => *d,
            None => [b',', b';', b'\t', b'|']
                .into_iter()
                .max_by_key(|d| (text.iter().filter(|b| *b == d).count(), std::cmp::Reverse(*d)))
                .unwrap(),
        };
        let Some(fields) = csv_fields(&text, delim) else {
            pending = Some((start, text));
            continue;
        };
        let Some((_, columns)) = &header else {
            let columns: Vec<(Option<Cat>, String)> = fields.iter().map(|f| (column(f), f.clone())).collect();
            for (cat, _) in &columns {
                if let Some(Cat::Extra(class)) = cat {
                    out.extra_classes.insert(class);
                }
            }
            header = Some((delim, columns));
            continue;
        };
        if fields.len() != columns.len() {
            out.reject(start, "wrong field count");
            continue;
        }
        let cells: Vec<(Cat, String, String)> = columns
            .iter()
            .zip(fields)
            .filter_map(|((cat, name), value)| cat.map(|c| (c, name.clone(), value)))
            .collect();
        match account_and_password(&cells) {
            Ok((account, pw)) => out.accept(account, pw),
            Err(reason) => out.reject(start, reason),
        }
    }
    assert!(pending.is_none(), "unterminated quoted field");
}

fn walk(value: &serde_json::Value, found: &mut Vec<(Cat, String, String)>) {
    if let serde_json::Value::Object(map) = value {
        for (key, v) in map {
            if let (Some(cat), serde_json::Value::String(s)) = (column(key), v) {
                if !found.iter().any(|(c, _, _)| *c == cat) {
                    found.push((cat, key.clone(), s.clone()));
                }
            }
            walk(v, found);
        }
    }
}

fn ndjson(out: &mut FileResult, lines: &[(u64, Option<&[u8]>)]) {
    for &(no, line) in lines {
        let Some(line) = line else {
            out.reject(no, "line too long");
            continue;
        };
        if blank(line) {
            continue;
        }
        let value: serde_json::Value = match serde_json::from_slice(line) {
            Ok(v @ serde_json::Value::Object(_)) => v,
            _ => {
                out.reject(no, "invalid JSON");
                continue;
            }
        };
        let mut cells = Vec::new();
        walk(&value, &mut cells);
        cells.retain(|(_, _, v)| !v.is_empty());
        match account_and_password(&cells) {
            Ok((account, pw)) => out.accept(account, pw),
            Err(reason) => out.reject(no, reason),
        }
    }
}

fn reread(bytes: &[u8]) -> FileResult {
    let data = decompress(bytes);
    let lines = lines(&data);
    let mut out = FileResult { lines: lines.len() as u64, ..FileResult::default() };
    let first = lines.iter().filter_map(|(_, l)| *l).find(|l| !blank(l)).expect("a non-blank line");
    let format = detect(first);
    out.format = Some(format);
    match format {
        Format::Combo => combo(&mut out, &lines),
        Format::Csv => csv(&mut out, &lines),
        Format::Ndjson => ndjson(&mut out, &lines),
    }
    out
}

/// Recomputes every answer from the re-read files.
fn recount(scenario: &Scenario) -> Expected {
    let mut per_breach = Vec::new();
    let mut emails: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    let mut sha1: BTreeMap<String, u64> = BTreeMap::new();
    let mut ntlm: BTreeMap<String, u64> = BTreeMap::new();
    for breach in &scenario.breaches {
        let mut accounts = BTreeSet::new();
        let mut sha_pairs = BTreeSet::new();
        let mut ntlm_pairs = BTreeSet::new();
        let mut classes = BTreeSet::new();
        let mut files = Vec::new();
        for file in &breach.files {
            let r = reread(&file.bytes);
            for (account, pw) in &r.records {
                accounts.insert(account.clone());
                classes.insert(match account.0 {
                    AccountKind::Email => "Email addresses",
                    AccountKind::Username => "Usernames",
                    AccountKind::Phone => "Phone numbers",
                });
                if *pw != Pw::None {
                    classes.insert("Passwords");
                }
                match pw {
                    Pw::Plain(p) => {
                        sha_pairs.insert((account.clone(), encode_hex_upper(&leakwatch_types::sha1(p))));
                        ntlm_pairs.insert((account.clone(), encode_hex_upper(&leakwatch_types::ntlm(p))));
                    }
                    Pw::Sha1(h) => {
                        sha_pairs.insert((account.clone(), encode_hex_upper(h)));
                    }
                    Pw::Ntlm(h) => {
                        ntlm_pairs.insert((account.clone(), encode_hex_upper(h)));
                    }
                    Pw::None | Pw::Other => {}
                }
            }
            classes.extend(r.extra_classes.iter().copied());
            files.push(ExpFile {
                path: file.report.path.clone(),
                format: r.format.unwrap(),
                compression: file.report.compression.clone(),
                lines: r.lines,
                accepted: r.accepted,
                rejected: r.rejected,
            });
        }
        for (kind, value) in &accounts {
            if *kind == AccountKind::Email {
                emails.entry(value.clone()).or_default().insert(breach.name.clone());
            }
        }
        for (_, h) in sha_pairs {
            *sha1.entry(h).or_default() += 1;
        }
        for (_, h) in ntlm_pairs {
            *ntlm.entry(h).or_default() += 1;
        }
        let classes: Vec<String> = classes.into_iter().map(String::from).collect();
        per_breach.push(ExpBreach {
            name: breach.name.clone(),
            title: breach.title.clone(),
            domain: breach.domain.clone(),
            breach_date: breach.breach_date.clone(),
            pwn_count: accounts.len() as u64,
            data_classes: classes,
            files,
        });
    }
    let emails: BTreeMap<String, Vec<String>> =
        emails.into_iter().map(|(k, v)| (k, v.into_iter().collect())).collect();
    let mut domains: BTreeMap<String, BTreeMap<String, Vec<String>>> = BTreeMap::new();
    for (email, names) in &emails {
        let (alias, domain) = email.rsplit_once('@').unwrap();
        domains.entry(domain.into()).or_default().insert(alias.into(), names.clone());
    }
    Expected {
        seed: scenario.seed,
        breaches: per_breach,
        emails,
        absent_emails: Vec::new(),
        domains,
        sha1,
        ntlm,
    }
}

fn check(scenario: &Scenario) {
    let want = scenario.expected();
    let got = recount(scenario);
    assert_eq!(got.breaches.len(), want.breaches.len());
    for (g, w) in got.breaches.iter().zip(&want.breaches) {
        for (gf, wf) in g.files.iter().zip(&w.files) {
            assert_eq!(gf, wf, "file {}", wf.path);
        }
        assert_eq!(g, w, "breach {}", w.name);
    }
    assert_eq!(got.emails, want.emails);
    assert_eq!(got.domains, want.domains);
    assert_eq!(got.sha1, want.sha1);
    assert_eq!(got.ntlm, want.ntlm);
    for absent in &want.absent_emails {
        assert!(!got.emails.contains_key(absent), "{absent} is said absent but present");
    }
}

#[test]
fn clean_scenario_agrees_with_a_recount() {
    let config = ScenarioConfig { people: 600, noise: Noise::none(), ..ScenarioConfig::default() };
    let scenario = Scenario::new(config, 11);
    check(&scenario);
    // Without noise nothing is rejected, except what the rules make of an empty
    // password after a TAB: trimming removes the separator with the whitespace.
    let expected = scenario.expected();
    for file in expected.breaches.iter().flat_map(|b| &b.files) {
        let tab_separated = file.path.contains("combo_part4");
        assert!(file.rejected.keys().all(|r| tab_separated && r == "no separator"), "{file:?}");
    }
}

#[test]
fn noisy_scenario_agrees_with_a_recount() {
    let scenario = Scenario::small(12);
    check(&scenario);
    // Every rejection reason the generator can produce shows up somewhere.
    let expected = scenario.expected();
    let reasons: BTreeSet<&str> = expected
        .breaches
        .iter()
        .flat_map(|b| &b.files)
        .flat_map(|f| f.rejected.keys().map(String::as_str))
        .collect();
    let all = [
        "line too long",
        "control characters",
        "no separator",
        "invalid email: local part",
        "invalid email: domain",
        "invalid email: IP literal domain",
        "not an email address",
        "invalid username",
        "no account",
        "wrong field count",
        "invalid JSON",
    ];
    assert_eq!(reasons, all.into_iter().collect());
}

#[test]
fn each_noise_kind_alone_is_counted_right() {
    for kind in NoiseKind::ALL {
        let config =
            ScenarioConfig { people: 200, noise: Noise::none().with(kind), ..ScenarioConfig::default() };
        check(&Scenario::new(config, 13));
    }
}

#[test]
fn same_seed_same_bytes() {
    let a = Scenario::small(21);
    let b = Scenario::small(21);
    let c = Scenario::small(22);
    let bytes =
        |s: &Scenario| s.breaches.iter().flat_map(|b| &b.files).map(|f| f.bytes.clone()).collect::<Vec<_>>();
    assert_eq!(bytes(&a), bytes(&b));
    assert_ne!(bytes(&a), bytes(&c));
    assert_eq!(a.expected(), b.expected());
    let json = a.expected().to_json();
    assert_eq!(Expected::from_json(&json).unwrap(), a.expected());
}

#[test]
fn scenario_is_realistic() {
    let s = Scenario::demo(1);
    let e = s.expected();
    assert_eq!(e.breaches.len(), 6);
    // Breaches overlap, and passwords are reused.
    assert!(e.emails.values().filter(|b| b.len() > 1).count() > 200);
    assert!(e.sha1.values().any(|&n| n > 50), "the most common password is common");
    assert!(e.domains.contains_key("example-corp.com"));
    assert!(e.domains.contains_key("xn--bcher-kva.de") || e.domains.contains_key("xn--mnchen-3ya.de"));
    let total: u64 = e.breaches.iter().map(|b| b.pwn_count).sum();
    assert!((3000..10_000).contains(&total), "{total}");
    let dir = tempfile::tempdir().unwrap();
    let written = s.write_all(dir.path()).unwrap();
    assert_eq!(written.len(), 6);
    assert!(written.iter().flat_map(|b| &b.files).all(|f| f.exists()));
}
