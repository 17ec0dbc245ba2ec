//! `leakwatch audit --org NAME`: an organization's directory against the whole
//! leak corpus, most urgent first, as a terminal table, JSON lines, CSV or one
//! self-contained HTML file.
//!
//! Password findings (the per-account match, counts, empty and shared
//! passwords) come from the last `org import`, which saw the NT hashes; the
//! address findings (breaches, stealer-log sightings) are looked up now. When
//! breaches were ingested since the import, a note on stderr says which ones
//! the password findings have not seen.

use std::collections::{BTreeMap, HashMap};
use std::fmt::Write as _;
use std::io::Write;

use anyhow::{Context, Result};
use leakwatch_catalog::DirectoryImport;
use leakwatch_store::{Breach, DataDir, Store};
use leakwatch_types::{Account, AccountKind};
use rayon::prelude::*;
use serde::Serialize;

use super::org::{audit_rows, open_accounts, open_catalog, organization, require_directory, SealedAccount};
use crate::cli::AuditArgs;
use crate::output::{line, plural, stdout, table, thousands};
use crate::Outcome;

/// How urgent an account's exposure is; declared most urgent first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
enum Severity {
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

#[derive(Debug, Serialize)]
struct BreachRef<'a> {
    name: &'a str,
    title: &'a str,
    date: &'a str,
}

/// One directory account's findings: the `--json` object. `reset` acts on
/// the same findings.
#[derive(Debug, Serialize)]
pub(crate) struct Report<'a> {
    pub(crate) account: &'a str,
    username: Option<&'a str>,
    pub(crate) disabled: bool,
    severity: Severity,
    pub(crate) own_password_leaked_in: Vec<&'a str>,
    pub(crate) stealer_websites: Vec<String>,
    password_known: bool,
    pub(crate) password_count: u64,
    password_count_own: u64,
    password_count_hibp: u64,
    empty_password: bool,
    shared_with: Vec<&'a str>,
    breaches: Vec<&'a str>,
    breach_details: Vec<BreachRef<'a>>,
}

pub fn run(dir: &DataDir, args: AuditArgs) -> Result<Outcome> {
    let store = Store::open(dir)?;
    let keys = dir.ensure_keys()?;
    let mut catalog = open_catalog(dir)?;
    let org = organization(&catalog, &args.org)?;
    require_directory(&org)?;
    let sealed = catalog.directory(&org.name)?.context("the organization's directory is gone")?;
    let directory = open_accounts(&keys.directory_keys(), &sealed)?;
    drop(sealed);
    let import = org.directory.as_ref().expect("checked above");
    note_newer_breaches(&store, &org.name, import);
    let all = reports(&store, &directory)?;
    let reports = most_urgent_first(&all);
    let exposed = reports.iter().filter(|r| !r.disabled && r.severity != Severity::None).count() as u64;
    audit_rows(dir, &mut catalog, "audit", &org, exposed)?;

    let mut out = stdout();
    if args.json {
        for r in &reports {
            line(&mut out, &serde_json::to_string(r)?)?;
        }
    } else if args.csv {
        write_csv(&mut out, &reports)?;
    } else if let Some(path) = &args.html {
        let html = html(&org.name, &import.imported_at, &reports, &store);
        std::fs::write(path, html).with_context(|| path.display().to_string())?;
        writeln!(out, "wrote {}: {}", path.display(), summary_line(&reports))?;
    } else {
        write_table(&mut out, &reports)?;
    }
    out.flush()?;
    Ok(if exposed > 0 { Outcome::Found } else { Outcome::NotFound })
}

/// Says on stderr which breaches were ingested since the directory's import:
/// the password findings have not seen them.
pub(crate) fn note_newer_breaches(store: &Store, org: &str, import: &DirectoryImport) {
    if store.generation() != import.checked_generation {
        let newer: Vec<&str> = store
            .breaches()
            .into_iter()
            .filter(|b| b.id > import.checked_breach_id)
            .map(|b| b.name.as_str())
            .collect();
        if !newer.is_empty() {
            eprintln!(
                "leakwatch: note: password findings are from the directory import of {}; breaches ingested \
                 since ({}) are checked for addresses only: `leakwatch org import {} FILE` again to check passwords",
                import.imported_at,
                newer.join(", "),
                org
            );
        }
    }
}

