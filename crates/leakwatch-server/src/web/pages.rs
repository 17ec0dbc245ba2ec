//! The pages: sign-in and sign-out, the account search with the in-page
//! password check, the breach catalog and a page per breach.
//!
//! Every state-changing request is a POST carrying the session's CSRF token
//! (the sign-in form's is a double-submit cookie, there being no session yet).
//! The searched address travels in a POST body, never in a URL that history
//! or a proxy's log would keep.

use std::cmp::Ordering;

use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::Response;
use leakwatch_catalog::{Role, SubjectKind};
use leakwatch_store::Breach;
use leakwatch_types::AccountKind;

use super::html::{self, count, esc, path_segment, Viewer};
use super::session::{random_token, set_cookie, tokens_match, COOKIE, SIGNIN_COOKIE};
use super::{form_fields, see_other, Visitor};
use crate::api::search::account_breaches;
use crate::api::stealer::email_websites;
use crate::api::{audit_entry, parse_account};
use crate::auth::{charge, check_secret};
use crate::error::AppError;
use crate::query::Params;
use crate::state::AppState;

const STYLESHEET: &str = concat!(include_str!("assets/app.css"), include_str!("assets/dashboard.css"));
const SCRIPT: &str = include_str!("assets/pwcheck.js");

pub async fn stylesheet() -> Response {
    asset("text/css; charset=utf-8", STYLESHEET)
}

pub async fn script() -> Response {
    asset("text/javascript; charset=utf-8", SCRIPT)
}

/// The tab's icon: without one, browsers ask for `/favicon.ico`.
pub async fn icon() -> Response {
    asset("image/svg+xml", include_str!("assets/icon.svg"))
}

pub(super) fn asset(content_type: &'static str, body: &'static str) -> Response {
    let mut response = super::html(StatusCode::OK, body.to_owned());
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("public, max-age=3600"));
    response
}

fn viewer(visitor: &Visitor) -> Option<Viewer<'_>> {
    visitor.signed_in.as_ref().map(|(s, k)| Viewer { name: &k.name, csrf: &s.csrf })
}

pub(super) fn page(visitor: &Visitor, status: StatusCode, title: &str, body: &str) -> Response {
    super::html(status, html::page(title, viewer(visitor).as_ref(), body))
}

/// An error as a page: the API's status, its message, no internal detail.
pub(super) fn error_page(visitor: &Visitor, error: AppError) -> Response {
    let status = error.status();
    let message = match &error {
        AppError::NotFound => "Nothing here.".to_owned(),
        AppError::BadRequest(m) | AppError::Forbidden(m) | AppError::Unavailable(m) => (*m).to_owned(),
        AppError::RateLimited { retry_after } => {
            format!("Too many requests; try again in {retry_after} seconds.")
        }
        AppError::Timeout => "The request took too long.".to_owned(),
        AppError::CatalogDown => crate::error::CATALOG_DOWN.to_owned(),
        _ => "Something went wrong; the server's log has the details.".to_owned(),
    };
    let title = status.canonical_reason().unwrap_or("Error");
    let mut response = page(
        visitor,
        status,
        title,
        &format!("<h1>{}</h1>\n<p class=\"notice\">{}</p>", esc(title), esc(&message)),
    );
    if let Some(seconds) = error.retry_after() {
        response.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(seconds));
    }
    response
}

/// `GET /`: the search when signed in, else the sign-in.
pub async fn home(visitor: Visitor) -> Response {
    if visitor.signed_in.is_some() {
        see_other("/ui/search")
    } else {
        see_other("/ui/signin")
    }
}

/// `GET /ui/signin`.
pub async fn signin_form(visitor: Visitor) -> Response {
    if visitor.signed_in.is_some() {
        return see_other("/ui/search");
    }
    signin_page(&visitor, StatusCode::OK, None)
}

