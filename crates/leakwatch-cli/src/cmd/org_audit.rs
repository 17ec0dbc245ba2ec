//! `leakwatch audit --org NAME`: an organization's directory against the whole
//! leak corpus, most urgent first, as a terminal table, JSON lines, CSV or one
//! self-contained HTML file.
//!
//! Password findings (the per-account match, counts, empty and shared
//! passwords) come from the last `org import`, which saw the NT hashes; the
//! address findings (breaches, stealer-log sightings) are looked up now. When
//! breaches were ingested since the import, a note on stderr says which ones
//! the password findings have not seen.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::io::Write;

use anyhow::{Context, Result};
use leakwatch_catalog::DirectoryImport;
use leakwatch_org::{
    html_escape as esc, most_urgent_first, newer_breaches, reports, summary, Report, Severity,
};
use leakwatch_store::{DataDir, Store};

use super::org::{audit_rows, open_catalog, organization, require_directory};
use crate::cli::AuditArgs;
use crate::output::{line, plural, stdout, table, thousands};
use crate::Outcome;

pub fn run(dir: &DataDir, args: AuditArgs) -> Result<Outcome> {
    let store = Store::open(dir)?;
    let keys = dir.ensure_keys()?;
    let mut catalog = open_catalog(dir)?;
    let org = organization(&catalog, &args.org)?;
    require_directory(&org)?;
    let sealed = catalog.directory(&org.name)?.context("the organization's directory is gone")?;
    let directory = leakwatch_org::open_accounts(&keys.directory_keys(), &org.name, &sealed)?;
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
    let newer = newer_breaches(store, import);
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
                r.severity.as_str().to_owned(),
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
            r.severity.as_str().to_owned(),
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
        let cells: Vec<String> = cells.iter().map(|c| leakwatch_org::csv_cell(c)).collect();
        line(out, &cells.join(","))?;
    }
    Ok(())
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
            sev = r.severity.as_str(),
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