/// Each directory account's findings, in the directory's order.
pub(crate) fn reports<'a>(store: &'a Store, directory: &'a [SealedAccount]) -> Result<Vec<Report<'a>>> {
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
fn most_urgent_first<'r, 'a>(all: &'r [Report<'a>]) -> Vec<&'r Report<'a>> {
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
struct Summary {
    audited: u64,
    disabled: u64,
    critical: u64,
    stealer: u64,
    empty: u64,
    in_corpus: u64,
    shared: u64,
    in_breaches: u64,
    exposed: u64,
}

fn summary(reports: &[&Report]) -> Summary {
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

fn summary_line(reports: &[&Report]) -> String {
    let s = summary(reports);
    format!(
        "{} audited ({} disabled left aside): {} exposed; current password leaked for the account itself: {}; \
         stealer logs: {}; password in the corpus: {}; empty password: {}; sharing a password: {}; address in \
         breaches: {}",
        plural(s.audited, "account", "accounts"),
        thousands(s.disabled),
        thousands(s.exposed),
        thousands(s.critical),
        thousands(s.stealer),
        thousands(s.in_corpus),
        thousands(s.empty),
        thousands(s.shared),
        thousands(s.in_breaches),
    )
}

fn severity_name(s: Severity) -> &'static str {
    match s {
        Severity::Critical => "critical",
        Severity::High => "high",
        Severity::Medium => "medium",
        Severity::Low => "low",
        Severity::None => "none",
    }
}

fn write_table(out: &mut impl Write, reports: &[&Report]) -> Result<()> {
    let rows: Vec<Vec<String>> = reports
        .iter()
        .filter(|r| !r.disabled && r.severity != Severity::None)
        .map(|r| {
            let mut notes = Vec::new();
            if r.empty_password {
                notes.push("empty password".to_owned());
            }
            if !r.shared_with.is_empty() {
                notes.push(format!("password shared with {}", r.shared_with.join(", ")));
            }
            vec![
                severity_name(r.severity).to_owned(),
                r.account.to_owned(),
                join_or_dash(&r.own_password_leaked_in),
                if r.stealer_websites.is_empty() { "-".to_owned() } else { r.stealer_websites.join(", ") },
                if r.password_known { thousands(r.password_count) } else { "?".to_owned() },
                join_or_dash(&r.breaches),
                notes.join("; "),
            ]
        })
        .collect();
    if !rows.is_empty() {
        table(
            out,
            &[
                "SEVERITY",
                "ACCOUNT",
                "OWN PASSWORD LEAKED IN",
                "STEALER LOGS",
                "PASSWORD SEEN",
                "BREACHES",
                "NOTES",
            ],
            &rows,
            &[4],
        )?;
    }
    line(out, &summary_line(reports))?;
    Ok(())
}

fn join_or_dash(names: &[&str]) -> String {
    if names.is_empty() {
        "-".to_owned()
    } else {
        names.join(", ")
    }
}

fn write_csv(out: &mut impl Write, reports: &[&Report]) -> Result<()> {
    line(
        out,
        "account,username,disabled,severity,own_password_leaked_in,stealer_websites,password_known,\
         password_count,password_count_own,password_count_hibp,empty_password,shared_with,breaches",
    )?;
    for r in reports {
        let cells = [
            r.account.to_owned(),
            r.username.unwrap_or("").to_owned(),
            r.disabled.to_string(),
            severity_name(r.severity).to_owned(),
            r.own_password_leaked_in.join(";"),
            r.stealer_websites.join(";"),
            r.password_known.to_string(),
            r.password_count.to_string(),
            r.password_count_own.to_string(),
            r.password_count_hibp.to_string(),
            r.empty_password.to_string(),
            r.shared_with.join(";"),
            r.breaches.join(";"),
        ];
        let cells: Vec<String> = cells.iter().map(|c| csv_cell(c)).collect();
        line(out, &cells.join(","))?;
    }
    Ok(())
}

/// A CSV cell: quoted when it must be, and never read as a formula by a
/// spreadsheet (a directory's user names are not ours to trust).
pub(crate) fn csv_cell(value: &str) -> String {
    let value = if value.starts_with(['=', '+', '-', '@']) { format!("'{value}") } else { value.to_owned() };
    if value.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", value.replace('"', "\"\""))
    } else {
        value
    }
}