/// The sign-in form with a fresh CSRF token, the same in a cookie and in the
/// form (an attacker's page can set neither).
fn signin_page(visitor: &Visitor, status: StatusCode, message: Option<&str>) -> Response {
    let token = match random_token() {
        Ok(t) => t,
        Err(e) => return error_page(visitor, AppError::internal(e)),
    };
    let notice = message
        .map(|m| format!("<p class=\"notice bad\" role=\"alert\">{}</p>\n", esc(m)))
        .unwrap_or_default();
    let body = format!(
        r#"<h1>Sign in</h1>
{notice}<form class="stack" method="post" action="/ui/signin">
<input type="hidden" name="csrf" value="{token}">
<label for="key">API key</label>
<input type="password" id="key" name="key" autocomplete="off" required autofocus>
<button type="submit">Sign in</button>
</form>
<p>Sign in with a key from <code>leakwatch apikey create</code>; the page sees what the key sees through the API.</p>"#,
        token = esc(&token)
    );
    let mut response = page(visitor, status, "Sign in", &body);
    let cookie = set_cookie(SIGNIN_COOKIE, &token, "/ui/signin", visitor.secure, Some(3600));
    if let Ok(value) = HeaderValue::try_from(cookie) {
        response.headers_mut().append(header::SET_COOKIE, value);
    }
    response
}

/// `POST /ui/signin`: the key is checked as the API checks a `hibp-api-key`.
pub async fn signin(State(state): State<AppState>, visitor: Visitor, body: Bytes) -> Response {
    let fields = form_fields(&body);
    let token_ok = match (visitor.cookie(SIGNIN_COOKIE), fields.get("csrf")) {
        (Some(cookie), Some(field)) => tokens_match(cookie, field),
        _ => false,
    };
    if !token_ok {
        return signin_page(&visitor, StatusCode::FORBIDDEN, Some("The form had expired; sign in again."));
    }
    let secret = fields.get("key").map(|k| k.trim()).filter(|k| !k.is_empty());
    match check_secret(&state, visitor.client, "ui signin", secret, true).await {
        Ok(key) => {
            let hash = key.hash;
            let id = match super::session::with_sessions(&state, move |s| s.create(hash)).await {
                Some(Ok(id)) => id,
                Some(Err(e)) => return error_page(&visitor, e),
                None => return error_page(&visitor, AppError::internal("the session task failed")),
            };
            let mut response = see_other("/ui/search");
            let cookies = [
                set_cookie(COOKIE, &id, "/", visitor.secure, None),
                set_cookie(SIGNIN_COOKIE, "", "/ui/signin", visitor.secure, Some(0)),
            ];
            for c in cookies {
                if let Ok(value) = HeaderValue::try_from(c) {
                    response.headers_mut().append(header::SET_COOKIE, value);
                }
            }
            response
        }
        Err(AppError::InvalidKey | AppError::MissingKey) => {
            signin_page(&visitor, StatusCode::UNAUTHORIZED, Some("That key was not accepted."))
        }
        Err(AppError::RateLimited { retry_after }) => {
            let message =
                format!("Too many wrong keys from this address; try again in {retry_after} seconds.");
            let mut response = signin_page(&visitor, StatusCode::TOO_MANY_REQUESTS, Some(&message));
            response.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(retry_after));
            response
        }
        Err(e) => error_page(&visitor, e),
    }
}

/// Whether a POST carries its session's CSRF token.
pub(super) fn csrf_ok(visitor: &Visitor, fields: &std::collections::HashMap<String, String>) -> bool {
    match (&visitor.signed_in, fields.get("csrf")) {
        (Some((s, _)), Some(token)) => tokens_match(&s.csrf, token),
        _ => false,
    }
}

pub(super) const BAD_TOKEN: AppError =
    AppError::Forbidden("The form had expired or came from elsewhere; reload the page.");

/// `POST /ui/signout`.
pub async fn signout(State(state): State<AppState>, visitor: Visitor, body: Bytes) -> Response {
    if visitor.signed_in.is_none() {
        return see_other("/ui/signin");
    }
    if !csrf_ok(&visitor, &form_fields(&body)) {
        return error_page(&visitor, BAD_TOKEN);
    }
    if let Some(id) = visitor.session_id.clone() {
        match super::session::with_sessions(&state, move |s| s.remove(&id)).await {
            Some(Ok(())) => {}
            Some(Err(e)) => return error_page(&visitor, e),
            None => return error_page(&visitor, AppError::internal("the session task failed")),
        }
    }
    let mut response = see_other("/ui/signin");
    if let Ok(value) = HeaderValue::try_from(set_cookie(COOKIE, "", "/", visitor.secure, Some(0))) {
        response.headers_mut().append(header::SET_COOKIE, value);
    }
    response
}

