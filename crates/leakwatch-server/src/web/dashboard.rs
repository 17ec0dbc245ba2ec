//! The organization dashboard: `/ui/orgs`, the organizations a key may see,
//! and `/ui/org/{name}`, one organization's exposure as a security team reads
//! it: stealer-log infections first, exposed accounts by breach and over time
//! (SVG drawn here, [`chart`]), the directory audit exactly as `leakwatch audit
//! --org` computes it (`leakwatch-org`), the alert outbox, the resets done,
//! and the CLI's actions: a forced reset previewed, then applied ([`reset`]),
//! and a test alert.
//!
//! Who sees an organization: admin and analyst keys, every one; a domain key,
//! one whose domains are all among its own (it owns every address the
//! dashboard names), and no other; to it the organization answers 404 like an
//! unknown name, so that names cannot be probed. As in the API, sensitive
//! breaches are never named to a domain key.
//!
//! Every view is audited as the API's searches are, before it is shown: one
//! row per domain of the organization (`ui org`, the exposed accounts as its
//! result count), as `audit --org` writes its rows. Directory password hashes
//! never reach this module: the sealed directory holds keyed hashes of them,
//! and the reports only counts and breach names.

mod chart;
mod reset;

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::fmt::Write;
use std::time::{Duration, UNIX_EPOCH};

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use leakwatch_alert::exposure::{exposures, DirectoryAccount, Exposure};
use leakwatch_catalog::{
    ApiKey, AuditEntry, AuditFilter, Catalog, Delivery, Organization, Role, SubjectKind,
};
use leakwatch_org::{most_urgent_first, newer_breaches, reports, summary, Report, SealedAccount, Severity};
use leakwatch_store::Store;

use super::html::{count, esc, path_segment};
use super::pages::{error_page, page};
use super::{see_other, Visitor};
use crate::api::audit_entry;
use crate::auth::charge;
use crate::error::AppError;
use crate::state::AppState;

pub(crate) use reset::{reset_apply, reset_list, reset_preview, Previews};

/// Rows of the audit and stealer-log tables shown at most; the CLI lists
/// them all.
const TABLE_ROWS: usize = 500;
/// Breaches in the bar chart at most (the table under it has every one).
const CHART_BREACHES: usize = 15;
/// Recent batches shown per alert destination.
const RECENT_BATCHES: usize = 10;
/// Reset runs shown.
const RESET_RUNS: usize = 10;
/// Years the chart over time spans at most.
const YEARS: i32 = 40;

/// Whether `key` may see `org` (see the module's header).
pub(super) fn may_see(key: &ApiKey, org: &Organization) -> bool {
    match key.role {
        Role::Admin | Role::Analyst => true,
        Role::Domain => !org.domains.is_empty() && org.domains.iter().all(|d| key.allows_domain(d)),
    }
}

/// A catalog connection from the server's pool: the dashboard reads the
/// organizations, the directory, the outbox and the audit log, off the
/// request threads.
fn open_catalog(state: &AppState) -> Result<crate::pool::Pooled<'_>, AppError> {
    state.pooled_catalog().map_err(AppError::catalog)
}

/// The organization `name` if `key` may see it; not found otherwise.
fn visible_org(catalog: &Catalog, key: &ApiKey, name: &str) -> Result<Organization, AppError> {
    match catalog.organization(name).map_err(AppError::catalog)? {
        Some(org) if may_see(key, &org) => Ok(org),
        _ => Err(AppError::NotFound),
    }
}

/// The audit rows of an action on `org`: one per domain, as the CLI writes
/// them; an organization unknown (or hidden) is recorded as a search of nothing.
fn org_rows(
    state: &AppState,
    key: &ApiKey,
    endpoint: &str,
    org: Option<&Organization>,
    status: u16,
    results: u64,
) -> Vec<AuditEntry> {
    let audit = &state.shared().audit;
    match org {
        Some(org) => org
            .domains
            .iter()
            .map(|d| audit_entry(key, endpoint, audit.subject(SubjectKind::Domain, d), status, results))
            .collect(),
        None => vec![audit_entry(key, endpoint, audit.subject(SubjectKind::Nothing, ""), status, results)],
    }
}

