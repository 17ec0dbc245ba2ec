//! `audit --org`: each directory account's findings against the whole leak
//! corpus, most urgent first, and the reasons a forced reset takes it.
//!
//! Password findings (the per-account match, counts, empty and shared
//! passwords) come from the last import, which saw the NT hashes; the address
//! findings (breaches, stealer-log sightings) are looked up now.

use std::collections::HashMap;

use leakwatch_catalog::DirectoryImport;
use leakwatch_store::{Breach, Store};
use leakwatch_types::{Account, AccountKind};
use rayon::prelude::*;
use serde::Serialize;

use crate::account::SealedAccount;
use crate::error::Result;
use crate::text::thousands;

/// How urgent an account's exposure is; declared most urgent first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// Its current password leaked for this very account: stuffing works today.
    Critical,
    /// A stealer log holds it (the device is infected), its password is empty,
    /// or its current password is in the corpus.
    High,
    /// It shares its password with another account.
    Medium,
    /// Its address is in breaches, with no password finding.
    Low,
    None,
}

impl Severity {
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Critical => "critical",
            Severity::High => "high",
            Severity::Medium => "medium",
            Severity::Low => "low",
            Severity::None => "none",
        }
    }
}

/// A breach an account's address is in.
#[derive(Debug, Serialize)]
pub struct BreachRef<'a> {
    pub name: &'a str,
    pub title: &'a str,
    pub date: &'a str,
}

/// One directory account's findings: `audit --org --json`'s object.
#[derive(Debug, Serialize)]
pub struct Report<'a> {
    pub account: &'a str,
    pub username: Option<&'a str>,
    pub disabled: bool,
    pub severity: Severity,
    /// Breaches where the account's current password leaked for the account.
    pub own_password_leaked_in: Vec<&'a str>,
    pub stealer_websites: Vec<String>,
    /// Whether the directory gave the account's NT hash.
    pub password_known: bool,
    /// The corpus count of the current password: own dumps and Pwned
    /// Passwords, summed and apart.
    pub password_count: u64,
    pub password_count_own: u64,
    pub password_count_hibp: u64,
    pub empty_password: bool,
    /// The other enabled accounts with the same password.
    pub shared_with: Vec<&'a str>,
    pub breaches: Vec<&'a str>,
    /// The same breaches, by date.
    pub breach_details: Vec<BreachRef<'a>>,
}

impl Report<'_> {
    /// Enabled, and with something to act on.
    pub fn exposed(&self) -> bool {
        !self.disabled && self.severity != Severity::None
    }
}

/// The breaches ingested since the directory's import: the password findings
/// have not seen them (their addresses are looked up all the same).
pub fn newer_breaches<'a>(store: &'a Store, import: &DirectoryImport) -> Vec<&'a str> {
    if store.generation() == import.checked_generation {
        return Vec::new();
    }
    store
        .breaches()
        .into_iter()
        .filter(|b| b.id > import.checked_breach_id)
        .map(|b| b.name.as_str())
        .collect()
}

/// Each directory account's findings, in the directory's order.
pub fn reports<'a>(store: &'a Store, directory: &'a [SealedAccount]) -> Result<Vec<Report<'a>>> {
    let by_id: HashMap<u32, &Breach> = store.breaches().into_iter().map(|b| (b.id, b)).collect();
    // Accounts by their password's keyed hash: equal hashes, equal passwords.
    let mut groups: HashMap<&str, Vec<&str>> = HashMap::new();
    for a in directory.iter().filter(|a| !a.disabled) {
        if let Some(mac) = &a.mac {
            groups.entry(mac).or_default().push(&a.email);
        }
    }
    // Each account's lookups are independent: on all cores.
    let report = |a: &'a SealedAccount| -> Result<Report<'a>> {
        // Stored normalized by the import: no need to normalize again.
        let account = Account { kind: AccountKind::Email, value: a.email.clone() };
        let breaches = store.account_breaches(&account)?;
        let stealer_websites = store.stealer_websites_by_email(&account)?;
        let mut own: Vec<&Breach> = a.own_leaked_in.iter().filter_map(|id| by_id.get(id).copied()).collect();
        own.sort_by(|x, y| x.name.cmp(&y.name));
        let shared_with: Vec<&str> = a
            .mac
            .as_deref()
            .and_then(|m| groups.get(m))
            .map(|g| g.iter().copied().filter(|e| *e != a.email).collect())
            .unwrap_or_default();
        let count = a.own_count + a.hibp_count;
        let severity = if !own.is_empty() {
            Severity::Critical
        } else if !stealer_websites.is_empty() || a.empty_password || count > 0 {
            Severity::High
        } else if !shared_with.is_empty() {
            Severity::Medium
        } else if !breaches.is_empty() {
            Severity::Low
        } else {
            Severity::None
        };
        let mut dated = breaches.clone();
        dated.sort_by(|x, y| (&x.breach_date, &x.name).cmp(&(&y.breach_date, &y.name)));
        Ok(Report {
            account: &a.email,
            username: a.username.as_deref(),
            disabled: a.disabled,
            severity,
            own_password_leaked_in: own.iter().map(|b| b.name.as_str()).collect(),
            stealer_websites,
            password_known: a.mac.is_some(),
            password_count: count,
            password_count_own: a.own_count,
            password_count_hibp: a.hibp_count,
            empty_password: a.empty_password,
            shared_with,
            breaches: breaches.iter().map(|b| b.name.as_str()).collect(),
            breach_details: dated
                .iter()
                .map(|b| BreachRef { name: &b.name, title: &b.title, date: &b.breach_date })
                .collect(),
        })
    };
    directory.par_iter().map(report).collect()
}