/// The search form and the password check, then `results` (HTML).
fn search_page(visitor: &Visitor, status: StatusCode, searched: &str, results: &str) -> Response {
    let csrf = visitor.signed_in.as_ref().map_or("", |(s, _)| s.csrf.as_str());
    let body = format!(
        r#"<h1>Search</h1>
<form class="stack" method="post" action="/ui/search">
<input type="hidden" name="csrf" value="{csrf}">
<label for="account">Email address, user name or phone number</label>
<input type="text" id="account" name="account" value="{searched}" autocomplete="off" required>
<button type="submit">Search breaches</button>
</form>
{results}
<h2>Check a password</h2>
<form class="stack" id="pw-form" action="/ui/search" method="get">
<label for="pw">Password</label>
<input type="password" id="pw" autocomplete="off">
<button type="submit">Check password</button>
</form>
<p id="pw-result" role="status" aria-live="polite">The password is hashed in this page; only the first five characters of its SHA-1 are sent.</p>
<script src="/ui/assets/pwcheck.js"></script>"#,
        csrf = esc(csrf),
        searched = esc(searched),
    );
    page(visitor, status, "Search", &body)
}

/// `GET /ui/search`.
pub async fn search_form(visitor: Visitor) -> Response {
    if visitor.signed_in.is_none() {
        return see_other("/ui/signin");
    }
    search_page(&visitor, StatusCode::OK, "", "")
}

/// `POST /ui/search`: an account search as `breachedaccount` makes it (with
/// unverified breaches, marked), plus the stealer-log websites of an email
/// address the key may search. Both lookups are audited in one commit
/// (`ui breachedaccount`, `ui stealerlogsbyemail`) before anything is shown.
pub async fn search(State(state): State<AppState>, visitor: Visitor, body: Bytes) -> Response {
    let (key, fields) = match super::signed_post(&state, &visitor, &body, "ui breachedaccount").await {
        Ok(allowed) => allowed,
        Err(answer) => return answer,
    };
    let raw = fields.get("account").map_or("", |a| a.trim());
    let Some(account) = parse_account(raw) else {
        let notice = "<p class=\"notice bad\" role=\"alert\">That is not an email address, user name or phone number.</p>";
        return search_page(&visitor, StatusCode::BAD_REQUEST, raw, notice);
    };
    let audit = &state.shared().audit;
    let subject = audit.subject(SubjectKind::Account, &account.audit_value);
    let snapshot = state.snapshot();
    let breaches = account_breaches(&snapshot, &key, &account, true, None);
    let email = account.candidates.iter().find(|c| c.kind == AccountKind::Email);
    let sites = email
        .filter(|_| !matches!(breaches, Err(AppError::Forbidden(_))))
        .map(|email| email_websites(&snapshot, &key, email));
    let row = |endpoint: &str, outcome: Result<u64, &AppError>| {
        let (status, results) = match outcome {
            Ok(n) => (200, n),
            Err(e) => (e.status().as_u16(), 0),
        };
        audit_entry(&key, endpoint, subject.clone(), status, results)
    };
    let mut rows = vec![row("ui breachedaccount", breaches.as_ref().map(|b| b.len() as u64))];
    if let Some(sites) = &sites {
        rows.push(row("ui stealerlogsbyemail", sites.as_ref().map(|s| s.len() as u64)));
    }
    if let Err(e) = audit.record_all(rows).await {
        return error_page(&visitor, e);
    }

    let shown = esc(&account.audit_value);
    let mut results = String::new();
    match breaches {
        Ok(found) => {
            results.push_str(&format!(
                "<h2 class=\"bad\">{shown} is in {} breach{}</h2>\n<ul class=\"cards\">\n",
                found.len(),
                if found.len() == 1 { "" } else { "es" }
            ));
            for b in found {
                results.push_str(&card(b));
            }
            results.push_str("</ul>\n");
        }
        Err(AppError::NotFound) => {
            results.push_str(&format!("<h2 class=\"good\">No breach held here contains {shown}</h2>\n"));
        }
        Err(e) => return error_page(&visitor, e),
    }
    match sites {
        Some(Ok(sites)) => {
            results.push_str(&format!(
                "<h2 class=\"bad\">Stealer logs: {} website{}</h2>\n<p>Credentials for these sites were taken from an infected device:</p>\n<ul>\n",
                sites.len(),
                if sites.len() == 1 { "" } else { "s" }
            ));
            for s in sites {
                results.push_str(&format!("<li>{}</li>\n", esc(&s)));
            }
            results.push_str("</ul>\n");
        }
        Some(Err(AppError::NotFound)) => results.push_str("<p>No stealer-log sightings.</p>\n"),
        Some(Err(e)) => return error_page(&visitor, e),
        None => {}
    }
    search_page(&visitor, StatusCode::OK, raw, &results)
}