/// `GET /ui/orgs`: the organizations the key may see, audited as `ui orgs`.
pub async fn orgs(State(state): State<AppState>, visitor: Visitor) -> Response {
    let Some((_, key)) = visitor.signed_in.clone() else { return see_other("/ui/signin") };
    if let Err(e) = charge(&state, visitor.client, || "ui orgs".into(), Some(&key)).await {
        return error_page(&visitor, e);
    }
    let (reader, viewer) = (state.clone(), key.clone());
    let listed = crate::api::domain_wide(move || {
        let catalog = open_catalog(&reader)?;
        let all = catalog.organizations().map_err(AppError::catalog)?;
        Ok(all.into_iter().filter(|o| may_see(&viewer, o)).collect::<Vec<_>>())
    })
    .await;
    let (status, results) = match &listed {
        Ok(list) => (200, list.len() as u64),
        Err(e) => (e.status().as_u16(), 0),
    };
    let row = org_rows(&state, &key, "ui orgs", None, status, results);
    if let Err(e) = state.shared().audit.record_all(row).await {
        return error_page(&visitor, e);
    }
    let list = match listed {
        Ok(list) => list,
        Err(e) => return error_page(&visitor, e),
    };
    let mut body = String::from("<h1>Organizations</h1>\n");
    if list.is_empty() {
        body.push_str(
            "<p class=\"notice\">No organization this key may see. An administrator adds one with \
             <code>leakwatch org add NAME --domain D</code>; a domain key sees an organization whose domains \
             are all its own.</p>\n",
        );
    } else {
        body.push_str(
            "<div class=\"table-wrap\"><table class=\"cards-narrow\">\n<thead><tr><th scope=\"col\">Organization</th>\
             <th scope=\"col\">Domains</th><th scope=\"col\" class=\"num\">Directory accounts</th>\
             <th scope=\"col\">Directory imported</th><th scope=\"col\">Alerts</th></tr></thead>\n<tbody>\n",
        );
        for o in &list {
            let imported = o
                .directory
                .as_ref()
                .map_or("never".to_owned(), |d| format!("{} ({})", d.imported_at, d.source));
            let pending: u64 = o.alerts.iter().map(|a| a.pending).sum();
            let given_up: u64 = o.alerts.iter().map(|a| a.given_up).sum();
            let alerts = if o.alerts.is_empty() {
                "none".to_owned()
            } else {
                format!("{} destination(s): {} pending, {} given up", o.alerts.len(), pending, given_up)
            };
            let _ = writeln!(
                body,
                "<tr><td data-label=\"Organization\"><a href=\"/ui/org/{link}\">{name}</a></td>\
                 <td data-label=\"Domains\">{domains}</td><td data-label=\"Directory accounts\" class=\"num\">{accounts}</td>\
                 <td data-label=\"Directory imported\">{imported}</td><td data-label=\"Alerts\">{alerts}</td></tr>",
                link = path_segment(&o.name),
                name = esc(&o.name),
                domains = esc(&o.domains.join(", ")),
                accounts = count(o.accounts),
                imported = esc(&imported),
                alerts = esc(&alerts),
            );
        }
        body.push_str("</tbody>\n</table></div>\n");
    }
    page(&visitor, StatusCode::OK, "Organizations", &body)
}

/// What a dashboard view found, for its audit rows and its page.
struct View {
    org: Organization,
    exposed: u64,
    html: String,
}

/// `GET /ui/org/{name}`.
pub async fn dashboard(
    State(state): State<AppState>,
    visitor: Visitor,
    Path(name): Path<String>,
) -> Response {
    let Some((session, key)) = visitor.signed_in.clone() else { return see_other("/ui/signin") };
    if let Err(e) = charge(&state, visitor.client, || "ui org".into(), Some(&key)).await {
        return error_page(&visitor, e);
    }
    let (reader, viewer, csrf) = (state.clone(), key.clone(), session.csrf.clone());
    let viewed = crate::api::domain_wide(move || {
        let catalog = open_catalog(&reader)?;
        let org = visible_org(&catalog, &viewer, name.trim())?;
        let (html, exposed) = render(&reader, &catalog, &viewer, &org, &csrf)?;
        Ok(View { org, exposed, html })
    })
    .await;
    let rows = match &viewed {
        Ok(v) => org_rows(&state, &key, "ui org", Some(&v.org), 200, v.exposed),
        Err(e) => org_rows(&state, &key, "ui org", None, e.status().as_u16(), 0),
    };
    if let Err(e) = state.shared().audit.record_all(rows).await {
        return error_page(&visitor, e);
    }
    match viewed {
        Ok(v) => page(&visitor, StatusCode::OK, &v.org.name, &v.html),
        Err(e) => error_page(&visitor, e),
    }
}

/// The directory of `org`, opened (empty when it has none).
fn directory(
    state: &AppState,
    catalog: &Catalog,
    org: &Organization,
) -> Result<Vec<SealedAccount>, AppError> {
    let keys = state.data().ensure_keys()?;
    let found =
        leakwatch_org::load_directory(catalog, &keys.directory_keys(), &org.name).map_err(|e| match e {
            leakwatch_org::OrgError::Catalog(e) => AppError::catalog(e),
            e => AppError::internal(e),
        })?;
    Ok(found.unwrap_or_default())
}