/// The reports, most urgent first; disabled accounts are left aside, at the
/// end. References are sorted: a report is large to move.
pub fn most_urgent_first<'r, 'a>(all: &'r [Report<'a>]) -> Vec<&'r Report<'a>> {
    let mut reports: Vec<&Report> = all.iter().collect();
    reports.par_sort_by(|x, y| {
        (x.disabled, x.severity)
            .cmp(&(y.disabled, y.severity))
            .then(y.own_password_leaked_in.len().cmp(&x.own_password_leaked_in.len()))
            .then(y.stealer_websites.len().cmp(&x.stealer_websites.len()))
            .then(y.empty_password.cmp(&x.empty_password))
            .then(y.password_count.cmp(&x.password_count))
            .then(y.shared_with.len().cmp(&x.shared_with.len()))
            .then(y.breaches.len().cmp(&x.breaches.len()))
            .then(x.account.cmp(y.account))
    });
    reports
}

/// Figures over the enabled accounts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Summary {
    pub audited: u64,
    pub disabled: u64,
    /// Current password leaked for the account itself.
    pub critical: u64,
    pub stealer: u64,
    pub empty: u64,
    pub in_corpus: u64,
    pub shared: u64,
    pub in_breaches: u64,
    pub exposed: u64,
}

pub fn summary(reports: &[&Report]) -> Summary {
    let enabled: Vec<&Report> = reports.iter().copied().filter(|r| !r.disabled).collect();
    let count = |f: &dyn Fn(&Report) -> bool| enabled.iter().filter(|r| f(r)).count() as u64;
    Summary {
        audited: enabled.len() as u64,
        disabled: (reports.len() - enabled.len()) as u64,
        critical: count(&|r| !r.own_password_leaked_in.is_empty()),
        stealer: count(&|r| !r.stealer_websites.is_empty()),
        empty: count(&|r| r.empty_password),
        in_corpus: count(&|r| r.password_count > 0),
        shared: count(&|r| !r.shared_with.is_empty()),
        in_breaches: count(&|r| !r.breaches.is_empty()),
        exposed: count(&|r| r.severity != Severity::None),
    }
}

/// Why a forced reset takes the account of `report`, in words; empty when it
/// does not: its own current password leaked for it, its device is in a
/// stealer log, or (`include_common`) its current password is in the corpus.
pub fn reset_reasons(report: &Report, include_common: bool) -> Vec<String> {
    let mut reasons = Vec::new();
    if report.disabled {
        return reasons;
    }
    if !report.own_password_leaked_in.is_empty() {
        reasons.push(format!("own current password leaked in {}", report.own_password_leaked_in.join(", ")));
    }
    if !report.stealer_websites.is_empty() {
        reasons.push(format!(
            "device in a stealer log (credentials for {})",
            report.stealer_websites.join(", ")
        ));
    }
    if include_common && report.password_count > 0 {
        let n = report.password_count;
        reasons.push(format!(
            "current password seen {} {} in the corpus",
            thousands(n),
            if n == 1 { "time" } else { "times" }
        ));
    }
    reasons
}

/// A CSV cell of a report or reset list: quoted when it must be, and never
/// read as a formula by a spreadsheet (a directory's user names are not ours
/// to trust).
pub fn csv_cell(value: &str) -> String {
    let value = if value.starts_with(['=', '+', '-', '@']) { format!("'{value}") } else { value.to_owned() };
    if value.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", value.replace('"', "\"\""))
    } else {
        value
    }
}