/// One breach as a card in search results.
fn card(b: &Breach) -> String {
    let unverified = if b.is_verified { "" } else { " · unverified" };
    let classes: String = b.data_classes.iter().map(|c| format!("<li>{}</li>", esc(c))).collect();
    format!(
        r#"<li class="card"><h3><a href="/ui/breach/{link}">{title}</a></h3>
<p class="meta">{name}{domain} · breached {date} · {accounts} accounts{unverified}</p>
<p>{description}</p>
<ul class="classes" aria-label="Data classes">{classes}</ul></li>
"#,
        link = path_segment(&b.name),
        title = esc(&b.title),
        name = esc(&b.name),
        domain = if b.domain.is_empty() { String::new() } else { format!(" · {}", esc(&b.domain)) },
        date = esc(&b.breach_date),
        accounts = count(b.pwn_count),
        description = esc(&b.description),
    )
}

/// The breaches the visitor may see, as the API's catalog shows them:
/// sensitive ones to admin and analyst keys only.
fn visible<'a>(visitor: &Visitor, breaches: Vec<&'a Breach>) -> impl Iterator<Item = &'a Breach> {
    let sensitive =
        visitor.signed_in.as_ref().is_some_and(|(_, k)| matches!(k.role, Role::Admin | Role::Analyst));
    breaches.into_iter().filter(move |b| sensitive || !b.is_sensitive)
}

/// The catalog's sortable columns: query value, heading, order.
const COLUMNS: [(&str, &str); 4] =
    [("title", "Breach"), ("date", "Breach date"), ("added", "Added"), ("count", "Accounts")];

fn compare(sort: &str, a: &Breach, b: &Breach) -> Ordering {
    let by_title = || a.title.to_lowercase().cmp(&b.title.to_lowercase()).then_with(|| a.name.cmp(&b.name));
    match sort {
        "date" => a.breach_date.cmp(&b.breach_date).then_with(by_title),
        "added" => a.added_date.cmp(&b.added_date).then_with(by_title),
        "count" => a.pwn_count.cmp(&b.pwn_count).then_with(by_title),
        _ => by_title(),
    }
}