/// The breach names `key` may not be told: sensitive ones, to a domain key.
fn hidden_breaches(store: &Store, key: &ApiKey) -> HashSet<String> {
    if matches!(key.role, Role::Admin | Role::Analyst) {
        return HashSet::new();
    }
    store.breaches().into_iter().filter(|b| b.is_sensitive).map(|b| b.name.clone()).collect()
}

/// The whole dashboard page body, and the count of exposed accounts.
fn render(
    state: &AppState,
    catalog: &Catalog,
    key: &ApiKey,
    org: &Organization,
    csrf: &str,
) -> Result<(String, u64), AppError> {
    let snapshot = state.snapshot();
    let store = &snapshot.store;
    let accounts = directory(state, catalog, org)?;
    let hidden = hidden_breaches(store, key);
    let all = reports(store, &accounts).map_err(AppError::internal)?;
    let ordered = most_urgent_first(&all);
    let figures = summary(&ordered);
    let listed: Vec<DirectoryAccount> =
        accounts.iter().map(|a| DirectoryAccount { email: a.email.clone(), disabled: a.disabled }).collect();
    let mut found: Vec<Exposure> =
        exposures(store, org, &listed).map_err(AppError::internal)?.into_values().collect();
    found.retain(|e| !hidden.contains(&e.breach));
    // Exposed: an address in a breach shown (on a domain or in the directory),
    // or a directory account with a finding of its own.
    let mut exposed_accounts: HashSet<&str> = found.iter().map(|e| e.account.as_str()).collect();
    exposed_accounts.extend(ordered.iter().filter(|r| r.exposed()).map(|r| r.account));
    let exposed = exposed_accounts.len() as u64;

    let mut h = String::with_capacity(32 << 10);
    let _ = write!(
        h,
        "<h1>{name}</h1>\n<p class=\"meta\">Domains: {domains} · store generation {generation}</p>\n",
        name = esc(&org.name),
        domains = esc(&org.domains.join(", ")),
        generation = store.generation(),
    );
    h.push_str(&contents(org));
    match &org.directory {
        Some(import) => {
            let _ = writeln!(
                h,
                "<p>Directory: {} imported {} from {} ({} disabled, left aside).</p>",
                count(org.accounts),
                esc(&import.imported_at),
                esc(&import.source),
                count(org.disabled_accounts),
            );
            let newer: Vec<&str> =
                newer_breaches(store, import).into_iter().filter(|n| !hidden.contains(*n)).collect();
            if !newer.is_empty() {
                let _ = writeln!(
                    h,
                    "<p class=\"notice\" role=\"note\">Password findings are from that import; breaches ingested since \
                     ({}) are checked for addresses only. Import the directory again to check passwords against them.</p>",
                    esc(&newer.join(", "))
                );
            }
        }
        None => {
            let _ = writeln!(
                h,
                "<p class=\"notice\">No directory imported yet (<code>leakwatch org import {} FILE</code>): only the \
                 addresses on the organization's domains are shown.</p>",
                esc(&org.name)
            );
        }
    }
    let cards = [
        ("exposed accounts", exposed),
        ("current password leaked for the account itself", figures.critical),
        ("in stealer logs", figures.stealer),
        ("password in the corpus", figures.in_corpus),
        ("empty password", figures.empty),
        ("sharing a password", figures.shared),
        ("directory accounts audited", figures.audited),
    ];
    h.push_str("<ul class=\"figures\" aria-label=\"Summary\">");
    for (label, n) in cards {
        let _ = write!(h, "<li><b>{}</b> {}</li>", count(n), esc(label));
    }
    h.push_str("</ul>\n");

    stealer_section(&mut h, &found);
    exposure_section(&mut h, &found);
    audit_section(&mut h, org, &ordered, &hidden);
    outbox_section(&mut h, catalog, org)?;
    reset_section(&mut h, state, catalog, org, &accounts)?;
    actions_section(&mut h, key, org, csrf);
    Ok((h, exposed))
}

fn contents(org: &Organization) -> String {
    let mut links = vec![
        ("stealer", "Stealer-log infections"),
        ("exposure", "Exposure by breach and over time"),
        ("audit", "Directory audit"),
        ("alerts", "Alert outbox"),
        ("resets", "Resets"),
        ("actions", "Actions"),
    ];
    if org.directory.is_none() {
        links.retain(|(id, _)| *id != "audit");
    }
    let items: String =
        links.iter().map(|(id, label)| format!("<li><a href=\"#{id}\">{label}</a></li>")).collect();
    format!("<nav aria-label=\"On this page\"><ul class=\"toc\">{items}</ul></nav>\n")
}