#[cfg(test)]
mod tests {
    use leakwatch_catalog::{Catalog, DirectoryEntry};
    use leakwatch_store::{ingest, BreachInfo, DataDir, IngestOptions, Progress};

    use super::*;

    fn entry(email: &str, password: &str, disabled: bool) -> DirectoryEntry {
        DirectoryEntry {
            email: email.into(),
            username: None,
            netbios_domain: None,
            disabled,
            nt_hash: Some(leakwatch_types::ntlm(password.as_bytes())),
            dn: None,
        }
    }

    #[test]
    fn accounts_are_judged_by_their_own_leaked_password_first_and_resets_take_the_urgent_ones() {
        let tmp = tempfile::tempdir().unwrap();
        let data = DataDir::new(tmp.path().join("data"));
        data.init(Some(&tmp.path().join("data.key"))).unwrap();
        let dump = tmp.path().join("corp.txt");
        std::fs::write(
            &dump,
            "alice@corp.example:Summer2024\nbob@corp.example:x-unrelated\neve@other.example:hunter2\n",
        )
        .unwrap();
        let options = IngestOptions {
            breach: BreachInfo { name: "Corp".into(), ..BreachInfo::default() },
            format: None,
            memory_budget: 64 << 20,
        };
        let input = leakwatch_ingest::Input::open(dump.to_str().unwrap()).unwrap();
        ingest(&data, &options, vec![input], &Progress::default(), &mut |_| {}).unwrap();

        let store = Store::open(&data).unwrap();
        let keys = data.ensure_keys().unwrap().directory_keys();
        let mut catalog = Catalog::open_in(data.root()).unwrap();
        catalog.add_organization("corp", &["corp.example".into()]).unwrap();
        let entries = vec![
            entry("zed@corp.example", "Clean-and-long-2027", false),
            entry("bob@corp.example", "Another-fine-one-9", false),
            entry("carol@corp.example", "hunter2", false),
            entry("alice@corp.example", "Summer2024", false),
            entry("frank@corp.example", "Summer2024", true),
        ];
        let imported = crate::import(&mut catalog, &store, &keys, "corp", entries, "csv").unwrap();
        assert_eq!((imported.change.accounts, imported.change.added, imported.disabled), (5, 5, 1));
        let directory = crate::load_directory(&catalog, &keys, "corp").unwrap().unwrap();
        let plain = serde_json::to_string(&directory).unwrap();
        let nt = leakwatch_types::encode_hex_upper(&leakwatch_types::ntlm(b"Summer2024"));
        assert!(!plain.contains(&nt), "no NT hash is kept");

        let all = reports(&store, &directory).unwrap();
        let sorted = most_urgent_first(&all);
        let seen: Vec<(&str, Severity)> = sorted.iter().map(|r| (r.account, r.severity)).collect();
        assert_eq!(
            seen,
            [
                ("alice@corp.example", Severity::Critical),
                ("carol@corp.example", Severity::High),
                ("bob@corp.example", Severity::Low),
                ("zed@corp.example", Severity::None),
                ("frank@corp.example", Severity::High),
            ]
        );
        assert_eq!(sorted[0].own_password_leaked_in, ["Corp"]);
        assert_eq!(sorted[1].password_count, 1);
        let s = summary(&sorted);
        assert_eq!((s.audited, s.disabled, s.critical, s.in_corpus, s.exposed), (4, 1, 1, 2, 3));

        let reasons: Vec<(&str, Vec<String>)> = sorted
            .iter()
            .map(|r| (r.account, reset_reasons(r, false)))
            .filter(|(_, why)| !why.is_empty())
            .collect();
        assert_eq!(reasons, [("alice@corp.example", vec!["own current password leaked in Corp".to_owned()])]);
        assert_eq!(reset_reasons(sorted[1], true), ["current password seen 1 time in the corpus"]);
        assert!(reset_reasons(sorted[4], true).is_empty(), "a disabled account is left aside");
    }

    #[test]
    fn csv_cells_are_quoted_and_never_formulas() {
        assert_eq!(csv_cell("plain"), "plain");
        assert_eq!(csv_cell("=cmd|' /C calc'!A0"), "'=cmd|' /C calc'!A0");
        assert_eq!(csv_cell("a,\"b\""), "\"a,\"\"b\"\"\"");
    }
}