/// `GET /ui/breaches[?sort=title|date|added|count][&order=asc|desc][&q=text]`
/// `[&per=year|month][&classes=breaches|accounts]`: the list, and the charts
/// of the breaches it shows.
pub async fn breaches(
    State(state): State<AppState>,
    visitor: Visitor,
    RawQuery(query): RawQuery,
) -> Response {
    let key = visitor.signed_in.as_ref().map(|(_, k)| k.clone());
    if let Err(e) = charge(&state, visitor.client, || "ui breaches".into(), key.as_deref()).await {
        return error_page(&visitor, e);
    }
    let params = Params::parse(query.as_deref());
    let sort = params.get("sort").filter(|s| COLUMNS.iter().any(|(c, _)| c == s)).unwrap_or("title");
    let descending = params.get("order") == Some("desc");
    let filter = params.get("q").unwrap_or("").trim().to_lowercase();
    let snapshot = state.snapshot();
    let mut shown: Vec<&Breach> = visible(&visitor, snapshot.store.breaches())
        .filter(|b| {
            filter.is_empty()
                || [&b.name, &b.title, &b.domain].iter().any(|f| f.to_lowercase().contains(&filter))
                || b.data_classes.iter().any(|c| c.to_lowercase().contains(&filter))
        })
        .collect();
    shown.sort_by(|a, b| if descending { compare(sort, b, a) } else { compare(sort, a, b) });

    let q = form_urlencoded::byte_serialize(filter.as_bytes()).collect::<String>();
    // The charts' settings, kept by the column links and the filter.
    let per = super::charts::Per::parse(params.get("per"));
    let by_accounts = params.get("classes") == Some("accounts");
    let chart_params =
        format!("per={}&classes={}", per.name(), if by_accounts { "accounts" } else { "breaches" });
    let mut head = String::new();
    for (column, heading) in COLUMNS {
        let current = column == sort;
        let next = if current && !descending { "desc" } else { "asc" };
        let aria = match (current, descending) {
            (false, _) => "",
            (true, false) => " aria-sort=\"ascending\"",
            (true, true) => " aria-sort=\"descending\"",
        };
        let class = match column {
            "count" => " class=\"num\"",
            "added" => " class=\"hide-narrow\"",
            _ => "",
        };
        head.push_str(&format!(
            "<th scope=\"col\"{class}{aria}><a href=\"/ui/breaches?sort={column}&amp;order={next}&amp;q={q}&amp;{chart_params}\">{heading}</a></th>",
            chart_params = esc(&chart_params)
        ));
    }
    let mut rows = String::new();
    for b in &shown {
        let mut flags = Vec::new();
        for (on, label) in [
            (!b.is_verified, "unverified"),
            (b.is_sensitive, "sensitive"),
            (b.is_retired, "retired"),
            (b.is_spam_list, "spam list"),
            (b.is_stealer_log, "stealer log"),
        ] {
            if on {
                flags.push(label);
            }
        }
        rows.push_str(&format!(
            "<tr><td><a href=\"/ui/breach/{link}\">{title}</a> <span class=\"meta\">{flags}</span></td><td>{date}</td><td class=\"hide-narrow\">{added}</td><td class=\"num\">{accounts}</td></tr>\n",
            link = path_segment(&b.name),
            title = esc(&b.title),
            flags = esc(&flags.join(", ")),
            date = esc(&b.breach_date),
            added = esc(b.added_date.get(..10).unwrap_or(&b.added_date)),
            accounts = count(b.pwn_count),
        ));
    }
    let total: u64 = shown.iter().map(|b| b.pwn_count).sum();
    let order = if descending { "desc" } else { "asc" };
    let charts =
        super::charts::catalog_charts(&shown, per, by_accounts, &format!("sort={sort}&order={order}&q={q}"));
    let body = format!(
        r##"<h1>Breaches</h1>
<form class="stack" method="get" action="/ui/breaches">
<input type="hidden" name="sort" value="{sort}">
<input type="hidden" name="order" value="{order}">
<input type="hidden" name="per" value="{per}">
<input type="hidden" name="classes" value="{classes}">
<label for="q">Filter by name, site or data class</label>
<input type="text" id="q" name="q" value="{filter}">
<button type="submit">Filter</button>
</form>
<p>{n} breach{plural}, {total} accounts. <a href="#list">The list</a></p>
{charts}<h2 id="list">List</h2>
<div class="table-wrap"><table>
<thead><tr>{head}</tr></thead>
<tbody>
{rows}</tbody>
</table></div>"##,
        sort = esc(sort),
        filter = esc(&filter),
        per = per.name(),
        classes = if by_accounts { "accounts" } else { "breaches" },
        n = shown.len(),
        plural = if shown.len() == 1 { "" } else { "es" },
        total = count(total),
    );
    page(&visitor, StatusCode::OK, "Breaches", &body)
}