/// The accounts whose device a stealer log shows infected, with the websites
/// whose credentials were taken: the first thing to act on.
fn stealer_section(h: &mut String, found: &[Exposure]) {
    let mut infected: BTreeMap<&str, (BTreeSet<&str>, BTreeSet<&str>)> = BTreeMap::new();
    for e in found.iter().filter(|e| e.stealer_log) {
        let entry = infected.entry(&e.account).or_default();
        entry.0.insert(&e.breach);
        entry.1.extend(e.websites.iter().map(String::as_str));
    }
    let _ = writeln!(h, "<h2 id=\"stealer\">Stealer-log infections: {}</h2>", infected.len());
    if infected.is_empty() {
        h.push_str("<p class=\"good\">No account of this organization is in a stealer log.</p>\n");
        return;
    }
    h.push_str(
        "<p>These accounts' credentials were taken from an infected device: clean the device, then reset every \
         password it held.</p>\n<div class=\"table-wrap\"><table class=\"cards-narrow\" id=\"stealer-table\">\n\
         <thead><tr><th scope=\"col\">Account</th><th scope=\"col\">Stealer logs</th><th scope=\"col\">Websites</th></tr></thead>\n<tbody>\n",
    );
    // Most websites first: the most credentials to change.
    let mut rows: Vec<_> = infected.iter().collect();
    rows.sort_by(|a, b| b.1 .1.len().cmp(&a.1 .1.len()).then(a.0.cmp(b.0)));
    for (account, (logs, sites)) in rows.iter().take(TABLE_ROWS) {
        let _ = writeln!(
            h,
            "<tr><td data-label=\"Account\">{}</td><td data-label=\"Stealer logs\">{}</td><td data-label=\"Websites\">{}</td></tr>",
            esc(account),
            esc(&logs.iter().copied().collect::<Vec<_>>().join(", ")),
            esc(&sites.iter().copied().collect::<Vec<_>>().join(", ")),
        );
    }
    h.push_str("</tbody>\n</table></div>\n");
    if rows.len() > TABLE_ROWS {
        let _ = writeln!(
            h,
            "<p>{} more; the API's <code>stealerlogsbyemaildomain</code> lists them all (and <code>leakwatch \
             audit --org</code> those in the directory).</p>",
            count((rows.len() - TABLE_ROWS) as u64)
        );
    }
}

/// Exposed accounts by breach (stealer logs first) and by breach year.
fn exposure_section(h: &mut String, found: &[Exposure]) {
    h.push_str("<h2 id=\"exposure\">Exposure by breach and over time</h2>\n");
    if found.is_empty() {
        h.push_str("<p class=\"good\">No address of this organization is in any breach held here.</p>\n");
        return;
    }
    // Per breach: its accounts, title, date, whether a stealer log.
    // Each exposure is one (account, breach) pair: a breach's exposures are
    // its accounts.
    let mut by_breach: HashMap<&str, (usize, &Exposure)> = HashMap::new();
    for e in found {
        by_breach.entry(&e.breach).or_insert((0, e)).0 += 1;
    }
    let mut breaches: Vec<(&str, usize, &Exposure)> =
        by_breach.iter().map(|(name, (accounts, e))| (*name, *accounts, *e)).collect();
    breaches.sort_by(|a, b| b.2.stealer_log.cmp(&a.2.stealer_log).then(b.1.cmp(&a.1)).then(a.0.cmp(b.0)));
    let bars: Vec<chart::BreachBar> = breaches
        .iter()
        .take(CHART_BREACHES)
        .map(|(_, n, e)| chart::BreachBar {
            label: format!("{} ({})", e.breach_title, e.breach_date),
            accounts: *n as u64,
            stealer_log: e.stealer_log,
        })
        .collect();
    h.push_str("<figure>\n");
    h.push_str(&chart::by_breach(&bars));
    let _ = writeln!(
        h,
        "\n<figcaption>Exposed accounts per breach{}, stealer logs first (red).</figcaption>\n</figure>",
        if breaches.len() > CHART_BREACHES {
            format!(", the {CHART_BREACHES} largest")
        } else {
            String::new()
        }
    );

    // Per year of breach date: accounts exposed that year, and to date.
    let mut years: BTreeMap<i32, (HashSet<&str>, HashSet<&str>)> = BTreeMap::new();
    for e in found {
        if let Some(year) = e.breach_date.get(..4).and_then(|y| y.parse::<i32>().ok()) {
            let entry = years.entry(year).or_default();
            entry.0.insert(&e.account);
            if e.stealer_log {
                entry.1.insert(&e.account);
            }
        }
    }
    if let (Some(first), Some(last)) = (years.keys().next().copied(), years.keys().last().copied()) {
        // At most the last YEARS years drawn; older breaches (or a curator's
        // odd date) count in the running total from the start.
        let start = first.max(last - YEARS);
        let mut so_far: HashSet<&str> = HashSet::new();
        for (_, (accounts, _)) in years.range(..start) {
            so_far.extend(accounts.iter().copied());
        }
        let none = (HashSet::new(), HashSet::new());
        let mut rows = Vec::new();
        for year in start..=last {
            let (accounts, stealer) = years.get(&year).unwrap_or(&none);
            so_far.extend(accounts.iter().copied());
            rows.push(chart::Year {
                year,
                accounts: accounts.len() as u64,
                stealer: stealer.len() as u64,
                cumulative: so_far.len() as u64,
            });
        }
        h.push_str("<figure>\n");
        h.push_str(&chart::over_time(&rows));
        h.push_str(
            "\n<figcaption>Exposed accounts by year of breach (columns, stealer logs red) and in total to date \
             (line).</figcaption>\n</figure>\n",
        );
    }

    h.push_str(
        "<div class=\"table-wrap\"><table class=\"cards-narrow\" id=\"breach-table\">\n<thead><tr><th scope=\"col\">Breach</th>\
         <th scope=\"col\">Breach date</th><th scope=\"col\" class=\"num\">Exposed accounts</th></tr></thead>\n<tbody>\n",
    );
    for (name, n, e) in &breaches {
        let _ = writeln!(
            h,
            "<tr><td data-label=\"Breach\"><a href=\"/ui/breach/{link}\">{title}</a>{kind}</td><td data-label=\"Breach date\">{date}</td>\
             <td data-label=\"Exposed accounts\" class=\"num\">{n}</td></tr>",
            link = path_segment(name),
            title = esc(&e.breach_title),
            kind = if e.stealer_log { " <span class=\"bad\">stealer log</span>" } else { "" },
            date = esc(&e.breach_date),
            n = count(*n as u64),
        );
    }
    h.push_str("</tbody>\n</table></div>\n");
}