fn esc(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// The HTML report: inline style and an inline SVG chart, nothing fetched.
fn html(org: &str, imported_at: &str, reports: &[&Report], store: &Store) -> String {
    let s = summary(reports);
    let mut h = String::with_capacity(64 << 10);
    let _ = write!(
        h,
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <title>leakwatch audit: {org}</title><style>\
         body{{font-family:system-ui,sans-serif;margin:2em;color:#222}}\
         table{{border-collapse:collapse;font-size:14px}}td,th{{border:1px solid #ccc;padding:4px 8px;text-align:left}}\
         th{{background:#f3f3f3}}.critical{{background:#fdd}}.high{{background:#fec}}.medium{{background:#ffd}}\
         .cards{{display:flex;flex-wrap:wrap;gap:1em}}.card{{border:1px solid #ccc;border-radius:6px;padding:.6em 1em}}\
         .card b{{display:block;font-size:1.6em}}</style></head><body>\n\
         <h1>Exposure audit: {org}</h1>\n<p>Directory imported {imported}; store generation {generation}.</p>\n",
        org = esc(org),
        imported = esc(imported_at),
        generation = store.generation(),
    );
    h.push_str("<div class=\"cards\">");
    for (label, n) in [
        ("accounts audited", s.audited),
        ("exposed", s.exposed),
        ("current password leaked for the account itself", s.critical),
        ("in stealer logs", s.stealer),
        ("password in the corpus", s.in_corpus),
        ("empty password", s.empty),
        ("sharing a password", s.shared),
        ("address in breaches", s.in_breaches),
        ("disabled, left aside", s.disabled),
    ] {
        let _ = write!(h, "<div class=\"card\"><b>{}</b>{}</div>", thousands(n), esc(label));
    }
    h.push_str("</div>\n<h2>Exposures by breach date</h2>\n");
    h.push_str(&chart(reports));
    h.push_str(
        "<h2>Exposed accounts, most urgent first</h2>\n<table><tr><th>severity</th><th>account</th>\
         <th>own password leaked in</th><th>stealer logs</th><th>password seen</th><th>empty</th>\
         <th>shares password with</th><th>breaches</th></tr>\n",
    );
    for r in reports.iter().filter(|r| !r.disabled && r.severity != Severity::None) {
        let breaches: Vec<String> =
            r.breach_details.iter().map(|b| format!("{} ({})", esc(b.name), esc(b.date))).collect();
        let _ = writeln!(
            h,
            "<tr class=\"{sev}\"><td>{sev}</td><td>{acc}</td><td>{own}</td><td>{st}</td><td>{seen}</td>\
             <td>{empty}</td><td>{shared}</td><td>{br}</td></tr>",
            sev = severity_name(r.severity),
            acc = esc(r.account),
            own = esc(&r.own_password_leaked_in.join(", ")),
            st = esc(&r.stealer_websites.join(", ")),
            seen = if r.password_known { thousands(r.password_count) } else { "?".to_owned() },
            empty = if r.empty_password { "yes" } else { "" },
            shared = esc(&r.shared_with.join(", ")),
            br = breaches.join(", "),
        );
    }
    h.push_str("</table>\n</body></html>\n");
    h
}

/// An SVG bar per breach, by breach date: the enabled accounts whose address
/// is in it, and in red those whose current password leaked there.
fn chart(reports: &[&Report]) -> String {
    let mut by_breach: BTreeMap<(&str, &str), (u64, u64)> = BTreeMap::new();
    for r in reports.iter().filter(|r| !r.disabled) {
        for b in &r.breach_details {
            let e = by_breach.entry((b.date, b.name)).or_default();
            e.0 += 1;
            if r.own_password_leaked_in.contains(&b.name) {
                e.1 += 1;
            }
        }
    }
    if by_breach.is_empty() {
        return "<p>No account's address is in any breach.</p>\n".to_owned();
    }
    let max = by_breach.values().map(|v| v.0).max().unwrap_or(1).max(1) as f64;
    let (bar, gap, plot, top, label) = (28.0, 12.0, 200.0, 20.0, 110.0);
    let width = 40.0 + by_breach.len() as f64 * (bar + gap);
    let height = top + plot + label;
    let mut s = String::new();
    let _ = write!(
        s,
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{width}\" height=\"{height}\" role=\"img\" \
         aria-label=\"accounts exposed per breach, by breach date\" font-size=\"11\">"
    );
    for (i, ((date, name), (all, own))) in by_breach.iter().enumerate() {
        let x = 30.0 + i as f64 * (bar + gap);
        let h_all = plot * *all as f64 / max;
        let h_own = plot * *own as f64 / max;
        let base = top + plot;
        let _ = write!(
            s,
            "<rect x=\"{x}\" y=\"{y}\" width=\"{bar}\" height=\"{h_all}\" fill=\"#f0a040\">\
             <title>{name} ({date}): {all} accounts, {own} with their own password</title></rect>",
            y = base - h_all,
            name = esc(name),
            date = esc(date),
        );
        if *own > 0 {
            let _ = write!(
                s,
                "<rect x=\"{x}\" y=\"{y}\" width=\"{bar}\" height=\"{h_own}\" fill=\"#d03030\"/>",
                y = base - h_own
            );
        }
        let _ = write!(
            s,
            "<text x=\"{tx}\" y=\"{ty}\" text-anchor=\"middle\">{all}</text>\
             <text transform=\"translate({lx},{ly}) rotate(60)\">{name} {date}</text>",
            tx = x + bar / 2.0,
            ty = base - h_all - 4.0,
            lx = x + 4.0,
            ly = base + 12.0,
            name = esc(name),
            date = esc(date),
        );
    }
    s.push_str("</svg>\n<p>Orange: accounts whose address is in the breach; red: those whose current password leaked there for the account itself.</p>\n");
    s
}