/// `GET /ui/breach/{name}`.
pub async fn breach(State(state): State<AppState>, visitor: Visitor, Path(name): Path<String>) -> Response {
    let key = visitor.signed_in.as_ref().map(|(_, k)| k.clone());
    if let Err(e) = charge(&state, visitor.client, || "ui breach".into(), key.as_deref()).await {
        return error_page(&visitor, e);
    }
    let snapshot = state.snapshot();
    let name = name.trim();
    let Some(b) = visible(&visitor, snapshot.store.breaches()).find(|b| b.name.eq_ignore_ascii_case(name))
    else {
        return error_page(&visitor, AppError::NotFound);
    };
    let yes_no = |v: bool| if v { "yes" } else { "no" };
    let classes: String = b
        .data_classes
        .iter()
        .map(|c| {
            let q = form_urlencoded::byte_serialize(c.to_lowercase().as_bytes()).collect::<String>();
            format!("<li><a href=\"/ui/breaches?q={q}\">{}</a></li>", esc(c))
        })
        .collect();
    let held: u64 = visible(&visitor, snapshot.store.breaches()).map(|x| x.pwn_count).sum();
    let share = if held > 0 { b.pwn_count as f64 * 100.0 / held as f64 } else { 0.0 };
    // Where it came from, for the keys that may read the ingest log.
    let analyst =
        visitor.signed_in.as_ref().is_some_and(|(_, k)| matches!(k.role, Role::Admin | Role::Analyst));
    let history = if analyst {
        let (reader, wanted) = (state.clone(), b.name.clone());
        let records = tokio::task::spawn_blocking(move || reader.catalog().ingests(Some(&wanted), 20)).await;
        match records {
            Ok(Ok(records)) => format!("<h2>Ingests</h2>\n{}", super::ingests::breach_history(&records)),
            Ok(Err(e)) => return error_page(&visitor, AppError::catalog(e)),
            Err(e) => return error_page(&visitor, AppError::internal(e)),
        }
    } else {
        String::new()
    };
    let body = format!(
        r#"<h1>{title}</h1>
<p>{description}</p>
<dl class="facts">
<dt>Name</dt><dd>{name}</dd>
<dt>Site</dt><dd>{domain}</dd>
<dt>Breach date</dt><dd>{date}</dd>
<dt>Added</dt><dd>{added}</dd>
<dt>Modified</dt><dd>{modified}</dd>
<dt>Accounts</dt><dd>{accounts} ({share:.1}% of the accounts shown in the catalog)</dd>
<dt>Verified</dt><dd>{verified}</dd>
<dt>Fabricated</dt><dd>{fabricated}</dd>
<dt>Sensitive</dt><dd>{sensitive}</dd>
<dt>Retired</dt><dd>{retired}</dd>
<dt>Spam list</dt><dd>{spam}</dd>
<dt>Malware</dt><dd>{malware}</dd>
<dt>Stealer log</dt><dd>{stealer}</dd>
</dl>
<h2>Data classes</h2>
<ul class="classes">{classes}</ul>
{history}<p><a href="/ui/breaches">All breaches</a></p>"#,
        title = esc(&b.title),
        description = esc(&b.description),
        name = esc(&b.name),
        domain = if b.domain.is_empty() { "none given".to_owned() } else { esc(&b.domain) },
        date = esc(&b.breach_date),
        added = esc(&b.added_date),
        modified = esc(&b.modified_date),
        accounts = count(b.pwn_count),
        verified = yes_no(b.is_verified),
        fabricated = yes_no(b.is_fabricated),
        malware = yes_no(b.is_malware),
        sensitive = yes_no(b.is_sensitive),
        retired = yes_no(b.is_retired),
        spam = yes_no(b.is_spam_list),
        stealer = yes_no(b.is_stealer_log),
    );
    page(&visitor, StatusCode::OK, &b.title, &body)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_sign_in_cookie_is_scoped_to_the_form() {
        let c = set_cookie(SIGNIN_COOKIE, "t", "/ui/signin", false, Some(3600));
        assert!(c.contains("Path=/ui/signin") && c.contains("HttpOnly") && c.contains("SameSite=Strict"));
    }
}