/// The directory audit, most urgent first: `audit --org`'s rows.
fn audit_section(h: &mut String, org: &Organization, ordered: &[&Report], hidden: &HashSet<String>) {
    if org.directory.is_none() {
        return;
    }
    let exposed: Vec<&&Report> = ordered.iter().filter(|r| r.exposed()).collect();
    let _ = writeln!(h, "<h2 id=\"audit\">Directory audit: {} exposed</h2>", exposed.len());
    if exposed.is_empty() {
        h.push_str("<p class=\"good\">No enabled directory account has a finding.</p>\n");
        return;
    }
    h.push_str(
        "<p>As <code>leakwatch audit --org</code> reports them, most urgent first: <b>critical</b>, the account's \
         current password leaked for that very account (credential stuffing works today); <b>high</b>, a stealer \
         log, an empty password or a password in the corpus; <b>medium</b>, a password shared with another \
         account; <b>low</b>, the address in breaches.</p>\n\
         <div class=\"table-wrap\"><table class=\"cards-narrow\" id=\"audit-table\">\n<thead><tr>\
         <th scope=\"col\">Severity</th><th scope=\"col\">Account</th><th scope=\"col\">Own password leaked in</th>\
         <th scope=\"col\">Stealer logs</th><th scope=\"col\" class=\"num\">Password seen</th>\
         <th scope=\"col\">Breaches</th><th scope=\"col\">Notes</th></tr></thead>\n<tbody>\n",
    );
    let shown = |names: &[&str]| -> String {
        let mut out: Vec<&str> = names.iter().copied().filter(|n| !hidden.contains(*n)).collect();
        let withheld = names.len() - out.len();
        let note = format!("{withheld} sensitive breach{}", if withheld == 1 { "" } else { "es" });
        if withheld > 0 {
            out.push(&note);
            return esc(&out.join(", "));
        }
        if out.is_empty() {
            "–".to_owned()
        } else {
            esc(&out.join(", "))
        }
    };
    for r in exposed.iter().take(TABLE_ROWS) {
        let mut notes = Vec::new();
        if r.empty_password {
            notes.push("empty password".to_owned());
        }
        if !r.shared_with.is_empty() {
            notes.push(format!("password shared with {}", r.shared_with.join(", ")));
        }
        let seen = if r.password_known && r.password_count == 0 {
            "0".to_owned()
        } else if r.password_known {
            format!(
                "{} ({} own dumps, {} Pwned Passwords)",
                count(r.password_count),
                count(r.password_count_own),
                count(r.password_count_hibp)
            )
        } else {
            "unknown".to_owned()
        };
        let _ = writeln!(
            h,
            "<tr class=\"sev-{sev}\"><td data-label=\"Severity\"><span class=\"sev\">{sev}</span></td>\
             <td data-label=\"Account\">{account}</td><td data-label=\"Own password leaked in\">{own}</td>\
             <td data-label=\"Stealer logs\">{stealer}</td><td data-label=\"Password seen\" class=\"num\">{seen}</td>\
             <td data-label=\"Breaches\">{breaches}</td><td data-label=\"Notes\">{notes}</td></tr>",
            sev = r.severity.as_str(),
            account = esc(r.account),
            own = shown(&r.own_password_leaked_in),
            stealer = if r.stealer_websites.is_empty() { "–".to_owned() } else { esc(&r.stealer_websites.join(", ")) },
            seen = esc(&seen),
            breaches = shown(&r.breaches),
            notes = esc(&notes.join("; ")),
        );
    }
    h.push_str("</tbody>\n</table></div>\n");
    if exposed.len() > TABLE_ROWS {
        let _ = writeln!(
            h,
            "<p>{} more; <code>leakwatch audit --org {} --csv</code> lists them all.</p>",
            count((exposed.len() - TABLE_ROWS) as u64),
            esc(&org.name)
        );
    }
    let critical = ordered.iter().filter(|r| !r.disabled && r.severity == Severity::Critical).count();
    if critical > 0 {
        let _ = writeln!(
            h,
            "<p class=\"bad\">{} account{} with a current password that leaked for {}: force a reset below.</p>",
            count(critical as u64),
            if critical == 1 { "" } else { "s" },
            if critical == 1 { "it" } else { "them" },
        );
    }
}

/// A batch's state as `org alert --list` names it, "failing" for one still
/// retried after a failed attempt.
fn batch_state(d: &Delivery) -> &'static str {
    if d.delivered {
        "delivered"
    } else if d.given_up {
        "given up"
    } else if d.last_error.is_some() {
        "failing"
    } else {
        "pending"
    }
}

/// A catalog time in milliseconds, as an HTTP date.
fn time_ms(ms: i64) -> String {
    let at = UNIX_EPOCH + Duration::from_millis(ms.max(0) as u64);
    httpdate::fmt_http_date(at)
}

fn outbox_section(h: &mut String, catalog: &Catalog, org: &Organization) -> Result<(), AppError> {
    h.push_str("<h2 id=\"alerts\">Alert outbox</h2>\n");
    if org.alerts.is_empty() {
        let _ = writeln!(
            h,
            "<p>No alert destination (<code>leakwatch org alert {} --webhook URL --secret-file F</code>, or \
             <code>--email ADDR --smtp URL</code>).</p>",
            esc(&org.name)
        );
        return Ok(());
    }
    for a in &org.alerts {
        let recent = catalog.alert_deliveries(a.id, RECENT_BATCHES).map_err(AppError::catalog)?;
        let failing = recent.iter().filter(|d| batch_state(d) == "failing").count();
        let _ = writeln!(
            h,
            "<h3>#{id} {kind} {target}</h3>\n<p>{pending} pending ({failing} of the recent ones failing), {delivered} delivered, \
             {given_up} given up.</p>",
            id = a.id,
            kind = esc(&a.kind),
            target = esc(&a.target),
            pending = count(a.pending),
            delivered = count(a.delivered),
            given_up = count(a.given_up),
        );
        if recent.is_empty() {
            h.push_str("<p>No batch yet: the next new exposure makes one.</p>\n");
            continue;
        }
        let _ = write!(
            h,
            "<div class=\"table-wrap\"><table class=\"cards-narrow\" id=\"outbox-{}\">\n<thead><tr><th scope=\"col\">Created</th>\
             <th scope=\"col\">Delivery</th><th scope=\"col\" class=\"num\">Exposures</th><th scope=\"col\" class=\"num\">Attempts</th>\
             <th scope=\"col\">State</th><th scope=\"col\">Last error</th></tr></thead>\n<tbody>\n",
            a.id
        );
        for d in &recent {
            let state = batch_state(d);
            let _ = writeln!(
                h,
                "<tr class=\"state-{class}\"><td data-label=\"Created\">{created}</td><td data-label=\"Delivery\"><code>{id}</code> \
                 (generation {generation})</td><td data-label=\"Exposures\" class=\"num\">{exposures}</td>\
                 <td data-label=\"Attempts\" class=\"num\">{attempts}</td><td data-label=\"State\">{state}</td>\
                 <td data-label=\"Last error\">{error}</td></tr>",
                class = state.replace(' ', "-"),
                created = esc(&time_ms(d.created_at_ms)),
                id = esc(&d.delivery_id),
                generation = d.generation,
                exposures = count(d.exposures),
                attempts = d.attempts,
                error = esc(d.last_error.as_deref().unwrap_or("–")),
            );
        }
        h.push_str("</tbody>\n</table></div>\n");
    }
    Ok(())
}

/// One run of forced resets, from its audit rows.
struct ResetRun {
    at: String,
    who: String,
    via: &'static str,
    how: String,
    accounts: Vec<String>,
}

/// The last reset runs of `org`, newest first: the audit rows `reset --apply`
/// and the dashboard's apply wrote (consecutive rows of one command and one
/// user are one run), each account named again by hashing the directory's
/// addresses under the audit keys.
fn reset_runs(
    state: &AppState,
    catalog: &Catalog,
    org: &Organization,
    accounts: &[SealedAccount],
) -> Result<Vec<ResetRun>, AppError> {
    let mut rows = Vec::new();
    for (command, via) in [("cli reset --apply", "command line"), ("ui reset --apply", "web")] {
        let filter = AuditFilter {
            endpoint_prefix: Some(format!("{command} --org {} (", org.name)),
            last: Some(5_000),
            ..AuditFilter::default()
        };
        rows.extend(catalog.audit_entries(&filter).map_err(AppError::catalog)?.into_iter().map(|r| (r, via)));
    }
    rows.sort_by_key(|(r, _)| r.id);
    let keys = crate::audit::audit_keys(state.data())?;
    let mut names: HashMap<String, &str> = HashMap::new();
    if !rows.is_empty() {
        for k in keys.all() {
            let hasher = k.hasher();
            for a in accounts {
                names.insert(hasher.subject(SubjectKind::Account, &a.email).hash, &a.email);
            }
        }
    }
    let mut runs: Vec<ResetRun> = Vec::new();
    let mut last: Option<(String, String)> = None;
    for (r, via) in rows {
        let e = r.entry;
        let account =
            names.get(&e.subject.hash).copied().unwrap_or("an account no longer in the directory").to_owned();
        let same = last.as_ref().is_some_and(|(endpoint, who)| *endpoint == e.endpoint && *who == e.key_name);
        match runs.last_mut() {
            Some(run) if same => run.accounts.push(account),
            _ => {
                let how =
                    e.endpoint.rsplit_once(" (").map_or("", |(_, h)| h.trim_end_matches(')')).to_owned();
                runs.push(ResetRun {
                    at: e.at.clone(),
                    who: e.key_name.clone(),
                    via,
                    how,
                    accounts: vec![account],
                });
            }
        }
        last = Some((e.endpoint, e.key_name));
    }
    runs.reverse();
    runs.truncate(RESET_RUNS);
    Ok(runs)
}

fn reset_section(
    h: &mut String,
    state: &AppState,
    catalog: &Catalog,
    org: &Organization,
    accounts: &[SealedAccount],
) -> Result<(), AppError> {
    h.push_str("<h2 id=\"resets\">Resets</h2>\n");
    let runs = reset_runs(state, catalog, org, accounts)?;
    if runs.is_empty() {
        h.push_str("<p>No forced reset was applied to this organization yet.</p>\n");
        return Ok(());
    }
    h.push_str(
        "<div class=\"table-wrap\"><table class=\"cards-narrow\" id=\"reset-table\">\n<thead><tr><th scope=\"col\">When</th>\
         <th scope=\"col\">Who</th><th scope=\"col\">How</th><th scope=\"col\">Accounts</th></tr></thead>\n<tbody>\n",
    );
    for run in &runs {
        let _ = writeln!(
            h,
            "<tr><td data-label=\"When\">{at}</td><td data-label=\"Who\">{who} ({via})</td><td data-label=\"How\">{how}</td>\
             <td data-label=\"Accounts\">{n}: {accounts}</td></tr>",
            at = esc(&run.at),
            who = esc(&run.who),
            via = run.via,
            how = esc(&run.how),
            n = run.accounts.len(),
            accounts = esc(&run.accounts.join(", ")),
        );
    }
    h.push_str("</tbody>\n</table></div>\n");
    Ok(())
}

fn actions_section(h: &mut String, key: &ApiKey, org: &Organization, csrf: &str) {
    let link = path_segment(&org.name);
    let csrf = esc(csrf);
    h.push_str("<h2 id=\"actions\">Actions</h2>\n");
    if org.directory.is_some() {
        let _ = writeln!(
            h,
            "<form class=\"stack\" method=\"post\" action=\"/ui/org/{link}/reset\">\n\
             <input type=\"hidden\" name=\"csrf\" value=\"{csrf}\">\n\
             <p>A forced reset takes each enabled account whose current password leaked for it or whose device is in a \
             stealer log. The preview changes nothing; applying it needs an admin key.</p>\n\
             <label class=\"check\"><input type=\"checkbox\" name=\"include_common\" value=\"1\"> Also accounts whose current \
             password is in the corpus at all</label>\n\
             <button type=\"submit\">Preview forced resets</button>\n</form>"
        );
    }
    if !org.alerts.is_empty() {
        if key.role == Role::Admin {
            let _ = writeln!(
                h,
                "<form class=\"stack\" method=\"post\" action=\"/ui/org/{link}/alert/test\">\n\
                 <input type=\"hidden\" name=\"csrf\" value=\"{csrf}\">\n\
                 <p>A test alert is a made-up batch (no breach) sent now to each destination, outside the outbox.</p>\n\
                 <button type=\"submit\">Send a test alert</button>\n</form>"
            );
        } else {
            h.push_str("<p>An admin key can send a test alert to the destinations.</p>\n");
        }
    }
}

/// `POST /ui/org/{name}/alert/test`: admin keys only; audited as
/// `ui org alert --test` per domain, with the destinations that took it.
pub async fn alert_test(
    State(state): State<AppState>,
    visitor: Visitor,
    Path(name): Path<String>,
    body: Bytes,
) -> Response {
    let (key, _) = match super::signed_post(&state, &visitor, &body, "ui org alert --test").await {
        Ok(allowed) => allowed,
        Err(answer) => return answer,
    };
    let (reader, sender) = (state.clone(), key.clone());
    let sent = crate::api::domain_wide(move || {
        let catalog = open_catalog(&reader)?;
        let org = visible_org(&catalog, &sender, name.trim())?;
        if sender.role != Role::Admin {
            return Err(AppError::Forbidden("Sending a test alert needs an admin key."));
        }
        let keys = reader.data().ensure_keys()?;
        let sent = leakwatch_alert::send_tests(&catalog, &keys, &org).map_err(|e| match e {
            leakwatch_alert::AlertError::Catalog(e) => AppError::catalog(e),
            e => AppError::internal(e),
        })?;
        Ok((org, sent))
    })
    .await;
    let rows = match &sent {
        Ok((org, sent)) => {
            let took = sent.iter().filter(|t| t.result.is_ok()).count() as u64;
            org_rows(&state, &key, "ui org alert --test", Some(org), 200, took)
        }
        Err(e) => org_rows(&state, &key, "ui org alert --test", None, e.status().as_u16(), 0),
    };
    if let Err(e) = state.shared().audit.record_all(rows).await {
        return error_page(&visitor, e);
    }
    let (org, sent) = match sent {
        Ok(done) => done,
        Err(e) => return error_page(&visitor, e),
    };
    let mut body = format!("<h1>Test alert: {}</h1>\n<ul>\n", esc(&org.name));
    for t in &sent {
        let outcome = match &t.result {
            Ok(()) => format!("<span class=\"good\">delivered</span> (<code>{}</code>)", esc(&t.delivery_id)),
            Err(e) => format!("<span class=\"bad\">failed</span>: {}", esc(e)),
        };
        let _ = writeln!(body, "<li>#{} {}: {outcome}</li>", t.id, esc(&t.describe));
    }
    let _ = write!(
        body,
        "</ul>\n<p><a href=\"/ui/org/{}\">Back to the dashboard</a></p>",
        path_segment(&org.name)
    );
    page(&visitor, StatusCode::OK, "Test alert", &body)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(role: Role, domains: &[&str]) -> ApiKey {
        ApiKey {
            id: 1,
            name: "k".into(),
            prefix: "lw_".into(),
            role,
            domains: domains.iter().map(|d| d.to_string()).collect(),
            rate_limit_per_minute: None,
            created_at: String::new(),
            revoked_at: None,
            hash: [0; 32],
        }
    }

    fn org(domains: &[&str]) -> Organization {
        Organization {
            name: "acme".into(),
            domains: domains.iter().map(|d| d.to_string()).collect(),
            created_at: String::new(),
            accounts: 0,
            disabled_accounts: 0,
            directory: None,
            alerts: Vec::new(),
        }
    }

    #[test]
    fn a_domain_key_sees_an_organization_only_when_it_owns_every_domain() {
        let both = org(&["a.example", "b.example"]);
        assert!(may_see(&key(Role::Admin, &[]), &both) && may_see(&key(Role::Analyst, &[]), &both));
        assert!(may_see(&key(Role::Domain, &["a.example", "b.example", "c.example"]), &both));
        assert!(!may_see(&key(Role::Domain, &["a.example"]), &both), "one domain of two is not enough");
        assert!(!may_see(&key(Role::Domain, &["a.example"]), &org(&[])), "nothing to own, nothing seen");
    }

    #[test]
    fn a_batch_retried_after_an_error_is_failing() {
        let batch = |delivered, given_up, error: Option<&str>| Delivery {
            id: 1,
            alert_id: 1,
            delivery_id: "d".into(),
            generation: 1,
            exposures: 1,
            sealed: Vec::new(),
            created_at_ms: 0,
            attempts: 1,
            last_error: error.map(str::to_owned),
            delivered,
            given_up,
        };
        assert_eq!(batch_state(&batch(false, false, None)), "pending");
        assert_eq!(batch_state(&batch(false, false, Some("refused"))), "failing");
        assert_eq!(batch_state(&batch(false, true, Some("refused"))), "given up");
        assert_eq!(batch_state(&batch(true, false, None)), "delivered");
        assert_eq!(time_ms(0), "Thu, 01 Jan 1970 00:00:00 GMT");
    }
}
